"""Nothing lost and nothing silently wrong: concurrent builds, tampered artifacts, bad records."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import REPO, SMALL, run_cli, write_toml

from autoglm_sdk.artifact import output_lock
from autoglm_sdk.builder import build
from autoglm_sdk.errors import ArtifactError
from autoglm_sdk.manifest import validate_manifest


@pytest.fixture
def held_lock(tmp_path):
    """Another process holding the build lock of ``tmp_path / "art"``, as a running build does."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from autoglm_sdk.artifact import output_lock
        with output_lock({str(tmp_path / "art")!r}):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    holder.kill()
    holder.wait()


def test_a_second_build_of_the_same_output_is_refused_at_once_naming_the_holder(tmp_path, held_lock):
    with pytest.raises(ArtifactError, match=f"being built by process {held_lock.pid}"):
        build(validate_manifest(SMALL), tmp_path / "art")
    path = write_toml(tmp_path / "m.toml", SMALL)
    proc = run_cli("build", str(path), "-o", str(tmp_path / "art"), "--force", "--quiet")
    assert proc.returncode == 2 and f"is being built by process {held_lock.pid}" in proc.stderr, proc.stderr
    # the refused builds touched nothing: no checkpoint of theirs, no artifact
    assert sorted(p.name for p in tmp_path.iterdir()) == [".art.lock", "m.toml"]


def test_the_lock_goes_with_its_holder_and_leaves_no_file(tmp_path, held_lock):
    held_lock.kill()  # kill -9: the kernel drops the lock with the process
    held_lock.wait()
    result = build(validate_manifest({**SMALL, "train": {"epochs": 2}}), tmp_path / "art")
    assert result.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    with pytest.raises(ArtifactError, match="already exists"):  # refused before training: no checkpoint appears
        build(validate_manifest(SMALL), tmp_path / "art")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    with output_lock(tmp_path / "art"):  # a lock is taken again once released
        pass
