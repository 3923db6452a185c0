"""Backends: the cpu backend, and `auto` with its explicit fallback policy."""

from __future__ import annotations

import warnings

import pytest
import torch

from autoglm_backends.cpu import AutoBackend, CPUBackend
from autoglm_backends.specs import AutoConfig, CPUConfig
from autoglm_sdk.errors import BackendUnavailableError, ManifestError
from autoglm_sdk.placement import resolve_backend
from autoglm_sdk.protocols import BackendStatus, PluginSpec
from autoglm_sdk.registry import PluginEntry, Registry


class AbsentBackend:
    """A backend whose device is missing, as a CUDA backend on this machine would be."""

    name = "absent"
    kind = "backend"
    Config = CPUConfig

    def __init__(self, config, ctx=None):
        self.config = config

    def probe(self):
        return BackendStatus("absent", installed=True, built=True, available=False, reason="no device found")


absent = PluginSpec(name="absent", kind="backend", config=CPUConfig, factory=f"{__name__}:AbsentBackend")


def registry_with_absent() -> Registry:
    entries = [
        PluginEntry("cpu", "backend", "autoglm_backends.specs:cpu", "autoglm-backends", "0"),
        PluginEntry("absent", "backend", f"{__name__}:absent", "test", "0"),
    ]
    return Registry(entries)


def test_cpu_probe_reports_capabilities():
    status = CPUBackend(CPUConfig()).probe()
    assert status.usable and status.device == "cpu"
    assert "bfloat16" in status.capabilities["dtypes"] and status.capabilities["memory_bytes"] > 0


def test_cpu_bf16_autocast_and_threads():
    backend = CPUBackend(CPUConfig(bf16=True, threads=1))
    before = torch.get_num_threads()
    try:
        module = backend.prepare(torch.nn.Linear(4, 4))
        assert torch.get_num_threads() == 1
        with backend.autocast():
            assert module(torch.randn(2, 4)).dtype == torch.bfloat16
    finally:
        torch.set_num_threads(before)


def test_auto_prefers_in_order_and_records_fallbacks():
    with pytest.warns(UserWarning, match="using `cpu` instead of absent: no device found"):
        backend = AutoBackend(AutoConfig(prefer=["absent", "cpu"], fallback="warn"), registry=registry_with_absent())
    assert backend.device == "cpu"
    assert [f.as_dict() for f in backend.fallbacks] == [{"wanted": "absent", "reason": "no device found"}]


def test_auto_allow_is_quiet_but_still_recorded():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend = AutoBackend(AutoConfig(prefer=["absent", "cpu"], fallback="allow"), registry=registry_with_absent())
    assert backend.fallbacks[0].wanted == "absent"


def test_auto_strict_refuses_to_fall_back():
    with pytest.raises(BackendUnavailableError, match='`absent` is unusable and backend.fallback = "strict"'):
        AutoBackend(AutoConfig(prefer=["absent", "cpu"], fallback="strict"), registry=registry_with_absent())


def test_auto_with_nothing_usable():
    with pytest.raises(
        BackendUnavailableError, match="no usable backend.*absent: no device found.*nope: unknown backend"
    ):
        AutoBackend(AutoConfig(prefer=["absent", "nope"]), registry=registry_with_absent())


def test_explicit_backend_absent_is_an_error_never_a_fallback():
    with pytest.raises(BackendUnavailableError, match="`absent` is not usable here: no device found"):
        resolve_backend(absent, CPUConfig())


def test_build_records_backend_fallback(tmp_path):
    from helpers import SMALL

    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = validate_manifest(
        {
            **SMALL,
            "train": {"epochs": 1},
            "backend": {"plugin": "auto", "prefer": ["cuda-x", "cpu"], "fallback": "allow"},
        }
    )
    report = build(manifest, tmp_path / "art").report
    assert report["backend"]["chosen"] == "cpu"
    assert report["backend"]["fallbacks"][0]["wanted"] == "cuda-x"
    assert "fell back from `cuda-x`" in (tmp_path / "art" / "report.md").read_text()


def test_doctor_lists_backends():
    from helpers import run_cli

    proc = run_cli("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    report = json.loads(proc.stdout)
    assert any(b["name"] == "cpu" and b["available"] for b in report["backends"])
    assert report["torch"] == torch.__version__.split("+")[0] or report["torch"].startswith("2.")


def test_a_stage_may_run_on_its_own_backend(tmp_path):
    from helpers import SMALL

    from autoglm_sdk import load
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = validate_manifest(
        {
            **SMALL,
            "train": {"epochs": 2},
            "reasoner": {**SMALL["reasoner"], "backend": "cpu"},
            "backend": {"plugin": "auto", "prefer": ["absent-x", "cpu"], "fallback": "allow"},
        }
    )
    assert manifest.stages["reasoner"].as_dict()["backend"] == "cpu"
    report = build(manifest, tmp_path / "art").report
    assert report["backend"]["stages"] == {"graph_builder": "cpu", "reasoner": "cpu", "decoder": "cpu"}
    pipeline = load(tmp_path / "art")
    assert set(pipeline.model.placement.stages) == {"reasoner"}
    (answer,) = pipeline.predict_samples(pipeline.data_split("test"))
    assert answer["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])


def test_stage_backend_mistakes_name_the_stage():
    from helpers import SMALL

    from autoglm_sdk.manifest import validate_manifest

    with pytest.raises(ManifestError, match=r"reasoner.backend: .*cpux.*cpu"):
        validate_manifest({**SMALL, "reasoner": {**SMALL["reasoner"], "backend": "cpux"}})
    with pytest.raises(ManifestError, match=r"data.backend: only pipeline stages"):
        validate_manifest({**SMALL, "data": {**SMALL["data"], "backend": "cpu"}})
