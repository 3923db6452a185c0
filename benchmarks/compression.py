"""Compression side by side: FP32, INT8 and BF16 on trained pipelines and on a BERT-base-sized encoder.

    python benchmarks/compression.py [--threads 2] [--epochs N]

In one process, with fixed threads:

* the kinship graph pipeline (examples/kinship.toml) and the text-only BERT
  baseline (examples/kinship-text-only.toml) are built once each; each
  compressor is then applied to a fresh load of the artifact, and the table
  gives weights on disk, parameters, p50/p90 latency at batch 1 and 32 on the
  validation split, and validation accuracy;
* a BERT-base-sized text encoder (768 wide, 12 layers, random weights, a
  tokenizer trained on the kinship stories) is compared FP32 against INT8 on
  latency and on agreement: the share of stories for which a fixed random
  linear head over the pooled vector picks the same class.

Writes benchmarks/results/compression.{json,md}. Structured pruning and the
onnxruntime backend are not part of it yet.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PIPELINES = {"kinship graph (path-composer)": REPO / "examples" / "kinship.toml",
             "kinship text-only (small BERT)": REPO / "examples" / "kinship-text-only.toml"}
VARIANTS = {"fp32": None, "int8": {"plugin": "int8"}, "bf16": {"plugin": "bf16"}}


def compressed(path: Path, section: dict | None):
    from autoglm_sdk import load
    from autoglm_sdk.protocols import BuildContext
    from autoglm_sdk.registry import default_registry

    pipeline = load(path)
    if section is not None:
        spec = default_registry().spec("compressor", section["plugin"])
        ctx = BuildContext(task=pipeline.task, seed=0, device=pipeline.backend.device, stage="compress[0]")
        compressor = spec.create({k: v for k, v in section.items() if k != "plugin"}, ctx)
        pipeline.model = compressor.apply(pipeline.model, ctx)
    return pipeline


def pipeline_rows(args) -> dict:
    from autoglm_sdk.bench import profile
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import load_manifest
    from autoglm_sdk.trainer import evaluate

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, manifest_path in PIPELINES.items():
            print(f"building {label} ...", file=sys.stderr, flush=True)
            overrides = ["pipeline.baselines=[]"] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
            path = Path(tmp) / label.split()[1]
            build(load_manifest(manifest_path, overrides), path)
            rows = {}
            for name, section in VARIANTS.items():
                pipeline = compressed(path, section)
                val = pipeline.data_split("val")
                row = profile(pipeline.model, pipeline.backend, val, seconds=args.seconds)
                row["val_accuracy"] = evaluate(pipeline.model, val, pipeline.task, 64, pipeline.backend.autocast)["accuracy"]
                rows[name] = row
                print(f"  {name}: {row['bytes']} bytes, p50 b1 {row['p50_ms_batch1']:.1f} ms, "
                      f"b32 {row['p50_ms_batch32']:.1f} ms, val {row['val_accuracy']:.3f}", file=sys.stderr, flush=True)
            out[label] = rows
    return out


def bert_base_rows(args) -> dict:
    import torch

    from autoglm_compress.int8 import Int8Dynamic
    from autoglm_compress.specs import Int8Config
    from autoglm_graph.kinship import KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_sdk.bench import footprint
    from autoglm_sdk.protocols import BuildContext, Port
    from autoglm_text.bert import BertEncoder
    from autoglm_text.specs import BertEncoderConfig

    print("BERT-base-sized encoder ...", file=sys.stderr, flush=True)
    data = KinshipDataSource(KinshipConfig(), BuildContext(seed=0)).load()
    config = BertEncoderConfig(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
                               max_length=args.max_length)
    ctx = BuildContext(inputs={"data": Port("samples", frozenset({"text"}))}, seed=0, stage="encoders.text")
    encoder = BertEncoder(config, ctx)
    encoder.fit(data)
    encoder.eval()
    stories = data.splits["test"][: args.stories]
    head = torch.nn.Linear(768, data.task.num_classes)

    class Stage(torch.nn.Module):  # the shape a compressor expects: a pipeline with stage_objects
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.stage_objects = {"encoders.text": encoder}

    def run(batch):
        with torch.inference_mode():
            return head(encoder(batch).pooled).argmax(-1)

    def timed(batch_size: int, passes: int) -> tuple[float, float]:
        batch = stories[:batch_size]
        run(batch)
        times = []
        for _ in range(passes):
            t = time.perf_counter()
            run(batch)
            times.append(time.perf_counter() - t)
        times.sort()
        return 1000 * times[len(times) // 2], 1000 * times[min(len(times) - 1, int(0.9 * len(times)))]

    result = {"parameters": sum(p.numel() for p in encoder.parameters()), "max_length": args.max_length,
              "stories": len(stories)}
    reference = torch.cat([run(stories[i:i + 32]) for i in range(0, len(stories), 32)])
    result["fp32"] = {"bytes": footprint(encoder)["bytes"], "batch1": timed(1, 10), "batch32": timed(32, 3)}
    model = Stage()
    Int8Dynamic(Int8Config()).apply(model, None)
    quantized = torch.cat([run(stories[i:i + 32]) for i in range(0, len(stories), 32)])
    result["int8"] = {"bytes": footprint(encoder)["bytes"], "batch1": timed(1, 10), "batch32": timed(32, 3),
                      "agreement": float((quantized == reference).float().mean())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=0, help="override train.epochs of both pipelines (0: theirs)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per batch size")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per story for the BERT-base encoder")
    parser.add_argument("--stories", type=int, default=256, help="test stories for the BERT-base agreement")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    pipelines = pipeline_rows(args)
    bert = bert_base_rows(args)
    meta = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compression.json").write_text(json.dumps({"meta": meta, "pipelines": pipelines, "bert_base": bert},
                                                         indent=2) + "\n")
    lines = ["# Compression side by side", "",
             f"{meta['date']}, torch {meta['torch']}, {args.threads} threads, {meta['platform']}. Latency is the median "
             "(p50) and 90th percentile of the pipeline's forward pass on the validation split; ratios are against "
             "FP32 in the same run.", ""]
    for label, rows in pipelines.items():
        base = rows["fp32"]
        lines += [f"## {label}", "", "| variant | bytes | × | params | p50 b1 ms | × | p90 b1 ms | p50 b32 ms | × | "
                  "p90 b32 ms | val acc |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['bytes']:,} | {r['bytes'] / base['bytes']:.2f} | {r['parameters']:,} | "
                         f"{r['p50_ms_batch1']:.2f} | {r['p50_ms_batch1'] / base['p50_ms_batch1']:.2f} | "
                         f"{r['p90_ms_batch1']:.2f} | {r['p50_ms_batch32']:.2f} | "
                         f"{r['p50_ms_batch32'] / base['p50_ms_batch32']:.2f} | {r['p90_ms_batch32']:.2f} | "
                         f"{r['val_accuracy']:.3f} |")
        lines.append("")
    f, q = bert["fp32"], bert["int8"]
    lines += [f"## BERT-base-sized encoder ({bert['parameters']:,} parameters, random weights, "
              f"{bert['max_length']} tokens max, {bert['stories']} stories)", "",
              "| variant | bytes | p50 b1 ms | p90 b1 ms | p50 b32 ms | p90 b32 ms | same class as FP32 |",
              "|---|---|---|---|---|---|---|",
              f"| fp32 | {f['bytes']:,} | {f['batch1'][0]:.1f} | {f['batch1'][1]:.1f} | {f['batch32'][0]:.0f} | "
              f"{f['batch32'][1]:.0f} | 1.000 |",
              f"| int8 | {q['bytes']:,} | {q['batch1'][0]:.1f} | {q['batch1'][1]:.1f} | {q['batch32'][0]:.0f} | "
              f"{q['batch32'][1]:.0f} | {q['agreement']:.3f} |", "",
              f"INT8 / FP32: size {q['bytes'] / f['bytes']:.2f}×, latency {q['batch1'][0] / f['batch1'][0]:.2f}× at "
              f"batch 1 and {q['batch32'][0] / f['batch32'][0]:.2f}× at batch 32.", ""]
    (RESULTS / "compression.md").write_text("\n".join(lines))
    print((RESULTS / "compression.md").read_text())


if __name__ == "__main__":
    main()
