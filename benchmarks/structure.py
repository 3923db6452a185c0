"""Learning the structure: GCN on a noisy, a kNN, a joined and an adaptive graph, and with no graph at all.

    python benchmarks/structure.py [--seeds 3] [--homophily 0.2 0.4 0.6 0.8] [--quick]

Contextual SBM data (examples/csbm-adaptive.toml's data section: 3 classes of 333
nodes, 50 features of which 5 carry the class signal), one build per method,
setting and seed through the SDK (the same code as ``autoglm build``); each seed
draws another graph and other labelled nodes.

* noisy input graph: the true graph at each edge homophily with half its edges
  rewired at random; GCN on the noisy graph, on the noisy graph joined with a
  kNN graph (the static baseline), on a kNN graph alone, and on an ``adaptive``
  graph that starts from the noisy graph;
* no input graph: MLP, GCN on a kNN graph, GCN on an adaptive graph.

Writes benchmarks/results/structure.{json,md,png}: test accuracy mean ± std over
seeds, the adaptive graph's gap to the best static baseline, and the learned
graphs' homophily, density against the target and isolated nodes.
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
EXAMPLE = REPO / "examples" / "csbm-adaptive.toml"

NOISY_METHODS = {
    "gcn on noisy graph": ({"plugin": "given"}, "gcn"),
    "gcn on noisy + knn": ({"plugin": "knn", "combine": "union"}, "gcn"),
    "gcn on knn": ({"plugin": "knn"}, "gcn"),
    "gcn on adaptive": (None, "gcn"),  # the example's adaptive builder
}
NO_GRAPH_METHODS = {
    "mlp": ({"plugin": "given"}, "mlp"),
    "gcn on knn": ({"plugin": "knn"}, "gcn"),
    "gcn on adaptive": (None, "gcn"),
}
STATIC = ("gcn on noisy graph", "gcn on noisy + knn", "gcn on knn")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(example: dict, data: dict, builder: dict | None, reasoner: str, seed: int, folder: Path) -> dict:
    from autoglm_sdk import build, validate_manifest

    manifest = json.loads(json.dumps(example))  # a deep copy
    manifest["pipeline"]["seed"] = seed
    manifest["data"].update(data)
    if builder is not None:
        manifest["graph_builder"] = builder
    manifest["reasoner"]["plugin"] = reasoner
    started = time.perf_counter()
    report = build(validate_manifest(manifest), folder, overwrite=True).report
    row = {"test_accuracy": report["metrics"]["test"]["accuracy"], "seconds": time.perf_counter() - started}
    stage = report["stages"].get("graph_builder", {})
    for key in ("learned_homophily", "graph_homophily", "learned_isolated_nodes", "learned_density", "target_density"):
        if key in stage:
            row[key] = stage[key]
    return row


def summary(rows: list[dict]) -> dict:
    accs = [r["test_accuracy"] for r in rows]
    out = {
        "mean": statistics.mean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "runs": rows,
        "seconds": statistics.mean(r["seconds"] for r in rows),
    }
    if "learned_homophily" in rows[0]:
        out["learned_homophily"] = statistics.mean(r["learned_homophily"] for r in rows)
        out["isolated_nodes_max"] = max(r["learned_isolated_nodes"] for r in rows)
        out["density_ratio"] = [
            min(r["learned_density"] / r["target_density"] for r in rows),
            max(r["learned_density"] / r["target_density"] for r in rows),
        ]
    return out


def measure(args, example: dict) -> dict:
    results: dict = {"noisy": {}, "no_graph": {}}
    total = len(args.homophily) * len(NOISY_METHODS) * args.seeds + len(NO_GRAPH_METHODS) * args.seeds
    done = 0
    with tempfile.TemporaryDirectory() as tmp:
        for h in args.homophily:
            entry = results["noisy"][str(h)] = {}
            for name, (builder, reasoner) in NOISY_METHODS.items():
                rows = []
                for seed in range(args.seeds):
                    rows.append(
                        run(example, {"homophily": h, "rewire": args.rewire}, builder, reasoner, seed, Path(tmp) / "a")
                    )
                    done += 1
                    say(f"[{done}/{total}] noisy h={h} {name} seed {seed}: {rows[-1]['test_accuracy']:.3f}")
                entry[name] = summary(rows)
        for name, (builder, reasoner) in NO_GRAPH_METHODS.items():
            rows = []
            for seed in range(args.seeds):
                rows.append(run(example, {"degree": 0}, builder, reasoner, seed, Path(tmp) / "a"))
                done += 1
                say(f"[{done}/{total}] no graph {name} seed {seed}: {rows[-1]['test_accuracy']:.3f}")
            results["no_graph"][name] = summary(rows)
    for h, entry in results["noisy"].items():
        best = max(STATIC, key=lambda m: entry[m]["mean"])
        gaps = [
            a["test_accuracy"] - b["test_accuracy"]
            for a, b in zip(entry["gcn on adaptive"]["runs"], entry[best]["runs"])
        ]
        entry["adaptive_minus_best_static"] = {
            "best_static": best,
            "mean": statistics.mean(gaps),
            "std": statistics.stdev(gaps) if len(gaps) > 1 else 0.0,
        }
    ng = results["no_graph"]
    gaps = [
        a["test_accuracy"] - b["test_accuracy"] for a, b in zip(ng["gcn on adaptive"]["runs"], ng["gcn on knn"]["runs"])
    ]
    results["no_graph_adaptive_minus_knn"] = {
        "mean": statistics.mean(gaps),
        "std": statistics.stdev(gaps) if len(gaps) > 1 else 0.0,
    }
    return results


def pct(entry: dict) -> str:
    return f"{100 * entry['mean']:.1f} ± {100 * entry['std']:.1f}"


def markdown(meta: dict, results: dict) -> str:
    lines = [
        "# Learning the structure",
        "",
        f"{meta['date']}, torch {meta['torch']}, {meta['seeds']} seeds (each: another graph and other labelled "
        f"nodes), test accuracy % (mean ± std). Data (csbm; homophily and rewiring set per table): "
        f"{ {k: v for k, v in meta['data'].items() if k not in ('homophily', 'rewire')} }. Adaptive builder: "
        f"{meta['adaptive']}.",
        "",
        f"## Noisy input graph (the true graph at edge homophily h, {meta['rewire']:.0%} of its edges rewired "
        "at random)",
        "",
        "| h | " + " | ".join(NOISY_METHODS) + " | adaptive − best static | learned graph homophily |",
        "|---|" + "---|" * (len(NOISY_METHODS) + 2),
    ]
    for h, entry in results["noisy"].items():
        gap = entry["adaptive_minus_best_static"]
        lines.append(
            f"| {h} | "
            + " | ".join(pct(entry[m]) for m in NOISY_METHODS)
            + f" | {100 * gap['mean']:+.1f} ± {100 * gap['std']:.1f} (vs {gap['best_static']}) | "
            f"{entry['gcn on adaptive']['learned_homophily']:.3f} |"
        )
    ng = results["no_graph"]
    gap = results["no_graph_adaptive_minus_knn"]
    lines += [
        "",
        "## No input graph",
        "",
        "| " + " | ".join(NO_GRAPH_METHODS) + " | adaptive − knn |",
        "|" + "---|" * (len(NO_GRAPH_METHODS) + 1),
        "| " + " | ".join(pct(ng[m]) for m in NO_GRAPH_METHODS) + f" | {100 * gap['mean']:+.1f} ± "
        f"{100 * gap['std']:.1f} |",
        "",
    ]
    adaptive_runs = [e["gcn on adaptive"] for e in results["noisy"].values()] + [ng["gcn on adaptive"]]
    isolated = max(a["isolated_nodes_max"] for a in adaptive_runs)
    ratios = [r for a in adaptive_runs for r in a["density_ratio"]]
    seconds = {m: statistics.mean(e[m]["seconds"] for e in results["noisy"].values()) for m in NOISY_METHODS}
    lines += [
        f"Learned graphs: at most {isolated} isolated nodes in any run; learned edge density "
        f"{min(ratios):.2f}× to {max(ratios):.2f}× the configured target (k / (N − 1)).",
        "",
        "Build time per run (s, noisy setting, mean): " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()) + ".",
        "",
        "![accuracy against homophily](structure.png)",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    hs = [float(h) for h in results["noisy"]]
    for method in NOISY_METHODS:
        means = [100 * results["noisy"][str(h)][method]["mean"] for h in hs]
        stds = [100 * results["noisy"][str(h)][method]["std"] for h in hs]
        ax.errorbar(hs, means, yerr=stds, marker="o", capsize=3, label=method)
    ax.set_xlabel("edge homophily of the true graph (half its edges then rewired)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--homophily", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8])
    parser.add_argument("--rewire", type=float, default=0.5, help="share of the true graph's edges rewired")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the markdown from structure.json")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.markdown_only:
        saved = json.loads((RESULTS / "structure.json").read_text())
        (RESULTS / "structure.md").write_text(markdown(saved.pop("meta"), saved))
        return

    import torch

    torch.set_num_threads(args.threads)
    example = tomllib.loads(EXAMPLE.read_text())
    example["backend"] = {"plugin": "cpu", "threads": args.threads}
    started = time.perf_counter()
    results = measure(args, example)
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "rewire": args.rewire,
        "seconds": time.perf_counter() - started,
        "data": {k: v for k, v in example["data"].items() if k != "plugin"},
        "adaptive": {k: v for k, v in example["graph_builder"].items() if k != "plugin"},
    }
    (RESULTS / "structure.json").write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    plot(results, RESULTS / "structure.png")
    (RESULTS / "structure.md").write_text(markdown(meta, results))
    print((RESULTS / "structure.md").read_text())


if __name__ == "__main__":
    main()
