"""Specs and configs of the autoglm-audio plugins.

This module is what the entry points name: specs and configs only. It must not
import torch, torchaudio or soundfile, because ``autoglm manifest validate``
and ``autoglm plugins list --load`` import it. The encoder itself lives in
:mod:`autoglm_audio.wav2vec2`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autoglm_sdk.plugin import BuildContext, PathField, PluginConfig, PluginSpec, Port, require_modality

#: the conv feature extractor of every wav2vec 2.0 release: 512 channels, 25 ms windows, 20 ms hop
BASE_CONV_LAYERS: list[tuple[int, int, int]] = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
#: the small default: wav2vec2's seven layers (400-sample window, stride product 320) with few channels
SMALL_CONV_LAYERS: list[tuple[int, int, int]] = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2
BASE_WIDTH = 768


class AudioAugment(PluginConfig):
    """Random white noise added to training audio (never in evaluation or inference)."""

    probability: float = Field(0.5, ge=0, le=1, description="Share of training inputs that get noise.")
    snr_db: tuple[float, float] = Field(
        (5.0, 30.0), description="Signal-to-noise ratio in dB, drawn uniformly from this [low, high] range."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "AudioAugment":
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db must be [low, high], got {list(self.snr_db)}")
        return self


class Wav2Vec2Config(PluginConfig):
    """A wav2vec 2.0 audio encoder (torchaudio): a small randomly initialised model, or the base
    architecture, optionally starting from a local safetensors checkpoint."""

    pretrained: str | None = PathField(
        None,
        description="Local safetensors file holding a state dict of torchaudio's Wav2Vec2Model (the keys of "
        "`model.state_dict()`, or of this encoder's own state dict) with exactly the architecture the other fields "
        "describe; loaded by fit(), or by the first forward when fit is not called. Unset: random weights. A built "
        "artifact carries the weights, so loading it does not need the file.",
    )
    arch: Literal["small", "base"] = Field(
        "small",
        description="`small`: a model made from conv_layers, width, depth, heads, ff and pos_conv_*; `base`: "
        "torchaudio's wav2vec2_base architecture (768 wide, 12 layers, group-norm feature extractor; ~95M "
        "parameters), for which those fields are ignored.",
    )
    sample_rate: int = Field(
        16_000,
        ge=1000,
        le=192_000,
        description="The model's sample rate in Hz; other rates are resampled to it (counted, warned once).",
    )
    max_seconds: float = Field(
        4.0,
        gt=0,
        le=600,
        description="Longest audio encoded, in seconds; longer audio is truncated (counted, warned once).",
    )
    normalize: bool = Field(
        True,
        description="Scale each input to zero mean and unit variance over its own samples before the feature "
        "extractor, as wav2vec 2.0's layer-norm models (large-lv60k) expect. Without it a randomly initialised model "
        "sees speech at whatever loudness it was recorded, and from scratch it may not learn at all. Turn it off "
        "for a checkpoint trained on raw waveforms (wav2vec2 base).",
    )
    augment: AudioAugment | None = Field(
        None,
        description="Noise augmentation of training audio, e.g. {probability = 0.5, snr_db = [5, 30]}, so the encoder "
        "holds up on noisy recordings; none = off.",
    )
    conv_layers: list[tuple[int, int, int]] = Field(
        list(SMALL_CONV_LAYERS),
        description="Conv feature extractor (small arch): one (channels, kernel, stride) per layer. The default "
        "has wav2vec2's kernels and strides (stride product 320: a 25 ms frame every 20 ms at 16 kHz) with 32 "
        "channels.",
    )
    extractor_norm: Literal["layer_norm", "group_norm"] = Field(
        "layer_norm",
        description="Normalisation in the feature extractor (small arch): `layer_norm` after every conv layer "
        "(per frame), or `group_norm` on the first layer only (over time, as wav2vec2 base; each input is then "
        "run through the extractor alone, so padding does not leak into it).",
    )
    width: int = Field(
        64, ge=4, le=4096, description="encoder_embed_dim: size of the frame states and of the pooled vector."
    )
    depth: int = Field(2, ge=1, le=48, description="Transformer layers.")
    heads: int = Field(2, ge=1, le=64, description="Attention heads per layer; must divide width.")
    ff: int = Field(128, ge=1, le=16384, description="Width of each layer's feed-forward block.")
    pos_conv_kernel: int = Field(
        16, ge=1, le=256, description="Kernel (in frames) of the convolutional position embedding."
    )
    pos_conv_groups: int = Field(
        4, ge=1, le=64, description="Groups of the position-embedding conv; must divide width."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the transformer's hidden states.")
    attention_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on attention weights.")
    ff_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout inside the feed-forward blocks.")
    projection_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after the feature projection.")
    layer_drop: float = Field(0.0, ge=0, lt=1, description="Probability of skipping a whole layer in training.")
    embed_dim: int | None = Field(
        None,
        ge=2,
        le=65536,
        description="Size of a linear projection head into the shared space whose L2-normalised output is "
        "EncoderOutput.embedding; none = no head.",
    )

    @model_validator(mode="after")
    def _check_architecture(self) -> "Wav2Vec2Config":
        if self.arch == "small":
            if not self.conv_layers:
                raise ValueError("conv_layers must list at least one (channels, kernel, stride) layer")
            bad = [layer for layer in self.conv_layers if min(layer) < 1]
            if bad:
                raise ValueError(f"conv_layers entries must be positive (channels, kernel, stride), got {bad[0]}")
            if self.width % self.heads:
                raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
            if self.width % self.pos_conv_groups:
                raise ValueError(f"pos_conv_groups ({self.pos_conv_groups}) must divide width ({self.width})")
        needed = min_samples(self.layers())
        if self.max_seconds * self.sample_rate < needed:
            raise ValueError(
                f"max_seconds={self.max_seconds} keeps fewer samples than the {needed} the feature extractor needs "
                f"for one frame at {self.sample_rate} Hz"
            )
        return self

    def layers(self) -> list[tuple[int, int, int]]:
        """The conv layers actually used (the base architecture's for `base`)."""
        return list(BASE_CONV_LAYERS) if self.arch == "base" else [tuple(layer) for layer in self.conv_layers]

    def state_width(self) -> int:
        return BASE_WIDTH if self.arch == "base" else self.width


def min_samples(layers: list[tuple[int, int, int]]) -> int:
    """The fewest input samples that give one output frame through conv ``layers`` (no padding)."""
    length = 1
    for _, kernel, stride in reversed(layers):
        length = kernel + (length - 1) * stride
    return length


def _wav2vec2_signature(cfg: Wav2Vec2Config, ctx: BuildContext) -> Port:
    require_modality(ctx, "audio")  # raises PortMismatch unless the input carries it
    return Port("embeddings", frozenset({"audio"}), dim=cfg.state_width())


wav2vec2 = PluginSpec(
    name="wav2vec2",
    kind="encoder",
    config=Wav2Vec2Config,
    factory="autoglm_audio.wav2vec2:Wav2Vec2Encoder",
    summary="wav2vec 2.0 audio encoder (torchaudio): frame states and their masked mean, random or a local checkpoint.",
    signature=_wav2vec2_signature,
    capabilities=frozenset({"learnable"}),
)
