"""The ``autoglm`` command. Thin: parse arguments, call the core, print.

Light commands (``--help``, ``--version``, ``plugins list``, ``manifest
validate``) must not import torch: heavy imports live inside the commands that
need them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console

from autoglm_sdk import __version__
from autoglm_sdk.errors import AutoGLMError
from autoglm_sdk.progress import EpochBar  # noqa: F401  (plugins' commands have imported it from here)


def examples(*commands: str) -> str:
    """A help epilog listing example command lines, kept as written (click's \\b: no re-wrapping)."""
    return "\b\nExamples:\n" + "\n".join(f"  {command}" for command in commands)


# plain click help: flags read as flags (`--force`), not as options taking a <bool>
app = typer.Typer(
    name="autoglm",
    help="Build graph-augmented language pipelines from plugins and a TOML manifest.",
    epilog=examples(
        "autoglm build", 'autoglm run artifacts/kinship --text "Anna is Ben\'s mother. How is Ben related to Anna?"'
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
plugins_app = typer.Typer(
    help="List, describe and contract-check installed plugins.", no_args_is_help=True, rich_markup_mode=None
)
manifest_app = typer.Typer(
    help="Validate manifests and print their JSON schema.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(plugins_app, name="plugins")
app.add_typer(manifest_app, name="manifest")

# piped output is not cut at 80 columns: tables and JSON lines stay whole
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SetOption = typer.Option(None, "--set", help="Override a manifest key, e.g. --set reasoner.layers=4 (repeatable).")
ImportPathsOption = typer.Option(
    False, "--allow-import-paths", help="Accept `package.module:attr` plugin names (runs that code)."
)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"autoglm {__version__}")
        raise typer.Exit()


#: messages below this level are not shown (-q: warnings and errors only; -v: debug too)
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
verbosity = {"level": LEVELS["info"]}


def say(message: str, level: str = "info") -> None:
    """A progress or status line on stderr, shown when the chosen verbosity allows it."""
    if LEVELS[level] >= verbosity["level"]:
        err.print(message, markup=False)


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for every error."),
    verbose: int = typer.Option(
        0, "-v", "--verbose", count=True, help="-v: debug messages too; -vv: also the libraries' own logs."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only warnings and errors."),
    log_level: Optional[str] = typer.Option(
        None, "--log-level", help="debug, info, warning or error (instead of -v / -q)."
    ),
) -> None:
    """AutoGLM SDK command line."""
    if log_level is not None and log_level.lower() not in LEVELS:
        raise AutoGLMError(f"--log-level {log_level}: unknown level", hint=f"use one of {', '.join(LEVELS)}")
    name = log_level.lower() if log_level else "warning" if quiet else "debug" if verbose else "info"
    verbosity["level"] = LEVELS[name]
    if verbose >= 2:  # transformers, torch_geometric, ... log through the logging module
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")


# ---------------------------------------------------------------- plugins


@plugins_app.command("list", epilog=examples("autoglm plugins list --kind reasoner --load"))
def plugins_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    load: bool = typer.Option(
        False, "--load", help="Import every plugin's spec: shows broken plugins and import times."
    ),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only plugins of this kind."),
) -> None:
    """Installed plugins, read from package metadata (no plugin code runs unless --load)."""
    from autoglm_sdk.registry import default_registry

    registry = default_registry()
    rows = []
    for entry in registry.entries(kind):
        if load and entry.status != "duplicate":
            try:
                spec = entry.load()
            except AutoGLMError:
                spec = None
        else:
            spec = entry._spec
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "distribution": entry.distribution,
                "version": entry.version,
                "status": entry.status,
                "contract_version": getattr(spec, "contract_version", None),
                "import_ms": None if entry.import_seconds is None else round(entry.import_seconds * 1000, 1),
                "error": entry.error,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = [("name", "kind", "distribution", "version", "status", "contract", "import ms")]
    for row in rows:
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error']}"
        table.append(
            (
                row["name"],
                row["kind"],
                row["distribution"],
                row["version"],
                status,
                str(row["contract_version"] or "-"),
                "-" if row["import_ms"] is None else str(row["import_ms"]),
            )
        )
    # plain aligned columns: rendering a rich Table (and importing its machinery) cost this command a fifth
    # of its time, which matters for a command meant to answer well before `import torch` would
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in table]
    sys.stdout.write("\n".join(lines) + "\n")


def _resolve_entry(name: str, kind: Optional[str]):
    from autoglm_sdk.registry import default_registry

    registry = default_registry()
    matches = [registry.entry(kind, name)] if kind else registry.find(name)
    if not matches:
        from autoglm_sdk.registry import suggest

        close = suggest(name, [e.name for e in registry.entries()])
        raise AutoGLMError(
            f"no installed plugin named `{name}`",
            hint=f"did you mean `{close}`?" if close else "see `autoglm plugins list`",
        )
    if len(matches) > 1:
        kinds = ", ".join(e.kind for e in matches)
        raise AutoGLMError(f"`{name}` names plugins of several kinds ({kinds})", hint="pass --kind")
    return matches[0]


@plugins_app.command("info", epilog=examples("autoglm plugins info path-composer --json"))
def plugins_info(
    name: str,
    kind: Optional[str] = typer.Option(None, "--kind", help="Disambiguate by kind."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """A plugin's summary and its config fields with defaults and descriptions."""
    from autoglm_sdk.manifest import config_rows

    entry = _resolve_entry(name, kind)
    spec = entry.load()
    if as_json:
        info = {
            "name": spec.name,
            "kind": spec.kind,
            "distribution": entry.distribution,
            "version": entry.version,
            "summary": spec.summary,
            "contract_version": spec.contract_version,
            "capabilities": sorted(spec.capabilities),
            "config": [dict(zip(("key", "type", "default", "description"), r)) for r in config_rows(spec.config)],
        }
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    out.print(f"[bold]{spec.name}[/bold] ({spec.kind}) from {entry.distribution} {entry.version}")
    if spec.summary:
        out.print(spec.summary)
    if spec.config.__doc__ and spec.config.__doc__.strip():
        out.print(spec.config.__doc__.strip())
    out.print(
        f"contract version {spec.contract_version}; capabilities: {', '.join(sorted(spec.capabilities)) or 'none'}"
    )
    from rich.table import Table

    rows = config_rows(spec.config)
    if not rows:
        out.print("no configuration")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("key", "type", "default", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@plugins_app.command("check", epilog=examples("autoglm plugins check gcn --config hidden=8"))
def plugins_check(
    name: str,
    kind: Optional[str] = typer.Option(None, "--kind", help="Disambiguate by kind."),
    config: Optional[List[str]] = typer.Option(
        None, "--config", help="Config override for the checks, e.g. --config hidden=8 (repeatable)."
    ),
) -> None:
    """Run the SDK's contract suite on an installed plugin (exit 1 when a check fails, as pytest does)."""
    from autoglm_sdk.manifest import parse_override

    entry = _resolve_entry(name, kind)
    entry.load()
    from autoglm_sdk.testing import run_contract

    overrides = {}
    for text in config or []:
        path, value = parse_override(text)
        overrides[".".join(path)] = value
    results = run_contract(entry.kind, entry.name, overrides)
    failed = 0
    for result in results:
        mark = {
            "passed": "[green]PASS[/green]",
            "failed": "[red]FAIL[/red]",
            "skipped": "[yellow]SKIP[/yellow]",
            "xfailed": "[yellow]XFAIL[/yellow]",
            "xpassed": "[red]XPASS[/red]",
        }[result.outcome]
        detail = f" - {result.message}" if result.message else ""
        out.print(f"{mark} {result.check}{detail}")
        failed += result.outcome in ("failed", "xpassed")
    summary = {o: sum(r.outcome == o for r in results) for o in ("passed", "failed", "skipped", "xfailed")}
    out.print(", ".join(f"{v} {k}" for k, v in summary.items() if v))
    if failed:
        raise typer.Exit(1)


# --------------------------------------------------------------- manifest


@manifest_app.command(
    "validate", epilog=examples("autoglm manifest validate examples/kinship.toml --set reasoner.states=24")
)
def manifest_validate(
    manifest: Path = typer.Argument(..., help="Manifest TOML file."),
    overrides: Optional[List[str]] = SetOption,
    allow_import_paths: bool = ImportPathsOption,
) -> None:
    """Check a manifest's shape, every plugin's config and the stage wiring, without importing torch."""
    from autoglm_sdk.dag import check_fit, wire
    from autoglm_sdk.manifest import load_manifest

    resolved = load_manifest(manifest, overrides or [], allow_import_paths=allow_import_paths)
    dag = wire(resolved)
    check_fit(resolved, dag)
    out.print(f"{manifest}: valid ({' -> '.join(dag.order())})")


@manifest_app.command("schema", epilog=examples("autoglm manifest schema -o autoglm.schema.json"))
def manifest_schema_cmd(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file."),
) -> None:
    """JSON schema of a manifest with the installed plugins' configs, for editors."""
    from autoglm_sdk.manifest import manifest_schema

    text = json.dumps(manifest_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        out.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


# ------------------------------------------------------------- build, run


@app.command(
    epilog=examples(
        "autoglm build                      # the kinship pipeline, into artifacts/kinship",
        "autoglm build examples/sbm-gcn.toml -o artifacts/sbm --set train.epochs=50",
        "autoglm build my.toml --resume     # continue an interrupted build",
    )
)
def build(
    manifest: Optional[Path] = typer.Argument(None, help="Manifest TOML file (default: the embedded example)."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Artifact directory (default: artifacts/<pipeline name>)."
    ),
    overrides: Optional[List[str]] = SetOption,
    force: bool = typer.Option(False, "--force", help="Replace an existing artifact directory."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted build from OUTPUT.checkpoint (same manifest and data only)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or status lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (path, metrics, timings) as JSON."),
    allow_import_paths: bool = ImportPathsOption,
    nproc: int = typer.Option(
        1, "--nproc", min=1, help="Train data-parallel in this many processes on this node (torchrun, DDP)."
    ),
    nnodes: int = typer.Option(1, "--nnodes", min=1, help="Nodes taking part in a data-parallel build (torchrun)."),
    node_rank: int = typer.Option(0, "--node-rank", min=0, help="This node's rank among --nnodes (torchrun)."),
    master_addr: Optional[str] = typer.Option(None, "--master-addr", help="Address of node rank 0 (torchrun)."),
    master_port: int = typer.Option(29500, "--master-port", help="Port of node rank 0 (torchrun)."),
    max_restarts: int = typer.Option(
        0, "--max-restarts", min=0, help="Restart the workers this often after one fails; they resume (torchrun)."
    ),
) -> None:
    """Validate, train, evaluate and write a self-contained artifact directory."""
    import os

    from autoglm_sdk.dag import wire
    from autoglm_sdk.manifest import load_manifest

    started = time.perf_counter()
    resolved = load_manifest(manifest, overrides or [], allow_import_paths=allow_import_paths)
    wire(resolved)  # the wiring before any data or torch; stages are fit-checked once, against the real data
    target = output or Path("artifacts") / resolved.pipeline.name
    worker = "LOCAL_RANK" in os.environ  # a process torchrun started
    if target.exists() and not force and not (worker and os.environ.get("RANK", "0") != "0"):
        raise AutoGLMError(f"{target} already exists", hint="pass --force to replace it, or choose another -o")
    if (nproc > 1 or nnodes > 1) and not worker:
        launch = {"nnodes": nnodes, "node_rank": node_rank, "master_addr": master_addr, "master_port": master_port}
        raise typer.Exit(_torchrun(nproc, max_restarts=max_restarts, **launch))
    from autoglm_sdk.builder import build as run_build

    quiet = quiet or verbosity["level"] > LEVELS["info"] or os.environ.get("RANK", "0") != "0"
    log = (lambda message: None) if quiet else say
    try:
        result = run_build(
            resolved, target, overwrite=force, resume=resume, progress=None if quiet else EpochBar(err), log=log
        )
    except KeyboardInterrupt:
        from autoglm_sdk.session import checkpoint_dir
        from autoglm_sdk.trainer import read_checkpoint

        saved = read_checkpoint(checkpoint_dir(target))
        note = "interrupted: no artifact was written"
        if saved is not None:
            import shlex

            again = ["autoglm", "build", *([str(manifest)] if manifest else []), "-o", str(target)]
            again += [arg for override in overrides or [] for arg in ("--set", override)]
            again += ["--force"] * force + ["--allow-import-paths"] * allow_import_paths + ["--resume"]
            state = saved["trainer"]
            finished = state["stopped_early"] or state["epoch"] >= resolved.train.epochs
            where = "after training, which is complete" if finished else f"from epoch {state['epoch'] + 1}"
            note += f"; `{shlex.join(again)}` continues {where}"
        err.print(note, markup=False)
        raise typer.Exit(130)
    if result is None:  # a data-parallel worker other than rank 0: rank 0 writes and reports
        return
    metrics = result.report["metrics"]
    if as_json:
        summary = {"path": str(result.path), "seconds": round(time.perf_counter() - started, 3)}
        summary |= {"metrics": metrics, "timings": result.report["timings"], "backend": result.report["backend"]}
        sys.stdout.write(json.dumps(summary, default=float) + "\n")
        return
    summary = ", ".join(f"{split} accuracy {m['accuracy']:.4f}" for split, m in metrics.items())
    out.print(f"built {result.path} in {time.perf_counter() - started:.1f}s: {summary}")
    say(f"timings: {json.dumps(result.report['timings'], default=float)}", "debug")


def _torchrun(nproc: int, **launch: Any) -> int:
    """Run this same ``autoglm build`` in ``nproc`` processes per node under torchrun; its exit status."""
    import os
    import subprocess

    from autoglm_sdk.distributed import launch_command

    command = launch_command(sys.argv[1:], nproc, **launch)
    say(f"launching {nproc} processes per node on {launch['nnodes']} node(s) with torchrun", "debug")
    env = dict(os.environ, TORCH_CPP_LOG_LEVEL=os.environ.get("TORCH_CPP_LOG_LEVEL", "ERROR"))  # DDP's C++ notes
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # the ranks share the cores
    return subprocess.call(command, env=env)


@app.command(
    epilog=examples(
        'autoglm run artifacts/kinship --text "Anna is Ben\'s mother. How is Ben related to Anna?"',
        "autoglm run artifacts/kinship --from-data test --limit 5",
        "autoglm run artifacts/kinship -i stories.jsonl > answers.jsonl",
    )
)
def run(
    artifact: Path = typer.Argument(..., help="Artifact directory written by `autoglm build`."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="JSON-lines file of inputs (default: stdin)."),
    from_data: Optional[str] = typer.Option(
        None,
        "--from-data",
        help="Answer the samples of this split of the artifact's own data source (train, val or dev, test).",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Answer at most this many inputs."),
    text: Optional[List[str]] = typer.Option(
        None, "--text", "-t", help="A text to answer (repeatable), for text pipelines."
    ),
    max_new_tokens: Optional[int] = typer.Option(
        None, "--max-new-tokens", min=1, help="Text pipelines: most tokens to generate (default: the decoder's)."
    ),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", min=1, help="Text pipelines: beam width."),
    sample: bool = typer.Option(False, "--sample", help="Text pipelines: sample instead of greedy or beam search."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.01, help="Sampling temperature."),
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.01, max=1.0, help="Nucleus sampling mass."),
    stop: Optional[List[str]] = typer.Option(None, "--stop", help="Text pipelines: a stop string (repeatable)."),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Text pipelines: show the generated text on stderr as it is written, one input at a time.",
    ),
    allow_import_paths: bool = ImportPathsOption,
) -> None:
    """Answer inputs with a built artifact; predictions are printed as JSON lines.

    For kinship-style pipelines each answer carries the relation, its confidence,
    the graph the builder made of the story and any sentence it could not parse.
    A text pipeline (task generate or summarise) answers with the generated text.
    """
    from autoglm_sdk.artifact import load
    from autoglm_sdk.errors import InputError
    from autoglm_sdk.io import read_records

    pipeline = load(artifact, allow_import_paths=allow_import_paths)
    generation = _generation_options(pipeline, max_new_tokens, num_beams, sample, temperature, top_p, stop, stream)
    if text:
        answers = pipeline.predict(
            [(f"--text {i + 1}", t) for i, t in enumerate(text)][:limit], errors="report", **generation
        )
    elif from_data:
        answers = pipeline.predict_samples(pipeline.data_split(from_data)[:limit], **generation)
    else:
        if input is None and sys.stdin.isatty():
            raise InputError("no input: pipe JSON lines on stdin, or pass --input FILE or --from-data test")
        if input is not None and not input.exists():
            raise InputError(f"--input {input} does not exist")
        stream = open(input, encoding="utf-8") if input else sys.stdin
        try:
            with stream:
                records = list(read_records(stream, str(input or "<stdin>")))[:limit]
        except UnicodeDecodeError as exc:
            raise InputError(f"{input or '<stdin>'} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not records:
            raise InputError("no input records", hint=f"each line must be a JSON object with {pipeline.modalities}")
        answers = pipeline.predict(records, errors="report", **generation)
    failed = [a for a in answers if "error" in a]
    for answer in answers:  # one line per input, in order: a failed input's line carries its error
        sys.stdout.write(json.dumps(answer) + "\n")
    for answer in failed:
        err.print(f"error: {answer['error']}", markup=False)
    if failed:
        raise InputError(f"{len(failed)} of {len(answers)} inputs could not be answered (the others were)")


def _generation_options(
    pipeline: Any,
    max_new_tokens: Optional[int],
    num_beams: Optional[int],
    sample: bool,
    temperature: Optional[float],
    top_p: Optional[float],
    stop: Optional[List[str]],
    stream: bool,
) -> dict[str, Any]:
    """`autoglm run`'s generation flags as decoder options; refused for a pipeline that does not generate."""
    from autoglm_sdk.errors import InputError

    options: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "num_beams": num_beams,
        "do_sample": sample or None,
        "temperature": temperature,
        "top_p": top_p,
        "stop": stop or None,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if stream:
        options["on_text"] = lambda piece: (err.file.write(piece), err.file.flush())
    if (options or stream) and not pipeline.task.textual:
        raise InputError(
            f"generation flags need a text pipeline; this one's task is {pipeline.task.kind}",
            hint="drop --stream, --max-new-tokens, --num-beams, --sample, --temperature, --top-p and --stop",
        )
    return options


# ----------------------------------------------------------------- doctor


@app.command(epilog=examples("autoglm doctor --json", "autoglm doctor --artifact artifacts/kinship"))
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    artifact: Optional[Path] = typer.Option(
        None, "--artifact", help="Also load this artifact and show where each stage runs here, and why."
    ),
) -> None:
    """What is installed: Python, torch, plugin distributions, devices and backends."""
    import platform
    from importlib import metadata

    from autoglm_sdk.hooks import broken_hooks, call_hook
    from autoglm_sdk.registry import default_registry

    report: dict[str, Any] = {"python": platform.python_version(), "autoglm_sdk": __version__}
    for package in ("torch", "torch_geometric", "pydantic", "typer", "pluggy"):
        try:
            report[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            report[package] = None
    registry = default_registry()
    dists: dict[str, str] = {}
    for entry in registry.entries():
        dists[entry.distribution] = entry.version
    report["plugin_distributions"] = dists
    report["broken_plugins"] = []
    for entry in registry.entries():
        try:
            entry.load()
        except AutoGLMError as exc:
            report["broken_plugins"].append({"name": entry.name, "kind": entry.kind, "error": exc.message})
    for sections in call_hook("autoglm_doctor"):  # devices and the like, from plugins
        report.update(sections)
    report["broken_hooks"] = [{"name": n, "error": e} for n, e in broken_hooks()]
    if artifact is not None:
        report["placement"] = _placement_here(artifact)
    backends = []
    for entry in registry.entries("backend"):
        if entry.name == "auto" or entry.status != "ok":
            continue
        try:
            status = entry.load().create({}).probe()
            backends.append(
                {
                    "name": status.name,
                    "installed": status.installed,
                    "built": status.built,
                    "available": status.available,
                    "device": status.device,
                    "reason": status.reason,
                    "capabilities": dict(status.capabilities),
                }
            )
        except Exception as exc:  # a probe must never take doctor down
            backends.append({"name": entry.name, "error": f"{type(exc).__name__}: {exc}"})
    report["backends"] = backends
    if as_json:
        out.print_json(json.dumps(report, default=str))
        return
    for key in ("python", "autoglm_sdk", "torch", "torch_geometric", "pydantic", "typer", "pluggy"):
        out.print(f"{key:16} {report[key] or 'not installed'}")
    out.print("plugin distributions: " + ", ".join(f"{d} {v}" for d, v in sorted(dists.items())))
    for b in backends:
        if "error" in b:
            out.print(f"backend {b['name']:12} probe failed: {b['error']}")
        else:
            state = "available" if b["available"] and b["built"] and b["installed"] else f"unavailable ({b['reason']})"
            out.print(f"backend {b['name']:12} {state}")
    _print_devices_and_placement(report)
    for item in report["broken_plugins"]:
        out.print(f"[red]broken[/red] {item['kind']} {item['name']}: {item['error']}")
    for item in report["broken_hooks"]:
        out.print(f"[red]broken hook[/red] {item['name']}: {item['error']}")


def _print_devices_and_placement(report: dict[str, Any]) -> None:
    """The device lines of ``autoglm doctor`` and, with ``--artifact``, where each stage runs and why."""
    for device in report.get("devices", []):
        memory = device.get("free_bytes"), device.get("memory_bytes")
        room = f", {memory[0] / 2**30:.1f} of {memory[1] / 2**30:.1f} GiB free" if None not in memory else ""
        out.print(
            f"device  {device['name']:12} speed {device['speed']:g}, load {device['load']:.0%}{room}", markup=False
        )
    if "placement" in report:
        from autoglm_sdk.report import placement_reasons

        for stage, decision in report["placement"].items():
            out.print(f"stage   {stage:12} on {decision['device']}" + placement_reasons(decision), markup=False)


def _placement_here(artifact: Path) -> dict[str, Any]:
    """Where each stage of ``artifact`` runs on this machine: a placing scheduler plans again when it loads."""
    from autoglm_sdk.artifact import load

    model = load(artifact).model
    placement = model.placement
    if placement.decisions:
        return placement.decisions
    return {
        key: {"device": getattr(placement.stages.get(key, placement.main), "device", None)}
        for key in model.dag.order()
        if key != "data"
    }


# ------------------------------------------------------------- entry point


def main(argv: Optional[list[str]] = None) -> int:
    """Console-script entry: user errors exit 2 with one or two lines, internal errors exit 1."""
    import logging
    import warnings

    from typer.exceptions import TyperException  # usage errors (typer >= 0.20 vendors click)

    # torch_geometric calls the deprecated torch.jit.script at import: noise, not the user's concern
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    # transformers loads torchao whenever it is installed (the compile backend's INT8 needs it), and torch logs a
    # deprecation note for each Enum torchao registers: noise, not the user's concern
    logging.getLogger("torch.utils._pytree").addFilter(lambda record: "register_constant()" not in record.getMessage())
    # a warning is one line for people, whoever raised it (a plugin's version drift, a hook that failed, a library)
    warnings.showwarning = lambda message, category, *args, **kwargs: err.print(f"warning: {message}", markup=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:  # accepted anywhere on the line, not only before the command
        argv = ["--debug", *[a for a in argv if a != "--debug"]]
    try:
        from autoglm_sdk.hooks import call_hook

        call_hook("autoglm_cli_commands", app=app)
        result = app(args=argv, prog_name="autoglm", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except AutoGLMError as exc:
        if debug:
            raise
        err.print(f"error: {exc.message}", markup=False)
        if exc.hint:
            err.print(f"hint: {exc.hint}", markup=False)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return 130
    except TyperException as exc:
        exc.show() if hasattr(exc, "show") else err.print(f"error: {exc.format_message()}", markup=False)
        return getattr(exc, "exit_code", 2)
    except Exception as exc:
        if debug:
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("run again with --debug for the traceback, and report it if it persists", markup=False)
        return 1


def entry() -> None:
    sys.exit(main())
