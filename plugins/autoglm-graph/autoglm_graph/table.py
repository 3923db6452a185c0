"""``table``: a user's own rows as graph nodes, from CSV, Parquet or NPZ, with an optional edge list.

Rows are nodes: the feature columns become ``x``, the label column ``y``. An
edge-list file (CSV with two columns, or NPZ with ``edge_index [2, E]``) names
its endpoints by the id column's values, or by row number when there is none.
Without edges the graph is empty and a ``knn`` or ``adaptive`` builder makes
one. Splits are semi-supervised: ``train_per_class`` and ``val_per_class``
labelled rows per class, the rest for testing, chosen by seed and ``split``.
Every problem names the file, the row or column and what to change.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from autoglm_graph.sbm import SPLITS, class_masks
from autoglm_graph.specs import TableConfig, table_columns
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec


def read_columns(path: Path) -> dict[str, list[Any]]:
    """Every column of a CSV or Parquet file, by name."""
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DataError(f"data.path: reading {path.name} needs pyarrow", hint="pip install pyarrow") from exc
        return pq.read_table(path).to_pydict()
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DataError(f"data.path: {path} is empty; the first line must name the columns")
        columns: dict[str, list[Any]] = {name: [] for name in header}
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{path.name}:{number}: {len(row)} values for {len(header)} columns")
            for name, value in zip(header, row):
                columns[name].append(value)
    return columns


def as_float(values: list[Any], column: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float32)
    except ValueError:
        for row, value in enumerate(values):
            try:
                float(value)
            except (TypeError, ValueError):
                raise DataError(
                    f"{path.name}: column `{column}`, row {row + 1}: {value!r} is not a number",
                    hint="fill or remove that value, or leave the column out of `features`",
                ) from None
        raise


class TableDataSource:
    name = "table"
    kind = "data"
    Config = TableConfig

    def __init__(self, config: TableConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def _nodes(self, path: Path) -> tuple[np.ndarray, list[Any], list[Any] | None]:
        c = self.config
        if path.suffix.lower() == ".npz":
            arrays = np.load(path, allow_pickle=False)
            for key in (c.features_key, c.label):
                if key not in arrays:
                    raise DataError(f"data.path: {path.name} has no array `{key}` (it has {', '.join(arrays.files)})")
            x = arrays[c.features_key].astype(np.float32)
            if x.ndim != 2:
                raise DataError(
                    f"data.path: `{c.features_key}` in {path.name} must be 2-D [rows, features], got shape {x.shape}"
                )
            return x, arrays[c.label].tolist(), None
        columns = read_columns(path)
        names = table_columns(c, list(columns))
        x = np.stack([as_float(columns[name], name, path) for name in names], axis=1)
        return x, columns[c.label], columns[c.id] if c.id else None

    def _edges(self, ids: list[Any] | None, n: int) -> torch.Tensor:
        c = self.config
        if not c.edges:
            return torch.empty(2, 0, dtype=torch.long)
        path = Path(c.edges)
        if not path.is_file():
            raise DataError(f"data.edges: {path} does not exist or is not a file")
        if path.suffix.lower() == ".npz":
            arrays = np.load(path, allow_pickle=False)
            if "edge_index" not in arrays:
                raise DataError(f"data.edges: {path.name} has no array `edge_index` [2, E]")
            pairs = arrays["edge_index"].tolist()
            pairs = list(zip(pairs[0], pairs[1])) if len(pairs) == 2 else []
        else:
            columns = read_columns(path)
            if len(columns) < 2:
                raise DataError(f"data.edges: {path.name} needs two columns (source, target)")
            source, target = list(columns.values())[:2]
            pairs = list(zip(source, target))
        index = {str(v): i for i, v in enumerate(ids)} if ids is not None else None
        edges = []
        for number, (a, b) in enumerate(pairs, start=1):
            ends = []
            for value in (a, b):
                key = str(value)
                if index is not None:
                    if key not in index:
                        raise DataError(f"{path.name}: edge {number}: `{key}` is not a value of the id column `{c.id}`")
                    ends.append(index[key])
                else:
                    if not key.lstrip("-").isdigit() or not 0 <= int(key) < n:
                        raise DataError(
                            f"{path.name}: edge {number}: `{key}` is not a row number in [0, {n})",
                            hint="name an `id` column to refer to rows by their ids",
                        )
                    ends.append(int(key))
            edges.append(ends)
        edge_index = torch.tensor(edges, dtype=torch.long).t() if edges else torch.empty(2, 0, dtype=torch.long)
        if c.undirected and edge_index.numel():
            from torch_geometric.utils import coalesce

            edge_index = coalesce(torch.cat([edge_index, edge_index.flip(0)], dim=1), num_nodes=n)
        return edge_index

    def load(self) -> Dataset:
        c = self.config
        path = Path(c.path)
        if not path.is_file():
            raise DataError(f"data.path: {path} does not exist or is not a file")
        x, raw_labels, ids = self._nodes(path)
        n = x.shape[0]
        unlabelled = next(
            (i for i, v in enumerate(raw_labels) if v is None or (isinstance(v, str) and not v.strip())), None
        )
        if unlabelled is not None:
            raise DataError(f"{path.name}: row {unlabelled + 1} has no label in `{c.label}`")
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0][0])
            raise DataError(f"{path.name}: row {row + 1} has a missing or infinite feature value")
        names = sorted(
            {str(v) for v in raw_labels},
            key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v),
        )
        y = torch.tensor([names.index(str(v)) for v in raw_labels], dtype=torch.long)
        edge_index = self._edges(ids, n)

        generator = torch.Generator().manual_seed(self.seed * 7919 + c.split + 1)
        counts = torch.bincount(y, minlength=len(names)).tolist()
        short = [
            f"`{label}` ({count} rows)"
            for label, count in zip(names, counts)
            if count <= c.train_per_class + c.val_per_class
        ]
        if short:
            raise DataError(
                f"{path.name}: classes {', '.join(short[:5])} have no rows left for testing after "
                f"{c.train_per_class} training and {c.val_per_class} validation rows per class",
                hint="lower train_per_class / val_per_class",
            )
        masks = class_masks(y, len(names), c.train_per_class, c.val_per_class, generator)

        features = torch.from_numpy(x)
        digest = hashlib.sha256(path.read_bytes())
        digest.update(edge_index.numpy().tobytes())  # the edge file too: a resumed build must see the same graph
        digest.update(f"{self.seed}-{c.split}".encode())
        splits = {
            split: [{"graph": Data(x=features, edge_index=edge_index, y=y, label_mask=masks[split])}]
            for split in SPLITS
        }
        return Dataset(
            task=TaskSpec("node", len(names), tuple(names)),
            port=Port("samples", frozenset({"graph"}), dim=x.shape[1]),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )
