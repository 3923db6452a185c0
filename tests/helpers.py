"""Shared helpers for the core tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The default pipeline shrunk so that a build takes about a second.
SMALL = {
    "pipeline": {"name": "small", "seed": 0},
    "data": {
        "plugin": "sbm",
        "blocks": 3,
        "nodes_per_block": 40,
        "train_per_class": 5,
        "val_per_class": 10,
        "p_in": 0.15,
        "p_out": 0.01,
        "feature_dim": 8,
        "feature_signal": 1.0,
    },
    "graph_builder": {"plugin": "given"},
    "reasoner": {"plugin": "gcn", "hidden": 16, "layers": 2},
    "decoder": {"plugin": "classifier"},
    "train": {"epochs": 15, "patience": 0},
}


def run_cli(
    *args: str, env: dict | None = None, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``autoglm ARGS`` in a fresh interpreter (so import costs and exit codes are real)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "autoglm_cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        cwd=cwd,
        timeout=300,
    )


def write_toml(path: Path, data: dict) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return path


def make_distribution(site: Path, dist: str, module: str, source: str, entry_points: dict[str, dict[str, str]]) -> None:
    """A real installed distribution as importlib.metadata sees one: a dist-info folder plus a module."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (site / f"{module}.py").write_text(source)
