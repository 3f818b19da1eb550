"""ULog reader: real PX4 logs checked against pyulog, a hand-written ULog round trip, bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from pyulog import ULog

from workbench.io.loglevels import LEVELS
from workbench.io.ulog import ULOG_MAGIC, ULogReader
from workbench.model import ReaderError

FILES = {
    "foxglove": "ulog/foxglove_mcap/test_ulog.ulg",
    "appended": "ulog/pyulog/sample_appended_multiple.ulg",
    "small": "ulog/pyulog/sample_log_small.ulg",
}


@pytest.fixture(scope="module", params=sorted(FILES))
def loaded(
    request: pytest.FixtureRequest, real_data: Path
) -> tuple[Path, ULog, object]:
    path = real_data / FILES[request.param]
    (run,) = list(ULogReader().read(path))
    return path, ULog(str(path)), run


def test_counts_and_values_match_pyulog(loaded: tuple) -> None:
    _path, ulog, run = loaded
    assert len(run.streams) == len(ulog.data_list)
    by_instance = {
        (m["topic"], m["multi_id"]): name for name, m in run.extra["streams"].items()
    }
    for d in ulog.data_list:
        name = by_instance[(d.name, d.multi_id)]
        assert name == (d.name if d.multi_id == 0 else f"{d.name}_{d.multi_id}")
        ds = run.streams[name]
        assert ds.sizes["time"] == len(d.data["timestamp"]), name
        np.testing.assert_array_equal(
            ds["time"].values, d.data["timestamp"].astype(np.int64) * 1000
        )
        if "timestamp_sample" in d.data:
            np.testing.assert_array_equal(
                ds["header_time"].values,
                d.data["timestamp_sample"].astype(np.int64) * 1000,
            )
        assert ds.attrs["topic"] == d.name and ds.attrs["multi_id"] == d.multi_id
    assert run.extra["clock"] == "boot"
    assert run.extra["parameters"] == pytest.approx(dict(ulog.initial_parameters))
    assert run.factors["hardware"]["ver_hw"] == ulog.msg_info_dict["ver_hw"]
    assert run.factors["hardware"]["sys_uuid"] == ulog.msg_info_dict["sys_uuid"]
    assert (
        run.factors["hardware"]["param.SYS_AUTOSTART"]
        == ulog.initial_parameters["SYS_AUTOSTART"]
    )
    logs = run.events.filter(run.events["kind"] == "log")
    assert logs.height == len(ulog.logged_messages)
    first = json.loads(logs["detail"][0])
    # pyulog's syslog names folded onto LEVELS (the others are already LEVELS names)
    syslog = {
        "EMERGENCY": "FATAL",
        "ALERT": "FATAL",
        "CRITICAL": "FATAL",
        "WARNING": "WARN",
        "NOTICE": "INFO",
    }
    ref = ulog.logged_messages[0]
    assert first == {
        "level": syslog.get(ref.log_level_str(), ref.log_level_str()),
        "severity": ref.log_level - ord("0"),
        "message": ref.message.rstrip(),
    }
    assert logs["time"][0] == ulog.logged_messages[0].timestamp * 1000
    details = [json.loads(d) for d in logs["detail"]]
    assert [d["level"] for d in details] == [
        syslog.get(m.log_level_str(), m.log_level_str()) for m in ulog.logged_messages
    ]
    assert all(d["level"] in LEVELS for d in details)
    assert run.skipped == []


def test_array_fields_grouped(real_data: Path) -> None:
    path = real_data / FILES["small"]
    ulog = ULog(str(path))
    (run,) = list(ULogReader().read(path))
    att = ulog.get_dataset("vehicle_attitude").data
    q = run.streams["vehicle_attitude"]["q"]
    assert q.dims == ("time", "quat") and list(q["quat"].values) == ["x", "y", "z", "w"]
    np.testing.assert_array_equal(
        q.sel(quat="w").values, att["q[0]"]
    )  # PX4 stores w first
    np.testing.assert_array_equal(q.sel(quat="x").values, att["q[1]"])
    sc = ulog.get_dataset("sensor_combined").data
    gyro = run.streams["sensor_combined"]["gyro_rad"]
    assert gyro.dims == ("time", "axis")
    np.testing.assert_array_equal(gyro.values[:, 2], sc["gyro_rad[2]"])
    ctl = ulog.get_dataset("actuator_controls_0").data
    np.testing.assert_array_equal(
        run.streams["actuator_controls_0"]["control_3"].values, ctl["control[3]"]
    )
    # multi-instance topics: instance 0 keeps the name, others get _<n>
    assert {"sensor_accel", "sensor_accel_1", "sensor_accel_2"} <= set(run.streams)
    assert run.factors["hardware"]["firmware"] == "1.11.2"
    assert run.extra["boot_to_utc_ns"] > 1.5e18  # GPS gives UTC: 2021
    assert run.events.filter(run.events["kind"] == "dropout").height == len(
        ulog.dropouts
    )


def test_appended_data_file(real_data: Path) -> None:
    path = real_data / FILES["appended"]
    (run,) = list(ULogReader().read(path))
    assert run.extra["appended_data"] is True
    assert len(run.streams) == 20
    assert len(run.extra["parameters"]) == 750
    for name, ds in run.streams.items():
        assert np.all(np.diff(ds["time"].values) >= 0), name
    # the data after the appended offset is kept: the log spans ~9.8 s
    last = max(int(ds["time"].values[-1]) for ds in run.streams.values())
    assert last == ULog(str(path)).last_timestamp * 1000


# --------------------------------------------------------------------------- synthetic ULog


def _msg(mtype: bytes, payload: bytes) -> bytes:
    return struct.pack("<HB", len(payload), mtype[0]) + payload


def _kv(key: str, value: bytes) -> bytes:
    k = key.encode()
    return struct.pack("<B", len(k)) + k + value


def write_ulog(path: Path, n: int = 10) -> dict[str, np.ndarray]:
    """A small valid ULog: two topics (one with two instances), params, info, a log line."""
    out = bytearray(ULOG_MAGIC + b"\x01" + struct.pack("<Q", 0))
    out += _msg(b"B", bytes(8) + bytes(8) + bytes(24))
    out += _msg(
        b"F", b"vehicle_attitude:uint64_t timestamp;float[4] q;uint8_t reset_counter;"
    )
    out += _msg(
        b"F",
        b"sensor_accel:uint64_t timestamp;uint64_t timestamp_sample;float x;float[3] xyz;",
    )
    out += _msg(b"I", _kv("char[8] ver_hw", b"TOY_FMU1"))
    out += _msg(b"I", _kv("char[3] sys_name", b"PX4"))
    out += _msg(b"I", _kv("uint32_t ver_sw_release", struct.pack("<I", 0x010E03FF)))
    out += _msg(b"P", _kv("int32_t SYS_AUTOSTART", struct.pack("<i", 4001)))
    out += _msg(b"P", _kv("float MPC_XY_P", struct.pack("<f", 0.95)))
    out += _msg(b"A", struct.pack("<BH", 0, 0) + b"vehicle_attitude")
    out += _msg(b"A", struct.pack("<BH", 0, 1) + b"sensor_accel")
    out += _msg(b"A", struct.pack("<BH", 1, 2) + b"sensor_accel")
    expect: dict[str, np.ndarray] = {
        "att_t": np.arange(n) * 10_000 + 1_000_000,
        "q": np.zeros((n, 4), np.float32),
        "acc_t": np.arange(n) * 5_000 + 1_000_000,
    }
    for i in range(n):
        q = np.array([1.0 - i * 0.01, 0.1 * i, 0.2, 0.3], np.float32)
        expect["q"][i] = q
        out += _msg(b"D", struct.pack("<HQ4fB", 0, int(expect["att_t"][i]), *q, i % 3))
        for msg_id, off in ((1, 0.0), (2, 100.0)):
            t = int(expect["acc_t"][i])
            out += _msg(
                b"D",
                struct.pack("<HQQf3f", msg_id, t, t - 200, off + i, i, 2 * i, 3 * i),
            )
    out += _msg(
        b"L", struct.pack("<BQ", ord("4"), 1_050_000) + b"[commander] low battery\t"
    )
    path.write_bytes(bytes(out))
    return expect


def test_logged_message_levels_normalized(tmp_path: Path) -> None:
    path = tmp_path / "levels.ulg"
    write_ulog(path)
    out = bytearray(path.read_bytes())
    for k in range(8):  # PX4 writes the syslog level as an ASCII digit
        out += _msg(b"L", struct.pack("<BQ", ord(str(k)), 2_000_000 + k) + f"m{k}".encode())
    out += _msg(b"L", struct.pack("<BQ", 9, 2_000_010) + b"odd level byte")
    out += _msg(b"C", struct.pack("<BHQ", ord("3"), 7, 2_000_020) + b"tagged error")
    path.write_bytes(bytes(out))
    (run,) = list(ULogReader().read(path))
    logs = [json.loads(d) for d in run.events.filter(run.events["kind"] == "log")["detail"]]
    got = [(d["severity"], d["level"], d["message"], d.get("tag")) for d in logs]
    assert got == [
        (4, "WARN", "[commander] low battery", None),  # from write_ulog
        (0, "FATAL", "m0", None),
        (1, "FATAL", "m1", None),
        (2, "FATAL", "m2", None),
        (3, "ERROR", "m3", None),
        (4, "WARN", "m4", None),
        (5, "INFO", "m5", None),
        (6, "INFO", "m6", None),
        (7, "DEBUG", "m7", None),
        (9, None, "odd level byte", None),  # not a digit: raw byte kept, no level
        (3, "ERROR", "tagged error", 7),
    ]


def test_synthetic_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "toy.ulg"
    expect = write_ulog(path)
    reader = ULogReader()
    assert reader.guess_can_open(path)
    (run,) = list(reader.read(path))
    assert set(run.streams) == {"vehicle_attitude", "sensor_accel", "sensor_accel_1"}
    att = run.streams["vehicle_attitude"]
    np.testing.assert_array_equal(att["time"].values, expect["att_t"] * 1000)
    np.testing.assert_array_equal(att["q"].values, expect["q"][:, [1, 2, 3, 0]])
    assert att["reset_counter"].values.tolist() == [i % 3 for i in range(10)]
    acc1 = run.streams["sensor_accel_1"]
    assert acc1["x"].values.tolist() == [100.0 + i for i in range(10)]
    np.testing.assert_array_equal(acc1["xyz"].sel(axis="y").values, 2.0 * np.arange(10))
    np.testing.assert_array_equal(
        acc1["header_time"].values, (expect["acc_t"] - 200) * 1000
    )
    assert run.factors["hardware"] == {
        "sys_name": "PX4",
        "ver_hw": "TOY_FMU1",
        "firmware": "1.14.3",
        "param.SYS_AUTOSTART": 4001,
    }
    assert run.extra["parameters"] == {
        "SYS_AUTOSTART": 4001,
        "MPC_XY_P": pytest.approx(0.95),
    }
    assert run.events.to_dicts() == [
        {
            "time": 1_050_000_000,
            "kind": "log",
            "detail": json.dumps(
                {"level": "WARN", "message": "[commander] low battery", "severity": 4},
                sort_keys=True,
            ),
        }
    ]
    assert run.skipped == []
    # topic selection and factor parameter choice
    (only,) = list(
        reader.read(path, topics=["sensor_accel"], factor_params=["MPC_XY_P"])
    )
    assert set(only.streams) == {"sensor_accel", "sensor_accel_1"}
    assert only.factors["hardware"]["param.MPC_XY_P"] == pytest.approx(0.95)


def test_truncated_file_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "cut.ulg"
    write_ulog(path)
    data = path.read_bytes()
    path.write_bytes(
        data[:-40]
    )  # cuts the log line and the end of the last data message
    (run,) = list(ULogReader().read(path))
    (flag,) = run.skipped
    assert flag["topic"] == "(file)" and "truncated" in flag["reason"]
    assert run.events.height == 0
    assert run.streams["sensor_accel_1"].sizes["time"] == 9


def test_bad_files_name_the_file(real_data: Path, tmp_path: Path) -> None:
    reader = ULogReader()
    empty = tmp_path / "empty.ulg"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty.ulg.*not a ULog file"):
        list(reader.read(empty))
    wrong = tmp_path / "wrong.ulg"
    wrong.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ReaderError, match="wrong.ulg.*not a ULog file"):
        list(reader.read(wrong))
    assert not reader.guess_can_open(tmp_path)
    headers_only = tmp_path / "defs.ulg"
    headers_only.write_bytes((real_data / FILES["small"]).read_bytes()[:3000])
    with pytest.raises(ReaderError, match="defs.ulg.*no data"):
        list(reader.read(headers_only))


@pytest.mark.parametrize("key", sorted(FILES))
def test_run_spans_the_logs_own_start_and_last_timestamp(real_data: Path, tmp_path: Path, key: str) -> None:
    import workbench as wb

    path = real_data / FILES[key]
    ulog = ULog(str(path))
    (run,) = list(ULogReader().read(path))
    assert run.span == (ulog.start_timestamp * 1000, ulog.last_timestamp * 1000)
    # PX4 logs each topic's last known state at the start, with its older stamp: kept
    early = [n for n, ds in run.streams.items() if int(ds["time"].values[0]) < run.span[0]]
    assert early, "these logs carry samples from before their start"
    store = wb.open_store(tmp_path / "store")
    store.ingest([path])
    info = store.info(store.run_ids()[0])
    assert (info.start_ns, info.end_ns) == run.span
    assert info.duration_s == pytest.approx((ulog.last_timestamp - ulog.start_timestamp) / 1e6)


@pytest.mark.parametrize("key", sorted(FILES))
def test_wall_clock_start_from_gps_utc_as_pyulog_reads_it(real_data: Path, tmp_path: Path, key: str) -> None:
    import workbench as wb

    path = real_data / FILES[key]
    ulog = ULog(str(path))
    offsets = []
    for d in ulog.data_list:
        if d.name in ("vehicle_gps_position", "sensor_gps") and "time_utc_usec" in d.data:
            utc, t = d.data["time_utc_usec"].astype(np.int64), d.data["timestamp"].astype(np.int64)
            ok = utc > 0
            if ok.any():
                offsets.append((d.name, int(np.median(utc[ok] - t[ok])) * 1000))
                break
    store = wb.open_store(tmp_path / "store")
    store.ingest([path])
    row = store.runs().row(0, named=True)
    if offsets:
        topic, offset = offsets[0]
        expected = ulog.start_timestamp * 1000 + offset
        assert abs(row["start"].timestamp() * 1e9 - expected) < 1e3  # datetime keeps µs
        assert row["start_clock"] == f"GPS UTC ({topic}.time_utc_usec)"
        assert row["start"].year >= 2015
    else:
        assert row["start"] is None and row["start_clock"] == "boot-relative (no wall time in the log)"
