"""RunInfo / Run validation and JSON round trips."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

from workbench.model import (
    Provenance,
    Run,
    RunInfo,
    SchemaError,
    SourceFile,
    WorkbenchError,
    events_from_json,
    parse_scalar,
    run_outcome,
    stream_name,
)

SHA = "ab" * 32


def make_info(**kw):
    base = {
        "run_id": "run-1",
        "hardware": {"robot": "arm-a", "calibration": 0.03},
        "environment": {"lighting": "dim"},
        "model": {"version": "policy-v2", "checkpoint": "c0ffee"},
        "scenario": {"task": "pick_place", "seed": 7},
        "provenance": Provenance(
            sources=(SourceFile(path="/logs/a.mcap", size=123, sha256=SHA),),
            reader="mcap",
            reader_version="1",
            options={"salvage": False},
            workbench_version="0.1.0",
            ingested_at="2026-11-22T00:00:00+00:00",
            overrides=({"key": "hardware.robot", "old": "x", "new": "arm-a"},),
            skipped=({"topic": "/foo", "reason": "unknown schema", "count": 3},),
        ),
        "start_ns": 1_000,
        "end_ns": 5_000_000_000,
        "name": "a",
    }
    base.update(kw)
    return RunInfo(**base)


def test_runinfo_json_round_trip_is_exact():
    info = make_info()
    back = RunInfo.from_json(info.to_json())
    assert back == info
    assert back.provenance.sources[0].sha256 == SHA
    assert back.factors() == {
        "hardware.robot": "arm-a",
        "hardware.calibration": 0.03,
        "environment.lighting": "dim",
        "model.version": "policy-v2",
        "model.checkpoint": "c0ffee",
        "scenario.task": "pick_place",
        "scenario.seed": 7,
    }
    assert back.duration_s == pytest.approx(5.0, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": ""}, "run_id"),
        ({"run_id": "../etc"}, "run_id"),
        ({"run_id": "a b"}, "run_id"),
        ({"hardware": {"robot": ["a", "b"]}}, "hardware.robot"),
        ({"scenario": {"bad key!": 1}}, "factor key"),
        ({"start_ns": 10, "end_ns": 5}, "before start_ns"),
        ({"start_ns": 1.5}, "int nanoseconds"),
    ],
)
def test_runinfo_rejects_bad_values(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        make_info(**kwargs)


def test_schema_error_is_a_workbench_error():
    assert issubclass(SchemaError, WorkbenchError)
    with pytest.raises(WorkbenchError):
        SourceFile(path="x", size=1, sha256="nothex")


def test_from_dict_rejects_unknown_fields():
    d = make_info().to_dict()
    d["colour"] = "red"
    with pytest.raises(SchemaError, match="unknown fields"):
        RunInfo.from_dict(d)
    with pytest.raises(SchemaError, match="not valid JSON"):
        RunInfo.from_json("{nope")


def test_with_factors_sets_and_validates():
    info = make_info().with_factors({"environment.surface": "steel"})
    assert info.environment == {"lighting": "dim", "surface": "steel"}
    with pytest.raises(SchemaError, match="must start with one of"):
        make_info().with_factors({"colour": "red"})


def test_run_validates_streams_and_events():
    ds = xr.Dataset(
        {"position": (("time", "joint"), np.zeros((3, 2)))},
        coords={"time": np.array([0, 1, 2], dtype=np.int64), "joint": ["j1", "j2"]},
    )
    ev, _ = events_from_json([5, 3], ['{"kind": "success"}', '{"kind": "grasp", "force": 2}'])
    run = Run(make_info(), {"joint_states": ds}, ev)
    assert run.outcome == "success"
    assert run.events["kind"].to_list() == ["grasp", "success"]  # sorted by time
    assert "joint_states[3]" in repr(run)
    with pytest.raises(SchemaError, match="no 'time' dimension"):
        Run(make_info(), {"bad": xr.Dataset({"v": ("t", [1.0])})})
    with pytest.raises(SchemaError, match="stream name"):
        Run(make_info(), {"a/b": ds})
    with pytest.raises(SchemaError, match="lacks columns"):
        Run(make_info(), {}, pl.DataFrame({"time": [1]}))


def test_events_from_json_reports_problems_and_keeps_detail():
    ev, problems = events_from_json(
        [1, 2, 3, 4],
        ['{"kind": "failure", "reason": "slip"}', "not json", '{"no": "kind"}', b'{"kind": "drop"}'],
    )
    assert ev["kind"].to_list() == ["failure", "drop"]
    assert ev["detail"][0] == '{"reason": "slip"}'
    assert [p["time"] for p in problems] == [2, 3]
    assert run_outcome(ev) == "failure"
    assert run_outcome(ev.filter(pl.col("kind") == "drop")) is None


def test_stream_name_and_parse_scalar():
    assert stream_name("/tf_static") == "tf_static"
    assert stream_name("/a b/c:d") == "a_b.c_d"
    assert stream_name("///") == "root"
    assert parse_scalar("42") == 42
    assert parse_scalar("-0.5") == -0.5
    assert parse_scalar("007") == "007"
    assert parse_scalar("FALSE") is False
    assert parse_scalar("e" * 64) == "e" * 64
    assert parse_scalar("1" * 64) == "1" * 64
