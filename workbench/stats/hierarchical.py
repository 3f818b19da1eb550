"""Unit-to-unit variation: empirical-Bayes beta-binomial for rates, overdispersion.

* :func:`fit_beta_binomial` -- maximum-likelihood ``(a, b)`` of a beta-binomial from
  per-unit successes ``k`` of ``n`` (the log-likelihood of ``scipy.stats.betabinom``,
  written with ``betaln`` and optimised on ``log a, log b``). The intra-class correlation of the outcomes of one
  unit is ``rho = 1 / (a + b + 1)`` (the share of the variance of a single outcome
  that lies between units). With no extra variation the fit runs to ``a + b → ∞``:
  ``rho`` is then reported as 0.
* :func:`shrink_rates` -- each unit's posterior ``Beta(a + k, b + n − k)``: its mean (the
  shrunken rate) and an equal-tailed interval.
* :func:`overdispersion_test` -- Pearson's χ² test of equal rates across units (the
  binomial model's test of homogeneity; ``scipy.stats.chi2_contingency`` without
  continuity correction gives the same statistic), with each unit's standardised
  residual, so the units that drive the spread can be named.

Examples
--------
>>> import numpy as np
>>> k, n = np.array([18, 19, 17, 6, 18]), np.array([20, 20, 20, 20, 20])
>>> t = overdispersion_test(k, n)
>>> t.p_value < 0.001, int(np.argmax(np.abs(t.residuals)))
(True, 3)
>>> a, b, rho = fit_beta_binomial(k, n)
>>> 0 < rho < 1
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Overdispersion", "fit_beta_binomial", "overdispersion_test", "shrink_rates"]


def fit_beta_binomial(k: np.ndarray, n: np.ndarray) -> tuple[float, float, float]:
    """``(a, b, rho)``: the beta-binomial of per-unit counts by maximum likelihood.

    Units with ``n = 0`` carry no information and are ignored. ``rho = 0`` (and
    ``a + b`` capped at 1e6) when the counts vary no more than binomially.
    """
    from scipy import optimize, special

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    k, n = k[keep], n[keep]
    if k.size == 0:
        msg = "a beta-binomial fit needs at least one unit with runs"
        raise ValueError(msg)
    p = (k.sum() + 0.5) / (n.sum() + 1.0)
    cap = 1e6

    def nll(theta: np.ndarray) -> float:  # the binomial coefficient does not depend on (a, b)
        a, b = np.exp(np.clip(theta, -20, math.log(cap)))
        return -float(np.sum(special.betaln(k + a, n - k + b)) - k.size * special.betaln(a, b))

    starts = [np.log([p * s, (1 - p) * s]) for s in (2.0, 50.0, 1e4)]
    best = min((optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(-20, math.log(cap))] * 2) for x0 in starts),
               key=lambda r: r.fun)
    a, b = (float(v) for v in np.exp(np.clip(best.x, -20, math.log(cap))))
    rho = 1.0 / (a + b + 1.0)
    if a + b > 0.5 * cap or rho < 1e-6:
        scale = cap
        a, b, rho = p * scale, (1 - p) * scale, 0.0
    return a, b, rho


def shrink_rates(k: np.ndarray, n: np.ndarray, a: float, b: float, *, level: float = 0.95
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and equal-tailed *level* interval of each unit's rate under the
    prior ``Beta(a, b)``."""
    from scipy import stats

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    post_a, post_b = a + k, b + n - k
    tail = (1 - level) / 2
    return (post_a / (post_a + post_b), stats.beta.ppf(tail, post_a, post_b), stats.beta.ppf(1 - tail, post_a, post_b))


@dataclass(frozen=True)
class Overdispersion:
    """Pearson's test of equal rates across units.

    ``statistic`` χ² with ``df`` degrees of freedom and its ``p_value`` (nan with fewer
    than two units or when every outcome is equal); ``residuals`` per unit
    ``(k − n p̂) / sqrt(n p̂ (1 − p̂))``; ``dispersion`` the χ² / df ratio (≈ 1 without
    extra variation); ``small_counts`` when an expected count is below 5 (the χ²
    approximation is rough: read the p-value as a screen).
    """

    statistic: float
    df: int
    p_value: float
    residuals: np.ndarray
    dispersion: float
    small_counts: bool


def overdispersion_test(k: np.ndarray, n: np.ndarray) -> Overdispersion:
    """Test whether per-unit successes *k* of *n* vary more than one common rate allows."""
    from scipy import stats

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    p = k[keep].sum() / n[keep].sum() if keep.any() else math.nan
    units = int(keep.sum())
    res = np.full(k.size, np.nan)
    if units < 2 or not 0 < p < 1:
        return Overdispersion(math.nan, max(0, units - 1), math.nan, res, math.nan, True)
    expect = n * p
    var = n * p * (1 - p)
    res[keep] = (k[keep] - expect[keep]) / np.sqrt(var[keep])
    chi2 = float(np.sum(res[keep] ** 2))
    df = units - 1
    small = bool(np.any(expect[keep] < 5) or np.any(n[keep] - expect[keep] < 5))
    return Overdispersion(chi2, df, float(stats.chi2.sf(chi2, df)), res, chi2 / df, small)
