"""Tests of workbench.stats.multiplicity: Holm against statsmodels, the discrete Holm
step-down against a direct implementation of its definition, the score-ordered Holm
step-down against its definition, its exact conditional error rate by enumeration and
its properties (consonance, order of the cells), FWER and power by simulation with
Fisher tests, input handling."""

from __future__ import annotations

import doctest
import gc
import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from workbench.model import ConfigError
from workbench.stats import multiplicity
from workbench.stats.multiplicity import MultiplicityResult, discrete_holm, holm, score_ordered_holm
from workbench.stats.rates import RateTest, paired_rate_test, unpaired_rate_test

ALPHA = 0.05
CELLS = 8
N = 20
REPS = 2000


def _random_pvalues(rng: np.random.Generator, m: int) -> np.ndarray:
    """Uniform and small p-values, with ties, exact zeros and ones."""
    p = np.where(rng.random(m) < 0.5, rng.random(m), rng.random(m) * 0.02)
    if m > 3:
        p[rng.integers(m)] = p[rng.integers(m)]  # a tie
        p[rng.integers(m)] = np.round(p[rng.integers(m)], 2)
    if m > 6:
        p[rng.integers(m)] = 1.0
        p[rng.integers(m)] = 0.0
    return p


def _fisher_family(rng: np.random.Generator, rates: list[tuple[float, float]], n: int = N) -> list[RateTest]:
    """One Fisher test (H1: candidate lower) per cell, (baseline rate, candidate rate)."""
    return [
        unpaired_rate_test(int(rng.binomial(n, pb)), n, int(rng.binomial(n, pc)), n, alternative="less")
        for pb, pc in rates
    ]


def _apply(tests: list[RateTest], alpha: float = ALPHA) -> tuple[MultiplicityResult, MultiplicityResult]:
    p = [t.p_value for t in tests]
    return discrete_holm(p, [t.support for t in tests], alpha=alpha), holm(p, alpha=alpha)


def _reference_discrete_holm(
    p: list[float], tests: list[RateTest], alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition, written out with RateTest.null_cdf: decisions, adjusted p, levels."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = np.zeros(len(p), dtype=bool)
    adjusted = np.empty(len(p))
    critical = np.empty(len(p))
    running, worst, level = True, 0.0, math.nan
    for j, i in enumerate(order):
        left = order[j:]

        def total(c: float, left: list[int] = left) -> float:
            return sum(tests[h].null_cdf(c) for h in left)

        worst = max(worst, min(1.0, total(p[i])))
        adjusted[i] = worst
        if running:
            values = sorted({float(v) for h in left for v in tests[h].support[0]})
            a = max((v for v in values if total(v) <= alpha), default=0.0)
            b = min((v for v in values if total(v) > alpha), default=math.inf)
            level = alpha if a < alpha < b else (a + b) / 2 if b < math.inf else max(a, alpha)
            running = p[i] <= a
            rejected[i] = running
        critical[i] = level
    return rejected, adjusted, critical


# --------------------------------------------------------------------------- Holm


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_holm_matches_statsmodels(alpha: float, monkeypatch: pytest.MonkeyPatch) -> None:
    # multipletests runs a full gc.collect() on every Holm call (~0.1 s in a big test
    # session); skipping it changes no result
    monkeypatch.setattr(gc, "collect", lambda *args, **kwargs: 0)
    rng = np.random.default_rng(20260312)
    for m in [1, 2, 3, 5, 8, 13, 40, 200]:
        for _ in range(10):
            p = _random_pvalues(rng, m)
            reject, adj, _, _ = multipletests(p, alpha=alpha, method="holm")
            res = holm(p, alpha=alpha)
            np.testing.assert_array_equal(res.adjusted, adj)
            np.testing.assert_array_equal(res.rejected, reject)
            assert res.method == "holm"
            assert res.testable.all()
            # critical values are Holm's alpha / (m - j + 1), the decision rule is p <= critical
            np.testing.assert_array_equal(res.rejected, p <= res.critical)


def test_holm_critical_values_by_step() -> None:
    res = holm([0.001, 0.3, 0.01, 0.2], alpha=0.04)
    # sorted: 0.001 (step 1, 0.04/4), 0.01 (step 2, 0.04/3), 0.2 stops at step 3 (0.04/2)
    np.testing.assert_allclose(res.critical, [0.01, 0.02, 0.04 / 3, 0.02])
    assert res.rejected.tolist() == [True, False, True, False]


def test_holm_nan_is_not_in_the_family() -> None:
    p = np.array([0.01, np.nan, 0.02, 0.5, np.nan])
    res = holm(p)
    sub = holm(p[[0, 2, 3]])
    assert res.rejected.tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(res.adjusted[[0, 2, 3]], sub.adjusted)
    np.testing.assert_array_equal(res.critical[[0, 2, 3]], sub.critical)
    assert np.isnan(res.adjusted[[1, 4]]).all() and np.isnan(res.critical[[1, 4]]).all()
    assert not res.testable[[1, 4]].any()
    assert (res.n_tested, res.n_rejected) == (3, 2)


# --------------------------------------------------------------------------- discrete Holm


def test_discrete_holm_without_supports_is_holm() -> None:
    rng = np.random.default_rng(7)
    for m in [1, 2, 4, 8, 30, 100]:
        for _ in range(10):
            p = _random_pvalues(rng, m)
            p[rng.random(m) < 0.1] = np.nan
            ref = holm(p)
            for supports in (None, [None] * m):
                res = discrete_holm(p, supports)
                assert res.method == "discrete_holm"
                np.testing.assert_array_equal(res.rejected, ref.rejected)
                np.testing.assert_array_equal(res.adjusted, ref.adjusted)
                np.testing.assert_array_equal(res.critical, ref.critical)
                np.testing.assert_array_equal(res.testable, ref.testable)


def test_discrete_holm_matches_its_definition() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        m = int(rng.integers(1, 9))
        rates = [(rng.choice([0.5, 0.8, 0.9, 1.0]), rng.choice([0.3, 0.6, 0.9, 1.0])) for _ in range(m)]
        n = int(rng.choice([10, 20, 30]))
        tests = _fisher_family(rng, rates, n)
        p = [t.p_value for t in tests]
        alpha = float(rng.choice([0.05, 0.1, 0.2]))
        res = discrete_holm(p, [t.support for t in tests], alpha=alpha)
        rejected, adjusted, critical = _reference_discrete_holm(p, tests, alpha)
        np.testing.assert_array_equal(res.rejected, rejected)
        np.testing.assert_allclose(res.adjusted, adjusted, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(res.critical, critical, rtol=1e-12)
        assert not np.isin(res.critical, np.concatenate([t.support[0] for t in tests])).any()
        # the three views of the decision agree
        np.testing.assert_array_equal(res.rejected, np.asarray(p) <= res.critical)
        np.testing.assert_array_equal(res.rejected, res.adjusted <= alpha)
        np.testing.assert_array_equal(res.testable, np.array([t.min_attainable for t in tests]) <= res.critical)
        assert not (res.rejected & ~res.testable).any()


def test_discrete_holm_rejects_a_superset_of_holm() -> None:
    rng = np.random.default_rng(3)
    more = 0
    for _ in range(150):
        m = int(rng.integers(2, 12))
        n = int(rng.choice([10, 20, 30, 50]))
        rates = [(float(rng.choice([0.7, 0.9, 0.95, 1.0])), float(rng.choice([0.4, 0.6, 0.9, 1.0]))) for _ in range(m)]
        tests = _fisher_family(rng, rates, n)
        dh, h = _apply(tests)
        assert not (h.rejected & ~dh.rejected).any()
        assert (dh.adjusted <= h.adjusted + 1e-12).all()
        more += dh.n_rejected > h.n_rejected
    assert more >= 10  # and strictly more, often


def test_discrete_holm_planted_example() -> None:
    # 8 cells, 20 runs per arm: one cell fell from 18/20 to 11/20, the seven others never
    # failed (their Fisher tests can only give p = 1)
    tests = [unpaired_rate_test(18, N, 11, N)] + [unpaired_rate_test(N, N, N, N)] * (CELLS - 1)
    p = [t.p_value for t in tests]
    assert ALPHA / CELLS < p[0] < ALPHA
    dh, h = _apply(tests)
    assert h.n_rejected == 0
    assert dh.rejected.tolist() == [True] + [False] * (CELLS - 1)
    assert dh.testable.tolist() == [True] + [False] * (CELLS - 1)
    assert dh.adjusted[0] == pytest.approx(p[0], rel=1e-12)  # the seven cells cost nothing
    assert h.adjusted[0] == pytest.approx(CELLS * p[0])
    np.testing.assert_array_equal(dh.adjusted[1:], 1.0)
    # the next attainable value of the cell is above alpha: it is tested at the full level,
    # and the interval at that level agrees with the decision
    assert tests[0].support[0][tests[0].support[0] > p[0]][0] > ALPHA
    assert dh.critical[0] == ALPHA
    assert tests[0].interval(float(dh.critical[0]))[1] < 0
    assert h.critical[0] == ALPHA / CELLS


def test_interval_at_the_critical_level_agrees_with_the_decision() -> None:
    rng = np.random.default_rng(17)
    checked = 0
    for _ in range(25):
        tests = _fisher_family(rng, [(0.9, float(rng.choice([0.45, 0.6, 0.9]))) for _ in range(6)])
        res, _ = _apply(tests)
        for t, rej, level in zip(tests, res.rejected, res.critical, strict=True):
            if t.support[0][0] < 1.0:  # a table with some information
                assert (t.interval(float(level))[1] < 0) == rej
                checked += 1
    assert checked >= 50


def test_discrete_holm_with_mixed_continuous_and_discrete() -> None:
    # two continuous p-values and one discrete test with values {0.02, 0.3, 1}
    sup = ([0.02, 0.3, 1.0], [0.02, 0.28, 0.7])
    res = discrete_holm([0.016, 0.02, 0.03], [None, sup, None], alpha=0.05)
    # step 1: S(c) = 2c + 0.02 [c >= 0.02]: S(0.02) = 0.06 > alpha, so c_1 = 0.02 (just below)
    assert res.critical[0] == pytest.approx(0.02) and res.critical[0] < 0.02
    # step 2: S(c) = c + 0.02 [c >= 0.02] reaches alpha at c = 0.03; step 3: Holm's alpha / 1
    np.testing.assert_allclose(res.critical[1:], [0.03, 0.05])
    assert res.rejected.tolist() == [True, True, True]
    np.testing.assert_allclose(res.adjusted, [0.032, 0.04, 0.04])
    res = discrete_holm([0.016, 0.02, 0.03], [None, sup, None], alpha=0.035)
    assert res.rejected.tolist() == [True, False, False]
    # step 2: S(0.02) = 0.04 > alpha, so the level is just below 0.02 and p = 0.02 stops
    assert res.critical[0] == pytest.approx(0.0175)
    assert (res.critical[1:] < 0.02).all() and res.critical[1:] == pytest.approx(0.02)
    # a continuous test alongside one that cannot reach alpha is tested at alpha
    res = discrete_holm([0.04, 0.3], [None, ([0.3, 1.0], [0.3, 0.7])], alpha=0.05)
    assert res.rejected.tolist() == [True, False] and res.critical[0] == 0.05
    assert res.testable.tolist() == [True, False]
    # superset of Holm on random mixed families
    rng = np.random.default_rng(5)
    for _ in range(50):
        m = int(rng.integers(2, 10))
        tests = _fisher_family(rng, [(0.9, float(rng.choice([0.5, 0.9]))) for _ in range(m)])
        p = [t.p_value for t in tests]
        cont = rng.random(m) < 0.4
        p = [float(rng.random() * 0.02) if c else q for c, q in zip(cont, p, strict=True)]
        sups = [None if c else t.support for c, t in zip(cont, tests, strict=True)]
        res, ref = discrete_holm(p, sups), holm(p)
        assert not (ref.rejected & ~res.rejected).any()
        np.testing.assert_array_equal(res.rejected, np.asarray(p) <= res.critical)
        np.testing.assert_array_equal(res.rejected, res.adjusted <= ALPHA)


def test_discrete_holm_nan_is_not_in_the_family() -> None:
    rng = np.random.default_rng(9)
    tests = _fisher_family(rng, [(0.9, 0.5), (0.9, 0.9), (1.0, 1.0), (0.9, 0.6)])
    p = [t.p_value for t in tests]
    sups = [t.support for t in tests]
    res = discrete_holm(
        [p[0], math.nan, p[1], p[2], math.nan, p[3]], [sups[0], None, sups[1], sups[2], sups[0], sups[3]]
    )
    sub = discrete_holm(p, sups)
    keep = [0, 2, 3, 5]
    np.testing.assert_array_equal(res.rejected[keep], sub.rejected)
    np.testing.assert_array_equal(res.adjusted[keep], sub.adjusted)
    np.testing.assert_array_equal(res.critical[keep], sub.critical)
    np.testing.assert_array_equal(res.testable[keep], sub.testable)
    assert not res.rejected[[1, 4]].any() and not res.testable[[1, 4]].any()
    assert np.isnan(res.adjusted[[1, 4]]).all() and np.isnan(res.critical[[1, 4]]).all()


def test_rate_tests_are_accepted_as_supports() -> None:
    tests = [unpaired_rate_test(18, N, 11, N), unpaired_rate_test(17, N, 15, N), unpaired_rate_test(N, N, N, N)]
    p = [t.p_value for t in tests]
    a = discrete_holm(p, tests)
    b = discrete_holm(p, [t.support for t in tests])
    for field in ("rejected", "adjusted", "critical", "testable"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_empty_family() -> None:
    for res in (holm([]), discrete_holm([]), discrete_holm([], []), discrete_holm([math.nan], [None])):
        n = res.rejected.size
        assert res.rejected.dtype == bool and res.testable.dtype == bool
        assert res.adjusted.shape == res.critical.shape == (n,)
        assert res.n_tested == 0 and res.n_rejected == 0


def test_result_is_read_only() -> None:
    res = discrete_holm([0.01, 0.2])
    with pytest.raises(ValueError):
        res.rejected[0] = False
    with pytest.raises(AttributeError):
        res.method = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- simulations


def _simulate(p_cand_first: float, seed: int) -> tuple[list[list[RateTest]], list[MultiplicityResult], np.ndarray]:
    """REPS families of CELLS Fisher tests, all cells at 0.9 but the first candidate."""
    rng = np.random.default_rng(seed)
    rates = np.full((CELLS, 2), 0.9)
    rates[0, 1] = p_cand_first
    kb = rng.binomial(N, rates[:, 0], size=(REPS, CELLS))
    kc = rng.binomial(N, rates[:, 1], size=(REPS, CELLS))
    fams = [
        [unpaired_rate_test(int(b), N, int(c), N) for b, c in zip(rb, rc, strict=True)]
        for rb, rc in zip(kb, kc, strict=True)
    ]
    dh = [discrete_holm([t.p_value for t in f], [t.support for t in f], alpha=ALPHA) for f in fams]
    h = np.array([holm([t.p_value for t in f], alpha=ALPHA).rejected for f in fams])
    return fams, dh, h


def test_fwer_under_the_global_null() -> None:
    # 8 cells at 0.9 in both arms, 20 runs each, one-sided Fisher tests
    fams, results, h = _simulate(0.9, seed=20260101)
    dh = np.array([r.rejected for r in results])
    se = math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    fwer, fwer_holm = dh.any(axis=1).mean(), h.any(axis=1).mean()
    assert fwer <= ALPHA + 2 * se
    assert fwer >= fwer_holm  # superset, so never more conservative
    # Rao-Blackwellised check: given the margins the cells are independent and the first
    # step rejects iff some p_i <= a_1 (the largest attainable value with S_1 <= alpha), so
    # P(false alarm | margins) = 1 - prod(1 - F_i(a_1)) exactly; it must stay below alpha
    # for every set of margins
    cond = np.empty(REPS)
    for r, (f, res) in enumerate(zip(fams, results, strict=True)):
        level = float(res.critical[int(np.argmin([t.p_value for t in f]))])  # the first step's
        cond[r] = 1 - np.prod([1 - t.null_cdf(level) for t in f])
    assert cond.max() <= ALPHA + 1e-12
    assert abs(cond.mean() - fwer) < 4 * se  # the simulation agrees with the exact conditional rate
    assert cond.mean() > 3 * fwer_holm  # far less conservative than Holm (Holm: ~0.003)


def test_power_with_one_harmed_cell() -> None:
    _, results, h = _simulate(0.6, seed=20260102)
    dh = np.array([r.rejected for r in results])
    power, power_holm = dh[:, 0].mean(), h[:, 0].mean()
    assert not (h & ~dh).any()
    assert power > power_holm + 0.1, (power, power_holm)
    # the untouched cells stay protected
    assert dh[:, 1:].any(axis=1).mean() <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, "0.05", None, True, math.nan])
def test_bad_alpha(alpha: object) -> None:
    for fn in (holm, discrete_holm):
        with pytest.raises(ConfigError, match=r"alpha=.*\(0, 1\)"):
            fn([0.01, 0.2], alpha=alpha)  # type: ignore[arg-type]


@pytest.mark.parametrize("pvalues", [[0.1, 1.5], [-0.01], [math.inf], [[0.1, 0.2]], ["x"], 0.3])
def test_bad_pvalues(pvalues: object) -> None:
    for fn in (holm, discrete_holm):
        with pytest.raises(ConfigError, match=r"\[0, 1\]"):
            fn(pvalues)  # type: ignore[arg-type]


def test_bad_pvalue_names_the_index() -> None:
    with pytest.raises(ConfigError, match=r"pvalues\[1\]=1\.5"):
        discrete_holm([0.1, 1.5])


def test_mismatched_supports() -> None:
    t = unpaired_rate_test(18, N, 11, N)
    with pytest.raises(ConfigError, match="supports has 1 entries but pvalues has 2"):
        discrete_holm([t.p_value, 0.2], [t.support])
    with pytest.raises(ConfigError, match="supports=.*None"):
        discrete_holm([t.p_value], "abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("support", "problem"),
    [
        (([0.3, 0.1, 1.0], [0.1, 0.2, 0.7]), "strictly increasing"),
        (([0.1, 1.0], [0.1]), "one length"),
        (([], []), "non-empty"),
        (([0.1, 1.2], [0.1, 0.9]), r"in \[0, 1\]"),
        (([0.1, 1.0], [0.5, 0.9]), "sum to"),
        (([0.1, 1.0], [-0.1, 0.9]), "non-negative"),
        (([0.1, math.nan], [0.1, 0.9]), "finite"),
        ((0.1, 0.2, 0.3), "not valid"),
    ],
)
def test_bad_support(support: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"supports\[0\].*{problem}.*\(values, probs\)"):
        discrete_holm([0.1], [support])


def test_pvalue_must_be_attainable_by_its_support() -> None:
    a, b = unpaired_rate_test(18, N, 11, N), unpaired_rate_test(17, N, 15, N)
    # supports passed in the wrong order
    with pytest.raises(ConfigError, match=r"pvalues\[0\]=.* not an attainable value of supports\[0\]"):
        discrete_holm([a.p_value, b.p_value], [b.support, a.support])
    # rounding noise is tolerated
    res = discrete_holm([a.p_value * (1 + 1e-12), b.p_value], [a.support, b.support])
    assert res.rejected.tolist() == discrete_holm([a.p_value, b.p_value], [a, b]).rejected.tolist()


# --------------------------------------------------------------------------- score-ordered Holm


def _reference_score_ordered(tests: list[RateTest], alpha: float) -> np.ndarray:
    """The definition written out: at each stage sort every outcome of the hypotheses
    left by (within the Bonferroni share first, score desc, null probability asc), take
    groups equal in all three while the probability taken stays <= alpha; reject the
    hypotheses whose outcome was taken."""
    left = set(range(len(tests)))
    rejected = np.zeros(len(tests), dtype=bool)
    while True:
        steps = []
        for i in left:
            vals, probs = tests[i].support
            cum = np.cumsum(probs)
            for j in range(len(vals)):
                if cum[j] <= alpha * (1 + 1e-9):
                    first = 0 if cum[j] <= alpha / len(tests) * (1 + 1e-9) else 1  # the Bonferroni share
                    steps.append((first, -round(float(tests[i].scores[j]), 9), float(f"{probs[j]:.9e}"), i, j))
        steps.sort()
        taken: dict[int, int] = {}
        spent = 0.0
        for _, grp in itertools.groupby(steps, key=lambda s: s[:3]):
            grp = list(grp)
            cost = sum(float(tests[i].support[1][j]) for *_, i, j in grp)
            if spent + cost > alpha * (1 + 1e-9):
                break
            spent += cost
            for *_, i, j in grp:
                taken[i] = j
        new = [i for i in left if i in taken and tests[i].p_value <= tests[i].support[0][taken[i]] * (1 + 1e-9)]
        if not new:
            return rejected
        rejected[new] = True
        left -= set(new)


def _family(rng: np.random.Generator, size: int, paired: bool = False) -> list[RateTest]:
    """A random family: runs per side 3-30, rates anywhere, Fisher or McNemar tests."""
    out = []
    for _ in range(size):
        if paired:
            n = int(rng.integers(3, 30))
            b, c = rng.multinomial(n, rng.dirichlet([1, 1, 2]))[:2]
            out.append(paired_rate_test(int(b), int(c), n))
        else:
            nb, nc = (int(v) for v in rng.integers(3, 30, 2))
            pb, pc = rng.random(2)
            out.append(unpaired_rate_test(int(rng.binomial(nb, pb)), nb, int(rng.binomial(nc, pc)), nc))
    return out


@pytest.mark.parametrize("paired", [False, True])
def test_score_ordered_matches_its_definition(paired: bool) -> None:
    rng = np.random.default_rng(7 + paired)
    for _ in range(150):
        tests = _family(rng, int(rng.integers(1, 10)), paired)
        alpha = float(rng.choice([0.05, 0.1, 0.2]))
        res = score_ordered_holm([t.p_value for t in tests], tests, alpha=alpha)
        ref = _reference_score_ordered(tests, alpha)
        assert res.rejected.tolist() == ref.tolist()
        p = np.array([t.p_value for t in tests])
        assert (res.rejected == (res.adjusted <= alpha)).all()
        assert (res.rejected == (p <= res.critical)).all()  # the level each cell was tested at
        assert (res.adjusted >= p - 1e-12).all() and (res.adjusted <= 1).all()
        assert res.method == "score_ordered_holm"
        assert not ((p <= alpha / len(p)) & ~res.rejected).any()  # every Bonferroni rejection is one here


def test_score_ordered_equals_discrete_holm_when_the_cells_are_alike() -> None:
    # cells with the same runs and margins have the same outcomes, scores and costs:
    # ordering by score is then ordering by p-value, which is the discrete Holm step
    rng = np.random.default_rng(11)
    for _ in range(100):
        n, s = int(rng.integers(5, 30)), None
        s = int(rng.integers(1, 2 * n))
        xs = rng.integers(max(0, s - n), min(n, s) + 1, size=int(rng.integers(2, 9)))
        tests = [unpaired_rate_test(s - int(x), n, int(x), n) for x in xs]
        p = [t.p_value for t in tests]
        a, b = score_ordered_holm(p, tests), discrete_holm(p, tests)
        assert a.rejected.tolist() == b.rejected.tolist()


def _cell_laws(ns: list[tuple[int, int]], ms: list[int], psis: list[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outcomes x (candidate successes) and their law given the margin: central (psi=1)
    or Fisher's noncentral hypergeometric."""
    out = []
    for (nb, nc), m, psi in zip(ns, ms, psis, strict=True):
        xs = np.arange(max(0, m - nb), min(nc, m) + 1)
        law = stats.nchypergeom_fisher(nb + nc, nc, m, psi) if psi != 1 else stats.hypergeom(nb + nc, m, nc)
        out.append((xs, law.pmf(xs)))
    return out


def test_score_ordered_controls_the_error_exactly_given_the_margins() -> None:
    """Every outcome of three cells enumerated with its exact probability given the
    margins: under the global null and under partial nulls (the other cells worse, odds
    ratio 1/4) the probability of rejecting a true null is <= alpha (strong control);
    under "no worse" (odds ratio 2) it is smaller still."""
    rng = np.random.default_rng(2026)
    worst = 0.0
    for _ in range(12):
        ns = [(int(a), int(b)) for a in rng.integers(3, 13, 3) for b in rng.integers(3, 13, 1)][:3]
        ms = [int(rng.integers(1, nb + nc)) for nb, nc in ns]
        for psis in ([1.0, 1.0, 1.0], [1.0, 0.25, 0.25], [1.0, 1.0, 0.25], [2.0, 1.0, 1.0]):
            laws = _cell_laws(ns, ms, psis)
            nulls = [i for i, p in enumerate(psis) if p >= 1]
            err = 0.0
            for combo in itertools.product(*[range(len(x)) for x, _ in laws]):
                xs = [int(laws[i][0][j]) for i, j in enumerate(combo)]
                tests = [unpaired_rate_test(m - x, nb, x, nc) for (nb, nc), m, x in zip(ns, ms, xs, strict=True)]
                res = score_ordered_holm([t.p_value for t in tests], tests)
                if res.rejected[nulls].any():
                    err += float(np.prod([laws[i][1][j] for i, j in enumerate(combo)]))
            assert err <= ALPHA + 1e-9, (ns, ms, psis, err)
            worst = max(worst, err)
    assert worst > 0.02  # the bound is used, not wasted


def test_score_ordered_is_consonant_and_ignores_the_order_of_cells() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        tests = _family(rng, int(rng.integers(2, 9)))
        p = np.array([t.p_value for t in tests])
        res = score_ordered_holm(p, tests)
        perm = rng.permutation(len(tests))
        again = score_ordered_holm(p[perm], [tests[i] for i in perm])
        assert again.rejected.tolist() == res.rejected[perm].tolist()
        assert np.allclose(again.adjusted, res.adjusted[perm])
        # dropping a cell frees budget: every other rejection stays
        k = int(rng.integers(len(tests)))
        fewer = p.copy()
        fewer[k] = math.nan
        res2 = score_ordered_holm(fewer, tests)
        keep = np.arange(len(tests)) != k
        assert not (res.rejected[keep] & ~res2.rejected[keep]).any()
        assert not res2.rejected[k] and math.isnan(res2.adjusted[k])


def test_score_ordered_power_and_error_by_simulation() -> None:
    """8 cells at 0.9, 20 runs a side, Fisher tests: under the null the family-wise error
    stays at alpha; with the first candidate at 0.6 the score order finds it more often
    than one p-value threshold for all, and at least half the time."""
    null_fams, _, _ = _simulate(0.9, seed=20260101)
    null = np.array([score_ordered_holm([t.p_value for t in f], f).rejected.any() for f in null_fams])
    assert null.mean() <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    fams, dh, _ = _simulate(0.6, seed=20260102)
    so = np.array([score_ordered_holm([t.p_value for t in f], f).rejected for f in fams])
    power, power_dh = so[:, 0].mean(), np.array([r.rejected[0] for r in dh]).mean()
    assert power >= 0.5, power
    assert power > power_dh + 0.02, (power, power_dh)
    assert so[:, 1:].any(axis=1).mean() <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def test_score_ordered_refuses_tests_without_scores() -> None:
    t = unpaired_rate_test(18, 20, 12, 20)
    b = unpaired_rate_test(18, 20, 12, 20, method="boschloo")
    with pytest.raises(ConfigError, match="no scores.*use discrete_holm"):
        score_ordered_holm([t.p_value, b.p_value], [t, b])
    with pytest.raises(ConfigError, match="no support.*use discrete_holm"):
        score_ordered_holm([t.p_value, 0.01], [t, None], [t.scores, None])
    with pytest.raises(ConfigError, match=r"scores\[0\] is not valid"):
        score_ordered_holm([t.p_value], [t.support], [t.scores[::-1]])
    res = score_ordered_holm([t.p_value, math.nan], [t, None])  # a cell not measured needs nothing
    assert res.n_tested == 1 and bool(res.rejected[0])


# --------------------------------------------------------------------------- docs


def test_doctests() -> None:
    result = doctest.testmod(multiplicity)
    assert result.attempted >= 2
    assert result.failed == 0
