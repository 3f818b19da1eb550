"""Trends: windows, control limits, change points dated to the planted time, each point's runs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.model import ConfigError
from workbench.trends import trend

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9
START = 20_602 * DAY  # 2026-05-29 00:00 UTC


def _campaign(days: int = 40, per_day: int = 6, drop_day: int | None = 25, before: float = 0.9, after: float = 0.5,
              robots: tuple[str, ...] = ("arm-a",), dropping: tuple[str, ...] = ("arm-a",), seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for robot in robots:
        for d in range(days):
            for j in range(per_day):
                p = after if drop_day is not None and d >= drop_day and robot in dropping else before
                rows.append({"run_id": f"{robot}-{d:03d}-{j}", "name": f"{robot} day {d} #{j}", "hardware.robot": robot,
                             "start_ns": START + d * DAY + j * HOUR + int(rng.integers(0, 10**9)),
                             "metrics.success": bool(rng.random() < p),
                             "metrics.duration_s": float(rng.lognormal(3.0 if p == before else 3.4, 0.3)),
                             "model.checkpoint": f"{(d // 5 + 1) * 1000}"})
    return pl.DataFrame(rows)


def _day(d: int) -> str:
    return str(np.datetime64(START + d * DAY, "ns").astype("datetime64[D]"))


def test_a_drop_is_dated_to_the_day_it_was_planted():
    cat = _campaign()
    res = trend(cat, metric="success", over="day")
    assert res.over == "day" and res.kind == "rate"
    assert res.table.height == 40 and res.table["n"].to_list() == [6] * 40
    assert res.changes.height >= 1
    first = res.changes.sort("p_adjusted").row(0, named=True)
    planted = [_day(25 + k) for k in (-1, 0, 1)]
    assert first["window"] in planted, (first["window"], planted)
    assert first["before"] > 0.8 and first["after"] < 0.65
    assert first["p_adjusted"] <= 0.05
    assert res.table.filter(pl.col("change"))["window"].to_list()[0] in planted
    assert "changed in" in res.summary()


def test_each_point_opens_the_runs_of_its_window():
    cat = _campaign(days=10, drop_day=None)
    res = trend(cat, over="day")
    window = res.table["window"][3]
    want = cat.filter(pl.col("run_id").str.contains("-003-"))["run_id"].sort().to_list()
    assert sorted(res.runs(window)) == want
    assert sorted(res.runs(3)) == want
    with pytest.raises(ConfigError, match="matches no point"):
        res.runs("1999-01-01")
    with pytest.raises(ConfigError, match="point 99 is not in the trend"):
        res.runs(99)


def test_no_change_is_reported_on_a_steady_campaign():
    alarms = sum(trend(_campaign(days=20, drop_day=None, seed=s), over="day", n_perm=199).changes.height > 0
                 for s in range(40))
    assert alarms <= 6  # α = 0.05: 2 expected of 40; 6 is beyond 3 standard errors


def test_a_drop_in_one_cell_is_found_there_only():
    cat = _campaign(robots=("arm-a", "arm-b", "arm-c"), dropping=("arm-b",), seed=3)
    res = trend(cat, over="week", within="hardware.robot")
    assert set(res.table["hardware.robot"].unique()) == {"arm-a", "arm-b", "arm-c"}
    assert res.changes["hardware.robot"].unique().to_list() == ["arm-b"]
    weeks = res.table.filter(pl.col("hardware.robot") == "arm-b")["window"].to_list()
    assert all(w.count("-W") == 1 for w in weeks)  # ISO week labels
    # the change lies in the week of day 25 or the one next to it
    planted = np.datetime64(START + 25 * DAY, "ns").astype("datetime64[D]").item().isocalendar()
    got = res.changes["window"][0]
    year, week = int(got[:4]), int(got[-2:])
    assert year == planted[0] and abs(week - planted[1]) <= 1


def test_p_chart_limits_and_out_of_control_points():
    cat = _campaign(days=12, per_day=20, drop_day=None, before=0.8, seed=4)
    bad = cat.with_columns(pl.when(pl.col("run_id").str.contains("-006-")).then(False)
                           .otherwise(pl.col("metrics.success")).alias("metrics.success"))
    res = trend(bad, over="day")
    t = res.table
    k, n = t["k"].to_numpy(), t["n"].to_numpy()
    pbar = k.sum() / n.sum()
    np.testing.assert_allclose(t["center"].to_numpy(), pbar)
    np.testing.assert_allclose(t["ucl"].to_numpy(), np.clip(pbar + 3 * np.sqrt(pbar * (1 - pbar) / n), 0, 1))
    assert t.filter(pl.col("out_of_control"))["window"].to_list() == [_day(6)]
    lo, hi = t["lo"].to_numpy(), t["hi"].to_numpy()
    v = t["value"].to_numpy()
    assert ((lo <= v) & (v <= hi)).all()


def test_a_continuous_metric_gets_means_t_intervals_and_a_change():
    cat = _campaign(seed=5)
    res = trend(cat, metric="duration_s", over="day")
    assert res.kind == "continuous" and res.table["k"].null_count() == res.table.height
    first = res.table.row(0, named=True)
    vals = cat.filter(pl.col("run_id").is_in(first["run_ids"]))["metrics.duration_s"].to_numpy()
    from scipy import stats

    lo, hi = stats.t.interval(0.95, len(vals) - 1, loc=vals.mean(), scale=stats.sem(vals))
    assert first["value"] == pytest.approx(vals.mean())
    assert (first["lo"], first["hi"]) == pytest.approx((lo, hi))
    assert res.changes.height >= 1 and res.changes["after"][0] > res.changes["before"][0]


def test_over_a_factor_sorts_naturally_and_changes_only_between_its_values():
    cat = _campaign(seed=6).with_columns(pl.col("model.checkpoint").cast(pl.Int64))
    res = trend(cat, over="model.checkpoint")
    assert res.table["window"].to_list() == [str(v) for v in range(1000, 9000, 1000)]
    assert res.table["window_start"].null_count() == res.table.height
    assert res.changes.height >= 1
    # day 25 starts checkpoint 6000: the change is at a checkpoint boundary
    assert res.changes["window"][0] in {"5000", "6000", "7000"}
    run = res.changes["run_id"][0]
    assert run.endswith("-0") and int(run.split("-")[2]) % 5 == 0  # the first run of a checkpoint


def test_auto_takes_the_finest_window_with_at_most_sixty():
    assert trend(_campaign(days=2, drop_day=None), over="auto").over == "hour"
    assert trend(_campaign(days=40, drop_day=None), over="auto").over == "day"
    long = _campaign(days=40, drop_day=None).with_columns((pl.col("start_ns") * 7).alias("start_ns"))
    assert trend(long, over="auto").over == "week"


def test_runs_without_a_value_are_counted_not_measured():
    cat = _campaign(days=5, drop_day=None).with_columns(
        pl.when(pl.col("run_id").str.ends_with("-0")).then(None).otherwise(pl.col("metrics.success")).alias("metrics.success"))
    res = trend(cat, over="day")
    assert res.table["n"].to_list() == [5] * 5 and res.table["n_missing"].to_list() == [1] * 5
    assert [len(r) for r in res.table["run_ids"].to_list()] == [6] * 5


def test_bad_requests_name_the_valid_choices():
    cat = _campaign(days=3, drop_day=None)
    with pytest.raises(ConfigError, match=r"over 'fortnight' is not valid; choose from \['auto', 'hour', 'day', 'week', 'month'\] or a factor column: hardware.robot"):
        trend(cat, over="fortnight")
    with pytest.raises(ConfigError, match="no metric 'grip'"):
        trend(cat, metric="grip")
    with pytest.raises(ConfigError, match="no factor column 'site'"):
        trend(cat, within=["site"])
    with pytest.raises(ConfigError, match="no start_ns"):
        trend(cat.drop("start_ns"))
    with pytest.raises(ConfigError, match="holds values other than 0/1"):
        trend(cat.with_columns(pl.lit(0.5).alias("metrics.success")))
    with pytest.raises(ConfigError, match="min_grade needs data grades"):
        trend(cat, min_grade="B")


def test_min_grade_leaves_low_grades_out_and_says_so():
    cat = _campaign(days=3, drop_day=None).with_columns(
        pl.when(pl.col("run_id").str.ends_with("-1")).then(pl.lit("D")).otherwise(pl.lit("A")).alias("quality.grade"))
    res = trend(cat, over="day", min_grade="B")
    assert res.table["n"].to_list() == [5, 5, 5]
    assert len(res.excluded) == 3 and set(res.excluded.values()) == {"grade D below B"}


def test_trend_of_the_sample_store_and_its_chart(sample_store):
    res = trend(sample_store, metric="success", within="model.version")
    assert res.over == "hour"
    n = sample_store.runs()["metrics.success"].drop_nulls().len()
    assert res.table["n"].sum() == n
    chart = res.plot()
    from workbench.viz.plots import holoviews

    hv = holoviews()
    assert isinstance(chart, hv.Layout) and len(chart) == 2  # one chart per version
    scatter = [e for e in chart.traverse(lambda x: x, [hv.Scatter])]
    assert sum(len(s) for s in scatter) == res.table.filter(pl.col("n") > 0).height



def test_trends_command_on_the_sample_store(sample_store):
    from click.testing import CliRunner

    from workbench.cli import cli

    out = CliRunner().invoke(cli, ["trends", "--store", sample_store.url, "--within", "model.version", "--wide"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["model.version", "hour", "n"]
    res = trend(sample_store, within="model.version")
    assert sum(1 for line in lines if line.startswith("policy-v")) == res.table.height
    assert lines[-1] == res.summary()
    csv = CliRunner().invoke(cli, ["trends", "--store", sample_store.url, "--format", "csv"])
    assert csv.exit_code == 0
    frame = pl.read_csv(csv.output.encode())
    assert frame.height == trend(sample_store).table.height and "run_ids" in frame.columns
    bad = CliRunner().invoke(cli, ["trends", "--store", sample_store.url, "--over", "fortnight"])
    assert bad.exit_code == 1 and "over 'fortnight' is not valid" in bad.output


def test_trends_view_opens_a_points_runs_and_survives_bad_choices(sample_store):
    from workbench.ui.datastore import DataStore
    from workbench.ui.trends_view import TrendsView

    data = DataStore(store=sample_store)
    view = TrendsView(data=data)
    assert view.result is None  # computed when first shown
    view.__panel__()
    res = view.result
    assert res is not None and res.over == "hour" and view.table.value.shape[0] == res.table.height
    opened = view.open(2)
    assert data.selection == list(res.table["run_ids"][2]) == opened["run_ids"]
    view.over = "scenario.seed"
    assert view.result.over == "scenario.seed"
    assert view.table.value["scenario.seed"].tolist() == sorted(view.table.value["scenario.seed"].tolist(), key=int)
    data.filters = {"hardware.robot": ["arm-a"]}
    assert view.result.table["n"].sum() == data.filtered["metrics.success"].drop_nulls().len()
    data.text = "no run has this name"
    assert "No run passes the filters" in view.status.object and view.table.value is None
