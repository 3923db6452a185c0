"""``light_import`` judges the plugin's own import: torch is refused, and what the SDK costs is not counted."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from autoglm_sdk.testing import CHECKS, checks, run_check
from autoglm_sdk.testing.checks import SDK_MODULES, Subject, own_import

SPEC_SOURCE = """
from pydantic import Field

from autoglm_sdk.plugin import PluginConfig, PluginSpec, reasoner_signature


class Config(PluginConfig):
    hidden: int = Field(8, ge=1, description="Size of the node states.")


spec = PluginSpec(name=NAME, kind="reasoner", config=Config, factory="nowhere:Nothing", signature=reasoner_signature)
"""
ENTRY_POINTS = "[autoglm.reasoners]\nkit-light = kit_light_spec:spec\nkit-heavy = kit_heavy_spec:spec\n"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Two spec modules, one importing torch, installed as a distribution: importable and their entry points
    visible here and in the fresh interpreters the check starts."""
    (tmp_path / "kit_light_spec.py").write_text('NAME = "kit-light"\n' + SPEC_SOURCE)
    (tmp_path / "kit_heavy_spec.py").write_text(
        'import torch  # what the check exists to catch\nNAME = "kit-heavy"\n' + SPEC_SOURCE
    )
    info = tmp_path / "kit_fake-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kit-fake\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    yield
    for module in ("kit_light_spec", "kit_heavy_spec"):
        sys.modules.pop(module, None)


def light_import(name: str):
    spec = importlib.import_module(name.replace("-", "_") + "_spec").spec
    check = next(c for c in CHECKS if c.name == "light_import")
    return run_check(check, Subject("reasoner", name, spec))


def test_an_entry_module_that_imports_torch_fails(installed):
    result = light_import("kit-heavy")
    assert result.outcome == "failed" and "entry module imports torch" in result.message, result.message


def test_only_the_plugins_own_modules_are_counted(installed):
    result = own_import("autoglm.reasoners", "kit-light")
    assert result["new"] == ["kit_light_spec"], result["new"]
    assert not result["heavy"] and not result["heavy_before"]
    assert light_import("kit-light").message.startswith("1 new module in ")


def test_the_sdks_own_import_time_is_not_counted(installed, monkeypatch):
    """A limit below what importing the SDK takes still passes a light plugin: the SDK is imported first."""
    code = (
        f"import importlib, time\nt = time.perf_counter()\nfor m in {SDK_MODULES!r}: importlib.import_module(m)\n"
        "print(time.perf_counter() - t)"
    )
    sdk_seconds = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    monkeypatch.setattr(checks, "LIGHT_IMPORT_SECONDS", sdk_seconds / 2)
    result = light_import("kit-light")
    assert result.outcome == "passed", f"{result.message} (limit {sdk_seconds / 2:.3f}s)"
