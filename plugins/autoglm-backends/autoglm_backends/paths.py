"""Execution paths of a built pipeline, timed side by side on this machine: ``autoglm bench --paths``.

Which path is fastest depends on the machine: a CPU with a fast float32 path leaves INT8 less to win, and at
batch 1 a graph runtime wins by removing Python overhead more than by faster kernels. Each path loads the
artifact afresh and runs its stages one way:

* ``as built``: the artifact's own backend (eager PyTorch, or what the manifest chose);
* ``onnxruntime``: every stage ONNX Runtime can take, exported with ``torch.onnx`` (float32);
* ``onnxruntime int8``: the same, through ONNX Runtime's dynamic INT8 quantiser;
* ``onnxruntime fused int8``: transformer stages exported for ONNX Runtime's transformer optimiser first
  (one fused operator per attention layer, which the quantiser turns into QAttention), then quantised;
* ``compile``: every stage through ``torch.compile`` (inductor);
* ``compile int8``: every stage PT2E-quantised by torchao's x86 inductor quantiser, then compiled (fused oneDNN
  int8 linears; needs ``autoglm-backends[pt2e]``).

A path whose predictions on the split differ from the artifact's own on more than ``1 - min_agreement`` of the
samples is not recommended; among the rest, the one with the lowest p50 latency summed over the batch sizes is.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

#: path name -> (backend plugin, quantise with the runner's int8, backend config)
PATHS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "onnxruntime": ("onnxruntime", False, {"on_mismatch": "eager"}),
    "onnxruntime int8": ("onnxruntime", True, {"on_mismatch": "eager"}),
    "onnxruntime fused int8": ("onnxruntime", True, {"on_mismatch": "eager", "fusion": "transformer"}),
    "compile": ("compile", False, {}),
    "compile int8": ("compile", True, {}),
}


def run_stages_on(pipeline: Any, plugin: str, quantize: bool = False, config: dict | None = None) -> list[str]:
    """Give every learned stage of a loaded ``pipeline`` a runner of backend ``plugin`` (INT8 where ``quantize``
    and the runner can); the stages given one. A runner that cannot take its stage runs it eagerly and says why."""
    from autoglm_sdk.plugin import default_registry

    backend = default_registry().spec("backend", plugin).create(config or {})
    model = pipeline.model
    runners, taken = dict(model.runners), []
    for key, stage in model.stage_objects.items():
        if not isinstance(stage, torch.nn.Module) or not any(p.numel() for p in stage.parameters()):
            continue  # nothing learned: nothing for a graph runtime to win
        inputs = {u: model.ports[u] for u in model.dag.inputs.get(key, ()) if u in model.ports}
        runner = backend.wrap_stage(key, stage, inputs, explicit=False)
        if quantize and "int8" in runner.capabilities:
            runner.quantize_int8()
        runners[key] = runner
        taken.append(key)
    model.place(model.placement.main, model.placement.stages, runners)
    model.use_runners(True)
    return taken


def predictions(model: Any, samples: list[dict[str, Any]]) -> Any:
    import torch

    model.eval()
    with torch.inference_mode():
        return torch.cat([model(samples[i : i + 64]).logits.argmax(-1) for i in range(0, len(samples), 64)])


def compare_paths(
    load: Callable[[], Any],
    samples: list[dict[str, Any]],
    sizes: tuple[int, ...],
    seconds: float,
    min_agreement: float = 0.99,
    paths: dict[str, tuple[str, bool, dict[str, Any]]] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every path's p50 latency per batch size, its agreement with the artifact's own predictions, and the
    recommended path with the reason. A path that fails (a backend missing here) is listed with its error."""
    import logging

    from autoglm_sdk.plugin import AutoGLMError, measure

    # dynamo's notes on graph breaks and recompiles are not the user's business here: the table says what ran
    torch._logging.set_logs(dynamo=logging.ERROR, inductor=logging.ERROR)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    rows: dict[str, dict[str, Any]] = {}
    reference = None
    for name, (plugin, quantize, config) in {"as built": ("", False, {}), **(paths or PATHS)}.items():
        progress(name)
        pipeline = load()
        try:
            stages = run_stages_on(pipeline, plugin, quantize, config) if plugin else []
            predicted = predictions(pipeline.model, samples)  # exports or compiles first
            # more warm-up than a plain bench: a compiled stage recompiles for the first shapes it meets
            timed = measure(pipeline.model, pipeline.backend, samples, sizes, seconds, warmup=4)
        except (AutoGLMError, RuntimeError, ImportError) as exc:
            rows[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            continue
        reference = predicted if reference is None else reference
        eager = [k for k, r in pipeline.model.runners.items() if getattr(r, "eager_reason", None)]
        rows[name] = {
            "stages": [s for s in stages if s not in eager],
            "left_eager": eager,
            "agreement": float((predicted == reference).float().mean()),
            "p50_ms": {str(r["batch_size"]): r["p50_ms"] for r in timed},
        }
    return {"paths": rows, **choose(rows, min_agreement)}


def choose(rows: dict[str, dict[str, Any]], min_agreement: float) -> dict[str, Any]:
    """The recommended path and why: the lowest summed p50 among paths that agree enough with the artifact."""
    usable = {
        n: r
        for n, r in rows.items()
        if "error" not in r and r["agreement"] >= min_agreement and (n == "as built" or r["stages"])
    }  # a path that took no stage is the artifact as built again, timed twice
    if not usable:
        return {"recommended": None, "reason": "no path ran (see the errors)"}
    total = {n: sum(r["p50_ms"].values()) for n, r in usable.items()}
    best = min(total, key=total.get)
    built = total.get("as built")
    speed = f"; {built / total[best]:.2f}x as fast as the artifact as built" if built and best != "as built" else ""
    refused = [n for n, r in rows.items() if "error" not in r and r["agreement"] < min_agreement]
    note = f" ({', '.join(refused)} left out: agreement below {min_agreement:.0%})" if refused else ""
    sizes = ", ".join(f"batch {b} {ms:.2f} ms" for b, ms in usable[best]["p50_ms"].items())
    return {
        "recommended": best,
        "reason": f"lowest p50 latency ({sizes}) with {usable[best]['agreement']:.1%} of the artifact's "
        f"predictions{speed}{note}",
    }
