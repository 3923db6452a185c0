"""Kinship: the graph pipeline against the text-only baseline, several seeds, one run.

    python benchmarks/kinship.py [--seeds 0 1 2] [--set train.epochs=10 ...] [--variants rgcn gat ...]

Both pipelines train on 2-3-hop stories with the same data, seed and epoch
budget as their manifests declare, and are tested on 2..10 hops. Writes
benchmarks/results/kinship.{json,md,png}: accuracy per hop (mean and standard
deviation over seeds), the mean over 7..10 hops, and build times. ``--variants``
adds the graph pipeline with other reasoners in place of path-composer (10
rounds, one shared convolution, residuals, layer norm), and ``--only-graph``
skips the text-only baseline; results then go to ``kinship-variants.*``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PIPELINES = {
    "graph (text-relations + path-composer)": REPO / "examples" / "kinship.toml",
    "text-only (small BERT)": REPO / "examples" / "kinship-text-only.toml",
}
LONG = [str(k) for k in range(7, 11)]


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra manifest override for both")
    parser.add_argument("--variants", nargs="*", default=[], help="other reasoners to try in the graph pipeline")
    parser.add_argument("--only-graph", action="store_true", help="skip the text-only baseline")
    args = parser.parse_args()
    pipelines = {label: (path, []) for label, path in PIPELINES.items()}
    if args.only_graph:
        pipelines.pop("text-only (small BERT)")
    for name in args.variants:
        reasoner = (
            f'reasoner={{plugin="{name}",hidden=64,layers=10,share_weights=true,residual=true,'
            'norm="layer",dropout=0.0}'
        )
        pipelines[f"graph with {name}"] = (
            PIPELINES["graph (text-relations + path-composer)"],
            [reasoner, "train.lr=0.005"],
        )
    stem = "kinship-variants" if args.variants or args.only_graph else "kinship"

    from autoglm_sdk import build, load_manifest

    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (manifest_path, extra) in pipelines.items():
            for seed in args.seeds:
                print(f"{label}, seed {seed} ...", file=sys.stderr, flush=True)
                overrides = [f"pipeline.seed={seed}", "pipeline.baselines=[]", *extra, *args.overrides]
                manifest = load_manifest(manifest_path, overrides)
                started = time.perf_counter()
                result = build(manifest, Path(tmp) / f"run-{len(runs)}-{seed}")
                test = result.report["metrics"]["test"]
                runs.setdefault(label, []).append(
                    {
                        "seed": seed,
                        "build_seconds": time.perf_counter() - started,
                        "epochs_run": result.report["training"]["epochs_run"],
                        "accuracy": test["accuracy"],
                        "by_hops": {k: v["accuracy"] for k, v in test["groups"].items()},
                    }
                )
    summary = {}
    for label, seeds in runs.items():
        hops = list(seeds[0]["by_hops"])
        per_hop = {
            k: {
                "mean": statistics.mean(s["by_hops"][k] for s in seeds),
                "std": spread([s["by_hops"][k] for s in seeds]),
            }
            for k in hops
        }
        long = [statistics.mean(s["by_hops"][k] for k in LONG) for s in seeds]
        summary[label] = {
            "per_hop": per_hop,
            "mean_7_10": statistics.mean(long),
            "std_7_10": spread(long),
            "build_seconds_mean": statistics.mean(s["build_seconds"] for s in seeds),
        }
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "overrides": args.overrides,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n")

    hops = list(next(iter(summary.values()))["per_hop"])
    lines = [
        "# Kinship: graph pipeline against text-only baseline",
        "",
        f"{meta['date']}, seeds {args.seeds}, Python {meta['python']}, {meta['platform']}. "
        "Trained on 2-3 hops; test accuracy, mean ± standard deviation over seeds.",
        "",
        "| pipeline | " + " | ".join(f"k={k}" for k in hops) + " | mean k=7..10 | build s |",
        "|---|" + "---|" * (len(hops) + 2),
    ]
    for label, s in summary.items():
        cells = [f"{s['per_hop'][k]['mean']:.3f} ± {s['per_hop'][k]['std']:.3f}" for k in hops]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {s['mean_7_10']:.3f} ± {s['std_7_10']:.3f} | {s['build_seconds_mean']:.0f} |"
        )
    if "text-only (small BERT)" in summary:
        graph, text = summary["graph (text-relations + path-composer)"], summary["text-only (small BERT)"]
        lines += ["", f"Graph minus text-only, mean over k=7..10: {graph['mean_7_10'] - text['mean_7_10']:+.3f}."]
    lines += ["", f"![accuracy by hops]({stem}.png)", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))

    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=110)
    for label, s in summary.items():
        means = [s["per_hop"][k]["mean"] for k in hops]
        stds = [s["per_hop"][k]["std"] for k in hops]
        ax.errorbar([int(k) for k in hops], means, yerr=stds, marker="o", capsize=3, label=label)
    ax.axvspan(1.5, 3.5, color="tab:gray", alpha=0.15, label="training hops")
    ax.set_xlabel("hops (stated facts between the query pair)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png")
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
