"""Specs and configs of the autoglm-backends plugins (light: no torch, no torch_npu)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from autoglm_sdk.plugin import PluginConfig, PluginSpec

Precision = Literal["float32", "float16", "bfloat16"]


class AcceleratorConfig(PluginConfig):
    device_index: int = Field(0, ge=0, le=63, description="Which device of this kind to use (N in cuda:N / npu:N).")
    autocast: Precision = Field(
        "float32",
        description="Forward passes under autocast to this dtype (float32 = no autocast). bfloat16 needs a device "
        "that supports it; the probe says whether this one does.",
    )


class CudaConfig(AcceleratorConfig):
    """An NVIDIA GPU through PyTorch's CUDA build."""

    cudnn_benchmark: bool = Field(
        True, description="Let cuDNN time its kernels for each new input shape and keep the fastest."
    )
    allow_tf32: bool = Field(True, description="Allow TensorFloat-32 matmuls and convolutions on Ampere and newer.")


class NpuConfig(AcceleratorConfig):
    """A Huawei Ascend NPU through the torch_npu extension (installed separately on Ascend machines)."""


class OnnxRuntimeConfig(PluginConfig):
    """Stages exported to ONNX and run by ONNX Runtime (inference only: training stays in PyTorch)."""

    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="Execution providers in order of preference, e.g. ['CUDAExecutionProvider', "
        "'CPUExecutionProvider']; those missing from the installed onnxruntime build are skipped "
        "(the probe says which).",
    )
    threads: int | None = Field(None, ge=1, le=1024, description="Intra-op threads (default: torch's thread count).")
    optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="ONNX Runtime graph optimisation level (operator fusion and constant folding at 'all')."
    )
    atol: float = Field(1e-4, ge=0, description="Absolute tolerance of the export check against eager PyTorch.")
    rtol: float = Field(1e-3, ge=0, description="Relative tolerance of the export check against eager PyTorch.")
    quantized_tol: float = Field(
        0.05,
        ge=0,
        description="For a stage that already holds int8 layers (int8 with per-token activations): "
        "extra tolerance as a fraction of the output's largest value, since int8 rounding differs by one step here "
        "and there between runtimes.",
    )
    on_mismatch: Literal["error", "eager"] = Field(
        "error",
        description="When an exported stage's output differs from eager PyTorch: stop the build ('error') or "
        "run that stage eagerly and say why in the report ('eager').",
    )
    opset: int | None = Field(None, ge=17, le=30, description="ONNX opset to export to (default: the exporter's).")
    fusion: Literal["none", "transformer"] = Field(
        "none",
        description="'transformer': export BERT-style encoders for ONNX Runtime's transformer optimiser, which "
        "fuses attention, embedding + LayerNorm, residual + LayerNorm and bias + GELU into single operators "
        "(and the int8 quantiser then makes QAttention); fewer, larger kernels pay most at small batches.",
    )


class CompileConfig(PluginConfig):
    """Stages run through torch.compile on the CPU (inference only: training stays eager)."""

    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        "default", description="torch.compile mode."
    )
    compiler: Literal["inductor", "aot_eager", "eager"] = Field(
        "inductor",
        description="torch.compile backend: inductor generates fused C++/OpenMP kernels (needs a C++ "
        "compiler); aot_eager and eager only trace, for debugging. With the int8 compressor, inductor "
        "quantises the stage itself (PT2E, fused oneDNN int8 linears; needs pip install 'autoglm-backends[pt2e]').",
    )
    dynamic: bool | None = Field(
        None,
        description="Compile for dynamic shapes up front (true), never (false), or after the first shape "
        "change (unset, torch's default).",
    )
    threads: int | None = Field(None, ge=1, le=1024, description="torch intra-op threads (default: unchanged).")


cuda = PluginSpec(
    name="cuda",
    kind="backend",
    config=CudaConfig,
    factory="autoglm_backends.cuda:CudaBackend",
    summary="PyTorch on an NVIDIA GPU (device index, fp16/bf16 autocast, cuDNN benchmark, TF32).",
)

npu = PluginSpec(
    name="npu",
    kind="backend",
    config=NpuConfig,
    factory="autoglm_backends.npu:NpuBackend",
    summary="PyTorch on a Huawei Ascend NPU through torch_npu (device npu:N, autocast).",
)

onnxruntime = PluginSpec(
    name="onnxruntime",
    kind="backend",
    config=OnnxRuntimeConfig,
    factory="autoglm_backends.onnxrt:OnnxRuntimeBackend",
    summary="Stages exported with torch.onnx.export and run by ONNX Runtime (ordered execution providers, output "
    "checked against eager PyTorch, INT8 through ONNX Runtime's quantiser).",
)

torch_compile = PluginSpec(
    name="compile",
    kind="backend",
    config=CompileConfig,
    factory="autoglm_backends.compiled:CompileBackend",
    summary="Stages run through torch.compile (inductor's fused kernels); the report gives each stage's compile time.",
)


class SequentialConfig(PluginConfig):
    """The sequential scheduler has nothing to configure."""


sequential = PluginSpec(
    name="sequential",
    kind="scheduler",
    config=SequentialConfig,
    factory="autoglm_backends.sequential:SequentialScheduler",
    summary="Runs pipeline stages one at a time in topological order.",
)


class MetaControllerConfig(PluginConfig):
    """Place each stage on a device of this machine (filter, then score), run stages in order, re-place on failure."""

    filters: list[str] = Field(
        default_factory=lambda: ["healthy", "fits-memory"],
        description="Placement filters, in order (entry points of group autoglm.placement): a device any of them "
        "rejects is not used for the stage, and the report says why.",
    )
    scores: dict[str, float] = Field(
        default_factory=lambda: {"fastest": 1.0, "least-loaded": 0.5, "together": 1.0},
        description="Placement scores and their weights; the device with the highest weighted sum is chosen. "
        "Built in: fastest, least-loaded, together (next to the stage's inputs), energy (fewest added watts).",
    )
    devices: list[str] = Field(
        default_factory=list,
        description="Only these devices or device kinds (e.g. ['cuda:1', 'cpu']); empty: every device found.",
    )
    power: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Idle and peak watts by device or kind for the energy score, e.g. {cuda = [60, 400]}.",
    )

    @field_validator("filters", "scores")
    @classmethod
    def _installed(cls, value: Any, info: ValidationInfo) -> Any:
        from autoglm_backends.meta import placement_plugins  # light: torch only when devices are listed

        known = set(placement_plugins())
        for name in value:
            if name not in known:
                raise ValueError(f"no placement plugin `{name}` is installed ({', '.join(sorted(known))})")
        return value


meta_controller = PluginSpec(
    name="meta-controller",
    kind="scheduler",
    config=MetaControllerConfig,
    factory="autoglm_backends.meta:MetaControllerScheduler",
    summary="Places each stage on a device (filter and score plugins: memory, speed, load, locality, energy), "
    "records scores and reasons, re-places stages when a device fails.",
)


class CPUConfig(PluginConfig):
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (none = torch's default).")
    bf16: bool = Field(False, description="Run forward passes under bfloat16 autocast where the CPU supports it.")


cpu = PluginSpec(
    name="cpu",
    kind="backend",
    config=CPUConfig,
    factory="autoglm_backends.cpu:CPUBackend",
    summary="PyTorch on the CPU; always available.",
)


class AutoConfig(PluginConfig):
    prefer: list[str] = Field(
        default_factory=lambda: ["cuda", "npu", "cpu"],
        min_length=1,
        description="Backends to try, best first; the first usable one is chosen.",
    )
    fallback: Literal["strict", "warn", "allow"] = Field(
        "warn",
        description="When the first preference is unusable: strict = error, warn = use the next with a warning, "
        "allow = use the next quietly. Every fallback is recorded in the artifact either way.",
    )


auto = PluginSpec(
    name="auto",
    kind="backend",
    config=AutoConfig,
    factory="autoglm_backends.cpu:AutoBackend",
    summary="Chooses a backend from a preference list with an explicit fallback policy.",
)
