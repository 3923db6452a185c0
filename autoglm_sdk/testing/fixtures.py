"""The kit's standard fixtures: small seeded inputs and build contexts per kind."""

from __future__ import annotations

from typing import Any

from autoglm_sdk.protocols import BuildContext, Port, TaskSpec

FEATURE_DIM = 8
NUM_EDGE_TYPES = 3
NUM_CLASSES = 3
TASK = TaskSpec("graph", NUM_CLASSES, ("a", "b", "c"))
GRAPH_PORT = Port("semantic_graph", dim=FEATURE_DIM, num_edge_types=NUM_EDGE_TYPES)
#: Candidate inputs for graph builders: the first one its signature accepts is used.
SAMPLE_PORTS = {
    "graph": Port("samples", frozenset({"graph"}), dim=FEATURE_DIM, num_edge_types=NUM_EDGE_TYPES),
    "text": Port("samples", frozenset({"text"})),
}
TEXTS = [
    "Anna is Ben's mother. Ben's sister is Clara.",
    "Dmitri has a brother named Emil.",
    "Fatima, the aunt of Gustav, lives nearby. Gustav's father is Hassan.",
]


def random_graphs(count: int = 3, dim: int = FEATURE_DIM, seed: int = 0) -> list[Any]:
    """``count`` small directed graphs of 4..7 nodes with typed edges and node texts."""
    import torch

    from autoglm_sdk.graph import SemanticGraph

    generator = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        n = 4 + i % 4
        num_edges = 2 * n
        edge_index = torch.randint(0, n, (2, num_edges), generator=generator)
        graphs.append(
            SemanticGraph(
                x=torch.randn(n, dim, generator=generator),
                edge_index=edge_index,
                edge_type=torch.randint(0, NUM_EDGE_TYPES, (num_edges,), generator=generator),
                y=torch.randint(0, NUM_CLASSES, (n,), generator=generator),
                node_text=[f"node {j}" for j in range(n)],
            )
        )
    return graphs


def samples_for(port: Port, count: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Raw samples filling ``port``, with graph-level labels."""
    from torch_geometric.data import Data

    samples = []
    graphs = random_graphs(count, port.dim or FEATURE_DIM, seed) if "graph" in port.modalities else []
    for i in range(count):
        sample: dict[str, Any] = {"label": i % NUM_CLASSES}
        if "graph" in port.modalities:
            g = graphs[i]
            sample["graph"] = Data(x=g.x, edge_index=g.edge_index, edge_type=g.edge_type, y=g.y)
        if "text" in port.modalities:
            sample["text"] = TEXTS[i % len(TEXTS)]
        samples.append(sample)
    return samples


def context_for(kind: str, spec: Any, config: Any, seed: int = 0) -> BuildContext:
    """A build context that satisfies ``spec``'s signature for the kit's fixtures."""
    from autoglm_sdk.protocols import PortMismatch

    if kind in ("reasoner", "decoder"):
        return BuildContext(inputs={"upstream": GRAPH_PORT}, task=TASK, seed=seed, stage=kind)
    if kind == "graph_builder":
        problems = []
        for port in SAMPLE_PORTS.values():
            ctx = BuildContext(inputs={"data": port}, task=TASK, seed=seed, stage=kind)
            try:
                spec.output_port(config, ctx)
                return ctx
            except PortMismatch as exc:
                problems.append(str(exc))
        raise AssertionError(f"no standard fixture fits this graph builder: {'; '.join(problems)}")
    return BuildContext(task=TASK, seed=seed, stage=kind)
