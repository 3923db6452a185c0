"""knn and adaptive graph builders, the contextual SBM, and the graph figures they report."""

from __future__ import annotations

import pytest
import torch

from autoglm_graph.structure import graph_stats, knn_edges, symmetrize


def test_knn_edges_match_a_brute_force_search_in_any_chunk_size():
    torch.manual_seed(0)
    x = torch.randn(50, 8)
    for metric in ("cosine", "euclidean"):
        if metric == "cosine":
            sim = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
        else:
            sim = -torch.cdist(x, x)
        sim.fill_diagonal_(float("-inf"))
        want = sim.topk(4, dim=1).indices
        for chunk in (7, 50, 4096):
            edges, _ = knn_edges(x, 4, metric, chunk)
            got = edges[0].view(50, 4)
            assert torch.equal(edges[1], torch.arange(50).repeat_interleave(4))
            assert torch.equal(got.sort(1).values, want.sort(1).values), (metric, chunk)


def test_symmetrized_knn_has_no_self_loops_and_every_reverse_edge():
    x = torch.randn(30, 4)
    edges, _ = symmetrize(knn_edges(x, 3)[0], None, 30)
    pairs = set(map(tuple, edges.t().tolist()))
    assert all((j, i) in pairs for i, j in pairs)
    assert not any(i == j for i, j in pairs)


def test_graph_stats_counts_density_degrees_isolated_nodes_and_homophily():
    edges = torch.tensor([[0, 1, 2], [1, 0, 1]])
    y = torch.tensor([0, 0, 1, 1])
    stats = graph_stats(edges, 4, y)
    assert stats["edges"] == 3 and stats["density"] == pytest.approx(3 / 12)
    assert stats["isolated_nodes"] == 2  # nodes 2 and 3 receive nothing
    assert stats["homophily"] == pytest.approx(2 / 3)


def csbm(**overrides):
    from autoglm_graph.csbm import CSBMDataSource
    from autoglm_graph.specs import CSBMConfig
    from autoglm_sdk.plugin import BuildContext

    return CSBMDataSource(CSBMConfig(**overrides), BuildContext(seed=0)).load()


def test_csbm_sets_the_homophily_and_rewiring_mixes_it_towards_chance():
    clean = csbm(homophily=0.8, nodes_per_class=300).splits["train"][0]["graph"]
    assert graph_stats(clean.edge_index, clean.num_nodes, clean.y)["homophily"] == pytest.approx(0.8, abs=0.03)
    assert clean.edge_index.size(1) == pytest.approx(900 * 10, rel=0.05)  # mean degree 10
    noisy = csbm(homophily=0.8, nodes_per_class=300, rewire=0.5).splits["train"][0]["graph"]
    # half the edges keep h = 0.8, half land on a random node (same class 1/3 of the time)
    want = 0.5 * 0.8 + 0.5 / 3
    assert graph_stats(noisy.edge_index, noisy.num_nodes, noisy.y)["homophily"] == pytest.approx(want, abs=0.04)
    assert torch.equal(noisy.true_edge_index, clean.edge_index)  # the same true graph underneath


def test_csbm_splits_differ_but_the_graph_does_not():
    a, b = csbm(split=0).splits["train"][0]["graph"], csbm(split=1).splits["train"][0]["graph"]
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert not torch.equal(a.label_mask, b.label_mask)
    assert int(a.label_mask.sum()) == 3 * 20


def test_csbm_refuses_splits_larger_than_a_class():
    from pydantic import ValidationError

    from autoglm_graph.specs import CSBMConfig

    with pytest.raises(ValidationError, match="every class keeps test nodes"):
        CSBMConfig(nodes_per_class=40, train_per_class=20, val_per_class=20)


def adaptive_and_gcn(**config):
    from autoglm_graph.adaptive import AdaptiveGraph
    from autoglm_graph.gnn import GCNReasoner
    from autoglm_graph.specs import AdaptiveConfig, GCNConfig
    from autoglm_sdk.plugin import BuildContext, Port

    torch.manual_seed(0)
    builder = AdaptiveGraph(
        AdaptiveConfig(**config), BuildContext(inputs={"data": Port("samples", frozenset({"graph"}), dim=50)})
    )
    gcn = GCNReasoner(GCNConfig(hidden=8), BuildContext(inputs={"graph_builder": Port("semantic_graph", dim=50)}))
    return builder, gcn


@pytest.mark.parametrize("similarity", ["weighted_cosine", "gaussian"])
def test_the_task_loss_reaches_the_graph_learner_through_the_edge_weights(similarity):
    samples = csbm(rewire=0.5, nodes_per_class=40, train_per_class=5, val_per_class=5).splits["train"]
    builder, gcn = adaptive_and_gcn(
        similarity=similarity, sigma="learned", mix=0.3, smoothness=0, degree_barrier=0, sparsity=0
    )  # the task loss alone
    graph = gcn(builder(samples))
    torch.nn.functional.cross_entropy(graph.x[graph.label_mask], graph.y[graph.label_mask]).backward()
    grads = [p.grad for p in builder.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_the_regularisers_reach_the_trainer_as_an_auxiliary_loss():
    samples = csbm(nodes_per_class=40, train_per_class=5, val_per_class=5).splits["train"]
    builder, _ = adaptive_and_gcn()
    builder.train()
    builder(samples)
    loss = builder.auxiliary_loss()
    assert loss is not None and loss.requires_grad
    builder.eval()
    builder(samples)
    assert builder.auxiliary_loss() is None  # evaluation adds nothing


def test_the_learned_graph_has_no_isolated_nodes_and_the_target_density():
    samples = csbm(rewire=0.5, nodes_per_class=100).splits["train"]
    builder, _ = adaptive_and_gcn(k=8)
    builder.eval()
    with torch.no_grad():
        builder(samples)
    report = builder.report()
    assert report["learned_isolated_nodes"] == 0 and report["graph_isolated_nodes"] == 0
    assert 0.5 <= report["learned_density"] / report["target_density"] <= 2.0
    assert 0 <= report["learned_edges_in_true_graph"] <= 1 and "learned_homophily" in report
    histogram = report["graph_degree_histogram"]
    assert sum(histogram["counts"]) == 300 and len(histogram["edges"]) == len(histogram["counts"]) + 1


def test_a_csbm_pipeline_with_an_adaptive_graph_builds_and_reports_the_graph(tmp_path):
    from autoglm_sdk import build, validate_manifest

    manifest = {
        "pipeline": {"name": "adaptive", "seed": 0},
        "data": {"plugin": "csbm", "nodes_per_class": 40, "train_per_class": 5, "val_per_class": 5, "rewire": 0.5},
        "graph_builder": {"plugin": "adaptive", "k": 5},
        "reasoner": {"plugin": "gcn", "hidden": 16},
        "decoder": {"plugin": "classifier"},
        "train": {"epochs": 3, "lr": 0.01},
        "backend": {"plugin": "cpu"},
    }
    report = build(validate_manifest(manifest), tmp_path / "a").report
    stage = report["stages"]["graph_builder"]
    assert stage["evaluations"] >= 3 and "->" in stage["during_training"]
    assert "learned_homophily" in (tmp_path / "a" / "report.md").read_text()
