"""Where a run's factors come from, and in which order they win.

Sources, from weakest to strongest (a later source overrides an earlier one, and
every override is recorded in the run's provenance):

1. ``embedded`` — found in the log itself by its reader (MCAP metadata records,
   LeRobot ``info.json``, HDF5 attributes, ULog parameters…);
2. ``workbench.yaml`` — a ``factors:`` section in a ``workbench.yaml`` file in the
   log's folder or any parent folder up to the ingested path (nearer folders win);
3. ``sidecar`` — ``<file>.meta.yaml`` or ``<file>.meta.json`` next to the log
   (e.g. ``run_07.bag.meta.yaml``);
4. ``pattern`` — values parsed from the path with a pattern such as
   ``"{hardware.robot}/{model.version}/{scenario.seed}.csv"``;
5. ``meta`` — ``key=value`` pairs given on the command line or to ``Store.ingest``.

Factor files may be nested (``hardware: {robot: arm-a}``) or dotted
(``hardware.robot: arm-a``).

Examples
--------
>>> parse_meta(["hardware.robot=arm-a", "scenario.seed=3"])
{'hardware.robot': 'arm-a', 'scenario.seed': 3}
>>> PathPattern("{hardware.robot}/{scenario.seed}.csv").match("logs/arm-b/7.csv")
{'hardware.robot': 'arm-b', 'scenario.seed': 7}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.model import FACTOR_GROUPS, ConfigError, Scalar, parse_scalar

__all__ = [
    "SOURCE_ORDER",
    "FOLDER_CONFIG",
    "SIDECAR_SUFFIXES",
    "PathPattern",
    "FactorLayers",
    "parse_meta",
    "flatten_factors",
    "sidecar_paths",
    "load_factor_file",
    "folder_configs",
    "is_metadata_file",
]

SOURCE_ORDER: tuple[str, ...] = ("embedded", "workbench.yaml", "sidecar", "pattern", "meta")
FOLDER_CONFIG = "workbench.yaml"
SIDECAR_SUFFIXES: tuple[str, ...] = (".meta.yaml", ".meta.yml", ".meta.json")


def is_metadata_file(path: Path) -> bool:
    """Whether *path* is a workbench metadata file (skipped when walking folders)."""
    name = path.name
    return name == FOLDER_CONFIG or any(name.endswith(s) for s in SIDECAR_SUFFIXES)


def _check_key(key: str, origin: str) -> str:
    group, _, rest = key.partition(".")
    if group not in FACTOR_GROUPS or not rest:
        msg = (
            f"{origin}: factor key {key!r} must be '<group>.<name>' with group one of "
            f"{', '.join(FACTOR_GROUPS)}"
        )
        raise ConfigError(msg)
    return key


def flatten_factors(data: Mapping[str, Any], *, origin: str) -> dict[str, Scalar]:
    """Nested or dotted factor mapping → ``{"group.key": value}``, validated."""
    out: dict[str, Scalar] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                visit(f"{prefix}.{k}" if prefix else str(k), v)
            return
        if value is not None and not isinstance(value, str | int | float | bool):
            msg = f"{origin}: factor {prefix!r} must be a scalar, got {type(value).__name__}"
            raise ConfigError(msg)
        out[_check_key(prefix, origin)] = value

    for key, value in data.items():
        visit(str(key), value)
    return out


def parse_meta(pairs: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Scalar]:
    """``["group.key=value", ...]`` (or a mapping) → validated flat factors.

    Values are interpreted with :func:`workbench.model.parse_scalar` (``"3"`` → 3).
    """
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return flatten_factors(pairs, origin="meta")
    out: dict[str, Scalar] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            msg = f"meta {pair!r} must look like group.key=value (e.g. hardware.robot=arm-a)"
            raise ConfigError(msg)
        out[_check_key(key.strip(), "meta")] = parse_scalar(value)
    return out


def load_factor_file(path: Path, *, section: str | None = None) -> dict[str, Scalar]:
    """Read factors from a YAML/JSON file (optionally from one top-level *section*)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        msg = f"{str(path)!r}: cannot read metadata: {err}"
        raise ConfigError(msg) from err
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        msg = f"{str(path)!r}: metadata must be a mapping, got {type(data).__name__}"
        raise ConfigError(msg)
    if section is not None:
        data = data.get(section) or {}
        if not isinstance(data, Mapping):
            msg = f"{str(path)!r}: '{section}' must be a mapping"
            raise ConfigError(msg)
    return flatten_factors(data, origin=str(path))


def sidecar_paths(path: Path) -> list[Path]:
    """Sidecar files that exist for *path* (``<file>.meta.yaml`` …)."""
    return [p for s in SIDECAR_SUFFIXES if (p := path.with_name(path.name + s)).is_file()]


def folder_configs(path: Path, root: Path | None) -> list[Path]:
    """``workbench.yaml`` files from *root* down to the folder holding *path* (far first)."""
    start = path.parent if path.is_file() or not path.exists() else path
    folders = [start, *start.parents]
    if root is not None:
        root_dir = root if root.is_dir() else root.parent
        keep = []
        for folder in folders:
            keep.append(folder)
            if folder == root_dir:
                break
        else:
            keep = [start]
        folders = keep
    else:
        folders = [start]
    return [cfg for f in reversed(folders) if (cfg := f / FOLDER_CONFIG).is_file()]


class PathPattern:
    """A path pattern with ``{group.key}`` fields matched against the end of a path.

    Each field matches one path component or part of one (no ``/``); values are
    interpreted with :func:`workbench.model.parse_scalar`.
    """

    _FIELD = re.compile(r"\{([^{}]+)\}")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts: list[str] = []
        self.fields: list[str] = []
        pos = 0
        for m in self._FIELD.finditer(pattern):
            parts.append(re.escape(pattern[pos : m.start()]))
            key = _check_key(m.group(1).strip(), f"pattern {pattern!r}")
            if key in self.fields:
                msg = f"pattern {pattern!r} names {key!r} twice"
                raise ConfigError(msg)
            parts.append(f"(?P<f{len(self.fields)}>[^/]+?)")
            self.fields.append(key)
            pos = m.end()
        parts.append(re.escape(pattern[pos:]))
        if not self.fields:
            msg = f"pattern {pattern!r} has no {{group.key}} field"
            raise ConfigError(msg)
        self._regex = re.compile(r"(?:^|/)" + "".join(parts) + r"$")

    def match(self, path: str | Path) -> dict[str, Scalar] | None:
        """Factors parsed from *path*, or ``None`` when it does not match."""
        m = self._regex.search(Path(path).as_posix())
        if m is None:
            return None
        return {key: parse_scalar(m.group(f"f{i}")) for i, key in enumerate(self.fields)}


@dataclass
class FactorLayers:
    """Factor values by source, merged in :data:`SOURCE_ORDER`."""

    layers: dict[str, dict[str, Scalar]] = field(default_factory=dict)

    def add(self, source: str, values: Mapping[str, Scalar]) -> None:
        """Add (or extend) the layer of *source*."""
        if source not in SOURCE_ORDER:
            msg = f"unknown metadata source {source!r}; valid: {list(SOURCE_ORDER)}"
            raise ConfigError(msg)
        self.layers.setdefault(source, {}).update(values)

    def merge(self) -> tuple[dict[str, Scalar], dict[str, str], list[dict[str, Any]]]:
        """Merged flat factors, the source of each value, and the overrides made."""
        merged: dict[str, Scalar] = {}
        origin: dict[str, str] = {}
        overrides: list[dict[str, Any]] = []
        for source in SOURCE_ORDER:
            for key, value in self.layers.get(source, {}).items():
                if key in merged and merged[key] != value:
                    overrides.append(
                        {
                            "key": key,
                            "old": merged[key],
                            "old_source": origin[key],
                            "new": value,
                            "new_source": source,
                        }
                    )
                merged[key] = value
                origin[key] = source
        return merged, origin, overrides
