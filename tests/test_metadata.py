"""Metadata sources for factors and their merge order."""

from __future__ import annotations

import pytest

from workbench.metadata import (
    FactorLayers,
    PathPattern,
    folder_configs,
    load_factor_file,
    parse_meta,
    sidecar_paths,
)
from workbench.model import ConfigError


def test_parse_meta_values_and_errors():
    assert parse_meta(["hardware.robot=arm-a", "scenario.seed=3", "model.x=a=b"]) == {
        "hardware.robot": "arm-a",
        "scenario.seed": 3,
        "model.x": "a=b",
    }
    with pytest.raises(ConfigError, match="group.key=value"):
        parse_meta(["robot"])
    with pytest.raises(ConfigError, match="must be '<group>.<name>'"):
        parse_meta(["robot=arm-a"])


def test_path_pattern():
    pat = PathPattern("{hardware.robot}/{model.version}/{scenario.seed}.csv")
    assert pat.match("/data/arm-b/policy-v2/17.csv") == {
        "hardware.robot": "arm-b",
        "model.version": "policy-v2",
        "scenario.seed": 17,
    }
    assert pat.match("arm-b/17.csv") is None
    assert pat.match("/data/arm-b/policy-v2/17.txt") is None
    assert PathPattern("run_{scenario.seed}_{environment.lighting}.mcap").match("x/run_3_dim.mcap") == {
        "scenario.seed": 3,
        "environment.lighting": "dim",
    }
    with pytest.raises(ConfigError, match="no {group.key} field"):
        PathPattern("plain.csv")
    with pytest.raises(ConfigError, match="twice"):
        PathPattern("{model.v}/{model.v}")


def test_files_sidecars_and_folder_configs(tmp_path):
    (tmp_path / "workbench.yaml").write_text("factors:\n  environment:\n    site: lab-1\n  hardware.robot: arm-a\n")
    sub = tmp_path / "day1"
    sub.mkdir()
    (sub / "workbench.yaml").write_text("factors:\n  hardware.robot: arm-b\n")
    log = sub / "run.csv"
    log.write_text("time,x\n0,1\n")
    side = sub / "run.csv.meta.json"
    side.write_text('{"scenario": {"seed": 5}}')
    assert sidecar_paths(log) == [side]
    cfgs = folder_configs(log, tmp_path)
    assert cfgs == [tmp_path / "workbench.yaml", sub / "workbench.yaml"]
    assert load_factor_file(cfgs[0], section="factors") == {
        "environment.site": "lab-1",
        "hardware.robot": "arm-a",
    }
    assert load_factor_file(side) == {"scenario.seed": 5}
    bad = tmp_path / "bad.meta.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_factor_file(bad)
    bad.write_text("hardware: {robot: [1, 2]}\n")
    with pytest.raises(ConfigError, match="must be a scalar"):
        load_factor_file(bad)


def test_layers_merge_in_order_and_record_overrides():
    layers = FactorLayers()
    layers.add("meta", {"hardware.robot": "cli"})
    layers.add("embedded", {"hardware.robot": "log", "scenario.seed": 1})
    layers.add("sidecar", {"hardware.robot": "side"})
    merged, origin, overrides = layers.merge()
    assert merged == {"hardware.robot": "cli", "scenario.seed": 1}
    assert origin == {"hardware.robot": "meta", "scenario.seed": "embedded"}
    assert [(o["old_source"], o["new_source"]) for o in overrides] == [
        ("embedded", "sidecar"),
        ("sidecar", "meta"),
    ]
    with pytest.raises(ConfigError, match="unknown metadata source"):
        layers.add("guess", {})
