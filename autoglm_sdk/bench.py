"""Measuring a model: latency and throughput over batch sizes, the bytes and values its weights store.

Used by compression steps (each step's before/after profile) and by
autoglm-backends' ``autoglm bench``. Each batch size is timed on the given
backend with the pipeline's forward pass (encoders' preprocessing, graph
building, reasoning, decoding), under the backend's autocast and without
gradients, after warm-up passes. On an accelerator every pass ends with a
device synchronisation, so a timing covers the work and not only its launch.
"""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable


@functools.cache
def cpu_flags() -> set[str]:
    """This CPU's instruction-set flags from /proc/cpuinfo ("avx512_vnni", "amx_int8", ...); empty where the
    file or its ``flags`` line is missing (not Linux, or not x86). Kernels' speed and even exactness hang on
    them (int8 without VNNI saturates)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower
    than float32."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


#: instruction-set flags that decide which kernels run fast (fp32 FMA width, int8 dot products, tile units)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def gemm_rate(size: int = 1024, seconds: float = 0.5, dtype: str = "float32") -> float:
    """Sustained GEMM rate of this process's torch threads, in GFLOP/s (float32) or GOP/s (int8 through
    ``torch._int_mm``): ``size``-square matrices multiplied for about ``seconds``."""
    import torch

    if dtype == "int8":
        a = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        run = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        a, b = torch.randn(size, size), torch.randn(size, size)
        run = lambda: a @ b  # noqa: E731
    run()  # first call: allocation, kernel choice
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        run()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - started) / 1e9


def describe_machine(info: dict[str, Any]) -> str:
    """One line for reports: ``AMD EPYC (avx512f, avx512_vnni), 2 threads, fp32 GEMM 210 GFLOP/s, int8 ...``."""
    int8 = f", int8 GEMM {info['int8_gemm_gops']:,.0f} GOP/s" if info.get("int8_gemm_gops") else ""
    isa = ", ".join(info["isa"]) or "no listed ISA flags"
    return f"{info['cpu']} ({isa}), {info['threads']} threads, fp32 GEMM {info['fp32_gemm_gflops']:,.0f} GFLOP/s{int8}"


def machine() -> dict[str, Any]:
    """What a latency figure reads with: CPU model, its speed-relevant ISA flags, torch threads and the measured
    float32 and int8 GEMM rates (a fast fp32 path shrinks what int8 can win)."""
    import platform

    import torch

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    flags = cpu_flags()
    out: dict[str, Any] = {
        "cpu": model or platform.processor() or platform.machine(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "threads": torch.get_num_threads(),
        "fp32_gemm_gflops": round(gemm_rate(), 1),
    }
    try:
        out["int8_gemm_gops"] = round(gemm_rate(dtype="int8"), 1)
    except RuntimeError:  # no int8 matmul kernel on this build or CPU
        out["int8_gemm_gops"] = None
    return out


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated linearly between order statistics (numpy's default)."""
    import numpy as np

    return float(np.percentile(values, q))


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
    batch_sizes: tuple[int, ...],
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


def time_split(model: Any, samples: list[dict[str, Any]], batch_size: int = 1, passes: int = 20) -> dict[str, float]:
    """Where a batch's time goes: wall time per pass (ms), the time spent inside torch operators (their self CPU
    time under ``torch.profiler``) and the rest: Python, dispatch, tokenisation, the stages' own glue. Faster
    kernels (INT8) shrink only the first part; fewer layers or a graph runtime shrink the second. A stage on a
    runner (ONNX Runtime) counts as "rest": its kernels are not torch operators."""
    import os

    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start/stop lines are not the user's business
    chunk = (samples * batch_size)[:batch_size]
    model.eval()
    with torch.inference_mode():
        model(chunk)  # first pass: caches, exports
        started = time.perf_counter()
        for _ in range(passes):
            model(chunk)
        wall = (time.perf_counter() - started) / passes * 1000
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(passes):
                model(chunk)
    ops = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key.startswith("aten::")) / 1000 / passes
    return {"wall_ms": wall, "torch_ops_ms": min(ops, wall), "other_ms": max(wall - ops, 0.0)}


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
