"""Fixtures for the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SMALL, write_toml


@pytest.fixture
def small_manifest(tmp_path: Path) -> Path:
    return write_toml(tmp_path / "small.toml", SMALL)
