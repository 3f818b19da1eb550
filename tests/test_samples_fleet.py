"""The fleet sample campaign: planted policies, an outlier arm and a sim-to-real gap, found again."""

from __future__ import annotations

import json

import polars as pl
import pytest

import workbench as wb
from workbench.demo import _fleet_tour
from workbench.model import ConfigError
from workbench.samples.fleet import FLEET_DIR, generate_fleet


def test_the_fleet_campaign_plants_what_the_fleet_views_find(tmp_path):
    lines: list[str] = []
    _fleet_tour(str(tmp_path / "store"), tmp_path / "reports", 8, lines.append)
    truth = json.loads((tmp_path / "reports" / "fleet-samples" / FLEET_DIR / "truth.json").read_text())
    assert truth["outlier_unit"] == "arm-5" and truth["sim_to_real_gap_policy"] == "ckpt-3"
    assert len(truth["runs"]) == 4 * (40 + 25)
    store = wb.open_store(tmp_path / "store-fleet", create=False)
    cat = store.runs()
    assert cat.height == 260
    assert sorted(cat["environment.domain"].unique().to_list()) == ["real", "sim"]
    # every run's outcome in the store is the one the generator recorded
    outcome = {r["name"]: r["outcome"] for r in truth["runs"]}
    assert all(outcome[n] == o for n, o in zip(cat["name"], cat["outcome"], strict=True))
    # the outlier arm is found among the real runs, and only it
    real = cat.filter(pl.col("environment.domain") == "real")
    units = wb.variation(real, groups="hardware.unit")
    assert units.components["outliers"].to_list() == [["arm-5"]]
    # sim flatters ckpt-3: a pair it orders the wrong way involves it
    sr = wb.simreal(cat)
    assert sr.misranked.height >= 1 and all("ckpt-3" in (a, b) for a, b in zip(sr.misranked["a"], sr.misranked["b"], strict=True))
    assert (sr.table["n_paired"] == 25).all()
    # the demo step says so
    text = "\n".join(lines)
    assert "260 runs; planted: arm-5 fails more, sim flatters ckpt-3" in text
    assert "outlying: arm-5" in text and "mis-ranked by sim: ckpt-2 > ckpt-3 in reality" in text


def test_fleet_generator_refuses_impossible_campaigns(tmp_path):
    with pytest.raises(ConfigError, match="policies must be between 2 and 6"):
        generate_fleet(tmp_path, policies=9)
    with pytest.raises(ConfigError, match="real_seeds ≤ sim_seeds"):
        generate_fleet(tmp_path, sim_seeds=3, real_seeds=5)
