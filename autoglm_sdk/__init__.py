"""AutoGLM SDK: build graph-augmented language pipelines from plugins and a TOML manifest.

Importing this package is cheap: names below load their modules (and torch)
only when first used, so the CLI's light commands stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "autoglm_sdk.artifact",
    "Pipeline": "autoglm_sdk.artifact",
    "build": "autoglm_sdk.builder",
    "load_manifest": "autoglm_sdk.manifest",
    "validate_manifest": "autoglm_sdk.manifest",
    "Manifest": "autoglm_sdk.manifest",
    "SemanticGraph": "autoglm_sdk.graph",
    "PluginSpec": "autoglm_sdk.protocols",
    "PluginConfig": "autoglm_sdk.protocols",
    "BuildContext": "autoglm_sdk.protocols",
    "Port": "autoglm_sdk.protocols",
    "PortMismatch": "autoglm_sdk.protocols",
    "TaskSpec": "autoglm_sdk.protocols",
    "Dataset": "autoglm_sdk.protocols",
    "CONTRACT_VERSION": "autoglm_sdk.protocols",
    "Registry": "autoglm_sdk.registry",
    "AutoGLMError": "autoglm_sdk.errors",
    "hookimpl": "autoglm_sdk.hooks",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autoglm_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
