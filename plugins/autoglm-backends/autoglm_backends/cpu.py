"""The ``cpu`` backend, and ``auto``: a preference list of backends with an explicit fallback policy."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from autoglm_backends.specs import AutoConfig, CPUConfig
from autoglm_sdk.plugin import AutoGLMError, BackendStatus, BackendUnavailableError, BuildContext, Fallback


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


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

        flags = _cpu_flags()
        native_bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
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
                "threads": self.config.threads or torch.get_num_threads(),
                "memory_bytes": memory,
            },
        )

    def prepare(self, module: Any) -> Any:
        import torch

        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        return module.to("cpu")

    def autocast(self) -> Any:
        if not self.config.bf16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "bf16": self.config.bf16, "threads": self.config.threads}


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
