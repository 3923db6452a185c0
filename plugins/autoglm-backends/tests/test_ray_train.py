"""Ray Train as the multi-node path: two workers on a local Ray instance train the same weights as one process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("ray.train", reason="needs ray[train] (extra autoglm-backends[ray])")

MANIFEST = """
[pipeline]
name = "ray"
[data]
plugin = "random-graphs"
generators = ["erdos_renyi", "barabasi_albert"]
task = "generator"
features = "degree"
max_degree = 16
nodes = [30, 40]
train_graphs = 96
val_graphs = 64
test_graphs = 16
[graph_builder]
plugin = "given"
[reasoner]
plugin = "gcn"
hidden = 16
dropout = 0.0
[decoder]
plugin = "classifier"
readout = "pool"
[train]
epochs = 3
batch_size = 16
lr = 0.02
patience = 0
[backend]
plugin = "cpu"
threads = 1
"""


def test_two_ray_workers_match_one_process(tmp_path):
    from safetensors.torch import load_file

    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST)
    one = subprocess.run(
        [sys.executable, "-m", "autoglm_cli", "build", str(manifest), "-o", str(tmp_path / "one"), "-q"],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    ray = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoglm_backends.ray_train",
            str(manifest),
            "-o",
            str(tmp_path / "ray"),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ray.returncode == 0, ray.stderr[-3000:]
    assert json.loads((tmp_path / "ray" / "report.json").read_text())["training"]["processes"] == 2
    a, b = (
        load_file(str(tmp_path / "one" / "weights.safetensors")),
        load_file(str(tmp_path / "ray" / "weights.safetensors")),
    )
    for key in a:
        assert float((a[key] - b[key]).abs().max()) <= 1e-4 * (float(a[key].abs().max()) or 1.0), key


def test_a_manifest_mistake_is_reported_before_ray_starts(tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST.replace('plugin = "gcn"', 'plugin = "gcm"'))
    done = subprocess.run(
        [sys.executable, "-m", "autoglm_backends.ray_train", str(manifest), "-o", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "gcm" in done.stderr
    assert "Traceback" not in done.stderr and "Ray instance" not in done.stderr
