"""What a plugin author's mistakes look like to a user: one error naming the stage, the plugin and its
distribution, exit code 2 (never "internal error ... please report")."""

from __future__ import annotations

import pytest
from helpers import SMALL

from autoglm_sdk import build, validate_manifest
from autoglm_sdk.errors import PluginLoadError, StageFailed, StageMismatchError


def manifest(reasoner: dict) -> object:
    return validate_manifest({**SMALL, "reasoner": reasoner, "train": {"epochs": 1}}, allow_import_paths=True)


def test_a_stage_with_forward_but_no_call_is_refused_with_the_fix(tmp_path):
    with pytest.raises(
        PluginLoadError,
        match=r"reasoner `stumble_plugins:forward_only` \(unknown\): ForwardOnly is "
        r"not callable.*subclass torch.nn.Module",
    ):
        build(manifest({"plugin": "stumble_plugins:forward_only"}), tmp_path / "a")


def test_a_factory_pointing_at_a_missing_module_names_stage_and_plugin(tmp_path):
    with pytest.raises(
        PluginLoadError,
        match=r"reasoner `stumble_plugins:missing_module` \(unknown\) could not be "
        r"constructed: ModuleNotFoundError: No module named 'no_such_module",
    ):
        build(manifest({"plugin": "stumble_plugins:missing_module"}), tmp_path / "a")


def test_a_wrong_output_width_is_blamed_on_the_stage_that_made_it(tmp_path):
    with pytest.raises(
        StageMismatchError,
        match=r"reasoner `stumble_plugins:wrong_width` \(unknown\) produced "
        r"outputs of width 8, but its signature declares .*dim=16",
    ):
        build(manifest({"plugin": "stumble_plugins:wrong_width", "hidden": 16}), tmp_path / "a")


def test_a_plugin_that_raises_at_run_time_names_stage_and_distribution(tmp_path, monkeypatch):
    import autoglm_graph.gnn as gnn

    def broken(self, graph):
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(gnn.GCNReasoner, "forward", broken)
    with pytest.raises(StageFailed, match=r"reasoner `gcn` \(autoglm-graph \d[\d.]*\) failed: IndexError: index 7"):
        build(validate_manifest(SMALL), tmp_path / "a")


def test_the_cli_prints_a_plugin_failure_as_a_user_error_exit_2(tmp_path, monkeypatch, capsys):
    from helpers import write_toml

    import autoglm_graph.gnn as gnn
    from autoglm_cli.app import main

    monkeypatch.setattr(gnn.GCNReasoner, "forward", lambda self, graph: graph.missing_attribute)
    path = write_toml(tmp_path / "m.toml", SMALL)
    code = main(["build", str(path), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: reasoner `gcn` (autoglm-graph" in err and "AttributeError" in err and "internal error" not in err


def test_a_cacheable_builder_makes_each_samples_graph_once_per_build(tmp_path, monkeypatch):
    """A builder whose graphs depend on each sample alone (capability "cacheable": `given`, `text-relations`) used
    to be run on every forward pass; now each sample's graph is made once per build and kept."""
    import autoglm_graph.given as given

    seen = []
    real = given.GivenGraph.forward
    monkeypatch.setattr(
        given.GivenGraph, "forward", lambda self, samples: seen.extend(map(id, samples)) or real(self, samples)
    )
    raw = {
        "pipeline": {"name": "shapes", "seed": 0},
        "data": {"plugin": "fixture_plugins:spec"},
        "graph_builder": {"plugin": "given"},
        "reasoner": {"plugin": "gcn", "hidden": 8, "layers": 1},
        "decoder": {"plugin": "classifier"},
        "train": {"epochs": 4, "batch_size": 8},
    }
    build(validate_manifest(raw, allow_import_paths=True), tmp_path / "s")
    assert len(seen) == len(set(seen)) == 3 * 24  # each sample once, over 4 epochs and every evaluation


def test_a_plugins_identity_is_written_once_in_its_spec(tmp_path):
    """The implementation class need not repeat the spec's name, kind and Config; the SDK gives them."""
    from stumble_plugins import anonymous

    from autoglm_sdk.testing.checks import Subject, check_construct_defaults, check_implementation

    result = build(manifest({"plugin": "stumble_plugins:anonymous", "hidden": 8}), tmp_path / "a")
    assert result.report["model"]["stages"]["reasoner"] == "stumble_plugins:anonymous"
    subject = Subject("reasoner", "anonymous", anonymous)
    check_implementation(subject)
    check_construct_defaults(subject)
    assert subject.make().name == "anonymous" and subject.make().kind == "reasoner"


def test_a_loaded_pipeline_keeps_no_graphs_of_the_inputs_it_answers(tmp_path):
    from autoglm_sdk import load

    build(validate_manifest({**SMALL, "train": {"epochs": 1}}), tmp_path / "a")
    pipeline = load(tmp_path / "a")
    pipeline.predict_samples(pipeline.data_split("test"))
    assert pipeline.model.caches == {}
