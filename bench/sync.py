"""Alignment speed beside the usual baselines, one run, ratios printed.

A 1M-sample stream (3 float64 variables) is put on the time axis of a 10M-sample
stream: nearest and backward as-of (targets: within 1.5× of polars ``join_asof``
and faster than ``pandas.merge_asof``) and linear interpolation (target: at least
``np.interp``'s rate, which interpolates one variable per call).

Run: ``.venv/bin/python bench/sync.py [--small]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import polars as pl
import xarray as xr

from workbench.sync import resample


def best(fn, repeat=3):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    n_big, n_small = (1_000_000, 100_000) if args.small else (10_000_000, 1_000_000)
    rng = np.random.default_rng(0)
    t_big = np.cumsum(rng.integers(1, 200, n_big)).astype(np.int64)  # irregular, ~100 ns apart
    t_small = np.sort(rng.choice(t_big[-1], n_small, replace=False)).astype(np.int64)
    vals = rng.normal(size=(n_small, 3))
    ds = xr.Dataset({"v": (("time", "axis"), vals)}, coords={"time": t_small, "axis": ["x", "y", "z"]})
    rows = []

    left = pl.DataFrame({"t": t_big})
    right = pl.DataFrame({"t": t_small, "x": vals[:, 0], "y": vals[:, 1], "z": vals[:, 2]})
    pleft, pright = left.to_pandas(), right.to_pandas()
    for strategy, method in (("nearest", "nearest"), ("backward", "previous")):
        t_pl = best(lambda: left.join_asof(right, on="t", strategy=strategy))
        t_pd = best(lambda: pd.merge_asof(pleft, pright, on="t", direction=strategy), repeat=1)
        t_wb = best(lambda: resample(ds, t_big, method=method, tolerance="inf"))
        rows.append((f"as-of {strategy}", t_wb, {"polars join_asof": t_pl, "pandas merge_asof": t_pd}))
    t_np = best(lambda: [np.interp(t_big, t_small, vals[:, j]) for j in range(3)])
    t_np1 = best(lambda: np.interp(t_big, t_small, vals[:, 0]))
    t_lin = best(lambda: resample(ds, t_big, method="linear", tolerance="inf"))
    ds1 = ds.isel(axis=0)
    t_lin1 = best(lambda: resample(ds1, t_big, method="linear", tolerance="inf"))
    rows.append(("linear, 3 variables", t_lin, {"np.interp ×3": t_np}))
    rows.append(("linear, 1 variable", t_lin1, {"np.interp": t_np1}))

    print(f"{n_small:,}-sample stream onto {n_big:,} target times (rows/s = target rows per second)")
    for name, ours, base in rows:
        line = f"  {name:<22} workbench {n_big / ours / 1e6:7.1f} M rows/s"
        for bname, bt in base.items():
            line += f" | {bname} {n_big / bt / 1e6:6.1f} M rows/s (workbench is {bt / ours:4.2f}×)"
        print(line)
    # correctness spot check against the baselines
    ours = resample(ds, t_big[:1000], method="previous", tolerance="inf")["v"].values[:, 0]
    ref = left.head(1000).join_asof(right, on="t", strategy="backward")["x"].to_numpy()
    assert np.allclose(ours, ref, equal_nan=True)


if __name__ == "__main__":
    main()
