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
from conftest import stored_runs

import workbench as wb
from workbench.model import ConfigError, ReaderError, StoreError
from workbench.store import RUNS_DIR, TMP_DIR


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
    assert stored_runs(Path(store.root)) == store.run_ids()  # every run is complete
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
    store = wb.open_store(tmp_path / "s")
    with pytest.raises(ReaderError, match="no reader named 'nope'; installed readers: .*table"):
        store.ingest(p, reader="nope")  # an error before anything is read, not a failed or skipped file
    assert store.run_ids() == []
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
        while time.time() < deadline and len(list(runs_dir.glob('*.json'))) < target and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(0.05 * trial)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_with.append(len(list(runs_dir.glob('*.json'))))
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


# --------------------------------------------------------------------------- per-run factors

V30 = "lerobot/v30_so101_record_test"
V21 = "lerobot/v21_unitree_g1_inspire"
SAWYER = "hdf5/robosuite_v01_SawyerLift/demo.hdf5"
WIPE = "hdf5/robosuite_v1_wipe_panda/demo.hdf5"
# run ids of the real files as ingested before readers emitted per-run factors
# (scenario.episode, scenario.demo, …): factors are not part of a run's address
REAL_RUN_IDS = {
    V30: {"episode_0": "62057a1c53136a1e", "episode_1": "f36fc82425ea06ae",
          "episode_2": "96a7e9f64c810d21", "episode_3": "3579188a5dee47be"},
    V21: {"episode_25": "68f3042287aff10c", "episode_26": "1f041df138bf59af",
          "episode_27": "b9b4d05cf1d91dea", "episode_28": "0fe2c7ab20d0eeda",
          "episode_29": "06d2d344da4dcebf", "episode_30": "46bdb35161325da2",
          "episode_31": "1312e3818f2a6590", "episode_32": "6d8f2f7534fc41e1",
          "episode_33": "8d4c5a50e2a2eee1", "episode_34": "f81557c7af1703eb"},
    SAWYER: {"demo_1": "3580a91cd252558d", "demo_2": "0184464a9674b870"},
    WIPE: {"demo_1": "9ffd0b70138292ab"},
}


@pytest.fixture(scope="module")
def real_store_dir(real_data, tmp_path_factory):
    """The two LeRobot datasets and the two robosuite files, ingested once."""
    folder = tmp_path_factory.mktemp("real") / "store"
    report = wb.open_store(folder).ingest([real_data / rel for rel in REAL_RUN_IDS])
    assert report.ok and len(report.ingested) == 17, report
    return folder


@pytest.fixture()
def real_store(real_store_dir, tmp_path):
    """A private copy of the ingested real store (tests may change it)."""
    import shutil

    shutil.copytree(real_store_dir, tmp_path / "store")
    return wb.open_store(tmp_path / "store")


def _by_key(store, rel, real_data):
    src = str((real_data / rel).resolve())
    out = {}
    for rid in store.run_ids():
        prov = store.info(rid).provenance
        if prov.sources[0].path == src or prov.sources[0].path.startswith(src + os.sep):
            out[prov.key] = rid
    return out


def _snapshot(store) -> dict[str, bytes]:
    """Every manifest, annotation and the catalog, byte for byte."""
    root = Path(store.root)
    files = [*root.glob(f"{RUNS_DIR}/*.json"), *root.glob(f"{RUNS_DIR}/*.ann"), root / "catalog.parquet"]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_per_run_factors_leave_run_ids_unchanged(real_store, real_data):
    for rel, ids in REAL_RUN_IDS.items():
        assert _by_key(real_store, rel, real_data) == ids
    cat = real_store.runs()
    v30 = cat.filter(pl.col("run_id").is_in(list(REAL_RUN_IDS[V30].values()))).sort("scenario.episode")
    assert v30["scenario.episode"].to_list() == [0, 1, 2, 3]
    assert cat.filter(pl.col("run_id") == REAL_RUN_IDS[SAWYER]["demo_2"])["scenario.demo"].item() == 2
    assert cat.schema["scenario.episode"] == pl.Int64
    # re-ingesting is a no-op: same ids, nothing rewritten
    before = _snapshot(real_store)
    report = real_store.ingest([real_data / rel for rel in REAL_RUN_IDS])
    assert report.ingested == [] and len(report.present) == 17
    assert _snapshot(real_store) == before


def test_set_factors_from_csv_by_episode(real_store, real_data, tmp_path):
    v30 = _by_key(real_store, V30, real_data)
    v21 = _by_key(real_store, V21, real_data)
    table = tmp_path / "labels.csv"
    table.write_text(
        "scenario.episode,hardware.gripper,scenario.operator,model.checkpoint,scenario.task\n"
        "0,soft,ana,007,\n"
        "3,hard,bo,12,\n"
        "30,soft,,step-9,hand over\n"
    )
    before = _snapshot(real_store)
    result = real_store.set_factors(table, on="scenario.episode")
    targets = {v30["episode_0"], v30["episode_3"], v21["episode_30"]}
    assert set(result.updated) == targets and result.unchanged == []
    assert result.columns == ["hardware.gripper", "scenario.operator", "model.checkpoint", "scenario.task"]
    label = f"table:{table.resolve()}"
    assert result.source == label
    after = _snapshot(real_store)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {f"{RUNS_DIR}/{r}.json" for r in targets} | {"catalog.parquet"}

    e0 = real_store.info(v30["episode_0"])
    assert e0.hardware["gripper"] == "soft" and e0.scenario["operator"] == "ana"
    assert e0.model["checkpoint"] == "007"  # CSV text read like --meta values: "007" stays text
    assert e0.scenario["task"] == "Pick the orange cube and place it in the box"  # empty cell: unchanged
    assert e0.provenance.metadata["hardware.gripper"] == label
    assert e0.provenance.metadata["scenario.task"] == "embedded"
    assert real_store.info(v30["episode_3"]).model["checkpoint"] == 12
    e30 = real_store.info(v21["episode_30"])
    assert "operator" not in e30.scenario  # empty cell: nothing set
    assert e30.scenario["task"] == "hand over"
    (override,) = e30.provenance.overrides
    assert override["key"] == "scenario.task"
    assert override["old"] == "Pick up the yellow bottle on the table." and override["old_source"] == "embedded"
    assert override["new"] == "hand over" and override["new_source"] == label and override["at"]
    assert e30.run_id == v21["episode_30"]  # ids do not change

    cat = real_store.runs()
    rows = cat.filter(pl.col("hardware.gripper").is_not_null())
    assert sorted(rows["run_id"].to_list()) == sorted(targets)
    assert cat.equals(real_store.rebuild_catalog())
    (Path(real_store.root) / "catalog.parquet").unlink()
    rebuilt = wb.open_store(real_store.root).rebuild_catalog()
    assert rebuilt.filter(pl.col("run_id") == v21["episode_30"])["scenario.task"].item() == "hand over"
    assert rebuilt.equals(cat)
    # applying the same table again changes nothing
    snap = _snapshot(real_store)
    again = real_store.set_factors(table, on="scenario.episode")
    assert again.updated == [] and set(again.unchanged) == targets
    assert _snapshot(real_store) == snap


def test_set_factors_parquet_and_dataframe(real_store, real_data, tmp_path):
    sawyer = _by_key(real_store, SAWYER, real_data)
    table = tmp_path / "t.parquet"
    pl.DataFrame({"run_id": [sawyer["demo_1"]], "environment.table_height": [0.82],
                  "scenario.seed": [4]}).write_parquet(table)
    assert real_store.set_factors(table, on="run_id").updated == [sawyer["demo_1"]]
    info = real_store.info(sawyer["demo_1"])
    assert info.environment["table_height"] == 0.82 and info.scenario["seed"] == 4
    frame = pl.DataFrame({"name": [real_store.info(sawyer["demo_2"]).name], "hardware.robot": ["Sawyer-2"]})
    result = real_store.set_factors(frame, on="name", source="inventory-2026")
    assert result.updated == [sawyer["demo_2"]]
    prov = real_store.info(sawyer["demo_2"]).provenance
    assert prov.metadata["hardware.robot"] == "table:inventory-2026"
    assert prov.overrides[-1]["old"] == "Sawyer" and prov.overrides[-1]["new"] == "Sawyer-2"


@pytest.mark.parametrize(
    ("text", "on", "match"),
    [
        ("scenario.episode,hardware.gripper\n0,soft\n99,hard\n1,soft\n", "scenario.episode",
         r"row 2 \(scenario.episode='99'\) matches no run"),
        ("scenario.episode,hardware.gripper\n0,soft\n1,hard\n0,soft\n", "scenario.episode",
         r"appears more than once: rows 1 and 3 \(scenario.episode='0'\)"),
        ("scenario.episode,hardware.gripper,gripper.kind,notes\n0,soft,x,y\n", "scenario.episode",
         r"\['gripper.kind', 'notes'\] are not factor names.*hardware, environment, model, scenario"),
        ("episode,hardware.gripper\n0,soft\n", "scenario.episode",
         r"key column\(s\) \['scenario.episode'\] not in the table; its columns: episode, hardware.gripper"),
        ("scenario.demo,hardware.gripper\n1,soft\n", "scenario.demo",
         r"row 1 \(scenario.demo='1'\) → 2 runs: .*ambiguous.*source"),
        ("scenario.episode,hardware.gripper\n0,soft\nzero,hard\n", "scenario.episode",
         r"scenario.episode must be a number .* row 2 \(scenario.episode='zero'\)"),
        ("hardware.wheel,hardware.gripper\nw1,soft\n", "hardware.wheel",
         r"\['hardware.wheel'\] are not catalog columns"),
    ],
    ids=["unknown-key", "duplicate-key", "bad-columns", "missing-key-column", "ambiguous", "bad-key-type",
         "key-not-in-catalog"],
)
def test_set_factors_refuses_the_whole_file(real_store, tmp_path, text, on, match):
    table = tmp_path / "bad.csv"
    table.write_text(text)
    before = _snapshot(real_store)
    with pytest.raises(ConfigError, match=match) as err:
        real_store.set_factors(table, on=on)
    assert "bad.csv" in str(err.value)
    assert _snapshot(real_store) == before


def test_set_factors_disambiguates_with_a_source_key(real_store, real_data, tmp_path):
    import shutil

    # a second dataset with the same episode numbers (another robot): episode 0 is ambiguous
    copy = tmp_path / "so101_b"
    shutil.copytree(real_data / V30, copy)
    info = json.loads((copy / "meta/info.json").read_text())
    info["robot_type"] = "so101_follower_b"
    (copy / "meta/info.json").write_text(json.dumps(info))
    assert len(real_store.ingest(copy).ingested) == 4
    table = tmp_path / "ops.csv"
    table.write_text("scenario.episode,scenario.operator\n0,ana\n")
    before = _snapshot(real_store)
    with pytest.raises(ConfigError, match=r"row 1 \(scenario.episode='0'\) → 2 runs.*Nothing was changed"):
        real_store.set_factors(table, on="scenario.episode")
    assert _snapshot(real_store) == before
    table.write_text(f"scenario.episode,source,scenario.operator\n0,{copy},ana\n2,{real_data / V30},bo\n")
    result = real_store.set_factors(table, on=["scenario.episode", "source"])
    mine = _by_key(real_store, V30, real_data)
    copied = {real_store.info(r).provenance.key: r for r in real_store.run_ids()
              if real_store.info(r).hardware.get("robot") == "so101_follower_b"}
    assert sorted(result.updated) == sorted([copied["episode_0"], mine["episode_2"]])
    assert real_store.info(copied["episode_0"]).scenario["operator"] == "ana"
    assert "operator" not in real_store.info(mine["episode_0"]).scenario
    # two rows that name one run are refused too
    table.write_text(f"scenario.episode,source,scenario.operator\n1,{real_data / V30},x\n1,{real_data / V30}/,y\n")
    with pytest.raises(ConfigError, match="rows 1 and 2 → run .*two rows name the same run"):
        real_store.set_factors(table, on=["scenario.episode", "source"])


@pytest.mark.parametrize("attack", [
    "run_id in (select a from read_csv('{secret}'))",
    "read_csv('{secret}') is not null",
    "run_id = (select max(a) from read_parquet('{secret}'))",
    "exists (select 1)",
    "1=1; drop table runs",
    "run_id in (with t as (select 1) select * from t)",
    "/*'*/ run_id in (select column_1 from read_csv('{secret}')) /*'*/",
    "-- '\n run_id in (select column_1 from read_csv('{secret}')) --'",
    "`a'b` = 1 or run_id in (select column_1 from read_csv('{secret}'))",
    "$$'$$ = 1",
])
def test_where_text_is_a_condition_never_a_query(tmp_path, attack):
    """A where text cannot read files of the machine: no query, subquery or table function runs."""
    secret = tmp_path / "secret.csv"
    secret.write_text("a\ntop-secret-line\n")
    store = wb.open_store(tmp_path / "store")
    with pytest.raises(wb.ConfigError, match=r"^where: ") as err:
        store.runs(where=attack.format(secret=secret))
    assert "top-secret-line" not in str(err.value)


def test_where_text_keeps_its_conditions(tmp_path, samples_dir):
    store = wb.open_store(tmp_path / "store")
    store.ingest(sorted((samples_dir / "campaign").glob("arm-a_*_s00.mcap")))
    cat = store.runs()
    got = store.runs(where="environment.lighting = 'dim' and lower(name) like '%rubber%' and duration_s > 1")
    want = cat.filter((pl.col("environment.lighting") == "dim") & pl.col("name").str.contains("rubber") & (pl.col("duration_s") > 1))
    assert got["run_id"].sort().to_list() == want["run_id"].sort().to_list() and got.height > 0
    # words of a query inside literals or dotted names are values, and == inside a literal stays
    assert store.runs(where="name like '%select%from%' or name == 'a==b'").height == 0
    assert store.runs(where="run_id = 'x'' or 1=1 union select 1 --'").height == 0


def test_object_store_write_requests_per_run(samples_dir, monkeypatch):
    """On an object store every file written is one request (a PUT): a run costs at
    most its streams + 4, whatever its number of variables."""
    from fsspec.implementations.memory import MemoryFileSystem

    files = sorted(p for p in (samples_dir / "campaign").glob("*.mcap") if "truncated" not in p.name)[:4]
    writes: list[str] = []
    original = MemoryFileSystem._open

    def counting(self, path, mode="rb", *args, **kwargs):
        if "w" in mode or "a" in mode:
            writes.append(path)
        return original(self, path, mode, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "_open", counting)
    store = wb.open_store(f"memory://requests-{os.getpid()}")
    before = len(writes)
    report = store.ingest(files, progress=False)
    assert len(report.ingested) == 4
    per_run = (len(writes) - before) / 4
    streams = sum(len(store.manifest(r)["streams"]) for r in report.ingested) / 4
    variables = sum(len(s["variables"]) for r in report.ingested for s in store.manifest(r)["streams"].values()) / 4
    assert streams >= 5 and variables > 2 * streams
    assert per_run <= streams + 4, (per_run, streams, sorted(writes[before:]))
    # and the runs read back from there
    run = store.load(report.ingested[0], lazy=False)
    assert set(run.streams) == set(store.manifest(report.ingested[0])["streams"])
    assert store.runs().height == 4
