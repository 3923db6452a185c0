"""The README's commands, run as a reader would run them, in a fresh folder holding a copy of `examples/`.

Builds get `--set train.epochs=2 --set train.restarts=1` so that the suite stays short; everything else runs as
written. Transcripts (``$ autoglm ...`` followed by its output) must print what the README shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

README = (REPO / "README.md").read_text()
SHRINK = " --set train.epochs=2 --set train.restarts=1"
#: commands not run here, and why (each is run elsewhere or takes minutes)
SKIPPED = {
    "bash scripts/quickstart.sh": "setup, then a 45-minute kinship-extractor build; the tests below build smaller ones",
    "bash scripts/test.sh": "this test suite",
    "examples/digits-trimodal.toml": "about 4 minutes of data synthesis and training",
    "kinship-extractor": "about 45 minutes; benchmarks/text_to_graph.py runs it",
    "kinship-generate": "about 5 minutes; benchmarks/generation.py runs it, and test_automodel.py a small one",
    "kinship-summarise": "about 4 minutes; test_causal_lm.py builds small text pipelines",
    "autoglm serve": "a server runs until stopped: test_the_readme_serving_commands_answer runs it with its curl",
    "curl ": "needs the server: test_the_readme_serving_commands_answer",
    "serve run autoglm_serve.ray_app": "Ray Serve runs until stopped: test_ray.py deploys the same builder",
}


def fenced_blocks() -> list[tuple[str, str]]:
    return re.findall(r"^ *```(\w*)\n(.*?)^ *```", README, flags=re.S | re.M)


def shell_commands() -> list[str]:
    commands = []
    for language, body in fenced_blocks():
        if language in ("sh", "bash"):
            joined = re.sub(r"\\\n\s*", " ", body)
            commands += [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]
    return commands


def transcripts() -> list[tuple[str, list[str]]]:
    out = []
    for language, body in fenced_blocks():
        if language == "" and body.lstrip().startswith("$ "):
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, *expected = chunk.rstrip("\n").split("\n")
                out.append((command, expected))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reader")
    shutil.copytree(REPO / "examples", folder / "examples")
    return folder


def sh(command: str, folder: Path) -> subprocess.CompletedProcess:
    venv_bin = str(Path(sys.executable).parent)
    command = command.replace(".venv/bin/", "")
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_the_readme_shell_commands_run(folder):
    ran = 0
    for command in shell_commands():
        if any(key in command for key in SKIPPED):
            continue
        if "autoglm build" in command:
            command += SHRINK
        proc = sh(command, folder)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
        ran += 1
    assert ran >= 3
    assert (folder / "artifacts" / "kinship").is_dir() and (folder / "artifacts" / "sbm-communities").is_dir()


def test_the_readme_transcripts_print_what_they_show(folder):
    if not (folder / "artifacts" / "kinship").is_dir():
        assert sh("autoglm build" + SHRINK, folder).returncode == 0
    for command, expected in transcripts():
        proc = sh(command, folder)
        if command.startswith("autoglm run"):  # an answer from an earlier build: the same shape and answer
            assert proc.returncode == 0, proc.stderr
            shown, got = json.loads(expected[0]), json.loads(proc.stdout)
            assert set(got) == set(shown) and got["prediction"] == shown["prediction"], got
        else:
            assert (proc.stdout + proc.stderr).splitlines() == expected, command


def test_the_readme_python_runs(folder, monkeypatch):
    if not (folder / "artifacts" / "kinship").is_dir():
        assert sh("autoglm build" + SHRINK, folder).returncode == 0
    monkeypatch.chdir(folder)
    # the text pipeline's lines need its artifact: plugins/autoglm-lm/tests/test_automodel.py runs them
    blocks = [body for language, body in fenced_blocks() if language == "python" and "kinship-generate" not in body]
    assert blocks
    for body in blocks:
        exec(compile(body.replace('"train.epochs=50"', '"train.epochs=2"'), "README.md", "exec"), {})


def test_the_readme_serving_commands_answer(folder):
    """The Serving section's two commands: the server in the background (on a free port), then its curl."""
    import socket
    import time
    import urllib.request

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    if not (folder / "artifacts" / "kinship").is_dir():
        assert sh("autoglm build" + SHRINK, folder).returncode == 0
    serve = next(c for c in shell_commands() if "autoglm serve" in c)
    curl = next(c for c in shell_commands() if c.startswith("curl "))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    command = serve.replace(".venv/bin/", "").replace("8000", port)
    server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=folder, env=env, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.1)
        proc = sh(curl.replace("8000", port), folder)
        assert proc.returncode == 0, proc.stderr
        reply = json.loads(proc.stdout)
        assert reply["model"] == "kinship" and reply["answers"][0]["prediction"], reply
    finally:
        server.terminate()
        server.wait(30)
