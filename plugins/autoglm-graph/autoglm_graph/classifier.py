"""``classifier``: a linear or one-hidden-layer head over node states.

Node level: ``x [N, F] -> logits [N, C]``. Graph level: node states are pooled
per graph with ``batch [N]`` first: ``[B, F] -> logits [B, C]``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from autoglm_graph.specs import ClassifierConfig
from autoglm_sdk.graph import SemanticGraph, check_graph
from autoglm_sdk.protocols import BuildContext

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
        self.in_dim = ctx.input.dim
        self.level = ctx.task.level
        classes = ctx.task.num_classes
        if config.hidden:
            self.head = nn.Sequential(nn.Linear(self.in_dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, classes))
        else:
            self.head = nn.Linear(self.in_dim, classes)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, graph: SemanticGraph) -> Tensor:
        check_graph(graph, dim=self.in_dim, who="classifier")
        h = graph.x
        if self.level == "graph":
            h = POOLS[self.config.pooling](h, getattr(graph, "batch", None))
        return self.head(self.dropout(h))
