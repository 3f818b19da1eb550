"""Time to success: Kaplan-Meier curves, restricted means and one-sided tests.

A robot run either *succeeds* at some time (the event) or ends without success -- it
failed, was aborted or timed out -- and is *right-censored* at its duration: it is known
not to have succeeded before that time, nothing more. Comparing only the successful
runs' times would drop exactly the runs that matter; everything here keeps them.

Throughout, the "survival" curve is ``S(t) = P(not yet succeeded by t)``: it starts at 1
and falls as runs succeed. A *lower* curve is better (faster success).

Estimates
---------
* :func:`kaplan_meier` -- the product-limit estimate of ``S`` (as
  ``statsmodels.duration.survfunc.SurvfuncRight``), a :class:`KaplanMeier` step
  function.
* :func:`km_median` -- median time to success: the first success time with
  ``S(t) < 1/2`` *strictly* (the statsmodels / SAS convention; R's ``survfit`` takes
  ``S(t) <= 1/2`` and averages at an exact plateau). NaN when the curve never gets
  below 1/2.
* :func:`rmst` -- restricted mean time to success up to ``tau``, the area under the
  Kaplan-Meier curve on ``[0, tau]`` (``E[min(T, tau)]``), with the Greenwood-type
  variance of Klein & Moeschberger / Royston & Parmar as in R's ``survRM2``.
* :func:`success_within` -- how many runs succeeded by a deadline, and how many cannot
  be classified because they were censored before it.

Test
----
:func:`time_to_success_test` compares a candidate against a baseline, independent arms:

* ``method="rmst"`` (default) -- z-test of ``RMST_cand - RMST_base`` with the summed
  variances. ``tau`` defaults to the smaller of the two arms' largest observed times.
* ``method="logrank"`` -- the log-rank test (hypergeometric variance, as
  ``statsmodels.duration.survfunc.survdiff``) made one-sided through its signed
  statistic ``z = (E_cand - O_cand) / sqrt(V)``; ``z**2`` is survdiff's chi-square and
  ``2 * min(p_less, p_greater)`` its p-value.

Conventions
-----------
* ``alternative="greater"`` (default): H1 is "the candidate takes *longer* to succeed"
  (harm); ``"less"``: the candidate is faster. p-values are one-sided.
* Estimates are oriented so that "greater" means ``estimate > null_value``: the RMST
  difference candidate - baseline, or for the log-rank test the Peto estimate
  ``(E_cand - O_cand) / V`` of ``log(h_base / h_cand)`` (the log ratio of the
  success hazards; positive when the candidate succeeds at a lower rate).
* :meth:`SurvivalTest.interval` returns ``(lower, upper)`` where *each* bound is a
  one-sided ``1 - level`` Wald bound (together a ``1 - 2 level`` interval). They invert
  the same z statistic, so ``p_value <= level`` exactly when ``lower > null_value``
  (``"greater"``) or ``upper < null_value`` (``"less"``), up to ties at the boundary.
* Empty arms, negative or non-finite times and non-binary events raise
  :class:`~workbench.model.ConfigError`. Data without any variance information (e.g.
  no success in either arm before ``tau``) give ``p_value = 1`` and an unbounded
  interval rather than a spurious 0.

Examples
--------
>>> base_t = [2, 3, 3, 4, 5, 6, 8, 10, 10, 10]
>>> base_e = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]      # three runs timed out at 10
>>> cand_t = [4, 5, 6, 7, 8, 9, 10, 10, 10, 10]
>>> cand_e = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]      # four timed out / failed
>>> km_median(base_t, base_e), km_median(cand_t, cand_e)
(6.0, 9.0)
>>> res = time_to_success_test(base_t, base_e, cand_t, cand_e, alternative="greater")
>>> res.method, round(res.estimate, 2), round(res.p_value, 3)
('rmst', 1.8, 0.063)
>>> lo, hi = res.interval(0.05)
>>> (res.p_value <= 0.05) == (lo > 0)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import numpy as np
from scipy import stats as sps

from workbench.model import ConfigError

__all__ = [
    "ALTERNATIVES",
    "METHODS",
    "KaplanMeier",
    "RestrictedMean",
    "SuccessWithin",
    "SurvivalTest",
    "kaplan_meier",
    "km_median",
    "rmst",
    "success_within",
    "time_to_success_test",
]

ALTERNATIVES: tuple[str, ...] = ("less", "greater")
"""One-sided alternatives: ``"greater"`` = the candidate takes longer (harm)."""

METHODS: tuple[str, ...] = ("rmst", "logrank")
"""Methods of :func:`time_to_success_test`."""

_HALF_TOL = 1e-12  # |S - 1/2| below this counts as S == 1/2 exactly (km_median)

ArrayLike = Sequence[float] | np.ndarray


# --------------------------------------------------------------------------- validation


def _check_times(name: str, time: Any) -> np.ndarray:
    try:
        t = np.asarray(time, dtype=float)
    except (TypeError, ValueError):
        msg = f"{name} must be a 1-D array of non-negative finite times, got {time!r}"
        raise ConfigError(msg) from None
    if t.ndim != 1:
        msg = f"{name} must be a 1-D array of non-negative finite times, got shape {t.shape}"
        raise ConfigError(msg)
    if t.size == 0:
        msg = f"{name} is empty: time to success needs at least one run on each side"
        raise ConfigError(msg)
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"{name}[{i}]={t[i].item()!r} is not valid; times must be finite and >= 0"
        raise ConfigError(msg)
    return t


def _plain(x: Any) -> Any:
    """A numpy scalar as the Python value (for readable messages)."""
    return x.item() if isinstance(x, np.generic) else x


def _check_events(name: str, event: Any, n: int, time_name: str) -> np.ndarray:
    try:
        e = np.asarray(event)
    except (TypeError, ValueError):  # pragma: no cover - asarray accepts nearly anything
        e = np.asarray([None])
    if e.ndim != 1 or e.shape[0] != n:
        msg = f"{name} has shape {e.shape} but {time_name} has {n} runs; give one event flag per run"
        raise ConfigError(msg)
    if e.dtype == bool:
        return e.copy()
    try:
        ef = e.astype(float)
    except (TypeError, ValueError):
        ef = np.full(n, np.nan)
    bad = ~np.isin(ef, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"{name}[{i}]={_plain(e[i])!r} is not valid; use True/1 (succeeded) or False/0 (censored)"
        raise ConfigError(msg)
    return ef == 1.0


def _check_arm(time: Any, event: Any, time_name: str = "time", event_name: str = "event") -> tuple[np.ndarray, np.ndarray]:
    t = _check_times(time_name, time)
    e = _check_events(event_name, event, t.size, time_name)
    return t, e


def _check_alternative(alternative: object) -> str:
    if alternative not in ALTERNATIVES:
        msg = f"alternative must be one of {ALTERNATIVES}, got {alternative!r}"
        raise ConfigError(msg)
    return str(alternative)


def _check_method(method: object) -> str:
    if method not in METHODS:
        msg = f"method must be one of {METHODS}, got {method!r}"
        raise ConfigError(msg)
    return str(method)


def _check_level(level: object) -> float:
    try:
        a = float(level)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        a = float("nan")
    if not 0.0 < a < 0.5:
        msg = f"level must be a one-sided alpha in (0, 0.5), got {level!r}"
        raise ConfigError(msg)
    return a


def _check_positive(name: str, value: object, *, allow_inf: bool = False, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")  # type: ignore[arg-type]
    if ok:
        ok = (v >= 0 if allow_zero else v > 0) and (allow_inf or math.isfinite(v)) and not math.isnan(v)
    if not ok:
        kind = ">= 0" if allow_zero else "> 0"
        fin = "" if allow_inf else " and finite"
        msg = f"{name}={value!r} is not valid; use a number {kind}{fin}"
        raise ConfigError(msg)
    return v


# --------------------------------------------------------------------------- Kaplan-Meier


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimate of ``S(t) = P(not yet succeeded by t)``.

    Attributes
    ----------
    times : ndarray
        Distinct success (event) times, increasing.
    survival : ndarray
        ``S`` just after each of ``times`` (right-continuous step function).
    at_risk : ndarray of int
        Runs still without success and not yet censored just before each time.
    events : ndarray of int
        Successes at each time.
    n : int
        Number of runs.
    max_time : float
        Largest observed time (success or censoring). Past it the estimate is not
        identified unless it has reached 0; :meth:`__call__` keeps the last value.

    Examples
    --------
    >>> km = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    >>> km.times.tolist(), km.at_risk.tolist(), km.events.tolist()
    ([1.0, 2.0, 3.0], [5, 4, 2], [1, 1, 1])
    >>> np.round(km.survival, 3).tolist()
    [0.8, 0.6, 0.3]
    >>> round(km(0.5), 3), round(km(2.0), 3), round(km(2.5), 3), round(km(9.0), 3)
    (1.0, 0.6, 0.6, 0.3)
    """

    times: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    n: int
    max_time: float

    @overload
    def __call__(self, t: float) -> float: ...

    @overload
    def __call__(self, t: ArrayLike) -> np.ndarray: ...

    def __call__(self, t: float | ArrayLike) -> float | np.ndarray:
        """``S(t)``: 1 before the first success, right-continuous at success times."""
        tt = np.asarray(t, dtype=float)
        idx = np.searchsorted(self.times, tt, side="right")
        vals = np.concatenate([[1.0], self.survival])[idx]
        if tt.ndim == 0:
            return float(vals)
        return vals


def _km_arrays(t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct success times, S after each, at-risk and event counts."""
    utime, inv = np.unique(t, return_inverse=True)
    d_all = np.bincount(inv, weights=e.astype(float), minlength=utime.size)
    c_all = np.bincount(inv, minlength=utime.size)
    n_all = np.cumsum(c_all[::-1])[::-1]
    keep = d_all > 0
    times, d, n = utime[keep], d_all[keep].astype(np.int64), n_all[keep].astype(np.int64)
    surv = np.cumprod(1.0 - d / n)
    surv[surv < 1e-15] = 0.0  # cumprod reaches 0 exactly when a risk set is exhausted
    return times, surv, n, d


def kaplan_meier(time: ArrayLike, event: ArrayLike) -> KaplanMeier:
    """Kaplan-Meier curve of the probability of *not yet* having succeeded.

    Parameters
    ----------
    time : array_like of float
        Observed time of each run: its success time, or its duration when it ended
        without success (failed, aborted, timed out).
    event : array_like of bool or {0, 1}
        True/1 if the run succeeded at ``time``, False/0 if it was censored there.

    Returns
    -------
    KaplanMeier
        Equal to ``statsmodels.duration.survfunc.SurvfuncRight(time, event)``:
        ``times == surv_times``, ``survival == surv_prob``, ``at_risk == n_risk``,
        ``events == n_events``.

    Raises
    ------
    ConfigError
        If ``time`` is empty, contains negative or non-finite values, or ``event`` is
        not one binary flag per run.

    Examples
    --------
    >>> km = kaplan_meier([3.0, 1.0, 2.0, 5.0], [True, True, False, True])
    >>> km.times.tolist(), km.survival.tolist()
    ([1.0, 3.0, 5.0], [0.75, 0.375, 0.0])
    """
    t, e = _check_arm(time, event)
    times, surv, n, d = _km_arrays(t, e)
    return KaplanMeier(
        times=_frozen(times),
        survival=_frozen(surv),
        at_risk=_frozen(n),
        events=_frozen(d),
        n=int(t.size),
        max_time=float(t.max()),
    )


def km_median(time: ArrayLike, event: ArrayLike) -> float:
    """Median time to success from the Kaplan-Meier curve.

    The first success time at which ``S(t) < 1/2`` strictly -- the convention of
    ``statsmodels`` ``SurvfuncRight.quantile(0.5)`` (and SAS). Values within
    ``1e-12`` of 1/2 count as exactly 1/2, so an exact plateau at 1/2 (e.g. 2 of 4
    runs succeeded) is not broken by rounding: the median is then the *next* success
    time (R's ``survfit`` would average the two).

    Parameters
    ----------
    time, event : array_like
        As for :func:`kaplan_meier`.

    Returns
    -------
    float
        The median, or NaN when the curve never falls below 1/2 (fewer than half the
        runs are known to have succeeded).

    Examples
    --------
    >>> km_median([1, 2, 3, 4], [1, 1, 1, 1])
    3.0
    >>> km_median([1, 2, 3, 4], [1, 0, 0, 0])
    nan
    """
    km = kaplan_meier(time, event)
    ii = np.flatnonzero(km.survival < 0.5 - _HALF_TOL)
    if ii.size == 0:
        return math.nan
    return float(km.times[ii[0]])


# --------------------------------------------------------------------------- RMST


class RestrictedMean(NamedTuple):
    """Restricted mean time to success up to ``tau`` and its variance."""

    estimate: float
    variance: float
    tau: float

    @property
    def std_err(self) -> float:
        """Square root of :attr:`variance`."""
        return math.sqrt(self.variance)


def _rmst_arrays(km: KaplanMeier, tau: float) -> tuple[float, float]:
    idx = km.times <= tau
    ti, si = km.times[idx], km.survival[idx]
    ni, di = km.at_risk[idx].astype(float), km.events[idx].astype(float)
    knots = np.concatenate([[0.0], ti, [tau]])
    heights = np.concatenate([[1.0], si])
    areas = np.diff(knots) * heights
    est = float(areas.sum())
    # A_i = integral of S from t_i to tau, for each success time t_i <= tau
    tail = np.cumsum(areas[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(ni > di, di / (ni * (ni - di)), 0.0)
    var = float(np.sum(tail**2 * w))
    return est, var


def _check_tau(tau: object, km: KaplanMeier, name: str) -> float:
    tau_f = _check_positive("tau", tau)
    last = float(km.survival[-1]) if km.survival.size else 1.0
    if tau_f > km.max_time and last > 0.0:
        msg = (
            f"tau={tau!r} exceeds the largest observed time {km.max_time!r} of {name}, where the curve "
            f"is not identified; use tau <= {km.max_time!r}"
        )
        raise ConfigError(msg)
    return tau_f


def rmst(time: ArrayLike, event: ArrayLike, tau: float) -> RestrictedMean:
    """Restricted mean time to success up to ``tau``.

    The area under the Kaplan-Meier curve on ``[0, tau]``, an estimate of
    ``E[min(T, tau)]``. Its variance is the Greenwood-type estimate
    ``sum_i A_i**2 * d_i / (n_i * (n_i - d_i))`` over success times ``t_i <= tau``,
    with ``A_i`` the area under the curve from ``t_i`` to ``tau`` (Klein & Moeschberger
    4.5; Royston & Parmar 2013; R ``survRM2::rmst2``), terms with ``n_i == d_i`` set
    to 0.

    Parameters
    ----------
    time, event : array_like
        As for :func:`kaplan_meier`.
    tau : float
        Truncation time, ``> 0``. It may exceed the largest observed time only when
        the curve has reached 0 (then ``S = 0`` beyond).

    Returns
    -------
    RestrictedMean
        ``(estimate, variance, tau)``; ``std_err`` is the square root of the variance.

    Raises
    ------
    ConfigError
        On invalid data (see :func:`kaplan_meier`), ``tau <= 0`` or a ``tau`` past
        the end of an unfinished curve.

    Examples
    --------
    >>> r = rmst([1, 2, 3, 4], [1, 1, 1, 1], tau=4)
    >>> r.estimate, round(r.variance, 4)
    (2.5, 0.3125)
    >>> rmst([1, 2, 3, 4], [1, 0, 1, 0], tau=10)
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: tau=10 exceeds the largest observed time 4.0 of the data, where the curve is not identified; use tau <= 4.0
    """
    km = kaplan_meier(time, event)
    tau_f = _check_tau(tau, km, "the data")
    est, var = _rmst_arrays(km, tau_f)
    return RestrictedMean(estimate=est, variance=var, tau=tau_f)


# --------------------------------------------------------------------------- success by a deadline


class SuccessWithin(NamedTuple):
    """Counts of runs by their status at a deadline ``t_max``.

    ``k`` succeeded at or before ``t_max``; ``n`` is all runs; ``n_unknown`` were
    censored strictly before ``t_max`` without success, so whether they would have
    succeeded by ``t_max`` is not known. The remaining ``n - k - n_unknown`` are known
    failures at the deadline. ``k / n <= rate <= (k + n_unknown) / n``.
    """

    k: int
    n: int
    n_unknown: int


def success_within(time: ArrayLike, event: ArrayLike, t_max: float) -> SuccessWithin:
    """Count successes by ``t_max`` among *all* runs, keeping the unknowns apart.

    * success at ``time <= t_max`` -- success (counted in ``k``);
    * success after ``t_max``, or censored at ``time >= t_max`` -- known failure by the
      deadline (a run observed until ``t_max`` without success);
    * censored at ``time < t_max`` -- unknown: the run stopped (timed out with a
      shorter limit, aborted, crashed) before the deadline, and had it continued it
      might have succeeded in time. These are *not* silently counted as failures or
      dropped; the caller chooses (e.g. bound the rate, or use :func:`kaplan_meier`,
      whose ``1 - S(t_max)`` uses them up to their censoring time).

    Parameters
    ----------
    time, event : array_like
        As for :func:`kaplan_meier`.
    t_max : float
        The deadline, ``>= 0`` (``inf`` allowed).

    Returns
    -------
    SuccessWithin
        ``(k, n, n_unknown)``.

    Examples
    --------
    >>> success_within([2, 5, 7, 3, 10], [1, 1, 1, 0, 0], t_max=6)
    SuccessWithin(k=2, n=5, n_unknown=1)
    """
    t, e = _check_arm(time, event)
    tm = _check_positive("t_max", t_max, allow_inf=True, allow_zero=True)
    k = int(np.count_nonzero(e & (t <= tm)))
    unknown = int(np.count_nonzero(~e & (t < tm)))
    return SuccessWithin(k=k, n=int(t.size), n_unknown=unknown)


# --------------------------------------------------------------------------- test


@dataclass(frozen=True)
class SurvivalTest:
    """Result of a one-sided time-to-success comparison.

    Attributes
    ----------
    p_value : float
        One-sided p-value for the requested alternative.
    estimate : float
        ``"rmst"``: ``RMST_cand - RMST_base``. ``"logrank"``: the Peto estimate
        ``(E_cand - O_cand) / V`` of ``log(h_base / h_cand)``. Positive = candidate
        slower in both cases.
    method : str
        ``"rmst"`` or ``"logrank"``.
    alternative : str
        ``"less"`` or ``"greater"``.
    null_value : float
        The estimate under H0 (0).
    statistic : float
        The signed z statistic ``(estimate - null_value) / std_err`` (NaN when
        ``std_err == 0``).
    std_err : float
        Standard error of ``estimate``: ``sqrt(var_base + var_cand)`` for RMST,
        ``1 / sqrt(V)`` for the log-rank test.
    tau : float or None
        The truncation time of the RMST; None for the log-rank test.
    """

    p_value: float
    estimate: float
    method: str
    alternative: str
    null_value: float = 0.0
    statistic: float = math.nan
    std_err: float = math.nan
    tau: float | None = None

    def interval(self, level: float = 0.05) -> tuple[float, float]:
        """Wald bounds for the estimate, each at one-sided level ``level``.

        ``estimate -/+ z_{1-level} * std_err``, a ``1 - 2*level`` two-sided interval
        that inverts this test: for ``"greater"``, ``p_value <= level`` iff
        ``lower > null_value``; for ``"less"`` iff ``upper < null_value``. Unbounded
        when the data carry no variance (``std_err`` 0 or NaN).

        Examples
        --------
        >>> res = time_to_success_test([1, 2, 3, 4, 5], [1] * 5, [3, 5, 7, 9, 11], [1] * 5,
        ...                            method="logrank")
        >>> lo, hi = res.interval(0.05)
        >>> (res.p_value <= 0.05) == (lo > 0), lo < res.estimate < hi
        (True, True)
        """
        alpha = _check_level(level)
        if not (self.std_err > 0 and math.isfinite(self.std_err)):
            return (-math.inf, math.inf)
        half = float(sps.norm.isf(alpha)) * self.std_err
        return (self.estimate - half, self.estimate + half)


def _one_sided(z: float, alternative: str) -> float:
    return float(sps.norm.sf(z) if alternative == "greater" else sps.norm.cdf(z))


def _logrank_parts(tb: np.ndarray, eb: np.ndarray, tc: np.ndarray, ec: np.ndarray) -> tuple[float, float]:
    """``E_cand - O_cand`` and the hypergeometric variance ``V`` over success times."""
    ev_times = np.unique(np.concatenate([tb[eb], tc[ec]]))
    if ev_times.size == 0:
        return 0.0, 0.0
    sb, sc = np.sort(tb), np.sort(tc)
    nb = tb.size - np.searchsorted(sb, ev_times, side="left")
    nc = tc.size - np.searchsorted(sc, ev_times, side="left")
    eb_s, ec_s = np.sort(tb[eb]), np.sort(tc[ec])
    db = np.searchsorted(eb_s, ev_times, side="right") - np.searchsorted(eb_s, ev_times, side="left")
    dc = np.searchsorted(ec_s, ev_times, side="right") - np.searchsorted(ec_s, ev_times, side="left")
    n = (nb + nc).astype(float)
    d = (db + dc).astype(float)
    expected_c = d * nc / n
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(n > 1, d * (nb * nc / n**2) * (n - d) / (n - 1), 0.0)
    return float(np.sum(expected_c - dc)), float(np.sum(v))


def time_to_success_test(
    base_time: ArrayLike,
    base_event: ArrayLike,
    cand_time: ArrayLike,
    cand_event: ArrayLike,
    *,
    alternative: str = "greater",
    tau: float | None = None,
    method: str = "rmst",
) -> SurvivalTest:
    """One-sided test that the candidate's time to success differs from the baseline's.

    Failed and timed-out runs enter as censored observations, never dropped.

    Parameters
    ----------
    base_time, base_event, cand_time, cand_event : array_like
        Each arm as for :func:`kaplan_meier`; the arms are independent.
    alternative : {"greater", "less"}
        ``"greater"``: H1 the candidate takes longer to succeed (harm).
        ``"less"``: H1 the candidate is faster.
    tau : float, optional
        RMST truncation time; default the smaller of the two arms' largest observed
        times. Only for ``method="rmst"``.
    method : {"rmst", "logrank"}
        ``"rmst"``: z-test of ``RMST_cand - RMST_base`` with variance
        ``var_base + var_cand`` (:func:`rmst`). ``"logrank"``: the one-sided log-rank
        test from ``z = (E_cand - O_cand) / sqrt(V)``; ``z**2`` equals
        ``statsmodels.duration.survfunc.survdiff``'s chi-square.

    Returns
    -------
    SurvivalTest
        p-value, estimate, z statistic, standard error and :meth:`~SurvivalTest.interval`.

    Raises
    ------
    ConfigError
        On invalid data, ``alternative`` or ``method``, a ``tau`` past the end of an
        unfinished curve, or ``tau`` given with ``method="logrank"``.

    Examples
    --------
    >>> base_t, base_e = [1, 2, 2, 3, 4, 5], [1, 1, 1, 1, 1, 0]
    >>> cand_t, cand_e = [2, 4, 5, 6, 6, 6], [1, 1, 1, 0, 0, 0]
    >>> r = time_to_success_test(base_t, base_e, cand_t, cand_e, method="logrank")
    >>> round(r.statistic, 3), round(r.p_value, 4)
    (1.583, 0.0567)
    >>> time_to_success_test(base_t, base_e, cand_t, cand_e, method="cox")
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: method must be one of ('rmst', 'logrank'), got 'cox'
    """
    alt = _check_alternative(alternative)
    meth = _check_method(method)
    tb, eb = _check_arm(base_time, base_event, "base_time", "base_event")
    tc, ec = _check_arm(cand_time, cand_event, "cand_time", "cand_event")

    if meth == "logrank":
        if tau is not None:
            msg = f"tau={tau!r} only applies to method='rmst'; the log-rank test uses all follow-up"
            raise ConfigError(msg)
        diff, v = _logrank_parts(tb, eb, tc, ec)
        if v <= 0.0:
            return SurvivalTest(p_value=1.0, estimate=math.nan, method=meth, alternative=alt,
                                statistic=math.nan, std_err=math.inf)
        z = diff / math.sqrt(v)
        return SurvivalTest(p_value=_one_sided(z, alt), estimate=diff / v, method=meth, alternative=alt,
                            statistic=z, std_err=1.0 / math.sqrt(v))

    km_b = kaplan_meier(tb, eb)
    km_c = kaplan_meier(tc, ec)
    if tau is None:
        tau_f = min(km_b.max_time, km_c.max_time)
        if tau_f <= 0.0:
            msg = "tau cannot default to the smaller largest observed time: it is 0; pass tau > 0"
            raise ConfigError(msg)
    else:
        tau_f = _check_tau(tau, km_b, "the baseline")
        _check_tau(tau, km_c, "the candidate")
    mb, vb = _rmst_arrays(km_b, tau_f)
    mc, vc = _rmst_arrays(km_c, tau_f)
    est = mc - mb
    se = math.sqrt(vb + vc)
    if se <= 0.0:
        return SurvivalTest(p_value=1.0, estimate=est, method=meth, alternative=alt,
                            statistic=math.nan, std_err=0.0, tau=tau_f)
    z = est / se
    return SurvivalTest(p_value=_one_sided(z, alt), estimate=est, method=meth, alternative=alt,
                        statistic=z, std_err=se, tau=tau_f)
