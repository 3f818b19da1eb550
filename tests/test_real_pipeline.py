"""Every real public log goes through the whole pipeline: ingest, grade, metrics."""

from __future__ import annotations

import polars as pl
import pytest

import workbench as wb

KNOWN_BAD = set()  # every file in shared/data/real is readable (some with skipped topics)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory, real_data):
    store = wb.open_store(tmp_path_factory.mktemp("real") / "store")
    report = store.ingest([real_data])
    failed = {f["path"]: f["error"] for f in report.failed}
    assert not (set(failed) - KNOWN_BAD), failed
    assert len(report.ingested) >= 20
    return store


def test_all_formats_are_in_the_catalog(real_store):
    readers = set(real_store.runs()["reader"].unique())
    assert readers >= {"mcap", "rosbag1", "rosbag2", "lerobot", "hdf5", "ulog", "dataflash", "tlog", "rrd", "table"}


def test_grading_runs_on_every_real_file(real_store):
    grades = wb.quality.grade_store(real_store, scheduler="sync")
    assert grades.height == len(real_store)
    assert set(grades["grade"]) <= set("ABCDF")
    cat = real_store.runs()
    assert cat["quality.grade"].null_count() == 0
    # every finding names a check and a severity
    for rid in cat["run_id"].to_list():
        f = real_store.get_table(rid, "quality_findings")
        assert f is not None and set(f["severity"].to_list()) <= {"info", "warning", "error"}


def test_metrics_run_on_every_real_file(real_store):
    df = wb.metrics.compute(real_store, scheduler="sync")
    assert df.height == len(real_store)
    errors = [c for c in df.columns if c.endswith(".error")]
    assert errors == [] or df.select(pl.col(errors).is_null().all()).row(0) == tuple([True] * len(errors)), df.select(errors).drop_nulls()


def test_trend_of_real_logs_over_their_start_times(real_store):
    """Real public logs were recorded years apart: durations trend per month, each point's runs kept."""
    from workbench.trends import trend

    cat = real_store.runs()
    res = trend(cat, metric="duration_s", over="auto")
    assert res.kind == "continuous"
    assert res.table["n"].sum() == cat.filter(pl.col("start_ns").is_not_null())["duration_s"].drop_nulls().len()
    assert sorted(r for ids in res.table["run_ids"].to_list() for r in ids) == sorted(
        cat.filter(pl.col("start_ns").is_not_null())["run_id"].to_list())
    span_days = (cat["start_ns"].max() - cat["start_ns"].min()) / 86_400e9
    assert res.over == ("month" if span_days > 7 * 60 else res.over)
