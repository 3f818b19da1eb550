"""Metric computation into the catalog: a partial recomputation keeps the other metrics,
and only what runs lack (or what changed since) is computed on demand."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli


def small_store(root: Path, samples_dir: Path) -> wb.Store:
    """Six sample runs (arm-b, dim light, both policies, seeds 0-2), nothing computed."""
    files = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v*_s0[0-2].mcap"))
    store = wb.open_store(root / "store")
    report = store.ingest(files)
    assert len(report.ingested) == 6, report
    return store


def metric_columns(cat: pl.DataFrame) -> list[str]:
    return sorted(c for c in cat.columns if c.startswith("metrics.") and not c.endswith(".error"))


def test_computing_one_metric_keeps_the_other_metrics(tmp_path, samples_dir):
    store = small_store(tmp_path, samples_dir)
    wb.metrics.compute(store)
    before = store.runs()
    cols = metric_columns(before)
    assert {"metrics.jerk_rms", "metrics.success", "metrics.time_to_success", "metrics.path_length"} <= set(cols)
    assert before["metrics.success"].drop_nulls().len() == 6 and before["metrics.jerk_rms"].drop_nulls().len() == 6
    # a stale jerk value and error on one run: recomputing jerk replaces both
    rid = before["run_id"][0]
    kept = store.annotations(rid)["metrics"]
    store.annotate(rid, "metrics", kept | {"jerk_rms": -1.0, "jerk.error": "ValueError: old"})
    assert store.runs().filter(pl.col("run_id") == rid)["metrics.jerk_rms"][0] == -1.0

    df = wb.metrics.compute(store, ["jerk"])

    assert df.columns == ["run_id", "jerk_rms"] and df.height == 6
    after = store.runs()
    assert metric_columns(after) == cols
    assert after.select("run_id", *cols).equals(before.select("run_id", *cols))
    assert "jerk.error" not in store.annotations(rid)["metrics"]
    assert set(store.annotations(rid)["metrics"]) == set(kept)


def test_metrics_command_with_one_metric_keeps_the_others(tmp_path, samples_dir):
    store = small_store(tmp_path, samples_dir)
    runner = CliRunner()
    res = runner.invoke(cli, ["metrics", "--store", store.url, "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    before = store.runs()
    cols = metric_columns(before)
    assert len(cols) >= 15

    res = runner.invoke(cli, ["metrics", "--store", store.url, "--metric", "jerk", "--format", "json"], catch_exceptions=False)

    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 6 and set(rows[0]) == {"run_id", "name", "jerk_rms"}
    after = store.runs()
    assert metric_columns(after) == cols
    assert after.select("run_id", *cols).equals(before.select("run_id", *cols))


def test_compute_missing_computes_only_what_runs_lack(tmp_path, samples_dir):
    store = small_store(tmp_path, samples_dir)
    ids = sorted(store.run_ids())
    done = wb.metrics.compute_missing(store, ["success", "jerk_rms"])  # a metric and a column name
    assert {k: sorted(v) for k, v in done.items()} == {"success": ids, "jerk": ids}
    cat = store.runs()
    assert cat["metrics.success"].null_count() == 0 and cat["metrics.jerk_rms"].null_count() == 0
    assert "metrics.path_length" not in cat.columns
    # nothing lacks them any more; a name no metric computes is left to the caller
    assert wb.metrics.compute_missing(store, ["success", "jerk"]) == {}
    assert wb.metrics.compute_missing(store, ["speed"]) == {}
    # only some runs: only those
    done = wb.metrics.compute_missing(store, ["path_length"], run_ids=ids[:2])
    assert {k: sorted(v) for k, v in done.items()} == {"path_length": ids[:2]}
    assert store.runs()["metrics.path_length"].drop_nulls().len() == 2


def test_compute_missing_keeps_a_null_value_and_redoes_a_changed_outcome(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(3):
        pl.DataFrame({"time": [0.0, 0.1, 0.2 + i], "x": [1.0, 2.0, 3.0 + i]}).write_csv(logs / f"{i}.csv")
    store = wb.open_store(tmp_path / "store")
    store.ingest([logs])
    ids = sorted(store.run_ids())
    assert sorted(wb.metrics.compute_missing(store, ["success"])["success"]) == ids
    assert store.runs()["metrics.success"].null_count() == 3  # no outcome: computed as null
    assert wb.metrics.compute_missing(store, ["success"]) == {}  # null is a value, not a gap
    res = CliRunner().invoke(cli, ["label", ids[0], "--store", store.url, "--outcome", "success"], catch_exceptions=False)
    assert res.exit_code == 0, res.output

    done = wb.metrics.compute_missing(store, ["success", "time_to_success"])

    # success again for the labelled run only; time_to_success was never computed: every run
    assert done["success"] == [ids[0]] and sorted(done["time_to_success"]) == ids
    cat = store.runs().sort("run_id")
    assert cat.schema["metrics.success"] == pl.Float64
    assert cat["metrics.success"].to_list() == [1.0, None, None]
    assert cat["metrics.time_to_success"][0] is not None


@pytest.mark.parametrize("name", ["success", "time_to_success", "failure_mode"])
def test_outcome_metrics_flag_values_that_no_longer_fit_the_outcome(name):
    metric = wb.metrics.get_metric(name)
    col = f"metrics.{name}"
    value = {"success": (1.0, 0.0), "time_to_success": (4.2, None), "failure_mode": ("none", "dropped")}[name]
    cat = pl.DataFrame({
        "run_id": ["fits", "changed", "unknown"],
        "outcome": ["success", "failure", None],
        col: [value[0], value[0], None],
    })
    flagged = cat.filter(metric.outdated(cat).fill_null(False))["run_id"].to_list()
    assert flagged == ["changed"]
    assert metric.outdated(cat.drop("outcome")) is None
    assert wb.metrics.get_metric("jerk").outdated(cat) is None


def test_a_plugin_reads_its_inputs_by_role_as_the_readme_shows():
    from typing import Any, ClassVar

    import numpy as np
    import xarray as xr

    from workbench.metrics import Column, Metric
    from workbench.metrics.registry import register_metric, unregister_metric

    class PeakJointSpeed(Metric):
        name: ClassVar[str] = "peak_joint_speed"
        description: ClassVar[str] = "fastest joint speed"
        columns: ClassVar[tuple[Column, ...]] = (Column("peak_joint_speed", "continuous", "rad/s", None, "max |q̇|"),)
        roles: ClassVar[tuple[str, ...]] = ("joint_velocity",)

        def compute(self, run) -> dict[str, Any]:
            qd = self.role("joint_velocity", run)
            return {"peak_joint_speed": max(float(np.nanmax(np.abs(v))) for *_, v in qd.pieces())}

    register_metric(PeakJointSpeed)
    try:
        t = np.arange(20, dtype=np.int64) * 10**8
        v = np.linspace(-3, 2, 40).reshape(20, 2)
        ros = wb.Run(info=wb.RunInfo(run_id="p1"), streams={"joint_states": xr.Dataset(
            {"velocity": (("time", "joint"), v)}, coords={"time": t, "joint": ["a", "b"]})})
        other = wb.Run(info=wb.RunInfo(run_id="p2"), streams={"imu": xr.Dataset({"x": ("time", v[:, 0])}, coords={"time": t})})
        got = wb.metrics.compute([ros, other], ["peak_joint_speed"])
        assert got["peak_joint_speed"].to_list() == [3.0, None]
        assert got["peak_joint_speed.why"].to_list() == [None, "no joint_velocity (looked for joint_states/velocity)"]
        # a role override reaches the plugin too
        mapped = wb.metrics.compute([other], ["peak_joint_speed"], roles={"joint_velocity": {"stream": "imu", "variable": "x"}})
        assert mapped["peak_joint_speed"].to_list() == [3.0]
    finally:
        unregister_metric("peak_joint_speed")
