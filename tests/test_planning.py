"""Planning: per-cell detectable drop, runs needed and more runs to decide, API and CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.model import ConfigError
from workbench.stats.plan import minimum_detectable_drop, power_rate, runs_needed


def catalog(k_b: int, k_c: int, n: int = 20, cells: int = 2) -> pl.DataFrame:
    rows = []
    for c in range(cells):
        for v, k in (("v1", k_b), ("v2", k_c)):
            rows += [{"run_id": f"{c}-{v}-{i}", "environment.cell": f"c{c}", "model.version": v,
                      "metrics.success": float(i < k)} for i in range(n)]
    return pl.DataFrame(rows)


def test_plan_per_cell_matches_the_exact_power_functions():
    table = wb.plan(catalog(18, 14), within=["environment.cell"], drop=0.2, power=0.8)
    assert table.height == 2 and table["verdict"].to_list() == ["undecided", "undecided"]
    row = table.row(0, named=True)
    a = 0.05 / 2
    assert row["alpha_cell"] == pytest.approx(a)
    assert row["mde_now"] == pytest.approx(minimum_detectable_drop(0.9, 20, 20, alpha=a, power=0.8))
    n = runs_needed(0.9, 0.2, alpha=a, power=0.8)
    assert row["runs_needed"] == n and power_rate(0.9, 0.7, n, n, alpha=a) >= 0.8
    assert row["more_runs_per_arm"] is not None and row["more_runs_per_arm"] > 0
    # a decided cell needs no more runs to decide
    decided = wb.plan(catalog(19, 5, cells=1), drop=0.2)
    assert decided["verdict"].to_list() == ["regression"] and decided["more_runs_per_arm"].to_list() == [None]


def test_plan_errors_name_what_is_wrong():
    cat = catalog(18, 14).with_columns(pl.Series("metrics.path_length", np.ones(80)))
    with pytest.raises(ConfigError, match="plan works on a rate"):
        wb.plan(cat, metric="path_length")
    with pytest.raises(ConfigError, match="nothing to plan: 80 of 80 runs have no outcome"):
        wb.plan(cat.with_columns(pl.lit(None, dtype=pl.Float64).alias("metrics.success")))


def test_plan_command(tmp_path, samples_dir):
    store = wb.open_store(tmp_path / "store")
    files = sorted((samples_dir / "campaign").glob("arm-a_*_rubber_policy-v*_s0[0-4].mcap"))
    store.ingest(files)
    res = CliRunner().invoke(cli, ["plan", "--store", str(tmp_path / "store"), "--within", "environment.lighting",
                                   "--drop", "0.3", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {r["environment.lighting"] for r in rows} == {"bright", "dim"}
    assert all(r["n_base"] == 5 and r["runs_needed"] > 5 for r in rows)
