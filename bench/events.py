"""Event rules: one huge stream out of core, and ``events apply`` over a fleet of runs.

1. A hysteresis threshold rule (``above`` 0.5, ``release`` 0.25, ``min_duration`` 1 s)
   over ONE stream of ``--samples`` float32 samples at 1 kHz (default 10^8 = 27.8 h:
   a slow sine of varying amplitude plus noise, with rare NaN dropouts), written into a
   store on disk piece by piece with the store's streaming writer (as
   ``bench/big_run.py`` does) and evaluated out of core, in a fresh process:
   ``store.load(run_id, lazy=True, indexes=False)`` then
   :func:`workbench.events.evaluate` (which reads and scans the pieces in
   ``workbench.pieces.SCAN_THREADS`` threads). Printed: seconds, samples/s, events and the peak
   RSS of that process against the stream's size. Baselines on the same data, each in
   its own fresh process: a plain Python loop with the same semantics (timed on a
   prefix of ``--prefix`` samples and extrapolated linearly to the whole stream) and
   an equivalent polars query over the whole column in memory (set/reset codes,
   ``forward_fill``, edges by ``shift``, the duration filter). Both must find the same
   intervals (start and end times) as the workbench on the data they ran on.
2. :func:`workbench.events.apply_rules` over ``--runs`` runs of the sample campaign
   (``workbench.samples.generate``, as in ``bench/scale.py``), serially
   (``scheduler="sync"``) and on a ``LocalCluster`` of 2 worker processes; the derived
   events stored per run must be equal.

Quick: ``.venv/bin/python bench/events.py --samples 2000000 --runs 50``.
Full size (the defaults): ``.venv/bin/python bench/events.py``. The generated data are
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
T0 = 1_780_000_000 * 10**9
PIECE = 1_000_000  # samples per generated part
RUN_ID = "long-signal"
STREAM, VAR = "sensor", "x"
LEVEL, RELEASE, MIN_DURATION = 0.5, 0.25, 1.0  # exact in float32: the same comparisons in every tool
MIN_NS = int(MIN_DURATION * 1e9)
PERIOD_S = 20.0  # the slow sine
NAN_RATE = 1e-4
ROW_BYTES = 8 + 4  # int64 time + float32 value

RULE = {"name": "high", "signal": {"stream": STREAM, "variable": VAR}, "above": LEVEL, "release": RELEASE,
        "min_duration": MIN_DURATION}

APPLY_RULES = {
    "events": [
        {"name": "grip", "signal": {"stream": "ft_sensor", "variable": "force", "axis": "y"},
         "above": 3.0, "release": 1.5, "min_duration": 0.2},
        {"name": "loaded", "signal": {"stream": "ft_sensor", "variable": "force", "axis": "z"},
         "above": 2.0, "release": 1.0, "min_duration": 0.1},
        {"name": "moving", "signal": {"norm": {"stream": "joint_states", "variable": "velocity"}},
         "above": 0.5, "release": 0.2, "min_duration": 0.1},
        {"name": "grip_then_success", "first": "grip", "then": "success", "within": 10},
    ],
}


def SCAN_THREADS() -> int:
    from workbench.pieces import SCAN_THREADS as threads

    return threads


def _rss_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM`` (``ru_maxrss`` keeps the parent's peak
    across ``exec`` on Linux, so a child started by a big parent would report the parent's)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --------------------------------------------------------------------------- data


def _signal(a: int, b: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``[a, b)``: 1 kHz with jitter; amplitude 0.3…0.9 so some cycles stay below the level."""
    k = np.arange(a, b, dtype=np.int64)
    t = T0 + k * (1_000_000_000 // RATE_HZ) + rng.integers(0, 200_000, k.size)
    s = k / RATE_HZ
    amp = 0.6 + 0.3 * np.sin(2 * np.pi * s / (PERIOD_S * 7.3))
    x = amp * np.sin(2 * np.pi * s / PERIOD_S) + rng.normal(0.0, 0.08, k.size)
    x[rng.random(k.size) < NAN_RATE] = np.nan
    return t, x.astype(np.float32)


def _parts(samples: int) -> Iterator[tuple[str, Any]]:
    import xarray as xr

    rng = np.random.default_rng(0)
    for a in range(0, samples, PIECE):
        t, x = _signal(a, min(samples, a + PIECE), rng)
        yield STREAM, xr.Dataset({VAR: (("time",), x)}, coords={"time": t})


def generate(store_dir: Path, samples: int) -> dict[str, Any]:
    """Write the one-stream run into a new store, piece by piece (bounded memory)."""
    import polars as pl

    import workbench as wb
    from workbench.model import RunInfo

    store = wb.open_store(store_dir)
    start = time.perf_counter()
    end = T0 + samples * (1_000_000_000 // RATE_HZ)
    info = RunInfo(RUN_ID, start_ns=T0, end_ns=end, hardware={"robot": "arm-long"}, scenario={"task": "endurance"})
    events = pl.DataFrame({"time": [end - 1], "kind": ["success"], "detail": ["{}"]})
    store._write_run(info, _parts(samples), events)  # the streaming writer, as ingest uses it
    store.rebuild_catalog()
    on_disk = sum(f.stat().st_size for f in (store_dir / "runs").glob(f"{RUN_ID}.*") if f.is_file())
    return {"seconds": time.perf_counter() - start, "on_disk": on_disk, "peak_rss_mb": _rss_mb()}


# --------------------------------------------------------------------------- the three ways


def _rules() -> Any:
    from workbench.events import RuleSet

    return RuleSet.from_dict({"events": [RULE]})


def _intervals_of(ev: Any) -> list[tuple[int, int]]:
    """(start, end) of the rule's events from an :class:`~workbench.events.Evaluation`."""
    rows = ev.events.filter(ev.events["kind"] == RULE["name"])
    return [(int(t), int(json.loads(d)["end"])) for t, d in zip(rows["time"].to_list(), rows["detail"].to_list(), strict=True)]


def python_loop(t: np.ndarray, x: np.ndarray) -> list[tuple[int, int]]:
    """The semantics written out one sample at a time (NaN compares false: keeps the state)."""
    out: list[tuple[int, int]] = []
    on = False
    start = 0
    tl, xl = t.tolist(), x.tolist()
    for ti, xi in zip(tl, xl):  # noqa: B905 - same length
        if on:
            if xi < RELEASE:
                if ti - start >= MIN_NS:
                    out.append((start, ti))
                on = False
        elif xi > LEVEL:
            on, start = True, ti
    if on and tl and tl[-1] - start >= MIN_NS:
        out.append((start, tl[-1]))
    return out


def plain_loop(t: np.ndarray, x: np.ndarray) -> list[tuple[int, int]]:
    """The same semantics, indexing the arrays sample by sample as first written."""
    out: list[tuple[int, int]] = []
    on = False
    start = 0
    for i in range(len(x)):
        if on:
            if x[i] < RELEASE:
                if t[i] - start >= MIN_NS:
                    out.append((start, int(t[i])))
                on = False
        elif x[i] > LEVEL:
            on, start = True, int(t[i])
    if on and len(t) and t[-1] - start >= MIN_NS:
        out.append((start, int(t[-1])))
    return out


def _edges_query(frame: Any) -> Any:
    """The polars query: state by set/reset codes and ``forward_fill``, rows where it flips."""
    import polars as pl

    v = pl.col("x")
    state = (pl.when(v.is_nan()).then(None)  # polars orders NaN above every number: keep the state
             .when(v > LEVEL).then(True).when(v < RELEASE).then(False)
             .otherwise(None).forward_fill().fill_null(False))
    return (frame.with_columns(state=state)
            .with_columns(last_time=pl.col("time").last())
            .filter(pl.col("state") != pl.col("state").shift(1, fill_value=False))
            .select("time", "state", "last_time"))


def _intervals_of_edges(edges: Any) -> list[tuple[int, int]]:
    import polars as pl

    starts = edges.filter(pl.col("state"))["time"]
    ends = edges.filter(~pl.col("state"))["time"]
    if ends.len() < starts.len():  # still on at the last sample: ends there
        ends = pl.concat([ends, pl.Series("time", [int(edges["last_time"][0])])])
    iv = pl.DataFrame({"start": starts, "end": ends}).filter(pl.col("end") - pl.col("start") >= MIN_NS)
    return list(zip(iv["start"].to_list(), iv["end"].to_list(), strict=True))


def polars_file(path: Path) -> list[tuple[int, int]]:
    """The query over a Parquet file read out of core (``polars.scan_parquet``)."""
    import polars as pl

    return _intervals_of_edges(_edges_query(pl.scan_parquet(path).select("time", "x")).collect())


def polars_query(t: np.ndarray, x: np.ndarray) -> list[tuple[int, int]]:
    """The same intervals by a polars query over the whole column in memory."""
    import polars as pl

    v = pl.col("x")
    state = (pl.when(v.is_nan()).then(None)  # polars orders NaN above every number: keep the state
             .when(v > LEVEL).then(True).when(v < RELEASE).then(False)
             .otherwise(None).forward_fill().fill_null(False))
    edges = (
        pl.DataFrame({"time": t, "x": x}).lazy()
        .with_columns(state=state)
        .filter(pl.col("state") != pl.col("state").shift(1, fill_value=False))
        .select("time", "state")
        .collect()
    )
    starts = edges.filter(pl.col("state"))["time"]
    ends = edges.filter(~pl.col("state"))["time"]
    if ends.len() < starts.len():  # still on at the last sample: ends there
        ends = pl.concat([ends, pl.Series("time", [int(t[-1])])])
    iv = pl.DataFrame({"start": starts, "end": ends}).filter(pl.col("end") - pl.col("start") >= MIN_NS)
    return list(zip(iv["start"].to_list(), iv["end"].to_list(), strict=True))


def step(store_dir: Path, what: str, prefix: int) -> dict[str, Any]:
    """One measured step, in this (fresh) process (libraries imported before the clock starts)."""
    import dask.array  # noqa: F401
    import numcodecs  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import xarray  # noqa: F401

    import workbench as wb
    import workbench.pieces
    from workbench.events import evaluate

    store = wb.open_store(store_dir, create=False)
    out: dict[str, Any] = {}
    if what == "evaluate":  # the workbench, out of core
        rules = _rules()
        start = time.perf_counter()
        run = store.load(RUN_ID, lazy=True, indexes=False)
        out["floor_mb"] = _rss_mb()  # python + imports + the lazy run
        ev = evaluate(run, rules)
        out["seconds"] = time.perf_counter() - start
        out["intervals"] = _intervals_of(ev)
    elif what == "read":  # the floor: decoding every stored value and time into reused buffers
        from workbench.pieces import direct_reader

        start = time.perf_counter()
        run = store.load(RUN_ID, lazy=True, indexes=False)
        rows = 0
        for name in (VAR, "time"):
            rd = direct_reader(run.streams[STREAM][name].data)
            assert rd is not None
            buf = np.empty(4 * rd.chunk_rows, dtype=rd.dtype)
            for a in range(0, rd.shape[0], buf.size):
                rows += rd.read(a, a + buf.size, out=buf).size
        out["seconds"] = time.perf_counter() - start
        out["rows"] = int(rows)
    elif what == "polars":  # the column in memory, then one query
        start = time.perf_counter()
        ds = store.load(RUN_ID, streams=[STREAM], lazy=False).streams[STREAM]
        t = np.asarray(ds["time"].values).astype(np.int64, copy=False)
        x = np.asarray(ds[VAR].values)
        out["load_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        out["intervals"] = polars_query(t, x)
        out["seconds"] = time.perf_counter() - start
    elif what in ("polars-stored", "polars-default"):  # a Parquet file read out of core by polars
        path = store_dir / ("sensor-stored.parquet" if what == "polars-stored" else "sensor-polars.parquet")
        start = time.perf_counter()
        out["intervals"] = polars_file(path)
        out["seconds"] = time.perf_counter() - start
    elif what == "python":  # a prefix, and the workbench on the same prefix
        import xarray as xr

        lazy = store.load(RUN_ID, lazy=True, indexes=False).streams[STREAM]
        n = min(prefix, int(lazy.sizes["time"]))
        t = np.asarray(lazy["time"][:n].values).astype(np.int64, copy=False)
        x = np.asarray(lazy[VAR][:n].values)
        start = time.perf_counter()
        out["intervals"] = python_loop(t, x)
        out["seconds"] = time.perf_counter() - start
        m = max(1, n // 10)  # the plain loop is slower: a tenth of the prefix
        start = time.perf_counter()
        out["plain_intervals"] = plain_loop(t[:m], x[:m])
        out["plain_seconds"] = time.perf_counter() - start
        out["plain_n"] = m
        out["plain_list_intervals"] = python_loop(t[:m], x[:m])
        out["n"] = n
        run = wb.Run(info=wb.RunInfo(run_id="prefix", start_ns=int(t[0]), end_ns=int(t[-1])),
                     streams={STREAM: xr.Dataset({VAR: (("time",), x)}, coords={"time": t})})
        out["workbench_intervals"] = _intervals_of(evaluate(run, _rules()))
    out["peak_rss_mb"] = _rss_mb()
    return out


def _child(store_dir: Path, what: str, samples: int, prefix: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--step", what, "--samples", str(samples), "--prefix", str(prefix), "--dir", str(store_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        msg = f"step {what!r} failed (exit {proc.returncode})"
        raise SystemExit(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same(a: list[Any], b: list[Any]) -> bool:
    return [tuple(x) for x in a] == [tuple(x) for x in b]


def one_stream(workdir: Path, samples: int, prefix: int) -> list[tuple[str, str, str]]:
    store_dir = workdir / "long"
    size = samples * ROW_BYTES
    print(f"== 1. threshold rule over one stream of {samples:,} float32 samples at {RATE_HZ} Hz "
          f"({samples / RATE_HZ / 3600:.1f} h): {size / 1e9:.2f} GB in memory (int64 time + float32)")
    print("   all timings with the data in the OS page cache (the store's files are read once first)")
    print(f"   rule: above {LEVEL}, release {RELEASE}, min_duration {MIN_DURATION} s; "
          f"signal: sine ({PERIOD_S:.0f} s, amplitude 0.3…0.9) + noise σ 0.08, NaN dropouts {NAN_RATE:g}")
    gen = _child(store_dir, "generate", samples, prefix)
    print(f"   generate into the store (ParquetStreamWriter): {gen['seconds']:.1f} s, {gen['on_disk'] / 1e9:.2f} GB on disk")
    stored, default = _parquet_files(store_dir)
    print(f"   the same table as Parquet files polars reads: the store's own (unzipped, {stored.stat().st_size / 1e9:.2f} GB) "
          f"and one written by polars' defaults (zstd, {default.stat().st_size / 1e9:.2f} GB)")
    for f in [*(store_dir / "runs").glob(f"{RUN_ID}.*"), stored, default]:  # every tool then reads from the OS page cache
        if f.is_file():
            f.read_bytes()
    wb = _child(store_dir, "evaluate", samples, prefix)
    rd = _child(store_dir, "read", samples, prefix)
    pl_ = _child(store_dir, "polars", samples, prefix)
    pf_s = _child(store_dir, "polars-stored", samples, prefix)
    pf_d = _child(store_dir, "polars-default", samples, prefix)
    py = _child(store_dir, "python", samples, prefix)
    n_events = len(wb["intervals"])
    for other, what in ((pl_, "in memory"), (pf_s, "on the stored file"), (pf_d, "on its own file")):
        assert _same(other["intervals"], wb["intervals"]), f"polars ({what}) and the workbench disagree"
    assert _same(py["intervals"], py["workbench_intervals"]), "the Python loop and the workbench disagree"
    assert _same(py["plain_intervals"], py["plain_list_intervals"]), "the two Python loops disagree"
    py_full = py["seconds"] * samples / py["n"]
    plain_full = py["plain_seconds"] * samples / py["plain_n"]
    w_s, p_s = wb["seconds"], pl_["seconds"]
    ps_s, pd_s = pf_s["seconds"], pf_d["seconds"]
    print(f"   {'':<44} {'seconds':>9} {'samples/s':>10} {'peak RSS':>10}")
    print(f"   {'workbench evaluate (lazy, out of core)':<44} {w_s:9.2f} {samples / w_s:10.3g} {wb['peak_rss_mb']:7.0f} MB"
          f"   ({wb['peak_rss_mb'] * 2**20 / size:.1%} of the stream; python+imports+lazy open: {wb['floor_mb']:.0f} MB)")
    print(f"   {'  floor: decoding every value and time':<44} {rd['seconds']:9.2f} {samples / rd['seconds']:10.3g}"
          f"   (measured alone, into reused buffers; the workbench reads and scans pieces in "
          f"{SCAN_THREADS()} threads)")
    print(f"   {'polars query (column in memory)':<44} {p_s:9.2f} {samples / p_s:10.3g} {pl_['peak_rss_mb']:7.0f} MB"
          f"   (+ {pl_['load_seconds']:.2f} s to load the column from the store)")
    print(f"   {'polars scan_parquet, the stored table':<44} {ps_s:9.2f} {samples / ps_s:10.3g} {pf_s['peak_rss_mb']:7.0f} MB"
          f"   (the same query read out of core, as the workbench reads; the store's Parquet unzipped)")
    print(f"   {'polars scan_parquet, polars-written file':<44} {pd_s:9.2f} {samples / pd_s:10.3g} {pf_d['peak_rss_mb']:7.0f} MB"
          f"   (the table written by polars' defaults: what a user keeping Parquet would have)")
    label = f"python loop over lists, {py['n']:,} samples"
    print(f"   {label:<44} {py['seconds']:9.2f} {py['n'] / py['seconds']:10.3g}   (tolist() then zip: the fastest plain loop)")
    print(f"   {'  extrapolated linearly':<44} {py_full:9.1f} {samples / py_full:10.3g}")
    label = f"python loop indexing arrays, {py['plain_n']:,}"
    print(f"   {label:<44} {py['plain_seconds']:9.2f} {py['plain_n'] / py['plain_seconds']:10.3g}   (x[i], t[i] on the numpy arrays)")
    print(f"   {'  extrapolated linearly':<44} {plain_full:9.1f} {samples / plain_full:10.3g}")
    print(f"   events: {n_events:,} (workbench and polars, whole stream); {len(py['intervals']):,} in the first "
          f"{py['n']:,} samples (Python loop and workbench on that prefix)")
    print(f"   same events: yes (start and end times equal; polars on all {samples:,} samples, "
          f"Python loop on the first {py['n']:,})")
    print(f"   50× the list loop means ≤ {py_full / 50:.2f} s; decoding the stored bytes alone takes {rd['seconds']:.2f} s here in one thread")
    print(f"   workbench vs python loop: {plain_full / w_s:6.1f}× the loop indexing arrays, {py_full / w_s:.1f}× the loop over lists "
          f"(incl. tolist(); extrapolated ×{samples / py['n']:g}; target ≥ 50×)")
    print(f"   workbench vs polars:      {ps_s / w_s:6.2f}× polars reading the same stored table out of core, "
          f"{pd_s / w_s:.2f}× its own zstd file (target ≥ 1×); {p_s / w_s:.2f}× the query on the column already in memory "
          f"({(p_s + pl_['load_seconds']) / w_s:.2f}× counting the load from the store)")
    print(f"   peak RSS: workbench {wb['peak_rss_mb']:.0f} MB (of which {wb['floor_mb']:.0f} MB python+imports) vs polars "
          f"{pl_['peak_rss_mb']:.0f} MB, for a {size / 2**20:.0f} MB stream")
    return [
        ("threshold, workbench (out of core)", f"{w_s:.2f} s", f"{samples / w_s / 1e6:.1f} M samples/s, peak RSS {wb['peak_rss_mb']:.0f} MB"),
        ("threshold, polars scan_parquet (stored)", f"{ps_s:.2f} s", f"{samples / ps_s / 1e6:.1f} M samples/s, peak RSS {pf_s['peak_rss_mb']:.0f} MB"),
        ("threshold, polars (column in memory)", f"{p_s:.2f} s", f"{samples / p_s / 1e6:.1f} M samples/s, peak RSS {pl_['peak_rss_mb']:.0f} MB"),
        ("threshold, python loop on arrays", f"{plain_full:.1f} s", f"{samples / plain_full / 1e6:.2f} M samples/s (extrapolated)"),
        ("threshold, python loop on lists", f"{py_full:.1f} s", f"{samples / py_full / 1e6:.2f} M samples/s (extrapolated)"),
        ("  workbench / python loop", f"{plain_full / w_s:.0f}×", f"{py_full / w_s:.1f}× the list loop; target ≥ 50×"),
        ("  workbench / polars out of core", f"{ps_s / w_s:.2f}×", f"{pd_s / w_s:.2f}× on polars' own file; target ≥ 1×"),
        ("  workbench / polars in memory", f"{p_s / w_s:.2f}×", "the query alone, its column already loaded"),
    ]


def _parquet_files(store_dir: Path) -> tuple[Path, Path]:
    """The stream's stored table unzipped, and the same columns written by polars' defaults."""
    import zipfile

    import polars as pl

    stored, default = store_dir / "sensor-stored.parquet", store_dir / "sensor-polars.parquet"
    with zipfile.ZipFile(store_dir / "runs" / f"{RUN_ID}.run") as zf, zf.open(f"streams/{STREAM}/0.parquet") as src, \
            stored.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    pl.scan_parquet(stored).select("time", "x").sink_parquet(default)
    return stored, default


# --------------------------------------------------------------------------- apply over many runs


def many_runs(workdir: Path, runs: int) -> list[tuple[str, str, str]]:
    from distributed import Client, LocalCluster

    import workbench as wb
    from workbench.events import RuleSet
    from workbench.events.apply import _evaluate_stored, apply_rules
    from workbench.parallel import map_runs
    from workbench.samples import generate as make_campaign
    from workbench.store import DERIVED_EVENTS

    print(f"== 2. events apply over {runs:,} runs of the sample campaign, serial vs LocalCluster(2 worker processes)")
    t0 = time.perf_counter()
    make_campaign(workdir / "campaign", runs=runs, workers=2)
    files = sorted((workdir / "campaign").rglob("*.mcap")) + sorted((workdir / "campaign").rglob("*.bag"))
    files = [f for f in files if "truncated" not in f.name]
    print(f"   generated {len(files)} runs ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
    rules = RuleSet.from_dict(APPLY_RULES)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as lc, \
            Client(lc) as client:
        store = wb.open_store(workdir / "fleet")
        t0 = time.perf_counter()
        store.ingest(files, scheduler=client)
        ids = store.run_ids()
        print(f"   ingested {len(ids)} runs on the cluster in {time.perf_counter() - t0:.0f} s")

        def derived() -> dict[str, Any]:
            return {rid: store.get_table(rid, DERIVED_EVENTS) for rid in ids}

        t0 = time.perf_counter()
        rep_s = apply_rules(store, rules, scheduler="sync")
        t_s = time.perf_counter() - t0
        ev_s = derived()
        t0 = time.perf_counter()
        rep_d = apply_rules(store, rules, scheduler=client)
        t_d = time.perf_counter() - t0
        ev_d = derived()
        # the part apply_rules maps over the runs (evaluation; nothing written), alone
        args = (store.url, rules.to_dict(), rules.origin, None)
        t0 = time.perf_counter()
        map_s = map_runs(_evaluate_stored, ids, args=args, scheduler="sync")
        m_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        map_d = map_runs(_evaluate_stored, ids, args=args, scheduler=client)
        m_d = time.perf_counter() - t0
    n = len(ids)
    assert all(a["events"].equals(b["events"]) for a, b in zip(map_s, map_d, strict=True))
    assert rep_s.counts == rep_d.counts and rep_s.missing == rep_d.missing
    assert not rep_d.added and not rep_d.removed, (rep_d.added, rep_d.removed)
    assert all(ev_s[r] is not None and ev_d[r] is not None and ev_s[r].equals(ev_d[r]) for r in ids)
    total = sum(v.height for v in ev_s.values())
    print(f"   {n} runs, {total:,} derived events ({', '.join(f'{k} {v:,}' for k, v in sorted(rep_s.counts.items()))})")
    print(f"   serial (sync)      {t_s:7.1f} s  {n / t_s:7.1f} runs/s")
    print(f"   2 worker processes {t_d:7.1f} s  {n / t_d:7.1f} runs/s  → {t_s / t_d:.2f}× faster")
    print(f"   of which evaluating (map_runs of the per-run work, timed alone): serial {m_s:.1f} s ({n / m_s:.1f} runs/s), "
          f"2 workers {m_d:.1f} s ({n / m_d:.1f} runs/s) → {m_s / m_d:.2f}×; the rest of apply_rules "
          f"(storing derived events, outcomes, annotations) runs in the calling process: "
          f"~{max(0.0, t_s - m_s):.1f} s serial, ~{max(0.0, t_d - m_d):.1f} s with the cluster")
    print("   same derived events per run: yes (and re-applying on the cluster added/removed none)")
    return [
        ("apply, serial", f"{n / t_s:.1f} runs/s", f"{t_s:.1f} s for {n} runs"),
        ("apply, 2 workers", f"{n / t_d:.1f} runs/s", f"{t_d:.1f} s, {t_s / t_d:.2f}× the serial speed"),
        ("  evaluation part alone, 2 workers", f"{m_s / m_d:.2f}×", f"{n / m_s:.1f} → {n / m_d:.1f} runs/s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000_000, help="samples of the one long stream")
    parser.add_argument("--prefix", type=int, default=10_000_000, help="samples the Python loop runs on (then extrapolated)")
    parser.add_argument("--runs", type=int, default=2000, help="runs for events apply (0: skip)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the data (default: a temporary folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--step", choices=["generate", "evaluate", "read", "polars", "polars-stored", "polars-default", "python"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        result = generate(args.dir, args.samples) if args.step == "generate" else step(args.dir, args.step, args.prefix)
        print(json.dumps(result, default=str))
        return
    import psutil

    print(f"machine: {psutil.virtual_memory().total / 1e9:.1f} GB RAM, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews the timings)")
    workdir = Path(tempfile.mkdtemp(prefix="wb-events-")) if args.dir is None else args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table: list[tuple[str, str, str]] = []
    try:
        if args.samples > 0:
            table += one_stream(workdir, args.samples, min(args.prefix, args.samples))
        if args.runs > 0:
            table += many_runs(workdir, args.runs)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"== summary (total {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f})")
    for name, fig, note in table:
        print(f"   {name:<40} {fig:>14}   {note}")


if __name__ == "__main__":
    main()
