"""When did behavior change? Change points in a sequence of runs, with permutation p-values.

The runs of one cell, in the order they were made, are a sequence of outcomes (0/1) or
values. :func:`change_points` looks for the split where the sequence before differs
most from the sequence after and asks how often a split that strong appears when the
order carries no information (the runs shuffled): a permutation p-value, exact under
"no change" whatever the rate, the distribution or the number of runs.

Statistics
----------
* rates: the Bernoulli likelihood ratio of "one rate before, another after" against
  "one rate throughout", maximised over the split. It is the generalised (unknown
  post-change rate) binomial CUSUM statistic; at one split it is the G-test of the
  2×2 table before/after × success/failure.
* continuous and count metrics: the maximally selected, standardised Mann–Whitney
  statistic (Pettitt's rank statistic divided by its null standard deviation at each
  split), so a shift of the median is found whatever the distribution's shape.

More than one change is found by binary segmentation: once a split is significant,
each side is searched again at the same level, down to *min_size* runs a side.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> x = np.r_[rng.random(60) < 0.9, rng.random(40) < 0.3]  # 90 % for 60 runs, then 30 %
>>> [(c.index, round(c.before, 2), round(c.after, 2), c.p_value) for c in change_points(x, kind="rate", seed=1)]
[(58, 0.95, 0.33, 0.0005)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.model import ConfigError

__all__ = ["KINDS", "ChangePoint", "change_points", "p_chart_limits", "rank_scan", "rate_scan"]

KINDS = ("rate", "continuous")
"""Kinds of sequence :func:`change_points` takes."""
_CHUNK = 256  # permutations scanned at once (memory: _CHUNK × n floats)


@dataclass(frozen=True)
class ChangePoint:
    """One change: the runs from :attr:`index` on behave differently from those before.

    Attributes
    ----------
    index : int
        Position of the first run after the change (0 < index < n).
    p_value : float
        Permutation p-value of the strongest split of the segment it was found in.
    statistic : float
        The scan statistic at the split (log-likelihood ratio for rates, |z| for ranks).
    before, after : float
        Mean (rate) of the segment's runs before and after the split.
    n_before, n_after : int
        Runs of the segment on each side.
    method : str
        ``"bernoulli_lr_scan"`` or ``"max_rank_scan"``.
    """

    index: int
    p_value: float
    statistic: float
    before: float
    after: float
    n_before: int
    n_after: int
    method: str


def _xlogx(k: np.ndarray, n: np.ndarray | np.floating) -> np.ndarray:
    """k·log(k/n), 0 where k = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = k * np.log(k / n)
    return np.where(k > 0, out, 0.0)


def rate_scan(x: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Log-likelihood ratio of a change at each of *splits* (rows of *x* scanned at once).

    Parameters
    ----------
    x
        0/1 outcomes, shape ``(n,)`` or ``(m, n)`` (one sequence per row).
    splits
        Split positions t (the first run after the change), ``0 < t < n``.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(splits),)`` or ``(m, len(splits))``; twice it is the G statistic of
        the 2×2 table before/after × success/failure.

    Examples
    --------
    >>> rate_scan(np.array([1, 1, 1, 0, 0, 0]), np.array([3])).round(4)
    array([4.1589])
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    c = np.cumsum(x, axis=-1)
    total = c[..., -1:]
    t = splits.astype(float)
    k1 = c[..., splits - 1]
    k2 = total - k1
    n1, n2 = t, n - t
    ll = (_xlogx(k1, n1) + _xlogx(n1 - k1, n1) + _xlogx(k2, n2) + _xlogx(n2 - k2, n2)
          - _xlogx(total, np.float64(n)) - _xlogx(n - total, np.float64(n)))
    return np.maximum(ll, 0.0)


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def rank_scan(ranks: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """|z| of the Mann–Whitney statistic of before against after at each of *splits*.

    Parameters
    ----------
    ranks
        Ranks of the values (``scipy.stats.rankdata``), shape ``(n,)`` or ``(m, n)``.
    splits
        Split positions, ``0 < t < n``.

    Returns
    -------
    numpy.ndarray
        |U − t(n−t)/2| / √(t(n−t)(n+1)/12) per split (no tie correction: the
        permutation test does not need one).

    Examples
    --------
    >>> rank_scan(np.array([1.0, 2, 3, 4, 5, 6]), np.array([3])).round(4)
    array([1.964])
    """
    ranks = np.asarray(ranks, dtype=float)
    n = ranks.shape[-1]
    c = np.cumsum(ranks, axis=-1)
    t = splits.astype(float)
    u = c[..., splits - 1] - t * (t + 1) / 2  # U of the runs before the split
    sd = np.sqrt(t * (n - t) * (n + 1) / 12.0)
    return np.abs(u - t * (n - t) / 2) / sd


def _scan(values: np.ndarray, kind: str, splits: np.ndarray) -> np.ndarray:
    return rate_scan(values, splits) if kind == "rate" else rank_scan(values, splits)


def _best_split(x: np.ndarray, kind: str, splits: np.ndarray, n_perm: int, rng: np.random.Generator) -> tuple[int, float, float]:
    """(split, statistic, permutation p-value) of the strongest split of *x*."""
    values = x if kind == "rate" else _ranks(x)
    stats = _scan(values, kind, splits)
    best = int(np.argmax(stats))
    observed = float(stats[best])
    if not observed > 0 or not np.isfinite(observed):
        return int(splits[best]), 0.0, 1.0
    tol = observed * 1e-9  # ties of the statistic count as "as strong"
    hits = 0
    done = 0
    while done < n_perm:
        m = min(_CHUNK, n_perm - done)
        perm = rng.permuted(np.broadcast_to(values, (m, values.size)), axis=1)
        hits += int(np.count_nonzero(_scan(perm, kind, splits).max(axis=1) >= observed - tol))
        done += m
    return int(splits[best]), observed, (hits + 1) / (n_perm + 1)


def change_points(
    x: Sequence[float] | np.ndarray,
    *,
    kind: str = "rate",
    alpha: float = 0.05,
    min_size: int = 5,
    max_changes: int = 3,
    splits: Sequence[int] | np.ndarray | None = None,
    n_perm: int = 1999,
    seed: int = 0,
) -> list[ChangePoint]:
    """Changes in the sequence *x* (runs in order), each with a permutation p-value.

    Parameters
    ----------
    x
        One value per run in the order the runs were made: 0/1 for rates (booleans
        accepted), numbers otherwise. Missing values (NaN) must be removed first.
    kind
        ``"rate"`` (Bernoulli likelihood-ratio scan) or ``"continuous"`` (rank scan).
    alpha
        A split is a change when its permutation p-value is at most this. With no change
        at all, a change is reported with probability at most *alpha* (the first split's
        test is exact; later splits are searched only once a change was found).
    min_size
        Fewest runs on each side of a change.
    max_changes
        Most changes reported.
    splits
        Allowed split positions (e.g. only where a checkpoint changes); default every
        position leaving *min_size* runs a side.
    n_perm
        Permutations per test; the smallest attainable p-value is 1/(n_perm + 1).
    seed
        Seed of the permutations (results are reproducible).

    Returns
    -------
    list of ChangePoint
        In order of :attr:`ChangePoint.index`; empty when no change is significant.

    Raises
    ------
    ConfigError
        On an unknown *kind*, a non 0/1 value for a rate, NaN values, or bad settings.

    Examples
    --------
    >>> change_points([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], min_size=3, seed=0)[0].index
    6
    >>> change_points(np.ones(40))
    []
    """
    if kind not in KINDS:
        msg = f"kind {kind!r} is not valid; choose from {list(KINDS)}"
        raise ConfigError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must be in (0, 1), got {alpha!r}"
        raise ConfigError(msg)
    if int(min_size) < 1 or int(max_changes) < 0 or int(n_perm) < 1:
        msg = f"min_size, n_perm must be ≥ 1 and max_changes ≥ 0; got {min_size}, {n_perm}, {max_changes}"
        raise ConfigError(msg)
    arr = np.asarray(x, dtype=float).reshape(-1)
    if np.isnan(arr).any():
        msg = f"{int(np.isnan(arr).sum())} missing value(s) in the sequence: drop them first"
        raise ConfigError(msg)
    if kind == "rate" and not np.isin(arr, (0.0, 1.0)).all():
        bad = arr[~np.isin(arr, (0.0, 1.0))][:3].tolist()
        msg = f"a rate sequence holds 0/1 outcomes; got {bad}"
        raise ConfigError(msg)
    allowed = np.unique(np.asarray(splits, dtype=np.int64)) if splits is not None else None
    rng = np.random.default_rng(seed)
    found: list[ChangePoint] = []
    todo = [(0, arr.size)]
    method = "bernoulli_lr_scan" if kind == "rate" else "max_rank_scan"
    while todo and len(found) < max_changes:
        lo, hi = todo.pop(0)
        cand = np.arange(lo + min_size, hi - min_size + 1)
        if allowed is not None:
            cand = np.intersect1d(cand, allowed)
        if cand.size == 0:
            continue
        seg = arr[lo:hi]
        t, stat, p = _best_split(seg, kind, cand - lo, int(n_perm), rng)
        if p > alpha:
            continue
        before, after = seg[: t], seg[t:]
        found.append(ChangePoint(index=lo + t, p_value=p, statistic=stat, before=float(before.mean()),
                                 after=float(after.mean()), n_before=int(before.size), n_after=int(after.size),
                                 method=method))
        todo += [(lo, lo + t), (lo + t, hi)]
    return sorted(found, key=lambda c: c.index)


def p_chart_limits(k: np.ndarray, n: np.ndarray, *, sigmas: float = 3.0, center: float | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Center line and limits of a p-chart: p̄ ± *sigmas*·√(p̄(1−p̄)/nᵢ), clipped to [0, 1].

    Parameters
    ----------
    k, n
        Successes and runs of each window.
    sigmas
        Width of the limits in standard errors (3: the Shewhart chart).
    center
        p̄ (default: all successes over all runs, the chart's Phase I estimate).

    Returns
    -------
    (float, numpy.ndarray, numpy.ndarray)
        p̄, the lower and the upper limit of each window.

    Examples
    --------
    >>> p, lcl, ucl = p_chart_limits(np.array([18, 9]), np.array([20, 20]))
    >>> round(p, 3), lcl.round(3).tolist(), ucl.round(3).tolist()
    (0.675, [0.361, 0.361], [0.989, 0.989])
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    total = float(n.sum())
    p = float(k.sum() / total) if center is None and total > 0 else (math.nan if center is None else float(center))
    with np.errstate(divide="ignore", invalid="ignore"):
        half = sigmas * np.sqrt(p * (1 - p) / n)
    return p, np.clip(p - half, 0.0, 1.0), np.clip(p + half, 0.0, 1.0)
