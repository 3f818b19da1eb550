"""The `workbench` command: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: no store at {str(tmp_path / 'none')!r} (no runs/ folder); open_store(path) creates one"]
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "--debug", *cmd[3:]], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 1 and "Traceback" in res.stderr and "StoreError" in res.stderr
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "ingest"], capture_output=True, text=True, env=env, check=False)
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


# --------------------------------------------------------------------------- the compare gate

NO_OUTCOME_HINT = ("define one with an outcome: rule in workbench.yaml, `workbench events apply --rules FILE`, "
                   "or `workbench label RUN --outcome success|failure`")
GATE = ["--baseline", "policy-v1", "--candidate", "policy-v2"]


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def plain_store(tmp_path):
    """Twelve CSV runs (2 versions × 2 robots × 3 seeds) without outcomes, metrics or grades."""
    logs = tmp_path / "plain"
    for v, version in enumerate(("v1", "v2")):
        for r, robot in enumerate(("arm-a", "arm-b")):
            (logs / version / robot).mkdir(parents=True)
            for seed in range(3):
                k = float(100 * v + 10 * r + seed)  # distinct content: distinct runs
                pl.DataFrame({"time": [0.0, 0.1, 0.2, 0.3], "x": [k, k + 1.0, k + 2.0, k + 3.0]}).write_csv(
                    logs / version / robot / f"{seed}.csv")
    store = str(tmp_path / "store")
    res = run_cli("ingest", logs, "--store", store, "--pattern", "{model.version}/{hardware.robot}/{scenario.seed}.csv")
    assert res.exit_code == 0, res.output
    return store


def test_gate_exit_codes_on_the_sample_campaign(sample_store):
    store = sample_store.url
    # 1: the planted regression (policy-v2 on arm-b in dim light)
    res = run_cli("compare", "--store", store, *GATE, "--within", "hardware.robot,environment.lighting", "--fail-on-regression")
    assert res.exit_code == 1, res.output
    assert "1 regression(s) with confidence" in res.stderr and "not measured" not in res.output
    # 0: no regression (time to success improves everywhere)
    res = run_cli("compare", "--store", store, *GATE, "--within", "hardware.robot", "--metric", "time_to_success",
                  "--fail-on-regression")
    assert res.exit_code == 0, res.output
    assert "no regression with confidence" in res.output
    # 3 only when asked: arm-a's success rates are equal and undecided
    args = ["compare", "--store", store, *GATE, "--where", "hardware.robot = 'arm-a'", "--within", "environment.lighting",
            "--metric", "success"]
    assert run_cli(*args, "--fail-on-regression").exit_code == 0
    assert run_cli(*args, "--fail-on-undecided").exit_code == 3
    assert json.loads(run_cli(*args, "--format", "json").output)["status"] == "undecided"
    # no gate asked: 0 even with a regression
    assert run_cli("compare", "--store", store, *GATE, "--within", "hardware.robot,environment.lighting").exit_code == 0


def test_gate_errors_exit_2_and_other_commands_keep_1(sample_store, tmp_path):
    res = run_cli("compare", "--store", sample_store.url, "--by", "hardware.colour", "--fail-on-regression")
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: no factor column 'hardware.colour'; factors: environment.lighting, environment.surface, "
        "hardware.robot, model.checkpoint, model.version, scenario.seed, scenario.task"]
    res = run_cli("compare", "--store", sample_store.url, *GATE, "--metric", "speed", "--fail-on-regression")
    assert res.exit_code == 2 and res.output.startswith("error: no metric 'speed'")
    assert run_cli("compare", "--store", tmp_path / "none", "--fail-on-regression").exit_code == 2
    assert run_cli("compare", "--store", sample_store.url, "--min-grade", "Z").exit_code == 2  # a bad option
    assert run_cli("runs", "--store", tmp_path / "none").exit_code == 1


def test_gate_crash_exits_2_not_1(sample_store, monkeypatch):
    import importlib

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    # `workbench.comparison` as an attribute is the function: patch the module itself
    monkeypatch.setattr(importlib.import_module("workbench.comparison"), "compare", broken)
    res = run_cli("compare", "--store", sample_store.url, *GATE, "--fail-on-regression")
    assert res.exit_code == 2 and "RuntimeError: boom" in res.stderr


def test_compare_help_documents_the_exit_codes():
    text = run_cli("compare", "--help").output
    for line in ("0  pass", "1  with --fail-on-regression: a cell regresses with confidence", "2  an error",
                 "nothing measured", "3  with --fail-on-undecided"):
        assert line in text, line


def test_nothing_measured_exits_2_with_one_line(plain_store):
    # nothing computed yet: compare computes the metrics it needs, then finds no outcome
    res = run_cli("compare", "--store", plain_store, "--by", "model.version", "--within", "hardware.robot",
                  "--fail-on-regression")
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines() == [
        "computed success for 12 run(s), time_to_success for 12 run(s)",
        f"nothing measured: 12 of 12 runs have no outcome (metrics.success is null); {NO_OUTCOME_HINT}",
    ]
    rows = [ln for ln in res.stdout.splitlines() if "arm-" in ln]
    assert len(rows) == 4 and all("not measured" in ln and "undecided" not in ln for ln in rows)
    assert "no regression with confidence" not in res.output
    cat = json.loads(run_cli("runs", "--store", plain_store, "--format", "json").output)
    assert all("metrics.success" in r and "metrics.time_to_success" in r for r in cat)
    # JSON: the same verdicts and counts; the line goes to stderr; computed once, not again
    res = run_cli("compare", "--store", plain_store, "--by", "model.version", "--format", "json", "--fail-on-regression")
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["status"] == "not measured" and out["measured"] == 0 and out["not_measured"] == 1  # the gate: success
    assert out["missing"] == {"success": 12, "time_to_success": 12} and out["n_runs"] == 12
    assert {c["verdict"] for c in out["cells"]} == {"not measured"}
    assert res.stderr.splitlines() == [f"nothing measured: 12 of 12 runs have no outcome (metrics.success is null); {NO_OUTCOME_HINT}"]
    # without the gate: the same line, exit 0
    res = run_cli("compare", "--store", plain_store, "--by", "model.version")
    assert res.exit_code == 0 and res.stderr.startswith("nothing measured: 12 of 12 runs")


def test_gate_decides_on_the_measured_cells(plain_store):
    rows = json.loads(run_cli("runs", "--store", plain_store, "--format", "json").output)
    arm_a = {v: [r["run_id"] for r in rows if r["hardware.robot"] == "arm-a" and r["model.version"] == v] for v in ("v1", "v2")}
    assert run_cli("label", *arm_a["v1"], "--store", plain_store, "--outcome", "success").exit_code == 0
    assert run_cli("label", *arm_a["v2"], "--store", plain_store, "--outcome", "failure").exit_code == 0
    args = ["compare", "--store", plain_store, "--by", "model.version", "--within", "hardware.robot", "--metric", "success"]
    res = run_cli(*args, "--fail-on-regression")
    # 3/3 against 0/3, paired by seed: McNemar on 3 discordant pairs, p = 1/8: undecided
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert any("arm-a" in ln and "undecided" in ln for ln in lines)
    assert any("arm-b" in ln and "not measured" in ln for ln in lines)
    assert "1 of 2 cells not measured: 6 of 12 runs have no outcome (metrics.success is null)" in res.stdout
    assert "no regression with confidence among the 1 measured cells" in res.stdout
    assert "nothing measured" not in res.output
    assert run_cli(*args, "--fail-on-undecided").exit_code == 3
    out = json.loads(run_cli(*args, "--format", "json").output)
    assert (out["measured"], out["not_measured"], out["missing"]) == (1, 1, {"success": 6})
    assert out["cells"][0]["test"] == "mcnemar_exact" and out["cells"][0]["pairing"] == "paired: 3 pairs"
    # unpaired, Fisher's one-sided exact p is 1/20 = 0.05: the family's only testable cell regresses
    res = run_cli(*args, "--unpaired", "--fail-on-regression")
    assert res.exit_code == 1, res.output
    assert any("arm-a" in ln and "regression" in ln for ln in res.stdout.splitlines())


def test_nothing_measured_on_real_lerobot_datasets(real_data, tmp_path):
    store = str(tmp_path / "store")
    res = run_cli("ingest", real_data / "lerobot", "--store", store, "--json")
    assert res.exit_code == 0, res.output
    n = len(json.loads(res.stdout)["ingested"])
    assert n >= 5
    res = run_cli("compare", "--store", store, "--by", "hardware.robot", "--fail-on-regression")
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == (
        f"nothing measured: {n} of {n} runs have no outcome (metrics.success is null); {NO_OUTCOME_HINT}")
    assert "not measured" in res.stdout and "undecided" not in res.stdout


def test_sequential_compare_numbers_its_looks(sample_store):
    args = ["compare", "--store", sample_store.url, *GATE, "--within", "hardware.robot,environment.lighting",
            "--metric", "success", "--sequential"]
    first = run_cli(*args, "--format", "json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["sequential"] is True and out["look"] >= 1
    assert {c["test"] for c in out["cells"]} == {"e_process_paired"}
    again = json.loads(run_cli(*args, "--format", "json").stdout)
    assert again["look"] == out["look"] + 1
    text = run_cli(*args)
    assert f"sequential (anytime-valid), look {out['look'] + 2}" in text.stdout


def test_where_localizes_the_planted_regression(sample_store):
    res = run_cli("where", "--store", sample_store.url, *GATE, "--within", "hardware.robot,environment.lighting",
                  "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 4
    top = rows[0]
    assert (top["hardware.robot"], top["environment.lighting"]) == ("arm-b", "dim") and top["share"] > 0.8
    assert sum(r["contribution"] for r in rows) == pytest.approx(top["overall"], abs=1e-9)
    text = run_cli("where", "--store", sample_store.url, *GATE, "--within", "hardware.robot,environment.lighting")
    assert text.stdout.startswith("success: policy-v2 − policy-v1 = ") and "heterogeneity p = " in text.stdout


def _at_width(width: int, *args: str):
    res = CliRunner(env={"COLUMNS": str(width)}).invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout, res.stderr


@pytest.mark.parametrize("width", [80, 160])
def test_runs_and_metrics_fit_the_terminal(sample_store, width):
    store = str(sample_store.root)
    n = len(sample_store.run_ids())
    out, err = _at_width(width, "runs", "--store", store)
    lines = out.splitlines()
    assert len(lines) == n + 1 and max(map(len, lines)) <= width  # one line per run, nothing wraps
    header = lines[0].split()
    assert header[:4] == ["run_id", "name", "outcome", "quality.grade"]
    assert "more column(s) not shown:" in err and "--columns all" in err
    hidden = err.split("not shown: ", 1)[1].split(" (see", 1)[0].rstrip(" …").split(", ")
    assert hidden and not set(hidden) & set(header)
    # names keep both ends (the seed at the end tells runs apart), values are right-aligned numbers
    names = {ln.split()[1] for ln in lines[1:]}
    assert len(names) == n and all(x.endswith(tuple(f"_s{i:02d}" for i in range(16))) for x in names), sorted(names)[:3]
    # every column on demand: --columns all (one line per run, widths capped) and --wide
    out, err = _at_width(width, "runs", "--store", store, "--columns", "all")
    cat = sample_store.runs()
    assert out.splitlines()[0].split() == cat.columns and not err
    wide, _ = _at_width(width, "runs", "--store", store, "--wide", "--columns", "run_id,model.checkpoint")
    full = sorted(cat["model.checkpoint"].unique().to_list())
    assert all(c in wide for c in full)  # 40-character hashes shown whole
    cut, _ = _at_width(width, "runs", "--store", store, "--columns", "run_id,model.checkpoint")
    assert not any(c in cut for c in full) and all(c[:12] + "…" in cut for c in full)
    res = CliRunner().invoke(cli, ["runs", "--store", store, "--columns", "run_id,bogus"])
    assert res.exit_code == 1 and "no column(s) ['bogus']" in res.output and "(or all)" in res.output

    out, err = _at_width(width, "metrics", "--store", store, "--no-progress")
    lines = out.splitlines()
    assert len(lines) == n + 1 and max(map(len, lines)) <= width
    assert lines[0].split()[:2] == ["run_id", "name"]
    assert "metric column(s) null on every listed run" in err
    assert "attitude_error_rms_roll" not in lines[0]  # a vehicle metric, null on every arm run
