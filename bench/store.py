"""Store benchmarks, each figure beside the baseline a user would otherwise use.

1. per-run overhead of ``Store.ingest`` on 1,000 small CSV tables;
2. a filtered ``Store.runs(where=…)`` over a 10,000-run catalog (target < 100 ms),
   beside polars filtering the same catalog already in memory;
3. loading a stored 10M × 8 float32 stream into memory, beside ``polars.read_parquet``
   of the same data written as zstd Parquet (target ≥ 50 % of its rate);
4. what a run costs on disk beside its source: bytes of file contents, disk usage in
   blocks (as ``du`` counts it), files and folders per run, for the sample campaign and
   for every file of ``../shared/data/real`` (when present);
5. write requests per run on an object store (fsspec ``memory://``: every file written
   is one request, as a PUT would be), beside the run's number of streams.

6. ingest of a generated campaign (2,000 runs, the sample simulator) serially and on a
   ``LocalCluster`` of 2 worker processes, beside the layout before run files (measured
   again from a checkout with ``--baseline DIR``, else its recorded figure);
7. ``workbench migrate`` in MB/s of old runs rewritten.

Run: ``.venv/bin/python bench/store.py [--small] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import xarray as xr

import workbench as wb
from workbench.store import MANIFEST_SUFFIX, RUN_SUFFIX, RUNS_DIR


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_ingest(tmp: Path, n: int) -> wb.Store:
    logs = tmp / "logs"
    logs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        t = 1_700_000_000 + i * 60 + np.arange(100) * 0.01
        pl.DataFrame({"time": t, "x": rng.normal(size=100), "y": rng.normal(size=100)}).write_csv(logs / f"run_{i:05d}.csv")
    store = wb.open_store(tmp / "store")
    store.ingest(logs / "run_00000.csv")  # warm imports
    t0 = time.perf_counter()
    report = store.ingest(logs)
    dt = time.perf_counter() - t0
    assert len(report.ingested) == n - 1, report
    print(f"ingest {n - 1} small tables: {dt:.2f} s, {1000 * dt / (n - 1):.1f} ms per run")
    t0 = time.perf_counter()
    again = store.ingest(logs)
    dt2 = time.perf_counter() - t0
    assert len(again.present) == n
    print(f"re-ingest (all present): {dt2:.2f} s, {1000 * dt2 / n:.2f} ms per file (hash + lookup)")
    return store


def grow_catalog(store: wb.Store, total: int) -> None:
    """Clone runs with new ids and factors to reach *total* runs (data files hard-linked)."""
    import os

    runs_dir = Path(store.root) / RUNS_DIR
    existing = sorted(p.name[: -len(MANIFEST_SUFFIX)] for p in runs_dir.glob(f"*{MANIFEST_SUFFIX}"))
    robots, lights, models = ["arm-a", "arm-b", "arm-c"], ["bright", "dim"], ["policy-v1", "policy-v2"]
    i = 0
    while len(existing) + i < total:
        src = existing[i % len(existing)]
        new_id = f"syn{i:08d}"
        os.link(runs_dir / f"{src}{RUN_SUFFIX}", runs_dir / f"{new_id}{RUN_SUFFIX}")
        manifest = json.loads((runs_dir / f"{src}{MANIFEST_SUFFIX}").read_text())
        info = manifest["info"]
        info["run_id"] = new_id
        info["hardware"] = {"robot": robots[i % 3]}
        info["environment"] = {"lighting": lights[(i // 3) % 2]}
        info["model"] = {"version": models[(i // 6) % 2]}
        info["scenario"] = {"seed": i % 50}
        (runs_dir / f"{new_id}{MANIFEST_SUFFIX}").write_text(json.dumps(manifest))
        i += 1


def bench_query(store: wb.Store) -> None:
    t0 = time.perf_counter()
    cat = store.rebuild_catalog()
    print(f"rebuild catalog of {cat.height} runs from manifests: {time.perf_counter() - t0:.2f} s")
    where = "hardware.robot = 'arm-b' and environment.lighting = 'dim' and scenario.seed < 10"
    fresh = wb.open_store(store.url)
    t_cold = best_of(lambda: wb.open_store(store.url).runs(where=where), repeat=3)
    t_warm = best_of(lambda: fresh.runs(where=where), repeat=5)
    n = fresh.runs(where=where).height
    mem = fresh.runs()
    expr = (pl.col("hardware.robot") == "arm-b") & (pl.col("environment.lighting") == "dim") & (pl.col("scenario.seed") < 10)
    t_pl = best_of(lambda: mem.filter(expr), repeat=5)
    print(
        f"runs(where=…) over {mem.height} runs → {n} rows: open+query {1000 * t_cold:.1f} ms, "
        f"query on an open store {1000 * t_warm:.1f} ms (target < 100 ms); "
        f"polars filter in memory {1000 * t_pl:.2f} ms"
    )


def bench_load(tmp: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(rows, 8)).astype(np.float32)
    t = 1_700_000_000_000_000_000 + np.arange(rows, dtype=np.int64) * 1_000_000
    ds = xr.Dataset(
        {"value": (("time", "channel"), data)},
        coords={"time": t, "channel": [f"c{i}" for i in range(8)]},
    )
    store = wb.open_store(tmp / "big-store")
    info = wb.RunInfo(run_id="big", start_ns=int(t[0]), end_ns=int(t[-1]))
    from workbench.model import empty_events

    store._write_run(info, {"signals": ds}, empty_events())
    pq = tmp / "signals.parquet"
    pl.DataFrame({"time": t, **{f"c{i}": data[:, i] for i in range(8)}}).write_parquet(pq, compression="zstd")
    nbytes = data.nbytes + t.nbytes

    def load_store():
        run = wb.open_store(store.url).load("big")
        run.streams["signals"].load()

    def load_parquet():
        pl.read_parquet(pq)

    t_store = best_of(load_store)
    t_pq = best_of(load_parquet)
    r_store, r_pq = nbytes / t_store / 1e9, nbytes / t_pq / 1e9
    print(
        f"load {rows:,} × 8 float32 (+ int64 time, {nbytes / 1e6:.0f} MB): store {r_store:.2f} GB/s, "
        f"polars read_parquet (zstd) {r_pq:.2f} GB/s → {100 * r_store / r_pq:.0f} % (target ≥ 50 %)"
    )


def _footprint(path: Path) -> tuple[int, int, int, int]:
    """(content bytes, bytes in 512-byte blocks as du counts them, files, folders) under *path*."""
    import os

    content = blocks = files = dirs = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirs += len(dirnames)
        blocks += os.stat(dirpath).st_blocks * 512 if dirpath == str(path) else 0
        for name in dirnames:
            blocks += os.stat(os.path.join(dirpath, name)).st_blocks * 512
        for name in filenames:
            st = os.stat(os.path.join(dirpath, name))
            content += st.st_size
            blocks += st.st_blocks * 512
            files += 1
    return content, blocks, files, dirs


def _run_footprint(runs_dir: Path, run_id: str) -> tuple[int, int, int, int]:
    """:func:`_footprint` of one run: its files in ``runs/`` (or its folder, in a store of
    the earlier layout)."""
    folder = runs_dir / run_id
    if folder.is_dir():
        content, blocks, files, dirs = _footprint(folder)
        return content, blocks + folder.stat().st_blocks * 512, files, dirs + 1
    paths = [p for p in runs_dir.glob(f"{run_id}.*") if p.is_file()]
    return (sum(p.stat().st_size for p in paths), sum(p.stat().st_blocks * 512 for p in paths), len(paths), 0)


def bench_footprint(tmp: Path, small: bool) -> None:
    from workbench.samples import generate

    root = Path(__file__).resolve().parents[1]
    sets: list[tuple[str, list[Path]]] = []
    campaign = tmp / "campaign"
    generate(campaign, runs=24 if small else 96, workers=2)
    sets.append(("sample campaign", sorted(p for p in campaign.rglob("*") if p.suffix in {".mcap", ".bag"}
                                           and "truncated" not in p.name)))
    real = root.parent / "shared" / "data" / "real"
    if real.is_dir():
        sets.append(("real logs", [real]))
    for label, sources in sets:
        store = wb.open_store(tmp / f"fp-{label.replace(' ', '-')}")
        store.ingest(sources)
        cat = store.runs()
        print(f"{label}: {cat.height} runs")
        rows = []
        by_source: dict[str, list[str]] = {}
        for rid, src in cat.select("run_id", "source").iter_rows():
            by_source.setdefault(str(src), []).append(rid)
        for src, rids in sorted(by_source.items()):
            size = sum(int(s) for s in cat.filter(pl.col("run_id").is_in(rids))["size_bytes"].to_list() if s)
            figs = [_run_footprint(Path(store.root) / RUNS_DIR, r) for r in rids]
            content, blocks, files, dirs = (sum(f[i] for f in figs) for i in range(4))
            rows.append((Path(src).name[:44], len(rids), size, content, blocks, files, dirs))
        total_src = sum(r[2] for r in rows)
        total_blocks = sum(r[4] for r in rows)
        if label == "sample campaign":
            n = sum(r[1] for r in rows)
            print(f"   sources {total_src / 1e6:.1f} MB → stored contents {sum(r[3] for r in rows) / 1e6:.1f} MB, "
                  f"on disk (blocks) {total_blocks / 1e6:.1f} MB = {total_blocks / total_src:.2f}× the sources (target ≤ 1.2×); "
                  f"{sum(r[5] for r in rows) / n:.0f} files and {sum(r[6] for r in rows) / n:.0f} folders per run")
            continue
        print(f"   {'source':<44} {'runs':>4} {'source':>10} {'contents':>10} {'on disk':>10} {'×':>6} {'files':>6} {'folders':>7}")
        for name, nr, size, content, blocks, files, dirs in rows:
            print(f"   {name:<44} {nr:>4} {size / 1e3:>8.0f}kB {content / 1e3:>8.0f}kB {blocks / 1e3:>8.0f}kB "
                  f"{blocks / max(size, 1):>6.2f} {files:>6} {dirs:>7}")
        worst = max(rows, key=lambda r: r[4] / max(r[2], 1))
        print(f"   on disk {total_blocks / total_src:.2f}× the sources overall; worst {worst[0]} "
              f"{worst[4] / max(worst[2], 1):.1f}× (target ≤ 2× on every file)")


def bench_requests(tmp: Path) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    from workbench.samples import generate

    campaign = tmp / "req-campaign"
    generate(campaign, runs=8, workers=1)
    files = sorted(p for p in campaign.rglob("*.mcap") if "truncated" not in p.name)[:4]
    writes: list[str] = []
    original = MemoryFileSystem._open

    def counting(self: MemoryFileSystem, path: str, mode: str = "rb", *args: object, **kwargs: object) -> object:
        if "w" in mode or "a" in mode:
            writes.append(path)
        return original(self, path, mode, *args, **kwargs)

    MemoryFileSystem._open = counting  # type: ignore[method-assign]
    try:
        store = wb.open_store("memory://bench-requests")
        before = len(writes)
        report = store.ingest(files, events=False)
        per_run = (len(writes) - before) / len(report.ingested)
        streams = sum(len(store.manifest(r)["streams"]) for r in report.ingested) / len(report.ingested)
    finally:
        MemoryFileSystem._open = original  # type: ignore[method-assign]
    print(f"memory:// store: {per_run:.0f} write requests per run for {streams:.0f} streams per run "
          f"(target ≤ streams + 4 = {streams + 4:.0f})")


INGEST_SCRIPT = r"""
import json, sys, time
from pathlib import Path

def main():
    import workbench as wb
    files, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    serial = wb.open_store(out / "serial")
    serial.ingest(files[:1], progress=False)  # imports warm
    t0 = time.perf_counter()
    serial.ingest(files[1:], progress=False)
    t_serial = time.perf_counter() - t0
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc) as client:
        dist = wb.open_store(out / "dist")
        dist.ingest(files[:4], progress=False, scheduler=client)  # both workers warm
        t0 = time.perf_counter()
        dist.ingest(files[4:], progress=False, scheduler=client)
        t_dist = time.perf_counter() - t0
    assert len(serial.run_ids()) == len(dist.run_ids()) == len(files)
    print(json.dumps({"serial": 1000 * t_serial / (len(files) - 1), "dist": 1000 * t_dist / (len(files) - 4)}))

if __name__ == "__main__":
    main()
"""

RECORDED_BASELINE = {"serial": 69.7, "ratio": 0.75, "what": "the folder-per-run Zarr layout (release 01037b6), recorded on this machine"}
"""Figures of the layout before run files, when no ``--baseline`` checkout is given to measure them again."""


def _ingest_figures(files: list[Path], out: Path, code: Path | None) -> dict[str, float]:
    """ms per run serially and with 2 Dask workers, measured in a fresh process running
    the workbench at *code* (a checkout; ``None``: this one)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    script = out.parent / f"ingest-{out.name}.py"
    script.write_text(INGEST_SCRIPT)
    listing = out.parent / f"ingest-{out.name}.json"  # thousands of paths: a file, not arguments
    listing.write_text(json.dumps([str(f) for f in files]))
    res = subprocess.run([sys.executable, str(script), str(listing), str(out)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_ingest_scale(tmp: Path, runs: int, baseline: Path | None) -> Path | None:
    """Ingest of a generated campaign (the 2,000-run bench), serially and on 2 Dask
    workers, beside the layout before run files. Returns the old-layout store when the
    baseline was measured (for :func:`bench_migrate`)."""
    from workbench.samples import generate

    generate(tmp / "scale", runs=runs, workers=2)
    files = sorted(p for p in (tmp / "scale").rglob("*") if p.suffix in {".mcap", ".bag"} and "truncated" not in p.name)
    now = _ingest_figures(files, tmp / "ingest-now", None)
    if baseline is not None:
        before = _ingest_figures(files, tmp / "ingest-before", baseline)
        what = f"the checkout at {baseline}, measured now"
        before_ratio = before["serial"] / before["dist"]
    else:
        before, what, before_ratio = RECORDED_BASELINE, RECORDED_BASELINE["what"], RECORDED_BASELINE["ratio"]
    print(f"ingest of {len(files)} generated runs (events applied):")
    print(f"   serial     {now['serial']:6.1f} ms/run ({1000 / now['serial']:5.1f} runs/s)  before {before['serial']:6.1f} ms/run "
          f"→ {before['serial'] / now['serial']:.2f}× (target ≥ 3×, ≤ 20 ms/run)")
    print(f"   2 workers  {now['dist']:6.1f} ms/run ({1000 / now['dist']:5.1f} runs/s)  = {now['serial'] / now['dist']:.2f}× serial "
          f"(target ≥ 1.3×); before {before_ratio:.2f}× serial")
    print(f"   (before: {what})")
    return tmp / "ingest-before" / "serial" if baseline is not None else None


def bench_migrate(tmp: Path, old_store: Path | None) -> None:
    """``workbench migrate`` throughput: an old-layout store of the scale campaign (when
    the baseline wrote one) or the small test store of the earlier layout."""
    from workbench.store.migrate import migrate

    if old_store is None:
        src = Path(__file__).resolve().parents[1] / "tests" / "data" / "store_v1"
        old_store = tmp / "migrate-v1"
        shutil.copytree(src, old_store)
    store = wb.open_store(old_store)
    report = migrate(store)
    print(f"migrate: {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="smaller sizes for a quick check")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of an earlier release (git worktree add DIR REV) to measure ingest beside")
    parser.add_argument("--scale-runs", type=int, default=None, help="runs of the generated ingest campaign (2000; 300 with --small)")
    args = parser.parse_args()
    n_ingest, n_catalog, rows = (100, 1000, 1_000_000) if args.small else (1000, 10_000, 10_000_000)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = bench_ingest(tmp, n_ingest)
        grow_catalog(store, n_catalog)
        bench_query(store)
        bench_load(tmp, rows)
        bench_footprint(tmp, args.small)
        bench_requests(tmp)
        old = bench_ingest_scale(tmp, args.scale_runs or (300 if args.small else 2000), args.baseline)
        bench_migrate(tmp, old)


if __name__ == "__main__":
    main()
