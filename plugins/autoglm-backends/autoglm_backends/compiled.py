"""``compile``: stages run through ``torch.compile`` at inference time.

Each stage's tensor part (an encoder after its own ``preprocess``) is
compiled the first time it runs with final weights; that first call's time,
less an eager call on the same batch, is the stage's compile time in the
report. A later input shape may compile again (torch marks the dimension
dynamic then); those calls are timed too. Training stays eager.

INT8 (``capabilities`` has ``"int8"`` with the inductor compiler): the
``int8`` compressor calls ``quantize_int8(skip)`` instead of swapping PyTorch
layers, and the stage's next (first) run takes the PT2E route: the stage's
tensor part is exported with ``torch.export`` (batch and lengths dynamic),
annotated by torchao's ``X86InductorQuantizer`` (per-channel int8 weights,
dynamic per-tensor uint8 activations, so no calibration set; the layers named
by ``skip`` stay float32), converted to quantise/dequantise ops and compiled by
inductor with ``freezing`` on. Freezing constant-folds the weights, and
torchao's x86 passes then match each Q/DQ-linear pattern, prepack its weight
for oneDNN and lower it to one fused VNNI int8 GEMM (``onednn.qlinear_pointwise``)
with the GELU or the residual add after it fused as a post-op; attention,
softmax and LayerNorm stay float32. Eager INT8 (fbgemm) keeps each linear a
separate call with its own quantise step; here the whole encoder is one C++
graph, which also removes most of the per-op overhead at batch 1. The PyTorch
weights stay float32 (they are what gets exported). Straight after compiling,
the int8 output is compared with eager PyTorch on the same batch and the
largest difference is reported. This needs torchao
(``pip install 'autoglm-backends[pt2e]'``), imported only then: importing its
x86 quantiser registers inductor passes for the whole process.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import logging
import os
import shutil
import time
import warnings
from typing import Any

import torch

from autoglm_backends.runners import FlatStage, StageRunner
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
        self.quantize = False
        self.skip: list[str] = []  # layer-name globs left in float32 by the quantiser
        self.layers_left_in_float32 = 0
        self.int8_max_abs_diff: float | None = None

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        usable = not self.eager_reason and self.owner.config.compiler == "inductor"
        return frozenset({"int8"}) if usable else frozenset()

    def quantize_int8(self, skip: list[str] | tuple[str, ...] = ()) -> None:
        """Quantise this stage to INT8 with PT2E and torchao's x86 inductor quantiser at its next run, leaving
        the layers named by the ``skip`` globs (e.g. ``bert.encoder.layer.0.*``) in float32."""
        if importlib.util.find_spec("torchao") is None:
            reason = f"INT8 on {self.backend} needs torchao: pip install '{PT2E_EXTRA}'"
            if self.explicit:
                raise BackendUnavailableError(f"{self.key}.backend: {reason}", hint=f"pip install '{PT2E_EXTRA}'")
            self._give_up(reason)
            return
        self.quantize = True
        self.skip = list(skip)
        self.compile_seconds = self.prepare_seconds = None  # report the int8 graph's time, not a float one's
        self.invalidate()

    def invalidate(self) -> None:
        self.compiled = None
        self.shapes_seen = set()
        torch._dynamo.reset()  # drop graphs that captured the old weights' structure

    def run(self, batch: Any) -> Any:
        if self.quantize:
            return self.run_flat(batch, lambda: self.compiled is not None, self._quantize, self._run_int8)
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
            self._give_up(f"torch.compile failed: {_first_line(exc)}")
            return self.stage(batch)
        first = time.perf_counter() - t
        t = time.perf_counter()
        self.stage(batch)
        eager = time.perf_counter() - t
        self.compile_seconds = (self.compile_seconds or 0.0) + max(first - eager, 0.0)
        return out

    def _run_int8(self, flat: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch._inductor.config as inductor_config

        # a call that compiles (a new shape) must see freezing on, or its int8 linears are not prepacked and
        # fused; on every call, since dynamo decides inside the call (the patch costs ~20 us)
        with torch.no_grad(), inductor_config.patch(freezing=True):
            return list(self.compiled(*flat))

    def _quantize(self, flat: list[torch.Tensor], rebuild: Any) -> None:
        """Export, quantise and compile the stage from this batch; on failure give up with the reason."""
        from torch.export import Dim

        # a later shape recompiles outside this call: inductor's oneDNN lowering warns about its own tensor copies
        # then, and torch's C++ builder notes that this CPU machine has no CUDA runtime; neither is the user's
        warnings.filterwarnings("ignore", message="To copy construct", module=r"torch\._inductor\.mkldnn_lowerings")
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        try:
            prepare_pt2e, convert_pt2e, xiq = _import_pt2e()
        except ImportError as exc:
            self._give_up(f"INT8 needs torchao, which fails to import ({_first_line(exc)}): pip install '{PT2E_EXTRA}'")
            return
        # dynamo specialises a dimension of size 1: export from two copies of a one-row batch
        example = [torch.cat([t, t]) if t.dim() and t.size(0) == 1 else t for t in flat]
        module = FlatStage(self.stage, rebuild).eval()
        config = self.owner.config
        start = time.perf_counter()
        try:
            with torch.no_grad():
                want = list(module(*example))
            self.out_rebuild = module.out_rebuild
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's notices are not the user's
                program = torch.export.export(
                    module,
                    tuple(example),
                    # forward(*flat) is one variadic input to torch.export: its shapes are one tuple
                    dynamic_shapes=(tuple({d: Dim.AUTO for d in range(t.dim())} for t in example),),
                )
                quantizer = xiq.X86InductorQuantizer()
                quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_dynamic=True))
                skipped = self._skipped_modules()
                for name in skipped:  # the exported graph records module paths under FlatStage's `stage`
                    quantizer.set_module_name_qconfig(f"stage.{name}", None)
                prepared = prepare_pt2e(program.module(), quantizer)
                with torch.no_grad():
                    prepared(*example)  # dynamic activations: one pass only places the observers
                converted = convert_pt2e(prepared)
            self.layers_left_in_float32 = sum(
                isinstance(m, torch.nn.Linear) and any(n == s or n.startswith(f"{s}.") for s in skipped)
                for n, m in self.stage.named_modules()
            )
        except Exception as exc:  # export and the quantiser raise many types; all mean "cannot quantise this stage"
            self._give_up(f"PT2E export or INT8 quantisation failed: {_first_line(exc)}")
            return
        self.compiled = torch.compile(
            converted, mode=None if config.mode == "default" else config.mode, backend="inductor", dynamic=True
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # inductor's oneDNN lowering warns about its own tensor copies
                got = self._run_int8(example)
                if any(e is not f for e, f in zip(example, flat)):
                    self._run_int8(flat)  # a batch of one compiles its own graph (size 1 is specialised)
        except Exception as exc:  # dynamo and inductor raise many types; all mean "cannot compile this stage"
            self.compiled = None
            self._give_up(f"torch.compile of the INT8 graph failed: {_first_line(exc)}")
            return
        rows = {t.size(0) for t in flat if t.dim()}
        if len(rows) == 1 and rows != {1} and all(t.dim() for t in flat):
            # the leading dimension looks like the batch: compile the one-row graph now too, not in the first
            # call a user times; a stage whose leading dimension is not the batch may refuse one row, so no error
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._run_int8([t[:1] for t in flat])
        self.compile_seconds = (self.compile_seconds or 0.0) + time.perf_counter() - start
        self.shapes_seen.add(_shape_key(flat))
        diffs = [(g.float() - w.float()).abs().max() for g, w in zip(got, want) if w.is_floating_point() and w.numel()]
        self.int8_max_abs_diff = float(max(diffs)) if diffs else 0.0

    def _skipped_modules(self) -> list[str]:
        """Names of the stage's submodules matched by the ``skip`` globs (outermost only)."""
        names: list[str] = []
        for name, _ in self.stage.named_modules():
            if name and any(fnmatch.fnmatchcase(name, p) for p in self.skip):
                if not any(name.startswith(f"{n}.") for n in names):
                    names.append(name)
        return names

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 3),
            "input_shapes_timed": len(self.shapes_seen),
            "quantized": "int8 (pt2e, x86 inductor quantizer)" if self.quantize else None,
            "layers_left_in_float32": self.layers_left_in_float32,
            "int8_max_abs_diff_vs_eager": self.int8_max_abs_diff,
        }


PT2E_EXTRA = "autoglm-backends[pt2e]"


def _import_pt2e() -> tuple[Any, Any, Any]:
    """torchao's PT2E entry points and its x86 inductor quantiser module. Importing the latter registers the
    inductor passes that prepack and fuse int8 linears (process-wide: torchao sets them on import)."""
    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)  # torchao 0.18 registers an Enum with pytree; torch 2.14 warns that it need not
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    finally:
        pytree.setLevel(level)
    return prepare_pt2e, convert_pt2e, xiq


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


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
