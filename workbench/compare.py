"""Compare variants with honest statistics: per-cell effects, attribution, reproducibility.

:func:`compare` answers "did the candidate get better than the baseline, where, and by
how much?" for every *cell* (a combination of the ``within`` factors) and metric:

* rates (``success``): Wilson 95 % intervals per side, Newcombe's hybrid-score
  interval for the difference, Fisher's exact test (McNemar's exact test on the
  discordant pairs when runs are paired by seed), effect size = risk difference;
* continuous metrics: bootstrap percentile intervals of the mean per side and of the
  difference (paired bootstrap when paired), Mann–Whitney U test (Wilcoxon
  signed-rank when paired), effect size = Cliff's delta;
* p-values adjusted with Holm's method over every test of the comparison;
* verdict: ``improvement``/``regression`` when the adjusted p-value is below *alpha*
  and the interval of the difference excludes 0 (direction from the metric);
  ``no_change`` when the interval lies inside ±*margin*; otherwise ``inconclusive``.
  Metrics with no better direction get ``changed`` instead of improvement/regression.
  A cell where either side has no measured value (n = 0, e.g. ``success`` when no run
  has an outcome) is ``not measured``: there is nothing to test, so it is neither
  inconclusive nor part of the Holm family;
* the gate: a regression with confidence fails it; when no cell is measured the
  comparison says so (``status`` ``"not measured"``, with how many runs lack the
  value) instead of passing.

Each row lists the run ids of both sides and the time windows behind the number.

Examples
--------
>>> import polars as pl
>>> cat = pl.DataFrame({
...     "run_id": [f"r{i}" for i in range(40)],
...     "model.version": ["v1"] * 20 + ["v2"] * 20,
...     "metrics.success": [1.0] * 18 + [0.0] * 2 + [1.0] * 6 + [0.0] * 14,
... })
>>> res = compare(cat, by="model.version", baseline="v1", candidate="v2", metrics=["success"])
>>> res.table.select("metric", "verdict").row(0)
('success', 'regression')
>>> res.passed
False
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import FACTOR_GROUPS, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = [
    "DEFAULT_METRICS",
    "NOT_MEASURED",
    "VERDICTS",
    "CompareResult",
    "compare",
    "compared_ids",
    "ensure_measured",
    "wilson_interval",
    "newcombe_interval",
    "bootstrap_mean",
    "cliffs_delta",
    "holm",
    "attribution",
    "reproducibility",
]

DEFAULT_METRICS: tuple[str, ...] = ("success", "time_to_success")
"""The primary behavior metrics compared when none are named: task completion and its
speed. Every metric added to a comparison enlarges the Holm family and so lowers the
power for the others: name secondary metrics explicitly when they are the question."""
NOT_MEASURED = "not measured"
"""Verdict of a cell where either side has no measured value (n = 0)."""
VERDICTS = ("improvement", "regression", "no_change", "inconclusive", "changed", NOT_MEASURED)
OUTCOME_METRICS = frozenset({"success", "time_to_success"})
"""Metrics computed from a run's outcome (its success/failure event)."""
OUTCOME_HINT = ("define one with an outcome: rule in workbench.yaml, `workbench events apply --rules FILE`, "
                "or `workbench label RUN --outcome success|failure`")
"""How to give runs an outcome, for messages about outcome metrics that are not measured."""
_GRADE_ORDER = "ABCDF"
_Z95 = 1.959963984540054


# --------------------------------------------------------------------------- statistics


def wilson_interval(k: int, n: int, *, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion *k*/*n* (NaN for n = 0).

    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, *, z: float = _Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p2 − p1 (method 10, from Wilson intervals)."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z=z)
    l2, u2 = wilson_interval(k2, n2, z=z)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (max(-1.0, lo), min(1.0, hi))


def bootstrap_mean(x: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """*n_boot* bootstrap replicates of the mean of *x*."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.full(n_boot, np.nan)
    idx = rng.integers(0, x.size, size=(n_boot, x.size), dtype=np.int32 if x.size < 2**31 else np.int64)
    return np.take(x, idx).mean(axis=1)


def cliffs_delta(x: np.ndarray, y: np.ndarray) -> float:
    """Cliff's delta P(y > x) − P(y < x) of candidate *y* against baseline *x*.

    >>> cliffs_delta(np.array([1, 2]), np.array([3, 4]))
    1.0
    """
    x = np.sort(np.asarray(x, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return math.nan
    greater = np.searchsorted(x, y, side="left").sum()  # x values below each y
    less = (x.size - np.searchsorted(x, y, side="right")).sum()
    return float((greater - less) / (x.size * y.size))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    arr = np.asarray(p, dtype=np.float64)
    out = np.full(arr.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(arr))
    if ok.size == 0:
        return out
    order = ok[np.argsort(arr[ok], kind="stable")]
    m = order.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * arr[i]))
        out[i] = running
    return out


def _fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)


def _mcnemar(b_only: int, c_only: int) -> float:
    from scipy.stats import binomtest

    n = b_only + c_only
    return 1.0 if n == 0 else float(binomtest(c_only, n, 0.5).pvalue)


def _mannwhitney(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    if x.size == 0 or y.size == 0:
        return math.nan
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def _wilcoxon(d: np.ndarray) -> float:
    if d.size == 0:
        return math.nan
    if np.all(d == 0):
        return 1.0
    if d.size <= 50 or not np.all(np.isfinite(d)):
        from scipy.stats import wilcoxon

        return float(wilcoxon(d, zero_method="zsplit").pvalue)
    # Above 50 pairs scipy's wilcoxon(zero_method="zsplit") is the normal approximation
    # with the tie correction and no continuity correction: the same arithmetic here,
    # without its per-call overhead (the rank sums are exact: multiples of ½).
    from scipy.special import ndtr

    n = d.size
    a = np.abs(d)
    s = np.sort(a)
    first = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    t = np.diff(np.append(first, n)).astype(np.float64)  # size of each tie group
    rank = (first + (t + 1) / 2)[np.searchsorted(s[first], a)]  # average ranks
    r_plus = float(rank[d > 0].sum() + rank[d == 0].sum() / 2)
    mean = n * (n + 1.0) * 0.25
    se = math.sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - float(np.sum(t**3 - t)) / 2) / 24)
    return float(2 * ndtr(-abs((r_plus - mean) / se)))


# --------------------------------------------------------------------------- result


@dataclass
class CompareResult:
    """What :func:`compare` found.

    Attributes
    ----------
    table
        One row per cell and metric (see the module doc for the columns).
    attribution
        Share of each metric's variation explained by each factor and interaction.
    reproducibility
        Spread between runs of identical configuration, per metric.
    by, baseline, candidate, within, alpha
        The question asked.
    excluded
        Runs left out (below ``min_grade`` or without the compared factor values).
    n_runs
        Runs compared (baseline and candidate sides).
    missing
        Per compared metric, how many of those runs have no value (null).
    """

    table: pl.DataFrame
    attribution: pl.DataFrame
    reproducibility: pl.DataFrame
    by: str
    baseline: Any
    candidate: Any
    within: list[str]
    alpha: float
    excluded: list[str] = field(default_factory=list)
    n_runs: int = 0
    missing: dict[str, int] = field(default_factory=dict)

    @property
    def regressions(self) -> pl.DataFrame:
        """Rows whose verdict is ``regression``."""
        import polars as pl

        return self.table.filter(pl.col("verdict") == "regression")

    @property
    def not_measured(self) -> pl.DataFrame:
        """Rows whose verdict is ``not measured`` (a side without any value)."""
        import polars as pl

        return self.table.filter(pl.col("verdict") == NOT_MEASURED)

    @property
    def n_measured(self) -> int:
        """Number of cells (rows of :attr:`table`) measured on both sides."""
        return self.table.height - self.not_measured.height

    @property
    def passed(self) -> bool:
        """True when no cell regresses with confidence (the CI gate).

        True as well when nothing was measured: check :attr:`status` (or
        :attr:`n_measured`) before reading a pass as good news.
        """
        return self.regressions.height == 0

    @property
    def status(self) -> str:
        """The gate's answer in one word.

        ``"regression"`` (a cell regresses with confidence), ``"not measured"`` (no cell
        is measured on both sides), ``"undecided"`` (no regression, but a measured cell
        is ``inconclusive``) or ``"pass"``.
        """
        import polars as pl

        if self.regressions.height:
            return "regression"
        if self.n_measured == 0:
            return NOT_MEASURED
        if self.table.filter(pl.col("verdict") == "inconclusive").height:
            return "undecided"
        return "pass"

    def missing_text(self) -> str:
        """What the ``not measured`` cells lack, as one line (empty when every cell is measured).

        Examples
        --------
        >>> import polars as pl
        >>> cat = pl.DataFrame({"run_id": ["a", "b", "c", "d"], "model.version": ["v1", "v1", "v2", "v2"],
        ...                     "metrics.success": pl.Series([None] * 4, dtype=pl.Float64)})
        >>> res = compare(cat, metrics=["success"])
        >>> res.status, res.missing_text()[:61]
        ('not measured', '4 of 4 runs have no outcome (metrics.success is null); define')
        """
        metrics = list(dict.fromkeys(self.not_measured["metric"].to_list()))
        if not metrics:
            return ""
        parts = []
        for m in metrics:
            k = self.missing.get(m, 0)
            if k == 0:
                cells = self.not_measured.filter(self.not_measured["metric"] == m).height
                parts.append(f"{cells} cell(s) have no baseline or no candidate runs for {m}")
            elif m == "success":
                parts.append(f"{k} of {self.n_runs} runs have no outcome (metrics.success is null)")
            elif m == "time_to_success":
                if "success" not in metrics:
                    parts.append(f"{k} of {self.n_runs} runs have no metrics.time_to_success (only a run that succeeds has one)")
            else:
                parts.append(f"{k} of {self.n_runs} runs have no metrics.{m}")
        hints = [OUTCOME_HINT] if any(m in OUTCOME_METRICS for m in metrics) else []
        owners = _metric_owners(m for m in metrics if m not in OUTCOME_METRICS)
        if owners:
            hints.append(f"`workbench metrics --metric {' --metric '.join(owners)} --format json` shows each run's value and error")
        return "; ".join([", ".join(parts), *hints])

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``workbench compare --format json``."""
        cells = []
        for r in self.table.iter_rows(named=True):
            cells.append(
                {
                    "factors": {k: r[k] for k in self.within},
                    "metric": r["metric"],
                    "kind": r["kind"],
                    "paired": r["paired"],
                    "baseline": {"n": r["n_baseline"], "value": _num(r["baseline"]), "ci": [_num(r["baseline_lo"]), _num(r["baseline_hi"])]},
                    "candidate": {"n": r["n_candidate"], "value": _num(r["candidate"]), "ci": [_num(r["candidate_lo"]), _num(r["candidate_hi"])]},
                    "difference": {"value": _num(r["difference"]), "ci": [_num(r["difference_lo"]), _num(r["difference_hi"])]},
                    "test": r["test"],
                    "p_value": _num(r["p_value"]),
                    "p_adjusted": _num(r["p_adjusted"]),
                    "effect_size": {"name": r["effect_name"], "value": _num(r["effect_size"])},
                    "verdict": r["verdict"],
                    "runs": {"baseline": r["runs_baseline"], "candidate": r["runs_candidate"]},
                    "windows": r["windows"],
                }
            )
        return {
            "by": self.by,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "within": self.within,
            "alpha": self.alpha,
            "passed": self.passed,
            "status": self.status,
            "measured": self.n_measured,
            "not_measured": self.not_measured.height,
            "n_runs": self.n_runs,
            "missing": dict(self.missing),
            "cells": cells,
            "attribution": [{k: _num(v) if isinstance(v, float) else v for k, v in r.items()} for r in self.attribution.iter_rows(named=True)],
            "reproducibility": [{k: _num(v) if isinstance(v, float) else v for k, v in r.items()} for r in self.reproducibility.iter_rows(named=True)],
            "excluded": self.excluded,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------- compare


def _catalog(source: Store | pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    if isinstance(source, pl.DataFrame):
        return source
    if hasattr(source, "runs"):
        return source.runs()
    msg = f"compare needs a Store or a catalog DataFrame, got {type(source).__name__}"
    raise ConfigError(msg)


def _metric_column(cat: pl.DataFrame, name: str) -> str:
    for col in (f"metrics.{name}", name):
        if col in cat.columns:
            return col
    have = sorted(c.removeprefix("metrics.") for c in cat.columns if c.startswith("metrics.") and not c.endswith(".error"))
    if _metric_owners([name]):
        hint = f"compute it with wb.metrics.compute(store, [{_metric_owners([name])[0]!r}]) or pass the store"
    else:
        from workbench.metrics import columns

        hint = f"no installed metric computes it; installed metric columns: {', '.join(sorted(columns()))}"
    msg = f"no metric {name!r} in the catalog ({hint}); in the catalog: {', '.join(have) or 'none'}"
    raise ConfigError(msg)


def _metric_owners(names: Iterable[str]) -> list[str]:
    """The installed metrics (plugin names) that compute the columns *names*."""
    from workbench.metrics import metrics

    owner = {c.name: m.name for m in metrics().values() for c in m.columns}
    return list(dict.fromkeys(owner[n] for n in names if n in owner))


def _metric_info(name: str) -> tuple[str, bool | None, str]:
    from workbench.metrics import columns

    cols = columns()
    if name in cols:
        c = cols[name]
        return c.kind, c.higher_is_better, c.unit
    return "continuous", None, ""


def _pair_keys(sub: pl.DataFrame, by: str, within: Sequence[str], b_rows: pl.DataFrame, c_rows: pl.DataFrame) -> list[str]:
    """Factor columns that identify the same scenario on both sides."""
    if "scenario.seed" not in sub.columns:
        return []
    keys = ["scenario.seed"]
    for col in sub.columns:
        if col in keys or col == by or col in within or col.split(".", 1)[0] not in FACTOR_GROUPS:
            continue
        vb = set(b_rows[col].drop_nulls().to_list())
        vc = set(c_rows[col].drop_nulls().to_list())
        if vb and vb == vc and len(vb) > 1:
            keys.append(col)
    return keys


def _key_codes(frame: pl.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """One integer per row for its combination of *keys*; −1 where a key is null."""
    import polars as pl

    code = np.zeros(frame.height, dtype=np.int64)
    valid = np.ones(frame.height, dtype=bool)
    for k in keys:
        rank = frame[k].rank("dense")
        valid &= rank.is_not_null().to_numpy()
        r = rank.fill_null(0).cast(pl.Int64).to_numpy()
        code = code * (int(r.max(initial=0)) + 1) + r
        _, code = np.unique(code, return_inverse=True)  # stays dense: no overflow
    return np.where(valid, code.reshape(-1), -1)


def _pair_index(kb: np.ndarray, kc: np.ndarray, mb: np.ndarray, mc: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of the baseline and candidate runs paired by their key codes *kb*, *kc*
    among those with a value (*mb*, *mc*); None when a key repeats on a side or fewer
    than 80 % of the runs (or fewer than 3) find a partner."""
    ib = np.flatnonzero(mb & (kb >= 0))
    ic = np.flatnonzero(mc & (kc >= 0))
    cb, cc = kb[ib], kc[ic]
    if np.unique(cb).size < cb.size or np.unique(cc).size < cc.size:
        return None
    common, pb, pc = np.intersect1d(cb, cc, assume_unique=True, return_indices=True)
    if common.size < 0.8 * max(ib.size, ic.size) or common.size < 3:
        return None
    return ib[pb], ic[pc]


def _window_frame(rows: pl.DataFrame, outcome: bool) -> pl.DataFrame:
    """Per run, the time window behind the number: start → outcome event for outcome
    metrics (*outcome*), the whole run otherwise."""
    import polars as pl

    end = pl.col("end_ns") if "end_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    if outcome and "outcome_ns" in rows.columns:
        end = pl.coalesce(pl.col("outcome_ns"), end)
    start = pl.col("start_ns") if "start_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    return rows.select(pl.col("run_id").cast(pl.String), start.cast(pl.Int64).alias("start_ns"), end.cast(pl.Int64).alias("end_ns"))


def _boot_means(arrays: Sequence[np.ndarray], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the mean of each array, as columns of an (n_boot, k) matrix.

    Arrays of the same size share one set of resample indices (each metric's replicates
    are still an ordinary bootstrap of its own mean; separate calls draw independently,
    so the two sides of a comparison stay independent). The mean of a resample is its
    count vector times the values, so every further metric costs one matrix product.
    """
    out = np.full((n_boot, len(arrays)), np.nan)
    by_size: dict[int, list[int]] = {}
    for j, a in enumerate(arrays):
        if a.size:
            by_size.setdefault(a.size, []).append(j)
    for n, js in by_size.items():
        mat = np.column_stack([arrays[j] for j in js])
        finite = np.isfinite(mat).all(axis=0)
        cols = np.asarray(js)
        step = max(1, (1 << 16) // n)  # blocks of replicates small enough to stay in cache
        for r0 in range(0, n_boot, step):
            r1 = min(n_boot, r0 + step)
            idx = rng.integers(0, n, size=(r1 - r0, n), dtype=np.int64)
            for k in np.flatnonzero(~finite):  # inf/NaN: the mean of the drawn values, as is
                out[r0:r1, cols[k]] = np.take(mat[:, k], idx).mean(axis=1)
            if finite.any():
                idx += np.arange(0, (r1 - r0) * n, n, dtype=np.int64)[:, None]  # row r counts into [r·n, (r+1)·n)
                counts = np.bincount(idx.ravel(), minlength=(r1 - r0) * n).reshape(r1 - r0, n)
                out[r0:r1, cols[finite]] = counts @ mat[:, finite] / n
    return out


def compare(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    min_grade: str | None = None,
    alpha: float = 0.05,
    margin: float | Mapping[str, float] = 0.1,
    paired: bool | str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    attribution_factors: Sequence[str] | None = None,
) -> CompareResult:
    """Compare *candidate* against *baseline* (two values of *by*) per cell and metric.

    Parameters
    ----------
    source
        A store or a catalog DataFrame. With a store, the compared metrics (and the
        grades, with *min_grade*) that runs lack are computed first
        (:func:`ensure_measured`) and kept in its catalog.
    by
        The factor whose two values are compared (e.g. ``model.version``).
    baseline, candidate
        The two values; when omitted and *by* has exactly two values, the sorted
        first is the baseline.
    within
        Factors defining cells (e.g. ``["hardware.robot", "environment.lighting"]``);
        default: one cell with every run.
    metrics
        Metric columns to compare (default: those of :data:`DEFAULT_METRICS` present).
    min_grade
        Leave out runs graded below this (``"B"`` keeps A and B); needs ``quality.grade``.
    alpha
        Family-wise error rate (Holm).
    margin
        Equivalence margin for ``no_change``: a fraction of the baseline mean for
        continuous metrics, absolute for rates; or a mapping metric → margin.
    paired
        ``"auto"`` pairs runs by ``scenario.seed`` (and other shared factors) when
        at least 80 % of runs find a partner; ``False`` never pairs.
    n_boot
        Bootstrap replicates.
    seed
        Seed of the bootstrap (results are reproducible).
    """
    import polars as pl

    if not isinstance(source, pl.DataFrame) and hasattr(source, "runs"):
        ensure_measured(source, run_ids=compared_ids(source.runs(), by, baseline, candidate),
                        metrics=list(metrics) if metrics is not None else list(DEFAULT_METRICS),
                        grades=min_grade is not None)
    cat = _catalog(source)
    within = list(within or [])
    for col in [by, *within]:
        if col not in cat.columns:
            factors = [c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
            msg = f"no factor column {col!r}; factors: {', '.join(factors)}"
            raise ConfigError(msg)
    excluded: list[str] = []
    if min_grade is not None:
        if min_grade not in _GRADE_ORDER:
            msg = f"min_grade {min_grade!r} is not valid; use one of {list(_GRADE_ORDER)}"
            raise ConfigError(msg)
        if "quality.grade" not in cat.columns:
            msg = "min_grade needs data grades: run `workbench grade` (wb.quality.grade_store) first"
            raise ConfigError(msg)
        allowed = list(_GRADE_ORDER[: _GRADE_ORDER.index(min_grade) + 1])
        keep = pl.col("quality.grade").is_in(allowed)
        excluded = cat.filter(~keep)["run_id"].to_list()
        cat = cat.filter(keep)
    values = cat[by].drop_nulls().unique().sort().to_list()
    if baseline is None or candidate is None:
        rest = [v for v in values if str(v) not in {str(baseline), str(candidate)}]
        if len(values) != 2 or len(rest) < (baseline is None) + (candidate is None):
            msg = f"{by} has values {values}: name the baseline and the candidate"
            raise ConfigError(msg)
        if baseline is None:
            baseline = rest.pop(0)
        if candidate is None:
            candidate = rest.pop(0)
    for name, v in (("baseline", baseline), ("candidate", candidate)):
        if str(v) not in {str(x) for x in values}:
            msg = f"{name} {v!r} is not a value of {by}; values: {values}"
            raise ConfigError(msg)
    b_val = next(x for x in values if str(x) == str(baseline))
    c_val = next(x for x in values if str(x) == str(candidate))
    sides = cat.filter(pl.col(by).is_in([b_val, c_val]))
    excluded += cat.filter(~pl.col(by).is_in([b_val, c_val]) | pl.col(by).is_null())["run_id"].to_list()
    if metrics is None:
        names = [m for m in DEFAULT_METRICS if f"metrics.{m}" in cat.columns or m in cat.columns]
        if not names:
            msg = "no metrics in the catalog: compute them first (wb.metrics.compute(store) / `workbench metrics`)"
            raise ConfigError(msg)
    else:
        names = list(metrics)
    mcols = {m: _metric_column(cat, m) for m in names}
    rng = np.random.default_rng(seed)
    infos = {m: _metric_info(m) for m in names}
    missing = {m: int(sides[mcols[m]].null_count()) for m in names if infos[m][0] != "category"}
    margins = {m: margin.get(m, 0.1) if isinstance(margin, Mapping) else margin for m in names}
    rows: list[dict[str, Any]] = []
    cells = sides.partition_by(within, as_dict=True, maintain_order=True) if within else {(): sides}
    for key in sorted(cells, key=lambda k: tuple(str(x) for x in k)):
        cell_rows = _cell_rows(cells[key], by=by, b_val=b_val, c_val=c_val, within=within, paired=bool(paired),
                               names=names, mcols=mcols, infos=infos, margins=margins, rng=rng, n_boot=n_boot)
        for row in cell_rows:
            row.update({k: v for k, v in zip(within, key, strict=True)})
        rows += cell_rows
    adjusted = holm([r["p_value"] for r in rows])
    for r, pa in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = float(pa)
        r["verdict"] = _verdict(r, alpha)
    table = _table(rows, within)
    factors = list(attribution_factors) if attribution_factors is not None else _attribution_factors(sides, by, within)
    attr = attribution(sides, factors=factors, metrics={m: mcols[m] for m in names})
    repro = reproducibility(sides, metrics={m: mcols[m] for m in names})
    return CompareResult(table, attr, repro, by, b_val, c_val, within, alpha, excluded, sides.height, missing)


def compared_ids(cat: pl.DataFrame, by: str, baseline: Any = None, candidate: Any = None) -> list[str]:
    """Ids of the runs of *cat* a comparison of *baseline* and *candidate* reads: those
    whose *by* is one of the two (every run with a *by* value when either is omitted;
    none when *cat* has no column *by*)."""
    import polars as pl

    if by not in cat.columns:
        return []
    values = cat[by].cast(pl.String)
    keep = values.is_not_null()
    if baseline is not None and candidate is not None:
        keep &= values.is_in([str(baseline), str(candidate)])
    return cat.filter(keep)["run_id"].to_list()


def ensure_measured(
    store: Store,
    *,
    run_ids: Iterable[str] | None = None,
    metrics: Sequence[str] | None = DEFAULT_METRICS,
    grades: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict[str, list[str]]:
    """Compute what a comparison reads and runs of *store* lack, then keep it in the catalog.

    Metrics go through :func:`workbench.metrics.compute_missing` (only the runs that
    lack them), grades through :func:`workbench.quality.grade_missing` (only the
    runs without a grade).

    Parameters
    ----------
    store
        The store.
    run_ids
        Only these runs (default: every run of the store).
    metrics
        Metric names or columns (default: :data:`DEFAULT_METRICS`; ``None``: every
        installed metric).
    grades
        Also grade runs that have no data grade.
    scheduler, progress
        Where per-run work runs and whether a progress bar shows (see
        :func:`workbench.metrics.compute`).

    Returns
    -------
    dict
        What was computed now: ``"quality.grade"`` and metric names → run ids.

    Examples
    --------
    >>> import workbench as wb
    >>> store = wb.open_store("workbench-store")          # doctest: +SKIP
    >>> ensure_measured(store, metrics=["success"], grades=True)  # doctest: +SKIP
    {'quality.grade': ['0a1b…', …], 'success': ['0a1b…', …]}
    """
    from workbench.metrics import compute_missing

    ids = list(run_ids) if run_ids is not None else None
    done: dict[str, list[str]] = {}
    if grades:
        from workbench.quality import grade_missing

        graded = grade_missing(store, run_ids=ids, scheduler=scheduler, progress=progress)
        if graded:
            done["quality.grade"] = graded
    if ids is None or ids:
        done.update(compute_missing(store, metrics, run_ids=ids, scheduler=scheduler, progress=progress))
    return done


def _cell_rows(
    sub: pl.DataFrame,
    *,
    by: str,
    b_val: Any,
    c_val: Any,
    within: Sequence[str],
    paired: bool,
    names: Sequence[str],
    mcols: Mapping[str, str],
    infos: Mapping[str, tuple[str, bool | None, str]],
    margins: Mapping[str, float],
    rng: np.random.Generator,
    n_boot: int,
) -> list[dict[str, Any]]:
    """Every metric of one cell: the rows are split and paired once, the metric columns
    read once, and the bootstrap of all continuous metrics drawn together."""
    import polars as pl

    bi = np.flatnonzero((sub[by] == b_val).fill_null(False).to_numpy())
    ci = np.flatnonzero((sub[by] == c_val).fill_null(False).to_numpy())
    pair_keys = _pair_keys(sub, by, within, sub[bi], sub[ci]) if paired else []
    codes = _key_codes(sub, pair_keys) if pair_keys else None
    ids = sub["run_id"].cast(pl.String)
    frames: dict[bool, pl.DataFrame] = {}
    items = []
    for m in names:
        kind, better, unit = infos[m]
        if kind == "category":
            continue
        s = sub[mcols[m]]
        ok = s.is_not_null().to_numpy()
        v = s.cast(pl.Float64).to_numpy()
        vb, vc, mb, mc = v[bi], v[ci], ok[bi], ok[ci]
        pairs = None
        if codes is not None:
            pi = _pair_index(codes[bi], codes[ci], mb, mc)
            if pi is not None:
                pairs = (vb[pi[0]], vc[pi[1]])
        outcome = m in {"success", "time_to_success"}
        if outcome not in frames:
            frames[outcome] = _window_frame(sub, outcome)
        rb, rc = bi[mb], ci[mc]
        items.append({
            "metric": m, "kind": kind, "unit": unit, "higher_is_better": better,
            "x": vb[mb], "y": vc[mc], "pairs": pairs, "margin": margins[m], "ci": {},
            "runs_baseline": ids.gather(rb).implode(),
            "runs_candidate": ids.gather(rc).implode(),
            "windows": frames[outcome][np.concatenate([rb, rc])].select(pl.struct(pl.all()).implode()).to_series(),
        })
    cont = [it for it in items if it["kind"] != "rate"]
    if cont:
        a = 2.5  # percent in each tail of the 95 % percentile interval
        reps_b = _boot_means([it["x"] for it in cont], rng, n_boot)
        reps_c = _boot_means([it["y"] for it in cont], rng, n_boot)
        diff = reps_c - reps_b
        paired_at = [j for j, it in enumerate(cont) if it["pairs"] is not None]
        if paired_at:
            diff[:, paired_at] = _boot_means([cont[j]["pairs"][1] - cont[j]["pairs"][0] for j in paired_at], rng, n_boot)
        q = [a, 100 - a]
        for name, reps in (("baseline", reps_b), ("candidate", reps_c), ("difference", diff)):
            lo, hi = np.percentile(reps, q, axis=0) if n_boot > 0 else np.full((2, len(cont)), np.nan)
            for it, lv, hv in zip(cont, lo.tolist(), hi.tolist(), strict=True):
                it["ci"][f"{name}_lo"], it["ci"][f"{name}_hi"] = lv, hv
    rows = []
    for it in items:
        x, y, pairs, mg, ci = (it.pop(k) for k in ("x", "y", "pairs", "margin", "ci"))
        rows.append(_cell(it["kind"], x, y, pairs, mg, ci) | it)
    return rows


def _cell(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None,
    margin: float,
    ci: Mapping[str, float],
) -> dict[str, Any]:
    """Estimates, test and effect size of one cell and metric; *ci* holds the bootstrap
    percentile intervals (``baseline_lo`` … ``difference_hi``) of a continuous metric."""
    out: dict[str, Any] = {"n_baseline": int(x.size), "n_candidate": int(y.size), "paired": pairs is not None, "n_pairs": 0 if pairs is None else int(pairs[0].size)}
    if kind == "rate":
        kx, ky = int(round(x.sum())), int(round(y.sum()))
        bl, bh = wilson_interval(kx, x.size)
        cl, ch = wilson_interval(ky, y.size)
        out.update(baseline=kx / x.size if x.size else math.nan, candidate=ky / y.size if y.size else math.nan,
                   baseline_lo=bl, baseline_hi=bh, candidate_lo=cl, candidate_hi=ch)
        # The interval is Newcombe's for two proportions even when runs are paired: a
        # bootstrap of paired 0/1 differences collapses to [0, 0] when all pairs agree,
        # which would claim a certainty that 20 pairs cannot give.
        diff = (out["candidate"] - out["baseline"]) if x.size and y.size else math.nan
        lo, hi = newcombe_interval(kx, x.size, ky, y.size)
        if pairs is not None:
            pb, pc = pairs
            b_only = int(np.sum((pb == 1) & (pc == 0)))
            c_only = int(np.sum((pb == 0) & (pc == 1)))
            p = _mcnemar(b_only, c_only)
            test = "mcnemar_exact"
        else:
            p = _fisher(kx, x.size, ky, y.size) if x.size and y.size else math.nan
            test = "fisher_exact"
        out.update(difference=diff, difference_lo=lo, difference_hi=hi, p_value=p, test=test,
                   effect_name="risk_difference", effect_size=diff, margin_abs=margin)
        return out
    base = float(x.mean()) if x.size else math.nan
    cand = float(y.mean()) if y.size else math.nan
    out.update(baseline=base, candidate=cand, baseline_lo=ci["baseline_lo"], baseline_hi=ci["baseline_hi"],
               candidate_lo=ci["candidate_lo"], candidate_hi=ci["candidate_hi"])
    if pairs is not None:
        d = pairs[1] - pairs[0]
        diff = float(d.mean())
        p = _wilcoxon(d)
        test = "wilcoxon_signed_rank"
    else:
        diff = cand - base
        p = _mannwhitney(x, y)
        test = "mann_whitney_u"
    out.update(difference=diff, difference_lo=ci["difference_lo"], difference_hi=ci["difference_hi"], p_value=p, test=test,
               effect_name="cliffs_delta", effect_size=cliffs_delta(x, y),
               margin_abs=abs(base) * margin if math.isfinite(base) else math.nan)
    return out


def _verdict(r: dict[str, Any], alpha: float) -> str:
    lo, hi, pa = r["difference_lo"], r["difference_hi"], r["p_adjusted"]
    if r["n_baseline"] == 0 or r["n_candidate"] == 0:
        return NOT_MEASURED
    if r["n_baseline"] < 3 or r["n_candidate"] < 3 or not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    significant = math.isfinite(pa) and pa < alpha and (lo > 0 or hi < 0)
    if significant:
        better = r["higher_is_better"]
        if better is None:
            return "changed"
        up = lo > 0
        return "improvement" if up == better else "regression"
    m = r["margin_abs"]
    if math.isfinite(m) and -m <= lo and hi <= m:
        return "no_change"
    return "inconclusive"


def _table(rows: list[dict[str, Any]], within: list[str]) -> pl.DataFrame:
    import polars as pl

    cols = [
        *within, "metric", "kind", "unit", "paired", "n_pairs", "n_baseline", "n_candidate",
        "baseline", "baseline_lo", "baseline_hi", "candidate", "candidate_lo", "candidate_hi",
        "difference", "difference_lo", "difference_hi", "test", "p_value", "p_adjusted",
        "effect_name", "effect_size", "verdict", "higher_is_better", "runs_baseline", "runs_candidate", "windows",
    ]
    if not rows:
        return pl.DataFrame({c: [] for c in cols})
    data = {c: [r.get(c) for r in rows] for c in cols}
    floats = {"baseline", "baseline_lo", "baseline_hi", "candidate", "candidate_lo", "candidate_hi",
              "difference", "difference_lo", "difference_hi", "p_value", "p_adjusted", "effect_size"}
    lists = {"runs_baseline": pl.List(pl.String), "runs_candidate": pl.List(pl.String),
             "windows": pl.List(pl.Struct({"run_id": pl.String, "start_ns": pl.Int64, "end_ns": pl.Int64}))}
    series = []
    for c in cols:
        if c in floats:
            series.append(pl.Series(c, [float(v) if v is not None else None for v in data[c]], dtype=pl.Float64))
        elif c in lists:  # one-row list Series per row, built by _cell_rows
            series.append(pl.concat([v for v in data[c] if v is not None]).cast(lists[c]).alias(c))
        elif c == "higher_is_better":
            series.append(pl.Series(c, data[c], dtype=pl.Boolean))
        else:
            series.append(pl.Series(c, data[c]))
    return pl.DataFrame(series)


# --------------------------------------------------------------------------- attribution


def _attribution_factors(cat: pl.DataFrame, by: str, within: Sequence[str]) -> list[str]:
    cands = [by, *within] + sorted(
        c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS and c not in {by, *within} and c != "scenario.seed"
    )
    chosen: list[str] = []
    partitions: list[np.ndarray] = []
    for c in cands:
        if c not in cat.columns:
            continue
        inv = _codes(cat, [c])[c]
        n_levels = int(inv.max(initial=-1)) + 1
        if n_levels < 2 or n_levels > max(2, cat.height // 3):
            continue
        if any(_same_partition(inv, p) for p in partitions):
            continue  # aliased with a factor already chosen (e.g. checkpoint ≡ version)
        chosen.append(c)
        partitions.append(inv)
    return chosen


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _codes(cat: pl.DataFrame, factors: Sequence[str]) -> dict[str, np.ndarray]:
    """Integer level codes per factor, in the sorted order of the levels as text (a
    missing value is the level "∅")."""
    import polars as pl

    return {f: cat[f].cast(pl.String).fill_null("∅").rank("dense").cast(pl.Int64).to_numpy() - 1 for f in factors}


def _design(codes: Mapping[str, np.ndarray], n: int, terms: list[tuple[str, ...]]) -> np.ndarray:
    cols = [np.ones((n, 1))]
    for term in terms:
        combo = np.zeros(n, dtype=np.int64)
        for f in term:
            combo = combo * (int(codes[f].max()) + 1) + codes[f]
        _, inv = np.unique(combo, return_inverse=True)
        onehot = np.zeros((n, int(inv.max()) + 1))
        onehot[np.arange(n), inv] = 1.0
        cols.append(onehot[:, 1:])  # first level is the reference
    return np.hstack(cols)


class _Groups:
    """Runs grouped by the level combination of some factors: a design built from those
    factors is constant within a group, so a fit needs only each group's count and sums."""

    def __init__(self, codes: Mapping[str, np.ndarray], factors: Sequence[str], y: np.ndarray) -> None:
        combo = np.zeros(y.size, dtype=np.int64)
        for f in factors:
            combo = combo * (int(codes[f].max()) + 1) + codes[f]
            _, combo = np.unique(combo, return_inverse=True)  # stays dense: no overflow
        _, first, inv = np.unique(combo.reshape(-1), return_index=True, return_inverse=True)
        self.codes = {f: codes[f][first] for f in factors}  # one row per group
        self.size = first.size
        self.n = np.bincount(inv, minlength=self.size).astype(np.float64)
        self.k = np.bincount(inv, weights=y, minlength=self.size)  # sum of y
        self.mean = self.k / self.n
        r = y - self.mean[inv]
        self.within = float(r @ r)  # sum of squares inside the groups


def _ols_rss(X: np.ndarray, g: _Groups) -> float:
    """Residual sum of squares of the OLS fit of y on *X* (one row per group of *g*):
    the within-group part plus the weighted fit of the group means."""
    w = np.sqrt(g.n)
    beta, *_ = np.linalg.lstsq(X * w[:, None], g.mean * w, rcond=None)
    r = (g.mean - X @ beta) * w
    return g.within + float(r @ r)


def _logit_deviance(X: np.ndarray, g: _Groups, ridge: float = 1e-4) -> float:
    """Deviance of a (lightly ridge-penalized) logistic regression fitted by IRLS, from
    the binomial counts of the groups (one row of *X* per group of *g*)."""
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        eta = np.clip(X @ beta, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        w = np.clip(mu * (1 - mu), 1e-9, None)
        grad = X.T @ (g.k - g.n * mu) - ridge * beta
        hess = X.T @ (X * (g.n * w)[:, None]) + ridge * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    mu = np.clip(1 / (1 + np.exp(-np.clip(X @ beta, -30, 30))), 1e-12, 1 - 1e-12)
    return float(-2 * np.sum(g.k * np.log(mu) + (g.n - g.k) * np.log(1 - mu)))


def _fitter(codes: Mapping[str, np.ndarray], y: np.ndarray, kind: str) -> Callable[[list[tuple[str, ...]]], float]:
    """``fit(terms)``: the residual sum of squares (deviance for a rate) of *y* on the
    design of *terms*; models over the same factors share their grouping."""
    groups: dict[tuple[str, ...], _Groups] = {}

    def fit(terms: list[tuple[str, ...]]) -> float:
        fs = tuple(dict.fromkeys(f for t in terms for f in t))
        g = groups.get(fs)
        if g is None:
            g = groups[fs] = _Groups(codes, fs, y)
        X = _design(g.codes, g.size, terms)
        return _logit_deviance(X, g) if kind == "rate" else _ols_rss(X, g)

    return fit


def attribution(
    cat: pl.DataFrame,
    *,
    factors: Sequence[str],
    metrics: Mapping[str, str],
    interactions: bool = True,
) -> pl.DataFrame:
    """Share of each metric's variation explained by each factor and 2-way interaction.

    For rate metrics the share is the deviance explained by a logistic model
    (a factor alone against the null model; an interaction given both main effects),
    for continuous metrics the share of the sum of squares (ANOVA-style, OLS).
    Rows are sorted by metric then share, largest first.
    """
    import polars as pl

    rows: list[dict[str, Any]] = []
    all_codes = _codes(cat, [f for f in dict.fromkeys(factors) if f in cat.columns])
    for m, col in metrics.items():
        kind, _, _ = _metric_info(m)
        if kind == "category" or col not in cat.columns:
            continue
        s = cat[col]
        keep = ((s.is_not_null() & s.is_not_nan()) if s.dtype.is_float() else s.is_not_null()).fill_null(False).to_numpy()
        n = int(keep.sum())
        if n < 4:
            continue
        y = s.filter(keep).cast(pl.Float64).to_numpy()
        codes = {f: c[keep] for f, c in all_codes.items()}
        usable = [f for f in factors if f in codes and np.unique(codes[f]).size > 1]
        fit = _fitter(codes, y, kind)
        null = fit([])
        if null <= 1e-12:
            continue
        for f in usable:
            gain = null - fit([(f,)])
            rows.append({"metric": m, "term": f, "order": 1, "share": max(0.0, gain / null), "measure": "deviance" if kind == "rate" else "sum_of_squares"})
        if interactions:
            for f1, f2 in itertools.combinations(usable, 2):
                main = fit([(f1,), (f2,)])
                full = fit([(f1,), (f2,), (f1, f2)])
                rows.append({"metric": m, "term": f"{f1} × {f2}", "order": 2, "share": max(0.0, (main - full) / null), "measure": "deviance" if kind == "rate" else "sum_of_squares"})
    schema = {"metric": pl.String, "term": pl.String, "order": pl.Int64, "share": pl.Float64, "measure": pl.String}
    df = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return df.sort(["metric", "share"], descending=[False, True])


def reproducibility(cat: pl.DataFrame, *, metrics: Mapping[str, str], config: Iterable[str] | None = None) -> pl.DataFrame:
    """Spread between runs of identical configuration (every factor equal but the seed).

    Per metric: number of configurations with ≥ 2 runs, the median within-configuration
    standard deviation, the pooled within-configuration standard deviation, and the
    share of the total variance that lies within configurations (1 = runs of the same
    configuration differ as much as runs of different ones).
    """
    import polars as pl

    cfg = list(config) if config is not None else [
        c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS and c != "scenario.seed" and cat[c].n_unique() > 1
    ]
    schema = {"metric": pl.String, "unit": pl.String, "n_configs": pl.Int64, "median_sd": pl.Float64, "pooled_sd": pl.Float64, "share_within": pl.Float64}
    used: dict[str, tuple[str, str]] = {}
    for m, col in metrics.items():
        kind, _, unit = _metric_info(m)
        if kind != "category" and col in cat.columns:
            used[m] = (col, unit)
    if not used:
        return pl.DataFrame(schema=schema)
    # one pass for every metric: a missing value (null or NaN) does not count
    frame = cat.select([*cfg, *(pl.col(col).cast(pl.Float64).fill_nan(None).alias(f"_y{i}") for i, (col, _) in enumerate(used.values()))])
    aggs = [a for i in range(len(used)) for a in (pl.col(f"_y{i}").std().alias(f"sd{i}"), pl.col(f"_y{i}").var().alias(f"var{i}"), pl.col(f"_y{i}").count().alias(f"n{i}"))]
    groups_all = frame.group_by(cfg).agg(aggs) if cfg else frame.select(aggs)
    rows = []
    for i, (m, (_, unit)) in enumerate(used.items()):
        y = frame[f"_y{i}"]
        if y.count() < 3:
            continue
        groups = groups_all.select(pl.col(f"sd{i}").alias("sd"), pl.col(f"var{i}").alias("var"), pl.col(f"n{i}").alias("n")).filter(pl.col("n") >= 2)
        total = float(y.var() or 0.0)
        if groups.height == 0:
            continue
        pooled_var = float((groups["var"] * (groups["n"] - 1)).sum() / (groups["n"] - 1).sum())
        rows.append({
            "metric": m,
            "unit": unit,
            "n_configs": groups.height,
            "median_sd": float(groups["sd"].median()),
            "pooled_sd": math.sqrt(pooled_var),
            "share_within": pooled_var / total if total > 0 else math.nan,
        })
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
