"""HoloViews plots: the numbers they draw, and that they render to Bokeh."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

from workbench.comparison import compare, wilson_interval
from workbench.model import ConfigError, Run, RunInfo
from workbench.viz import plots

hv = plots.holoviews()


@pytest.fixture(scope="module")
def catalog() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(80):
        robot = "arm-a" if i % 2 else "arm-b"
        version = "v1" if (i // 2) % 2 else "v2"
        p = 0.3 if (robot, version) == ("arm-b", "v2") else 0.9
        ok = float(rng.random() < p)
        rows.append({
            "run_id": f"r{i:03d}",
            "hardware.robot": robot,
            "environment.lighting": "dim" if i % 3 else "bright",
            "model.version": version,
            "scenario.seed": i // 4,
            "metrics.success": ok,
            "metrics.time_to_success": float(rng.normal(5 if version == "v1" else 4, 0.3)) if ok else None,
        })
    return pl.DataFrame(rows)


def test_rate_cells_counts_and_wilson(catalog):
    cells = plots.rate_cells(catalog, x=["hardware.robot"], y=["model.version"])
    assert cells.height == 4
    for r in cells.iter_rows(named=True):
        sub = catalog.filter((pl.col("hardware.robot") == r["x"]) & (pl.col("model.version") == r["y"]))
        assert r["n"] == sub.height
        assert r["k"] == int(sub["metrics.success"].sum())
        assert sorted(r["runs"]) == sorted(sub["run_id"].to_list())
        lo, hi = wilson_interval(r["k"], r["n"])
        assert r["lo"] == pytest.approx(lo) and r["hi"] == pytest.approx(hi)
        assert r["lo"] <= r["rate"] <= r["hi"]


def test_rate_cells_joins_several_factors_and_labels_nulls():
    cat = pl.DataFrame({
        "run_id": ["a", "b", "c"],
        "hardware.robot": ["arm-a", "arm-b", None],
        "environment.lighting": ["dim", "dim", "dim"],
        "model.version": ["v1", "v1", "v1"],
        "outcome": ["success", "failure", "success"],  # no metrics yet: success from the outcome
    })
    cells = plots.rate_cells(cat, x=["hardware.robot", "environment.lighting"], y=["model.version"])
    assert set(cells["x"]) == {"arm-a · dim", "arm-b · dim", "∅ · dim"}
    assert cells.filter(pl.col("x") == "arm-b · dim")["rate"][0] == 0.0


def test_unknown_metric_and_factor_name_the_choices(catalog):
    with pytest.raises(ConfigError, match="time_to_success"):
        plots.rate_cells(catalog, x=["hardware.robot"], y=["model.version"], metric="nope")
    with pytest.raises(ConfigError, match="hardware.robot"):
        plots.rate_cells(catalog, x=["hardware.colour"], y=["model.version"])


def test_heatmap_renders_one_rect_per_cell(catalog):
    from bokeh.models import GlyphRenderer, Rect, Text

    overlay = plots.success_heatmap(catalog, x=["hardware.robot", "environment.lighting"], y=["model.version"])
    heat = overlay.get(0)
    assert isinstance(heat, hv.HeatMap)
    fig = hv.render(overlay, backend="bokeh")
    rects = [r for r in fig.select(GlyphRenderer) if isinstance(r.glyph, Rect)]
    texts = [r for r in fig.select(GlyphRenderer) if isinstance(r.glyph, Text)]
    assert len(rects) == 1 and len(texts) == 1
    assert len(rects[0].data_source.data["rate"]) == 8  # 2 robots × 2 lightings × 2 versions
    assert any("/" in t for t in texts[0].data_source.data["text"])


def test_distribution_attribution_and_intervals_render(catalog):
    res = compare(catalog, by="model.version", baseline="v1", candidate="v2", within=["hardware.robot"], n_boot=200)
    box = plots.metric_distribution(catalog, "time_to_success", by="model.version", group=["hardware.robot"])
    assert set(box.dimension_values("variant")) == {"v1", "v2"}
    bars = plots.attribution_bars(res.attribution, "success")
    assert "hardware.robot" in list(bars.dimension_values("term"))
    forest = plots.difference_intervals(res, "success")
    scatter = forest.get(1)
    assert sorted(scatter.dimension_values("cell")) == ["arm-a", "arm-b"]
    expected = res.table.filter(pl.col("metric") == "success").sort("hardware.robot")
    assert list(scatter.dimension_values("verdict")) == expected["verdict"].to_list()
    assert list(scatter.dimension_values(1)) == pytest.approx(expected["difference"].to_list())
    for obj in (box, bars, forest):
        hv.render(obj, backend="bokeh")


def _run(run_id: str, t0: int, grasp_at: float, with_finding: bool = False) -> Run:
    t = t0 + (np.arange(200) * 10_000_000).astype(np.int64)
    js = xr.Dataset(
        {"position": (("time", "joint"), np.column_stack([np.sin(np.arange(200) / 20), np.zeros(200)]))},
        coords={"time": t, "joint": ["joint_1", "joint_2"]},
    )
    cam = xr.Dataset({"data": (("time",), np.zeros(200, dtype=np.uint8))}, coords={"time": t}, attrs={"kind": "image_encoded"})
    events = pl.DataFrame({"time": [t0 + int(grasp_at * 1e9), t0 + int(1.5e9)], "kind": ["grasp", "success"], "detail": ["{}", "{}"]})
    info = RunInfo(run_id=run_id, name=f"name-{run_id}", start_ns=int(t[0]), end_ns=int(t[-1]))
    return Run(info=info, streams={"joint_states": js, "camera": cam}, events=events)


def test_signal_names_lists_components_and_skips_images():
    names = plots.signal_names(_run("a", 0, 0.5))
    assert names == ["joint_states.position[joint_1]", "joint_states.position[joint_2]"]


def test_signals_align_runs_on_an_event_and_draw_events_and_findings():
    runs = [_run("a", 1_000_000_000_000, 0.5), _run("b", 2_000_000_000_000, 0.8)]
    findings = {"b": pl.DataFrame({"stream": ["joint_states"], "check": ["gap"], "severity": ["warning"],
                                   "start_ns": [2_000_000_000_000 + 1_000_000_000], "end_ns": [2_000_000_000_000 + 1_200_000_000]})}
    layout = plots.signals(runs, ["joint_states.position[joint_1]"], on="event:grasp", findings=findings)
    overlay = layout.values()[0]
    curves = [el for el in overlay if isinstance(el, hv.Curve)]
    assert [c.label for c in curves] == ["name-a", "name-b"]
    # aligned on grasp: each curve is at 0 at its grasp
    assert curves[0].dimension_values(0)[0] == pytest.approx(-0.5)
    assert curves[1].dimension_values(0)[0] == pytest.approx(-0.8)
    vlines = next(el for el in overlay if isinstance(el, hv.VLines))
    xs = sorted(vlines.dimension_values("x"))
    assert xs == pytest.approx([0.0, 0.0, 0.7, 1.0])
    spans = next(el for el in overlay if isinstance(el, hv.VSpans))
    assert spans.dimension_values("x0")[0] == pytest.approx(0.2)
    assert spans.dimension_values("x1")[0] == pytest.approx(0.4)
    hv.render(layout, backend="bokeh")


def test_a_humanoids_26_joints_are_offered_one_by_one():
    import numpy as np
    import xarray as xr

    import workbench as wb
    from workbench.viz import plots

    joints = [f"joint_{i}" for i in range(26)]  # as the Unitree G1 LeRobot dataset has
    ds = xr.Dataset({"state": (("time", "joint"), np.zeros((5, 26)))}, coords={"time": np.arange(5), "joint": joints})
    frame = xr.Dataset({"index": (("time",), np.arange(5))}, coords={"time": np.arange(5)})
    run = wb.Run(info=wb.RunInfo(run_id="g1", start_ns=0, end_ns=4), streams={"frame": frame, "observation.state": ds})
    names = plots.signal_names(run)
    assert names == ["frame.index", *(f"observation.state.state[{j}]" for j in joints)]
