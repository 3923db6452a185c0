"""pluggy hooks of autoglm-multimodal (light: imported when the CLI starts, so no torch here)."""

from __future__ import annotations

from typing import Any

from autoglm_sdk.plugin import hookimpl


@hookimpl
def autoglm_evaluate(session: Any, model: Any) -> dict[str, Any] | None:
    """Cross-modal figures for the build report: accuracy from each subset of the modalities, retrieval in the
    shared space, under each perturbation the data source offers."""
    from autoglm_multimodal.crossmodal import evaluate_session

    return evaluate_session(session, model)
