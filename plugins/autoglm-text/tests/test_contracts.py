"""The bert encoder passes the SDK's contract suite."""

from autoglm_sdk.testing import GraphBuilderContract, ModalityEncoderContract


class TestBert(ModalityEncoderContract):
    plugin = "bert"
    config = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32, "max_length": 32}


class TestBertMeanPooling(ModalityEncoderContract):
    """Mean pooling reads every position, so padding leaking into it would show here."""

    plugin = "bert"
    config = {"hidden_size": 16, "num_layers": 2, "num_heads": 4, "intermediate_size": 32, "pooling": "mean"}


class TestRelationExtractor(GraphBuilderContract):
    """The learned text -> graph builder, fitted (as a build does) on the kit's annotated family stories."""

    plugin = "relation-extractor"
    config = {"pretrained": None, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "head_size": 16, "epochs": 2}
