"""The build session: one setup (backend, data, wiring, fit check) that every verb shares."""

from __future__ import annotations

import pytest
from helpers import SMALL, write_toml

from autoglm_sdk import Session, build, load, validate_manifest


def test_a_build_from_the_cli_checks_the_stages_fit_once(tmp_path, monkeypatch):
    import autoglm_sdk.dag
    import autoglm_sdk.session
    from autoglm_cli.app import main

    calls = []
    real = autoglm_sdk.dag.check_fit

    def counted(*args, **kwargs):
        calls.append(kwargs.get("data_port"))
        return real(*args, **kwargs)

    monkeypatch.setattr(autoglm_sdk.dag, "check_fit", counted)
    monkeypatch.setattr(autoglm_sdk.session, "check_fit", counted)
    path = write_toml(tmp_path / "m.toml", {**SMALL, "train": {"epochs": 1}})
    assert main(["build", str(path), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert len(calls) == 1 and calls[0] is not None  # once, against the data's real port


def test_the_session_holds_the_loss_terms_and_loaded_artifacts_share_it(tmp_path):
    manifest = validate_manifest({**SMALL, "train": {"epochs": 1, "task_weight": 0.5}})
    session = Session.open(manifest)
    model = session.new_model()
    (task,) = session.objectives(model)
    assert task.name == "task" and task.weight == 0.5
    assert set(session.evaluate(model)) == {"train", "val", "test"}
    result = build(manifest, tmp_path / "a")
    assert result.report["training"]["objectives"] == {"task": 0.5}
    pipeline = load(tmp_path / "a")
    assert isinstance(pipeline.session, Session) and pipeline.session.ports == session.ports
    assert pipeline.session.objectives(pipeline.model)[0].weight == 0.5


def test_wiring_mistakes_come_before_any_data_is_loaded(monkeypatch):
    import autoglm_sdk.session
    from autoglm_sdk.errors import ManifestError

    monkeypatch.setattr(autoglm_sdk.session, "_load_data", lambda manifest: pytest.fail("data was loaded"))
    manifest = validate_manifest({**SMALL, "decoder": {"plugin": "classifier", "inputs": ["reasonr"]}})
    with pytest.raises(ManifestError, match="decoder.inputs: unknown stage `reasonr`; did you mean `reasoner`"):
        Session.open(manifest)
