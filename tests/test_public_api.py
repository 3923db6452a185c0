"""Plugins, contrib and benchmarks use only the SDK's declared public surface.

That surface is ``autoglm_sdk.__all__`` (for users), ``autoglm_sdk.plugin.__all__``
(for plugin authors) and the contract kit ``autoglm_sdk.testing`` (with its
``fixtures``). Every other core module may change without notice, so an import of
it from outside the core is a bug this test names.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {
    "autoglm_sdk": "autoglm_sdk",
    "autoglm_sdk.plugin": "autoglm_sdk.plugin",
    "autoglm_sdk.testing": "autoglm_sdk.testing",
    "autoglm_sdk.testing.fixtures": None,  # the kit's fixtures: every name in it is for plugin tests
}


def outside_imports(path: Path) -> list[str]:
    """``file:line: what`` for every import of a core name outside the public surface."""
    tree = ast.parse(path.read_text(), str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("autoglm_sdk.") and alias.name not in PUBLIC:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "autoglm_sdk":
            module = node.module
            if module not in PUBLIC:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {module} import ...")
                continue
            declared = PUBLIC[module] and importlib.import_module(PUBLIC[module]).__all__
            for alias in node.names:
                if declared and alias.name not in declared and f"{module}.{alias.name}" not in PUBLIC:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} is not in {module}.__all__")
    return problems


def test_plugins_contrib_and_benchmarks_import_only_public_names():
    files = [
        p
        for top in ("plugins", "contrib", "benchmarks")
        for p in sorted((ROOT / top).rglob("*.py"))
        if ".venv" not in p.parts and "build" not in p.parts
    ]
    assert files
    problems = [line for path in files for line in outside_imports(path)]
    assert not problems, "imports outside the public API:\n  " + "\n  ".join(problems)


def test_every_public_name_resolves():
    for module in ("autoglm_sdk", "autoglm_sdk.plugin", "autoglm_sdk.testing"):
        loaded = importlib.import_module(module)
        for name in loaded.__all__:
            assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_the_check_catches_an_internal_import(tmp_path):
    bad = ROOT / "plugins" / "_public_api_probe.py"
    bad.write_text("from autoglm_sdk.trainer import fit\nfrom autoglm_sdk.plugin import Port, not_public\n")
    try:
        problems = outside_imports(bad)
    finally:
        bad.unlink()
    assert len(problems) == 2 and "autoglm_sdk.trainer" in problems[0] and "not_public" in problems[1]


@pytest.mark.parametrize("module", ["autoglm_sdk", "autoglm_sdk.plugin"])
def test_importing_the_surface_does_not_import_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
