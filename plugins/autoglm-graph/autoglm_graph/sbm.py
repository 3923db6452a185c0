"""``sbm``: node classification on a seeded stochastic block model."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.utils import stochastic_blockmodel_graph

from autoglm_graph.specs import SBMConfig
from autoglm_sdk.plugin import BuildContext, Dataset, Port, TaskSpec

SPLITS = ("train", "val", "test")


def class_masks(
    y: torch.Tensor, classes: int, train_per_class: Any, val_per_class: Any, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Semi-supervised node splits: per class, ``train_per_class`` random members for training, the next
    ``val_per_class`` for validation, the rest for testing (boolean masks over the nodes). Either count may be a
    function of the class's size (scarce labels that follow an imbalance)."""
    masks = {split: torch.zeros(y.numel(), dtype=torch.bool) for split in SPLITS}
    for k in range(classes):
        members = (y == k).nonzero().view(-1)
        members = members[torch.randperm(members.numel(), generator=generator)]
        train = train_per_class(members.numel()) if callable(train_per_class) else train_per_class
        val = val_per_class(members.numel()) if callable(val_per_class) else val_per_class
        masks["train"][members[:train]] = True
        masks["val"][members[train : train + val]] = True
        masks["test"][members[train + val :]] = True
    return masks


class SBMDataSource:
    """Communities are labels; features are Gaussian around a per-community mean.

    Each split is the same graph with a different ``label_mask``: the classic
    semi-supervised setting (few labelled nodes per class, the rest held out).
    """

    name = "sbm"
    kind = "data"
    Config = SBMConfig

    def __init__(self, config: SBMConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        c = self.config
        generator = torch.Generator().manual_seed(self.seed)
        n = c.blocks * c.nodes_per_block
        y = torch.arange(c.blocks).repeat_interleave(c.nodes_per_block)
        probs = torch.full((c.blocks, c.blocks), c.p_out)
        probs.fill_diagonal_(c.p_in)
        # PyG samples from the global RNG: fork it so loading data never disturbs the caller's seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            edge_index = stochastic_blockmodel_graph([c.nodes_per_block] * c.blocks, probs, directed=False)
        means = torch.randn(c.blocks, c.feature_dim, generator=generator)
        means = c.feature_signal * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
        x = means[y] + torch.randn(n, c.feature_dim, generator=generator)

        masks = class_masks(y, c.blocks, c.train_per_class, c.val_per_class, generator)

        digest = hashlib.sha256()
        for tensor in (x, edge_index, y, *masks.values()):
            digest.update(tensor.numpy().tobytes())
        splits = {
            split: [{"graph": Data(x=x, edge_index=edge_index, y=y, label_mask=masks[split])}] for split in SPLITS
        }
        return Dataset(
            task=TaskSpec("node", c.blocks, tuple(f"community-{i}" for i in range(c.blocks))),
            port=Port("samples", frozenset({"graph"}), dim=c.feature_dim),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )
