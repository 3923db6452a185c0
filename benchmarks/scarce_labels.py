"""Scarce, imbalanced labels: plain training against class weights, balanced sampling, label smoothing, SMOTE (own
and imbalanced-learn's) and mixup, side by side over seeds.

    python benchmarks/scarce_labels.py [--seeds 5] [--epochs 150] [--out scarce_labels]

Contextual SBM node classification with a 10:1 imbalance (3 classes of 2,000, 632 and 200 nodes) and 5% of every
class labelled for training (100, 32 and 10 nodes; as many again for validation); a two-layer GCN. Every recipe is
a manifest option (``[train] class_weights``, ``sampling``, ``label_smoothing``, ``logit_adjustment``,
``select_on``; ``[objectives.*] plugin = "smote"`` or ``"mixup"``), built through the SDK as ``autoglm build``
would. "plain" is the default training (best epoch on validation accuracy); every other recipe chooses on
macro-F1. Each seed draws another graph and other labelled nodes. Writes benchmarks/results/OUT.{json,md,png}:
test macro-F1 and accuracy, mean ± std over seeds, and the smallest class's recall.
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
RESULTS = HERE / "results"

DATA = {
    "plugin": "csbm",
    "classes": 3,
    "nodes_per_class": 2000,
    "imbalance": 10.0,
    "label_rate": 0.05,
    "feature_dim": 50,
    "informative": 5,
    "feature_signal": 1.5,
    "homophily": 0.7,
    "degree": 10,
}
#: every recipe but "plain" also chooses its best epoch on validation macro-F1 ([train] select_on): with 5%
#: labels and a 10:1 imbalance, validation accuracy prefers epochs that never predict the smallest class
RECIPES: dict[str, dict] = {
    "plain": {"train": {"select_on": "accuracy"}},
    "plain, selected on macro-F1": {},
    "class weights": {"train": {"class_weights": "balanced"}},
    "effective-number weights": {"train": {"class_weights": "effective"}},
    "balanced sampling": {"train": {"sampling": "balanced"}},
    "label smoothing 0.1": {"train": {"label_smoothing": 0.1}},
    "logit adjustment": {"train": {"logit_adjustment": 1.0}},
    "smote (torch)": {"objectives": {"smote": {"plugin": "smote"}}},
    "smote (imbalanced-learn)": {"objectives": {"smote": {"plugin": "smote", "implementation": "imbalanced-learn"}}},
    "mixup": {"objectives": {"mixup": {"plugin": "mixup"}}},
    "class weights + mixup": {"train": {"class_weights": "balanced"}, "objectives": {"mixup": {"plugin": "mixup"}}},
    "logit adjustment + smote (torch)": {
        "train": {"logit_adjustment": 1.0},
        "objectives": {"smote": {"plugin": "smote"}},
    },
    "class weights + smote (torch)": {
        "train": {"class_weights": "balanced"},
        "objectives": {"smote": {"plugin": "smote"}},
    },
    "smote (torch) + label smoothing": {
        "train": {"label_smoothing": 0.1},
        "objectives": {"smote": {"plugin": "smote"}},
    },
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def manifest(recipe: dict, seed: int, epochs: int, threads: int) -> dict:
    train = {"epochs": epochs, "patience": 50, "select_on": "macro_f1", **recipe.get("train", {})}

    out = {
        "pipeline": {"name": "scarce", "seed": seed},
        "data": DATA,
        "graph_builder": {"plugin": "given"},
        "reasoner": {"plugin": "gcn", "hidden": 64, "layers": 2, "dropout": 0.5},
        "decoder": {"plugin": "classifier"},
        "train": train,
        "backend": {"plugin": "cpu", "threads": threads},
    }
    if "objectives" in recipe:
        out["objectives"] = recipe["objectives"]
    return out


def run(recipe: dict, seed: int, args: argparse.Namespace, folder: Path) -> dict:
    from autoglm_sdk import build, validate_manifest

    started = time.perf_counter()
    report = build(validate_manifest(manifest(recipe, seed, args.epochs, args.threads)), folder, overwrite=True).report
    test = report["metrics"]["test"]
    smallest = min(test["per_class"].values(), key=lambda c: c["support"])
    return {
        "macro_f1": test["macro_f1"],
        "accuracy": test["accuracy"],
        "smallest_class_recall": smallest["recall"],
        "seconds": time.perf_counter() - started,
    }


def summary(rows: list[dict]) -> dict:
    out = {"runs": rows}
    for key in ("macro_f1", "accuracy", "smallest_class_recall", "seconds"):
        values = [r[key] for r in rows]
        out[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def markdown(meta: dict, results: dict) -> str:
    plain = results["plain"]["macro_f1"]
    selected = results.get("plain, selected on macro-F1", results["plain"])["macro_f1"]
    best = max((r for r in results if not r.startswith("plain")), key=lambda r: results[r]["macro_f1"]["mean"])
    lines = [
        "# Scarce, imbalanced labels",
        "",
        f"csbm: {DATA['classes']} classes, {DATA['imbalance']:.0f}:1 imbalance, {DATA['label_rate']:.0%} of each "
        f"class labelled; 2-layer GCN, {meta['epochs']} epochs at most; {meta['seeds']} seeds; "
        f"{meta['date']}, {meta['seconds'] / 60:.1f} min.",
        "",
        "| recipe | test macro-F1 (%) | test accuracy (%) | smallest class recall (%) | s per build |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        f1, acc, rec = r["macro_f1"], r["accuracy"], r["smallest_class_recall"]
        lines.append(
            f"| {name} | {100 * f1['mean']:.1f} ± {100 * f1['std']:.1f} | {100 * acc['mean']:.1f} ± "
            f"{100 * acc['std']:.1f} | {100 * rec['mean']:.1f} ± {100 * rec['std']:.1f} | {r['seconds']['mean']:.1f} |"
        )
    gain = 100 * (results[best]["macro_f1"]["mean"] - plain["mean"])
    lines += [
        "",
        f"Best recipe: **{best}**, macro-F1 {100 * plain['mean']:.1f} ± {100 * plain['std']:.1f} → "
        f"{100 * results[best]['macro_f1']['mean']:.1f} ± {100 * results[best]['macro_f1']['std']:.1f} "
        f"({gain:+.1f} points; spread {'narrower' if results[best]['macro_f1']['std'] < plain['std'] else 'wider'}); "
        f"against plain training selected on macro-F1 ({100 * selected['mean']:.1f} ± {100 * selected['std']:.1f}): "
        f"{100 * (results[best]['macro_f1']['mean'] - selected['mean']):+.1f} points.",
        "The seed design reports 68% ± 5.2 → 76% ± 2.1 on its own data.",
        "",
        "![macro-F1 by recipe](scarce_labels.png)",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    from autoglm_sdk.plugin import plot_bars

    bars = {n: (100 * results[n]["macro_f1"]["mean"], 100 * results[n]["macro_f1"]["std"]) for n in results}
    plot_bars(bars, "test macro-F1 (%), mean ± std over seeds", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="names of RECIPES to run")
    parser.add_argument("--out", default="scarce_labels")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["plain", *[r for r in args.recipes if r != "plain"]]:
            rows = []
            for seed in range(args.seeds):
                rows.append(run(RECIPES[name], seed, args, Path(tmp) / "artifact"))
                say(f"{name} seed {seed}: macro-F1 {rows[-1]['macro_f1']:.3f}")
            results[name] = summary(rows)
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "seconds": time.perf_counter() - started,
        "data": DATA,
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "recipes": results}, indent=2) + "\n")
    plot(results, RESULTS / f"{args.out}.png")
    (RESULTS / f"{args.out}.md").write_text(markdown(meta, results).replace("scarce_labels.png", f"{args.out}.png"))
    print((RESULTS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
