"""Signals and rules evaluated on runs: derived signals against numpy, lazy pieces equal in-memory."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

import workbench as wb
from workbench.events import RuleProblem, RuleSet, Signal, evaluate, signal_pieces

NS = 1_000_000_000


def _run() -> wb.Run:
    rng = np.random.default_rng(3)
    n = 3000
    t = np.arange(n, dtype=np.int64) * 10_000_000
    force = np.stack([np.sin(np.arange(n) / 40) * 20 + rng.normal(0, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n)], axis=1)
    pos = np.stack([np.cumsum(rng.normal(0, 0.01, n)), np.zeros(n)], axis=1)
    tc = t[::3] + 5_000_000
    cmd = np.interp(tc, t, pos[:, 0]) + 0.02
    streams = {
        "ft": xr.Dataset({"force": (("time", "axis"), force)}, coords={"time": t, "axis": ["x", "y", "z"]}),
        "js": xr.Dataset({"position": (("time", "joint"), pos)}, coords={"time": t, "joint": ["j1", "j2"]}),
        "cmd": xr.Dataset({"position": (("time", "joint"), cmd[:, None])}, coords={"time": tc, "joint": ["j1"]}),
        "mode": xr.Dataset({"state": (("time",), (np.arange(n) // 700).astype(np.int64))}, coords={"time": t}),
        "level": xr.Dataset({"v": (("time",), (np.sin(np.arange(n) / 25) + rng.normal(0, 0.3, n)).astype(np.float32))},
                            coords={"time": t}),
    }
    return wb.Run(info=wb.RunInfo(run_id="engine-test", start_ns=0, end_ns=int(t[-1])), streams=streams)


def _values(run, spec, rows=None):
    parts = list(signal_pieces(run, Signal.parse(spec, "test"), rows=rows))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("rows", [None, 1, 7, 500])
def test_derived_signals_equal_numpy(rows):
    run = _run()
    f = run.streams["ft"]["force"].values
    t = run.streams["ft"]["time"].values
    _, norm = _values(run, {"norm": {"stream": "ft", "variable": "force"}}, rows)
    assert np.allclose(norm, np.linalg.norm(f, axis=1))
    td, der = _values(run, {"derivative": {"stream": "ft", "variable": "force", "axis": "x"}}, rows)
    assert np.array_equal(td, t[1:]) and np.allclose(der, np.diff(f[:, 0]) / np.diff(t / NS))
    _, diff = _values(run, {"diff": [{"stream": "js", "variable": "position", "joint": "j1"},
                                     {"stream": "cmd", "variable": "position", "joint": "j1"}]}, rows)
    tc, cmd = run.streams["cmd"]["time"].values, run.streams["cmd"]["position"].values[:, 0]
    want = run.streams["js"]["position"].values[:, 0] - np.interp(t, tc, cmd)
    inside = (t >= tc[0]) & (t <= tc[-1])
    assert np.allclose(diff[inside], want[inside]) and np.isnan(diff[~inside]).all()


def test_rules_on_a_lazy_store_run_equal_in_memory(tmp_path, monkeypatch):
    import workbench.pieces as chunked

    rules = RuleSet.from_dict({"events": [
        {"name": "high", "signal": {"stream": "level", "variable": "v"}, "above": 0.6, "release": 0.1, "min_duration": 0.05},
        {"name": "push", "signal": {"stream": "ft", "variable": "force", "axis": "x"}, "above": 15, "release": 5, "min_duration": 0.1},
        {"name": "mode", "signal": {"stream": "mode", "variable": "state"}, "on_change": True},
        {"name": "lag", "signal": {"diff": [{"stream": "js", "variable": "position", "joint": "j1"},
                                             {"stream": "cmd", "variable": "position", "joint": "j1"}]}, "below": -0.015},
        {"name": "pushed_then_mode", "first": "push", "then": "mode", "within": 10},
    ], "outcome": {"failure": {"final": {"signal": {"stream": "mode", "variable": "state"}, "above": 3}}}})
    run = _run()
    whole = evaluate(run, rules)
    assert whole.counts["mode"] == 4 and whole.counts["push"] > 5 and whole.outcome == "failure"
    for rows in (1, 13, 256):
        assert evaluate(run, rules, rows=rows).events.equals(whole.events)
    # the same run stored, read lazily (dask-backed) in pieces
    store = wb.open_store(tmp_path / "store")
    store._write_run(run.info, run.streams, run.events)
    lazy = store.load("engine-test", lazy=True, indexes=False)
    got = evaluate(lazy, rules, rows=97)
    assert got.events.drop("origin").equals(whole.events.drop("origin"))
    assert whole.counts["high"] > 10
    # the stored float32 variable is read and scanned in threads: the same events with one thread
    for threads in (1, 3):
        monkeypatch.setattr(chunked, "SCAN_THREADS", threads)
        lazy = store.load("engine-test", lazy=True, indexes=False)
        assert evaluate(lazy, rules, rows=61).events.drop("origin").equals(whole.events.drop("origin"))


def test_scan_map_runs_in_threads_and_keeps_the_order(tmp_path):
    from workbench.pieces import StreamPieces

    run = _run()
    store = wb.open_store(tmp_path / "store")
    store._write_run(run.info, run.streams, run.events)
    ds = store.load("engine-test", lazy=True, indexes=False).streams["level"]
    import threading

    seen: set[str] = set()
    both = threading.Barrier(2, timeout=60)  # the first two pieces meet: two threads at once, whatever the load
    calls = [0]
    lock = threading.Lock()

    def first_and_sum(t, v, scratch):
        seen.add(threading.current_thread().name)
        with lock:
            calls[0] += 1
            first_two = calls[0] <= 2
        if first_two:
            both.wait()
        scratch["n"] = scratch.get("n", 0) + 1
        return int(t[0]), float(v.astype(np.float64).sum())

    got = list(StreamPieces(ds, rows=100).scan_map("v", first_and_sum, threads=2))
    t, v = run.streams["level"]["time"].values, run.streams["level"]["v"].values.astype(np.float64)
    want = [(int(t[a]), float(v[a:a + 100].sum())) for a in range(0, t.size, 100)]
    assert [g[0] for g in got] == [w[0] for w in want] and np.allclose([g[1] for g in got], [w[1] for w in want])
    assert len(seen) == 2 and all(n.startswith("workbench-scan") for n in seen)


def test_rule_problems_name_the_valid_choices():
    run = _run()
    cases = [
        ({"stream": "ft", "variable": "force"}, r"has 3 components; select one \(axis: LABEL\)"),
        ({"stream": "ft", "variable": "force", "axis": "w"}, r"no axis 'w' in ft/force; axis labels: x, y, z"),
        ({"stream": "js", "variable": "velocity", "joint": "j1"}, r"stream 'js' has no variable 'velocity'; variables: position"),
        ({"diff": [{"stream": "js", "variable": "position", "joint": "j1"}, {"derivative": {"stream": "mode"}}]},
         r"the second signal of a diff must be a stream variable"),
    ]
    for signal, message in cases:
        rules = RuleSet.from_dict({"events": [{"name": "r", "signal": signal, "above": 1}]})
        with pytest.raises(RuleProblem, match=message):
            evaluate(run, rules)
    absent = evaluate(run, RuleSet.from_dict({"events": [{"name": "r", "signal": {"stream": "imu"}, "above": 1}]}))
    assert absent.missing == {"r": "stream 'imu' absent"} and absent.events.height == 0
    with pytest.raises(RuleProblem, match=r"stream 'imu' absent; streams: cmd, ft, js, level, mode"):
        evaluate(run, RuleSet.from_dict({"events": [{"name": "r", "signal": {"stream": "imu"}, "above": 1}]}), strict_streams=True)


def test_outcome_clauses_first_that_holds_decides_and_unknown_stays_unknown():
    run = _run()
    ev = pl.DataFrame({"time": [5 * NS], "kind": ["slip"], "detail": ["{}"]})
    run.events = wb.model.check_events(ev)
    decide = RuleSet.from_dict({"outcome": [{"failure": {"event": "slip"}}, {"success": {"any": {"signal": {"stream": "mode", "variable": "state"}, "equals": 2}}}]})
    got = evaluate(run, decide)
    assert (got.outcome, got.outcome_ns) == ("failure", 5 * NS)
    other = RuleSet.from_dict({"outcome": [{"success": {"any": {"signal": {"stream": "mode", "variable": "state"}, "equals": 2}}}, {"failure": {"event": "slip"}}]})
    got = evaluate(run, other)
    assert got.outcome == "success" and got.outcome_ns == 1400 * 10_000_000
    never = RuleSet.from_dict({"outcome": {"success": {"event": "placed"}}})
    assert evaluate(run, never).outcome is None
