"""``pytest --autoglm-contract NAME`` runs the contract alone, not the tests of the directory it starts in."""

from __future__ import annotations

import subprocess
import sys


def test_ordinary_tests_are_deselected(tmp_path):
    (tmp_path / "test_ordinary.py").write_text("def test_fails():\n    assert False, 'an ordinary test ran'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--autoglm-contract", "sequential"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 deselected" in summary and "passed" in summary and "failed" not in summary, summary
    assert "an ordinary test ran" not in proc.stdout


def test_without_the_option_nothing_is_deselected(tmp_path):
    (tmp_path / "test_ordinary.py").write_text("def test_passes():\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and summary.startswith("1 passed") and "deselected" not in summary, summary
