"""Tests of workbench.stats.survival: statsmodels references, exact identities, simulation."""

from __future__ import annotations

import dataclasses
import doctest
import math

import numpy as np
import pytest
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from workbench.model import ConfigError
from workbench.stats import survival
from workbench.stats.survival import (
    kaplan_meier,
    km_median,
    rmst,
    success_within,
    time_to_success_test,
)

ALPHA = 0.05


def _arm(rng: np.random.Generator, n: int, rate: float, cmax: float = 3.0, digits: int | None = None):
    """Exponential success times with uniform(0, cmax) censoring (failures / time-outs)."""
    t = rng.exponential(1.0 / rate, n)
    c = rng.uniform(0.0, cmax, n)
    obs = np.minimum(t, c)
    if digits is not None:  # coarse clock: creates ties, also between events and censorings
        obs = np.round(obs, digits)
    return obs, t <= c


def _datasets():
    rng = np.random.default_rng(20240611)
    out = []
    for n, digits in [(5, None), (12, 1), (30, None), (40, 1), (80, 2), (25, 0)]:
        out.append(_arm(rng, n, 1.0, digits=digits))
    return out


# --------------------------------------------------------------------------- Kaplan-Meier


@pytest.mark.parametrize("data", _datasets())
def test_kaplan_meier_matches_statsmodels(data) -> None:
    t, e = data
    km = kaplan_meier(t, e)
    ref = SurvfuncRight(t, e.astype(float))
    np.testing.assert_array_equal(km.times, ref.surv_times)
    np.testing.assert_allclose(km.survival, ref.surv_prob, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(km.at_risk, ref.n_risk)
    np.testing.assert_array_equal(km.events, ref.n_events)
    assert km.n == len(t) and km.max_time == t.max()


def test_kaplan_meier_step_function_and_frozen() -> None:
    km = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    np.testing.assert_allclose(km.survival, [0.8, 0.6, 0.3])
    # right-continuous step: 1 before the first success, jumps at success times
    np.testing.assert_allclose(km([0.0, 0.999, 1.0, 1.5, 2.0, 3.0, 3.5, 100.0]), [1, 1, 0.8, 0.8, 0.6, 0.3, 0.3, 0.3])
    assert isinstance(km(1.0), float)
    with pytest.raises(ValueError):
        km.survival[0] = 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        km.n = 3  # type: ignore[misc]


def test_kaplan_meier_no_successes_and_all_successes() -> None:
    km = kaplan_meier([1.0, 2.0, 3.0], [0, 0, 0])
    assert km.times.size == 0 and km(5.0) == 1.0
    km = kaplan_meier([1.0, 1.0, 2.0], [True, True, True])
    np.testing.assert_allclose(km.survival, [1 / 3, 0.0])
    assert km(10.0) == 0.0


# --------------------------------------------------------------------------- median


@pytest.mark.parametrize("data", _datasets())
def test_median_matches_statsmodels(data) -> None:
    t, e = data
    ours = km_median(t, e)
    ref = SurvfuncRight(t, e.astype(float)).quantile(0.5)
    if math.isnan(ref):
        assert math.isnan(ours)
    else:
        assert ours == ref


def test_median_conventions() -> None:
    # exact plateau at 1/2 (2 of 4 succeeded): strict '<' gives the next time, as statsmodels
    for n in (4, 6, 10, 30):
        t, e = np.arange(1.0, n + 1), np.ones(n)
        assert km_median(t, e) == SurvfuncRight(t, e).quantile(0.5) == n / 2 + 1
    # never below 1/2: NaN, as statsmodels
    assert math.isnan(km_median([1, 2, 3, 4], [1, 0, 0, 0]))
    assert math.isnan(km_median([1, 2, 3, 4], [0, 0, 0, 0]))
    # failures are not dropped: 2 of 6 succeeded quickly, the median is not reached
    assert math.isnan(km_median([1, 1, 5, 5, 5, 5], [1, 1, 0, 0, 0, 0]))


# --------------------------------------------------------------------------- RMST


def _integrate_km(km, tau: float, points: int = 400_001) -> float:
    """Midpoint rule on a fine grid (the step curve is bounded, error <= jumps * h)."""
    h = tau / (points - 1)
    mids = (np.arange(points - 1) + 0.5) * h
    return float(np.sum(km(mids)) * h)


@pytest.mark.parametrize("data", _datasets())
def test_rmst_equals_integral_of_km(data) -> None:
    t, e = data
    km = kaplan_meier(t, e)
    for tau in (0.5 * t.max(), float(np.median(t)), float(t.max())):
        r = rmst(t, e, tau)
        assert r.tau == tau
        assert r.estimate == pytest.approx(_integrate_km(km, tau), abs=2e-5)
        assert 0 < r.estimate <= tau


def test_rmst_past_a_finished_curve_and_at_small_tau() -> None:
    t, e = [1.0, 2.0, 3.0], [1, 1, 1]  # curve reaches 0 at 3: S = 0 beyond is identified
    assert rmst(t, e, 10.0).estimate == pytest.approx(2.0)
    assert rmst(t, e, 0.5).estimate == pytest.approx(0.5)  # before any success: tau itself
    assert rmst(t, e, 0.5).variance == 0.0


def test_rmst_variance_uncensored_identity() -> None:
    # without censoring the Greenwood-type variance is the plug-in var(min(T, tau)) / n
    rng = np.random.default_rng(3)
    for n in (7, 25, 60):
        t = rng.exponential(1.0, n)
        tau = float(np.quantile(t, 0.8))
        x = np.minimum(t, tau)
        r = rmst(t, np.ones(n, bool), tau)
        assert r.estimate == pytest.approx(x.mean(), rel=1e-12)
        assert r.variance == pytest.approx(x.var() / n, rel=1e-10)
    r = rmst([1, 2, 3, 4], [1, 1, 1, 1], 4)
    assert (r.estimate, r.variance) == (2.5, pytest.approx(0.3125))
    assert r.std_err == pytest.approx(math.sqrt(0.3125))


def test_rmst_variance_against_bootstrap() -> None:
    rng = np.random.default_rng(11)
    t, e = _arm(rng, 60, 1.0)
    tau = 1.0
    r = rmst(t, e, tau)
    boot = np.empty(1500)
    for b in range(boot.size):
        i = rng.integers(0, t.size, t.size)
        boot[b] = rmst(t[i], e[i], tau).estimate
    ratio = r.variance / boot.var(ddof=1)
    assert 0.75 < ratio < 1.33, ratio


# --------------------------------------------------------------------------- log-rank


@pytest.mark.parametrize("seed,digits", [(0, None), (1, 1), (2, None), (3, 0), (4, 2)])
def test_logrank_matches_survdiff(seed: int, digits: int | None) -> None:
    rng = np.random.default_rng(seed)
    tb, eb = _arm(rng, 25, 1.0, digits=digits)
    tc, ec = _arm(rng, 35, 0.7, digits=digits)
    g = survival.time_to_success_test(tb, eb, tc, ec, method="logrank", alternative="greater")
    lo = survival.time_to_success_test(tb, eb, tc, ec, method="logrank", alternative="less")
    chisq, p2 = survdiff(np.r_[tb, tc], np.r_[eb, ec].astype(float), np.r_[np.zeros(tb.size), np.ones(tc.size)])
    assert g.statistic**2 == pytest.approx(chisq, rel=1e-10)
    assert 2 * min(g.p_value, lo.p_value) == pytest.approx(p2, rel=1e-8, abs=1e-12)
    assert g.p_value + lo.p_value == pytest.approx(1.0)
    assert g.statistic == lo.statistic and g.estimate == lo.estimate
    assert g.estimate == pytest.approx(g.statistic * g.std_err)


def test_signs_slower_candidate_is_greater() -> None:
    base_t = [1, 2, 2, 3, 4, 5, 5, 6]
    cand_t = [3, 5, 6, 8, 9, 10, 10, 10]
    ev = [1] * 8
    for method in ("rmst", "logrank"):
        r = time_to_success_test(base_t, ev, cand_t, ev, method=method)
        assert r.estimate > 0 and r.statistic > 0 and r.p_value < 0.5
        r2 = time_to_success_test(cand_t, ev, base_t, ev, method=method, alternative="less")
        assert r2.estimate < 0 and r2.p_value == pytest.approx(r.p_value)


def test_failures_are_not_dropped() -> None:
    # the candidate's successes are as fast as the baseline's, but half its runs fail
    base_t, base_e = [1, 2, 3, 4, 5] * 4, [1] * 20
    cand_t = [1, 2, 3, 4, 5] * 2 + [20] * 10
    cand_e = [1] * 10 + [0] * 10
    for method in ("rmst", "logrank"):
        r = time_to_success_test(base_t, base_e, cand_t, cand_e, method=method, tau=None)
        assert r.p_value < 0.05, method


# --------------------------------------------------------------------------- test behaviour


def test_default_tau_and_tau_checks() -> None:
    tb, eb = [1, 2, 3, 8], [1, 1, 0, 0]
    tc, ec = [1, 2, 5, 6], [1, 0, 1, 0]
    r = time_to_success_test(tb, eb, tc, ec)
    assert r.tau == 6.0 and r.method == "rmst" and r.alternative == "greater" and r.null_value == 0.0
    assert r.estimate == pytest.approx(rmst(tc, ec, 6.0).estimate - rmst(tb, eb, 6.0).estimate)
    se = math.sqrt(rmst(tc, ec, 6.0).variance + rmst(tb, eb, 6.0).variance)
    assert r.std_err == pytest.approx(se)
    with pytest.raises(ConfigError, match=r"tau=7 exceeds the largest observed time 6\.0 of the candidate"):
        time_to_success_test(tb, eb, tc, ec, tau=7)
    with pytest.raises(ConfigError, match=r"tau=2\.0 only applies to method='rmst'"):
        time_to_success_test(tb, eb, tc, ec, tau=2.0, method="logrank")
    with pytest.raises(ConfigError, match=r"tau=0 is not valid; use a number > 0"):
        rmst(tb, eb, 0)


def test_interval_agrees_with_test() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        tb, eb = _arm(rng, 20, 1.0, digits=1)
        tc, ec = _arm(rng, 20, float(rng.uniform(0.4, 1.6)), digits=1)
        for method in ("rmst", "logrank"):
            for alt in ("greater", "less"):
                r = time_to_success_test(tb, eb, tc, ec, method=method, alternative=alt)
                for level in (0.01, 0.025, 0.05, 0.1, 0.3):
                    lo, hi = r.interval(level)
                    assert lo <= r.estimate <= hi
                    assert r.estimate - lo == pytest.approx(hi - r.estimate)
                    rejected = r.p_value <= level
                    assert rejected == (lo > 0 if alt == "greater" else hi < 0)
    # nested: a smaller level gives a wider interval
    lo1, hi1 = r.interval(0.01)
    lo5, hi5 = r.interval(0.05)
    assert lo1 < lo5 and hi5 < hi1


def test_no_information_gives_p_one() -> None:
    never = [5.0, 5.0, 5.0]
    for method in ("rmst", "logrank"):
        r = time_to_success_test(never, [0, 0, 0], never, [0, 0, 0], method=method)
        assert r.p_value == 1.0
        assert r.interval(0.05) == (-math.inf, math.inf)


def _rejection_rate(method: str, reps: int, cand_rate: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        tb, eb = _arm(rng, 30, 1.0)
        tc, ec = _arm(rng, 30, cand_rate)
        hits += time_to_success_test(tb, eb, tc, ec, method=method, alternative="greater").p_value <= ALPHA
    return hits / reps


@pytest.mark.parametrize("method", ["rmst", "logrank"])
def test_size_under_null(method: str) -> None:
    reps = 400
    rate = _rejection_rate(method, reps, cand_rate=1.0, seed=2024)
    se = math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert rate <= ALPHA + 2 * se, rate


@pytest.mark.parametrize("method", ["rmst", "logrank"])
def test_power_slower_candidate(method: str) -> None:
    # candidate's success rate 0.4 of the baseline's (mean time 2.5x): detected most of the time
    assert _rejection_rate(method, 200, cand_rate=0.4, seed=99) >= 0.65


# --------------------------------------------------------------------------- success_within


def test_success_within_counts() -> None:
    t = [1, 3, 3, 4, 2, 3, 5, 6]
    e = [1, 1, 0, 1, 0, 0, 0, 1]
    # t_max=3: successes at 1, 3 (<= t_max); censored at 2 unknown; censored at 3 and 5 known
    # failures; success at 4 and 6 are failures by the deadline
    assert success_within(t, e, 3) == (2, 8, 1)
    res = success_within(t, e, 3)
    assert (res.k, res.n, res.n_unknown) == (2, 8, 1)
    assert success_within(t, e, 0) == (0, 8, 0)
    assert success_within(t, e, math.inf) == (4, 8, 4)
    assert success_within(t, e, 10) == (4, 8, 4)


# --------------------------------------------------------------------------- errors


def test_errors_name_value_and_choices() -> None:
    t, e = [1.0, 2.0], [1, 0]
    with pytest.raises(ConfigError, match=r"alternative must be one of \('less', 'greater'\), got 'two-sided'"):
        time_to_success_test(t, e, t, e, alternative="two-sided")
    with pytest.raises(ConfigError, match=r"method must be one of \('rmst', 'logrank'\), got 'cox'"):
        time_to_success_test(t, e, t, e, method="cox")
    with pytest.raises(ConfigError, match=r"cand_time is empty"):
        time_to_success_test(t, e, [], [])
    with pytest.raises(ConfigError, match=r"base_time\[1\]=-2\.0 is not valid; times must be finite and >= 0"):
        time_to_success_test([1.0, -2.0], e, t, e)
    with pytest.raises(ConfigError, match=r"time\[0\]=nan is not valid"):
        kaplan_meier([math.nan, 1.0], [1, 1])
    with pytest.raises(ConfigError, match=r"event\[1\]=2 is not valid; use True/1 \(succeeded\) or False/0"):
        kaplan_meier([1.0, 2.0], [1, 2])
    with pytest.raises(ConfigError, match=r"cand_event has shape \(3,\) but cand_time has 2 runs"):
        time_to_success_test(t, e, t, [1, 0, 1])
    with pytest.raises(ConfigError, match=r"time must be a 1-D array"):
        kaplan_meier([[1.0, 2.0]], [[1, 0]])
    with pytest.raises(ConfigError, match=r"t_max=-1 is not valid; use a number >= 0"):
        success_within(t, e, -1)
    r = time_to_success_test(t, e, t, e)
    with pytest.raises(ConfigError, match=r"level must be a one-sided alpha in \(0, 0.5\), got 0.9"):
        r.interval(0.9)


# --------------------------------------------------------------------------- docs


def test_doctests() -> None:
    res = doctest.testmod(survival, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 2
    assert res.failed == 0
