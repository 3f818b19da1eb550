"""Metrics on the real public logs, each against an independent computation with the
format's own library (pyulog, pymavlink) or straight from the LeRobot parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb

ULOG = "ulog/pyulog/sample_log_small.ulg"
ULOG2 = "ulog/foxglove_mcap/test_ulog.ulg"
PLANE_BIN = "ardupilot_dataflash/pymavlink/test.BIN"
SUB_BIN = "ardupilot_dataflash/ardusub_log_tools/small.BIN"
SUB_TLOG = "mavlink_tlog/ardusub_log_tools/small.tlog"
SO101 = "lerobot/v30_so101_record_test"
UNITREE = "lerobot/v21_unitree_g1_inspire"


@pytest.fixture(scope="module")
def real_runs(real_data: Path, tmp_path_factory) -> dict[str, list[wb.Run]]:
    """The real logs these tests use, ingested into a store and loaded back, by source."""
    store = wb.open_store(tmp_path_factory.mktemp("real-metrics") / "store")
    out: dict[str, list[wb.Run]] = {}
    for name in (ULOG, ULOG2, PLANE_BIN, SUB_BIN, SUB_TLOG, SO101, UNITREE):
        ids = store.ingest([real_data / name]).ingested
        out[name] = [store.load(rid) for rid in ids]
    return out


def _rpy(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]  # pyulog: q[0] is w
    return np.column_stack([np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y)),
                            np.arcsin(np.clip(2 * (w * y - z * x), -1, 1)),
                            np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))])


@pytest.mark.parametrize("name", [ULOG, ULOG2])
def test_px4_ulog_attitude_flight_time_and_battery_match_pyulog(real_data: Path, real_runs, name):
    from pyulog import ULog

    path = real_data / name
    (run,) = real_runs[name]
    row = wb.metrics.compute_run(run, ["attitude_tracking", "flight_time", "battery"])
    log = ULog(str(path))
    topic = {(d.name, d.multi_id): d.data for d in log.data_list}
    st = topic[("vehicle_status", 0)]
    ts = st["timestamp"].astype(np.int64)
    nxt = np.append(ts[1:], log.last_timestamp)
    armed = st["arming_state"] == 2
    assert row["flight_time"] == pytest.approx(((nxt - ts) / 1e6)[armed].sum(), abs=1e-5)
    assert row["flight_time"] > 1
    mode_t = np.bincount(st["nav_state"].astype(int), weights=(nxt - ts) / 1e6)
    order = np.argsort(-mode_t, kind="stable")
    want = "; ".join(f"{m}: {mode_t[m]:.1f}" for m in order if mode_t[m] > 0 or m in st["nav_state"])
    assert row["time_per_mode"] == want and row["main_mode"] == str(order[0])
    bat = topic[("battery_status", 0)]
    assert row["battery_used"] == pytest.approx(float(bat["discharged_mah"][-1] - bat["discharged_mah"][0]), rel=1e-6)
    assert row["battery_min_voltage"] == pytest.approx(float(bat["voltage_v"][bat["voltage_v"] > 0].min()), rel=1e-6)
    # attitude: estimate vs the held setpoint, while armed, inside the setpoint's span
    att = topic[("vehicle_attitude", 0)]
    sp = topic[("vehicle_attitude_setpoint", 0)]
    te = att["timestamp"].astype(np.int64)
    est = _rpy(np.column_stack([att[f"q[{i}]"] for i in range(4)]).astype(np.float64))
    tsp = sp["timestamp"].astype(np.int64)
    i = np.searchsorted(tsp, te, side="right") - 1
    j = np.searchsorted(ts, te, side="right") - 1
    keep = (i >= 0) & (te <= tsp[-1]) & (j >= 0) & armed[np.clip(j, 0, None)]
    assert keep.sum() > 50
    for k, axis in enumerate(("roll", "pitch", "yaw")):
        target = sp[f"{axis}_body"][i[keep]].astype(np.float64)
        err = (np.degrees(est[keep, k] - target) + 180) % 360 - 180
        assert row[f"attitude_error_rms_{axis}"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-4), axis
        assert row[f"attitude_error_p95_{axis}"] == pytest.approx(np.percentile(np.abs(err), 95), rel=1e-4), axis


def test_dataflash_attitude_and_battery_match_pymavlink(real_data: Path, real_runs):
    from pymavlink.DFReader import DFReader_binary

    for name in (PLANE_BIN, SUB_BIN):
        path = real_data / name
        (run,) = real_runs[name]
        row = wb.metrics.compute_run(run, ["attitude_tracking", "battery", "vibration"])
        log = DFReader_binary(str(path), zero_time_base=False)
        att, bat, vibe = [], [], []
        arm: list[tuple[int, int]] = []
        while (m := log.recv_msg()) is not None:
            kind = m.get_type()
            if kind == "ATT":
                att.append((m.TimeUS, m.Roll, m.DesRoll, m.Pitch, m.DesPitch))
            elif kind == "BAT" and getattr(m, "Instance", 0) == 0:
                bat.append((m.Volt, m.CurrTot))
            elif kind == "VIBE" and getattr(m, "IMU", 0) == 0:
                vibe.append((m.VibeX, m.VibeY, m.VibeZ))
            elif kind == "ARM":
                arm.append((m.TimeUS, m.ArmState))
        a = np.array(att, dtype=np.float64)
        keep = np.ones(len(a), bool)
        if arm:  # change records: armed before the first one when it disarms
            t_arm = np.array([x[0] for x in arm])
            state = np.array([x[1] for x in arm]) > 0
            k = np.searchsorted(t_arm, a[:, 0], side="right") - 1
            keep = np.where(k >= 0, state[np.clip(k, 0, None)], not state[0])
        for axis, (got, want) in {"roll": (1, 2), "pitch": (3, 4)}.items():
            err = (a[keep, got] - a[keep, want] + 180) % 360 - 180
            assert row[f"attitude_error_rms_{axis}"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6), (name, axis)
        b = np.array(bat)
        assert row["battery_min_voltage"] == pytest.approx(b[b[:, 0] > 0, 0].min())
        v = np.array(vibe)
        assert row["vibration_max"] == pytest.approx(v.max()) and row["vibration_p95"] == pytest.approx(np.percentile(v, 95, axis=0).max())
        if name == PLANE_BIN:
            assert row["battery_used"] == pytest.approx(b[-1, 1] - b[0, 1])


def test_tlog_flight_time_and_battery_match_pymavlink(real_data: Path, real_runs):
    from pymavlink import mavutil

    path = real_data / SUB_TLOG
    (run,) = real_runs[SUB_TLOG]
    row = wb.metrics.compute_run(run, ["flight_time", "battery", "attitude_tracking"])
    conn = mavutil.mavlink_connection(str(path))
    hb, sys_status, consumed = [], [], []
    while (m := conn.recv_match()) is not None:
        if m.get_srcSystem() != 1 or m.get_srcComponent() != 1:
            continue
        kind = m.get_type()
        if kind == "HEARTBEAT":
            hb.append((m._timestamp, bool(m.base_mode & 128)))
        elif kind == "SYS_STATUS":
            sys_status.append(m.voltage_battery / 1000)
        elif kind == "BATTERY_STATUS" and m.id == 0:
            consumed.append(m.current_consumed)
    t = np.array([x[0] for x in hb])
    on = np.array([x[1] for x in hb])
    end = (run.info.end_ns - run.info.start_ns) / 1e9 + t[0] - (run.streams["HEARTBEAT"]["time"].values[0] - run.info.start_ns) / 1e9
    nxt = np.append(t[1:], max(end, t[-1]))
    assert row["flight_time"] == pytest.approx(np.sum((nxt - t)[on]), abs=0.01) and row["flight_time"] > 1
    c = np.array(consumed)
    c = c[c >= 0]
    assert row["battery_used"] == pytest.approx(c[-1] - c[0])
    v = np.array(sys_status)
    assert row["battery_min_voltage"] == pytest.approx(v[v > 0].min())
    # the tlog has no attitude setpoint: null, and why
    assert row["attitude_error_rms_roll"] is None and "no attitude_setpoint" in row["attitude_tracking.why"]


def _jerk(t_s: np.ndarray, q: np.ndarray, rate: float = 100.0) -> float:
    grid = np.arange(0, t_s[-1] - t_s[0], 1 / rate)
    g = np.column_stack([np.interp(grid, t_s - t_s[0], q[:, j]) for j in range(q.shape[1])])
    smooth = np.column_stack([np.convolve(g[:, j], np.ones(5) / 5, mode="valid") for j in range(g.shape[1])])
    jerk = np.diff(smooth, n=3, axis=0) * rate**3
    return float(np.sqrt(np.mean(jerk**2)))


@pytest.mark.parametrize("dataset", [SO101, UNITREE])
def test_lerobot_manipulator_metrics_match_the_parquet(real_data: Path, real_runs, dataset):
    root = real_data / dataset
    runs = real_runs[dataset]
    info = json.loads((root / "meta" / "info.json").read_text())
    names = info["features"]["observation.state"]["names"]
    names = names[0] if names and isinstance(names[0], list) else names  # v2.1 nests them
    arm = [i for i, n in enumerate(names) if "gripper" not in n.lower()]
    grips = [i for i, n in enumerate(names) if "gripper" in n.lower()]
    data = pl.read_parquet(sorted((root / "data").rglob("*.parquet")))
    assert len(runs) == data["episode_index"].n_unique() >= 2
    for run in runs:
        ep = int(run.info.scenario["episode"])
        rows = data.filter(pl.col("episode_index") == ep).sort("frame_index")
        state = np.array(rows["observation.state"].to_list(), dtype=np.float32).astype(np.float64)
        action = np.array(rows["action"].to_list(), dtype=np.float32).astype(np.float64)
        t = run.streams["observation.state"]["time"].values.astype(np.int64) / 1e9
        row = wb.metrics.compute_run(run, ["path_length", "jerk", "tracking_error", "gripper_cycles", "peak_force"])
        assert row["joint_path_length"] == pytest.approx(np.abs(np.diff(state[:, arm], axis=0)).sum(), rel=1e-9)
        err = state[:, arm] - action[:, arm]  # the same frames: the action at each state's time
        assert row["tracking_error_rms"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
        assert row["tracking_error_max"] == pytest.approx(np.abs(err).max(), rel=1e-9)
        assert row["jerk_rms"] == pytest.approx(_jerk(t, state[:, arm]), rel=1e-6)
        assert row["peak_force"] is None and row["peak_force.why"] == "no wrench (looked for ft_sensor/force)"
        if not grips:  # the Unitree hands have no joint named gripper: null, and why
            assert row["gripper_cycles"] is None and row["gripper_cycles.why"].startswith("no gripper")
            continue
        g = state[:, grips[0]]
        mid, band = (g.min() + g.max()) / 2, (g.max() - g.min()) / 10
        closed, cycles = False, 0
        for x in g:  # the gripper closes below mid − band, opens above mid + band
            if not closed and x < mid - band:
                closed, cycles = True, cycles + 1
            elif closed and x > mid + band:
                closed = False
        assert row["gripper_cycles"] == cycles
