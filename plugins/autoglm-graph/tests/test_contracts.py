"""Every plugin of autoglm-graph passes the SDK's contract suite."""

from autoglm_sdk.testing import DataSourceContract, DecoderContract, GraphBuilderContract, ReasonerContract


class TestSBM(DataSourceContract):
    plugin = "sbm"
    config = {"blocks": 3, "nodes_per_block": 20, "train_per_class": 3, "val_per_class": 3}


class TestGiven(GraphBuilderContract):
    plugin = "given"


class TestGCN(ReasonerContract):
    plugin = "gcn"
    config = {"hidden": 16, "layers": 3}


class TestGCNSharedResidualNorm(ReasonerContract):
    """Shared weights, residuals and layer norm take other code paths."""

    plugin = "gcn"
    config = {"hidden": 16, "layers": 4, "share_weights": True, "residual": True, "norm": "layer"}


class TestClassifier(DecoderContract):
    plugin = "classifier"
    config = {"hidden": 8}
