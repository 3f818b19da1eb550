"""Tests of workbench.stats.rates against reference implementations.

References: scipy.stats (fisher_exact, boschloo_exact, barnard_exact, binomtest,
hypergeom), statsmodels (Wilson interval) and exact enumeration of all outcomes.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from workbench.model import ConfigError
from workbench.stats.rates import (
    paired_rate_test,
    rate_bounds,
    unpaired_rate_test,
    wilson_interval,
)

ALTS = ("less", "greater")


# --------------------------------------------------------------------------- references


def _fisher_table(kb: int, nb: int, kc: int, nc: int) -> list[list[int]]:
    # Rows = arms, candidate first: fisher_exact's "less" is "odds of the candidate lower".
    return [[kc, nc - kc], [kb, nb - kb]]


def _unconditional_table(kb: int, nb: int, kc: int, nc: int) -> list[list[int]]:
    # boschloo_exact / barnard_exact compare *columns*: column 0 (candidate) is sample 1,
    # and "less" is H1: p_1 < p_2, i.e. candidate's rate lower.
    return [[kc, kb], [nc - kc, nb - kb]]


def _pooled_z(nc: int, nb: int) -> np.ndarray:
    """Pooled score (Wald) statistic of every table, as barnard_exact(pooled=True)."""
    x1 = np.arange(nc + 1)[:, None]
    x2 = np.arange(nb + 1)[None, :]
    p = (x1 + x2) / (nc + nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x1 / nc - x2 / nb) / np.sqrt(p * (1 - p) * (1 / nc + 1 / nb))
    z[x1 / nc == x2 / nb] = 0.0
    return z


def _barnard_tie_aware(kb: int, nb: int, kc: int, nc: int, alternative: str) -> float:
    """barnard_exact(pooled=True) with ties of the statistic compared with tolerance.

    Brute force: the rejection set {z <= z_obs} (``"less"``), its null probability on
    a fine grid of the common rate, maximised.
    """
    z = _pooled_z(nc, nb)
    if alternative == "greater":
        z = -z
    inset = (z <= z[kc, kb] + 1e-9).astype(float)
    pis = np.linspace(0.0, 1.0, 4001)
    pc = sps.binom.pmf(np.arange(nc + 1)[:, None], nc, pis)
    pb = sps.binom.pmf(np.arange(nb + 1)[:, None], nb, pis)
    return float(np.einsum("ig,ij,jg->g", pc, inset, pb).max())


# --------------------------------------------------------------------------- 1. Fisher


FISHER_DESIGNS = [(5, 5), (5, 11), (11, 5), (12, 12), (7, 30), (30, 30)]


@pytest.mark.parametrize(("nb", "nc"), FISHER_DESIGNS)
@pytest.mark.parametrize("alternative", ALTS)
def test_conditional_matches_fisher_exact(nb: int, nc: int, alternative: str) -> None:
    step = 1 if max(nb, nc) <= 12 else 3
    for kb in range(0, nb + 1, step):
        for kc in range(0, nc + 1, step):
            got = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative).p_value
            ref = sps.fisher_exact(_fisher_table(kb, nb, kc, nc), alternative=alternative).pvalue
            assert got == pytest.approx(ref, rel=1e-9, abs=1e-12), (kb, nb, kc, nc, alternative)


def test_conditional_direction() -> None:
    # Candidate clearly worse: small p for "less", large for "greater".
    t_less = unpaired_rate_test(18, 20, 10, 20, alternative="less")
    t_greater = unpaired_rate_test(18, 20, 10, 20, alternative="greater")
    assert t_less.p_value < 0.01 < 0.99 < t_greater.p_value
    assert t_less.estimate == pytest.approx(-0.4)
    assert t_less.method == "fisher_exact_conditional"


# --------------------------------------------------------------------------- 2. unconditional

# rel=1e-3: both scipy (shgo from n=32 sampling points) and rates.py (400-point arcsine
# grid plus golden-section refinement) maximise the tail over the nuisance rate
# numerically, so they may differ in the last digits; in practice they agree to ~1e-12.
UNCOND_TABLES = [
    (18, 20, 12, 20),
    (5, 10, 9, 12),
    (3, 8, 1, 9),
    (10, 15, 14, 15),
    (0, 6, 4, 7),
    (7, 7, 2, 9),
    (12, 25, 20, 25),
]


@pytest.mark.parametrize(("kb", "nb", "kc", "nc"), UNCOND_TABLES)
@pytest.mark.parametrize("alternative", ALTS)
def test_boschloo_matches_scipy(kb: int, nb: int, kc: int, nc: int, alternative: str) -> None:
    t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative, method="boschloo")
    ref = sps.boschloo_exact(_unconditional_table(kb, nb, kc, nc), alternative=alternative).pvalue
    assert t.p_value == pytest.approx(ref, rel=1e-3)
    assert t.method == "boschloo_exact"
    # Boschloo is never less powerful than Fisher for the same table.
    fisher = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative).p_value
    assert t.p_value <= fisher + 1e-12


# (10, 15, 14, 15, "greater") is left out: see test_chan_counts_exact_ties.
CHAN_TABLES = [(kb, nb, kc, nc, alt) for (kb, nb, kc, nc) in UNCOND_TABLES for alt in ALTS]
CHAN_TABLES.remove((10, 15, 14, 15, "greater"))


@pytest.mark.parametrize(("kb", "nb", "kc", "nc", "alternative"), CHAN_TABLES)
def test_chan_delta0_matches_barnard_pooled(kb: int, nb: int, kc: int, nc: int, alternative: str) -> None:
    t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative, method="chan")
    ref = sps.barnard_exact(_unconditional_table(kb, nb, kc, nc), alternative=alternative, pooled=True).pvalue
    assert t.p_value == pytest.approx(ref, rel=1e-3)
    assert t.method == "chan_exact_unconditional"
    assert t.null_value == 0.0


def test_chan_counts_exact_ties() -> None:
    """14/15 vs 10/15: four other tables have mathematically the *same* pooled z.

    (e.g. 3/15 vs 0/15: 0.2 / sqrt(0.1 * 0.9 * 2/15) = 1.8257...). scipy compares the
    floating-point statistics exactly and drops some of them (p = 0.04248); rates.py
    compares with a tolerance and counts them, as a p-value P(T >= t_obs) should.
    """
    t = unpaired_rate_test(10, 15, 14, 15, alternative="greater", method="chan")
    assert t.p_value == pytest.approx(_barnard_tie_aware(10, 15, 14, 15, "greater"), rel=1e-3)
    scipy_p = sps.barnard_exact([[14, 10], [1, 5]], alternative="greater", pooled=True).pvalue
    assert t.p_value > scipy_p  # scipy misses the tied tables: anti-conservative by ~0.008


@pytest.mark.parametrize(("kb", "nb", "kc", "nc", "alternative"), CHAN_TABLES[:6])
def test_chan_delta0_matches_tie_aware_reference(kb: int, nb: int, kc: int, nc: int, alternative: str) -> None:
    got = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative, method="chan").p_value
    assert got == pytest.approx(_barnard_tie_aware(kb, nb, kc, nc, alternative), rel=1e-3)


def test_nonzero_delta_forces_chan() -> None:
    t = unpaired_rate_test(18, 20, 17, 20, alternative="greater", method="conditional", delta=0.2)
    assert t.method == "chan_exact_unconditional"
    assert t.null_value == pytest.approx(-0.2)
    # Non-inferiority is easier to show with a larger margin.
    t_big = unpaired_rate_test(18, 20, 17, 20, alternative="greater", method="chan", delta=0.3)
    assert t_big.p_value < t.p_value


# --------------------------------------------------------------------------- 3. paired


@pytest.mark.parametrize("alternative", ALTS)
def test_paired_matches_binomtest(alternative: str) -> None:
    for b_only, c_only in itertools.product(range(0, 13, 2), range(0, 13, 3)):
        m = b_only + c_only
        n_pairs = m + 5
        t = paired_rate_test(b_only, c_only, n_pairs, alternative=alternative)
        if m == 0:
            assert t.p_value == 1.0
            continue
        # "less" = candidate worse = few candidate-only pairs: P(X <= c_only).
        ref = sps.binomtest(c_only, m, 0.5, alternative=alternative).pvalue
        assert t.p_value == pytest.approx(ref, rel=1e-9, abs=1e-14), (b_only, c_only, alternative)
        assert t.estimate == pytest.approx((c_only - b_only) / n_pairs)

        mid = paired_rate_test(b_only, c_only, n_pairs, alternative=alternative, mid_p=True)
        assert mid.method == "mcnemar_midp"
        assert mid.p_value == pytest.approx(ref - 0.5 * sps.binom.pmf(c_only, m, 0.5), rel=1e-9, abs=1e-14)


def test_paired_direction() -> None:
    assert paired_rate_test(9, 1, 30, alternative="less").p_value < 0.05
    assert paired_rate_test(9, 1, 30, alternative="greater").p_value > 0.95


# --------------------------------------------------------------------------- 4. Wilson


def test_wilson_matches_statsmodels() -> None:
    for n in (1, 2, 5, 10, 37, 200):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for level in (0.8, 0.9, 0.95, 0.99):
                got = wilson_interval(k, n, level=level)
                ref = proportion_confint(k, n, alpha=1 - level, method="wilson")
                assert got == pytest.approx(ref, abs=1e-12), (k, n, level)


def test_wilson_and_rate_bounds_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert rate_bounds(8, 10, 2) == pytest.approx((8 / 12, 10 / 12))
    assert rate_bounds(0, 0, 3) == (0.0, 1.0)


# --------------------------------------------------------------------------- 5. interval <-> test


def _agrees(t, alpha: float) -> None:
    lo, hi = t.interval(alpha)
    assert lo <= hi
    rejected = t.p_value <= alpha
    excluded = hi < t.null_value if t.alternative == "less" else lo > t.null_value
    assert rejected == excluded, (t, alpha, (lo, hi))


@pytest.mark.parametrize("alternative", ALTS)
def test_conditional_interval_agrees_with_test(alternative: str) -> None:
    for nb, nc in [(6, 9), (15, 15), (20, 12)]:
        for kb, kc in itertools.product(range(0, nb + 1, 2), range(0, nc + 1, 3)):
            t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative)
            for alpha in (0.025, 0.05, 0.1):
                _agrees(t, alpha)


@pytest.mark.parametrize("alternative", ALTS)
@pytest.mark.parametrize("delta", [0.0, 0.1, -0.15])
def test_chan_interval_agrees_with_test(alternative: str, delta: float) -> None:
    for kb, nb, kc, nc in [(18, 20, 12, 20), (19, 20, 19, 20), (5, 12, 9, 10), (0, 8, 3, 8), (10, 15, 14, 15)]:
        t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative, method="chan", delta=delta)
        for alpha in (0.025, 0.1):
            _agrees(t, alpha)


@pytest.mark.parametrize("alternative", ALTS)
@pytest.mark.parametrize("mid_p", [False, True])
def test_paired_interval_agrees_with_test(alternative: str, mid_p: bool) -> None:
    for b_only, c_only in itertools.product(range(0, 15, 2), range(0, 15, 3)):
        t = paired_rate_test(b_only, c_only, b_only + c_only + 4, alternative=alternative, mid_p=mid_p)
        for alpha in (0.025, 0.05, 0.1):
            _agrees(t, alpha)


def test_boschloo_has_no_interval() -> None:
    t = unpaired_rate_test(18, 20, 12, 20, method="boschloo")
    with pytest.raises(ConfigError, match="'boschloo_exact' provides no interval"):
        t.interval(0.05)


# --------------------------------------------------------------------------- 6. errors


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"k_base": 5, "n_base": 3}, r"k_base=5 exceeds n_base=3"),
        ({"k_cand": 21}, r"k_cand=21 exceeds n_cand=20"),
        ({"k_base": -1}, r"k_base must be a non-negative integer count, got -1"),
        ({"n_cand": -2}, r"n_cand must be a non-negative integer count, got -2"),
        ({"k_base": 2.5}, r"k_base must be a non-negative integer count, got 2\.5"),
        ({"k_base": 0, "n_base": 0}, r"at least one run on each side, got n_base=0, n_cand=20"),
        ({"k_cand": 0, "n_cand": 0}, r"at least one run on each side, got n_base=20, n_cand=0"),
        ({"alternative": "two-sided"}, r"alternative must be one of .*got 'two-sided'"),
        ({"method": "wald"}, r"method must be one of .*got 'wald'"),
        ({"delta": 1.5}, r"delta must be a risk difference in \(-1, 1\), got 1\.5"),
    ],
)
def test_unpaired_errors(kwargs: dict, pattern: str) -> None:
    args = {"k_base": 10, "n_base": 20, "k_cand": 10, "n_cand": 20} | kwargs
    with pytest.raises(ConfigError, match=pattern):
        unpaired_rate_test(**args)


def test_other_errors() -> None:
    with pytest.raises(ConfigError, match=r"b_only must be a non-negative integer count, got -1"):
        paired_rate_test(-1, 2, 10)
    with pytest.raises(ConfigError, match=r"b_only \+ c_only = 12 exceeds n_pairs=10"):
        paired_rate_test(7, 5, 10)
    with pytest.raises(ConfigError, match=r"needs at least one run on each side, got n_pairs=0"):
        paired_rate_test(0, 0, 0)
    with pytest.raises(ConfigError, match=r"alternative must be one of .*got 'both'"):
        paired_rate_test(1, 2, 10, alternative="both")
    with pytest.raises(ConfigError, match=r"mid_p must be True or False, got 'yes'"):
        paired_rate_test(1, 2, 10, mid_p="yes")
    with pytest.raises(ConfigError, match=r"k=11 exceeds n=10"):
        wilson_interval(11, 10)
    with pytest.raises(ConfigError, match=r"level must be a confidence level in \(0, 1\), got 95"):
        wilson_interval(5, 10, level=95)
    with pytest.raises(ConfigError, match=r"rate_bounds needs at least one run"):
        rate_bounds(0, 0, 0)
    with pytest.raises(ConfigError, match=r"level must be a one-sided alpha in \(0, 0\.5\), got 0\.7"):
        unpaired_rate_test(18, 20, 12, 20).interval(0.7)


# --------------------------------------------------------------------------- 7. size / power

N_ARM = 20
METHODS = ("conditional", "boschloo", "chan")


def _reject_matrix(method: str, alternative: str, alpha: float = 0.05) -> np.ndarray:
    """rej[kc, kb]: does the test reject at level alpha for that outcome?"""
    rej = np.zeros((N_ARM + 1, N_ARM + 1), dtype=bool)
    for kc, kb in itertools.product(range(N_ARM + 1), repeat=2):
        p = unpaired_rate_test(kb, N_ARM, kc, N_ARM, alternative=alternative, method=method).p_value
        rej[kc, kb] = p <= alpha
    return rej


def _rejection_prob(rej: np.ndarray, p_base: float, p_cand: float) -> float:
    """Exact P(reject): sum over all (kc, kb) of Binomial probabilities."""
    k = np.arange(N_ARM + 1)
    return float(sps.binom.pmf(k, N_ARM, p_cand) @ rej @ sps.binom.pmf(k, N_ARM, p_base))


@pytest.fixture(scope="module")
def reject_less() -> dict[str, np.ndarray]:
    return {m: _reject_matrix(m, "less") for m in METHODS}


@pytest.mark.parametrize("p0", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("method", METHODS)
def test_exact_size_at_most_alpha(reject_less: dict, method: str, p0: float) -> None:
    size = _rejection_prob(reject_less[method], p0, p0)
    assert 0.0 < size <= 0.05 + 1e-9, (method, p0, size)


@pytest.mark.parametrize(("p_base", "p_cand"), [(0.8, 0.5), (0.9, 0.6), (0.95, 0.75), (0.6, 0.3)])
def test_boschloo_at_least_as_powerful_as_fisher(reject_less: dict, p_base: float, p_cand: float) -> None:
    fisher = _rejection_prob(reject_less["conditional"], p_base, p_cand)
    boschloo = _rejection_prob(reject_less["boschloo"], p_base, p_cand)
    assert boschloo >= fisher
    # Boschloo's rejection region contains Fisher's.
    assert not (reject_less["conditional"] & ~reject_less["boschloo"]).any()


def test_greater_is_mirror_of_less() -> None:
    # Swapping the arms swaps the alternative (Fisher and Boschloo are symmetric).
    for method in ("conditional", "boschloo"):
        a = unpaired_rate_test(12, 20, 18, 20, alternative="greater", method=method).p_value
        b = unpaired_rate_test(18, 20, 12, 20, alternative="less", method=method).p_value
        assert a == pytest.approx(b, rel=1e-9)


# --------------------------------------------------------------------------- 8. support / null_cdf


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alternative", ALTS)
def test_support_is_sorted_subprobability(method: str, alternative: str) -> None:
    for kb, nb, kc, nc in [(18, 20, 12, 20), (3, 7, 5, 9), (0, 5, 0, 6)]:
        t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative, method=method)
        values, probs = t.support
        assert np.all(np.diff(values) > 0)
        assert np.all(probs >= -1e-15)
        assert np.all(np.cumsum(probs) <= 1.0 + 1e-12)
        assert np.isclose(values, t.p_value, rtol=1e-12, atol=0).any()  # observed p is attainable
        assert t.min_attainable == values[0]
        assert t.null_cdf(1.0) <= 1.0
        assert t.null_cdf(values[0] / 2) == 0.0


def test_unconditional_support_is_exact() -> None:
    # Boschloo: sup_pi P(p <= c) equals c at every attainable c (the test is exact).
    t = unpaired_rate_test(4, 8, 2, 9, method="boschloo")
    values, _ = t.support
    pv = np.array(
        [[unpaired_rate_test(kb, 8, kc, 9, method="boschloo").p_value for kb in range(9)] for kc in range(10)]
    )
    pis = np.linspace(0.0, 1.0, 2001)
    pc = sps.binom.pmf(np.arange(10)[:, None], 9, pis)
    pb = sps.binom.pmf(np.arange(9)[:, None], 8, pis)
    for c in values[::5]:
        sharp = np.einsum("ig,ij,jg->g", pc, (pv <= c).astype(float), pb).max()
        assert t.null_cdf(c) == pytest.approx(sharp, rel=1e-4)
        assert sharp <= c * (1 + 1e-6)


@pytest.mark.parametrize("alternative", ALTS)
def test_fisher_null_cdf_is_hypergeometric(alternative: str) -> None:
    for kb, nb, kc, nc in [(18, 20, 12, 20), (3, 7, 5, 9), (10, 30, 2, 12), (6, 6, 1, 8)]:
        t = unpaired_rate_test(kb, nb, kc, nc, alternative=alternative)
        N, s = nb + nc, kb + kc
        x = np.arange(max(0, s - nb), min(nc, s) + 1)
        pmf = sps.hypergeom.pmf(x, N, s, nc)
        tails = sps.hypergeom.cdf(x, N, s, nc) if alternative == "less" else sps.hypergeom.sf(x - 1, N, s, nc)
        # exact P(p-value <= observed p-value) under the hypergeometric
        exact = pmf[tails <= t.p_value * (1 + 1e-12)].sum()
        assert t.null_cdf(t.p_value) == pytest.approx(exact, rel=1e-9)
        # monotone tails: that probability is the p-value itself
        assert t.null_cdf(t.p_value) == pytest.approx(t.p_value, rel=1e-9)
        assert t.support[1].sum() == pytest.approx(1.0, rel=1e-12)


def test_paired_null_cdf_is_binomial() -> None:
    t = paired_rate_test(8, 1, 40)
    assert t.null_cdf(t.p_value) == pytest.approx(sps.binom.cdf(1, 9, 0.5), rel=1e-12)
    mid = paired_rate_test(8, 1, 40, mid_p=True)
    # mid-p is not exact: P(mid-p <= mid-p_obs) = P(X <= 1) > mid-p_obs
    assert mid.null_cdf(mid.p_value) == pytest.approx(sps.binom.cdf(1, 9, 0.5), rel=1e-12)
    assert mid.null_cdf(mid.p_value) > mid.p_value
