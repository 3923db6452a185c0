"""The kit says plainly when a stage class has ``forward`` but cannot be called, as the SDK calls stages."""

from __future__ import annotations

import copy

from torch import nn

from autoglm_sdk.protocols import PluginConfig, PluginSpec
from autoglm_sdk.testing import CHECKS, run_check
from autoglm_sdk.testing.checks import Subject

HINT = "subclass torch.nn.Module (which calls forward) or define __call__"


class NoConfig(PluginConfig):
    pass


class MyGAT:
    """What the kind table's "implements forward" led a plugin author to write: a plain class."""

    name = "my-gat"
    kind = "reasoner"
    Config = NoConfig

    def __init__(self, config, ctx):
        self.dim = ctx.input.dim

    def forward(self, graph):
        return graph


class CallableGAT(MyGAT):
    """The plain class made callable by hand, which the SDK accepts as well as an nn.Module."""

    def __call__(self, graph):
        return self.forward(graph)


class ModuleGAT(nn.Module):
    name = "my-gat"
    kind = "reasoner"
    Config = NoConfig

    def __init__(self, config, ctx):
        super().__init__()

    def forward(self, graph):
        return copy.copy(graph)


def subject(cls: type) -> Subject:
    spec = PluginSpec(
        name="my-gat",
        kind="reasoner",
        config=NoConfig,
        factory=f"{__name__}:{cls.__name__}",
        signature=lambda config, ctx: ctx.input,
    )
    return Subject("reasoner", "my-gat", spec)


def result(cls: type, check_name: str):
    return run_check(next(c for c in CHECKS if c.name == check_name), subject(cls))


def test_a_plain_class_with_forward_fails_with_a_hint():
    got = result(MyGAT, "callable")
    assert got.outcome == "failed"
    assert got.message == f"`my-gat`'s class MyGAT defines forward but is not callable: {HINT}"


def test_checks_that_run_the_stage_give_the_same_hint_not_a_type_error():
    got = result(MyGAT, "output_shape")
    assert got.outcome == "failed" and HINT in got.message, got.message


def test_a_module_or_a_class_with_call_passes():
    assert result(ModuleGAT, "callable").outcome == "passed"
    assert result(CallableGAT, "callable").outcome == "passed"


def test_the_check_applies_to_every_stage_kind_and_only_those():
    check = next(c for c in CHECKS if c.name == "callable")
    assert check.kinds == {"encoder", "graph_builder", "reasoner", "decoder"}
