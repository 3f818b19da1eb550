"""Rank k variants of one factor (checkpoints, policies, controllers) on one metric.

:func:`rank` reports, per cell (``within``) and variant:

* the rate (Wilson interval) or mean (t interval) of the metric;
* every pair compared -- rates by the two-sided conditional exact test (twice the
  smaller one-sided Fisher p, :func:`workbench.stats.rates.unpaired_rate_test`),
  numbers by Mann–Whitney -- with Holm's adjustment over the pairs of the cell;
* a compact letter display from those pairs (variants that share a letter are not
  significantly different);
* a Bradley–Terry strength from head-to-head comparisons: runs of two variants on the
  same pairing key (``pair_by``, default ``scenario.seed``) are compared on the metric
  (a win, a loss or a tie); without pairing keys every run of one variant meets every run
  of the other, weighted as ``min(n_i, n_j)`` comparisons; explicit preferences (``a``,
  ``b``, ``winner`` columns, as RoboArena's pairwise A/B trials) add to them;
* the probability of each rank, from a bootstrap of the pairing keys (or of runs within
  each variant when unpaired).

Examples
--------
>>> import polars as pl
>>> rows = [{"run_id": f"{v}-{s}", "model.version": v, "scenario.seed": s, "metrics.success": float(s % d != 0)}
...         for v, d in (("v1", 2), ("v2", 4), ("v3", 10)) for s in range(20)]
>>> res = rank(pl.DataFrame(rows), n_boot=100)
>>> res.table["model.version"].to_list(), res.table["value"].to_list()
(['v3', 'v2', 'v1'], [0.9, 0.75, 0.5])
>>> res.table["letters"].to_list()
['a', 'ab', 'b']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import FACTOR_GROUPS, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["RankResult", "metric_frame", "pairing_keys", "rank"]


@dataclass
class RankResult:
    """What :func:`rank` found.

    ``table``: one row per cell and variant, best first (``n``, ``value``, ``lo``,
    ``hi``, ``strength``, ``rank``, ``p_best``, ``letters``, ``run_ids``); ``pairs``:
    one row per pair (``a``, ``b``, ``difference`` a − b, ``p``, ``p_adj``,
    ``different``); ``rank_probs``: per variant the probability of each rank; ``notes``:
    per cell, how the head-to-head comparisons were made when not as asked.
    """

    by: str
    metric: str
    kind: str
    within: list[str]
    table: pl.DataFrame
    pairs: pl.DataFrame
    rank_probs: pl.DataFrame
    pair_by: list[str]
    alpha: float
    excluded: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per cell: the order with letters and the chance the first is best."""
        lines = []
        for key, part in self._cells(self.table):
            order = ", ".join(f"{v} [{letters}]" for v, letters in zip(part[self.by], part["letters"], strict=True))
            head = part.row(0, named=True)
            where = f"{key}: " if key else ""
            pairing = f"paired by {', '.join(self.pair_by)}" if self.pair_by else "unpaired"
            if self.notes.get(key or "all runs"):
                pairing = self.notes[key or "all runs"]
            lines.append(f"{where}{order}; P({head[self.by]} ranks first) = {head['p_best']:.2f} "
                         f"(Bradley–Terry, {pairing}); shared letters: no significant difference (Holm, α={self.alpha})")
        return "\n".join(lines)

    def _cells(self, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
        if not self.within:
            return [("", frame)]
        out = []
        for key, part in frame.group_by(self.within, maintain_order=True):
            out.append((", ".join(f"{w}={k}" for w, k in zip(self.within, key, strict=True)), part))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"by": self.by, "metric": self.metric, "kind": self.kind, "within": self.within, "alpha": self.alpha,
                "pair_by": self.pair_by, "table": self.table.to_dicts(), "pairs": self.pairs.to_dicts(),
                "rank_probs": self.rank_probs.to_dicts(), "excluded": self.excluded, "notes": self.notes}


def _catalog(source: Store | pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    if isinstance(source, pl.DataFrame):
        return source
    if hasattr(source, "runs"):
        return source.runs()
    msg = f"needs a Store or a catalog DataFrame, got {type(source).__name__}"
    raise ConfigError(msg)


def metric_frame(source: Store | pl.DataFrame, metric: str, *, needs: Sequence[str] = (), min_grade: str | None = None,
                 ) -> tuple[pl.DataFrame, str, str, bool]:
    """The catalog with the metric as column ``value`` (float; runs without it dropped
    and listed), its kind (``rate`` or ``continuous``) and whether higher is better.

    Computes the metric on a store's runs that lack it. Every column of *needs* must
    exist (a :class:`~workbench.model.ConfigError` names the factors there are).
    Returns ``(frame, kind, unit, higher_is_better)``; ``frame`` has ``excluded`` runs
    removed, listed in its ``excluded`` attribute of the result by the caller.
    """
    import polars as pl

    name = metric.removeprefix("metrics.")
    if not isinstance(source, pl.DataFrame) and hasattr(source, "runs"):
        from workbench.comparison import ensure_measured

        cat0 = source.runs()
        if f"metrics.{name}" not in cat0.columns and name not in cat0.columns:
            ensure_measured(source, run_ids=cat0["run_id"].to_list(), metrics=[name], grades=min_grade is not None)
    cat = _catalog(source)
    from workbench.comparison import _metric_column, _metric_info

    factors = sorted(c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS)
    for col in needs:
        if col not in cat.columns:
            msg = f"no factor column {col!r}; factors: {', '.join(factors) or 'none'}"
            raise ConfigError(msg)
    col = _metric_column(cat, name)
    kind, higher, unit = _metric_info(col.removeprefix("metrics."))
    dtype = cat.schema[col]
    if dtype == pl.Boolean:
        kind = "rate"
    elif not dtype.is_numeric():
        msg = f"metric {name!r} is a category: it needs a rate or a number"
        raise ConfigError(msg)
    kind = "rate" if kind == "rate" else "continuous"
    frame = cat.with_columns(pl.col(col).cast(pl.Float64).alias("value"))
    if min_grade is not None:
        grades = "ABCDF"
        if min_grade not in grades:
            msg = f"min_grade {min_grade!r} is not valid; use one of {list(grades)}"
            raise ConfigError(msg)
        if "quality.grade" in frame.columns:
            frame = frame.filter(pl.col("quality.grade").is_null() | pl.col("quality.grade").is_in(list(grades[: grades.index(min_grade) + 1])))
    return frame, kind, unit, True if higher is None else bool(higher)


def pairing_keys(frame: pl.DataFrame, pair_by: Sequence[str] | str | None) -> list[str]:
    """The columns pairing runs: *pair_by* (comma-separated or a list; ``[]`` for none),
    by default ``scenario.seed`` when *frame* has it. Unknown columns are refused by name."""
    if pair_by is None:
        return ["scenario.seed"] if "scenario.seed" in frame.columns else []
    keys = [p.strip() for p in pair_by.split(",") if p.strip()] if isinstance(pair_by, str) else list(pair_by)
    for p in keys:
        if p not in frame.columns:
            msg = f"no pairing column {p!r}; columns: {', '.join(c for c in frame.columns if '.' in c)}"
            raise ConfigError(msg)
    return keys


def _interval(kind: str, v: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    from workbench.stats.rates import wilson_interval

    n = v.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if kind == "rate":
        lo, hi = wilson_interval(int(round(v.sum())), n, level=level)
        return mean, lo, hi
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def _pair_p(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    from scipy import stats

    from workbench.stats.rates import unpaired_rate_test

    if x.size == 0 or y.size == 0:
        return math.nan
    if kind == "rate":
        kx, ky = int(round(x.sum())), int(round(y.sum()))
        lo = unpaired_rate_test(kx, x.size, ky, y.size, alternative="less").p_value
        hi = unpaired_rate_test(kx, x.size, ky, y.size, alternative="greater").p_value
        return float(min(1.0, 2 * min(lo, hi)))
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def _wins(values: list[np.ndarray], keys: list[np.ndarray] | None, higher: bool) -> np.ndarray:
    """k × k head-to-head wins (ties half) of the variants' runs."""
    k = len(values)
    wins = np.zeros((k, k))
    sign = 1.0 if higher else -1.0
    for i, j in itertools.combinations(range(k), 2):
        if keys is not None:
            common, ia, ja = np.intersect1d(keys[i], keys[j], return_indices=True)
            if common.size == 0:
                continue
            d = sign * (values[i][ia] - values[j][ja])
            w_ij = float(np.sum(d > 0) + 0.5 * np.sum(d == 0))
            w_ji = float(np.sum(d < 0) + 0.5 * np.sum(d == 0))
        else:
            x, y = values[i], values[j]
            if x.size == 0 or y.size == 0:
                continue
            d = sign * (x[:, None] - y[None, :])
            m = min(x.size, y.size)
            w_ij = m * float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
            w_ji = m - w_ij
        wins[i, j] += w_ij
        wins[j, i] += w_ji
    return wins


def _per_key(frame: pl.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One value per pairing key (the mean of replicates) and the key codes."""
    import polars as pl

    g = frame.group_by(keys, maintain_order=True).agg(pl.col("value").mean())
    code = g.select(pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="\x1f")).to_series().to_numpy()
    return g["value"].to_numpy().astype(np.float64), code.astype(str)


def _preference_wins(prefs: pl.DataFrame | None, variants: list[str], cell: dict[str, Any]) -> np.ndarray:
    import polars as pl

    k = len(variants)
    wins = np.zeros((k, k))
    if prefs is None:
        return wins
    for col in ("a", "b", "winner"):
        if col not in prefs.columns:
            msg = f"preferences need columns a, b and winner (a, b, or 'tie'); they have {', '.join(prefs.columns)}"
            raise ConfigError(msg)
    part = prefs
    for w, v in cell.items():
        if w in prefs.columns:
            part = part.filter(pl.col(w).cast(pl.String) == str(v))
    idx = {v: i for i, v in enumerate(variants)}
    for a, b, win in part.select(pl.col("a").cast(pl.String), pl.col("b").cast(pl.String), pl.col("winner").cast(pl.String)).iter_rows():
        if a not in idx or b not in idx or a == b:
            continue
        if win == a:
            wins[idx[a], idx[b]] += 1
        elif win == b:
            wins[idx[b], idx[a]] += 1
        elif win in ("tie", "draw", "0.5"):
            wins[idx[a], idx[b]] += 0.5
            wins[idx[b], idx[a]] += 0.5
        else:
            msg = f"preference winner {win!r} is neither {a!r}, {b!r} nor 'tie'"
            raise ConfigError(msg)
    return wins


def _key_outcomes(keyed: list[tuple[np.ndarray, np.ndarray]], higher: bool) -> np.ndarray:
    """(keys, k, k) head-to-head outcome of every pairing key: 1 i beat j, ½ a tie, 0 a
    loss or no meeting (one variant lacks the key)."""
    keys = np.unique(np.concatenate([k_ for _v, k_ in keyed]))
    table = np.full((keys.size, len(keyed)), np.nan)
    for i, (v_, k_) in enumerate(keyed):
        table[np.searchsorted(keys, k_), i] = v_
    sign = 1.0 if higher else -1.0
    d = sign * (table[:, :, None] - table[:, None, :])
    out = np.where(np.isnan(d), 0.0, (d > 0) + 0.5 * (d == 0))
    idx = np.arange(len(keyed))
    out[:, idx, idx] = 0.0
    return out


def _connected(wins: np.ndarray) -> bool:
    """Whether every variant is linked to every other through head-to-head meetings."""
    met = (wins + wins.T) > 0
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for j in np.flatnonzero(met[i]):
            if int(j) not in seen:
                seen.add(int(j))
                todo.append(int(j))
    return len(seen) == wins.shape[0]


def _unpaired_wins(values: list[np.ndarray], higher: bool) -> np.ndarray:
    """Wins of every run of one variant against every run of another, weighted as
    ``min(n_i, n_j)`` comparisons."""
    return _wins(values, None, higher)


def _head_to_head(values: list[np.ndarray], keyed: list[tuple[np.ndarray, np.ndarray]] | None, higher: bool,
                  prefs: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Bradley–Terry strengths, bootstrap log strengths and a note on the pairing used."""
    from workbench.stats.ranking import bradley_terry, bradley_terry_batch

    k = len(values)
    note = ""
    outcomes = _key_outcomes(keyed, higher) if keyed is not None else None
    if outcomes is not None and not _connected(outcomes.sum(axis=0) + prefs):
        note = "runs share no pairing key across some variants: head-to-head from all runs, unpaired"
        outcomes = None
    if outcomes is not None:
        strength = bradley_terry(outcomes.sum(axis=0) + prefs)
        n_keys = outcomes.shape[0]
        counts = rng.multinomial(n_keys, np.full(n_keys, 1.0 / n_keys), size=n_boot) if n_boot else np.zeros((0, n_keys))
        boot_wins = (counts @ outcomes.reshape(n_keys, k * k)).reshape(-1, k, k)
    else:
        strength = bradley_terry(_unpaired_wins(values, higher) + prefs)
        boot_wins = np.stack([_unpaired_wins([v[rng.integers(0, v.size, v.size)] for v in values], higher)
                              for _ in range(n_boot)]) if n_boot else np.zeros((0, k, k))
    boot = np.log(bradley_terry_batch(boot_wins + prefs, start=strength)) if n_boot else np.zeros((0, k))
    return strength, boot, note


def rank(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    metric: str = "success",
    within: Sequence[str] | str | None = None,
    pair_by: Sequence[str] | str | None = None,
    preferences: pl.DataFrame | None = None,
    alpha: float = 0.05,
    min_grade: str | None = None,
    n_boot: int = 500,
    seed: int = 0,
) -> RankResult:
    """Rank the values of *by* on *metric*, per cell of *within* (see the module doc).

    Parameters
    ----------
    source
        A store (metrics computed on demand) or a catalog DataFrame.
    by
        The factor whose values are ranked (2–20 values per cell).
    metric
        A rate (e.g. ``success``) or a number; its direction comes from the metric
        (higher is better when unknown).
    within
        Factors defining cells ranked separately.
    pair_by
        Keys pairing runs of different variants for the head-to-head comparisons
        (default ``scenario.seed`` when the catalog has it; ``[]`` for none).
    preferences
        Optional explicit pairwise outcomes: columns ``a``, ``b``, ``winner`` (``a``,
        ``b`` or ``tie``), and optionally the *within* columns.
    alpha
        Family-wise level of the pairwise comparisons (Holm, per cell).
    min_grade
        Leave out runs graded below this (ungraded runs stay).
    n_boot
        Bootstrap replicates of the rank probabilities.
    seed
        Seed of the bootstrap.

    Raises
    ------
    ConfigError
        An unknown factor or metric (naming the valid ones), fewer than 2 or more than
        20 variants in a cell, no run with a value.
    """
    import polars as pl

    from workbench.stats.multiplicity import holm
    from workbench.stats.ranking import compact_letters, rank_matrix

    if isinstance(within, str):
        within = [w.strip() for w in within.split(",") if w.strip()]
    within = list(within or [])
    frame, kind, _unit, higher = metric_frame(source, metric, needs=[by, *within], min_grade=min_grade)
    pair_by = pairing_keys(frame, pair_by)
    missing = frame.filter(pl.col("value").is_null() | pl.col("value").is_nan() | pl.col(by).is_null())
    excluded = dict.fromkeys(missing["run_id"].to_list(), "no value of the metric")
    frame = frame.filter(~pl.col("run_id").is_in(missing["run_id"].to_list()))
    if frame.height == 0:
        msg = f"no run has a value of {metric!r} and of {by!r}"
        raise ConfigError(msg)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    pair_rows: list[dict[str, Any]] = []
    prob_rows: list[dict[str, Any]] = []
    groups = frame.group_by(within, maintain_order=True) if within else [((), frame)]
    for key, part in groups:
        cell = dict(zip(within, key, strict=True))
        variants = sorted(part[by].cast(pl.String).unique().to_list())
        if not 2 <= len(variants) <= 20:
            where = f" in cell {cell}" if cell else ""
            msg = f"ranking needs 2 to 20 values of {by!r}{where}, found {len(variants)}: {', '.join(variants[:25])}"
            raise ConfigError(msg)
        subs = [part.filter(pl.col(by).cast(pl.String) == v) for v in variants]
        values = [s["value"].to_numpy().astype(np.float64) for s in subs]
        prefs = _preference_wins(preferences, variants, cell)
        keyed = [_per_key(s, pair_by) for s in subs] if pair_by else None
        strength, boot, note = _head_to_head(values, keyed, higher, prefs, n_boot, rng)
        if note:
            notes[", ".join(f"{w}={v}" for w, v in cell.items()) or "all runs"] = note
        # ties (equal strengths in a replicate) broken at random: each rank goes to one variant
        ranks = rank_matrix(boot + rng.uniform(0, 1e-9, boot.shape)) if n_boot else np.zeros((0, len(variants)), np.int64)
        probs = np.stack([np.mean(ranks == q + 1, axis=0) for q in range(len(variants))], axis=1) if n_boot else \
            np.full((len(variants), len(variants)), np.nan)
        # pairwise tests, Holm within the cell
        pairs = list(itertools.combinations(range(len(variants)), 2))
        ps = np.array([_pair_p(kind, values[i], values[j]) for i, j in pairs])
        adj = holm(ps, alpha=alpha).adjusted if pairs else np.zeros(0)
        different = {(variants[i], variants[j]) for (i, j), pa in zip(pairs, adj, strict=True) if pa <= alpha}
        stats_ = [_interval(kind, v) for v in values]
        sign = 1.0 if higher else -1.0
        order = sorted(range(len(variants)), key=lambda i: (-sign * stats_[i][0], -strength[i], variants[i]))
        letters = compact_letters([variants[i] for i in order], different)
        bt_rank = rank_matrix(strength[None, :])[0]
        for i in order:
            rows.append({**cell, by: variants[i], "n": int(values[i].size), "value": stats_[i][0], "lo": stats_[i][1],
                         "hi": stats_[i][2], "strength": float(strength[i]), "rank": int(bt_rank[i]),
                         "p_best": float(probs[i, 0]), "letters": letters[variants[i]],
                         "run_ids": subs[i]["run_id"].to_list()})
            for q in range(len(variants)):
                prob_rows.append({**cell, by: variants[i], "rank": q + 1, "probability": float(probs[i, q])})
        for (i, j), p, pa in zip(pairs, ps, adj, strict=True):
            pair_rows.append({**cell, "a": variants[i], "b": variants[j], "difference": stats_[i][0] - stats_[j][0],
                              "p": float(p), "p_adj": float(pa), "different": bool(pa <= alpha)})
    return RankResult(by, metric.removeprefix("metrics."), kind, within, pl.DataFrame(rows), pl.DataFrame(pair_rows),
                      pl.DataFrame(prob_rows), pair_by, alpha, excluded, notes)
