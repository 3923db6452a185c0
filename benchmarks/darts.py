"""DARTS search against every single-operation model, and what a search epoch costs.

    python benchmarks/darts.py [--seeds 3] [--epochs 100]

On examples/csbm-darts.toml (contextual SBM with its true graph), per seed:
``autoglm search`` (first order, perturbation read-out, the SDK's code) then a
build of the derived manifest, against plain DARTS (argmax read-out, no early
stop, skip uncapped) and a build with each candidate operation alone in every
layer (same width, depth and training). A search epoch is
timed against a fixed-GCN training epoch (build training seconds / epochs run:
both include the per-epoch validation pass). Writes
benchmarks/results/darts.{json,md} and the last seed's weight plot.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
EXAMPLE = REPO / "examples" / "csbm-darts.toml"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def single_op_build(example: dict, op: str, seed: int, folder: Path) -> dict:
    from autoglm_sdk import build, validate_manifest

    manifest = json.loads(json.dumps(example))
    manifest["pipeline"]["seed"] = seed
    layers = manifest["reasoner"]["layers"]
    manifest["reasoner"] = {
        "plugin": "darts",
        "architecture": [op] * layers,
        "hidden": manifest["reasoner"]["hidden"],
        "dropout": manifest["reasoner"]["dropout"],
    }
    report = build(validate_manifest(manifest), folder, overwrite=True).report
    epochs = report["training"]["epochs_run"]
    return {
        "test_accuracy": report["metrics"]["test"]["accuracy"],
        "seconds_per_epoch": report["timings"]["train_seconds"] / max(epochs, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100, help="search epochs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from autoglm_graph.search import run_search

    torch.set_num_threads(args.threads)
    example = tomllib.loads(EXAMPLE.read_text())
    candidates = [op for op in example["reasoner"]["operations"] if op not in ("zero",)]
    singles = [op for op in candidates if op != "skip"]
    results: dict = {
        "searched": [],
        "single": {op: [] for op in singles},
        "search_epoch_seconds": [],
        "gcn_epoch_seconds": [],
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            manifest = Path(tmp) / f"seed{seed}.toml"
            text = EXAMPLE.read_text().replace("seed = 0", f"seed = {seed}", 1)
            manifest.write_text(text)
            out = Path(tmp) / f"search{seed}"
            report = run_search(manifest, out, {"epochs": args.epochs, "retrain": True}, log=say)
            results["searched"].append(
                {
                    "seed": seed,
                    "architecture": report["architecture"],
                    "test_accuracy": report["retrained"]["metrics"]["test"]["accuracy"],
                    "stopped_early": report["stopped_early"],
                    "search_seconds": report["search_seconds"],
                }
            )
            results["search_epoch_seconds"].append(report["seconds_per_epoch"])
            # plain DARTS for comparison: argmax read-out of alpha, no early stop, skip uncapped (zero is still
            # never derived, as in the DARTS paper's derivation)
            plain = run_search(
                manifest,
                Path(tmp) / f"plain{seed}",
                {
                    "epochs": args.epochs,
                    "retrain": True,
                    "readout": "alpha",
                    "collapse_share": 1.01,
                    "curvature_every": 0,
                },
                overrides=[f"reasoner.max_skip={len(report['architecture'])}"],
                log=lambda message: None,
            )
            results.setdefault("plain", []).append(
                {
                    "seed": seed,
                    "architecture": plain["architecture"],
                    "test_accuracy": plain["retrained"]["metrics"]["test"]["accuracy"],
                }
            )
            say(
                f"seed {seed}: plain DARTS derived {plain['architecture']}, test "
                f"{results['plain'][-1]['test_accuracy']:.3f}"
            )
            say(f"seed {seed}: derived {report['architecture']}, test {results['searched'][-1]['test_accuracy']:.3f}")
            RESULTS.mkdir(exist_ok=True)
            shutil.copy(out / "architecture_weights.png", RESULTS / "darts_weights.png")
            for op in singles:
                row = single_op_build(
                    example | {"pipeline": {**example["pipeline"], "seed": seed}}, op, seed, Path(tmp) / "single"
                )
                results["single"][op].append(row["test_accuracy"])
                if op == "gcn":
                    results["gcn_epoch_seconds"].append(row["seconds_per_epoch"])
                say(f"seed {seed}: {op} alone, test {row['test_accuracy']:.3f}")
    searched = [r["test_accuracy"] for r in results["searched"]]
    means = {op: statistics.mean(v) for op, v in results["single"].items()}
    best = max(means, key=means.get)
    k = len(example["reasoner"]["operations"])
    cost = statistics.mean(results["search_epoch_seconds"]) / statistics.mean(results["gcn_epoch_seconds"])
    results["summary"] = {
        "searched_mean": statistics.mean(searched),
        "searched_std": statistics.stdev(searched) if len(searched) > 1 else 0.0,
        "best_single": best,
        "best_single_mean": means[best],
        "gap_points": 100 * (statistics.mean(searched) - means[best]),
        "search_epoch_over_gcn_epoch": cost,
        "candidates_per_layer": k,
        "bound": 2 * k,
    }
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "search_epochs": args.epochs,
        "seconds": time.perf_counter() - started,
        "manifest": str(EXAMPLE.relative_to(REPO)),
    }
    (RESULTS / "darts.json").write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    (RESULTS / "darts.md").write_text(markdown(meta, results))
    print((RESULTS / "darts.md").read_text())


def markdown(meta: dict, results: dict) -> str:
    s = results["summary"]

    def spread(values: list[float]) -> str:
        return f"{100 * statistics.mean(values):.1f} ± {100 * (statistics.stdev(values) if len(values) > 1 else 0):.1f}"

    lines = [
        "# DARTS against single operations",
        "",
        f"{meta['date']}, torch {meta['torch']}, `{meta['manifest']}`, {meta['seeds']} seeds, "
        f"{meta['search_epochs']} search epochs (first order, perturbation read-out). Test accuracy %, "
        "mean ± std over seeds.",
        "",
        "| model | test accuracy |",
        "|---|---|",
        f"| searched, then retrained | {spread([r['test_accuracy'] for r in results['searched']])} |",
    ]
    if results.get("plain"):
        lines.append(
            f"| plain DARTS (argmax of alpha, no early stop, skip uncapped), then retrained | "
            f"{spread([r['test_accuracy'] for r in results['plain']])} |"
        )
    for op, values in results["single"].items():
        lines.append(f"| {op} in every layer | {spread(values)} |")
    lines += [
        "",
        "Derived architectures: "
        + "; ".join(
            f"seed {r['seed']}: {' → '.join(r['architecture'])}"
            + (f" (stopped early, {r['stopped_early']})" if r["stopped_early"] else "")
            for r in results["searched"]
        ),
        "",
        "Plain DARTS derived: "
        + "; ".join(f"seed {r['seed']}: {' → '.join(r['architecture'])}" for r in results.get("plain", [])),
        "",
        f"Searched minus the best single operation ({s['best_single']}): {s['gap_points']:+.1f} points.",
        "",
        f"One search epoch costs {s['search_epoch_over_gcn_epoch']:.1f}× a fixed-GCN training epoch "
        f"({statistics.mean(results['search_epoch_seconds']):.3f} s against "
        f"{statistics.mean(results['gcn_epoch_seconds']):.3f} s); the bound is 2K = {s['bound']} for "
        f"K = {s['candidates_per_layer']} candidates per layer.",
        "",
        "![architecture weights, last seed](darts_weights.png)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
