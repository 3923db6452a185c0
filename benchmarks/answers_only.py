"""Learning from answers alone: an extractor trained on the training phrasing families, then stories of
families it never saw that carry only their answers (no facts), read with the extractor frozen vs with the
answers teaching its relation classifier (``learn_from_answers``).

    python benchmarks/answers_only.py --from artifacts/kinship-extractor [--stories 2000] [--seeds 0]

``--from`` is an artifact built with a relation-extractor on the kinship bank (examples/kinship-extractor.toml).
The answer-only stories are the bank's held-out phrasing families, 2-3 hops, written as a user's jsonl (text,
label, hops); the test stories are other stories of those families, 2-6 hops. Both pipelines start from the
same extractor and train the same reasoner and decoder; only ``learn_from_answers`` differs. Writes
benchmarks/results/answers_only.{json,md,png}.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
VARIANTS = {"frozen": "extractor frozen (init_from)", "answers": "relation classifier taught by answers"}


def write_stories(path: Path, stories: int, seed: int) -> None:
    """Held-out-family stories as answer-only jsonl lines: train and val (2-3 hops), test (2-6 hops)."""
    from autoglm_graph import kinship_vocab as kv
    from autoglm_graph.kinship import HELD_OUT_SPLIT, KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_sdk.plugin import BuildContext

    def held_out(hops: list[int], count: int, data_seed: int) -> list[dict]:
        config = KinshipConfig(
            phrasings="bank",
            train={"hops": [2], "stories": 1},
            val={"hops": [2], "stories": 1},
            test={"hops": hops, "stories": count},
        )
        return KinshipDataSource(config, BuildContext(seed=data_seed)).load().splits[HELD_OUT_SPLIT]

    fitted = held_out([2, 3], stories + 300, 1000 + seed)
    tested = held_out([2, 3, 4, 5, 6], 500, 2000 + seed)
    lines = [
        {"text": s["text"], "label": kv.LABELS[s["label"]], "hops": s["hops"], "split": split}
        for split, samples in (("train", fitted[:stories]), ("val", fitted[stories:]), ("test", tested))
        for s in samples
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def manifest_for(variant: str, artifact: str, stories: Path, seed: int) -> dict:
    from autoglm_graph import kinship_vocab as kv

    data = copy.deepcopy(tomllib.loads((REPO / "examples" / "kinship-extractor.toml").read_text()))
    data["pipeline"].update(name=f"answers-{variant}", seed=seed, baselines=[])
    data["data"] = {"plugin": "jsonl", "path": str(stories), "labels": list(kv.LABELS), "group_field": "hops"}
    data["graph_builder"].update(edge_types=list(kv.TYPES), init_from=artifact, learn_from_answers=variant == "answers")
    data["train"]["restarts"] = 2  # each restart reads every story once more
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="artifact", required=True, help="an artifact with a relation-extractor")
    parser.add_argument("--stories", type=int, default=2000, help="answer-only training stories")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    if not (Path(args.artifact) / "manifest.lock.toml").exists():
        sys.exit(f"error: {args.artifact} is not an artifact; build examples/kinship-extractor.toml first")

    from autoglm_sdk import build, validate_manifest

    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            stories = Path(tmp) / f"answers-{seed}.jsonl"
            write_stories(stories, args.stories, seed)
            for variant in VARIANTS:
                print(f"{VARIANTS[variant]}, seed {seed} ...", file=sys.stderr, flush=True)
                manifest = validate_manifest(manifest_for(variant, args.artifact, stories, seed))
                started = time.perf_counter()
                result = build(
                    manifest, Path(tmp) / f"{variant}-{seed}", log=lambda m: print("  " + m, file=sys.stderr)
                )
                test = result.report["metrics"]["test"]
                runs[variant].append(
                    {
                        "seed": seed,
                        "build_seconds": time.perf_counter() - started,
                        "val": result.report["metrics"]["val"]["accuracy"],
                        "test": test["accuracy"],
                        "by_hops": {k: v["accuracy"] for k, v in test["groups"].items()},
                    }
                )
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "stories": args.stories,
        "from": args.artifact,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "answers_only.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    (RESULTS / "answers_only.md").write_text("\n".join(markdown(runs, meta)))
    plot(runs, RESULTS / "answers_only.png")
    print((RESULTS / "answers_only.md").read_text())


def mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def markdown(runs: dict[str, list[dict]], meta: dict) -> list[str]:
    hops = sorted(runs["frozen"][0]["by_hops"], key=int)
    lines = [
        "# Learning from answers alone",
        "",
        f"{meta['date']}, seeds {meta['seeds']}, Python {meta['python']}, {meta['platform']}. Extractor from "
        f"`{meta['from']}`; {meta['stories']} answer-only stories (2-3 hops) of the held-out phrasing families; "
        "test: other stories of those families, 2-6 hops.",
        "",
        "| extractor | val | test | " + " | ".join(f"k={k}" for k in hops) + " | build s |",
        "|---|---|---|" + "---|" * (len(hops) + 1),
    ]
    for variant, seeds in runs.items():
        cells = [mean([s["by_hops"][k] for s in seeds]) for k in hops]
        lines.append(
            f"| {VARIANTS[variant]} | {mean([s['val'] for s in seeds])} | {mean([s['test'] for s in seeds])} | "
            + " | ".join(cells)
            + f" | {statistics.mean(s['build_seconds'] for s in seeds):.0f} |"
        )
    gain = statistics.mean(s["test"] for s in runs["answers"]) - statistics.mean(s["test"] for s in runs["frozen"])
    lines += [
        "",
        f"Test accuracy gained by learning from answers: {gain:+.3f}.",
        "",
        "![by hops](answers_only.png)",
        "",
    ]
    return lines


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for variant, seeds in runs.items():
        hops = sorted(seeds[0]["by_hops"], key=int)
        means = [statistics.mean(s["by_hops"][k] for s in seeds) for k in hops]
        ax.plot([int(k) for k in hops], means, "o-", label=VARIANTS[variant])
    ax.axvspan(1.5, 3.5, color="tab:gray", alpha=0.15)
    ax.set_xlabel("hops")
    ax.set_ylabel("answer accuracy (held-out families)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
