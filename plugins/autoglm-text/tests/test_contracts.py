"""The bert encoder passes the SDK's contract suite."""

from autoglm_sdk.testing import ModalityEncoderContract


class TestBert(ModalityEncoderContract):
    plugin = "bert"
    config = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32, "max_length": 32}


class TestBertMeanPooling(ModalityEncoderContract):
    """Mean pooling reads every position, so padding leaking into it would show here."""

    plugin = "bert"
    config = {"hidden_size": 16, "num_layers": 2, "num_heads": 4, "intermediate_size": 32, "pooling": "mean"}
