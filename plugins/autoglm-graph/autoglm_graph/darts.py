"""``darts``: a supernet whose layers mix candidate operations (DARTS, Liu, Simonyan & Yang, 2019).

Node features go through a linear stem to ``hidden`` size; each of ``layers``
layers then computes ``sum_k softmax(alpha_l)_k * op_k(h)`` over its candidate
operations. The candidates are registered reasoners named in the manifest
(each built as a one-round reasoner of width ``hidden``, so an installed
third-party GNN joins the search space by name) plus the built-in ``skip``
(identity) and ``zero`` (no signal), and ``mlp``, a registered reasoner.

With ``architecture`` set (one operation per layer, as ``autoglm search``
derives it) there is no mixing and no ``alpha``: the discrete network is
built and trained like any reasoner. ``alpha`` are the architecture
parameters (:meth:`arch_parameters`), trained on validation batches by the
search; every other parameter is an ordinary weight.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from autoglm_graph.specs import DartsConfig
from autoglm_sdk.plugin import BuildContext, Port, SemanticGraph, check_graph

BUILTIN = ("skip", "zero")


class Skip(nn.Module):
    def forward(self, graph: SemanticGraph) -> torch.Tensor:
        return graph.x


class Zero(nn.Module):
    def forward(self, graph: SemanticGraph) -> torch.Tensor:
        return torch.zeros_like(graph.x)


class Operation(nn.Module):
    """A registered reasoner as a candidate operation: graph with ``hidden`` states in, new states out."""

    def __init__(self, name: str, hidden: int, num_edge_types: int, seed: int) -> None:
        super().__init__()
        from autoglm_sdk import default_registry

        spec = default_registry().spec("reasoner", name)
        fields = spec.config.model_fields
        options = {k: v for k, v in {"hidden": hidden, "layers": 1, "dropout": 0.0}.items() if k in fields}
        ctx = BuildContext(
            inputs={"layer": Port("semantic_graph", dim=hidden, num_edge_types=num_edge_types)},
            seed=seed,
            stage=f"darts.{name}",
        )
        port = spec.output_port(spec.config.model_validate(options), ctx)
        if port.dim != hidden:
            raise ValueError(f"darts: operation `{name}` maps to {port.dim} features, not hidden={hidden}")
        self.reasoner = spec.create(options, ctx)

    def forward(self, graph: SemanticGraph) -> torch.Tensor:
        return self.reasoner(graph).x


def make_operation(name: str, hidden: int, num_edge_types: int, seed: int) -> nn.Module:
    if name == "skip":
        return Skip()
    if name == "zero":
        return Zero()
    return Operation(name, hidden, num_edge_types, seed)


class DartsReasoner(nn.Module):
    name = "darts"
    kind = "reasoner"
    Config = DartsConfig

    def __init__(self, config: DartsConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        port = ctx.input
        if port.dim is None:
            raise ValueError("darts needs the input feature size (ctx.input.dim)")
        self.in_dim, c = port.dim, config
        edge_types = port.num_edge_types or 1
        self.stem = nn.Linear(self.in_dim, c.hidden)
        if c.architecture:
            self.candidates = [[name] for name in c.architecture]
        else:
            self.candidates = [list(c.operations) for _ in range(c.layers)]
        self.layer_ops = nn.ModuleList(
            nn.ModuleList(make_operation(name, c.hidden, edge_types, ctx.seed) for name in names)
            for names in self.candidates
        )
        self.dropout = nn.Dropout(c.dropout)
        self.alpha = None if c.architecture else nn.Parameter(1e-3 * torch.randn(c.layers, len(c.operations)))
        self.masked: set[tuple[int, int]] = set()  # (layer, op) switched off: the search's perturbation read-out

    # ---------------------------------------------------------------- search API

    def arch_parameters(self) -> list[nn.Parameter]:
        return [] if self.alpha is None else [self.alpha]

    def weights(self) -> torch.Tensor:
        """Softmax of ``alpha`` per layer (``[layers, ops]``), masked operations at zero."""
        if self.alpha is None:
            return torch.ones(len(self.candidates), 1)
        w = torch.softmax(self.alpha / self.config.temperature, dim=-1)
        if self.masked:
            keep = torch.ones_like(w)
            for layer, op in self.masked:
                keep[layer, op] = 0
            w = w * keep
            w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
        return w

    # ------------------------------------------------------------------ forward

    def forward(self, graph: SemanticGraph) -> SemanticGraph:
        check_graph(graph, dim=self.in_dim, who=self.name)
        h = torch.relu(self.stem(graph.x))
        weights = self.weights().to(h.device)
        active = weights.detach() > 0  # a masked operation is skipped outside training
        for layer, ops in enumerate(self.layer_ops):
            current = copy.copy(graph)
            current.x = self.dropout(h) if layer else h
            if len(ops) == 1:
                h = ops[0](current)
                continue
            h = sum(weights[layer, k] * op(current) for k, op in enumerate(ops) if active[layer, k] or self.training)
        result = copy.copy(graph)
        result.x = h
        return result

    def derive(self) -> list[str]:
        """The discrete architecture: per layer the strongest operation other than ``zero``, with at most
        ``max_skip`` layers on ``skip`` (the weakest skip layers take their best other operation)."""
        if self.alpha is None:
            return [names[0] for names in self.candidates]
        return derive(self.weights().detach(), self.config.operations, self.config.max_skip)


def derive(weights: torch.Tensor, operations: list[str], max_skip: int) -> list[str]:
    """Per layer the highest-scoring operation, never ``zero``, at most ``max_skip`` layers on ``skip``."""
    names = list(operations)
    allowed = torch.tensor([name != "zero" for name in names])
    scores = weights.clone().float()
    scores[:, ~allowed] = float("-inf")
    choice = scores.argmax(-1).tolist()
    if "skip" in names:
        skip = names.index("skip")
        on_skip = [layer for layer, k in enumerate(choice) if k == skip]
        # the layers where skip wins by the least give it up first
        on_skip.sort(key=lambda layer: float(scores[layer].topk(2).values.diff().abs()))
        for layer in on_skip[: max(0, len(on_skip) - max_skip)]:
            row = scores[layer].clone()
            row[skip] = float("-inf")
            choice[layer] = int(row.argmax())
    return [names[k] for k in choice]
