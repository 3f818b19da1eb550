"""Ranking k variants: Bradley–Terry strengths and a compact letter display.

* :func:`bradley_terry` -- maximum-likelihood strengths from pairwise wins (ties count
  half to each side), by the MM algorithm of Hunter (2004), *MM algorithms for
  generalized Bradley–Terry models*, Ann. Statist. 32(1). A small symmetric prior
  (``prior`` virtual ties of every pair) keeps the estimate finite when one variant
  wins or loses every comparison; strengths are normalised to a geometric mean of 1.
* :func:`compact_letters` -- the insert-and-absorb algorithm of Piepho (2004), *An
  algorithm for a letter-based representation of all-pairwise comparisons*, J. Comput.
  Graph. Stat. 13(2): variants that share a letter are not significantly different.

Examples
--------
>>> import numpy as np
>>> wins = np.array([[0, 8, 9], [2, 0, 6], [1, 4, 0]], dtype=float)  # wins[i, j]: i beat j
>>> s = bradley_terry(wins)
>>> [int(i) for i in np.argsort(-s)]
[0, 1, 2]
>>> compact_letters(["a", "b", "c"], {("a", "c")})
{'a': 'a', 'b': 'ab', 'c': 'b'}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["bradley_terry", "bradley_terry_batch", "compact_letters", "rank_matrix"]


def bradley_terry(wins: np.ndarray, *, prior: float = 0.5, tol: float = 1e-10, max_iter: int = 10_000,
                  start: np.ndarray | None = None) -> np.ndarray:
    """Bradley–Terry strengths ``s`` (P(i beats j) = s_i / (s_i + s_j)) from a k × k
    matrix of wins (``wins[i, j]``: times i beat j; a tie adds 0.5 to both).

    Parameters
    ----------
    wins
        Non-negative k × k matrix; the diagonal is ignored.
    prior
        Virtual ties added to every pair that met at least once (0: the plain MLE, which
        does not exist when a variant wins or loses all its comparisons).
    tol, max_iter
        Convergence of the MM iterations (largest change of log strength).
    start
        Strengths to start from (e.g. the estimate on the full data, for bootstrap refits).

    Returns
    -------
    numpy.ndarray
        Strengths, geometric mean 1. A variant that never met another gets 1.
    """
    w = np.array(wins, dtype=np.float64)
    k = w.shape[0]
    if w.shape != (k, k) or np.any(w < 0):
        msg = f"wins must be a non-negative square matrix, got shape {w.shape}"
        raise ValueError(msg)
    np.fill_diagonal(w, 0.0)
    n = w + w.T
    met = n > 0
    w = w + prior / 2 * met
    n = w + w.T
    total_wins = w.sum(axis=1)
    s = np.ones(k) if start is None else np.array(start, dtype=np.float64)
    active = n.sum(axis=1) > 0
    for _ in range(max_iter):
        denom = (n / (s[:, None] + s[None, :])).sum(axis=1)
        new = np.where(active & (denom > 0), total_wins / np.where(denom > 0, denom, 1.0), 1.0)
        new = np.where(active, np.maximum(new, 1e-300), 1.0)
        new /= np.exp(np.mean(np.log(new[active]))) if active.any() else 1.0
        change = float(np.max(np.abs(np.log(new) - np.log(s))))
        s = new
        if change < tol:
            break
    return s


def bradley_terry_batch(wins: np.ndarray, *, prior: float = 0.5, tol: float = 1e-7, max_iter: int = 10_000,
                        start: np.ndarray | None = None) -> np.ndarray:
    """:func:`bradley_terry` of many win matrices at once (``wins``: B × k × k, e.g.
    bootstrap replicates), iterated together until every one has converged.

    Returns
    -------
    numpy.ndarray
        B × k strengths, each row with geometric mean 1 over its active variants.
    """
    w = np.array(wins, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2] or np.any(w < 0):
        msg = f"wins must be non-negative B × k × k, got shape {w.shape}"
        raise ValueError(msg)
    b, k, _ = w.shape
    idx = np.arange(k)
    w[:, idx, idx] = 0.0
    n = w + np.swapaxes(w, 1, 2)
    w = w + prior / 2 * (n > 0)
    n = w + np.swapaxes(w, 1, 2)
    total = w.sum(axis=2)
    active = n.sum(axis=2) > 0
    s = np.ones((b, k)) if start is None else np.broadcast_to(np.asarray(start, dtype=np.float64), (b, k)).copy()
    for _ in range(max_iter):
        denom = (n / (s[:, :, None] + s[:, None, :])).sum(axis=2)
        new = np.where(active & (denom > 0), total / np.where(denom > 0, denom, 1.0), 1.0)
        new = np.where(active, np.maximum(new, 1e-300), 1.0)
        logs = np.where(active, np.log(new), 0.0)
        mean = logs.sum(axis=1) / np.maximum(active.sum(axis=1), 1)
        new = np.where(active, new / np.exp(mean)[:, None], 1.0)
        change = float(np.max(np.abs(np.log(new) - np.log(s)))) if b else 0.0
        s = new
        if change < tol:
            break
    return s


def rank_matrix(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each column of *scores* (rows: replicates, columns: variants;
    higher is better; ties share the better rank)."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(-np.asarray(scores, dtype=np.float64), method="min", axis=1), dtype=np.int64)


def compact_letters(order: Sequence[str], different: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Letters per variant such that two variants share a letter exactly when they are
    not significantly different (Piepho's insert-and-absorb).

    Parameters
    ----------
    order
        Variants, best first (letters are handed out in this order: "a" to the best).
    different
        Pairs found significantly different (either order).

    Returns
    -------
    dict
        Variant → its letters (e.g. ``"ab"``).
    """
    names = list(order)
    idx = {v: i for i, v in enumerate(names)}
    diff = {frozenset((idx[a], idx[b])) for a, b in different if a in idx and b in idx and a != b}
    columns: list[set[int]] = [set(range(len(names)))]
    for pair in sorted(diff, key=sorted):
        i, j = sorted(pair)
        new: list[set[int]] = []
        for col in columns:
            if i in col and j in col:  # insert: split the column in two
                new.extend([col - {i}, col - {j}])
            else:
                new.append(col)
        # absorb: drop columns contained in another
        new = [c for c in new if c]
        kept: list[set[int]] = []
        for c in sorted(new, key=len, reverse=True):
            if not any(c <= other for other in kept):
                kept.append(c)
        columns = kept
    # letters in order of the best variant in each column
    columns.sort(key=lambda c: (min(c), -len(c)))
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = dict.fromkeys(names, "")
    for n_col, col in enumerate(columns):
        tag = letters[n_col] if n_col < len(letters) else f"<{n_col}>"
        for i in sorted(col):
            out[names[i]] += tag
    return out
