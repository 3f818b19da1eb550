"""One query over a store: the runs (or the moments of runs) a dataset or a plan is made of.

:func:`select` combines a catalog condition (factors, grade, outcome, labels and metric
columns: anything ``workbench runs --where`` takes), a lowest grade, outcomes, and
optionally a rule whose hits become time windows (with padding) instead of whole runs.
The :class:`Selection` remembers its query, the hash of the catalog it was made on and
the run ids, so an export can say exactly what it holds.

Examples
--------
>>> import workbench as wb
>>> store = wb.open_store("memory://selection-doc")
>>> sel = select(store)
>>> sel.run_ids, sel.query["outcome"]
([], None)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.model import ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["GRADES", "OUTCOMES", "Selection", "catalog_hash", "export_target", "select"]

GRADES = "ABCDF"
OUTCOMES = ("success", "failure", "unknown")


def catalog_hash(catalog: pl.DataFrame) -> str:
    """sha256 of the catalog's run ids with their outcome, grade and factors: an export
    made on the same catalog has the same hash."""
    cols = sorted(c for c in catalog.columns if c == "run_id" or c in ("outcome", "quality.grade") or "." in c)
    rows = catalog.select(cols).sort("run_id").rows() if "run_id" in catalog.columns else []
    return hashlib.sha256(json.dumps([cols, rows], default=str).encode()).hexdigest()


@dataclass
class Selection:
    """What :func:`select` chose.

    ``run_ids`` in catalog order; ``windows`` (with *find*): one row per hit with
    ``run_id``, ``start``, ``end`` (ns, padding included) and ``rule``; ``catalog``
    the selected rows; ``excluded`` run id → why it was left out (grade, outcome);
    ``query`` the arguments; ``catalog_hash`` of the whole catalog it was made on.
    """

    query: dict[str, Any]
    catalog_hash: str
    run_ids: list[str]
    catalog: pl.DataFrame
    windows: pl.DataFrame | None = None
    excluded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the query, the catalog hash, the run ids and the windows."""
        out: dict[str, Any] = {"query": self.query, "catalog_hash": self.catalog_hash, "run_ids": self.run_ids,
               "excluded": self.excluded}
        if self.windows is not None:
            out["windows"] = self.windows.select("run_id", "rule", "start", "end").to_dicts()
        return out


def export_target(selection: Selection, out: str | Path) -> Path:
    """The folder an export of *selection* writes into, once checked: new or empty, and
    a selection that holds runs (:class:`~workbench.model.ConfigError` otherwise)."""
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        msg = f"{folder} is not empty: an export writes into a new or empty folder"
        raise ConfigError(msg)
    if not selection.run_ids:
        msg = "the selection holds no run: nothing to export (loosen --where, --outcome or --min-grade)"
        raise ConfigError(msg)
    return folder


def _event_hits(store: Store, run_ids: list[str], kind: str, limit: int | None) -> pl.DataFrame:
    """Events of *kind* in the runs' event tables (log, rule and label events) as hits."""
    import polars as pl

    rows: list[dict[str, Any]] = []
    for rid in run_ids:
        ev = store.load(rid, streams=[], lazy=True).events
        if ev is None or ev.height == 0:
            continue
        for t, detail in ev.filter(pl.col("kind") == kind).select("time", "detail").iter_rows():
            end = t
            try:
                end = int(json.loads(detail).get("end", t)) if detail else t
            except (TypeError, ValueError, AttributeError):
                end = t
            rows.append({"run_id": rid, "rule": kind, "start": int(t), "end": int(end)})
            if limit is not None and len(rows) >= limit:
                return pl.DataFrame(rows)
    return pl.DataFrame(rows, schema={"run_id": pl.String, "rule": pl.String, "start": pl.Int64, "end": pl.Int64})


def _grade_ok(grade: Any, lowest: str) -> bool:
    return grade is None or (str(grade) in GRADES and GRADES.index(str(grade)) <= GRADES.index(lowest))


def select(
    store: Store,
    *,
    where: str | None = None,
    min_grade: str | None = None,
    outcome: Sequence[str] | str | None = None,
    find: Any = None,
    window: tuple[float, float] | float = 0.0,
    limit: int | None = None,
) -> Selection:
    """Select runs, or windows around rule hits, from *store* (see the module doc).

    Parameters
    ----------
    store
        The store.
    where
        A catalog condition (``workbench runs --where``), e.g.
        ``"model.version = 'policy-v1' and metrics.success = 1"``.
    min_grade
        Leave out runs graded below this (``A`` … ``F``; ungraded runs stay and are listed).
    outcome
        Keep runs with these outcomes (``success``, ``failure``, ``unknown``).
    find
        A rule (a :mod:`workbench.events` rule, mapping, inline YAML or the name of a
        rule of the store's ``workbench.yaml``), or else a kind of event the runs hold
        (``slip``, ``grasp``): each hit becomes a window.
    window
        Padding in seconds around each hit: one number for both sides, or ``(before, after)``.
    limit
        At most this many runs (or hits), in catalog order.

    Raises
    ------
    ConfigError
        A bad grade or outcome (naming the valid ones), a bad condition, or negative padding.
    """
    import polars as pl

    full = store.runs()
    cat = store.runs(where=where) if where else full
    excluded: dict[str, str] = {}
    if min_grade is not None:
        if min_grade not in GRADES:
            msg = f"min_grade {min_grade!r} is not valid; use one of {list(GRADES)}"
            raise ConfigError(msg)
        if "quality.grade" in cat.columns:
            low = [(r, g) for r, g in zip(cat["run_id"], cat["quality.grade"], strict=True) if not _grade_ok(g, min_grade)]
            excluded.update({r: f"grade {g} below {min_grade}" for r, g in low})
    wanted: list[str] | None = None
    if outcome is not None:
        wanted = [outcome] if isinstance(outcome, str) else list(outcome)
        bad = [o for o in wanted if o not in OUTCOMES]
        if bad:
            msg = f"outcome {bad[0]!r} is not valid; use one of {list(OUTCOMES)}"
            raise ConfigError(msg)
        have = cat["outcome"].fill_null("unknown") if "outcome" in cat.columns else pl.Series(["unknown"] * cat.height)
        for r, o in zip(cat["run_id"], have, strict=True):
            if o not in wanted and r not in excluded:
                excluded[r] = f"outcome {o}"
    kept = cat.filter(~pl.col("run_id").is_in(list(excluded))) if excluded else cat
    before, after = (float(window), float(window)) if isinstance(window, int | float) else (float(window[0]), float(window[1]))
    if before < 0 or after < 0:
        msg = f"window padding must be ≥ 0 seconds, got {window!r}"
        raise ConfigError(msg)
    windows = None
    if find is not None:
        from workbench.moments import find as find_hits

        try:
            hits = find_hits(store, find, run_ids=kept["run_id"].to_list(), limit=limit) if kept.height else None
        except ConfigError:
            if not (isinstance(find, str) and find.replace("_", "").replace("-", "").isalnum()):
                raise
            hits = _event_hits(store, kept["run_id"].to_list(), find, limit)  # a kind of event the runs hold
            if hits.height == 0:
                msg = (f"find {find!r} is neither a rule (name in workbench.yaml or inline YAML) nor a kind of event of "
                       f"the selected runs")
                raise ConfigError(msg) from None
        if hits is None or hits.height == 0:
            windows = pl.DataFrame(schema={"run_id": pl.String, "rule": pl.String, "start": pl.Int64, "end": pl.Int64})
        else:
            windows = hits.select("run_id", "rule", (pl.col("start") - int(before * 1e9)).alias("start"),
                                  (pl.col("end") + int(after * 1e9)).alias("end"))
        kept = kept.filter(pl.col("run_id").is_in(windows["run_id"].unique().to_list()))
    elif limit is not None:
        kept = kept.head(limit)
    query = {"where": where, "min_grade": min_grade, "outcome": wanted, "find": find if isinstance(find, str | dict | None) else str(find),
             "window": [before, after], "limit": limit}
    return Selection(query, catalog_hash(full), kept["run_id"].to_list(), kept, windows, excluded)
