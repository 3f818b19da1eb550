"""Unit-to-unit variation: empirical-Bayes beta-binomial for rates, overdispersion.

* :func:`fit_beta_binomial` -- maximum-likelihood ``(a, b)`` of a beta-binomial from
  per-unit successes ``k`` of ``n`` (the log-likelihood of ``scipy.stats.betabinom``,
  written with ``betaln`` and optimised on ``log a, log b``). The intra-class correlation of the outcomes of one
  unit is ``rho = 1 / (a + b + 1)`` (the share of the variance of a single outcome
  that lies between units). With no extra variation the fit runs to ``a + b → ∞``:
  ``rho`` is then reported as 0.
* :func:`rho_profile_interval` -- the profile-likelihood interval of ``rho`` (the
  beta-binomial maximised over its mean at each ``rho``; the bounds where twice the
  log-likelihood drops by the χ²₁ quantile), 0 as lower bound when the data cannot tell
  ``rho`` from 0.
* :func:`anova_icc` -- the one-way random-effects intra-class correlation of numbers
  (ICC(1), the ANOVA estimator) with its F-based interval (Searle 1971; Shrout & Fleiss
  1979), exact for equal group sizes and using the average group size ``n0`` otherwise.
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

__all__ = ["Overdispersion", "anova_icc", "fit_beta_binomial", "overdispersion_test", "rho_profile_interval", "shrink_rates"]


def fit_beta_binomial(k: np.ndarray, n: np.ndarray, *, start: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """``(a, b, rho)``: the beta-binomial of per-unit counts by maximum likelihood.

    Units with ``n = 0`` carry no information and are ignored. ``rho = 0`` (and
    ``a + b`` capped at 1e6) when the counts vary no more than binomially. *start*
    (an earlier fit's ``a, b``, e.g. for bootstrap refits) replaces the default
    starting points.
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

    starts = ([np.log(np.clip(start, 1e-8, cap))] if start is not None
              else [np.log([p * s, (1 - p) * s]) for s in (2.0, 50.0, 1e4)])
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


def _bb_loglik(k: np.ndarray, n: np.ndarray, mu: float, rho: float) -> float:
    from scipy import special

    if rho <= 0:
        return float(np.sum(k * np.log(mu) + (n - k) * np.log1p(-mu)))
    s = 1.0 / rho - 1.0
    a, b = mu * s, (1 - mu) * s
    return float(np.sum(special.betaln(k + a, n - k + b)) - k.size * special.betaln(a, b))


def rho_profile_interval(k: np.ndarray, n: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """Profile-likelihood interval of the beta-binomial's intra-class correlation ``rho``."""
    from scipy import optimize, stats

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    k, n = k[keep], n[keep]
    if k.size < 2 or k.sum() in (0, n.sum()):
        return math.nan, math.nan

    def profile(rho: float) -> float:
        res = optimize.minimize_scalar(lambda m: -_bb_loglik(k, n, m, rho), bounds=(1e-6, 1 - 1e-6), method="bounded",
                                       options={"xatol": 1e-7})
        return -float(res.fun)

    grid = np.concatenate([[0.0], np.geomspace(1e-4, 0.98, 80)])
    prof = np.array([profile(r) for r in grid])
    top = int(np.argmax(prof))
    best_rho = float(optimize.minimize_scalar(lambda r: -profile(r), bounds=(grid[max(0, top - 1)], grid[min(grid.size - 1, top + 1)]),
                                              method="bounded").x) if 0 < top < grid.size - 1 else float(grid[top])
    cut = max(prof.max(), profile(best_rho)) - stats.chi2.ppf(level, 1) / 2

    def edge(lo: float, hi: float) -> float:  # profile crosses the cut between lo and hi
        return float(optimize.brentq(lambda r: profile(r) - cut, lo, hi, xtol=1e-6))

    below = prof < cut
    left = np.flatnonzero(below[: top + 1])
    right = np.flatnonzero(below[top:]) + top
    lo = 0.0 if left.size == 0 else edge(grid[left[-1]], grid[left[-1] + 1])
    hi = float(grid[-1]) if right.size == 0 else edge(grid[right[0] - 1], grid[right[0]])
    return lo, hi


def anova_icc(values: list[np.ndarray], *, level: float = 0.95) -> tuple[float, float, float]:
    """``(icc, lo, hi)``: one-way random-effects ICC(1) of groups of numbers with its
    F-based interval (clipped to [0, 1])."""
    from scipy import stats

    values = [np.asarray(v, dtype=np.float64) for v in values if np.size(v)]
    ns = np.array([v.size for v in values], dtype=np.float64)
    g, big_n = ns.size, ns.sum()
    if g < 2 or big_n <= g:
        return math.nan, math.nan, math.nan
    means = np.array([v.mean() for v in values])
    grand = np.concatenate(values).mean()
    msb = float(np.sum(ns * (means - grand) ** 2) / (g - 1))
    msw = float(sum(((v - v.mean()) ** 2).sum() for v in values) / (big_n - g))
    if msw <= 0:
        return (1.0, 1.0, 1.0) if msb > 0 else (math.nan, math.nan, math.nan)
    n0 = (big_n - np.sum(ns**2) / big_n) / (g - 1)
    f = msb / msw
    icc = max(0.0, (f - 1) / (f + n0 - 1))
    tail = (1 - level) / 2
    f_lo = f / stats.f.ppf(1 - tail, g - 1, big_n - g)
    f_hi = f / stats.f.ppf(tail, g - 1, big_n - g)
    lo = min(1.0, max(0.0, (f_lo - 1) / (f_lo + n0 - 1)))
    hi = min(1.0, max(0.0, (f_hi - 1) / (f_hi + n0 - 1)))
    return icc, lo, hi
