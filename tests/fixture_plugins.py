"""Plugins defined for tests, used through import paths (--allow-import-paths).

`shapes`: a graph-level DataSource.

Stars against cycles of 5..9 nodes: features carry only a constant and the
node degree scaled by the graph size, so the class is in the structure.
"""

from __future__ import annotations

import hashlib

from pydantic import Field

from autoglm_sdk.protocols import BuildContext, Dataset, PluginConfig, PluginSpec, Port, TaskSpec


class ShapesConfig(PluginConfig):
    graphs_per_split: int = Field(24, ge=2, description="Graphs in each split (half stars, half cycles).")


class Shapes:
    name = "shapes"
    kind = "data"
    Config = ShapesConfig

    def __init__(self, config: ShapesConfig, ctx: BuildContext | None = None) -> None:
        self.config, self.seed = config, ctx.seed if ctx else 0

    def load(self) -> Dataset:
        import torch
        from torch_geometric.data import Data
        from torch_geometric.utils import degree, to_undirected

        generator = torch.Generator().manual_seed(self.seed)
        digest = hashlib.sha256()
        splits = {}
        for split in ("train", "val", "test"):
            samples = []
            for i in range(self.config.graphs_per_split):
                n = int(torch.randint(5, 10, (1,), generator=generator))
                label = i % 2
                if label == 0:  # star
                    edges = torch.stack([torch.zeros(n - 1, dtype=torch.long), torch.arange(1, n)])
                else:  # cycle
                    edges = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
                edges = to_undirected(edges, num_nodes=n)
                deg = degree(edges[0], n)
                x = torch.stack([torch.ones(n), deg / n], dim=1)
                digest.update(edges.numpy().tobytes())
                samples.append({"graph": Data(x=x, edge_index=edges), "label": label})
            splits[split] = samples
        return Dataset(
            TaskSpec("graph", 2, ("star", "cycle")),
            Port("samples", frozenset({"graph"}), dim=2),
            splits,
            digest.hexdigest(),
        )


spec = PluginSpec(
    name="shapes",
    kind="data",
    config=ShapesConfig,
    factory="fixture_plugins:Shapes",
    summary="Stars against cycles (test data).",
    signature=lambda config, ctx: Port("samples", frozenset({"graph"}), dim=2),
)


class ZeroSmallConfig(PluginConfig):
    fraction: float = Field(0.5, gt=0, lt=1, description="Fraction of each weight matrix's entries to set to zero.")


class ZeroSmallWeights:
    """Unstructured magnitude pruning in place (test compressor; shrinks nothing on disk)."""

    name = "zero-small"
    kind = "compressor"
    Config = ZeroSmallConfig

    def __init__(self, config: ZeroSmallConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    def apply(self, model, ctx):
        import torch

        with torch.no_grad():
            for param in model.parameters():
                if param.dim() == 2:
                    cutoff = param.abs().flatten().kthvalue(max(1, int(self.config.fraction * param.numel()))).values
                    param[param.abs() <= cutoff] = 0.0
        return model


zero_small = PluginSpec(
    name="zero-small",
    kind="compressor",
    config=ZeroSmallConfig,
    factory="fixture_plugins:ZeroSmallWeights",
    summary="Zero the smallest weights (test).",
)


class PhrasesConfig(PluginConfig):
    per_split: int = Field(24, ge=4, description="Samples per split.")


class Phrases:
    """Two-class texts (test data for text encoders and alignment)."""

    name = "phrases"
    kind = "data"
    Config = PhrasesConfig

    def __init__(self, config: PhrasesConfig, ctx: BuildContext | None = None) -> None:
        self.config = config

    def load(self) -> Dataset:
        words = [["red apple", "ripe cherry", "fresh strawberry"], ["blue sky", "deep ocean", "cold ice"]]
        splits = {}
        for split in ("train", "val", "test"):
            splits[split] = [
                {"text": f"a {words[i % 2][i % 3]} number {i}", "label": i % 2} for i in range(self.config.per_split)
            ]
        return Dataset(
            TaskSpec("graph", 2, ("warm", "cold")), Port("samples", frozenset({"text"})), splits, "phrases-v1"
        )


phrases = PluginSpec(
    name="phrases",
    kind="data",
    config=PhrasesConfig,
    factory="fixture_plugins:Phrases",
    summary="Two-class phrases (test).",
    signature=lambda c, ctx: Port("samples", frozenset({"text"})),
)

SMALL_TEXT = {
    "pipeline": {"name": "phrases", "seed": 0},
    "data": {"plugin": "fixture_plugins:phrases"},
    "encoders": {
        "a": {
            "plugin": "bert",
            "hidden_size": 16,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_size": 32,
            "embed_dim": 8,
        },
        "b": {
            "plugin": "bert",
            "hidden_size": 16,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_size": 32,
            "embed_dim": 8,
            "pooling": "mean",
        },
    },
    "decoder": {"plugin": "classifier", "inputs": ["encoders.a"]},
}
