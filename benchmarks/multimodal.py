"""Digits tri-modal: retrieval and accuracy over seeds, and encoder throughput per modality.

    python benchmarks/multimodal.py [--seeds 0 1 2] [--set train.epochs=6 ...]

Builds examples/digits-trimodal.toml once per seed (test voices unheard in
training) and collects, on the held-out split, recall@1/@5 for every ordered
pair of modalities (a hit is an item of the same digit) and accuracy from each
subset of the modalities, clean and degraded (audio at 10 dB SNR, images with a
3x3 occlusion). Then it times each encoder of the last build, preprocessing
included, at batch 1 and batch 32 on the test samples (samples/s, median of
repeated passes, threads fixed). Writes benchmarks/results/multimodal.{json,md,png}.
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
EXAMPLE = REPO / "examples" / "digits-trimodal.toml"
TARGETS = {"image→audio": 0.97, "audio→image": 0.97, "text→image": 0.97}
ACCURACY_TARGETS = {"image": 0.97, "audio": 0.97, "audio+image": 0.97}


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def throughput(pipeline, samples: list[dict], batch: int, seconds: float = 3.0) -> dict[str, float]:
    """Samples per second through each encoder stage alone (preprocessing included), median of passes."""
    import torch

    out = {}
    with torch.inference_mode():
        for stage, encoder in pipeline.model.stage_objects.items():
            if not stage.startswith("encoders."):
                continue
            chunks = [samples[i : i + batch] for i in range(0, len(samples) - batch + 1, batch)] or [samples[:batch]]
            encoder(chunks[0])  # warm-up
            rates, started = [], time.perf_counter()
            while time.perf_counter() - started < seconds or len(rates) < 3:
                chunk = chunks[len(rates) % len(chunks)]
                t = time.perf_counter()
                encoder(chunk)
                rates.append(len(chunk) / (time.perf_counter() - t))
            out[stage] = statistics.median(rates)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra manifest override")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the throughput measurement")
    args = parser.parse_args()

    import torch

    from autoglm_sdk import build, load, load_manifest

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            print(f"seed {seed} ...", file=sys.stderr, flush=True)
            manifest = load_manifest(EXAMPLE, [f"pipeline.seed={seed}", *args.overrides])
            started = time.perf_counter()
            report = build(manifest, Path(tmp) / f"seed-{seed}").report
            runs.append(
                {
                    "seed": seed,
                    "build_seconds": time.perf_counter() - started,
                    "test_accuracy": report["metrics"]["test"]["accuracy"],
                    "crossmodal": report["crossmodal"],
                }
            )
        torch.set_num_threads(args.threads)
        pipeline = load(Path(tmp) / f"seed-{args.seeds[-1]}")
        test = pipeline.data_split("test")
        speed = {f"batch {b}": throughput(pipeline, test, b) for b in (1, 32)}

    conditions = list(runs[0]["crossmodal"])
    summary: dict = {}
    for condition in conditions:
        acc = {
            k: [r["crossmodal"][condition]["accuracy_by_modalities"][k] for r in runs]
            for k in runs[0]["crossmodal"][condition]["accuracy_by_modalities"]
        }
        ret = {
            k: {m: [r["crossmodal"][condition]["retrieval"][k][m] for r in runs] for m in ("recall@1", "recall@5")}
            for k in runs[0]["crossmodal"][condition]["retrieval"]
        }
        summary[condition] = {
            "accuracy": {k: {"mean": statistics.mean(v), "std": spread(v), "min": min(v)} for k, v in acc.items()},
            "retrieval": {
                k: {m: {"mean": statistics.mean(v), "std": spread(v), "min": min(v)} for m, v in d.items()}
                for k, d in ret.items()
            },
        }
    builds = [r["build_seconds"] for r in runs]
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seeds": args.seeds,
        "overrides": args.overrides,
        "threads": args.threads,
    }
    RESULTS.mkdir(exist_ok=True)
    result = {
        "meta": meta,
        "summary": summary,
        "throughput_samples_per_second": speed,
        "build_seconds": {"mean": statistics.mean(builds), "max": max(builds)},
        "runs": runs,
    }
    (RESULTS / "multimodal.json").write_text(json.dumps(result, indent=2) + "\n")

    clean = summary["clean"]
    lines = [
        "# Digits tri-modal: retrieval, accuracy and encoder throughput",
        "",
        f"{meta['date']}, seeds {args.seeds}, Python {meta['python']}, torch {meta['torch']}, {meta['platform']}. "
        "Held-out test split; its voices are never heard in training. Mean ± standard deviation (min) over seeds.",
        "",
        f"Build time per seed: mean {statistics.mean(builds):.0f} s, max {max(builds):.0f} s.",
        "",
    ]
    for condition in conditions:
        s = summary[condition]
        lines += [f"## {condition}", "", "| modalities given | accuracy |", "|---|---|"]
        for k, v in s["accuracy"].items():
            lines.append(f"| {k} | {v['mean']:.3f} ± {v['std']:.3f} ({v['min']:.3f}) |")
        lines += ["", "| query→items | recall@1 | recall@5 |", "|---|---|---|"]
        for k, d in s["retrieval"].items():
            lines.append(
                f"| {k} | {d['recall@1']['mean']:.3f} ± {d['recall@1']['std']:.3f} ({d['recall@1']['min']:.3f}) "
                f"| {d['recall@5']['mean']:.3f} ± {d['recall@5']['std']:.3f} |"
            )
        lines.append("")
    lines += ["## Targets (clean, worst seed)", "", "| figure | target | worst seed | met |", "|---|---|---|---|"]
    for k, target in TARGETS.items():
        worst = clean["retrieval"][k]["recall@1"]["min"]
        lines.append(f"| recall@1 {k} | ≥ {target} | {worst:.3f} | {'yes' if worst >= target else 'no'} |")
    for k, target in ACCURACY_TARGETS.items():
        worst = clean["accuracy"][k]["min"]
        lines.append(f"| accuracy from {k} | ≥ {target} | {worst:.3f} | {'yes' if worst >= target else 'no'} |")
    lines.append(f"| build time | ≤ 300 s | {max(builds):.0f} s | {'yes' if max(builds) <= 300 else 'no'} |")
    lines += [
        "",
        f"## Encoder throughput ({args.threads} threads, samples/s, preprocessing included)",
        "",
        "| encoder | batch 1 | batch 32 | ratio |",
        "|---|---|---|---|",
    ]
    for stage in speed["batch 1"]:
        one, many = speed["batch 1"][stage], speed["batch 32"][stage]
        lines.append(f"| {stage} | {one:.0f} | {many:.0f} | {many / one:.1f}× |")
    lines += ["", "![retrieval and accuracy](multimodal.png)", ""]
    (RESULTS / "multimodal.md").write_text("\n".join(lines))

    from autoglm_sdk.plugin import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for ax, key, metric in ((axes[0], "retrieval", "recall@1"), (axes[1], "accuracy", None)):
        names = list(clean[key])
        width = 0.8 / len(conditions)
        for i, condition in enumerate(conditions):
            data = summary[condition][key]
            means = [data[n][metric]["mean"] if metric else data[n]["mean"] for n in names]
            stds = [data[n][metric]["std"] if metric else data[n]["std"] for n in names]
            ax.bar([j + i * width for j in range(len(names))], means, width, yerr=stds, capsize=2, label=condition)
        ax.set_xticks(
            [j + width * (len(conditions) - 1) / 2 for j in range(len(names))],
            names,
            rotation=35,
            ha="right",
            fontsize=8,
        )
        ax.set_ylim(0, 1.05)
        ax.set_title("retrieval recall@1 (same digit)" if metric else "accuracy by modalities given")
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "multimodal.png")
    print((RESULTS / "multimodal.md").read_text())


if __name__ == "__main__":
    main()
