"""DataFlash and tlog readers: real ArduPilot logs checked against pymavlink, hand-written round trips."""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pymavlink import mavutil
from pymavlink.DFReader import DFReader_binary

from workbench.io.loglevels import LEVELS
from workbench.io.mavlink import DataFlashReader, TlogReader
from workbench.model import ReaderError

SUB_BIN = "ardupilot_dataflash/ardusub_log_tools/small.BIN"
PLANE_BIN = "ardupilot_dataflash/pymavlink/test.BIN"
SUB_TLOG = "mavlink_tlog/ardusub_log_tools/small.tlog"


def _df_reference(path: Path) -> tuple[Counter, dict, dict]:
    """Counts per (type, instance), first message per key, and units, straight from pymavlink."""
    log = DFReader_binary(str(path), zero_time_base=False)
    counts: Counter = Counter()
    first: dict = {}
    while (m := log.recv_msg()) is not None:
        inst_field = getattr(m.fmt, "instance_field", None)
        key = (m.get_type(), getattr(m, inst_field) if inst_field else None)
        counts[key] += 1
        first.setdefault(key, m)
    return counts, first, {}


@pytest.fixture(scope="module")
def sub_bin(real_data: Path):
    path = real_data / SUB_BIN
    (run,) = list(DataFlashReader().read(path))
    return path, run


def test_dataflash_counts_values_units(sub_bin) -> None:
    path, run = sub_bin
    counts, first, _ = _df_reference(path)
    for (mtype, inst), n in counts.items():
        if mtype in {"FMT", "FMTU", "UNIT", "MULT", "PARM", "MSG"}:
            continue
        name = mtype if not inst else f"{mtype}_{inst}"
        ds = run.streams[name]
        assert ds.sizes["time"] == n, name
        ref = first[(mtype, inst)]
        assert ds["time"].values[0] == ref.TimeUS * 1000
        for col in ref.fmt.columns:
            if col in ds.data_vars:
                assert ds[col].values[0] == pytest.approx(getattr(ref, col)), (
                    name,
                    col,
                )
                unit = ref.fmt.get_unit(col)
                assert ds[col].attrs.get("units", "") == unit, (name, col)
    assert run.streams["BARO"]["Press"].attrs["units"] == "Pa"
    assert run.streams["IMU"].attrs["instance_field"] == "I"
    assert "I" not in run.streams["IMU"].data_vars
    assert run.extra["clock"] == "boot"
    assert run.skipped == []


def test_dataflash_params_events_factors(sub_bin) -> None:
    path, run = sub_bin
    log = DFReader_binary(str(path), zero_time_base=False)
    parms, msgs = [], []
    while (m := log.recv_msg()) is not None:
        if m.get_type() == "PARM":
            parms.append((m.Name, m.Value))
        elif m.get_type() == "MSG":
            msgs.append(m.Message)
    first: dict = {}
    for name, value in parms:
        first.setdefault(name, value)
    assert run.extra["parameters"] == pytest.approx(first)
    assert len(parms) == 876
    changes = run.events.filter(run.events["kind"] == "parameter")
    assert (
        changes.height == 3
    )  # values that differ from the previous PARM of the same name
    logs = run.events.filter(run.events["kind"] == "log")
    assert [json.loads(d)["message"] for d in logs["detail"]] == msgs
    assert run.factors["hardware"]["firmware"] == "ArduSub"
    assert run.factors["hardware"]["firmware_version"] == "4.1.0"
    assert run.factors["hardware"]["firmware_git"] == "89639005"
    assert run.factors["hardware"]["param.SYSID_THISMAV"] == first["SYSID_THISMAV"]
    assert run.events.filter(run.events["kind"] == "mode").height == 1


def test_dataflash_truncated_real_file(real_data: Path) -> None:
    path = real_data / PLANE_BIN
    (run,) = list(DataFlashReader().read(path))
    counts, _, _ = _df_reference(path)
    assert run.streams["IMU"].sizes["time"] == counts[("IMU", None)] == 45
    assert run.streams["IMU2"].sizes["time"] == 45
    (flag,) = run.skipped
    assert flag["topic"] == "(file)" and "truncated" in flag["reason"]
    assert run.factors["hardware"]["firmware"] == "ArduPlane"
    assert run.factors["hardware"]["firmware_version"] == "3.8.2-dev"
    assert len(run.extra["parameters"]) == len({n for n in run.extra["parameters"]})


# --------------------------------------------------------------------------- synthetic DataFlash


def _df(msg_type: int, fmt: str, *values: object) -> bytes:
    return b"\xa3\x95" + bytes([msg_type]) + struct.pack("<" + fmt, *values)


def _fmt(type_: int, length: int, name: str, fmt: str, cols: str) -> bytes:
    return _df(
        128, "BB4s16s64s", type_, length, name.encode(), fmt.encode(), cols.encode()
    )


def write_dataflash(path: Path, n: int = 20) -> None:
    out = bytearray()
    out += _fmt(128, 89, "FMT", "BBnNZ", "Type,Length,Name,Format,Columns")
    out += _fmt(180, 76, "UNIT", "QbZ", "TimeUS,Id,Label")
    out += _fmt(181, 20, "MULT", "Qbd", "TimeUS,Id,Mult")
    out += _fmt(182, 44, "FMTU", "QBNN", "TimeUS,FmtType,UnitIds,MultIds")
    out += _fmt(183, 31, "PARM", "QNf", "TimeUS,Name,Value")
    out += _fmt(184, 75, "MSG", "QZ", "TimeUS,Message")
    out += _fmt(200, 18, "TST", "QBfh", "TimeUS,I,Alt,Cnt")
    for uid, label in (
        (ord("s"), b"s"),
        (ord("m"), b"m"),
        (ord("#"), b"instance"),
        (ord("-"), b""),
    ):
        out += _df(180, "Qb64s", 1000, uid, label)
    for mid, mult in (
        (ord("F"), 1e-6),
        (ord("-"), 0.0),
        (ord("0"), 1.0),
        (ord("B"), 1e-2),
    ):
        out += _df(181, "Qbd", 1000, mid, mult)
    out += _df(182, "QB16s16s", 1000, 200, b"s#m-", b"F-B-")
    out += _df(183, "Q16sf", 2000, b"FRAME_CLASS", 2.0)
    out += _df(183, "Q16sf", 2000, b"ATC_RAT_P", 0.5)
    out += _df(184, "Q64s", 3000, b"ArduCopter V4.5.1 (0a1b2c3d)")
    for i in range(n):
        for inst in (0, 1):
            out += _df(200, "QBfh", 10_000 + i * 1000, inst, inst * 100 + i * 0.5, -i)
    out += _df(183, "Q16sf", 50_000, b"ATC_RAT_P", 0.6)
    path.write_bytes(bytes(out))


def test_dataflash_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "toy.bin"
    write_dataflash(path)
    reader = DataFlashReader()
    assert reader.guess_can_open(path)
    (run,) = list(reader.read(path))
    assert set(run.streams) == {"TST", "TST_1"}
    tst1 = run.streams["TST_1"]
    assert tst1["time"].values.tolist() == [
        (10_000 + i * 1000) * 1000 for i in range(20)
    ]
    np.testing.assert_allclose(tst1["Alt"].values, 100 + 0.5 * np.arange(20))
    assert tst1["Cnt"].values.tolist() == [-i for i in range(20)]
    assert tst1["Alt"].attrs["units"] == "cm"  # unit m with the centi multiplier
    assert tst1.attrs["instance"] == 1
    assert run.extra["parameters"] == pytest.approx(
        {"FRAME_CLASS": 2, "ATC_RAT_P": 0.5}
    )
    assert run.factors["hardware"] == {
        "firmware": "ArduCopter",
        "firmware_version": "4.5.1",
        "firmware_git": "0a1b2c3d",
        "param.FRAME_CLASS": 2,
    }
    (change,) = run.events.filter(run.events["kind"] == "parameter").to_dicts()
    assert change["time"] == 50_000_000
    assert json.loads(change["detail"]) == {
        "name": "ATC_RAT_P",
        "value": pytest.approx(0.6),
    }
    assert run.skipped == []
    # truncated in the middle of the last TST message
    data = path.read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[: -31 - 9])
    (short,) = list(reader.read(cut))
    assert short.streams["TST_1"].sizes["time"] == 19
    assert any(
        s["topic"] == "(file)" and "truncated" in s["reason"] for s in short.skipped
    )


# --------------------------------------------------------------------------- tlog


def test_tlog_counts_values(real_data: Path) -> None:
    path = real_data / SUB_TLOG
    (run,) = list(TlogReader().read(path))
    conn = mavutil.mavlink_connection(str(path))
    counts: Counter = Counter()
    first: dict = {}
    while (m := conn.recv_msg()) is not None:
        counts[m.get_type()] += 1
        first.setdefault(m.get_type(), m)
    per_type: Counter = Counter()
    for ds in run.streams.values():
        per_type[ds.attrs["message"]] += ds.sizes["time"]
    bad = counts.pop("BAD_DATA")
    assert per_type == counts
    assert sum(s["count"] for s in run.skipped if s["topic"] == "BAD_DATA") == bad == 4
    att = run.streams["ATTITUDE"]
    ref = first["ATTITUDE"]
    assert att["time"].values[0] == round(ref._timestamp * 1e6) * 1000
    assert att["header_time"].values[0] == ref.time_boot_ms * 1_000_000
    assert att["roll"].values[0] == pytest.approx(ref.roll)
    assert att["roll"].attrs["units"] == "rad"
    assert run.extra["clock"] == "utc"
    assert 1.683e18 < att["time"].values[0] < 1.684e18  # 2023-05-04
    assert len(run.extra["parameters"]) == 887
    assert run.factors["hardware"]["vehicle_type"] == "MAV_TYPE_SUBMARINE"
    assert run.factors["hardware"]["firmware"] == "ArduSub"
    logs = run.events.filter(run.events["kind"] == "log")
    assert logs.height == counts["STATUSTEXT"]
    assert json.loads(logs["detail"][0])["level"] == "INFO"
    named = {k for k in run.streams if k.startswith("NAMED_VALUE_FLOAT.")}
    assert "NAMED_VALUE_FLOAT.CamTilt" in named
    assert (
        sum(run.streams[k].sizes["time"] for k in named) == counts["NAMED_VALUE_FLOAT"]
    )
    assert "HEARTBEAT.src255_190" in run.streams  # the ground station's own heartbeat


MAV_SEVERITY_FOLD = {
    "EMERGENCY": "FATAL",
    "ALERT": "FATAL",
    "CRITICAL": "FATAL",
    "ERROR": "ERROR",
    "WARNING": "WARN",
    "NOTICE": "INFO",
    "INFO": "INFO",
    "DEBUG": "DEBUG",
}


def _severity_name(sev: int) -> str:
    """``MAV_SEVERITY_WARNING`` → ``WARNING``, from pymavlink's dialect enum."""
    return mavutil.mavlink.enums["MAV_SEVERITY"][sev].name.removeprefix("MAV_SEVERITY_")


def test_tlog_statustext_levels_normalized(real_data: Path) -> None:
    path = real_data / SUB_TLOG
    (run,) = list(TlogReader().read(path))
    conn = mavutil.mavlink_connection(str(path))
    ref = []
    while (m := conn.recv_msg()) is not None:
        if m.get_type() == "STATUSTEXT":
            ref.append(m)
    logs = [json.loads(d) for d in run.events.filter(run.events["kind"] == "log")["detail"]]
    assert len(logs) == len(ref) > 0
    assert [d["severity"] for d in logs] == [m.severity for m in ref]
    assert [d["level"] for d in logs] == [MAV_SEVERITY_FOLD[_severity_name(m.severity)] for m in ref]
    assert all(d["level"] in LEVELS for d in logs)
    assert [d["message"] for d in logs] == [m.text for m in ref]


def test_tlog_every_severity(tmp_path: Path) -> None:
    mav = mavutil.mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    out = bytearray()
    for sev in range(8):
        msg = mavutil.mavlink.MAVLink_statustext_message(sev, f"text {sev}".encode())
        out += struct.pack(">Q", 1_700_000_000_000_000 + sev) + msg.pack(mav)
    path = tmp_path / "sev.tlog"
    path.write_bytes(bytes(out))
    (run,) = list(TlogReader().read(path))
    logs = [json.loads(d) for d in run.events["detail"]]
    assert [(d["severity"], d["level"], d["message"]) for d in logs] == [
        (0, "FATAL", "text 0"),
        (1, "FATAL", "text 1"),
        (2, "FATAL", "text 2"),
        (3, "ERROR", "text 3"),
        (4, "WARN", "text 4"),
        (5, "INFO", "text 5"),
        (6, "INFO", "text 6"),
        (7, "DEBUG", "text 7"),
    ]
    assert run.events["time"].to_list() == [(1_700_000_000_000_000 + s) * 1000 for s in range(8)]


def test_dataflash_msg_has_no_level(sub_bin: tuple) -> None:
    _path, run = sub_bin
    logs = [json.loads(d) for d in run.events.filter(run.events["kind"] == "log")["detail"]]
    assert len(logs) == 9  # SOURCES.md: MSG x9
    assert {d["level"] for d in logs} == {None}


def write_tlog(path: Path, n: int = 15) -> float:
    mav = mavutil.mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    gcs = mavutil.mavlink.MAVLink(None, srcSystem=255, srcComponent=190)
    t0 = 1_700_000_000.0
    out = bytearray()

    def put(t: float, link, msg) -> None:
        out.extend(struct.pack(">Q", round(t * 1e6)) + msg.pack(link))

    m = mavutil.mavlink
    put(
        t0,
        mav,
        m.MAVLink_heartbeat_message(
            m.MAV_TYPE_QUADROTOR, m.MAV_AUTOPILOT_ARDUPILOTMEGA, 0, 0, 3, 3
        ),
    )
    put(
        t0,
        gcs,
        m.MAVLink_heartbeat_message(
            m.MAV_TYPE_GCS, m.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3
        ),
    )
    put(t0 + 0.001, mav, m.MAVLink_param_value_message(b"FRAME_CLASS", 1.0, 9, 2, 0))
    put(t0 + 0.002, mav, m.MAVLink_statustext_message(4, b"PreArm: low battery"))
    for i in range(n):
        t = t0 + 0.1 * (i + 1)
        put(
            t,
            mav,
            m.MAVLink_attitude_message(
                1000 + 100 * i, 0.01 * i, 0.0, 1.0, 0.0, 0.0, 0.0
            ),
        )
        put(
            t,
            mav,
            m.MAVLink_attitude_quaternion_message(
                1000 + 100 * i, 0.9, 0.1, 0.2, 0.3, 0, 0, 0
            ),
        )
        put(
            t,
            mav,
            m.MAVLink_named_value_float_message(1000 + 100 * i, b"Depth", -1.5 * i),
        )
        for bid in (0, 1):
            put(
                t,
                mav,
                m.MAVLink_battery_status_message(
                    bid, 0, 0, 2500, [12000 + bid] + [65535] * 9, 100, 10, 5, 80
                ),
            )
    path.write_bytes(bytes(out))
    return t0


def test_tlog_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "toy.tlog"
    t0 = write_tlog(path)
    reader = TlogReader()
    assert reader.guess_can_open(path)
    noext = tmp_path / "toy_noext"
    noext.write_bytes(path.read_bytes())
    assert reader.guess_can_open(noext)  # by the first record
    (run,) = list(reader.read(path))
    assert {
        "ATTITUDE",
        "ATTITUDE_QUATERNION",
        "NAMED_VALUE_FLOAT.Depth",
        "BATTERY_STATUS",
        "BATTERY_STATUS_1",
        "HEARTBEAT",
        "HEARTBEAT.src255_190",
    } <= set(run.streams)
    att = run.streams["ATTITUDE"]
    assert att.sizes["time"] == 15
    assert att["time"].values[3] == round((t0 + 0.4) * 1e6) * 1000
    assert att["header_time"].values.tolist() == [
        (1000 + 100 * i) * 1_000_000 for i in range(15)
    ]
    np.testing.assert_allclose(att["roll"].values, 0.01 * np.arange(15), rtol=1e-6)
    q = run.streams["ATTITUDE_QUATERNION"]
    assert q["q1"].values[0] == pytest.approx(
        0.9
    )  # ATTITUDE_QUATERNION has scalar q1..q4 fields
    assert run.streams["BATTERY_STATUS_1"]["voltages_0"].values[0] == 12001
    np.testing.assert_allclose(
        run.streams["NAMED_VALUE_FLOAT.Depth"]["value"].values, -1.5 * np.arange(15)
    )
    assert run.extra["parameters"] == {"FRAME_CLASS": 1}
    assert run.factors["hardware"] == {
        "vehicle_type": "MAV_TYPE_QUADROTOR",
        "autopilot": "MAV_AUTOPILOT_ARDUPILOTMEGA",
        "param.FRAME_CLASS": 1,
    }
    (log,) = run.events.to_dicts()
    assert json.loads(log["detail"]) == {
        "level": "WARN",  # MAV_SEVERITY_WARNING, normalized
        "severity": 4,
        "message": "PreArm: low battery",
        "source": "1/1",
    }
    assert run.skipped == []
    cut = tmp_path / "cut.tlog"
    cut.write_bytes(path.read_bytes()[:-7])
    (short,) = list(reader.read(cut))
    assert short.streams["BATTERY_STATUS_1"].sizes["time"] == 14
    assert any(
        s["topic"] == "(file)" and "truncated" in s["reason"] for s in short.skipped
    )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("reader_cls", [DataFlashReader, TlogReader])
def test_bad_files_name_the_file(reader_cls, tmp_path: Path) -> None:
    reader = reader_cls()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty.bin"):
        list(reader.read(empty))
    assert not reader.guess_can_open(empty)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"ULog\x01\x12\x35" + bytes(200))
    with pytest.raises(ReaderError, match="wrong.bin.*not a"):
        list(reader.read(wrong))
    assert not reader.guess_can_open(wrong)


def test_header_only_files_are_errors(tmp_path: Path) -> None:
    df = tmp_path / "fmt_only.bin"
    df.write_bytes(_fmt(128, 89, "FMT", "BBnNZ", "Type,Length,Name,Format,Columns"))
    with pytest.raises(ReaderError, match="fmt_only.bin.*no DataFlash data"):
        list(DataFlashReader().read(df))
    tl = tmp_path / "garbage.tlog"
    tl.write_bytes(bytes(8) + b"\xfe" + b"\x55" * 300)
    with pytest.raises(ReaderError, match="garbage.tlog.*no MAVLink message"):
        list(TlogReader().read(tl))
