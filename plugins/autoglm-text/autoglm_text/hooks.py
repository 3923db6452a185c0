"""pluggy hooks of autoglm-text (light: imported when the CLI starts, so no torch here)."""

from __future__ import annotations

from typing import Any

from autoglm_sdk.plugin import hookimpl


@hookimpl
def autoglm_evaluate(session: Any, model: Any) -> dict[str, Any] | None:
    """For a pipeline that reads its graph with relation-extractor: fact precision, recall and F1 per relation on
    every split but train, answer accuracy per phrasing family, and the worst errors with their graphs."""
    from autoglm_text.evaluation import evaluate_session

    return evaluate_session(session, model)
