"""Data-parallel builds: `autoglm build --nproc 2` (torchrun, gloo, DDP) against one process, and resuming after a
rank is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli, write_toml

from autoglm_sdk import distributed

#: a graph classification small enough for seconds per build, with no dropout (ranks would draw different masks)
#: and validation accuracy that rises every epoch for 3 epochs, so the artifact holds the epoch-3 weights
DDP = {
    "pipeline": {"name": "ddp", "seed": 0},
    "data": {
        "plugin": "random-graphs",
        "generators": ["erdos_renyi", "barabasi_albert"],
        "task": "generator",
        "features": "degree",
        "max_degree": 16,
        "nodes": [30, 40],
        "train_graphs": 96,
        "val_graphs": 64,
        "test_graphs": 16,
    },
    "graph_builder": {"plugin": "given"},
    "reasoner": {"plugin": "gcn", "hidden": 16, "layers": 2, "dropout": 0.0},
    "decoder": {"plugin": "classifier", "readout": "pool"},
    "train": {"epochs": 3, "batch_size": 16, "lr": 0.02, "patience": 0},
    "backend": {"plugin": "cpu", "threads": 1},
}


def _weights(artifact: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(artifact / "weights.safetensors"))


def _training(artifact: Path) -> dict:
    return json.loads((artifact / "report.json").read_text())["training"]


def test_share_cuts_a_global_batch_into_contiguous_weighted_shares(monkeypatch):
    batch = list(range(7))
    shares = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "world", lambda rank=rank: (rank, 3))
        shares.append(distributed.share(batch))
    assert [s for s, _ in shares] == [[0, 1, 2], [3, 4], [5, 6]]
    # weighted means of the share means average (over 3 ranks, as DDP does) to the global mean
    assert sum(w * sum(s) / len(s) for s, w in shares) / 3 == pytest.approx(sum(batch) / 7)
    monkeypatch.setattr(distributed, "world", lambda: (2, 3))
    assert distributed.share([10, 11]) == ([10], 0.0)  # no sample left: it still joins the step, weight 0


def test_launch_command_passes_the_build_on_without_the_launcher_options():
    argv = ["build", "m.toml", "--nproc", "2", "--master-port=1234", "-o", "out", "--max-restarts", "1"]
    command = distributed.launch_command(argv, 2, max_restarts=1)
    assert command[:4] == [sys.executable, "-m", "autoglm_sdk.distributed", "--nproc-per-node=2"]
    assert "--standalone" in command and "--max-restarts=1" in command
    assert command[command.index("autoglm_cli") + 1 :] == ["build", "m.toml", "-o", "out"]
    multi = distributed.launch_command(argv, 4, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=1234)
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=1234"} <= set(multi)
    assert "--standalone" not in multi


def test_two_processes_train_the_same_weights_as_one(tmp_path):
    manifest = write_toml(tmp_path / "ddp.toml", DDP)
    for n in (1, 2):
        done = run_cli("build", str(manifest), "-o", str(tmp_path / f"n{n}"), "--nproc", str(n), "-q")
        assert done.returncode == 0, done.stderr
    assert _training(tmp_path / "n1")["best_epoch"] == _training(tmp_path / "n2")["best_epoch"] == 3
    one, two = _weights(tmp_path / "n1"), _weights(tmp_path / "n2")
    assert one.keys() == two.keys()
    for key in one:
        scale = float(one[key].abs().max()) or 1.0
        assert float((one[key] - two[key]).abs().max()) / scale < 1e-4, key
    # every rank's share counted: the reported training loss is the global batch's
    losses = [[h["train_loss"] for h in _training(tmp_path / f"n{n}")["history"]] for n in (1, 2)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def _rank_pids(rank: int, marker: str) -> list[int]:
    """Processes torchrun started for ``rank`` of the build whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in cmdline and f"RANK={rank}".encode() in environ and b"LOCAL_RANK=" + str(rank).encode() in environ:
            found.append(int(proc.name))
    return found


def _kill_rank_during_epoch(command: list[str], checkpoint: Path, after_epoch: int, env: dict) -> tuple[int, str]:
    """Start ``command``; once its checkpoint holds ``after_epoch``, SIGKILL rank 1; the launcher's exit status
    and output."""
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    state = checkpoint / "state.json"
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["trainer"]["epoch"] >= after_epoch:
            break
        if launcher.poll() is not None:
            pytest.fail(f"the build ended before epoch {after_epoch}: {launcher.stdout.read()}")
        time.sleep(0.05)
    pids = _rank_pids(1, str(checkpoint.with_name(checkpoint.name.removesuffix(".checkpoint"))))
    assert pids, "rank 1 not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    output, _ = launcher.communicate(timeout=180)
    return launcher.returncode, output


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_rank_killed_mid_training_resumes_to_the_same_result(tmp_path):
    spec = {**DDP, "train": {**DDP["train"], "epochs": 8}, "data": {**DDP["data"], "train_graphs": 400}}
    manifest = write_toml(tmp_path / "ddp.toml", spec)
    whole = run_cli("build", str(manifest), "-o", str(tmp_path / "whole"), "--nproc", "2", "-q")
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "autoglm_cli", "build", str(manifest), "-o", str(out), "--nproc", "2", "-q"]
    status, output = _kill_rank_during_epoch(command, tmp_path / "killed.checkpoint", 3, dict(os.environ))
    assert status != 0 and not out.exists()
    # the launcher's one line names the rank killed first, whether or not rank 0 noticed the lost peer before
    # torchrun stopped it (rank 0's own line, "another process ... stopped", comes first when it did)
    assert "error: the data-parallel build stopped: rank 1 was killed by SIGKILL" in output
    assert "Traceback" not in output and "internal error" not in output
    resumed = run_cli("build", str(manifest), "-o", str(out), "--nproc", "2", "--resume", "-q")
    assert resumed.returncode == 0, resumed.stderr
    before, after = _training(tmp_path / "whole"), _training(out)
    assert after["resumed_from_epoch"] >= 3
    assert [h["train_loss"] for h in after["history"]] == pytest.approx(
        [h["train_loss"] for h in before["history"]], rel=1e-4
    )
    assert after["best_val_accuracy"] == before["best_val_accuracy"]

    # with --max-restarts torchrun restarts both workers after the kill, and they resume by themselves
    auto = tmp_path / "auto"
    command = [*command[:5], "-o", str(auto), "--nproc", "2", "--max-restarts", "1", "-q"]
    assert _kill_rank_during_epoch(command, tmp_path / "auto.checkpoint", 3, dict(os.environ))[0] == 0
    assert _training(auto)["resumed_from_epoch"] >= 3
    assert _training(auto)["best_val_accuracy"] == before["best_val_accuracy"]
