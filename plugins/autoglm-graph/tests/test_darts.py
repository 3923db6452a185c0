"""darts: the supernet, the derivation rules, the bilevel search and `autoglm search`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from autoglm_graph.darts import derive
from autoglm_sdk.testing import ReasonerContract

OPS = ["gcn", "mlp", "skip", "zero"]


class TestDartsSupernet(ReasonerContract):
    plugin = "darts"
    config = {"operations": OPS, "hidden": 16, "layers": 2}


class TestDartsDerived(ReasonerContract):
    plugin = "darts"
    config = {"architecture": ["gcn", "skip"], "hidden": 16}


def test_derive_never_picks_zero_and_caps_skip():
    ops = ["gcn", "sage", "skip", "zero"]
    weights = torch.tensor(
        [
            [0.1, 0.1, 0.3, 0.5],  # zero wins: the best other op (skip) instead
            [0.2, 0.1, 0.6, 0.1],  # skip wins clearly
            [0.30, 0.1, 0.31, 0.29],
        ]
    )  # skip wins by a hair: the first to give it up
    # every layer would take skip once zero is out; the layer where skip leads by most keeps it
    assert derive(weights, ops, max_skip=1) == ["gcn", "skip", "gcn"]
    assert derive(weights, ops, max_skip=0) == ["gcn", "gcn", "gcn"]
    assert derive(weights, ops, max_skip=3) == ["skip", "skip", "skip"]


def test_a_third_party_reasoner_joins_the_search_space_by_name():
    pytest.importorskip("autoglm_plugin_example")
    from autoglm_graph.darts import DartsReasoner
    from autoglm_graph.specs import DartsConfig
    from autoglm_sdk.plugin import BuildContext, Port, SemanticGraph
    from autoglm_sdk.testing import fixtures

    model = DartsReasoner(
        DartsConfig(operations=["gcn", "appnp", "skip"], hidden=8),
        BuildContext(inputs={"g": Port("semantic_graph", dim=8)}),
    )
    graph = SemanticGraph.collate(fixtures.random_graphs(2, seed=0))
    assert model(graph).x.shape == (graph.num_nodes, 8)
    assert type(model.layer_ops[0][1].reasoner).__name__.lower().startswith("appnp")


def small_manifest(tmp_path: Path, **reasoner) -> Path:
    ops = reasoner.pop("operations", OPS)
    text = f"""
[pipeline]
name = "darts-test"
seed = 0
[data]
plugin = "csbm"
nodes_per_class = 40
train_per_class = 5
val_per_class = 10
feature_signal = 2.0
[graph_builder]
plugin = "given"
[reasoner]
plugin = "darts"
operations = {ops!r}
hidden = 16
[decoder]
plugin = "classifier"
[train]
epochs = 5
lr = 0.01
[backend]
plugin = "cpu"
""".replace("'", '"')
    path = tmp_path / "darts.toml"
    path.write_text(text)
    return path


def test_search_writes_a_derived_manifest_that_builds_and_a_report_with_the_weights(tmp_path):
    from autoglm_graph.search import run_search

    report = run_search(
        small_manifest(tmp_path),
        tmp_path / "out",
        {"epochs": 4, "warmup_epochs": 1, "curvature_every": 2, "retrain": True},
        log=lambda m: None,
    )
    arch = report["architecture"]
    assert len(arch) == 2 and "zero" not in arch and arch.count("skip") <= 1
    derived = tomllib.loads((tmp_path / "out" / "derived.toml").read_text())
    assert derived["reasoner"]["architecture"] == arch
    assert (tmp_path / "out" / "architecture_weights.png").stat().st_size > 0
    history = report["history"]
    assert len(history) == 4 and "curvature" in history[3]
    assert history[0]["weights"] != history[-1]["weights"]  # the architecture weights were trained
    assert 0 <= report["retrained"]["metrics"]["test"]["accuracy"] <= 1
    assert "Derived architecture" in (tmp_path / "out" / "search.md").read_text()


def test_second_order_search_runs_and_moves_the_weights(tmp_path):
    from autoglm_graph.search import run_search

    report = run_search(
        small_manifest(tmp_path),
        tmp_path / "out",
        {"epochs": 2, "warmup_epochs": 0, "order": 2, "readout": "alpha", "curvature_every": 0},
        overrides=["reasoner.hidden=8"],
        log=lambda m: None,
    )
    assert report["history"][0]["weights"] != report["history"][-1]["weights"]
    derived = tomllib.loads((tmp_path / "out" / "derived.toml").read_text())
    assert derived["reasoner"]["hidden"] == 8  # --set overrides are part of what was searched


def test_search_stops_when_skip_and_zero_take_over(tmp_path):
    from autoglm_graph.search import run_search

    report = run_search(
        small_manifest(tmp_path),
        tmp_path / "out",
        {"epochs": 5, "warmup_epochs": 0, "collapse_share": 0.0, "curvature_every": 0},
        log=lambda m: None,
    )
    assert report["stopped_early"].startswith("epoch 1:") and len(report["history"]) == 1


def test_search_cli_refuses_a_manifest_without_a_supernet(tmp_path):
    manifest = small_manifest(tmp_path)
    manifest.write_text(
        manifest.read_text()
        .replace('plugin = "darts"', 'plugin = "gcn"')
        .replace('operations = ["gcn", "mlp", "skip", "zero"]', "")
    )
    proc = run_cli("search", str(manifest), "-o", str(tmp_path / "s"))
    assert proc.returncode != 0 and 'needs `reasoner.plugin = "darts"`' in proc.stderr


def test_search_runs_on_the_manifests_backend(tmp_path):
    """The search shares the build's session: a backend the manifest names is the one it searches on (an
    unusable one is refused, where the search used to run on the CPU without saying so)."""
    from autoglm_graph.search import run_search
    from autoglm_sdk.plugin import BackendUnavailableError

    path = small_manifest(tmp_path)
    report = run_search(
        path,
        tmp_path / "out",
        {"epochs": 1, "warmup_epochs": 0, "curvature_every": 0},
        overrides=['backend.plugin="auto"', 'backend.prefer=["npu", "cpu"]', 'backend.fallback="allow"'],
        log=lambda m: None,
    )
    assert report["backend"] == "cpu" and report["device"] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="`cuda` is not usable here"):
            run_search(path, tmp_path / "out2", {"epochs": 1}, overrides=['backend.plugin="cuda"'], log=lambda m: None)


def test_search_minimises_the_same_loss_as_the_build(tmp_path):
    """The search's loss is the build's: the task term plus every stage's own term (here the adaptive graph
    builder's regularisers), weighted as [train] says."""
    from autoglm_graph.search import Criterion
    from autoglm_sdk import Session, load_manifest
    from autoglm_sdk.plugin import objective_terms

    path = small_manifest(tmp_path)
    path.write_text(path.read_text().replace('plugin = "given"', 'plugin = "adaptive"\nk = 4'))
    session = Session.open(load_manifest(path, ["train.task_weight=0.5"]))
    model = session.new_model()
    names = [o.name for o in session.objectives(model)]
    assert names == ["task", "graph_builder"]
    batch = session.split("train")
    torch.manual_seed(0)
    searched = Criterion(model, session).loss(batch)
    torch.manual_seed(0)
    built, values = objective_terms(session.objectives(model), model(batch), batch)
    assert torch.allclose(searched, built) and set(values) == {"task", "graph_builder"}
    assert torch.allclose(built, 0.5 * torch.tensor(values["task"]) + values["graph_builder"], atol=1e-5)
