"""Simulation against reality: rank agreement and prediction-powered estimates.

* :func:`mmrv` -- the Mean Maximum Rank Violation of SimplerEnv (Li et al. 2024,
  *Evaluating Real-World Robot Manipulation Policies in Simulation*): for each policy,
  the largest real-performance gap to a policy that simulation orders the other way;
  averaged over policies. 0 when sim orders every pair as reality does.
* :func:`ppi_mean` -- the prediction-powered estimate of a mean (Angelopoulos et al.
  2023, *Prediction-powered inference*, Science 382; the power-tuned PPI++ of
  Angelopoulos, Duchi & Zrnic 2023): many simulated runs ``f`` of a policy, corrected by
  ``n`` real runs ``y`` paired with simulated runs ``f_paired`` of the same scenarios::

      θ = λ · mean(f) + mean(y − λ · f_paired)
      Var = λ² Var(f) / N + Var(y − λ f_paired) / n

  with λ minimising the variance (clipped to [0, 1]; λ = 1 is classic PPI, λ = 0 the
  real runs alone). The effective number of real runs is the n a real-only mean would
  need for the same variance. The interval is the papers' with Student's t quantile on
  ``n − 1`` degrees of freedom in place of the normal one: with a few dozen real runs
  that rarely disagree with their simulated twins the variance of the correction is
  poorly estimated, and the normal interval covered 90.5 % where 95 % was asked
  (simulated in ``tests/stats/test_fleet_stats.py``).

Examples
--------
>>> import numpy as np
>>> round(mmrv(np.array([0.9, 0.5, 0.7]), np.array([0.8, 0.6, 0.4])), 4)  # sim swaps the last two
0.1333
>>> est = ppi_mean(np.r_[np.ones(80), np.zeros(20)], np.array([1, 1, 0, 1, 1, 0, 1, 1.]), np.array([1, 1, 0, 1, 1, 1, 1, 1.]))
>>> round(est.estimate, 3), round(est.lam, 2), est.n_sim, est.n_real
(0.703, 0.63, 100, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PPIEstimate", "mmrv", "ppi_mean"]


def mmrv(sim: np.ndarray, real: np.ndarray) -> float:
    """Mean Maximum Rank Violation of *sim* scores against *real* ones (higher is better)."""
    s = np.asarray(sim, dtype=np.float64)
    r = np.asarray(real, dtype=np.float64)
    k = s.size
    if k < 2:
        return math.nan
    wrong = (s[:, None] > s[None, :]) != (r[:, None] > r[None, :])  # as SimplerEnv's metrics.py (ties included)
    gap = np.abs(r[:, None] - r[None, :]) * wrong
    return float(np.mean(gap.max(axis=1)))


@dataclass(frozen=True)
class PPIEstimate:
    """``estimate`` with its ``lo``–``hi`` interval at ``level``; ``se``; ``lam`` the
    weight on the simulated runs; ``n_sim``, ``n_real`` runs used; ``effective_real``
    the real runs a real-only mean would need for the same standard error."""

    estimate: float
    lo: float
    hi: float
    se: float
    lam: float
    n_sim: int
    n_real: int
    effective_real: float
    level: float


def ppi_mean(f_all: np.ndarray, y: np.ndarray, f_paired: np.ndarray, *, level: float = 0.95,
             lam: float | None = None) -> PPIEstimate:
    """Prediction-powered mean of *y* (see the module doc).

    Parameters
    ----------
    f_all
        Outcomes of the simulated runs not paired with real ones (N values).
    y, f_paired
        Real outcomes and the simulated outcome of the same scenario (n pairs).
    level
        Interval level.
    lam
        Fixed weight of the simulation; ``None`` for the power-tuned one.
    """
    from scipy import stats

    f_all = np.asarray(f_all, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    f_paired = np.asarray(f_paired, dtype=np.float64)
    n, big_n = y.size, f_all.size
    if n < 2 or f_paired.size != n:
        msg = f"prediction-powered inference needs at least 2 real runs paired with simulated ones, got {n}"
        raise ValueError(msg)
    if lam is None:
        if big_n < 2:
            lam = 0.0
        else:
            f_pool = np.concatenate([f_all, f_paired])
            var_f = float(np.var(f_pool, ddof=1))
            cov = float(np.cov(y, f_paired, ddof=1)[0, 1])
            lam = 0.0 if var_f <= 0 else float(np.clip(cov / ((1 + n / big_n) * var_f), 0.0, 1.0))
    mean_f = float(np.mean(f_all)) if big_n else 0.0
    rect = y - lam * f_paired
    est = lam * mean_f + float(np.mean(rect))
    var = (lam**2 * float(np.var(f_all, ddof=1)) / big_n if big_n > 1 else 0.0) + float(np.var(rect, ddof=1)) / n
    se = math.sqrt(max(var, 0.0))
    z = float(stats.t.ppf(0.5 + level / 2, n - 1))  # Student's t on the n real runs: the normal quantile under-covers at small n
    p = min(max(est, 0.0), 1.0) if np.all((y == 0) | (y == 1)) else math.nan
    var_one = p * (1 - p) if p == p else float(np.var(y, ddof=1))
    eff = var_one / var if var > 0 else math.inf
    return PPIEstimate(est, est - z * se, est + z * se, se, float(lam), big_n, n, eff, level)
