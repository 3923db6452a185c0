"""pytest plugin (registered through ``pytest11``): ``pytest --autoglm-contract NAME[,NAME]``
collects the contract suite of each named installed plugin as test items and runs
only those: the ordinary tests that pytest collects from the directory are deselected.

Light on purpose: pytest loads it in every session of an environment where the
SDK is installed.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("autoglm")
    group.addoption(
        "--autoglm-contract",
        action="append",
        default=[],
        metavar="NAME",
        help="Run the AutoGLM contract suite on installed plugin NAME (kind:NAME when the name is ambiguous).",
    )


class ContractItem(pytest.Item):
    def __init__(self, *, kind: str, plugin: str, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.plugin, self.check = kind, plugin, check

    def runtest(self) -> None:
        from autoglm_sdk.testing import _subject, run_check

        result = run_check(self.check, _subject(self.kind, self.plugin))
        if result.outcome == "skipped":
            pytest.skip(result.message)
        if result.outcome == "xfailed":
            pytest.xfail(result.message)
        if result.outcome in ("failed", "xpassed"):
            raise ContractFailure(result.message)

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, ContractFailure):
            return f"[{self.check.name}] {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int, str]:
        return f"autoglm-contract:{self.kind}:{self.plugin}", 0, f"{self.plugin}::{self.check.name}"


class ContractFailure(Exception):
    pass


class ContractCollector(pytest.Collector):
    def __init__(self, *, names: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = names

    def collect(self) -> list[pytest.Item]:
        from autoglm_sdk.errors import AutoGLMError
        from autoglm_sdk.registry import default_registry
        from autoglm_sdk.testing.checks import checks_for

        registry = default_registry()
        items: list[pytest.Item] = []
        for raw in self.names:
            kind, _, name = raw.rpartition(":")
            entries = [registry.entry(kind, name)] if kind else registry.find(name)
            if not entries:
                raise pytest.UsageError(f"--autoglm-contract: no installed plugin named `{name}`")
            for entry in entries:
                try:
                    spec = entry.load()
                except AutoGLMError as exc:
                    raise pytest.UsageError(f"--autoglm-contract: {exc}") from exc
                for check in checks_for(entry.kind, spec.capabilities):
                    items.append(
                        ContractItem.from_parent(
                            self,
                            name=f"{entry.kind}:{entry.name}::{check.name}",
                            kind=entry.kind,
                            plugin=entry.name,
                            check=check,
                        )
                    )
        return items


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    names = [n for value in config.getoption("autoglm_contract") for n in value.split(",") if n]
    if not names:
        return
    collector = ContractCollector.from_parent(session, name="autoglm-contract", names=names)
    contract = collector.collect()
    # the option asks for the contract alone: the tests pytest found beside it are deselected, not run
    if items:
        config.hook.pytest_deselected(items=list(items))
    items[:] = contract
