"""``multimodal``: a graph per sample from encoder states.

Each upstream encoder's valid states (tokens, patches, frames; ``mask``) are
projected to ``dim`` and tagged with a learned modality embedding. Within a
modality, nodes link to their neighbours: image patches on their square grid
(4-neighbourhood), tokens and frames along the sequence. With ``summary_nodes``,
each present modality also gets one node from its encoder's ``pooled`` vector
(its own projection plus the modality embedding), linked both ways to every
node of that modality and to the other summary nodes. Across modalities,
each node links both ways to its ``cross_k`` most similar nodes of every other
modality (cosine of the projected features; the choice is not differentiated,
the features are). A sample missing a modality (no valid states) simply has no
nodes from it. Shapes: per sample ``N = sum of valid states``, ``x [N, dim]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_multimodal.specs import EDGE_TYPES, MultimodalConfig
from autoglm_sdk.plugin import BuildContext, EncoderOutput, InputError, SemanticGraph

SEQUENCE, GRID, CROSS, SUMMARY = (EDGE_TYPES.index(t) for t in ("sequence", "grid", "cross_modal", "summary"))


def _key(stage: str) -> str:
    return stage.replace(".", "__")


def neighbour_edges(count: int, grid: bool) -> torch.Tensor:
    """``[2, E]`` both-way edges between neighbours: a square grid when ``count`` is a square and asked for."""
    side = math.isqrt(count)
    pairs: list[tuple[int, int]] = []
    if grid and side * side == count and side > 1:
        for r in range(side):
            for c in range(side):
                i = r * side + c
                if c + 1 < side:
                    pairs.append((i, i + 1))
                if r + 1 < side:
                    pairs.append((i, i + side))
    else:
        pairs = [(i, i + 1) for i in range(count - 1)]
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    edges = torch.tensor(pairs, dtype=torch.long).t()
    return torch.cat([edges, edges.flip(0)], dim=1)


class MultimodalGraph(nn.Module):
    name = "multimodal"
    kind = "graph_builder"
    Config = MultimodalConfig

    def __init__(self, config: MultimodalConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.stages = {k: p for k, p in ctx.inputs.items() if p.type == "embeddings"}
        self.grid = {k: "image" in p.modalities for k, p in self.stages.items()}
        self.project = nn.ModuleDict({_key(k): nn.Linear(p.dim, config.dim) for k, p in self.stages.items()})
        self.modality = nn.Embedding(len(self.stages), config.dim)
        self.summarise = nn.ModuleDict(
            {_key(k): nn.Linear(p.dim, config.dim) for k, p in self.stages.items()} if config.summary_nodes else {}
        )

    def forward(self, inputs: Any) -> SemanticGraph:
        outputs = inputs if isinstance(inputs, dict) else {}
        missing = [k for k in self.stages if not isinstance(outputs.get(k), EncoderOutput)]
        if missing:
            raise InputError(f"multimodal: expected encoder outputs from {sorted(self.stages)}, missing {missing}")
        batch = {outputs[k].states.size(0) for k in self.stages}
        if len(batch) != 1:
            raise InputError(f"multimodal: encoders disagree on the batch size: {sorted(batch)}")
        graphs = [self._sample(outputs, b) for b in range(batch.pop())]
        return SemanticGraph.collate(graphs)

    def _sample(self, outputs: dict[str, EncoderOutput], b: int) -> SemanticGraph:
        features, edges, types, offset = [], [], [], 0
        spans: list[tuple[int, int]] = []
        for index, (stage, _) in enumerate(self.stages.items()):
            out = outputs[stage]
            states = out.states[b][out.mask[b]]
            if states.size(0) == 0:
                continue  # this sample lacks the modality
            h = self.project[_key(stage)](states) + self.modality.weight[index]
            local = neighbour_edges(h.size(0), self.grid[stage])
            edges.append(local + offset)
            types.append(torch.full((local.size(1),), GRID if self.grid[stage] else SEQUENCE, dtype=torch.long))
            features.append(h)
            spans.append((offset, offset + h.size(0)))
            offset += h.size(0)
        if not features:
            raise InputError("multimodal: a sample has no valid states in any modality")
        if self.config.summary_nodes:
            offset = self._summaries(outputs, b, spans, features, edges, types, offset)
        x = torch.cat(features)
        if self.config.cross_k and len(spans) > 1:
            with torch.no_grad():  # which neighbours is a discrete choice; gradients flow through the features
                unit = F.normalize(x, dim=-1)
                for i, (a0, a1) in enumerate(spans):
                    for j, (b0, b1) in enumerate(spans):
                        if i >= j:
                            continue
                        sim = unit[a0:a1] @ unit[b0:b1].t()
                        k = min(self.config.cross_k, b1 - b0)
                        near = sim.topk(k, dim=1).indices + b0
                        src = torch.arange(a0, a1).repeat_interleave(k).to(near.device)
                        pair = torch.stack([src, near.reshape(-1)])
                        edges.append(torch.cat([pair, pair.flip(0)], dim=1).cpu())
                        types.append(torch.full((2 * pair.size(1),), CROSS, dtype=torch.long))
        edge_index = torch.cat([e.to(x.device) for e in edges], dim=1)
        return SemanticGraph(x=x, edge_index=edge_index, edge_type=torch.cat(types).to(x.device))

    def _summaries(
        self,
        outputs: dict[str, EncoderOutput],
        b: int,
        spans: list[tuple[int, int]],
        features: list[torch.Tensor],
        edges: list[torch.Tensor],
        types: list[torch.Tensor],
        offset: int,
    ) -> int:
        """Append one summary node per present modality (after all state nodes, so ``spans`` still index the
        state nodes for the cross-modal edges); returns the new node count."""
        summaries = []
        present = [(index, stage) for index, stage in enumerate(self.stages) if bool(outputs[stage].mask[b].any())]
        for (index, stage), (start, end) in zip(present, spans):
            node = offset + len(summaries)
            pooled = outputs[stage].pooled[b : b + 1]
            features.append(self.summarise[_key(stage)](pooled) + self.modality.weight[index])
            members = torch.arange(start, end)
            pair = torch.stack([torch.full_like(members, node), members])
            edges.append(torch.cat([pair, pair.flip(0)], dim=1))
            types.append(torch.full((2 * pair.size(1),), SUMMARY, dtype=torch.long))
            summaries.append(node)
        if len(summaries) > 1:
            nodes = torch.tensor(summaries)
            pair = torch.cartesian_prod(nodes, nodes).t()
            pair = pair[:, pair[0] != pair[1]]
            edges.append(pair)
            types.append(torch.full((pair.size(1),), SUMMARY, dtype=torch.long))
        return offset + len(summaries)
