"""pluggy hooks of autoglm-graph: the ``autoglm search`` command (light: imported when the CLI starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from autoglm_sdk.plugin import AutoGLMError, ManifestError, hookimpl


def search(
    manifest: Annotated[Path, typer.Argument(help="Manifest whose reasoner is a searchable supernet (plugin darts).")],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o",
            "--output",
            help="Directory for the derived manifest and "
            "the search report (default: artifacts/<pipeline name>-search).",
        ),
    ] = None,
    overrides: Annotated[
        Optional[List[str]],
        typer.Option("--set", help="Override a manifest key, e.g. --set reasoner.layers=4 (repeatable)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Search epochs.")] = 50,
    order: Annotated[
        int,
        typer.Option(
            "--order", min=1, max=2, help="1: first-order DARTS; 2: the unrolled second-order gradient (slower)."
        ),
    ] = 1,
    arch_lr: Annotated[
        float, typer.Option("--arch-lr", min=0.0, help="Learning rate of the architecture weights.")
    ] = 3e-3,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Epochs training only the operations' weights first.")
    ] = 5,
    readout: Annotated[
        str,
        typer.Option(
            "--readout",
            help="How the architecture is read out: perturbation (the "
            "operation whose removal hurts most) or alpha (largest weight).",
        ),
    ] = "perturbation",
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Build the derived manifest afterwards (OUTPUT/retrained).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Differentiable architecture search (DARTS): writes a derived manifest with the chosen operations, and a
    report. The search runs in the manifest's build session (its backend, data and objectives)."""
    from autoglm_sdk import load_manifest

    if readout not in ("perturbation", "alpha"):
        raise ManifestError(f"--readout {readout}: expected perturbation or alpha")
    resolved = load_manifest(manifest, overrides or [])
    target = output or Path("artifacts") / f"{resolved.pipeline.name}-search"
    if target.exists() and not force:
        raise AutoGLMError(f"{target} already exists", hint="pass --force to replace it, or choose another -o")
    from autoglm_graph.search import run_search

    options = {
        "epochs": epochs,
        "order": order,
        "arch_lr": arch_lr,
        "warmup_epochs": warmup,
        "readout": readout,
        "retrain": retrain,
    }
    report = run_search(manifest, target, options, overrides or [], log=lambda message: typer.echo(message, err=True))
    typer.echo(
        f"derived {' -> '.join(report['architecture'])} on {report['backend']} in "
        f"{report['search_seconds']:.1f}s ({report['seconds_per_epoch']:.2f}s per epoch); "
        f"wrote {target / 'derived.toml'}"
    )
    if "retrained" in report:
        typer.echo(
            f"retrained: test accuracy {report['retrained']['metrics']['test']['accuracy']:.4f} "
            f"({report['retrained']['artifact']})"
        )


@hookimpl
def autoglm_cli_commands(app: Any) -> None:
    example = "autoglm search examples/csbm-darts.toml -o artifacts/csbm-search --epochs 30"
    app.command(name="search", epilog=f"\b\nExample:\n  {example}")(search)
