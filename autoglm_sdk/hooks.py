"""pluggy hooks: things many plugins may do at once (observe a build, add CLI commands).

Hook implementations are registered from the ``autoglm.hooks`` entry-point
group (and, in code, with ``plugin_manager().register(obj)``). Modules in that
group are imported when the CLI starts, so they must be light: no torch at
import time.

Versioning: :data:`HOOKSPEC_VERSION` grows when a hook is added; a hook module
may declare ``AUTOGLM_HOOKSPEC_VERSION``; one written for a newer version than
this SDK's is refused with a clear message rather than half-working.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pluggy

PROJECT = "autoglm"
HOOKSPEC_VERSION = 3  # 2: autoglm_evaluate; 3: autoglm_doctor
HOOK_GROUP = "autoglm.hooks"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class AutoGLMHookSpecs:
    """Hook specifications, version 3."""

    @hookspec
    def autoglm_build_started(self, manifest: dict[str, Any], output: str) -> None:
        """A build has validated its manifest and is about to load data."""

    @hookspec
    def autoglm_epoch_ended(self, epoch: int, metrics: dict[str, float]) -> None:
        """A training epoch finished; ``metrics`` holds train loss and validation metric."""

    @hookspec
    def autoglm_artifact_written(self, path: str, report: dict[str, Any]) -> None:
        """An artifact directory has been renamed into place."""

    @hookspec
    def autoglm_evaluate(self, session: Any, model: Any) -> dict[str, Any] | None:
        """After training and compression, an evaluation of the built pipeline for its report, or None when it
        does not apply: ``{"name": str, "figures": JSON-able dict, "markdown": [lines of report.md],
        "pictures": {file name: draw(path)}}``. ``session`` is the build's :class:`~autoglm_sdk.session.Session`."""

    @hookspec
    def autoglm_doctor(self) -> dict[str, Any] | None:
        """Sections for ``autoglm doctor`` (name -> JSON-able value; a list prints one line per item)."""

    @hookspec
    def autoglm_cli_commands(self, app: Any) -> None:
        """Add commands to the typer ``app`` behind the ``autoglm`` console script."""


class _Broken:
    """Hook modules that failed to load or whose hooks raised: reported by ``autoglm doctor``, never fatal."""

    items: list[tuple[str, str]] = []
    distributions: dict[str, str] = {}  # registered name -> "distribution version"


@cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(AutoGLMHookSpecs)
    from importlib import metadata

    for ep in metadata.entry_points(group=HOOK_GROUP):
        try:
            module = ep.load()
            wanted = getattr(module, "AUTOGLM_HOOKSPEC_VERSION", HOOKSPEC_VERSION)
            if wanted > HOOKSPEC_VERSION:
                raise RuntimeError(f"needs hookspec version {wanted}, this SDK has {HOOKSPEC_VERSION}")
            pm.register(module, name=ep.name)
            if ep.dist is not None:
                _Broken.distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"
        except Exception as exc:  # a broken third-party hook must not break the SDK
            _Broken.items.append((ep.name, f"{type(exc).__name__}: {exc}"))
    return pm


def call_hook(name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of hook ``name`` on its own and return their non-None results.

    Hooks are isolated as plugins are: one that raises is skipped with a one-line warning naming its
    distribution (and listed by ``autoglm doctor``); the others, and the command that called them, go on.
    ``KeyboardInterrupt`` is not an error of the hook and still stops the command.
    """
    import warnings

    from autoglm_sdk.errors import AutoGLMWarning

    results = []
    for impl in reversed(getattr(plugin_manager().hook, name).get_hookimpls()):  # pluggy's order: last registered first
        try:
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:
            where = _Broken.distributions.get(impl.plugin_name, impl.plugin_name)
            problem = f"{name} raised {type(exc).__name__}: {exc}"
            _Broken.items.append((where, problem))
            warnings.warn(f"hook of {where} skipped: {problem}", AutoGLMWarning, stacklevel=2)
            continue
        if result is not None:
            results.append(result)
    return results


def broken_hooks() -> list[tuple[str, str]]:
    plugin_manager()
    return list(_Broken.items)
