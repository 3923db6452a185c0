"""pluggy hooks of autoglm-backends: the ``autoglm bench`` command and the device inventory in ``autoglm doctor``
(light: imported when the CLI starts)."""

from __future__ import annotations

from typing import Any

import typer

from autoglm_backends.bench import bench
from autoglm_sdk.plugin import hookimpl


@hookimpl
def autoglm_cli_commands(app: typer.Typer) -> None:
    examples = ["autoglm bench artifacts/kinship", "autoglm bench artifacts/kinship -b 1 -b 32 --threads 1 --threads 2"]
    app.command(name="bench", epilog="\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples))(bench)


@hookimpl
def autoglm_doctor() -> dict[str, Any]:
    """The devices the meta-controller scheduler would place stages on, as it sees them now."""
    from dataclasses import asdict

    from autoglm_backends.meta import inventory

    return {"devices": [{k: v for k, v in asdict(d).items() if v is not None} for d in inventory()]}
