"""Simulation against reality, per policy: does sim rank policies as the world does, and
what do many simulated runs plus a few real ones say about real success?

Runs carry a domain factor (``environment.domain``: ``sim`` or ``real`` by default).
:func:`simreal` reports per value of *by* (a policy) the sim and real rates (Wilson
intervals) or means, then across policies the Pearson correlation, Kendall's τ and the
MMRV of SimplerEnv (:mod:`workbench.stats.simreal`), the pairs of policies whose order
sim gets wrong, and per policy a prediction-powered estimate of the real value: the
simulated runs corrected by the real runs paired with a simulated run of the same
scenario (``pair_by``, default ``scenario.seed``), with its interval and the number of
real runs it is worth.

Examples
--------
>>> import polars as pl
>>> rows = []
>>> for v, ps, pr in (("a", 0.9, 0.8), ("b", 0.7, 0.6), ("c", 0.5, 0.7)):
...     rows += [{"run_id": f"{v}-s{s}", "model.version": v, "environment.domain": "sim", "scenario.seed": s,
...               "metrics.success": float((s * 7919) % 100 < ps * 100)} for s in range(200)]
...     rows += [{"run_id": f"{v}-r{s}", "model.version": v, "environment.domain": "real", "scenario.seed": s,
...               "metrics.success": float((s * 7919) % 100 < pr * 100)} for s in range(20)]
>>> res = simreal(pl.DataFrame(rows))
>>> res.misranked["a"].to_list(), res.misranked["b"].to_list()
(['c'], ['b'])
>>> round(res.kendall_tau, 2)
0.33
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError
from workbench.ranking import metric_frame, pairing_keys

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["SimRealResult", "simreal"]


@dataclass
class SimRealResult:
    """``table``: per policy ``n_sim``, ``sim``, ``sim_lo``–``sim_hi``, ``n_real``,
    ``real``, ``real_lo``–``real_hi``, the prediction-powered ``ppi`` with
    ``ppi_lo``–``ppi_hi``, ``n_paired`` and ``effective_real``; ``misranked``: the pairs
    sim orders the other way (``a`` above ``b`` in reality); the agreement figures."""

    by: str
    metric: str
    kind: str
    domain: str
    table: pl.DataFrame
    misranked: pl.DataFrame
    pearson: float
    pearson_p: float
    kendall_tau: float
    kendall_p: float
    mmrv: float
    pair_by: list[str]
    excluded: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Agreement across policies, then the pairs sim gets wrong."""
        k = self.table.filter((self.table["n_sim"] > 0) & (self.table["n_real"] > 0)).height
        lines = [f"{k} policies with sim and real runs: Pearson r = {self.pearson:.2f} (p={self.pearson_p:.3g}), "
                 f"Kendall τ = {self.kendall_tau:.2f} (p={self.kendall_p:.3g}), MMRV = {self.mmrv:.3f}"]
        if self.misranked.height:
            wrong = "; ".join(f"{a} > {b} in reality, sim says the opposite"
                              for a, b in zip(self.misranked["a"], self.misranked["b"], strict=True))
            lines.append(f"mis-ranked by sim: {wrong}")
        else:
            lines.append("sim orders every pair of policies as reality does")
        for r in self.table.iter_rows(named=True):
            if r["n_sim"] and r["n_real"] and r["n_paired"] < 2:
                keys = ", ".join(self.pair_by) or "no pairing key"
                lines.append(f"{r[self.by]}: fewer than 2 real runs share {keys} with a simulated run: "
                             f"no prediction-powered estimate (real {self.metric} {r['real']:.3f} from {r['n_real']} runs)")
            if r["ppi"] is not None and r["ppi"] == r["ppi"]:
                lines.append(f"{r[self.by]}: real {self.metric} {r['real']:.3f} from {r['n_real']} real runs; prediction-powered "
                             f"{r['ppi']:.3f} [{r['ppi_lo']:.3f}, {r['ppi_hi']:.3f}] from {r['n_sim']} sim + {r['n_paired']} paired "
                             f"real runs, worth {r['effective_real']:.0f} real runs")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"by": self.by, "metric": self.metric, "kind": self.kind, "domain": self.domain, "pair_by": self.pair_by,
                "pearson": self.pearson, "pearson_p": self.pearson_p, "kendall_tau": self.kendall_tau,
                "kendall_p": self.kendall_p, "mmrv": self.mmrv, "table": self.table.to_dicts(),
                "misranked": self.misranked.to_dicts(), "excluded": self.excluded}


def simreal(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    metric: str = "success",
    domain: str = "environment.domain",
    sim: str = "sim",
    real: str = "real",
    pair_by: Sequence[str] | str | None = None,
    level: float = 0.95,
    min_grade: str | None = None,
) -> SimRealResult:
    """Sim against real per value of *by* (see the module doc).

    Parameters
    ----------
    source
        A store (metrics computed on demand) or a catalog DataFrame.
    by
        The policy factor.
    metric
        A rate or a number (higher is better for the rank figures).
    domain, sim, real
        The domain factor and its two values.
    pair_by
        Keys pairing a real run with the simulated run of the same scenario (default
        ``scenario.seed`` when present; ``[]``: no pairing, no prediction-powered estimate).
    level
        Interval level.
    min_grade
        Leave out runs graded below this.

    Raises
    ------
    ConfigError
        Unknown factor or metric, a domain value neither *sim* nor *real* only, or no
        policy with both sim and real runs.
    """
    import polars as pl
    from scipy import stats

    from workbench.ranking import _interval
    from workbench.stats.simreal import mmrv, ppi_mean

    try:
        frame, kind, _unit, higher = metric_frame(source, metric, needs=[by, domain], min_grade=min_grade)
    except ConfigError as err:
        if f"no factor column {domain!r}" in str(err):
            msg = (f"{err}. {domain} says which runs are simulated ({sim}) and which real ({real}): set it with "
                   f"`workbench ingest … --meta {domain}={sim}` or `workbench factors set`, or name another with --domain")
            raise ConfigError(msg) from None
        raise
    pair_by = pairing_keys(frame, pair_by)
    values = set(frame[domain].cast(pl.String).drop_nulls().unique().to_list())
    if sim not in values or real not in values:
        msg = f"{domain} must hold both {sim!r} and {real!r}; it holds {sorted(values) or 'nothing'} (set it with --meta {domain}=sim at ingest or `workbench factors set`)"
        raise ConfigError(msg)
    bad = frame.filter(pl.col("value").is_null() | pl.col("value").is_nan() | pl.col(by).is_null())
    excluded = dict.fromkeys(bad["run_id"].to_list(), "no value of the metric or policy")
    frame = frame.filter(~pl.col("run_id").is_in(list(excluded)))
    dom = pl.col(domain).cast(pl.String)
    rows = []
    for v in sorted(frame[by].cast(pl.String).unique().to_list()):
        part = frame.filter(pl.col(by).cast(pl.String) == v)
        s_part, r_part = part.filter(dom == sim), part.filter(dom == real)
        xs, xr = s_part["value"].to_numpy().astype(float), r_part["value"].to_numpy().astype(float)
        s_mean, s_lo, s_hi = _interval(kind, xs, level)
        r_mean, r_lo, r_hi = _interval(kind, xr, level)
        row = {by: v, "n_sim": int(xs.size), "sim": s_mean, "sim_lo": s_lo, "sim_hi": s_hi, "n_real": int(xr.size),
               "real": r_mean, "real_lo": r_lo, "real_hi": r_hi, "ppi": math.nan, "ppi_lo": math.nan, "ppi_hi": math.nan,
               "n_paired": 0, "effective_real": math.nan, "lam": math.nan,
               "run_ids": part["run_id"].to_list()}
        if pair_by and xs.size and xr.size:
            sk = s_part.group_by(pair_by).agg(pl.col("value").mean().alias("f"))
            joined = r_part.select(*pair_by, "value").join(sk, on=pair_by, how="inner")
            if joined.height >= 2:
                paired_keys = joined.select(pair_by).unique()
                rest = s_part.join(paired_keys, on=pair_by, how="anti")["value"].to_numpy().astype(float)
                est = ppi_mean(rest, joined["value"].to_numpy().astype(float), joined["f"].to_numpy().astype(float), level=level)
                row.update(ppi=est.estimate, ppi_lo=est.lo, ppi_hi=est.hi, n_paired=joined.height,
                           effective_real=est.effective_real, lam=est.lam)
        rows.append(row)
    table = pl.DataFrame(rows)
    both = table.filter((pl.col("n_sim") > 0) & (pl.col("n_real") > 0))
    if both.height == 0:
        msg = f"no value of {by!r} has both {sim} and {real} runs with {metric!r}"
        raise ConfigError(msg)
    s_v, r_v = both["sim"].to_numpy(), both["real"].to_numpy()
    sign = 1.0 if higher else -1.0
    pear = pear_p = tau = tau_p = math.nan
    if both.height >= 3 and np.std(s_v) > 0 and np.std(r_v) > 0:
        pr = stats.pearsonr(s_v, r_v)
        pear, pear_p = float(pr.statistic), float(pr.pvalue)
    if both.height >= 2:
        kt = stats.kendalltau(s_v, r_v)
        tau, tau_p = float(kt.statistic), float(kt.pvalue)
    names = both[by].to_list()
    wrong = []
    for i in range(len(names)):
        for j in range(len(names)):
            if sign * (r_v[i] - r_v[j]) > 0 and sign * (s_v[i] - s_v[j]) < 0:
                wrong.append({"a": names[i], "b": names[j], "real_difference": float(r_v[i] - r_v[j]),
                              "sim_difference": float(s_v[i] - s_v[j])})
    mis = pl.DataFrame(wrong, schema={"a": pl.String, "b": pl.String, "real_difference": pl.Float64, "sim_difference": pl.Float64})
    return SimRealResult(by, metric.removeprefix("metrics."), kind, domain, table,
                         mis.sort("real_difference", descending=True), pear, pear_p, tau, tau_p,
                         mmrv(sign * s_v, sign * r_v), pair_by, excluded)
