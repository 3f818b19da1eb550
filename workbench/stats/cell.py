"""The tests of one comparison cell: harm, benefit and non-inferiority, one method each.

A *cell* compares a candidate against a baseline on one metric in one combination of
factors. :func:`rate_cell`, :func:`shift_cell` and :func:`time_cell` run, with one
method per cell, the three one-sided tests the gate and the verdicts need:

* **harm** -- H1: the candidate is worse (lower success, longer time...). This is the
  gate's test. Its attainable p-values and their null probabilities (``support``) go
  to the family's step-down test (:func:`workbench.stats.multiplicity.score_ordered_holm`
  for rates, :func:`~workbench.stats.multiplicity.discrete_holm` otherwise), so a cell
  whose data cannot reach the level leaves the family instead of diluting it.
* **benefit** -- H1: the candidate is better (reported, never gating).
* **non-inferiority** -- with a margin δ: H1: the candidate is worse by less than δ
  (absolute for rates, a fraction of the baseline's median for continuous metrics).

:meth:`CellTest.interval` inverts the *same* harm test at any level, so a cell that is
a regression at its critical level always has an interval on the harmful side of 0.

Methods
-------
* rates, unpaired: one-sided Fisher exact test conditional on the margins (its
  discreteness and scores are what the family's step-down exploits); interval by inverting it
  (:func:`workbench.stats.rates.unpaired_rate_test`); non-inferiority: Chan's exact
  unconditional score test.
* rates, paired: exact McNemar test on the discordant pairs and its inversion
  (:func:`workbench.stats.rates.paired_rate_test`); non-inferiority: Chan's test on the
  marginal counts (positively correlated pairs make it conservative).
* continuous, unpaired: Mann–Whitney with the Hodges–Lehmann shift and its interval;
  paired: Wilcoxon signed-rank with the Walsh-average estimate
  (:mod:`workbench.stats.continuous`).
* counts (slips, recoveries): difference of means by a studentized bootstrap
  (bootstrap-t), paired or not; Welch's t below 5 runs a side.
* time to success: restricted mean time to success (RMST), failures censored at the
  end of their episode (:func:`workbench.stats.survival.time_to_success_test`).

Examples
--------
>>> import numpy as np
>>> c = rate_cell(np.r_[np.ones(18), np.zeros(2)], np.r_[np.ones(10), np.zeros(10)], higher_is_better=True)
>>> c.method, round(c.p_harm, 4), c.interval(0.05)[1] < 0
('fisher_exact_conditional', 0.0069, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from workbench.model import ConfigError

__all__ = ["CellTest", "mean_cell", "rate_cell", "sequential_rate_cell", "shift_cell", "time_cell"]

Support = tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True)
class CellTest:
    """The three one-sided tests of one cell and the interval of its harm test.

    Attributes
    ----------
    method : str
        The harm test's method (e.g. ``"fisher_exact_conditional"``).
    estimate : float
        Candidate − baseline: risk difference, Hodges–Lehmann shift, RMST difference.
    p_harm, p_benefit, p_ni : float
        One-sided p-values (``p_ni`` NaN without a margin).
    support_harm, support_benefit, support_ni
        ``(values, probs)`` of each discrete test (None: continuous, ``F(c) = c``).
    score_harm, score_benefit
        For conditional rate tests, the score of each attainable p-value (the shortfall
        in runs, :attr:`workbench.stats.rates.RateTest.scores`); None otherwise.
    ni_method : str
        The non-inferiority test's method ("" without a margin).
    """

    method: str
    estimate: float
    p_harm: float
    p_benefit: float
    p_ni: float = math.nan
    support_harm: Support = None
    support_benefit: Support = None
    support_ni: Support = None
    ni_method: str = ""
    _interval: Callable[[float], tuple[float, float]] | None = field(default=None, repr=False, compare=False)
    score_harm: np.ndarray | None = field(default=None, repr=False, compare=False)
    score_benefit: np.ndarray | None = field(default=None, repr=False, compare=False)

    def interval(self, level: float) -> tuple[float, float]:
        """``(lower, upper)`` for candidate − baseline, each bound one-sided at *level*
        (so together a ``1 − 2·level`` interval), from the harm test's own method."""
        if self._interval is None or not 0 < level < 0.5:
            return (math.nan, math.nan)
        return self._interval(level)


def _two_sided(p_less: float, p_greater: float) -> float:
    return min(1.0, 2 * min(p_less, p_greater))


def rate_cell(
    x: np.ndarray,
    y: np.ndarray,
    *,
    higher_is_better: bool | None = True,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    margin: float | None = None,
) -> CellTest:
    """Tests of a success rate: *x* baseline, *y* candidate 0/1 outcomes (known only).

    *pairs*: the paired outcomes ``(baseline, candidate)``; then the tests are McNemar's
    on them. *margin*: absolute non-inferiority margin (``0.1`` = 10 points).

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1.0]); c = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 1.0])
    >>> rate_cell(b, c, pairs=(b, c)).method
    'mcnemar_exact'
    """
    from workbench.stats.rates import paired_rate_test, unpaired_rate_test

    kx, ky = int(round(float(np.sum(x)))), int(round(float(np.sum(y))))
    if x.size == 0 or y.size == 0:
        msg = "a rate cell needs at least one known outcome on each side"
        raise ConfigError(msg)
    harm_alt = "less" if higher_is_better is not False else "greater"
    good_alt = "greater" if harm_alt == "less" else "less"
    if pairs is not None:
        pb, pc = (np.asarray(a) > 0.5 for a in pairs)
        b_only, c_only, n = int(np.sum(pb & ~pc)), int(np.sum(~pb & pc)), int(pb.size)
        harm = paired_rate_test(b_only, c_only, n, alternative=harm_alt)
        good = paired_rate_test(b_only, c_only, n, alternative=good_alt)
        kx, ky, nx, ny = int(pb.sum()), int(pc.sum()), n, n
    else:
        nx, ny = int(x.size), int(y.size)
        harm = unpaired_rate_test(kx, nx, ky, ny, alternative=harm_alt, method="conditional")
        good = unpaired_rate_test(kx, nx, ky, ny, alternative=good_alt, method="conditional")
    p_ni, s_ni, ni_method = math.nan, None, ""
    if margin is not None and margin > 0 and higher_is_better is not None:
        # H1: worse by less than the margin (for a lower-is-better rate, mirrored)
        ni = unpaired_rate_test(kx, nx, ky, ny, alternative=good_alt, method="chan", delta=margin if good_alt == "greater" else -margin)
        p_ni, s_ni, ni_method = ni.p_value, ni.support, ni.method
    p_h, p_g = harm.p_value, good.p_value
    s_h, s_g = harm.support, good.support
    sc_h, sc_g = harm.scores, good.scores
    if higher_is_better is None:  # no harmful direction: one two-sided test, no discreteness used
        p_h = p_g = _two_sided(harm.p_value, good.p_value)
        s_h = s_g = sc_h = sc_g = None

    def interval(level: float) -> tuple[float, float]:
        lo, hi = harm.interval(level)
        return float(lo), float(hi)

    return CellTest(harm.method, float(harm.estimate), float(p_h), float(p_g), float(p_ni), s_h, s_g, s_ni, ni_method, interval,
                    sc_h, sc_g)


def shift_cell(
    x: np.ndarray,
    y: np.ndarray,
    *,
    higher_is_better: bool | None = False,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    margin: float | None = None,
) -> CellTest:
    """Tests of a location shift of a continuous metric (*x* baseline, *y* candidate).

    *margin*: relative non-inferiority margin, a fraction of the baseline's median.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = shift_cell(rng.normal(10, 1, 20), rng.normal(12, 1, 20), higher_is_better=False)
    >>> c.method, c.p_harm < 0.001, c.interval(0.025)[0] > 0
    ('mann_whitney_asymptotic', True, True)
    """
    from workbench.stats.continuous import paired_shift_test, shift_test

    harm_alt = "greater" if higher_is_better is False else "less"
    good_alt = "less" if harm_alt == "greater" else "greater"
    if pairs is not None:
        test = lambda alt, delta=0.0: paired_shift_test(pairs[0], pairs[1], alternative=alt, delta=delta)
    else:
        test = lambda alt, delta=0.0: shift_test(x, y, alternative=alt, delta=delta)
    harm, good = test(harm_alt), test(good_alt)
    p_ni, ni_method = math.nan, ""
    base = float(np.median(x)) if x.size else math.nan
    if margin is not None and margin > 0 and higher_is_better is not None and math.isfinite(base):
        d = abs(base) * margin
        ni = test(good_alt, d if harm_alt == "greater" else -d)  # H1: shift below +d (or above −d)
        p_ni, ni_method = ni.p_value, ni.method
    p_h, p_g = harm.p_value, good.p_value
    if higher_is_better is None:
        p_h = p_g = _two_sided(harm.p_value, good.p_value)

    def interval(level: float) -> tuple[float, float]:
        lo, hi = harm.interval(level)
        return float(lo), float(hi)

    return CellTest(harm.method, float(harm.estimate), float(p_h), float(p_g), float(p_ni), None, None, None, ni_method, interval)


def mean_cell(
    x: np.ndarray,
    y: np.ndarray,
    *,
    higher_is_better: bool | None = False,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    margin: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> CellTest:
    """Tests of the difference of means (counts such as slips or recoveries, where most
    runs tie at 0 and a location shift says nothing): studentized bootstrap (bootstrap-t),
    Welch's t below 5 runs a side (:func:`workbench.stats.continuous.mean_test`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = mean_cell(rng.poisson(0.1, 80).astype(float), rng.poisson(0.6, 80).astype(float), higher_is_better=False)
    >>> c.method, c.p_harm < 0.01, c.interval(0.025)[0] > 0
    ('bootstrap_t', True, True)
    """
    from workbench.stats.continuous import mean_test

    harm_alt = "greater" if higher_is_better is False else "less"
    good_alt = "less" if harm_alt == "greater" else "greater"
    a, b = (pairs if pairs is not None else (x, y))

    def test(alt: str, delta: float = 0.0):
        return mean_test(a, b, alternative=alt, delta=delta, paired=pairs is not None, n_boot=n_boot, seed=seed)

    harm, good = test(harm_alt), test(good_alt)
    p_ni, ni_method = math.nan, ""
    base = float(np.mean(x)) if x.size else math.nan
    if margin is not None and margin > 0 and higher_is_better is not None and math.isfinite(base) and base != 0:
        d = abs(base) * margin
        ni = test(good_alt, d if harm_alt == "greater" else -d)
        p_ni, ni_method = ni.p_value, ni.method
    p_h, p_g = harm.p_value, good.p_value
    if higher_is_better is None:
        p_h = p_g = _two_sided(harm.p_value, good.p_value)

    def interval(level: float) -> tuple[float, float]:
        lo, hi = harm.interval(level)
        return float(lo), float(hi)

    return CellTest(harm.method, float(harm.estimate), float(p_h), float(p_g), float(p_ni), None, None, None, ni_method, interval)


def time_cell(
    base_time: np.ndarray,
    base_event: np.ndarray,
    cand_time: np.ndarray,
    cand_event: np.ndarray,
    *,
    margin: float | None = None,
) -> CellTest:
    """Tests of the time to success as time to event: failures are censored at the end
    of their episode, never dropped; estimate = RMST(candidate) − RMST(baseline) up to
    the shorter arm's longest observed time. Longer is worse.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> t_b = rng.uniform(4, 8, 20)                      # the baseline succeeds in 4-8 s
    >>> t_c = np.r_[rng.uniform(4, 8, 10), np.full(10, 30.0)]  # as fast, but half time out at 30 s
    >>> ok_c = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    >>> c = time_cell(np.r_[t_b, 30.0], np.r_[np.ones(20, bool), False], t_c, ok_c)
    >>> c.estimate > 0, c.p_harm < 0.01
    (True, True)
    """
    from workbench.stats.survival import time_to_success_test

    harm = time_to_success_test(base_time, base_event, cand_time, cand_event, alternative="greater", method="rmst")
    good = time_to_success_test(base_time, base_event, cand_time, cand_event, alternative="less", method="rmst", tau=harm.tau)
    p_ni, ni_method = math.nan, ""
    if margin is not None and margin > 0 and math.isfinite(harm.estimate) and harm.tau is not None:
        # H1: the RMST difference is below margin × the baseline's RMST
        from scipy.stats import norm

        from workbench.stats.survival import rmst

        ref = rmst(base_time, base_event, harm.tau).estimate * margin
        se = harm.std_err
        if se > 0:
            p_ni = float(norm.cdf((harm.estimate - ref) / se))
            ni_method = "rmst_noninferiority"

    def interval(level: float) -> tuple[float, float]:
        lo, hi = harm.interval(level)
        return float(lo), float(hi)

    return CellTest(harm.method, float(harm.estimate), float(harm.p_value), float(good.p_value), p_ni, None, None, None,
                    ni_method, interval)


def sequential_rate_cell(
    x: np.ndarray,
    y: np.ndarray,
    *,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> CellTest:
    """Anytime-valid harm test of a success rate, for a team that adds runs and re-checks:
    the e-process of :mod:`workbench.stats.sequential` on the runs in order of arrival
    (paired: the discordant pairs; unpaired: the k-th runs of each side paired), its
    p-value ``min(1, 1 / max E)`` valid at every look and whenever the team stops.
    There is no interval (``interval`` gives NaN): the verdict comes from the test.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.ones(30); c = np.r_[np.zeros(12), np.ones(18)]
    >>> t = sequential_rate_cell(b, c, pairs=(b, c))
    >>> t.method, t.p_harm < 0.01
    ('e_process_paired', True)
    """
    from workbench.stats.sequential import paired_e_process, unpaired_e_process

    if pairs is not None:
        pb, pc = (np.asarray(a) > 0.5 for a in pairs)
        res = paired_e_process(list(zip(pb.tolist(), pc.tolist(), strict=True)))
        method, est = "e_process_paired", float(pc.mean() - pb.mean())
    else:
        res = unpaired_e_process((np.asarray(x) > 0.5).tolist(), (np.asarray(y) > 0.5).tolist())
        method, est = "e_process_unpaired", float(np.mean(y) - np.mean(x))
    p = float(min(1.0, 1.0 / res.e_max)) if res.e_max > 0 else 1.0
    return CellTest(method, est, p, 1.0, math.nan, None, None, None, "", None)
