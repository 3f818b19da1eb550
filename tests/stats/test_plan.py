"""Tests of workbench.stats.plan: exact power against brute force and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from workbench.model import ConfigError
from workbench.stats.plan import (
    STAY,
    fisher_p_less,
    minimum_detectable_drop,
    more_runs_to_decide,
    plan_table,
    power_rate,
    runs_needed,
)

ALPHA = 0.05


def _fisher_scipy(kb: int, nb: int, kc: int, nc: int) -> float:
    return float(sps.fisher_exact([[kc, nc - kc], [kb, nb - kb]], alternative="less").pvalue)


def test_fisher_p_matches_scipy() -> None:
    for kb, nb, kc, nc in [(18, 20, 12, 20), (5, 5, 0, 7), (3, 9, 8, 11), (0, 4, 0, 6), (40, 50, 31, 45)]:
        assert fisher_p_less(kb, nb, kc, nc) == pytest.approx(_fisher_scipy(kb, nb, kc, nc), rel=1e-10, abs=1e-14)


def test_power_equals_brute_force_enumeration() -> None:
    for pb, pc, nb, nc in [(0.9, 0.6, 8, 10), (0.7, 0.7, 12, 12), (0.5, 0.2, 6, 5)]:
        brute = sum(
            sps.binom.pmf(kb, nb, pb) * sps.binom.pmf(kc, nc, pc)
            for kb in range(nb + 1)
            for kc in range(nc + 1)
            if _fisher_scipy(kb, nb, kc, nc) <= ALPHA
        )
        assert power_rate(pb, pc, nb, nc, alpha=ALPHA) == pytest.approx(brute, abs=1e-12)


def _mc_fisher(pb: float, pc: float, nb: int, nc: int, reps: int, rng: np.random.Generator) -> float:
    kb = rng.binomial(nb, pb, reps)
    kc = rng.binomial(nc, pc, reps)
    tables, counts = np.unique(np.column_stack([kb, kc]), axis=0, return_counts=True)
    rej = np.array([_fisher_scipy(int(b), nb, int(c), nc) <= ALPHA for b, c in tables])
    return float(counts[rej].sum() / reps)


@pytest.mark.parametrize(("pb", "pc", "nb", "nc"), [(0.9, 0.6, 30, 30), (0.8, 0.6, 50, 40), (0.95, 0.95, 20, 20), (0.7, 0.3, 5, 8)])
def test_power_agrees_with_monte_carlo(pb: float, pc: float, nb: int, nc: int) -> None:
    rng = np.random.default_rng(7)
    reps = 40_000
    mc = _mc_fisher(pb, pc, nb, nc, reps, rng)
    exact = power_rate(pb, pc, nb, nc, alpha=ALPHA)
    se = math.sqrt(max(exact * (1 - exact), 1e-4) / reps)
    assert abs(mc - exact) <= 3 * se


def test_paired_power_agrees_with_monte_carlo() -> None:
    rng = np.random.default_rng(8)
    reps, n = 40_000, 25
    for pb, pc, pd in [(0.9, 0.6, None), (0.85, 0.65, 0.3)]:
        if pd is None:  # independent outcomes within a pair
            b = rng.random((reps, n)) < pb
            c = rng.random((reps, n)) < pc
        else:  # correlated pairs with the given discordance rate
            p10, p01 = (pd + pb - pc) / 2, (pd - pb + pc) / 2
            u = rng.random((reps, n))
            b = (u < p10) | (u >= p10 + p01) & (u < p10 + p01 + (pb - p10))
            c = (u >= p10) & (u < p10 + p01) | (u >= p10 + p01) & (u < p10 + p01 + (pb - p10))
        harm = (b & ~c).sum(axis=1)
        disc = (b ^ c).sum(axis=1)
        pairs, counts = np.unique(np.column_stack([harm, disc]), axis=0, return_counts=True)
        rej = np.array([m > 0 and sps.binomtest(int(h), int(m), 0.5, alternative="greater").pvalue <= ALPHA for h, m in pairs])
        mc = counts[rej].sum() / reps
        exact = power_rate(pb, pc, n, n, alpha=ALPHA, paired=True, p_discordant=pd)
        assert abs(mc - exact) <= 3 * math.sqrt(exact * (1 - exact) / reps)


def test_size_is_at_most_alpha() -> None:
    for p in (0.3, 0.7, 0.95):
        for n in (5, 17, 40):
            assert power_rate(p, p, n, n, alpha=ALPHA) <= ALPHA
            assert power_rate(p, p, n, n, alpha=ALPHA, paired=True) <= ALPHA


@pytest.mark.parametrize(("pb", "delta", "paired"), [(0.9, 0.2, False), (0.8, 0.3, False), (0.9, 0.3, True), (0.95, 0.3, False)])
def test_runs_needed_is_smallest_n(pb: float, delta: float, paired: bool) -> None:
    n = runs_needed(pb, delta, alpha=ALPHA, paired=paired)

    def pw(m: int) -> float:
        return power_rate(pb, pb - delta, m, m, alpha=ALPHA, paired=paired)

    assert pw(n) >= 0.8
    assert pw(n - 1) < 0.8
    assert all(pw(m) >= 0.8 for m in range(n, n + STAY))  # the power stays there
    # in these cases no smaller n reaches the target either (no isolated tooth)
    assert all(pw(m) < 0.8 for m in range(1, n))


def test_runs_needed_with_ratio_and_cell_alpha() -> None:
    n = runs_needed(0.9, 0.3, alpha=ALPHA / 4, ratio=2.0)
    assert power_rate(0.9, 0.6, n, 2 * n, alpha=ALPHA / 4) >= 0.8
    assert power_rate(0.9, 0.6, n - 1, 2 * (n - 1), alpha=ALPHA / 4) < 0.8
    assert n > runs_needed(0.9, 0.3, alpha=ALPHA, ratio=2.0)  # a smaller per-cell alpha needs more runs


def test_minimum_detectable_drop() -> None:
    for paired in (False, True):
        ns = [5, 10, 20, 40, 80]
        mde = [minimum_detectable_drop(0.9, n, n, alpha=ALPHA, paired=paired) for n in ns]
        assert all(b < a for a, b in zip(mde, mde[1:], strict=False)), mde  # decreasing over doublings of n
        # it is the drop with the target power: power at it >= 0.8, just below it < 0.8
        d = mde[2]
        assert power_rate(0.9, 0.9 - d, 20, 20, alpha=ALPHA, paired=paired) >= 0.8
        assert power_rate(0.9, 0.9 - d + 2e-4, 20, 20, alpha=ALPHA, paired=paired) < 0.8
    # n to n + 1: monotone up to small rises from discreteness (Fisher's size jumps)
    fisher = [minimum_detectable_drop(0.9, n, n, alpha=ALPHA) for n in range(6, 51)]
    assert max(b - a for a, b in zip(fisher, fisher[1:], strict=False)) < 0.025
    paired = [minimum_detectable_drop(0.9, n, n, alpha=ALPHA, paired=True) for n in range(8, 51)]
    assert all(b <= a + 1e-4 for a, b in zip(paired, paired[1:], strict=False))
    assert minimum_detectable_drop(0.9, 2, 2, alpha=ALPHA) == math.inf


def test_more_runs_to_decide() -> None:
    assert more_runs_to_decide(18, 20, 10, 20, alpha=ALPHA) == 0  # significant already
    assert fisher_p_less(18, 20, 10, 20) <= ALPHA
    assert more_runs_to_decide(18, 20, 19, 20, alpha=ALPHA) is None  # candidate is not worse
    m13 = more_runs_to_decide(18, 20, 13, 20, alpha=ALPHA)
    m15 = more_runs_to_decide(18, 20, 15, 20, alpha=ALPHA)
    assert m13 is not None and m15 is not None and 0 < m13 < m15
    # check the predictive power at the answer by simulation with the shrunk rates
    k_b, n_b, k_c, n_c = 18, 20, 13, 20
    pool = (k_b + k_c + 1) / (n_b + n_c + 2)
    pb, pc = (k_b + 2 * pool) / (n_b + 2), (k_c + 2 * pool) / (n_c + 2)
    rng = np.random.default_rng(3)

    def predictive(m: int, reps: int = 20_000) -> float:
        fb, fc = rng.binomial(m, pb, reps), rng.binomial(m, pc, reps)
        tabs, counts = np.unique(np.column_stack([fb, fc]), axis=0, return_counts=True)
        rej = np.array([_fisher_scipy(k_b + int(x), n_b + m, k_c + int(y), n_c + m) <= ALPHA for x, y in tabs])
        return counts[rej].sum() / reps

    se = math.sqrt(0.8 * 0.2 / 20_000)
    assert predictive(m13) >= 0.8 - 3 * se
    assert predictive(m13 - 1) < 0.8 + 3 * se


def test_plan_table_bonferroni() -> None:
    cells = [
        {"cell": "arm-a/pick", "k_base": 18, "n_base": 20, "k_cand": 13, "n_cand": 20},
        {"cell": "arm-b/pick", "k_base": 19, "n_base": 20, "k_cand": 0, "n_cand": 0},
    ]
    rows = plan_table(cells, alpha=0.05, delta=0.2)
    assert [r["cell"] for r in rows] == ["arm-a/pick", "arm-b/pick"]
    assert rows[0]["alpha_cell"] == pytest.approx(0.025)
    assert rows[0]["runs_needed"] == runs_needed(0.9, 0.2, alpha=0.025)
    assert rows[0]["mde_now"] == minimum_detectable_drop(0.9, 20, 20, alpha=0.025)
    assert rows[0]["more_runs_per_arm"] == more_runs_to_decide(18, 20, 13, 20, alpha=0.025)
    assert rows[0]["significant_now"] is False
    assert rows[1]["mde_now"] is None and rows[1]["more_runs_per_arm"] is None
    own = plan_table(cells, alpha=0.05, delta=0.2, cell_alpha=0.05)
    assert own[0]["alpha_cell"] == 0.05 and own[0]["runs_needed"] < rows[0]["runs_needed"]


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: power_rate(1.2, 0.5, 10, 10, alpha=ALPHA), "p_base"),
        (lambda: power_rate(0.9, 0.5, 0, 10, alpha=ALPHA), "n_base"),
        (lambda: power_rate(0.9, 0.5, 10, 10, alpha=0.0), "alpha"),
        (lambda: power_rate(0.9, 0.5, 10, 12, alpha=ALPHA, paired=True), "n_base == n_cand"),
        (lambda: power_rate(0.9, 0.5, 10, 10, alpha=ALPHA, paired=True, p_discordant=0.1), "p_discordant"),
        (lambda: power_rate(0.9, 0.5, 10, 10, alpha=ALPHA, p_discordant=0.5), "p_discordant"),
        (lambda: power_rate(0.9, 0.5, 10, 10, alpha=ALPHA, paired="yes"), "paired"),
        (lambda: minimum_detectable_drop(0.9, 10, 10, alpha=ALPHA, power=1.0), "power"),
        (lambda: minimum_detectable_drop(0.0, 0, 10, alpha=ALPHA), "n_base"),
        (lambda: minimum_detectable_drop(0.9, 10, 10, alpha=ALPHA, tol=0.7), "tol"),
        (lambda: runs_needed(0.5, 0.6, alpha=ALPHA), "delta"),
        (lambda: runs_needed(0.9, 0.2, alpha=ALPHA, paired=True, ratio=2.0), "ratio"),
        (lambda: runs_needed(0.9, 0.01, alpha=ALPHA, max_n=50), "max_n"),
        (lambda: more_runs_to_decide(21, 20, 10, 20, alpha=ALPHA), "successes exceed runs"),
        (lambda: fisher_p_less(2.5, 10, 1, 10), "k_base"),
        (lambda: plan_table([], alpha=ALPHA), "cells"),
        (lambda: plan_table([{"cell": "a", "k_base": 1}], alpha=ALPHA), "cells\\[0\\]"),
        (lambda: plan_table([{"cell": "a", "k_base": 1, "n_base": 2, "k_cand": 1, "n_cand": 2}], max_n=0), "max_n"),
    ],
)
def test_bad_inputs_raise_config_error(call, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        call()
