"""Tests of workbench.stats.continuous: scipy agreement, brute force, inversion, simulation."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from workbench.model import ConfigError
from workbench.stats import continuous
from workbench.stats.continuous import (
    ContinuousTest,
    mean_test,
    paired_shift_test,
    shift_test,
)

LEVELS = (0.01, 0.025, 0.05, 0.1, 0.2)


def _scipy_method(t: ContinuousTest) -> str:
    return t.method.rsplit("_", 1)[1]


def _datasets(rng: np.random.Generator, count: int, *, ties: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(count):
        nb, nc = rng.integers(2, 14, size=2)
        b = rng.normal(0.0, 1.0, nb)
        c = rng.normal(rng.normal(0.0, 1.0), 1.0, nc)
        if ties:
            b, c = np.round(b, 1), np.round(c, 1)
        out.append((b, c))
    return out


def _check_agreement(t: ContinuousTest, level: float, delta: float, p_of: callable) -> None:
    lo, hi = t.interval(level)
    assert lo <= hi
    assert (p_of(delta, "less") <= level) == (hi < delta), (delta, level, hi, t.method)
    assert (p_of(delta, "greater") <= level) == (lo > delta), (delta, level, lo, t.method)


# --------------------------------------------------------------------------- scipy agreement


def test_shift_p_matches_scipy_mannwhitneyu() -> None:
    rng = np.random.default_rng(1)
    for ties in (False, True):
        for b, c in _datasets(rng, 40, ties=ties):
            pairs = np.subtract.outer(c, b).ravel()
            for delta in (0.0, float(rng.normal()), float(pairs[rng.integers(len(pairs))])):
                for alt in ("less", "greater"):
                    t = shift_test(b, c, alternative=alt, delta=delta)
                    ref = sps.mannwhitneyu(c - delta, b, alternative=alt, method=_scipy_method(t)).pvalue
                    assert t.p_value == pytest.approx(ref, rel=1e-9, abs=1e-15)
                    assert t.null_value == delta and (t.n_base, t.n_cand) == (len(b), len(c))
                if not ties and delta == 0.0:  # scipy's own method choice is the same
                    auto = sps.mannwhitneyu(c, b, alternative="less").pvalue
                    assert shift_test(b, c).p_value == pytest.approx(auto, rel=1e-9, abs=1e-15)


def test_forced_methods_match_scipy() -> None:
    rng = np.random.default_rng(2)
    b, c = rng.normal(size=14), rng.normal(0.5, 1.0, 17)
    for method in ("exact", "asymptotic"):
        for alt in ("less", "greater"):
            t = shift_test(b, c, alternative=alt, method=method)
            assert t.method == f"mann_whitney_{method}"
            ref = sps.mannwhitneyu(c, b, alternative=alt, method=method).pvalue
            assert t.p_value == pytest.approx(ref, rel=1e-9, abs=1e-15)
    d = rng.normal(0.3, 1.0, 60)
    for method in ("exact", "asymptotic"):
        t = paired_shift_test(np.zeros(60), d, alternative="greater", method=method)
        ref = sps.wilcoxon(d, alternative="greater", method=method, zero_method="zsplit").pvalue
        assert t.p_value == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_sign_convention_less_means_candidate_lower() -> None:
    base = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    cand = [5.0, 6.0, 7.0, 8.0, 9.0, 9.5]
    assert shift_test(base, cand, alternative="less").p_value < 0.01
    assert shift_test(base, cand, alternative="greater").p_value > 0.99
    assert shift_test(base, cand).estimate < 0
    assert paired_shift_test(base, cand, alternative="less").p_value < 0.05
    assert paired_shift_test(base, cand, alternative="greater").p_value > 0.95
    assert mean_test(base, cand, alternative="less").p_value < 0.01
    assert mean_test(base, cand, alternative="greater").p_value > 0.99


def test_paired_p_matches_scipy_wilcoxon() -> None:
    rng = np.random.default_rng(3)
    for n, ties in itertools.product((3, 6, 12, 25, 60), (False, True)):
        for _ in range(3):
            b = rng.normal(size=n)
            c = b + rng.normal(rng.normal(0, 0.5), 1.0, n)
            if ties:
                b, c = np.round(b, 1), np.round(c, 1)
            dd = c - b
            for delta in (0.0, float(rng.normal(0, 0.5)), float(dd[0])):
                for zm in continuous.ZERO_METHODS:
                    for alt in ("less", "greater"):
                        t = paired_shift_test(b, c, alternative=alt, delta=delta, zero_method=zm)
                        d = dd - delta
                        if zm == "wilcox" and np.all(d == 0):
                            continue
                        ref = sps.wilcoxon(d, alternative=alt, zero_method=zm, method=_scipy_method(t)).pvalue
                        assert t.p_value == pytest.approx(ref, rel=1e-9, abs=1e-15), (n, zm, alt)
            if not ties:
                auto = sps.wilcoxon(dd, alternative="less", zero_method="zsplit").pvalue
                assert paired_shift_test(b, c).p_value == pytest.approx(auto, rel=1e-9, abs=1e-15)


def test_welch_and_paired_t_fallback_match_scipy() -> None:
    base, cand = [3.0, 3.4, 2.9, 3.6], [2.5, 2.6, 2.4, 2.9, 2.2, 2.8]
    for alt, delta in itertools.product(("less", "greater"), (0.0, -0.3)):
        t = mean_test(base, cand, alternative=alt, delta=delta)
        assert t.method == "welch_t_small_n"
        ref = sps.ttest_ind(np.subtract(cand, delta), base, equal_var=False, alternative=alt).pvalue
        assert t.p_value == pytest.approx(ref, rel=1e-9)
        tp = mean_test(base, cand[:4], alternative=alt, delta=delta, paired=True)
        assert tp.method == "paired_t_small_n"
        ref = sps.ttest_1samp(np.subtract(cand[:4], base), delta, alternative=alt).pvalue
        assert tp.p_value == pytest.approx(ref, rel=1e-9)


def test_bootstrap_p_is_the_count_of_studentized_replicates() -> None:
    rng = np.random.default_rng(4)
    base, cand = rng.lognormal(0, 1, 25), rng.lognormal(0.2, 1, 30)
    est = cand.mean() - base.mean()
    se = math.sqrt(base.var(ddof=1) / 25 + cand.var(ddof=1) / 30)
    t_star = continuous._boot_t(np.random.default_rng(7), [base, cand], 999, est, se)
    for delta in (0.0, 0.5, -0.4):
        t_obs = (est - delta) / se
        t = mean_test(base, cand, delta=delta, n_boot=999, seed=7)
        assert t.method == "bootstrap_t" and t.estimate == pytest.approx(est)
        assert t.p_value == pytest.approx((1 + np.sum(t_star <= t_obs)) / 1000)
        g = mean_test(base, cand, delta=delta, n_boot=999, seed=7, alternative="greater")
        assert g.p_value == pytest.approx((1 + np.sum(t_star >= t_obs)) / 1000)
    assert mean_test(base, cand, seed=3).p_value == mean_test(base, cand, seed=3).p_value


# --------------------------------------------------------------------------- estimates


def test_hodges_lehmann_equals_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        nb, nc = rng.integers(2, 20, size=2)
        b, c = np.round(rng.exponential(size=nb), 2), np.round(rng.exponential(size=nc), 2)
        brute = np.median([cj - bi for bi in b for cj in c])
        assert shift_test(b, c).estimate == pytest.approx(brute, rel=1e-12, abs=1e-12)
        n = min(nb, nc)
        d = c[:n] - b[:n]
        walsh = [(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)]
        assert paired_shift_test(b[:n], c[:n]).estimate == pytest.approx(np.median(walsh), rel=1e-12, abs=1e-12)
        assert mean_test(b, c).estimate == pytest.approx(c.mean() - b.mean())


def test_selection_without_materialising_matches_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    b, c = rng.normal(size=23), rng.normal(size=31)
    d = c[:23] - b
    full_diff, full_walsh = continuous._Pairwise(c, b), continuous._Pairwise(d)
    monkeypatch.setattr(continuous, "_MAX_PAIRS", 10)
    big_diff, big_walsh = continuous._Pairwise(c, b), continuous._Pairwise(d)
    assert big_diff.values is None and big_walsh.values is None
    for k in (0, 7, 300, full_diff.n - 1):
        assert big_diff.kth(k) == pytest.approx(full_diff.kth(k), rel=1e-12, abs=1e-12)
    for k in (0, 11, 150, full_walsh.n - 1):
        assert big_walsh.kth(k) == pytest.approx(full_walsh.kth(k), rel=1e-12, abs=1e-12)
    t = shift_test(b, c)  # the interval still inverts the test (bisection fallback)
    _check_agreement(t, 0.05, t.interval(0.05)[1], lambda dl, a: shift_test(b, c, alternative=a, delta=dl).p_value)


def test_exact_null_distributions_equal_enumeration() -> None:
    for m, n in ((1, 4), (3, 5), (5, 9), (9, 4)):
        counts = np.zeros(m * n + 1)
        for pos in itertools.combinations(range(m + n), m):
            counts[sum(p - i for i, p in enumerate(pos))] += 1
        sf = np.cumsum(counts[::-1])[::-1] / counts.sum()
        np.testing.assert_allclose(continuous._mwu_sf(m, n), sf, rtol=1e-12, atol=1e-15)
    n = 10
    r_plus = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s) for signs in itertools.product((0, 1), repeat=n)]
    pmf = np.bincount(r_plus) / 2**n
    cdf, sf_w = continuous._signed_rank_dist(n)
    np.testing.assert_allclose(cdf, np.cumsum(pmf), rtol=1e-12)
    np.testing.assert_allclose(sf_w, np.cumsum(pmf[::-1])[::-1], rtol=1e-12)


# --------------------------------------------------------------------------- inversion


def _delta_probes(rng: np.random.Generator, t: ContinuousTest, breaks: np.ndarray) -> list[float]:
    probes = [0.0, float(rng.normal())]
    probes += [float(v) for v in rng.choice(breaks, size=min(4, len(breaks)), replace=False)]
    for level in (0.05, 0.1):
        for bound in t.interval(level):
            if math.isfinite(bound):
                probes += [bound, math.nextafter(bound, math.inf), math.nextafter(bound, -math.inf)]
    return probes


def test_shift_interval_inverts_the_test() -> None:
    rng = np.random.default_rng(8)
    for ties in (False, True):
        for b, c in _datasets(rng, 25, ties=ties):
            t = shift_test(b, c)
            mw = continuous._MannWhitney(b, c, _scipy_method(t))
            for delta in _delta_probes(rng, t, np.subtract.outer(c, b).ravel()):
                for level in LEVELS:
                    _check_agreement(t, level, delta, mw.p)
            # the reported p is the same function
            assert t.p_value == mw.p(0.0, "less")


def test_paired_interval_inverts_the_test() -> None:
    rng = np.random.default_rng(9)
    for n, ties in itertools.product((3, 5, 9, 16, 60), (False, True)):
        for _ in range(4):
            b = rng.normal(size=n)
            c = b + rng.normal(rng.normal(0, 0.5), 1.0, n)
            if ties:
                b, c = np.round(b, 1), np.round(c, 1)
            t = paired_shift_test(b, c)
            wx = continuous._Wilcoxon(c - b, _scipy_method(t), "zsplit")
            dd = c - b
            walsh = (dd[:, None] + dd[None, :]) / 2
            for delta in _delta_probes(rng, t, walsh.ravel()):
                for level in LEVELS:
                    _check_agreement(t, level, delta, wx.p)


def test_paired_interval_other_zero_methods_agree_at_generic_deltas() -> None:
    rng = np.random.default_rng(10)
    for zm in ("wilcox", "pratt"):
        for n in (6, 20):
            b, c = rng.normal(size=n), rng.normal(0.4, 1.0, n)
            t = paired_shift_test(b, c, zero_method=zm)
            wx = continuous._Wilcoxon(c - b, _scipy_method(t), zm)
            for delta in rng.normal(0.4, 0.6, 20):
                for level in LEVELS:
                    _check_agreement(t, level, float(delta), wx.p)


def test_mean_interval_inverts_the_test() -> None:
    rng = np.random.default_rng(11)
    for paired, (nb, nc) in itertools.product((False, True), ((3, 4), (4, 9), (12, 12), (20, 15))):
        if paired:
            nc = nb
        b, c = rng.lognormal(0, 1, nb), rng.lognormal(0.3, 1, nc)
        t = mean_test(b, c, paired=paired, n_boot=499, seed=1)
        probes = [0.0, *rng.normal(t.estimate, 1.0, 5)]
        for level in (0.05, 0.1):
            for bound in t.interval(level):
                probes += [bound, math.nextafter(bound, math.inf), math.nextafter(bound, -math.inf)]
        for delta in probes:

            def p_of(dl: float, alt: str, b=b, c=c, paired=paired) -> float:
                return mean_test(b, c, paired=paired, n_boot=499, seed=1, alternative=alt, delta=dl).p_value

            for level in (0.01, 0.05, 0.1):
                _check_agreement(t, level, float(delta), p_of)


def test_tiny_samples_give_infinite_bounds() -> None:
    t = shift_test([1.0, 2.0], [1.5, 2.5])
    assert t.interval(0.05) == (-math.inf, math.inf)
    assert t.p_value > 0.05
    lo, hi = shift_test([1.0, 2.0], [1.5, 2.5]).interval(0.2)
    assert math.isfinite(lo) and math.isfinite(hi)
    t = mean_test([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0], n_boot=99)
    assert t.interval(0.001) == (-math.inf, math.inf)


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("dist", ["normal", "exponential"])
def test_shift_interval_coverage(dist: str) -> None:
    rng = np.random.default_rng(12 if dist == "normal" else 13)
    reps, n, level, theta = 500, 15, 0.05, 0.7
    draw = (lambda: rng.normal(size=n)) if dist == "normal" else (lambda: rng.exponential(size=n))
    cover_lo = cover_hi = 0
    for _ in range(reps):
        lo, hi = shift_test(draw(), draw() + theta).interval(level)
        cover_lo += lo <= theta
        cover_hi += hi >= theta
    floor = 1 - level - 2 * math.sqrt(level * (1 - level) / reps)
    assert cover_lo / reps >= floor
    assert cover_hi / reps >= floor


@pytest.mark.parametrize("dist", ["normal", "exponential"])
def test_paired_interval_coverage(dist: str) -> None:
    rng = np.random.default_rng(14 if dist == "normal" else 15)
    reps, n, level, theta = 300, 15, 0.05, -0.4
    cover_lo = cover_hi = 0
    for _ in range(reps):
        base = rng.normal(size=n) * 3
        noise = rng.normal(size=n) if dist == "normal" else rng.exponential(size=n) - rng.exponential(size=n)
        lo, hi = paired_shift_test(base, base + theta + noise).interval(level)
        cover_lo += lo <= theta
        cover_hi += hi >= theta
    floor = 1 - level - 2 * math.sqrt(level * (1 - level) / reps)
    assert cover_lo / reps >= floor
    assert cover_hi / reps >= floor


def test_bootstrap_t_size_with_skewed_data() -> None:
    # lognormal sigma = 0.5 (skewness 1.75). With sigma = 1 the bootstrap-t is liberal
    # at n = 20 (about 0.077 in 3000 data sets; documented in mean_test).
    rng = np.random.default_rng(16)
    reps, n, level = 300, 20, 0.05
    rejections = {"less": 0, "greater": 0}
    for i in range(reps):
        base, cand = rng.lognormal(0, 0.5, n), rng.lognormal(0, 0.5, n)
        t = mean_test(base, cand, n_boot=999, seed=i)
        lo, hi = t.interval(level)
        rejections["less"] += hi < 0.0
        rejections["greater"] += lo > 0.0
    ceiling = level + 2 * math.sqrt(level * (1 - level) / reps)
    for alt, r in rejections.items():
        assert r / reps <= ceiling, alt


# --------------------------------------------------------------------------- inputs and errors


def test_nan_dropped_and_counted() -> None:
    base = [1.0, np.nan, 2.0, 3.0, 2.5]
    cand = [0.5, 1.0, np.nan, np.nan, 0.7, 1.2]
    t = shift_test(base, cand)
    assert (t.n_base, t.n_cand, t.dropped) == (4, 4, 3)
    assert t.p_value == shift_test([1.0, 2.0, 3.0, 2.5], [0.5, 1.0, 0.7, 1.2]).p_value
    tp = paired_shift_test(base, cand[:5])
    assert (tp.n_base, tp.dropped) == (2, 3)
    assert mean_test(base, cand).dropped == 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: shift_test([1.0], [1.0, 2.0]), r"needs at least 2 runs on each side.*n_base=1"),
        (lambda: shift_test([1.0, np.nan], [1.0, 2.0]), r"needs at least 2 runs.*dropping 1 NaN"),
        (lambda: paired_shift_test([1.0, 2.0], [1.0]), r"base has 2 values, cand has 1"),
        (lambda: mean_test([np.nan, 1.0, 2.0], [1.0, np.nan, np.nan], paired=True), r"needs at least 2 runs"),
        (lambda: shift_test([1.0, 2.0], [1.0, 2.0], alternative="two-sided"), r"alternative must be one of \('less', 'greater'\), got 'two-sided'"),
        (lambda: shift_test([1.0, 2.0], [1.0, 2.0], method="perm"), r"method must be one of \('auto', 'exact', 'asymptotic'\), got 'perm'"),
        (lambda: paired_shift_test([1.0, 2.0], [1.0, 2.0], zero_method="drop"), r"zero_method must be one of .*'zsplit'.*got 'drop'"),
        (lambda: shift_test([1.0, 2.0], [1.0, 2.0], delta=float("nan")), r"delta must be a finite number, got nan"),
        (lambda: shift_test([1.0, 2.0], [1.0, math.inf]), r"cand contains infinite values"),
        (lambda: shift_test([[1.0, 2.0]], [1.0, 2.0]), r"base must be one-dimensional"),
        (lambda: shift_test(["a", "b"], [1.0, 2.0]), r"base must be an array of numbers"),
        (lambda: mean_test([1.0, 2.0, 3.0], [1.0, 2.0], n_boot=10), r"n_boot must be an integer >= 99, got 10"),
        (lambda: mean_test([1.0, 1.0, 1.0], [2.0, 2.0]), r"needs variability"),
        (lambda: shift_test([1.0, 2.0, 3.0], [1.0, 2.0]).interval(0.7), r"level must be a one-sided alpha in \(0, 0.5\), got 0.7"),
        (lambda: shift_test(np.arange(600.0), np.arange(600.0), method="exact"), r"method='exact' supports n_base\*n_cand"),
    ],
)
def test_errors_name_the_bad_value(call, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()


def test_result_is_frozen() -> None:
    t = shift_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(AttributeError):
        t.p_value = 0.0  # type: ignore[misc]


def test_doctests() -> None:
    result = doctest.testmod(continuous, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2
    assert result.failed == 0
