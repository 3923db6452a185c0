"""The ``sequential`` scheduler: one stage at a time, in topological order."""

from __future__ import annotations

from typing import Any, Callable

from autoglm_backends.specs import SequentialConfig


class SequentialScheduler:
    name = "sequential"
    kind = "scheduler"
    Config = SequentialConfig

    def __init__(self, config: SequentialConfig, ctx: Any = None) -> None:
        self.config = config

    def run(self, dag: Any, feeds: dict[str, Any], call: Callable[[str, list[Any]], Any]) -> dict[str, Any]:
        """Run every stage whose value is not fed, after all of its inputs; return all outputs."""
        outputs = dict(feeds)
        for stage in dag.order():
            if stage not in outputs:
                outputs[stage] = call(stage, [outputs[u] for u in dag.inputs[stage]])
        return outputs
