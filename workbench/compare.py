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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import FACTOR_GROUPS, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = [
    "DEFAULT_METRICS",
    "VERDICTS",
    "CompareResult",
    "compare",
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
VERDICTS = ("improvement", "regression", "no_change", "inconclusive", "changed")
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


def _pct(reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    if np.all(np.isnan(reps)):
        return (math.nan, math.nan)
    a = (1 - level) / 2
    lo, hi = np.percentile(reps, [100 * a, 100 * (1 - a)])
    return (float(lo), float(hi))


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
    from scipy.stats import wilcoxon

    if d.size == 0:
        return math.nan
    if np.all(d == 0):
        return 1.0
    return float(wilcoxon(d, zero_method="zsplit").pvalue)


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

    @property
    def regressions(self) -> pl.DataFrame:
        """Rows whose verdict is ``regression``."""
        import polars as pl

        return self.table.filter(pl.col("verdict") == "regression")

    @property
    def passed(self) -> bool:
        """True when no cell regresses with confidence (the CI gate)."""
        return self.regressions.height == 0

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
    msg = f"no metric {name!r} in the catalog (compute it with wb.metrics.compute); available: {', '.join(have) or 'none'}"
    raise ConfigError(msg)


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


def _pairs(b_rows: pl.DataFrame, c_rows: pl.DataFrame, keys: list[str], col: str) -> tuple[np.ndarray, np.ndarray] | None:
    import polars as pl

    if not keys:
        return None
    b = b_rows.select([*keys, pl.col(col).alias("_b")]).drop_nulls()
    c = c_rows.select([*keys, pl.col(col).alias("_c")]).drop_nulls()
    if b.select(keys).is_duplicated().any() or c.select(keys).is_duplicated().any():
        return None
    j = b.join(c, on=keys, how="inner")
    if j.height < 0.8 * max(b.height, c.height) or j.height < 3:
        return None
    return j["_b"].to_numpy().astype(np.float64), j["_c"].to_numpy().astype(np.float64)


def _windows(rows: pl.DataFrame, metric: str) -> list[dict[str, Any]]:
    """Per run, the time window behind the number: start → outcome event for outcome
    metrics, the whole run otherwise."""
    import polars as pl

    end = pl.col("end_ns") if "end_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    if metric in {"success", "time_to_success"} and "outcome_ns" in rows.columns:
        end = pl.coalesce(pl.col("outcome_ns"), end)
    start = pl.col("start_ns") if "start_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    return rows.select(pl.col("run_id"), start.alias("start_ns"), end.alias("end_ns")).to_dicts()


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
        A store (its catalog with metrics computed) or a catalog DataFrame.
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
    rows: list[dict[str, Any]] = []
    cells = sides.partition_by(within, as_dict=True, maintain_order=True) if within else {(): sides}
    for key in sorted(cells, key=lambda k: tuple(str(x) for x in k)):
        sub = cells[key]
        b_rows = sub.filter(pl.col(by) == b_val)
        c_rows = sub.filter(pl.col(by) == c_val)
        pair_keys = _pair_keys(sub, by, within, b_rows, c_rows) if paired else []
        for m in names:
            col = mcols[m]
            kind, better, unit = _metric_info(m)
            if kind == "category":
                continue
            bx = b_rows.filter(pl.col(col).is_not_null())
            cx = c_rows.filter(pl.col(col).is_not_null())
            x = bx[col].cast(pl.Float64).to_numpy()
            y = cx[col].cast(pl.Float64).to_numpy()
            pairs = _pairs(b_rows, c_rows, pair_keys, col) if paired else None
            mg = margin.get(m, 0.1) if isinstance(margin, Mapping) else margin
            row = _cell(kind, x, y, pairs, mg, rng, n_boot)
            row.update({k: v for k, v in zip(within, key, strict=True)})
            row.update(
                {
                    "metric": m,
                    "kind": kind,
                    "unit": unit,
                    "higher_is_better": better,
                    "runs_baseline": bx["run_id"].to_list(),
                    "runs_candidate": cx["run_id"].to_list(),
                    "windows": _windows(pl.concat([bx, cx], how="diagonal_relaxed"), m),
                }
            )
            rows.append(row)
    adjusted = holm([r["p_value"] for r in rows])
    for r, pa in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = float(pa)
        r["verdict"] = _verdict(r, alpha)
    table = _table(rows, within)
    factors = list(attribution_factors) if attribution_factors is not None else _attribution_factors(sides, by, within)
    attr = attribution(sides, factors=factors, metrics={m: mcols[m] for m in names})
    repro = reproducibility(sides, metrics={m: mcols[m] for m in names})
    return CompareResult(table, attr, repro, by, b_val, c_val, within, alpha, excluded)


def _cell(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None,
    margin: float,
    rng: np.random.Generator,
    n_boot: int,
) -> dict[str, Any]:
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
    rb = bootstrap_mean(x, n_boot=n_boot, rng=rng)
    rc = bootstrap_mean(y, n_boot=n_boot, rng=rng)
    bl, bh = _pct(rb)
    cl, ch = _pct(rc)
    base = float(x.mean()) if x.size else math.nan
    cand = float(y.mean()) if y.size else math.nan
    out.update(baseline=base, candidate=cand, baseline_lo=bl, baseline_hi=bh, candidate_lo=cl, candidate_hi=ch)
    if pairs is not None:
        d = pairs[1] - pairs[0]
        lo, hi = _pct(bootstrap_mean(d, n_boot=n_boot, rng=rng))
        diff = float(d.mean())
        p = _wilcoxon(d)
        test = "wilcoxon_signed_rank"
    else:
        lo, hi = _pct(rc - rb)
        diff = cand - base
        p = _mannwhitney(x, y)
        test = "mann_whitney_u"
    out.update(difference=diff, difference_lo=lo, difference_hi=hi, p_value=p, test=test,
               effect_name="cliffs_delta", effect_size=cliffs_delta(x, y),
               margin_abs=abs(base) * margin if math.isfinite(base) else math.nan)
    return out


def _verdict(r: dict[str, Any], alpha: float) -> str:
    lo, hi, pa = r["difference_lo"], r["difference_hi"], r["p_adjusted"]
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
    series = []
    for c in cols:
        if c in floats:
            series.append(pl.Series(c, [float(v) if v is not None else None for v in data[c]], dtype=pl.Float64))
        elif c == "windows":
            series.append(pl.Series(c, data[c], dtype=pl.List(pl.Struct({"run_id": pl.String, "start_ns": pl.Int64, "end_ns": pl.Int64}))))
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
        codes = cat[c].cast(str).fill_null("∅").to_numpy()
        levels = np.unique(codes)
        if levels.size < 2 or levels.size > max(2, cat.height // 3):
            continue
        _, inv = np.unique(codes, return_inverse=True)
        if any(_same_partition(inv, p) for p in partitions):
            continue  # aliased with a factor already chosen (e.g. checkpoint ≡ version)
        chosen.append(c)
        partitions.append(inv)
    return chosen


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _codes(cat: pl.DataFrame, factors: Sequence[str]) -> dict[str, np.ndarray]:
    """Integer level codes per factor (computed once per attribution)."""
    import polars as pl

    out = {}
    for f in factors:
        _, inv = np.unique(cat[f].cast(pl.String).fill_null("∅").to_numpy(), return_inverse=True)
        out[f] = inv.astype(np.int64)
    return out


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


def _ols_rss(X: np.ndarray, y: np.ndarray) -> float:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r)


def _logit_deviance(X: np.ndarray, y: np.ndarray, ridge: float = 1e-4) -> float:
    """Deviance of a (lightly ridge-penalized) logistic regression fitted by IRLS."""
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        eta = np.clip(X @ beta, -30, 30)
        mu = 1 / (1 + np.exp(-eta))
        w = np.clip(mu * (1 - mu), 1e-9, None)
        grad = X.T @ (y - mu) - ridge * beta
        hess = X.T @ (X * w[:, None]) + ridge * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    mu = np.clip(1 / (1 + np.exp(-np.clip(X @ beta, -30, 30))), 1e-12, 1 - 1e-12)
    return float(-2 * np.sum(y * np.log(mu) + (1 - y) * np.log(1 - mu)))


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
    for m, col in metrics.items():
        kind, _, _ = _metric_info(m)
        if kind == "category" or col not in cat.columns:
            continue
        sub = cat.filter(pl.col(col).is_not_null() & pl.col(col).is_not_nan()) if cat.schema[col].is_float() else cat.filter(pl.col(col).is_not_null())
        if sub.height < 4:
            continue
        y = sub[col].cast(pl.Float64).to_numpy()
        fit = (lambda X: _logit_deviance(X, y)) if kind == "rate" else (lambda X: _ols_rss(X, y))
        usable = [f for f in factors if f in sub.columns and sub[f].n_unique() > 1]
        codes = _codes(sub, usable)
        n = sub.height
        null = fit(_design(codes, n, []))
        if null <= 1e-12:
            continue
        for f in usable:
            gain = null - fit(_design(codes, n, [(f,)]))
            rows.append({"metric": m, "term": f, "order": 1, "share": max(0.0, gain / null), "measure": "deviance" if kind == "rate" else "sum_of_squares"})
        if interactions:
            for f1, f2 in itertools.combinations(usable, 2):
                main = fit(_design(codes, n, [(f1,), (f2,)]))
                full = fit(_design(codes, n, [(f1,), (f2,), (f1, f2)]))
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
    rows = []
    for m, col in metrics.items():
        kind, _, unit = _metric_info(m)
        if kind == "category" or col not in cat.columns:
            continue
        sub = cat.select([*cfg, pl.col(col).cast(pl.Float64).alias("_y")]).drop_nulls("_y").filter(pl.col("_y").is_not_nan())
        if sub.height < 3:
            continue
        groups = sub.group_by(cfg).agg(pl.col("_y").std().alias("sd"), pl.col("_y").var().alias("var"), pl.len().alias("n")) if cfg else sub.select(pl.col("_y").std().alias("sd"), pl.col("_y").var().alias("var"), pl.len().alias("n"))
        groups = groups.filter(pl.col("n") >= 2)
        total = float(sub["_y"].var() or 0.0)
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
    schema = {"metric": pl.String, "unit": pl.String, "n_configs": pl.Int64, "median_sd": pl.Float64, "pooled_sd": pl.Float64, "share_within": pl.Float64}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
