"""pluggy hooks of autoglm-backends: the ``autoglm bench`` command (light: imported when the CLI starts)."""

from __future__ import annotations

import typer

from autoglm_backends.bench import bench
from autoglm_sdk.plugin import hookimpl


@hookimpl
def autoglm_cli_commands(app: typer.Typer) -> None:
    examples = ["autoglm bench artifacts/kinship", "autoglm bench artifacts/kinship -b 1 -b 32 --threads 1 --threads 2"]
    app.command(name="bench", epilog="\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples))(bench)
