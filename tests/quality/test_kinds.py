"""Stream kinds: generated periodic, bursty, event-driven and state streams with planted
faults; each check finds exactly the planted faults and nothing on the clean twins."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.model import ConfigError, Provenance, Run, RunInfo
from workbench.quality import grade
from workbench.quality.kinds import classify

T0 = 1_750_000_000 * 10**9


def _run(streams: dict[str, xr.Dataset], reader: str = "table") -> Run:
    t = np.concatenate([ds["time"].values for ds in streams.values()])
    return Run(RunInfo("r", start_ns=int(t.min()), end_ns=int(t.max()), provenance=Provenance(reader=reader)), streams)


def _found(result) -> set[tuple[str, str]]:
    f = result.findings
    return {(r["stream"], r["check"]) for r in f.iter_rows(named=True) if r["severity"] != "info"}


def periodic(n=2000, period_ms=10.0, seed=0, header=True):
    rng = np.random.default_rng(seed)
    t = T0 + np.round(np.arange(n) * period_ms * 1e6 + rng.normal(0, 0.2e6, n)).astype(np.int64)
    t.sort()
    v = np.sin(np.arange(n) / 40) + rng.normal(0, 0.01, n)
    coords = {"time": t}
    if header:
        coords["header_time"] = ("time", t - 2_000_000)
    return xr.Dataset({"v": ("time", v)}, coords=coords)


def bursty(n=400, period_ms=50.0, seed=1):
    """A 20 Hz sensor recorded through a buffer: stamps regular, arrivals in bursts of 10."""
    rng = np.random.default_rng(seed)
    stamps = T0 + np.arange(n) * int(period_ms * 1e6)
    burst_end = stamps[9::10]
    arrival = np.repeat(burst_end, 10)[:n] + 5_000_000 + np.tile(np.arange(10) * 300_000, n // 10 + 1)[:n]
    v = np.cos(np.arange(n) / 10) + rng.normal(0, 0.01, n)
    return xr.Dataset({"v": ("time", v)}, coords={"time": arrival, "header_time": ("time", stamps)})


def events(n=200, seed=2):
    rng = np.random.default_rng(seed)
    t = T0 + np.cumsum(rng.exponential(0.3e9, n)).astype(np.int64)
    return xr.Dataset({"linear_x": ("time", rng.normal(0, 1, n))}, coords={"time": t})


def test_kinds_from_timing():
    assert classify("imu", periodic()).kind == "periodic"
    k = classify("imu", bursty())
    assert (k.kind, k.clock) == ("bursty", "header") and k.period_ns == pytest.approx(50e6)
    assert "bursty" in k.why and "sensor stamps regular" in k.why
    e = classify("teleop", events())
    assert e.kind == "event" and not e.timed
    text = xr.Dataset({"data": ("time", np.array(["a", "b", "c"] * 10, dtype=object))},
                      coords={"time": T0 + np.arange(30) * 10**8})
    assert classify("chatter", text).kind == "text"


def test_format_defaults_name_their_reason():
    ds = events()
    ds.attrs["message_type"] = "rcl_interfaces/msg/Log"
    assert classify("rosout", ds, reader="rosbag2").kind == "text"
    k = classify("vehicle_status", periodic(), reader="ulog")
    assert k.kind == "state" and "PX4 state" in k.why and "default for ulog" in k.why
    assert classify("actuator_outputs", periodic(), reader="ulog").role == "command"
    assert classify("HEARTBEAT", periodic(period_ms=1000, n=60), reader="tlog").kind == "state"
    assert classify("action", periodic(), reader="lerobot").role == "command"


def test_periodic_gap_found_once_clean_twin_clean():
    clean = periodic()
    gappy = clean.isel(time=np.r_[0:500, 560:2000])  # 0.6 s (60 samples) lost
    assert _found(grade(_run({"imu": clean}))) == set()
    result = grade(_run({"imu": gappy}))
    assert _found(result) == {("imu", "gap")}
    assert "on the sensor clock" in result.findings["detail"][0]
    assert result.grade == "B" and result.explain().startswith("B: imu gap — 3 % of the samples expected at 100 Hz")


def test_small_gaps_are_info_and_do_not_change_the_grade():
    clean = periodic(n=20_000)
    one = clean.isel(time=np.r_[0:5000, 5005:20_000])  # 5 samples of 20,000: 0.025 %, 50 ms
    result = grade(_run({"imu": one}))
    assert result.grade == "A" and result.findings["check"].to_list() == ["gap"]
    assert result.findings["severity"].to_list() == ["info"]


def test_bursty_receive_times_are_not_gaps_but_lost_stamps_are():
    clean = bursty()
    result = grade(_run({"imu": clean}))
    assert _found(result) == set(), result.findings
    lost = clean.isel(time=np.r_[0:200, 230:400])  # 30 samples (1.5 s) missing on the sensor clock
    result = grade(_run({"imu": lost}))
    assert _found(result) == {("imu", "gap")}
    row = result.findings.filter(result.findings["check"] == "gap").row(0, named=True)
    assert "about 30 messages dropped" in row["detail"] and "sensor clock" in row["detail"]


def test_event_streams_get_no_drop_estimates_even_with_long_silences():
    ds = events()
    t = ds["time"].values.copy()
    t[100:] += 20 * 10**9  # 20 s without a command: nobody drove
    ds = ds.assign_coords(time=t)
    result = grade(_run({"cmd": ds}))
    assert _found(result) == set() and result.kinds["cmd"].kind == "event"
    # declared periodic, the silence is a gap
    forced = grade(_run({"cmd": ds}), thresholds={"streams": {"cmd": {"kind": "periodic"}}})
    assert ("cmd", "gap") in _found(forced) and "kind periodic (quality" in forced.kinds["cmd"].why


def _arm(n=1500, moving=True):
    """An arm: 100 Hz commands and measurements, with a 4 s rest in the middle."""
    t = T0 + np.arange(n) * 10_000_000
    x = np.sin(np.arange(n) / 50.0)
    rest = slice(500, 900)
    cmd = x.copy()
    if not moving:
        cmd[rest] = cmd[500]
    meas = cmd + np.random.default_rng(4).normal(0, 1e-3, n)
    meas[rest] = meas[500]  # the encoder holds still
    return {
        "joint_commands": xr.Dataset({"position": ("time", cmd)}, coords={"time": t}),
        "joint_states": xr.Dataset({"position": ("time", meas)}, coords={"time": t}),
    }


def test_frozen_only_when_commanded_to_move():
    result = grade(_run(_arm(moving=True)))
    assert _found(result) == {("joint_states", "frozen")}
    assert "commanded to move (joint_commands changing)" in result.findings["detail"][0]
    assert _found(grade(_run(_arm(moving=False)))) == set()  # at rest: command and sensor hold


def test_state_streams_and_quantized_measurements_are_not_frozen():
    t = T0 + np.arange(600) * 100_000_000  # 10 Hz, 60 s
    mode = np.repeat([0, 3, 3, 1], 150).astype(np.int32)  # held for 15 s at a time
    steps = np.round(np.sin(np.arange(600) / 100) * 4)  # a coarse encoder: long holds by design
    streams = {
        "vehicle_status": xr.Dataset({"nav_state": ("time", mode)}, coords={"time": t}),
        "gripper_width": xr.Dataset({"w": ("time", steps)}, coords={"time": t}),
    }
    result = grade(_run(streams, reader="ulog"))
    assert _found(result) == set()
    assert result.kinds["vehicle_status"].kind == "state"
    checked = grade(_run(streams, reader="ulog"), thresholds={"streams": {"gripper_width": {"frozen": "check"}}})
    assert {c for _, c in _found(checked)} == {"frozen"}


def test_nan_meaning_unset_by_format_and_by_yaml():
    t = T0 + np.arange(500) * 10_000_000
    unused = np.full(500, np.nan)
    dropped = np.sin(np.arange(500) / 20.0)
    dropped[100:150] = np.nan
    streams = {
        "actuator_motors": xr.Dataset({"control_7": ("time", unused)}, coords={"time": t}),
        "sensor_combined": xr.Dataset({"gyro": ("time", dropped)}, coords={"time": t}),
    }
    result = grade(_run(streams, reader="ulog"))
    assert _found(result) == {("sensor_combined", "nan")}  # a value was expected there
    assert grade(_run(streams, reader="mcap")).grade == "D"  # elsewhere NaN means missing data: one error
    quiet = grade(_run(streams, reader="ulog"), thresholds={"streams": {"sensor_combined": {"nan": {"gyro": "unset"}}}})
    assert _found(quiet) == set()


def test_bad_stream_settings_name_the_stream_and_the_choices():
    with pytest.raises(ConfigError, match=r"quality.streams\['imu'\].kind 'sometimes' is not one of periodic, bursty"):
        grade(_run({"imu": periodic()}), thresholds={"streams": {"imu": {"kind": "sometimes"}}})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['rate'\]; valid: clock, frozen, kind, nan, role"):
        grade(_run({"imu": periodic()}), thresholds={"streams": {"imu": {"rate": 5}}})
    with pytest.raises(ConfigError, match=r"nan\['gyro'\] 'maybe' is not one of unset, error"):
        grade(_run({"imu": periodic()}), thresholds={"streams": {"imu": {"nan": {"gyro": "maybe"}}}})
