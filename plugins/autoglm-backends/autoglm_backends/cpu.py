"""The ``cpu`` backend, and ``auto``: a preference list of backends with an explicit fallback policy."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from autoglm_backends.specs import AutoConfig, CPUConfig
from autoglm_sdk.plugin import (
    AutoGLMError,
    AutoGLMWarning,
    BackendStatus,
    BackendUnavailableError,
    BuildContext,
    Fallback,
    cpu_bf16,
)


@functools.cache
def pick_threads(configured: int | None) -> tuple[int, str]:
    """torch's intra-op thread count for this process, and why: ``backend.threads``, else ``OMP_NUM_THREADS``,
    else every core this process may use, or one thread when other work already fills them (torch's default
    of one thread per core then fights that work: a batch of tiny graphs ran 200 times slower so). Chosen once
    per process, so that two builds in one process compute alike."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if configured:
        return configured, "backend.threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= cores:
        warnings.warn(
            f"this machine is oversubscribed (1-minute load {load:.1f} on {cores} cores): torch runs on 1 thread; "
            "timings will be noisy (set backend.threads or OMP_NUM_THREADS to choose)",
            AutoGLMWarning,
            stacklevel=2,
        )
        return 1, f"load {load:.1f} on {cores} cores: oversubscribed"
    return cores, f"{cores} cores, load {load:.1f}"


class CPUBackend:
    name = "cpu"
    kind = "backend"
    Config = CPUConfig

    def __init__(self, config: CPUConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    @property
    def device(self) -> str:
        return "cpu"

    def probe(self) -> BackendStatus:
        if importlib.util.find_spec("torch") is None:
            return BackendStatus(self.name, False, False, False, reason="torch is not installed")
        import torch

        native_bf16 = cpu_bf16()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
        return BackendStatus(
            self.name,
            installed=True,
            built=True,
            available=True,
            device="cpu",
            capabilities={
                "dtypes": ["float32", "float64", "bfloat16"],
                "bf16_native": native_bf16,
                "isa": torch.backends.cpu.get_cpu_capability(),
                "threads": pick_threads(self.config.threads)[0],
                "threads_reason": pick_threads(self.config.threads)[1],
                "memory_bytes": memory,
            },
        )

    def prepare(self, module: Any) -> Any:
        import torch

        torch.set_num_threads(pick_threads(self.config.threads)[0])
        return module.to("cpu")

    def autocast(self) -> Any:
        if not self.config.bf16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def describe(self) -> dict[str, Any]:
        threads, reason = pick_threads(self.config.threads)
        return {
            "backend": self.name,
            "device": self.device,
            "bf16": self.config.bf16,
            "threads": threads,
            "why": reason,
        }


@dataclass
class BackendChoice:
    backend: Any
    status: BackendStatus
    fallbacks: list[Fallback] = field(default_factory=list)


class AutoBackend:
    """Tries ``prefer`` in order; what it skipped and why is in ``fallbacks``."""

    name = "auto"
    kind = "backend"
    Config = AutoConfig

    def __init__(self, config: AutoConfig, ctx: BuildContext | None = None, registry: Any = None) -> None:
        from autoglm_sdk.plugin import default_registry

        self.config = config
        registry = registry or default_registry()
        fallbacks: list[Fallback] = []
        for wanted in config.prefer:
            if wanted == "auto":
                fallbacks.append(Fallback(wanted, "`auto` cannot prefer itself"))
                continue
            try:
                spec = registry.spec("backend", wanted)
                candidate = spec.create({}, ctx)
                status = candidate.probe()
            except AutoGLMError as exc:
                fallbacks.append(Fallback(wanted, exc.message))
                continue
            if not status.usable:
                fallbacks.append(Fallback(wanted, status.reason or "not available"))
                continue
            self.chosen = BackendChoice(candidate, status, fallbacks)
            break
        else:
            tried = "; ".join(f"{f.wanted}: {f.reason}" for f in fallbacks)
            raise BackendUnavailableError(
                f"backend.prefer: no usable backend ({tried})", hint='add "cpu" to backend.prefer'
            )
        if fallbacks:
            summary = "; ".join(f"{f.wanted}: {f.reason}" for f in fallbacks)
            if config.fallback == "strict":
                raise BackendUnavailableError(
                    f'backend.prefer: `{fallbacks[0].wanted}` is unusable and backend.fallback = "strict" ({summary})',
                    hint='set backend.fallback = "warn" to fall back to the next preference',
                )
            if config.fallback == "warn":
                warnings.warn(f"backend: using `{self.chosen.status.name}` instead of {summary}", stacklevel=2)

    @property
    def fallbacks(self) -> list[Fallback]:
        return self.chosen.fallbacks

    @property
    def device(self) -> str:
        return self.chosen.backend.device

    def probe(self) -> BackendStatus:
        return self.chosen.status

    def prepare(self, module: Any) -> Any:
        return self.chosen.backend.prepare(module)

    def autocast(self) -> Any:
        return self.chosen.backend.autocast()

    def describe(self) -> dict[str, Any]:
        inner = self.chosen.backend
        out = inner.describe() if hasattr(inner, "describe") else {"backend": self.chosen.status.name}
        out["chosen_by"] = "auto"
        return out
