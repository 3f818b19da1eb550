"""Tests of workbench.stats.attribution: Type II tests against statsmodels, Shapley shares,
confounding warnings, three-way terms and where()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from workbench.model import ConfigError
from workbench.stats.attribution import attribute, attribution_table, where


def _rows(res) -> dict[str, dict]:
    return {r["term"]: r for r in res.table.iter_rows(named=True)}


def _three_factor(seed: int, n: int = 240) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["a1", "a2", "a3"], n, p=[0.5, 0.3, 0.2])  # unbalanced on purpose
    b = rng.choice(["b1", "b2"], n, p=[0.7, 0.3])
    d = rng.choice(["d1", "d2", "d3", "d4"], n)
    eta = -0.3 + 0.8 * (a == "a2") - 0.5 * (b == "b2") + 0.4 * (d == "d3")
    ok = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    t = 2 * (a == "a2") + 1.0 * (b == "b2") * (d == "d2") + rng.normal(0, 1, n)
    return pl.DataFrame({"A": a, "B": b, "D": d, "ok": ok, "t": t})


def _glm_dev(formula: str, df: pd.DataFrame) -> float:
    return float(smf.glm(formula, df, family=sm.families.Binomial()).fit().deviance)


def test_type2_lrt_matches_statsmodels_glm() -> None:
    cat = _three_factor(3)
    res = attribute(cat, factors=["A", "B", "D"], metric="ok", column="ok", kind="rate", max_order=2, n_boot=0)
    rows = _rows(res)
    df = cat.to_pandas()
    inter = {"A × B": "C(A):C(B)", "A × D": "C(A):C(D)", "B × D": "C(B):C(D)"}
    full_terms = ["C(A)", "C(B)", "C(D)", *inter.values()]
    full = _glm_dev("ok ~ " + " + ".join(full_terms), df)
    # Type II for a main effect: drop it and every term containing it from the full model
    for f in ("A", "B", "D"):
        keep = [t for t in full_terms if f"C({f})" not in t]
        with_f = _glm_dev("ok ~ " + " + ".join([*keep, f"C({f})"]), df)
        without = _glm_dev("ok ~ " + " + ".join(keep), df)
        assert rows[f]["statistic"] == pytest.approx(without - with_f, rel=1e-7, abs=1e-8)
        from scipy import stats

        assert rows[f]["p_value"] == pytest.approx(stats.chi2.sf(without - with_f, rows[f]["df"]), rel=1e-6)
    for label, term in inter.items():
        without = _glm_dev("ok ~ " + " + ".join(t for t in full_terms if t != term), df)
        assert rows[label]["statistic"] == pytest.approx(without - full, rel=1e-7, abs=1e-8)
    assert res.total_explained == pytest.approx(1 - full / _glm_dev("ok ~ 1", df), rel=1e-9)


def test_type2_f_tests_match_anova_lm() -> None:
    cat = _three_factor(4)
    res = attribute(cat, factors=["A", "B", "D"], metric="t", column="t", kind="continuous", max_order=2, n_boot=0)
    rows = _rows(res)
    fit = smf.ols("t ~ C(A) + C(B) + C(D) + C(A):C(B) + C(A):C(D) + C(B):C(D)", cat.to_pandas()).fit()
    aov = anova_lm(fit, typ=2)
    names = {"A": "C(A)", "B": "C(B)", "D": "C(D)", "A × B": "C(A):C(B)", "A × D": "C(A):C(D)", "B × D": "C(B):C(D)"}
    for label, term in names.items():
        assert rows[label]["statistic"] == pytest.approx(aov.loc[term, "F"], rel=1e-8)
        assert rows[label]["p_value"] == pytest.approx(aov.loc[term, "PR(>F)"], rel=1e-6)
        assert rows[label]["df"] == int(aov.loc[term, "df"])
    assert res.total_explained == pytest.approx(fit.rsquared, rel=1e-9)


@pytest.mark.parametrize("kind", ["rate", "continuous"])
def test_shares_add_up_to_explained(kind: str) -> None:
    cat = _three_factor(5)
    col = "ok" if kind == "rate" else "t"
    res = attribute(cat, factors=["A", "B", "D"], metric=col, column=col, kind=kind, n_boot=30)
    total = float(res.table["share"].drop_nulls().sum()) + res.withheld
    assert total == pytest.approx(res.total_explained, abs=1e-9)
    assert res.total_lo <= res.total_explained <= res.total_hi
    top = res.table.row(0, named=True)
    assert top["share_lo"] <= top["share"] <= top["share_hi"]


def _lighting_only(seed: int, n: int = 240, p_a_dark: float = 0.65) -> pl.DataFrame:
    """Only lighting matters; robot is unbalanced and associated with lighting; scene is
    a 12-level pure-noise factor."""
    rng = np.random.default_rng(seed)
    light = rng.choice(["bright", "dark"], n, p=[0.6, 0.4])
    robot = np.where(rng.random(n) < np.where(light == "dark", p_a_dark, 1 - p_a_dark), "arm-a", "arm-b")
    scene = rng.choice([f"s{i:02d}" for i in range(12)], n)
    ok = (rng.random(n) < np.where(light == "dark", 0.45, 0.9)).astype(float)
    return pl.DataFrame({"lighting": light, "robot": robot, "scene": scene, "success": ok})


def test_unbalanced_design_irrelevant_factors() -> None:
    robot_frac, scene_share, scene_p, light_p = [], [], [], []
    for seed in range(5):
        res = attribute(
            _lighting_only(seed), factors=["lighting", "robot", "scene"], metric="success",
            column="success", kind="rate", max_order=1, n_boot=0,
        )
        rows = _rows(res)
        assert res.table.row(0, named=True)["term"] == "lighting"
        robot_frac.append(rows["robot"]["share"] / res.total_explained)
        scene_share.append(rows["scene"]["share"])
        scene_p.append(rows["scene"]["p_value"])
        light_p.append(rows["lighting"]["p_value"])
        assert rows["robot"]["warning"] is None  # associated, but not enough to be confounded
    # phi(lighting, robot) ≈ 0.29 here: LMG gives robot about phi² / 2 ≈ 4 % of the
    # explained deviance, plus its own noise share; anything near half would be wrong
    assert np.mean(robot_frac) < 0.10
    assert max(light_p) < 1e-6
    # noise: a share of about df/n of the unexplained deviance, and a large p-value
    assert np.mean(scene_share) < 0.08
    assert sum(p < 0.01 for p in scene_p) <= 1 and np.median(scene_p) > 0.1


def test_strong_association_is_shared_by_lmg_but_not_significant() -> None:
    # documented LMG behaviour: a strongly associated but irrelevant factor takes a part
    # of the share (about V² / 2 of the relevant one's), while its Type II p stays large
    robot_p = []
    for seed in range(20):
        res = attribute(
            _lighting_only(seed, n=400, p_a_dark=0.8), factors=["lighting", "robot"], metric="success",
            column="success", kind="rate", max_order=1, n_boot=0,
        )
        rows = _rows(res)
        assert rows["robot"]["share"] < 0.5 * rows["lighting"]["share"]
        robot_p.append(rows["robot"]["p_value"])
    # robot has no effect: its Type II p is uniform, so about 1 in 20 falls under 0.05
    # (P[≥ 5 of 20] ≈ 0.003 under the null); a test that leaked lighting's effect into
    # robot would reject nearly always
    assert sum(p < 0.05 for p in robot_p) <= 4


def _planted_three_way(kind: str, seed: int = 0, n: int = 320) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a = np.tile(["a0", "a1"], n // 2)
    b = np.tile(np.repeat(["b0", "b1"], 2), n // 4)
    c = np.tile(np.repeat(["c0", "c1"], 4), n // 8)
    sign = np.where(a == "a1", 1, -1) * np.where(b == "b1", 1, -1) * np.where(c == "c1", 1, -1)
    if kind == "continuous":
        y = 0.8 * sign + rng.normal(0, 1, n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-1.2 * sign))).astype(float)
    return pl.DataFrame({"robot": a, "lighting": b, "scenario": c, "y": y})


@pytest.mark.parametrize("kind", ["rate", "continuous"])
def test_planted_three_way_is_reported_as_three_way(kind: str) -> None:
    res = attribute(_planted_three_way(kind), factors=["robot", "lighting", "scenario"], metric="y",
                    column="y", kind=kind, n_boot=0)
    top = res.table.row(0, named=True)
    assert top["term"] == "robot × lighting × scenario" and top["order"] == 3
    assert top["p_value"] < 1e-10
    rows = _rows(res)
    for f in ("robot", "lighting", "scenario"):
        assert rows[f]["p_value"] > 0.01
        assert rows[f]["share"] < 0.05 * top["share"]
    # the three-way term's LRT / F-test is the drop from the model with all two-way terms
    df = _planted_three_way(kind).to_pandas()
    two = "y ~ (C(robot) + C(lighting) + C(scenario))**2"
    if kind == "rate":
        stat = _glm_dev(two, df) - _glm_dev("y ~ C(robot) * C(lighting) * C(scenario)", df)
        assert top["statistic"] == pytest.approx(stat, rel=1e-6)
    else:
        aov = anova_lm(smf.ols("y ~ C(robot) * C(lighting) * C(scenario)", df).fit(), typ=2)
        assert top["statistic"] == pytest.approx(aov.loc["C(robot):C(lighting):C(scenario)", "F"], rel=1e-8)


def test_three_way_left_out_when_design_does_not_support_it() -> None:
    cat = _planted_three_way("continuous", n=16)  # 2 runs per cell: 8 residual df at most
    res = attribute(cat, factors=["robot", "lighting", "scenario"], metric="y", column="y", kind="continuous", n_boot=0)
    assert "robot × lighting × scenario" not in res.table["term"].to_list()
    assert any("left out" in note for note in res.notes)


def test_aliased_factor_gets_warning_and_no_share() -> None:
    rng = np.random.default_rng(1)
    robot = np.tile(["r1", "r2", "r3"], 80)
    light = np.repeat(["on", "off"], 120)
    ok = (rng.random(240) < np.where(light == "off", 0.4, 0.9)).astype(float)
    cat = pl.DataFrame({"robot": robot, "robot_id": np.char.add("id-", robot), "light": light, "ok": ok})
    res = attribute(cat, factors=["robot", "robot_id", "light"], metric="ok", column="ok", kind="rate", n_boot=20)
    rows = _rows(res)
    for f, other in (("robot", "robot_id"), ("robot_id", "robot")):
        assert rows[f]["share"] is None
        assert f"aliased with {other}" in rows[f]["warning"]
    joint = rows["robot + robot_id"]
    assert joint["share"] is not None and joint["df"] == 2
    assert float(res.table["share"].drop_nulls().sum()) + res.withheld == pytest.approx(res.total_explained, abs=1e-9)


def test_where_localizes_change() -> None:
    rng = np.random.default_rng(2)
    n = 400
    version = np.repeat(["v1", "v2"], n // 2)
    light = rng.choice(["bright", "dark", "dusk"], n)
    robot = rng.choice(["arm-a", "arm-b"], n)
    p = np.where((version == "v2") & (light == "dark"), 0.4, 0.9)
    cat = pl.DataFrame({"version": version, "light": light, "robot": robot, "ok": (rng.random(n) < p).astype(float)})
    w = where(cat, by="version", baseline="v1", candidate="v2", within=["light"], column="ok", kind="rate")
    top = w.row(0, named=True)
    assert top["light"] == "dark" and top["share"] > 0.8
    assert top["heterogeneity_p"] < 1e-4
    assert w["contribution"].sum() == pytest.approx(top["overall"], abs=1e-12)
    assert w["cumulative_share"][-1] == pytest.approx(1.0)
    w2 = where(cat, by="version", baseline="v1", candidate="v2", within=["light", "robot"], column="ok", kind="rate")
    assert set(w2.head(2)["light"].to_list()) == {"dark"}


def test_attribution_table_stacks_metrics() -> None:
    cat = _three_factor(6)
    tab = attribution_table(cat, factors=["A", "B"], metrics={"success": "ok", "time": "t"},
                            kinds={"success": "rate", "time": "continuous"}, n_boot=0)
    assert set(tab["metric"].unique().to_list()) == {"success", "time"}
    assert tab.filter(pl.col("metric") == "time").row(0, named=True)["term"] == "A"


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"kind": "count"}, "kind"),
        ({"column": "nope"}, "column"),
        ({"factors": ["A", "zzz"]}, "factor"),
        ({"max_order": 0}, "max_order"),
        ({"n_boot": -1}, "n_boot"),
        ({"alpha": 1.5}, "alpha"),
        ({"column": "t", "kind": "rate"}, "outside"),
    ],
)
def test_bad_inputs_raise_config_error(kw: dict, word: str) -> None:
    cat = _three_factor(7)
    args = {"factors": ["A", "B"], "metric": "m", "column": "ok", "kind": "rate", **kw}
    with pytest.raises(ConfigError, match=word):
        attribute(cat, **args)


def test_where_bad_inputs() -> None:
    cat = _three_factor(8)
    with pytest.raises(ConfigError, match="value of A"):
        where(cat, by="A", baseline="a1", candidate="a9", within=[], column="ok", kind="rate")
    with pytest.raises(ConfigError, match="also in within"):
        where(cat, by="A", baseline="a1", candidate="a2", within=["A"], column="ok", kind="rate")
