"""``autoglm compress ARTIFACT --with ...``: compress a built artifact into a new one.

The compressors run through the artifact's own session (its backend and data),
exactly as ``[[compress]]`` sections do in ``autoglm build``; the new sections
are recorded in the new artifact's lock, so loading it restores them in order.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path
from typing import Any, Callable

from autoglm_sdk import load, parse_override, validate_manifest
from autoglm_sdk.plugin import ManifestError


def parse_with(text: str) -> dict[str, Any]:
    """``prune:amount=0.5,stages=["reasoner"]`` -> ``{"plugin": "prune", "amount": 0.5, "stages": ["reasoner"]}``;
    values parse as TOML (else as strings), commas inside brackets or quotes do not split."""
    name, _, rest = text.partition(":")
    if not name.strip():
        raise ManifestError(f"--with {text!r}: expected NAME or NAME:KEY=VALUE,..., for example --with int8")
    section: dict[str, Any] = {"plugin": name.strip()}
    parts, depth, quote, current = [], 0, "", ""
    for char in rest:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current)
    for part in parts:
        path, value = parse_override(part)
        if len(path) != 1:
            raise ManifestError(f"--with {text!r}: `{'.'.join(path)}` is not an option name of {name}")
        section[path[0]] = value
    return section


def compress_artifact(
    path: str | Path,
    sections: list[dict[str, Any]],
    output: str | Path,
    *,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda message: None,
    progress: Any = None,
) -> dict[str, Any]:
    """Compress a built artifact into a new one at ``output``; returns the new report.

    The new sections are appended to the artifact's own ``[[compress]]`` list,
    validated like a manifest, applied to the loaded pipeline and recorded in
    its lock, so loading the result restores every compression in order.
    """
    path, output = Path(path), Path(output)
    pipeline = load(path)
    raw = copy.deepcopy(pipeline.lock.manifest)
    existing = list(raw.get("compress", []))
    raw["compress"] = existing + sections
    manifest = validate_manifest(raw, source="--with")
    session = dataclasses.replace(pipeline.session, manifest=manifest, log=log)
    model, steps, metrics = session.compress(
        pipeline.model, manifest.compress[len(existing) :], session.evaluate(pipeline.model), progress
    )
    report = pipeline.report().with_compression(steps, metrics, model)
    compressed = dataclasses.replace(
        pipeline, model=model, session=session, lock=dataclasses.replace(pipeline.lock, manifest=manifest.resolved())
    )

    def pictures(directory: Path) -> None:  # plots made at build time (shared space); report.md remakes its own
        for picture in path.glob("*.png"):
            shutil.copy2(picture, directory / picture.name)

    compressed.save(output, report, overwrite=overwrite, pictures=pictures)
    return report.as_dict()
