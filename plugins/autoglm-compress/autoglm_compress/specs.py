"""Specs and configs of the autoglm-compress plugins (light: no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autoglm_sdk.plugin import PluginConfig, PluginSpec


class CastConfig(PluginConfig):
    """Store and run the chosen stages' weights in a 16-bit float type."""

    stages: list[str] = Field(
        default_factory=list,
        description="Stages to cast, e.g. ['encoders.text'] (default: every stage with weights). Each cast stage "
        "takes float32 inputs and gives float32 outputs, so cast and uncast stages mix freely.",
    )


bf16 = PluginSpec(
    name="bf16",
    kind="compressor",
    config=CastConfig,
    factory="autoglm_compress.cast:BFloat16",
    summary="Cast stage weights to bfloat16: half the bytes on disk and in memory; float32's range, 8-bit mantissa.",
)

fp16 = PluginSpec(
    name="fp16",
    kind="compressor",
    config=CastConfig,
    factory="autoglm_compress.cast:Float16",
    summary="Cast stage weights to float16: half the bytes; more precision than bf16 but a range that can overflow.",
)


class Int8Config(PluginConfig):
    """Dynamic INT8: linear-layer weights stored as int8 with a scale per output row, activations quantized
    per batch on the fly."""

    stages: list[str] = Field(
        default_factory=list, description="Stages whose linear layers to quantize (default: every stage with weights)."
    )
    min_weights: int = Field(
        0,
        ge=0,
        description="Leave linear layers with fewer weights than this in float32 (tiny layers gain nothing and lose "
        "precision).",
    )
    skip: list[str] = Field(
        default_factory=list,
        description="Glob patterns of layer names (within the stage, as in `bert.encoder.layer.0.*`) to leave in "
        "float32: the layers whose quantization moves the outputs most (often the first transformer layer) "
        "cost little speed to keep. A pattern that matches no layer is an error.",
    )
    activations: Literal["per_tensor", "per_token"] = Field(
        "per_tensor",
        description="How inputs are quantized on the fly: one scale per batch (PyTorch's "
        "quantized::linear_dynamic) or one per row/token (torch._int_mm; more faithful when a few tokens have "
        "outlying values). On a stage that runs on onnxruntime, per_tensor uses ONNX Runtime's own quantiser and "
        "per_token exports these int8 layers as they are (MatMulInteger), honouring `skip`.",
    )
    embeddings: bool = Field(
        True, description="Store embedding tables (token, position) as int8 rows too: 4x smaller, no speed change."
    )


int8 = PluginSpec(
    name="int8",
    kind="compressor",
    config=Int8Config,
    factory="autoglm_compress.int8:Int8Dynamic",
    summary="Dynamic INT8 linear layers (int8 weights, per-row scales; PyTorch's quantized CPU kernel).",
)


class PruneConfig(PluginConfig):
    """Structured pruning: remove whole transformer layers, attention heads, feed-forward units and MLP hidden units
    (the weakest by activation or weight magnitude), then fine-tune briefly to recover."""

    amount: float = Field(0.5, gt=0, lt=1, description="Fraction of each layer's heads / units to remove.")
    units: list[Literal["heads", "ffn", "mlp"]] = Field(
        default_factory=lambda: ["heads", "ffn", "mlp"],
        description="What to prune: attention heads, transformer feed-forward units, hidden units of Sequential MLPs "
        "(empty: whole layers only, with keep_layers).",
    )
    stages: list[str] = Field(default_factory=list, description="Stages to prune (default: every stage with weights).")
    keep_layers: int | None = Field(
        None,
        ge=1,
        description="Keep this many layers of each transformer layer stack (BERT's encoder.layer), evenly spaced "
        "and the last always among them, and drop the others (none: keep every layer). Fewer layers cut the "
        "per-layer overhead that dominates at batch 1; distillation recovers what they knew.",
    )
    importance: Literal["activation", "magnitude"] = Field(
        "activation",
        description="How units are scored: mean |activation| on training samples times the norm of the "
        "weights reading it, or the weights' L2 norm alone.",
    )
    calibration_samples: int = Field(256, ge=1, description="Training samples the activations are measured on.")
    recovery_epochs: int = Field(
        1,
        ge=0,
        le=100,
        description="Epochs of fine-tuning on the training split after pruning (0 = none); the best "
        "validation epoch is kept.",
    )
    recovery_lr: float = Field(5e-5, gt=0, description="Learning rate of the recovery fine-tune.")
    distill: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Weight of distillation from the unpruned pipeline in the recovery loss "
        "(0 = labels only, 1 = the teacher's soft targets only).",
    )
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of the distillation targets.")

    @model_validator(mode="after")
    def _something(self) -> "PruneConfig":
        if not self.units and not self.keep_layers:
            raise ValueError("nothing to prune: name units (heads, ffn, mlp) or set keep_layers")
        return self


prune = PluginSpec(
    name="prune",
    kind="compressor",
    config=PruneConfig,
    factory="autoglm_compress.prune:Prune",
    summary="Structured pruning by tensor surgery (attention heads, feed-forward units, MLP units) and a recovery "
    "fine-tune: a smaller, faster dense model.",
)
