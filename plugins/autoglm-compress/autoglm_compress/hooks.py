"""pluggy hooks of autoglm-compress: the ``autoglm compress`` command (light: imported when the CLI starts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List

import typer

from autoglm_sdk.plugin import ManifestError, hookimpl


def compress(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory written by `autoglm build`.")],
    steps: Annotated[
        List[str],
        typer.Option(
            "--with",
            "-w",
            help='A compressor and its options, e.g. int8 or bf16:stages=["reasoner"] (repeatable; applied in order).',
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the compressed artifact.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print each step's before/after figures as JSON.")] = False,
) -> None:
    """Compress a built artifact into a new one, with a before/after table for every step in its report."""
    from rich.console import Console

    from autoglm_compress.artifacts import compress_artifact, parse_with
    from autoglm_sdk.plugin import EpochBar

    sections = [parse_with(text) for text in steps]
    if output.exists() and not force:
        raise ManifestError(f"{output} exists", hint="pass --force to replace it, or choose another -o")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # log lines and the recovery fine-tune's epoch bar (prune) go to stderr, the summary to stdout
    report = compress_artifact(artifact, sections, output, overwrite=force, log=err.print, progress=EpochBar(err))
    if as_json:
        import json

        steps = report["compression"][-len(sections) :]
        keys = ("plugin", "profile_before", "profile_after", "metrics_before", "metrics_after")
        summary = {"path": str(output), "steps": [{k: step.get(k) for k in keys} for step in steps]}
        sys.stdout.write(json.dumps(summary, default=float) + "\n")
        return
    for step in report["compression"][-len(sections) :]:
        b, a = step["profile_before"], step["profile_after"]
        val_b, val_a = step["metrics_before"]["val"]["accuracy"], step["metrics_after"]["val"]["accuracy"]
        sys.stdout.write(
            f"{step['plugin']}: {b['bytes']:,} -> {a['bytes']:,} bytes ({a['bytes'] / b['bytes']:.2f}x), "
            f"p50 at batch 1 {b['p50_ms_batch1']:.2f} -> {a['p50_ms_batch1']:.2f} ms, "
            f"val accuracy {val_b:.3f} -> {val_a:.3f}\n"
        )
    sys.stdout.write(f"wrote {output} (report: {output / 'report.md'})\n")


@hookimpl
def autoglm_cli_commands(app: typer.Typer) -> None:
    examples = [
        "autoglm compress artifacts/kinship --with int8 -o artifacts/kinship-int8",
        "autoglm compress artifacts/kinship --with prune --with 'bf16:stages=[\"reasoner\"]' -o artifacts/small --json",
    ]
    app.command(name="compress", epilog="\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples))(compress)
