"""Charts of rankings, unit variation and sim against real (HoloViews, Bokeh backend).

Each takes the result of :func:`workbench.ranking.rank`, :func:`workbench.units.variation`
or :func:`workbench.sim_real.simreal` and an optional *on_select* called with the row of
the result's table behind a point clicked (tapped), e.g. to open its runs.

Examples
--------
>>> import polars as pl
>>> from workbench.ranking import rank
>>> cat = pl.DataFrame({"run_id": [f"r{i}" for i in range(40)], "model.version": ["a", "b"] * 20,
...                     "metrics.success": [float(i % 3 != 0) for i in range(40)]})
>>> chart = rank_chart(rank(cat, n_boot=20))
>>> type(chart).__name__
'Overlay'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.viz.plots import _frame, _on_tap, holoviews

if TYPE_CHECKING:
    import holoviews as hv

    from workbench.ranking import RankResult
    from workbench.sim_real import SimRealResult
    from workbench.units import VariationResult

__all__ = ["rank_chart", "rank_probability_heatmap", "simreal_chart", "units_chart"]


def _label(row: dict[str, Any], within: list[str], name: str) -> str:
    cell = " · ".join(f"{row[w]}" for w in within)
    return f"{cell} · {name}" if cell else str(name)


def rank_chart(result: RankResult, *, height: int = 320, on_select: Callable[[int], Any] | None = None) -> hv.Overlay:
    """Each variant's value with its interval, best first, its letters beside it (a
    shared letter: no significant difference)."""
    hv = holoviews()
    tab = result.table
    labels = [_label(r, result.within, r[result.by]) for r in tab.iter_rows(named=True)]
    frame = _frame({
        "variant": labels, "value": tab["value"].to_list(),
        "lo": (tab["value"] - tab["lo"]).fill_nan(0.0).fill_null(0.0).to_list(),
        "hi": (tab["hi"] - tab["value"]).fill_nan(0.0).fill_null(0.0).to_list(),
        "letters": tab["letters"].to_list(), "p_best": tab["p_best"].to_list(), "n": tab["n"].to_list(),
        "row": list(range(tab.height)),
    }, columns=["variant", "value", "lo", "hi", "letters", "p_best", "n", "row"])
    y = hv.Dimension("value", label=f"{result.metric}{' rate' if result.kind == 'rate' else ''}")
    x = hv.Dimension("variant", label=result.by)
    bars = hv.ErrorBars(frame, kdims=[x], vdims=[y, "lo", "hi"]).opts(line_width=2, color="#444")
    pts = hv.Scatter(frame, kdims=[x], vdims=[y, "letters", "p_best", "n", "row"]).opts(
        size=10, color="#1f77b4", tools=["hover", "tap"], nonselection_alpha=0.6)
    text = hv.Labels(frame.assign(value=frame["value"] + frame["hi"]), kdims=[x, y], vdims=["letters"]).opts(
        text_color="#333", yoffset=0.0, text_font_size="12pt", text_baseline="bottom")
    if on_select is not None:
        hv.streams.Selection1D(source=pts).add_subscriber(_on_tap(frame["row"].tolist(), on_select))
    return (bars * pts * text).opts(title=f"{result.metric} by {result.by} (letters: not significantly different)",
                                    height=height, responsive=True, toolbar="above", xrotation=30 if tab.height > 6 else 0)


def rank_probability_heatmap(result: RankResult, *, height: int = 260) -> hv.HeatMap:
    """Probability of each rank per variant (Bradley–Terry bootstrap)."""
    hv = holoviews()
    probs = result.rank_probs
    frame = _frame({"variant": [_label(r, result.within, r[result.by]) for r in probs.iter_rows(named=True)],
                    "rank": [str(r) for r in probs["rank"].to_list()], "probability": probs["probability"].to_list()},
                   columns=["variant", "rank", "probability"])
    return hv.HeatMap(frame, kdims=["rank", "variant"], vdims=["probability"]).opts(
        cmap="Blues", colorbar=True, clim=(0, 1), tools=["hover"], height=height, responsive=True,
        title="probability of each rank", toolbar="above")


def units_chart(result: VariationResult, *, height: int = 320, on_select: Callable[[int], Any] | None = None) -> hv.Overlay:
    """Per unit its raw value (hollow) and shrunken estimate with interval (filled);
    outlying units in red."""
    hv = holoviews()
    tab = result.units
    labels = [_label(r, [*result.within, "group"], r["unit"]) for r in tab.iter_rows(named=True)]
    frame = _frame({
        "unit": labels, "shrunk": tab["shrunk"].to_list(), "raw": tab["raw"].to_list(),
        "lo": (tab["shrunk"] - tab["lo"]).fill_nan(0.0).fill_null(0.0).to_list(),
        "hi": (tab["hi"] - tab["shrunk"]).fill_nan(0.0).fill_null(0.0).to_list(),
        "state": ["outlying" if f else "typical" for f in tab["flag"].to_list()], "n": tab["n"].to_list(),
        "row": list(range(tab.height)),
    }, columns=["unit", "shrunk", "raw", "lo", "hi", "state", "n", "row"])
    y = hv.Dimension("shrunk", label=f"{result.metric}{' rate' if result.kind == 'rate' else ''}")
    bars = hv.ErrorBars(frame, kdims=["unit"], vdims=[y, "lo", "hi"]).opts(line_width=2, color="#444")
    raw = hv.Scatter(frame, kdims=["unit"], vdims=[hv.Dimension("raw", label=y.label)]).opts(
        size=9, fill_color="white", line_color="#888", marker="circle")
    pts = hv.Scatter(frame, kdims=["unit"], vdims=[y, "raw", "state", "n", "row"]).opts(
        size=10, color="state", cmap={"typical": "#1f77b4", "outlying": "#d62728"}, tools=["hover", "tap"],
        show_legend=False, nonselection_alpha=0.6)
    if on_select is not None:
        hv.streams.Selection1D(source=pts).add_subscriber(_on_tap(frame["row"].tolist(), on_select))
    title = f"{result.metric} per unit: shrunken (filled) and raw (hollow)"
    return (bars * raw * pts).opts(title=title, height=height, responsive=True, toolbar="above",
                                   xrotation=30 if tab.height > 6 else 0)


def simreal_chart(result: SimRealResult, *, height: int = 360, on_select: Callable[[int], Any] | None = None) -> hv.Overlay:
    """Sim against real per policy with both intervals, the identity line, and the pairs
    sim orders wrongly joined by red segments."""
    hv = holoviews()
    tab = result.table.filter((result.table["n_sim"] > 0) & (result.table["n_real"] > 0))
    rows = [i for i, r in enumerate(result.table.iter_rows(named=True)) if r["n_sim"] > 0 and r["n_real"] > 0]
    frame = _frame({
        "sim": tab["sim"].to_list(), "real": tab["real"].to_list(), "policy": tab[result.by].cast(str).to_list(),
        "sim_lo": tab["sim_lo"].to_list(), "sim_hi": tab["sim_hi"].to_list(), "real_lo": tab["real_lo"].to_list(),
        "real_hi": tab["real_hi"].to_list(), "row": rows,
    }, columns=["sim", "real", "policy", "sim_lo", "sim_hi", "real_lo", "real_hi", "row"])
    lo = float(min(frame[["sim_lo", "real_lo"]].min().min(), 0.0)) if len(frame) else 0.0
    hi = float(max(frame[["sim_hi", "real_hi"]].max().max(), 1.0 if result.kind == "rate" else 0.0)) if len(frame) else 1.0
    identity = hv.Curve([(lo, lo), (hi, hi)], kdims=["sim"], vdims=["real"]).opts(color="black", line_dash="dashed", line_width=1)
    vbars = hv.Segments(frame.assign(x0=frame["sim"], y0=frame["real_lo"], x1=frame["sim"], y1=frame["real_hi"]),
                        kdims=["x0", "y0", "x1", "y1"]).opts(color="#888", line_width=1.5)
    hbars = hv.Segments(frame.assign(x0=frame["sim_lo"], y0=frame["real"], x1=frame["sim_hi"], y1=frame["real"]),
                        kdims=["x0", "y0", "x1", "y1"]).opts(color="#888", line_width=1.5)
    pos = {p: (s, r) for p, s, r in zip(frame["policy"], frame["sim"], frame["real"], strict=True)}
    wrong = [(*pos[a], *pos[b]) for a, b in zip(result.misranked["a"].to_list(), result.misranked["b"].to_list(), strict=True)
             if a in pos and b in pos]
    mis = hv.Segments(wrong, kdims=["x0", "y0", "x1", "y1"]).opts(color="#d62728", line_width=3, alpha=0.8)
    pts = hv.Scatter(frame, kdims=[hv.Dimension("sim", label=f"sim {result.metric}")],
                     vdims=[hv.Dimension("real", label=f"real {result.metric}"), "policy", "row"]).opts(
        size=11, color="#1f77b4", tools=["hover", "tap"], nonselection_alpha=0.6)
    labels = hv.Labels(frame, kdims=["sim", "real"], vdims=["policy"]).opts(
        text_font_size="10pt", xoffset=0.01, text_align="left", text_color="#333")
    if on_select is not None:
        hv.streams.Selection1D(source=pts).add_subscriber(_on_tap(frame["row"].tolist(), on_select))
    title = (f"sim vs real {result.metric}: Kendall τ {result.kendall_tau:.2f}, MMRV {result.mmrv:.3f}"
             f"{f', {len(wrong)} mis-ranked pair(s) in red' if wrong else ''}")
    return (identity * vbars * hbars * mis * pts * labels).opts(title=title, height=height, responsive=True,
                                                                 toolbar="above", xlim=(lo, hi), ylim=(lo, hi))
