"""random-graphs: seeded generators, structural labels, balanced bins."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch


def load(**config):
    from autoglm_graph.generators import RandomGraphsDataSource
    from autoglm_graph.specs import RandomGraphsConfig
    from autoglm_sdk.plugin import BuildContext

    return RandomGraphsDataSource(RandomGraphsConfig(**config), BuildContext(seed=0)).load()


def test_clustering_labels_are_the_binned_clustering_coefficients_in_balanced_bins():
    data = load(generators=["watts_strogatz"], nodes=[40, 40], train_graphs=20, val_graphs=4, test_graphs=4)
    assert data.task.level == "node" and data.task.num_classes <= 10
    graph = data.splits["train"][0]["graph"]
    nxg = nx.Graph(graph.edge_index.t().tolist())
    want = [nx.clustering(nxg, i) for i in range(graph.num_nodes)]
    assert torch.allclose(graph.clustering, torch.tensor(want, dtype=torch.float32), atol=1e-6)
    labels = torch.cat([s["graph"].y for s in data.splits["train"]])
    counts = torch.bincount(labels).float()
    assert counts.max() / counts.sum() < 0.3  # about a tenth each, ties permitting


def test_the_generator_task_labels_graphs_by_their_generator_in_turn():
    gens = ["erdos_renyi", "barabasi_albert"]
    data = load(generators=gens, task="generator", nodes=[20, 30], train_graphs=6, val_graphs=2, test_graphs=2)
    assert [s["label"] for s in data.splits["train"]] == [0, 1] * 3
    assert data.task.label_names == tuple(gens)
    ba = data.splits["train"][1]["graph"]
    assert 20 <= ba.num_nodes <= 30


def test_path_length_is_a_binned_graph_target_with_the_raw_value_kept():
    data = load(task="path_length", bins=3, train_graphs=9, val_graphs=3, test_graphs=3, nodes=[20, 20])
    values = [float(s["graph"].path_length) for s in data.splits["train"]]
    labels = [s["label"] for s in data.splits["train"]]
    order = np.argsort(values)
    assert sorted(labels) == [labels[i] for i in order]  # larger path length, larger or equal bin


def test_same_seed_same_graphs():
    a, b = load(train_graphs=3, val_graphs=1, test_graphs=1), load(train_graphs=3, val_graphs=1, test_graphs=1)
    assert a.fingerprint == b.fingerprint


def test_bad_ranges_are_refused_with_the_field_named():
    from pydantic import ValidationError

    from autoglm_graph.specs import RandomGraphsConfig

    with pytest.raises(ValidationError, match="ws_p: the low end 0.5 is above the high end 0.1"):
        RandomGraphsConfig(ws_p=(0.5, 0.1))
    with pytest.raises(ValidationError, match="at least two generators"):
        RandomGraphsConfig(task="generator")
