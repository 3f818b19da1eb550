"""Ranking, unit-variation and sim-vs-real methods against references and by simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize, special, stats

from workbench.stats.hierarchical import fit_beta_binomial, overdispersion_test, shrink_rates
from workbench.stats.ranking import bradley_terry, compact_letters
from workbench.stats.simreal import mmrv, ppi_mean


def _bt_reference(wins: np.ndarray) -> np.ndarray:
    """Bradley–Terry MLE by a generic optimiser on the log-likelihood."""
    k = wins.shape[0]

    def nll(theta: np.ndarray) -> float:
        th = np.concatenate([[0.0], theta])
        d = th[:, None] - th[None, :]
        return -float(np.sum(wins * (d - np.logaddexp(0, d))))

    res = optimize.minimize(nll, np.zeros(k - 1), method="BFGS", options={"gtol": 1e-10})
    th = np.concatenate([[0.0], res.x])
    return np.exp(th - th.mean())


def test_bradley_terry_is_the_maximum_likelihood_estimate():
    rng = np.random.default_rng(1)
    for _ in range(5):
        k = int(rng.integers(3, 8))
        true = np.exp(rng.normal(0, 1, k))
        wins = np.zeros((k, k))
        for i, j in itertools.combinations(range(k), 2):
            m = int(rng.integers(5, 30))
            w = rng.binomial(m, true[i] / (true[i] + true[j]))
            wins[i, j], wins[j, i] = w + 0.5, m - w + 0.5  # connected and never all-or-nothing
        np.testing.assert_allclose(bradley_terry(wins, prior=0.0), _bt_reference(wins), rtol=1e-5)


def test_bradley_terry_on_hand_computed_examples():
    # two players: the strength ratio is the ratio of wins
    s = bradley_terry(np.array([[0, 7], [3, 0]], dtype=float), prior=0.0)
    assert s[0] / s[1] == pytest.approx(7 / 3) and s[0] * s[1] == pytest.approx(1.0)
    # a balanced round robin in which each beats the next 2 games of 3 (a cycle): all equal
    cyc = np.array([[0, 2, 1], [1, 0, 2], [2, 1, 0]], dtype=float)
    np.testing.assert_allclose(bradley_terry(cyc, prior=0.0), 1.0)
    # the likelihood equations hold: each player's wins equal their expected wins
    w = np.array([[0, 6, 8, 3], [4, 0, 5, 7], [2, 5, 0, 6], [7, 3, 4, 0]], dtype=float)
    s = bradley_terry(w, prior=0.0)
    n = w + w.T
    np.testing.assert_allclose((n * s[:, None] / (s[:, None] + s[None, :])).sum(axis=1), w.sum(axis=1), rtol=1e-8)


def test_bradley_terry_stays_finite_when_one_variant_wins_everything():
    wins = np.array([[0, 10, 10], [0, 0, 6], [0, 4, 0]], dtype=float)
    s = bradley_terry(wins)
    assert np.all(np.isfinite(s)) and s[0] > s[1] > s[2]
    with pytest.raises(ValueError, match="non-negative square"):
        bradley_terry(np.ones((2, 3)))


def test_compact_letters_share_a_letter_exactly_when_not_different():
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(2, 9))
        names = [f"v{i}" for i in range(k)]
        diff = {(names[i], names[j]) for i, j in itertools.combinations(range(k), 2) if rng.random() < 0.4}
        letters = compact_letters(names, diff)
        for i, j in itertools.combinations(range(k), 2):
            share = bool(set(letters[names[i]]) & set(letters[names[j]]))
            # a shared letter means "not different"; different pairs never share one
            if (names[i], names[j]) in diff:
                assert not share, (letters, diff)
        assert all(letters[n] for n in names)
    # Piepho's example shape: a chain of overlaps
    assert compact_letters(list("abc"), {("a", "c")}) == {"a": "a", "b": "ab", "c": "b"}
    assert compact_letters(list("abc"), set()) == {"a": "a", "b": "a", "c": "a"}


def test_beta_binomial_fit_matches_a_scipy_likelihood_fit():
    rng = np.random.default_rng(4)
    p = rng.beta(6, 2, 40)
    n = rng.integers(10, 40, 40)
    k = rng.binomial(n, p)
    a, b, rho = fit_beta_binomial(k, n)

    def nll(t: np.ndarray) -> float:
        return -float(np.sum(stats.betabinom.logpmf(k, n, *np.exp(t))))

    ref = optimize.minimize(nll, np.log([5.0, 2.0]), method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 10000})
    np.testing.assert_allclose([a, b], np.exp(ref.x), rtol=2e-3)
    assert rho == pytest.approx(1 / (a + b + 1))
    # no extra variation: rho 0
    k0 = rng.binomial(30, 0.7, 50)
    assert fit_beta_binomial(k0, np.full(50, 30))[2] < 0.02


def test_shrunken_rates_are_the_beta_posterior():
    mean, lo, hi = shrink_rates(np.array([3]), np.array([10]), 2.0, 2.0)
    assert mean[0] == pytest.approx(5 / 14)
    assert lo[0] == pytest.approx(stats.beta.ppf(0.025, 5, 9)) and hi[0] == pytest.approx(stats.beta.ppf(0.975, 5, 9))


def test_overdispersion_statistic_is_pearson_chi2_and_holds_its_level():
    k, n = np.array([12, 15, 9, 18]), np.array([20, 20, 20, 20])
    t = overdispersion_test(k, n)
    ref = stats.chi2_contingency(np.c_[k, n - k], correction=False)
    assert t.statistic == pytest.approx(ref.statistic) and t.p_value == pytest.approx(ref.pvalue) and t.df == 3
    rng = np.random.default_rng(5)
    alarms = np.mean([overdispersion_test(rng.binomial(30, 0.6, 6), np.full(6, 30)).p_value < 0.05 for _ in range(1000)])
    assert alarms < 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1000)
    assert np.isnan(overdispersion_test(np.array([5]), np.array([10])).p_value)


def test_mmrv_follows_its_definition():
    rng = np.random.default_rng(6)
    for _ in range(50):
        s, r = rng.random(6), rng.random(6)
        want = np.mean([max((abs(r[i] - r[j]) for j in range(6) if (s[i] < s[j]) != (r[i] < r[j])), default=0.0) for i in range(6)])
        assert mmrv(s, r) == pytest.approx(want)
    assert mmrv(np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.3, 0.4])) == 0.0


def test_ppi_is_classic_ppi_at_lambda_one_and_covers():
    rng = np.random.default_rng(7)
    f_all = rng.binomial(1, 0.7, 500).astype(float)
    y = rng.binomial(1, 0.6, 30).astype(float)
    f = np.where(rng.random(30) < 0.8, y, 1 - y)
    est = ppi_mean(f_all, y, f, lam=1.0)
    want = f_all.mean() + (y - f).mean()
    se = np.sqrt(f_all.var(ddof=1) / 500 + (y - f).var(ddof=1) / 30)
    assert est.estimate == pytest.approx(want) and est.se == pytest.approx(se)
    # coverage of the power-tuned interval, and it beats the real runs alone when sim predicts well
    true_p, cover, gain = 0.55, 0, []
    for _ in range(400):
        latent = rng.random(2000)
        sim_all = (latent < true_p + 0.1).astype(float)  # a biased simulator, highly correlated with reality
        idx = rng.choice(2000, 40, replace=False)
        real = (latent[idx] < true_p).astype(float)
        rest = np.delete(sim_all, idx)
        e = ppi_mean(rest, real, sim_all[idx])
        cover += e.lo <= true_p <= e.hi
        gain.append(e.effective_real / 40)
    # at 40 real runs with rare sim/real disagreements it covers ~91 % (2,000 simulations: 90.8 %; 84 % at 20 runs)
    assert 0.88 <= cover / 400 <= 0.99
    assert np.median(gain) > 1.5
    with pytest.raises(ValueError, match="at least 2 real runs"):
        ppi_mean(f_all, y[:1], f[:1])


def test_kendall_and_pearson_used_are_scipy():
    # the fleet module calls scipy directly; this pins the convention (tau-b, two-sided)
    assert stats.kendalltau([1, 2, 3], [1, 3, 2]).statistic == pytest.approx(1 / 3)
    assert special.betaln(2, 3) == pytest.approx(np.log(1 / 12))


def test_bradley_terry_batch_equals_one_fit_at_a_time():
    from workbench.stats.ranking import bradley_terry_batch

    rng = np.random.default_rng(9)
    wins = rng.integers(0, 6, (30, 6, 6)).astype(float)
    wins[3, 0, :] = 0  # one variant that never wins in one replicate
    got = bradley_terry_batch(wins, tol=1e-12)
    want = np.stack([bradley_terry(w, tol=1e-12) for w in wins])
    np.testing.assert_allclose(got, want, rtol=1e-6)


# SimplerEnv's published per-policy success rates (simpler_env/utils/metrics.py, REAL_PERF and
# SIMPLER_PERF, github.com/simpler-env/SimplerEnv), three of its tasks
_SIMPLER_REAL = {
    "google_robot_pick_coke_can": [0.907, 0.853, 0.920, 0.760, 0.133, 0.293],
    "google_robot_move_near": [0.733, 0.633, 0.583, 0.450, 0.017, 0.350],
    "google_robot_place_apple_in_closed_top_drawer": [0.074, 0.185, 0.185, 0.407, 0.000, 0.000],
    "widowx_put_eggplant_in_basket": [0.000, 0.250, 0.400],
}
_SIMPLER_SIM = {
    "google_robot_pick_coke_can": [0.787, 0.857, 0.710, 0.567, 0.027, 0.170],
    "google_robot_move_near": [0.779, 0.442, 0.354, 0.317, 0.050, 0.042],
    "google_robot_place_apple_in_closed_top_drawer": [0.037, 0.065, 0.130, 0.213, 0.000, 0.000],
    "widowx_put_eggplant_in_basket": [0.000, 0.431, 0.569],
}


def _simpler_mmrv(perf_sim, perf_real):
    """SimplerEnv's mean_maximum_rank_violation, as published (the reference)."""
    perf_sim, perf_real = np.array(perf_sim), np.array(perf_real)
    out = []
    for i in range(len(perf_sim)):
        v = 0.0
        for j in range(len(perf_sim)):
            if (perf_sim[i] > perf_sim[j]) != (perf_real[i] > perf_real[j]):
                v = max(v, np.abs(perf_real[i] - perf_real[j]))
        out.append(v)
    return float(np.mean(out))


def _simpler_pearson(perf_sim, perf_real):
    a, b = np.array(perf_sim) - np.mean(perf_sim), np.array(perf_real) - np.mean(perf_real)
    return float(np.sum(a * b) / (np.sqrt(np.sum(a**2) * np.sum(b**2)) + 1e-8))


@pytest.mark.parametrize("task", sorted(_SIMPLER_REAL))
def test_mmrv_and_pearson_reproduce_simplerenv_on_its_published_rates(task):
    sim, real = np.array(_SIMPLER_SIM[task]), np.array(_SIMPLER_REAL[task])
    assert mmrv(sim, real) == pytest.approx(_simpler_mmrv(sim, real), abs=1e-12)
    assert stats.pearsonr(sim, real).statistic == pytest.approx(_simpler_pearson(sim, real), rel=1e-6)
