"""Compare variants with statistics that decide at robot-scale n: per-cell tests, a gate.

:func:`compare` answers "is the candidate worse than the baseline, where, and by how
much?" for every *cell* (a combination of the ``within`` factors) and metric.

* **The gate** decides on pre-declared *primary* metrics (default ``success``): their
  cells form one family, tested one-sided in the harmful direction with a step-down
  test that knows each exact test's attainable p-values, so cells whose data cannot
  reach the level (e.g. 19/20 vs 18/20) leave the family instead of diluting it. For
  rates it spends the error budget on the largest shortfalls in runs first
  (:func:`workbench.stats.multiplicity.score_ordered_holm`); a family with other
  tests uses :func:`~workbench.stats.multiplicity.discrete_holm`. Secondary metrics
  get their own family and never change the gate.
* **One method per cell** (:mod:`workbench.stats.cell`): rates by Fisher's exact test
  conditional on the margins, or McNemar's exact test on pairs; continuous metrics by
  Mann–Whitney / Wilcoxon with the Hodges–Lehmann shift; time to success as time to
  event (failures censored at the end of their episode, RMST). The interval of each
  difference inverts the same test at the hypothesis' critical level, so interval and
  verdict never disagree.
* **Verdicts**: ``regression`` (the harm test rejects in its family), ``improvement``
  (the benefit test rejects), ``non_inferior`` (with a margin: worse by less than δ
  with confidence), ``no_change`` (the interval lies inside ± the equivalence bound),
  ``undecided`` (the data cannot tell at this n), ``changed`` for metrics without a
  better direction, and ``not measured`` when a side has no value.
* ``success_within:T`` (e.g. ``success_within:10``) compares the rate of runs that
  succeed within *T* seconds, failures counted as not within.
* **Missing data in the open**: per cell and side, unknown outcomes and excluded
  runs with their ids, worst/best-case bounds of a rate difference, and a flag when
  missingness differs between the sides.
* **Pairing as a stated policy** (``pair_by``, ``replicates``): the decision and the
  pair count are in every row.

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
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from workbench.model import FACTOR_GROUPS, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.stats.multiplicity import MultiplicityResult
    from workbench.store import Store

__all__ = [
    "DEFAULT_METRICS",
    "NOT_MEASURED",
    "REPLICATES",
    "VERDICTS",
    "CompareResult",
    "attribution",
    "bootstrap_mean",
    "cliffs_delta",
    "compare",
    "compared_ids",
    "ensure_measured",
    "format_p",
    "holm",
    "newcombe_interval",
    "reproducibility",
    "wilson_interval",
]

DEFAULT_METRICS: tuple[str, ...] = ("success", "time_to_success")
"""The primary behavior metrics compared when none are named: task completion and its
speed. Every metric added to a comparison enlarges the Holm family and so lowers the
power for the others: name secondary metrics explicitly when they are the question."""
NOT_MEASURED = "not measured"
"""Verdict of a cell where either side has no measured value (n = 0)."""
VERDICTS = ("regression", "non_inferior", "improvement", "no_change", "undecided", "changed", NOT_MEASURED)
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
    return np.asarray(np.take(x, idx).mean(axis=1))


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
        Runs left out (below ``min_grade``, or other values of *by*).
    n_runs
        Runs compared (baseline and candidate sides).
    missing
        Per compared metric, how many of those runs have no value (null).
    primary
        The metrics whose cells form the gate's family.
    margin
        The non-inferiority margin asked for (None: none).
    exclusions
        Every excluded run id → why.
    pair_by, replicates
        The pairing policy (key columns; how replicates of a key are combined).
    sequential, look
        Whether the gate used anytime-valid tests, and which look at this question
        this is (kept in the store; None without a store).
    multiplicity
        The step-down test of each family's harm tests (``"primary"`` is the gate's):
        ``"score_ordered_holm"`` when every test is a conditional exact rate test,
        else ``"discrete_holm"``.
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
    primary: list[str] = field(default_factory=list)
    margin: Any = None
    exclusions: dict[str, str] = field(default_factory=dict)
    pair_by: list[str] = field(default_factory=list)
    replicates: str = "first"
    sequential: bool = False
    look: int | None = None
    multiplicity: dict[str, str] = field(default_factory=dict)

    @property
    def gate(self) -> pl.DataFrame:
        """The rows of the gate's family: the primary metrics' cells."""
        import polars as pl

        return self.table.filter(pl.col("role") == "primary")

    @property
    def regressions(self) -> pl.DataFrame:
        """Primary rows whose verdict is ``regression`` (what fails the gate)."""
        import polars as pl

        return self.gate.filter(pl.col("verdict") == "regression")

    @property
    def not_measured(self) -> pl.DataFrame:
        """Primary rows whose verdict is ``not measured`` (a side without any value)."""
        import polars as pl

        return self.gate.filter(pl.col("verdict") == NOT_MEASURED)

    @property
    def n_measured(self) -> int:
        """Number of the gate's cells measured on both sides."""
        return self.gate.height - self.not_measured.height

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

        Decided on the primary metrics only: ``"regression"`` (a cell regresses with
        confidence), ``"not measured"`` (no cell is measured on both sides),
        ``"undecided"`` (no regression, but a measured cell is ``undecided``: the data
        cannot tell at this n) or ``"pass"``.
        """
        import polars as pl

        if self.regressions.height:
            return "regression"
        if self.n_measured == 0:
            return NOT_MEASURED
        if self.gate.filter(pl.col("verdict") == "undecided").height:
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
                    "role": r["role"],
                    "test": r["test"],
                    "p_value": _num(r["p_value"]),
                    "p_adjusted": _num(r["p_adjusted"]),
                    "critical": _num(r["critical"]),
                    "p_benefit": _num(r["p_benefit"]),
                    "p_noninferior": _num(r["p_ni"]),
                    "verdict": r["verdict"],
                    "pairing": r["pairing"],
                    "n_pairs": r["n_pairs"],
                    "unknown": {"baseline": r["n_unknown_baseline"], "candidate": r["n_unknown_candidate"],
                                "ids": {"baseline": r["unknown_baseline"], "candidate": r["unknown_candidate"]},
                                "differs": r["missing_differs"],
                                "difference_bounds": [_num(r["difference_worst"]), _num(r["difference_best"])]},
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
            "exclusions": self.exclusions,
            "primary": self.primary,
            "margin": self.margin,
            "pair_by": self.pair_by,
            "replicates": self.replicates,
            "sequential": self.sequential,
            "look": self.look,
            "multiplicity": dict(self.multiplicity),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)


def format_p(p: float | None, *, floor: float = 1e-4) -> str:
    """A p-value as people read it: 3 significant digits, ``<1e-4`` below *floor*,
    ``–`` when there is none (never ``0.0``).

    >>> format_p(0.0312), format_p(3e-9), format_p(None), format_p(1.0)
    ('0.0312', '<1e-4', '–', '1')
    """
    if p is None or not math.isfinite(p):
        return "–"
    if p < floor:
        return f"<{floor:.0e}".replace("e-0", "e-")
    return f"{p:.3g}"


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


def _window_frame(rows: pl.DataFrame, outcome: bool) -> pl.DataFrame:
    """Per run, the time window behind the number: start → outcome event for outcome
    metrics (*outcome*), the whole run otherwise."""
    import polars as pl

    end = pl.col("end_ns") if "end_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    if outcome and "outcome_ns" in rows.columns:
        end = pl.coalesce(pl.col("outcome_ns"), end)
    start = pl.col("start_ns") if "start_ns" in rows.columns else pl.lit(None, dtype=pl.Int64)
    return rows.select(pl.col("run_id").cast(pl.String), start.cast(pl.Int64).alias("start_ns"), end.cast(pl.Int64).alias("end_ns"))


def compare(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    primary: Sequence[str] | str | None = None,
    min_grade: str | None = None,
    drop_ungraded: bool = False,
    alpha: float = 0.05,
    margin: float | Mapping[str, float] | None = None,
    equivalence: float | Mapping[str, float] = 0.1,
    paired: bool | str = "auto",
    pair_by: Sequence[str] | str | None = None,
    replicates: str = "first",
    sequential: bool = False,
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
    primary
        The pre-declared metrics the gate decides on (default ``success`` when compared,
        else the first metric). Their cells form the gate's family; the other metrics
        are secondary: reported with their own adjustment, never changing the gate.
    min_grade
        Leave out runs graded below this (``"B"`` keeps A and B); needs
        ``quality.grade``. Ungraded runs stay unless *drop_ungraded*; every exclusion is
        listed (:attr:`CompareResult.exclusions`) and counted as unknown in its cell.
    alpha
        Family-wise error rate of each family (one-sided, the harmful direction).
    margin
        Non-inferiority margin δ (absolute for rates, a fraction of the baseline's
        median for continuous metrics; or a mapping metric → δ). A cell whose
        candidate is worse by less than δ with confidence is ``non_inferior``.
    equivalence
        ``no_change`` when the interval of the difference lies inside ± this
        (absolute for rates, a fraction of the baseline mean otherwise).
    paired, pair_by, replicates
        Pairing policy: runs are paired by *pair_by* (default ``scenario.seed`` when
        the catalog has it; ``paired=False`` never pairs); the runs of one key on one
        side are combined by *replicates* (``first`` — the earliest —, ``mean``, or
        ``majority``; rates use the majority for ``mean``). A cell is paired when it has
        at least :data:`MIN_PAIRS` pairs and at least half of each side's keys find a
        partner; the decision and the pair count are in each row (``pairing``).
    sequential
        For a team that adds runs and re-checks: the primary rate cells are tested by an
        anytime-valid e-process on the runs in order of arrival
        (:func:`workbench.stats.cell.sequential_rate_cell`), valid however often the gate
        is looked at. With a store, each look is kept (``comparisons/<key>.json``) and
        :attr:`CompareResult.look` numbers it.
    n_boot, seed
        Seed of the attribution's bootstrap (*n_boot* is kept for callers of earlier
        versions).
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
    exclusions: dict[str, str] = {}
    dropped = None
    if min_grade is not None:
        if min_grade not in _GRADE_ORDER:
            msg = f"min_grade {min_grade!r} is not valid; use one of {list(_GRADE_ORDER)}"
            raise ConfigError(msg)
        if "quality.grade" not in cat.columns:
            msg = "min_grade needs data grades: run `workbench grade` (wb.quality.grade_store) first"
            raise ConfigError(msg)
        allowed = list(_GRADE_ORDER[: _GRADE_ORDER.index(min_grade) + 1])
        grade = pl.col("quality.grade")
        keep = grade.is_in(allowed).fill_null(False) | (grade.is_null() & pl.lit(not drop_ungraded))
        dropped = cat.filter(~keep)
        for rid, g in zip(dropped["run_id"].to_list(), dropped["quality.grade"].to_list(), strict=True):
            exclusions[rid] = f"grade {g} below {min_grade}" if g is not None else "ungraded (drop_ungraded)"
        cat = cat.filter(keep)
    if replicates not in REPLICATES:
        msg = f"replicates {replicates!r} is not valid; use one of {list(REPLICATES)}"
        raise ConfigError(msg)
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
    for rid in cat.filter(~pl.col(by).is_in([b_val, c_val]) | pl.col(by).is_null())["run_id"].to_list():
        exclusions[rid] = f"{by} is neither {b_val} nor {c_val}"
    if dropped is not None:
        dropped = dropped.filter(pl.col(by).is_in([b_val, c_val]))
    if metrics is None:
        names = [m for m in DEFAULT_METRICS if f"metrics.{m}" in cat.columns or m in cat.columns]
        if not names:
            msg = "no metrics in the catalog: compute them first (wb.metrics.compute(store) / `workbench metrics`)"
            raise ConfigError(msg)
    else:
        names = list(metrics)
    mcols = {m: _metric_column(cat, "time_to_success" if _within_s(m) is not None else m) for m in names}
    if isinstance(primary, str):
        primary = [p.strip() for p in primary.split(",") if p.strip()]
    prim = list(primary) if primary else (["success"] if "success" in names else names[:1])
    for p in prim:
        if p not in names:
            msg = f"primary metric {p!r} is not among the compared metrics; compared: {', '.join(names)}"
            raise ConfigError(msg)
    infos = {m: ("rate", True, "") if _within_s(m) is not None else _metric_info(m) for m in names}
    missing = {m: int(sides[mcols[m]].null_count()) for m in names if infos[m][0] != "category"}
    margins = {m: (margin.get(m) if isinstance(margin, Mapping) else margin) for m in names}
    equiv = {m: equivalence.get(m, 0.1) if isinstance(equivalence, Mapping) else equivalence for m in names}
    keys = _pair_policy(sides, by, within, paired, pair_by)
    rows: list[dict[str, Any]] = []
    cells = sides.partition_by(within, as_dict=True, maintain_order=True) if within else {(): sides}
    drop_cells = (dropped.partition_by(within, as_dict=True, maintain_order=True) if within else {(): dropped}) if dropped is not None and dropped.height else {}
    for key in sorted(cells, key=lambda k: tuple(str(x) for x in k)):
        cell_rows = _cell_rows(cells[key], by=by, b_val=b_val, c_val=c_val, pair_keys=keys, replicates=replicates,
                               names=names, mcols=mcols, infos=infos, primary=prim, margins=margins, equivalence=equiv,
                               dropped=drop_cells.get(key), sequential=sequential)
        for row in cell_rows:
            row.update({k: v for k, v in zip(within, key, strict=True)})
        rows += cell_rows
    multiplicity = _families(rows, alpha, with_margin=any(v is not None for v in margins.values()))
    table = _table(rows, within)
    factors = list(attribution_factors) if attribution_factors is not None else _attribution_factors(sides, by, within)
    attr = _attribute(sides, factors, {m: mcols[m] for m in names if infos[m][0] != "category"},
                      {m: "rate" if infos[m][0] == "rate" else "continuous" for m in names}, seed=seed)
    repro = reproducibility(sides, metrics={m: mcols[m] for m in names})
    look = None
    if sequential and not isinstance(source, pl.DataFrame) and hasattr(source, "record_look"):
        import hashlib

        question = json.dumps({"by": by, "baseline": str(b_val), "candidate": str(c_val), "within": within,
                               "primary": prim, "alpha": alpha}, sort_keys=True)
        look_key = hashlib.sha256(question.encode()).hexdigest()[:16]
        gate_rows = table.filter(pl.col("role") == "primary")
        p_min = cast("float | None", gate_rows["p_value"].drop_nans().min())
        looks = source.record_look(look_key, {"n_runs": sides.height, "status": _status_of(gate_rows),
                                              "p_min": float(p_min or 1.0) if gate_rows.height else None})
        look = len(looks)
    return CompareResult(table, attr, repro, by, b_val, c_val, within, alpha, list(exclusions), sides.height, missing,
                         primary=prim, margin=margin if not isinstance(margin, Mapping) else dict(margin),
                         exclusions=exclusions, pair_by=keys, replicates=replicates, sequential=sequential, look=look,
                         multiplicity=multiplicity)


def _status_of(gate: pl.DataFrame) -> str:
    verdicts = set(gate["verdict"].to_list())
    if "regression" in verdicts:
        return "regression"
    if not verdicts - {NOT_MEASURED}:
        return NOT_MEASURED
    return "undecided" if "undecided" in verdicts else "pass"


def _attribute(sides: pl.DataFrame, factors: list[str], metrics: dict[str, str], kinds: dict[str, str], *, seed: int) -> pl.DataFrame:
    """What explains each metric (:func:`workbench.stats.attribution.attribution_table`:
    Type II tests, Shapley shares with bootstrap intervals, confounding warnings); an
    empty table when there is nothing to attribute."""
    import polars as pl

    from workbench.stats.attribution import _SCHEMA, attribution_table

    if not factors or not metrics or sides.height < 4:
        return pl.DataFrame(schema=_SCHEMA)
    try:
        return attribution_table(sides, factors=factors, metrics=metrics, kinds=kinds, max_order=2,
                                 n_boot=50 if sides.height > 2000 else 200, seed=seed, skip_unmeasured=True)
    except ConfigError:
        return pl.DataFrame(schema=_SCHEMA)


WITHIN_PREFIX = "success_within:"
"""``success_within:T`` compares the rate of runs that succeed within *T* seconds."""


def _within_s(name: str) -> float | None:
    """*T* of a ``success_within:T`` metric name (None for other names)."""
    if not name.startswith(WITHIN_PREFIX):
        return None
    text = name[len(WITHIN_PREFIX):].removesuffix("s")
    try:
        t = float(text)
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and t > 0):
        msg = f"metric {name!r}: use success_within:T with T a positive number of seconds (e.g. success_within:10)"
        raise ConfigError(msg)
    return t


def _pair_policy(sides: pl.DataFrame, by: str, within: Sequence[str], paired: bool | str, pair_by: Sequence[str] | str | None) -> list[str]:
    """The pairing key columns: *pair_by*, else ``scenario.seed`` when present; none when
    *paired* is False."""
    if paired is False or paired == "never":
        return []
    if isinstance(pair_by, str):
        pair_by = [p.strip() for p in pair_by.split(",") if p.strip()]
    if pair_by:
        keys = list(pair_by)
    elif "scenario.seed" in sides.columns:
        # a seed names the same scenario only with the same other conditions: add every
        # factor (not compared, not a cell) that varies and takes the same values on both sides
        import polars as pl

        keys = ["scenario.seed"]
        b_val, c_val = sides[by].drop_nulls().unique().sort().to_list()[:2] if sides[by].n_unique() >= 2 else (None, None)
        for col in sides.columns:
            if col in keys or col == by or col in within or col.split(".", 1)[0] not in FACTOR_GROUPS:
                continue
            if sides[col].dtype.is_nested():
                continue
            vb = set(sides.filter(pl.col(by) == b_val)[col].drop_nulls().to_list())
            vc = set(sides.filter(pl.col(by) == c_val)[col].drop_nulls().to_list())
            if vb and vb == vc and len(vb) > 1:
                keys.append(col)
    else:
        keys = []
    for k in keys:
        if k not in sides.columns:
            factors = [c for c in sides.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
            msg = f"pair_by {k!r} is not a factor column; factors: {', '.join(factors)}"
            raise ConfigError(msg)
        if k == by or k in within:
            msg = f"pair_by {k!r} is the compared factor or a cell factor: pair by what both sides share (e.g. scenario.seed)"
            raise ConfigError(msg)
    return keys


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


REPLICATES = ("first", "mean", "majority")
"""How runs of one pairing key on one side are combined before pairing."""
MIN_PAIRS = 3
"""Fewer pairs than this in a cell: the cell is compared unpaired."""
PAIRED_SHARE = 0.5
"""A cell is paired when at least this share of each side's keys finds a partner."""


def _combine(keys: np.ndarray, values: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray, int]:
    """One value per key (*keys* in run order): ``first``, ``mean`` or ``majority``
    (ties go to the first run). Returns the unique keys, their values and how many
    runs were replicates."""
    uniq, first, inv, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    if rule == "first" or counts.max(initial=1) == 1:
        return uniq, values[first], int(np.sum(counts - 1))
    mean = np.bincount(inv, weights=values, minlength=uniq.size) / counts
    if rule == "majority":
        first_v = values[first]
        mean = np.where(mean > 0.5, 1.0, np.where(mean < 0.5, 0.0, first_v))
    return uniq, mean, int(np.sum(counts - 1))


def _pairs(
    kb: np.ndarray, kc: np.ndarray, vb: np.ndarray, vc: np.ndarray, rule: str,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, dict[str, Any]]:
    """Pair baseline and candidate values by key codes (−1: no key), replicates combined
    by *rule*. Returns the paired values (None: compared unpaired) and what was decided."""
    okb, okc = kb >= 0, kc >= 0
    ub, xb, rep_b = _combine(kb[okb], vb[okb], rule)
    uc, xc, rep_c = _combine(kc[okc], vc[okc], rule)
    common, pb, pc = np.intersect1d(ub, uc, assume_unique=True, return_indices=True)
    n = int(common.size)
    info: dict[str, Any] = {"n_pairs": n, "replicates": rep_b + rep_c,
                            "unpaired_b": np.flatnonzero(~okb | ~np.isin(kb, common)),
                            "unpaired_c": np.flatnonzero(~okc | ~np.isin(kc, common))}
    if n < MIN_PAIRS or n < PAIRED_SHARE * max(ub.size, uc.size):
        info["n_pairs"] = 0
        info["why"] = f"unpaired: {n} of {max(ub.size, uc.size)} keys on both sides"
        return None, info
    info["why"] = f"paired: {n} pairs" + (f", {rep_b + rep_c} replicate run(s) combined ({rule})" if rep_b + rep_c else "")
    return (xb[pb], xc[pc]), info


def _cell_rows(
    sub: pl.DataFrame,
    *,
    by: str,
    b_val: Any,
    c_val: Any,
    pair_keys: Sequence[str],
    replicates: str,
    names: Sequence[str],
    mcols: Mapping[str, str],
    infos: Mapping[str, tuple[str, bool | None, str]],
    primary: Sequence[str],
    margins: Mapping[str, float | None],
    equivalence: Mapping[str, float],
    dropped: pl.DataFrame | None,
    sequential: bool = False,
) -> list[dict[str, Any]]:
    """Every metric of one cell: values split by side, paired by the stated policy, the
    cell's tests run (:mod:`workbench.stats.cell`); the family steps come later."""
    import polars as pl

    from workbench.stats.cell import mean_cell, rate_cell, sequential_rate_cell, shift_cell, time_cell

    if "start_ns" in sub.columns:  # "first" of replicates = the earliest run
        sub = sub.sort("start_ns", nulls_last=True, maintain_order=True)
    bi = np.flatnonzero((sub[by] == b_val).fill_null(False).to_numpy())
    ci = np.flatnonzero((sub[by] == c_val).fill_null(False).to_numpy())
    codes = _key_codes(sub, pair_keys) if pair_keys else None
    ids = sub["run_id"].cast(pl.String)
    n_drop = {"b": 0, "c": 0}
    if dropped is not None and dropped.height:
        n_drop = {"b": int((dropped[by] == b_val).fill_null(False).sum()), "c": int((dropped[by] == c_val).fill_null(False).sum())}
    frames: dict[bool, pl.DataFrame] = {}
    rows = []
    for m in names:
        kind, better, unit = infos[m]
        if kind == "category":
            continue
        s = sub[mcols[m]].cast(pl.Float64)
        v = s.to_numpy().astype(np.float64)
        ok = s.is_not_null().to_numpy() & ~np.isnan(v)
        limit = _within_s(m)
        if limit is not None:  # a known outcome decides: success within T → 1, else 0
            if "metrics.success" not in sub.columns:
                msg = f"metric {m!r} needs metrics.success and metrics.time_to_success"
                raise ConfigError(msg)
            succ = sub["metrics.success"].cast(pl.Float64).to_numpy().astype(np.float64)
            ok = np.isfinite(succ) & ~((succ == 1) & ~np.isfinite(v))
            v = np.where((succ == 1) & (np.nan_to_num(v, nan=np.inf) <= limit), 1.0, 0.0)
        timed = m == "time_to_success" and "metrics.success" in sub.columns and limit is None
        if timed:  # time to event: a known outcome is what counts, failures are censored
            succ = sub["metrics.success"].cast(pl.Float64).to_numpy().astype(np.float64)
            dur = ((sub["end_ns"] - sub["start_ns"]).cast(pl.Float64).to_numpy() / 1e9
                   if {"start_ns", "end_ns"} <= set(sub.columns) else np.full(sub.height, np.nan))
            event = succ == 1
            t = np.where(event, v, dur)
            ok = np.isfinite(succ) & np.isfinite(t) & ~(event & ~np.isfinite(v))
            v = t
        vb, vc, mb, mc = v[bi], v[ci], ok[bi], ok[ci]
        row: dict[str, Any] = {
            "metric": m, "kind": "time_to_event" if timed else kind, "unit": unit, "higher_is_better": better,
            "role": "primary" if m in primary else "secondary",
            "n_baseline": int(mb.sum()), "n_candidate": int(mc.sum()),
            "n_unknown_baseline": int((~mb).sum()) + n_drop["b"], "n_unknown_candidate": int((~mc).sum()) + n_drop["c"],
            "unknown_baseline": ids.gather(bi[~mb]).implode(), "unknown_candidate": ids.gather(ci[~mc]).implode(),
            "paired": False, "n_pairs": 0, "pairing": "unpaired: no pairing key" if codes is None else "",
            "_test": None,
        }
        # missingness that differs between the sides (two-sided Fisher on known/unknown)
        ub, uc = row["n_unknown_baseline"], row["n_unknown_candidate"]
        if ub + uc:
            from scipy.stats import fisher_exact

            row["missing_differs"] = bool(fisher_exact([[ub, bi.size + n_drop["b"] - ub], [uc, ci.size + n_drop["c"] - uc]]).pvalue < 0.05)
        else:
            row["missing_differs"] = False
        pairs = None
        if codes is not None and not timed:
            kbm, kcm = codes[bi][mb], codes[ci][mc]
            pairs, info = _pairs(kbm, kcm, vb[mb], vc[mc], "majority" if kind == "rate" and replicates == "mean" else replicates)
            row["pairing"] = info["why"]
            if pairs is not None:
                row.update(paired=True, n_pairs=info["n_pairs"], n_unpaired=int(info["unpaired_b"].size + info["unpaired_c"].size))
        elif timed and codes is not None:
            row["pairing"] = "unpaired: time to event is compared unpaired"
        outcome = m in OUTCOME_METRICS or limit is not None
        if outcome not in frames:
            frames[outcome] = _window_frame(sub, outcome)
        rb, rc = bi[mb], ci[mc]
        row["runs_baseline"] = ids.gather(rb).implode()
        row["runs_candidate"] = ids.gather(rc).implode()
        row["windows"] = frames[outcome][np.concatenate([rb, rc])].select(pl.struct(pl.all()).implode()).to_series()
        x, y = vb[mb], vc[mc]
        row.update(_sides(row["kind"], x, y, event[bi][mb] if timed else None, event[ci][mc] if timed else None))
        if x.size and y.size:
            try:
                if timed:
                    row["_test"] = time_cell(x, event[bi][mb], y, event[ci][mc], margin=margins[m])
                elif kind == "rate" and sequential and m in primary and better is True:
                    row["_test"] = sequential_rate_cell(x, y, pairs=pairs)
                elif kind == "rate":
                    row["_test"] = rate_cell(x, y, higher_is_better=better, pairs=pairs, margin=margins[m])
                elif x.size >= 2 and y.size >= 2 and (pairs is None or pairs[0].size >= 2):
                    cell_test = mean_cell if kind == "count" else shift_cell
                    row["_test"] = cell_test(x, y, higher_is_better=better, pairs=pairs, margin=margins[m])
            except ConfigError as err:
                row["pairing"] = f"{row['pairing']}; not tested: {err}"
        if kind == "rate" and x.size + ub and y.size + uc:
            from workbench.stats.rates import rate_bounds

            kx, ky = int(round(x.sum())), int(round(y.sum()))
            bw, bb = rate_bounds(kx, int(x.size), ub)
            cw, cb = rate_bounds(ky, int(y.size), uc)
            row["difference_worst"], row["difference_best"] = (cw - bb, cb - bw) if better is not False else (cb - bw, cw - bb)
        eq = equivalence[m]
        row["margin_abs"] = eq if kind == "rate" else (abs(row["baseline"]) * eq if math.isfinite(row["baseline"]) else math.nan)
        rows.append(row)
    return rows


def _sides(kind: str, x: np.ndarray, y: np.ndarray, ex: np.ndarray | None, ey: np.ndarray | None) -> dict[str, float]:
    """Each side's estimate and 95 % interval: Wilson for rates, the mean with a
    t interval for continuous metrics (NaN below 2 runs), RMST ± 1.96 SE for time to event."""
    from scipy import stats

    out: dict[str, float] = {}
    if kind == "time_to_event" and ex is not None and ey is not None and x.size and y.size:
        from workbench.stats.survival import rmst

        tau = float(min(x.max(), y.max()))
        for side, t, e in (("baseline", x, ex), ("candidate", y, ey)):
            try:
                r = rmst(t, e, tau)
                out[side], out[f"{side}_lo"], out[f"{side}_hi"] = r.estimate, r.estimate - _Z95 * r.std_err, r.estimate + _Z95 * r.std_err
            except ConfigError:
                out[side] = out[f"{side}_lo"] = out[f"{side}_hi"] = math.nan
        return out
    for side, a in (("baseline", x), ("candidate", y)):
        if kind == "rate":
            k = int(round(float(a.sum())))
            lo, hi = wilson_interval(k, a.size)
            out[side], out[f"{side}_lo"], out[f"{side}_hi"] = (k / a.size if a.size else math.nan), lo, hi
            continue
        mean = float(a.mean()) if a.size else math.nan
        half = math.nan
        if a.size >= 2 and np.isfinite(a).all():
            half = float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
        out[side], out[f"{side}_lo"], out[f"{side}_hi"] = mean, mean - half, mean + half
    return out


def _step_down(p: list[float], supports: list[Any], scores: list[Any] | None, alpha: float) -> MultiplicityResult:
    """The family's step-down test: score-ordered Holm when every measured test is a
    conditional exact rate test (it has scores), else discrete Holm."""
    from workbench.stats.multiplicity import discrete_holm, score_ordered_holm

    measured = [i for i, v in enumerate(p) if not math.isnan(v)]
    if scores is not None and measured and all(scores[i] is not None and supports[i] is not None for i in measured):
        return score_ordered_holm(p, supports, scores, alpha=alpha)
    return discrete_holm(p, supports, alpha=alpha)


def _families(rows: list[dict[str, Any]], alpha: float, with_margin: bool) -> dict[str, str]:
    """The primary family (the gate) and the secondary one, each with its own step-down
    test (:func:`_step_down`) on the harm, benefit and (with a margin) non-inferiority
    tests; then intervals at each hypothesis' critical level and the verdicts. Returns
    the step-down method of each family's harm tests."""
    used: dict[str, str] = {}
    for role in ("primary", "secondary"):
        fam = [r for r in rows if r["role"] == role and r["_test"] is not None]
        if not fam:
            continue
        tests = [r["_test"] for r in fam]
        harm = _step_down([t.p_harm for t in tests], [t.support_harm for t in tests], [t.score_harm for t in tests], alpha)
        good = _step_down([t.p_benefit for t in tests], [t.support_benefit for t in tests], [t.score_benefit for t in tests], alpha)
        ni = _step_down([t.p_ni for t in tests], [t.support_ni for t in tests], None, alpha) if with_margin else None
        used[role] = harm.method
        for j, (r, t) in enumerate(zip(fam, tests, strict=True)):
            level = float(harm.critical[j])
            lo, hi = t.interval(level) if level > 0 else (math.nan, math.nan)
            r.update(test=t.method, p_value=t.p_harm, p_adjusted=float(harm.adjusted[j]), critical=level,
                     testable=bool(harm.testable[j]), p_benefit=t.p_benefit, p_ni=t.p_ni, ni_test=t.ni_method,
                     difference=t.estimate, difference_lo=lo, difference_hi=hi,
                     _harm=bool(harm.rejected[j]), _good=bool(good.rejected[j]),
                     _p_good_adj=float(good.adjusted[j]), _p_ni_adj=float(ni.adjusted[j]) if ni is not None else math.nan,
                     _ni=bool(ni.rejected[j]) if ni is not None else False)
    for r in rows:
        r["verdict"] = _verdict(r)
        r["p_verdict"] = r.get("_p_good_adj") if r["verdict"] == "improvement" else (
            r.get("_p_ni_adj") if r["verdict"] == "non_inferior" else r.get("p_adjusted"))
    return used


def _verdict(r: dict[str, Any]) -> str:
    if r["n_baseline"] == 0 or r["n_candidate"] == 0:
        return NOT_MEASURED
    if r.get("_test") is None:
        return "undecided"
    better = r["higher_is_better"]
    if r["_harm"]:
        return "changed" if better is None else "regression"
    if r["_good"]:
        return "changed" if better is None else "improvement"
    if r["_ni"]:
        return "non_inferior"
    lo, hi, m = r["difference_lo"], r["difference_hi"], r["margin_abs"]
    if all(math.isfinite(v) for v in (lo, hi, m)) and -m <= lo and hi <= m:
        return "no_change"
    return "undecided"


def _table(rows: list[dict[str, Any]], within: list[str]) -> pl.DataFrame:
    import polars as pl

    cols = [
        *within, "metric", "role", "kind", "unit", "paired", "n_pairs", "pairing", "n_baseline", "n_candidate",
        "n_unknown_baseline", "n_unknown_candidate", "missing_differs",
        "baseline", "baseline_lo", "baseline_hi", "candidate", "candidate_lo", "candidate_hi",
        "difference", "difference_lo", "difference_hi", "difference_worst", "difference_best",
        "test", "p_value", "p_adjusted", "critical", "testable", "p_benefit", "p_ni", "ni_test", "p_verdict",
        "verdict", "higher_is_better", "runs_baseline", "runs_candidate", "unknown_baseline", "unknown_candidate", "windows",
    ]
    if not rows:
        return pl.DataFrame({c: [] for c in cols})
    data = {c: [r.get(c) for r in rows] for c in cols}
    floats = {"baseline", "baseline_lo", "baseline_hi", "candidate", "candidate_lo", "candidate_hi",
              "difference", "difference_lo", "difference_hi", "difference_worst", "difference_best",
              "p_value", "p_adjusted", "critical", "p_benefit", "p_ni", "p_verdict"}
    lists = {"runs_baseline": pl.List(pl.String), "runs_candidate": pl.List(pl.String),
             "unknown_baseline": pl.List(pl.String), "unknown_candidate": pl.List(pl.String),
             "windows": pl.List(pl.Struct({"run_id": pl.String, "start_ns": pl.Int64, "end_ns": pl.Int64}))}
    series = []
    for c in cols:
        if c in floats:
            series.append(pl.Series(c, [float(v) if v is not None else None for v in data[c]], dtype=pl.Float64))
        elif c in lists:  # one-row list Series per row, built by _cell_rows
            series.append(pl.concat([v for v in data[c] if v is not None]).cast(lists[c]).alias(c))
        elif c in ("higher_is_better", "testable", "missing_differs", "paired"):
            series.append(pl.Series(c, data[c], dtype=pl.Boolean))
        elif c in ("test", "ni_test", "pairing"):
            series.append(pl.Series(c, [v or "" for v in data[c]], dtype=pl.String))
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


REPLICATE_FACTORS = ("scenario.seed", "scenario.episode", "scenario.demo")
"""Factors that number the replicates of one configuration (not part of it)."""


def reproducibility(cat: pl.DataFrame, *, metrics: Mapping[str, str], config: Iterable[str] | None = None) -> pl.DataFrame:
    """Spread between runs of identical configuration (every factor equal but the
    replicate's own id: :data:`REPLICATE_FACTORS`, the seed, episode or demo number).

    Per metric: number of configurations with ≥ 2 runs, the median within-configuration
    standard deviation, the pooled within-configuration standard deviation, and the
    share of the total variance that lies within configurations (1 = runs of the same
    configuration differ as much as runs of different ones).
    """
    import polars as pl

    cfg = list(config) if config is not None else [
        c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS and c not in REPLICATE_FACTORS and cat[c].n_unique() > 1
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
        total = float(cast("float | None", y.var()) or 0.0)
        if groups.height == 0:
            continue
        pooled_var = float(cast(float, (groups["var"] * (groups["n"] - 1)).sum()) / cast(float, (groups["n"] - 1).sum()))
        rows.append({
            "metric": m,
            "unit": unit,
            "n_configs": groups.height,
            "median_sd": float(cast(float, groups["sd"].median())),
            "pooled_sd": math.sqrt(pooled_var),
            "share_within": pooled_var / total if total > 0 else math.nan,
        })
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
