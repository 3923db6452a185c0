"""cuda and npu: detection on machines without the device, by simulation where needed, and a real run where a
GPU is present."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from autoglm_backends.cuda import CudaBackend
from autoglm_backends.npu import NpuBackend
from autoglm_backends.specs import CudaConfig, NpuConfig
from autoglm_sdk.plugin import BackendUnavailableError
from autoglm_sdk.testing import HardwareBackendContract

HAS_CUDA = torch.cuda.is_available()


class TestCudaContract(HardwareBackendContract):
    plugin = "cuda"


class TestNpuContract(HardwareBackendContract):
    plugin = "npu"


# ------------------------------------------------------------------ cuda


def test_cuda_on_a_cpu_only_torch_build_is_installed_but_not_built(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    status = CudaBackend(CudaConfig()).probe()
    assert (status.installed, status.built, status.available) == (True, False, False)
    assert "built without CUDA" in status.reason


def test_cuda_build_without_a_device_is_built_but_unavailable(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", torch.version.cuda or "12.4")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    status = CudaBackend(CudaConfig()).probe()
    assert (status.installed, status.built, status.available) == (True, True, False)
    assert "no CUDA device is visible" in status.reason and "CUDA_VISIBLE_DEVICES" in status.reason


def test_cuda_broken_driver_and_missing_index_never_raise(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", torch.version.cuda or "12.4")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)

    def broken() -> int:
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")

    monkeypatch.setattr(torch.cuda, "device_count", broken)
    assert "driver failed: CUDA driver version is insufficient" in CudaBackend(CudaConfig()).probe().reason
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    status = CudaBackend(CudaConfig(device_index=2)).probe()
    assert not status.available and "device_index 2 asked for, but only 1" in status.reason


@pytest.mark.skipif(HAS_CUDA, reason="checks the no-GPU error path")
def test_naming_cuda_here_is_a_clear_error():
    from helpers import SMALL

    from autoglm_sdk import Session, validate_manifest

    manifest = validate_manifest({**SMALL, "backend": {"plugin": "cuda"}}, allow_import_paths=True)
    with pytest.raises(BackendUnavailableError, match=r"`cuda` is not usable here: .*(CUDA|cuda)"):
        Session.open(manifest)


@pytest.mark.skipif(HAS_CUDA, reason="checks the fallback on a machine without a GPU")
def test_auto_prefers_cuda_then_npu_and_falls_back_to_cpu_saying_why(tmp_path):
    from helpers import SMALL

    from autoglm_sdk import build, validate_manifest

    manifest = validate_manifest(
        {
            **SMALL,
            "train": {"epochs": 1},
            "backend": {"plugin": "auto", "prefer": ["cuda", "npu", "cpu"], "fallback": "allow"},
        }
    )
    report = build(manifest, tmp_path / "art").report
    assert report["backend"]["chosen"] == "cpu"
    reasons = {f["wanted"]: f["reason"] for f in report["backend"]["fallbacks"]}
    assert set(reasons) == {"cuda", "npu"}
    assert "CUDA" in reasons["cuda"] and "torch_npu" in reasons["npu"]
    markdown = (tmp_path / "art" / "report.md").read_text()
    assert "fell back from `cuda`" in markdown and "fell back from `npu`" in markdown


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_cuda_builds_and_predicts_like_the_cpu(tmp_path):
    from helpers import SMALL

    from autoglm_sdk import build, load, validate_manifest

    reports = {}
    # no dropout: its random masks come from a different generator on each device, and 3 epochs on 15 labelled
    # nodes magnify them (accuracies 0.13 apart on an H200, 2026-12-04); without it both train the same
    reasoner = {**SMALL["reasoner"], "dropout": 0.0}
    for plugin in ("cpu", "cuda"):
        manifest = validate_manifest(
            {**SMALL, "reasoner": reasoner, "train": {"epochs": 3}, "backend": {"plugin": plugin}}
        )
        reports[plugin] = build(manifest, tmp_path / plugin).report
    assert reports["cuda"]["backend"]["chosen"] == "cuda"
    assert reports["cuda"]["backend"]["capabilities"]["memory_bytes"] > 0
    first = [reports[p]["training"]["history"][0]["train_loss"] for p in ("cpu", "cuda")]
    assert first[1] == pytest.approx(first[0], rel=1e-4), "the same weights and data give the same first loss"
    for split in ("train", "val", "test"):  # the same training on another device: close, not bit-identical
        assert abs(reports["cuda"]["metrics"][split]["accuracy"] - reports["cpu"]["metrics"][split]["accuracy"]) <= 0.05
    pipeline = load(tmp_path / "cuda")  # one graph sample (node-level): the loaded artifact scores as the build did
    (record,) = pipeline.predict_samples(pipeline.data_split("test"))
    assert record["accuracy"] == pytest.approx(reports["cuda"]["metrics"]["test"]["accuracy"], abs=1e-5)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_autocast_runs_half_precision(dtype):
    backend = CudaBackend(CudaConfig(autocast=dtype))
    if dtype not in backend.probe().capabilities["dtypes"]:
        pytest.skip(f"this GPU has no {dtype}")
    layer = backend.prepare(torch.nn.Linear(8, 4))
    with backend.autocast():
        out = layer(torch.randn(2, 8, device=backend.device))
    assert out.dtype == getattr(torch, dtype) and out.device.type == "cuda"


# ------------------------------------------------------------------ npu


def test_npu_without_torch_npu_is_not_installed(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch_npu", raising=False)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch_npu" else real(name, *a))
    status = NpuBackend(NpuConfig()).probe()
    assert (status.installed, status.built, status.available) == (False, False, False)
    assert "torch_npu is not installed" in status.reason


def fake_torch_npu(monkeypatch, *, loads: bool = True, devices: int = 0) -> None:
    """Pretend torch_npu is installed: importable (or failing at import) with ``devices`` NPUs."""
    import importlib
    import importlib.util

    real_find, real_import = importlib.util.find_spec, importlib.import_module
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "torch_npu" else real_find(name, *a)
    )

    def import_module(name: str, *args):
        if name == "torch_npu":
            if not loads:
                raise ImportError("libhccl.so: cannot open shared object file")
            return types.ModuleType("torch_npu")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", import_module)
    npu = types.SimpleNamespace(
        device_count=lambda: devices,
        is_available=lambda: devices > 0,
        get_device_name=lambda i: "Ascend910B",
        set_device=lambda i: None,
        get_device_properties=lambda i: types.SimpleNamespace(total_memory=64 << 30),
    )
    monkeypatch.setattr(torch, "npu", npu, raising=False)


def test_npu_that_fails_to_load_is_installed_but_not_built(monkeypatch):
    fake_torch_npu(monkeypatch, loads=False)
    status = NpuBackend(NpuConfig()).probe()
    assert (status.installed, status.built, status.available) == (True, False, False)
    assert "torch_npu does not load: libhccl.so" in status.reason


def test_npu_present_but_no_device(monkeypatch):
    fake_torch_npu(monkeypatch, devices=0)
    status = NpuBackend(NpuConfig()).probe()
    assert (status.installed, status.built, status.available) == (True, True, False)
    assert "no Ascend NPU is visible" in status.reason
    with pytest.raises(BackendUnavailableError, match="backend npu: no Ascend NPU is visible"):
        NpuBackend(NpuConfig()).prepare(torch.nn.Linear(2, 2))


def test_npu_with_a_device_reports_it(monkeypatch):
    fake_torch_npu(monkeypatch, devices=2)
    status = NpuBackend(NpuConfig(device_index=1)).probe()
    assert status.usable and status.device == "npu:1"
    assert status.capabilities["device_name"] == "Ascend910B" and status.capabilities["memory_bytes"] == 64 << 30
    assert "only 2 NPU(s)" in NpuBackend(NpuConfig(device_index=5)).probe().reason


@pytest.mark.skipif(HAS_CUDA, reason="checks the error for a stage on an absent GPU")
def test_a_stage_on_cuda_here_is_a_clear_error_naming_the_stage():
    from helpers import SMALL

    from autoglm_sdk import build, validate_manifest

    manifest = validate_manifest(
        {**SMALL, "train": {"epochs": 1}, "reasoner": {**SMALL["reasoner"], "backend": "cuda"}}
    )
    with pytest.raises(BackendUnavailableError, match="reasoner.backend: `cuda` is not usable here: no CUDA device"):
        build(manifest, "/tmp/never-written-stage-cuda")


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_mixed_devices_gnn_on_cpu_the_rest_on_cuda(tmp_path):
    from helpers import SMALL

    from autoglm_sdk import build, load, validate_manifest

    manifest = validate_manifest(
        {
            **SMALL,
            "train": {"epochs": 3},
            "backend": {"plugin": "cuda"},
            "reasoner": {**SMALL["reasoner"], "backend": "cpu"},
        }
    )
    report = build(manifest, tmp_path / "art").report
    assert report["backend"]["stages"] == {"graph_builder": "cuda", "reasoner": "cpu", "decoder": "cuda"}
    pipeline = load(tmp_path / "art")
    assert next(pipeline.model.stage_objects["reasoner"].parameters()).device.type == "cpu"
    assert next(pipeline.model.stage_objects["decoder"].parameters()).device.type == "cuda"
    assert len(pipeline.predict_samples(pipeline.data_split("test"))) == 1
