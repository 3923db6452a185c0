"""JSON records <-> pipeline samples, for ``autoglm run`` and ``Pipeline.predict``.

A record is one JSON object whose keys are modality names:

* ``"graph"``: ``{"x": [[...], ...], "edge_index": [[src...], [dst...]], "edge_type": [...]?, "node_text": [...]?}``
* ``"text"``: a string.

``"label"`` and ``"id"`` are passed through and otherwise ignored.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, TextIO

from autoglm_sdk.errors import InputError
from autoglm_sdk.protocols import Port

PASSTHROUGH = ("label", "id")


def sample_from_record(record: Any, port: Port, where: str = "input") -> dict[str, Any]:
    """Validate one record against the port the pipeline reads and turn it into a sample."""
    expected = sorted(port.modalities)
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object with keys {expected}, got {type(record).__name__}")
    unknown = [k for k in record if k not in expected and k not in PASSTHROUGH]
    if unknown:
        raise InputError(f"{where}: unknown key `{unknown[0]}`; this pipeline reads {expected}")
    missing = [m for m in expected if m not in record]
    if missing:
        raise InputError(f"{where}: missing `{missing[0]}` (this pipeline reads {expected})")
    sample: dict[str, Any] = {k: record[k] for k in PASSTHROUGH if k in record}
    for key in expected:
        value = record[key]
        if key == "graph":
            sample["graph"] = graph = _graph_from_json(value, where)
            if port.dim is not None and graph.x.size(1) != port.dim:
                raise InputError(f"{where}: graph.x rows must have {port.dim} features, got {graph.x.size(1)}")
        elif key == "text":
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{where}: `text` must be a non-empty string")
            sample["text"] = value
        else:
            sample[key] = value
    return sample


def _graph_from_json(value: Any, where: str) -> Any:
    import torch
    from torch_geometric.data import Data

    if not isinstance(value, dict) or "x" not in value or "edge_index" not in value:
        raise InputError(f"{where}: `graph` must be an object with `x` and `edge_index`")
    try:
        x = torch.tensor(value["x"], dtype=torch.float32).reshape(len(value["x"]), -1)
        edge_index = torch.tensor(value["edge_index"], dtype=torch.long).reshape(2, -1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{where}: `graph` has malformed `x` or `edge_index`: {exc}") from exc
    data = Data(x=x, edge_index=edge_index)
    if "edge_type" in value:
        data.edge_type = torch.tensor(value["edge_type"], dtype=torch.long)
    if "node_text" in value:
        data.node_text = list(value["node_text"])
    return data


def read_records(stream: TextIO, name: str = "<stdin>") -> Iterator[tuple[str, Any]]:
    """Yield (``name:line``, parsed JSON) for every non-blank line. A line that is not JSON yields an
    :class:`InputError` naming it in place of the record, so that the lines after it are still read."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
