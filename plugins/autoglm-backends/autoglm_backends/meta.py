"""The ``meta-controller`` scheduler: places each pipeline stage on a device of this machine, then runs the stages
in topological order, re-placing them when a device fails.

Placement follows the Kubernetes scheduler framework: *filter* plugins remove the devices a stage cannot use
(each says why), *score* plugins rank the rest from 0 to 100, and the weighted sum picks the device. Filters and
scores are found by name in the ``autoglm.placement`` entry-point group (this distribution registers the built-in
ones there), so a third party adds one with an entry point to a callable that has ``kind = "filter"`` (returns a
reason to reject, or None) or ``kind = "score"`` (returns 0-100). A filter takes ``(need, device, plan)``, a score
``(need, device, plan, candidates)``: the stage's :class:`Need`, a :class:`Device`, the decisions made so far for
earlier stages, and the devices that passed every filter.

The devices come from :func:`inventory` (CPU cores, memory and load; each CUDA and NPU device with its memory,
capability and load). Every decision (device, scores per device, reasons for rejections) goes into the build
report under ``backend.placement``; ``autoglm doctor`` lists the inventory.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from typing import Any, Callable

from autoglm_sdk.plugin import AutoGLMError, AutoGLMWarning
from autoglm_sdk.plugin import StageNeed as Need

PLACEMENT_GROUP = "autoglm.placement"
#: default power models by device kind (idle, peak watts), for the energy score; the config overrides them
POWER = {"cpu": (50.0, 150.0), "cuda": (60.0, 400.0), "npu": (45.0, 310.0)}
#: words of an error that mean the device itself failed (not the stage's code): re-plan, do not report a bug
DEVICE_FAILURE_MARKERS = ("CUDA error", "device-side assert", "CUDA out of memory", "device lost", "NPU error", "ACL")


@dataclass
class Device:
    name: str  # "cpu", "cuda:0", "npu:1"
    backend: str  # the backend plugin that drives it
    index: int | None
    memory_bytes: int | None
    free_bytes: int | None
    load: float  # 0 (idle) .. 1 (saturated), now
    speed: float  # rough relative compute rate: CPU threads; GPU/NPU multiprocessors x 16
    capability: str = ""
    failed: str | None = None
    watts: tuple[float, float] | None = None  # idle, peak (default: POWER by kind; the scheduler's config overrides)


@dataclass
class Decision:
    stage: str
    device: str | None
    backend: str | None
    config: dict[str, Any]
    bytes: int = 0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # device -> score name -> 0..100, "total"
    rejected: dict[str, str] = field(default_factory=dict)  # device -> reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_device() -> Device:
    import torch

    total = free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle}
        total, free = info.get("MemTotal"), info.get("MemAvailable")
    except OSError:  # not Linux: memory unknown, the memory filter lets the stage through
        pass
    cores = os.cpu_count() or 1
    load = min(1.0, os.getloadavg()[0] / cores) if hasattr(os, "getloadavg") else 0.0
    isa = torch.backends.cpu.get_cpu_capability()
    return Device("cpu", "cpu", None, total, free, load, float(torch.get_num_threads()), isa)


def inventory() -> list[Device]:
    """Every device PyTorch can use here, now."""
    import torch

    devices = [_cpu_device()]
    for kind, module in (("cuda", getattr(torch, "cuda", None)), ("npu", getattr(torch, "npu", None))):
        if module is None or not module.is_available():
            continue
        for i in range(module.device_count()):
            props = module.get_device_properties(i)
            free, total = module.mem_get_info(i)
            try:
                load = module.utilization(i) / 100  # needs pynvml for CUDA
            except Exception:  # no utilisation counter: memory in use stands for load
                load = 1 - free / total
            capability = f"{getattr(props, 'major', '?')}.{getattr(props, 'minor', '?')}"
            speed = float(getattr(props, "multi_processor_count", 1) * 16)
            devices.append(Device(f"{kind}:{i}", kind, i, total, free, load, speed, capability))
    return devices


# ------------------------------------------------------------------ filters and scores (built in)


def healthy(need: Need, device: Device, plan: dict[str, Decision]) -> str | None:
    return f"failed: {device.failed}" if device.failed else None


healthy.kind = "filter"


def fits_memory(need: Need, device: Device, plan: dict[str, Decision]) -> str | None:
    if device.free_bytes is None:
        return None
    wanted = need.bytes + sum(d.bytes for d in plan.values() if d.device == device.name)
    if wanted > device.free_bytes:
        return f"needs {wanted / 2**20:.0f} MiB with the stages placed there, {device.free_bytes / 2**20:.0f} MiB free"
    return None


fits_memory.kind = "filter"


def fastest(need: Need, device: Device, plan: dict[str, Decision], candidates: list[Device]) -> float:
    return 100 * device.speed / max(c.speed for c in candidates)


fastest.kind = "score"


def least_loaded(need: Need, device: Device, plan: dict[str, Decision], candidates: list[Device]) -> float:
    return 100 * (1 - device.load)


least_loaded.kind = "score"


def together(need: Need, device: Device, plan: dict[str, Decision], candidates: list[Device]) -> float:
    """Stages next to their inputs: no copies between devices."""
    upstream = [plan[u].device for u in need.inputs if u in plan]
    return 100 * sum(d == device.name for d in upstream) / len(upstream) if upstream else 50.0


together.kind = "score"


def energy(need: Need, device: Device, plan: dict[str, Decision], candidates: list[Device]) -> float:
    """Fewest added watts: waking a device no stage uses costs its idle power; the work itself, the dynamic part
    over the device's speed (a faster device finishes the same work sooner)."""

    def added(d: Device) -> float:
        idle, peak = d.watts or POWER.get(d.backend, POWER["cpu"])
        wake = 0.0 if d.name == "cpu" or any(x.device == d.name for x in plan.values()) else idle
        return wake + (peak - idle) * need.bytes / 2**30 / d.speed

    costs = {c.name: added(c) for c in candidates}
    top = max(costs.values()) or 1.0
    return 100 * (1 - costs[device.name] / top)


energy.kind = "score"


@cache
def placement_plugins() -> dict[str, metadata.EntryPoint]:
    """Filter and score plugins by name, from the ``autoglm.placement`` entry points (not loaded)."""
    return {entry.name: entry for entry in metadata.entry_points(group=PLACEMENT_GROUP)}


def load_plugin(name: str, kind: str) -> Callable[..., Any]:
    entries = placement_plugins()
    if name not in entries:
        known = sorted(entries)
        raise AutoGLMError(f"scheduler: unknown placement {kind} `{name}` (installed: {', '.join(known)})")
    plugin = entries[name].load()
    if getattr(plugin, "kind", None) != kind:
        raise AutoGLMError(f"scheduler: `{name}` is a placement {getattr(plugin, 'kind', '?')}, not a {kind}")
    return plugin


# ------------------------------------------------------------------ the scheduler


class MetaControllerScheduler:
    name = "meta-controller"
    kind = "scheduler"

    def __init__(self, config: Any, ctx: Any = None) -> None:
        self.config = config
        self.filters = {n: load_plugin(n, "filter") for n in config.filters}
        self.scores = {n: (load_plugin(n, "score"), w) for n, w in config.scores.items()}
        self.failed: dict[str, str] = {}
        self.devices: Callable[[], list[Device]] = inventory
        self.replace: Callable[[], None] | None = None  # set by the pipeline's placement: place the stages again
        self.last_plan: dict[str, Decision] | None = None

    def plan(self, needs: list[Need]) -> dict[str, Decision]:
        """A device for each stage, in order (earlier stages are placed first, so ``together`` sees them)."""
        devices = self.devices()
        for device in devices:
            device.failed = self.failed.get(device.name, device.failed)
            power = self.config.power.get(device.name) or self.config.power.get(device.backend)
            device.watts = tuple(power) if power else device.watts
        if self.config.devices:
            devices = [d for d in devices if d.name in self.config.devices or d.backend in self.config.devices]
        plan: dict[str, Decision] = {}
        for need in needs:
            rejected = {}
            for device in devices:
                for name, check in self.filters.items():
                    reason = check(need, device, plan)
                    if reason:
                        rejected[device.name] = f"{name}: {reason}"
                        break
            candidates = [d for d in devices if d.name not in rejected]
            if not candidates:
                raise AutoGLMError(
                    f"scheduler: no device can take stage `{need.stage}`: "
                    + "; ".join(f"{d} ({r})" for d, r in rejected.items()),
                    hint="free memory, or widen [scheduler] devices",
                )
            scores = {}
            for device in candidates:
                parts = {n: round(score(need, device, plan, candidates), 2) for n, (score, _) in self.scores.items()}
                parts["total"] = round(sum(parts[n] * w for n, (_, w) in self.scores.items()), 2)
                scores[device.name] = parts
            best = max(candidates, key=lambda d: (scores[d.name]["total"], -devices.index(d)))
            config = {} if best.index is None else {"device_index": best.index}
            plan[need.stage] = Decision(need.stage, best.name, best.backend, config, need.bytes, scores, rejected)
        self.last_plan = plan
        return plan

    def run(self, dag: Any, feeds: dict[str, Any], call: Callable[[str, list[Any]], Any]) -> dict[str, Any]:
        """Stages in topological order; a stage whose device fails is re-placed once, with a warning, and rerun."""
        outputs = dict(feeds)
        for stage in dag.order():
            if stage in outputs:
                continue
            args = [outputs[u] for u in dag.inputs[stage]]
            try:
                outputs[stage] = call(stage, args)
            except Exception as exc:
                device = self.device_of(stage)
                if self.replace is None or device is None or not is_device_failure(exc):
                    raise
                self.fail(device, _first_line(exc))
                outputs[stage] = call(stage, args)
        return outputs

    def fail(self, device: str, reason: str) -> None:
        """Mark ``device`` failed and place every stage again without it."""
        self.failed[device] = reason
        warnings.warn(f"scheduler: {device} failed ({reason}); stages re-placed without it", AutoGLMWarning, 2)
        if self.replace is not None:
            self.replace()

    def device_of(self, stage: str) -> str | None:
        decision = (self.last_plan or {}).get(stage)
        return decision.device if decision else None


def is_device_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if any(marker in str(seen) for marker in DEVICE_FAILURE_MARKERS):
            return True
        seen = seen.__cause__
    return False


def _first_line(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return str(root).splitlines()[0][:200] if str(root) else type(root).__name__
