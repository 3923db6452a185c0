"""Specs and configs of the autoglm-compress plugins (light: no torch)."""

from __future__ import annotations

from pydantic import Field

from autoglm_sdk.protocols import PluginConfig, PluginSpec


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
        0, ge=0,
        description="Leave linear layers with fewer weights than this in float32 (tiny layers gain nothing and lose "
        "precision).",
    )


int8 = PluginSpec(
    name="int8",
    kind="compressor",
    config=Int8Config,
    factory="autoglm_compress.int8:Int8Dynamic",
    summary="Dynamic INT8 linear layers (int8 weights, per-row scales; PyTorch's quantized CPU kernel).",
)
