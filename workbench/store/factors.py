"""Factor tables joined into the runs they name: :func:`set_factors` (``workbench factors set``)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.model import (
    FACTOR_GROUPS,
    ConfigError,
    RunInfo,
    Scalar,
    SchemaError,
    json_safe,
)
from workbench.store.layout import LOCK_NAME

if TYPE_CHECKING:
    import polars as pl

    from workbench.store.core import StoreCore

__all__ = ["FactorUpdate", "set_factors"]


@dataclass
class FactorUpdate:
    """What :meth:`Store.set_factors` did.

    Attributes
    ----------
    updated
        Runs whose factors (or their recorded origin) changed.
    unchanged
        Runs the table names whose factors already had these values from this source.
    columns
        The factor columns of the table.
    on
        The key columns.
    source
        The origin recorded in provenance (``table:<file>``).
    """

    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=list)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``workbench factors set --json`` output)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (
            f"{len(self.updated)} run(s) updated, {len(self.unchanged)} already up to date; "
            f"set {', '.join(self.columns)} keyed on {' + '.join(self.on)} (origin {self.source})"
        )


def set_factors(
    store: StoreCore,
    table: pl.DataFrame | str | os.PathLike[str],
    on: str | Iterable[str],
    *,
    source: str | None = None,
) -> FactorUpdate:
    """The work behind :meth:`workbench.store.Store.set_factors` (its docstring gives the
    parameters, the rules and an example): every row matched to one run and checked
    before the first manifest is rewritten, under the store's lock."""
    from workbench.metadata import TABLE_SOURCE, factor_table, read_factor_table

    if isinstance(table, str | os.PathLike):
        path = Path(table)
        frame = read_factor_table(path)
        origin, text = str(path), path.suffix.lower() in {".csv", ".tsv"}
        label = source or str(path.resolve())
    else:
        frame, text = table, False
        origin = label = source or "dataframe"
    parsed = factor_table(frame, [on] if isinstance(on, str) else list(on), origin=origin, text=text)
    label = f"{TABLE_SOURCE}:{label}"
    targets = _match_rows(parsed, store.runs())
    at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    updated: list[str] = []
    unchanged: list[str] = []
    with store.files.lock(LOCK_NAME):
        writes: list[tuple[str, dict[str, Any]]] = []
        for row, run_id in enumerate(targets):
            manifest = store.manifest(run_id)
            info = RunInfo.from_dict(manifest["info"])
            try:
                new = _with_table_factors(info, parsed.values[row], label, at)
            except SchemaError as err:
                msg = f"{origin}: {parsed.describe(row)}: {err}"
                raise ConfigError(msg) from err
            if new is None:
                unchanged.append(run_id)
                continue
            manifest["info"] = new.to_dict()
            writes.append((run_id, manifest))
            updated.append(run_id)
        for target, data in writes:  # every row checked before the first write
            store.write_manifest(target, data)
    if updated:
        store._update_catalog(drop=updated)
        store._update_catalog(add=updated)
    return FactorUpdate(
        updated=updated, unchanged=unchanged, columns=list(parsed.columns), on=list(parsed.on), source=label
    )


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (``1``, ``1.0`` and ``True`` are different factor values)."""
    return type(a) is type(b) and a == b


def _with_table_factors(info: RunInfo, values: Mapping[str, Scalar], label: str, at: str) -> RunInfo | None:
    """*info* with *values* set from the table *label*, or ``None`` when nothing changes."""
    flat = info.factors()
    prov = info.provenance
    origin = dict(prov.metadata)
    overrides = list(prov.overrides)
    changes: dict[str, Scalar] = {}
    for key, value in values.items():
        had = key in flat
        if had and _same(flat[key], value) and origin.get(key) == label:
            continue
        if had and not _same(flat[key], value):
            overrides.append(
                {
                    "key": key,
                    "old": flat[key],
                    "old_source": origin.get(key, "unknown"),
                    "new": value,
                    "new_source": label,
                    "at": at,
                }
            )
        origin[key] = label
        changes[key] = value
    if not changes:
        return None
    new = info.with_factors(changes)
    return dataclasses.replace(
        new, provenance=dataclasses.replace(prov, metadata=origin, overrides=tuple(json_safe(overrides)))
    )


def _key_values(column: str, dtype: Any, values: list[Any], parsed: Any) -> list[Any]:
    """The table's key values of *column* in the type of the catalog column (*dtype*)."""
    import polars as pl

    out: list[Any] = []
    bad: list[str] = []
    for row, value in enumerate(values):
        if dtype.is_numeric():
            if isinstance(value, str):
                try:
                    number: Any = int(value)
                except ValueError:
                    try:
                        number = float(value)
                    except ValueError:
                        number = None
                value = number
            if isinstance(value, bool) or not isinstance(value, int | float):
                bad.append(parsed.describe(row))
                value = None
        elif dtype == pl.Boolean:
            if isinstance(value, str):
                value = {"true": True, "false": False}.get(value.strip().lower())
            if not isinstance(value, bool):
                bad.append(parsed.describe(row))
        elif dtype == pl.String:
            value = value if isinstance(value, str) else str(value)
        else:
            msg = f"{parsed.origin}: cannot join on the catalog column {column!r} ({dtype}); use run_id, name, source or a factor"
            raise ConfigError(msg)
        out.append(value)
    if bad:
        kind = "a number" if dtype.is_numeric() else "true or false"
        msg = f"{parsed.origin}: {column} must be {kind} (as in the catalog) in {_listed(bad)}"
        raise ConfigError(msg)
    return out


def _listed(items: list[str], limit: int = 10) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def _match_rows(parsed: Any, catalog: pl.DataFrame) -> list[str]:
    """The run id each row of *parsed* (a FactorTable) names; ConfigError naming bad rows."""
    unknown = [c for c in parsed.on if c not in catalog.columns]
    if unknown:
        factor_cols = [c for c in catalog.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
        msg = (
            f"{parsed.origin}: key column(s) {unknown} are not catalog columns; join on "
            f"run_id, name, source or a factor column ({', '.join(factor_cols) or 'none yet'})"
        )
        raise ConfigError(msg)
    run_ids: list[str] = catalog["run_id"].to_list()
    candidates: list[list[set[str]]] = [[] for _ in parsed.keys]
    for i, column in enumerate(parsed.on):
        wanted = _key_values(column, catalog.schema[column], [k[i] for k in parsed.keys], parsed)
        have = catalog[column].to_list()
        if column == "source":  # a dataset folder or file: runs whose source lies under it
            for row, value in enumerate(wanted):
                root = os.path.abspath(value).rstrip(os.sep)
                candidates[row].append(
                    {r for r, s in zip(run_ids, have, strict=True)
                     if isinstance(s, str) and (s in (value, root) or s.startswith(root + os.sep))}
                )
            continue
        index: dict[Any, set[str]] = {}
        for rid, value in zip(run_ids, have, strict=True):
            if value is not None:
                index.setdefault(value, set()).add(rid)
        for row, value in enumerate(wanted):
            candidates[row].append(index.get(value, set()))
    names = dict(zip(run_ids, catalog["name"].to_list(), strict=True)) if "name" in catalog.columns else {}
    no_run: list[str] = []
    several: list[str] = []
    taken: dict[str, int] = {}
    twice: list[str] = []
    targets: list[str] = []
    for row, sets in enumerate(candidates):
        found = set.intersection(*sets)
        if not found:
            no_run.append(parsed.describe(row))
        elif len(found) > 1:
            shown = ", ".join(f"{r} ({names.get(r, '')})" for r in sorted(found)[:3])
            several.append(f"{parsed.describe(row)} → {len(found)} runs: {shown}{' …' if len(found) > 3 else ''}")
        else:
            (rid,) = found
            if rid in taken:
                twice.append(f"rows {taken[rid] + 1} and {row + 1} → run {rid}")
            taken.setdefault(rid, row)
            targets.append(rid)
    problems = []
    if no_run:
        problems.append(f"{_listed(no_run)} {'matches' if len(no_run) == 1 else 'match'} no run")
    if several:
        problems.append(
            f"{_listed(several)}; the key {list(parsed.on)} is ambiguous: add a key column that "
            "tells these runs apart (e.g. source, the dataset path) and join on it too"
        )
    if twice:
        problems.append(f"{_listed(twice)}: two rows name the same run")
    if problems:
        msg = f"{parsed.origin}: " + "; ".join(problems) + ". Nothing was changed."
        raise ConfigError(msg)
    return targets
