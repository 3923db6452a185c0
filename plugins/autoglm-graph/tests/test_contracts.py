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


class TestKinship(DataSourceContract):
    plugin = "kinship"
    config = {
        "train": {"hops": [2, 3], "stories": 30},
        "val": {"hops": [2], "stories": 10},
        "test": {"hops": [2, 5], "stories": 10},
    }


class TestJsonl(DataSourceContract):
    plugin = "jsonl"
    config = {"path": str(__import__("pathlib").Path(__file__).parent / "data" / "stories.jsonl")}


class TestTextRelations(GraphBuilderContract):
    plugin = "text-relations"


class TestGAT(ReasonerContract):
    plugin = "gat"
    config = {"hidden": 16, "heads": 2, "layers": 3}


class TestSAGE(ReasonerContract):
    plugin = "sage"
    config = {"hidden": 16, "layers": 3}


class TestGIN(ReasonerContract):
    plugin = "gin"
    config = {"hidden": 16, "layers": 3}


class TestRGCN(ReasonerContract):
    plugin = "rgcn"
    config = {"hidden": 16, "layers": 3, "num_bases": 2}


class TestPathComposer(ReasonerContract):
    plugin = "path-composer"
    config = {"states": 8}


class TestClassifierPair(DecoderContract):
    plugin = "classifier"
    config = {"readout": "pair", "pair_with_graph": True}


class TestCSBM(DataSourceContract):
    plugin = "csbm"
    config = {"classes": 3, "nodes_per_class": 20, "train_per_class": 3, "val_per_class": 3, "rewire": 0.5}


class TestKnn(GraphBuilderContract):
    plugin = "knn"
    config = {"k": 2}


class TestKnnUnion(GraphBuilderContract):
    plugin = "knn"
    config = {"k": 2, "metric": "euclidean", "combine": "union", "symmetric": False}


class TestAdaptive(GraphBuilderContract):
    plugin = "adaptive"
    config = {"k": 2, "learn_mix": True, "reweight_given": True}


class TestAdaptiveGaussianEpsilon(GraphBuilderContract):
    """The Gaussian kernel with a learned width, epsilon sparsity and refinement take other code paths."""

    plugin = "adaptive"
    config = {"similarity": "gaussian", "sigma": "learned", "sparsify": "epsilon", "epsilon": 0.1, "iterations": 2}


class TestMLP(ReasonerContract):
    plugin = "mlp"
    config = {"hidden": 16, "layers": 2}


class TestRandomGraphsClustering(DataSourceContract):
    plugin = "random-graphs"
    config = {"nodes": [12, 16], "train_graphs": 6, "val_graphs": 2, "test_graphs": 2, "bins": 4}


class TestRandomGraphsGenerator(DataSourceContract):
    plugin = "random-graphs"
    config = {
        "generators": ["erdos_renyi", "watts_strogatz", "barabasi_albert", "sbm"],
        "task": "generator",
        "features": "degree",
        "nodes": [12, 16],
        "train_graphs": 8,
        "val_graphs": 4,
        "test_graphs": 4,
    }


class TestDarts(ReasonerContract):
    plugin = "darts"
    config = {"operations": ["gcn", "sage", "skip", "zero"], "hidden": 8}
