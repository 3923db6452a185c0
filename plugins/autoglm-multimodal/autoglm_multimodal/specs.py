"""Specs and configs of the autoglm-multimodal plugins (light: no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, model_validator

from autoglm_sdk.plugin import BuildContext, PathField, PluginConfig, PluginSpec, Port, PortMismatch

#: espeak-ng voice variants; the split between training and test voices is by name
DEFAULT_TRAIN_VOICES = ["en+m1", "en+m3", "en+f1", "en+f3", "en-us+m2", "en-us+f2", "en-gb-scotland+m4", "en+m7"]
DEFAULT_TEST_VOICES = ["en-us+m5", "en+f4", "en-gb-x-rp+m6"]


class DigitsTrimodalConfig(PluginConfig):
    """Handwritten digits (scikit-learn's bundled 8x8 set), the same digits spoken by
    espeak-ng in several voices, speeds and pitches, and captions in several phrasings.
    Speech is synthesised once per setting and cached (about 12 MB for the defaults)."""

    samples_per_digit: int = Field(60, ge=3, le=179, description="Samples per digit over all splits (at most 179).")
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share of each digit's samples used for validation.")
    test_fraction: float = Field(0.25, gt=0, lt=0.5, description="Share of each digit's samples used for testing.")
    train_voices: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TRAIN_VOICES),
        min_length=1,
        description="espeak-ng voices heard in training and validation.",
    )
    test_voices: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEST_VOICES),
        min_length=1,
        description="espeak-ng voices heard only in the test split.",
    )
    speeds: list[int] = Field(default_factory=lambda: [130, 165, 200], min_length=1, description="Words per minute.")
    pitches: list[int] = Field(default_factory=lambda: [35, 50, 65], min_length=1, description="espeak-ng pitch 0-99.")
    sample_rate: int = Field(16_000, ge=8_000, le=48_000, description="Rate the speech is resampled to.")
    cache_dir: str = Field(
        "", description="Where synthesised speech is kept (default ~/.cache/autoglm/digits-trimodal)."
    )

    @model_validator(mode="after")
    def _voices_disjoint(self) -> "DigitsTrimodalConfig":
        shared = sorted(set(self.train_voices) & set(self.test_voices))
        if shared:
            raise ValueError(f"test voices must be unheard in training; {shared} are in both lists")
        return self


digits_trimodal = PluginSpec(
    name="digits-trimodal",
    kind="data",
    config=DigitsTrimodalConfig,
    factory="autoglm_multimodal.digits:DigitsTrimodal",
    summary="Handwritten digit images, the digits spoken by espeak-ng (unseen test voices) and captions.",
    signature=lambda cfg, ctx: Port("samples", frozenset({"image", "audio", "text"})),
)


IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"]
AUDIO_EXTENSIONS = [".wav", ".flac", ".ogg", ".mp3"]


class FolderConfig(PluginConfig):
    root: str = Field(
        "",
        description="Folder with one sub-folder per class (the folder name is the "
        "label), optionally inside train/, val/ and test/ folders that fix the split (required).",
    )
    val_fraction: float = Field(
        0.15, ge=0, lt=0.5, description="Share of each class for validation, without split folders."
    )
    test_fraction: float = Field(
        0.2, ge=0, lt=0.5, description="Share of each class for testing, without split folders."
    )
    strict: bool = Field(
        False, description="Stop the build on an unreadable file instead of leaving it out with a warning."
    )


class ImageFolderConfig(FolderConfig):
    """Your own images, one sub-folder per class (as torchvision's ImageFolder)."""

    extensions: list[str] = Field(
        default_factory=lambda: list(IMAGE_EXTENSIONS),
        min_length=1,
        description="File name endings read as images (case-insensitive).",
    )


class AudioFolderConfig(FolderConfig):
    """Your own recordings, one sub-folder per class."""

    extensions: list[str] = Field(
        default_factory=lambda: list(AUDIO_EXTENSIONS),
        min_length=1,
        description="File name endings read as audio (anything libsndfile reads).",
    )


class PairedConfig(PluginConfig):
    """A CSV or JSON-lines index with one sample per row: a text, an image file and an audio file (any may be
    empty), a label and optionally a split. File paths are relative to the index's folder unless absolute."""

    index: str = PathField("", description="The .csv or .jsonl index file (required; relative to the manifest).")
    text_column: str = Field("text", description="Column with the text.")
    image_column: str = Field("image", description="Column with the image file path.")
    audio_column: str = Field("audio", description="Column with the audio file path.")
    label_column: str = Field("label", description="Column with the class; rows left empty train only the alignment.")
    split_column: str = Field("split", description="Column with train/val/test; rows without one are split at random.")
    val_fraction: float = Field(0.15, ge=0, lt=0.5, description="Share of each label's unsplit rows for validation.")
    test_fraction: float = Field(0.2, ge=0, lt=0.5, description="Share of each label's unsplit rows for testing.")
    strict: bool = Field(
        False,
        description="Stop the build on an unreadable file instead of leaving its row's modality out with a warning.",
    )


def _folder_signature(modality: str):
    return lambda cfg, ctx: Port("samples", frozenset({modality}))


image_folder = PluginSpec(
    name="image-folder",
    kind="data",
    config=ImageFolderConfig,
    factory="autoglm_multimodal.files:ImageFolder",
    summary="Your own images, one sub-folder per class; unreadable files reported by path and left out.",
    signature=_folder_signature("image"),
)

audio_folder = PluginSpec(
    name="audio-folder",
    kind="data",
    config=AudioFolderConfig,
    factory="autoglm_multimodal.files:AudioFolder",
    summary="Your own recordings, one sub-folder per class; unreadable files reported by path and left out.",
    signature=_folder_signature("audio"),
)

paired = PluginSpec(
    name="paired",
    kind="data",
    config=PairedConfig,
    factory="autoglm_multimodal.files:PairedDataSource",
    summary="A CSV or JSON-lines index pairing text, image and audio files per sample, with labels and splits.",
    signature=lambda cfg, ctx: Port("samples", frozenset({"image", "audio", "text"})),
)


class MultimodalConfig(PluginConfig):
    """Nodes from text tokens, image patches and audio frames (and a summary node per modality); edges within
    each modality (sequence or grid neighbours) and across modalities (top-k cosine similarity)."""

    dim: int = Field(64, ge=2, le=4096, description="Node feature size (each encoder's states are projected to it).")
    cross_k: int = Field(4, ge=0, le=64, description="Cross-modal neighbours per node (0 = no cross-modal edges).")
    summary_nodes: bool = Field(
        True,
        description="Add one node per present modality holding its encoder's pooled vector, linked to every node "
        "of that modality and to the other modalities' summary nodes, so what an encoder learned about the whole "
        "input reaches the reasoner in one hop.",
    )


EDGE_TYPES = ("sequence", "grid", "cross_modal", "summary")


def _multimodal_signature(cfg: MultimodalConfig, ctx: BuildContext) -> Port:
    encoders = [p for p in ctx.inputs.values() if p.type == "embeddings"]
    if not encoders:
        raise PortMismatch("needs at least one encoder's embeddings as input")
    unknown = [k for k, p in ctx.inputs.items() if p.type == "embeddings" and p.dim is None]
    if unknown:
        raise PortMismatch(f"needs the state size of {unknown[0]}")
    return Port(
        "semantic_graph",
        dim=cfg.dim,
        num_edge_types=len(EDGE_TYPES),
        edge_type_names=EDGE_TYPES,
        modalities=frozenset(m for p in encoders for m in p.modalities),
    )


multimodal = PluginSpec(
    name="multimodal",
    kind="graph_builder",
    config=MultimodalConfig,
    factory="autoglm_multimodal.builder:MultimodalGraph",
    summary="One graph per sample from text tokens, image patches and audio frames, linked within and across "
    "modalities.",
    signature=_multimodal_signature,
    capabilities=frozenset({"learnable"}),
)


# ---------------------------------------------------------------------------
# objectives


def _encoder_stages(config: PluginConfig, ctx: BuildContext, least: int) -> list[str]:
    """The encoder stages an objective reads (``config.stages``, default every encoder); PortMismatch if unknown
    or fewer than ``least``."""
    encoders = sorted(k for k in ctx.inputs if k.startswith("encoders."))
    chosen = list(config.stages) or encoders
    unknown = [s for s in chosen if s not in encoders]
    if unknown:
        raise PortMismatch(f"stages: `{unknown[0]}` is not an encoder stage (encoders: {encoders or 'none'})")
    if len(chosen) < least:
        raise PortMismatch(
            f"needs at least {least} encoder stage{'s' * (least > 1)}, got {chosen or 'none'}; add "
            "[encoders.NAME] sections or remove this objective"
        )
    return chosen


class AlignmentConfig(PluginConfig):
    """Contrastive alignment of encoder embeddings (CLIP-style symmetric InfoNCE between every pair)."""

    weight: float = Field(1.0, ge=0, description="Weight of the alignment loss beside the task loss.")
    stages: list[str] = Field(
        default_factory=list,
        description="Encoder stages to align, e.g. ['encoders.image', 'encoders.audio'] (default: every encoder).",
    )
    exclude_same_class: bool = Field(True, description="Do not treat another sample of the same class as a negative.")
    init_temperature: float = Field(0.07, gt=0, description="Initial softmax temperature (learned).")
    max_logit_scale: float = Field(100.0, gt=1, description="Upper clamp of 1/temperature.")


def _alignment_signature(config: AlignmentConfig, ctx: BuildContext) -> Port:
    _encoder_stages(config, ctx, 2)
    return Port("objective")


alignment = PluginSpec(
    name="alignment",
    kind="objective",
    config=AlignmentConfig,
    factory="autoglm_multimodal.objectives:ContrastiveAlignment",
    summary="Contrastive alignment of encoders' embeddings in one shared space (symmetric InfoNCE).",
    signature=_alignment_signature,
)


class PretrainingConfig(PluginConfig):
    """Train each encoder alone on the task before the pipeline trains (graph-level classification only)."""

    epochs: int = Field(10, ge=0, description="Epochs of pretraining for each encoder (0 = none).")
    stage_epochs: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description='Epochs for particular stages, overriding `epochs`, e.g. {"encoders.image" = 60} for a cheap '
        "encoder that needs many passes over few images.",
    )
    lr: float | None = Field(
        None, gt=0, description="Peak learning rate of its one-cycle schedule (default: train.lr)."
    )
    stages: list[str] = Field(
        default_factory=list,
        description="Encoder stages to pretrain, e.g. ['encoders.audio'] (default: every encoder).",
    )
    classifier: Literal["prototypes", "linear"] = Field(
        "prototypes",
        description="`prototypes`: encoders whose projection heads share one size train against one shared cosine "
        "classifier on their embeddings (a prototype per class, placed by the first encoder), which aligns them "
        "class by class; `linear`: each encoder gets its own linear probe on its pooled vector.",
    )
    lr_scale_after: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Learning-rate multiplier for the pretrained encoders while the whole pipeline trains afterwards: "
        "below 1 keeps what they learned alone from being overwritten while the graph stages are still random; "
        "0 freezes them.",
    )


def _pretraining_signature(config: PretrainingConfig, ctx: BuildContext) -> Port:
    chosen = _encoder_stages(config, ctx, 1)
    extra = [s for s in config.stage_epochs if s not in chosen]
    if extra:
        raise PortMismatch(f"stage_epochs: `{extra[0]}` is not a pretrained encoder stage (pretrained: {chosen})")
    if ctx.task is not None and (ctx.task.level != "graph" or ctx.task.num_classes < 2):
        raise PortMismatch("needs a classification task with one label per sample; remove it for node-level tasks")
    return Port("objective")


encoder_pretraining = PluginSpec(
    name="encoder-pretraining",
    kind="objective",
    config=PretrainingConfig,
    factory="autoglm_multimodal.objectives:EncoderPretraining",
    summary="Before the pipeline trains, each encoder learns alone to classify samples from its own modality.",
    signature=_pretraining_signature,
)


class ModalityDropoutConfig(PluginConfig):
    """In training, each modality of a multimodal sample is dropped at random (at least one is kept), so the
    pipeline learns to answer from any subset of its modalities."""

    rate: float = Field(0.3, gt=0, lt=1, description="Probability that a training sample loses each modality.")
    select_on_subsets: bool = Field(
        True,
        description="Choose the best epoch on the mean validation accuracy from each modality alone and from "
        "all together, instead of from all together only.",
    )


def _dropout_signature(config: ModalityDropoutConfig, ctx: BuildContext) -> Port:
    data = ctx.inputs.get("data")
    if data is not None and len(data.modalities) < 2:
        raise PortMismatch(
            f"the data carries {sorted(data.modalities) or 'no modality'}; dropping modalities needs at least two"
        )
    return Port("objective")


modality_dropout = PluginSpec(
    name="modality-dropout",
    kind="objective",
    config=ModalityDropoutConfig,
    factory="autoglm_multimodal.objectives:ModalityDropout",
    summary="Training samples lose modalities at random, so the pipeline answers from any subset of them.",
    signature=_dropout_signature,
)
