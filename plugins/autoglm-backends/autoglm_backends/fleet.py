"""Placing pipeline stages on a fleet of devices under a power model: first-fit, round-robin and energy-aware
bin packing, and what each placement costs (pure Python, for benchmarks/placement.py; the meta-controller's
``energy`` score applies the same idea, waking a device costs its idle watts, to the devices of one machine).

Power model, per device: ``idle_w`` while powered on, ``sleep_w`` when it holds no stage (powered down), and a
dynamic part proportional to the work it does and to the square of its clock (dynamic energy per operation goes
with V², and V with f under DVFS)::

    watts = idle_w + (peak_w - idle_w) * (work / capacity) * f²

where ``work`` is the device-seconds per second its stages ask for at full clock and ``capacity`` 1.0. At DVFS
level ``f`` a device serves ``f`` device-seconds per second, so its utilisation is ``work / f``. Latency of a
stage: its service time at clock ``f`` over ``1 - utilisation`` (an M/M/1 queue), against the stage's SLO.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: utilisation above which a device is not given more work (headroom for bursts; all policies keep it)
MAX_UTILISATION = 0.85


@dataclass(frozen=True)
class DeviceModel:
    name: str
    kind: str  # "cpu", "cuda", "npu": the backend plugin that drives it
    memory_gb: float
    idle_w: float
    peak_w: float
    sleep_w: float = 0.0
    dvfs: tuple[float, ...] = (1.0,)  # clock levels as fractions of the highest, ascending
    speed: dict[str, float] = field(default_factory=dict)  # work class -> speed-up over a reference CPU core


@dataclass(frozen=True)
class StageLoad:
    """One stage of one deployed pipeline: its request rate, its service time on the reference device, its work
    class (how much faster each device kind runs it), its memory and its latency objective."""

    name: str
    rate: float  # requests per second
    seconds: float  # service time per request on the reference device at full clock
    work_class: str
    memory_gb: float
    slo_s: float


@dataclass
class Placement:
    assignment: dict[str, str]  # stage -> device
    clocks: dict[str, float]  # device -> DVFS level
    unplaced: list[str]


def service(stage: StageLoad, device: DeviceModel) -> float:
    """Seconds per request at full clock on this device."""
    return stage.seconds / device.speed.get(stage.work_class, 1.0)


def work(stage: StageLoad, device: DeviceModel) -> float:
    return stage.rate * service(stage, device)


def fits(stages: list[StageLoad], device: DeviceModel, clock: float = 1.0) -> bool:
    """Memory fits, utilisation at most MAX_UTILISATION and every stage within its SLO at this clock."""
    if sum(s.memory_gb for s in stages) > device.memory_gb:
        return False
    rho = sum(work(s, device) for s in stages) / clock
    if rho > MAX_UTILISATION:
        return False
    return all(service(s, device) / clock / (1 - rho) <= s.slo_s for s in stages)


def first_fit(stages: list[StageLoad], devices: list[DeviceModel]) -> Placement:
    """Each stage, in arrival order, on the first device it fits on; every clock at its highest."""
    return _deal(stages, devices, rotate=False)


def round_robin(stages: list[StageLoad], devices: list[DeviceModel]) -> Placement:
    """Stages dealt to devices in turn (skipping those it does not fit); every clock at its highest."""
    return _deal(stages, devices, rotate=True)


def _deal(stages: list[StageLoad], devices: list[DeviceModel], rotate: bool) -> Placement:
    """Each stage on the first device it fits on, looking from the first device (first-fit) or from the one after
    the last device used (round-robin)."""
    held: dict[str, list[StageLoad]] = {d.name: [] for d in devices}
    assignment, unplaced, turn = {}, [], 0
    for stage in stages:
        for step in range(len(devices)):
            device = devices[(turn + step) % len(devices)]
            if fits([*held[device.name], stage], device):
                held[device.name].append(stage)
                assignment[stage.name] = device.name
                turn = (turn + step + 1) % len(devices) if rotate else 0
                break
        else:
            unplaced.append(stage.name)
    return Placement(assignment, {d.name: 1.0 for d in devices}, unplaced)


def energy_aware(stages: list[StageLoad], devices: list[DeviceModel]) -> Placement:
    """Best-fit decreasing on watts: the heaviest stages first, each where it adds the fewest watts (waking a
    powered-down device costs its idle power), then each device's clock lowered as far as its stages' SLOs and the
    utilisation cap allow."""
    held: dict[str, list[StageLoad]] = {d.name: [] for d in devices}
    assignment, unplaced = {}, []
    by_name = {d.name: d for d in devices}

    def heaviest(stage: StageLoad) -> float:
        return max(work(stage, d) for d in devices)

    for stage in sorted(stages, key=heaviest, reverse=True):
        options = []
        for device in devices:
            if fits([*held[device.name], stage], device):
                added = watts(held[device.name] + [stage], device, 1.0) - watts(held[device.name], device, 1.0)
                options.append((added, -sum(work(s, device) for s in held[device.name]), device.name))
        if not options:
            unplaced.append(stage.name)
            continue
        chosen = min(options)[2]
        held[chosen].append(stage)
        assignment[stage.name] = chosen
    clocks = {name: lowest_clock(held[name], by_name[name]) for name in held}
    return Placement(assignment, clocks, unplaced)


def lowest_clock(stages: list[StageLoad], device: DeviceModel) -> float:
    return next((f for f in device.dvfs if fits(stages, device, f)), max(device.dvfs))


def watts(stages: list[StageLoad], device: DeviceModel, clock: float) -> float:
    if not stages:
        return device.sleep_w
    return device.idle_w + (device.peak_w - device.idle_w) * sum(work(s, device) for s in stages) * clock**2


def evaluate(placement: Placement, stages: list[StageLoad], devices: list[DeviceModel]) -> dict[str, float]:
    """Utilisation of the powered-on devices, joules per 1,000 requests served, and SLO misses (stages whose
    latency is over their objective, plus stages that found no device)."""
    held: dict[str, list[StageLoad]] = {d.name: [] for d in devices}
    for stage in stages:
        if stage.name in placement.assignment:
            held[placement.assignment[stage.name]].append(stage)
    power, busy, on, misses = 0.0, 0.0, 0, len(placement.unplaced)
    for device in devices:
        mine, clock = held[device.name], placement.clocks.get(device.name, 1.0)
        power += watts(mine, device, clock)
        if not mine:
            continue
        on += 1
        rho = sum(work(s, device) for s in mine) / clock
        busy += rho
        if rho >= 1:
            misses += len(mine)
            continue
        misses += sum(service(s, device) / clock / (1 - rho) > s.slo_s for s in mine)
    served = sum(s.rate for s in stages if s.name in placement.assignment)
    return {
        "utilisation": busy / on if on else 0.0,
        "devices_on": on,
        "watts": power,
        "joules_per_1000": 1000 * power / served if served else float("inf"),
        "slo_misses": misses,
    }


POLICIES = {"first-fit": first_fit, "round-robin": round_robin, "energy-aware": energy_aware}


def simulated_fleet() -> list[DeviceModel]:
    """A small heterogeneous fleet: 2 GPU servers, 1 NPU, 4 CPU hosts (figures of the right order for each kind:
    a data-centre GPU idles near 60 W and peaks near 400 W; a 2-socket CPU host idles near 100 W)."""
    gpu = {"encoder": 40.0, "reasoner": 12.0, "builder": 1.0, "decoder": 30.0}
    npu = {"encoder": 30.0, "reasoner": 8.0, "builder": 1.0, "decoder": 20.0}
    cpu = {"encoder": 1.0, "reasoner": 1.0, "builder": 1.0, "decoder": 1.0}
    cpu_dvfs, acc_dvfs = (0.6, 0.8, 1.0), (0.5, 0.7, 0.85, 1.0)
    fleet = [DeviceModel(f"cuda:{i}", "cuda", 80.0, 60.0, 400.0, 5.0, acc_dvfs, gpu) for i in range(2)]
    fleet.append(DeviceModel("npu:0", "npu", 64.0, 45.0, 310.0, 5.0, acc_dvfs, npu))
    cpu_cores = {k: v * 16 for k, v in cpu.items()}  # 16 busy cores of a host vs the one-core reference
    fleet += [DeviceModel(f"cpu:{i}", "cpu", 256.0, 100.0, 280.0, 10.0, cpu_dvfs, cpu_cores) for i in range(4)]
    return fleet


def simulated_stages(seed: int, pipelines: int = 12) -> list[StageLoad]:
    """Pipelines of four stages each (encoder, builder, reasoner, decoder) with drawn request rates; arrival order
    is shuffled, as deployments come and go."""
    rng = random.Random(seed)
    stages = []
    for p in range(pipelines):
        rate = rng.uniform(5, 60)
        slo = rng.choice([0.05, 0.1, 0.25])
        shapes = {
            "encoder": (rng.uniform(0.05, 0.4), rng.uniform(0.5, 4.0)),
            "builder": (rng.uniform(0.001, 0.01), 0.1),
            "reasoner": (rng.uniform(0.005, 0.05), rng.uniform(0.1, 1.0)),
            "decoder": (rng.uniform(0.02, 0.2), rng.uniform(0.5, 6.0)),
        }
        for cls, (seconds, memory) in shapes.items():
            stages.append(StageLoad(f"p{p}.{cls}", rate, seconds, cls, memory, slo))
    rng.shuffle(stages)
    return stages
