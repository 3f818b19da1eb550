"""Planning comparisons of success rates: exact power, detectable drops, runs needed.

The gate compares a candidate policy with a baseline per cell, one-sided, looking for
*harm* (candidate success rate lower), with a small number of success/failure trials
per arm. This module answers the planning questions for that test:

* :func:`power_rate` -- the exact power of the one-sided exact test: Fisher's exact
  (conditional) test for unpaired runs, computed by enumerating every table
  ``(k_base, k_cand)`` with its binomial probability under the alternative; the exact
  McNemar (sign) test on the discordant pairs for paired runs.
* :func:`minimum_detectable_drop` -- the smallest drop in success rate that the test
  detects with the target power at the given numbers of runs.
* :func:`runs_needed` -- runs per arm for a target power at a given drop.
* :func:`more_runs_to_decide` -- for an undecided cell, how many more runs per arm
  would probably make the test significant (predictive power given the data so far).
* :func:`plan_table` -- all of the above for the cells of a comparison.

Conventions: rates are success probabilities in ``[0, 1]``; a "drop" ``delta`` means
``p_cand = p_base - delta``; ``alpha`` is the one-sided level *of one cell's test* (the
gate's family-adjusted level; :func:`plan_table` splits a family-wise level by
Bonferroni). A table is significant when its one-sided p-value is ``<= alpha``.

Exact power is computed, never simulated; it is checked against Monte-Carlo
simulation in the tests. Because the tests are discrete, exact power is a sawtooth
in ``n`` and is lower than the normal-approximation power
(``statsmodels.stats.power.NormalIndPower``) at small ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import gammaln

from workbench.model import ConfigError

__all__ = [
    "SHRINK_RUNS",
    "STAY",
    "fisher_p_less",
    "minimum_detectable_drop",
    "more_runs_to_decide",
    "plan_table",
    "power_rate",
    "runs_needed",
]

#: ``runs_needed`` / ``more_runs_to_decide`` return the smallest n whose power reaches
#: the target at n and at each of the next ``STAY - 1`` values of n (the sawtooth rule).
STAY = 5

#: ``more_runs_to_decide`` shrinks each arm's observed rate toward the pooled rate by
#: this many pseudo-runs before treating it as the truth.
SHRINK_RUNS = 2.0

_TAIL = 1e-13  # binomial tail mass dropped per arm when enumerating large tables
_FULL_CACHE_MAX = 40_000  # tables with at most this many cells are cached whole
_REL = 1e-9  # relative tolerance of "p <= alpha" against floating-point noise


# --------------------------------------------------------------------------- validation


def _check_prob(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    lo_ok = v > 0 if open_low else v >= 0
    hi_ok = v < 1 if open_high else v <= 1
    if not (ok and math.isfinite(v) and lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        msg = f"{name}={value!r} is not valid; use a number in {lo}, {hi}"
        raise ConfigError(msg)
    return v


def _check_alpha(alpha: Any) -> float:
    return _check_prob("alpha", alpha, open_low=True, open_high=True)


def _check_power(power: Any) -> float:
    return _check_prob("power", power, open_low=True, open_high=True)


def _check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or int(value) < minimum:
        msg = f"{name}={value!r} is not valid; use an integer >= {minimum}"
        raise ConfigError(msg)
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        msg = f"{name}={value!r} is not valid; use True or False"
        raise ConfigError(msg)
    return value


# --------------------------------------------------------------------------- Fisher p-values


def _fisher_grid(n_b: int, n_c: int, kb0: int, kb1: int, kc0: int, kc1: int) -> np.ndarray:
    """One-sided Fisher p-values P(K_c <= k_c | k_b + k_c) on the grid kb0..kb1 x kc0..kc1.

    Built from the hypergeometric pmf in log space, laid out by total successes s and
    candidate successes j, and summed cumulatively over j (much faster than calling
    ``scipy.stats.hypergeom.cdf`` per cell; the tests check it against it).
    """
    n_tot = n_b + n_c
    s = np.arange(kb0 + kc0, kb1 + kc1 + 1)[:, None]
    j = np.arange(0, kc1 + 1)[None, :]
    kb_of = s - j
    valid = (kb_of >= 0) & (kb_of <= n_b)
    kb_safe = np.clip(kb_of, 0, n_b)

    def lchoose(n: int, k: np.ndarray) -> np.ndarray:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    logpmf = lchoose(n_c, j) + lchoose(n_b, kb_safe) - lchoose(n_tot, s)
    pmf = np.exp(np.where(valid, logpmf, -np.inf))
    cdf = np.minimum(np.cumsum(pmf, axis=1), 1.0)
    kb = np.arange(kb0, kb1 + 1)[:, None]
    kc = np.arange(kc0, kc1 + 1)[None, :]
    return cdf[kb + kc - (kb0 + kc0), kc]


@lru_cache(maxsize=128)
def _fisher_full(n_b: int, n_c: int) -> np.ndarray:
    out = _fisher_grid(n_b, n_c, 0, n_b, 0, n_c)
    out.setflags(write=False)
    return out


def fisher_p_less(k_base: int, n_base: int, k_cand: int, n_cand: int) -> float:
    """One-sided Fisher exact p-value for harm (candidate success rate lower).

    Parameters
    ----------
    k_base, n_base : int
        Successes and runs of the baseline.
    k_cand, n_cand : int
        Successes and runs of the candidate.

    Returns
    -------
    float
        ``P(K_cand <= k_cand)`` under the hypergeometric distribution given the total
        successes, as ``scipy.stats.fisher_exact([[k_cand, n_cand - k_cand],
        [k_base, n_base - k_base]], alternative="less")``.

    Examples
    --------
    >>> round(fisher_p_less(18, 20, 12, 20), 4)
    0.0324
    """
    n_base = _check_count("n_base", n_base)
    n_cand = _check_count("n_cand", n_cand)
    k_base = _check_count("k_base", k_base, minimum=0)
    k_cand = _check_count("k_cand", k_cand, minimum=0)
    if k_base > n_base or k_cand > n_cand:
        msg = f"successes exceed runs: k_base={k_base} of n_base={n_base}, k_cand={k_cand} of n_cand={n_cand}"
        raise ConfigError(msg)
    return float(_fisher_grid(n_base, n_cand, k_base, k_base, k_cand, k_cand)[0, 0])


def _binom_range(n: int, p: float) -> tuple[int, int]:
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    lo = int(sps.binom.ppf(_TAIL, n, p))
    hi = int(sps.binom.isf(_TAIL, n, p)) + 1
    return max(0, lo), min(n, hi)


def _power_fisher(p_b: float, p_c: float, n_b: int, n_c: int, alpha: float) -> float:
    if (n_b + 1) * (n_c + 1) <= _FULL_CACHE_MAX:
        kb0, kb1, kc0, kc1 = 0, n_b, 0, n_c
        pv = _fisher_full(n_b, n_c)
    else:
        kb0, kb1 = _binom_range(n_b, p_b)
        kc0, kc1 = _binom_range(n_c, p_c)
        pv = _fisher_grid(n_b, n_c, kb0, kb1, kc0, kc1)
    wb = sps.binom.pmf(np.arange(kb0, kb1 + 1), n_b, p_b)
    wc = sps.binom.pmf(np.arange(kc0, kc1 + 1), n_c, p_c)
    reject = pv <= alpha * (1 + _REL)
    return float(min(1.0, wb @ reject.astype(float) @ wc))


# --------------------------------------------------------------------------- McNemar


def _mcnemar_crit(m: np.ndarray, alpha: float) -> np.ndarray:
    """Smallest b with P(Bin(m, 1/2) >= b) <= alpha (m + 1 when none)."""
    lim = alpha * (1 + _REL)
    crit = np.asarray(sps.binom.isf(alpha, m, 0.5), dtype=float) + 1
    crit = np.where(np.isfinite(crit), crit, m + 1).astype(int)
    crit = np.clip(crit, 0, m + 1)
    for _ in range(3):  # repair off-by-one answers of the discrete isf
        down = (crit > 0) & (sps.binom.sf(crit - 2, m, 0.5) <= lim)
        crit = np.where(down, crit - 1, crit)
        up = (crit <= m) & (sps.binom.sf(crit - 1, m, 0.5) > lim)
        crit = np.where(up, crit + 1, crit)
    return crit


def _discordance(p_b: float, p_c: float, p_disc: float | None) -> tuple[float, float]:
    """(discordance rate, P(harm-discordant | discordant)) for paired runs."""
    delta = p_b - p_c
    if p_disc is None:
        p_disc = p_b * (1 - p_c) + p_c * (1 - p_b)
    else:
        p_disc = _check_prob("p_discordant", p_disc)
        hi = min(p_b + p_c, 2 - p_b - p_c)
        if not (abs(delta) - 1e-12 <= p_disc <= hi + 1e-12):
            msg = (
                f"p_discordant={p_disc!r} is impossible for p_base={p_b}, p_cand={p_c}; "
                f"use a value in [{abs(delta):.4g}, {hi:.4g}]"
            )
            raise ConfigError(msg)
    if p_disc <= 0:
        return 0.0, 0.5
    theta = min(1.0, max(0.0, 0.5 + delta / (2 * p_disc)))
    return p_disc, theta


def _power_mcnemar(p_b: float, p_c: float, n: int, alpha: float, p_disc: float | None) -> float:
    pd, theta = _discordance(p_b, p_c, p_disc)
    m = np.arange(n + 1)
    w = sps.binom.pmf(m, n, pd)
    crit = _mcnemar_crit(m, alpha)
    cond = np.where(crit <= m, sps.binom.sf(crit - 1, m, theta), 0.0)
    return float(min(1.0, w @ cond))


# --------------------------------------------------------------------------- public API


def power_rate(
    p_base: float,
    p_cand: float,
    n_base: int,
    n_cand: int,
    *,
    alpha: float,
    paired: bool = False,
    p_discordant: float | None = None,
) -> float:
    """Exact power of the one-sided exact test for harm (candidate rate lower).

    Parameters
    ----------
    p_base, p_cand : float
        True success rates of baseline and candidate, in ``[0, 1]``.
    n_base, n_cand : int
        Runs per arm (>= 1). For ``paired=True`` they are the number of pairs and must
        be equal.
    alpha : float
        One-sided level of *this cell's* test, in ``(0, 1)``. When the gate checks
        ``c`` cells at a family-wise level ``α``, pass the Bonferroni share ``α / c``
        (what :func:`plan_table` does by default).
    paired : bool, default False
        False: Fisher's exact conditional test, power by enumerating all
        ``(n_base + 1) * (n_cand + 1)`` tables (for large tables the binomial tails
        beyond 1e-13 are dropped). True: exact McNemar (sign) test on the discordant
        pairs: the number ``m`` of discordant pairs is Binomial(n, p_discordant), the
        number of harm-discordant ones (baseline success, candidate failure) given
        ``m`` is Binomial(m, θ) with ``θ = 1/2 + (p_base - p_cand) / (2 p_discordant)``
        and the test rejects when it is in the upper α tail of Binomial(m, 1/2).
    p_discordant : float, optional
        Paired only: the probability that a pair is discordant. Default: the value for
        independent outcomes, ``p_base (1 - p_cand) + p_cand (1 - p_base)`` (positively
        correlated pairs have fewer discordant pairs and more power). Must lie in
        ``[|p_base - p_cand|, min(p_base + p_cand, 2 - p_base - p_cand)]``.

    Returns
    -------
    float
        Probability that the test is significant at ``alpha``. At ``p_cand == p_base``
        it is the actual size of the test (at most ``alpha``).

    Raises
    ------
    ConfigError
        For rates outside ``[0, 1]``, ``alpha`` outside ``(0, 1)``, counts < 1, unequal
        counts with ``paired=True`` or an impossible ``p_discordant``.

    Examples
    --------
    >>> round(power_rate(0.9, 0.6, 30, 30, alpha=0.05), 3)
    0.801
    >>> round(power_rate(0.9, 0.6, 30, 30, alpha=0.05, paired=True), 3)
    0.792

    With 4 cells tested by the gate, give each cell its Bonferroni share:

    >>> round(power_rate(0.9, 0.6, 30, 30, alpha=0.05 / 4), 3)
    0.59
    """
    p_b = _check_prob("p_base", p_base)
    p_c = _check_prob("p_cand", p_cand)
    n_b = _check_count("n_base", n_base)
    n_c = _check_count("n_cand", n_cand)
    a = _check_alpha(alpha)
    if _check_bool("paired", paired):
        if n_b != n_c:
            msg = f"paired=True needs n_base == n_cand (pairs), got n_base={n_b}, n_cand={n_c}"
            raise ConfigError(msg)
        return _power_mcnemar(p_b, p_c, n_b, a, p_discordant)
    if p_discordant is not None:
        msg = f"p_discordant={p_discordant!r} applies only to paired=True; leave it None for unpaired runs"
        raise ConfigError(msg)
    return _power_fisher(p_b, p_c, n_b, n_c, a)


def minimum_detectable_drop(
    p_base: float,
    n_base: int,
    n_cand: int,
    *,
    alpha: float,
    power: float = 0.8,
    paired: bool = False,
    p_discordant: float | None = None,
    tol: float = 1e-4,
) -> float:
    """Smallest drop δ the one-sided exact test detects with the target power.

    Bisection on δ in ``[0, p_base]`` of ``power_rate(p_base, p_base - δ, ...)``, which
    increases with δ (the rejection region of either test is monotone).

    The answer decreases with the number of runs over any doubling of ``n``, but not
    always from one ``n`` to the next for Fisher's test: its size jumps with ``n``
    (discreteness), so the exact power, and the drop it detects, is a sawtooth.
    For example at ``p_base=0.9``, ``alpha=0.05`` the drop detected with 6 runs per
    arm (0.738) is smaller than the one with 7 (0.759). Local rises are a few
    hundredths at most; the McNemar answer is monotone in the cases checked.

    Parameters
    ----------
    p_base : float
        Baseline success rate in ``[0, 1]``.
    n_base, n_cand : int
        Runs per arm (pairs for ``paired=True``; must be equal then).
    alpha : float
        One-sided level of the test.
    power : float, default 0.8
        Target power in ``(0, 1)``.
    paired : bool, default False
        Exact McNemar instead of Fisher; see :func:`power_rate`.
    p_discordant : float, optional
        Paired only: a fixed discordance rate. Default: independent outcomes at each δ.
        With a fixed rate δ cannot exceed it.
    tol : float, default 1e-4
        Width of the final bisection bracket; the upper end is returned.

    Returns
    -------
    float
        The drop δ (absolute, in success-rate units; ``p_base - δ`` is the candidate
        rate). ``math.inf`` when even the largest possible drop (to a candidate rate
        of 0) does not reach the target power -- too few runs for any drop.

    Examples
    --------
    >>> round(minimum_detectable_drop(0.9, 20, 20, alpha=0.05), 2)
    0.38
    >>> minimum_detectable_drop(0.9, 2, 2, alpha=0.05)
    inf
    """
    p_b = _check_prob("p_base", p_base)
    target = _check_power(power)
    _check_alpha(alpha)
    _check_count("n_base", n_base)
    _check_count("n_cand", n_cand)
    _check_bool("paired", paired)
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 < tol < 0.5):
        msg = f"tol={tol!r} is not valid; use a number in (0, 0.5)"
        raise ConfigError(msg)
    hi = p_b
    if paired and p_discordant is not None:
        pd = _check_prob("p_discordant", p_discordant)
        hi = min(p_b, pd, 2 * p_b - pd)
    if hi <= 0:
        return math.inf

    def pw(delta: float) -> float:
        return power_rate(
            p_b, p_b - delta, n_base, n_cand, alpha=alpha, paired=paired, p_discordant=p_discordant
        )

    if pw(hi) < target:
        return math.inf
    lo = 0.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if pw(mid) >= target:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _normal_n(p_b: float, p_c: float, alpha: float, power: float) -> float:
    """Normal-approximation runs per arm (arcsine effect size), for the search start."""
    h = 2 * math.asin(math.sqrt(p_b)) - 2 * math.asin(math.sqrt(p_c))
    if h <= 0:
        return math.inf
    z = sps.norm.isf(alpha) + sps.norm.isf(1 - power)
    return 2 * (z / h) ** 2


def _runs_needed(
    p_b: float,
    delta: float,
    alpha: float,
    target: float,
    ratio: float,
    paired: bool,
    max_n: int,
    p_discordant: float | None,
) -> int | None:
    p_c = p_b - delta

    def ok(n: int) -> bool:
        n_c = n if paired else max(1, math.ceil(ratio * n - 1e-9))
        return power_rate(p_b, p_c, n, n_c, alpha=alpha, paired=paired, p_discordant=p_discordant) >= target

    guess = _normal_n(p_b, p_c, alpha, target) * (1 + 1 / ratio) / 2
    start = max(1, int(0.5 * guess)) if math.isfinite(guess) else 1
    if start > 1 and ok(start):
        start = 1  # the approximation was far off: scan from the bottom
    n, run = start, 0
    while n <= max_n + STAY - 1:
        if ok(n):
            run += 1
            if run == STAY:
                first = n - STAY + 1
                return first if first <= max_n else None
        else:
            run = 0
        n += 1
    return None


def runs_needed(
    p_base: float,
    delta: float,
    *,
    alpha: float,
    power: float = 0.8,
    ratio: float = 1.0,
    paired: bool = False,
    max_n: int = 2000,
    p_discordant: float | None = None,
) -> int:
    """Baseline runs needed to detect a drop ``delta`` with the target power.

    Exact power is a sawtooth in ``n``: adding a run can lower it. The rule used here:
    return the smallest ``n`` such that the power is ``>= power`` at ``n`` *and* at each
    of the next ``STAY - 1`` (= 4) values ``n + 1, ..., n + 4``. The search scans ``n``
    upward from half the normal-approximation answer (below that the power is far
    from the target; if it already suffices there, the scan starts at 1).

    Parameters
    ----------
    p_base : float
        Baseline success rate.
    delta : float
        Drop to detect, in ``(0, p_base]``; the candidate rate is ``p_base - delta``.
    alpha : float
        One-sided level.
    power : float, default 0.8
        Target power.
    ratio : float, default 1.0
        Candidate runs per baseline run: the candidate arm gets ``ceil(ratio * n)``.
        Must be 1 for ``paired=True``.
    paired : bool, default False
        Exact McNemar on pairs instead of Fisher; see :func:`power_rate`.
    max_n : int, default 2000
        Largest baseline ``n`` considered.
    p_discordant : float, optional
        Paired only; see :func:`power_rate`.

    Returns
    -------
    int
        Runs for the baseline arm (the candidate arm gets ``ceil(ratio * n)``).

    Raises
    ------
    ConfigError
        For invalid inputs, or when no ``n <= max_n`` reaches the target.

    Examples
    --------
    >>> runs_needed(0.9, 0.2, alpha=0.05)
    56
    """
    p_b = _check_prob("p_base", p_base)
    d = _check_prob("delta", delta, open_low=True)
    if d > p_b:
        msg = f"delta={delta!r} is larger than p_base={p_base!r}; use a drop in (0, {p_b}]"
        raise ConfigError(msg)
    a = _check_alpha(alpha)
    target = _check_power(power)
    if not (isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0 < ratio <= 100):
        msg = f"ratio={ratio!r} is not valid; use a number in (0, 100]"
        raise ConfigError(msg)
    paired = _check_bool("paired", paired)
    if paired and ratio != 1:
        msg = f"ratio={ratio!r} is not valid with paired=True; pairs need ratio=1"
        raise ConfigError(msg)
    max_n = _check_count("max_n", max_n)
    n = _runs_needed(p_b, d, a, target, float(ratio), paired, max_n, p_discordant)
    if n is None:
        msg = (
            f"no n <= max_n={max_n} reaches power={target} for delta={d} at p_base={p_b}, "
            f"alpha={a}; raise max_n or plan for a larger delta"
        )
        raise ConfigError(msg)
    return n


def _shrunk_rates(k_b: int, n_b: int, k_c: int, n_c: int) -> tuple[float, float]:
    pooled = (k_b + k_c + 1) / (n_b + n_c + 2)
    p_b = (k_b + SHRINK_RUNS * pooled) / (n_b + SHRINK_RUNS)
    p_c = (k_c + SHRINK_RUNS * pooled) / (n_c + SHRINK_RUNS)
    return p_b, p_c


def _predictive_power(k_b: int, n_b: int, k_c: int, n_c: int, m: int, p_b: float, p_c: float, alpha: float) -> float:
    nb, nc = n_b + m, n_c + m
    pv = _fisher_grid(nb, nc, k_b, k_b + m, k_c, k_c + m)
    wb = sps.binom.pmf(np.arange(m + 1), m, p_b)
    wc = sps.binom.pmf(np.arange(m + 1), m, p_c)
    return float(wb @ (pv <= alpha * (1 + _REL)).astype(float) @ wc)


def more_runs_to_decide(
    k_base: int,
    n_base: int,
    k_cand: int,
    n_cand: int,
    *,
    alpha: float,
    power: float = 0.8,
    max_more: int = 500,
) -> int | None:
    """How many more runs per arm would probably make an undecided cell significant.

    The observed rates, each shrunk toward the pooled rate by ``SHRINK_RUNS`` (= 2)
    pseudo-runs (``p_arm = (k + 2 p_pool) / (n + 2)`` with
    ``p_pool = (k_base + k_cand + 1) / (n_base + n_cand + 2)``), are taken as the true
    rates. For ``m`` more runs in *each* arm the future successes are enumerated
    exactly and the probability that the one-sided Fisher test on *all* runs is
    significant (the predictive power) is computed. The answer is the smallest ``m``
    whose predictive power is ``>= power`` at ``m`` and at the next ``STAY - 1`` values
    (the sawtooth rule of :func:`runs_needed`).

    This only looks for a "harm" decision: a cell where the candidate does as well as
    the baseline gets ``None``, since no number of runs would likely show harm.
    Note that re-testing after adding runs inflates the type-I error of a fixed-n
    test; use :mod:`workbench.stats.sequential` for the re-check itself.

    Parameters
    ----------
    k_base, n_base, k_cand, n_cand : int
        Successes and runs so far (``n >= 1``).
    alpha : float
        One-sided level of the final test.
    power : float, default 0.8
        Target predictive power.
    max_more : int, default 500
        Largest number of added runs per arm considered.

    Returns
    -------
    int or None
        0 when the cell is significant already; the added runs per arm; ``None`` when
        no ``m <= max_more`` reaches the target.

    Examples
    --------
    >>> more_runs_to_decide(18, 20, 14, 20, alpha=0.05)
    37
    >>> more_runs_to_decide(18, 20, 18, 20, alpha=0.05) is None
    True
    """
    n_b = _check_count("n_base", n_base)
    n_c = _check_count("n_cand", n_cand)
    k_b = _check_count("k_base", k_base, minimum=0)
    k_c = _check_count("k_cand", k_cand, minimum=0)
    if k_b > n_b or k_c > n_c:
        msg = f"successes exceed runs: k_base={k_b} of n_base={n_b}, k_cand={k_c} of n_cand={n_c}"
        raise ConfigError(msg)
    a = _check_alpha(alpha)
    target = _check_power(power)
    max_more = _check_count("max_more", max_more)
    if fisher_p_less(k_b, n_b, k_c, n_c) <= a * (1 + _REL):
        return 0
    p_b, p_c = _shrunk_rates(k_b, n_b, k_c, n_c)
    if p_c >= p_b:
        return None
    # quick bound: even with max_more runs the power must be near the target
    if _predictive_power(k_b, n_b, k_c, n_c, max_more, p_b, p_c, a) < 0.5 * target:
        return None
    run = 0
    for m in range(1, max_more + STAY):
        if _predictive_power(k_b, n_b, k_c, n_c, m, p_b, p_c, a) >= target:
            run += 1
            if run == STAY:
                first = m - STAY + 1
                return first if first <= max_more else None
        else:
            run = 0
    return None


def plan_table(
    cells: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    delta: float = 0.1,
    cell_alpha: float | None = None,
    max_n: int = 2000,
    max_more: int = 500,
) -> list[dict[str, Any]]:
    """A planning row per cell: detectable drop now, runs needed, more runs to decide.

    Parameters
    ----------
    cells : sequence of mappings
        Each with ``"cell"`` (any label) and the integer counts ``"k_base"``,
        ``"n_base"``, ``"k_cand"``, ``"n_cand"``. ``n_base`` must be >= 1 (the
        baseline rate plans the rest); ``n_cand`` may be 0 (not run yet).
    alpha : float, default 0.05
        Family-wise one-sided level across the cells.
    power : float, default 0.8
        Target power.
    delta : float, default 0.1
        Drop to plan for (``runs_needed`` column).
    cell_alpha : float, optional
        Level of one cell's test. Default: Bonferroni, ``alpha / len(cells)`` (each
        of the ``c`` cells gets an equal share of the family-wise level, so the chance
        of any false harm call is at most ``alpha``). The
        gate's own multiplicity procedure respects discreteness and may be more
        powerful than Bonferroni, so this plan is conservative (it asks for at
        least as many runs as the gate needs).
    max_n, max_more : int
        Search limits of :func:`runs_needed` and :func:`more_runs_to_decide`.

    Returns
    -------
    list of dict
        One dict per cell, in input order, with ``cell``, the four counts,
        ``p_base`` (observed baseline rate, used as the planning rate), ``alpha_cell``,
        ``mde_now`` (:func:`minimum_detectable_drop` at the current runs per arm,
        ``inf`` when nothing is detectable, ``None`` with no candidate runs),
        ``runs_needed`` (per arm for ``delta`` at ``p_base``; ``None`` when
        ``delta > p_base`` or beyond ``max_n``), ``more_runs_per_arm`` to hit the
        target predictive power (``None``: unlikely to decide) and
        ``significant_now``. ``polars.DataFrame(rows)`` makes a table of it.

    Examples
    --------
    >>> rows = plan_table([{"cell": "a", "k_base": 18, "n_base": 20, "k_cand": 13, "n_cand": 20}])
    >>> rows[0]["runs_needed"], round(rows[0]["mde_now"], 2), rows[0]["more_runs_per_arm"]
    (173, 0.38, 16)
    """
    if isinstance(cells, (str, bytes, Mapping)) or not isinstance(cells, Sequence) or not cells:
        msg = f"cells={cells!r} is not valid; use a non-empty list of dicts with cell, k_base, n_base, k_cand, n_cand"
        raise ConfigError(msg)
    fam = _check_alpha(alpha)
    target = _check_power(power)
    d = _check_prob("delta", delta, open_low=True)
    a_cell = fam / len(cells) if cell_alpha is None else _check_alpha(cell_alpha)
    max_n = _check_count("max_n", max_n)
    max_more = _check_count("max_more", max_more)
    keys = ("k_base", "n_base", "k_cand", "n_cand")
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(cells):
        if not isinstance(c, Mapping) or any(k not in c for k in keys):
            msg = f"cells[{i}]={c!r} is not valid; each cell needs the keys cell, {', '.join(keys)}"
            raise ConfigError(msg)
        k_b = _check_count(f"cells[{i}].k_base", c["k_base"], minimum=0)
        n_b = _check_count(f"cells[{i}].n_base", c["n_base"])
        k_c = _check_count(f"cells[{i}].k_cand", c["k_cand"], minimum=0)
        n_c = _check_count(f"cells[{i}].n_cand", c["n_cand"], minimum=0)
        if k_b > n_b or k_c > n_c:
            msg = f"cells[{i}]: successes exceed runs (k_base={k_b}/{n_b}, k_cand={k_c}/{n_c})"
            raise ConfigError(msg)
        p_b = k_b / n_b
        row: dict[str, Any] = {
            "cell": c.get("cell", i),
            "k_base": k_b,
            "n_base": n_b,
            "k_cand": k_c,
            "n_cand": n_c,
            "p_base": p_b,
            "alpha_cell": a_cell,
            "mde_now": None,
            "runs_needed": None,
            "more_runs_per_arm": None,
            "significant_now": False,
        }
        if d <= p_b:
            row["runs_needed"] = _runs_needed(p_b, d, a_cell, target, 1.0, False, max_n, None)
        if n_c >= 1:
            row["mde_now"] = minimum_detectable_drop(p_b, n_b, n_c, alpha=a_cell, power=target)
            row["significant_now"] = fisher_p_less(k_b, n_b, k_c, n_c) <= a_cell * (1 + _REL)
            row["more_runs_per_arm"] = more_runs_to_decide(
                k_b, n_b, k_c, n_c, alpha=a_cell, power=target, max_more=max_more
            )
        rows.append(row)
    return rows
