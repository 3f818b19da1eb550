"""Unit-to-unit and hidden variation: how much of a metric's spread lies between the
units of a grouping factor (arms of one model, sites, operators, days), each unit's
shrunken estimate, and whether the logged factors explain the spread. ``day`` (the UTC
day a run started) is a grouping that needs no column: runs that differ between days
point at something not logged that changed.

Per cell (``within``, e.g. ``model.version``) and grouping factor (``groups``):

* rates: an empirical-Bayes beta-binomial (:mod:`workbench.stats.hierarchical`); the
  intra-class correlation ``rho`` is the share of an outcome's variance between units;
  each unit's posterior rate and interval (shrunken toward the cell's rate; the prior
  weighs at most as much as all the cell's runs, so no unit's interval is narrower than
  the pooled rate's); Pearson's
  χ² test of equal rates across units (overdispersion);
* numbers: a linear mixed model with a random intercept per unit (REML,
  ``statsmodels`` ``MixedLM``): variance between and within units, the intra-class
  correlation, each unit's BLUP with its interval; the one-way ANOVA F test of equal
  means across units.

Intervals on the intra-class correlation: the profile likelihood of the beta-binomial
for rates, the F-based interval of the one-way ANOVA for numbers (both from 5 units up). A unit is flagged as outlying when the test of equal units rejects and the
unit differs from the other units pooled (two-sided Fisher exact test for rates, Welch's
t for numbers) at ``alpha`` divided by the number of units (Bonferroni); its runs are
listed. A significant test with no outlier means the whole cell is spread out: a
variable that was not logged is at work.

Examples
--------
>>> import polars as pl
>>> rows = [{"run_id": f"{u}-{s}", "model.version": "v1", "hardware.unit": u,
...          "metrics.success": float(s % 10 != 0 if u != "arm-4" else s % 3 == 0)}
...         for u in ("arm-1", "arm-2", "arm-3", "arm-4") for s in range(20)]
>>> res = variation(pl.DataFrame(rows), groups=["hardware.unit"], within=["model.version"])
>>> row = res.components.row(0, named=True)
>>> row["overdispersed"], row["outliers"]
(True, ['arm-4'])
>>> res.units.filter(pl.col("flag"))["unit"].to_list()
['arm-4']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError
from workbench.ranking import metric_frame

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["VariationResult", "variation"]


@dataclass
class VariationResult:
    """``components``: per cell and grouping factor, the units, the between-unit share
    ``icc`` with ``icc_lo``–``icc_hi``, the test of equal units (``statistic``,
    ``p_value``, ``overdispersed``) and ``outliers``; ``units``: per unit its raw and
    shrunken estimate with interval, standardised residual, ``flag`` and run ids."""

    metric: str
    kind: str
    groups: list[str]
    within: list[str]
    components: pl.DataFrame
    units: pl.DataFrame
    alpha: float
    excluded: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One sentence per cell and grouping factor."""
        lines = []
        what = f"the {self.metric} rate" if self.kind == "rate" else str(self.metric)
        for r in self.components.iter_rows(named=True):
            cell = ", ".join(f"{w}={r[w]}" for w in self.within)
            where = f"within {cell}: " if cell else ""
            icc = "n/a" if r["icc"] is None or math.isnan(r["icc"]) else f"{r['icc']:.0%}"
            ci = (f" [{r['icc_lo']:.0%}, {r['icc_hi']:.0%}]" if r["icc_lo"] is not None and not math.isnan(r["icc_lo"])
                  else f" (too few units for an interval: fewer than {MIN_UNITS_FOR_INTERVAL})")
            if r["n_units"] < 2:
                lines.append(f"{where}only one {r['group']} value ({r['n_runs']} runs): nothing to compare")
                continue
            derived = r["group"] == DAY
            if derived:
                verdict = ("runs differ between days more than chance allows: something not logged changed between days"
                           if r["overdispersed"] else "no evidence that days differ")
            else:
                verdict = ("units differ more than chance allows: the cell's factors do not explain the spread"
                           if r["overdispersed"] else "no evidence that units differ")
            flagged = f"; outlying: {', '.join(r['outliers'])}" if r["outliers"] else (
                "; no single one stands out: the spread is shared" if r["overdispersed"] and r["n_units"] > 2 else "")
            lines.append(f"{where}{icc}{ci} of the variation in {what} is between {r['group']} values "
                         f"({r['n_units']} units, {r['n_runs']} runs); {verdict} (p={r['p_value']:.3g}){flagged}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"metric": self.metric, "kind": self.kind, "groups": self.groups, "within": self.within, "alpha": self.alpha,
                "components": self.components.to_dicts(), "units": self.units.to_dicts(), "excluded": self.excluded}


DAY = "day"
"""A grouping that needs no column: the UTC day each run started (from ``start_ns``)."""

MIN_UNITS_FOR_INTERVAL = 5
"""Fewer units than this: no interval on the intra-class correlation (two or three units
say little about how units vary)."""


def _outliers(k: int, vs_rest: Any, spread: Any, alpha: float) -> np.ndarray:
    """Forward search: while the units left differ (``spread`` p < alpha), flag the unit
    most unlike the others left if its ``vs_rest`` p is below alpha / units left, and
    set it aside; one bad unit then does not make healthy ones look extreme."""
    live = list(range(k))
    flags = np.zeros(k, dtype=bool)
    while len(live) > 2:
        p_spread = spread(live)
        if p_spread != p_spread or p_spread >= alpha:
            break
        ps = {i: vs_rest(i, live) for i in live}
        worst = min(ps, key=lambda i: ps[i])
        if ps[worst] >= alpha / len(live):
            break
        flags[worst] = True
        live.remove(worst)
    return flags


def _rates(ks: np.ndarray, ns: np.ndarray, alpha: float) -> dict[str, Any]:
    from scipy import stats

    from workbench.stats.hierarchical import fit_beta_binomial, overdispersion_test, rho_profile_interval, shrink_rates

    a, b, rho = fit_beta_binomial(ks, ns)
    # the prior never weighs more than every run of the cell pooled: at rho = 0 the fit's
    # a + b runs off to infinity and each unit's interval would shrink to nothing
    weight = min(a + b, float(ns.sum()))
    mean, lo, hi = shrink_rates(ks, ns, a / (a + b) * weight, b / (a + b) * weight)
    test = overdispersion_test(ks, ns)
    icc_lo, icc_hi = rho_profile_interval(ks, ns, level=1 - alpha) if ks.size >= MIN_UNITS_FOR_INTERVAL else (math.nan, math.nan)
    def vs_rest(i: int, live: list[int]) -> float:  # two-sided Fisher exact, the unit against the others pooled
        rk, rn = sum(ks[j] for j in live if j != i), sum(ns[j] for j in live if j != i)
        if ns[i] == 0 or rn == 0:
            return 1.0
        return float(stats.fisher_exact([[ks[i], ns[i] - ks[i]], [rk, rn - rk]]).pvalue)

    def spread(live: list[int]) -> float:
        return overdispersion_test(ks[live], ns[live]).p_value

    flags = _outliers(ks.size, vs_rest, spread, alpha)
    p_unit = np.array([vs_rest(i, list(range(ks.size))) for i in range(ks.size)])
    return {"icc": rho, "icc_lo": icc_lo, "icc_hi": icc_hi, "shrunk": mean, "lo": lo, "hi": hi, "residuals": test.residuals,
            "p_unit": p_unit, "flags": flags, "statistic": test.statistic, "df": float(test.df), "p_value": test.p_value,
            "test": "pearson chi2 (equal rates)", "center": a / (a + b), "between_var": math.nan, "within_var": math.nan}


def _numbers(values: list[np.ndarray], alpha: float) -> dict[str, Any]:
    import warnings

    from scipy import stats
    from statsmodels.regression.mixed_linear_model import MixedLM

    from workbench.stats.hierarchical import anova_icc

    y = np.concatenate(values)
    g = np.concatenate([np.full(v.size, i) for i, v in enumerate(values)])
    k = len(values)
    shrunk, lo, hi = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    s2b = s2w = icc = math.nan
    center = float(y.mean())
    if k >= 2 and y.size > k:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = MixedLM(y, np.ones((y.size, 1)), groups=g).fit(reml=True)
        s2b, s2w = float(np.asarray(fit.cov_re).reshape(-1)[0]), float(fit.scale)
        icc = s2b / (s2b + s2w) if s2b + s2w > 0 else 0.0
        center = float(np.asarray(fit.fe_params).reshape(-1)[0])
        re, re_cov = fit.random_effects, fit.random_effects_cov
        for i in range(k):
            eff = float(np.asarray(re[i]).reshape(-1)[0])
            sd = math.sqrt(max(0.0, float(np.asarray(re_cov[i]).reshape(-1)[0])))
            shrunk[i], lo[i], hi[i] = center + eff, center + eff - 1.96 * sd, center + eff + 1.96 * sd
    f = stats.f_oneway(*values) if k >= 2 and all(v.size > 0 for v in values) and y.size > k else None
    means = np.array([v.mean() for v in values])
    pooled_sd = math.sqrt(s2w) if s2w == s2w and s2w > 0 else float(np.std(y, ddof=1)) if y.size > 1 else math.nan
    ns = np.array([v.size for v in values], dtype=np.float64)
    resid = (means - y.mean()) / (pooled_sd / np.sqrt(ns)) if pooled_sd and pooled_sd == pooled_sd else np.full(k, np.nan)
    _icc, icc_lo, icc_hi = anova_icc(values, level=1 - alpha) if k >= MIN_UNITS_FOR_INTERVAL else (math.nan, math.nan, math.nan)
    stat = float(f.statistic) if f is not None else math.nan
    p = float(f.pvalue) if f is not None else math.nan
    def vs_rest(i: int, live: list[int]) -> float:  # Welch's t, the unit against the others pooled
        rest = np.concatenate([values[j] for j in live if j != i]) if len(live) > 1 else np.zeros(0)
        if values[i].size < 2 or rest.size < 2:
            return 1.0
        p = float(stats.ttest_ind(values[i], rest, equal_var=False).pvalue)
        return p if p == p else 1.0

    def spread(live: list[int]) -> float:
        sub = [values[j] for j in live if values[j].size]
        if len(sub) < 2 or sum(v.size for v in sub) <= len(sub):
            return math.nan
        return float(stats.f_oneway(*sub).pvalue)

    flags = _outliers(k, vs_rest, spread, alpha)
    p_unit = np.array([vs_rest(i, list(range(k))) for i in range(k)])
    return {"icc": icc, "icc_lo": icc_lo, "icc_hi": icc_hi, "shrunk": shrunk, "lo": lo, "hi": hi, "residuals": resid,
            "p_unit": p_unit, "flags": flags, "statistic": stat, "df": float(k - 1), "p_value": p,
            "test": "one-way ANOVA F (equal means)", "center": center, "between_var": s2b, "within_var": s2w}


def variation(
    source: Store | pl.DataFrame,
    *,
    metric: str = "success",
    groups: Sequence[str] | str = ("hardware.unit",),
    within: Sequence[str] | str | None = None,
    alpha: float = 0.05,
    min_grade: str | None = None,
) -> VariationResult:
    """Variance components, shrunken unit estimates and overdispersion (module doc).

    Parameters
    ----------
    source
        A store (metrics computed on demand) or a catalog DataFrame.
    metric
        A rate or a number.
    groups
        Grouping factors, each analysed as the units of its own random effect.
    within
        Factors defining cells analysed separately (e.g. ``model.version``).
    alpha
        Level of the test of equal units and (Bonferroni over units) of the outlier flags.
    min_grade
        Leave out runs graded below this.

    Raises
    ------
    ConfigError
        An unknown metric or factor (naming the valid ones), or no run with a value.
    """
    import polars as pl

    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",") if g.strip()]
    if isinstance(within, str):
        within = [w.strip() for w in within.split(",") if w.strip()]
    groups, within = list(groups), list(within or [])
    if not groups:
        msg = "variation needs at least one grouping factor (e.g. hardware.unit)"
        raise ConfigError(msg)
    frame, kind, _unit, _higher = metric_frame(source, metric, needs=[g for g in [*groups, *within] if g != DAY],
                                               min_grade=min_grade)
    if DAY in groups and DAY not in frame.columns:
        if "start_ns" not in frame.columns:
            msg = "grouping by day needs run start times (start_ns) in the catalog"
            raise ConfigError(msg)
        frame = frame.with_columns(pl.from_epoch(pl.col("start_ns").cast(pl.Int64), time_unit="ns").dt.date().cast(pl.String).alias(DAY))
    bad = frame.filter(pl.col("value").is_null() | pl.col("value").is_nan())
    excluded = dict.fromkeys(bad["run_id"].to_list(), "no value of the metric")
    frame = frame.filter(~(pl.col("value").is_null() | pl.col("value").is_nan()))
    if frame.height == 0:
        msg = f"no run has a value of {metric!r}"
        raise ConfigError(msg)
    comp_rows: list[dict[str, Any]] = []
    unit_rows: list[dict[str, Any]] = []
    cells = frame.group_by(within, maintain_order=True) if within else [((), frame)]
    for key, part in cells:
        cell = dict(zip(within, key, strict=True))
        for grp in groups:
            sub = part.filter(pl.col(grp).is_not_null())
            for r in part.filter(pl.col(grp).is_null())["run_id"].to_list():
                excluded[r] = f"no value of {grp}"
            units = sorted(sub[grp].cast(pl.String).unique().to_list())
            per = [sub.filter(pl.col(grp).cast(pl.String) == u) for u in units]
            vals = [p["value"].to_numpy().astype(np.float64) for p in per]
            if kind == "rate":
                ks = np.array([float(v.sum()) for v in vals])
                ns = np.array([float(v.size) for v in vals])
                out = _rates(ks, ns, alpha)
            else:
                out = _numbers(vals, alpha)
            assert out is not None
            icc_lo, icc_hi = out["icc_lo"], out["icc_hi"]
            if len(units) < 2:  # one level: nothing to compare, so no number
                out.update(icc=math.nan, p_value=math.nan, statistic=math.nan)
            overdispersed = bool(out["p_value"] == out["p_value"] and out["p_value"] < alpha)
            flags = np.asarray(out["flags"]) & overdispersed
            comp_rows.append({**cell, "group": grp, "n_units": len(units), "n_runs": int(sub.height), "icc": out["icc"],
                              "icc_lo": icc_lo, "icc_hi": icc_hi, "between_var": out["between_var"], "within_var": out["within_var"],
                              "center": out["center"], "test": out["test"], "statistic": out["statistic"], "df": out["df"],
                              "p_value": out["p_value"], "overdispersed": overdispersed,
                              "outliers": [u for u, f in zip(units, flags, strict=True) if f]})
            for i, u in enumerate(units):
                unit_rows.append({**cell, "group": grp, "unit": u, "n": int(vals[i].size), "raw": float(vals[i].mean()),
                                  "shrunk": float(out["shrunk"][i]), "lo": float(out["lo"][i]), "hi": float(out["hi"][i]),
                                  "residual": float(out["residuals"][i]), "flag": bool(flags[i]),
                                  "run_ids": per[i]["run_id"].to_list()})
    return VariationResult(metric.removeprefix("metrics."), kind, groups, within, pl.DataFrame(comp_rows),
                           pl.DataFrame(unit_rows), alpha, excluded)
