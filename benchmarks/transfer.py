"""Transfer: a pipeline pre-trained on one graph, fine-tuned on a related one with 100 labels, against training
from scratch; full fine-tuning, layer-wise learning-rate decay, gradual unfreezing and a frozen reasoner.

    python benchmarks/transfer.py [--seeds 5] [--labels 100] [--out transfer]

Contextual SBM node classification. The source and every target share ``means_seed``, so what the features say
about the classes is the same, but each is its own graph with its own nodes, noise and edges (pipeline seeds
differ). The source has many labels; each target has ``--labels`` labelled nodes for training (as many for
validation). Features are wide (200) and the signal sits in 20 of them, weakly: with few labels, a model trained
from scratch cannot tell the informative directions from noise; a pre-trained one already knows them. All
through the SDK: ``[train] init_from``, ``freeze``, ``layer_decay``, ``unfreeze_every``. Writes
benchmarks/results/OUT.{json,md,png}: test accuracy mean ± std over target seeds per recipe.
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

CLASSES = 4
DATA = {
    "plugin": "csbm",
    "classes": CLASSES,
    "nodes_per_class": 1000,
    "feature_dim": 200,
    "informative": 20,
    "feature_signal": 1.5,
    "homophily": 0.6,
    "degree": 8,
    "means_seed": 7,
}
SOURCE_SEED = 1000
RECIPES: dict[str, dict] = {
    "from scratch": {},
    "fine-tune all": {"init": True},
    "fine-tune, layer decay 0.5": {"init": True, "train": {"layer_decay": 0.5}},
    "gradual unfreezing (every 20 epochs)": {"init": True, "train": {"unfreeze_every": 20}},
    "frozen reasoner (head only)": {"init": True, "train": {"freeze": ["reasoner"]}},
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def manifest(seed: int, data: dict, train: dict, threads: int) -> dict:
    return {
        "pipeline": {"name": "transfer", "seed": seed},
        "data": {**DATA, **data},
        "graph_builder": {"plugin": "given"},
        "reasoner": {"plugin": "gcn", "hidden": 64, "layers": 2, "dropout": 0.5},
        "decoder": {"plugin": "classifier"},
        "train": {"epochs": 200, "patience": 50, "lr": 0.01, **train},
        "backend": {"plugin": "cpu", "threads": threads},
    }


def pretrain(folder: Path, threads: int) -> dict:
    from autoglm_sdk import build, validate_manifest

    spec = manifest(SOURCE_SEED, {"train_per_class": 500, "val_per_class": 100}, {}, threads)
    report = build(validate_manifest(spec), folder, overwrite=True).report
    return {"test_accuracy": report["metrics"]["test"]["accuracy"], "labels": 500 * CLASSES}


def run(recipe: dict, seed: int, source: Path, args: argparse.Namespace, folder: Path) -> dict:
    from autoglm_sdk import build, validate_manifest

    per_class = args.labels // CLASSES
    train = dict(recipe.get("train", {}))
    if recipe.get("init"):
        train["init_from"] = str(source)
    spec = manifest(seed, {"train_per_class": per_class, "val_per_class": per_class}, train, args.threads)
    started = time.perf_counter()
    report = build(validate_manifest(spec), folder, overwrite=True).report
    return {
        "test_accuracy": report["metrics"]["test"]["accuracy"],
        "best_epoch": report["training"]["best_epoch"],
        "seconds": time.perf_counter() - started,
    }


def summary(rows: list[dict]) -> dict:
    values = [r["test_accuracy"] for r in rows]
    return {
        "runs": rows,
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "seconds": statistics.mean(r["seconds"] for r in rows),
    }


def markdown(meta: dict, results: dict) -> str:
    scratch = results["from scratch"]
    lines = [
        "# Transfer to a related graph with few labels",
        "",
        f"csbm, {CLASSES} classes of {DATA['nodes_per_class']} nodes, {DATA['feature_dim']} features "
        f"({DATA['informative']} informative, signal {DATA['feature_signal']}), shared class means "
        f"(means_seed {DATA['means_seed']}). Source: pipeline seed {SOURCE_SEED}, {meta['source']['labels']} labels, "
        f"test accuracy {100 * meta['source']['test_accuracy']:.1f}%. Targets: seeds 0-{meta['seeds'] - 1}, "
        f"{meta['labels']} training labels each. {meta['date']}, {meta['seconds'] / 60:.1f} min.",
        "",
        "| recipe | test accuracy (%) | vs scratch (points) | s per build |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        gain = "" if name == "from scratch" else f"{100 * (r['mean'] - scratch['mean']):+.1f}"
        lines.append(f"| {name} | {100 * r['mean']:.1f} ± {100 * r['std']:.1f} | {gain} | {r['seconds']:.1f} |")
    lines += ["", "![test accuracy by recipe](transfer.png)", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    from autoglm_sdk.plugin import plot_bars

    bars = {n: (100 * results[n]["mean"], 100 * results[n]["std"]) for n in results}
    plot_bars(bars, "target test accuracy (%), mean ± std over target graphs", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--labels", type=int, default=100, help="labelled training nodes of each target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="transfer")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        pretrained = pretrain(source, args.threads)
        say(f"source: test accuracy {pretrained['test_accuracy']:.3f}")
        for name, recipe in RECIPES.items():
            rows = []
            for seed in range(args.seeds):
                rows.append(run(recipe, seed, source, args, Path(tmp) / "target"))
                say(f"{name} seed {seed}: {rows[-1]['test_accuracy']:.3f}")
            results[name] = summary(rows)
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "labels": args.labels,
        "seconds": time.perf_counter() - started,
        "source": pretrained,
        "data": DATA,
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "recipes": results}, indent=2) + "\n")
    plot(results, RESULTS / f"{args.out}.png")
    (RESULTS / f"{args.out}.md").write_text(markdown(meta, results).replace("transfer.png", f"{args.out}.png"))
    print((RESULTS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
