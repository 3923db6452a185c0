"""pluggy hooks of autoglm-serve: the ``autoglm serve`` command (light: imported when the CLI starts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from autoglm_sdk.plugin import AutoGLMError, hookimpl


def serve(
    artifacts: Annotated[
        List[str],
        typer.Argument(
            help="Artifact directories or cascade files to serve, each as PATH or NAME=PATH (name: its folder or file "
            "stem)."
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most inputs in one model call.")] = 16,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="Longest wait for a batch to fill (never when idle).")
    ] = 5.0,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1, help="Inputs waiting before 429.")] = 256,
    cache_size: Annotated[int, typer.Option("--cache-size", min=0, help="Answers kept by input hash.")] = 1024,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds before a request gets 504.")] = 30.0,
    api_key: Annotated[
        Optional[str],
        typer.Option("--api-key", help="Require 'Authorization: Bearer KEY' (default: $AUTOGLM_API_KEY, else none)."),
    ] = None,
) -> None:
    """Serve built artifacts over HTTP: POST /v1/predict and /v1/generate, GET /healthz, /readyz, /metrics, with
    dynamic batching, a response cache and a bounded queue."""
    import uvicorn

    from autoglm_sdk import load
    from autoglm_serve.server import ServeConfig, create_app

    pipelines: dict[str, Any] = {}
    for item in artifacts:
        name, _, where = item.rpartition("=") if "=" in item else ("", "", item)
        path = Path(where)
        name = name or (path.stem if path.suffix == ".toml" else path.resolve().name)
        if name in pipelines:
            raise AutoGLMError(f"two artifacts are named {name!r}", hint="name them: NAME=PATH")
        pipelines[name] = load(path)
        typer.echo(f"loaded {name} from {path}", err=True)
    config = ServeConfig(
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        cache_size=cache_size,
        timeout_s=timeout,
        api_key=api_key or os.environ.get("AUTOGLM_API_KEY") or None,
    )
    uvicorn.run(create_app(pipelines, config), host=host, port=port, log_level="warning")


@hookimpl
def autoglm_cli_commands(app: Any) -> None:
    example = "autoglm serve artifacts/kinship --port 8000"
    app.command(name="serve", epilog=f"\b\nExample:\n  {example}")(serve)
