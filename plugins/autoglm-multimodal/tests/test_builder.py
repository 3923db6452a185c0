"""The multimodal graph builder: nodes per state, edges within and across modalities."""

from __future__ import annotations

import torch

from autoglm_sdk.testing import GraphBuilderContract


class TestMultimodal(GraphBuilderContract):
    plugin = "multimodal"
    config = {"dim": 8, "cross_k": 2}


def build(cross_k=2, summary_nodes=False):
    from autoglm_sdk import default_registry
    from autoglm_sdk.plugin import BuildContext
    from autoglm_sdk.testing import fixtures

    ctx = BuildContext(inputs=dict(fixtures.EMBEDDING_PORTS))
    builder = (
        default_registry()
        .spec("graph_builder", "multimodal")
        .create({"dim": 8, "cross_k": cross_k, "summary_nodes": summary_nodes}, ctx)
    )
    return builder, fixtures


def test_grid_sequence_and_cross_edges():
    builder, fixtures = build(cross_k=2)
    one = fixtures.batch_encoder_outputs(fixtures.encoder_outputs(fixtures.EMBEDDING_PORTS, 1))
    graph = builder(one)
    text_len = int(one["encoders.text"].mask.sum())
    assert graph.x.shape == (16 + text_len, 8)
    types = graph.edge_type.tolist()
    assert types.count(1) == 2 * 24  # a 4x4 grid has 24 neighbour pairs, both ways
    assert types.count(0) == 2 * (text_len - 1)
    assert types.count(2) == 2 * 2 * text_len  # each token to its 2 nearest patches, both ways
    cross = graph.edge_index[:, graph.edge_type == 2]
    is_text = torch.arange(graph.x.size(0)) < text_len
    assert bool((is_text[cross[0]] != is_text[cross[1]]).all()), "cross-modal edges must join two modalities"


def test_a_missing_modality_adds_no_nodes():
    builder, fixtures = build()
    batch = fixtures.batch_encoder_outputs(fixtures.encoder_outputs(fixtures.EMBEDDING_PORTS, 2))
    batch["encoders.image"].mask[1] = False  # sample 1 has no image
    graph = builder(batch)
    sizes = torch.bincount(graph.batch).tolist()
    assert sizes[1] == int(batch["encoders.text"].mask[1].sum())


def test_summary_nodes_carry_the_pooled_vectors_and_join_their_modality():
    builder, fixtures = build(cross_k=0, summary_nodes=True)
    batch = fixtures.batch_encoder_outputs(fixtures.encoder_outputs(fixtures.EMBEDDING_PORTS, 2))
    batch["encoders.image"].mask[1] = False  # sample 1 has text only: one summary node, no summary-summary edge
    graph = builder(batch)
    text_len = [int(n) for n in batch["encoders.text"].mask.sum(1)]
    assert torch.bincount(graph.batch).tolist() == [text_len[0] + 16 + 2, text_len[1] + 1]
    summary = graph.edge_index[:, graph.edge_type == 3]
    first = graph.batch[summary[0]] == 0
    # sample 0: each summary node to each node of its modality both ways, and the two summaries to each other
    assert int(first.sum()) == 2 * (text_len[0] + 16) + 2
    assert int((~first).sum()) == 2 * text_len[1]
    # a summary node is the pooled vector through its own projection plus the modality embedding
    text_summary = text_len[0] + 16  # after every state node of sample 0
    expected = builder.summarise["encoders__text"](batch["encoders.text"].pooled[0]) + builder.modality.weight[0]
    assert torch.allclose(graph.x[text_summary], expected, atol=1e-6)
