"""The examples in docs/plugin-authors.md work: installed as the distribution the guide describes, every
example passes the contract kit, light_import included.

A python block whose first line is ``# example: KIND, file PATH`` is written to PATH (blocks with the same
PATH are joined in order); the toml block with entry points becomes the distribution's metadata. The hook
module (the python block that starts with ``# my_plugin/hooks.py``) is registered with the SDK's hook
specification and its hooks are called.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tomllib

import pytest
from helpers import REPO

from autoglm_sdk.kinds import KIND_GROUPS
from autoglm_sdk.protocols import PluginSpec, TaskSpec
from autoglm_sdk.testing import SUITES, run_check
from autoglm_sdk.testing.checks import Subject, checks_for

GUIDE = REPO / "docs" / "plugin-authors.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"# example: (\w+), file (\S+)\n")
#: checks that may skip on this machine: the example backend's device is absent, and it runs stages eagerly
MAY_SKIP = {"backend_prepare", "backend_stage_runner"}


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(GUIDE.read_text()) if lang == language]


def examples() -> list[tuple[str, str, str]]:
    """(kind, path, source) of every marked python block, in the guide's order."""
    return [(m[1], m[2], body) for body in blocks("python") if (m := MARK.match(body))]


def entry_points() -> dict[str, dict[str, str]]:
    toml = next(b for b in blocks("toml") if "[project.entry-points." in b)
    return tomllib.loads(toml)["project"]["entry-points"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The examples as an installed distribution: importable, and their entry points visible here and in the
    fresh interpreters that light_import starts."""
    root = tmp_path_factory.mktemp("guide")
    for _, path, source in examples():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        with target.open("a") as out:
            out.write(source + "\n")
    info = root / "my_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1.0\n")
    sections = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in names.items())
        for group, names in entry_points().items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        yield
    for module in [m for m in sys.modules if m == "my_plugin" or m.startswith("my_plugin.")]:
        del sys.modules[module]


def test_every_kind_has_a_spec_and_an_implementation():
    specs = {kind for kind, path, _ in examples() if path.endswith("/specs.py")}
    implementations = {kind for kind, path, _ in examples() if not path.endswith("/specs.py")}
    assert specs == implementations == set(SUITES), (specs, implementations)


def test_examples_import_only_the_public_modules():
    public = {"autoglm_sdk.plugin", "autoglm_sdk.testing"}
    for kind, path, source in examples():
        used = set(re.findall(r"^\s*(?:from|import) (autoglm_sdk[\w.]*)", source, re.M))
        assert used <= public, f"{kind} example ({path}) imports {sorted(used - public)}"


def test_every_spec_has_an_entry_point(installed):
    specs = importlib.import_module("my_plugin.specs")
    declared = {value.partition(":")[2] for names in entry_points().values() for value in names.values()}
    defined = {attr for attr, value in vars(specs).items() if isinstance(value, PluginSpec)}
    assert declared == defined


@pytest.mark.parametrize("kind", sorted(SUITES))
def test_example_passes_the_contract_kit(installed, kind):
    for name, value in entry_points()[KIND_GROUPS[kind]].items():
        module, _, attr = value.partition(":")
        spec = getattr(importlib.import_module(module), attr)
        assert (spec.name, spec.kind) == (name, kind), "the entry point's name and group must match the spec"
        subject = Subject(kind, name, spec)
        results = [run_check(check, subject) for check in checks_for(kind, spec.capabilities)]
        bad = [
            f"{r.check} {r.outcome}: {r.message}"
            for r in results
            if r.outcome not in ("passed", "skipped") or (r.outcome == "skipped" and r.check not in MAY_SKIP)
        ]
        assert not bad, "\n".join(bad)


def test_hook_example_adds_a_command_and_an_evaluation():
    """The guide's hook module (``# my_plugin/hooks.py``) registers with the SDK's hook specification, adds its
    command to a typer app and returns an evaluation in the shape the build report reads."""
    import pluggy
    import typer
    from typer.testing import CliRunner

    from autoglm_sdk.hooks import HOOKSPEC_VERSION, PROJECT, AutoGLMHookSpecs

    (source,) = [body for body in blocks("python") if body.startswith("# my_plugin/hooks.py\n")]
    used = set(re.findall(r"^\s*(?:from|import) (autoglm_sdk[\w.]*)", source, re.M))
    assert used <= {"autoglm_sdk.plugin"}, used
    namespace: dict = {}
    exec(compile(source, "my_plugin/hooks.py", "exec"), namespace)
    module = type(sys)("my_plugin_hooks")
    vars(module).update(namespace)
    assert module.AUTOGLM_HOOKSPEC_VERSION <= HOOKSPEC_VERSION
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(AutoGLMHookSpecs)
    pm.register(module)  # raises if a hookimpl does not match its specification

    app = typer.Typer()
    app.command(name="other")(lambda: None)  # with two commands typer dispatches by name
    pm.hook.autoglm_cli_commands(app=app)
    result = CliRunner().invoke(app, ["hello", "--name", "guide"])
    assert result.exit_code == 0 and "hello, guide" in result.output, result.output

    class Session:
        task = TaskSpec("graph", 2)

        def evaluate(self, model, splits):
            return {split: {"accuracy": 0.5, "loss": 0.7, "count": 4} for split in splits}

    (evaluation,) = pm.hook.autoglm_evaluate(session=Session(), model=None)
    assert isinstance(evaluation["name"], str)
    json.dumps(evaluation["figures"])  # kept in report.json
    assert all(isinstance(line, str) for line in evaluation["markdown"])
    Session.task = TaskSpec("node", 2)
    assert pm.hook.autoglm_evaluate(session=Session(), model=None) == []
