"""Plugin discovery through entry points, and the index of known plugins.

Listing reads package metadata only (``importlib.metadata``): no plugin code
runs until a plugin is used. Loading imports only the plugin's light
:class:`~autoglm_sdk.protocols.PluginSpec`; a failure there is reported with the
plugin's distribution and the real error, and never affects other plugins.
"""

from __future__ import annotations

import difflib
import importlib
import time
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from autoglm_sdk.errors import DuplicatePluginError, PluginLoadError, PluginNotFoundError
from autoglm_sdk.kinds import CONTRACT_VERSION, KIND_GROUPS, KINDS

INDEX_PATH = Path(__file__).with_name("registry.toml")
GROUP_KINDS = {group: kind for kind, group in KIND_GROUPS.items()}


@dataclass
class PluginEntry:
    """One registered plugin, known from metadata; ``load()`` imports its spec."""

    name: str
    kind: str
    value: str
    distribution: str
    version: str
    duplicates: list[str] = field(default_factory=list)
    status: str = "installed"  # installed | ok | broken | duplicate
    error: str = ""
    import_seconds: float | None = None
    _spec: object = None

    def load(self):
        """Import the spec (once). Raises :class:`PluginLoadError` naming the distribution."""
        if self.duplicates:
            dists = ", ".join([self.distribution, *self.duplicates])
            self.status = "duplicate"
            raise DuplicatePluginError(
                f"{self.kind} `{self.name}` is registered by more than one distribution: {dists}",
                hint="uninstall one of them (pip uninstall ...)",
            )
        if self._spec is not None:
            return self._spec
        from autoglm_sdk.protocols import PluginSpec

        started = time.perf_counter()
        try:
            module_name, _, attr = self.value.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except Exception as exc:  # any import-time failure of third-party code
            self.status, self.error = "broken", f"{type(exc).__name__}: {exc}"
            raise PluginLoadError(
                f"{self.kind} `{self.name}` from {self.distribution} {self.version} failed to import: {self.error}",
                hint=f"reinstall or fix {self.distribution}; other plugins are unaffected",
            ) from exc
        self.import_seconds = time.perf_counter() - started
        if not isinstance(obj, PluginSpec):
            self.status, self.error = "broken", f"entry point {self.value} is a {type(obj).__name__}, not a PluginSpec"
            raise PluginLoadError(f"{self.kind} `{self.name}` from {self.distribution}: {self.error}")
        problem = _spec_problem(obj, self)
        if problem:
            self.status, self.error = "broken", problem
            raise PluginLoadError(f"{self.kind} `{self.name}` from {self.distribution}: {problem}")
        self.status, self._spec = "ok", obj
        return obj


def _spec_problem(spec, entry: PluginEntry) -> str:
    if spec.name != entry.name:
        return f"entry point name `{entry.name}` differs from the spec's name `{spec.name}`"
    if spec.kind != entry.kind:
        return f"registered as a {entry.kind} but the spec says {spec.kind}"
    if spec.contract_version > CONTRACT_VERSION:
        return (
            f"written against contract version {spec.contract_version}, this SDK has {CONTRACT_VERSION}; "
            "upgrade autoglm-sdk"
        )
    return ""


@dataclass(frozen=True)
class IndexEntry:
    """A row of ``registry.toml``: a plugin known to exist, installed or not."""

    name: str
    kind: str
    distribution: str
    summary: str
    requires: tuple[str, ...] = ()
    path: str = ""


@cache
def load_index(path: Path = INDEX_PATH) -> tuple[IndexEntry, ...]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return ()  # the index only improves messages; without it discovery still works
    return tuple(
        IndexEntry(
            name=row["name"],
            kind=row["kind"],
            distribution=row["distribution"],
            summary=row.get("summary", ""),
            requires=tuple(row.get("requires", ())),
            path=row.get("path", ""),
        )
        for row in data.get("plugin", [])
    )


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to ``word`` (for "did you mean"), or None."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Registry:
    """All installed plugins, by kind and name."""

    def __init__(self, entries: Iterable[PluginEntry]) -> None:
        self._entries: dict[tuple[str, str], PluginEntry] = {}
        for entry in entries:
            key = (entry.kind, entry.name)
            first = self._entries.get(key)
            if first is None:
                self._entries[key] = entry
            elif first.distribution != entry.distribution:
                first.duplicates.append(entry.distribution)
                first.status = "duplicate"
                first.error = "also registered by " + ", ".join(first.duplicates)

    @classmethod
    def discover(cls) -> "Registry":
        entries = []
        seen: set[tuple[str, str, str]] = set()
        for dist in metadata.distributions():
            # reading entry_points.txt first skips parsing the METADATA of the
            # hundreds of unrelated distributions in a typical ML environment
            text = dist.read_text("entry_points.txt")
            if not text or "autoglm" not in text:
                continue
            dist_name = dist.metadata["Name"] or "?"
            for ep in dist.entry_points:
                kind = GROUP_KINDS.get(ep.group)
                if kind is None:
                    continue
                # the same distribution can be visible twice on sys.path (editable + site)
                key = (dist_name.lower(), ep.group, ep.name)
                if key in seen:
                    continue
                seen.add(key)
                entries.append(PluginEntry(ep.name, kind, ep.value, dist_name, dist.version))
        return cls(entries)

    def entries(self, kind: str | None = None) -> list[PluginEntry]:
        rows = [e for e in self._entries.values() if kind is None or e.kind == kind]
        return sorted(rows, key=lambda e: (KINDS.index(e.kind), e.name))

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entries(kind)]

    def entry(self, kind: str, name: str) -> PluginEntry:
        entry = self._entries.get((kind, name))
        if entry is None:
            raise self.not_found(kind, name)
        return entry

    def find(self, name: str) -> list[PluginEntry]:
        """Entries of any kind with this name (for ``plugins info NAME``)."""
        return [e for e in self.entries() if e.name == name]

    def spec(self, kind: str, name: str, *, allow_import_path: bool = False):
        """The loaded spec of ``name``; an import path ``pkg.mod:attr`` only when allowed."""
        if ":" in name:
            return load_import_path(kind, name, allowed=allow_import_path)
        return self.entry(kind, name).load()

    def not_found(self, kind: str, name: str, key: str | None = None) -> PluginNotFoundError:
        where = f"{key}: " if key else ""
        label = kind.replace("_", " ")
        known = [row for row in load_index() if row.name == name and row.kind == kind]
        if known:
            row = known[0]
            extra = f" (needs {', '.join(row.requires)})" if row.requires else ""
            source = f"pip install -e {row.path}" if row.path else f"pip install {row.distribution}"
            return PluginNotFoundError(
                f"{where}{label} `{name}` is provided by {row.distribution}, which is not installed{extra}", hint=source
            )
        installed = self.names(kind)
        close = suggest(name, installed) or suggest(name, [r.name for r in load_index() if r.kind == kind])
        message = f"{where}unknown {label} `{name}`" + (f"; did you mean `{close}`?" if close else "")
        return PluginNotFoundError(message, hint=f"installed {label}s: {', '.join(installed) or 'none'}")


def load_import_path(kind: str, path: str, *, allowed: bool):
    from autoglm_sdk.protocols import PluginSpec

    if not allowed:
        raise PluginNotFoundError(
            f"`{path}` is an import path, not a registered {kind.replace('_', ' ')}",
            hint="register it as an entry point, or pass --allow-import-paths to trust arbitrary code",
        )
    module_name, _, attr = path.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        raise PluginLoadError(f"cannot import `{path}`: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, PluginSpec) or obj.kind != kind:
        raise PluginLoadError(f"`{path}` is not a PluginSpec of kind {kind}")
    return obj


@cache
def default_registry() -> Registry:
    return Registry.discover()


@cache
def _packages() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # reads every installed distribution's files: once per process


def distribution_of(spec: Any) -> tuple[str, str]:
    """(distribution, version) that provides a spec's implementation module, or ("unknown", "")."""
    top = spec.factory.split(".", 1)[0].split(":", 1)[0]
    for dist in _packages().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown", ""
