"""The contract kit catches the mistakes it promises to catch, and runs three ways."""

from __future__ import annotations

import copy
import subprocess
import sys

import torch
from helpers import REPO, run_cli
from torch import nn

from autoglm_sdk.errors import InputError
from autoglm_sdk.graph import check_graph
from autoglm_sdk.protocols import PluginConfig, PluginSpec, Port
from autoglm_sdk.testing import CHECKS, run_check
from autoglm_sdk.testing.checks import Subject


class FlawConfig(PluginConfig):
    pass


class FlawedReasoner(nn.Module):
    """Three classic bugs: mixes graphs in a batch, keeps a plain tensor attribute, raises ValueError."""

    name = "flawed"
    kind = "reasoner"
    Config = FlawConfig

    def __init__(self, config, ctx):
        super().__init__()
        self.lin = nn.Linear(ctx.input.dim, 4)
        self.offset = torch.ones(4)  # not a buffer: .to() will not move it

    def forward(self, graph):
        if graph.x.size(1) != self.lin.in_features:
            raise ValueError("bad")
        out = copy.copy(graph)
        out.x = self.lin(graph.x) + graph.x.mean() + self.offset  # mean over the whole batch
        return out


class GoodReasoner(nn.Module):
    name = "good"
    kind = "reasoner"
    Config = FlawConfig

    def __init__(self, config, ctx):
        super().__init__()
        self.in_dim = ctx.input.dim
        self.lin = nn.Linear(self.in_dim, 4)

    def forward(self, graph):
        check_graph(graph, dim=self.in_dim, who="good")
        out = copy.copy(graph)
        out.x = self.lin(graph.x)
        return out


def signature(config, ctx):
    return ctx.input.with_(dim=4)


def subject(cls, **spec_kwargs) -> Subject:
    spec = PluginSpec(
        name=cls.name,
        kind="reasoner",
        config=FlawConfig,
        factory=f"{__name__}:{cls.__name__}",
        signature=signature,
        capabilities=frozenset({"learnable"}),
        **spec_kwargs,
    )
    return Subject("reasoner", cls.name, spec)


def outcomes(subj: Subject) -> dict[str, str]:
    return {c.name: run_check(c, subj).outcome for c in CHECKS if "reasoner" in c.kinds}


def test_kit_catches_the_flaws():
    results = outcomes(subject(FlawedReasoner))
    assert results["batch_consistency"] == "failed"
    assert results["device_move"] == "failed"
    assert results["bad_input"] == "failed"
    assert results["gradients"] == "passed" and results["output_shape"] == "passed"


def test_kit_passes_a_correct_plugin():
    results = outcomes(subject(GoodReasoner))
    assert results.pop("light_import") == "skipped"  # not registered through an entry point
    assert set(results.values()) == {"passed"}, results


def test_expected_failures_are_declared_with_reasons():
    flawed = subject(FlawedReasoner, expected_failures={"batch_consistency": "normalises over the batch on purpose"})
    check = next(c for c in CHECKS if c.name == "batch_consistency")
    result = run_check(check, flawed)
    assert result.outcome == "xfailed" and "on purpose" in result.message
    stale = subject(GoodReasoner, expected_failures={"batch_consistency": "used to fail"})
    assert run_check(check, stale).outcome == "xpassed"  # a fixed bug must drop its declaration


def test_bad_input_message_names_the_expected_size():
    with_msg = GoodReasoner(FlawConfig(), type("C", (), {"input": Port("semantic_graph", dim=8)})())
    bad = type("G", (), {"x": torch.randn(2, 3), "edge_index": torch.zeros(2, 0, dtype=torch.long)})()
    try:
        with_msg(bad)
    except InputError as exc:
        assert "expected node features of size 8, got 3" in exc.message


def test_plugins_check_command():
    proc = run_cli("plugins", "check", "gcn", "--config", "hidden=8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS gradients" in proc.stdout and "PASS light_import" in proc.stdout and "failed" not in proc.stdout


def test_pytest_plugin_option(tmp_path):
    (tmp_path / "test_nothing.py").write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--autoglm-contract",
            "appnp,sequential",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "passed" in proc.stdout.splitlines()[-1]


def test_contrib_example_installed_as_separate_distribution():
    from importlib import metadata

    dist = metadata.distribution("autoglm-plugin-example")
    assert any(ep.name == "appnp" and ep.group == "autoglm.reasoners" for ep in dist.entry_points)
    assert (REPO / "contrib" / "README.md").exists()
