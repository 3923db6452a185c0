"""Scarce and imbalanced labels on the graph side: the csbm's imbalance and label rate, and the embedding-space
objectives (smote, mixup) through the classifier's head."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from autoglm_graph.csbm import CSBMDataSource
from autoglm_graph.imbalance import Mixup, Smote
from autoglm_graph.specs import ClassifierConfig, CSBMConfig, MixupConfig, SmoteConfig
from autoglm_sdk.plugin import BuildContext, Port, TaskSpec


def test_csbm_imbalance_and_label_rate_shape_the_classes_and_splits():
    config = CSBMConfig(classes=3, nodes_per_class=1000, imbalance=10, label_rate=0.05, feature_dim=8, degree=4)
    assert config.class_sizes() == [1000, 316, 100]
    data = CSBMDataSource(config).load()
    graph = data.splits["train"][0]["graph"]
    assert torch.bincount(graph.y).tolist() == [1000, 316, 100]
    assert torch.bincount(graph.y[graph.label_mask]).tolist() == [50, 16, 5]
    with pytest.raises(ValueError, match="smallest class has 10 nodes"):
        CSBMConfig(classes=2, nodes_per_class=100, imbalance=10, train_per_class=5, val_per_class=5)


def test_csbm_means_seed_shares_the_class_means_across_graphs():
    def first_class_mean(seed: int) -> torch.Tensor:
        config = CSBMConfig(nodes_per_class=3000, feature_dim=4, informative=4, feature_signal=3.0, means_seed=7)
        graph = CSBMDataSource(config, BuildContext(seed=seed)).load().splits["train"][0]["graph"]
        return graph.x[graph.y == 0].mean(0)

    a, b = first_class_mean(0), first_class_mean(1)
    assert torch.allclose(a, b, atol=0.1)  # same means, other noise and graphs
    default = CSBMDataSource(CSBMConfig(), BuildContext(seed=3)).load()
    assert default.fingerprint == CSBMDataSource(CSBMConfig(), BuildContext(seed=3)).load().fingerprint


class _Model:
    def __init__(self, decoder):
        self.stage_objects = {"decoder": decoder}


class _Pred:
    def __init__(self, graph, logits):
        self.graph, self.logits = graph, logits


def _setup(objective_cls, config):
    from autoglm_graph.classifier import Classifier

    task = TaskSpec("node", 3, ("a", "b", "c"))
    decoder = Classifier(
        ClassifierConfig(), BuildContext(inputs={"reasoner": Port("semantic_graph", dim=4)}, task=task)
    )
    objective = objective_cls(config, BuildContext(task=task, seed=0, stage="objectives.x"))
    objective.attach(_Model(decoder))
    x = torch.randn(40, 4, requires_grad=True)
    y = torch.tensor([0] * 30 + [1] * 7 + [2] * 3)
    graph = Data(x=x, y=y, edge_index=torch.zeros(2, 0, dtype=torch.long), label_mask=torch.ones(40, dtype=torch.bool))
    return objective, _Pred(graph, decoder(graph)), decoder, x


@pytest.mark.parametrize("implementation", ["torch", "imbalanced-learn"])
def test_smote_evens_the_classes_out_in_embedding_space(implementation, monkeypatch):
    objective, pred, decoder, x = _setup(Smote, SmoteConfig(implementation=implementation, k=3))
    made = {}
    classify = decoder.classify
    monkeypatch.setattr(decoder, "classify", lambda rows: made.setdefault("rows", rows) is not None and classify(rows))
    loss = objective.loss(pred, [])
    assert torch.isfinite(loss)
    assert made["rows"].shape == (23 + 27, 4)  # class 1 gets 23 rows, class 2 gets 27: 30 each
    loss.backward()
    # the own version interpolates in the graph: the rows upstream learn from the synthetic ones too
    assert (x.grad is not None and bool(x.grad.abs().sum() > 0)) == (implementation == "torch")


def test_smote_stays_quiet_in_evaluation_and_without_an_imbalance():
    objective, pred, _, _ = _setup(Smote, SmoteConfig())
    assert objective.loss(_Pred(pred.graph, pred.logits.detach()), []) is None
    pred.graph.y = torch.arange(40) % 2
    assert objective.loss(pred, []) is None


def test_mixup_mixes_rows_and_labels():
    objective, pred, _, x = _setup(Mixup, MixupConfig(alpha=1.0))
    loss = objective.loss(pred, [])
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert x.grad is not None


def test_embedding_objectives_need_a_decoder_with_a_head():
    from autoglm_sdk.plugin import AutoGLMError

    objective = Mixup(MixupConfig(), BuildContext(task=TaskSpec("node", 2, ("a", "b")), seed=0))
    with pytest.raises(AutoGLMError, match="features\\(\\)/classify\\(\\)"):
        objective.attach(_Model(torch.nn.Linear(2, 2)))
