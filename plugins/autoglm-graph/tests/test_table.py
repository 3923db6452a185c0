"""table: a user's rows (CSV, Parquet, NPZ) as nodes, edges by id, semi-supervised splits, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autoglm_sdk.plugin import DataError
from autoglm_sdk.testing import DataSourceContract

ROWS = 60  # 3 classes of 20 rows


def write_csv(path: Path, rows: int = ROWS, bad: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    lines = ["name,f1,f2,f3,kind"]
    for i in range(rows):
        kind = ["apple", "pear", "plum"][i % 3]
        f = rng.normal(size=3) + (i % 3)
        lines.append(f"n{i},{f[0]:.4f},{f[1]:.4f},{bad if bad and i == 7 else f'{f[2]:.4f}'},{kind}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_edges(path: Path) -> Path:
    path.write_text("source,target\n" + "".join(f"n{i},n{(i + 3) % ROWS}\n" for i in range(ROWS)))
    return path


@pytest.fixture(scope="module")
def table_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("table")
    return {"path": str(write_csv(folder / "rows.csv")), "edges": str(write_edges(folder / "edges.csv"))}


def load(**config):
    from autoglm_graph.specs import TableConfig
    from autoglm_graph.table import TableDataSource
    from autoglm_sdk.plugin import BuildContext

    defaults = {"label": "kind", "id": "name", "train_per_class": 3, "val_per_class": 3}
    return TableDataSource(TableConfig(**{**defaults, **config}), BuildContext(seed=0)).load()


class TestTableContract(DataSourceContract):
    plugin = "table"

    @pytest.fixture(autouse=True)
    def _files(self, table_files):
        type(self).config = {**table_files, "label": "kind", "id": "name", "train_per_class": 3, "val_per_class": 3}


def test_csv_rows_become_nodes_with_their_features_labels_and_edges(table_files):
    dataset = load(**table_files)
    graph = dataset.splits["train"][0]["graph"]
    assert graph.x.shape == (ROWS, 3) and dataset.port.dim == 3
    assert dataset.task.label_names == ("apple", "pear", "plum")
    assert graph.edge_index.size(1) == 2 * ROWS  # undirected: each listed edge both ways
    assert {(int(a), int(b)) for a, b in graph.edge_index.t()} >= {(0, 3), (3, 0)}
    masks = [dataset.splits[s][0]["graph"].label_mask for s in ("train", "val", "test")]
    assert [int(m.sum()) for m in masks] == [9, 9, ROWS - 18]
    assert not (masks[0] & masks[1]).any() and not (masks[1] & masks[2]).any()


def test_splits_change_with_split_but_the_graph_does_not(table_files):
    a, b = load(**table_files, split=0), load(**table_files, split=1)
    ga, gb = a.splits["train"][0]["graph"], b.splits["train"][0]["graph"]
    assert torch.equal(ga.x, gb.x) and not torch.equal(ga.label_mask, gb.label_mask)


def test_the_fingerprint_follows_the_edges_too(table_files, tmp_path):
    other = tmp_path / "edges.csv"
    other.write_text("source,target\n" + "".join(f"n{i},n{(i + 5) % ROWS}\n" for i in range(ROWS)))
    assert load(**table_files).fingerprint != load(**{**table_files, "edges": str(other)}).fingerprint
    assert load(**table_files).fingerprint == load(**table_files).fingerprint


def test_parquet_and_npz_give_the_same_nodes(table_files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from autoglm_graph.table import read_columns

    columns = read_columns(Path(table_files["path"]))
    columns = {k: ([float(v) for v in vals] if k.startswith("f") else vals) for k, vals in columns.items()}
    pq.write_table(pa.table(columns), tmp_path / "rows.parquet")
    from_parquet = load(path=str(tmp_path / "rows.parquet"), edges=table_files["edges"])
    x = np.stack([columns[c] for c in ("f1", "f2", "f3")], axis=1).astype(np.float32)
    labels = np.array([["apple", "pear", "plum"].index(v) for v in columns["kind"]])
    np.savez(tmp_path / "rows.npz", x=x, kind=labels)
    from_npz = load(path=str(tmp_path / "rows.npz"), id=None)
    want = load(**table_files).splits["train"][0]["graph"].x
    assert torch.allclose(from_parquet.splits["train"][0]["graph"].x, want)
    assert torch.allclose(from_npz.splits["train"][0]["graph"].x, want)
    assert from_npz.splits["train"][0]["graph"].edge_index.numel() == 0  # no edge list: build one with knn


@pytest.mark.parametrize(
    "problem, config, message",
    [
        ("missing file", {"path": "nowhere.csv"}, "does not exist"),
        ("missing column", {"features": ["f1", "f9"]}, "'f9' not in"),
        ("not a number", {"bad_value": "abc"}, "column `f3`, row 8: 'abc' is not a number"),
        ("unknown edge end", {"bad_edge": True}, "`n999` is not a value of the id column `name`"),
        ("too few rows", {"train_per_class": 15, "val_per_class": 5}, "no rows left for testing"),
    ],
)
def test_each_mistake_names_the_file_and_what_to_change(tmp_path, problem, config, message):
    path = write_csv(tmp_path / "rows.csv", bad=config.pop("bad_value", None))
    edges = write_edges(tmp_path / "edges.csv")
    if config.pop("bad_edge", False):
        edges.write_text(edges.read_text() + "n1,n999\n")
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load(**{"path": str(path), "edges": str(edges), **config})


def test_manifest_validation_reads_only_the_header_for_the_feature_size(table_files):
    from autoglm_graph.specs import TableConfig, table
    from autoglm_sdk.plugin import BuildContext

    port = table.signature(TableConfig(path=table_files["path"], label="kind", id="name"), BuildContext())
    assert port.dim == 3
