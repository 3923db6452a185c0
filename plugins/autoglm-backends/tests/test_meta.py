"""The meta-controller scheduler: the inventory, filter and score plugins, placement with its scores and reasons in
the report, re-placement when a device fails (simulated here: this machine has one CPU and no accelerator), and
the simulated fleet's packing policies."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from autoglm_backends import fleet, meta
from autoglm_backends.meta import Device, MetaControllerScheduler
from autoglm_backends.specs import MetaControllerConfig
from autoglm_sdk import build, load, validate_manifest
from autoglm_sdk.plugin import AutoGLMError, AutoGLMWarning, ManifestError, StageNeed

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from helpers import SMALL, run_cli  # noqa: E402

PLACED = {**SMALL, "scheduler": {"plugin": "meta-controller"}}


def fake_devices(free: int = 2**34) -> list[Device]:
    """An accelerator that is really this CPU (so stages placed there run), and the CPU."""
    return [
        Device("cuda:0", "cpu", None, 2**34, free, 0.0, 100.0, "9.0"),
        Device("cpu", "cpu", None, 2**34, 2**34, 0.5, 2.0, "AVX512"),
    ]


def test_the_inventory_has_this_cpu_with_memory_and_load():
    (cpu, *_) = meta.inventory()
    assert cpu.name == "cpu" and cpu.memory_bytes > cpu.free_bytes > 0 and 0 <= cpu.load <= 1 and cpu.speed >= 1


def test_doctor_lists_the_devices():
    result = run_cli("doctor", "--json")
    assert result.returncode == 0, result.stderr
    (cpu, *_) = json.loads(result.stdout)["devices"]
    assert cpu["name"] == "cpu" and cpu["memory_bytes"] > 0
    assert "device  cpu" in run_cli("doctor").stdout


def test_a_build_reports_each_stage_placement_with_scores(tmp_path):
    report = build(validate_manifest(PLACED), tmp_path / "a").report
    placement = report["backend"]["placement"]
    assert set(placement) == {"graph_builder", "reasoner", "decoder"}
    decision = placement["reasoner"]
    assert decision["device"] == "cpu" and decision["rejected"] == {}
    assert set(decision["scores"]["cpu"]) == {"fastest", "least-loaded", "together", "total"}
    assert json.loads((tmp_path / "a" / "report.json").read_text())["backend"]["placement"]["decoder"]["device"]
    assert "- `reasoner` placed on `cpu` (scores: cpu " in (tmp_path / "a" / "report.md").read_text()
    shown = run_cli("doctor", "--artifact", str(tmp_path / "a"))
    assert shown.returncode == 0, shown.stderr
    assert "stage   reasoner     on cpu (scores: cpu " in shown.stdout


def test_the_fastest_free_device_wins_and_a_full_one_is_rejected_with_its_reason():
    scheduler = MetaControllerScheduler(MetaControllerConfig())
    scheduler.devices = fake_devices
    plan = scheduler.plan([StageNeed("encoder", 2**20), StageNeed("reasoner", 2**20, ("encoder",))])
    assert plan["encoder"].device == "cuda:0" and plan["reasoner"].scores["cuda:0"]["together"] == 100
    scheduler.devices = lambda: fake_devices(free=2**20)
    plan = scheduler.plan([StageNeed("encoder", 2**21)])
    assert plan["encoder"].device == "cpu"
    assert plan["encoder"].rejected["cuda:0"].startswith("fits-memory: needs 2 MiB")
    scheduler.devices = lambda: [d for d in fake_devices(free=2**20) if d.name != "cpu"]
    with pytest.raises(AutoGLMError, match="no device can take stage `encoder`: cuda:0 \\(fits-memory"):
        scheduler.plan([StageNeed("encoder", 2**21)])


def test_the_energy_score_keeps_stages_on_the_awake_device():
    scheduler = MetaControllerScheduler(MetaControllerConfig(scores={"energy": 1.0}))
    scheduler.devices = fake_devices
    plan = scheduler.plan([StageNeed("a", 2**20), StageNeed("b", 2**20)])
    assert plan["a"].device == "cpu" and plan["b"].device == "cpu"  # waking the accelerator costs its idle watts


def test_a_failed_device_is_replanned_and_the_stage_reruns(tmp_path, monkeypatch):
    build(validate_manifest(PLACED), tmp_path / "a")
    monkeypatch.setattr(meta, "inventory", fake_devices)
    pipeline = load(tmp_path / "a")
    scheduler = pipeline.model.scheduler
    assert pipeline.model.placement.decisions["reasoner"]["device"] == "cuda:0"
    expected = pipeline.predict_samples(pipeline.data_split("test"))
    reasoner = pipeline.model.stage_objects["reasoner"]
    forward = reasoner.forward
    calls = []

    def lost_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: device lost (simulated)")
        return forward(*args, **kwargs)

    monkeypatch.setattr(reasoner, "forward", lost_once)
    with pytest.warns(AutoGLMWarning, match="cuda:0 failed \\(CUDA error: device lost \\(simulated\\)\\)"):
        answers = pipeline.predict_samples(pipeline.data_split("test"))
    assert answers == expected and len(calls) == 2
    decision = pipeline.model.placement.decisions["reasoner"]
    assert decision["device"] == "cpu" and decision["rejected"]["cuda:0"].startswith("healthy: failed: CUDA error")
    assert scheduler.failed == {"cuda:0": "CUDA error: device lost (simulated)"}


def test_a_stage_bug_is_not_mistaken_for_a_device_failure(tmp_path, monkeypatch):
    build(validate_manifest(PLACED), tmp_path / "a")
    pipeline = load(tmp_path / "a")
    reasoner = pipeline.model.stage_objects["reasoner"]
    monkeypatch.setattr(reasoner, "forward", lambda *a, **k: 1 / 0)
    with pytest.raises(AutoGLMError, match="ZeroDivisionError"):
        pipeline.predict_samples(pipeline.data_split("test"))
    assert pipeline.model.scheduler.failed == {}


def test_an_unknown_placement_plugin_is_a_manifest_error():
    bad = copy.deepcopy(PLACED)
    bad["scheduler"]["scores"] = {"fastset": 1.0}
    with pytest.raises(ManifestError, match="no placement plugin `fastset` is installed"):
        validate_manifest(bad)


def test_energy_aware_packing_beats_first_fit_on_the_simulated_fleet():
    devices = fleet.simulated_fleet()
    for seed in range(5):
        stages = fleet.simulated_stages(seed, 6)
        ff = fleet.evaluate(fleet.first_fit(stages, devices), stages, devices)
        ea = fleet.evaluate(fleet.energy_aware(stages, devices), stages, devices)
        assert ea["joules_per_1000"] < ff["joules_per_1000"] and ea["slo_misses"] <= ff["slo_misses"]


def test_the_lowest_clock_keeps_every_slo():
    device = fleet.simulated_fleet()[-1]
    stage = fleet.StageLoad("s", rate=10, seconds=0.5, work_class="encoder", memory_gb=1, slo_s=0.1)
    clock = fleet.lowest_clock([stage], device)
    assert fleet.fits([stage], device, clock) and (clock == device.dvfs[0] or not fleet.fits([stage], device, 0.6))
    assert not fleet.fits([fleet.StageLoad("big", 1, 1, "encoder", 300, 1)], device)  # 300 GB on a 256 GB host


def test_on_a_gpu_machine_the_reasoner_goes_to_the_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: placement on a GPU is checked by scripts/gpu-check.sh where one is")
    cuda = next(d for d in meta.inventory() if d.name == "cuda:0")
    assert cuda.capability.count(".") == 1 and cuda.free_bytes > 0 and cuda.speed > 2
    build(validate_manifest(PLACED), tmp_path / "a")
    pipeline = load(tmp_path / "a")
    assert pipeline.model.placement.decisions["reasoner"]["device"] == "cuda:0"
    assert next(pipeline.model.stage_objects["reasoner"].parameters()).device.type == "cuda"
    assert pipeline.predict_samples(pipeline.data_split("test"))[0]["prediction"]
