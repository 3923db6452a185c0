"""``autoglm bench``: latency and throughput of a built pipeline over batch sizes on its backend, and the
batch size to use: the smallest whose throughput is within ``tolerance`` of the best one and whose p90 latency
fits ``max_latency_ms`` when one is given (past that point a bigger batch only adds latency). Light: typer only
until the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def recommend(
    rows: list[dict[str, float]], tolerance: float = 0.1, max_latency_ms: float | None = None
) -> dict[str, Any]:
    """The smallest batch size within ``tolerance`` of the best throughput, among those that meet the latency
    budget; with none meeting it, the fastest batch, and the reason says so."""
    fitting = [r for r in rows if max_latency_ms is None or r["p90_ms"] <= max_latency_ms]
    if not fitting:
        fastest = min(rows, key=lambda r: r["p90_ms"])
        return {
            "batch_size": fastest["batch_size"],
            "reason": f"no batch size meets p90 <= {max_latency_ms:g} ms; batch {fastest['batch_size']} has the "
            f"lowest latency ({fastest['p90_ms']:.1f} ms)",
        }
    best = max(r["samples_per_second"] for r in fitting)
    chosen = min(
        (r for r in fitting if r["samples_per_second"] >= (1 - tolerance) * best),
        key=lambda r: (r["batch_size"], -r["samples_per_second"]),
    )
    budget = f" and p90 <= {max_latency_ms:g} ms" if max_latency_ms is not None else ""
    return {
        "batch_size": chosen["batch_size"],
        **({"threads": chosen["threads"]} if "threads" in chosen else {}),
        "reason": f"smallest batch within {tolerance:.0%} of the best throughput ({best:.0f} samples/s){budget}: "
        f"{chosen['samples_per_second']:.0f} samples/s at p90 {chosen['p90_ms']:.1f} ms",
    }


def bench(
    artifact: Path = typer.Argument(..., help="Artifact directory written by `autoglm build`."),
    batch_sizes: Optional[List[int]] = typer.Option(
        None, "--batch-size", "-b", min=1, help="Batch size to time (repeatable; default 1 2 4 8 16 32 64)."
    ),
    split: str = typer.Option("test", "--split", help="Split of the artifact's own data to time the pipeline on."),
    seconds: float = typer.Option(
        1.0, "--seconds", min=0.0, help="Time spent timing each batch size (at least 5 passes)."
    ),
    threads: Optional[List[int]] = typer.Option(
        None,
        "--threads",
        min=1,
        help="torch thread count to time (repeatable, e.g. --threads 1 --threads 2; default: the backend's).",
    ),
    max_latency_ms: Optional[float] = typer.Option(
        None, "--max-latency-ms", min=0.0, help="Recommend only batch sizes whose p90 latency fits this budget."
    ),
    paths: bool = typer.Option(
        False,
        "--paths",
        help="Also time the pipeline on every execution path (as built, onnxruntime, onnxruntime int8, onnxruntime "
        "fused int8, compile, compile int8) and "
        "recommend the fastest whose predictions agree with the artifact's.",
    ),
    min_agreement: float = typer.Option(
        0.99, "--min-agreement", min=0.0, max=1.0, help="With --paths: the least share of predictions a path must keep."
    ),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the table and the advice as JSON."),
    allow_import_paths: bool = typer.Option(
        False, "--allow-import-paths", help="Accept `package.module:attr` plugin names (runs that code)."
    ),
) -> None:
    """Latency (p50, p90) and throughput over batch sizes (and thread counts) on the artifact's backend, and the
    batch size to use.

    Example: autoglm bench artifacts/kinship -b 1 -b 32 --threads 1 --threads 2 -o bench.json
    """
    import torch
    from rich.table import Table

    from autoglm_cli.app import out
    from autoglm_sdk import load
    from autoglm_sdk.plugin import describe_machine, machine, measure

    pipeline = load(artifact, allow_import_paths=allow_import_paths)
    samples = pipeline.data_split(split)
    sizes = tuple(sorted(set(batch_sizes))) if batch_sizes else DEFAULT_BATCH_SIZES
    backend = pipeline.backend.describe() if hasattr(pipeline.backend, "describe") else {}
    rows, before = [], torch.get_num_threads()
    with out.status("timing") as status:
        for count in sorted(set(threads or [before])):
            torch.set_num_threads(count)
            timed = measure(
                pipeline.model,
                pipeline.backend,
                samples,
                sizes,
                seconds,
                progress=lambda size: status.update(
                    f"timing batch size {size} on {pipeline.backend.device}, {torch.get_num_threads()} threads"
                ),
            )
            rows += [{**row, "threads": count} for row in timed]
    torch.set_num_threads(before)
    host = machine()  # what the figures read with
    advice = recommend(rows, max_latency_ms=max_latency_ms)
    table = Table(title=f"{artifact} on {pipeline.backend.device} ({len(samples)} {split} samples)")
    for column in ("batch", "threads", "p50 ms", "p90 ms", "samples/s", "passes"):
        table.add_column(column, justify="right")
    for r in rows:
        mark = " *" if (r["batch_size"], r["threads"]) == (advice["batch_size"], advice.get("threads")) else ""
        table.add_row(
            f"{r['batch_size']}{mark}",
            str(r["threads"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            f"{r['samples_per_second']:.1f}",
            str(r["passes"]),
        )
    out.print(table)
    out.print(f"machine: {describe_machine(host)}", markup=False)
    threads = f"{advice['threads']} thread" + "s" * (advice["threads"] != 1)
    out.print(f"recommended batch size: {advice['batch_size']} on {threads} ({advice['reason']})")
    compared = _compare_paths(artifact, pipeline, samples, sizes, seconds, min_agreement) if paths else None
    if output is not None:
        output.write_text(
            json.dumps(
                {
                    "artifact": str(artifact),
                    "backend": backend,
                    "device": pipeline.backend.device,
                    "machine": host,
                    "split": split,
                    "samples": len(samples),
                    "rows": rows,
                    "recommendation": advice,
                    "paths": compared,
                },
                indent=2,
            )
            + "\n"
        )


def _compare_paths(
    artifact: Path, pipeline: Any, samples: list, sizes: tuple[int, ...], seconds: float, min_agreement: float
) -> dict[str, Any]:
    """``--paths``: time every execution path (:mod:`autoglm_backends.paths`), print the table and the choice."""
    from rich.table import Table

    from autoglm_backends.paths import compare_paths
    from autoglm_cli.app import out
    from autoglm_sdk import load

    with out.status("timing execution paths") as status:
        compared = compare_paths(
            lambda: load(artifact),
            samples,
            sizes,
            seconds,
            min_agreement,
            progress=lambda name: status.update(f"timing the {name} path"),
        )
    table = Table(title=f"execution paths of {artifact} (p50 ms)")
    for column in ("path", *[f"batch {s}" for s in sizes], "agreement", "stages on it"):
        table.add_column(column, justify="left" if column in ("path", "stages on it") else "right")
    for name, row in compared["paths"].items():
        if "error" in row:
            table.add_row(name, *["-"] * len(sizes), "-", row["error"])
            continue
        stages = ", ".join(row["stages"]) or "-"
        if row["left_eager"]:
            stages += f" (eager: {', '.join(row['left_eager'])})"
        times = [f"{row['p50_ms'][str(s)]:.2f}" for s in sizes]
        table.add_row(name + " *" * (name == compared["recommended"]), *times, f"{row['agreement']:.1%}", stages)
    out.print(table)
    out.print(f"fastest path: {compared['recommended']} ({compared['reason']})", markup=False)
    return compared
