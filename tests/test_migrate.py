"""Stores of the folder-per-run layout (format 1): read as they are, and migrated.

``tests/data/store_v1`` was written by the release before the run-file layout: three
runs (two sample MCAP logs and a CSV table), graded, one labelled by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import stored_runs

import workbench as wb
from workbench.store import MANIFEST_NAME, RUNS_DIR
from workbench.store.migrate import migrate, stream_digest

V1 = Path(__file__).parent / "data" / "store_v1"


@pytest.fixture
def old_store(tmp_path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(V1, dst)
    return dst


def _contents(store: wb.Store) -> dict[str, dict]:
    out = {}
    for rid in store.run_ids():
        run = store.load(rid, lazy=False)
        out[rid] = {
            "streams": {name: stream_digest(ds) for name, ds in run.streams.items()},
            "events": run.events,
            "annotations": store.annotations(rid),
            "findings": store.get_table(rid, "quality_findings"),
            "info": run.info.to_dict(),
        }
    return out


def test_old_store_opens_as_it_is(old_store):
    store = wb.open_store(old_store)
    ids = store.run_ids()
    assert len(ids) == 3 and all((old_store / RUNS_DIR / r / MANIFEST_NAME).is_file() for r in ids)
    cat = store.runs()
    assert cat.height == 3 and set(cat["quality.grade"].to_list()) <= set("ABCDF")
    labelled = cat.filter(pl.col("labels.reason") == "dropped the part")
    assert labelled.height == 1 and labelled["outcome"].item() == "failure"
    table = next(r for r in ids if store.info(r).name == "table")
    run = store.load(table)
    ds = run.streams[next(iter(run.streams))]
    assert ds.sizes["time"] == 50 and ds.chunks  # lazy, from Zarr
    assert np.allclose(ds["x"].values, np.sin(1_700_000_000 + np.arange(50) * 0.02))


def test_migrate_rewrites_every_run_equal(old_store):
    store = wb.open_store(old_store)
    before = _contents(store)
    cat_before = store.runs()
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "migrate", "--store", str(old_store), "--progress"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    *bar, last = res.stdout.splitlines()
    assert last.startswith("3 runs migrated, 0 already in the current layout")
    assert bar and bar[0].startswith("migrate ")  # the progress bar
    store = wb.open_store(old_store)
    assert stored_runs(old_store) == sorted(before)  # every run now one data file + manifest
    assert not [p for p in (old_store / RUNS_DIR).iterdir() if p.is_dir()]
    after = _contents(store)
    for rid, was in before.items():
        now = after[rid]
        assert now["streams"] == was["streams"]
        assert now["events"].equals(was["events"])
        assert now["annotations"] == was["annotations"]
        assert now["findings"] is not None and now["findings"].equals(was["findings"])
        assert now["info"] == was["info"]
    assert store.runs().equals(cat_before)
    assert store.rebuild_catalog().equals(cat_before)
    # lazily too, piece by piece
    rid = next(iter(before))
    run = store.load(rid, lazy=True)
    name = next(iter(run.streams))
    assert stream_digest(run.streams[name].compute()) == before[rid]["streams"][name]
    # again: nothing left to do
    again = migrate(store)
    assert again.migrated == [] and again.already == 3


def test_migrate_resumes_after_a_crash(old_store, tmp_path):
    """A crash between publishing a run's new form and removing its folder leaves both:
    the run is listed once, and the next migration removes the leftover folder."""
    store = wb.open_store(old_store)
    rid = store.run_ids()[0]
    keep = tmp_path / "folder"
    shutil.copytree(old_store / RUNS_DIR / rid, keep)
    first = migrate(store)
    assert len(first.migrated) == 3 and first.bytes_after < first.bytes_before
    shutil.copytree(keep, old_store / RUNS_DIR / rid)  # the state the crash leaves
    store = wb.open_store(old_store)
    assert store.run_ids().count(rid) == 1 and store.runs().height == 3
    second = migrate(store)
    assert second.migrated == [] and not (old_store / RUNS_DIR / rid).exists()
    assert stored_runs(old_store) == store.run_ids()


def test_migrate_refuses_a_run_that_does_not_read_back(old_store):
    """A damaged old run (a chunk cut short) stops the migration with its id; it stays
    in its old form and the runs migrated before it are complete."""
    store = wb.open_store(old_store)
    ids = store.run_ids()
    victim = ids[-1]
    manifest = json.loads((old_store / RUNS_DIR / victim / MANIFEST_NAME).read_text())
    stream = next(iter(manifest["streams"]))
    chunk = next((old_store / RUNS_DIR / victim / "streams" / f"{stream}.zarr").rglob("c*"))
    chunk.write_bytes(chunk.read_bytes()[:3])
    with pytest.raises(wb.WorkbenchError, match=victim):
        migrate(store)
    assert (old_store / RUNS_DIR / victim / MANIFEST_NAME).is_file()
    assert stored_runs(old_store) == ids[:-1]
