"""``onnxruntime``: stages exported with ``torch.onnx.export`` and run by ONNX Runtime.

A stage is exported the first time it runs with final weights (at the end of
the build, and on the first call after loading an artifact), from that batch,
with every input dimension dynamic. Straight after export the ONNX output is
compared with eager PyTorch on the same batch; outside ``atol + rtol * |x|``
the stage is refused (an error, or eager execution with the reason in the
report when ``on_mismatch = "eager"``). The ``int8`` compressor asks the runner
for ONNX Runtime's own dynamic quantiser instead of swapping PyTorch layers;
the export check then compares the float graph, and the quantised graph's
difference from eager is reported beside it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from autoglm_backends.runners import FlatStage, StageRunner, refuse_graph_inputs
from autoglm_backends.specs import OnnxRuntimeConfig
from autoglm_sdk.plugin import BackendStatus, BackendUnavailableError, BuildContext

NEEDED = ("onnxruntime", "onnx", "onnxscript")  # onnxscript: torch.onnx's exporter builds the graph with it
LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def _cuda_device_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver: no usable device
        return 0


class OnnxRuntimeBackend:
    name = "onnxruntime"
    kind = "backend"
    Config = OnnxRuntimeConfig

    def __init__(self, config: OnnxRuntimeConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    @property
    def device(self) -> str:
        return "cpu"  # inputs are handed over from host memory; a GPU provider copies them itself

    def providers(self) -> tuple[list[str], list[str]]:
        """The requested providers this machine can use, in order, and why each other one is skipped."""
        import onnxruntime as ort

        built = set(ort.get_available_providers())
        usable, skipped = [], []
        for provider in self.config.providers:
            if provider not in built:
                skipped.append(f"{provider} is not in this onnxruntime build")
            elif provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider") and _cuda_device_count() == 0:
                skipped.append(f"{provider}: no CUDA device is visible")
            else:
                usable.append(provider)
        return usable, skipped

    def probe(self) -> BackendStatus:
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
        if missing:
            return BackendStatus(
                self.name,
                False,
                False,
                False,
                reason=f"{', '.join(missing)} not installed (pip install onnxruntime onnx onnxscript)",
            )
        try:
            import onnxruntime as ort

            built = ort.get_available_providers()
            usable, skipped = self.providers()
        except Exception as exc:  # a broken install: say so rather than crash the probe
            return BackendStatus(self.name, True, False, False, reason=f"onnxruntime fails to load: {exc}")
        if not any(p in built for p in self.config.providers):
            return BackendStatus(
                self.name,
                True,
                False,
                False,
                reason=f"none of providers {self.config.providers} is in this onnxruntime build (it has {built})",
            )
        if not usable:
            return BackendStatus(self.name, True, True, False, reason="; ".join(skipped))
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
        return BackendStatus(
            self.name,
            True,
            True,
            True,
            device=self.device,
            capabilities={
                "onnxruntime": ort.__version__,
                "providers": usable,
                "skipped_providers": skipped,
                "built_providers": built,
                "dtypes": ["float32", "int8 (dynamic quantisation)"],
                "memory_bytes": memory,
            },
        )

    def prepare(self, module: Any) -> Any:
        return module.to("cpu")

    def autocast(self) -> Any:
        return contextlib.nullcontext()

    def wrap_stage(self, key: str, stage: Any, inputs: dict[str, Any], explicit: bool) -> "OnnxStage":
        return OnnxStage(self, key, stage, explicit, refuse_graph_inputs(self.name, key, inputs, explicit))

    def session(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[self.config.optimization])
        options.intra_op_num_threads = self.config.threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not the user's
        usable, _ = self.providers()
        return ort.InferenceSession(str(path), options, providers=usable)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "providers": list(self.config.providers),
            "optimization": self.config.optimization,
            "fusion": self.config.fusion,
            "atol": self.config.atol,
            "rtol": self.config.rtol,
        }


def _max_excess(
    got: list[Any], want: list[Any], atol: float, rtol: float, scale_tol: float = 0.0
) -> tuple[float, float]:
    """The largest |got - want| and the largest amount by which it exceeds ``atol + rtol * |want|`` (plus
    ``scale_tol`` times the output's largest |value|)."""
    worst_diff = worst_excess = 0.0
    for g, w in zip(got, want):
        if not w.is_floating_point():
            excess = float((g != w).any())
            worst_excess = max(worst_excess, excess)
            continue
        diff = (g.float() - w.float()).abs()
        if diff.numel():
            worst_diff = max(worst_diff, float(diff.max()))
            allowed = atol + rtol * w.float().abs() + scale_tol * float(w.float().abs().max())
            worst_excess = max(worst_excess, float((diff - allowed).max()))
    return worst_diff, float("inf") if math.isnan(worst_excess) else worst_excess


class OnnxStage(StageRunner):
    backend = "onnxruntime"

    def __init__(
        self, owner: OnnxRuntimeBackend, key: str, stage: Any, explicit: bool, eager_reason: str | None
    ) -> None:
        super().__init__(key, stage, explicit, eager_reason)
        self.owner = owner
        self.quantize = False
        self.skip: list[str] = []  # layer-name globs left in float32 by the quantiser
        self.excluded_nodes = 0
        self.session: Any = None
        self.inputs: list[tuple[str, int]] = []  # the graph's inputs: name, position in the flat list
        self.max_abs_diff: float | None = None
        self.int8_max_abs_diff: float | None = None
        self.onnx_bytes: int | None = None
        self.fused_operators: dict[str, int] = {}
        self.torchscript = False  # exported by the TorchScript exporter, for the transformer optimiser
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset() if self.eager_reason else frozenset({"int8"})

    def deployed_bytes(self) -> int | None:
        return self.onnx_bytes

    def quantize_int8(self, skip: list[str] | tuple[str, ...] = ()) -> None:
        """Run this stage through ONNX Runtime's dynamic INT8 quantiser at its next export, leaving the
        matrix products of the layers named by the ``skip`` globs (e.g. ``bert.encoder.layer.0.*``) in float32."""
        if skip and self.owner.config.fusion != "none":
            raise BackendUnavailableError(
                f"{self.key}: onnxruntime cannot leave layers in float32 (skip) in a fused transformer graph",
                hint="remove the int8 compressor's `skip`, or set the onnxruntime backend's fusion = \"none\"",
            )
        self.quantize = True
        self.skip = list(skip)
        self.session = None

    def invalidate(self) -> None:
        self.session = None

    def run(self, batch: Any) -> Any:
        # not ready after the export: refused with on_mismatch = "eager"
        return self.run_flat(
            batch, lambda: self.session is not None, self._export, lambda f: self._run(self.session, f)
        )

    def _export(self, flat: list[Any], rebuild: Any) -> None:
        from torch.export import Dim

        # a batch of one would fix the batch dimension at 1 in the exported graph: export from two copies
        example = [torch.cat([t, t]) if t.dim() and t.size(0) == 1 else t for t in flat]
        module = FlatStage(self.stage, rebuild).eval()
        with torch.no_grad():
            want = list(module(*example))
        self.out_rebuild = module.out_rebuild
        self._dir = tempfile.TemporaryDirectory(prefix="autoglm-onnx-")
        path = Path(self._dir.name) / f"{self.key}.onnx"
        captured = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(captured), _quiet_loggers():
                warnings.simplefilter("ignore")  # the exporter's and onnxscript's notices are not the user's
                self.torchscript = self.owner.config.fusion == "transformer" and bool(attention_modules(module))
                if self.torchscript:
                    self.fused_operators = export_fused(module, example, want, path, self.owner.config.opset)
                else:  # no attention to fuse (a decoder, an MLP): the dynamo exporter's graph is as good
                    program = torch.onnx.export(
                        module,
                        tuple(example),
                        dynamo=True,
                        opset_version=self.owner.config.opset,
                        custom_translation_table=_translations(),
                        # forward(*flat) is one variadic input to torch.export: its shapes are one tuple
                        dynamic_shapes=(tuple({d: Dim.AUTO for d in range(t.dim())} for t in example),),
                    )
                    program.save(str(path))
        except Exception as exc:  # the exporter raises many types; all mean "cannot export this stage"
            self._give_up(f"torch.onnx.export failed: {export_error_summary(exc)}")
            return
        session = self.owner.session(path)
        # the TorchScript exporter (fusion) drops inputs the stage never reads; its names say their positions
        names = [i.name for i in session.get_inputs()]
        self.inputs = [(n, int(n.removeprefix("input_")) if self.torchscript else k) for k, n in enumerate(names)]
        got = self._run(session, example)
        config = self.owner.config
        # int8 layers exported as they are (per-token int8) round a few values differently in ONNX Runtime, and
        # a one-step difference in an int8 value is a scale's worth: those stages get a tolerance on that scale
        quantized = any(hasattr(m, "weight_int8") for m in self.stage.modules())
        scale_tol = config.quantized_tol if quantized else 0.0
        self.max_abs_diff, excess = _max_excess(got, want, config.atol, config.rtol, scale_tol)
        if excess > 0:
            reason = (
                f"its ONNX output differs from eager PyTorch by up to {self.max_abs_diff:.3g} "
                f"(atol {config.atol:g}, rtol {config.rtol:g}"
                + (f", quantized_tol {scale_tol:g} of the largest output" if quantized else "")
                + ")"
            )
            if config.on_mismatch == "error":
                knob = (
                    "raise quantized_tol (int8 rounding differences grow with depth)"
                    if quantized
                    else "raise atol/rtol"
                )
                raise BackendUnavailableError(
                    f"{self.key}: onnxruntime refused the stage: {reason}",
                    hint=f"{knob} in the onnxruntime backend's config, or run the stage on cpu",
                )
            self.eager_reason = reason
            return
        if self.quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = path.with_suffix(".int8.onnx")
            exclude = _nodes_of_layers(path, self.skip) if self.skip else []
            self.excluded_nodes = len(exclude)
            with contextlib.redirect_stdout(captured), _quiet_loggers():
                quantize_dynamic(
                    str(path),
                    str(quantized),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    nodes_to_exclude=exclude,
                    # the fused operators (Attention, SkipLayerNormalization) are contrib ops whose weights the
                    # quantiser cannot type without this
                    extra_options={"DefaultTensorType": 1} if self.fused_operators else None,
                )
            session = self.owner.session(quantized)
            self.int8_max_abs_diff = _max_excess(self._run(session, example), want, 0.0, 0.0)[0]
            path = quantized
        self.onnx_bytes = path.stat().st_size
        self.session = session

    def _run(self, session: Any, flat: list[Any]) -> list[Any]:
        outs = session.run(None, {n: flat[k].detach().cpu().numpy() for n, k in self.inputs})
        return [torch.from_numpy(o) for o in outs]

    def describe(self) -> dict[str, Any]:
        usable = self.owner.providers()[0] if self.session is not None else []
        return {
            **super().describe(),
            "providers": self.session.get_providers() if self.session else usable,
            "quantized": "int8 (onnxruntime quantize_dynamic)" if self.quantize else None,
            "nodes_left_in_float32": self.excluded_nodes,
            "max_abs_diff_vs_eager": self.max_abs_diff,
            "int8_max_abs_diff_vs_eager": self.int8_max_abs_diff,
            "onnx_bytes": self.onnx_bytes,
            "fused_operators": self.fused_operators,
        }


def attention_modules(module: torch.nn.Module) -> list[torch.nn.Module]:
    """``module``'s Hugging Face-style attention layers, which the transformer optimiser fuses."""
    return [m for m in module.modules() if hasattr(m, "num_attention_heads") and hasattr(m, "attention_head_size")]


def export_fused(module: torch.nn.Module, example: list[Any], want: list[Any], path: Path, opset: int | None) -> dict:
    """Export ``module`` for ONNX Runtime's transformer optimiser and run it; the fused operators, counted.

    The optimiser recognises attention only in the graph the TorchScript exporter makes from eager attention
    (the dynamo exporter's, and SDPA's, leave it unfused), so Hugging Face models inside the stage switch to
    eager attention for the export. The head count it needs is read from the attention modules, after any
    head pruning (the same number of heads in every layer, which ``prune`` keeps)."""
    from onnxruntime.transformers.optimizer import optimize_model

    models = [m for m in module.modules() if hasattr(m, "set_attn_implementation") and hasattr(m, "config")]
    attention = attention_modules(module)
    before = [m.config._attn_implementation for m in models]
    names = [f"input_{i}" for i in range(len(example))] + [f"output_{i}" for i in range(len(want))]
    raw = path.with_suffix(".unfused.onnx")
    try:
        for m in models:
            m.set_attn_implementation("eager")
        with torch.no_grad():
            torch.onnx.export(
                module,
                tuple(example),
                str(raw),
                dynamo=False,
                opset_version=opset or 17,
                input_names=names[: len(example)],
                output_names=names[len(example) :],
                dynamic_axes={n: {d: f"{n}_{d}" for d in range(t.dim())} for n, t in zip(names, example + want)},
            )
    finally:
        for m, implementation in zip(models, before):
            m.set_attn_implementation(implementation)
    heads = attention[0].num_attention_heads if attention else 0
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=heads,
        hidden_size=heads * attention[0].attention_head_size if attention else 0,
    )
    optimized.save_model_to_file(str(path))
    raw.unlink()
    return {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}


def _nodes_of_layers(path: Path, patterns: list[str]) -> list[str]:
    """Names of the ONNX nodes exported from the stage's submodules that match ``patterns``: the exporter
    records each node's module path (``pkg.torch.onnx.name_scopes``; the stage itself is ``stage``)."""
    import ast
    import fnmatch

    import onnx

    names = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        scopes = next(
            (ast.literal_eval(p.value) for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), []
        )
        modules = [s.removeprefix("stage.") for s in scopes if s.startswith("stage.")]
        if modules and any(fnmatch.fnmatchcase(modules[-1], pattern) for pattern in patterns):
            names.append(node.name)
    return names


def _translations() -> dict[Any, Any]:
    """ONNX for the aten ops the exporter lacks: ``_int_mm`` (int8 x int8 -> int32, what ``int8`` with
    per-token activations runs) becomes MatMulInteger, which ONNX Runtime runs natively.

    ONNX Runtime's CPU kernel is fast only for a uint8 left operand (int8 x int8 took 12-16x as long as
    uint8 x int8 here): the int8 activations are shifted by 128 into uint8 with a zero point of 128, which
    gives exactly the same int32 products."""
    from onnx import TensorProto, helper
    from onnxscript import opset18 as op

    def int_mm(a: Any, b: Any) -> Any:
        offset = op.Constant(value=helper.make_tensor("offset", TensorProto.INT16, [], [128]))
        shifted = op.Cast(op.Add(op.Cast(a, to=TensorProto.INT16), offset), to=TensorProto.UINT8)
        zero_point = op.Constant(value=helper.make_tensor("zero_point", TensorProto.UINT8, [], [128]))
        return op.MatMulInteger(shifted, b, zero_point)

    return {torch.ops.aten._int_mm.default: int_mm}


def export_error_summary(exc: Exception) -> str:
    """The line of the exporter's long message that says what went wrong (its ``## Exception summary``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("<class ")), lines[0] if lines else type(exc).__name__)
    return cause[:300]


@contextlib.contextmanager
def _quiet_loggers() -> Any:
    names = ("torch.onnx", "onnxscript", "onnx_ir", "torch.export", "root", "onnxruntime")  # + the optimiser's
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
