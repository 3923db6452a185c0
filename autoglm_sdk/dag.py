"""Pipeline wiring: which stage feeds which, and whether connected stages fit.

Pure Python (no torch), so ``autoglm manifest validate`` checks the wiring and
every stage signature it can before any model exists; ``autoglm build`` checks
again with the real data port, before training.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass

from autoglm_sdk.errors import ManifestError, StageMismatchError
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.protocols import TASK_OUTPUTS, BuildContext, Port, PortMismatch, TaskSpec
from autoglm_sdk.registry import suggest

SINK = "decoder"


@dataclass(frozen=True)
class Dag:
    """Stages and their ordered inputs. ``data`` is the source, ``decoder`` the sink."""

    inputs: dict[str, tuple[str, ...]]

    def order(self) -> list[str]:
        """Stages in a topological order (stable: ties keep declaration order)."""
        sorter = graphlib.TopologicalSorter({k: set(v) for k, v in self.inputs.items()})
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ManifestError(
                f"pipeline stages form a cycle: {cycle}", hint="remove one of the `inputs` entries"
            ) from exc
        rank = {k: i for i, k in enumerate(self.inputs)}
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=rank.__getitem__)
            order.extend(ready)
            sorter.done(*ready)
        return order


def wire(manifest: Manifest) -> Dag:
    """The default chain data -> encoders -> graph_builder -> reasoner -> decoder, or the manifest's ``inputs``."""
    keys = list(manifest.stages)
    encoders = [k for k in keys if k.startswith("encoders.")]
    inputs: dict[str, tuple[str, ...]] = {"data": ()}
    previous: tuple[str, ...] = ("data",)
    for key in keys:
        if key == "data":
            continue
        section = manifest.stages[key]
        if section.inputs is not None:
            for name in section.inputs:
                if name not in manifest.stages or name == key:
                    close = suggest(name, [k for k in keys if k != key])
                    raise ManifestError(
                        f"{key}.inputs: unknown stage `{name}`"
                        + (f"; did you mean `{close}`?" if close else f" (stages: {', '.join(keys)})")
                    )
            inputs[key] = tuple(section.inputs)
        elif key.startswith("encoders."):
            inputs[key] = ("data",)
        elif key == "graph_builder":
            inputs[key] = ("data", *encoders)
        else:
            inputs[key] = previous
        if not key.startswith("encoders."):
            previous = (key,)
        elif "graph_builder" not in manifest.stages:
            previous = tuple(encoders)
    dag = Dag(inputs)
    dag.order()  # raise on cycles now
    consumers = {u for ups in inputs.values() for u in ups}
    for section in manifest.objectives.values():  # an encoder may exist only to be aligned with the others
        consumers |= set(getattr(section.config, "stages", None) or encoders)
    dangling = [k for k in keys if k not in consumers and k != SINK]
    if dangling:
        raise ManifestError(
            f"stage `{dangling[0]}` feeds nothing", hint="name it in a later stage's `inputs`, or remove it"
        )
    return dag


def check_fit(
    manifest: Manifest, dag: Dag, *, data_port: Port | None = None, task: TaskSpec | None = None
) -> dict[str, Port]:
    """Resolve every stage's output port in order; raise :class:`StageMismatchError` naming both stages."""
    ports: dict[str, Port] = {}
    seed = manifest.pipeline.seed
    for key in dag.order():
        section = manifest.stages[key]
        ctx = BuildContext(inputs={u: ports[u] for u in dag.inputs[key]}, task=task, seed=seed, stage=key)
        if key == "data" and data_port is not None:
            ports[key] = data_port
            continue
        try:
            ports[key] = section.spec.output_port(section.config, ctx)
        except PortMismatch as exc:
            upstream = (
                ", ".join(f"{u} `{manifest.stages[u].plugin}` ({ports[u].describe()})" for u in dag.inputs[key])
                or "nothing"
            )
            hint = f"change {key}.plugin or the stage feeding it"
            fed = [ports[u].type for u in dag.inputs[key]]
            if "semantic graph" in str(exc) and "graph_builder" not in manifest.stages and "samples" in fed:
                hint = 'the manifest has no [graph_builder] section: add one (e.g. plugin = "text-relations")'
            raise StageMismatchError(f"{key} `{section.plugin}` does not fit {upstream}: {exc}", hint=hint) from exc
    wanted = task.output if task is not None else TASK_OUTPUTS[manifest.pipeline.task]
    if ports.get(SINK) is not None and ports[SINK].type != wanted:
        raise StageMismatchError(
            f"decoder `{manifest.stages[SINK].plugin}` must produce {wanted} for task `{manifest.pipeline.task}`, "
            f"produces {ports[SINK].type}"
        )
    for key, section in manifest.objectives.items():  # an objective reads stages' outputs: check it can
        if section.spec.signature is None:
            continue
        try:
            section.spec.output_port(section.config, BuildContext(inputs=dict(ports), task=task, seed=seed, stage=key))
        except PortMismatch as exc:
            raise StageMismatchError(
                f"{key} `{section.plugin}` does not fit this pipeline: {exc}",
                hint=f"change {key} or the stages it reads",
            ) from exc
    return ports
