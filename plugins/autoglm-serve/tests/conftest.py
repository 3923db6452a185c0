"""The serving tests' shared artifact: a small kinship pipeline, built once per test session."""

from __future__ import annotations

from typing import Any

import pytest

from autoglm_sdk import build, load, validate_manifest


@pytest.fixture(scope="session")
def kinship(tmp_path_factory) -> Any:
    raw = {
        "pipeline": {"name": "kin"},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [1, 2], "stories": 300},
            "val": {"hops": [2], "stories": 30},
            "test": {"hops": [2], "stories": 30},
        },
        "graph_builder": {"plugin": "text-relations"},
        "reasoner": {"plugin": "path-composer", "states": 8},
        "decoder": {"plugin": "classifier", "readout": "target"},
        "train": {"epochs": 3, "lr": 0.05},
    }
    out = tmp_path_factory.mktemp("serve") / "kin"
    build(validate_manifest(raw), out)
    return load(out)
