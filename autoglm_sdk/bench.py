"""``autoglm bench``: latency and throughput of a built pipeline over batch sizes, and the batch size to use.

Each batch size is timed on the artifact's own backend with the pipeline's
forward pass (encoders' preprocessing, graph building, reasoning, decoding),
under the backend's autocast and without gradients, after warm-up passes. On
an accelerator every pass ends with a device synchronisation, so a timing
covers the work and not only its launch. The recommendation is the smallest
batch size whose throughput is within ``tolerance`` of the best one and whose
p90 latency fits ``max_latency_ms`` when one is given: past that point a
bigger batch only adds latency.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _synchronizer(device: str) -> Callable[[], None]:
    import torch

    kind = str(device).split(":", 1)[0]
    module = getattr(torch, kind, None)
    if kind != "cpu" and module is not None and hasattr(module, "synchronize"):
        return module.synchronize
    return lambda: None


def measure(
    model: Any,
    backend: Any,
    samples: list[dict[str, Any]],
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
    seconds: float = 1.0,
    min_repeats: int = 5,
    warmup: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """One row per batch size: p50 and p90 latency of a batch (ms), throughput (samples/s), passes timed."""
    import torch

    if not samples:
        from autoglm_sdk.errors import InputError

        raise InputError("nothing to benchmark: no samples")
    model.eval()
    sync = _synchronizer(backend.device)
    rows = []
    with torch.inference_mode():
        for size in batch_sizes:
            if progress is not None:
                progress(size)
            pool = (samples * (size // len(samples) + 1))[: max(size, len(samples))]  # repeat a small split
            chunks = [pool[i : i + size] for i in range(0, len(pool) - size + 1, size)]
            for i in range(warmup):
                with backend.autocast():
                    model(chunks[i % len(chunks)])
            sync()
            times: list[float] = []
            started = time.perf_counter()
            while len(times) < min_repeats or time.perf_counter() - started < seconds:
                chunk = chunks[len(times) % len(chunks)]
                t = time.perf_counter()
                with backend.autocast():
                    model(chunk)
                sync()
                times.append(time.perf_counter() - t)
            median = statistics.median(times)
            rows.append(
                {
                    "batch_size": size,
                    "p50_ms": 1000 * median,
                    "p90_ms": 1000 * percentile(times, 90),
                    "samples_per_second": size / median,
                    "passes": len(times),
                }
            )
    return rows


def recommend(
    rows: list[dict[str, float]], tolerance: float = 0.1, max_latency_ms: float | None = None
) -> dict[str, Any]:
    """The smallest batch size within ``tolerance`` of the best throughput, among those that meet the latency
    budget; with none meeting it, the fastest batch, and the reason says so."""
    fitting = [r for r in rows if max_latency_ms is None or r["p90_ms"] <= max_latency_ms]
    if not fitting:
        fastest = min(rows, key=lambda r: r["p90_ms"])
        return {
            "batch_size": fastest["batch_size"],
            "reason": f"no batch size meets p90 <= {max_latency_ms:g} ms; batch {fastest['batch_size']} has the "
            f"lowest latency ({fastest['p90_ms']:.1f} ms)",
        }
    best = max(r["samples_per_second"] for r in fitting)
    chosen = min(
        (r for r in fitting if r["samples_per_second"] >= (1 - tolerance) * best), key=lambda r: r["batch_size"]
    )
    budget = f" and p90 <= {max_latency_ms:g} ms" if max_latency_ms is not None else ""
    return {
        "batch_size": chosen["batch_size"],
        "reason": f"smallest batch within {tolerance:.0%} of the best throughput ({best:.0f} samples/s){budget}: "
        f"{chosen['samples_per_second']:.0f} samples/s at p90 {chosen['p90_ms']:.1f} ms",
    }


def footprint(model: Any) -> dict[str, int]:
    """Bytes of the weights file exactly as the artifact stores it (safetensors, shared tensors once), and the
    number of values it stores (parameters and buffers, an int8 weight included)."""
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        save_model(model, str(path))
        size = path.stat().st_size
    # every stored value counts once, so a weight kept as an int8 buffer is still counted
    stored = {t.untyped_storage().data_ptr(): t.numel() for t in model.state_dict().values()}
    return {"bytes": size, "parameters": sum(stored.values())}


def profile(model: Any, backend: Any, samples: list[dict[str, Any]], seconds: float = 0.5) -> dict[str, float]:
    """What a compression table reports of one model: footprint, and p50/p90 latency at batch 1 and 32."""
    out: dict[str, float] = dict(footprint(model))
    for row in measure(model, backend, samples, (1, 32), seconds=seconds, min_repeats=3, warmup=1):
        b = row["batch_size"]
        out[f"p50_ms_batch{b}"], out[f"p90_ms_batch{b}"] = row["p50_ms"], row["p90_ms"]
    placement = getattr(model, "placement", None)  # a bare module has none
    runners = placement.runners if placement is not None and placement.active else {}
    exported = {key: size for key, runner in runners.items() if (size := runner.deployed_bytes())}
    if exported:  # what such a pipeline deploys: its runners' files (ONNX) in place of those stages' weights
        out["deployed_bytes"] = out["bytes"] + sum(
            size - footprint(model.stage_objects[key])["bytes"] for key, size in exported.items()
        )
    return out
