"""Cascade: a cheap kinship pipeline answers first; the learned extractor runs only where the cheap one is unsure.

    python benchmarks/cascade.py [--cheap DIR] [--large DIR] [--classic-share 0.8] [--answer-at 0.9]

Members (built from their example manifests when the directories do not exist):

* cheap: examples/kinship.toml, the regex builder (text-relations) with the path composer; microseconds of
  text work per story, but it reads only the generator's five classic phrasings;
* large: examples/kinship-extractor.toml, a MiniLM relation extractor with the path composer; reads the phrasing
  bank, at a transformer's cost per story.

Traffic: kinship test stories of 2-10 hops, a share in the classic phrasings (the cheap artifact's test split) and
the rest from the phrasing bank (the large artifact's test split: the training families; and its held-out
families, reported apart). Both members answer every story once; the cascade's answer for any threshold follows
from those two answers, so a sweep of ``answer_at`` costs nothing more. The chosen threshold is then run for real
through :class:`autoglm_sdk.cascade.Cascade` (it must agree with the sweep) and timed against the large member
alone.

Writes benchmarks/results/cascade.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]


def ensure(artifact: Path, manifest: str) -> None:
    if not artifact.exists():
        print(f"building {artifact} from {manifest} ...", file=sys.stderr)
        cmd = [str(Path(sys.executable).parent / "autoglm"), "build", str(REPO / manifest), "-o", str(artifact)]
        subprocess.run([*cmd, "--force"], check=True)


def correct(answer: dict) -> bool:
    return answer.get("prediction") is not None and answer["prediction"] == answer.get("label")


def sweep(cheap: list[dict], large: list[dict]) -> list[dict]:
    """Accuracy and the large member's share at each threshold, from both members' answers to the same stories."""
    rows = []
    for t in THRESHOLDS:
        escalated = [a.get("prediction") is None or a.get("confidence", 0.0) < t for a in cheap]
        hits = [correct(b) if up else correct(a) for a, b, up in zip(cheap, large, escalated)]
        rows.append({"answer_at": t, "accuracy": sum(hits) / len(hits), "large_share": sum(escalated) / len(hits)})
    return rows


def by_hops(samples: list[dict], answers: list[dict]) -> dict[str, dict]:
    groups: dict[str, list] = {}
    for sample, answer in zip(samples, answers):
        groups.setdefault(str(sample.get("hops", "?")), []).append(answer)
    return {
        k: {
            "accuracy": sum(map(correct, v)) / len(v),
            "large_share": sum(len(a["route"]) > 1 for a in v) / len(v),
            "count": len(v),
        }
        for k, v in sorted(groups.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 99)
    }


def timed(call, samples: list[dict]) -> tuple[list[dict], float]:
    start = time.perf_counter()
    answers = call(samples)
    return answers, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cheap", type=Path, default=REPO / "artifacts/kinship")
    parser.add_argument("--large", type=Path, default=REPO / "artifacts/kinship-extractor")
    parser.add_argument("--classic-share", type=float, default=0.8, help="Share of traffic in classic phrasings.")
    parser.add_argument("--answer-at", type=float, default=0.9, help="The cheap member's threshold run for real.")
    parser.add_argument("--stories", type=int, default=900, help="Stories of mixed traffic.")
    args = parser.parse_args()
    import tempfile

    import torch

    from autoglm_sdk import load

    torch.set_num_threads(2)
    ensure(args.cheap, "examples/kinship.toml")
    ensure(args.large, "examples/kinship-extractor.toml")
    cheap, large = load(args.cheap), load(args.large)
    classic = cheap.data_split("test")
    n_classic = round(args.stories * args.classic_share)
    traffic = {
        "mixed": classic[:n_classic] + large.data_split("test")[: args.stories - n_classic],
        "classic": classic,
        "bank": large.data_split("test"),
        "held-out-phrasing": large.data_split("held-out-phrasing"),
    }
    spec = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)  # a cascade file, as a user writes one
    with spec:
        spec.write(
            f'[cascade]\nname = "kinship-cascade"\n\n[[cascade.members]]\nartifact = "{args.cheap.resolve()}"\n'
            f'name = "cheap"\nanswer_at = {args.answer_at}\n\n[[cascade.members]]\n'
            f'artifact = "{args.large.resolve()}"\nname = "large"\n'
        )
    cascade = load(spec.name)
    Path(spec.name).unlink()
    results: dict[str, dict] = {}
    for name, samples in traffic.items():
        print(f"{name}: {len(samples)} stories", file=sys.stderr)
        a, cheap_s = timed(lambda s: cheap.predict_samples(s, errors="report"), samples)  # unread: no answer
        b, large_s = timed(large.predict_samples, samples)
        routed, cascade_s = timed(cascade.predict_samples, samples)
        rows = sweep(a, b)
        chosen = next(r for r in rows if r["answer_at"] == args.answer_at) if args.answer_at in THRESHOLDS else None
        real = {
            "accuracy": sum(map(correct, routed)) / len(routed),
            "large_share": sum(len(r["route"]) > 1 for r in routed) / len(routed),
        }
        if chosen is not None:  # the real cascade must route as the sweep computed
            assert abs(chosen["accuracy"] - real["accuracy"]) < 1e-9, (chosen, real)
        results[name] = {
            "stories": len(samples),
            "cheap_accuracy": sum(map(correct, a)) / len(a),
            "large_accuracy": sum(map(correct, b)) / len(b),
            "cascade": real,
            "cascade_minus_large": real["accuracy"] - sum(map(correct, b)) / len(b),
            "seconds": {"cheap": cheap_s, "large": large_s, "cascade": cascade_s},
            "sweep": rows,
            "by_hops": by_hops(samples, routed),
        }
        print(json.dumps({k: v for k, v in results[name].items() if k not in ("sweep", "by_hops")}), file=sys.stderr)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "classic_share": args.classic_share,
        "answer_at": args.answer_at,
        "cheap": str(args.cheap.relative_to(REPO) if args.cheap.is_relative_to(REPO) else args.cheap),
        "large": str(args.large.relative_to(REPO) if args.large.is_relative_to(REPO) else args.large),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cascade.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    (RESULTS / "cascade.md").write_text("\n".join(markdown(meta, results)) + "\n")
    plot(results, RESULTS / "cascade.png")
    print(f"wrote {RESULTS / 'cascade.md'}", file=sys.stderr)


def markdown(meta: dict, results: dict) -> list[str]:
    lines = [
        "# Cascade: the regex pipeline first, the MiniLM extractor where it is unsure",
        "",
        f"{meta['date']}, Python {meta['python']}, {meta['machine']}, {meta['torch_threads']} torch threads. "
        f"Cheap member `{meta['cheap']}`, large member `{meta['large']}`; the cheap one answers when its confidence "
        f"is at least {meta['answer_at']} and it did not abstain. `mixed` traffic: {meta['classic_share']:.0%} of "
        "stories in the classic phrasings, the rest from the phrasing bank (training families); 2-10 hops.",
        "",
        "| traffic | stories | cheap alone | large alone | cascade | cascade − large | large runs on | "
        "seconds: large alone | cascade |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['stories']} | {r['cheap_accuracy']:.3f} | {r['large_accuracy']:.3f} | "
            f"{r['cascade']['accuracy']:.3f} | {r['cascade_minus_large']:+.3f} | {r['cascade']['large_share']:.1%} | "
            f"{r['seconds']['large']:.1f} | {r['seconds']['cascade']:.1f} |"
        )
    lines += ["", "## Threshold sweep (mixed traffic)", "", "| answer_at | accuracy | large runs on |", "|---|---|---|"]
    for row in results["mixed"]["sweep"]:
        lines.append(f"| {row['answer_at']} | {row['accuracy']:.3f} | {row['large_share']:.1%} |")
    lines += [
        "",
        "## Routes by hops (mixed traffic)",
        "",
        "| hops | accuracy | large runs on | stories |",
        "|---|---|---|---|",
    ]
    for hops, row in results["mixed"]["by_hops"].items():
        lines.append(f"| {hops} | {row['accuracy']:.3f} | {row['large_share']:.1%} | {row['count']} |")
    return lines + ["", "![threshold sweep](cascade.png)"]


def plot(results: dict, path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in ("mixed", "bank", "classic"):
        rows = results[name]["sweep"]
        ax.plot([r["large_share"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=f"{name}: cascade")
        ax.axhline(results[name]["large_accuracy"], linestyle=":", color=ax.lines[-1].get_color(), linewidth=1)
    ax.set_xlabel("share of stories the large member runs on (thresholds 0.5 ... 0.999)")
    ax.set_ylabel("accuracy (dotted: large member alone)")
    ax.set_xlim(-0.02, 1.02)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
