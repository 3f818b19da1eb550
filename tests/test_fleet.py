"""Rankings, unit variation and sim vs real on catalogs with planted effects, and their commands."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.comparison import holm
from workbench.model import ConfigError


def _ranked_catalog(rates: dict[str, float], seeds: int, rng: np.random.Generator, *, cells: int = 1) -> pl.DataFrame:
    rows = []
    for c in range(cells):
        latent = rng.random(seeds)  # a seed is easy or hard for every variant
        for v, p in rates.items():
            ok = (np.clip(latent + rng.normal(0, 0.1, seeds), 0, 1) < p).astype(float)
            rows += [{"run_id": f"{c}-{v}-{s}", "model.version": v, "environment.cell": f"c{c}", "scenario.seed": s,
                      "metrics.success": ok[s]} for s in range(seeds)]
    return pl.DataFrame(rows)


def test_rank_recovers_a_planted_order_with_letters_and_rank_probabilities():
    rng = np.random.default_rng(11)
    rates = {"ckpt-1": 0.3, "ckpt-2": 0.5, "ckpt-3": 0.55, "ckpt-4": 0.9, "ckpt-5": 0.92}
    cat = _ranked_catalog(rates, 60, rng)
    res = wb.rank(cat, n_boot=200)
    t = res.table
    assert t["model.version"].to_list()[:2] in (["ckpt-5", "ckpt-4"], ["ckpt-4", "ckpt-5"])
    assert t["model.version"].to_list()[-1] == "ckpt-1"
    assert t["n"].to_list() == [60] * 5
    # rank probabilities: a distribution per variant and per rank
    probs = res.rank_probs.pivot(on="rank", index="model.version", values="probability")
    np.testing.assert_allclose(probs.drop("model.version").to_numpy().sum(axis=1), 1.0)
    np.testing.assert_allclose(probs.drop("model.version").to_numpy().sum(axis=0), 1.0)
    assert t.filter(pl.col("model.version") == "ckpt-1")["p_best"].item() == 0.0
    # pairs: 10, Holm-adjusted two-sided exact p; letters agree with them
    assert res.pairs.height == 10
    np.testing.assert_allclose(res.pairs["p_adj"].to_numpy(), holm(res.pairs["p"].to_numpy()))
    letters = dict(zip(t["model.version"], t["letters"], strict=True))
    for a, b, diff in res.pairs.select("a", "b", "different").iter_rows():
        assert (not set(letters[a]) & set(letters[b])) == diff
    assert set(letters["ckpt-4"]) & set(letters["ckpt-5"]) and not set(letters["ckpt-1"]) & set(letters["ckpt-5"])
    assert "P(" in res.summary() and "paired by scenario.seed" in res.summary()


def test_rank_two_sided_pair_p_is_fisher_exact():
    from scipy import stats

    cat = _ranked_catalog({"a": 0.9, "b": 0.5}, 20, np.random.default_rng(2))
    res = wb.rank(cat, n_boot=0)
    ka = int(cat.filter(pl.col("model.version") == "a")["metrics.success"].sum())
    kb = int(cat.filter(pl.col("model.version") == "b")["metrics.success"].sum())
    lo = stats.fisher_exact([[ka, 20 - ka], [kb, 20 - kb]], alternative="less").pvalue
    hi = stats.fisher_exact([[ka, 20 - ka], [kb, 20 - kb]], alternative="greater").pvalue
    assert res.pairs["p"].item() == pytest.approx(min(1, 2 * min(lo, hi)))


def test_rank_from_explicit_preferences_and_per_cell():
    cat = _ranked_catalog({"a": 0.5, "b": 0.5, "c": 0.5}, 10, np.random.default_rng(3), cells=2)
    prefs = pl.DataFrame({"a": ["a"] * 30 + ["b"] * 30, "b": ["b"] * 30 + ["c"] * 30,
                          "winner": ["a"] * 27 + ["tie"] * 3 + ["b"] * 25 + ["c"] * 5})
    res = wb.rank(cat, within="environment.cell", preferences=prefs, n_boot=100)
    for _cell, part in res.table.group_by("environment.cell"):
        strength = dict(zip(part["model.version"], part["strength"], strict=True))
        assert strength["a"] > strength["b"] > strength["c"]
    assert res.table.height == 6 and set(res.table["environment.cell"]) == {"c0", "c1"}
    with pytest.raises(ConfigError, match="winner 'x' is neither"):
        wb.rank(cat, preferences=prefs.with_columns(pl.lit("x").alias("winner")), n_boot=0)


def test_rank_errors_name_the_choices():
    cat = _ranked_catalog({"a": 0.5}, 5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="2 to 20 values of 'model.version'"):
        wb.rank(cat, n_boot=0)
    with pytest.raises(ConfigError, match="no factor column 'hardware.unit'; factors: environment.cell, model.version, scenario.seed"):
        wb.rank(cat, by="hardware.unit")
    with pytest.raises(ConfigError, match="no metric 'speed'"):
        wb.rank(cat, metric="speed")


def _units_catalog(rng: np.random.Generator, rates: list[float], runs: int) -> pl.DataFrame:
    rows = []
    for u, p in enumerate(rates):
        ok = rng.random(runs) < p
        dur = rng.normal(10 + (3 if u == 0 else 0), 1, runs)
        rows += [{"run_id": f"u{u}-{s}", "hardware.unit": f"arm-{u}", "model.version": "v1", "metrics.success": float(ok[s]),
                  "metrics.duration_s": float(dur[s])} for s in range(runs)]
    return pl.DataFrame(rows)


def test_units_flag_an_outlying_arm_and_estimate_the_between_unit_share():
    rng = np.random.default_rng(7)
    cat = _units_catalog(rng, [0.3, 0.85, 0.85, 0.85, 0.85, 0.85], 30)
    res = wb.variation(cat, groups=["hardware.unit"], within=["model.version"])
    comp = res.components.row(0, named=True)
    assert comp["overdispersed"] and comp["outliers"] == ["arm-0"] and comp["n_units"] == 6 and comp["n_runs"] == 180
    assert 0 <= comp["icc_lo"] <= comp["icc"] <= comp["icc_hi"] < 1 and comp["icc"] > 0.1
    arm0 = res.units.filter(pl.col("unit") == "arm-0").row(0, named=True)
    assert arm0["flag"] and arm0["raw"] < arm0["shrunk"] < 0.85  # pulled toward the fleet
    assert len(arm0["run_ids"]) == 30
    assert "outlying: arm-0" in res.summary()
    # identical arms: no alarm in most campaigns
    alarms = sum(wb.variation(_units_catalog(np.random.default_rng(s), [0.7] * 6, 20))
                 .components["overdispersed"].item() for s in range(60))
    assert alarms <= 8


def test_units_mixed_model_matches_statsmodels_for_a_number():
    from statsmodels.regression.mixed_linear_model import MixedLM

    rng = np.random.default_rng(8)
    cat = _units_catalog(rng, [0.5] * 5, 25)
    res = wb.variation(cat, metric="duration_s", groups="hardware.unit")
    comp = res.components.row(0, named=True)
    y = cat["metrics.duration_s"].to_numpy()
    g = cat["hardware.unit"].to_numpy()
    ref = MixedLM(y, np.ones((y.size, 1)), groups=g).fit(reml=True)
    s2b, s2w = float(np.asarray(ref.cov_re).reshape(-1)[0]), float(ref.scale)
    assert comp["icc"] == pytest.approx(s2b / (s2b + s2w), rel=1e-4)
    assert comp["test"].startswith("one-way ANOVA") and comp["p_value"] < 1e-6 and comp["outliers"] == ["arm-0"]


def _simreal_catalog(rng: np.random.Generator) -> pl.DataFrame:
    rows = []
    for v, ps, pr in (("p1", 0.9, 0.75), ("p2", 0.8, 0.7), ("p3", 0.6, 0.72), ("p4", 0.4, 0.3)):
        latent = rng.random(300)
        rows += [{"run_id": f"{v}-s{s}", "model.version": v, "environment.domain": "sim", "scenario.seed": s,
                  "metrics.success": float(latent[s] < ps)} for s in range(300)]
        rows += [{"run_id": f"{v}-r{s}", "model.version": v, "environment.domain": "real", "scenario.seed": s,
                  "metrics.success": float(latent[s] + rng.normal(0, 0.05) < pr)} for s in range(30)]
    return pl.DataFrame(rows)


def test_simreal_finds_the_misranked_pair_and_a_prediction_powered_estimate():
    from scipy import stats

    cat = _simreal_catalog(np.random.default_rng(9))
    res = wb.simreal(cat)
    t = res.table
    assert t["n_sim"].to_list() == [300] * 4 and t["n_real"].to_list() == [30] * 4 and t["n_paired"].to_list() == [30] * 4
    assert stats.kendalltau(t["sim"], t["real"]).statistic == pytest.approx(res.kendall_tau)
    assert stats.pearsonr(t["sim"], t["real"]).statistic == pytest.approx(res.pearson)
    pairs = set(zip(res.misranked["a"], res.misranked["b"], strict=True))
    assert (all({a, b} <= {"p1", "p2", "p3"} for a, b in pairs) and ("p3", "p2") in pairs) or ("p3", "p1") in pairs
    # prediction-powered: narrower than the real runs' own interval, worth more than 30 real runs
    assert ((t["ppi_hi"] - t["ppi_lo"]) < (t["real_hi"] - t["real_lo"])).all()
    assert (t["effective_real"] > 30).all()
    assert "mis-ranked by sim" in res.summary() and "worth" in res.summary()
    with pytest.raises(ConfigError, match="must hold both 'sim' and 'real'"):
        wb.simreal(cat.filter(pl.col("environment.domain") == "sim"))


def test_fleet_commands_on_the_sample_store(sample_store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["rank", "--store", sample_store.url, "--by", "model.version", "--within", "hardware.robot", "--boot", "50"])
    assert res.exit_code == 0, res.output
    assert "policy-v1" in res.output and "letters" in res.output and "P(" in res.output
    out = json.loads(runner.invoke(cli, ["rank", "--store", sample_store.url, "--format", "json", "--boot", "20"]).output)
    assert {r["model.version"] for r in out["table"]} == {"policy-v1", "policy-v2"} and len(out["pairs"]) == 1
    res = runner.invoke(cli, ["units", "--store", sample_store.url, "--group", "hardware.robot", "--within", "model.version"])
    assert res.exit_code == 0, res.output
    assert "arm-a" in res.output and "of the variation in the success rate is between hardware.robot values" in res.output
    res = runner.invoke(cli, ["simreal", "--store", sample_store.url])
    assert res.exit_code == 1
    assert "environment.domain" in res.output and "factors:" in res.output
    res = runner.invoke(cli, ["rank", "--store", sample_store.url, "--by", "hardware.colour"])
    assert res.exit_code == 1 and "no factor column 'hardware.colour'" in res.output


def test_units_by_day_point_at_something_that_changed_between_days():
    rng = np.random.default_rng(12)
    day_ns = 86_400 * 10**9
    rows = []
    for d in range(6):  # one arm, six days; on day 4 something not logged broke it
        p = 0.3 if d == 4 else 0.9
        for s in range(25):
            rows.append({"run_id": f"d{d}-{s}", "hardware.unit": "arm-1", "metrics.success": float(rng.random() < p),
                         "start_ns": (1_780_000_000 // 86_400) * day_ns + d * day_ns + s * 600 * 10**9})
    res = wb.variation(pl.DataFrame(rows), groups="day")
    comp = res.components.row(0, named=True)
    day4 = sorted(res.units["unit"].to_list())[4]
    assert comp["n_units"] == 6 and comp["overdispersed"] and comp["outliers"] == [day4]
    assert "something not logged changed between days" in res.summary()
    assert len(res.units.filter(pl.col("flag"))["run_ids"].item()) == 25
    with pytest.raises(ConfigError, match="grouping by day needs run start times"):
        wb.variation(pl.DataFrame(rows).drop("start_ns"), groups="day")
    # two units: no bootstrap interval, and the summary says why
    two = wb.variation(_units_catalog(np.random.default_rng(1), [0.5, 0.9], 30))
    assert np.isnan(two.components["icc_lo"].item()) and "too few units for an interval" in two.summary()


@pytest.mark.parametrize("kind", ["rate", "number"])
def test_the_between_unit_share_is_recovered_within_its_interval(kind):
    """Planted intra-class correlation inside the 95 % interval in ≥ 90 % of campaigns
    (checked here on 60, so at ≥ 85 %; bench runs of 100 gave 93 % and 92 %)."""
    rng = np.random.default_rng(21 if kind == "rate" else 22)
    hits, sims = 0, 60
    for _ in range(sims):
        if kind == "rate":
            a, b = 8.0, 2.0
            truth = 1 / (a + b + 1)
            p = rng.beta(a, b, 30)
            ok = rng.random((30, 20)) < p[:, None]
            cat = pl.DataFrame({"run_id": [f"{u}-{s}" for u in range(30) for s in range(20)],
                                "hardware.unit": [f"u{u}" for u in range(30) for _ in range(20)],
                                "metrics.success": ok.reshape(-1).astype(float)})
            comp = wb.variation(cat, groups="hardware.unit").components.row(0, named=True)
        else:
            truth = 1.0 / (1.0 + 4.0)
            y = 10 + rng.normal(0, 1, 30)[:, None] + rng.normal(0, 2, (30, 20))
            cat = pl.DataFrame({"run_id": [f"{u}-{s}" for u in range(30) for s in range(20)],
                                "hardware.unit": [f"u{u}" for u in range(30) for _ in range(20)],
                                "metrics.duration_s": y.reshape(-1)})
            comp = wb.variation(cat, metric="duration_s", groups="hardware.unit").components.row(0, named=True)
        hits += comp["icc_lo"] <= truth <= comp["icc_hi"]
    assert hits / sims >= 0.85, hits / sims


def test_missing_pieces_get_a_message_not_a_number():
    # a policy whose real runs share no seed with its simulated ones
    cat = _simreal_catalog(np.random.default_rng(4))
    shifted = cat.with_columns(pl.when((pl.col("model.version") == "p2") & (pl.col("environment.domain") == "real"))
                               .then(pl.col("scenario.seed") + 1000).otherwise(pl.col("scenario.seed")).alias("scenario.seed"))
    res = wb.simreal(shifted)
    p2 = res.table.filter(pl.col("model.version") == "p2").row(0, named=True)
    assert p2["n_paired"] == 0 and np.isnan(p2["ppi"])
    assert "p2: fewer than 2 real runs share scenario.seed with a simulated run: no prediction-powered estimate" in res.summary()
    # variants that never met on a seed: ranked from all runs, and said so
    rows = [{"run_id": f"{v}-{s}", "model.version": v, "scenario.seed": s + (100 if v == "c" else 0),
             "metrics.success": float((s + i) % 3 != 0)} for i, v in enumerate("abc") for s in range(12)]
    rk = wb.rank(pl.DataFrame(rows), n_boot=20)
    assert "share no pairing key" in rk.summary() and rk.notes == {"all runs": rk.notes["all runs"]}
    # one level of a grouping factor: nothing to compare, no number
    one = wb.variation(_units_catalog(np.random.default_rng(0), [0.7], 20))
    assert np.isnan(one.components["icc"].item()) and "only one hardware.unit value (20 runs): nothing to compare" in one.summary()
