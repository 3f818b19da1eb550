"""Alignment, clock offsets, latency and cross-run shifts, against brute-force references."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

import workbench as wb
from workbench.model import ConfigError, Run, RunInfo, SchemaError
from workbench.sync import align, align_runs, asof_index, dtw, estimate_offset, latency, resample, to_ns_duration

rng = np.random.default_rng(42)


def stream(t, **vars_):
    return xr.Dataset({k: ("time", v) for k, v in vars_.items()}, coords={"time": np.asarray(t, dtype=np.int64)})


def brute_asof(src, tgt, strategy, tol):
    out = []
    for x in tgt:
        if strategy == "backward":
            cand = [i for i, s in enumerate(src) if s <= x]
            i = cand[-1] if cand else -1
        else:  # nearest, ties to the earlier sample
            d = np.abs(src - x)
            i = int(np.argmin(d))
        if i >= 0 and tol is not None and abs(src[i] - x) > tol:
            i = -1
        out.append(i)
    return np.array(out)


@pytest.mark.parametrize("strategy", ["backward", "nearest"])
@pytest.mark.parametrize("tol", [None, 7])
def test_asof_index_matches_brute_force(strategy, tol):
    src = np.unique(rng.integers(0, 500, 60))
    tgt = rng.integers(-20, 520, 300)
    got = asof_index(src, tgt, strategy=strategy, tolerance_ns=tol)
    ref = brute_asof(src, tgt, strategy, tol)
    if strategy == "nearest":  # equal distances may resolve either way: compare distances
        ok = got >= 0
        assert (ok == (ref >= 0)).all()
        np.testing.assert_array_equal(np.abs(src[got[ok]] - tgt[ok]), np.abs(src[ref[ok]] - tgt[ok]))
    else:
        np.testing.assert_array_equal(got, ref)


def test_linear_matches_np_interp_and_gaps_become_nan():
    t = np.sort(rng.choice(np.arange(0, 10_000), 400, replace=False))
    v = rng.normal(size=t.size)
    tgt = np.arange(t[0], t[-1], 7)
    out = resample(stream(t, v=v), tgt, method="linear", tolerance="inf")
    np.testing.assert_allclose(out["v"].values, np.interp(tgt, t, v))
    # a hole wider than the tolerance is NaN, never a stale or bridged value
    t2 = np.array([0, 10, 20, 100, 110])
    out = resample(stream(t2, v=np.array([0.0, 1, 2, 3, 4])), np.array([5, 50, 105, 200]), method="linear", tolerance=15)
    assert out["v"].values[0] == 0.5 and np.isnan(out["v"].values[1]) and out["v"].values[2] == 3.5
    assert np.isnan(out["v"].values[3])
    prev = resample(stream(t2, v=np.array([0.0, 1, 2, 3, 4])), np.array([25, 60, 100]), method="previous", tolerance=15)
    np.testing.assert_array_equal(prev["v"].values, [2.0, np.nan, 3.0])


def test_align_per_variable_methods_and_dims():
    t_js = np.arange(0, 1_000_000_000, 5_000_000)  # 200 Hz
    js = xr.Dataset(
        {"position": (("time", "joint"), np.column_stack([np.sin(t_js / 1e8), np.cos(t_js / 1e8)]))},
        coords={"time": t_js, "joint": ["j1", "j2"]},
    )
    t_imu = np.arange(1_000_000, 1_000_000_000, 2_500_000)  # 400 Hz, offset grid
    imu = stream(t_imu, ax=np.sin(t_imu / 1e8), mode=np.arange(t_imu.size) % 3)
    out = align({"joint_states": js, "imu": imu}, to="joint_states", method={"imu.ax": "linear"})
    assert out.sizes == {"time": t_js.size, "joint": 2}
    np.testing.assert_array_equal(out["time"].values, t_js)
    assert set(out.data_vars) == {"joint_states.position", "imu.ax", "imu.mode"}
    inside = t_js >= t_imu[0]
    np.testing.assert_allclose(out["imu.ax"].values[inside], np.interp(t_js[inside], t_imu, imu["ax"].values))
    assert np.isnan(out["imu.ax"].values[0])  # before the first imu sample: no value
    # integer variable, nearest: values are real samples
    assert set(np.unique(out["imu.mode"].values[inside])) <= {0.0, 1.0, 2.0}
    grid = align({"imu": imu}, to=100.0)
    assert grid.sizes["time"] == 100 and np.diff(grid["time"].values).tolist() == [10_000_000] * 99
    with pytest.raises(ConfigError, match="no stream 'nope'"):
        align({"imu": imu}, to="nope")
    with pytest.raises(ConfigError, match="method 'cubic'"):
        align({"imu": imu}, to="imu", method="cubic")


def test_accessor_resample():
    ds = stream(np.array([0, 1_000_000_000]), v=np.array([0.0, 10.0]))
    assert ds.wb.resample(rate_hz=4, method="linear")["v"].values.tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]
    with pytest.raises(ConfigError, match="exactly one"):
        ds.wb.resample()


def motion(t_ns):
    s = t_ns / 1e9
    return np.sin(2 * np.pi * 0.7 * s) + 0.5 * np.sin(2 * np.pi * 1.9 * s + 1) + 0.3 * np.sin(2 * np.pi * 3.1 * s)


@pytest.mark.parametrize("shift_ms", [5.0, -5.0, 12.3])
def test_estimate_offset_within_1ms_on_noisy_200hz(shift_ms):
    t = np.arange(0, 20_000_000_000, 5_000_000)
    tb = t + 1_700_000  # different sampling phase
    a = (t, motion(t) + rng.normal(0, 0.01, t.size))
    b = (tb, motion(tb + shift_ms * 1e6) + rng.normal(0, 0.01, t.size))
    est = estimate_offset(a, b, max_lag="100ms")
    assert abs(est.offset_ns / 1e6 - shift_ms) < 1.0
    assert est.confidence > 0.9


@pytest.mark.parametrize("drift_ppm", [100.0, -60.0, 0.0])
def test_estimate_drift_within_20ppm(drift_ppm):
    t = np.arange(0, 60_000_000_000, 5_000_000)
    a = (t, motion(t) + rng.normal(0, 0.01, t.size))
    b = (t, motion(t + 5e6 + drift_ppm * 1e-6 * t) + rng.normal(0, 0.01, t.size))
    est = estimate_offset(a, b, max_lag="100ms")
    assert abs(est.drift_ppm - drift_ppm) < 20
    assert abs(est.offset_at(0) / 1e6 - 5.0) < 1.0
    assert abs(est.offset_at(int(t[-1])) / 1e6 - (5.0 + drift_ppm * 60e-6 * 1e3)) < 1.0


def test_estimate_offset_rejects_bad_signals():
    with pytest.raises(SchemaError, match="at least 16"):
        estimate_offset((np.arange(5), np.arange(5.0)), (np.arange(5), np.arange(5.0)))
    with pytest.raises(SchemaError, match="do not overlap"):
        estimate_offset((np.arange(100), np.sin(np.arange(100.0))), (np.arange(200, 300), np.sin(np.arange(100.0))))


def test_latency_percentiles_exact():
    lat_ms = np.arange(1, 101)  # 1 … 100 ms
    t = np.arange(100) * 10_000_000 + 10**18
    ds = stream(t, v=np.zeros(100)).assign_coords(header_time=("time", t - lat_ms * 1_000_000))
    stats = latency(ds)
    assert stats.n == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.max_ms == 100.0 and stats.mean_ms == pytest.approx(50.5)
    assert ds.wb.latency() == stats
    with pytest.raises(SchemaError, match="no header_time"):
        latency(stream(t, v=np.zeros(100)))


def make_run(rid, start, grasp_at=None):
    t = start + np.arange(0, 2_000_000_000, 10_000_000)
    ev = pl.DataFrame({"time": [start + grasp_at] if grasp_at is not None else [], "kind": ["grasp"] if grasp_at is not None else [], "detail": ["{}"] if grasp_at is not None else []},
                      schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String})
    return Run(RunInfo(rid, start_ns=int(t[0]), end_ns=int(t[-1])), {"s": stream(t, v=np.zeros(t.size))}, ev)


def test_align_runs_on_start_event_and_offsets():
    runs = [make_run("a", 10**18, 700_000_000), make_run("b", 2 * 10**18, 1_200_000_000), make_run("c", 3 * 10**18)]
    on_start = align_runs(runs, on="start")
    assert on_start.shifts == {"a": 10**18, "b": 2 * 10**18, "c": 3 * 10**18}
    on_grasp = align_runs(runs, on="event:grasp")
    assert on_grasp.aligned("a", np.array([10**18 + 700_000_000])).tolist() == [0]
    assert on_grasp.aligned("b", np.array([2 * 10**18 + 1_200_000_000])).tolist() == [0]
    assert on_grasp.missing == ("c",) and on_grasp.to_frame()["anchored"].to_list() == [True, True, False]
    assert align_runs(runs, on={"a": 1, "b": 2, "c": 3}).shifts["c"] == 3
    with pytest.raises(ConfigError, match="offsets lack runs"):
        align_runs(runs, on={"a": 1})
    with pytest.raises(ConfigError, match="not valid"):
        align_runs(runs, on="middle")


def test_dtw_recovers_a_time_warp():
    x = np.sin(np.linspace(0, 6, 120))
    warped = np.sin(np.linspace(0, 6, 120) ** 1.1 / 6**0.1)
    path, cost = dtw(x, x)
    assert cost == 0 and (path[:, 0] == path[:, 1]).all()
    _, cost_w = dtw(x, warped)
    assert cost_w < np.abs(x - warped).sum() / 2  # warping explains most of the difference


def test_to_ns_duration():
    assert to_ns_duration("2.5ms") == 2_500_000 and to_ns_duration("1min") == 60 * 10**9
    with pytest.raises(ConfigError, match="not valid"):
        to_ns_duration("soon")
    assert wb.sync is not None


@pytest.mark.parametrize("method", ["nearest", "previous", "linear"])
def test_resample_keeps_the_layout_of_3d_variables(method):
    t = np.arange(0, 100, 10)
    cube = np.arange(t.size * 2 * 3, dtype=np.float64).reshape(t.size, 2, 3)
    ds = xr.Dataset({"img": (("time", "y", "x"), cube)}, coords={"time": t})
    out = resample(ds, t, method=method, tolerance="inf")
    np.testing.assert_array_equal(out["img"].values, cube)


def polars_asof(src, tgt, strategy, tol):
    """Row of *src* matched to each *tgt* by polars ``join_asof`` (-1: none), the reference."""
    left = pl.DataFrame({"t": np.asarray(tgt, dtype=np.int64), "o": np.arange(len(tgt))}).sort("t")
    right = pl.DataFrame({"t": np.asarray(src, dtype=np.int64), "i": np.arange(len(src))})
    joined = left.join_asof(right, on="t", strategy=strategy, tolerance=tol, check_sortedness=False)
    return joined.sort("o")["i"].fill_null(-1).to_numpy()


def small_blocks(monkeypatch, block, threads):
    """Blocks of *block* rows, spread over *threads* threads even for small inputs."""
    monkeypatch.setattr(wb.sync, "_BLOCK", block)
    monkeypatch.setattr(wb.sync, "_INTERP_BLOCK", block)
    monkeypatch.setattr(wb.sync, "_PARALLEL_MIN", 0)
    monkeypatch.setattr(wb.sync, "_threads", lambda: threads)


@pytest.mark.parametrize(("block", "threads"), [(3, 1), (64, 3), (1 << 14, 2)])
def test_asof_blocks_match_polars_with_ties_duplicates_and_tolerance(block, threads, monkeypatch):
    small_blocks(monkeypatch, block, threads)
    gen = np.random.default_rng(7)
    for trial in range(60):
        src = np.sort(gen.integers(0, 300, int(gen.integers(1, 80))))  # duplicates and even gaps: ties
        tgt = gen.integers(-20, 320, int(gen.integers(0, 400)))
        if trial % 2:
            tgt = np.sort(tgt)
        tol = [None, 0, 3, 17][trial % 4]
        for strategy in ("backward", "forward", "nearest"):
            got = asof_index(src, tgt, strategy=strategy, tolerance_ns=tol)
            np.testing.assert_array_equal(got, polars_asof(src, tgt, strategy, tol))
        values = gen.normal(size=(src.size, 2))
        ds = xr.Dataset({"v": (("time", "k"), values)}, coords={"time": src})
        for method, strategy in (("nearest", "nearest"), ("previous", "backward")):
            out = resample(ds, tgt, method=method, tolerance="inf" if tol is None else tol)["v"].values
            idx = polars_asof(src, tgt, strategy, tol)
            ref = np.where((idx >= 0)[:, None], values[np.maximum(idx, 0)], np.nan)
            np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(("block", "threads"), [(3, 1), (16, 3), (1 << 14, 2)])
def test_linear_blocks_equal_np_interp_bitwise_with_gaps(block, threads, monkeypatch):
    small_blocks(monkeypatch, block, threads)
    gen = np.random.default_rng(8)
    for trial in range(40):
        src = np.unique(gen.integers(0, 1000, int(gen.integers(2, 60))))
        src = np.sort(np.concatenate([src, src[:2]]))  # duplicate times, as np.interp takes them
        tgt = gen.integers(-50, 1050, 300)
        if trial % 3:
            tgt = np.sort(tgt)
        v = gen.normal(size=(src.size, 3))
        tol = None if trial % 2 else 40
        out = resample(xr.Dataset({"v": (("time", "k"), v)}, coords={"time": src}), tgt,
                       method="linear", tolerance="inf" if tol is None else tol)["v"].values
        ref = np.column_stack([np.interp(tgt, src, v[:, j], left=np.nan, right=np.nan) for j in range(3)])
        if tol is not None:
            i0 = np.clip(np.searchsorted(src, tgt, side="right") - 1, 0, src.size - 2)
            ref[(tgt > src[i0]) & (tgt < src[i0 + 1]) & (np.diff(src)[i0] > tol)] = np.nan
        np.testing.assert_array_equal(out, ref)


def test_linear_is_exact_at_epoch_times_and_keeps_np_interp_for_nan_and_inf():
    t = np.sort(rng.choice(np.arange(0, 10**9, 1000), 500, replace=False))
    v = rng.normal(size=t.size)
    tgt = np.sort(rng.integers(t[0], t[-1], 2000))
    epoch = 1_700_000_000 * 10**9  # float64 ns times here are 256 ns apart
    out = resample(stream(t + epoch, v=v), tgt + epoch, method="linear", tolerance="inf")["v"].values
    np.testing.assert_array_equal(out, np.interp(tgt, t, v))  # the same as on small times
    odd = v.copy()
    odd[[3, 10]] = np.nan, np.inf
    out = resample(stream(t, v=odd), tgt, method="linear", tolerance="inf")["v"].values
    np.testing.assert_array_equal(out, np.interp(tgt, t, odd))


def test_asof_keeps_dtypes_and_rejects_negative_tolerance():
    t = np.array([0, 10, 20])
    ds = stream(t, i=np.array([1, 2, 3]), b=np.array([True, False, True]), f=np.array([1, 2, 3], dtype=np.float32))
    inside = resample(ds, np.array([0, 12, 20]), method="previous", tolerance="inf")
    assert [inside[k].dtype for k in ("i", "b", "f")] == [np.int64, np.bool_, np.float32]
    assert inside["i"].values.tolist() == [1, 2, 3]
    outside = resample(ds, np.array([-5, 12]), method="previous", tolerance="inf")
    assert outside["i"].dtype == np.float64 and np.isnan(outside["i"].values[0]) and outside["i"].values[1] == 2
    assert outside["f"].dtype == np.float32 and np.isnan(outside["f"].values[0])
    with pytest.raises(ConfigError, match="tolerance must be >= 0"):
        resample(ds, t, tolerance="-5ns")


def _asof_in_child() -> None:
    src, tgt = np.arange(0, 1000, 7), np.arange(1000)
    np.testing.assert_array_equal(asof_index(src, tgt), np.minimum(tgt // 7, src.size - 1))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_threaded_blocks_work_in_a_forked_child(monkeypatch):
    import multiprocessing

    small_blocks(monkeypatch, 16, 2)
    _asof_in_child()  # the parent's pool exists before the fork
    child = multiprocessing.get_context("fork").Process(target=_asof_in_child)
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
