"""Metrics by role and moment search over a fleet of sample-sized runs.

On ``--runs`` runs of the sample campaign (``workbench.samples.generate``, ingested on a
2-worker ``LocalCluster``), one process, figures side by side:

1. every built-in metric (``wb.metrics.compute``), serially (``scheduler="sync"``) and on
   the 2-worker cluster, runs/s; beside a hand-written numpy loop over the same arrays
   (each run loaded from the store, then path length, RMS jerk, tracking error, effort,
   peak force and jitter in a few lines of numpy each: what a user would otherwise write,
   without roles, pieces, null reasons or the outcome and vehicle metrics);
2. ``wb.find`` of one threshold rule over the same runs, serially and on the cluster,
   runs/s;
3. role resolution: every role of :data:`workbench.metrics.roles.ROLES` resolved on every
   run (``resolve_all``), milliseconds per run (target < 1 ms).

Quick: ``.venv/bin/python bench/metrics.py --runs 100``; full size: the default 2,000.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RULE = {"name": "pushing", "signal": {"norm": {"stream": "ft_sensor", "variable": "force"}},
        "above": 3.0, "release": 1.5, "min_duration": 0.2}


def numpy_loop(store: Any, ids: list[str]) -> list[dict[str, float]]:
    """The sample campaign's joint metrics by hand: load, then plain numpy per run."""
    out = []
    for rid in ids:
        run = store.load(rid, streams=["joint_states", "joint_commands", "ft_sensor"], indexes=False)
        js, cmd, ft = run.streams["joint_states"], run.streams.get("joint_commands"), run.streams.get("ft_sensor")
        t = js["time"].values.astype(np.int64) / 1e9
        q = js["position"].values.astype(np.float64)
        row = {"joint_path_length": float(np.nansum(np.abs(np.diff(q, axis=0))))}
        grid = np.arange(0, t[-1] - t[0], 0.01)
        g = np.column_stack([np.interp(grid, t - t[0], q[:, j]) for j in range(q.shape[1])])
        sm = np.column_stack([np.convolve(g[:, j], np.ones(5) / 5, mode="valid") for j in range(g.shape[1])])
        jerk = np.diff(sm, n=3, axis=0) * 1e6
        row["jerk_rms"] = float(np.sqrt(np.nanmean(jerk**2)))
        if cmd is not None:
            tc = cmd["time"].values.astype(np.int64) / 1e9
            c = cmd["position"].values.astype(np.float64)
            inside = (tc >= t[0]) & (tc <= t[-1])
            err = np.column_stack([np.interp(tc[inside], t, q[:, j]) for j in range(q.shape[1])]) - c[inside]
            row["tracking_error_rms"] = float(np.sqrt(np.nanmean(err**2)))
        e = js["effort"].values.astype(np.float64)
        row["effort_rms"] = float(np.sqrt(np.nanmean(e**2)))
        if ft is not None:
            row["peak_force"] = float(np.nanmax(np.linalg.norm(ft["force"].values, axis=1)))
        row["jitter"] = float(np.std(np.diff(js["time"].values.astype(np.int64)) / 1e6))
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    import psutil
    from distributed import Client, LocalCluster

    import workbench as wb
    from workbench.metrics.roles import ROLES, resolve_all
    from workbench.samples import generate

    print(f"machine: {psutil.virtual_memory().total / 1e9:.1f} GB RAM, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews the timings)")
    work = Path(tempfile.mkdtemp(prefix="wb-metrics-"))
    try:
        t0 = time.perf_counter()
        generate(work / "campaign", runs=args.runs, workers=2)
        files = sorted((work / "campaign").rglob("*.mcap")) + sorted((work / "campaign").rglob("*.bag"))
        files = [f for f in files if "truncated" not in f.name]
        print(f"generated {len(files)} runs ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as lc, \
                Client(lc) as client:
            store = wb.open_store(work / "store")
            t0 = time.perf_counter()
            store.ingest(files, scheduler=client)
            ids = store.run_ids()
            n = len(ids)
            print(f"ingested {n} runs on the cluster in {time.perf_counter() - t0:.0f} s")
            names = sorted(wb.metrics.metrics())
            print(f"== 1. all {len(names)} built-in metrics ({', '.join(names)})")
            t0 = time.perf_counter()
            serial = wb.metrics.compute(store, scheduler="sync", store_results=False)
            t_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            dist = wb.metrics.compute(store, scheduler=client, store_results=False)
            t_d = time.perf_counter() - t0
            t0 = time.perf_counter()
            hand = numpy_loop(store, ids)
            t_h = time.perf_counter() - t0
            # the hand loop and the workbench agree where they compute the same thing
            by_id = {r["run_id"]: r for r in serial.to_dicts()}
            for rid, h in zip(ids, hand, strict=True):
                w = by_id[rid]
                for k in ("joint_path_length", "effort_rms", "peak_force"):
                    if k in h and w.get(k) is not None:
                        assert abs(w[k] - h[k]) <= 1e-6 * max(1.0, abs(h[k])), (rid, k, w[k], h[k])
            assert serial.sort("run_id").equals(dist.sort("run_id"), null_equal=True)
            nulls = {c: int(serial[c].null_count()) for c in serial.columns if not c.endswith((".why", ".error")) and c != "run_id"}
            print(f"   {'':<40} {'seconds':>8} {'runs/s':>8}")
            print(f"   {'workbench, serial':<40} {t_s:8.1f} {n / t_s:8.1f}   ({len(serial.columns) - 1} columns incl. reasons)")
            print(f"   {'workbench, 2 worker processes':<40} {t_d:8.1f} {n / t_d:8.1f}   → {t_s / t_d:.2f}× serial")
            print(f"   {'hand-written numpy loop (6 metrics)':<40} {t_h:8.1f} {n / t_h:8.1f}   (serial, load + numpy)")
            print(f"   workbench serial / numpy loop: {t_h / t_s:.2f}× the speed for every metric; "
                  f"2 workers: {t_h / t_d:.2f}×")
            print(f"   null on the sample campaign (no inputs there): "
                  f"{', '.join(f'{k} {v}' for k, v in nulls.items() if v) or 'none'}")
            print("== 2. wb.find of one threshold rule (norm of ft_sensor/force above 3 N for 0.2 s)")
            t0 = time.perf_counter()
            hits_s = wb.find(store, RULE, scheduler="sync")
            f_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            hits_d = wb.find(store, RULE, scheduler=client)
            f_d = time.perf_counter() - t0
            assert hits_s.sort("run_id", "start").equals(hits_d.sort("run_id", "start"))
            print(f"   {hits_s.height:,} hits in {hits_s['run_id'].n_unique():,} of {n:,} runs")
            print(f"   serial             {f_s:7.1f} s {n / f_s:8.1f} runs/s")
            print(f"   2 worker processes {f_d:7.1f} s {n / f_d:8.1f} runs/s  → {f_s / f_d:.2f}×")
        print(f"== 3. role resolution ({len(ROLES)} roles per run)")
        from workbench.pieces import load_for_work

        sample = ids[: min(200, n)]
        runs = [load_for_work(store, rid) for rid in sample]  # as metrics open them
        t0 = time.perf_counter()
        for run in runs:
            resolve_all(run)
        per = (time.perf_counter() - t0) / len(runs) * 1e3
        print(f"   {per:.3f} ms per run for all {len(ROLES)} roles ({per / len(ROLES) * 1e3:.1f} µs a role); target < 1 ms")
        print("== summary")
        print(f"   metrics, serial               {n / t_s:8.1f} runs/s")
        print(f"   metrics, 2 workers            {n / t_d:8.1f} runs/s  ({t_s / t_d:.2f}×)")
        print(f"   numpy loop (6 metrics)        {n / t_h:8.1f} runs/s")
        print(f"   find, serial / 2 workers      {n / f_s:8.1f} / {n / f_d:.1f} runs/s")
        print(f"   role resolution               {per:8.3f} ms per run")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
