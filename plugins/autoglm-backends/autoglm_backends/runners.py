"""What the ``onnxruntime`` and ``compile`` backends share: a stage's runner.

A runner stands in for a stage's eager forward at inference time (see
``PipelineModel.use_runners``). For an encoder it first runs
the encoder's own ``preprocess`` (tokenising, decoding files: Python, not
tensors), so what is exported or compiled is the tensor part only. A stage
whose input holds no tensors at all, or a graph, cannot be exported: with the
backend named for that stage explicitly that is an error before training;
with the backend chosen for the whole pipeline the stage runs eagerly and the
report says why (``eager_reason``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import torch

from autoglm_sdk.plugin import BackendUnavailableError


class NotExportable(Exception):
    """A value a runner cannot pass through a flat list of tensors."""


def flatten(value: Any) -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], Any]]:
    """``value`` as a flat list of tensors and a function that builds the same structure from such a list.

    Handles a tensor, a dataclass (tensor fields flattened; ``None``, numbers and strings kept as they are),
    a dict of tensors and a tuple or list of tensors; anything else raises :class:`NotExportable`.
    """
    if isinstance(value, torch.Tensor):
        return [value], lambda flat: flat[0]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [
            f.name for f in dataclasses.fields(value) if f.init and isinstance(getattr(value, f.name), torch.Tensor)
        ]
        if not names:
            raise NotExportable(f"{type(value).__name__} holds no tensors")
        return [getattr(value, n) for n in names], lambda flat: dataclasses.replace(value, **dict(zip(names, flat)))
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        keys = list(value)
        return [value[k] for k in keys], lambda flat: dict(zip(keys, flat))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        kind = type(value)
        return list(value), lambda flat: kind(flat)
    if hasattr(value, "edge_index"):
        raise NotExportable("it takes a graph, whose node and edge counts change from input to input")
    raise NotExportable(f"it takes {type(value).__name__}, not tensors")


def stage_input(stage: Any, arg: Any) -> Any:
    """What the runner hands the stage's tensor part: an encoder's preprocessed batch, else the input itself."""
    if hasattr(stage, "preprocess") and isinstance(arg, list) and arg and isinstance(arg[0], (dict, str)):
        return stage.preprocess(arg)
    return arg


def refuse_graph_inputs(backend: str, key: str, inputs: dict[str, Any], explicit: bool) -> str | None:
    """Why ``key`` cannot run on ``backend`` judging by its input ports alone (graphs), or None. Named
    explicitly for the stage that is an error now, before any training; otherwise the reason is returned."""
    graphs = [
        u
        for u, port in inputs.items()
        if getattr(port, "type", "") == "semantic_graph" or "graph" in getattr(port, "modalities", ())
    ]
    if not graphs:
        return None
    reason = f"`{key}` takes a graph (from {graphs[0]}), which {backend} cannot run"
    if explicit:
        raise BackendUnavailableError(
            f"{key}.backend: {reason}", hint=f"run {key} on cpu (remove its backend) and put only encoders on {backend}"
        )
    return reason


class FlatStage(torch.nn.Module):
    """The stage's tensor part as a module of flat tensors in, flat tensors out (what the exporter sees)."""

    def __init__(self, stage: Any, rebuild: Any) -> None:
        super().__init__()
        self.stage = stage
        self.rebuild = rebuild
        self.out_rebuild: Any = None

    def forward(self, *flat: Any) -> tuple[Any, ...]:
        out, self.out_rebuild = flatten(self.stage(self.rebuild(list(flat))))
        return tuple(out)


class StageRunner:
    """Common bookkeeping: eager fallback with a reason, timing of the first (exporting/compiling) call.
    Implements the SDK's :class:`~autoglm_sdk.plugin.StageRunner` protocol."""

    backend = ""
    capabilities: frozenset[str] = frozenset()

    def __init__(self, key: str, stage: Any, explicit: bool, eager_reason: str | None = None) -> None:
        self.key, self.stage, self.explicit = key, stage, explicit
        self.eager_reason = eager_reason
        self.prepare_seconds: float | None = None
        self.out_rebuild: Any = None  # flat graph outputs -> the stage's output structure (run_flat)

    def invalidate(self) -> None:
        """The stage's weights are about to change: forget what was exported or compiled."""

    def _give_up(self, reason: str) -> None:
        if self.explicit:
            raise BackendUnavailableError(
                f"{self.key}.backend: {self.backend} cannot run this stage: {reason}",
                hint=f"run {self.key} on cpu (remove its backend)",
            )
        self.eager_reason = reason

    def __call__(self, arg: Any) -> Any:
        if self.eager_reason:
            return self.stage(arg)
        batch = stage_input(self.stage, arg)
        return self.run(batch)

    def run(self, batch: Any) -> Any:
        raise NotImplementedError

    def run_flat(
        self,
        batch: Any,
        ready: Callable[[], bool],
        prepare: Callable[[list[torch.Tensor], Any], None],
        call: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    ) -> Any:
        """What a graph runtime does with a batch: flatten it (or run the stage eagerly, saying why), prepare the
        graph from the first batch (timed; ``prepare`` sets ``out_rebuild``), then run it on the flat tensors and
        rebuild the stage's output. A ``prepare`` that gave up leaves the runner not ``ready``: eager, as reported."""
        try:
            flat, rebuild = flatten(batch)
        except NotExportable as exc:
            self._give_up(str(exc))
            return self.stage(batch)
        if not ready():
            self.timed(lambda: prepare(flat, rebuild))
            if not ready():
                return self.stage(batch)
        return self.out_rebuild(call(flat))

    def timed(self, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        self.prepare_seconds = (self.prepare_seconds or 0.0) + time.perf_counter() - t
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "eager_reason": self.eager_reason,
            "prepare_seconds": None if self.prepare_seconds is None else round(self.prepare_seconds, 3),
        }

    def deployed_bytes(self) -> int | None:
        return None

    def summary(self) -> str:
        """One line for report.md: where the stage runs, or why it runs eagerly."""
        info = self.describe()
        if info.get("eager_reason"):
            return f"{self.backend}: no, eagerly ({info['eager_reason']})"
        parts = [self.backend]
        if info.get("providers"):
            parts.append("providers " + ", ".join(info["providers"]))
        if info.get("max_abs_diff_vs_eager") is not None:
            parts.append(f"export checked against eager PyTorch: max |difference| {info['max_abs_diff_vs_eager']:.2g}")
        if info.get("quantized"):
            diff = info.get("int8_max_abs_diff_vs_eager")  # None until the stage's first run quantises it
            parts.append(info["quantized"] + ("" if diff is None else f", max |difference| {diff:.2g}"))
        if info.get("compile_seconds") is not None:
            parts.append(f"compiled in {info['compile_seconds']:.1f} s")
        elif info.get("prepare_seconds") is not None:
            parts.append(f"exported in {info['prepare_seconds']:.1f} s")
        return "; ".join(parts)
