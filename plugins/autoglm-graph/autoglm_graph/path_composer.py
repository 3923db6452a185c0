"""``path-composer``: composes typed edges along paths from the query's source.

Each node holds a distribution over ``K`` learned relation states. The source
starts in state 0 ("self"). Each round, every node not yet reached receives,
from each reached neighbour ``u`` over an edge of type ``r``, the message
``s_u T_r``, where ``T_r = softmax(W_r)`` is a learned ``K x K`` transition
table (row: state so far, column: state after following an ``r`` edge).
Messages arriving in the same round are averaged and the node's state is then
fixed: states spread outward from the source like a breadth-first search, so
the target's state is the composition of the relations on a shortest path to it.
No transition leads into state 0: a first-arrival path never returns to the
source, and an automaton allowed to reuse the source's state for a relation
(it did, for "grandparent") restarts every later step as if from the source.
On classic kinship stories, 8 seeds with one restart each, this took the
models that fit validation perfectly from 3 to 6 and those among them that
carry to 10 hops from 2 to 5.

This is a probabilistic automaton over relation states, the neural analogue of
a composition rule table (R5, Lu et al. 2022, learns such rules explicitly).
With ``straight_through``, states are one-hot in the forward pass and
gradients pass as if they were soft: composition then cannot drift over long
chains, which is what lets 2-3-hop training carry to 10 hops.

A graph may carry ``edge_type_probs [E, R]`` (a builder that learns edge types
from the answers, such as ``relation-extractor`` with ``learn_from_answers``):
each edge then follows the mixture of the tables its distribution weighs, so
the answer loss reaches the builder.

Shapes: ``x [N, F] -> x [N, K + F]`` (the state, then the input features, so a
decoder can read the target's gender beside its state).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from autoglm_graph.specs import PathComposerConfig
from autoglm_sdk.plugin import BuildContext, InputError, SemanticGraph, check_graph


class PathComposer(nn.Module):
    name = "path-composer"
    kind = "reasoner"
    Config = PathComposerConfig

    def __init__(self, config: PathComposerConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        port = ctx.input
        self.in_dim = port.dim
        self.num_edge_types = port.num_edge_types or 1
        k = config.states
        # logits of T_r; small random start so early states are nearly uniform but distinguishable
        self.transitions = nn.Parameter(torch.randn(self.num_edge_types, k, k) * config.init_scale)

    @property
    def reach(self) -> int:
        """How many relations apart the target may be from the source: one round per relation."""
        return self.config.max_rounds

    def reset_parameters(self) -> None:
        nn.init.normal_(self.transitions, std=self.config.init_scale)

    def _discretise(self, states: torch.Tensor) -> torch.Tensor:
        if not self.config.straight_through:
            return states
        hard = torch.zeros_like(states).scatter_(-1, states.argmax(-1, keepdim=True), 1.0)
        return hard + states - states.detach()

    def forward(self, graph: SemanticGraph) -> SemanticGraph:
        check_graph(graph, dim=self.in_dim, num_edge_types=self.num_edge_types, who=self.name)
        source = getattr(graph, "is_source", None)
        if source is None:
            raise InputError(
                "path-composer: the graph marks no query source (`is_source`); use a builder that marks the query pair"
            )
        x = graph.x
        n, k = x.size(0), self.config.states
        src, dst = graph.edge_index
        into_source = torch.zeros(k, dtype=torch.bool, device=x.device)
        into_source[0] = True
        table = self.transitions.masked_fill(into_source, float("-inf")).softmax(-1).to(x.dtype)  # [R, K, K]
        soft = getattr(graph, "edge_type_probs", None)  # [E, R]: a builder still learning which type an edge has
        states = torch.zeros(n, k, dtype=x.dtype, device=x.device)
        states[source.bool(), 0] = 1.0
        reached = source.bool().clone()
        for _ in range(self.config.max_rounds):
            live = reached[src] & ~reached[dst]
            if not bool(live.any()):
                break
            e_src, e_dst = src[live], dst[live]
            if soft is not None:  # each edge's transition table is its type distribution's mixture of tables
                messages = torch.einsum("ek,er,rkj->ej", states[e_src], soft[live], table)
            else:
                messages = torch.einsum("ek,ekj->ej", states[e_src], table[graph.edge_type[live]])
            incoming = torch.zeros_like(states).index_add_(0, e_dst, messages)
            counts = torch.zeros(n, dtype=x.dtype, device=x.device).index_add_(
                0, e_dst, torch.ones_like(e_dst, dtype=x.dtype)
            )
            fresh = (counts > 0) & ~reached
            update = self._discretise(incoming / counts.clamp_min(1).unsqueeze(-1))
            states = torch.where(fresh.unsqueeze(-1), update, states)
            reached = reached | fresh
        result = copy.copy(graph)
        result.x = torch.cat([states, x], dim=-1)
        return result
