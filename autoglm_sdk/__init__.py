"""AutoGLM SDK: build graph-augmented language pipelines from plugins and a TOML manifest.

``__all__`` is the public API for users; :mod:`autoglm_sdk.plugin` is the
surface for plugin authors and :mod:`autoglm_sdk.testing` the contract kit.
Anything else may change without notice. Importing this package is cheap:
names load their modules (and torch) only when first used, so the CLI's light
commands stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # building and loading pipelines
    "build": "autoglm_sdk.builder",
    "BuildResult": "autoglm_sdk.builder",
    "load": "autoglm_sdk.artifact",
    "Pipeline": "autoglm_sdk.artifact",
    "AutoGLMModel": "autoglm_sdk.artifact",
    "AutoGLMConfig": "autoglm_sdk.automodel",
    "Lock": "autoglm_sdk.artifact",
    "Session": "autoglm_sdk.session",
    # manifests and plugins
    "load_manifest": "autoglm_sdk.manifest",
    "validate_manifest": "autoglm_sdk.manifest",
    "apply_overrides": "autoglm_sdk.manifest",
    "parse_override": "autoglm_sdk.manifest",
    "default_manifest": "autoglm_sdk.manifest",
    "manifest_schema": "autoglm_sdk.manifest",
    "Manifest": "autoglm_sdk.manifest",
    "Registry": "autoglm_sdk.registry",
    "default_registry": "autoglm_sdk.registry",
    "AutoGLMError": "autoglm_sdk.errors",
    "hookimpl": "autoglm_sdk.hooks",
    # timing a built pipeline
    "measure": "autoglm_sdk.bench",
}

__all__ = ["__version__", *_LAZY]


def lazy_names(namespace: dict[str, Any], table: dict[str, str]) -> tuple[Any, Any]:
    """``__getattr__`` and ``__dir__`` for a module whose public names (``table``: name -> module) are imported on
    first use, so that importing the module itself stays light (no torch)."""

    def getattr_(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        namespace[name] = value = getattr(importlib.import_module(table[name]), name)
        return value

    return getattr_, lambda: sorted(namespace["__all__"])


__getattr__, __dir__ = lazy_names(globals(), _LAZY)
