"""Specs and configs of the autoglm-vision plugins.

This module is what the entry points name: specs and configs only. It must not
import torch, timm or PIL, because ``autoglm manifest validate`` and ``autoglm
plugins list --load`` import it. The encoder itself lives in :mod:`autoglm_vision.vit`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from autoglm_sdk.plugin import BuildContext, PathField, PluginConfig, PluginSpec, Port, require_modality

#: ``vit_*`` names whose timm entry point is not the plain VisionTransformer of
#: ``timm.models.vision_transformer`` (hybrids, relpos, rope, DINOv3, Sapiens, PE, ...)
_NOT_PLAIN_VIT = re.compile(r"_r\d*_s\d|resnet|relpos|rope|dinov3|sapiens|lingbot|_pe_|_mci_")


def is_plain_vit(model: str) -> bool:
    """Whether ``model`` names a plain timm ViT (``timm.models.vision_transformer``), decided by name alone.

    For these the size overrides (``width``, ``depth``, ``heads``, ``image_size``, ``patch_size``) are passed
    to ``timm.create_model``, and the pooled size is ``width``, known without importing timm. Other timm
    models keep their own architecture, and their pooled size is known only once the model is created.
    """
    arch = model.split(".", 1)[0]
    return arch.startswith("vit_") and not _NOT_PLAIN_VIT.search(arch)


class ImageAugment(PluginConfig):
    """Random affine jitter, and optionally random erasing, of each training image (never in evaluation or
    inference)."""

    degrees: float = Field(10.0, ge=0, le=180, description="Rotation drawn from [-degrees, degrees].")
    translate: float = Field(0.1, ge=0, lt=1, description="Shift drawn up to this fraction of the image size.")
    scale: float = Field(0.1, ge=0, lt=1, description="Zoom factor drawn from [1 - scale, 1 + scale].")
    erase: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Probability of blanking a random rectangle (2-20% of the image) after the jitter, so the encoder "
        "learns not to rely on any one part of the image (robustness to occlusion).",
    )


class ViTEncoderConfig(PluginConfig):
    """A timm image encoder: by default a small randomly initialised ViT; any timm model by name."""

    model: str = Field(
        "vit_tiny_patch16_224",
        min_length=1,
        description="timm model name. For plain ViT names (`vit_*` models of timm.models.vision_transformer) the "
        "architecture is set by width, depth, heads, image_size, patch_size and in_chans; other timm models keep "
        "their own architecture (only in_chans applies), and their pooled size is unknown to the static check.",
    )
    pretrained: Literal[False] | str = PathField(
        False,
        description="false: random weights. Or a local checkpoint file (.safetensors, or a timm-compatible state "
        "dict saved with torch.save) loaded when the stage is fitted; the architecture (including the size "
        "overrides) must match it. Never downloads from a hub. A built artifact carries the weights, so loading "
        "it does not need the file.",
    )
    image_size: int = Field(32, ge=8, le=4096, description="Images are resized to image_size x image_size.")
    patch_size: int = Field(4, ge=1, le=64, description="ViT patch size; must divide image_size (plain ViTs).")
    embed_dim: int | None = Field(
        None,
        ge=1,
        le=65536,
        description="Size of a linear projection head from the pooled vector into the pipeline's shared space; its "
        "L2-normalised output is EncoderOutput.embedding. None: no head, embedding is None. The stage's port dim "
        "is always the pooled size (what the classifier reads), never embed_dim.",
    )
    width: int = Field(
        64,
        ge=8,
        le=8192,
        description="ViT embedding width (timm embed_dim): the size of the patch "
        "states and of the pooled vector (plain ViTs).",
    )
    depth: int = Field(2, ge=1, le=64, description="ViT transformer blocks (plain ViTs).")
    heads: int = Field(2, ge=1, le=128, description="ViT attention heads; must divide width (plain ViTs).")
    pool: Literal["token", "avg"] | None = Field(
        None,
        description="Plain ViTs: `token` pools with a class token, `avg` averages the patch states and has no class "
        "token (often better when training from scratch on few images); none keeps the model's own pooling (a "
        "class token for most ViTs). Other timm models always keep their own.",
    )
    augment: ImageAugment | None = Field(
        None,
        description="Random rotation, shift and zoom of training images, e.g. {degrees = 10, translate = 0.125, "
        "scale = 0.1}; none = no augmentation. Small image sets trained from scratch need it.",
    )
    in_chans: int = Field(
        3,
        ge=1,
        le=64,
        description="Input channels. Grayscale images are repeated to 3 channels "
        "when in_chans is 3; other mismatches are input errors.",
    )

    @field_validator("pretrained", mode="before")
    @classmethod
    def _no_hub(cls, value: Any) -> Any:
        if value is True:
            raise ValueError(
                "pretrained = true would download weights from a hub, which vit never does; "
                "give a local checkpoint file path, or false"
            )
        if isinstance(value, str) and not value.strip():
            raise ValueError("pretrained must be a checkpoint file path or false, got an empty string")
        return value

    @model_validator(mode="after")
    def _sizes_fit(self) -> "ViTEncoderConfig":
        if is_plain_vit(self.model):
            if self.width % self.heads:
                raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
            if self.image_size % self.patch_size:
                raise ValueError(f"patch_size ({self.patch_size}) must divide image_size ({self.image_size})")
        return self


def _vit_signature(cfg: ViTEncoderConfig, ctx: BuildContext) -> Port:
    require_modality(ctx, "image")  # raises PortMismatch unless the input carries it
    # dim is the size of `pooled`, which is what the classifier reads; the projection head's embed_dim only sizes
    # `embedding`, used for alignment
    dim = cfg.width if is_plain_vit(cfg.model) else None
    return Port("embeddings", frozenset({"image"}), dim=dim)


vit = PluginSpec(
    name="vit",
    kind="encoder",
    config=ViTEncoderConfig,
    factory="autoglm_vision.vit:ViTEncoder",
    summary="Image encoder on timm: a small ViT trained from scratch, or any timm model from a local checkpoint.",
    signature=_vit_signature,
    capabilities=frozenset({"learnable"}),
)
