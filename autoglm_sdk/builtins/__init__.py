"""Plugins every pipeline needs, shipped with the core but registered through the
same entry points as any other plugin (see ``pyproject.toml``). Light: no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from autoglm_sdk.protocols import PluginConfig, PluginSpec


class SequentialConfig(PluginConfig):
    """The sequential scheduler has nothing to configure."""


sequential = PluginSpec(
    name="sequential",
    kind="scheduler",
    config=SequentialConfig,
    factory="autoglm_sdk.builtins.schedulers:SequentialScheduler",
    summary="Runs pipeline stages one at a time in topological order.",
)


class CPUConfig(PluginConfig):
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (none = torch's default).")
    bf16: bool = Field(False, description="Run forward passes under bfloat16 autocast where the CPU supports it.")


cpu = PluginSpec(
    name="cpu",
    kind="backend",
    config=CPUConfig,
    factory="autoglm_sdk.builtins.backends:CPUBackend",
    summary="PyTorch on the CPU; always available.",
)


class AutoConfig(PluginConfig):
    prefer: list[str] = Field(
        default_factory=lambda: ["cuda", "npu", "cpu"],
        min_length=1,
        description="Backends to try, best first; the first usable one is chosen.",
    )
    fallback: Literal["strict", "warn", "allow"] = Field(
        "warn",
        description="When the first preference is unusable: strict = error, warn = use the next with a warning, "
        "allow = use the next quietly. Every fallback is recorded in the artifact either way.",
    )


auto = PluginSpec(
    name="auto",
    kind="backend",
    config=AutoConfig,
    factory="autoglm_sdk.builtins.backends:AutoBackend",
    summary="Chooses a backend from a preference list with an explicit fallback policy.",
)
