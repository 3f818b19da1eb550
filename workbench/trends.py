"""Trends: a metric per time window (or per deployment factor) per cell, and when it changed.

:func:`trend` groups the runs of each cell (a combination of the *within* factors) by
the hour, day, ISO week or month of their start (UTC), or by the values of a factor
such as ``model.checkpoint``, and gives per window the runs, the metric (a rate with
its Wilson interval, or a mean with its t interval) and a control chart: a p-chart
for rates (p̄ ± 3·√(p̄(1−p̄)/nᵢ)), an X̄ chart for other metrics (grand mean ± 3·sᵢₙ/√nᵢ).
It then looks for the runs from which behavior changed
(:func:`workbench.stats.changepoint.change_points`, a permutation test per cell, Holm
across cells), so a drop is dated to a run and its window rather than seen by eye.

Every window keeps its run ids: :meth:`TrendResult.runs` opens a point's runs.

Examples
--------
>>> import polars as pl, numpy as np
>>> day = 86_400 * 10**9
>>> rng = np.random.default_rng(3)
>>> ok = np.r_[rng.random(60) < 0.9, rng.random(60) < 0.4]          # drops on day 10
>>> cat = pl.DataFrame({"run_id": [f"r{i}" for i in range(120)], "metrics.success": ok,
...                     "start_ns": [i // 6 * day + i % 6 * 3_600 * 10**9 for i in range(120)]})
>>> res = trend(cat, metric="success", over="day")
>>> res.table.height, res.changes["window"].to_list()
(20, ['1970-01-11'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import FACTOR_GROUPS, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["MAX_WINDOWS", "WINDOWS", "TrendResult", "trend"]

WINDOWS = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo"}
"""Calendar windows of run start (UTC) and their polars truncation."""
MAX_WINDOWS = 60
"""``over="auto"`` takes the finest calendar window giving at most this many windows."""
_SPAN_NS = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9, "week": 7 * 86_400 * 10**9, "month": 30 * 86_400 * 10**9}
_GRADES = "ABCDF"


@dataclass(frozen=True)
class TrendResult:
    """A metric per window per cell, its control chart, and the changes found.

    Attributes
    ----------
    metric, kind, unit : str
        The metric, its kind (``rate`` or ``continuous``) and unit.
    over : str
        ``hour``, ``day``, ``week``, ``month`` or the factor column the windows are.
    within : list of str
        Factors defining cells (each cell its own series, chart and changes).
    table : polars.DataFrame
        One row per cell and window, in order: the *within* columns, ``window`` (label),
        ``window_start`` (datetime, null for a factor), ``order`` (0, 1, … within the
        cell), ``n`` (runs measured), ``k`` (successes; rates), ``value`` (rate or
        mean), ``lo``/``hi`` (interval at *level*), ``center``/``lcl``/``ucl`` (control
        chart), ``out_of_control``, ``change`` (a change starts in this window),
        ``n_missing`` (runs without a value) and ``run_ids`` (every run of the window).
    changes : polars.DataFrame
        One row per change: the *within* columns, ``window``, ``run_id`` and ``start``
        of the first run after the change, ``before``/``after`` (rate or mean of the
        runs on each side), ``n_before``/``n_after``, ``p_value`` (permutation),
        ``p_adjusted`` (Holm across cells for each cell's first change), ``method``.
    level, alpha : float
        Interval level and the change test's level.
    """

    metric: str
    kind: str
    unit: str
    over: str
    within: list[str]
    table: pl.DataFrame
    changes: pl.DataFrame
    level: float = 0.95
    alpha: float = 0.05
    excluded: dict[str, str] = field(default_factory=dict)

    def runs(self, window: int | str, cell: Mapping[str, Any] | Sequence[Any] | None = None) -> list[str]:
        """Run ids of a point: the *window*-th row of :attr:`table` (an int), or the
        window with that label in *cell* (a mapping factor → value, or values in the
        order of :attr:`within`; may be omitted with one cell).

        Examples
        --------
        >>> import polars as pl
        >>> cat = pl.DataFrame({"run_id": ["a", "b", "c"], "metrics.success": [True, False, True],
        ...                     "model.checkpoint": [1, 1, 2], "start_ns": [0, 1, 2]})
        >>> trend(cat, over="model.checkpoint").runs("1")
        ['a', 'b']
        """
        import polars as pl

        if isinstance(window, int):
            if not 0 <= window < self.table.height:
                msg = f"point {window} is not in the trend (it has {self.table.height})"
                raise ConfigError(msg)
            return list(self.table["run_ids"][window])
        rows = self.table.filter(pl.col("window") == str(window))
        if cell is not None:
            values = dict(cell) if isinstance(cell, Mapping) else dict(zip(self.within, cell, strict=True))
            for k, v in values.items():
                rows = rows.filter(pl.col(k).cast(pl.String) == str(v))
        if rows.height != 1:
            have = self.table["window"].unique(maintain_order=True).to_list()[:20]
            what = "no point" if rows.height == 0 else f"{rows.height} points (one per cell: name the cell)"
            msg = f"window {window!r} matches {what}; windows: {have}"
            raise ConfigError(msg)
        return list(rows["run_ids"][0])

    def summary(self) -> str:
        """One line per change, or a line saying none was found."""
        if self.changes.height == 0:
            return f"{self.metric}: no change found over {self.over} (α = {self.alpha})"
        lines = []
        for r in self.changes.iter_rows(named=True):
            cell = " · ".join(f"{w}={r[w]}" for w in self.within)
            fmt = (lambda v: f"{v:.0%}") if self.kind == "rate" else (lambda v: f"{v:.3g}{(' ' + self.unit) if self.unit else ''}")
            lines.append(f"{self.metric}{' in ' + cell if cell else ''} changed in {r['window']} "
                         f"(from run {r['run_id']}): {fmt(r['before'])} → {fmt(r['after'])} "
                         f"({r['n_before']} → {r['n_after']} runs, p = {r['p_adjusted']:.3g})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        cells = self.table.select(self.within).unique().height if self.within else 1
        return (f"TrendResult({self.metric!r} over {self.over}: {self.table.height} points in {cells} cell(s), "
                f"{self.changes.height} change(s))")

    def plot(self, **opts: Any) -> Any:
        """The control chart (:func:`workbench.viz.plots.trend_chart`)."""
        from workbench.viz.plots import trend_chart

        return trend_chart(self, **opts)


def _catalog(source: Store | pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    if isinstance(source, pl.DataFrame):
        return source
    if hasattr(source, "runs"):
        return source.runs()
    msg = f"trend needs a Store or a catalog DataFrame, got {type(source).__name__}"
    raise ConfigError(msg)


def _auto_window(start: pl.Series) -> str:
    lo, hi = start.min(), start.max()
    span = 0 if lo is None or hi is None else int(hi) - int(lo)  # type: ignore[arg-type]
    for name, ns in _SPAN_NS.items():
        if span // ns + 1 <= MAX_WINDOWS:
            return name
    return "month"


def _label(name: str) -> Any:
    import polars as pl

    col = pl.col("window_start")
    if name == "hour":
        return col.dt.strftime("%Y-%m-%d %H:00")
    if name == "day":
        return col.dt.strftime("%Y-%m-%d")
    if name == "week":
        return col.dt.strftime("%G-W%V")
    return col.dt.strftime("%Y-%m")


def _natural_key(value: Any) -> tuple[Any, ...]:
    text = str(value)
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _interval(kind: str, k: int, n: int, mean: float, sd: float, level: float) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    if kind == "rate":
        from workbench.stats.rates import wilson_interval

        return wilson_interval(k, n, level=level)
    if n < 2 or not math.isfinite(sd):
        return math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def trend(
    source: Store | pl.DataFrame,
    *,
    metric: str = "success",
    over: str = "auto",
    within: Sequence[str] | str | None = None,
    min_grade: str | None = None,
    level: float = 0.95,
    alpha: float = 0.05,
    sigmas: float = 3.0,
    min_size: int = 5,
    max_changes: int = 3,
    n_perm: int = 1999,
    seed: int = 0,
) -> TrendResult:
    """A metric per time window (or factor value) per cell, its control chart and changes.

    Parameters
    ----------
    source
        A store (the metric is computed first for runs that lack it) or a catalog
        DataFrame with ``run_id``, ``start_ns`` and the metric's column.
    metric
        The metric (``success``, ``duration_s``, ``metrics.<name>`` or a column name).
    over
        ``hour``, ``day``, ``week`` (ISO, Monday first) or ``month`` of run start in
        UTC; ``auto`` (the finest of those with at most :data:`MAX_WINDOWS` windows);
        or a factor column (e.g. ``model.checkpoint``), its values sorted naturally
        (2 before 10). Changes are searched on runs in time order; with a factor,
        only between its values.
    within
        Factors defining cells, each with its own series (e.g. ``hardware.robot``).
    min_grade
        Leave out runs graded below this (``"B"`` keeps A and B; ungraded runs stay).
    level
        Level of each window's interval (Wilson for rates, t for means).
    alpha
        Level of the change test (Holm across cells).
    sigmas
        Width of the control limits in standard errors.
    min_size, max_changes, n_perm, seed
        Fewest runs a side of a change, most changes per cell, permutations per test
        and their seed (see :func:`workbench.stats.changepoint.change_points`).

    Returns
    -------
    TrendResult

    Raises
    ------
    ConfigError
        On an unknown metric, window or factor (naming the valid ones), a category
        metric, a catalog without run start times, or no run with a value.
    """
    import polars as pl

    from workbench.stats.changepoint import change_points, p_chart_limits
    from workbench.stats.multiplicity import holm

    if isinstance(within, str):
        within = [w.strip() for w in within.split(",") if w.strip()]
    within = list(within or [])
    if not isinstance(source, pl.DataFrame) and hasattr(source, "runs"):
        from workbench.comparison import ensure_measured

        name = metric.removeprefix("metrics.")
        cat0 = source.runs()
        if f"metrics.{name}" not in cat0.columns and name not in cat0.columns:
            ensure_measured(source, run_ids=cat0["run_id"].to_list(), metrics=[name], grades=min_grade is not None)
        elif min_grade is not None and "quality.grade" not in cat0.columns:
            ensure_measured(source, run_ids=cat0["run_id"].to_list(), metrics=[], grades=True)
    cat = _catalog(source)
    from workbench.comparison import _metric_column, _metric_info

    col = _metric_column(cat, metric.removeprefix("metrics."))
    name = col.removeprefix("metrics.")
    kind, _higher, unit = _metric_info(name)
    if not cat.schema[col].is_numeric() and cat.schema[col] != pl.Boolean:
        kind = "category"
    if kind == "category":
        msg = f"metric {name!r} is a category: a trend needs a rate or a number"
        raise ConfigError(msg)
    if cat.schema[col] == pl.Boolean:
        kind = "rate"
    kind = "rate" if kind == "rate" else "continuous"
    factors = [c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
    for w in within:
        if w not in cat.columns:
            msg = f"no factor column {w!r} for cells; factors: {', '.join(factors) or 'none'}"
            raise ConfigError(msg)
    if "start_ns" not in cat.columns:
        msg = "the catalog has no start_ns (run start time): a trend needs it"
        raise ConfigError(msg)
    by_factor = over not in WINDOWS and over != "auto"
    if by_factor and over not in cat.columns:
        msg = f"over {over!r} is not valid; choose from {['auto', *WINDOWS]} or a factor column: {', '.join(factors) or 'none'}"
        raise ConfigError(msg)
    if by_factor and over in within:
        msg = f"{over!r} cannot be both the windows (over) and a cell factor (within)"
        raise ConfigError(msg)
    excluded: dict[str, str] = {}
    if min_grade is not None:
        if min_grade not in _GRADES:
            msg = f"min_grade {min_grade!r} is not valid; use one of {list(_GRADES)}"
            raise ConfigError(msg)
        if "quality.grade" not in cat.columns:
            msg = "min_grade needs data grades: run `workbench grade` (wb.quality.grade_store) first"
            raise ConfigError(msg)
        allowed = list(_GRADES[: _GRADES.index(min_grade) + 1])
        low = cat.filter(~pl.col("quality.grade").is_in(allowed).fill_null(True))
        excluded = {r: f"grade {g} below {min_grade}" for r, g in zip(low["run_id"], low["quality.grade"], strict=True)}
        cat = cat.filter(pl.col("quality.grade").is_in(allowed).fill_null(True))
    no_time = cat.filter(pl.col("start_ns").is_null())
    excluded.update(dict.fromkeys(no_time["run_id"].to_list(), "no start time"))
    cat = cat.filter(pl.col("start_ns").is_not_null())
    if cat.height == 0:
        msg = "no run with a start time" + (f" at grade {min_grade} or better" if min_grade else "")
        raise ConfigError(msg)
    window = _auto_window(cat["start_ns"]) if over == "auto" else over
    value = pl.col(col).cast(pl.Float64)
    frame = cat.select("run_id", pl.col("start_ns").cast(pl.Int64), *within, value.alias("_v"),
                       *([pl.col(over).alias("_f")] if by_factor else []))
    if by_factor:
        frame = frame.filter(pl.col("_f").is_not_null())
        levels = sorted({str(v) for v in frame["_f"].to_list()}, key=_natural_key)
        rank = {v: i for i, v in enumerate(levels)}
        frame = frame.with_columns(pl.col("_f").cast(pl.String).alias("window"),
                                   pl.col("_f").cast(pl.String).replace_strict(rank, return_dtype=pl.Int64).alias("_w"),
                                   pl.lit(None, dtype=pl.Datetime("ns", "UTC")).alias("window_start"))
    else:
        ws = pl.from_epoch("start_ns", time_unit="ns").dt.replace_time_zone("UTC").dt.truncate(WINDOWS[window])
        frame = frame.with_columns(ws.alias("window_start"))
        frame = frame.with_columns(_label(window).alias("window"), pl.col("window_start").dt.epoch("ns").alias("_w"))
    if kind == "rate":
        bad = frame.filter(pl.col("_v").is_not_null() & ~pl.col("_v").is_in([0.0, 1.0]))
        if bad.height:
            msg = f"metric {name!r} is a rate but holds values other than 0/1: {bad['_v'].head(3).to_list()}"
            raise ConfigError(msg)
    frame = frame.sort([*within, "_w", "start_ns", "run_id"])
    cells = frame.partition_by(within, as_dict=True, maintain_order=True) if within else {(): frame}
    rows: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    first_p: list[tuple[int, float]] = []  # (index into found, p of the cell's strongest change)
    for key in sorted(cells, key=lambda k: tuple(_natural_key(x) for x in k)):
        part = cells[key]
        labels = dict(zip(within, key, strict=True))
        grouped = (part.group_by("_w", maintain_order=True)
                   .agg(pl.col("window").first(), pl.col("window_start").first(), pl.col("run_id"),
                        pl.col("_v").drop_nulls().len().alias("n"), pl.col("_v").sum().alias("k"),
                        pl.col("_v").mean().alias("value"), pl.col("_v").std().alias("sd"),
                        pl.col("_v").null_count().alias("n_missing"))
                   .sort("_w"))
        n = grouped["n"].to_numpy().astype(float)
        k = grouped["k"].fill_null(0).to_numpy().astype(float)
        mean = grouped["value"].to_numpy().astype(float)
        sd = grouped["sd"].to_numpy().astype(float)
        if kind == "rate":
            center = p_chart_limits(k[n > 0], n[n > 0])[0]
            _, lcl_all, ucl_all = p_chart_limits(k, n, sigmas=sigmas, center=center)
        else:
            ok = n > 0
            center = float((mean[ok] * n[ok]).sum() / n[ok].sum()) if ok.any() else math.nan
            dof = float((n[n > 1] - 1).sum())
            pooled = math.sqrt(float(np.nansum((n[n > 1] - 1) * sd[n > 1] ** 2)) / dof) if dof > 0 else math.nan
            with np.errstate(divide="ignore", invalid="ignore"):
                half = sigmas * pooled / np.sqrt(n)
            lcl_all, ucl_all = center - half, center + half
        # the change search: measured runs in order
        seq = part.filter(pl.col("_v").is_not_null())
        x = seq["_v"].to_numpy()
        splits = None
        if by_factor:
            windows = seq["_w"].to_numpy()
            splits = np.flatnonzero(np.diff(windows) != 0) + 1
        cps = change_points(x, kind=kind, alpha=1.0 - 1e-12, min_size=min_size, max_changes=1, splits=splits,
                            n_perm=n_perm, seed=seed) if x.size >= 2 * min_size else []
        change_windows: set[int] = set()
        if cps:
            first_p.append((len(found), cps[0].p_value))
            found.append({"_cell": key, "_labels": labels, "_seq": seq, "_x": x, "_splits": splits, "cp": cps[0]})
        for i, r in enumerate(grouped.iter_rows(named=True)):
            ni, ki = int(r["n"]), int(r["k"] or 0)
            lo, hi = _interval(kind, ki, ni, float(r["value"]) if r["value"] is not None else math.nan,
                               float(r["sd"]) if r["sd"] is not None else math.nan, level)
            v = r["value"]
            out = bool(ni > 0 and v is not None and math.isfinite(lcl_all[i]) and (v < lcl_all[i] - 1e-12 or v > ucl_all[i] + 1e-12))
            rows.append({**labels, "window": r["window"], "window_start": r["window_start"], "order": i, "n": ni,
                         "k": ki if kind == "rate" else None, "value": v, "lo": lo, "hi": hi,
                         "center": center, "lcl": float(lcl_all[i]) if ni else None,
                         "ucl": float(ucl_all[i]) if ni else None, "out_of_control": out,
                         "change": i in change_windows, "n_missing": int(r["n_missing"]), "run_ids": r["run_id"],
                         "_w": r["_w"]})
    # Holm across cells on each cell's strongest change; accepted cells are searched further
    adjusted = holm([p for _, p in first_p], alpha=alpha).adjusted if first_p else np.array([])
    changes: list[dict[str, Any]] = []
    for (idx, _p), p_adj in zip(first_p, adjusted, strict=True):
        if p_adj > alpha:
            continue
        f = found[idx]
        more = change_points(f["_x"], kind=kind, alpha=alpha, min_size=min_size, max_changes=max_changes,
                             splits=f["_splits"], n_perm=n_perm, seed=seed)
        first = f["cp"]
        cps = [first, *[c for c in more if c.index != first.index]][: max(max_changes, 1)]
        seq = f["_seq"]
        for c in sorted(cps, key=lambda c: c.index):
            run = seq.row(c.index, named=True)
            wlabel = run["window"]
            changes.append({**f["_labels"], "window": wlabel, "run_id": run["run_id"],
                            "start": run["start_ns"], "before": c.before, "after": c.after,
                            "n_before": c.n_before, "n_after": c.n_after, "p_value": c.p_value,
                            "p_adjusted": float(p_adj) if c is first else c.p_value, "method": c.method,
                            "_w": run["_w"]})
    marks = {(tuple(ch[w] for w in within), ch["_w"]) for ch in changes}
    for r in rows:
        r["change"] = (tuple(r[w] for w in within), r["_w"]) in marks
        del r["_w"]
    for ch in changes:
        del ch["_w"]
    table = pl.DataFrame(rows, schema={**{w: cat.schema[w] for w in within}, "window": pl.String,
                                       "window_start": pl.Datetime("ns", "UTC"), "order": pl.Int64, "n": pl.Int64,
                                       "k": pl.Int64, "value": pl.Float64, "lo": pl.Float64, "hi": pl.Float64,
                                       "center": pl.Float64, "lcl": pl.Float64, "ucl": pl.Float64,
                                       "out_of_control": pl.Boolean, "change": pl.Boolean, "n_missing": pl.Int64,
                                       "run_ids": pl.List(pl.String)})
    if table["n"].sum() == 0:
        msg = f"no run has a value of {name!r}: compute it first (`workbench metrics`)"
        raise ConfigError(msg)
    changes_df = pl.DataFrame(changes, schema={**{w: cat.schema[w] for w in within}, "window": pl.String,
                                               "run_id": pl.String, "start": pl.Int64, "before": pl.Float64,
                                               "after": pl.Float64, "n_before": pl.Int64, "n_after": pl.Int64,
                                               "p_value": pl.Float64, "p_adjusted": pl.Float64, "method": pl.String})
    changes_df = changes_df.with_columns(pl.from_epoch("start", time_unit="ns").dt.replace_time_zone("UTC").alias("start"))
    return TrendResult(metric=name, kind=kind, unit=unit, over=window, within=within, table=table, changes=changes_df,
                       level=level, alpha=alpha, excluded=excluded)
