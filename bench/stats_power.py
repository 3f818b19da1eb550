"""The gate's false-alarm rate and power by simulation, beside the old gate and an oracle.

Simulated catalogs of ``cells`` cells with ``n`` runs a side (success only, or 20 %
unknown outcomes; unpaired, or paired by seed with correlated outcomes):

* **gate** -- ``wb.compare(...).status == "regression"`` (primary ``success``, one-sided
  exact tests, score-ordered Holm);
* **d.Holm** -- the same exact tests with the discrete Holm step (one p-value threshold
  for every cell), the gate before the score order (one primary metric only);
* **old gate** -- the earlier rule: two-sided Fisher (McNemar when paired) in every
  cell, Holm over the cells, regression when the adjusted p < α and the drop is < 0;
* **oracle** -- one one-sided exact test (Fisher; McNemar when paired) at α on the
  one affected cell, which it knows.

Printed per grid point: the family-wise false-alarm rate under the null (target
≤ 5 % + 2 SE) and the power against a drop in one cell, with ``reps`` replications
(default 300). Acceptance: 0.9 → 0.6 in 1 of 8 cells at n=20 unpaired ≥ 0.50;
0.9 → 0.7 in 1 of 8 at n=40 ≥ 0.35.

Quick: ``.venv/bin/python bench/stats_power.py --reps 100``; the whole null grid:
``--full`` (n 5/10/20/40 × base 0.5–0.95 × 1/4/8/16 cells × paired/unpaired × unknowns).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

import workbench as wb
from workbench.stats.multiplicity import discrete_holm
from workbench.stats.rates import paired_rate_test, unpaired_rate_test


def catalog(rng: np.random.Generator, n: int, cells: int, base: float, cand: float | None, *,
            paired: bool, unknown: float, primaries: int = 1) -> pl.DataFrame:
    """Success per run (and ``primaries - 1`` more 0/1 primary metrics, independent, at
    the base rate in both variants: under the null like success)."""
    rows = []
    for c in range(cells):
        latent = rng.random(n)  # paired: the same seed is easy or hard for both variants
        for v in ("v1", "v2"):
            p = cand if (cand is not None and v == "v2" and c == 0) else base
            u = latent if paired else rng.random(n)
            if paired:
                u = np.clip(u + rng.normal(0, 0.15, n), 0, 1)
            ok = (u < p).astype(float)
            for k in range(n):
                val = None if rng.random() < unknown else float(ok[k])
                rows.append((f"{c}-{v}-{k}", f"c{c}", v, k, val))
    df = pl.DataFrame(rows, schema=["run_id", "environment.cell", "model.version", "scenario.seed", "metrics.success"], orient="row")
    for j in range(2, primaries + 1):
        more = (rng.random(df.height) < base).astype(float)
        gone = rng.random(df.height) < unknown
        df = df.with_columns(pl.Series(f"metrics.m{j}", np.where(gone, np.nan, more)).fill_nan(None))
    return df if paired else df.drop("scenario.seed")


def _cell_counts(cat: pl.DataFrame, cell: str, paired: bool) -> tuple[float, float, float, Any]:
    """(two-sided p, one-sided p for a drop, difference, the one-sided exact test as a
    ``RateTest``) of one cell, Fisher or McNemar (scipy for the p-values)."""
    sub = cat.filter((pl.col("environment.cell") == cell) & pl.col("metrics.success").is_not_null())
    b = sub.filter(pl.col("model.version") == "v1")
    c = sub.filter(pl.col("model.version") == "v2")
    if b.height == 0 or c.height == 0:
        return math.nan, math.nan, math.nan, None
    if paired:
        j = b.join(c, on="scenario.seed", suffix="_c")
        x, y = j["metrics.success"].to_numpy(), j["metrics.success_c"].to_numpy()
        bo, co = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
        m = bo + co
        test = paired_rate_test(bo, co, j.height) if j.height else None
        if m == 0:
            return 1.0, 1.0, 0.0, test
        return (stats.binomtest(co, m).pvalue, stats.binomtest(co, m, alternative="less").pvalue, (co - bo) / j.height, test)
    kb, nb = int(b["metrics.success"].sum()), b.height
    kc, nc = int(c["metrics.success"].sum()), c.height
    table = [[kc, nc - kc], [kb, nb - kb]]
    return (stats.fisher_exact(table).pvalue, stats.fisher_exact(table, alternative="less").pvalue, kc / nc - kb / nb,
            unpaired_rate_test(kb, nb, kc, nc))


def point(rng: np.random.Generator, reps: int, n: int, cells: int, base: float, cand: float | None,
          paired: bool, unknown: float, primaries: int = 1) -> tuple[float, float, float, float]:
    """(gate, old gate, oracle, discrete-Holm gate) rejection rates; the last is NaN with
    more than one primary metric."""
    gate = old = oracle = dholm = 0
    metrics = ["success", *(f"m{j}" for j in range(2, primaries + 1))]
    for _ in range(reps):
        cat = catalog(rng, n, cells, base, cand, paired=paired, unknown=unknown, primaries=primaries)
        res = wb.compare(cat, within=["environment.cell"], metrics=metrics, primary=metrics, attribution_factors=[])
        gate += res.status == "regression"
        per = [_cell_counts(cat, f"c{c}", paired) for c in range(cells)]
        p2 = np.array([x[0] for x in per])
        ok = ~np.isnan(p2)
        adj = np.full(cells, np.nan)
        if ok.any():
            order = np.flatnonzero(ok)[np.argsort(p2[ok])]
            running = 0.0
            for rank, i in enumerate(order):
                running = max(running, min(1.0, (order.size - rank) * p2[i]))
                adj[i] = running
        old += any(adj[i] < 0.05 and per[i][2] < 0 for i in range(cells) if ok[i])
        oracle += per[0][1] <= 0.05
        tests = [x[3] for x in per]
        if primaries == 1 and any(t is not None for t in tests):
            dholm += discrete_holm([t.p_value if t is not None else math.nan for t in tests], tests).rejected.any()
    return gate / reps, old / reps, oracle / reps, (dholm / reps if primaries == 1 else math.nan)


def _null_point(args: tuple[Any, ...]) -> tuple[float, float]:
    seed, reps, n, base, cells, paired, unknown, primaries = args
    g, o, _, d = point(np.random.default_rng(seed), reps, n, cells, base, None, paired, unknown, primaries)
    return g, o, d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300, help="replications per grid point")
    ap.add_argument("--full", action="store_true", help="the whole null grid of the acceptance study")
    ap.add_argument("--workers", type=int, default=1, help="processes the grid points are spread over")
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    reps = args.reps
    se = math.sqrt(0.05 * 0.95 / reps)
    t0 = time.perf_counter()
    print(f"== false alarms under the null ({reps} replications per point; target ≤ {0.05 + 2 * se:.3f} = 5 % + 2 SE)")
    print(f"   {'n':>3} {'base':>5} {'cells':>5} {'paired':>6} {'unknown':>7} {'primary':>7}   {'gate':>6} {'d.Holm':>6} {'old gate':>8}")
    if args.full:  # every combination with success as the one primary metric; 2 and 3 primaries on a sub-grid
        grid = [(*g, 1) for g in itertools.product((5, 10, 20, 40), (0.5, 0.7, 0.9, 0.95), (1, 4, 8, 16), (False, True), (0.0, 0.2))]
        grid += [(*g, k) for g in itertools.product((5, 20, 40), (0.5, 0.9), (1, 8), (False, True), (0.0, 0.2)) for k in (2, 3)]
    else:
        grid = [(10, 0.5, 8, False, 0.0, 1), (20, 0.9, 8, False, 0.0, 1), (20, 0.8, 4, True, 0.0, 1),
                (40, 0.7, 16, False, 0.2, 1), (5, 0.95, 4, False, 0.0, 1), (20, 0.5, 1, True, 0.2, 1),
                (20, 0.7, 8, False, 0.0, 3)]
    seeds = np.random.SeedSequence(2027).spawn(len(grid))
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_null_point, [(s, reps, *g) for s, g in zip(seeds, grid, strict=True)], chunksize=1))
    else:
        results = [_null_point((s, reps, *g)) for s, g in zip(seeds, grid, strict=True)]
    worst = 0.0
    above = 0
    for (n, base, cells, paired, unknown, primaries), (g, o, d) in zip(grid, results, strict=True):
        worst = max(worst, g)
        above += g > 0.05 + 2 * se
        flag = "" if g <= 0.05 + 2 * se else "  ← above the target"
        print(f"   {n:>3} {base:>5} {cells:>5} {paired!s:>6} {unknown:>7} {primaries:>7}   {g:6.3f} {d:6.3f} {o:8.3f}{flag}")
    print(f"   worst false-alarm rate of the gate over {len(grid)} points: {worst:.3f}; "
          f"points above 5 % + 2 SE: {above} (by chance alone about {len(grid) * 0.023:.0f} of {len(grid)} would be)")
    print(f"== power against a drop in 1 cell ({reps} replications; oracle: one exact test at α on that cell)")
    print(f"   {'n':>3} {'drop':>10} {'cells':>5} {'paired':>6}   {'gate':>6} {'d.Holm':>6} {'old gate':>8} {'oracle':>7}  target")
    for n, base, cand, cells, paired, target in ((20, 0.9, 0.6, 8, False, 0.50), (40, 0.9, 0.7, 8, False, 0.35),
                                                 (10, 0.9, 0.7, 8, False, None), (20, 0.9, 0.7, 8, False, None),
                                                 (20, 0.9, 0.6, 8, True, None), (20, 0.8, 0.5, 4, False, None)):
        g, o, orc, d = point(rng, reps, n, cells, base, cand, paired, 0.0)
        want = f"≥ {target:.2f} {'met' if g >= target else 'NOT met'}" if target is not None else ""
        print(f"   {n:>3} {f'{base} → {cand}':>10} {cells:>5} {paired!s:>6}   {g:6.3f} {d:6.3f} {o:8.3f} {orc:7.3f}  {want}")
    print(f"   total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
