"""Specs and configs of the autoglm-multimodal plugins (light: no torch)."""

from __future__ import annotations

from pydantic import Field, model_validator

from autoglm_sdk.protocols import BuildContext, PluginConfig, PluginSpec, Port, PortMismatch

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
    train_voices: list[str] = Field(default_factory=lambda: list(DEFAULT_TRAIN_VOICES), min_length=1,
                                    description="espeak-ng voices heard in training and validation.")
    test_voices: list[str] = Field(default_factory=lambda: list(DEFAULT_TEST_VOICES), min_length=1,
                                   description="espeak-ng voices heard only in the test split.")
    speeds: list[int] = Field(default_factory=lambda: [130, 165, 200], min_length=1, description="Words per minute.")
    pitches: list[int] = Field(default_factory=lambda: [35, 50, 65], min_length=1, description="espeak-ng pitch 0-99.")
    sample_rate: int = Field(16_000, ge=8_000, le=48_000, description="Rate the speech is resampled to.")
    cache_dir: str = Field("", description="Where synthesised speech is kept (default ~/.cache/autoglm/digits-trimodal).")

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
    root: str = Field("", description="Folder with one sub-folder per class (the folder name is the "
                      "label), optionally inside train/, val/ and test/ folders that fix the split (required).")
    val_fraction: float = Field(0.15, ge=0, lt=0.5, description="Share of each class for validation, without split folders.")
    test_fraction: float = Field(0.2, ge=0, lt=0.5, description="Share of each class for testing, without split folders.")
    strict: bool = Field(False, description="Stop the build on an unreadable file instead of leaving it out with a warning.")


class ImageFolderConfig(FolderConfig):
    """Your own images, one sub-folder per class (as torchvision's ImageFolder)."""

    extensions: list[str] = Field(default_factory=lambda: list(IMAGE_EXTENSIONS), min_length=1,
                                  description="File name endings read as images (case-insensitive).")


class AudioFolderConfig(FolderConfig):
    """Your own recordings, one sub-folder per class."""

    extensions: list[str] = Field(default_factory=lambda: list(AUDIO_EXTENSIONS), min_length=1,
                                  description="File name endings read as audio (anything libsndfile reads).")


class PairedConfig(PluginConfig):
    """A CSV or JSON-lines index with one sample per row: a text, an image file and an audio file (any may be
    empty), a label and optionally a split. File paths are relative to the index's folder unless absolute."""

    index: str = Field("", description="The .csv or .jsonl index file (required).")
    text_column: str = Field("text", description="Column with the text.")
    image_column: str = Field("image", description="Column with the image file path.")
    audio_column: str = Field("audio", description="Column with the audio file path.")
    label_column: str = Field("label", description="Column with the class; rows left empty train only the alignment.")
    split_column: str = Field("split", description="Column with train/val/test; rows without one are split at random.")
    val_fraction: float = Field(0.15, ge=0, lt=0.5, description="Share of each label's unsplit rows for validation.")
    test_fraction: float = Field(0.2, ge=0, lt=0.5, description="Share of each label's unsplit rows for testing.")
    strict: bool = Field(False, description="Stop the build on an unreadable file instead of leaving its row's "
                         "modality out with a warning.")


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
    return Port("semantic_graph", dim=cfg.dim, num_edge_types=len(EDGE_TYPES), edge_type_names=EDGE_TYPES,
                modalities=frozenset(m for p in encoders for m in p.modalities))


multimodal = PluginSpec(
    name="multimodal",
    kind="graph_builder",
    config=MultimodalConfig,
    factory="autoglm_multimodal.builder:MultimodalGraph",
    summary="One graph per sample from text tokens, image patches and audio frames, linked within and across modalities.",
    signature=_multimodal_signature,
    capabilities=frozenset({"learnable"}),
)
