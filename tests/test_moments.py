"""Moment search: hits equal a brute-force scan, rates per factor match reference intervals, the CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import xarray as xr
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.model import ConfigError
from workbench.moments import count_by, find

NS = 1_000_000_000
RULE = {"name": "high", "signal": {"stream": "sensor", "variable": "x"}, "above": 1.0, "release": 0.2, "min_duration": 0.05}


def _runs(n: int = 12, seed: int = 5) -> list[wb.Run]:
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        rows = int(rng.integers(300, 900))
        t = np.cumsum(rng.integers(5_000_000, 15_000_000, rows)).astype(np.int64)
        x = np.cumsum(rng.normal(0, 0.15, rows))
        x[rng.random(rows) < 0.01] = np.nan
        ds = xr.Dataset({"x": ("time", x)}, coords={"time": t})
        runs.append(wb.Run(info=wb.RunInfo(run_id=f"run{i:02d}", name=f"run{i:02d}", start_ns=int(t[0]), end_ns=int(t[-1]),
                                           environment={"surface": ["steel", "rubber", "foam"][i % 3]}),
                           streams={"sensor": ds}))
    return runs


def _brute(run: wb.Run) -> list[tuple[int, int]]:
    t = run.streams["sensor"]["time"].values
    x = run.streams["sensor"]["x"].values
    out, on, start = [], False, 0
    for ti, xi in zip(t.tolist(), x.tolist(), strict=True):
        if on and xi < RULE["release"]:
            if ti - start >= RULE["min_duration"] * NS:
                out.append((start, ti))
            on = False
        elif not on and xi > RULE["above"]:
            on, start = True, ti
    if on and t[-1] - start >= RULE["min_duration"] * NS:
        out.append((start, int(t[-1])))
    return out


def test_find_returns_the_hits_of_a_brute_force_scan(tmp_path):
    runs = _runs()
    want = [(r.run_id, s, e) for r in runs for s, e in _brute(r)]
    assert len(want) > 10 and len({w[0] for w in want}) > 3
    hits = find(runs, RULE)
    assert list(zip(hits["run_id"], hits["start"], hits["end"], strict=True)) == want
    assert wb.find(runs, RULE).equals(hits)
    first = {r.run_id: r.info.start_ns for r in runs}
    assert np.allclose(hits["start_s"], [(s - first[r]) / NS for r, s, _ in want])
    # the same from a store, on a 2-process pool and serially
    store = wb.open_store(tmp_path / "store")
    for r in runs:
        store._write_run(r.info, r.streams, r.events)
    store.rebuild_catalog()
    for scheduler in ("sync", "processes"):
        got = find(store, RULE, scheduler=scheduler).sort("run_id", "start")
        assert list(zip(got["run_id"], got["start"], got["end"], strict=True)) == want, scheduler
    assert find(store, RULE, limit=3).height == 3
    only = find(store, RULE, where="environment.surface == 'steel'")
    assert set(only["run_id"]) == {w[0] for w in want if int(w[0][3:]) % 3 == 0}


def test_count_by_gives_wilson_and_exact_poisson_intervals():
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    runs = _runs(30, seed=9)
    hits = find(runs, RULE)
    table = count_by(hits, runs, "environment.surface")
    assert table["runs"].sum() == 30 and table["hits"].sum() == hits.height
    for r in table.iter_rows(named=True):
        lo, hi = proportion_confint(r["runs_with_hit"], r["runs"], alpha=0.05, method="wilson")
        assert (r["share_lo"], r["share_hi"]) == pytest.approx((lo, hi), abs=1e-9)
        k, hours = r["hits"], r["hours"]
        plo = stats.chi2.ppf(0.025, 2 * k) / 2 / hours if k else 0.0
        phi = stats.chi2.ppf(0.975, 2 * k + 2) / 2 / hours
        assert (r["per_hour_lo"], r["per_hour"], r["per_hour_hi"]) == pytest.approx((plo, k / hours, phi))
        # the Poisson interval covers at the nominal rate: Garwood's is exact, checked by statsmodels' version
        from statsmodels.stats.rates import confint_poisson

        assert (r["per_hour_lo"], r["per_hour_hi"]) == pytest.approx(tuple(np.array(confint_poisson(k, hours, method="exact-c"))), rel=1e-9)
    with pytest.raises(ConfigError, match=r"no such factor; factors: environment.surface"):
        count_by(hits, pl.DataFrame({"run_id": ["a"], "environment.surface": ["x"]}), "hardware.robot")


@pytest.mark.parametrize(("rule", "message"), [
    ("nosuch", r"is neither a rule name \(no rules configured\) nor a YAML mapping"),
    ({"name": "r", "signal": {"stream": "sensor", "variable": "y"}, "above": 1}, r"has no variable 'y'; variables: x"),
    ({"name": "r", "signal": {"stream": "sensor"}, "above": 1, "colour": 2}, r"colour"),
])
def test_bad_rules_are_refused_with_the_choices(rule, message):
    with pytest.raises(ConfigError, match=message):
        find(_runs(2), rule)


def test_find_command_and_replay_at_a_hit(tmp_path, samples_dir):
    store_dir = tmp_path / "store"
    store = wb.open_store(store_dir)
    files = sorted((samples_dir / "campaign").glob("*_s00.mcap"))[:6]
    store.ingest(files)
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("events:\n  - name: pushing\n    signal: {norm: {stream: ft_sensor, variable: force}}\n"
                   "    above: 3\n    release: 1.5\n    min_duration: 0.2\n")
    res = CliRunner().invoke(cli, ["find", "pushing", "--rules", str(cfg), "--store", str(store_dir), "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    direct = find(store, "pushing", rules=cfg)
    assert len(rows) == direct.height > 0 and [r["start"] for r in rows] == direct["start"].to_list()
    res = CliRunner().invoke(cli, ["find", "pushing", "--rules", str(cfg), "--store", str(store_dir), "--count-by",
                                   "environment.lighting", "--format", "json"])
    table = json.loads(res.output)
    assert sum(r["hits"] for r in table) == direct.height and sum(r["runs"] for r in table) == 6
    res = CliRunner().invoke(cli, ["find", "pushing", "--rules", str(cfg), "--store", str(store_dir), "--limit", "2"])
    assert f"{direct.height} hit(s)" in res.output and "(showing 2)" in res.output and "--at" in res.output
    # the hit opens in replay at its time: the recording's time panel selects it
    hit = direct.row(0, named=True)
    out = tmp_path / "hit.rrd"
    res = CliRunner().invoke(cli, ["view", hit["run_id"], "--store", str(store_dir), "--at", str(hit["start_s"]),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    from rerun.chunk import RrdReader

    reader = RrdReader(out)
    assert sum(c.num_rows for c in reader.stream(store=reader.recordings()[0]) if not c.is_static) > 0
    panel = {}
    for bp in reader.blueprints():
        for chunk in reader.stream(store=bp):
            if chunk.entity_path.endswith("time_panel"):
                rb = chunk.to_record_batch()
                panel.update({n: rb.column(n).to_pylist()[-1] for n in rb.schema.names})
    selection = next(v for k, v in panel.items() if k.endswith("time_selection"))
    flat = selection[0] if isinstance(selection, list) else selection
    lo, hi = (flat["min"], flat["max"]) if isinstance(flat, dict) else tuple(flat)
    at_ns = hit["start_s"] * 1e9
    assert lo == pytest.approx(at_ns - 2e9, abs=1) and hi == pytest.approx(at_ns + 2e9, abs=1)


def test_find_leaves_the_runs_as_they_are_and_keys_hits_by_rule():
    runs = _runs(4)
    runs[0].events = pl.DataFrame({"time": [int(runs[0].info.start_ns)], "kind": ["grasp"], "detail": ["{}"], "origin": ["rule:grasp"]})
    before = [r.events.height for r in runs]
    # the rule makes events of kind 'contact'; a second rule of the same kind is not counted as its hits
    spec = {**RULE, "name": "push", "kind": "contact"}
    other = {"name": "other", "kind": "contact", "signal": {"stream": "sensor", "variable": "x"}, "below": -100}
    from workbench.events import RuleSet

    hits = find(runs, spec, rules=RuleSet.from_dict({"events": [other]}))
    want = [(r.run_id, s, e) for r in runs for s, e in _brute(r)]
    assert list(zip(hits["run_id"], hits["start"], hits["end"], strict=True)) == want and set(hits["rule"]) <= {"push"}
    assert [r.events.height for r in runs] == before


def test_count_by_sorts_numbers_by_value_and_needs_every_duration():
    hits = pl.DataFrame({"run_id": ["a", "b", "b"]})
    cat = pl.DataFrame({"run_id": ["a", "b", "c", "d"], "scenario.seed": [10, 2, 2, 1], "duration_s": [3600.0, 1800.0, 1800.0, None]})
    table = count_by(hits, cat, "scenario.seed")
    assert table["scenario.seed"].to_list() == ["1", "2", "10"]
    assert table["hits"].to_list() == [0, 2, 1] and table["hours"].to_list() == [None, 1.0, 1.0]
    assert table["per_hour"].to_list() == [None, 2.0, 1.0]
    # start / end in ns give the hours too
    cat2 = pl.DataFrame({"run_id": ["a", "b"], "environment.surface": ["steel", "steel"], "start": [0, 0], "end": [3600 * 10**9, 0]})
    assert count_by(hits, cat2, "environment.surface")["hours"].to_list() == [1.0]
