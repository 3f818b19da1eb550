"""Statistics core: intervals against scipy, the gate's false-alarm rate, attribution."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

import workbench as wb
from workbench.comparison import (
    NOT_MEASURED,
    VERDICTS,
    bootstrap_mean,
    cliffs_delta,
    ensure_measured,
    holm,
    newcombe_interval,
    wilson_interval,
)
from workbench.model import ConfigError


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (17, 40), (250, 1000)])
def test_wilson_matches_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)


def test_newcombe_reference_values():
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 → difference 0.2, CI 0.0524 – 0.3339
    lo, hi = newcombe_interval(48, 80, 56, 70)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)
    assert all(math.isnan(v) for v in newcombe_interval(0, 0, 1, 2))


def test_bootstrap_matches_scipy_percentile():
    x = np.random.default_rng(7).gamma(2.0, 1.5, size=60)
    reps = bootstrap_mean(x, n_boot=20000, rng=np.random.default_rng(1))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    ref = stats.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", random_state=2).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.03) and hi == pytest.approx(ref.high, abs=0.03)


def test_cliffs_delta_and_holm():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(0.5, size=35)
    brute = np.mean([np.sign(b - a) for a in x for b in y])
    assert cliffs_delta(x, y) == pytest.approx(brute)
    assert cliffs_delta(np.array([1.0, 1.0]), np.array([1.0])) == 0.0
    p = np.array([0.01, 0.02, 0.03, 0.5, np.nan])
    adj = holm(p)
    assert adj[:4].tolist() == pytest.approx([0.04, 0.06, 0.06, 0.5]) and np.isnan(adj[4])


def campaign(rng, *, n=20, p_success=(0.8, 0.8), shift=0.0, cells=(("arm-a", "bright"), ("arm-a", "dim"), ("arm-b", "bright"), ("arm-b", "dim"))):
    rows = []
    i = 0
    for robot, light in cells:
        for version, p, sh in (("v1", p_success[0], 0.0), ("v2", p_success[1], shift)):
            for seed in range(n):
                rows.append(
                    {
                        "run_id": f"r{i}",
                        "hardware.robot": robot,
                        "environment.lighting": light,
                        "model.version": version,
                        "scenario.seed": seed,
                        "metrics.success": float(rng.random() < p),
                        "metrics.time_to_success": 5.0 + sh + rng.normal(0, 0.5),
                    }
                )
                i += 1
    return pl.DataFrame(rows)


def test_null_campaigns_false_alarm_rate_is_nominal():
    """100 campaigns with no real difference: the gate fails in at most 5 % (+ sampling margin);
    tests/test_compare_gate.py and bench/stats_power.py cover more of the null grid."""
    rng = np.random.default_rng(2026)
    alarms = 0
    n_campaigns = 100
    for _ in range(n_campaigns):
        res = wb.compare(
            campaign(rng),
            by="model.version",
            within=["hardware.robot", "environment.lighting"],
            metrics=["success", "time_to_success"],
            paired=False,
            n_boot=400,
            attribution_factors=[],
        )
        alarms += not res.passed
    rate = alarms / n_campaigns
    # 5 % nominal, plus 2 standard errors of a binomial proportion at 100 draws
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n_campaigns), rate


def test_planted_effects_are_found_and_traceable():
    rng = np.random.default_rng(5)
    cat = campaign(rng, n=30, p_success=(0.9, 0.9), shift=-1.0)
    # plant a success drop for v2 on arm-b in dim light only
    drop = (pl.col("hardware.robot") == "arm-b") & (pl.col("environment.lighting") == "dim") & (pl.col("model.version") == "v2")
    cat = cat.with_columns(
        pl.when(drop).then(pl.Series((rng.random(cat.height) < 0.2).astype(float))).otherwise(pl.col("metrics.success")).alias("metrics.success")
    )
    res = wb.compare(cat, by="model.version", within=["hardware.robot", "environment.lighting"], metrics=["success", "time_to_success"])
    t = res.table
    bad = t.filter((pl.col("metric") == "success") & (pl.col("verdict") == "regression"))
    assert bad.select("hardware.robot", "environment.lighting").rows() == [("arm-b", "dim")]
    row = bad.row(0, named=True)
    assert row["paired"] and row["test"] == "mcnemar_exact" and row["n_pairs"] == 30
    assert row["pairing"].startswith("paired: 30 pairs") and row["role"] == "primary"
    assert row["difference_hi"] < 0 and row["difference_lo"] < row["difference"] < row["difference_hi"]
    assert set(row["runs_candidate"]) == set(cat.filter(drop)["run_id"].to_list())
    assert set(t.filter(pl.col("metric") == "time_to_success")["verdict"]) == {"improvement"}
    assert not res.passed
    out = res.to_dict()
    cell = next(c for c in out["cells"] if c["verdict"] == "regression")
    assert cell["factors"] == {"hardware.robot": "arm-b", "environment.lighting": "dim"}
    assert set(cell) >= {"baseline", "candidate", "difference", "p_value", "p_adjusted", "runs", "verdict"}
    assert len(cell["runs"]["baseline"]) == 30
    top = res.attribution.filter(pl.col("metric") == "time_to_success").row(0, named=True)
    assert top["term"] == "model.version" and top["share"] > 0.3


def test_no_change_when_the_interval_is_tight():
    rng = np.random.default_rng(9)
    cat = campaign(rng, n=200, p_success=(0.5, 0.5), cells=(("arm-a", "bright"),))
    res = wb.compare(cat, by="model.version", metrics=["time_to_success"], equivalence=0.05)
    assert res.table["verdict"].to_list() == ["no_change"]


def test_min_grade_and_errors():
    rng = np.random.default_rng(1)
    cat = campaign(rng, n=5).with_columns(pl.Series("quality.grade", ["A", "D"] * 20))
    res = wb.compare(cat, by="model.version", metrics=["success"], min_grade="B", attribution_factors=[])
    assert res.table["n_baseline"][0] + res.table["n_candidate"][0] == 20 and len(res.excluded) == 20
    assert set(res.exclusions.values()) == {"grade D below B"}
    # the excluded runs are counted as unknown in their cell, on their side
    assert res.table["n_unknown_baseline"][0] + res.table["n_unknown_candidate"][0] == 20
    with pytest.raises(ConfigError, match="no factor column 'hardware.colour'"):
        wb.compare(cat, within=["hardware.colour"])
    with pytest.raises(ConfigError, match="no metric 'speed'"):
        wb.compare(cat, metrics=["speed"])
    with pytest.raises(ConfigError, match="baseline 'v9' is not a value"):
        wb.compare(cat, baseline="v9", candidate="v2", metrics=["success"])
    with pytest.raises(ConfigError, match="min_grade needs data grades"):
        wb.compare(cat.drop("quality.grade"), min_grade="B")


def test_attribution_matches_a_fit_on_every_run():
    """The grouped fits (counts and sums per level combination) equal fits on the runs."""
    from workbench.comparison import _codes, _design, attribution

    rng = np.random.default_rng(11)
    n = 600
    cat = pl.DataFrame({
        "hardware.robot": rng.choice(["arm-a", "arm-b", "arm-c"], n),
        "environment.lighting": rng.choice(["bright", "dim", None], n),
        "model.version": rng.choice(["v1", "v2"], n),
    })
    eff = (cat["hardware.robot"] == "arm-b").to_numpy() * 0.8 + (cat["model.version"] == "v2").to_numpy() * 0.5
    cat = cat.with_columns(
        pl.Series("metrics.time_to_success", 5 + eff + rng.normal(0, 1, n)),
        pl.Series("metrics.success", (rng.random(n) < 1 / (1 + np.exp(-(eff - 0.3)))).astype(float)),
    )
    factors = ["model.version", "hardware.robot", "environment.lighting"]
    got = attribution(cat, factors=factors, metrics={"time_to_success": "metrics.time_to_success", "success": "metrics.success"})
    codes = _codes(cat, factors)

    def rss(terms, y):
        X = _design(codes, n, terms)
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        return float(np.sum((y - X @ beta) ** 2))

    def deviance(terms, y, ridge=1e-4):
        X = _design(codes, n, terms)
        beta = np.zeros(X.shape[1])
        for _ in range(50):
            mu = 1 / (1 + np.exp(-np.clip(X @ beta, -30, 30)))
            w = np.clip(mu * (1 - mu), 1e-9, None)
            step = np.linalg.solve(X.T @ (X * w[:, None]) + ridge * np.eye(X.shape[1]), X.T @ (y - mu) - ridge * beta)
            beta += step
            if np.max(np.abs(step)) < 1e-8:
                break
        mu = np.clip(1 / (1 + np.exp(-np.clip(X @ beta, -30, 30))), 1e-12, 1 - 1e-12)
        return float(-2 * np.sum(y * np.log(mu) + (1 - y) * np.log(1 - mu)))

    for metric, fit in (("time_to_success", rss), ("success", deviance)):
        y = cat[f"metrics.{metric}"].to_numpy()
        null = fit([], y)
        rows = {r["term"]: r["share"] for r in got.filter(pl.col("metric") == metric).iter_rows(named=True)}
        assert len(rows) == 6
        for f in factors:
            assert rows[f] == pytest.approx(max(0.0, (null - fit([(f,)], y)) / null), abs=1e-9)
        f1, f2 = "hardware.robot", "environment.lighting"
        inter = (fit([(f1,), (f2,)], y) - fit([(f1,), (f2,), (f1, f2)], y)) / null
        assert rows[f"{f1} × {f2}"] == pytest.approx(max(0.0, inter), abs=1e-9)


def test_compare_is_deterministic_for_a_seed():
    cat = campaign(np.random.default_rng(4), n=60, shift=0.2)
    kw = {"by": "model.version", "within": ["hardware.robot", "environment.lighting"], "metrics": ["success", "time_to_success"], "attribution_factors": []}
    a, b = wb.compare(cat, seed=3, **kw).table, wb.compare(cat, seed=3, **kw).table
    assert a.equals(b)
    assert a.equals(wb.compare(cat, seed=4, **kw).table)  # nothing is resampled any more


def test_a_side_without_values_is_not_measured_never_undecided():
    rng = np.random.default_rng(4)
    cat = campaign(rng, n=10)
    arm_b = pl.col("hardware.robot") == "arm-b"
    cat = cat.with_columns(pl.when(arm_b).then(None).otherwise(pl.col("metrics.success")).alias("metrics.success"))
    res = wb.compare(cat, by="model.version", within=["hardware.robot", "environment.lighting"],
                     metrics=["success", "time_to_success"], attribution_factors=[])
    t = res.table
    unmeasured = t.filter(pl.col("verdict") == "not measured")
    # time to success is time to event: without an outcome it is not measured either
    assert sorted(unmeasured.select("hardware.robot", "metric").unique().rows()) == [("arm-b", "success"), ("arm-b", "time_to_success")]
    assert unmeasured.height == 4 and (unmeasured["n_baseline"] + unmeasured["n_candidate"]).to_list() == [0, 0, 0, 0]
    assert unmeasured["p_adjusted"].is_null().all() or unmeasured["p_adjusted"].is_nan().all()  # not in any family
    assert (unmeasured["n_unknown_baseline"] + unmeasured["n_unknown_candidate"]).to_list() == [20, 20, 20, 20]
    assert "not measured" not in t.filter(pl.col("hardware.robot") == "arm-a")["verdict"].to_list()
    assert res.n_measured == 2 and res.not_measured.height == 2  # the gate's family: success
    assert res.n_runs == 80 and res.missing == {"success": 40, "time_to_success": 0}
    assert res.missing_text().startswith("40 of 80 runs have no outcome (metrics.success is null); define one with")
    assert res.status in {"pass", "undecided"}
    out = res.to_dict()
    assert out["measured"] == 2 and out["not_measured"] == 2 and out["missing"]["success"] == 40
    cell = next(c for c in out["cells"] if c["verdict"] == "not measured")
    assert cell["baseline"] == {"n": 0, "value": None, "ci": [None, None]} and cell["p_adjusted"] is None
    # the verdict is one of the documented ones
    assert set(t["verdict"]) <= set(VERDICTS) and NOT_MEASURED in VERDICTS


def test_nothing_measured_is_a_status_not_a_pass():
    rng = np.random.default_rng(6)
    cat = campaign(rng, n=5).with_columns(pl.lit(None, dtype=pl.Float64).alias("metrics.success"))
    res = wb.compare(cat, by="model.version", metrics=["success"], attribution_factors=[])
    assert res.table["verdict"].to_list() == ["not measured"]
    assert res.passed and res.n_measured == 0 and res.status == "not measured"
    assert res.missing_text().startswith("40 of 40 runs have no outcome (metrics.success is null)")
    assert res.to_dict()["status"] == "not measured"
    # a metric other than the outcome names itself and the command that shows why
    cat = cat.with_columns(pl.lit(None, dtype=pl.Float64).alias("metrics.jerk_rms"))
    res = wb.compare(cat, by="model.version", metrics=["jerk_rms"], attribution_factors=[])
    assert res.missing_text() == ("40 of 40 runs have no metrics.jerk_rms; "
                                  "`workbench metrics --metric jerk --format json` shows each run's value and error")


def test_compare_on_a_store_computes_what_it_lacks(tmp_path, samples_dir):
    files = sorted((samples_dir / "campaign").glob("arm-a_bright_rubber_policy-v*_s0[0-3].mcap"))
    store = wb.open_store(tmp_path / "store")
    assert len(store.ingest(files).ingested) == 8
    assert not [c for c in store.runs().columns if c.startswith(("metrics.", "quality."))]
    res = wb.compare(store, by="model.version", metrics=["success", "jerk_rms"], min_grade="C", attribution_factors=[])
    cat = store.runs()
    assert {"metrics.success", "metrics.jerk_rms", "quality.grade"} <= set(cat.columns)
    assert "metrics.path_length" not in cat.columns  # only what the comparison reads
    assert res.n_measured == 1 and res.primary == ["success"]  # jerk_rms is secondary
    measured = res.table.filter(pl.col("verdict") != "not measured")
    assert measured.height == 2 and (measured["n_baseline"] + measured["n_candidate"] + len(res.excluded)).to_list() == [8, 8]
    assert ensure_measured(store, metrics=["success", "jerk_rms"], grades=True) == {}


def test_reproducibility_treats_episodes_and_demos_as_replicates():
    import numpy as np

    from workbench.comparison import reproducibility

    rng = np.random.default_rng(4)
    rows = [{"run_id": f"r{i}", "hardware.robot": robot, "scenario.episode": i, "metrics.jerk_rms": float(rng.normal(10 if robot == "a" else 20, 1))}
            for i, robot in enumerate(["a"] * 6 + ["b"] * 6)]
    table = reproducibility(pl.DataFrame(rows), metrics={"jerk": "metrics.jerk_rms"})
    row = table.row(0, named=True)
    assert row["n_configs"] == 2  # one configuration per robot, the episodes its replicates
    within = np.array([r["metrics.jerk_rms"] for r in rows]).reshape(2, 6)
    assert row["pooled_sd"] == pytest.approx(np.sqrt(within.var(axis=1, ddof=1).mean()))
    assert row["share_within"] < 0.1
