"""HoloViews plots of catalogs, comparisons and runs (Bokeh backend).

Every function takes plain data (a polars catalog, a
:class:`~workbench.comparison.CompareResult`, :class:`~workbench.model.Run` objects) and
returns a HoloViews object. The same object renders inline in a notebook, inside a
Panel app (``pn.pane.HoloViews``) and, through ``hv.render(obj, backend="bokeh")``,
in the self-contained HTML report. The data preparation (:func:`rate_cells`,
:func:`signal_names`) is separate from the drawing so that the UI can reuse it
without drawing.

Examples
--------
>>> import polars as pl
>>> from workbench.viz import plots
>>> cat = pl.DataFrame({
...     "run_id": ["a", "b", "c", "d"],
...     "hardware.robot": ["arm-a", "arm-a", "arm-b", "arm-b"],
...     "model.version": ["v1", "v2", "v1", "v2"],
...     "metrics.success": [1.0, 1.0, 0.0, 1.0],
... })
>>> cells = plots.rate_cells(cat, x=["hardware.robot"], y=["model.version"])
>>> cells.select("x", "y", "n", "k").sort("x", "y").rows()
[('arm-a', 'v1', 1, 1), ('arm-a', 'v2', 1, 1), ('arm-b', 'v1', 1, 0), ('arm-b', 'v2', 1, 1)]
>>> type(plots.success_heatmap(cat, x=["hardware.robot"], y=["model.version"])).__name__
'Overlay'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError

if TYPE_CHECKING:
    import holoviews as hv
    import polars as pl

    from workbench.comparison import CompareResult
    from workbench.model import Run
    from workbench.trends import TrendResult

__all__ = [
    "attribution_bars",
    "difference_intervals",
    "holoviews",
    "metric_distribution",
    "metric_expr",
    "metric_summary",
    "rate_cells",
    "rate_heatmap",
    "signal_names",
    "signals",
    "success_heatmap",
    "trend_chart",
    "trend_charts",
]

MISSING_LABEL = "∅"
"""Label of a cell whose factor value is missing (null)."""
LABEL_SEPARATOR = " · "
"""Joins the values of several factors into one axis label."""
MAX_POINTS = 4000
"""Curves longer than this are decimated (by stride) before drawing."""
VERDICT_COLORS = {
    "improvement": "#2ca02c",
    "regression": "#d62728",
    "no_change": "#7f7f7f",
    "non_inferior": "#17becf",
    "undecided": "#ff7f0e",
    "changed": "#1f77b4",
}
SEVERITY_COLORS = {"info": "#1f77b4", "warning": "#ff7f0e", "error": "#d62728"}
"""Shade of a quality finding in :func:`signals`, by severity."""
_Z95 = 1.959963984540054


def holoviews() -> Any:
    """HoloViews with the Bokeh plotting backend loaded (without notebook output).

    >>> holoviews().Store.current_backend
    'bokeh'
    """
    import holoviews as hv
    import holoviews.plotting.bokeh

    if hv.Store.current_backend != "bokeh":
        hv.Store.set_current_backend("bokeh")
    return hv


# --------------------------------------------------------------------------- data preparation


def metric_expr(catalog: pl.DataFrame, metric: str) -> pl.Expr:
    """Polars expression of a metric column (``metrics.<name>`` or ``<name>``) as float.

    ``success`` falls back to ``outcome == "success"`` (unknown outcome → null) when
    metrics have not been computed yet.
    """
    import polars as pl

    for col in (f"metrics.{metric}", metric):
        if col in catalog.columns:
            return pl.col(col).cast(pl.Float64, strict=False)
    if metric == "success" and "outcome" in catalog.columns:
        return (
            pl.when(pl.col("outcome") == "success").then(1.0)
            .when(pl.col("outcome") == "failure").then(0.0)
            .otherwise(None)
        )
    have = [c.removeprefix("metrics.") for c in catalog.columns if c.startswith("metrics.")]
    msg = f"no metric {metric!r} in the catalog; metrics: {', '.join(have) or 'none (run wb.metrics.compute)'}"
    raise ConfigError(msg)


def _label(columns: Sequence[str]) -> pl.Expr:
    import polars as pl

    if not columns:
        return pl.lit("all")
    parts = [pl.col(c).cast(pl.String).fill_null(MISSING_LABEL) for c in columns]
    return pl.concat_str(parts, separator=LABEL_SEPARATOR) if len(parts) > 1 else parts[0]


def _check_columns(catalog: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in catalog.columns]
    if missing:
        factors = [c for c in catalog.columns if c.split(".", 1)[0] in {"hardware", "environment", "model", "scenario"}]
        msg = f"no factor column(s) {missing}; factors: {', '.join(factors)}"
        raise ConfigError(msg)


def _frame(data: Any, columns: Sequence[str]) -> Any:
    """A pandas DataFrame whose text columns hold Python objects (HoloViews reshapes them;
    pandas' Arrow-backed strings cannot be reshaped)."""
    import pandas as pd

    frame = pd.DataFrame(data, columns=list(columns))
    for col in frame.columns:
        if frame[col].dtype.kind not in "biufcmM":
            frame[col] = frame[col].astype(object)
    return frame


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized Wilson 95 % interval (same formula as :func:`workbench.comparison.wilson_interval`)."""
    k = k.astype(np.float64)
    n = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        z2 = _Z95 * _Z95
        denom = 1 + z2 / n
        center = (p + z2 / (2 * n)) / denom
        half = _Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def rate_cells(
    catalog: pl.DataFrame,
    *,
    x: Sequence[str],
    y: Sequence[str],
    metric: str = "success",
) -> pl.DataFrame:
    """Rate of a 0/1 metric per cell of two factor groups, with Wilson 95 % intervals.

    Parameters
    ----------
    catalog
        A store catalog (``store.runs()``), possibly filtered.
    x, y
        Factor columns of the horizontal and vertical axis; several factors are
        joined into one label (``"arm-b · dim"``).
    metric
        A rate metric (0/1 values); runs where it is null are not counted.

    Returns
    -------
    polars.DataFrame
        ``x``, ``y``, ``n`` (runs), ``k`` (successes), ``rate``, ``lo``, ``hi``,
        ``runs`` (the run ids of the cell), sorted by ``x`` then ``y``.
    """
    import polars as pl

    _check_columns(catalog, [*x, *y])
    value = metric_expr(catalog, metric)
    df = catalog.select(
        pl.col("run_id"), _label(x).alias("x"), _label(y).alias("y"), value.alias("_v")
    ).filter(pl.col("_v").is_not_null() & pl.col("_v").is_not_nan())
    g = (
        df.group_by("x", "y")
        .agg(pl.len().alias("n"), pl.col("_v").sum().alias("k"), pl.col("run_id").alias("runs"))
        .with_columns(pl.col("k").round(0).cast(pl.Int64), pl.col("n").cast(pl.Int64))
        .sort("x", "y")
    )
    k = g["k"].to_numpy()
    n = g["n"].to_numpy()
    lo, hi = _wilson(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = k / n
    return g.with_columns(
        pl.Series("rate", rate, dtype=pl.Float64),
        pl.Series("lo", lo, dtype=pl.Float64),
        pl.Series("hi", hi, dtype=pl.Float64),
    ).select("x", "y", "n", "k", "rate", "lo", "hi", "runs")


# --------------------------------------------------------------------------- comparison plots


def rate_heatmap(
    cells: pl.DataFrame,
    *,
    x_label: str = "x",
    y_label: str = "y",
    title: str = "success rate [95 % CI]",
    height: int = 320,
    width: int | None = None,
) -> hv.Overlay:
    """Heatmap of :func:`rate_cells` output, each cell labelled ``rate [lo, hi] n=…``.

    The heatmap is the first layer of the returned overlay (attach a
    ``hv.streams.Tap`` to it to learn which cell was clicked).
    """

    hv = holoviews()
    rows = cells.select("x", "y", "n", "k", "rate", "lo", "hi").to_dicts()
    for r in rows:
        r["text"] = (
            f"{r['rate']:.2f}\n[{r['lo']:.2f}, {r['hi']:.2f}]\n{r['k']}/{r['n']}"
            if r["n"] and not math.isnan(r["rate"]) else "n=0"
        )
    frame = _frame(rows, columns=["x", "y", "n", "k", "rate", "lo", "hi", "text"])
    vdims = [hv.Dimension("rate", range=(0, 1)), "lo", "hi", "n", "k"]
    kdims = [hv.Dimension("x", label=x_label), hv.Dimension("y", label=y_label)]
    heat = hv.HeatMap(frame.drop(columns=["text"]), kdims=kdims, vdims=vdims).opts(
        cmap="RdYlGn", clim=(0.0, 1.0), colorbar=True, tools=["hover", "tap"],
        title=title, height=height, responsive=width is None, **({"width": width} if width else {}),
        xrotation=0, toolbar="above", default_tools=["save", "reset"],
        hover_tooltips=[(x_label, "@x"), (y_label, "@y"), ("rate", "@rate{0.00}"),
                        ("95% CI", "[@lo{0.00}, @hi{0.00}]"), ("runs", "@k / @n")],
    )
    labels = hv.Labels(frame, kdims=kdims, vdims=["text"]).opts(text_font_size="9pt", text_color="black")
    return heat * labels


def success_heatmap(
    catalog: pl.DataFrame,
    *,
    x: Sequence[str],
    y: Sequence[str],
    metric: str = "success",
    title: str | None = None,
    height: int = 320,
    width: int | None = None,
) -> hv.Overlay:
    """Success rate ± Wilson 95 % CI per cell over two factor groups (see :func:`rate_cells`)."""
    cells = rate_cells(catalog, x=x, y=y, metric=metric)
    return rate_heatmap(
        cells,
        x_label=LABEL_SEPARATOR.join(x) or "all",
        y_label=LABEL_SEPARATOR.join(y) or "all",
        title=title or f"{metric} rate [95 % CI]",
        height=height,
        width=width,
    )


def metric_distribution(
    catalog: pl.DataFrame,
    metric: str,
    *,
    by: str,
    group: Sequence[str] = (),
    height: int = 320,
    width: int | None = None,
) -> hv.BoxWhisker:
    """Box plots of a metric per variant (*by*), optionally nested in factor *group* cells."""
    import polars as pl

    hv = holoviews()
    _check_columns(catalog, [by, *group])
    df = catalog.select(
        _label(group).alias("cell"),
        pl.col(by).cast(pl.String).fill_null(MISSING_LABEL).alias("variant"),
        metric_expr(catalog, metric).alias("value"),
    ).filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan()).sort("cell", "variant")
    frame = _frame(df.to_dict(as_series=False), columns=["cell", "variant", "value"])
    kdims = ([hv.Dimension("cell", label=LABEL_SEPARATOR.join(group))] if group else []) + [hv.Dimension("variant", label=by)]
    box = hv.BoxWhisker(frame, kdims=kdims, vdims=[hv.Dimension("value", label=metric)])
    return box.opts(
        title=f"{metric} per {by}", height=height, responsive=width is None,
        **({"width": width} if width else {}),
        box_fill_color="variant", cmap="Category10", show_legend=False, xrotation=0 if not group else 30,
        tools=["hover"], toolbar="above", default_tools=["save", "reset"],
    )


def metric_summary(
    catalog: pl.DataFrame,
    metric: str,
    *,
    by: str,
    group: Sequence[str] = (),
    height: int = 320,
    width: int | None = None,
) -> hv.Overlay:
    """Distribution summary of a metric per variant (and cell): median, quartiles, 5–95 %.

    The quantiles are computed in polars, so the plot stays cheap to update for catalogs
    of many thousand runs (the interactive views use it; :func:`metric_distribution`
    draws full box plots with outliers).
    """
    import polars as pl

    hv = holoviews()
    _check_columns(catalog, [by, *group])
    value = metric_expr(catalog, metric)
    df = catalog.select(
        _label(group).alias("cell"),
        pl.col(by).cast(pl.String).fill_null(MISSING_LABEL).alias("variant"),
        value.alias("v"),
    ).filter(pl.col("v").is_not_null() & pl.col("v").is_not_nan())
    stats = (
        df.group_by("cell", "variant")
        .agg(
            pl.len().alias("n"),
            pl.col("v").median().alias("median"),
            pl.col("v").quantile(0.25, "linear").alias("q25"),
            pl.col("v").quantile(0.75, "linear").alias("q75"),
            pl.col("v").quantile(0.05, "linear").alias("q05"),
            pl.col("v").quantile(0.95, "linear").alias("q95"),
        )
        .sort("cell", "variant")
        .with_columns(
            (pl.col("cell") + LABEL_SEPARATOR + pl.col("variant") if group else pl.col("variant")).alias("label"),
            (pl.col("median") - pl.col("q25")).alias("iqr_lo"), (pl.col("q75") - pl.col("median")).alias("iqr_hi"),
            (pl.col("median") - pl.col("q05")).alias("r_lo"), (pl.col("q95") - pl.col("median")).alias("r_hi"),
        )
    )
    frame = _frame(stats.to_dict(as_series=False), stats.columns)
    label_dim = hv.Dimension("label", label=LABEL_SEPARATOR.join([*group, by]))
    value_dim = hv.Dimension("median", label=metric)
    outer = hv.ErrorBars(frame, kdims=[label_dim], vdims=[value_dim, "r_lo", "r_hi"]).opts(line_width=1, color="#777777")
    inner = hv.ErrorBars(frame, kdims=[label_dim], vdims=[value_dim, "iqr_lo", "iqr_hi"]).opts(line_width=6, color="#4c72b0")
    mid = hv.Scatter(frame, kdims=[label_dim], vdims=[value_dim, "variant", "n", "q25", "q75", "q05", "q95"]).opts(
        color="variant", cmap="Category10", line_color="black", size=8, marker="square", tools=["hover"], show_legend=False)
    return (outer * inner * mid).opts(
        title=f"{metric} per {by}: median, quartiles, 5–95 %", height=height, responsive=width is None,
        **({"width": width} if width else {}), xrotation=30 if group else 0, toolbar="above", default_tools=["save", "reset"],
    )


def attribution_bars(
    attribution: pl.DataFrame,
    metric: str,
    *,
    top: int = 10,
    height: int = 320,
    width: int | None = None,
) -> hv.Bars:
    """Horizontal bars: share of *metric*'s variation explained by each factor / interaction."""
    import polars as pl

    hv = holoviews()
    df = attribution.filter(pl.col("metric") == metric).sort("share", descending=True).head(top)
    frame = _frame(
        {"term": df["term"].to_list(), "share": df["share"].to_list(), "order": df["order"].to_list()},
        columns=["term", "share", "order"],
    ).iloc[::-1]
    measure = df["measure"][0] if df.height else "variation"
    bars = hv.Bars(frame, kdims=[hv.Dimension("term", label="factor / interaction")],
                   vdims=[hv.Dimension("share", label=f"share of {measure}", range=(0, None)), "order"])
    return bars.opts(
        invert_axes=True, title=f"what explains {metric}", height=height,
        responsive=width is None, **({"width": width} if width else {}),
        color="order", cmap=["#4c72b0", "#dd8452"], tools=["hover"],
        toolbar="above", default_tools=["save", "reset"],
    )


def difference_intervals(
    result: CompareResult,
    metric: str,
    *,
    height: int = 320,
    width: int | None = None,
) -> hv.Overlay:
    """Forest plot: candidate − baseline with its 95 % interval per cell, colored by verdict."""
    import polars as pl

    hv = holoviews()
    tab = result.table.filter(pl.col("metric") == metric)
    labels = tab.select(_label(result.within).alias("cell"))["cell"].to_list() if result.within else ["all"] * tab.height
    frame = _frame({
        "cell": labels,
        "difference": tab["difference"].to_list(),
        "lo": (tab["difference"] - tab["difference_lo"]).to_list(),
        "hi": (tab["difference_hi"] - tab["difference"]).to_list(),
        "verdict": tab["verdict"].to_list(),
        "p_adjusted": tab["p_adjusted"].to_list(),
    }, columns=["cell", "difference", "lo", "hi", "verdict", "p_adjusted"])
    cell_dim = hv.Dimension("cell", label=LABEL_SEPARATOR.join(result.within) or "cell")
    diff_dim = hv.Dimension("difference", label=f"{metric}: {result.candidate} − {result.baseline}")
    bars = hv.ErrorBars(frame, kdims=[cell_dim], vdims=[diff_dim, "lo", "hi"]).opts(
        invert_axes=True, line_width=2)
    pts = hv.Scatter(frame, kdims=[cell_dim], vdims=[diff_dim, "verdict", "p_adjusted"]).opts(
        invert_axes=True, size=9, color="verdict",
        cmap={k: v for k, v in VERDICT_COLORS.items()}, tools=["hover"], show_legend=True)
    zero = hv.VLine(0.0).opts(color="black", line_dash="dashed", line_width=1)
    return (bars * pts * zero).opts(
        title=f"{metric}: difference per cell [95 % CI]", height=height,
        responsive=width is None, **({"width": width} if width else {}),
        toolbar="above", default_tools=["save", "reset"],
    )


# --------------------------------------------------------------------------- trends


def _on_tap(rows: list[int], on_select: Callable[[int], None]) -> Callable[..., None]:
    """A Selection1D subscriber calling *on_select* with the table row of the first point tapped."""

    def tapped(index: list[int]) -> None:
        if index:
            on_select(int(rows[index[0]]))

    return tapped


def trend_chart(
    result: TrendResult,
    *,
    height: int = 300,
    width: int | None = None,
    on_select: Callable[[int], None] | None = None,
) -> hv.Overlay | hv.Layout:
    """The charts of :func:`trend_charts` in one object: an Overlay for one cell, else a
    one-column Layout.

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.trends import trend
    >>> cat = pl.DataFrame({"run_id": list("abcdef"), "metrics.success": [1, 1, 0, 1, 0, 0],
    ...                     "start_ns": [0, 1, 86_400 * 10**9, 2 * 86_400 * 10**9, 3 * 86_400 * 10**9, 3 * 86_400 * 10**9 + 1]})
    >>> type(trend_chart(trend(cat, over="day"))).__name__
    'Overlay'
    """
    hv = holoviews()
    charts = trend_charts(result, height=height, width=width, on_select=on_select)
    if not charts:
        return hv.Overlay([hv.Text(0, 0, "no window has a value")]).opts(height=height)
    return charts[0] if len(charts) == 1 else hv.Layout(charts).cols(1)


def trend_charts(
    result: TrendResult,
    *,
    height: int = 300,
    width: int | None = None,
    on_select: Callable[[int], None] | None = None,
) -> list[hv.Overlay]:
    """Control chart of a trend: per window the metric and its interval, the center
    line and control limits (steps, as they follow each window's runs), points out of
    the limits in red, and a red triangle where a change starts. One chart per cell.

    Parameters
    ----------
    result
        A :func:`workbench.trends.trend` result.
    height, width
        Size of each chart (width: fill the container when None).
    on_select
        Called with the row of :attr:`~workbench.trends.TrendResult.table` of a point
        clicked (tapped) in the chart, e.g. to open that window's runs.

    Returns
    -------
    list of holoviews.Overlay
        One chart per cell with a measured window (shown one per pane in a served
        page: a whole Layout in one stretching pane draws empty frames).

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.trends import trend
    >>> cat = pl.DataFrame({"run_id": list("abcd"), "metrics.success": [1, 0, 1, 0], "hardware.robot": list("xyxy"),
    ...                     "start_ns": [0, 1, 86_400 * 10**9, 86_400 * 10**9 + 1]})
    >>> len(trend_charts(trend(cat, over="day", within="hardware.robot")))
    2
    """
    import polars as pl

    hv = holoviews()
    tab = result.table.with_row_index("row")
    by_time = tab["window_start"].null_count() < tab.height
    x = "window_start" if by_time else "window"
    x_dim = hv.Dimension(x, label=f"run start ({result.over}, UTC)" if by_time else result.over)
    unit = f" ({result.unit})" if result.unit else ""
    y_dim = hv.Dimension("value", label=f"{result.metric}{' rate' if result.kind == 'rate' else ''}{unit}")
    cells = tab.partition_by(result.within, as_dict=True, maintain_order=True) if result.within else {(): tab}
    charts = []
    for key, part in cells.items():
        part = part.filter(pl.col("n") > 0)
        if part.height == 0:
            continue
        xs = part[x].dt.replace_time_zone(None).to_list() if by_time else part["window"].to_list()
        frame = _frame({
            x: xs, "value": part["value"].to_list(),
            "lo": (part["value"] - part["lo"]).fill_nan(None).fill_null(0.0).to_list(),
            "hi": (part["hi"] - part["value"]).fill_nan(None).fill_null(0.0).to_list(),
            "interval_lo": part["lo"].to_list(), "interval_hi": part["hi"].to_list(),
            "n": part["n"].to_list(), "window": part["window"].to_list(), "row": part["row"].to_list(),
            "lcl": part["lcl"].to_list(), "ucl": part["ucl"].to_list(), "center": part["center"].to_list(),
            "state": ["change" if c else ("out of limits" if o else "in limits")
                      for c, o in zip(part["change"].to_list(), part["out_of_control"].to_list(), strict=True)],
        }, columns=list(dict.fromkeys([x, "value", "lo", "hi", "interval_lo", "interval_hi", "n", "window", "row", "lcl", "ucl",
                                       "center", "state"])))
        bars = hv.ErrorBars(frame, kdims=[x_dim], vdims=[y_dim, "lo", "hi"]).opts(line_width=1.5, color="#444")
        line = hv.Curve(frame, kdims=[x_dim], vdims=[y_dim]).opts(color="#1f77b4", line_width=1.5)
        center = hv.Curve(frame, kdims=[x_dim], vdims=[hv.Dimension("center", label=y_dim.label)]).opts(
            color="black", line_dash="dashed", line_width=1)
        ucl = hv.Curve(frame, kdims=[x_dim], vdims=[hv.Dimension("ucl", label=y_dim.label)]).opts(
            color="#d62728", line_dash="dotted", line_width=1, interpolation="steps-mid")
        lcl = hv.Curve(frame, kdims=[x_dim], vdims=[hv.Dimension("lcl", label=y_dim.label)]).opts(
            color="#d62728", line_dash="dotted", line_width=1, interpolation="steps-mid")
        pts = hv.Scatter(frame, kdims=[x_dim], vdims=[y_dim, "n", *(["window"] if by_time else []), "interval_lo", "interval_hi",
                                                      "state", "row"]).opts(
            size=8, color="state", cmap={"in limits": "#1f77b4", "out of limits": "#d62728", "change": "#d62728"},
            marker=hv.dim("state").categorize({"change": "triangle"}, default="circle"),
            tools=["hover", "tap"], show_legend=False, nonselection_alpha=0.6)
        if on_select is not None:
            hv.streams.Selection1D(source=pts).add_subscriber(_on_tap(frame["row"].tolist(), on_select))
        cell = LABEL_SEPARATOR.join(f"{w} = {v}" for w, v in zip(result.within, key, strict=True))
        title = f"{cell}: " * bool(cell) + f"{result.metric} per {result.over}"
        n_changes = int(part["change"].sum())
        title += f" — {n_changes} change(s)" if n_changes else ""
        charts.append((center * ucl * lcl * bars * line * pts).opts(
            title=title, height=height, responsive=width is None, **({"width": width} if width else {}),
            toolbar="above", default_tools=["save", "reset", "pan", "wheel_zoom"], show_legend=False,
            **({"xrotation": 45} if not by_time and len(xs) > 6 else {})))
    return charts


# --------------------------------------------------------------------------- run plots


MAX_COMPONENTS = 64
"""Components of a vector variable offered one by one (a 26-joint humanoid's state fits)."""


def signal_names(run: Run) -> list[str]:
    """Plottable signals of a run: ``stream.var`` or ``stream.var[component]``.

    Encoded images and byte streams are left out.
    """
    out: list[str] = []
    for name, ds in run.streams.items():
        if ds.attrs.get("kind") in {"image_encoded", "video_ref"}:
            continue
        for var, da in ds.data_vars.items():
            if "time" not in da.dims or da.dtype.kind not in "fiub":
                continue
            extra = [d for d in da.dims if d != "time"]
            if not extra:
                out.append(f"{name}.{var}")
            elif len(extra) == 1 and extra[0] in da.coords and da.sizes[extra[0]] <= MAX_COMPONENTS:
                out.extend(f"{name}.{var}[{c}]" for c in da.coords[extra[0]].values.tolist())
    return out


def _parse_signal(spec: str) -> tuple[str, str | None]:
    if spec.endswith("]") and "[" in spec:
        base, _, comp = spec[:-1].partition("[")
        return base, comp
    return spec, None


def _signal_values(run: Run, spec: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(stream name, int64 times, float values) of *spec* in *run*, or None when absent."""
    base, comp = _parse_signal(spec)
    for name in sorted(run.streams, key=len, reverse=True):  # longest stream name first: "tf.tool0.translation"
        if base.startswith(name + "."):
            var = base[len(name) + 1:]
            ds = run.streams[name]
            if var not in ds.data_vars:
                return None
            da = ds[var]
            extra = [d for d in da.dims if d != "time"]
            if comp is not None:
                if len(extra) != 1 or comp not in [str(v) for v in da.coords[extra[0]].values.tolist()]:
                    return None
                idx = [str(v) for v in da.coords[extra[0]].values.tolist()].index(comp)
                da = da.isel({extra[0]: idx})
            elif extra:
                return None
            t = np.asarray(da["time"].values).astype(np.int64)
            return name, t, np.asarray(da.values, dtype=np.float64)
    return None


MARK_COLOR = "#9467bd"
"""Shade of the time windows people marked (``Store.mark``) in :func:`signals`."""


def _marked_windows(run: Any, shift: int, label: str) -> list[dict[str, Any]]:
    """The run's marked windows (label events with a start and an end in their detail)
    on the aligned timeline."""
    import json

    ev = run.events
    if not ev.height or not {"origin", "detail"} <= set(ev.columns):
        return []
    rows = []
    for kind, origin, detail in ev.select("kind", "origin", "detail").iter_rows():
        if origin != "label" or not detail:
            continue
        try:
            d = json.loads(detail)
        except ValueError:
            continue
        if isinstance(d, dict) and isinstance(d.get("start"), int) and isinstance(d.get("end"), int):
            rows.append({"x0": (d["start"] - shift) / 1e9, "x1": (d["end"] - shift) / 1e9,
                         "kind": kind, "note": str(d.get("note") or ""), "run": label})
    return rows


def signals(
    runs: Sequence[Run],
    names: Sequence[str],
    *,
    on: str = "start",
    findings: Mapping[str, pl.DataFrame] | None = None,
    labels: Mapping[str, str] | None = None,
    height: int = 220,
    width: int | None = None,
    brush: bool = False,
) -> hv.Layout:
    """Time series of *names* for several runs on one aligned timeline.

    One panel per signal (stacked, shared time axis in seconds from the anchor), one
    curve per run, the runs' events as vertical lines and the quality findings of
    the signal's stream (or of the whole run) as shaded spans.

    Parameters
    ----------
    runs
        Loaded runs.
    names
        Signals as listed by :func:`signal_names` (``joint_states.position[joint_2]``).
    on
        Alignment anchor, see :func:`workbench.sync.align_runs` (``start``, ``event:grasp``).
    findings
        Run id → quality findings table (``store.get_table(run_id, "quality_findings")``).
    labels
        Run id → legend label (default: the run's name or id).
    brush
        Offer the x-range select tool, to brush a time window (e.g. to mark it as an
        event; attach ``hv.streams.BoundsX(source=panel)`` to read it).
    """

    from workbench.sync import align_runs

    hv = holoviews()
    if not runs or not names:
        return hv.Layout([hv.Curve([], "time_s", "value").opts(
            title="select runs and signals", height=height, responsive=width is None,
            **({"width": width} if width else {}))])
    alignment = align_runs(list(runs), on=on)
    findings = findings or {}
    panels = []
    for spec in names:
        layers: list[Any] = []
        ev_rows: list[dict[str, Any]] = []
        span_rows: list[dict[str, Any]] = []
        mark_rows: list[dict[str, Any]] = []
        for run in runs:
            label = (labels or {}).get(run.run_id) or run.info.name or run.run_id
            got = _signal_values(run, spec)
            shift = alignment.shifts[run.run_id]
            if got is None:
                continue
            stream, t, v = got
            step = max(1, len(t) // MAX_POINTS)
            ts = (t[::step] - shift) / 1e9
            layers.append(hv.Curve((ts, v[::step]), hv.Dimension("time_s", label=f"time from {alignment.on} (s)"),
                                   hv.Dimension("value", label=spec), label=label)
                          .opts(tools=["xbox_select"] if brush else []))
            for tt, kind in zip(run.events["time"].to_list(), run.events["kind"].to_list(), strict=True):
                ev_rows.append({"x": (tt - shift) / 1e9, "kind": kind, "run": label})
            mark_rows.extend(_marked_windows(run, shift, label))
            f = findings.get(run.run_id)
            if f is not None and f.height:
                for r in f.iter_rows(named=True):
                    if r.get("stream") not in (None, "", stream):
                        continue
                    if r.get("start_ns") is None or r.get("end_ns") is None:
                        continue
                    x0 = (int(r["start_ns"]) - shift) / 1e9
                    x1 = (int(r["end_ns"]) - shift) / 1e9
                    if x1 - x0 < 0.02:  # make instant findings visible
                        x0, x1 = x0 - 0.05, x1 + 0.05
                    span_rows.append({"x0": x0, "x1": x1, "check": r.get("check"), "severity": r.get("severity"), "run": label})
        if span_rows:
            layers.append(hv.VSpans(_frame(span_rows, ["x0", "x1", "check", "severity", "run"]), kdims=["x0", "x1"], vdims=["check", "severity", "run"])
                          .opts(color=hv.dim("severity").categorize(SEVERITY_COLORS, default="#d62728"), alpha=0.2, tools=["hover"]))
        if mark_rows:  # windows people marked: shaded, with their kind and note on hover
            layers.append(hv.VSpans(_frame(mark_rows, ["x0", "x1", "kind", "note", "run"]), kdims=["x0", "x1"],
                                    vdims=["kind", "note", "run"]).opts(color=MARK_COLOR, alpha=0.15, tools=["hover"]))
        if ev_rows:
            layers.append(hv.VLines(_frame(ev_rows, ["x", "kind", "run"]), kdims=["x"], vdims=["kind", "run"])
                          .opts(color="#555555", line_dash="dotted", line_width=1, tools=["hover"]))
        if not layers:
            layers.append(hv.Curve([], "time_s", spec))
        panels.append(hv.Overlay(layers).opts(
            title=spec, height=height, responsive=width is None, **({"width": width} if width else {}),
            legend_position="right", show_legend=True, toolbar="above",
            default_tools=["save", "pan", "wheel_zoom", "box_zoom", "reset"],
        ))
    return hv.Layout(panels).cols(1).opts(shared_axes=True)
