"""image-folder, audio-folder and paired: a user's own files, with unreadable ones reported by path."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from autoglm_sdk.plugin import BuildContext, DataError
from autoglm_sdk.testing import DataSourceContract


def write_image(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((8, 8), value, dtype=np.uint8)
    pixels[2:6, 2 + value % 3] = 255 - value
    Image.fromarray(pixels).save(path)


def write_audio(path: Path, frequency: float, rate: int = 8000) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.2 * rate)) / rate
    soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), rate)


def make_image_folder(root: Path, per_class: int = 5) -> Path:
    for label, name in enumerate(["cat", "dog", "owl"]):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", 40 * label + i)
    return root


def make_audio_folder(root: Path, per_class: int = 5) -> Path:
    for label, name in enumerate(["high", "low"]):
        for i in range(per_class):
            write_audio(root / name / f"{i}.wav", 200 + 300 * label + 10 * i)
    return root


def make_paired(root: Path) -> Path:
    lines = ["text,image,audio,label,split"]
    for i in range(12):
        label = ["red", "blue"][i % 2]
        write_image(root / "img" / f"{i}.png", 20 * i)
        write_audio(root / "snd" / f"{i}.flac", 300 + 20 * i)
        split = "test" if i >= 10 else ("val" if i >= 8 else "")
        lines.append(f"a {label} thing {i},img/{i}.png,snd/{i}.flac,{label},{split}")
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    return root / "index.csv"


CONTRACT_ROOT = Path(tempfile.mkdtemp(prefix="autoglm-files-contract-"))
atexit.register(shutil.rmtree, CONTRACT_ROOT, ignore_errors=True)  # module-level: no tmp_path fixture here


class TestImageFolderContract(DataSourceContract):
    plugin = "image-folder"
    config = {"root": str(make_image_folder(CONTRACT_ROOT / "images"))}


class TestAudioFolderContract(DataSourceContract):
    plugin = "audio-folder"
    config = {"root": str(make_audio_folder(CONTRACT_ROOT / "audio"))}


class TestPairedContract(DataSourceContract):
    plugin = "paired"
    config = {"index": str(make_paired(CONTRACT_ROOT / "paired"))}


def load(kind: str, **config):
    from autoglm_multimodal.files import AudioFolder, ImageFolder, PairedDataSource

    cls = {"image-folder": ImageFolder, "audio-folder": AudioFolder, "paired": PairedDataSource}[kind]
    return cls(cls.Config(**config), BuildContext(seed=0)).load()


def test_image_folder_labels_are_sorted_folder_names_and_every_class_is_in_every_split(tmp_path):
    data = load("image-folder", root=str(make_image_folder(tmp_path)))
    assert data.task.label_names == ("cat", "dog", "owl") and data.port.modalities == {"image"}
    for samples in data.splits.values():
        assert {s["label"] for s in samples} == {0, 1, 2}
        assert all(Path(s["image"]).parent.name == data.task.label_names[s["label"]] for s in samples)
    assert sum(len(v) for v in data.splits.values()) == 15


def test_an_unreadable_file_is_named_and_left_out_unless_strict(tmp_path):
    root = make_image_folder(tmp_path)
    broken = root / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.warns(UserWarning, match=r"left out 1 unreadable file\(s\): .*broken\.png"):
        data = load("image-folder", root=str(root))
    assert sum(len(v) for v in data.splits.values()) == 15
    with pytest.raises(DataError, match=r"1 unreadable file\(s\): .*broken\.png") as info:
        load("image-folder", root=str(root), strict=True)
    assert "strict = false" in info.value.hint


def test_split_folders_fix_the_split(tmp_path):
    make_image_folder(tmp_path / "train", per_class=3)
    make_image_folder(tmp_path / "validation", per_class=1)
    make_image_folder(tmp_path / "test", per_class=2)
    data = load("image-folder", root=str(tmp_path))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 9, "val": 3, "test": 6}
    assert all("/test/" in s["image"] for s in data.splits["test"])


def test_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load("image-folder", root=str(tmp_path / "missing"))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no files with extensions"):
        load("image-folder", root=str(tmp_path / "empty"))
    make_image_folder(tmp_path / "only" / "test", per_class=1)
    with pytest.raises(DataError, match="no train/"):
        load("image-folder", root=str(tmp_path / "only"))


def test_audio_folder_reads_wav_and_reports_empty_files(tmp_path):
    root = make_audio_folder(tmp_path)
    (root / "low" / "silent.wav").write_bytes(b"RIFF....WAVEfmt ")
    with pytest.warns(UserWarning, match=r"silent\.wav"):
        data = load("audio-folder", root=str(root))
    assert data.task.label_names == ("high", "low") and data.port.modalities == {"audio"}
    assert sum(len(v) for v in data.splits.values()) == 10


def test_paired_index_csv_keeps_given_splits_and_pairs_files(tmp_path):
    data = load("paired", index=str(make_paired(tmp_path)))
    assert data.task.label_names == ("blue", "red")
    # rows 8-11 name their split; rows 0-7 (four per label) give each split one row per label
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 4, "val": 4, "test": 4}
    assert {s["text"] for s in data.splits["test"]} >= {"a red thing 10", "a blue thing 11"}
    sample = data.splits["test"][0]
    assert set(sample) == {"text", "image", "audio", "label"}
    assert Path(sample["image"]).is_file() and Path(sample["audio"]).is_absolute()
    assert data.port.modalities == {"text", "image", "audio"}


def test_paired_jsonl_rows_may_lack_a_modality_or_a_label(tmp_path):
    write_image(tmp_path / "a.png", 10)
    write_audio(tmp_path / "b.wav", 440)
    rows = [
        {"text": "one", "image": "a.png", "label": "x"},
        {"audio": "b.wav", "label": "y"},
        {"text": "no label", "image": "a.png"},
        {"text": "two", "label": "x"},
        {"text": "three", "label": "y"},
        {"text": "four", "label": "x", "split": "test"},
        {"text": "five", "label": "y", "split": "dev"},
    ]
    index = tmp_path / "index.jsonl"
    index.write_text("\n".join(__import__("json").dumps(r) for r in rows) + "\n")
    data = load("paired", index=str(index))
    samples = [s for v in data.splits.values() for s in v]
    assert len(samples) == 7 and sum("label" not in s for s in samples) == 1
    assert any(set(s) == {"audio", "label"} for s in samples)
    assert [s["text"] for s in data.splits["val"] if "text" in s] == ["five"]


def test_paired_errors_name_the_row_or_column(tmp_path):
    index = tmp_path / "index.csv"
    index.write_text("text,label,split\nhello,a,training\n")
    with pytest.raises(DataError, match=r"row 1: split 'training' is not one of train, val, test"):
        load("paired", index=str(index))
    index.write_text("text\nhello\n")
    with pytest.raises(DataError, match="no `label` column"):
        load("paired", index=str(index))
    index.write_text("caption,label\nhello,a\n")
    with pytest.raises(DataError, match="has none of the columns"):
        load("paired", index=str(index))
    index.write_text("text,label\nhello,\n")
    with pytest.raises(DataError, match="no row of index.csv has a label"):
        load("paired", index=str(index))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        load("paired", index=str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load("paired", index=str(tmp_path / "nope.csv"))


def test_paired_unreadable_image_drops_that_modality_only(tmp_path):
    index = make_paired(tmp_path)
    (tmp_path / "img" / "3.png").write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load("paired", index=str(index))
    assert any("3.png" in str(w.message) for w in caught)
    samples = [s for v in data.splits.values() for s in v]
    assert len(samples) == 12 and sum("image" not in s for s in samples) == 1


def test_image_folder_trains_a_vit_pipeline_end_to_end(tmp_path):
    from autoglm_sdk import build, load_manifest

    root = make_image_folder(tmp_path / "images", per_class=6)
    manifest_path = tmp_path / "m.toml"
    manifest_path.write_text(f'''
[pipeline]
name = "folder"
[data]
plugin = "image-folder"
root = "{root}"
[encoders.image]
plugin = "vit"
image_size = 8
patch_size = 4
in_chans = 1
width = 16
depth = 1
heads = 2
embed_dim = 8
[graph_builder]
plugin = "multimodal"
dim = 16
[reasoner]
plugin = "gcn"
hidden = 16
layers = 1
[decoder]
plugin = "classifier"
readout = "pool"
[train]
epochs = 2
[objectives.pretraining]
plugin = "encoder-pretraining"
epochs = 1
''')
    report = build(load_manifest(manifest_path), tmp_path / "art").report
    assert report["data"]["sizes"]["train"] > 0 and 0.0 <= report["metrics"]["test"]["accuracy"] <= 1.0
    assert report["training"]["pretraining"]["objectives.pretraining"]["encoders.image"]["epochs_run"] == 1
