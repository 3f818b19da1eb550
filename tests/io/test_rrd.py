"""Rerun .rrd reader: the real SO-100 scene, round trips written with rerun-sdk, bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from workbench.io.rrd import RrdReader, rrd_writer_version
from workbench.model import ReaderError

SO100 = "rrd/so_arm100/so100.rrd"


@pytest.mark.filterwarnings("ignore:RRD file has no footer")
def test_real_static_scene(real_data: Path) -> None:
    import rerun.chunk as rc

    path = real_data / SO100
    reader = RrdReader()
    assert reader.guess_can_open(path)
    (run,) = list(reader.read(path))
    assert run.streams == {}
    assert run.key == ""
    assert run.extra["writer_version"] == rrd_writer_version(path) == "0.23.1"
    assert run.extra["timeline"] == {"name": None, "kind": None}
    assert run.extra["recording_info"]["start_time"] == 1747924665849294000
    # every non-property row is accounted for in skipped, per entity and archetype
    expected: Counter = Counter()
    for chunk in rc.RrdReader(path).stream():
        if chunk.entity_path.startswith("/__properties"):
            continue
        rb = chunk.to_record_batch()
        archs = {
            (f.metadata or {}).get(b"rerun:archetype", b"").decode()
            for f in rb.schema
            if (f.metadata or {}).get(b"rerun:kind") == b"data"
        }
        for arch in archs:
            expected[(chunk.entity_path, arch)] += chunk.num_rows
    got = Counter()
    for s in run.skipped:
        got[(s["topic"], s["reason"].split(":")[0])] += s["count"]
    assert got == expected
    assert (
        len({e for e, _ in expected}) == 19
    )  # SOURCES.md: 20 entity paths, one of them /__properties
    assert {a for _, a in expected} == {
        "rerun.archetypes.Asset3D",
        "rerun.archetypes.Transform3D",
        "rerun.archetypes.TransformAxes3D",
    }


def _write(path: Path) -> dict[str, np.ndarray]:
    import rerun as rr

    rec = rr.RecordingStream("workbench-test", recording_id="rec-1")
    rec.save(path)
    t = 1.7e9 + np.arange(50) * 0.02
    joint = np.sin(np.arange(50) / 5.0)
    vec = np.arange(60.0).reshape(20, 3)
    rec.send_columns(
        "/robot/joint0",
        indexes=[rr.TimeColumn("t", timestamp=t)],
        columns=rr.Scalars.columns(scalars=joint),
    )
    rec.log("/robot/ee", rr.SeriesLines(names=["x", "y", "z"]), static=True)
    rec.send_columns(
        "/robot/ee",
        indexes=[
            rr.TimeColumn("t", timestamp=t[:20]),
            rr.TimeColumn("frame", sequence=np.arange(20)),
        ],
        columns=rr.Scalars.columns(scalars=vec),
    )
    rec.send_columns(
        "/counter",
        indexes=[rr.TimeColumn("frame", sequence=np.arange(5) * 10)],
        columns=rr.Scalars.columns(scalars=np.arange(5.0)),
    )
    rec.log("/scene/points", rr.Points3D([[0, 0, 0], [1, 1, 1]]), static=True)
    rec.set_time("t", timestamp=1.7e9)
    rec.log("/scene/tf", rr.Transform3D(translation=[1, 2, 3]))
    rec.send_property("hardware", rr.AnyValues(robot="arm-a", arms=2))
    rec.send_property("scenario", rr.AnyValues(task="pick"))
    rec.send_recording_name("toy run")
    rec.flush()
    del rec
    return {"t": t, "joint": joint, "vec": vec}


def test_round_trip_scalars(tmp_path: Path) -> None:
    path = tmp_path / "toy.rrd"
    ref = _write(path)
    (run,) = list(RrdReader().read(path))
    assert run.extra["timeline"] == {"name": "t", "kind": "timestamp"}
    assert run.extra["clock"] == "utc"
    assert set(run.streams) == {
        "robot.joint0",
        "robot.ee",
    }  # /counter is only on 'frame'
    j = run.streams["robot.joint0"]
    np.testing.assert_array_equal(
        j["time"].values, np.round(ref["t"] * 1e9).astype(np.int64)
    )
    np.testing.assert_allclose(j["scalars"].values, ref["joint"])
    ee = run.streams["robot.ee"]
    assert ee["scalars"].dims == ("time", "channel")
    assert list(ee["channel"].values) == ["x", "y", "z"]
    np.testing.assert_array_equal(ee["scalars"].values, ref["vec"])
    assert ee.attrs["entity"] == "/robot/ee" and ee.attrs["timeline"] == "t"
    assert run.factors == {
        "hardware": {"robot": "arm-a", "arms": 2},
        "scenario": {"task": "pick"},
    }
    assert run.name == "toy run"
    assert run.extra["writer_version"] == run.extra["sdk_version"]
    reasons = {s["topic"]: s["reason"] for s in run.skipped}
    assert reasons["/scene/points"].startswith("rerun.archetypes.Points3D: static data")
    assert reasons["/scene/tf"].startswith("rerun.archetypes.Transform3D: not a scalar")
    # /counter has a time series, but not on the chosen timeline: it is listed, not lost
    assert "/counter" in run.extra["entities"]


def test_sequence_timeline_option(tmp_path: Path) -> None:
    path = tmp_path / "toy.rrd"
    _write(path)
    (run,) = list(RrdReader().read(path, timeline="frame"))
    assert set(run.streams) == {"robot.ee", "counter"}
    c = run.streams["counter"]
    assert c["time"].values.tolist() == [0, 10, 20, 30, 40]
    assert (
        c.attrs["timeline_kind"] == "sequence" and c["time"].attrs["units"] == "ticks"
    )
    assert run.extra["clock"] == "sequence"
    with pytest.raises(ReaderError, match="no time series on timeline 'nope'"):
        list(RrdReader().read(path, timeline="nope"))


def test_any_values_series(tmp_path: Path) -> None:
    import rerun as rr

    path = tmp_path / "any.rrd"
    rec = rr.RecordingStream("workbench-test", recording_id="rec-2")
    rec.save(path)
    for i in range(6):
        rec.set_time("t", duration=i * 0.5)
        rec.log("/motor", rr.AnyValues(current=float(i), temp=20.0 + i))
    rec.flush()
    del rec
    (run,) = list(RrdReader().read(path))
    assert run.extra["timeline"]["kind"] == "duration"
    m = run.streams["motor"]
    assert m["time"].values.tolist() == [i * 500_000_000 for i in range(6)]
    assert m["current"].values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert m["temp"].values.tolist() == [20.0 + i for i in range(6)]


def test_bad_files_name_the_file(real_data: Path, tmp_path: Path) -> None:
    reader = RrdReader()
    empty = tmp_path / "empty.rrd"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty.rrd.*not a Rerun"):
        list(reader.read(empty))
    wrong = tmp_path / "wrong.rrd"
    wrong.write_bytes(b"PAR1" + bytes(64))
    with pytest.raises(ReaderError, match="wrong.rrd.*not a Rerun"):
        list(reader.read(wrong))
    data = (real_data / SO100).read_bytes()
    trunc = tmp_path / "trunc.rrd"
    trunc.write_bytes(data[:100_000])
    with pytest.raises(
        ReaderError, match=r"trunc.rrd.*Rerun 0.23.1.*exceeds file size"
    ):
        list(reader.read(trunc))
    old = bytearray(data)
    old[5] = 20  # the header says the file was written by Rerun 0.20.1
    legacy = tmp_path / "legacy.rrd"
    legacy.write_bytes(bytes(old))
    with pytest.raises(ReaderError, match=r"legacy.rrd.*0.20.1.*before Rerun 0.23"):
        list(reader.read(legacy))
