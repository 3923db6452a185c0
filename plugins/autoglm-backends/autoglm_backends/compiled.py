"""``compile``: stages run through ``torch.compile`` at inference time.

Each stage's tensor part (an encoder after its own ``preprocess``) is
compiled the first time it runs with final weights; that first call's time,
less an eager call on the same batch, is the stage's compile time in the
report. A later input shape may compile again (torch marks the dimension
dynamic then); those calls are timed too. Training stays eager.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
from typing import Any

import torch

from autoglm_backends.runners import StageRunner
from autoglm_backends.specs import CompileConfig
from autoglm_sdk.plugin import BackendStatus, BackendUnavailableError, BuildContext


class CompileBackend:
    name = "compile"
    kind = "backend"
    Config = CompileConfig

    def __init__(self, config: CompileConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    @property
    def device(self) -> str:
        return "cpu"

    def probe(self) -> BackendStatus:
        if not hasattr(torch, "compile"):
            return BackendStatus(
                self.name, True, False, False, reason=f"torch {torch.__version__} has no torch.compile"
            )
        if self.config.compiler == "inductor":
            if (
                importlib.util.find_spec("triton") is None
                and shutil.which(os.environ.get("CXX", "g++")) is None
                and shutil.which("c++") is None
                and shutil.which("clang++") is None
            ):
                return BackendStatus(
                    self.name,
                    True,
                    False,
                    False,
                    reason="inductor needs a C++ compiler on the CPU and none was found "
                    '(apt-get install g++, or set compiler = "aot_eager")',
                )
        return BackendStatus(
            self.name,
            True,
            True,
            True,
            device=self.device,
            capabilities={
                "torch": torch.__version__,
                "compiler": self.config.compiler,
                "mode": self.config.mode,
                "dtypes": ["float32", "bfloat16"],
                "threads": self.config.threads or torch.get_num_threads(),
                "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                if hasattr(os, "sysconf")
                else None,
            },
        )

    def prepare(self, module: Any) -> Any:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        return module.to("cpu")

    def autocast(self) -> Any:
        return contextlib.nullcontext()

    def wrap_stage(self, key: str, stage: Any, inputs: dict[str, Any], explicit: bool) -> "CompiledStage":
        # graphs compile too (PyG layers are torch.compile-ready), so only non-modules run eagerly
        reason = None if isinstance(stage, torch.nn.Module) else f"`{key}` is not a torch module"
        if reason and explicit:
            raise BackendUnavailableError(
                f"{key}.backend: {reason}, so torch.compile cannot run it", hint=f"remove {key}'s backend"
            )
        return CompiledStage(self, key, stage, explicit, reason)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "compiler": self.config.compiler,
            "mode": self.config.mode,
            "dynamic": self.config.dynamic,
        }


class CompiledStage(StageRunner):
    backend = "compile"

    def __init__(self, owner: CompileBackend, key: str, stage: Any, explicit: bool, eager_reason: str | None) -> None:
        super().__init__(key, stage, explicit, eager_reason)
        self.owner = owner
        self.compiled: Any = None
        self.compile_seconds: float | None = None
        self.shapes_seen: set[tuple] = set()

    def invalidate(self) -> None:
        self.compiled = None
        self.shapes_seen = set()
        torch._dynamo.reset()  # drop graphs that captured the old weights' structure

    def run(self, batch: Any) -> Any:
        if self.compiled is None:
            config = self.owner.config
            self.compiled = torch.compile(
                self.stage,
                mode=None if config.mode == "default" else config.mode,
                backend=config.compiler,
                dynamic=config.dynamic,
            )
        shape = _shape_key(batch)
        # the first shape compiles, the second compiles again with its changing dimensions dynamic; after
        # that torch reuses the dynamic graph, so only those two calls are timed against an eager call
        if shape in self.shapes_seen or len(self.shapes_seen) >= 2:
            return self.compiled(batch)
        self.shapes_seen.add(shape)
        t = time.perf_counter()
        try:
            out = self.compiled(batch)
        except Exception as exc:  # dynamo and inductor raise many types; all mean "cannot compile this stage"
            self._give_up(f"torch.compile failed: {(str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]}")
            return self.stage(batch)
        first = time.perf_counter() - t
        t = time.perf_counter()
        self.stage(batch)
        eager = time.perf_counter() - t
        self.compile_seconds = (self.compile_seconds or 0.0) + max(first - eager, 0.0)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 3),
            "input_shapes_timed": len(self.shapes_seen),
        }


def _shape_key(value: Any) -> tuple:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if hasattr(value, "__dataclass_fields__"):
        return tuple(_shape_key(getattr(value, f)) for f in value.__dataclass_fields__)
    if isinstance(value, dict):
        return tuple((k, _shape_key(v)) for k, v in value.items())
    if hasattr(value, "num_nodes") and hasattr(value, "edge_index"):
        return ("graph", int(value.num_nodes), int(value.edge_index.size(1)))
    if isinstance(value, (list, tuple)):
        return tuple(_shape_key(v) for v in value)
    return ()
