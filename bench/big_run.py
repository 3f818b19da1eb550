"""One run larger than memory: generated into a store, then graded and measured lazily.

Generates a single long run straight into a store, piece by piece (bounded memory):
``joint_states`` at 1 kHz (position/velocity/effort of 7 joints, float32, with
header stamps), ``joint_commands`` and ``tf.tool0`` and ``ft_sensor`` at 100 Hz, a 2 s
hole in the joint states and a 8 ms command-to-motion lag. Then, each in a fresh
process, it opens the run lazily, grades it (:func:`workbench.quality.grade_store`)
and computes the built-in metrics (:func:`workbench.metrics.compute`), printing the
data size, the wall time and the peak RSS of each step against the run's size.
A last step grades and measures the run opened without xarray's in-memory index of
the time coordinate (which ``Store.load`` builds: 8 bytes per row of each stream), to
show what the piece-by-piece reading itself needs.

Quick run (1 GB): ``.venv/bin/python bench/big_run.py``.
Full size, a run larger than half of a 24 GB machine's memory:
``.venv/bin/python bench/big_run.py --gb 13`` (needs ~14 GB of free disk; the size is
scaled down, with a message, when the disk cannot hold it). The generated store is
deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

RATE_HZ = 1000
SLOW_EVERY = 10  # commands, TF and F/T at 100 Hz
JOINTS = [f"joint_{i}" for i in range(1, 8)]
ROW_BYTES = 8 + 8 + 3 * 7 * 4  # joint_states: time, header_time, 3 × 7 float32
SLOW_BYTES = (8 + 8 + 7 * 4) + (8 + 3 * 4) + (8 + 3 * 4)  # commands, tf, ft per slow row
PIECE_ROWS = 250_000
T0 = 1_780_000_000 * 10**9
LAG_NS = 8_000_000
GAP = (0.5, 2.0)  # a hole at half the run, seconds long


def _rss_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM`` (``ru_maxrss`` keeps the parent's peak
    across ``exec`` on Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _parts(rows: int) -> Iterator[tuple[str, Any]]:
    import xarray as xr

    rng = np.random.default_rng(0)
    amp = np.linspace(0.4, 1.2, 7)
    freq = np.linspace(0.05, 0.3, 7)
    gap_lo = int(rows * GAP[0])
    gap_hi = gap_lo + int(GAP[1] * RATE_HZ)

    def q(tsec: np.ndarray) -> np.ndarray:
        return amp * np.sin(2 * np.pi * np.outer(tsec, freq) + np.arange(7))

    for a in range(0, rows, PIECE_ROWS):
        k = np.arange(a, min(rows, a + PIECE_ROWS))
        k = k[(k < gap_lo) | (k >= gap_hi)]
        t = T0 + k * (1_000_000_000 // RATE_HZ) + rng.integers(0, 200_000, k.size)
        s = (t - T0) / 1e9
        pos = q(s - LAG_NS / 1e9) + rng.normal(0, 2e-4, (k.size, 7))
        vel = 2 * np.pi * freq * amp * np.cos(2 * np.pi * np.outer(s - LAG_NS / 1e9, freq) + np.arange(7))
        effort = 5 * pos + rng.normal(0, 0.05, (k.size, 7))
        coords = {"time": t, "header_time": ("time", t - 1_500_000 - rng.integers(0, 300_000, k.size)), "joint": JOINTS}
        yield "joint_states", xr.Dataset(
            {
                "position": (("time", "joint"), pos.astype(np.float32)),
                "velocity": (("time", "joint"), vel.astype(np.float32)),
                "effort": (("time", "joint"), effort.astype(np.float32)),
            },
            coords=coords,
        )
        slow = np.arange(a, min(rows, a + PIECE_ROWS), SLOW_EVERY)  # PIECE_ROWS is a multiple of SLOW_EVERY
        ts = T0 + slow * (1_000_000_000 // RATE_HZ)
        ss = (ts - T0) / 1e9
        yield "joint_commands", xr.Dataset(
            {"position": (("time", "joint"), q(ss).astype(np.float32))},
            coords={"time": ts, "header_time": ("time", ts - 200_000), "joint": JOINTS},
        )
        tool = np.column_stack([0.5 + 0.2 * np.sin(ss), 0.1 * np.cos(0.5 * ss), 0.3 + 0.05 * np.sin(2 * ss)])
        yield "tf.tool0", xr.Dataset({"translation": (("time", "axis"), tool.astype(np.float32))}, coords={"time": ts, "axis": ["x", "y", "z"]})
        force = rng.normal(0, 2, (ts.size, 3)) + [0, 0, 10]
        yield "ft_sensor", xr.Dataset({"force": (("time", "axis"), force.astype(np.float32))}, coords={"time": ts, "axis": ["x", "y", "z"]})


def generate(store_dir: Path, rows: int) -> dict[str, float]:
    """Write the run into a new store at *store_dir*, piece by piece."""
    import polars as pl

    import workbench as wb
    from workbench.model import RunInfo

    store = wb.open_store(store_dir)
    start = time.perf_counter()
    info = RunInfo("big-run", start_ns=T0, end_ns=T0 + rows * (1_000_000_000 // RATE_HZ),
                   hardware={"robot": "arm-big"}, scenario={"task": "endurance"})
    events = pl.DataFrame({"time": [T0 + rows * 1_000_000 - 1], "kind": ["success"], "detail": ["{}"]})
    # the store's streaming writer (workbench.columnar.ParquetStreamWriter per stream), as ingest uses it
    store._write_run(info, _parts(rows), events)
    store.rebuild_catalog()
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _rss_mb()}


def step(store_dir: Path, what: str) -> dict[str, Any]:
    """One measured step in this process (see ``labels`` in :func:`main`)."""
    import workbench as wb
    from workbench import metrics, quality

    store = wb.open_store(store_dir, create=False)
    start = time.perf_counter()
    out: dict[str, Any] = {}
    if what == "imports":  # the floor: Python with the libraries the other steps use
        import dask.array  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import xarray  # noqa: F401

        store.load("big-run", lazy=True, streams=[])
    elif what == "open":
        run = store.load("big-run", lazy=True)
        out["rows"] = {k: int(v.sizes["time"]) for k, v in run.streams.items()}
    elif what == "grade":
        table = quality.grade_store(store, scheduler="sync")
        out["grade"] = table.row(0, named=True)
        findings = store.get_table("big-run", "quality_findings")
        out["findings"] = [] if findings is None else findings.select("stream", "check", "detail").rows()
    elif what == "classify":
        # the stream classification grading does first, alone (as grade() calls it)
        from workbench.pieces import StreamPieces, load_for_work
        from workbench.quality import _time_stats
        from workbench.quality.kinds import classify

        run = load_for_work(store, "big-run")  # as grade_store opens it
        start = time.perf_counter()  # opening is not part of it
        kinds = {}
        for name, ds in run.streams.items():
            rd = StreamPieces(ds)
            st = _time_stats(rd)
            c0 = time.perf_counter()
            kinds[name] = classify(name, ds, reader=run.info.provenance.reader, pieces=rd, log_period=st.period).kind
            out["classify_seconds"] = out.get("classify_seconds", 0.0) + time.perf_counter() - c0
        out["kinds"] = kinds
    elif what == "metrics":
        table = metrics.compute(store, scheduler="sync")
        out["metrics"] = {k: v for k, v in table.row(0, named=True).items() if k != "run_id"}
    elif what == "unindexed":
        # Store.load(lazy=True) builds xarray's index of each stream's time (8 bytes per
        # row, read whole); opened without it, time is read piece by piece like the rest
        run = store.load("big-run", lazy=True, indexes=False)
        out["grade"] = quality.grade(run).grade
        out["metrics"] = {k: v for k, v in metrics.compute([run]).row(0, named=True).items() if k != "run_id"}
    out["seconds"] = time.perf_counter() - start
    out["peak_rss_mb"] = _rss_mb()
    return out


def _child(store_dir: Path, what: str, rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--step", what, "--rows", str(rows), "--dir", str(store_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        msg = f"step {what!r} failed (exit {proc.returncode})"
        raise SystemExit(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _disk_report(paths: list[str]) -> None:
    proc = subprocess.run(["df", "-h", *paths], capture_output=True, text=True, check=False)
    print(proc.stdout.rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the run's data in memory (GB, 1e9 bytes)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the store (default: a temporary folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated store")
    parser.add_argument("--only", help="comma-separated steps to run (imports,open,grade,classify,metrics,unindexed)")
    parser.add_argument("--step", choices=["generate", "imports", "open", "grade", "classify", "metrics", "unindexed"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        result = generate(args.dir, args.rows) if args.step == "generate" else step(args.dir, args.step)
        print(json.dumps(result, default=str))
        return

    import psutil

    parent = args.dir.parent if args.dir is not None else Path(tempfile.gettempdir())
    _disk_report(sorted({"/work", "/tmp", str(parent)}))
    free = shutil.disk_usage(parent).free
    want = args.gb * 1e9
    room = (free - 2e9) / 1.1  # keep 2 GB free; stored bytes ≈ in-memory bytes (float noise barely compresses)
    if want > room:
        print(f"!! {args.gb:.1f} GB does not fit on {parent} ({free / 1e9:.1f} GB free): scaled down to {room / 1e9:.1f} GB")
        want = room
    if want < 1e8:
        raise SystemExit("not enough free disk for a meaningful run")
    rows = int(want / (ROW_BYTES + SLOW_BYTES / SLOW_EVERY))
    ram = psutil.virtual_memory().total
    print(f"machine: {ram / 1e9:.1f} GB RAM, {os.cpu_count()} cores; run: {rows:,} joint-state rows at {RATE_HZ} Hz "
          f"({rows / RATE_HZ / 3600:.1f} h), {want / 1e9:.2f} GB in memory = {want / ram:.0%} of RAM")
    workdir = Path(tempfile.mkdtemp(prefix="wb-big-", dir=parent)) if args.dir is None else args.dir
    store_dir = workdir / "store"
    try:
        gen = _child(store_dir, "generate", rows)
        on_disk = sum(f.stat().st_size for f in store_dir.rglob("*") if f.is_file())
        print(f"{'generate (ParquetStreamWriter)':<31} {gen['seconds']:7.1f} s   peak RSS {gen['peak_rss_mb']:6.0f} MB "
              f"(stored: {on_disk / 1e9:.2f} GB on disk)")
        results: dict[str, dict[str, Any]] = {}
        labels = {
            "imports": "python + imports (floor)",
            "open": "store.load(lazy=True)",
            "grade": "quality.grade_store",
            "classify": "  of which stream kinds",
            "metrics": "metrics.compute(store)",
            "unindexed": "grade + metrics, no time index",
        }
        if args.only:
            labels = {k: v for k, v in labels.items() if k in args.only.split(",")}
        for what, label in labels.items():
            r = results[what] = _child(store_dir, what, rows)
            print(f"{label:<31} {r['seconds']:7.1f} s   peak RSS {r['peak_rss_mb']:6.0f} MB "
                  f"= {r['peak_rss_mb'] * 2**20 / want:5.1%} of the run's {want / 1e9:.2f} GB")
        if set(labels) != {"imports", "open", "grade", "classify", "metrics", "unindexed"}:
            return
        same = results["unindexed"]["grade"] == results["grade"]["grade"]["grade"] and all(
            v == results["metrics"]["metrics"][k] or (isinstance(v, float) and abs(v - results["metrics"]["metrics"][k]) <= 1e-9 * abs(v))
            for k, v in results["unindexed"]["metrics"].items()
        )
        print(f"results with and without the time index agree: {same}")
        c = results["classify"]
        print(f"stream classification: {c['classify_seconds']:.2f} s = "
              f"{c['classify_seconds'] / results['grade']['seconds']:.1%} of grading (target < 5 %); kinds: "
              + ", ".join(f"{k} {v}" for k, v in c["kinds"].items()))
        g = results["grade"]["grade"]
        print(f"grade {g['grade']} ({g['n_warning']} warning, {g['n_error']} error): "
              + "; ".join(f"{s} {c}: {d}" for s, c, d in results["grade"]["findings"]))
        print("metrics: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in results["metrics"]["metrics"].items()))
    finally:
        if args.keep:
            print(f"kept {store_dir}")
        else:
            shutil.rmtree(workdir if args.dir is None else store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
