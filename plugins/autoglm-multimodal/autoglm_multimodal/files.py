"""DataSources for a user's own files: ``image-folder``, ``audio-folder`` and ``paired``.

Samples carry file paths (``{"image": path}``, ``{"audio": path}``, ``{"text": str}``); the encoders read
them (the vit and wav2vec2 plugins accept paths), so a large folder is never held in memory. Every file is
decoded once at load time, so an unreadable one is found before training starts: it is reported by path
and left out, or, with ``strict = true``, the build stops with the list.

Splits: a folder tree may hold ``train/``, ``val/`` (or ``validation/``, ``dev/``) and ``test/`` sub-folders
that each have one sub-folder per class; otherwise each class's files are split at random (seeded, per
class) by ``val_fraction`` and ``test_fraction``. An index for ``paired`` may name the split in a column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import warnings
from pathlib import Path
from typing import Any, Callable

from autoglm_multimodal.specs import AudioFolderConfig, FolderConfig, ImageFolderConfig, PairedConfig
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec

SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}
SHOWN = 5  # unreadable files named in a message; the rest are counted


def check_image(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decodes the pixels: a truncated file fails here, not in the middle of training


def check_audio(path: Path) -> None:
    import soundfile

    data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    if data.size == 0:
        raise ValueError("no samples")


CHECKS: dict[str, Callable[[Path], None]] = {"image": check_image, "audio": check_audio}


def report_unreadable(plugin: str, bad: list[tuple[Path, str]], strict: bool) -> None:
    """Stop (strict) or warn, naming the first few unreadable files with the reason."""
    if not bad:
        return
    named = "; ".join(f"{path}: {reason}" for path, reason in bad[:SHOWN])
    more = f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
    if strict:
        raise DataError(
            f"{plugin}: {len(bad)} unreadable file(s): {named}{more}",
            hint="fix or remove them, or set strict = false to leave them out",
        )
    warnings.warn(f"{plugin}: left out {len(bad)} unreadable file(s): {named}{more}", UserWarning, stacklevel=3)


def readable(modality: str, path: Path, bad: list[tuple[Path, str]]) -> bool:
    try:
        CHECKS[modality](path)
        return True
    except Exception as exc:  # PIL and libsndfile raise many types for a bad file; each is reported by path
        bad.append((path, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__))
        return False


def split_by_fraction(
    items: list[Any], val_fraction: float, test_fraction: float, rng: random.Random
) -> dict[str, list[Any]]:
    """Shuffle ``items`` and cut test, then val, off the front; a class with at least three items gets one of each."""
    items = list(items)
    rng.shuffle(items)
    n = len(items)
    n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
    n_val = max(1, round(n * val_fraction)) if n >= 3 and val_fraction > 0 else 0
    return {"test": items[:n_test], "val": items[n_test : n_test + n_val], "train": items[n_test + n_val :]}


class FolderDataSource:
    """One sub-folder per class, as torchvision's ImageFolder; the modality comes from the plugin."""

    kind = "data"
    modality = ""

    def __init__(self, config: FolderConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        c = self.config
        if not c.root:
            raise DataError(f"{self.name}: data.root: name the folder to read", hint='for example root = "photos"')
        root = Path(c.root).expanduser()
        if not root.is_dir():
            raise DataError(
                f"{self.name}: data.root {root} is not a folder",
                hint="point it at a folder with one sub-folder of files per class",
            )
        split_dirs = {
            SPLIT_ALIASES[d.name.lower()]: d
            for d in sorted(root.iterdir())
            if d.is_dir() and d.name.lower() in SPLIT_ALIASES
        }
        trees = split_dirs if split_dirs else {None: root}
        files: dict[str | None, dict[str, list[Path]]] = {key: self._classes(folder) for key, folder in trees.items()}
        classes = sorted({name for per_class in files.values() for name in per_class})
        if not classes:
            raise DataError(
                f"{self.name}: no files with extensions {', '.join(c.extensions)} under {root}",
                hint="put each class's files in its own sub-folder, or set extensions",
            )
        if split_dirs and "train" not in split_dirs:
            raise DataError(f"{self.name}: {root} has split folders ({', '.join(sorted(split_dirs))}) but no train/")
        bad: list[tuple[Path, str]] = []
        rng = random.Random(f"{self.name}/{self.seed}")
        splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
        digest = hashlib.sha256()
        for key, per_class in files.items():
            for label, name in enumerate(classes):
                paths = [p for p in per_class.get(name, []) if readable(self.modality, p, bad)]
                parts = {key: paths} if key else split_by_fraction(paths, c.val_fraction, c.test_fraction, rng)
                for split, chosen in parts.items():
                    for path in chosen:
                        splits[split].append({self.modality: str(path), "label": label, "path": str(path)})
                        digest.update(f"{split}|{name}|{path.relative_to(root)}|{path.stat().st_size}\n".encode())
        report_unreadable(self.name, bad, c.strict)
        for split, samples in splits.items():
            rng.shuffle(samples)
        return Dataset(
            task=TaskSpec("graph", len(classes), tuple(classes)),
            port=Port("samples", frozenset({self.modality})),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )

    def _classes(self, folder: Path) -> dict[str, list[Path]]:
        suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in self.config.extensions}
        out = {}
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            paths = sorted(p for p in sub.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if paths:
                out[sub.name] = paths
        return out


class ImageFolder(FolderDataSource):
    name = "image-folder"
    modality = "image"
    Config = ImageFolderConfig


class AudioFolder(FolderDataSource):
    name = "audio-folder"
    modality = "audio"
    Config = AudioFolderConfig


class PairedDataSource:
    """A CSV or JSON-lines index pairing a text, an image file and an audio file per sample, with an optional
    label and split. File paths are relative to the index's folder unless absolute. A row may lack some of
    the modalities (the pipeline answers from the ones it has) but not all of them."""

    name = "paired"
    kind = "data"
    Config = PairedConfig

    def __init__(self, config: PairedConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def _rows(self, index: Path) -> list[dict[str, Any]]:
        try:
            if index.suffix.lower() == ".csv":
                with index.open(newline="", encoding="utf-8") as fh:
                    return [{k: v for k, v in row.items() if k is not None} for row in csv.DictReader(fh)]
            rows = []
            with index.open(encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"paired: {index.name}:{number}: not valid JSON ({exc.msg})") from exc
                    if not isinstance(row, dict):
                        raise DataError(f"paired: {index.name}:{number}: expected a JSON object per line")
                    rows.append(row)
            return rows
        except UnicodeDecodeError as exc:
            raise DataError(f"paired: {index} is not UTF-8 text: {exc}") from exc

    def load(self) -> Dataset:
        c = self.config
        if not c.index:
            raise DataError("paired: data.index: name the index file to read", hint='for example index = "pairs.csv"')
        index = Path(c.index).expanduser()
        if not index.is_file():
            raise DataError(
                f"paired: data.index {index} does not exist or is not a file",
                hint="name a .csv or .jsonl file with one row per sample",
            )
        rows = self._rows(index)
        if not rows:
            raise DataError(f"paired: {index} has no rows")
        columns = {"text": c.text_column, "image": c.image_column, "audio": c.audio_column}
        seen = set().union(*(row.keys() for row in rows))
        used = {m: col for m, col in columns.items() if col in seen}
        if not used:
            raise DataError(
                f"paired: {index.name} has none of the columns {sorted(columns.values())}",
                hint="name them with text_column, image_column and audio_column",
            )
        labelled = c.label_column in seen
        if not labelled:
            raise DataError(
                f"paired: {index.name} has no `{c.label_column}` column",
                hint="add one (or name it with label_column); training needs a label on at least some rows",
            )
        bad: list[tuple[Path, str]] = []
        problems: list[str] = []
        samples: list[tuple[str | None, dict[str, Any]]] = []
        digest = hashlib.sha256()
        for number, row in enumerate(rows, 1):
            where = f"{index.name} row {number}"
            sample: dict[str, Any] = {}
            for modality, column in used.items():
                value = row.get(column)
                if value is None or str(value).strip() == "":
                    continue  # this row lacks the modality
                if modality == "text":
                    sample["text"] = str(value)
                    continue
                path = Path(str(value)).expanduser()
                path = path if path.is_absolute() else index.parent / path
                if readable(modality, path, bad):
                    sample[modality] = str(path)
            if not sample:
                if not any(str(row.get(col) or "").strip() for col in used.values()):
                    problems.append(f"{where}: no text, image or audio")
                continue  # its files were unreadable: reported with them
            label = row.get(c.label_column)
            if label is not None and str(label).strip() != "":
                sample["label"] = str(label).strip()
            split = str(row.get(c.split_column) or "").strip().lower()
            if split and split not in SPLIT_ALIASES:
                problems.append(f"{where}: split {split!r} is not one of train, val, test")
                continue
            samples.append((SPLIT_ALIASES.get(split), sample))
        if problems:
            more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
            raise DataError("paired: " + "; ".join(problems[:SHOWN]) + more, hint="fix or remove those rows")
        report_unreadable("paired", bad, c.strict)
        names = sorted({s["label"] for _, s in samples if "label" in s}, key=_natural)
        if not names:
            raise DataError(f"paired: no row of {index.name} has a label", hint=f"fill the `{c.label_column}` column")
        for _, sample in samples:
            if "label" in sample:
                sample["label"] = names.index(sample["label"])
        splits = self._split(samples)
        digest.update(json.dumps(splits, sort_keys=True).encode())  # the seeded split is part of what the data is
        return Dataset(
            task=TaskSpec("graph", len(names), tuple(names)),
            port=Port("samples", frozenset(m for _, s in samples for m in s if m in columns)),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )

    def _split(self, samples: list[tuple[str | None, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Rows with a split keep it; the others are split per label at random (seeded)."""
        rng = random.Random(f"paired/{self.seed}")
        splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
        unassigned: dict[Any, list[dict[str, Any]]] = {}
        for split, sample in samples:
            if split:
                splits[split].append(sample)
            else:
                unassigned.setdefault(sample.get("label", -1), []).append(sample)
        for label in sorted(unassigned, key=str):
            for split, part in split_by_fraction(
                unassigned[label], self.config.val_fraction, self.config.test_fraction, rng
            ).items():
                splits[split].extend(part)
        for part in splits.values():
            rng.shuffle(part)
        return splits


def _natural(value: str) -> tuple[int, Any]:
    """Numbers in numeric order before other labels: "2" before "10"."""
    return (0, int(value)) if value.lstrip("-").isdigit() else (1, value)
