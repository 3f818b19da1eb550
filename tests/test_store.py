"""The run store: ingest, idempotence, atomicity under SIGKILL, concurrency, catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.model import ConfigError, ReaderError, StoreError
from workbench.store import MANIFEST_NAME, RUNS_DIR, TMP_DIR


def write_tables(folder: Path, n: int, rows: int = 50) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        robot = "arm-a" if i % 2 == 0 else "arm-b"
        sub = folder / robot
        sub.mkdir(exist_ok=True)
        p = sub / f"{i}.csv"
        t = 1_700_000_000 + i * 100 + np.arange(rows) * 0.01
        pl.DataFrame({"time": t, "x": np.sin(t) + i, "y": np.arange(rows) * i}).write_csv(p)
        paths.append(p)
    return paths


def assert_store_consistent(store: wb.Store) -> None:
    """No partial run is visible, every manifest's streams exist, catalog == rebuild."""
    runs_dir = Path(store.root) / RUNS_DIR
    for d in runs_dir.iterdir():
        manifest = json.loads((d / MANIFEST_NAME).read_text())  # every run folder is complete
        for name in manifest["streams"]:
            assert (d / "streams" / f"{name}.zarr" / "zarr.json").exists()
        assert (d / "events.parquet").exists()
    cat = store.runs()
    assert cat["run_id"].is_unique().all()
    assert sorted(cat["run_id"].to_list()) == store.run_ids()
    assert cat.equals(store.rebuild_catalog())


def test_ingest_load_round_trip(tmp_path):
    (p,) = write_tables(tmp_path / "logs", 1, rows=20)
    store = wb.open_store(tmp_path / "store")
    report = store.ingest(p, meta=["model.version=v2"], pattern="{hardware.robot}/{scenario.seed}.csv")
    assert report.ok and len(report.ingested) == 1 and report.present == []
    run = store.load(report.ingested[0])
    src = pl.read_csv(p)
    ds = run.streams["0"]
    assert ds.sizes["time"] == 20
    assert ds.chunks  # dask-backed, lazy
    np.testing.assert_allclose(ds["x"].values, src["x"].to_numpy())
    np.testing.assert_array_equal(ds["time"].values, np.round(src["time"].to_numpy() * 1e9).astype(np.int64))
    info = run.info
    assert info.factors() == {"hardware.robot": "arm-a", "model.version": "v2", "scenario.seed": 0}
    assert info.provenance.metadata == {"hardware.robot": "pattern", "scenario.seed": "pattern", "model.version": "meta"}
    assert info.provenance.sources[0].size == p.stat().st_size
    assert info.provenance.reader == "table"
    assert info.start_ns == int(ds["time"].values[0]) and info.end_ns == int(ds["time"].values[-1])
    row = store.runs().row(0, named=True)
    assert row["hardware.robot"] == "arm-a" and row["scenario.seed"] == 0 and row["n_streams"] == 1


def test_reingest_is_a_noop_and_same_bytes_elsewhere_too(tmp_path):
    paths = write_tables(tmp_path / "logs", 3)
    store = wb.open_store(tmp_path / "store")
    first = store.ingest(paths)
    assert len(first.ingested) == 3
    mtime = (Path(store.root) / "catalog.parquet").stat().st_mtime_ns
    again = store.ingest(paths)
    assert again.ingested == [] and sorted(again.present) == sorted(first.ingested)
    assert (Path(store.root) / "catalog.parquet").stat().st_mtime_ns == mtime
    copy = tmp_path / "copy.csv"
    copy.write_bytes(paths[0].read_bytes())
    assert store.ingest(copy).present == [first.ingested[0]]  # content addressed, not by path
    assert len(store) == 3
    # spelling out a default option gives the same address
    assert store.ingest(paths[0], options={"time_unit": "auto"}).present == [first.ingested[0]]


def test_different_options_give_different_runs(tmp_path):
    (p,) = write_tables(tmp_path / "logs", 1)
    store = wb.open_store(tmp_path / "store")
    a = store.ingest(p).ingested
    b = store.ingest(p, options={"stream": "custom"}).ingested
    assert a and b and a != b
    assert "custom" in store.load(b[0]).streams
    bad = store.ingest(p, options={"colour": 1})
    assert "has no option(s) ['colour']; valid options: stream, time_column, time_unit" in bad.failed[0]["error"]


def test_bad_files_fail_cleanly_and_good_runs_stay(tmp_path):
    good = write_tables(tmp_path / "logs", 2)
    store = wb.open_store(tmp_path / "store")
    store.ingest(good)
    before = store.runs()
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("hello")
    corrupt = tmp_path / "broken.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    no_time = tmp_path / "notime.csv"
    no_time.write_text("a,b\n1,2\n")
    report = store.ingest([unknown, corrupt, empty, no_time, tmp_path / "missing.csv"])
    assert not report.ok and report.ingested == []
    errors = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert "no installed reader recognizes" in errors["notes.xyz"] and "table" in errors["notes.xyz"]
    assert "broken.parquet" in errors["broken.parquet"] and "Parquet" in errors["broken.parquet"]
    assert "empty.csv" in errors["empty.csv"]
    assert "no time column" in errors["notime.csv"] and "['a', 'b']" in errors["notime.csv"]
    assert "no such file" in errors["missing.csv"]
    assert store.runs().equals(before)
    assert os.listdir(Path(store.root) / TMP_DIR) == []
    assert_store_consistent(store)


def test_folder_walk_skips_unknown_files_and_reads_metadata_files(tmp_path):
    logs = tmp_path / "logs"
    write_tables(logs, 4)
    (logs / "README.md").write_text("notes")
    (logs / "workbench.yaml").write_text("factors:\n  environment.site: lab\n")
    (logs / "arm-a" / "0.csv.meta.yaml").write_text("environment: {site: field}\nscenario: {seed: 99}\n")
    store = wb.open_store(tmp_path / "store")
    report = store.ingest(logs, meta={"model": {"version": "v1"}})
    assert report.ok and len(report.ingested) == 4
    assert [Path(s["path"]).name for s in report.skipped] == ["README.md"]
    cat = store.runs().sort("name")
    assert cat["environment.site"].to_list() == ["field", "lab", "lab", "lab"]
    assert cat["model.version"].to_list() == ["v1"] * 4
    run0 = store.runs(where="name = '0'")["run_id"][0]
    prov = store.info(run0).provenance
    assert prov.metadata["environment.site"] == "sidecar"
    assert prov.overrides == (
        {"key": "environment.site", "old": "lab", "old_source": "workbench.yaml", "new": "field", "new_source": "sidecar"},
    )


def test_runs_where_sql_and_expr(tmp_path):
    store = wb.open_store(tmp_path / "store")
    store.ingest(write_tables(tmp_path / "logs", 6), pattern="{hardware.robot}/{scenario.seed}.csv")
    assert store.runs(where="hardware.robot == 'arm-b'").height == 3
    assert store.runs(where="hardware.robot = 'arm-a' and scenario.seed >= 2").height == 2
    assert store.runs(where=pl.col("scenario.seed") < 1).height == 1
    with pytest.raises(ConfigError, match="cannot filter runs"):
        store.runs(where="no_such_column = 1")


def test_remove_and_rebuild(tmp_path):
    store = wb.open_store(tmp_path / "store")
    ids = store.ingest(write_tables(tmp_path / "logs", 3)).ingested
    store.remove(ids[0])
    assert ids[0] not in store and store.runs().height == 2
    with pytest.raises(StoreError, match="no run"):
        store.remove(ids[0])
    with pytest.raises(StoreError, match="no run"):
        store.load("deadbeef")
    (Path(store.root) / "catalog.parquet").unlink()
    assert store.runs().height == 2  # derived: rebuilt when missing
    assert_store_consistent(store)
    # a removed run is ingested again on request
    assert store.ingest(write_tables(tmp_path / "logs", 3)[0]).ingested == [ids[0]]


def test_annotations_land_in_catalog_and_survive_rebuild(tmp_path):
    store = wb.open_store(tmp_path / "store")
    ids = store.ingest(write_tables(tmp_path / "logs", 2)).ingested
    store.annotate(ids[0], "quality", {"grade": "B", "findings": 3})
    cat = store.runs()
    assert cat.filter(pl.col("run_id") == ids[0])["quality.grade"][0] == "B"
    assert cat.filter(pl.col("run_id") == ids[1])["quality.grade"][0] is None
    assert cat.equals(store.rebuild_catalog())
    with pytest.raises(ConfigError, match="annotation section"):
        store.annotate(ids[0], "hardware", {})


def test_mixed_factor_types_become_text(tmp_path):
    store = wb.open_store(tmp_path / "store")
    paths = write_tables(tmp_path / "logs", 2)
    store.ingest(paths[0], meta=["scenario.seed=3"])
    store.ingest(paths[1], meta=["scenario.seed=abc"])
    cat = store.runs()
    assert cat.schema["scenario.seed"] == pl.String
    assert sorted(cat["scenario.seed"].to_list()) == ["3", "abc"]
    assert cat.equals(store.rebuild_catalog())


@pytest.mark.parametrize("url", ["memory://wb-test-store", "file://{tmp}/fs-store"])
def test_fsspec_urls(tmp_path, url):
    url = url.format(tmp=tmp_path)
    store = wb.open_store(url)
    paths = write_tables(tmp_path / "logs", 2)
    report = store.ingest(paths)
    assert len(report.ingested) == 2
    assert sorted(store.ingest(paths).present) == sorted(report.ingested)
    run = store.load(report.ingested[0])
    np.testing.assert_allclose(run.streams["0"]["x"].values, pl.read_csv(paths[0])["x"].to_numpy())
    reopened = wb.open_store(url, create=False)
    assert reopened.runs().equals(reopened.rebuild_catalog())
    assert reopened.runs().height == 2
    reopened.remove(report.ingested[0])
    assert len(wb.open_store(url)) == 1
    if url.startswith("memory://"):
        import fsspec

        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def test_open_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        wb.open_store(tmp_path / "nothing", create=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="it is a file"):
        wb.open_store(tmp_path / "afile")


def test_default_store_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "envstore"))
    store = wb.open_store()
    assert store.root == str(tmp_path / "envstore")


def test_unknown_reader_name(tmp_path):
    (p,) = write_tables(tmp_path / "logs", 1)
    report = wb.open_store(tmp_path / "s").ingest(p, reader="nope")
    assert "no reader named 'nope'" in report.failed[0]["error"]
    with pytest.raises(ReaderError, match="installed readers"):
        wb.io.get_reader("nope")


INGEST_SCRIPT = textwrap.dedent(
    """
    import sys, workbench as wb
    store = wb.open_store(sys.argv[1])
    for p in sys.argv[2:]:
        store.ingest(p)
    """
)


def test_sigkill_mid_ingest_leaves_no_partial_run(tmp_path):
    paths = write_tables(tmp_path / "logs", 60, rows=2000)
    store_dir = tmp_path / "store"
    wb.open_store(store_dir)
    runs_dir = store_dir / RUNS_DIR
    killed_with = []
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(store_dir), *map(str, paths)])
        deadline = time.time() + 60
        target = 3 + 8 * trial
        while time.time() < deadline and len(os.listdir(runs_dir)) < target and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(0.05 * trial)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_with.append(len(os.listdir(runs_dir)))
        store = wb.open_store(store_dir)  # opens fine, cleans the dead writer's temp folder
        assert os.listdir(store_dir / TMP_DIR) == []
        assert_store_consistent(store)
    assert 0 < killed_with[0] < len(paths)
    report = wb.open_store(store_dir).ingest(paths)
    assert report.ok
    assert len(report.ingested) + len(report.present) == len(paths)
    assert len(wb.open_store(store_dir)) == len(paths)
    assert_store_consistent(wb.open_store(store_dir))


def test_four_concurrent_ingesters_lose_and_duplicate_nothing(tmp_path):
    paths = [str(p) for p in write_tables(tmp_path / "logs", 40)]
    store_dir = tmp_path / "store"
    procs = []
    for k in range(4):
        order = paths[k * 10 :] + paths[: k * 10]  # overlapping sets, different order
        procs.append(subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(store_dir), *order]))
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    store = wb.open_store(store_dir)
    assert len(store) == 40
    cat = store.runs()
    assert cat.height == 40 and cat["run_id"].is_unique().all()
    assert sorted(cat["name"].to_list(), key=int) == [str(i) for i in range(40)]
    assert_store_consistent(store)
