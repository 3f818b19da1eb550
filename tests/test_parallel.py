"""Per-run work on a real Dask LocalCluster gives the same results as serial runs."""

from __future__ import annotations

import distributed
import polars as pl
import pytest

import workbench as wb
from workbench.model import ConfigError
from workbench.parallel import map_runs, resolve_scheduler


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        yield client


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, samples_dir):
    store = wb.open_store(tmp_path_factory.mktemp("par") / "store")
    files = sorted((samples_dir / "campaign").glob("arm-*_s0[0-2].mcap"))
    files = [f for f in files if "truncated" not in f.name]
    store.ingest(files)
    assert len(store) == len(files) == 48
    return store


def test_grades_and_metrics_on_a_cluster_equal_serial(cluster, small_store):
    assert len(cluster.scheduler_info()["workers"]) == 2
    serial_m = wb.metrics.compute(small_store, scheduler="sync", store_results=False).sort("run_id")
    dist_m = wb.metrics.compute(small_store, scheduler=cluster, store_results=False).sort("run_id")
    assert dist_m.equals(serial_m)
    serial_g = wb.quality.grade_store(small_store, scheduler="sync").sort("run_id")
    dist_g = wb.quality.grade_store(small_store, scheduler=cluster).sort("run_id")
    assert dist_g.equals(serial_g)
    assert set(serial_g["grade"]) <= set("ABCDF") and serial_g.height == 48
    # by address too, the way `--scheduler tcp://…` reaches a cluster
    addr = cluster.scheduler.address
    by_addr = wb.metrics.compute(small_store, ["success"], scheduler=addr, store_results=False).sort("run_id")
    assert by_addr["success"].to_list() == serial_m["success"].to_list()


def test_map_runs_keeps_order_and_reports_errors(cluster):
    assert map_runs(pow, list(range(20)), args=(2,), scheduler=cluster) == [i**2 for i in range(20)]
    assert map_runs(pow, [3, 1, 2], args=(3,), scheduler="threads") == [27, 1, 8]
    with pytest.raises(ZeroDivisionError):
        map_runs(divmod, [1, 2], args=(0,), scheduler="threads")
    with pytest.raises(ConfigError, match="scheduler 'gpu' is not valid"):
        resolve_scheduler("gpu")


def test_scheduler_from_environment(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SCHEDULER", "sync")
    assert resolve_scheduler(None) == "sync"
    monkeypatch.delenv("WORKBENCH_SCHEDULER")
    assert resolve_scheduler(None) == "threads"


def test_lazy_catalog_scan(small_store):
    lazy = small_store.scan().filter(pl.col("hardware.robot") == "arm-b").select("run_id", "model.version")
    out = lazy.collect()
    assert out.height == 24 and out.columns == ["run_id", "model.version"]


def test_parallel_ingest_equals_serial(cluster, tmp_path, samples_dir):
    files = sorted((samples_dir / "campaign").glob("arm-b_*_s0[0-1].mcap")) + [samples_dir / "rosbag1"]
    serial = wb.open_store(tmp_path / "serial")
    s_rep = serial.ingest(files)
    par = wb.open_store(tmp_path / "par")
    p_rep = par.ingest(files, scheduler=cluster)
    assert sorted(p_rep.ingested) == sorted(s_rep.ingested) and p_rep.failed == s_rep.failed == []
    cols = [c for c in serial.runs().columns if c not in {"ingested_at", "source", "events.applied_at"}]
    assert par.runs().select(cols).equals(serial.runs().select(cols))
    again = par.ingest(files, scheduler=cluster)
    assert again.ingested == [] and sorted(again.present) == sorted(s_rep.ingested)
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    mixed = par.ingest([bad, files[0]], scheduler="threads")
    assert [f["path"] for f in mixed.failed] == [str(bad)] and len(mixed.present) == 1


def test_a_worker_killed_during_ingest_loses_and_duplicates_nothing(tmp_path, samples_dir):
    """Kill one worker process mid-ingest: Dask retries its tasks, every run lands once."""
    import os
    import signal
    import threading
    import time

    files = sorted(p for p in (samples_dir / "campaign").glob("*.mcap") if "truncated" not in p.name)[:60]
    store = wb.open_store(tmp_path / "store")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        pids = list(client.run(os.getpid).values())
        runs_dir = tmp_path / "store" / "runs"
        killed_at: list[int] = []

        def killer() -> None:
            deadline = time.time() + 120
            while time.time() < deadline and (not runs_dir.exists() or len(list(runs_dir.glob('*.json'))) < 10):
                time.sleep(0.02)
            killed_at.append(len(list(runs_dir.glob('*.json'))))
            os.kill(pids[0], signal.SIGKILL)

        t = threading.Thread(target=killer)
        t.start()
        report = store.ingest(files, scheduler=client)
        t.join()
    assert killed_at and killed_at[0] < len(files)  # the worker died mid-ingest
    assert report.failed == []
    assert len(report.ingested) + len(report.present) >= len(files)
    cat = wb.open_store(tmp_path / "store").runs()
    assert cat.height == len(files) and cat["run_id"].is_unique().all()
    assert sorted(cat["name"].to_list()) == sorted(p.stem for p in files)
