"""Behaviour of autoglm-graph plugins beyond the generic contract."""

import pytest
import torch

from autoglm_sdk import default_registry, validate_manifest
from autoglm_sdk.plugin import BuildContext, ManifestError, Port, TaskSpec

REG = default_registry()


def load_sbm(**overrides):
    config = {"blocks": 3, "nodes_per_block": 30, "train_per_class": 5, "val_per_class": 5, **overrides}
    return REG.spec("data", "sbm").create(config, BuildContext(seed=0)).load()


def test_sbm_splits_partition_every_community():
    data = load_sbm()
    graph = data.splits["train"][0]["graph"]
    masks = [data.splits[s][0]["graph"].label_mask for s in ("train", "val", "test")]
    assert torch.equal(sum(m.int() for m in masks), torch.ones(90, dtype=torch.int))  # disjoint and complete
    for block in range(3):
        in_block = graph.y == block
        assert int((masks[0] & in_block).sum()) == 5 and int((masks[1] & in_block).sum()) == 5


def test_sbm_edges_follow_the_blocks():
    graph = load_sbm(p_in=0.3, p_out=0.01).splits["train"][0]["graph"]
    src, dst = graph.edge_index
    same = (graph.y[src] == graph.y[dst]).float().mean()
    assert same > 0.8, f"only {same:.2f} of edges stay inside a community"


def test_sbm_rejects_splits_larger_than_a_block():
    raw = {
        "data": {"plugin": "sbm", "nodes_per_block": 10, "train_per_class": 5, "val_per_class": 5},
        "decoder": {"plugin": "classifier"},
    }
    with pytest.raises(ManifestError, match=r"data: .*must be < nodes_per_block \(10\)"):
        validate_manifest(raw)


def test_gcn_shared_weights_have_fewer_parameters():
    ctx = BuildContext(inputs={"g": Port("semantic_graph", dim=8, num_edge_types=1)})
    spec = REG.spec("reasoner", "gcn")
    shared = spec.create({"hidden": 16, "layers": 5, "share_weights": True}, ctx)
    separate = spec.create({"hidden": 16, "layers": 5}, ctx)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(shared) < count(separate) / 2


def test_given_add_reverse_edges_doubles_edges():
    from torch_geometric.data import Data

    spec = REG.spec("graph_builder", "given")
    ctx = BuildContext(inputs={"data": Port("samples", frozenset({"graph"}), dim=2)})
    sample = {"graph": Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))}
    out = spec.create({"add_reverse_edges": True}, ctx)([sample])
    assert out.edge_index.size(1) == 4 and {(2, 1), (1, 0)} <= set(map(tuple, out.edge_index.t().tolist()))


def test_classifier_node_level_gives_one_row_per_node():
    from autoglm_sdk.plugin import SemanticGraph

    ctx = BuildContext(inputs={"g": Port("semantic_graph", dim=4)}, task=TaskSpec("node", 5))
    head = REG.spec("decoder", "classifier").create({}, ctx)
    graph = SemanticGraph.collate([SemanticGraph(x=torch.randn(6, 4), edge_index=torch.empty(2, 0, dtype=torch.long))])
    assert head(graph).shape == (6, 5)


def test_path_composer_follows_edge_type_distributions_and_passes_their_gradient():
    from autoglm_sdk.plugin import SemanticGraph

    ctx = BuildContext(inputs={"g": Port("semantic_graph", dim=2, num_edge_types=3)})
    composer = REG.spec("reasoner", "path-composer").create({"states": 6, "straight_through": False}, ctx)
    edge_type = torch.tensor([2, 0, 1])
    graph = SemanticGraph(
        x=torch.zeros(4, 2),
        edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
        edge_type=edge_type,
        is_source=torch.tensor([True, False, False, False]),
    )
    hard = composer(graph).x
    graph.edge_type_probs = torch.nn.functional.one_hot(edge_type, 3).float()
    assert torch.allclose(composer(graph).x, hard)  # one-hot distributions: the typed tables themselves
    logits = torch.zeros(3, 3, requires_grad=True)
    graph.edge_type_probs = logits.softmax(-1)
    soft = composer(graph).x
    assert not torch.allclose(soft, hard)
    soft[3, :6].max().backward()  # the answer's loss reaches whoever gave the distributions
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_path_composer_never_puts_a_reached_node_in_the_source_state():
    from autoglm_sdk.plugin import SemanticGraph

    ctx = BuildContext(inputs={"g": Port("semantic_graph", dim=2, num_edge_types=2)})
    composer = REG.spec("reasoner", "path-composer").create({"states": 4}, ctx)
    with torch.no_grad():  # every table pulls hard towards the source's own state
        composer.transitions.zero_()
        composer.transitions[:, :, 0] = 10.0
    graph = SemanticGraph(
        x=torch.zeros(4, 2),
        edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
        edge_type=torch.tensor([0, 1, 0]),
        is_source=torch.tensor([True, False, False, False]),
    )
    states = composer(graph).x[:, :4].argmax(-1).tolist()
    assert states[0] == 0 and 0 not in states[1:]
