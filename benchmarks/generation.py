"""Generation: the classifier, the graph-conditioned generator and the same generator without the graph.

    python benchmarks/generation.py [--seeds 0 1 2] [--set data.train.stories=1000 ...] [--skip-speed]

Three pipelines on the same kinship stories (trained on 1-3 hops, tested on 2-10), each built per seed:

* **classifier**: examples/kinship.toml (text-relations, path-composer, a classifier head), given the
  generator's data section so that all three see the same stories;
* **graph-conditioned generator**: examples/kinship-generate.toml, a small Llama writing "T is S's R: ..."
  from graph tokens and the graph's facts;
* **text-only generator**: examples/kinship-generate-text-only.toml, the same LM reading the story alone.

With ``--summary``, also examples/kinship-summarise.toml per seed (graph -> a summary of every stated relation),
scored by chrF against the reference summaries.

Reported per hop count: answer accuracy (for the generators, the relation word the generated sentence states) and
the explanation's exact match. Then generation speed of the first seed's graph-conditioned generator: new tokens
per second at batch 1 and 16, with the KV cache and without, 64 new tokens a row. Writes
benchmarks/results/generation.{json,md,png}.
"""

from __future__ import annotations

import argparse
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
GENERATOR = REPO / "examples" / "kinship-generate.toml"
PIPELINES = {
    "classifier": REPO / "examples" / "kinship.toml",
    "generator (graph)": GENERATOR,
    "generator (text only)": REPO / "examples" / "kinship-generate-text-only.toml",
}
LONG = [str(k) for k in range(7, 11)]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def data_overrides() -> list[str]:
    """The generator manifest's data section as --set values, so every pipeline reads the same stories."""
    data = tomllib.loads(GENERATOR.read_text())["data"]
    out = []
    for split in ("train", "val", "test"):
        fields = ",".join(f"{k}={json.dumps(v)}" for k, v in data[split].items())
        out.append(f"data.{split}={{{fields}}}")
    return out


def speed(path: Path, samples: list[dict], new_tokens: int = 64, repeats: int = 3) -> list[dict]:
    """New tokens per second of a text artifact at batch 1 and 16, with and without the KV cache: every row writes
    exactly ``new_tokens`` (the end of text is held back), so both sides do the same work."""
    from autoglm_sdk import load

    model = load(path).model
    rows = []
    for batch in (1, 16):
        chunk = samples[:batch]
        for cache in (True, False):
            model.generate(chunk, max_new_tokens=8, use_cache=cache)  # warm-up
            seconds = []
            for _ in range(repeats):
                started = time.perf_counter()
                model.generate(chunk, min_new_tokens=new_tokens, max_new_tokens=new_tokens, use_cache=cache)
                seconds.append(time.perf_counter() - started)
            best, tokens = min(seconds), new_tokens * len(chunk)
            rows.append(
                {"batch": batch, "kv_cache": cache, "tokens": tokens, "seconds": best, "tokens_per_s": tokens / best}
            )
            say(f"  batch {batch}, cache {cache}: {tokens / best:.0f} tokens/s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra override for all three")
    parser.add_argument("--skip-speed", action="store_true", help="leave out the generation speed measurement")
    parser.add_argument("--summary", action="store_true", help="also build the summarising pipeline per seed")
    args = parser.parse_args()

    import torch

    from autoglm_sdk import build, load_manifest

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    runs: dict[str, list[dict]] = {}
    speeds: list[dict] = []
    summaries: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for label, manifest_path in PIPELINES.items():
                say(f"{label}, seed {seed} ...")
                overrides = [f"pipeline.seed={seed}", "pipeline.baselines=[]", *data_overrides(), *args.overrides]
                output = Path(tmp) / f"{label.split()[0]}-{label.count('text')}-{seed}"
                started = time.perf_counter()
                result = build(load_manifest(manifest_path, overrides), output)
                test = result.report["metrics"]["test"]
                runs.setdefault(label, []).append(
                    {
                        "seed": seed,
                        "build_seconds": time.perf_counter() - started,
                        "accuracy": test["accuracy"],
                        "by_hops": {k: v["accuracy"] for k, v in test["groups"].items()},
                        "exact_match_by_hops": {
                            k: v["exact_match"] for k, v in test["groups"].items() if "exact_match" in v
                        },
                        "chrf": test.get("chrf"),
                        "examples": test.get("examples", [])[:3],
                    }
                )
                if label == "generator (graph)" and seed == args.seeds[0] and not args.skip_speed:
                    from autoglm_sdk import load

                    say("generation speed ...")
                    speeds = speed(output, load(output).data_split("test")[:16])
            if args.summary:
                say(f"summariser, seed {seed} ...")
                started = time.perf_counter()
                manifest = load_manifest(REPO / "examples" / "kinship-summarise.toml", [f"pipeline.seed={seed}"])
                test = build(manifest, Path(tmp) / f"summary-{seed}").report["metrics"]["test"]
                summaries.append(
                    {
                        "seed": seed,
                        "chrf": test["chrf"],
                        "exact_match": test["exact_match"],
                        "token_f1": test["token_f1"],
                        "by_hops": {k: v["exact_match"] for k, v in test["groups"].items()},
                        "build_seconds": time.perf_counter() - started,
                        "examples": test["examples"][:2],
                    }
                )
    summary = {}
    for label, seeds in runs.items():
        hops = list(seeds[0]["by_hops"])
        row = {
            "per_hop": {
                k: {
                    "mean": statistics.mean(s["by_hops"][k] for s in seeds),
                    "std": spread([s["by_hops"][k] for s in seeds]),
                }
                for k in hops
            },
            "mean_7_10": statistics.mean(statistics.mean(s["by_hops"][k] for k in LONG) for s in seeds),
            "build_seconds_mean": statistics.mean(s["build_seconds"] for s in seeds),
        }
        if seeds[0]["exact_match_by_hops"]:
            row["exact_match"] = {k: statistics.mean(s["exact_match_by_hops"][k] for s in seeds) for k in hops}
        summary[label] = row
    classifier, graph, text = (summary[k] for k in PIPELINES)
    hops = list(classifier["per_hop"])
    gaps = {k: graph["per_hop"][k]["mean"] - classifier["per_hop"][k]["mean"] for k in hops}
    checks = {
        "generator_within_2_points_of_classifier_every_k": all(g >= -0.02 for g in gaps.values()),
        "worst_gap_to_classifier": min(gaps.values()),
        "explanation_exact_match_k_le_3": {k: graph["exact_match"][k] for k in hops if int(k) <= 3},
        "graph_minus_text_only_mean_7_10": graph["mean_7_10"] - text["mean_7_10"],
    }
    if summaries:
        checks["summary_chrf_mean"] = statistics.mean(s["chrf"] for s in summaries)
    rate = {(r["batch"], r["kv_cache"]): r["tokens_per_s"] for r in speeds}
    for batch in sorted({b for b, _ in rate}):
        checks[f"kv_cache_speedup_batch_{batch}"] = rate[batch, True] / rate[batch, False]
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "overrides": args.overrides,
    }
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "meta": meta,
        "summary": summary,
        "checks": checks,
        "speed": speeds,
        "summaries": summaries,
        "runs": runs,
    }
    (RESULTS / "generation.json").write_text(json.dumps(payload, indent=2) + "\n")

    lines = [
        "# Generation: classifier, graph-conditioned generator, text-only generator",
        "",
        f"{meta['date']}, seeds {args.seeds}, Python {meta['python']}, {meta['platform']}, "
        f"{meta['torch_threads']} torch threads. Trained on 1-3 hops, tested on 2-10 "
        "hops; mean ± standard deviation over seeds. A generator's answer is the relation word its sentence states.",
        "",
        "| answer accuracy | " + " | ".join(f"k={k}" for k in hops) + " | mean k=7..10 | build s |",
        "|---|" + "---|" * (len(hops) + 2),
    ]
    for label, s in summary.items():
        cells = [f"{s['per_hop'][k]['mean']:.3f} ± {s['per_hop'][k]['std']:.3f}" for k in hops]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {s['mean_7_10']:.3f} | {s['build_seconds_mean']:.0f} |")
    lines += [
        "",
        "| explanation exact match | " + " | ".join(f"k={k}" for k in hops) + " |",
        "|---|" + "---|" * len(hops),
    ]
    for label, s in summary.items():
        if "exact_match" in s:
            lines.append(f"| {label} | " + " | ".join(f"{s['exact_match'][k]:.3f}" for k in hops) + " |")
    lines += [
        "",
        f"- Graph-conditioned generator minus classifier, worst k: {checks['worst_gap_to_classifier']:+.3f} "
        f"(within 2 points at every k: {checks['generator_within_2_points_of_classifier_every_k']}).",
        f"- Graph minus text only, answer accuracy averaged over k=7..10: "
        f"{checks['graph_minus_text_only_mean_7_10']:+.3f}.",
    ]
    if summaries:
        lines += ["", "| summariser (examples/kinship-summarise.toml) | seed | chrF | exact match | token F1 |"]
        lines += ["|---|---|---|---|---|"]
        for r in summaries:
            lines.append(f"| | {r['seed']} | {r['chrf']:.1f} | {r['exact_match']:.3f} | {r['token_f1']:.3f} |")
    if speeds:
        lines += ["", "| generation (graph), 64 new tokens a row | batch | KV cache | new tokens | tokens/s | cached / "
                  "uncached |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in speeds:
            speedup = checks["kv_cache_speedup_batch_" + str(r["batch"])]
            ratio = f"{speedup:.2f}x" if r["kv_cache"] else ""
            lines.append(f"| | {r['batch']} | {r['kv_cache']} | {r['tokens']} | {r['tokens_per_s']:.0f} | {ratio} |")
    lines += ["", "![answer accuracy by hops](generation.png)", ""]
    (RESULTS / "generation.md").write_text("\n".join(lines))

    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=110)
    for label, s in summary.items():
        means = [s["per_hop"][k]["mean"] for k in hops]
        stds = [s["per_hop"][k]["std"] for k in hops]
        ax.errorbar([int(k) for k in hops], means, yerr=stds, marker="o", capsize=3, label=f"{label}: answer")
        if "exact_match" in s:
            ax.plot([int(k) for k in hops], [s["exact_match"][k] for k in hops], linestyle=":", marker=".",
                    label=f"{label}: explanation exact")  # fmt: skip
    ax.axvspan(1.5, 3.5, color="tab:gray", alpha=0.15, label="training hops")
    ax.set_xlabel("hops (stated facts between the query pair)")
    ax.set_ylabel("test accuracy / exact match")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "generation.png")
    print((RESULTS / "generation.md").read_text())


if __name__ == "__main__":
    main()
