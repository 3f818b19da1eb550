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

After ingest, a user's table (CSV or Parquet) joins factors into existing runs with
``Store.set_factors`` / ``workbench factors set``: those values are recorded with the
source ``table:<file>`` (:data:`TABLE_SOURCE`) and, where they replace a value, as an
override in provenance. :func:`read_factor_table` reads such a file and
:func:`factor_table` validates it.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.model import _FACTOR_KEY_RE, FACTOR_GROUPS, ConfigError, Scalar, parse_scalar

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FOLDER_CONFIG",
    "SIDECAR_SUFFIXES",
    "SOURCE_ORDER",
    "TABLE_SOURCE",
    "TABLE_SUFFIXES",
    "FactorLayers",
    "FactorTable",
    "PathPattern",
    "factor_table",
    "flatten_factors",
    "folder_configs",
    "is_metadata_file",
    "load_factor_file",
    "parse_meta",
    "read_factor_table",
    "sidecar_paths",
]

SOURCE_ORDER: tuple[str, ...] = ("embedded", "workbench.yaml", "sidecar", "pattern", "meta")
FOLDER_CONFIG = "workbench.yaml"
SIDECAR_SUFFIXES: tuple[str, ...] = (".meta.yaml", ".meta.yml", ".meta.json")
TABLE_SOURCE = "table"
"""Source of factors joined into runs after ingest (recorded as ``table:<file>``)."""
TABLE_SUFFIXES: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
"""File suffixes :func:`read_factor_table` reads, and their formats."""
_MAX_LISTED = 10


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


# --------------------------------------------------------------------------- factor tables


def read_factor_table(path: str | Path) -> pl.DataFrame:
    """Read a user's factor table: CSV/TSV (every cell as text) or Parquet (typed).

    CSV cells stay text here (empty cells are null); :func:`factor_table` with
    ``text=True`` interprets them like ``--meta`` values, so ``"007"`` stays a string
    and ``"3"`` becomes 3.

    Raises
    ------
    ConfigError
        Naming the file when it is missing, unreadable or of an unknown kind.
    """
    import polars as pl

    p = Path(path)
    kind = TABLE_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        msg = f"{str(p)!r}: factor tables must be {', '.join(TABLE_SUFFIXES)} files"
        raise ConfigError(msg)
    if not p.is_file():
        msg = f"{str(p)!r}: no such file"
        raise ConfigError(msg)
    try:
        if kind == "parquet":
            return pl.read_parquet(p)
        return pl.read_csv(p, infer_schema=False, separator="\t" if kind == "tsv" else ",")
    except (OSError, pl.exceptions.PolarsError) as err:
        msg = f"{str(p)!r}: cannot read the factor table: {err}"
        raise ConfigError(msg) from err


@dataclass(frozen=True)
class FactorTable:
    """A validated factor table: per row, its key and the factor values to set.

    Attributes
    ----------
    origin
        The file (or a label) the table came from, for messages.
    on
        The key columns, named like catalog columns (``scenario.episode``, ``run_id``).
    columns
        The factor columns (``group.name``), in table order.
    keys
        Per row, the key values as the table holds them.
    values
        Per row, the non-null factor values (an empty cell sets nothing).
    """

    origin: str
    on: tuple[str, ...]
    columns: tuple[str, ...]
    keys: tuple[tuple[Any, ...], ...]
    values: tuple[dict[str, Scalar], ...]

    def describe(self, row: int) -> str:
        """``"row 3 (scenario.episode=12)"``: a row (counted from 1, header excluded)."""
        key = ", ".join(f"{c}={v!r}" for c, v in zip(self.on, self.keys[row], strict=True))
        return f"row {row + 1} ({key})"


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _cell(value: Any, *, text: bool) -> Scalar | Any:
    import datetime as dt
    import math

    if isinstance(value, str):
        if text:
            return None if not value.strip() else parse_scalar(value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


def factor_table(
    table: pl.DataFrame, on: str | Sequence[str], *, origin: str, text: bool = False
) -> FactorTable:
    """Validate a factor table keyed by *on*; raise one :class:`ConfigError` for all it finds.

    Parameters
    ----------
    table
        One row per run to change: the key column(s) and factor columns named
        ``<group>.<name>`` with group one of :data:`~workbench.model.FACTOR_GROUPS`.
    on
        Key column name(s).
    origin
        The file name (or label) used in messages.
    text
        Cells of text columns are typed values written as text (a CSV file): interpret
        them with :func:`~workbench.model.parse_scalar`; empty cells are null.

    Raises
    ------
    ConfigError
        A key column is missing (the table's columns are listed), a factor column is
        not ``group.name`` (the valid groups are listed) or holds lists/structs, a key
        is empty or appears twice (the rows are named), or the table has no rows or
        no factor columns.

    Examples
    --------
    >>> import polars as pl
    >>> t = factor_table(pl.DataFrame({"run_id": ["a"], "model.ckpt": ["s1"]}), "run_id", origin="t")
    >>> t.columns, t.values
    (('model.ckpt',), ({'model.ckpt': 's1'},))
    """
    import polars as pl

    keys = [on] if isinstance(on, str) else list(on)
    if not keys or any(not isinstance(k, str) or not k for k in keys):
        msg = f"{origin}: name the key column(s) to join on, e.g. 'scenario.episode' or 'run_id'"
        raise ConfigError(msg)
    if len(set(keys)) != len(keys):
        msg = f"{origin}: key columns {keys} name a column twice"
        raise ConfigError(msg)
    missing = [k for k in keys if k not in table.columns]
    if missing:
        msg = (
            f"{origin}: key column(s) {missing} not in the table; "
            f"its columns: {', '.join(table.columns) or 'none'}"
        )
        raise ConfigError(msg)
    columns = [c for c in table.columns if c not in keys]
    if not columns:
        msg = f"{origin}: no factor columns besides the key {keys}; add columns such as 'hardware.gripper'"
        raise ConfigError(msg)
    bad = []
    for col in columns:
        group, _, name = col.partition(".")
        if group not in FACTOR_GROUPS or not _FACTOR_KEY_RE.match(name):
            bad.append(col)
    if bad:
        msg = (
            f"{origin}: column(s) {bad} are not factor names: every column but the key "
            f"must be '<group>.<name>' with group one of {', '.join(FACTOR_GROUPS)} "
            "(name: letters, digits, '_', '-', dots between parts)"
        )
        raise ConfigError(msg)
    nested = [
        f"{c} ({table.schema[c]})"
        for c in [*keys, *columns]
        if isinstance(table.schema[c], pl.List | pl.Array | pl.Struct | pl.Object | pl.Binary)
    ]
    if nested:
        msg = f"{origin}: column(s) {nested} do not hold scalars (text, numbers, booleans)"
        raise ConfigError(msg)
    if table.height == 0:
        msg = f"{origin}: the table has no rows"
        raise ConfigError(msg)

    key_rows = list(table.select(keys).iter_rows())
    key_rows = [tuple(_cell(v, text=False) for v in row) for row in key_rows]
    if text:
        key_rows = [tuple(v.strip() if isinstance(v, str) else v for v in row) for row in key_rows]
    empty = [i for i, row in enumerate(key_rows) if any(v is None or v == "" for v in row)]
    if empty:
        msg = f"{origin}: rows {_listing([str(i + 1) for i in empty])} have an empty key {keys}"
        raise ConfigError(msg)
    seen: dict[tuple[Any, ...], int] = {}
    dupes: list[str] = []
    for i, row in enumerate(key_rows):
        norm = tuple(parse_scalar(v) if text and isinstance(v, str) else v for v in row)
        if norm in seen:
            dupes.append(f"rows {seen[norm] + 1} and {i + 1} ({', '.join(f'{c}={v!r}' for c, v in zip(keys, row, strict=True))})")
        else:
            seen[norm] = i
    if dupes:
        msg = f"{origin}: key {keys} appears more than once: {_listing(dupes)}; keep one row per run"
        raise ConfigError(msg)
    values = []
    odd: dict[str, str] = {}
    for row in table.select(columns).iter_rows():
        cells = {c: _cell(v, text=text) for c, v in zip(columns, row, strict=True)}
        for c, v in cells.items():
            if v is not None and not isinstance(v, str | int | float | bool):
                odd.setdefault(c, f"{c} ({type(v).__name__})")
        values.append({c: v for c, v in cells.items() if v is not None})
    if odd:
        msg = f"{origin}: column(s) {list(odd.values())} do not hold text, numbers or booleans"
        raise ConfigError(msg)
    return FactorTable(origin, tuple(keys), tuple(columns), tuple(key_rows), tuple(values))
