"""Family-wise error control for many one-sided tests, aware of discreteness.

The gate tests many cells at once (one one-sided hypothesis per cell) and must keep
the family-wise error rate (FWER, the probability of at least one false alarm) at
``alpha``. Plain Holm treats every p-value as if it were uniform under its null. Exact
tests on a few dozen runs are far from that: a cell whose baseline and candidate both
succeeded every time can only produce ``p = 1``, a cell with 18 of 20 has a handful of
attainable p-values. Holm still charges each of them ``alpha / m``; the procedures
here charge each hypothesis only the null probability it can actually spend.

* :func:`holm` -- Holm's (1979) step-down procedure, the reference (adjusted p-values
  equal ``statsmodels.stats.multitest.multipletests(p, method="holm")``).
* :func:`discrete_holm` -- the discrete Holm step-down procedure (Döhler 2010; Zhu &
  Guo 2019): at each step the critical value is the largest ``c`` with
  ``sum_{i in R} F_i(c) <= alpha``, ``F_i`` the null CDF of the ``i``-th p-value
  (:meth:`workbench.stats.rates.RateTest.null_cdf`) and ``R`` the hypotheses not yet
  rejected. With continuous tests (``F_i(c) = c``) it is Holm; with discrete tests it
  rejects everything Holm rejects and usually more. Hypotheses that cannot reach the
  critical value are reported as not testable (Tarone 1990), and they cost nothing.
* :func:`score_ordered_holm` -- score-ordered Holm, the gate's step for rates: a discrete step-down test
  that spends the error budget on the possible outcomes of all cells, each cell's
  Bonferroni share first, then the largest shortfalls in runs (the candidate's
  successes below what no change predicts) first, so that cells whose margins allow
  only small shortfalls cost little (closed testing, Marcus, Peritz & Gabriel 1976;
  the score of Mantel & Haenszel 1959). Valid like discrete Holm, conditionally on the
  margins; never less powerful than Bonferroni; against a drop from a success rate of
  0.7-0.95 in one of 8 cells it finds the drop more often than discrete Holm.

All three return a :class:`MultiplicityResult` holding, for each hypothesis, the decision,
the step-down adjusted p-value, the critical value it was tested at and whether it was
testable. A NaN p-value marks a cell that was not measured: it is not in the family,
never rejected, and its adjusted p-value and critical value are NaN.

Examples
--------
One cell lost 7 of 20 runs, four other cells succeeded every time in both arms (their
Fisher tests can only give ``p = 1``). Holm divides alpha by 5; the discrete procedure
sees that the four cells cannot be rejected and tests the first one at full ``alpha``:

>>> from workbench.stats.rates import unpaired_rate_test
>>> tests = [unpaired_rate_test(18, 20, 11, 20)] + [unpaired_rate_test(20, 20, 20, 20)] * 4
>>> p = [t.p_value for t in tests]
>>> round(p[0], 4)
0.0155
>>> holm(p).rejected.tolist()
[False, False, False, False, False]
>>> res = discrete_holm(p, [t.support for t in tests])
>>> res.rejected.tolist()
[True, False, False, False, False]
>>> res.testable.tolist()
[True, False, False, False, False]
>>> round(float(res.adjusted[0]), 4), float(res.critical[0])
(0.0155, 0.05)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.model import ConfigError

__all__ = ["METHODS", "MultiplicityResult", "discrete_holm", "holm", "score_ordered_holm"]

METHODS: tuple[str, ...] = ("holm", "discrete_holm", "score_ordered_holm")
"""Values of :attr:`MultiplicityResult.method`."""

_SNAP_RTOL = 1e-9  # an observed p-value is matched to its support within this tolerance
_SNAP_ATOL = 1e-15
_MASS_TOL = 1e-9  # the null probabilities of a support may sum to at most 1 + this


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class MultiplicityResult:
    """Decisions of a step-down multiple test, one entry per hypothesis (input order).

    Attributes
    ----------
    rejected : ndarray of bool
        Whether the hypothesis is rejected with the family-wise error held at
        ``alpha``. Always False for a NaN p-value.
    adjusted : ndarray of float
        Step-down adjusted p-value: the smallest ``alpha`` at which the hypothesis
        would be rejected (up to rounding, ``rejected == (adjusted <= alpha)``). NaN for
        a NaN p-value.
    critical : ndarray of float
        The one-sided level the hypothesis was tested at: for a rejected hypothesis that
        of the step that rejected it, for the others that of the step where the
        procedure stopped. ``rejected == (p <= critical)``, and a caller can compute an
        interval at that level (see :func:`discrete_holm` for how it avoids ties with
        attainable p-values). NaN for a NaN p-value.
    testable : ndarray of bool
        False when the smallest p-value the hypothesis' test can attain exceeds its
        ``critical`` value: it could not have been rejected whatever the data (Tarone).
        False for a NaN p-value.
    method : str
        ``"holm"`` or ``"discrete_holm"``.

    Examples
    --------
    >>> res = holm([0.01, float("nan"), 0.02])
    >>> res.rejected.tolist(), res.adjusted.tolist(), res.n_tested
    ([True, False, True], [0.02, nan, 0.02], 2)
    """

    rejected: np.ndarray
    adjusted: np.ndarray
    critical: np.ndarray
    testable: np.ndarray
    method: str

    @property
    def n_tested(self) -> int:
        """Number of hypotheses in the family (p-value not NaN)."""
        return int(np.count_nonzero(~np.isnan(self.adjusted)))

    @property
    def n_rejected(self) -> int:
        """Number of rejected hypotheses."""
        return int(np.count_nonzero(self.rejected))


def _result(
    rejected: np.ndarray, adjusted: np.ndarray, critical: np.ndarray, testable: np.ndarray, method: str
) -> MultiplicityResult:
    for arr in (rejected, adjusted, critical, testable):
        arr.setflags(write=False)
    return MultiplicityResult(rejected, adjusted, critical, testable, method)


def _blank(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decisions, adjusted p-values, critical values and testability of ``n``
    hypotheses before any step: nothing rejected, NaN levels."""
    return np.zeros(n, dtype=bool), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)


# --------------------------------------------------------------------------- validation


def _check_alpha(alpha: Any) -> float:
    ok = isinstance(alpha, (int, float, np.floating, np.integer)) and not isinstance(alpha, bool)
    if not (ok and 0 < float(alpha) < 1):
        msg = f"alpha={alpha!r} is not valid; use a family-wise error level in (0, 1)"
        raise ConfigError(msg)
    return float(alpha)


def _check_pvalues(pvalues: Any) -> np.ndarray:
    hint = "use a 1-D sequence of p-values in [0, 1] (NaN for a cell that was not measured)"
    try:
        arr = np.array(pvalues, dtype=float)
    except (TypeError, ValueError):
        msg = f"pvalues={pvalues!r} is not valid; {hint}"
        raise ConfigError(msg) from None
    if arr.ndim != 1:
        msg = f"pvalues has shape {arr.shape}, which is not valid; {hint}"
        raise ConfigError(msg)
    bad = ~np.isnan(arr) & ~((arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"pvalues[{i}]={float(arr[i])!r} is not a p-value; {hint}"
        raise ConfigError(msg)
    return arr


@dataclass(frozen=True)
class _Support:
    values: np.ndarray  # attainable p-values, strictly increasing
    cdf0: np.ndarray  # 0 followed by F(values): nondecreasing, <= 1

    def at(self, x: np.ndarray) -> np.ndarray:
        """F at each point of ``x`` (right-continuous step function)."""
        return self.cdf0[np.searchsorted(self.values, x, side="right")]


def _check_support(i: int, s: Any) -> _Support | None:
    hint = (
        "use a (values, probs) pair -- the attainable p-values of the test (sorted, unique) and "
        "their null probabilities, e.g. RateTest.support -- or None for a continuous test"
    )
    if s is None:
        return None
    if not isinstance(s, (tuple, list)) and hasattr(s, "support"):  # a RateTest
        s = s.support
        if s is None:
            return None
    try:
        values, probs = s
        values = np.asarray(values, dtype=float)
        probs = np.asarray(probs, dtype=float)
    except (TypeError, ValueError):
        msg = f"supports[{i}]={s!r} is not valid; {hint}"
        raise ConfigError(msg) from None
    problem = None
    if values.ndim != 1 or probs.shape != values.shape or values.size == 0:
        problem = f"values {values.shape} and probs {probs.shape} must be non-empty 1-D arrays of one length"
    elif not (np.isfinite(values).all() and np.isfinite(probs).all()):
        problem = "values and probs must be finite"
    elif values[0] < 0.0 or values[-1] > 1.0:
        problem = f"values must lie in [0, 1], got [{values[0]!r}, {values[-1]!r}]"
    elif np.any(np.diff(values) <= 0.0):
        problem = "values must be strictly increasing (sorted, unique)"
    elif probs.min() < 0.0:
        problem = f"probs must be non-negative, got {probs.min()!r}"
    elif probs.sum() > 1.0 + _MASS_TOL:
        problem = f"probs sum to {probs.sum()!r} > 1"
    if problem is not None:
        msg = f"supports[{i}] is not valid: {problem}; {hint}"
        raise ConfigError(msg)
    return _Support(values, np.concatenate([[0.0], np.minimum(1.0, np.cumsum(probs))]))


def _check_supports(supports: Any, m: int) -> list[_Support | None]:
    if supports is None:
        return [None] * m
    if isinstance(supports, (str, bytes)) or not isinstance(supports, Sequence):
        msg = (
            f"supports={supports!r} is not valid; use None (all tests continuous) or a list with one "
            "(values, probs) pair or None per p-value"
        )
        raise ConfigError(msg)
    if len(supports) != m:
        msg = f"supports has {len(supports)} entries but pvalues has {m}; pass one support (or None) per p-value"
        raise ConfigError(msg)
    return [_check_support(i, s) for i, s in enumerate(supports)]


def _snap(i: int, p: float, sup: _Support) -> float:
    """The attainable value of ``sup`` that ``p`` is (within rounding); else ConfigError."""
    v = sup.values
    j = int(np.searchsorted(v, p))
    for jj in (j - 1, j):
        if 0 <= jj < v.size and math.isclose(v[jj], p, rel_tol=_SNAP_RTOL, abs_tol=_SNAP_ATOL):
            return float(v[jj])
    near = float(v[max(0, min(v.size - 1, j))])
    msg = (
        f"pvalues[{i}]={p!r} is not an attainable value of supports[{i}] (nearest {near!r}); "
        "pass the p-value and the support of the same test, in the same order"
    )
    raise ConfigError(msg)


# --------------------------------------------------------------------------- Holm


def holm(pvalues: Sequence[float] | np.ndarray, *, alpha: float = 0.05) -> MultiplicityResult:
    """Holm's step-down procedure (strong FWER control under any dependence).

    Sort the ``m`` p-values, ``p_(1) <= ... <= p_(m)``; reject ``p_(j)`` while
    ``p_(j) <= alpha / (m - j + 1)`` and stop at the first that is not.

    Parameters
    ----------
    pvalues : sequence of float
        One p-value per hypothesis, in [0, 1]; NaN for a hypothesis that was not
        measured (excluded from the family: it does not count in ``m``).
    alpha : float
        Family-wise error level in (0, 1).

    Returns
    -------
    MultiplicityResult
        ``adjusted`` equals ``multipletests(p, method="holm")[1]`` of statsmodels
        (``min(1, max_{l <= j} (m - l + 1) p_(l))``); ``critical`` is
        ``alpha / (m - j + 1)`` of the step that tested the hypothesis; ``testable``
        is True for every measured hypothesis.

    Raises
    ------
    ConfigError
        ``pvalues`` not 1-D or outside [0, 1], ``alpha`` outside (0, 1).

    Examples
    --------
    >>> res = holm([0.01, 0.04, 0.03, 0.2])
    >>> res.rejected.tolist()
    [True, False, False, False]
    >>> res.adjusted.round(3).tolist()
    [0.04, 0.09, 0.09, 0.2]
    >>> res.critical.round(4).tolist()
    [0.0125, 0.0167, 0.0167, 0.0167]
    """
    p = _check_pvalues(pvalues)
    alpha = _check_alpha(alpha)
    n = p.size
    rejected, adjusted, critical, testable = _blank(n)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        ps = p[order]
        k = np.arange(m, 0, -1)
        crit = alpha / k
        ok = ps <= crit
        r = m if ok.all() else int(np.argmin(ok))  # number rejected: up to the first failure
        rejected[order[:r]] = True
        critical[order[:r]] = crit[:r]
        if r < m:
            critical[order[r:]] = crit[r]
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(ps * k))
        testable[order] = True
    return _result(rejected, adjusted, critical, testable, "holm")


# --------------------------------------------------------------------------- discrete Holm


def _critical_value(grid: np.ndarray, s_grid: np.ndarray, live: np.ndarray, k: int, alpha: float) -> float:
    """Critical value of one step: reject the smallest p left iff ``p <= c``.

    ``S(c) = D(c) + k c`` is the sum of the null CDFs of the hypotheses left: ``D`` that
    of the discrete ones, known on ``grid`` (the union of their supports; ``s_grid =
    D(grid)``), ``live`` marks the grid points that are attainable values of a
    hypothesis still in the family and ``k`` is the number of continuous ones left.

    Discrete only: every level in ``[a, b)`` gives the same decisions, ``a`` the largest
    attainable value with ``S <= alpha`` (0 if none), ``b`` the smallest with ``S >
    alpha``. The level returned is ``alpha`` when it is in ``(a, b)``, else the midpoint
    of ``a`` and ``b``: strictly between attainable values, so an interval computed at
    that level cannot tie with the decision. With continuous tests left, the largest
    ``c`` with ``S(c) <= alpha`` (just below a jump of ``D`` when it is one).
    """
    if k == 0:
        over = s_grid > alpha
        stop = int(np.argmax(over)) if over.any() else grid.size
        below = np.flatnonzero(live[:stop])
        above = np.flatnonzero(live[stop:])
        a = float(grid[below[-1]]) if below.size else 0.0
        if not above.size:
            return max(a, alpha)
        b = float(grid[stop + above[0]])
        if a < alpha < b:
            return alpha
        mid = a + 0.5 * (b - a)
        return mid if a <= mid < b else a
    if grid.size and grid[0] == 0.0:
        pts, d = grid, s_grid
    else:
        pts, d = np.concatenate([[0.0], grid]), np.concatenate([[0.0], s_grid])
    over = d + k * pts > alpha
    if not over.any():
        return min(1.0, (alpha - float(d[-1])) / k)
    g = int(np.argmax(over))
    if g == 0:
        return 0.0
    c = (alpha - float(d[g - 1])) / k  # S is linear on [pts[g-1], pts[g]) and <= alpha at its left end
    # at pts[g] the discrete part jumps above alpha: a continuous test can still attain any
    # value just below it
    return c if c < pts[g] else float(np.nextafter(pts[g], 0.0))


def discrete_holm(
    pvalues: Sequence[float] | np.ndarray,
    supports: Sequence[Any] | None = None,
    *,
    alpha: float = 0.05,
) -> MultiplicityResult:
    """Discrete Holm step-down procedure: Holm with the tests' actual null CDFs.

    Sort the measured p-values, ``p_(1) <= ... <= p_(m)``, and let
    ``R_j = {(j), ..., (m)}`` be the hypotheses left at step ``j``. The critical value of
    step ``j`` is

    ``a_j = max{c attainable : S_j(c) = sum_{i in R_j} F_i(c) <= alpha}``

    with ``F_i(c) = P_null(p_i <= c)`` the (sharp bound of the) null CDF of the ``i``-th
    p-value. Reject ``p_(j)`` if ``p_(j) <= a_j`` (equivalently ``S_j(p_(j)) <= alpha``)
    and go on, else stop: the hypotheses left are not rejected. "Attainable" means an
    attainable p-value of a discrete test still in ``R_j``, or any value when a
    continuous test is left.

    The level reported as ``critical`` for step ``j``: with discrete tests only, every
    level in ``[a_j, b_j)`` gives the same decisions, ``b_j`` the smallest attainable
    value with ``S_j > alpha``. ``critical`` is ``alpha`` when it lies in ``(a_j, b_j)``
    (a cell alone in its family, or whose companions cannot reach the level, is tested
    at the full level) and otherwise the midpoint of ``a_j`` and ``b_j``: never an
    attainable p-value, so an interval computed at that level agrees with the decision
    without a tie at its end (an interval at level ``p`` itself ends at the null value).
    With continuous tests left it is the largest ``c`` with ``S_j(c) <= alpha``
    (``alpha / |R_j|`` when all are continuous, as in :func:`holm`).

    Parameters
    ----------
    pvalues : sequence of float
        One one-sided p-value per hypothesis, in [0, 1]; NaN for a hypothesis that was
        not measured (excluded from the family, never rejected).
    supports : sequence or None
        One entry per p-value: ``(values, probs)`` -- the attainable p-values of the
        test, sorted and unique, and their null probabilities, so that
        ``F(c) = probs[values <= c].sum()`` (:attr:`RateTest.support
        <workbench.stats.rates.RateTest>`; a ``RateTest`` itself is accepted too) --
        or None for a continuous test, ``F(c) = c``. ``supports=None``: all
        continuous, which is exactly :func:`holm`. Each observed p-value must be one of
        the values of its support (up to a relative 1e-9); the entry of a NaN p-value is
        ignored.
    alpha : float
        Family-wise error level in (0, 1).

    Returns
    -------
    MultiplicityResult
        ``adjusted[(j)] = min(1, max_{l <= j} S_l(p_(l)))``; ``critical`` the level of
        the step that rejected the hypothesis, or of the step that stopped;
        ``testable`` is ``min(values) <= critical`` (True for continuous tests): False
        for a test that could not have been rejected at that step whatever its data.

    Raises
    ------
    ConfigError
        ``pvalues`` not 1-D or outside [0, 1]; ``supports`` not one entry per p-value,
        malformed, or not containing its p-value; ``alpha`` outside (0, 1).

    Notes
    -----
    This is the discrete Holm procedure of Döhler (2010) and Zhu & Guo (2019), the
    step-down version of the "sum of CDFs" discrete Bonferroni; the same construction
    underlies the discrete Benjamini-Hochberg procedures of Döhler, Durand & Roquain
    (2018) for the FDR. It refines Tarone's (1990) screening and the Tarone-Holm
    procedure of Hommel & Krummenauer (1998): a hypothesis whose smallest attainable
    p-value exceeds ``c`` contributes ``F_i(c) = 0``, and one that can only reach a few
    small values contributes their probabilities rather than ``c``.

    *FWER control (strong, any dependence).* Let ``I0`` be the true nulls and consider
    the first of them to be rejected, at step ``j``. No true null was rejected before,
    so ``I0`` is a subset of ``R_j`` and ``S_{I0} <= S_j``; the rejected p-value is the
    smallest of ``R_j``, hence ``min_{i in I0} p_i <= a_j`` with ``S_{I0}(a_j) <=
    alpha``. So a false rejection implies ``min_{i in I0} p_i <= c*``, ``c*`` the largest
    ``c`` with ``S_{I0}(c) <= alpha``, whose probability is at most ``S_{I0}(c*) <=
    alpha`` by the union bound. Only the marginal null CDFs enter: the tests may be
    dependent, and conditional tests (Fisher, McNemar) are valid conditionally on
    their margins. Mid-p tests are covered as long as their support holds the true null
    probabilities.

    *Never less powerful than Holm* when every test is valid (``F_i(c) <= c``, true of
    exact tests): ``S_j(alpha / |R_j|) <= alpha``, so ``a_j`` is at least every
    attainable value ``<= alpha / |R_j|`` and each rejection of Holm is one here.

    References
    ----------
    Döhler, S. (2010). Validation of credit default probabilities using multiple-testing
    procedures. *Journal of Risk Model Validation* 4(4), 59-92.

    Zhu, Y. & Guo, W. (2019). Family-wise error rate controlling procedures for discrete
    data. *Statistics in Biopharmaceutical Research* 12(1), 117-128.

    Döhler, S., Durand, G. & Roquain, E. (2018). New FDR bounds for discrete and
    heterogeneous tests. *Electronic Journal of Statistics* 12(1), 1867-1900.

    Tarone, R. E. (1990). A modified Bonferroni method for discrete data. *Biometrics*
    46, 515-522.

    Hommel, G. & Krummenauer, F. (1998). Improvements and modifications of Tarone's
    multiple test procedure for discrete data. *Biometrics* 54, 673-681.

    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    *Scandinavian Journal of Statistics* 6, 65-70.

    Examples
    --------
    Three hypotheses whose tests can only give the p-values listed in ``values``:

    >>> sup = ([0.01, 0.3, 1.0], [0.01, 0.29, 0.7])
    >>> res = discrete_holm([0.01, 0.01, 0.01], [sup, sup, sup], alpha=0.05)
    >>> res.rejected.tolist(), res.adjusted.round(3).tolist()
    ([True, True, True], [0.03, 0.03, 0.03])
    >>> holm([0.01, 0.01, 0.01]).rejected.tolist()
    [True, True, True]

    A cell whose test cannot go below 0.3 costs nothing and is not testable:

    >>> res = discrete_holm([0.02, 0.3], [None, ([0.3, 1.0], [0.3, 0.7])])
    >>> res.rejected.tolist(), res.testable.tolist(), float(res.critical[0])
    ([True, False], [True, False], 0.05)
    """
    p = _check_pvalues(pvalues)
    sups = _check_supports(supports, p.size)
    alpha = _check_alpha(alpha)
    n = p.size
    rejected, adjusted, critical, testable = _blank(n)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m == 0:
        return _result(rejected, adjusted, critical, testable, "discrete_holm")

    ps = p.copy()
    for i in idx:
        if sups[i] is not None:
            ps[i] = _snap(int(i), float(p[i]), sups[i])  # type: ignore[arg-type]
    order = idx[np.argsort(ps[idx], kind="stable")]
    disc = [sups[i] for i in order]
    k = sum(s is None for s in disc)  # continuous hypotheses left

    # S(c) of the discrete hypotheses left, on the union of their supports, and how many
    # of them can attain each grid point; both updated as hypotheses leave the family
    vals = [s.values for s in disc if s is not None]
    grid = np.unique(np.concatenate(vals)) if vals else np.empty(0)
    s_grid = np.zeros(grid.size)
    live = np.zeros(grid.size, dtype=np.int64)
    on_grid: list[tuple[np.ndarray, np.ndarray] | None] = []  # (F on the grid, where its values are)
    for s in disc:
        if s is None:
            on_grid.append(None)
            continue
        f_grid, pos = s.at(grid), np.searchsorted(grid, s.values)
        s_grid += f_grid
        live[pos] += 1
        on_grid.append((f_grid, pos))

    raw = np.empty(m)
    running = True
    c_stop = np.nan
    for j in range(m):
        pj = ps[order[j]]
        if running:
            c = _critical_value(grid, s_grid, live > 0, k, alpha)
            if pj <= c:
                rejected[order[j]] = True
                critical[order[j]] = c
            else:
                running = False
                c_stop = c
        g = int(np.searchsorted(grid, pj, side="right")) - 1
        raw[j] = (float(s_grid[g]) if g >= 0 else 0.0) + k * pj
        leaving = on_grid[j]  # hypothesis (j) leaves the family
        if leaving is None:
            k -= 1
        else:
            s_grid -= leaving[0]
            live[leaving[1]] -= 1

    if not running:
        critical[order[~rejected[order]]] = c_stop
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(raw))
    min_p = np.array([0.0 if s is None else float(s.values[0]) for s in disc])
    testable[order] = min_p <= critical[order]
    return _result(rejected, adjusted, critical, testable, "discrete_holm")


# --------------------------------------------------------------------------- score-ordered Holm


def _check_scores(scores: Any, supports: Any, sups: list[_Support | None], p: np.ndarray) -> list[np.ndarray | None]:
    hint = (
        "use one array per p-value with a score for each attainable value of its support (non-increasing "
        "along the values, e.g. RateTest.scores), or pass the RateTests as supports"
    )
    if scores is None:
        if isinstance(supports, Sequence) and not isinstance(supports, (str, bytes)):
            scores = [getattr(s, "scores", None) for s in supports]
        else:
            scores = [None] * p.size
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence) or len(scores) != p.size:
        msg = f"scores={scores!r} is not valid; {hint}"
        raise ConfigError(msg)
    out: list[np.ndarray | None] = []
    for i, (sc, sup) in enumerate(zip(scores, sups, strict=True)):
        if np.isnan(p[i]):
            out.append(None)
            continue
        if sup is None or sc is None:
            msg = (
                f"hypothesis {i} has no {'support' if sup is None else 'scores'}: score_ordered_holm needs the "
                "attainable p-values and scores of every test (conditional exact tests); use discrete_holm "
                "for a family with continuous or unconditional tests"
            )
            raise ConfigError(msg)
        try:
            arr = np.asarray(sc, dtype=float)
        except (TypeError, ValueError):
            arr = np.empty(0)
        if arr.shape != sup.values.shape or not np.isfinite(arr).all() or np.any(np.diff(arr) > 0):
            msg = f"scores[{i}] is not valid: shape {arr.shape} against {sup.values.shape} values; {hint}"
            raise ConfigError(msg)
        out.append(arr)
    return out


def _round_sig(x: np.ndarray, digits: int = 10) -> np.ndarray:
    """``x`` (>= 0) rounded to ``digits`` significant digits, so equal costs computed
    along different paths compare equal."""
    out = np.zeros_like(x)
    pos = x > 0
    e = np.floor(np.log10(x[pos]))
    out[pos] = np.round(x[pos] / 10**e, digits - 1) * 10**e
    return out


def _level_between(lo: float, hi: float | None, alpha: float) -> float:
    """A level in ``[lo, hi)`` (``hi`` None: no upper end): ``alpha`` when inside, else the midpoint."""
    if hi is None:
        return max(lo, alpha)
    if lo < alpha < hi:
        return alpha
    mid = lo + 0.5 * (hi - lo)
    return mid if lo <= mid < hi else lo


def score_ordered_holm(
    pvalues: Sequence[float] | np.ndarray,
    supports: Sequence[Any],
    scores: Sequence[Any] | None = None,
    *,
    alpha: float = 0.05,
) -> MultiplicityResult:
    """Step-down test of many discrete conditional tests, the budget spent by score.

    Every test ``i`` is a conditional exact test (Fisher given the margins, McNemar
    given the discordant pairs) with attainable p-values ``v_i1 < v_i2 < ...``: it
    rejects at level ``v_ij`` exactly when its outcome is one of its ``j`` most extreme
    ones, and that costs the null probability ``q_i1 + ... + q_ij``. Each outcome also
    has a *score*: for rates, how many successes the candidate falls short of what no
    change predicts, ``E0(X | margins) - x`` runs, the conditional score statistic of
    the cell's log odds ratio.

    At level ``alpha`` on a set ``R`` of hypotheses (``m`` of them measured in all),
    the outcomes of the tests in ``R`` are taken in this order for as long as the null
    probability taken stays ``<= alpha``: first each test's outcomes of null probability
    ``<= alpha / m`` (its Bonferroni share, so every rejection of Bonferroni is one
    here), then the others by decreasing score (equal scores: the less probable first;
    outcomes equal in both, together). A hypothesis is rejected when its observed
    outcome was taken. Step down: remove the rejected hypotheses from ``R`` (which
    frees their part of the budget) and repeat until no new rejection.

    Where :func:`discrete_holm` gives every cell the same p-value threshold, this spends
    the error budget first on the largest shortfalls in runs, the locally most powerful
    order against a drop shared by the cells (a log odds ratio slightly below 0). A
    cell whose margins let it show a large shortfall -- rates near one half, many runs
    -- is therefore looked at before a cell that can only show a small one. Against a
    drop from a high success rate (0.7-0.95, where most robot policies are) that is
    much more powerful than one threshold for all; against a drop from about 0.5 to
    about 0.1, where the affected cell's margin makes it the *least* variable one, it
    is somewhat less powerful (see ``bench/stats_power.py``).

    Parameters
    ----------
    pvalues : sequence of float
        One one-sided p-value per hypothesis; NaN for one not measured (not in the
        family, never rejected).
    supports : sequence
        One ``(values, probs)`` pair per p-value (a :class:`~workbench.stats.rates.RateTest`
        is accepted too), as for :func:`discrete_holm`; the entry of a NaN p-value is
        ignored. Every measured test must have one.
    scores : sequence or None
        One array per p-value, a score per value of its support, non-increasing along
        the values (:attr:`RateTest.scores <workbench.stats.rates.RateTest>`). None:
        taken from the ``RateTest`` objects passed as ``supports``.
    alpha : float
        Family-wise error level in (0, 1).

    Returns
    -------
    MultiplicityResult
        ``method == "score_ordered_holm"``. ``adjusted``: the smallest level at which
        the step-down rejects the hypothesis with the order of outcomes fixed (outcomes
        whose own null probability exceeds ``alpha`` are never taken; a hypothesis whose
        observed outcome is one of them gets ``p + `` the budget of the others, ``>
        alpha``). ``critical``: the level the hypothesis was tested at -- in ``[v_ik,
        v_i(k+1))``, ``v_ik`` the last of its values taken: ``alpha`` when inside, else
        the midpoint, so an interval at that level agrees with the decision.
        ``testable``: at least one outcome of the test was taken.

    Raises
    ------
    ConfigError
        As :func:`discrete_holm`; a measured test without support or scores; scores not
        one per attainable value or increasing.

    Notes
    -----
    *Validity.* Which outcomes are taken depends on the margins (through the supports
    and scores) and on ``R``, never on the observed outcomes. Given the margins, the
    test of the intersection of the hypotheses in ``R`` rejects with null probability
    at most the sum of the probabilities taken, ``<= alpha`` (the union bound; under
    a null of "no worse" rather than "equal" the conditional law of a one-sided test
    is stochastically less extreme, so the bound still holds). For a subset ``S`` of
    ``R`` the outcomes of ``S`` come in the same order and each group costs at most as
    much, so every outcome taken for ``R`` is taken for ``S``: the intersection tests
    are consonant and this step-down is the shortcut of the closed test built from
    them (Marcus, Peritz & Gabriel 1976). The family-wise error rate is therefore
    controlled strongly, under any dependence between the tests, conditionally on the
    margins and so unconditionally. Outcomes whose own cumulative null probability
    exceeds ``alpha`` are dropped before ordering (they can never be taken); that rule
    uses only the margins and ``alpha``.

    *Never less powerful than Bonferroni*: an outcome with ``p <= alpha / m`` is in
    the first part, whose total null probability is at most ``m * alpha / m``. (Against
    Holm's later steps and :func:`discrete_holm` there is no such guarantee: the order
    by score can spend the budget elsewhere.)

    This is a weighted discrete Bonferroni step-down in the family of Tarone (1990),
    Hommel & Krummenauer (1998) and Gutman & Hochberg (2007), with the level of each
    test allocated by the locally most powerful score rather than by a common p-value
    threshold; the score is the Mantel-Haenszel score of each cell (Mantel & Haenszel
    1959).

    References
    ----------
    Marcus, R., Peritz, E. & Gabriel, K. R. (1976). On closed testing procedures with
    special reference to ordered analysis of variance. *Biometrika* 63, 655-660.

    Gutman, R. & Hochberg, Y. (2007). Improved multiple test procedures for discrete
    distributions: new ideas and analytical review. *Journal of Statistical Planning
    and Inference* 137, 2380-2393.

    Mantel, N. & Haenszel, W. (1959). Statistical aspects of the analysis of data from
    retrospective studies of disease. *Journal of the National Cancer Institute* 22,
    719-748.

    Examples
    --------
    Eight cells of 20 runs a side; in the first the candidate fell from 18 to 12
    successes, the others moved by a run or two. One p-value threshold for all
    (discrete Holm) cannot reject the first cell; ordering by the shortfall in runs can,
    because the other cells' margins only allow small shortfalls:

    >>> from workbench.stats.rates import unpaired_rate_test
    >>> counts = [(18, 12), (18, 17), (19, 18), (17, 18), (18, 16), (20, 19), (16, 17), (19, 19)]
    >>> tests = [unpaired_rate_test(b, 20, c, 20) for b, c in counts]
    >>> p = [t.p_value for t in tests]
    >>> round(p[0], 4)
    0.0324
    >>> discrete_holm(p, tests).rejected[0]
    np.False_
    >>> res = score_ordered_holm(p, tests)
    >>> res.rejected.tolist()
    [True, False, False, False, False, False, False, False]
    >>> round(float(res.adjusted[0]), 4) <= 0.05
    True
    """
    p = _check_pvalues(pvalues)
    sups = _check_supports(supports, p.size)
    alpha = _check_alpha(alpha)
    scs = _check_scores(scores, supports, sups, p)
    n = p.size
    rejected, adjusted, critical, testable = _blank(n)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size == 0:
        return _result(rejected, adjusted, critical, testable, "score_ordered_holm")

    # the outcomes that can ever be taken at alpha, each (hypothesis, rank in its support, cost, score)
    hyp_l, rank_l, cost_l, score_l, cum_l = [], [], [], [], []
    obs = np.full(n, -1)  # rank of the observed outcome
    obs_cum = np.zeros(n)  # its cumulative null probability
    for i in idx:
        sup, sc = sups[i], scs[i]
        assert sup is not None and sc is not None  # checked above
        v = _snap(int(i), float(p[i]), sup)
        obs[i] = int(np.searchsorted(sup.values, v))
        cum = sup.cdf0[1:]
        obs_cum[i] = float(cum[obs[i]])
        usable = int(np.searchsorted(cum, alpha * (1 + _SNAP_RTOL), side="right"))
        cum_l.append(cum[:usable])
        hyp_l.append(np.full(usable, i))
        rank_l.append(np.arange(usable))
        cost_l.append(np.diff(sup.cdf0[: usable + 1]))
        score_l.append(sc[:usable])
    hyp, rank = np.concatenate(hyp_l), np.concatenate(rank_l)
    cost, score = np.concatenate(cost_l), np.concatenate(score_l)
    cum_all = np.concatenate(cum_l)
    # order: first each test's outcomes within its Bonferroni share (null probability
    # <= alpha / m), then the others; within each part decreasing score (to 1e-9 runs),
    # then increasing cost. Outcomes equal in all three (cells with the same runs and
    # margins) are taken together or not at all, so the decisions never depend on the
    # order of the cells
    reserved = cum_all <= alpha / idx.size * (1 + _SNAP_RTOL)
    keys = np.stack([np.where(reserved, 0.0, 1.0), -np.round(score, 9) + 0.0, _round_sig(cost)], axis=1)  # no -0.0
    uniq, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = uniq.shape[0]
    step_of_obs = np.full(n, -1)  # index of the observed outcome among the steps, -1: never taken
    for s in np.flatnonzero(rank == obs[hyp]):
        step_of_obs[hyp[s]] = s
    tol = alpha * _SNAP_RTOL

    def spent(live: np.ndarray) -> np.ndarray:
        """Cumulative null probability through each group, for the hypotheses in ``live``."""
        on = live[hyp]
        return np.cumsum(np.bincount(group[on], weights=cost[on], minlength=n_groups))

    def levels(live: np.ndarray, members: np.ndarray) -> None:
        """Critical level and testability of ``members`` with ``live`` in the family."""
        c = spent(live)
        taken = live[hyp] & (c[group] <= alpha + tol)
        last = np.full(n, -1)
        np.maximum.at(last, hyp[taken], rank[taken])
        for i in members:
            sup = sups[i]
            assert sup is not None
            k = int(last[i])
            lo = float(sup.values[k]) if k >= 0 else 0.0
            hi = float(sup.values[k + 1]) if k + 1 < sup.values.size else None
            critical[i] = _level_between(lo, hi, alpha)
            testable[i] = k >= 0

    live = np.zeros(n, dtype=bool)
    live[idx] = True
    running_max = 0.0
    stopped = False
    while live.any():
        c = spent(live)
        total = float(c[-1]) if c.size else 0.0
        members = np.flatnonzero(live)
        cand = np.array([
            float(c[group[step_of_obs[i]]]) if step_of_obs[i] >= 0 else min(1.0, total + obs_cum[i]) for i in members
        ])
        order = np.lexsort((members, p[members], cand))
        j = members[order[0]]
        running_max = min(1.0, max(running_max, float(cand[order[0]])))
        adjusted[j] = running_max
        if not stopped and running_max <= alpha + tol:
            rejected[j] = True
            levels(live, np.array([j]))
        elif not stopped:
            stopped = True
            levels(live, members)  # the level each hypothesis left was tested at
        live[j] = False
    return _result(rejected, adjusted, critical, testable, "score_ordered_holm")
