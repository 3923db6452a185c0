"""pluggy hooks of autoglm-backends: the ``autoglm bench`` command (light: imported when the CLI starts)."""

from __future__ import annotations

import typer

from autoglm_backends.bench import bench
from autoglm_sdk.plugin import hookimpl


@hookimpl
def autoglm_cli_commands(app: typer.Typer) -> None:
    app.command(name="bench")(bench)
