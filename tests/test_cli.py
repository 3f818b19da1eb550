"""The `workbench` command: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from workbench.cli import cli


@pytest.fixture()
def logs(tmp_path):
    folder = tmp_path / "logs" / "arm-a"
    folder.mkdir(parents=True)
    for i in range(3):
        pl.DataFrame({"time": [0.0 + i, 0.1 + i, 0.2 + i], "x": [1, 2, 3]}).write_csv(folder / f"{i}.csv")
    return tmp_path / "logs"


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_ingest_json_and_exit_codes(tmp_path, logs):
    store = str(tmp_path / "store")
    res = invoke("ingest", str(logs), "--store", store, "--json", "--meta", "model.version=v1",
                 "--pattern", "{hardware.robot}/{scenario.seed}.csv")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["ingested"]) == 3 and out["present"] == [] and out["failed"] == []
    res = invoke("ingest", str(logs), "--store", store, "--json")
    assert res.exit_code == 0
    assert sorted(json.loads(res.output)["present"]) == sorted(out["ingested"])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"junk")
    res = invoke("ingest", str(logs / "arm-a" / "0.csv"), str(bad), "--store", store, "--json")
    assert res.exit_code == 1
    out2 = json.loads(res.output)
    assert len(out2["present"]) == 1
    assert out2["failed"][0]["path"] == str(bad) and "not a Parquet file" in out2["failed"][0]["error"]


def test_runs_formats_and_where(tmp_path, logs):
    store = str(tmp_path / "store")
    invoke("ingest", str(logs), "--store", store, "--pattern", "{hardware.robot}/{scenario.seed}.csv")
    rows = json.loads(invoke("runs", "--store", store, "--format", "json").output)
    assert len(rows) == 3 and {r["hardware.robot"] for r in rows} == {"arm-a"}
    csv = invoke("runs", "--store", store, "--format", "csv", "--where", "scenario.seed >= 1", "--columns", "name,scenario.seed").output
    assert csv.splitlines() == ["name,scenario.seed", "1,1", "2,2"] or sorted(csv.splitlines()[1:]) == ["1,1", "2,2"]
    table = invoke("runs", "--store", store).output
    assert "hardware.robot" in table and "arm-a" in table
    res = invoke("runs", "--store", store, "--where", "nonsense ===")
    assert res.exit_code == 1 and res.output.startswith("error: cannot filter runs")


def test_show_remove_rebuild(tmp_path, logs):
    store = str(tmp_path / "store")
    out = json.loads(invoke("ingest", str(logs), "--store", store, "--json").output)
    rid = out["ingested"][0]
    shown = json.loads(invoke("show", rid, "--store", store, "--format", "json").output)
    assert shown["info"]["run_id"] == rid and shown["info"]["provenance"]["reader"] == "table"
    text = invoke("show", rid, "--store", store).output
    assert f"run {rid}" in text and "sha256" in text
    assert invoke("remove", rid, "--store", store).output.strip() == f"removed {rid}"
    res = invoke("show", rid, "--store", store)
    assert res.exit_code == 1 and res.output.strip() == f"error: unknown run id(s) or name(s) [{rid!r}] in store {store!r}"
    assert invoke("rebuild", "--store", store).output.strip() == "catalog rebuilt: 2 runs"


def test_errors_are_one_line_and_debug_shows_traceback(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "workbench.cli", "runs", "--store", str(tmp_path / "none")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: no store at {str(tmp_path / 'none')!r} (no runs/ folder); open_store(path) creates one"]
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "--debug", *cmd[3:]], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and "Traceback" in res.stderr and "StoreError" in res.stderr
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "ingest"], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "Missing argument" in res.stderr


def test_readers_lists_builtins():
    out = invoke("readers").output
    assert out.splitlines()[0].split()[0] in {"dataflash", "hdf5", "lerobot", "mcap", "table"}
    assert any(line.startswith("table ") for line in out.splitlines())


def test_grade_command(tmp_path):
    import numpy as np

    logs = tmp_path / "logs"
    logs.mkdir()
    t = np.arange(0, 500) * 0.01 + 1_700_000_000
    pl.DataFrame({"time": t, "x": np.sin(t)}).write_csv(logs / "clean.csv")
    keep = np.r_[0:100, 200:500]
    pl.DataFrame({"time": t[keep], "x": np.sin(t[keep])}).write_csv(logs / "gappy.csv")
    store = str(tmp_path / "store")
    invoke("ingest", str(logs), "--store", store)
    out = json.loads(invoke("grade", "--store", store, "--format", "json").output)
    by_name = {r["name"]: r for r in out}
    assert by_name["clean"]["grade"] == "A" and by_name["clean"]["findings"] == []
    assert by_name["gappy"]["grade"] == "B" and [f["check"] for f in by_name["gappy"]["findings"]] == ["gap"]
    text = invoke("grade", "--store", store, "--findings").output
    assert "grades: A: 1, B: 1" in text and "gappy" in text
    rows = json.loads(invoke("runs", "--store", store, "--format", "json", "--columns", "name,quality.grade").output)
    assert {r["name"]: r["quality.grade"] for r in rows} == {"clean": "A", "gappy": "B"}
