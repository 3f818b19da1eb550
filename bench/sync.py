"""Alignment speed beside the usual baselines, one run, ratios printed.

A 1M-sample stream (3 float64 variables) is put on the time axis of a 10M-sample
stream: nearest and backward as-of (targets: within 1.5× of polars ``join_asof``,
i.e. at least 0.67× its rate, and faster than ``pandas.merge_asof``) and linear
interpolation (target: at least ``np.interp``'s rate, which interpolates one
variable per call).

Timings are the best of several runs, ours and the baselines' interleaved so that
load from other jobs on the machine hits them alike. Both workbench and polars use
several threads; ``np.interp`` and pandas use one.

Run: ``.venv/bin/python bench/sync.py [--small]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import xarray as xr

from workbench import sync
from workbench.sync import resample


def best(fns: dict[str, Callable[[], object]], repeat: int = 7, once: tuple[str, ...] = ()) -> dict[str, float]:
    """Best wall time of each function over *repeat* interleaved rounds (*once*: one round only)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeat):
        for name, fn in fns.items():
            if round_ and name in once:
                continue
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


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
        t = best(
            {
                "workbench": lambda m=method: resample(ds, t_big, method=m, tolerance="inf"),
                "polars join_asof": lambda s=strategy: left.join_asof(right, on="t", strategy=s),
                "pandas merge_asof": lambda s=strategy: pd.merge_asof(pleft, pright, on="t", direction=s),
            },
            once=("pandas merge_asof",),
        )
        targets = {"polars join_asof": (">=", 1 / 1.5), "pandas merge_asof": (">", 1.0)}
        rows.append((f"as-of {strategy}", t.pop("workbench"), t, targets))
    ds1 = ds.isel(axis=0)
    t = best(
        {
            "workbench": lambda: resample(ds, t_big, method="linear", tolerance="inf"),
            "np.interp ×3": lambda: [np.interp(t_big, t_small, vals[:, j]) for j in range(3)],
        }
    )
    rows.append(("linear, 3 variables", t.pop("workbench"), t, {"np.interp ×3": (">=", 1.0)}))
    t = best(
        {
            "workbench": lambda: resample(ds1, t_big, method="linear", tolerance="inf"),
            "np.interp": lambda: np.interp(t_big, t_small, vals[:, 0]),
        }
    )
    rows.append(("linear, 1 variable", t.pop("workbench"), t, {"np.interp": (">=", 1.0)}))

    print(f"{n_small:,}-sample stream onto {n_big:,} target times (rows/s = target rows per second)")
    print(f"threads: workbench {sync._threads()}, polars {pl.thread_pool_size()}")
    missed = []
    for name, ours, base, targets in rows:
        line = f"  {name:<22} workbench {n_big / ours / 1e6:7.1f} M rows/s"
        verdicts = []
        for bname, bt in base.items():
            line += f" | {bname} {n_big / bt / 1e6:6.1f} M rows/s (workbench is {bt / ours:4.2f}×)"
            op, bound = targets[bname]
            met = bt / ours >= bound if op == ">=" else bt / ours > bound
            sign = "≥" if op == ">=" else ">"
            verdicts.append(f"{sign}{bound:.2f}× {bname.split()[0]}: {'met' if met else 'MISSED'}")
            if not met:
                missed.append(f"{name} vs {bname}")
        print(f"{line}  [target {'; '.join(verdicts)}]")
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    # correctness spot checks against the baselines
    ours = resample(ds, t_big[:1000], method="previous", tolerance="inf")["v"].values[:, 0]
    ref = left.head(1000).join_asof(right, on="t", strategy="backward")["x"].to_numpy()
    assert np.allclose(ours, ref, equal_nan=True)
    ours = resample(ds, t_big[:1000], method="linear", tolerance="inf")["v"].values[:, 1]
    ref = np.interp(t_big[:1000], t_small, vals[:, 1], left=np.nan, right=np.nan)
    assert np.allclose(ours, ref, equal_nan=True)


if __name__ == "__main__":
    main()
