"""Fleet-scale work on Dask: serial vs 2 local worker processes, on a generated campaign.

Generates a campaign (default 2,000 runs of the sample simulator, compact rates), then
times ingest, grading and metrics serially and on a ``LocalCluster`` of 2 worker
processes, printing the wall-time ratios, and the per-run overhead of the distributed
path (a no-op task per run through the same cluster). Results are checked equal.

Run: ``.venv/bin/python bench/scale.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import workbench as wb
from workbench.parallel import map_runs
from workbench.samples import generate


def _noop(item: str) -> str:
    return item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        generate(tmp / "campaign", runs=args.runs, workers=2)
        files = sorted((tmp / "campaign").rglob("*.mcap")) + sorted((tmp / "campaign").rglob("*.bag"))
        files = [f for f in files if "truncated" not in f.name]
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"generated {len(files)} runs ({size:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        rows = []
        serial = wb.open_store(tmp / "serial")
        t0 = time.perf_counter()
        serial.ingest(files)
        t_ing_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        g_s = wb.quality.grade_store(serial, scheduler="sync")
        t_grade_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m_s = wb.metrics.compute(serial, scheduler="sync", store_results=False)
        t_met_s = time.perf_counter() - t0
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc) as client:
            dist = wb.open_store(tmp / "dist")
            t0 = time.perf_counter()
            dist.ingest(files, scheduler=client)
            t_ing_d = time.perf_counter() - t0
            t0 = time.perf_counter()
            g_d = wb.quality.grade_store(dist, scheduler=client)
            t_grade_d = time.perf_counter() - t0
            t0 = time.perf_counter()
            m_d = wb.metrics.compute(dist, scheduler=client, store_results=False)
            t_met_d = time.perf_counter() - t0
            ids = dist.run_ids()
            t0 = time.perf_counter()
            map_runs(_noop, ids, scheduler=client)
            per_task = (time.perf_counter() - t0) / len(ids)
        assert g_d.sort("run_id")["grade"].equals(g_s.sort("run_id")["grade"])
        assert m_d.sort("run_id").equals(m_s.sort("run_id"))
        rows = [("ingest", t_ing_s, t_ing_d), ("grade", t_grade_s, t_grade_d), ("metrics", t_met_s, t_met_d)]
        print(f"{len(files)} runs, serial vs LocalCluster(2 worker processes):")
        for name, s, p in rows:
            print(f"  {name:<8} serial {s:7.1f} s ({1000 * s / len(files):5.1f} ms/run) | 2 workers {p:7.1f} s  → {s / p:4.2f}× faster")
        print(f"  distributed overhead per run (no-op task through the cluster): {1000 * per_task:.2f} ms")


if __name__ == "__main__":
    main()
