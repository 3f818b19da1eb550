"""Tests of workbench.stats.sequential: validity under optional stopping, power, spending."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from workbench.model import ConfigError
from workbench.stats.sequential import (
    SequentialResult,
    alpha_spending,
    paired_e_process,
    spending_bounds,
    unpaired_e_process,
)

ALPHA = 0.05
N_MAX = 60
REPS = 2000


def _simulate(p_base: float, p_cand: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((REPS, N_MAX)) < p_base, rng.random((REPS, N_MAX)) < p_cand


def _e_rejects(base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Whether the e-process, checked after every pair, ever rejects (one per rep)."""
    return np.array([paired_e_process(np.column_stack([b, c]), alpha=ALPHA).rejected for b, c in zip(base, cand, strict=True)])


def _naive_mcnemar_rejects(base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact one-sided McNemar test repeated after every pair; stop at the first p <= alpha."""
    harm = np.cumsum(base & ~cand, axis=1)
    disc = np.cumsum(base ^ cand, axis=1)
    p = sps.binom.sf(harm - 1, disc, 0.5)  # P(Bin(m, 1/2) >= b)
    p = np.where(disc > 0, p, 1.0)
    return np.any(p <= ALPHA, axis=1)


def test_e_process_matches_closed_form() -> None:
    # 9 candidate-only failures in a row: E = 2^9 * ∫_{1/2}^1 θ^9 dθ / (1/2)
    res = paired_e_process([(True, False)] * 9, alpha=ALPHA)
    assert res.e_value == pytest.approx(2**9 * 2 * (1 - 0.5**10) / 10, rel=1e-12)
    # a general k of t against numerical integration, Beta(2, 3) prior
    seq = [(True, False)] * 6 + [(False, True)] * 3 + [(True, True), (False, False)]
    res = paired_e_process(seq, alpha=ALPHA, prior=(2.0, 3.0))
    prior = sps.beta(2.0, 3.0)
    num = integrate.quad(lambda th: th**6 * (1 - th) ** 3 * prior.pdf(th), 0.5, 1)[0]
    den = prior.sf(0.5)
    assert res.e_value == pytest.approx(2**9 * num / den, rel=1e-9)
    assert (res.looks, res.n_pairs, res.harm) == (9, 11, 6)
    assert res.e_values.shape == (11,)
    assert res.e_values[-1] == res.e_values[-2] == res.e_values[-3]  # concordant pairs: no change


def test_optional_stopping_keeps_alpha_naive_mcnemar_does_not() -> None:
    base, cand = _simulate(0.7, 0.7, seed=11)  # no harm: theta = 1/2
    e_rate = _e_rejects(base, cand).mean()
    naive_rate = _naive_mcnemar_rejects(base, cand).mean()
    se = math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    assert e_rate <= ALPHA + 2 * se
    # peeking after every pair with a fixed-n test: well above alpha (about 0.11 here; the e-process about 0.02)
    assert naive_rate > ALPHA + 4 * se
    # a single McNemar test at n = 60 alone is valid: the inflation comes from peeking
    harm, disc = (base & ~cand).sum(axis=1), (base ^ cand).sum(axis=1)
    assert (sps.binom.sf(harm - 1, disc, 0.5) <= ALPHA).mean() <= ALPHA + 2 * se


def test_valid_under_composite_null_candidate_better() -> None:
    base, cand = _simulate(0.6, 0.8, seed=12)  # theta < 1/2
    assert _e_rejects(base, cand).mean() <= ALPHA


def test_power_at_real_effect() -> None:
    base, cand = _simulate(0.9, 0.6, seed=13)
    rej = _e_rejects(base, cand)
    # about 0.93 at 60 pairs checked after every pair (one fixed-n McNemar at 60: 0.98)
    assert rej.mean() > 0.85
    stops = np.array(
        [paired_e_process(np.column_stack([b, c]), alpha=ALPHA).rejected_at for b, c in zip(base[:200], cand[:200], strict=True)],
        dtype=object,
    )
    early = [s for s in stops if s is not None]
    assert np.median(early) < 40  # stops well before the 60 planned pairs


def test_unpaired_pairs_in_arrival_order() -> None:
    base = [True, True, False, True, True]
    cand = [False, True, True]
    res = unpaired_e_process(base, cand, alpha=ALPHA)
    ref = paired_e_process(list(zip(base[:3], cand, strict=True)), alpha=ALPHA)
    assert res.n_pairs == 3
    assert res.e_value == ref.e_value
    np.testing.assert_array_equal(res.e_values, ref.e_values)


def test_unpaired_validity_and_power() -> None:
    b0, c0 = _simulate(0.8, 0.8, seed=21)
    rej0 = np.array([unpaired_e_process(b, c, alpha=ALPHA).rejected for b, c in zip(b0, c0, strict=True)])
    assert rej0.mean() <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    b1, c1 = _simulate(0.9, 0.6, seed=22)
    rej1 = np.array([unpaired_e_process(b, c, alpha=ALPHA).rejected for b, c in zip(b1[:500], c1[:500], strict=True)])
    assert rej1.mean() > 0.85


def test_confidence_sequence_covers_theta_uniformly() -> None:
    rng = np.random.default_rng(5)
    theta, reps, t_max = 0.7, 300, 40
    x = rng.random((reps, t_max)) < theta  # discordant pairs only
    miss = 0
    for row in x:
        pairs = np.column_stack([row, ~row])  # True -> (True, False), False -> (False, True)
        res = paired_e_process(pairs, alpha=0.1)
        # the running intersection at t_max is inside every earlier interval, so one
        # check at the end checks coverage at all times
        lo, hi = res.confidence_sequence()
        miss += not (lo <= theta <= hi)
    assert miss / reps <= 0.1
    res = paired_e_process([(True, False)] * 12 + [(False, True)] * 2, alpha=ALPHA)
    lo, hi = res.confidence_sequence()
    assert 0.5 < lo < 12 / 14 < hi <= 1.0
    lo99, hi99 = res.confidence_sequence(0.01)
    assert lo99 <= lo and hi99 >= hi
    assert paired_e_process([], alpha=ALPHA).confidence_sequence() == (0.0, 1.0)


def test_empty_and_no_discordance() -> None:
    res = paired_e_process([], alpha=ALPHA)
    assert isinstance(res, SequentialResult)
    assert (res.e_value, res.rejected, res.looks, res.n_pairs, res.rejected_at) == (1.0, False, 0, 0, None)
    res = paired_e_process([(True, True)] * 30, alpha=ALPHA)
    assert res.e_value == 1.0 and res.looks == 0


def test_alpha_spending_known_values() -> None:
    two = alpha_spending([0.5, 1.0], 0.05)
    np.testing.assert_allclose(two, [0.00557, 0.05], atol=5e-6)
    one = alpha_spending([0.5, 1.0], 0.025)
    np.testing.assert_allclose(one, [0.00153, 0.025], atol=5e-6)
    t = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(alpha_spending(t, 0.025), 2 - 2 * sps.norm.cdf(sps.norm.isf(0.0125) / np.sqrt(t)), rtol=1e-9)
    np.testing.assert_allclose(alpha_spending(t, 0.025, kind="pocock"), 0.025 * np.log(1 + (math.e - 1) * t), rtol=1e-12)
    assert np.all(np.diff(alpha_spending(t, 0.05)) > 0)


def test_spending_bounds_known_values() -> None:
    # Lan-DeMets O'Brien-Fleming, one-sided 0.025 (as gsDesign sfLDOF gives)
    np.testing.assert_allclose(spending_bounds([0.5, 1.0], 0.025), [2.9626, 1.9686], atol=2e-4)
    np.testing.assert_allclose(
        spending_bounds([0.25, 0.5, 0.75, 1.0], 0.025), [4.3326, 2.9631, 2.3590, 2.0141], atol=2e-4
    )
    np.testing.assert_allclose(spending_bounds([1.0], 0.025), [sps.norm.isf(0.025)], rtol=1e-12)
    # the bounds spend the alpha: check by simulating the canonical Brownian motion
    t = np.array([1 / 3, 2 / 3, 1.0])
    c = spending_bounds(t, 0.05, kind="pocock")
    rng = np.random.default_rng(0)
    inc = rng.normal(size=(200_000, 3)) * np.sqrt(np.diff(np.concatenate([[0.0], t])))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    first = np.where((z >= c).any(axis=1), (z >= c).argmax(axis=1), -1)
    spent = np.array([(first == j).mean() for j in range(3)]).cumsum()
    np.testing.assert_allclose(spent, alpha_spending(t, 0.05, kind="pocock"), atol=3 * math.sqrt(0.05 / 200_000) + 1e-4)


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: paired_e_process([(True, False)], alpha=1.5), "alpha"),
        (lambda: paired_e_process([(True, False)], alpha=0.05, prior=(0.0, 1.0)), "prior"),
        (lambda: paired_e_process([(True, 2)], alpha=0.05), "outcomes_sequence"),
        (lambda: paired_e_process([(True, False, True)], alpha=0.05), "outcomes_sequence"),
        (lambda: paired_e_process("yes", alpha=0.05), "outcomes_sequence"),
        (lambda: unpaired_e_process([True, "x"], [True], alpha=0.05), "base_seq"),
        (lambda: alpha_spending([0.6, 0.5], 0.05), "looks_info_fractions"),
        (lambda: alpha_spending([0.0, 1.0], 0.05), "looks_info_fractions"),
        (lambda: alpha_spending([0.5, 1.0], 0.05, kind="haybittle"), "obrien-fleming"),
        (lambda: spending_bounds([0.5, 1.2], 0.05), "looks_info_fractions"),
        (lambda: paired_e_process([(True, False)]).confidence_sequence(0.0), "alpha"),
    ],
)
def test_bad_inputs_raise_config_error(call, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        call()
