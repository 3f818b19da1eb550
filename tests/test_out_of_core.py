"""Grading and metrics piece by piece along time give the results of the whole streams."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr
from polars.testing import assert_frame_equal

import workbench as wb
from workbench import pieces as chunked
from workbench.metrics.builtin import ControlLatency
from workbench.model import ConfigError, Run, RunInfo
from workbench.pieces import (
    Runs,
    StreamPieces,
    median,
    order_statistics,
    percentile,
)
from workbench.quality import grade

T0 = 1_750_000_000 * 10**9


def close(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def same_grade(run: Run, rows: int, **kw) -> None:
    whole = grade(run, **kw)
    pieces = grade(run, chunk_rows=rows, **kw)
    assert pieces.grade == whole.grade
    close(pieces.findings, whole.findings)


# ----------------------------------------------------------------------------- samples


def test_sample_runs_grade_and_measure_the_same_in_pieces(sample_store):
    runs = [sample_store.load(r, lazy=False) for r in sample_store.run_ids()]
    grades = set()
    for run in runs:
        whole = grade(run)
        pieces = grade(run, chunk_rows=16)
        assert pieces.grade == whole.grade
        close(pieces.findings, whole.findings)
        grades.add(whole.grade)
    assert {"A", "B", "D"} <= grades  # the samples hold clean runs, a gap and a clock jump
    whole_m = wb.metrics.compute(runs)
    close(wb.metrics.compute(runs, chunk_rows=16), whole_m)
    assert whole_m["jerk_rms"].drop_nulls().len() > 100 and whole_m["control_latency_p50"].drop_nulls().len() > 100
    # what grade_store / compute(store) kept in the catalog is what the pieces give
    cat = sample_store.runs().sort("run_id")
    assert cat["quality.grade"].to_list() == [grade(r, chunk_rows=16).grade for r in sorted(runs, key=lambda r: r.run_id)]


def test_lazy_runs_read_in_pieces_match_memory(sample_store):
    ids = sample_store.run_ids()[:3]
    for rid in ids:
        lazy = sample_store.load(rid, lazy=True)
        eager = sample_store.load(rid, lazy=False)
        assert StreamPieces(lazy.streams["joint_states"]).lazy
        assert grade(lazy, chunk_rows=50).findings.equals(grade(eager).findings)
    lazy_runs = [sample_store.load(r, lazy=True) for r in ids]
    eager_runs = [sample_store.load(r, lazy=False) for r in ids]
    close(wb.metrics.compute(lazy_runs, chunk_rows=50), wb.metrics.compute(eager_runs))


def test_store_opens_large_runs_lazily(sample_store, monkeypatch):
    ids = sample_store.run_ids()[:4]
    expected_g = wb.quality.grade_store(sample_store, run_ids=ids, scheduler="sync")
    expected_m = wb.metrics.compute(sample_store, run_ids=ids, scheduler="sync", store_results=False)
    from workbench.store.core import StoreCore

    opened: list[bool] = []
    load = StoreCore.load  # workers open the store's core

    def spy(self, run_id, *, streams=None, lazy=True, indexes=True):
        opened.append((lazy, indexes))
        return load(self, run_id, streams=streams, lazy=lazy, indexes=indexes)

    monkeypatch.setattr(StoreCore, "load", spy)
    monkeypatch.setattr(chunked, "LAZY_BYTES", 0)  # every run counts as large
    got_g = wb.quality.grade_store(sample_store, run_ids=ids, scheduler="sync", chunk_rows=40)
    got_m = wb.metrics.compute(sample_store, run_ids=ids, scheduler="sync", store_results=False, chunk_rows=40)
    assert opened == [(True, False)] * 8  # lazily, without an in-memory time index
    assert got_g.equals(expected_g)
    close(got_m, expected_m)


# ----------------------------------------------------------------------------- faults

rng = np.random.default_rng(11)


def _sensor(n=600, period_ms=5.0, latency_ms=3.0):
    t = T0 + np.round(np.arange(n) * period_ms * 1e6 + rng.normal(0, 0.3e6, n)).astype(np.int64)
    t.sort()
    header = t - np.round(latency_ms * 1e6 + rng.normal(0, 0.2e6, n)).astype(np.int64)
    v = np.sin(np.arange(n) / 50) + rng.normal(0, 0.01, n)
    return xr.Dataset({"v": ("time", v)}, coords={"time": t, "header_time": ("time", header)})


def _run(streams, run_id="r"):
    t = np.concatenate([ds["time"].values for ds in streams.values()])
    return Run(RunInfo(run_id, start_ns=int(t.min()), end_ns=int(t.max())), streams)


JITTERY = {"jitter_cv": 0.3}


def _faulty_runs():
    gap = _sensor().isel(time=np.r_[0:200, 260:600])
    jump = _sensor()
    h = jump["header_time"].values.copy()
    h[300:] += 500_000_000
    jump = jump.assign_coords(header_time=("time", h))
    messy = _sensor()
    h = messy["header_time"].values.copy()
    h[100:103] -= 120_000_000
    h[400:404] -= 90_000_000
    t = messy["time"].values.copy()
    t[250] = t[249]
    t[500], t[501] = t[501], t[500]
    messy = messy.assign_coords(header_time=("time", h), time=t)
    jittery = _sensor(period_ms=5.0)
    t = T0 + np.cumsum(rng.choice([100_000, 3_000_000], 600, p=[0.45, 0.55])).astype(np.int64)
    jittery = jittery.assign_coords(time=t, header_time=("time", t - 2_000_000))
    jittery.attrs["nominal_rate_hz"] = 300.0
    n = 1000
    t = T0 + np.arange(n) * 10_000_000
    v = np.sin(np.arange(n) / 30.0) + rng.normal(0, 0.01, n)
    nan_v = v.copy()
    nan_v[::4] = np.nan
    frozen = np.column_stack([v, -v])
    frozen[300:600] = frozen[300]
    frozen[700:950] = frozen[700]
    ints = np.round(v * 100).astype(np.int32)
    ints[100:400] = 7
    sat = np.clip(v * 3, -1.5, 1.5)
    values = {
        "a": xr.Dataset({"x": ("time", nan_v)}, coords={"time": t}),
        "b": xr.Dataset({"x": (("time", "k"), frozen)}, coords={"time": t}),
        "c": xr.Dataset({"f": ("time", sat, {"valid_range": [-1.5, 1.5]}), "i": ("time", ints)}, coords={"time": t}),
        "all_nan": xr.Dataset({"x": ("time", np.full(n, np.nan))}, coords={"time": t}),
    }
    return [_run({"gap": gap, "jump": jump}), _run({"messy": messy, "jittery": jittery}), _run(values)]


def _calibration_run():
    n = 3000
    t = T0 + np.arange(n) * 5_000_000
    t[1500:] += 7_000_000  # a gap: non-uniform spacing
    phase = np.clip((np.arange(n) % 1000) / 400.0, 0, 1)
    target = np.where((np.arange(n) // 1000) % 2 == 0, phase, 1 - phase)
    cmd = np.column_stack([target, 0.5 * target, 0.2 * target])
    offset = np.zeros((n, 3))
    offset[:, 1] = 0.03 + 0.02 * np.arange(n) / n
    tm = t[::2] + 1_000_000  # measured at half the rate, shifted
    meas = (cmd + offset)[::2] + rng.normal(0, 1e-4, (tm.size, 3))
    meas[40:45, 0] = np.nan
    streams = {
        "joint_commands": xr.Dataset({"position": (("time", "joint"), cmd)}, coords={"time": t, "joint": ["j1", "j2", "j3"]}),
        "joint_states": xr.Dataset(
            {"position": (("time", "joint"), meas[:, [2, 0, 1]])}, coords={"time": tm, "joint": ["j3", "j1", "j2"]}
        ),
    }
    return _run(streams)


@pytest.mark.parametrize("rows", [1, 3, 7, 64])
def test_faults_are_found_the_same_in_pieces(rows):
    runs = _faulty_runs()
    checks = set()
    for run in runs:
        same_grade(run, rows)
        checks |= set(grade(run, thresholds=JITTERY).findings["check"].to_list())
        same_grade(run, rows, thresholds=JITTERY)
    assert checks >= {"gap", "clock_jump", "latency_spike", "duplicate_timestamps", "out_of_order",
                      "jitter", "rate", "nan", "frozen", "saturated"}
    same_grade(runs[2], rows, thresholds={"limits": {"c.i": [-50, 7]}})


@pytest.mark.parametrize("rows", [1, 5, 97])
def test_calibration_in_pieces(rows):
    run = _calibration_run()
    found = grade(run).findings
    assert sorted(found["check"].to_list()) == ["calibration_drift", "calibration_offset", "nan"]
    same_grade(run, rows)


def test_metrics_on_faulty_streams_in_pieces():
    n = 4000
    t = T0 + np.arange(n) * 2_000_000 + rng.integers(0, 300_000, n)
    q = np.column_stack([np.sin(t / 3e8), np.cos(t / 5e8), 0.1 * np.sin(t / 1e8)]) + rng.normal(0, 1e-3, (n, 3))
    q[100:110, 1] = np.nan
    tc = t[::3] - 15_000_000
    joints = ["a", "b", "c"]
    force = rng.normal(0, 5, (n, 3))
    force[7] = np.nan
    streams = {
        "joint_states": xr.Dataset(
            {"position": (("time", "joint"), q), "velocity": (("time", "joint"), np.gradient(q, axis=0)),
             "effort": (("time", "joint"), 3 * q)},
            coords={"time": t, "joint": joints},
        ),
        "joint_commands": xr.Dataset({"position": (("time", "joint"), q[::3])}, coords={"time": tc, "joint": joints}),
        "ft_sensor": xr.Dataset({"force": (("time", "axis"), force)}, coords={"time": t, "axis": ["x", "y", "z"]}),
        "tf.tool0": xr.Dataset({"translation": (("time", "axis"), q)}, coords={"time": t, "axis": ["x", "y", "z"]}),
    }
    runs = [_run(streams)]
    whole = wb.metrics.compute(runs)
    assert all(whole[c][0] is not None and np.isfinite(whole[c][0]) for c in ("jerk_rms", "tracking_error_rms", "energy", "peak_force", "jitter"))
    for rows in (1, 4, 333):
        close(wb.metrics.compute(runs, chunk_rows=rows), whole)


def test_control_latency_of_a_long_run_by_segments(monkeypatch):
    n = 60_000  # 5 min at 200 Hz
    t = T0 + np.arange(n) * 5_000_000
    lag = 20_000_000
    wave = lambda s: np.column_stack([np.sin(2.1 * s) + np.sin(5.3 * s), np.cos(1.3 * s)])
    streams = {
        "joint_commands": xr.Dataset({"position": (("time", "joint"), wave(t / 1e9))}, coords={"time": t, "joint": ["a", "b"]}),
        "joint_states": xr.Dataset({"position": (("time", "joint"), wave((t - lag) / 1e9))}, coords={"time": t, "joint": ["a", "b"]}),
    }
    run = _run(streams)
    whole = ControlLatency().compute(run)
    monkeypatch.setattr(ControlLatency, "whole_rows", 10_000)
    monkeypatch.setattr(ControlLatency, "segment_rows", 5_000)
    monkeypatch.setattr(ControlLatency, "max_segments", 4)
    segmented = ControlLatency().compute(run)
    assert whole["control_latency_p50"] == pytest.approx(20, abs=0.5)
    assert segmented["control_latency_p50"] == pytest.approx(20, abs=0.5)
    assert segmented["control_latency_p95"] == pytest.approx(20, abs=1)


# ----------------------------------------------------------------------------- building blocks


def test_order_statistics_are_exact_with_little_memory(monkeypatch):
    monkeypatch.setattr(chunked, "COLLECT_VALUES", 50)  # force the histogram passes
    for values in (
        rng.integers(-10**15, 10**15, 5000),
        rng.normal(0, 1, 5000),
        np.concatenate([np.full(3000, 7), rng.integers(0, 10, 1001)]),
        np.full(200, 3.5),
        np.concatenate([rng.normal(0, 1e-9, 3000), [1e12, -1e12]]),
    ):
        parts = np.array_split(values, 13)

        def pieces(parts=parts):
            return iter(parts)

        ranks = [0, 1, values.size // 2, values.size - 1]
        assert order_statistics(pieces, ranks) == np.sort(values)[ranks].tolist()
        assert median(pieces, values.size) == np.median(values)
        for q in (1, 50, 99, 99.9):
            assert percentile(pieces, values.size, q) == pytest.approx(np.percentile(values, q), rel=1e-12)


def test_runs_across_pieces_equal_runs_of_the_whole():
    for _ in range(30):
        mask = rng.random(rng.integers(1, 300)) < rng.choice([0.2, 0.8, 0.97])
        values = np.arange(mask.size) * 10
        d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        expected = [(lo, hi, lo * 10, (hi - 1) * 10) for lo, hi in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]
        runs = Runs()
        cuts = np.sort(rng.choice(np.arange(1, mask.size + 1), size=min(mask.size, 5), replace=False))
        a = 0
        for b in [*cuts.tolist(), mask.size]:
            runs.feed(mask[a:b], a, values[a:b], values[a:b])
            a = b
        assert runs.finish() == expected and runs.count == len(expected)


def test_chunk_rows_setting():
    ds = xr.Dataset({"v": ("time", np.arange(10.0))}, coords={"time": np.arange(10)})
    assert StreamPieces(ds).rows == 10  # in memory: one piece
    with chunked.chunk_rows(3):
        assert StreamPieces(ds).rows == 3
        assert [b - a for a, b in StreamPieces(ds).ranges()] == [3, 3, 3, 1]
    with pytest.raises(ConfigError, match="chunk_rows"):
        grade(_run({"s": ds}), chunk_rows=0)


def test_grading_a_lazy_stream_keeps_memory_to_a_piece(tmp_path, monkeypatch):
    """A 120 MB lazy stream graded in 1.6 MB pieces: traced allocations stay far below its size."""
    import tracemalloc

    import workbench as wb
    from workbench.model import RunInfo, empty_events

    n, joints = 1_500_000, 8

    def parts():
        for a in range(0, n, 250_000):
            k = np.arange(a, a + 250_000)
            t = T0 + k * 1_000_000
            yield "joint_states", xr.Dataset(
                {"position": (("time", "joint"), np.sin(np.outer(k, np.arange(1, joints + 1)) / 1e4))},
                coords={"time": t, "header_time": ("time", t - 500_000), "joint": [f"j{i}" for i in range(joints)]},
            )

    store = wb.open_store(tmp_path / "store")
    store._write_run(RunInfo(run_id="long", start_ns=T0, end_ns=T0 + n * 1_000_000), parts(), empty_events())
    ds = store.load("long", lazy=True, indexes=False).streams["joint_states"]
    assert ds.sizes["time"] == n and ds["position"].chunks is not None
    run = _run({"joint_states": ds})
    data_bytes = n * joints * 8 + 2 * n * 8
    monkeypatch.setattr(chunked, "COLLECT_VALUES", 100_000)  # medians in passes, not gathered
    grade(_run({"joint_states": ds.isel(time=slice(0, 5000))}), chunk_rows=1000)  # imports, caches
    tracemalloc.start()
    result = grade(run, chunk_rows=20_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.grade == "A"
    assert peak < data_bytes / 6, (peak, data_bytes)
