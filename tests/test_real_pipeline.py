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


def test_each_file_gives_the_runs_and_spans_its_own_library_reads(real_store, real_data):
    """Counts and time spans checked against each format's reference library, not against ourselves."""
    import json

    import h5py
    from mcap.reader import make_reader
    from pyulog import ULog

    cat = real_store.runs()
    by_source = cat.group_by("source").len()
    # MCAP: the log's own summary statistics (end earlier only when undecodable topics were skipped)
    mcaps = sorted((real_data / "mcap").glob("*.mcap"))
    assert mcaps
    for f in mcaps:
        with f.open("rb") as fh:
            stats = make_reader(fh).get_summary().statistics
        (row,) = cat.filter(pl.col("source") == str(f)).iter_rows(named=True)
        assert row["start_ns"] == stats.message_start_time, f.name
        assert row["end_ns"] <= stats.message_end_time, f.name
        if row["n_skipped"] == 0:
            assert row["end_ns"] == stats.message_end_time, f.name
    # PX4 ULog: pyulog's first and last timestamps (µs)
    ulogs = sorted((real_data / "ulog").rglob("*.ulg"))
    assert len(ulogs) >= 3
    for f in ulogs:
        log = ULog(str(f))
        (row,) = cat.filter(pl.col("source") == str(f)).iter_rows(named=True)
        assert (row["start_ns"], row["end_ns"]) == (log.start_timestamp * 1000, log.last_timestamp * 1000), f.name
    # robosuite HDF5: one run per data/demo_N group, as h5py lists them
    for f in sorted((real_data / "hdf5").rglob("*.hdf5")):
        with h5py.File(f, "r") as h5:
            demos = [k for k in h5["data"] if k.startswith("demo")]
        assert by_source.filter(pl.col("source") == str(f))["len"].to_list() == [len(demos)], f
    # LeRobot: one run per episode present (v3.0: every episode of meta/info.json; v2.1: one file each)
    for ds in sorted((real_data / "lerobot").iterdir()):
        info = json.loads((ds / "meta" / "info.json").read_text())
        runs = cat.filter(pl.col("source").str.starts_with(str(ds) + "/"))
        expected = info["total_episodes"] if info["codebase_version"].startswith("v3") else len(list(ds.glob("data/*/episode_*.parquet")))
        assert runs.height == expected, ds.name
        assert set(runs["fps"].to_list()) == {info["fps"]}, ds.name
        if (ds / "meta" / "episodes.jsonl").exists():  # v2.1: an episode of n frames lasts (n - 1) / fps
            lengths = {e["episode_index"]: e["length"] for e in map(json.loads, (ds / "meta" / "episodes.jsonl").read_text().splitlines())}
            for ep, a, b in runs.select("scenario.episode", "start_ns", "end_ns").iter_rows():
                assert abs((b - a) / 1e9 - (lengths[int(ep)] - 1) / info["fps"]) < 1e-3, (ds.name, ep)


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


def test_every_real_file_is_stored_compactly(real_data, tmp_path):
    """Once ingested (events applied), on disk (blocks, as ``du`` counts them) a real log's
    runs take at most twice the source's bytes, in at most three files each (data,
    manifest, large tables) and no folder: the 372 kB ULog took 25.8 MB in 4,150 files
    in the folder-per-run layout. (Grades and metrics added later are not counted: a
    fresh store, not the module's.)"""
    from pathlib import Path

    from workbench.store import RUNS_DIR

    real_store = wb.open_store(tmp_path / "store")
    assert not real_store.ingest([real_data]).failed
    runs_dir = Path(real_store.root) / RUNS_DIR
    assert not [p for p in runs_dir.iterdir() if p.is_dir()]
    cat = real_store.runs()
    by_source: dict[str, list[tuple[str, int]]] = {}
    for rid, src, size in cat.select("run_id", "source", "size_bytes").iter_rows():
        by_source.setdefault(str(src), []).append((rid, int(size or 0)))
    checked = 0
    for src, runs in by_source.items():
        files = [p for rid, _ in runs for p in runs_dir.glob(f"{rid}.*")]
        assert all(len(list(runs_dir.glob(f"{rid}.*"))) <= 3 for rid, _ in runs), src
        size = sum(s for _, s in runs)
        blocks = sum(p.stat().st_blocks * 512 for p in files)
        assert size > 0, src
        assert blocks <= 2 * size, (Path(src).name, blocks, size)
        checked += 1
    assert checked >= 30
    ulog = cat.filter(pl.col("source").str.ends_with("test_ulog.ulg"))
    rid = ulog["run_id"].item()
    assert sum(p.stat().st_blocks * 512 for p in runs_dir.glob(f"{rid}.*")) < 1_000_000
