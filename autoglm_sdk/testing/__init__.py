"""The contract kit: one suite per plugin kind, usable three ways.

1. Subclass a suite in your plugin's tests::

       from autoglm_sdk.testing import ReasonerContract

       class TestMyGAT(ReasonerContract):
           plugin = "my-gat"
           config = {"hidden": 16}          # optional: keep the kit's runs small

2. ``pytest --autoglm-contract my-gat`` (the ``pytest11`` plugin this SDK registers).
3. ``autoglm plugins check my-gat``.

Suites are versioned by :data:`~autoglm_sdk.kinds.CONTRACT_VERSION`. A spec's
``capabilities`` select checks; its ``expected_failures`` (check name -> reason)
turn a known failure into ``xfailed`` and an unexpected pass into ``xpassed``,
which fails, so stale declarations do not linger.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, ClassVar

from autoglm_sdk.kinds import CONTRACT_VERSION
from autoglm_sdk.testing.checks import CHECKS, Check, Skip, Subject, checks_for


@dataclass
class CheckResult:
    check: str
    outcome: str  # passed | failed | skipped | xfailed | xpassed
    message: str = ""


def _subject(kind: str, name: str, config: dict[str, Any] | None = None) -> Subject:
    from autoglm_sdk.registry import default_registry

    spec = default_registry().spec(kind, name)
    return Subject(kind, name, spec, dict(config or {}))


def run_check(check: Check, subject: Subject) -> CheckResult:
    reason = subject.spec.expected_failures.get(check.name)
    try:
        note = check.fn(subject)
    except Skip as exc:
        return CheckResult(check.name, "skipped", str(exc))
    except Exception as exc:  # AssertionError and anything the plugin raised
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, AssertionError):
            message = f"{type(exc).__name__}: {message} @ {traceback.extract_tb(exc.__traceback__)[-1].name}"
        if reason:
            return CheckResult(check.name, "xfailed", reason)
        return CheckResult(check.name, "failed", message)
    if reason:
        return CheckResult(check.name, "xpassed", f"declared as failing ({reason}) but passed; remove the declaration")
    return CheckResult(check.name, "passed", note or "")


def run_contract(kind: str, name: str, config: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every applicable check on the installed plugin ``name`` of ``kind``."""
    subject = _subject(kind, name, config)
    return [run_check(check, subject) for check in checks_for(kind, subject.spec.capabilities)]


class PluginContract:
    """Base of the per-kind suites. Set ``plugin`` (and optionally ``config``)."""

    kind: ClassVar[str] = ""
    plugin: ClassVar[str] = ""
    config: ClassVar[dict[str, Any]] = {}

    def _run(self, check_name: str) -> None:
        import pytest

        if not self.plugin:
            pytest.skip("abstract contract suite (set `plugin`)")
        subject = _subject(self.kind, self.plugin, self.config)
        check = next(c for c in CHECKS if c.name == check_name)
        if not check.requires <= subject.spec.capabilities:
            pytest.skip(f"needs capabilities {sorted(check.requires)}")
        result = run_check(check, subject)
        if result.outcome == "skipped":
            pytest.skip(result.message)
        if result.outcome == "xfailed":
            pytest.xfail(result.message)
        if result.outcome in ("failed", "xpassed"):
            pytest.fail(f"[{check.name}] {result.message}", pytrace=False)


def _suite(kind: str, class_name: str) -> type[PluginContract]:
    namespace: dict[str, Any] = {
        "kind": kind,
        "__doc__": f"Contract suite for {kind} plugins (version {CONTRACT_VERSION}).",
    }
    for check in CHECKS:
        if kind in check.kinds:

            def test(self: PluginContract, _name: str = check.name) -> None:
                self._run(_name)

            test.__name__ = f"test_{check.name}"
            test.__doc__ = check.doc
            namespace[test.__name__] = test
    return type(class_name, (PluginContract,), namespace)


DataSourceContract = _suite("data", "DataSourceContract")
ModalityEncoderContract = _suite("encoder", "ModalityEncoderContract")
GraphBuilderContract = _suite("graph_builder", "GraphBuilderContract")
ReasonerContract = _suite("reasoner", "ReasonerContract")
DecoderContract = _suite("decoder", "DecoderContract")
SchedulerContract = _suite("scheduler", "SchedulerContract")
CompressorContract = _suite("compressor", "CompressorContract")
HardwareBackendContract = _suite("backend", "HardwareBackendContract")
ObjectiveContract = _suite("objective", "ObjectiveContract")

SUITES = {
    "data": DataSourceContract,
    "encoder": ModalityEncoderContract,
    "graph_builder": GraphBuilderContract,
    "reasoner": ReasonerContract,
    "decoder": DecoderContract,
    "scheduler": SchedulerContract,
    "compressor": CompressorContract,
    "backend": HardwareBackendContract,
    "objective": ObjectiveContract,
}

__all__ = [
    "CONTRACT_VERSION",
    "CheckResult",
    "PluginContract",
    "run_contract",
    "run_check",
    "SUITES",
    *(cls.__name__ for cls in SUITES.values()),
]
