"""The multimodal graph builder: nodes per state, edges within and across modalities."""

from __future__ import annotations

import torch

from autoglm_sdk.testing import GraphBuilderContract


class TestMultimodal(GraphBuilderContract):
    plugin = "multimodal"
    config = {"dim": 8, "cross_k": 2}


def build(cross_k=2):
    from autoglm_sdk.protocols import BuildContext
    from autoglm_sdk.registry import default_registry
    from autoglm_sdk.testing import fixtures

    ctx = BuildContext(inputs=dict(fixtures.EMBEDDING_PORTS))
    builder = default_registry().spec("graph_builder", "multimodal").create({"dim": 8, "cross_k": cross_k}, ctx)
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
