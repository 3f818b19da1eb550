"""The gate at robot-scale n: its family, its error rate and power by simulation, one
method per cell, time to event, missing data and the pairing policy."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

import workbench as wb
from workbench.comparison import VERDICTS, format_p
from workbench.model import ConfigError


def cells_catalog(rng, *, n, cells, base, cand=None, drop_cell=0, unknown=0.0, seeds=True):
    """*cells* cells of *n* runs a side; the candidate's rate is *cand* in *drop_cell*."""
    rows = []
    i = 0
    for c in range(cells):
        for v in ("v1", "v2"):
            p = cand if (cand is not None and v == "v2" and c == drop_cell) else base
            ok = (rng.random(n) < p).astype(float)
            for k in range(n):
                val = None if rng.random() < unknown else float(ok[k])
                rows.append((f"r{i}", f"c{c}", v, k, val))
                i += 1
    df = pl.DataFrame(rows, schema=["run_id", "environment.cell", "model.version", "scenario.seed", "metrics.success"], orient="row")
    return df if seeds else df.drop("scenario.seed")


def gate_status(cat, **kw):
    return wb.compare(cat, within=["environment.cell"], metrics=["success"], attribution_factors=[], **kw).status


def test_false_alarm_rate_under_the_null_is_at_most_alpha():
    # family-wise false alarms over a small grid of the acceptance study (the bench runs
    # the whole grid): unpaired and paired, base rates 0.5-0.95, 1-8 cells, unknowns
    rng = np.random.default_rng(2027)
    reps = 100
    worst = 0.0
    for n, cells, base, unknown, seeds in ((10, 8, 0.5, 0.0, False), (20, 4, 0.8, 0.2, True)):
        alarms = sum(gate_status(cells_catalog(rng, n=n, cells=cells, base=base, unknown=unknown, seeds=seeds)) == "regression"
                     for _ in range(reps))
        worst = max(worst, alarms / reps)
    assert worst <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps), worst


def test_power_at_twenty_runs_beats_the_plain_holm_gate():
    """0.9 → 0.6 in 1 of 8 cells at n=20 unpaired: the gate finds it about half the time;
    Holm over two-sided Fisher tests (the earlier gate) about one time in ten."""
    rng = np.random.default_rng(3)
    reps = 80
    found = old = 0
    for _ in range(reps):
        cat = cells_catalog(rng, n=20, cells=8, base=0.9, cand=0.6, seeds=False)
        res = wb.compare(cat, within=["environment.cell"], metrics=["success"], attribution_factors=[])
        found += res.status == "regression" and res.regressions["environment.cell"].to_list() == ["c0"]
        p = []
        for c in range(8):
            sub = cat.filter(pl.col("environment.cell") == f"c{c}")
            k = [int(sub.filter(pl.col("model.version") == v)["metrics.success"].sum()) for v in ("v1", "v2")]
            p.append(stats.fisher_exact([[k[0], 20 - k[0]], [k[1], 20 - k[1]]]).pvalue)
        old += bool(np.any(np.sort(p) * (8 - np.arange(8)) < 0.05))  # Holm rejects at least the smallest
    assert found / reps >= 0.4, found / reps
    assert found >= 2 * old, (found, old)


def test_secondary_metrics_never_change_the_gate():
    rng = np.random.default_rng(5)
    cat = cells_catalog(rng, n=20, cells=4, base=0.95, cand=0.3, seeds=False)
    cat = cat.with_columns(pl.lit(0.0).alias("metrics.recoveries"), pl.Series("metrics.path_length", rng.normal(3, 1, cat.height)))
    base = wb.compare(cat, within=["environment.cell"], metrics=["success"], attribution_factors=[])
    more = wb.compare(cat, within=["environment.cell"], metrics=["success", "recoveries", "path_length"], attribution_factors=[])
    assert base.status == more.status == "regression"
    prim = lambda r: r.gate.select("environment.cell", "p_adjusted", "verdict").sort("environment.cell")
    assert prim(base).equals(prim(more))
    assert set(more.table.filter(pl.col("metric") != "success")["role"]) == {"secondary"}
    with pytest.raises(ConfigError, match="primary metric 'speed' is not among the compared metrics"):
        wb.compare(cat, metrics=["success"], primary=["speed"])


def test_interval_and_verdict_never_disagree():
    rng = np.random.default_rng(8)
    for _ in range(30):
        cat = cells_catalog(rng, n=int(rng.integers(5, 30)), cells=3, base=0.85, cand=float(rng.uniform(0.3, 0.9)),
                            seeds=bool(rng.integers(2)))
        t = wb.compare(cat, within=["environment.cell"], metrics=["success"], attribution_factors=[]).table
        for r in t.iter_rows(named=True):
            assert r["verdict"] in VERDICTS
            if r["verdict"] == "not measured" or not math.isfinite(r["critical"] or math.nan):
                continue
            # the interval inverts the harm test at the hypothesis' critical level
            assert (r["verdict"] == "regression") == (r["difference_hi"] < 0), r
            assert (r["p_value"] <= r["critical"]) == (r["verdict"] == "regression"), r


def test_time_to_success_censors_failures():
    """As fast when it succeeds, but failing half of the runs: slower, not faster."""
    rng = np.random.default_rng(2)
    n = 20
    rows = []
    for v in ("v1", "v2"):
        for k in range(n):
            fail = v == "v2" and k % 2 == 0
            t = 4.0 + rng.random() * (1.0 if v == "v2" else 2.0)  # the candidate's successes are even quicker
            rows.append({"run_id": f"{v}-{k}", "model.version": v, "metrics.success": 0.0 if fail else 1.0,
                         "metrics.time_to_success": None if fail else t, "start_ns": 0, "end_ns": int(30e9)})
    cat = pl.DataFrame(rows)
    res = wb.compare(cat, metrics=["success", "time_to_success"], attribution_factors=[])
    row = res.table.filter(pl.col("metric") == "time_to_success").row(0, named=True)
    assert row["kind"] == "time_to_event" and row["test"] == "rmst"
    assert row["n_candidate"] == n  # failures stay in, censored at 30 s
    # RMST up to the shorter arm's longest time (the baseline's ~6 s): the candidate's
    # failures keep its curve at ≥ 0.5 there
    assert row["difference"] > 0 and row["verdict"] == "regression"
    # the naive mean over successes alone would call it an improvement
    ok = cat.filter(pl.col("metrics.success") == 1)
    assert ok.filter(pl.col("model.version") == "v2")["metrics.time_to_success"].mean() < ok.filter(pl.col("model.version") == "v1")["metrics.time_to_success"].mean()


def test_missing_outcomes_are_counted_bounded_and_flagged():
    rows = []
    for v, ok, unknown in (("v1", 18, 0), ("v2", 9, 8)):
        for k in range(20):
            val = None if k < unknown else float(k - unknown < ok)
            rows.append({"run_id": f"{v}-{k}", "model.version": v, "metrics.success": val})
    res = wb.compare(pl.DataFrame(rows), metrics=["success"], attribution_factors=[])
    r = res.table.row(0, named=True)
    assert (r["n_baseline"], r["n_candidate"], r["n_unknown_baseline"], r["n_unknown_candidate"]) == (20, 12, 0, 8)
    assert sorted(r["unknown_candidate"]) == sorted(f"v2-{k}" for k in range(8))
    # worst case: every unknown a failure (9/20); best: a success (17/20)
    assert r["difference_worst"] == pytest.approx(9 / 20 - 18 / 20) and r["difference_best"] == pytest.approx(17 / 20 - 18 / 20)
    assert r["missing_differs"] is True
    out = res.to_dict()["cells"][0]["unknown"]
    assert out["candidate"] == 8 and out["differs"] is True


def test_min_grade_keeps_ungraded_runs_and_lists_every_exclusion():
    rows = [{"run_id": f"r{i}", "model.version": "v1" if i < 20 else "v2", "metrics.success": float(i % 10 < 6),
             "quality.grade": ["A", None, "D"][i % 3]} for i in range(40)]
    cat = pl.DataFrame(rows)
    res = wb.compare(cat, metrics=["success"], min_grade="B", attribution_factors=[])
    graded_d = cat.filter(pl.col("quality.grade") == "D")["run_id"].to_list()
    assert sorted(res.excluded) == sorted(graded_d)
    assert all(res.exclusions[r] == "grade D below B" for r in graded_d)
    r = res.table.row(0, named=True)
    assert r["n_baseline"] + r["n_candidate"] == 40 - len(graded_d)  # ungraded runs stay
    assert r["n_unknown_baseline"] + r["n_unknown_candidate"] == len(graded_d)
    strict = wb.compare(cat, metrics=["success"], min_grade="B", drop_ungraded=True, attribution_factors=[])
    assert len(strict.excluded) == 40 - cat.filter(pl.col("quality.grade") == "A").height
    assert "ungraded (drop_ungraded)" in set(strict.exclusions.values())


def test_one_rerun_keeps_the_cell_paired():
    rng = np.random.default_rng(4)
    n = 20
    rows = []
    for v in ("v1", "v2"):
        for k in range(n):
            rows.append({"run_id": f"{v}-{k}", "model.version": v, "scenario.seed": k, "start_ns": k,
                         "metrics.success": float(rng.random() < (0.9 if v == "v1" else 0.5))})
    rows.append({"run_id": "v2-rerun", "model.version": "v2", "scenario.seed": 3, "start_ns": 999, "metrics.success": 1.0})
    cat = pl.DataFrame(rows)
    r = wb.compare(cat, metrics=["success"], attribution_factors=[]).table.row(0, named=True)
    assert r["paired"] and r["n_pairs"] == n and r["test"] == "mcnemar_exact"
    assert "1 replicate run(s) combined (first)" in r["pairing"]
    r2 = wb.compare(cat, metrics=["success"], replicates="majority", attribution_factors=[]).table.row(0, named=True)
    assert r2["paired"] and "(majority)" in r2["pairing"]
    unpaired = wb.compare(cat, metrics=["success"], paired=False, attribution_factors=[]).table.row(0, named=True)
    assert not unpaired["paired"] and unpaired["test"] == "fisher_exact_conditional" and unpaired["n_candidate"] == n + 1
    with pytest.raises(ConfigError, match="pair_by 'scenario.colour' is not a factor column"):
        wb.compare(cat, metrics=["success"], pair_by="scenario.colour")
    with pytest.raises(ConfigError, match="replicates 'median' is not valid"):
        wb.compare(cat, metrics=["success"], replicates="median")


def test_non_inferiority_margin_and_nan_outcomes():
    rows = [{"run_id": f"{v}-{k}", "model.version": v, "metrics.success": float(k < 38)} for v in ("v1", "v2") for k in range(40)]
    rows[0]["metrics.success"] = float("nan")  # a NaN outcome is unknown, not an error
    cat = pl.DataFrame(rows)
    plain = wb.compare(cat, metrics=["success"], attribution_factors=[]).table.row(0, named=True)
    assert plain["verdict"] in {"no_change", "undecided"} and plain["n_unknown_baseline"] == 1
    ni = wb.compare(cat, metrics=["success"], margin=0.15, attribution_factors=[])
    row = ni.table.row(0, named=True)
    assert row["verdict"] == "non_inferior" and row["p_ni"] < 0.05 and ni.status == "pass"


def test_format_p_never_prints_zero():
    assert format_p(0.0) == "<1e-4" and format_p(1e-300) == "<1e-4"
    assert format_p(0.04999) == "0.05" and format_p(float("nan")) == "–"


def test_sequential_gate_is_anytime_valid_and_counts_looks(tmp_path):
    """Re-checking after every 5 runs and stopping at the first alarm: the fixed-n gate's
    false alarms grow with the looks, the sequential gate's stay under α."""
    rng = np.random.default_rng(11)
    reps, looks, n_max = 40, 6, 30
    fixed = seq = 0
    for _ in range(reps):
        full = cells_catalog(rng, n=n_max, cells=1, base=0.8)
        hit_f = hit_s = False
        for k in range(1, looks + 1):
            part = full.filter(pl.col("scenario.seed") < k * n_max // looks)
            hit_f |= gate_status(part) == "regression"
            hit_s |= gate_status(part, sequential=True) == "regression"
        fixed += hit_f
        seq += hit_s
    assert seq / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps), seq
    assert seq <= fixed
    # a real drop is found, and with a store each look is kept and numbered
    cat = cells_catalog(np.random.default_rng(1), n=40, cells=1, base=0.95, cand=0.4)
    res = wb.compare(cat, within=["environment.cell"], metrics=["success"], sequential=True, attribution_factors=[])
    row = res.table.row(0, named=True)
    assert row["test"] == "e_process_paired" and row["verdict"] == "regression" and res.look is None
    from workbench.store import open_store

    store = open_store(tmp_path / "s")
    assert store.record_look("0123456789abcdef", {"n_runs": 10})[-1] == {"n_runs": 10}
    assert len(store.record_look("0123456789abcdef", {"n_runs": 20})) == 2
    with pytest.raises(ConfigError, match="must be hexadecimal"):
        store.record_look("../x", {})


def test_success_within_a_time_is_a_rate():
    rows = []
    for v, times in (("v1", [3.0] * 18 + [None] * 2), ("v2", [3.0] * 8 + [12.0] * 10 + [None] * 2)):
        for k, t in enumerate(times):
            rows.append({"run_id": f"{v}-{k}", "model.version": v, "metrics.success": 0.0 if t is None else 1.0,
                         "metrics.time_to_success": t})
    rows[0]["metrics.success"] = None  # an unknown outcome stays unknown
    cat = pl.DataFrame(rows)
    res = wb.compare(cat, metrics=["success_within:10"], attribution_factors=[])
    r = res.table.row(0, named=True)
    assert r["kind"] == "rate" and r["test"] == "fisher_exact_conditional" and res.primary == ["success_within:10"]
    assert (r["n_baseline"], r["n_unknown_baseline"]) == (19, 1)
    assert r["baseline"] == pytest.approx(17 / 19) and r["candidate"] == pytest.approx(8 / 20)
    assert r["verdict"] == "regression"
    # success alone sees no difference (18 vs 18 of 20)
    assert wb.compare(cat, metrics=["success"], attribution_factors=[]).table["verdict"][0] != "regression"
    with pytest.raises(ConfigError, match="success_within:T with T a positive number"):
        wb.compare(cat, metrics=["success_within:soon"])


def test_the_family_step_is_score_ordered_for_rates_and_discrete_holm_otherwise():
    """Eight cells, the candidate fell from 18/20 to 12/20 in one: one p-value threshold
    for all cells (discrete Holm) misses it, the score order finds it; a family that also
    holds a continuous primary metric falls back to discrete Holm."""
    counts = [(18, 12), (18, 17), (19, 18), (17, 18), (18, 16), (20, 19), (16, 17), (19, 19)]
    rows = []
    for c, (kb, kc) in enumerate(counts):
        for v, k in (("v1", kb), ("v2", kc)):
            rows += [(f"{c}-{v}-{i}", f"c{c}", v, float(i < k), float(10 + i % 7)) for i in range(20)]
    cat = pl.DataFrame(rows, schema=["run_id", "environment.cell", "model.version", "metrics.success", "metrics.time"],
                       orient="row")
    res = wb.compare(cat, within=["environment.cell"], metrics=["success"], attribution_factors=[])
    assert res.multiplicity == {"primary": "score_ordered_holm"}
    assert res.status == "regression" and res.regressions["environment.cell"].to_list() == ["c0"]
    row = res.gate.filter(pl.col("environment.cell") == "c0").row(0, named=True)
    assert row["p_value"] == pytest.approx(0.0324, abs=1e-4) and row["p_adjusted"] <= 0.05
    assert row["difference_hi"] < 0  # the interval at the cell's critical level agrees
    assert res.to_dict()["multiplicity"] == {"primary": "score_ordered_holm"}
    both = wb.compare(cat, within=["environment.cell"], metrics=["success", "time"], primary=["success", "time"],
                      attribution_factors=[])
    assert both.multiplicity["primary"] == "discrete_holm"
    assert both.status != "regression"  # discrete Holm cannot reach c0 with 16 hypotheses
