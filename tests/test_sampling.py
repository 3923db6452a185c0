"""Neighbour-sampled subgraphs for node tasks on one large graph (``[train] neighbors``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch_geometric.data import Data

from autoglm_sdk.errors import DataError
from autoglm_sdk.protocols import TaskSpec
from autoglm_sdk.sampling import NeighborSampler, SampledSplit, generator_for, neighbor_splits
from autoglm_sdk.trainer import batches, evaluate

N, E = 300, 3000


def random_graph(seed: int = 0) -> Data:
    """A directed multigraph whose in-degrees spread from 0 to well above the fanouts; ``edge_attr`` is each
    edge's id, so a sampled edge names the original one; ``true_edge_index`` is graph-level."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.cat([torch.randint(0, N, (E - 500,), generator=g), torch.randint(0, 10, (500,), generator=g)])
    edge_index = torch.stack([torch.randint(0, N, (E,), generator=g), targets])
    label_mask = torch.zeros(N, dtype=torch.bool)
    label_mask[torch.randperm(N, generator=g)[:100]] = True
    return Data(
        x=torch.randn(N, 4, generator=g),
        y=torch.randint(0, 3, (N,), generator=g),
        edge_index=edge_index,
        edge_attr=torch.arange(E, dtype=torch.float).view(-1, 1),
        label_mask=label_mask,
        true_edge_index=edge_index[:, :50],
    )


def in_degree(edge_index: torch.Tensor, nodes: int) -> torch.Tensor:
    return torch.bincount(edge_index[1], minlength=nodes)


def test_seeds_come_first_and_the_rest_is_sliced_from_the_graph():
    graph = random_graph()
    seeds = torch.tensor([5, 0, 123, 7, 299])
    sampler = NeighborSampler(graph, [4, 3])
    sub = sampler.sample(seeds, generator_for(1))
    assert torch.equal(sub.n_id[:5], seeds) and sub.n_id.unique().numel() == sub.num_nodes
    assert sub.label_mask.tolist() == [True] * 5 + [False] * (sub.num_nodes - 5)
    assert torch.equal(sub.x, graph.x[sub.n_id]) and torch.equal(sub.y, graph.y[sub.n_id])
    assert "true_edge_index" not in sub  # graph-level: not sliceable, dropped
    assert (sampler.position == -1).all()  # the buffer is clean for the next sample
    # every sampled edge is an edge of the graph (edge_attr is its id), between the nodes it names
    ids = sub.edge_attr.view(-1).long()
    assert ids.unique().numel() == ids.numel()
    assert torch.equal(sub.n_id[sub.edge_index], graph.edge_index[:, ids])


def test_each_hop_keeps_at_most_its_fanout_of_incoming_edges():
    graph = random_graph()
    seeds = torch.arange(12)  # 0..9 have many incoming edges
    sub = NeighborSampler(graph, [4, 3]).sample(seeds, generator_for(2))
    into_seeds = sub.edge_index[:, sub.edge_index[1] < 12]
    hop1 = into_seeds[0][into_seeds[0] >= 12].unique()
    targets = sub.edge_index[1].unique()
    assert set(targets.tolist()) <= set(range(12)) | set(hop1.tolist())  # two hops: edges end at seeds or hop 1
    degree = in_degree(sub.edge_index, sub.num_nodes)
    full = in_degree(graph.edge_index, N)
    assert torch.equal(degree[:12], full[seeds].clamp(max=4))  # all edges up to the fanout, else exactly fanout
    assert torch.equal(degree[hop1], full[sub.n_id[hop1]].clamp(max=3))
    # every node is a seed or the source of a kept edge
    assert set(range(12, sub.num_nodes)) <= set(sub.edge_index[0].tolist())


def test_a_busy_node_keeps_fanout_distinct_edges_drawn_uniformly():
    graph = random_graph()
    sampler = NeighborSampler(graph, [5])
    node = int(in_degree(graph.edge_index, N).argmax())  # about 60 incoming edges
    slots = sampler.incoming(torch.full((6000,), node), 5, generator_for(4)).view(6000, 5)
    assert (slots.sort(1).values.diff(dim=1) > 0).all()  # no edge twice
    counts = torch.bincount(slots.view(-1) - sampler.colptr[node])
    expected = 6000 * 5 / len(counts)
    assert len(counts) == int(sampler.colptr[node + 1] - sampler.colptr[node])
    assert (counts - expected).abs().max() < 0.25 * expected


def test_fanout_minus_one_keeps_every_incoming_edge():
    graph = random_graph()
    seeds = torch.tensor([0, 1, 2, 50, 60])
    sub = NeighborSampler(graph, [-1]).sample(seeds, generator_for(3))
    for local, node in enumerate(seeds.tolist()):
        kept = sorted(sub.edge_attr[sub.edge_index[1] == local].view(-1).long().tolist())
        assert kept == (graph.edge_index[1] == node).nonzero().view(-1).tolist()


def test_evaluation_is_deterministic_and_training_draws_afresh_reproducibly():
    graph = random_graph()
    sampler = NeighborSampler(graph, [2, 2])
    seeds = torch.arange(40)
    val = SampledSplit(sampler, seeds, 16, seed=0, shuffle=False)
    assert len(val) == 3 and val[-1]["graph"].label_mask.sum() == 8
    assert torch.equal(val[0]["graph"].edge_index, val[0]["graph"].edge_index)

    def epochs(seed: int) -> list[torch.Tensor]:
        train = SampledSplit(sampler, seeds, 16, seed=seed, shuffle=True)
        return [train[0]["graph"].n_id for _ in range(3)]

    first = epochs(0)
    assert not torch.equal(first[0], first[1])  # each access draws another neighbourhood
    assert all(torch.equal(a, b) for a, b in zip(first, epochs(0)))  # the same in every run
    assert not torch.equal(first[0][:16], epochs(1)[0][:16])  # another seed shuffles the seeds otherwise


def test_neighbor_splits_cover_each_labelled_node_once_and_share_the_sampler():
    graph = random_graph()
    masks = {"train": graph.label_mask, "val": ~graph.label_mask}
    splits = {}
    for name, mask in masks.items():
        splits[name] = [{"graph": graph.clone()}]
        splits[name][0]["graph"].label_mask = mask
    sampled = neighbor_splits(splits, [3, 3], seed_nodes=64, seed=0)
    assert len(sampled["train"]) == 2 and len(sampled["val"]) == 4
    for name, split in sampled.items():
        seeds = torch.cat([s["graph"].n_id[s["graph"].label_mask] for s in split[:]])
        assert sorted(seeds.tolist()) == masks[name].nonzero().view(-1).tolist()
    shared = neighbor_splits({"a": [{"graph": graph}], "b": [{"graph": graph}]}, [3], 64, 0)
    assert shared["a"].sampler is shared["b"].sampler


def test_graph_level_data_is_refused_with_a_clear_message():
    graphs = [{"graph": random_graph(i), "label": 0} for i in range(2)]
    with pytest.raises(DataError, match="train.neighbors: the train split is 2 sample.*node tasks on one graph"):
        neighbor_splits({"train": graphs}, [5], 64, 0)
    unlabelled = random_graph()
    del unlabelled.label_mask
    with pytest.raises(DataError, match="train.neighbors"):
        neighbor_splits({"train": [{"graph": unlabelled}]}, [5], 64, 0)


class NodeLinear(nn.Module):
    """A decoder stand-in: logits from each node's features, the graph passed on as the pipeline does."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, batch: list[dict]) -> SimpleNamespace:
        assert len(batch) == 1
        graph = batch[0]["graph"]
        return SimpleNamespace(graph=graph, logits=self.lin(graph.x))


def test_the_trainer_batches_and_evaluates_a_sampled_split():
    graph = random_graph()
    split = neighbor_splits({"test": [{"graph": graph}]}, [2, 2], seed_nodes=32, seed=0)["test"]
    assert [len(b) for b in batches(split, 2)] == [2, 2]  # 100 labelled nodes: 4 subgraphs
    shuffled = batches(split, 1, torch.Generator().manual_seed(0))
    assert sorted(int(b[0]["graph"].label_mask.sum()) for b in shuffled) == [4, 32, 32, 32]
    scores = evaluate(NodeLinear(), split, TaskSpec("node", 3), batch_size=1)
    assert scores["count"] == 100


def test_a_build_with_neighbors_trains_on_sampled_subgraphs_as_well_as_full_batch(tmp_path):
    import json as _json

    from helpers import SMALL

    from autoglm_sdk import build, validate_manifest

    spec = _json.loads(_json.dumps(SMALL))
    spec["data"].update(nodes_per_block=150, train_per_class=40, val_per_class=30)
    full = build(validate_manifest(spec), tmp_path / "full").report
    spec["train"].update(neighbors=[10, 10], seed_nodes=32, batch_size=2, epochs=40)  # fewer steps per epoch
    sampled = build(validate_manifest(spec), tmp_path / "sampled").report
    assert sampled["metrics"]["test"]["count"] == full["metrics"]["test"]["count"]  # every test node, once
    assert sampled["metrics"]["test"]["accuracy"] > full["metrics"]["test"]["accuracy"] - 0.1
    spec = _json.loads(_json.dumps(SMALL))
    spec["data"] = {
        "plugin": "random-graphs",
        "train_graphs": 8,
        "val_graphs": 4,
        "test_graphs": 4,
        "nodes": [16, 16],
        "task": "generator",
        "generators": ["erdos_renyi", "barabasi_albert"],
    }
    spec["decoder"]["readout"] = "pool"
    spec["train"]["neighbors"] = [5]
    with pytest.raises(DataError, match="train.neighbors"):
        build(validate_manifest(spec), tmp_path / "graphs")
