"""The grading review table: every real log's grade and every finding it should get.

Each row is what a log engineer looking at the file would accept: the grade, and each
(stream, check) that affects it with the reason it is a real fault of that log. The
suite fails on any new or missing finding, so a change to a check shows up here as a
change to this table (with its reason) rather than as a silent shift of grades.
Info findings (small gaps, topics not decoded) do not affect the grade and are not
listed.
"""

from __future__ import annotations

import polars as pl
import pytest

import workbench as wb
from workbench.quality import grade_store

# (source relative to the real-logs folder, run name) -> (grade, {(stream, check): reason})
REVIEW: dict[tuple[str, str], tuple[str, dict[tuple[str, str], str]]] = {
    ("csv/plotjuggler/turtle.csv", "turtle"): ("B", {
        ("turtle", "gap"): "the merged table's rows stop for 0.1 s 92 times (27 % of rows at its 33 Hz row rate); "
                           "its sparse cells are topics without a sample, no NaN finding",
    }),
    ("mavlink_tlog/ardusub_log_tools/small.tlog", "small"): ("B", {
        ("AHRS2", "gap"): "AHRS2 has no sender stamp; its telemetry stops for 1.01 s (20 periods) at the start",
    }),
    ("ros1_bag/plotjuggler/tilt_laser.bag", "tilt_laser"): ("C", {
        ("info_gps", "frozen"): "the GPS fix repeats the same values for 3.2 s (65 messages) while it changes on "
                                "every other message: a stale fix",
        ("scan", "latency_spike"): "13 scans are logged up to 0.59 s after their stamps: the recorder stalled",
        ("tf.camera", "latency_spike"): "the same recorder stalls delay the camera transform",
        ("tf.laser", "latency_spike"): "the same recorder stalls delay the laser transform",
    }),
    ("ulog/foxglove_mcap/test_ulog.ulg", "test_ulog"): ("C", {
        ("manual_control_setpoint", "latency_spike"): "one RC sample is logged 0.2 s after it was sampled",
        ("sensor_gyro_fft", "gap"): "the gyro FFT (15 Hz) misses 34 % of its samples in 2 gaps of up to 0.26 s",
        ("vehicle_gps_position", "latency_spike"): "6 GPS fixes are logged up to 3 s after their sample time",
        ("vehicle_magnetometer", "latency_spike"): "3 magnetometer samples are logged 53 ms late",
    }),
    ("ulog/pyulog/sample_log_small.ulg", "sample_log_small"): ("C", {
        (stream, "gap"): "every high-rate topic loses the same 0.16 s (1.2 s for the 5 Hz GPS drift): "
                         "a logger stall, about 2 % of their samples"
        for stream in ("actuator_controls_0", "actuator_controls_1", "airspeed", "ekf_gps_drift", "estimator_status",
                       "sensor_combined", "vehicle_air_data", "vehicle_angular_velocity", "vehicle_attitude",
                       "vehicle_local_position", "vehicle_magnetometer", "vehicle_rates_setpoint")
    }),
}
"""Runs not listed are expected to grade A with no warning or error: the other ROS bags,
LeRobot episodes (an arm at rest before and after teleoperation is not frozen), PX4's
NaN-for-unset fields, DataFlash logs, HDF5 demos (the gripper command holds), CSVs."""


@pytest.fixture(scope="module")
def graded(tmp_path_factory, real_data):
    store = wb.open_store(tmp_path_factory.mktemp("review") / "store")
    store.ingest([real_data])
    grade_store(store)
    return store, real_data


def test_every_real_log_gets_exactly_its_reviewed_findings(graded):
    store, real = graded
    prefix = str(real).rstrip("/") + "/"
    seen = set()
    problems = []
    for row in store.runs().iter_rows(named=True):
        key = (row["source"].replace(prefix, ""), row["name"])
        expected_grade, expected = REVIEW.get(key, ("A", {}))
        seen.add(key)
        f = store.get_table(row["run_id"], "quality_findings").filter(pl.col("severity") != "info")
        got = {(r["stream"], r["check"]) for r in f.iter_rows(named=True)}
        new, missing = got - set(expected), set(expected) - got
        if new or missing or row["quality.grade"] != expected_grade:
            problems.append(f"{key}: grade {row['quality.grade']} (expected {expected_grade}); "
                            f"new {sorted(new)}; missing {sorted(missing)}")
        # the letter explains itself
        assert row["quality.why"].startswith(f"{row['quality.grade']}: ")
    assert not problems, "\n".join(problems)
    assert set(REVIEW) <= seen, sorted(set(REVIEW) - seen)


def test_grades_explain_the_worst_issue_with_rates_and_clocks(graded):
    store, _ = graded
    cat = store.runs()
    why = cat.filter(pl.col("name") == "sample_log_small")["quality.why"][0]
    assert why.startswith("C: ") and "% of the samples expected at" in why and "and 9 more issue(s)" in why
    # the streams that feed a metric come first and name it
    assert "vehicle_attitude gap" in why and "(feeds attitude_tracking)" in why
    # each issue is placed in the flight: after the last event before it
    ulog = cat.filter(pl.col("name") == "test_ulog")["quality.why"][0]
    assert "manual_control_setpoint latency_spike" in ulog and "at 2.0 s, after takeoff" in ulog
    tlog = cat.filter(pl.col("reader") == "tlog")["run_id"][0]
    f = store.get_table(tlog, "quality_findings")
    assert f.filter(pl.col("check") == "clock_jump").height == 0  # GPS time is not a sensor clock
    assert f.filter(pl.col("stream") == "ATTITUDE").filter(pl.col("severity") != "info").height == 0
    bag = cat.filter(pl.col("name") == "tilt_laser")["run_id"][0]
    gaps = store.get_table(bag, "quality_findings").filter(pl.col("check") == "gap")
    assert gaps.filter(pl.col("severity") != "info").height == 0  # bursty receive, regular sensor stamps
    assert all("on the sensor clock" in d for d in gaps["detail"].to_list())
