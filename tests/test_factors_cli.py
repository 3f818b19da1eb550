"""``workbench factors set``: summary, exit codes, one-line errors, kept by ``workbench rebuild``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from workbench.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture()
def store(tmp_path: Path) -> str:
    """Four CSV runs: two robots x seeds 0-1 (factors from the path pattern)."""
    for robot in ("arm-a", "arm-b"):
        folder = tmp_path / "logs" / robot
        folder.mkdir(parents=True)
        for seed in (0, 1):
            x = [seed, 2, 3 if robot == "arm-a" else 4]  # distinct bytes: distinct runs
            pl.DataFrame({"time": [0.0, 0.1, 0.2], "x": x}).write_csv(folder / f"{seed}.csv")
    path = str(tmp_path / "store")
    res = invoke("ingest", str(tmp_path / "logs"), "--store", path, "--pattern", "{hardware.robot}/{scenario.seed}.csv")
    assert res.exit_code == 0, res.output
    return path


def _runs(store: str) -> list[dict]:
    return json.loads(invoke("runs", "--store", store, "--format", "json").output)


def test_set_prints_a_summary_and_survives_rebuild(store: str, tmp_path: Path) -> None:
    table = tmp_path / "grippers.csv"
    table.write_text("hardware.robot,scenario.seed,hardware.gripper,model.checkpoint\narm-a,0,soft,c1\narm-b,1,hard,\n")
    res = invoke("factors", "set", "--from", str(table), "--on", "hardware.robot", "--on", "scenario.seed", "--store", store)
    assert res.exit_code == 0, res.output
    assert res.output.strip() == (
        f"updated 2 run(s), 0 already up to date; set hardware.gripper, model.checkpoint "
        f"from {table} (keyed on hardware.robot, scenario.seed)"
    )
    got = {(r["hardware.robot"], r["scenario.seed"]): (r.get("hardware.gripper"), r.get("model.checkpoint"))
           for r in _runs(store)}
    assert got == {("arm-a", 0): ("soft", "c1"), ("arm-a", 1): (None, None),
                   ("arm-b", 0): (None, None), ("arm-b", 1): ("hard", None)}
    assert invoke("rebuild", "--store", store).exit_code == 0
    assert {(r["hardware.robot"], r["scenario.seed"]): (r.get("hardware.gripper"), r.get("model.checkpoint"))
            for r in _runs(store)} == got
    run_id = next(r["run_id"] for r in _runs(store) if r.get("hardware.gripper") == "hard")
    shown = json.loads(invoke("show", run_id, "--store", store, "--format", "json").output)
    assert shown["info"]["provenance"]["metadata"]["hardware.gripper"] == f"table:{table.resolve()}"
    # comma-separated keys, --json, and a second application that changes nothing
    res = invoke("factors", "set", "--from", str(table), "--on", "hardware.robot,scenario.seed", "--store", store, "--json")
    assert res.exit_code == 0
    out = json.loads(res.output)
    assert out["updated"] == [] and len(out["unchanged"]) == 2
    assert out["columns"] == ["hardware.gripper", "model.checkpoint"]


def test_override_is_shown_with_its_source(store: str, tmp_path: Path) -> None:
    table = tmp_path / "robots.csv"
    table.write_text("hardware.robot,scenario.seed,hardware.robot_serial\narm-a,0,SN-1\n")
    assert invoke("factors", "set", "--from", str(table), "--on", "hardware.robot,scenario.seed", "--store", store).exit_code == 0
    run_id = next(r["run_id"] for r in _runs(store) if r.get("hardware.robot_serial") == "SN-1")
    fix = tmp_path / "fix.csv"
    fix.write_text(f"run_id,hardware.robot_serial\n{run_id},SN-2\n")
    res = invoke("factors", "set", "--from", str(fix), "--on", "run_id", "--store", store, "--source", "inventory")
    assert res.exit_code == 0, res.output
    text = invoke("show", run_id, "--store", store).output
    assert f"override: hardware.robot_serial: 'SN-1' (table:{table.resolve()}) → 'SN-2' (table:inventory)" in text


@pytest.mark.parametrize(
    ("content", "on", "needle"),
    [
        ("scenario.seed,hardware.gripper\n0,soft\n", "scenario.seed", "row 1 (scenario.seed='0') → 2 runs"),
        ("scenario.seed,hardware.gripper\n7,soft\n", "scenario.seed", "row 1 (scenario.seed='7') matches no run"),
        ("scenario.seed,gripper\n0,soft\n", "scenario.seed", "['gripper'] are not factor names"),
        ("seed,hardware.gripper\n0,soft\n", "scenario.seed", "its columns: seed, hardware.gripper"),
    ],
    ids=["ambiguous", "unknown-key", "bad-column", "missing-key-column"],
)
def test_errors_exit_1_with_one_line(store: str, tmp_path: Path, content: str, on: str, needle: str) -> None:
    table = tmp_path / "bad.csv"
    table.write_text(content)
    before = _runs(store)
    res = invoke("factors", "set", "--from", str(table), "--on", on, "--store", store)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.output
    assert _runs(store) == before


def test_missing_file_store_and_option(store: str, tmp_path: Path) -> None:
    res = invoke("factors", "set", "--from", str(tmp_path / "absent.csv"), "--on", "run_id", "--store", store)
    assert res.exit_code == 1 and "absent.csv" in res.output and "no such file" in res.output
    res = invoke("factors", "set", "--from", str(tmp_path / "t.xlsx"), "--on", "run_id", "--store", store)
    assert res.exit_code == 1 and ".csv, .tsv, .parquet, .pq" in res.output
    table = tmp_path / "t.csv"
    table.write_text("run_id,hardware.x\nabc,1\n")
    res = invoke("factors", "set", "--from", str(table), "--on", "run_id", "--store", str(tmp_path / "nostore"))
    assert res.exit_code == 1 and "no store at" in res.output
    res = invoke("factors", "set", "--from", str(table), "--store", store)
    assert res.exit_code == 2 and "--on" in res.output  # usage error
