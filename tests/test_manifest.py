"""Manifest validation: two phases, errors that name the key, suggestions, overrides."""

from __future__ import annotations

import copy
import json

import pytest
from helpers import REPO, SMALL, run_cli, write_toml

from autoglm_sdk.dag import check_fit, wire
from autoglm_sdk.errors import ManifestError, PluginNotFoundError, StageMismatchError
from autoglm_sdk.manifest import apply_overrides, default_manifest, load_manifest, manifest_schema, validate_manifest


def raw(**changes):
    data = copy.deepcopy(SMALL)
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if value is None:
            data[section].pop(key)
        else:
            data.setdefault(section, {})[key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"reasoner__plugin": "gcnn"},
            "reasoner.plugin: unknown reasoner `gcnn`; did you mean `gcn`? "
            "(installed reasoners: appnp, darts, gat, gcn, gin, mlp, path-composer, rgcn, sage)",
        ),
        ({"reasoner__layrs": 4}, "reasoner.layrs: unknown key; did you mean `layers`?"),
        ({"reasoner__layers": 0}, "reasoner.layers: must be >= 1, got 0"),
        ({"train__lr": -1}, "train.lr: must be > 0, got -1"),
        ({"reasoner__norm": "group"}, "reasoner.norm: must be 'none', 'layer' or 'batch', got 'group'"),
        (
            {"data__blocks": "four"},
            "data.blocks: must be a valid integer, unable to parse string as an integer, got 'four'",
        ),
    ],
)
def test_validation_errors_name_the_key(changes, expected):
    with pytest.raises(ManifestError) as info:
        validate_manifest(raw(**changes))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"reasoner__plugin": "gcnn"}, "did you mean `gcn`?"),
        ({"reasoner__layrs": 4}, "reasoner.layrs: unknown key; did you mean `layers`?"),
        ({"reasoner__layers": 0}, "reasoner.layers: must be >= 1, got 0"),
    ],
    ids=["misspelt-plugin", "unknown-key", "out-of-range"],
)
def test_cli_user_errors_exit_2_with_one_line(tmp_path, changes, expected):
    path = write_toml(tmp_path / "m.toml", raw(**changes))
    for command in (["manifest", "validate", str(path)], ["build", str(path), "-o", str(tmp_path / "out")]):
        proc = run_cli(*command)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr
        assert not (tmp_path / "out").exists()


def test_misspelt_section_is_suggested():
    data = raw()
    data["reasoners"] = data.pop("reasoner")
    with pytest.raises(ManifestError, match="reasoners: unknown section; did you mean `reasoner`"):
        validate_manifest(data)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ManifestError) as info:
        validate_manifest(raw(reasoner__layers=0, train__epochs=-1, decoder__pooling="median"))
    text = str(info.value)
    assert text.startswith("3 problems")
    for key in ("reasoner.layers", "train.epochs", "decoder.pooling"):
        assert key in text


def test_missing_required_sections():
    with pytest.raises(ManifestError, match=r"data: required section is missing"):
        validate_manifest({"decoder": {"plugin": "classifier"}})
    with pytest.raises(ManifestError, match=r"reasoner.plugin: required key is missing"):
        validate_manifest(raw(reasoner__plugin=None))


def test_overrides_parse_toml_values():
    data = apply_overrides(
        raw(), ["reasoner.layers=4", "pipeline.name=other", "backend.prefer=['cpu']", "reasoner.residual=true"]
    )
    assert data["reasoner"]["layers"] == 4 and data["reasoner"]["residual"] is True
    assert data["pipeline"]["name"] == "other" and data["backend"]["prefer"] == ["cpu"]
    with pytest.raises(ManifestError, match="expected KEY=VALUE"):
        apply_overrides(raw(), ["reasoner.layers"])


def test_cli_set_override_is_validated(tmp_path):
    path = write_toml(tmp_path / "m.toml", raw())
    proc = run_cli("manifest", "validate", str(path), "--set", "reasoner.layers=0")
    assert proc.returncode == 2 and "reasoner.layers: must be >= 1, got 0" in proc.stderr
    assert run_cli("manifest", "validate", str(path), "--set", "reasoner.layers=5").returncode == 0


def test_import_paths_need_opt_in():
    data = raw(reasoner__plugin="autoglm_graph.specs:gcn")
    with pytest.raises(ManifestError, match="is an import path.*--allow-import-paths"):
        validate_manifest(data)
    manifest = validate_manifest(data, allow_import_paths=True)
    assert manifest.stages["reasoner"].spec.name == "gcn"


def test_stage_mismatch_names_both_stages():
    data = raw()
    del data["graph_builder"], data["reasoner"]  # sbm samples straight into the classifier
    manifest = validate_manifest(data)
    with pytest.raises(
        StageMismatchError, match=r"decoder `classifier` does not fit data `sbm` \(samples modalities=graph dim=8\)"
    ):
        check_fit(manifest, wire(manifest))


def test_cli_reports_stage_mismatch_before_training(tmp_path):
    data = raw()
    del data["graph_builder"], data["reasoner"]
    proc = run_cli("build", str(write_toml(tmp_path / "m.toml", data)), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "decoder `classifier` does not fit data `sbm`" in proc.stderr
    assert "training" not in proc.stderr and not (tmp_path / "out").exists()


def test_explicit_wiring_and_cycles():
    data = raw()
    data["reasoner"]["inputs"] = ["graph_builder"]
    data["decoder"]["inputs"] = ["reasoner"]
    manifest = validate_manifest(data)
    assert wire(manifest).order() == ["data", "graph_builder", "reasoner", "decoder"]
    data["graph_builder"]["inputs"] = ["decoder"]
    with pytest.raises(ManifestError, match="cycle"):
        wire(validate_manifest(data))
    data["graph_builder"]["inputs"] = ["reasonr"]
    with pytest.raises(ManifestError, match="graph_builder.inputs: unknown stage `reasonr`; did you mean `reasoner`"):
        wire(validate_manifest(data))


def test_default_and_example_manifests_validate():
    manifest = load_manifest(None)
    check_fit(manifest, wire(manifest))
    for path in sorted((REPO / "examples").glob("*.toml")):
        example = load_manifest(path)
        check_fit(example, wire(example))


def test_resolved_manifest_fills_defaults():
    resolved = validate_manifest(raw()).resolved()
    assert resolved["reasoner"]["dropout"] == 0.5 and resolved["scheduler"] == {"plugin": "sequential"}
    assert validate_manifest(resolved).resolved() == resolved  # a lock's manifest validates to itself


def test_schema_includes_plugin_configs(tmp_path):
    schema = manifest_schema()
    branches = schema["properties"]["reasoner"]["allOf"]
    names = {b["if"]["properties"]["plugin"]["const"] for b in branches}
    assert {"gcn", "appnp"} <= names == set(schema["properties"]["reasoner"]["properties"]["plugin"]["enum"])
    gcn = next(b["then"] for b in branches if b["if"]["properties"]["plugin"]["const"] == "gcn")
    assert gcn["properties"]["layers"]["minimum"] == 1
    proc = run_cli("manifest", "schema")
    assert proc.returncode == 0 and json.loads(proc.stdout)["title"] == "AutoGLM manifest"


def schema_errors(data: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_manifest_meets_the_editor_schema(path):
    import tomllib

    assert schema_errors(tomllib.loads(path.read_text())) == []


def test_the_editor_schema_agrees_with_validation_and_names_a_typos_key():
    assert schema_errors(default_manifest()) == []
    assert schema_errors(validate_manifest(raw()).resolved()) == []  # a lock's manifest too
    assert schema_errors(raw(reasoner__backend="cpu")) == []  # validation accepts a stage's own backend
    (typo,) = schema_errors(raw(reasoner__hiden=8))
    assert typo.startswith("reasoner: ") and "'hiden' was unexpected" in typo
    assert any("inputs" in e for e in schema_errors(raw(data__inputs=["reasoner"])))  # validation refuses it too
    (unknown,) = schema_errors(raw(reasoner__plugin="gnc"))
    assert unknown.startswith("reasoner.plugin: 'gnc' is not one of")


def test_unknown_plugin_known_to_the_index_gets_an_install_hint():
    from autoglm_sdk.registry import Registry

    empty = Registry([])
    with pytest.raises(PluginNotFoundError) as info:
        empty.spec("reasoner", "gcn")
    assert "provided by autoglm-graph, which is not installed" in info.value.message
    assert info.value.hint == "pip install -e plugins/autoglm-graph"
    data = raw()
    with pytest.raises(ManifestError, match="reasoner.plugin: reasoner `gcn` is provided by autoglm-graph"):
        validate_manifest(data, registry=empty)


def test_default_manifest_is_the_readme_example():
    assert default_manifest()["reasoner"]["plugin"] == "path-composer"
    assert (REPO / "autoglm_sdk" / "default_manifest.toml").resolve() == (REPO / "examples" / "kinship.toml")


def test_debug_flag_anywhere_shows_the_traceback(tmp_path):
    path = write_toml(tmp_path / "m.toml", raw(reasoner__layers=0))
    proc = run_cli("manifest", "validate", str(path), "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ManifestError" in proc.stderr


def test_relative_data_paths_are_read_from_the_manifests_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "stories.jsonl").write_text(
        '{"text": "Anna is Ben\'s mother. How is Anna related to Ben?", "label": 0}\n'
    )
    manifest = {
        "data": {"plugin": "jsonl", "path": "stories.jsonl"},
        "graph_builder": {"plugin": "text-relations"},
        "reasoner": {"plugin": "path-composer"},
        "decoder": {"plugin": "classifier"},
    }
    path = write_toml(folder / "m.toml", manifest)
    monkeypatch.chdir(tmp_path)  # elsewhere: the path still means the file beside the manifest
    resolved = load_manifest(path)
    assert resolved.stages["data"].config.path == str(folder / "stories.jsonl")
    proc = run_cli("manifest", "validate", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    missing = write_toml(folder / "missing.toml", {**manifest, "data": {"plugin": "jsonl", "path": "cells.jsonl"}})
    proc = run_cli("manifest", "validate", str(missing), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"error: data.path: cells.jsonl does not exist (looked in {folder} or {tmp_path})" in proc.stderr


def test_sizes_are_bounded_before_anything_runs():
    with pytest.raises(ManifestError, match=r"data.train.stories: must be <= 1000000, got 1e\+15"):
        load_manifest(None, ["data.train.stories=1e15"])


def test_a_missing_graph_builder_is_named(tmp_path):
    data = default_manifest()
    data.pop("graph_builder")
    with pytest.raises(StageMismatchError) as info:
        check_fit(resolved := validate_manifest(data), wire(resolved))
    assert "no [graph_builder] section" in info.value.hint


def test_toml_that_ends_unfinished_names_the_line_it_began(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[pipeline]\nname = "x"\ndescription = """never closed\n\n[train]\nepochs = 2\n')
    with pytest.raises(ManifestError, match=r"the value begun at line 3 is never closed"):
        load_manifest(path)
