"""The wav2vec2 encoder passes the SDK's contract suite."""

from autoglm_sdk.testing import ModalityEncoderContract

TINY = {
    "conv_layers": [(8, 10, 5), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 2, 2)],
    "width": 16,
    "depth": 1,
    "heads": 2,
    "ff": 32,
    "pos_conv_kernel": 8,
    "pos_conv_groups": 2,
}


class TestWav2Vec2(ModalityEncoderContract):
    plugin = "wav2vec2"
    config = TINY


class TestWav2Vec2GroupNorm(ModalityEncoderContract):
    """A group-norm extractor normalises over time: padding leaking into it would show here."""

    plugin = "wav2vec2"
    config = {**TINY, "extractor_norm": "group_norm", "depth": 2}
