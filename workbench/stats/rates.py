"""Exact tests and intervals for success rates: candidate against baseline.

Everything here works on counts and returns a :class:`RateTest`: the one-sided p-value,
the risk difference, the *attainable* p-values of the test with their null
probabilities (what :mod:`workbench.stats.multiplicity` needs to be less conservative
with discrete tests) and an interval that is the inversion of the *same* test.

Tests
-----
:func:`unpaired_rate_test` (two independent arms, ``k`` successes of ``n`` runs each):

* ``method="conditional"`` -- one-sided Fisher exact test, conditional on the total
  number of successes (as ``scipy.stats.fisher_exact``). The support is the
  hypergeometric distribution of the candidate's successes given the margins.
* ``method="boschloo"`` -- Boschloo's exact unconditional test: the Fisher p-value used
  as statistic, its tail maximised over the common success rate (as
  ``scipy.stats.boschloo_exact``, but all tables of a design at once and cached).
* ``method="chan"`` -- exact unconditional test of H0: p_c - p_b = -delta with the
  Farrington-Manning / Miettinen-Nurminen score statistic (restricted MLE), the tail
  maximised over the nuisance rate (Chan 1998; Chan & Zhang 1999). At ``delta = 0``
  this is ``scipy.stats.barnard_exact(pooled=True)``. Used whenever ``delta != 0``.

:func:`paired_rate_test` -- exact McNemar test (binomial test on the discordant pairs)
and its mid-p version.

Conventions
-----------
* ``alternative="less"``: H1 is "the candidate's rate is lower" (harm when higher is
  better); ``"greater"`` the opposite. p-values are one-sided.
* The null value of the risk difference is ``d0 = -delta`` for both alternatives:
  ``"greater"`` with ``delta > 0`` is a non-inferiority test (H1: p_c - p_b > -delta),
  ``"less"`` with ``delta > 0`` asks whether the candidate is worse by more than delta.
* ``RateTest.interval(alpha)`` returns ``(lower, upper)`` where *each* bound is a
  one-sided ``1 - alpha`` bound (together a ``1 - 2 alpha`` two-sided interval). The
  bound on the side of the alternative is the inversion of the same test, so
  ``p_value <= alpha`` exactly when ``upper < d0`` (``"less"``) or ``lower > d0``
  (``"greater"``), up to ties at the boundary of numerical root finding (the conditional
  and paired tests) and by construction for the unconditional ones.
* An arm without runs (``n = 0``) or a paired test without pairs raises
  :class:`~workbench.model.ConfigError` ("needs at least one run on each side"):
  the caller decides how to report a cell that was not measured.

Examples
--------
>>> t = unpaired_rate_test(18, 20, 12, 20, alternative="less")
>>> round(t.p_value, 4), t.method
(0.0324, 'fisher_exact_conditional')
>>> lo, hi = t.interval(0.05)
>>> hi < 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral

import numpy as np
from scipy import optimize, special, stats

from workbench.model import ConfigError

__all__ = [
    "ALTERNATIVES",
    "METHODS",
    "RateTest",
    "minimum_attainable_p",
    "paired_rate_test",
    "rate_bounds",
    "unpaired_rate_test",
    "wilson_interval",
]

ALTERNATIVES = ("less", "greater")
METHODS = ("conditional", "boschloo", "chan")

_TIE_RTOL = 1e-13  # relative tolerance for ties of the Boschloo statistic (as scipy)
_TIE_ATOL = 1e-10  # absolute tolerance for ties of the score statistic
_GRID = 400  # nuisance grid (equally spaced in arcsin(sqrt(pi)))
_GOLDEN_ITERS = 40
_BISECT_TOL = 1e-7


# --------------------------------------------------------------------------- validation


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral | np.integer):
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        else:
            msg = f"{name} must be a non-negative integer count, got {value!r}"
            raise ConfigError(msg)
    value = int(value)
    if value < 0:
        msg = f"{name} must be a non-negative integer count, got {value!r}"
        raise ConfigError(msg)
    return value


def _check_arm(k_name: str, k: object, n_name: str, n: object) -> tuple[int, int]:
    k = _check_count(k_name, k)
    n = _check_count(n_name, n)
    if k > n:
        msg = f"{k_name}={k} exceeds {n_name}={n}: successes cannot exceed runs"
        raise ConfigError(msg)
    return k, n


def _check_alternative(alternative: object) -> str:
    if alternative not in ALTERNATIVES:
        msg = f"alternative must be one of {ALTERNATIVES}, got {alternative!r}"
        raise ConfigError(msg)
    return str(alternative)


def _check_level(alpha: object) -> float:
    try:
        a = float(alpha)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        a = float("nan")
    if not 0.0 < a < 0.5:
        msg = f"level must be a one-sided alpha in (0, 0.5), got {alpha!r}"
        raise ConfigError(msg)
    return a


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class RateTest:
    """Result of a one-sided rate test.

    Attributes
    ----------
    p_value : float
        One-sided p-value for the requested alternative.
    estimate : float
        Risk difference candidate - baseline; paired: ``(c_only - b_only) / n_pairs``.
    method : str
        ``"fisher_exact_conditional"``, ``"boschloo_exact"``,
        ``"chan_exact_unconditional"``, ``"mcnemar_exact"`` or ``"mcnemar_midp"``.
    alternative : str
        ``"less"`` or ``"greater"``.
    null_value : float
        The risk difference under H0 (``-delta``; 0 for the paired tests).
    support : tuple of ndarray or None
        ``(values, probs)``: the attainable p-values (sorted, unique) and their null
        probabilities. Conditional tests (Fisher, McNemar): the exact conditional
        probabilities given the margins / the number of discordant pairs.
        Unconditional tests (Boschloo, Chan): the increments of the sharp bound
        ``sup_pi P(p <= c)``, which equals the largest attainable p-value ``<= c``
        because the test is exact; so ``cumsum(probs)`` is that bound at each value.
    scores : ndarray or None
        Conditional tests (Fisher, McNemar): for each value of ``support``, the score of
        the outcome -- how many successes the candidate falls short of what no change
        predicts given the margins, ``E0(X) - x`` (``x - E0(X)`` for ``"greater"``), in
        runs; strictly decreasing along the values. It orders the outcomes of many cells
        in :func:`workbench.stats.multiplicity.score_ordered_holm`. None for the
        unconditional tests.
    """

    p_value: float
    estimate: float
    method: str
    alternative: str
    null_value: float = 0.0
    support: tuple[np.ndarray, np.ndarray] | None = None
    _interval_fn: object = field(default=None, repr=False, compare=False)
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)

    def null_cdf(self, c: float) -> float:
        """Upper bound of ``P_null(p <= c)`` valid for this test.

        Exact conditional probability for conditional tests, the sharp unconditional
        bound for the exact unconditional ones, ``c`` when there is no support.

        Examples
        --------
        >>> t = unpaired_rate_test(20, 20, 20, 20)  # all successes: p = 1 always
        >>> t.null_cdf(0.5), t.null_cdf(1.0)
        (0.0, 1.0)
        """
        if self.support is None:
            return float(min(max(c, 0.0), 1.0))
        values, probs = self.support
        return float(min(1.0, probs[values <= c].sum()))

    @property
    def min_attainable(self) -> float:
        """Smallest p-value this test can produce (0 if unknown)."""
        return 0.0 if self.support is None else float(self.support[0][0])

    def interval(self, level: float = 0.05) -> tuple[float, float]:
        """Bounds for the risk difference, each at one-sided level ``level``.

        ``(lower, upper)`` is a ``1 - 2*level`` two-sided interval. The bound on the
        side of the alternative inverts this very test: for ``"less"``,
        ``p_value <= level`` iff ``upper < null_value``; for ``"greater"`` iff
        ``lower > null_value``.

        Examples
        --------
        >>> t = paired_rate_test(b_only=9, c_only=1, n_pairs=30)
        >>> lo, hi = t.interval(0.025)
        >>> (t.p_value <= 0.025) == (hi < 0)
        True
        """
        alpha = _check_level(level)
        if self._interval_fn is None:
            msg = f"method {self.method!r} provides no interval; use method='chan' or 'conditional'"
            raise ConfigError(msg)
        return self._interval_fn(alpha)  # type: ignore[operator]


def minimum_attainable_p(test: RateTest) -> float:
    """Smallest attainable p-value of ``test`` (``support[0].min()``).

    Examples
    --------
    >>> minimum_attainable_p(unpaired_rate_test(5, 5, 5, 5))
    1.0
    """
    return test.min_attainable


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=512)
def _logcomb(n: int) -> np.ndarray:
    k = np.arange(n + 1)
    out = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    out.setflags(write=False)
    return out


def _binom_pmf(n: int, p: np.ndarray) -> np.ndarray:
    """pmf[x, j] of Binomial(n, p[j]), p in [0, 1]."""
    x = np.arange(n + 1)[:, None]
    p = np.asarray(p, dtype=float)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = _logcomb(n)[:, None] + special.xlogy(x, p) + special.xlog1py(n - x, -p)
    return np.exp(logp)


def _arcsine_grid(lo: float, hi: float, size: int = _GRID) -> np.ndarray:
    t = np.linspace(np.arcsin(np.sqrt(lo)), np.arcsin(np.sqrt(hi)), size)
    g = np.sin(t) ** 2
    g[0], g[-1] = lo, hi
    return g


def _unique_support(pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Support of an exact unconditional test: sorted unique p's and increments."""
    vals = np.unique(pv)
    probs = np.diff(np.concatenate([[0.0], vals]))
    vals.setflags(write=False)
    probs.setflags(write=False)
    return vals, probs


def _merge_support(pv: np.ndarray, pmf: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support of a conditional test: sorted unique p-values with summed null pmf.

    Outcomes whose p-values coincide (in floating point: tails that round to 1) are
    merged, so the values are strictly increasing and ``cumsum(probs)`` is the exact
    null probability of ``p <= value``. ``score`` (one per outcome) is kept for each
    value as the largest score of the outcomes merged into it (they are contiguous, so
    the scores stay strictly decreasing along the values).
    """
    vals, inv = np.unique(pv, return_inverse=True)
    inv = inv.ravel()
    probs = np.bincount(inv, weights=pmf, minlength=len(vals))
    scores = np.full(len(vals), -np.inf)
    np.maximum.at(scores, inv, score)
    return vals, probs, scores


def _golden_max(f, lo: np.ndarray, hi: np.ndarray, iters: int = _GOLDEN_ITERS) -> np.ndarray:
    """Vectorized golden-section maximisation of f on [lo, hi] (elementwise)."""
    r = (math.sqrt(5) - 1) / 2
    a, b = lo.copy(), hi.copy()
    c = b - r * (b - a)
    d = a + r * (b - a)
    fc, fd = f(c), f(d)
    best = np.maximum(fc, fd)
    for _ in range(iters):
        left = fc > fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new = b - r * (b - a)
        d_new = a + r * (b - a)
        # reuse one evaluation
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        fc_old, fd_old = fc, fd
        fnew = f(np.where(left, c, d))
        fc = np.where(left, fnew, fd_old)
        fd = np.where(left, fc_old, fnew)
        best = np.maximum(best, fnew)
    return best


def _dense_max(f, lo: float, hi: float, points: int = 33, levels: int = 4) -> float:
    """Maximise a smooth scalar function on [lo, hi] by nested dense grids.

    Each level evaluates ``points`` equally spaced values in one vectorised call and
    narrows to the two cells around the best one (width / 16 per level), which is
    much cheaper than a scalar golden-section search for a single table.
    """
    a, b = float(lo), float(hi)
    best = -math.inf
    for _ in range(levels):
        x = np.linspace(a, b, points)
        v = f(x)
        i = int(np.argmax(v))
        best = max(best, float(v[i]))
        step = x[1] - x[0]
        a, b = max(lo, x[i] - step), min(hi, x[i] + step)
    return best


# --------------------------------------------------------------------------- Fisher


@lru_cache(maxsize=4096)
def _fisher_support(n_b: int, n_c: int, s: int, alternative: str):
    """Hypergeometric support of the candidate's successes given the margin s."""
    lo, hi = max(0, s - n_b), min(n_c, s)
    x = np.arange(lo, hi + 1)
    N = n_b + n_c
    pmf = stats.hypergeom.pmf(x, N, s, n_c)
    pmf = pmf / pmf.sum()
    if alternative == "less":
        pv = np.minimum(1.0, np.cumsum(pmf))
    else:
        pv = np.minimum(1.0, np.cumsum(pmf[::-1])[::-1])
    mean = s * n_c / N  # E(X | s) under H0; the score is the shortfall from it
    vals, probs, scores = _merge_support(pv, pmf, (mean - x) if alternative == "less" else (x - mean))
    for arr in (x, pv, vals, probs, scores):
        arr.setflags(write=False)
    return x, pv, (vals, probs), scores


def _nc_tail(x: int, n_b: int, n_c: int, s: int, log_psi: float, alternative: str) -> float:
    """P(X <= x) ('less') or P(X >= x) ('greater') under Fisher's noncentral law."""
    lo, hi = max(0, s - n_b), min(n_c, s)
    xs = np.arange(lo, hi + 1)
    lw = _logcomb(n_c)[xs] + _logcomb(n_b)[s - xs] + xs * log_psi
    lw = lw - lw.max()
    w = np.exp(lw)
    w /= w.sum()
    mask = xs <= x if alternative == "less" else xs >= x
    return float(min(1.0, w[mask].sum()))


def _fisher_or_bound(x: int, n_b: int, n_c: int, s: int, alpha: float, alternative: str, p_at_1: float) -> float:
    """One-sided conditional bound for the odds ratio psi (inverting the Fisher test).

    'less' gives the upper bound, 'greater' the lower bound. Whether the bound lies
    beyond 1 is decided by ``p_at_1`` (the test's own p-value), which makes the
    interval agree with the test exactly.
    """
    lo, hi = max(0, s - n_b), min(n_c, s)
    if alternative == "less":
        if x >= hi:
            return math.inf
        f = lambda t: _nc_tail(x, n_b, n_c, s, t, "less") - alpha  # decreasing in t
        if p_at_1 <= alpha:
            a, b = -60.0, 0.0
        else:
            a, b = 0.0, 60.0
        if f(a) <= 0:
            return math.exp(a)
        if f(b) > 0:
            return math.exp(b) if b == 0.0 else math.inf
        t = optimize.brentq(f, a, b, xtol=1e-12)
        if p_at_1 <= alpha:
            t = min(t, -1e-12)
        return math.exp(t)
    if x <= lo:
        return 0.0
    f = lambda t: _nc_tail(x, n_b, n_c, s, t, "greater") - alpha  # increasing in t
    if p_at_1 <= alpha:
        a, b = 0.0, 60.0
    else:
        a, b = -60.0, 0.0
    if f(b) <= 0:
        return math.exp(b)
    if f(a) > 0:
        return math.exp(a) if a == 0.0 else 0.0
    t = optimize.brentq(f, a, b, xtol=1e-12)
    if p_at_1 <= alpha:
        t = max(t, 1e-12)
    return math.exp(t)


def _or_to_rd(psi: float, p_ref: float) -> float:
    if math.isinf(psi):
        return 1.0 - p_ref
    odds = p_ref / (1.0 - p_ref)
    return psi * odds / (1.0 + psi * odds) - p_ref


# --------------------------------------------------------------------------- unconditional engine


def _tables(n_c: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    xc, xb = np.meshgrid(np.arange(n_c + 1), np.arange(n_b + 1), indexing="ij")
    return xc.ravel(), xb.ravel()


def _boschloo_stat(n_c: int, n_b: int, alternative: str) -> np.ndarray:
    """One-sided Fisher p of every table (x_c, x_b), as scipy.stats.boschloo_exact."""
    xc, xb = _tables(n_c, n_b)
    N = n_c + n_b
    if alternative == "less":
        return stats.hypergeom.cdf(xc, N, xc + xb, n_c)
    return stats.hypergeom.cdf(xb, N, xc + xb, n_b)


def _restricted_mle(xc, nc, xb, nb, d):
    """Restricted MLE of (p_c, p_b) under p_c - p_b = d (Miettinen-Nurminen)."""
    p1 = xc / nc
    p2 = xb / nb
    if d == 0.0:
        p = (xc + xb) / (nc + nb)
        return p, p
    theta = nb / nc
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p2 + d * (theta + 2.0))
    c = d * d + d * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
    dd = -p1 * d * (1.0 + d)
    v = b**3 / (27 * a**3) - b * c / (6 * a**2) + dd / (2 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b**2 / (9 * a**2) - c / (3 * a), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(u == 0, 0.0, v / u**3)
    w = (np.pi + np.arccos(np.clip(ratio, -1.0, 1.0))) / 3.0
    pt1 = 2 * u * np.cos(w) - b / (3 * a)
    pt1 = np.clip(pt1, max(0.0, d), min(1.0, 1.0 + d))
    return pt1, pt1 - d


def _score_stat(n_c: int, n_b: int, d: float, alternative: str, xc=None, xb=None) -> np.ndarray:
    """Score statistic, oriented so that small = extreme for the alternative."""
    if xc is None:
        xc, xb = _tables(n_c, n_b)
    pc, pb = _restricted_mle(xc, n_c, xb, n_b, d)
    num = xc / n_c - xb / n_b - d
    var = pc * (1 - pc) / n_c + pb * (1 - pb) / n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, num / np.sqrt(var), np.sign(num) * np.inf)
    z = np.where(np.abs(num) < 1e-14, 0.0, z)
    return z if alternative == "less" else -z


def _cut_indices(stat_sorted: np.ndarray, stat: np.ndarray, kind: str) -> np.ndarray:
    thr = stat * (1 + _TIE_RTOL) if kind == "rel" else stat + _TIE_ATOL
    return np.searchsorted(stat_sorted, thr, side="right")


def _all_pvalues(n_c: int, n_b: int, stat: np.ndarray, d: float, kind: str) -> np.ndarray:
    """Exact unconditional p-value of every table for an ordering statistic.

    p(table) = sup over the nuisance rate of P(stat <= stat(table)), with p_c = p_b + d.
    """
    xc, xb = _tables(n_c, n_b)
    order = np.argsort(stat, kind="stable")
    st = stat[order]
    cut = _cut_indices(st, stat, kind)  # number of sorted tables in each table's set
    ucut, inv = np.unique(cut, return_inverse=True)
    xcs, xbs = xc[order], xb[order]
    lo, hi = max(0.0, -d), min(1.0, 1.0 - d)
    grid = _arcsine_grid(lo, hi)
    N = n_c + n_b
    if d == 0.0:
        # Tail = sum_s w[s] Binom(N, pi).pmf(s), w[s] = P(set | S = s) (hypergeometric).
        s = xcs + xbs
        hp = np.exp(_logcomb(n_c)[xcs] + _logcomb(n_b)[xbs] - _logcomb(N)[s])
        W = np.zeros((len(st), N + 1))
        W[np.arange(len(st)), s] = hp
        W = np.cumsum(W, axis=0)[ucut - 1]
        tails = W @ _binom_pmf(N, grid)
        lc = _logcomb(N)
        sv = np.arange(N + 1)

        def f(pi):
            pi = np.clip(pi, 1e-300, 1 - 1e-16)[:, None]
            pmf = np.exp(lc + sv * np.log(pi) + (N - sv) * np.log1p(-pi))
            return np.einsum("ij,ij->i", W, pmf)

    else:
        Pc = _binom_pmf(n_c, grid + d)
        Pb = _binom_pmf(n_b, grid)
        probs = Pc[xcs] * Pb[xbs]
        tails = np.cumsum(probs, axis=0)[ucut - 1]
        lcc, lcb = _logcomb(n_c), _logcomb(n_b)
        cut_rows = ucut - 1

        def f(pi):
            pb = np.clip(pi, 1e-300, 1 - 1e-16)[:, None]
            pc = np.clip(pi + d, 1e-300, 1 - 1e-16)[:, None]
            lpc = lcc[xcs] + xcs * np.log(pc) + (n_c - xcs) * np.log1p(-pc)
            lpb = lcb[xbs] + xbs * np.log(pb) + (n_b - xbs) * np.log1p(-pb)
            cs = np.cumsum(np.exp(lpc + lpb), axis=1)
            return cs[np.arange(len(cut_rows)), cut_rows]

    j = np.argmax(tails, axis=1)
    best = tails[np.arange(len(ucut)), j]
    a = grid[np.maximum(j - 1, 0)]
    b = grid[np.minimum(j + 1, len(grid) - 1)]
    refined = _golden_max(f, a, b)
    pu = np.clip(np.maximum(best, refined), 0.0, 1.0)
    return pu[inv]


@lru_cache(maxsize=256)
def _boschloo_design(n_c: int, n_b: int, alternative: str):
    stat = _boschloo_stat(n_c, n_b, alternative)
    pv = _all_pvalues(n_c, n_b, stat, 0.0, "rel").reshape(n_c + 1, n_b + 1)
    pv.setflags(write=False)
    return pv, _unique_support(pv.ravel())


@lru_cache(maxsize=256)
def _chan_design(n_c: int, n_b: int, d: float, alternative: str):
    stat = _score_stat(n_c, n_b, d, alternative)
    pv = _all_pvalues(n_c, n_b, stat, d, "abs").reshape(n_c + 1, n_b + 1)
    pv.setflags(write=False)
    return pv, _unique_support(pv.ravel())


@lru_cache(maxsize=65536)
def _chan_single(x_c: int, n_c: int, x_b: int, n_b: int, d: float, alternative: str) -> float:
    """Exact unconditional score-test p-value of one table at null difference d."""
    stat = _score_stat(n_c, n_b, d, alternative).reshape(n_c + 1, n_b + 1)
    inset = (stat <= stat[x_c, x_b] + _TIE_ATOL).astype(float)
    lo, hi = max(0.0, -d), min(1.0, 1.0 - d)
    grid = _arcsine_grid(lo, hi)
    Pc, Pb = _binom_pmf(n_c, grid + d), _binom_pmf(n_b, grid)
    tails = np.einsum("ig,ig->g", Pc, inset @ Pb)
    j = int(np.argmax(tails))

    def f(pi: np.ndarray) -> np.ndarray:
        pb = np.clip(pi, 0.0, 1.0)
        pc = np.clip(pi + d, 0.0, 1.0)
        return np.einsum("ig,ig->g", _binom_pmf(n_c, pc), inset @ _binom_pmf(n_b, pb))

    ref = _dense_max(f, grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)])
    return float(np.clip(max(tails[j], ref), 0.0, 1.0))


def _chan_bound(x_c, n_c, x_b, n_b, alpha, side, d_test, p_test) -> float:
    """Chan-Zhang bound by bisection over the null difference.

    ``side="less"`` gives the upper bound (sup of d0 with p_less(d0) > alpha),
    ``"greater"`` the lower bound. The bracket is anchored at ``d_test`` with the
    decision of ``p_test`` so that the bound agrees with the test at ``d_test``.
    """
    eps = 1e-9
    accept = lambda d0: _chan_single(x_c, n_c, x_b, n_b, round(d0, 12), side) > alpha
    ok = p_test > alpha
    if side == "less":
        lo, hi = (d_test, 1.0 - eps) if ok else (-1.0 + eps, d_test)
        if ok and accept(hi):
            return 1.0
        while hi - lo > _BISECT_TOL:
            mid = 0.5 * (lo + hi)
            if accept(mid):
                lo = mid
            else:
                hi = mid
        return lo if (ok or lo > -1.0 + eps) else -1.0
    lo, hi = (-1.0 + eps, d_test) if ok else (d_test, 1.0 - eps)
    if ok and accept(lo):
        return -1.0
    while hi - lo > _BISECT_TOL:
        mid = 0.5 * (lo + hi)
        if accept(mid):
            hi = mid
        else:
            lo = mid
    return hi if (ok or hi < 1.0 - eps) else 1.0


# --------------------------------------------------------------------------- public tests


def unpaired_rate_test(
    k_base: int,
    n_base: int,
    k_cand: int,
    n_cand: int,
    *,
    alternative: str = "less",
    method: str = "conditional",
    delta: float = 0.0,
) -> RateTest:
    """One-sided exact test comparing two independent success rates.

    Parameters
    ----------
    k_base, n_base : int
        Successes and runs of the baseline (``n_base >= 1``).
    k_cand, n_cand : int
        Successes and runs of the candidate (``n_cand >= 1``).
    alternative : {"less", "greater"}
        ``"less"``: H1 the candidate's rate is lower than the baseline's (minus delta).
    method : {"conditional", "boschloo", "chan"}
        Fisher (conditional), Boschloo (exact unconditional, Fisher p as statistic) or
        Chan (exact unconditional score test). ``delta != 0`` always uses Chan.
    delta : float
        Margin: H0 is ``p_c - p_b = -delta``; in (-1, 1).

    Returns
    -------
    RateTest
        ``interval`` is the conditional odds-ratio interval mapped to the risk
        difference (``"conditional"``; see Notes), the Chan-Zhang exact interval
        (``"chan"``), none for ``"boschloo"`` (``interval`` raises ConfigError).

    Notes
    -----
    Conditional interval: the exact conditional bounds of the odds ratio psi are mapped
    to ``p_c(psi) - p_ref`` with ``p_c(psi) = psi o / (1 + psi o)``, ``o`` the odds of
    ``p_ref``; ``p_ref`` is the baseline's observed rate, or ``(k_base + 0.5) /
    (n_base + 1)`` when it is 0 or 1 (so the map stays strictly monotone and psi = 1 is
    RD = 0). ``psi = inf`` maps to ``1 - p_ref``, ``psi = 0`` to ``-p_ref``.

    Chan interval: every d0 on a fine bisection grid (1e-7) not rejected is inside,
    assuming the p-value is monotone in d0 on each side (it is for all but rare tables;
    the bound that decides the test is anchored so that it agrees with the test).

    Examples
    --------
    Boschloo is uniformly more powerful than Fisher (same table as the module example):

    >>> round(unpaired_rate_test(18, 20, 12, 20, method="boschloo").p_value, 4)
    0.0193

    Non-inferiority at margin 0.2 (H1: p_c - p_b > -0.2). 17/20 against 18/20 is not
    enough at 20 runs per arm (exact p = 0.107), and the one-sided 95% lower bound of
    the difference lies below the margin, in agreement with the test:

    >>> t = unpaired_rate_test(18, 20, 17, 20, alternative="greater", method="chan", delta=0.2)
    >>> round(t.p_value, 3), t.null_value, t.interval(0.05)[0] > -0.2
    (0.107, -0.2, False)

    19/20 against 19/20 is:

    >>> t = unpaired_rate_test(19, 20, 19, 20, alternative="greater", method="chan", delta=0.2)
    >>> round(t.p_value, 3), t.interval(0.05)[0] > -0.2
    (0.027, True)
    """
    k_base, n_base = _check_arm("k_base", k_base, "n_base", n_base)
    k_cand, n_cand = _check_arm("k_cand", k_cand, "n_cand", n_cand)
    alternative = _check_alternative(alternative)
    if method not in METHODS:
        msg = f"method must be one of {METHODS}, got {method!r}"
        raise ConfigError(msg)
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        delta = float("nan")
    if not -1.0 < delta < 1.0:
        msg = f"delta must be a risk difference in (-1, 1), got {delta!r}"
        raise ConfigError(msg)
    if n_base == 0 or n_cand == 0:
        msg = (
            f"a rate comparison needs at least one run on each side, got n_base={n_base}, "
            f"n_cand={n_cand}; report the cell as not measured instead"
        )
        raise ConfigError(msg)
    estimate = k_cand / n_cand - k_base / n_base
    d0 = round(-delta, 12) + 0.0
    if d0 != 0.0:
        method = "chan"

    if method == "conditional":
        s = k_base + k_cand
        xs, pv, support, scores = _fisher_support(n_base, n_cand, s, alternative)
        p = float(pv[k_cand - xs[0]])
        p_ref = k_base / n_base if 0 < k_base < n_base else (k_base + 0.5) / (n_base + 1)

        def fisher_interval(alpha: float) -> tuple[float, float]:
            other = "greater" if alternative == "less" else "less"
            p_other = float(_fisher_support(n_base, n_cand, s, other)[1][k_cand - xs[0]])
            p_less = p if alternative == "less" else p_other
            p_greater = p if alternative == "greater" else p_other
            up = _fisher_or_bound(k_cand, n_base, n_cand, s, alpha, "less", p_less)
            lo = _fisher_or_bound(k_cand, n_base, n_cand, s, alpha, "greater", p_greater)
            return _or_to_rd(lo, p_ref), _or_to_rd(up, p_ref)

        return RateTest(p, estimate, "fisher_exact_conditional", alternative, 0.0, support, fisher_interval, scores)

    if method == "boschloo":
        pvs, support = _boschloo_design(n_cand, n_base, alternative)
        return RateTest(float(pvs[k_cand, k_base]), estimate, "boschloo_exact", alternative, 0.0, support, None)

    pvs, support = _chan_design(n_cand, n_base, d0, alternative)
    p = float(pvs[k_cand, k_base])

    def interval(alpha: float) -> tuple[float, float]:
        other = "greater" if alternative == "less" else "less"
        p_o = _chan_single(k_cand, n_cand, k_base, n_base, d0, other)
        p_less = p if alternative == "less" else p_o
        p_greater = p if alternative == "greater" else p_o
        up = _chan_bound(k_cand, n_cand, k_base, n_base, alpha, "less", d0, p_less)
        lo = _chan_bound(k_cand, n_cand, k_base, n_base, alpha, "greater", d0, p_greater)
        return lo, up

    return RateTest(p, estimate, "chan_exact_unconditional", alternative, d0, support, interval)


@lru_cache(maxsize=1024)
def _mcnemar_support(m: int, alternative: str, mid_p: bool):
    x = np.arange(m + 1)
    pmf = stats.binom.pmf(x, m, 0.5)
    if alternative == "less":
        pv = np.cumsum(pmf)
    else:
        pv = np.cumsum(pmf[::-1])[::-1]
    if mid_p:
        pv = pv - 0.5 * pmf
    pv = np.minimum(pv, 1.0)
    vals, probs, scores = _merge_support(pv, pmf, (m / 2 - x) if alternative == "less" else (x - m / 2))
    for arr in (pv, vals, probs, scores):
        arr.setflags(write=False)
    return pv, (vals, probs), scores


def _midp_tail(x: int, m: int, theta: float, side: str) -> float:
    if side == "less":
        return float(stats.binom.cdf(x - 1, m, theta) + 0.5 * stats.binom.pmf(x, m, theta)) if x > 0 else float(
            0.5 * stats.binom.pmf(0, m, theta)
        )
    return float(stats.binom.sf(x, m, theta) + 0.5 * stats.binom.pmf(x, m, theta))


def paired_rate_test(
    b_only: int, c_only: int, n_pairs: int, *, alternative: str = "less", mid_p: bool = False
) -> RateTest:
    """Exact McNemar test on paired runs (binomial test on the discordant pairs).

    Parameters
    ----------
    b_only : int
        Pairs where the baseline succeeded and the candidate failed.
    c_only : int
        Pairs where the candidate succeeded and the baseline failed.
    n_pairs : int
        All pairs (``>= b_only + c_only``, ``>= 1``).
    alternative : {"less", "greater"}
        ``"less"``: H1 the candidate's rate is lower.
    mid_p : bool
        Mid-p version ``p - P(observed)/2``. Not guaranteed to keep the level: its
        ``null_cdf`` is the exact ``P(mid-p <= c)`` under Binomial(m, 1/2), which can
        exceed ``c``.

    Returns
    -------
    RateTest
        Estimate ``(c_only - b_only) / n_pairs``. Interval: Clopper-Pearson (mid-p:
        the mid-p interval) for theta = P(candidate-only | discordant), mapped to
        ``(2 theta - 1) m / n_pairs``. With no discordant pair (m = 0) the data bound
        the discordance rate only: ``(-q, q)`` with ``q = 1 - level**(1/n_pairs)``, the
        one-sided Clopper-Pearson upper bound of 0 discordant in n_pairs.

    Examples
    --------
    >>> t = paired_rate_test(8, 1, 40)
    >>> round(t.p_value, 4), t.estimate
    (0.0195, -0.175)
    >>> paired_rate_test(0, 0, 10).interval(0.05)[1] > 0
    True
    """
    b_only = _check_count("b_only", b_only)
    c_only = _check_count("c_only", c_only)
    n_pairs = _check_count("n_pairs", n_pairs)
    alternative = _check_alternative(alternative)
    if not isinstance(mid_p, bool | np.bool_):
        msg = f"mid_p must be True or False, got {mid_p!r}"
        raise ConfigError(msg)
    if n_pairs == 0:
        msg = "a paired rate comparison needs at least one run on each side, got n_pairs=0"
        raise ConfigError(msg)
    m = b_only + c_only
    if m > n_pairs:
        msg = f"b_only + c_only = {m} exceeds n_pairs={n_pairs}"
        raise ConfigError(msg)
    estimate = (c_only - b_only) / n_pairs
    pv, support, scores = _mcnemar_support(m, alternative, bool(mid_p))
    p = float(pv[c_only])
    method = "mcnemar_midp" if mid_p else "mcnemar_exact"

    def theta_bound(alpha: float, side: str, p_at_half: float) -> float:
        # side 'less' -> upper bound of theta, 'greater' -> lower bound
        x = c_only
        if side == "less":
            if x == m:
                return 1.0
            if not mid_p:
                t = float(stats.beta.ppf(1 - alpha, x + 1, m - x))
            else:
                t = optimize.brentq(lambda th: _midp_tail(x, m, th, "less") - alpha, 1e-15, 1 - 1e-15, xtol=1e-14)
            return min(t, np.nextafter(0.5, 0)) if p_at_half <= alpha else max(t, 0.5)
        if x == 0:
            return 0.0
        if not mid_p:
            t = float(stats.beta.ppf(alpha, x, m - x + 1))
        else:
            t = optimize.brentq(lambda th: _midp_tail(x, m, th, "greater") - alpha, 1e-15, 1 - 1e-15, xtol=1e-14)
        return max(t, np.nextafter(0.5, 1)) if p_at_half <= alpha else min(t, 0.5)

    def interval(alpha: float) -> tuple[float, float]:
        if m == 0:
            q = 1.0 - alpha ** (1.0 / n_pairs)
            return -q, q
        other = "greater" if alternative == "less" else "less"
        p_o = float(_mcnemar_support(m, other, bool(mid_p))[0][c_only])
        p_less = p if alternative == "less" else p_o
        p_greater = p if alternative == "greater" else p_o
        up = theta_bound(alpha, "less", p_less)
        lo = theta_bound(alpha, "greater", p_greater)
        scale = m / n_pairs
        return (2 * lo - 1) * scale, (2 * up - 1) * scale

    return RateTest(p, estimate, method, alternative, 0.0, support, interval, scores)


# --------------------------------------------------------------------------- descriptive


def wilson_interval(k: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a rate (``level`` = confidence).

    ``n = 0`` returns ``(0.0, 1.0)``: nothing is known.

    Examples
    --------
    >>> lo, hi = wilson_interval(9, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.5958, 0.9821)
    """
    k, n = _check_arm("k", k, "n", n)
    try:
        lv = float(level)
    except (TypeError, ValueError):
        lv = float("nan")
    if not 0.0 < lv < 1.0:
        msg = f"level must be a confidence level in (0, 1), got {level!r}"
        raise ConfigError(msg)
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + lv / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_bounds(k: int, n: int, n_unknown: int) -> tuple[float, float]:
    """Worst and best case rate when ``n_unknown`` further outcomes are unknown.

    ``k`` successes of ``n`` known outcomes; worst = unknown all failures, best = all
    successes. Raises ConfigError when there is no run at all.

    Examples
    --------
    >>> rate_bounds(8, 10, 2)
    (0.6666666666666666, 0.8333333333333334)
    """
    k, n = _check_arm("k", k, "n", n)
    n_unknown = _check_count("n_unknown", n_unknown)
    total = n + n_unknown
    if total == 0:
        msg = "rate_bounds needs at least one run, got n=0 and n_unknown=0"
        raise ConfigError(msg)
    return k / total, (k + n_unknown) / total
