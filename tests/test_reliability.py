"""Crash safety and concurrency of ingest, at the scale the hardening issue asks for.

* SIGKILL at random moments of an ingest, over 50 trials: the store always opens, the
  catalog equals a rebuild from the manifests, no run is partial, and a final re-ingest
  completes with every run exactly once.
* 8 processes ingesting overlapping file sets into one store: every run exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
from conftest import stored_runs

import workbench as wb
from workbench.store import TMP_DIR

SCRIPT = textwrap.dedent(
    """
    import sys, workbench as wb
    import numcodecs, polars, xarray, zarr  # heavy imports before "ready": kills land in the ingest
    from workbench.io.registry import readers
    readers()
    store = wb.open_store(sys.argv[1])
    print("ready", flush=True)
    store.ingest(sys.argv[2:])
    """
)


def tables(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        t = 1_700_000_000 + i * 100 + np.arange(3000) * 0.01
        p = folder / f"run_{i:03d}.csv"
        pl.DataFrame({"time": t, "a": np.sin(t), "b": np.cos(t) * i}).write_csv(p)
        out.append(p)
    return out


def check_consistent(store_dir: Path) -> int:
    store = wb.open_store(store_dir)
    assert os.listdir(store_dir / TMP_DIR) == []  # the dead writer's leftovers are gone
    assert stored_runs(store_dir) == store.run_ids()  # every run is complete
    cat = store.runs()
    assert cat["run_id"].is_unique().all()
    assert cat.equals(store.rebuild_catalog())
    return cat.height


def test_sigkill_at_random_moments_50_trials(tmp_path):
    files = [str(p) for p in tables(tmp_path / "logs", 24)]
    store_dir = tmp_path / "store"
    wb.open_store(store_dir)
    rng = random.Random(20261122)
    counts = []
    for _trial in range(50):
        order = files[:]
        rng.shuffle(order)
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(store_dir), *order], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(check_consistent(store_dir))
        if counts[-1] == len(files):  # everything made it: start over to keep killing mid-way
            for rid in wb.open_store(store_dir).run_ids():
                wb.open_store(store_dir).remove(rid)
    assert any(0 < c < len(files) for c in counts), counts  # some kills really landed mid-ingest
    report = wb.open_store(store_dir).ingest(files)
    assert report.ok and len(report.ingested) + len(report.present) == len(files)
    assert check_consistent(store_dir) == len(files)


def test_eight_processes_with_overlapping_sets(tmp_path):
    files = [str(p) for p in tables(tmp_path / "logs", 32)]
    store_dir = tmp_path / "store"
    procs = []
    for k in range(8):
        subset = files[k * 3 : k * 3 + 12] + files[:4]  # overlapping windows plus a shared head
        procs.append(subprocess.Popen([sys.executable, "-c", SCRIPT, str(store_dir), *subset], stdout=subprocess.DEVNULL))
    assert [p.wait(timeout=600) for p in procs] == [0] * 8
    covered = {f for k in range(8) for f in files[k * 3 : k * 3 + 12] + files[:4]}
    assert check_consistent(store_dir) == len(covered)
    names = wb.open_store(store_dir).runs()["name"].to_list()
    assert sorted(names) == sorted(Path(f).stem for f in covered)
