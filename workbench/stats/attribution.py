"""What explains a metric: Type II tests, Shapley (LMG) shares, confounding, "where".

:func:`attribute` answers "how much of this metric's run-to-run variation goes with each
factor (and interaction), and is that more than chance?" for one metric:

* **tests** -- a Type II test per term (main effects and interactions up to
  ``max_order``): the term added to every other term that does not contain it.
  Continuous metrics: OLS F-test of the Type II sum of squares against the residual
  mean square of the full model (as ``statsmodels.stats.anova.anova_lm(typ=2)``).
  Rates: likelihood-ratio test of a binomial (logit) GLM, the drop in deviance against
  chi-square. The p-value is what says whether a term matters.
* **shares** -- the explained variation (R² for continuous metrics; deviance explained,
  1 − D/D_null, for rates) of the full model split over the terms by Shapley values
  (LMG: the gain of a term when it enters, averaged over orderings). Interactions are
  players of their own, *hierarchically*: only orderings in which an interaction enters
  after all of its margins count (a model with A × B but not A is never fitted), as in
  Grömping's LMG for models with interactions. The shares add up to the total
  explained share exactly.
* **intervals** -- bias-shifted bootstrap percentile intervals of every share,
  resampling runs within each level combination of the factors (so the design stays
  the same).
* **warnings** -- factors that cannot be told apart get a warning and no share:
  aliased (the same partition of the runs), nested (one factor's levels each fall
  inside one level of the other) or confounded (Cramér's V > 0.8 between the two).
  Such factors enter the model together as one player, reported as the row
  ``"A + B"`` with their joint share. A factor with a level of fewer than 2 runs keeps
  its place in the model but its share is withheld (``Attribution.withheld``) and a
  constant factor is left out.

Shares are not tests. A factor without any effect still explains some variation in a
finite sample -- on average about its degrees of freedom over the number of runs
(a 12-level factor over 120 runs: ≈ 11/119 ≈ 9 % of the unexplained variation) -- so
the share of a noise factor is *not* zero at small n; its p-value is uniform and tells
it apart. A factor correlated with one that matters (an unbalanced design) takes part
of that factor's share in LMG (about half the share it would explain alone); its
Type II p-value stays non-significant.

:func:`where` localizes a change between two values of a factor to the cells (level
combinations of ``within``) that drive it.

Examples
--------
>>> import numpy as np, polars as pl
>>> rng = np.random.default_rng(0)
>>> light = np.repeat(["bright", "dark"], 100)
>>> robot = np.tile(["a", "b"], 100)
>>> t = np.where(light == "dark", 12.0, 10.0) + rng.normal(0, 1, 200)
>>> cat = pl.DataFrame({"environment.lighting": light, "hardware.robot": robot, "metrics.time": t})
>>> res = attribute(cat, factors=["environment.lighting", "hardware.robot"], metric="time",
...                 column="metrics.time", kind="continuous", n_boot=50)
>>> res.table.select("term", "share").row(0)[0]
'environment.lighting'
>>> round(float(res.table["share"].drop_nulls().sum()), 12) == round(res.total_explained, 12)
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import linalg, stats

from workbench.model import ConfigError

__all__ = ["KINDS", "Attribution", "attribute", "attribution_table", "where"]

KINDS: tuple[str, ...] = ("rate", "continuous")
"""Metric kinds: ``rate`` (values in [0, 1], binomial GLM) and ``continuous`` (OLS)."""
CRAMERS_V_MAX = 0.8
"""Two factors more associated than this (Cramér's V) are reported together."""
MIN_LEVEL_RUNS = 2
"""A factor level, or a cell of an interaction, needs at least this many runs."""
MIN_RESID_DF = 10
"""An interaction is added only while the full model keeps this many residual df
(and at least a tenth of the runs)."""
MAX_MODELS = 4096
"""Most hierarchical models fitted for the Shapley shares; above it the highest
interaction order is dropped (and said so in ``notes``)."""
_SEP = " × "

_SCHEMA = {
    "metric": pl.String, "term": pl.String, "order": pl.Int64, "df": pl.Int64, "statistic": pl.Float64,
    "p_value": pl.Float64, "share": pl.Float64, "share_lo": pl.Float64, "share_hi": pl.Float64,
    "warning": pl.String, "measure": pl.String, "test": pl.String,
}


@dataclass(frozen=True)
class Attribution:
    """Result of :func:`attribute` for one metric.

    Attributes
    ----------
    table : pl.DataFrame
        One row per term (and per group of confounded factors): ``metric, term, order,
        df, statistic, p_value, share, share_lo, share_hi, warning, measure, test``,
        sorted by share, largest first (rows without a share last).
    total_explained : float
        Share explained by the full model (R² or deviance explained); the sum of the
        shares plus :attr:`withheld`.
    n : int
        Runs used.
    dropped : int
        Runs dropped because the metric is null or NaN.
    withheld : float
        Part of :attr:`total_explained` held by factors whose share is not shown (a
        level with fewer than 2 runs).
    total_lo, total_hi : float
        Bias-shifted bootstrap interval of :attr:`total_explained` (NaN without bootstrap).
    notes : tuple of str
        What was left out and why (interactions not supported by the design, ...).
    """

    table: pl.DataFrame
    total_explained: float
    n: int
    dropped: int
    withheld: float = 0.0
    total_lo: float = math.nan
    total_hi: float = math.nan
    notes: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- fitting


class _Cells:
    """Runs grouped by the level combination of all factors: every model is a function of
    the cell, so fits need only per-cell counts and sums (for the data and for every
    bootstrap replicate at once: the stratified bootstrap keeps the cell sizes)."""

    def __init__(self, codes: Mapping[str, np.ndarray], levels: Mapping[str, int], y: np.ndarray, kind: str) -> None:
        n = y.size
        combo = np.zeros(n, dtype=np.int64)
        for f in codes:
            combo = combo * levels[f] + codes[f]
            _, combo = np.unique(combo, return_inverse=True)
            combo = combo.reshape(-1)
        _, first, inv = np.unique(combo, return_index=True, return_inverse=True)
        self.inv = inv.reshape(-1)
        self.codes = {f: c[first] for f, c in codes.items()}
        self.levels = dict(levels)
        self.size = first.size
        self.n = np.bincount(self.inv, minlength=self.size).astype(np.float64)
        self.kind = kind
        self.y = y
        self.mean0 = np.bincount(self.inv, weights=y, minlength=self.size) / self.n
        # per-run values whose cell sums the fits need; column 0 = data, then replicates
        if kind == "rate":
            with np.errstate(divide="ignore", invalid="ignore"):
                sat = np.where((y > 0) & (y < 1), y * np.log(y) + (1 - y) * np.log1p(-y), 0.0)
            self._runs = np.column_stack([y, sat])
        else:
            z = y - self.mean0[self.inv]
            self._runs = np.column_stack([z, z * z])
        # (replicates, cells, 2): per cell the sums of the two per-run columns
        self.sums = np.stack([np.bincount(self.inv, weights=c, minlength=self.size) for c in self._runs.T], axis=-1)[None]

    def bootstrap(self, n_boot: int, rng: np.random.Generator) -> None:
        """Append *n_boot* replicates: runs resampled with replacement inside each cell."""
        if n_boot <= 0:
            return
        if self.kind == "rate" and np.all((self.y == 0) | (self.y == 1)):
            # 0/1 values: the successes among n_g runs drawn from a cell are binomial
            k = rng.binomial(self.n.astype(np.int64)[None, :], (self.sums[0, :, 0] / self.n)[None, :], size=(n_boot, self.size))
            out = np.stack([k.astype(np.float64), np.zeros((n_boot, self.size))], axis=-1)
            self.sums = np.concatenate([self.sums[:1], out], axis=0)
            return
        order = np.argsort(self.inv, kind="stable")
        starts = np.concatenate([[0], np.cumsum(self.n.astype(np.int64))[:-1]])
        size = self.n.astype(np.int64)[self.inv[order]]
        base = starts[self.inv[order]]
        runs = self._runs[order]
        out = np.empty((n_boot, self.size, 2))
        step = max(1, (1 << 21) // max(1, self.y.size))
        for b0 in range(0, n_boot, step):
            b1 = min(n_boot, b0 + step)
            idx = base + (rng.random((b1 - b0, size.size), dtype=np.float32) * size).astype(np.int64)
            np.minimum(idx, base + size - 1, out=idx)  # float rounding at the top
            for j in range(2):
                out[b0:b1, :, j] = np.add.reduceat(runs[idx, j], starts, axis=1)
        self.sums = np.concatenate([self.sums[:1], out], axis=0)

    # -- per replicate sufficient statistics
    def ols_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell means (replicates × cells) and within-cell sums of squares (replicates)."""
        s1, s2 = self.sums[:, :, 0], self.sums[:, :, 1]
        mean = self.mean0[None, :] + s1 / self.n
        within = np.sum(s2 - s1 * s1 / self.n, axis=1)
        return mean, np.maximum(within, 0.0)

    def design(self, terms: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Treatment-coded design (intercept, then per term the products of its factors'
        dummy columns), one row per cell."""
        cols = [np.ones((self.size, 1))]
        for t in terms:
            block = np.ones((self.size, 1))
            for f in t:
                d = (self.codes[f][:, None] == np.arange(1, self.levels[f])[None, :]).astype(np.float64)
                block = (block[:, :, None] * d[:, None, :]).reshape(self.size, -1)
            cols.append(block)
        return np.hstack(cols)


def _basis(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Independent columns of *X* (rows weighted by *w*): (X kept, orthonormal basis of the
    weighted column space, rank)."""
    A = X * w[:, None]
    Q, R, piv = linalg.qr(A, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    r = int(np.sum(d > d[0] * 1e-10)) if d.size else 0
    keep = np.sort(piv[:r])
    return X[:, keep], Q[:, :r], r


def _logit_deviance(X: np.ndarray, N: np.ndarray, K: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """Binomial deviance of the logit GLM on design *X* (cells × p, full rank) for each
    replicate's success sums *K* (replicates × cells), fitted by Newton–Raphson (IRLS)
    from the grouped counts; *sat* is each replicate's saturated log-likelihood."""
    B, p = K.shape[0], X.shape[1]
    beta = np.zeros((B, p))
    pbar = np.clip(K.sum(axis=1) / N.sum(), 1e-6, 1 - 1e-6)
    beta[:, 0] = np.log(pbar / (1 - pbar))
    dev_old = np.full(B, np.inf)
    eye = np.eye(p) * 1e-12 * N.sum()
    XX = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], p * p)  # H = Σ_g w_g x_g x_gᵀ as one product
    for _ in range(100):
        eta = beta @ X.T
        mu = 1 / (1 + np.exp(-np.clip(eta, -36, 36)))
        ll = K * -np.logaddexp(0, -eta) + (N - K) * -np.logaddexp(0, eta)
        dev = 2 * (sat - ll.sum(axis=1))
        if np.all(np.abs(dev_old - dev) <= 1e-11 * (np.abs(dev) + 1.0)):
            break
        dev_old = dev
        w = N * np.maximum(mu * (1 - mu), 1e-14)
        H = (w @ XX).reshape(B, p, p) + eye
        grad = (K - N * mu) @ X
        beta = beta + np.linalg.solve(H, grad[:, :, None])[:, :, 0]
    return dev


class _Models:
    """Fits of models (sets of terms) on the cells, cached: value (RSS or deviance) per
    replicate and rank."""

    def __init__(self, cells: _Cells) -> None:
        self.cells = cells
        self.cache: dict[frozenset[tuple[str, ...]], tuple[np.ndarray, int]] = {}
        self.w = np.sqrt(cells.n)
        if cells.kind == "continuous":
            self.mean, self.within = cells.ols_parts()
        self.boot = True

    def fit(self, terms: Sequence[tuple[str, ...]], *, point_only: bool = False) -> tuple[np.ndarray, int]:
        key = frozenset(terms)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        c = self.cells
        order = sorted(key, key=lambda t: (len(t), t))
        X, Q, r = _basis(c.design(order), self.w)
        sl = slice(0, 1) if point_only else slice(None)
        if c.kind == "continuous":
            M = (self.mean[sl] * self.w).T  # cells × replicates
            R = M - Q @ (Q.T @ M)
            val = self.within[sl] + np.sum(R * R, axis=0)
        else:
            val = _logit_deviance(X, c.n, c.sums[sl, :, 0], c.sums[sl, :, 1].sum(axis=1))
        out = (val, r)
        if not point_only:
            self.cache[key] = out
        return out


# --------------------------------------------------------------------------- design checks


def _level_codes(s: pl.Series) -> tuple[np.ndarray, list[str]]:
    txt = s.cast(pl.String).fill_null("∅")
    codes = txt.rank("dense").cast(pl.Int64).to_numpy() - 1
    names = [""] * (int(codes.max(initial=-1)) + 1)
    for c, t in zip(*np.unique(codes, return_index=True), strict=True):
        names[int(c)] = txt[int(t)]
    return codes, names


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    la, lb = int(a.max()) + 1, int(b.max()) + 1
    tab = np.bincount(a * lb + b, minlength=la * lb).reshape(la, lb).astype(np.float64)
    n = tab.sum()
    e = tab.sum(axis=1, keepdims=True) * tab.sum(axis=0, keepdims=True) / n
    chi2 = float(np.sum((tab - e) ** 2 / e))
    return math.sqrt(chi2 / (n * (min(la, lb) - 1)))


def _refines(a: np.ndarray, b: np.ndarray) -> bool:
    """Every level of *a* lies inside one level of *b*."""
    pairs = np.unique(a * (int(b.max()) + 1) + b)
    return pairs.size == np.unique(a).size


def _check_factors(codes: dict[str, np.ndarray], names: dict[str, list[str]]) -> tuple[dict[str, str], list[list[str]], dict[str, str]]:
    """Warnings per factor, groups of confounded factors, and 'withheld' reasons."""
    warn: dict[str, str] = {}
    withheld: dict[str, str] = {}
    fs = list(codes)
    parent = {f: f for f in fs}

    def root(f: str) -> str:
        while parent[f] != f:
            f = parent[f]
        return f

    why: dict[str, list[str]] = {f: [] for f in fs}
    for a, b in itertools.combinations(fs, 2):
        ca, cb = codes[a], codes[b]
        ab, ba = _refines(ca, cb), _refines(cb, ca)
        if ab and ba:
            why[a].append(f"aliased with {b} (the same partition of the runs)")
            why[b].append(f"aliased with {a} (the same partition of the runs)")
        elif ab or ba:
            inner, outer = (a, b) if ab else (b, a)
            why[inner].append(f"nested in {outer} (each level of {inner} lies in one level of {outer})")
            why[outer].append(f"{inner} is nested in it")
        else:
            v = _cramers_v(ca, cb)
            if v <= CRAMERS_V_MAX:
                continue
            why[a].append(f"confounded with {b} (Cramér's V = {v:.2f} > {CRAMERS_V_MAX})")
            why[b].append(f"confounded with {a} (Cramér's V = {v:.2f} > {CRAMERS_V_MAX})")
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for f in fs:
        groups.setdefault(root(f), []).append(f)
    for f in fs:
        if why[f]:
            warn[f] = "; ".join(why[f]) + "; no separate share: see the joint row"
    for f in fs:
        counts = np.bincount(codes[f])
        sparse = [names[f][i] for i in np.flatnonzero(counts < MIN_LEVEL_RUNS)]
        if sparse:
            txt = f"level {', '.join(map(repr, sparse[:5]))} has fewer than {MIN_LEVEL_RUNS} runs"
            if f in warn:
                warn[f] = txt + "; " + warn[f]
            else:
                warn[f] = txt + "; share withheld"
                withheld[f] = txt
    return warn, [g for g in groups.values() if len(g) > 1], withheld


# --------------------------------------------------------------------------- Shapley


def _ideals(req: list[int], k: int, limit: int) -> list[int] | None:
    """Bit masks of the player sets closed under the hierarchy (*req*[j]: players j needs)."""
    seen = {0}
    frontier = [0]
    while frontier:
        nxt = []
        for s in frontier:
            for j in range(k):
                bit = 1 << j
                if not s & bit and (req[j] & s) == req[j]:
                    t = s | bit
                    if t not in seen:
                        seen.add(t)
                        nxt.append(t)
                        if len(seen) > limit:
                            return None
        frontier = nxt
    return sorted(seen, key=lambda s: (s.bit_count(), s))


def _shapley_weights(ideals: list[int], req: list[int], k: int) -> np.ndarray:
    """Matrix W (ideals × players) with shares = v @ W: the Shapley value averaged over
    the orderings that respect the hierarchy."""
    pos = {s: i for i, s in enumerate(ideals)}
    f = np.zeros(len(ideals))  # orderings from ∅ to s
    f[0] = 1.0
    for s in ideals[1:]:
        f[pos[s]] = sum(f[pos[s ^ (1 << j)]] for j in range(k) if s >> j & 1 and (s ^ (1 << j)) in pos)
    g = np.zeros(len(ideals))  # orderings from s to all players
    full = ideals[-1]
    g[pos[full]] = 1.0
    for s in reversed(ideals[:-1]):
        g[pos[s]] = sum(g[pos[s | (1 << j)]] for j in range(k) if not s >> j & 1 and (s | (1 << j)) in pos)
    W = np.zeros((len(ideals), k))
    total = f[pos[full]]
    for s in ideals:
        for j in range(k):
            t = s | (1 << j)
            if not s >> j & 1 and (req[j] & s) == req[j] and t in pos:
                c = f[pos[s]] * g[pos[t]] / total
                W[pos[t], j] += c
                W[pos[s], j] -= c
    return W


def _pmvd_shares(v: np.ndarray, ideals: list[int], req: list[int], k: int) -> np.ndarray:
    """Shares (replicates × players) averaged over the hierarchical orderings with
    Feldman's PMVD weights: an ordering weighs Π over its proper prefixes P of
    1 / (v(all) − v(P)), so orderings that leave little to explain early dominate and a
    player that adds nothing given the others gets (asymptotically) nothing."""
    pos = {s: i for i, s in enumerate(ideals)}
    full = ideals[-1]
    vf = v[:, -1:]
    eps = np.maximum(1e-9 * np.abs(vf), 1e-12)
    c = np.maximum(vf, eps) / np.maximum(vf - v, eps)  # scaled by v(all): ≥ 1 up to noise
    c[:, 0] = 1.0
    c[:, pos[full]] = 1.0
    F = np.zeros_like(v)
    F[:, 0] = 1.0
    for s in ideals[1:]:
        i = pos[s]
        F[:, i] = c[:, i] * sum(F[:, pos[s ^ (1 << j)]] for j in range(k) if s >> j & 1 and (s ^ (1 << j)) in pos)
    G = np.zeros_like(v)
    G[:, pos[full]] = 1.0
    for s in reversed(ideals[:-1]):
        i = pos[s]
        G[:, i] = c[:, i] * sum(G[:, pos[s | (1 << j)]] for j in range(k) if not s >> j & 1 and (s | (1 << j)) in pos)
    out = np.zeros((v.shape[0], k))
    for s in ideals:
        for j in range(k):
            t = s | (1 << j)
            if not s >> j & 1 and (req[j] & s) == req[j] and t in pos:
                out[:, j] += F[:, pos[s]] * (G[:, pos[t]] / c[:, pos[t]]) * c[:, pos[t]] * (v[:, pos[t]] - v[:, pos[s]])
    return out / F[:, pos[full]][:, None]


# --------------------------------------------------------------------------- inputs


def _basic_interval(point: float, reps: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    """Bias-shifted percentile bootstrap interval, clipped to [0, 1].

    Explained shares are biased upwards under resampling (resampled cell means carry
    extra noise, about df / n, which the model explains), often by more than the spread
    of the replicates, so a plain percentile interval can miss the estimate itself.
    The replicates' quantiles are shifted by the bootstrap bias estimate
    ``mean(reps) − θ̂`` so the interval keeps their spread around the estimate.
    """
    bias = float(np.mean(reps)) - point
    qlo, qhi = np.quantile(reps, q)
    return float(np.clip(qlo - bias, 0.0, 1.0)), float(np.clip(qhi - bias, 0.0, 1.0))


def _choice_error(what: str, value: Any, choices: Sequence[str]) -> ConfigError:
    shown = ", ".join(map(str, choices[:30])) + (" ..." if len(choices) > 30 else "")
    msg = f"unknown {what} {value!r}; valid: {shown or 'none'}"
    return ConfigError(msg)


def _metric_values(cat: pl.DataFrame, column: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind not in KINDS:
        raise _choice_error("kind", kind, KINDS)
    if column not in cat.columns:
        raise _choice_error("column", column, cat.columns)
    s = cat[column]
    if not (s.dtype.is_numeric() or s.dtype == pl.Boolean):
        msg = f"column {column!r} is {s.dtype}, not numeric; valid: numeric or boolean columns"
        raise ConfigError(msg)
    s = s.cast(pl.Float64)
    keep = (s.is_not_null() & s.is_not_nan()).fill_null(False).to_numpy()
    y = s.filter(pl.Series(keep)).to_numpy()
    if not np.all(np.isfinite(y)):
        msg = f"column {column!r} has infinite values; valid: finite numbers"
        raise ConfigError(msg)
    if kind == "rate" and y.size and (y.min() < 0 or y.max() > 1):
        msg = f"column {column!r} has values outside [0, 1] ({y.min():g} … {y.max():g}) for kind 'rate'; valid kinds for it: 'continuous'"
        raise ConfigError(msg)
    return y, keep


# --------------------------------------------------------------------------- attribute


def attribute(
    cat: pl.DataFrame,
    *,
    factors: Sequence[str],
    metric: str,
    column: str,
    kind: str,
    max_order: int = 3,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> Attribution:
    """Type II tests and Shapley (LMG) shares of one metric's variation over *factors*.

    Parameters
    ----------
    cat : pl.DataFrame
        Catalog, one row per run.
    factors : sequence of str
        Factor columns (any type; null is a level of its own).
    metric : str
        Name of the metric, copied to the ``metric`` column.
    column : str
        Column holding the metric.
    kind : {"rate", "continuous"}
        ``rate``: values in [0, 1], binomial GLM (deviance, likelihood-ratio tests);
        ``continuous``: OLS (sums of squares, F-tests).
    max_order : int
        Highest interaction order considered. An interaction enters only when every
        level combination of its factors has at least 2 runs, all its margins are in,
        none of its factors is flagged, and the model keeps ≥ 10 residual df (and
        ≥ n/10).
    n_boot : int
        Bootstrap replicates for the share intervals (0: none).
    seed : int
        Seed of the bootstrap.
    alpha : float
        The intervals cover 1 − *alpha*.

    Returns
    -------
    Attribution
        See :class:`Attribution`. The shares (with :attr:`Attribution.withheld`) add up
        to :attr:`Attribution.total_explained`.

    Raises
    ------
    ConfigError
        Unknown column, factor or kind; rates outside [0, 1]; fewer than 4 runs with a
        value; bad *max_order*, *n_boot* or *alpha*.

    Notes
    -----
    A noise factor's share is not zero at small n (about df/n of the unexplained
    variation); its p-value is uniform under no effect, so the p-value is what tells.
    Shares of correlated factors are shared as LMG does: a factor without effect that
    goes with one that has an effect gets part of its share (its p-value stays large).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(1)
    >>> cat = pl.DataFrame({"robot": np.tile(["a", "b", "c"], 40), "light": np.repeat(["on", "off"], 60)})
    >>> p = np.where(cat["light"].to_numpy() == "off", 0.3, 0.9)
    >>> cat = cat.with_columns(pl.Series("success", (rng.random(120) < p).astype(float)))
    >>> res = attribute(cat, factors=["robot", "light"], metric="success", column="success",
    ...                 kind="rate", n_boot=20)
    >>> row = res.table.filter(pl.col("term") == "light").row(0, named=True)
    >>> row["p_value"] < 0.001, row["measure"]
    (True, 'deviance')
    """
    if not isinstance(max_order, int) or max_order < 1:
        msg = f"max_order must be an integer ≥ 1, got {max_order!r}; valid: 1, 2, 3, ..."
        raise ConfigError(msg)
    if not isinstance(n_boot, int) or n_boot < 0:
        msg = f"n_boot must be an integer ≥ 0, got {n_boot!r}; valid: 0 (no intervals), 200, ..."
        raise ConfigError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must lie in (0, 1), got {alpha!r}; valid: e.g. 0.05"
        raise ConfigError(msg)
    factors = list(dict.fromkeys(factors))
    for f in factors:
        if f not in cat.columns:
            raise _choice_error("factor", f, cat.columns)
    y, keep = _metric_values(cat, column, kind)
    n = int(y.size)
    dropped = cat.height - n
    if n < 4:
        msg = f"metric {metric!r} ({column!r}) has {n} runs with a value; valid: at least 4"
        raise ConfigError(msg)
    sub = cat.filter(pl.Series(keep))
    codes: dict[str, np.ndarray] = {}
    names: dict[str, list[str]] = {}
    for f in factors:
        codes[f], names[f] = _level_codes(sub[f])
    measure = "deviance" if kind == "rate" else "sum_of_squares"
    test = "LR chi2" if kind == "rate" else "F"
    rows: list[dict[str, Any]] = []
    notes: list[str] = []

    def row(term: str, order: int, **kw: Any) -> None:
        rows.append({"metric": metric, "term": term, "order": order, "measure": measure, "test": test, **kw})

    used = [f for f in factors if len(names[f]) > 1]
    for f in factors:
        if f not in used:
            row(f, 1, df=0, warning=f"constant: every run has level {names[f][0]!r}; left out")
    warn, groups, withheld = _check_factors({f: codes[f] for f in used}, {f: names[f] for f in used})
    flagged = set(warn)
    levels = {f: len(names[f]) for f in used}
    cells = _Cells({f: codes[f] for f in used}, levels, y, kind)

    # terms: main effects, then interactions the design supports
    mains = [(f,) for f in used]
    clean = [f for f in used if f not in flagged]
    inter: list[tuple[str, ...]] = []
    p_model = 1 + sum(levels[f] - 1 for f in used)
    min_resid = max(MIN_RESID_DF, n // 10)
    for order in range(2, max_order + 1):
        for t in itertools.combinations(clean, order):
            subs = [s for k in range(2, order) for s in itertools.combinations(t, k)]
            label = _SEP.join(t)
            if any(s not in inter for s in subs):
                continue
            df_t = math.prod(levels[f] - 1 for f in t)
            combo = np.zeros(n, dtype=np.int64)
            for f in t:
                combo = combo * levels[f] + codes[f]
            counts = np.bincount(combo, minlength=math.prod(levels[f] for f in t))
            if counts.min() < MIN_LEVEL_RUNS:
                notes.append(f"{label} left out: a level combination has fewer than {MIN_LEVEL_RUNS} runs")
                continue
            if n - (p_model + df_t) < min_resid:
                notes.append(f"{label} left out: too few residual degrees of freedom")
                continue
            inter.append(t)
            p_model += df_t
    terms = mains + inter

    # players: groups of confounded factors, single factors, interactions
    grouped = {f for g in groups for f in g}
    players: list[tuple[str, tuple[tuple[str, ...], ...], int]] = [(" + ".join(g), tuple((f,) for f in g), 1) for g in groups]
    players += [(f, ((f,),), 1) for f in used if f not in grouped]
    while True:
        players_i = players + [(_SEP.join(t), (t,), len(t)) for t in inter]
        index = {t: j for j, (_, ts, _) in enumerate(players_i) for t in ts}
        req = [0] * len(players_i)
        for j, (_, ts, _) in enumerate(players_i):
            for t in ts:
                for k in range(1, len(t)):
                    for s in itertools.combinations(t, k):
                        req[j] |= 1 << index[s]
        ideals = _ideals(req, len(players_i), MAX_MODELS)
        if ideals is not None:
            break
        top = max(len(t) for t in inter) if inter else 1
        if top == 1:
            msg = f"too many factors for Shapley shares ({len(players)} players, > {MAX_MODELS} models); valid: at most 12 factors"
            raise ConfigError(msg)
        notes.append(f"interactions of order {top} left out: more than {MAX_MODELS} models to fit")
        inter = [t for t in inter if len(t) < top]
        terms = mains + inter
    players = players_i
    k = len(players)

    rng = np.random.default_rng(seed)
    cells.bootstrap(n_boot, rng)
    models = _Models(cells)

    def terms_of(mask: int) -> list[tuple[str, ...]]:
        return [t for j in range(k) if mask >> j & 1 for t in players[j][1]]

    vals = np.column_stack([models.fit(terms_of(s))[0] for s in ideals])  # replicates × ideals
    null = vals[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(null > 1e-12 * max(1.0, float(null[0, 0])), 1 - vals / null, 0.0)
    shares = v @ _shapley_weights(ideals, req, k)  # replicates × players
    total_b = v[:, -1]

    # Type II tests on the data
    full_val, full_rank = models.fit(terms)
    resid_df = n - full_rank
    scale = float(full_val[0]) / resid_df if resid_df > 0 else math.nan

    def type2(drop: Sequence[tuple[str, ...]]) -> tuple[int, float | None, float | None]:
        dropset = set(drop)
        base = [u for u in terms if not any(set(t) <= set(u) for t in dropset)]
        big = base + [t for t in drop]
        v0, r0 = models.fit(base, point_only=True)
        v1, r1 = models.fit(big, point_only=True)
        df = r1 - r0
        if df <= 0:
            return 0, None, None
        gain = max(0.0, float(v0[0] - v1[0]))
        if kind == "continuous":
            if not scale > 0:
                return df, None, None
            stat = gain / df / scale
            return df, stat, float(stats.f.sf(stat, df, resid_df))
        return df, gain, float(stats.chi2.sf(gain, df))

    q = (alpha / 2, 1 - alpha / 2)
    withheld_share = 0.0
    for j, (label, ts, order) in enumerate(players):
        df, stat, p = type2(ts)
        share = float(shares[0, j])
        lo, hi = _basic_interval(share, shares[1:, j], q) if n_boot else (None, None)
        single = ts[0][0] if len(ts) == 1 and order == 1 else None
        if single is not None and single in withheld:
            withheld_share += share
            row(label, order, df=df, statistic=stat, p_value=p, warning=warn[single])
            continue
        row(label, order, df=df, statistic=stat, p_value=p, share=share, share_lo=lo, share_hi=hi, warning=None)
    for g in groups:
        for f in g:
            df, stat, p = type2([(f,)])
            row(f, 1, df=df, statistic=stat, p_value=p, warning=warn[f])
    table = pl.DataFrame(rows, schema=_SCHEMA).sort("share", descending=True, nulls_last=True, maintain_order=True)
    tlo, thi = _basic_interval(float(total_b[0]), total_b[1:], q) if n_boot else (math.nan, math.nan)
    return Attribution(table=table, total_explained=float(total_b[0]), n=n, dropped=dropped,
                       withheld=withheld_share, total_lo=tlo, total_hi=thi, notes=tuple(notes))


def attribution_table(
    cat: pl.DataFrame,
    *,
    factors: Sequence[str],
    metrics: Mapping[str, str],
    kinds: Mapping[str, str],
    max_order: int = 3,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    skip_unmeasured: bool = False,
) -> pl.DataFrame:
    """:func:`attribute` for several metrics, one table.

    Parameters
    ----------
    cat : pl.DataFrame
        Catalog, one row per run.
    factors : sequence of str
        Factor columns.
    metrics : mapping of str to str
        Metric name → column.
    kinds : mapping of str to str
        Metric name → ``"rate"`` or ``"continuous"``.
    max_order, n_boot, seed, alpha
        As in :func:`attribute`.
    skip_unmeasured : bool
        Leave out metrics with fewer than 4 runs with a value instead of raising.

    Returns
    -------
    pl.DataFrame
        The per-metric tables, sorted by metric then share (largest first, rows without
        a share last).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(2)
    >>> cat = pl.DataFrame({"light": np.repeat(["on", "off"], 30), "t": rng.normal(0, 1, 60)})
    >>> tab = attribution_table(cat, factors=["light"], metrics={"time": "t"},
    ...                         kinds={"time": "continuous"}, n_boot=0)
    >>> tab.select("metric", "term").row(0)
    ('time', 'light')
    """
    tables = []
    for m, col in metrics.items():
        if m not in kinds:
            raise _choice_error("metric in kinds", m, list(kinds))
        kind = kinds[m]
        if skip_unmeasured and kind in KINDS and col in cat.columns:
            s = cat[col]
            if s.dtype.is_numeric() and int((s.cast(pl.Float64).is_not_null() & s.cast(pl.Float64).is_not_nan()).sum()) < 4:
                continue
        tables.append(attribute(cat, factors=factors, metric=m, column=col, kind=kind, max_order=max_order,
                                n_boot=n_boot, seed=seed, alpha=alpha).table)
    if not tables:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.concat(tables).sort(["metric", "share"], descending=[False, True], nulls_last=True, maintain_order=True)


# --------------------------------------------------------------------------- where


def where(
    cat: pl.DataFrame,
    *,
    by: str,
    baseline: Any,
    candidate: Any,
    within: Sequence[str],
    column: str,
    kind: str,
) -> pl.DataFrame:
    """Which cells drive the change of a metric from *baseline* to *candidate*.

    The overall change is the standardized difference Δ = Σ w_c (mean_cand,c −
    mean_base,c) over the cells c (level combinations of *within*) measured on both
    sides, with w_c the cell's share of those runs (both sides together); it does not
    depend on how each side's runs spread over the cells. Per cell: its contribution
    w_c · difference and its share of Δ. The heterogeneity test asks whether the change
    differs between cells: the ``by × cell`` interaction (F-test of OLS for continuous
    metrics, likelihood-ratio test of the logit GLM for rates), the same on every row.

    Parameters
    ----------
    cat : pl.DataFrame
        Catalog, one row per run.
    by : str
        Column whose two values are compared.
    baseline, candidate : Any
        The two values of *by*.
    within : sequence of str
        Factor columns defining the cells (empty: one cell).
    column : str
        Metric column.
    kind : {"rate", "continuous"}
        Kind of the metric.

    Returns
    -------
    pl.DataFrame
        Columns: the *within* factors, ``n_baseline, n_candidate, baseline, candidate,
        difference, weight, contribution, share, cumulative_share, overall,
        heterogeneity_df, heterogeneity_statistic, heterogeneity_p``; sorted by share,
        largest first (cells measured on one side only last, without a contribution).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> cat = pl.DataFrame({"v": ["a"] * 40 + ["b"] * 40, "light": ["on", "off"] * 40,
    ...                     "ok": [1.0] * 40 + [1.0, 0.0] * 20})
    >>> w = where(cat, by="v", baseline="a", candidate="b", within=["light"], column="ok", kind="rate")
    >>> w.select("light", "contribution", "share").row(0)
    ('off', -0.5, 1.0)
    """
    if by not in cat.columns:
        raise _choice_error("column for by", by, cat.columns)
    for f in within:
        if f not in cat.columns:
            raise _choice_error("factor", f, cat.columns)
    if by in within:
        msg = f"by {by!r} is also in within; valid within: factors other than {by!r}"
        raise ConfigError(msg)
    values = cat[by].unique().drop_nulls().sort().to_list()
    for v in (baseline, candidate):
        if v not in values:
            raise _choice_error(f"value of {by}", v, [str(x) for x in values])
    if baseline == candidate:
        msg = f"baseline and candidate are both {baseline!r}; valid: two different values of {by}"
        raise ConfigError(msg)
    two = cat.filter(pl.col(by).is_in([baseline, candidate]))
    y, keep = _metric_values(two, column, kind)
    two = two.filter(pl.Series(keep))
    if y.size < 4:
        msg = f"column {column!r} has {y.size} runs with a value on {baseline!r} and {candidate!r}; valid: at least 4"
        raise ConfigError(msg)
    side = (two[by] == candidate).to_numpy().astype(np.int64)
    within = list(within)
    if within:
        keys = two.select([pl.col(f).cast(pl.String).fill_null("∅") for f in within])
        cell_codes, _ = _level_codes(keys.select(pl.concat_str(within, separator="\x1f")).to_series())
    else:
        keys = pl.DataFrame()
        cell_codes = np.zeros(y.size, dtype=np.int64)
    C = int(cell_codes.max()) + 1
    nb = np.bincount(cell_codes[side == 0], minlength=C).astype(np.float64)
    nc = np.bincount(cell_codes[side == 1], minlength=C).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mb = np.bincount(cell_codes[side == 0], weights=y[side == 0], minlength=C) / nb
        mc = np.bincount(cell_codes[side == 1], weights=y[side == 1], minlength=C) / nc
    both = (nb > 0) & (nc > 0)
    diff = np.where(both, mc - mb, np.nan)
    w = np.where(both, nb + nc, 0.0)
    w = w / w.sum() if w.sum() > 0 else w
    contrib = np.where(both, w * diff, np.nan)
    overall = float(np.nansum(contrib)) if both.any() else math.nan
    share = contrib / overall if both.any() and abs(overall) > 1e-12 else np.full(C, np.nan)

    # heterogeneity: by × cell interaction on the cells measured on both sides
    h_df: int | None = None
    h_stat: float | None = None
    h_p: float | None = None
    sel = both[cell_codes]
    if int(both.sum()) >= 2:
        _, cc = np.unique(cell_codes[sel], return_inverse=True)
        codes = {"by": side[sel], "cell": cc.reshape(-1)}
        lv = {"by": 2, "cell": int(cc.max()) + 1}
        models = _Models(_Cells(codes, lv, y[sel], kind))
        v0, r0 = models.fit([("by",), ("cell",)], point_only=True)
        v1, r1 = models.fit([("by",), ("cell",), ("by", "cell")], point_only=True)
        h_df = r1 - r0
        gain = max(0.0, float(v0[0] - v1[0]))
        resid = int(sel.sum()) - r1
        if kind == "rate":
            h_stat, h_p = gain, float(stats.chi2.sf(gain, h_df))
        elif resid > 0 and v1[0] > 0:
            h_stat = gain / h_df / (float(v1[0]) / resid)
            h_p = float(stats.f.sf(h_stat, h_df, resid))

    first = np.unique(cell_codes, return_index=True)[1]
    data: dict[str, Any] = {f: two[f][first] for f in within}
    frame = pl.DataFrame({
        **data,
        "n_baseline": nb.astype(np.int64), "n_candidate": nc.astype(np.int64),
        "baseline": mb, "candidate": mc, "difference": diff, "weight": np.where(both, w, np.nan),
        "contribution": contrib, "share": share,
    }).with_columns(pl.col("baseline", "candidate", "difference", "weight", "contribution", "share").fill_nan(None))
    frame = frame.sort("share", descending=True, nulls_last=True, maintain_order=True)
    return frame.with_columns(
        pl.col("share").cum_sum().alias("cumulative_share"),
        pl.lit(overall if math.isfinite(overall) else None, dtype=pl.Float64).alias("overall"),
        pl.lit(h_df, dtype=pl.Int64).alias("heterogeneity_df"),
        pl.lit(h_stat, dtype=pl.Float64).alias("heterogeneity_statistic"),
        pl.lit(h_p, dtype=pl.Float64).alias("heterogeneity_p"),
    )
