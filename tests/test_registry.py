"""Discovery: the index agrees with the repository, broken and duplicate plugins are contained."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from helpers import REPO, SMALL, make_distribution, run_cli, write_toml

from autoglm_sdk.errors import DuplicatePluginError, PluginLoadError
from autoglm_sdk.kinds import KIND_GROUPS
from autoglm_sdk.registry import PluginEntry, Registry, load_index

GROUP_KINDS = {g: k for k, g in KIND_GROUPS.items()}


def repository_entry_points() -> set[tuple[str, str, str, str]]:
    """(name, kind, distribution, folder) for every autoglm entry point of every pyproject.toml here."""
    found = set()
    for pyproject in [
        REPO / "pyproject.toml",
        *REPO.glob("plugins/*/pyproject.toml"),
        *REPO.glob("contrib/*/pyproject.toml"),
    ]:
        project = tomllib.loads(pyproject.read_text())["project"]
        folder = str(pyproject.parent.relative_to(REPO)) if pyproject.parent != REPO else "."
        for group, entries in project.get("entry-points", {}).items():
            if group in GROUP_KINDS:
                found |= {(name, GROUP_KINDS[group], project["name"], folder) for name in entries}
    return found


def test_index_agrees_with_repository_entry_points():
    index = {(row.name, row.kind, row.distribution, row.path) for row in load_index() if row.path}
    declared = repository_entry_points()
    assert declared, "no entry points found: the test is looking in the wrong place"
    assert index - declared == set(), (
        f"in registry.toml but not declared by any pyproject.toml: {sorted(index - declared)}"
    )
    assert declared - index == set(), f"declared but missing from registry.toml: {sorted(declared - index)}"


def test_every_repository_plugin_is_installed_as_its_own_distribution():
    from importlib import metadata

    for name, kind, distribution, _ in repository_entry_points():
        eps = metadata.distribution(distribution).entry_points
        assert any(ep.name == name and ep.group == KIND_GROUPS[kind] for ep in eps), f"{distribution} lacks {name}"


@pytest.fixture
def broken_site(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    make_distribution(
        site,
        "autoglm-broken-plugin",
        "autoglm_broken",
        "raise ImportError('libbroken.so: cannot open shared object file')\n",
        {"autoglm.reasoners": {"broken-gnn": "autoglm_broken:spec"}},
    )
    return {"PYTHONPATH": str(site)}


def test_broken_plugin_is_listed_with_its_error(broken_site):
    proc = run_cli("plugins", "list", "--json", "--load", env=broken_site)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    broken = rows["broken-gnn"]
    assert broken["status"] == "broken" and broken["distribution"] == "autoglm-broken-plugin"
    assert "libbroken.so: cannot open shared object file" in broken["error"]
    assert rows["gcn"]["status"] == "ok"


def test_broken_plugin_does_not_affect_other_commands(broken_site, tmp_path):
    assert run_cli("plugins", "list", env=broken_site).returncode == 0
    path = write_toml(tmp_path / "m.toml", SMALL)
    assert run_cli("manifest", "validate", str(path), env=broken_site).returncode == 0
    assert run_cli("manifest", "schema", env=broken_site).returncode == 0
    build = run_cli("build", str(path), "-o", str(tmp_path / "art"), "--quiet", env=broken_site)
    assert build.returncode == 0, build.stderr
    doctor = run_cli("doctor", env=broken_site)
    assert doctor.returncode == 0 and "broken-gnn" in doctor.stdout


def test_using_a_broken_plugin_names_it_and_its_distribution(broken_site, tmp_path):
    data = {**SMALL, "reasoner": {"plugin": "broken-gnn"}}
    proc = run_cli("manifest", "validate", str(write_toml(tmp_path / "m.toml", data)), env=broken_site)
    assert proc.returncode == 2
    assert (
        "reasoner `broken-gnn` from autoglm-broken-plugin 0.1 failed to import: ImportError: libbroken.so"
        in proc.stderr
    )


def test_duplicate_names_are_an_error_naming_both_distributions(tmp_path):
    site = tmp_path / "site"
    make_distribution(
        site,
        "autoglm-gcn-fork",
        "gcn_fork",
        "from autoglm_graph.specs import gcn as spec\n",
        {"autoglm.reasoners": {"gcn": "gcn_fork:spec"}},
    )
    proc = run_cli("plugins", "list", "--json", env={"PYTHONPATH": str(site)})
    row = next(r for r in json.loads(proc.stdout) if r["name"] == "gcn")
    assert row["status"] == "duplicate" and "autoglm-gcn-fork" in row["error"] + row["distribution"]
    manifest = write_toml(tmp_path / "m.toml", SMALL)
    proc = run_cli("build", str(manifest), "-o", str(tmp_path / "a"), env={"PYTHONPATH": str(site)})
    assert proc.returncode == 2
    assert "reasoner `gcn` is registered by more than one distribution" in proc.stderr
    assert "autoglm-graph" in proc.stderr and "autoglm-gcn-fork" in proc.stderr


def test_entry_load_checks_the_spec():
    entry = PluginEntry("not-gcn", "reasoner", "autoglm_graph.specs:gcn", "autoglm-graph", "0.1.0")
    with pytest.raises(PluginLoadError, match="differs from the spec's name `gcn`"):
        entry.load()
    entry = PluginEntry("x", "reasoner", "autoglm_graph.specs:GCNConfig", "autoglm-graph", "0.1.0")
    with pytest.raises(PluginLoadError, match="not a PluginSpec"):
        entry.load()


def test_duplicates_in_process():
    registry = Registry(
        [
            PluginEntry("gcn", "reasoner", "autoglm_graph.specs:gcn", "dist-a", "1"),
            PluginEntry("gcn", "reasoner", "autoglm_graph.specs:gcn", "dist-b", "1"),
        ]
    )
    with pytest.raises(DuplicatePluginError, match="dist-a, dist-b"):
        registry.spec("reasoner", "gcn")


def test_specs_survive_importing_their_implementations():
    """A spec attribute named like a submodule would be replaced by it once the model is imported."""
    registry = Registry.discover()
    for entry in registry.entries():
        entry.load().load_class()  # import every implementation module
    fresh = Registry.discover()
    for entry in fresh.entries():
        assert entry.load().name == entry.name


HOOKS = '''
from autoglm_sdk.hooks import hookimpl

@hookimpl
def autoglm_build_started(manifest, output):
    if manifest["pipeline"]["name"] == "explode":
        raise RuntimeError("boom from a hook")

@hookimpl
def autoglm_epoch_ended(epoch, metrics):
    if epoch == 2:
        raise ValueError("epoch hook broke")

@hookimpl
def autoglm_cli_commands(app):
    @app.command("hello")
    def hello():
        """Say hello (added by a hook plugin)."""
        print("hello from a hook plugin")
'''

BAD_COMMANDS = """
from autoglm_sdk.hooks import hookimpl

@hookimpl
def autoglm_cli_commands(app):
    raise RuntimeError("cannot add my commands")
"""


def test_hook_plugins_add_commands_and_a_raising_hook_is_skipped_with_its_distribution(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "autoglm-hooks-demo", "hooks_demo", HOOKS, {"autoglm.hooks": {"demo": "hooks_demo"}})
    make_distribution(site, "autoglm-hooks-bad", "hooks_bad", BAD_COMMANDS, {"autoglm.hooks": {"bad": "hooks_bad"}})
    make_distribution(
        site,
        "autoglm-hooks-future",
        "hooks_future",
        "AUTOGLM_HOOKSPEC_VERSION = 99\n",
        {"autoglm.hooks": {"future": "hooks_future"}},
    )
    env = {"PYTHONPATH": str(site)}
    skipped = "warning: hook of autoglm-hooks-bad 0.1 skipped: autoglm_cli_commands raised RuntimeError: cannot add"
    proc = run_cli("hello", env=env)
    assert proc.returncode == 0 and "hello from a hook plugin" in proc.stdout
    assert skipped in proc.stderr
    version = run_cli("--version", env=env)
    assert version.returncode == 0 and "autoglm" in version.stdout
    doctor = run_cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stderr
    assert "broken hook future: RuntimeError: needs hookspec version 99" in doctor.stdout
    assert "broken hook autoglm-hooks-bad 0.1: autoglm_cli_commands raised RuntimeError" in doctor.stdout
    # a build goes on past hooks that raise, and says which distribution's hook it skipped
    path = write_toml(tmp_path / "m.toml", {**SMALL, "pipeline": {"name": "explode"}, "train": {"epochs": 3}})
    proc = run_cli("build", str(path), "-o", str(tmp_path / "art"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "hook of autoglm-hooks-demo 0.1 skipped: autoglm_build_started raised RuntimeError: boom" in proc.stderr
    assert "autoglm_epoch_ended raised ValueError: epoch hook broke" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "m.toml", "site"]  # no checkpoint left


def test_every_plugin_declares_what_it_imports():
    """A plugin installed alone must not fail on an import its pyproject.toml does not pull in."""
    import ast
    import re
    import sys
    from importlib import metadata

    def names(requirements) -> set[str]:
        return {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", r)[0]).lower() for r in requirements}

    providers = metadata.packages_distributions()
    sdk = names(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    problems = []
    for pyproject in sorted((REPO / "plugins").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        declared = names(project["dependencies"]) | sdk  # the SDK's own requirements come with it
        for extra in project.get("optional-dependencies", {}).values():
            declared |= names(extra)
        for source in sorted(pyproject.parent.glob("autoglm_*/**/*.py")):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for top in {m.split(".")[0] for m in modules}:
                    if top in sys.stdlib_module_names or top.startswith("autoglm"):
                        continue
                    if not names(providers.get(top, [top])) & declared:
                        problems.append(f"{source.relative_to(REPO)}:{node.lineno} imports {top}")
    assert problems == [], "imported but not declared in the plugin's pyproject.toml: " + "; ".join(problems)
