"""The example plugin proves itself with the SDK's contract suite, as any third party would."""

from autoglm_sdk.testing import ReasonerContract


class TestAPPNPContract(ReasonerContract):
    plugin = "appnp"
    config = {"hidden": 16, "steps": 5}


def test_appnp_propagates_beyond_its_mlp():
    """With one MLP layer, a node's state still depends on nodes several hops away."""
    import torch

    from autoglm_plugin_example import appnp
    from autoglm_sdk.plugin import BuildContext, Port, SemanticGraph

    ctx = BuildContext(inputs={"g": Port("semantic_graph", dim=4, num_edge_types=1)})
    model = appnp.create({"hidden": 4, "mlp_layers": 1, "steps": 5, "dropout": 0.0}, ctx).eval()
    chain = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # path 0-1-2-3-4, undirected below
    edge_index = torch.cat([chain, chain.flip(0)], dim=1)
    x = torch.zeros(5, 4)
    base = model(SemanticGraph(x=x, edge_index=edge_index)).x
    x[4] = 1.0  # change only the far end of the path
    moved = model(SemanticGraph(x=x, edge_index=edge_index)).x
    assert not torch.allclose(base[0], moved[0]), "node 0 should feel node 4 after 5 propagation steps"
