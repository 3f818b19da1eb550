"""The sample campaign end to end: the grader and the comparison find exactly what was planted.

Ground truth comes from data/samples/truth.json, written by the generator.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

import workbench as wb


@pytest.fixture(scope="module")
def truth(samples_dir):
    return json.loads((samples_dir / "truth.json").read_text())


def test_every_readable_sample_is_ingested_with_its_factors(sample_store, truth):
    cat = sample_store.runs()
    names = set(cat["name"].to_list())
    assert names == {r["name"] for r in truth["runs"]}
    assert cat.height == len(truth["runs"])
    row = cat.filter(pl.col("name") == truth["runs"][0]["name"]).row(0, named=True)
    f = truth["runs"][0]["factors"]
    assert row["hardware.robot"] == f["hardware"]["robot"] and row["model.version"] == f["model"]["version"]
    assert row["scenario.seed"] == int(f["scenario"]["seed"])
    outcomes = dict(zip(cat["name"].to_list(), cat["outcome"].to_list(), strict=True))
    assert outcomes == {r["name"]: r["outcome"] for r in truth["runs"]}


def test_grader_flags_exactly_the_planted_faults(sample_store, truth):
    cat = sample_store.runs()
    flagged = cat.filter(pl.col("quality.grade") != "A")
    faults = {f["run"]: f for f in truth["faults"] if f["kind"] != "truncated_file"}
    assert set(flagged["name"].to_list()) == set(faults)
    for row in flagged.iter_rows(named=True):
        fault = faults[row["name"]]
        findings = sample_store.get_table(row["run_id"], "quality_findings").filter(pl.col("severity") != "info")
        assert findings.height == 1
        f = findings.row(0, named=True)
        if fault["kind"] == "camera_gap":
            assert (row["quality.grade"], f["check"], f["stream"]) == ("B", "gap", "wrist_camera.image_raw.compressed")
            # the flagged window covers the planted one
            assert f["start_ns"] <= fault["start_ns"] and f["end_ns"] >= fault["end_ns"]
        else:
            assert fault["kind"] == "imu_clock_jump"
            assert (row["quality.grade"], f["check"], f["stream"]) == ("D", "clock_jump", "imu")
            assert abs(f["end_ns"] - fault["start_ns"]) < 20_000_000  # within 20 ms of the planted jump
            assert f["value"] == pytest.approx(1000 * fault["jump_s"], abs=5)
    # arm-b's calibration offset is reported (info) on every arm-b run, never on arm-a
    for row in cat.iter_rows(named=True):
        findings = sample_store.get_table(row["run_id"], "quality_findings")
        calib = findings.filter(pl.col("check") == "calibration_offset")
        if row["hardware.robot"] == "arm-b":
            assert calib.height == 1 and calib["detail"][0].startswith("joint_2")
            assert calib["value"][0] == pytest.approx(0.03, abs=0.005)
        else:
            assert calib.height == 0


def test_truncated_sample_is_refused_then_salvaged_and_graded_down(tmp_path, samples_dir, truth):
    fault = next(f for f in truth["faults"] if f["kind"] == "truncated_file")
    path = samples_dir / fault["file"]
    store = wb.open_store(tmp_path / "store")
    refused = store.ingest(path)
    assert refused.ingested == [] and "truncated" in refused.failed[0]["error"] and str(path) in refused.failed[0]["error"]
    assert len(store) == 0
    salvaged = store.ingest(path, salvage=True)
    assert len(salvaged.ingested) == 1 and salvaged.warnings[0]["salvaged"]["messages"] > 0
    grades = wb.quality.grade_store(store)
    assert grades["grade"].to_list() == ["D"] and grades["checks"].to_list() == ["truncated"]


def test_metrics_agree_with_truth(sample_store, truth):
    cat = sample_store.runs()
    by_name = {r["name"]: r for r in truth["runs"]}
    for row in cat.iter_rows(named=True):
        t = by_name[row["name"]]
        assert row["metrics.success"] == (1.0 if t["outcome"] == "success" else 0.0)
        assert row["metrics.slips"] == t["slips"] and row["metrics.recoveries"] == t["recoveries"]
        if t["outcome"] == "success":
            assert row["metrics.time_to_success"] == pytest.approx(t["time_to_success_s"], abs=0.02)
            assert row["metrics.failure_mode"] == "none"
        else:
            assert row["metrics.failure_mode"] == t["failure_reason"]
    # arm-b's extra actuator latency shows in the command-to-motion delay
    lat = cat.group_by("hardware.robot").agg(pl.col("metrics.control_latency_p50").median()).sort("hardware.robot")
    a, b = lat["metrics.control_latency_p50"].to_list()
    assert 10 < b - a < 20  # planted: +15 ms actuator latency on arm-b


def test_comparison_finds_the_planted_effects(sample_store):
    res = wb.compare(sample_store, by="model.version", baseline="policy-v1", candidate="policy-v2",
                     within=["hardware.robot", "environment.lighting"])
    t = res.table
    success = t.filter(pl.col("metric") == "success")
    regressions = success.filter(pl.col("verdict") == "regression")
    assert regressions.select("hardware.robot", "environment.lighting").rows() == [("arm-b", "dim")]
    assert set(success.filter(pl.col("verdict") != "regression")["verdict"]) <= {"no_change", "undecided"}
    # whatever secondary metrics are added, the gate (on success) finds the same regression
    more = wb.compare(sample_store, by="model.version", baseline="policy-v1", candidate="policy-v2",
                      within=["hardware.robot", "environment.lighting"],
                      metrics=["success", "time_to_success", "recoveries", "slips", "path_length", "jerk_rms"])
    assert more.regressions.select("hardware.robot", "environment.lighting").rows() == [("arm-b", "dim")]
    assert more.gate.select("p_adjusted").equals(res.gate.select("p_adjusted"))
    speed = t.filter(pl.col("metric") == "time_to_success")
    assert set(speed["verdict"]) == {"improvement"} and (speed["difference"] < -0.5).all()
    assert not res.passed
    # steel raises slips and recoveries
    surf = wb.compare(sample_store, by="environment.surface", baseline="rubber", candidate="steel", metrics=["slips", "recoveries"])
    rows = {r["metric"]: r for r in surf.table.iter_rows(named=True)}
    assert rows["slips"]["verdict"] == "regression" and rows["slips"]["difference_lo"] > 0
    assert rows["recoveries"]["verdict"] == "changed" and rows["recoveries"]["difference"] > 0
    # attribution ranks the planted factors first
    top = {m: res.attribution.filter(pl.col("metric") == m)["term"][0] for m in ("success", "time_to_success")}
    assert top["time_to_success"] == "model.version"
    assert top["success"] in {"hardware.robot", "environment.lighting", "hardware.robot × environment.lighting", "model.version × hardware.robot", "model.version × environment.lighting"}
    slips_top = surf.attribution.filter(pl.col("metric") == "slips")["term"][0]
    assert slips_top == "environment.surface"


def test_ci_gate_exit_codes(sample_store):
    from click.testing import CliRunner

    from workbench.cli import cli

    args = ["compare", "--store", sample_store.url, "--within", "hardware.robot,environment.lighting",
            "--baseline", "policy-v1", "--candidate", "policy-v2"]
    gate = CliRunner().invoke(cli, [*args, "--fail-on-regression", "--format", "json"])
    assert gate.exit_code == 1
    out = json.loads(gate.output)
    bad = [c for c in out["cells"] if c["verdict"] == "regression"]
    assert [(c["factors"], c["metric"]) for c in bad] == [({"hardware.robot": "arm-b", "environment.lighting": "dim"}, "success")]
    assert len(bad[0]["runs"]["baseline"]) == 20 and bad[0]["p_adjusted"] < 0.05
    # the same question on arm-a only passes the gate
    ok = CliRunner().invoke(cli, [*args, "--where", "hardware.robot = 'arm-a'", "--fail-on-regression"])
    assert ok.exit_code == 0, ok.output
    assert "no regression with confidence" in ok.output
