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
