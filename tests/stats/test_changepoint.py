"""Change points: scan statistics against scipy, error rates by simulation, locations found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, mannwhitneyu

from workbench.model import ConfigError
from workbench.stats.changepoint import (
    change_points,
    p_chart_limits,
    rank_scan,
    rate_scan,
)


def test_rate_scan_is_half_the_g_test_of_each_split():
    rng = np.random.default_rng(0)
    x = (rng.random(40) < 0.6).astype(int)
    splits = np.arange(3, 38)
    got = rate_scan(x, splits)
    for t, g in zip(splits, got, strict=True):
        table = np.array([[x[:t].sum(), t - x[:t].sum()], [x[t:].sum(), 40 - t - x[t:].sum()]])
        if (table.sum(axis=0) == 0).any():
            assert g == 0
            continue
        stat = chi2_contingency(table, correction=False, lambda_="log-likelihood")[0]
        assert g == pytest.approx(stat / 2, rel=1e-9, abs=1e-12)


def test_rank_scan_is_the_mann_whitney_z_of_each_split():
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    ranks = np.argsort(np.argsort(x)) + 1.0
    splits = np.arange(2, 29)
    got = rank_scan(ranks, splits)
    n = x.size
    for t, z in zip(splits, got, strict=True):
        u = mannwhitneyu(x[:t], x[t:]).statistic
        want = abs(u - t * (n - t) / 2) / np.sqrt(t * (n - t) * (n + 1) / 12)
        assert z == pytest.approx(want, rel=1e-12)


def test_rows_are_scanned_like_single_sequences():
    rng = np.random.default_rng(2)
    x = (rng.random((4, 25)) < 0.5).astype(float)
    splits = np.arange(5, 21)
    both = rate_scan(x, splits)
    for i in range(4):
        np.testing.assert_allclose(both[i], rate_scan(x[i], splits))


@pytest.mark.parametrize("kind", ["rate", "continuous"])
def test_false_alarms_stay_at_alpha_without_a_change(kind):
    """No change: a change is reported in at most α of sequences (600 simulated)."""
    rng = np.random.default_rng(11)
    sims, n, alpha = 600, 60, 0.1
    alarms = 0
    for i in range(sims):
        x = (rng.random(n) < 0.7).astype(float) if kind == "rate" else rng.exponential(size=n)
        alarms += bool(change_points(x, kind=kind, alpha=alpha, n_perm=199, seed=i, max_changes=1))
    rate = alarms / sims
    se = np.sqrt(alpha * (1 - alpha) / sims)
    assert rate <= alpha + 2.5 * se, rate
    assert rate >= alpha - 4 * se, f"far below alpha: {rate} (the test would be needlessly weak)"


def test_a_planted_drop_is_found_near_where_it_was_planted():
    rng = np.random.default_rng(5)
    found, where = 0, []
    for i in range(100):
        x = np.r_[rng.random(50) < 0.9, rng.random(50) < 0.5].astype(float)
        cps = change_points(x, kind="rate", n_perm=499, seed=i, max_changes=1)
        if cps:
            found += 1
            where.append(cps[0].index)
    assert found >= 85, found
    assert abs(np.median(where) - 50) <= 4, np.median(where)


def test_a_shift_of_a_continuous_metric_is_found_whatever_its_distribution():
    rng = np.random.default_rng(6)
    x = np.r_[rng.lognormal(0, 1, 40), rng.lognormal(1.2, 1, 40)]
    cps = change_points(x, kind="continuous", seed=0)
    assert len(cps) >= 1
    first = min(cps, key=lambda c: abs(c.index - 40))
    assert abs(first.index - 40) <= 5
    assert first.after > first.before
    assert first.method == "max_rank_scan"


def test_two_changes_are_both_found_by_binary_segmentation():
    rng = np.random.default_rng(8)
    x = np.r_[rng.random(60) < 0.95, rng.random(60) < 0.3, rng.random(60) < 0.95].astype(float)
    cps = change_points(x, kind="rate", seed=0)
    idx = [c.index for c in cps]
    assert len(idx) == 2, idx
    assert abs(idx[0] - 60) <= 6 and abs(idx[1] - 120) <= 6, idx
    assert cps[0].after < cps[0].before and cps[1].after > cps[1].before


def test_splits_limit_where_a_change_may_be():
    x = np.r_[np.ones(23), np.zeros(17)]
    cps = change_points(x, kind="rate", splits=[10, 20, 30], min_size=3, seed=0)
    assert [c.index for c in cps] == [20]


def test_the_p_value_is_a_permutation_p_value():
    x = np.r_[np.ones(20), np.zeros(20)]
    cp = change_points(x, kind="rate", n_perm=99, seed=0)[0]
    assert cp.p_value == pytest.approx(1 / 100)  # no permutation is as strong as the perfect split
    assert (cp.index, cp.before, cp.after, cp.n_before, cp.n_after) == (20, 1.0, 0.0, 20, 20)


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="kind 'binary' is not valid"):
        change_points([0, 1], kind="binary")
    with pytest.raises(ConfigError, match="missing value"):
        change_points([0, 1, np.nan])
    with pytest.raises(ConfigError, match="0/1 outcomes; got \\[0.5\\]"):
        change_points([0, 1, 0.5])
    with pytest.raises(ConfigError, match="alpha"):
        change_points([0, 1], alpha=1.5)


def test_short_or_constant_sequences_have_no_change():
    assert change_points([1, 0, 1]) == []
    assert change_points(np.zeros(50)) == []
    assert change_points(np.full(50, 3.0), kind="continuous") == []


def test_p_chart_limits_follow_the_textbook_formula():
    k, n = np.array([45, 40, 30, 2]), np.array([50, 50, 40, 4])
    p, lcl, ucl = p_chart_limits(k, n)
    pbar = k.sum() / n.sum()
    assert p == pytest.approx(pbar)
    half = 3 * np.sqrt(pbar * (1 - pbar) / n)
    np.testing.assert_allclose(lcl, np.clip(pbar - half, 0, 1))
    np.testing.assert_allclose(ucl, np.clip(pbar + half, 0, 1))
    assert ucl[-1] == 1.0  # clipped
