"""``classifier``: a linear or one-hidden-layer head over node states or embeddings.

Readouts (``N`` nodes, ``B`` graphs, ``F`` state size, ``C`` classes):

* node level: ``x [N, F] -> logits [N, C]``;
* ``pool``: node states pooled per graph with ``batch [N]``: ``[B, F] -> [B, C]``;
* ``pair``: the states of each graph's query source and target (``is_source``,
  ``is_target`` masks from the graph builder), optionally with the pooled graph:
  ``[B, 2F (+F)] -> [B, C]``;
* ``target``: the query target's state alone, ``[B, F] -> [B, C]``: for a
  reasoner whose target state already holds everything the answer depends on
  (``path-composer``: the composed relation and the target's own attributes),
  so the head cannot learn to lean on the source's attributes;
* embeddings input (a text or image encoder): the encoder's ``pooled [B, F]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from autoglm_graph.specs import ClassifierConfig, classifier_readout
from autoglm_sdk.plugin import BuildContext, EncoderOutput, InputError, check_graph

POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


class Classifier(nn.Module):
    name = "classifier"
    kind = "decoder"
    Config = ClassifierConfig

    def __init__(self, config: ClassifierConfig, ctx: BuildContext) -> None:
        super().__init__()
        if ctx.task is None:
            raise ValueError("classifier needs the task (number of classes) in its build context")
        self.config = config
        port = ctx.input
        self.in_dim = port.dim
        self.readout = classifier_readout(config, port, ctx.task)
        width = {"pair": 2 * self.in_dim + (self.in_dim if config.pair_with_graph else 0)}.get(
            self.readout, self.in_dim
        )
        classes = ctx.task.num_classes
        if config.hidden:
            self.head = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU(), nn.Linear(config.hidden, classes))
        else:
            self.head = nn.Linear(width, classes)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs: Any) -> Tensor:
        return self.classify(self.features(inputs))

    def features(self, inputs: Any) -> Tensor:
        """The rows the head classifies, one per logit row: node states, pooled graphs, query rows, embeddings.
        Objectives that work in embedding space (mixup, SMOTE) make new rows and :meth:`classify` them."""
        if self.readout == "embeddings":
            if not isinstance(inputs, EncoderOutput):
                raise InputError(f"classifier: expected an encoder's output, got {type(inputs).__name__}")
            if inputs.pooled.size(-1) != self.in_dim:
                raise InputError(f"classifier: expected embeddings of size {self.in_dim}, got {inputs.pooled.size(-1)}")
            return inputs.pooled
        graph = inputs
        check_graph(graph, dim=self.in_dim, who="classifier")
        h = graph.x
        if self.readout == "pool":
            h = POOLS[self.config.pooling](h, getattr(graph, "batch", None))
        elif self.readout in ("pair", "target"):
            h = self._query_rows(graph, h)
        return h

    def classify(self, rows: Tensor) -> Tensor:
        return self.head(self.dropout(rows))

    def _query_rows(self, graph: Any, h: Tensor) -> Tensor:
        """Each graph's target row (readout ``target``), or its source and target rows side by side (``pair``)."""
        source, target = getattr(graph, "is_source", None), getattr(graph, "is_target", None)
        batch = getattr(graph, "batch", None)
        if batch is None:
            batch = torch.zeros(h.size(0), dtype=torch.long, device=h.device)
        graphs = int(batch.max()) + 1 if batch.numel() else 0
        if source is None or target is None:
            raise InputError(
                f"classifier: readout '{self.readout}' needs `is_source` and `is_target` node masks on the graph"
            )
        if int(source.sum()) != graphs or int(target.sum()) != graphs:
            raise InputError(
                f"classifier: every graph needs exactly one query source and one target; "
                f"got {int(source.sum())} sources and {int(target.sum())} targets in {graphs} graphs"
            )
        # masks select one node per graph, in graph order because batching keeps node order
        if self.readout == "target":
            return h[target.bool()]
        parts = [h[source.bool()], h[target.bool()]]
        if self.config.pair_with_graph:
            parts.append(global_mean_pool(h, batch))
        return torch.cat(parts, dim=-1)
