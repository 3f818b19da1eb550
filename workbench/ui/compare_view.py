"""CompareView: success rate per cell, metric distributions per variant, attribution.

The heatmap's rows are the variants (``by``), its columns the cells (``x``, one or
more factors). Clicking a heatmap cell, or a cell of the :class:`FactorGrid`, selects
that cell's runs in the shared :class:`DataStore`. The full comparison (intervals,
tests, verdicts) is computed by :func:`workbench.comparison.compare` on demand
(button), or automatically for catalogs up to ``auto_compare_max`` runs.
"""

from __future__ import annotations

import html
import math
from typing import Any, cast

import panel as pn
import param
import polars as pl

from workbench.model import FACTOR_GROUPS
from workbench.ui.datastore import DataStore, NoNone
from workbench.ui.factor_grid import FactorGrid, cells_records
from workbench.viz import plots

__all__ = ["CompareView"]


def _empty_cells() -> pl.DataFrame:
    return pl.DataFrame(schema={"x": pl.String, "y": pl.String, "n": pl.Int64, "k": pl.Int64, "rate": pl.Float64,
                                "lo": pl.Float64, "hi": pl.Float64})


def _empty_attribution() -> pl.DataFrame:
    return pl.DataFrame(schema={"metric": pl.String, "term": pl.String, "order": pl.Int64, "share": pl.Float64,
                                "measure": pl.String})


class CompareView(pn.viewable.Viewer):
    """Plots of a comparison between the variants of one factor.

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.ui import CompareView, DataStore
    >>> cat = pl.DataFrame({"run_id": list("abcd"), "name": list("abcd"),
    ...                     "hardware.robot": ["arm-a", "arm-a", "arm-b", "arm-b"],
    ...                     "model.version": ["v1", "v2", "v1", "v2"],
    ...                     "metrics.success": [1.0, 0.0, 1.0, 1.0]})
    >>> view = CompareView(data=DataStore(catalog=cat), by="model.version", x=["hardware.robot"])
    >>> view.select_cell("arm-a", "v2")
    ['b']
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state this view reads and selects in.")
    by: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True,
                                                    doc="Factor whose values are the variants (heatmap rows).")
    x = param.ListSelector(default=[], objects=[], doc="Factor(s) whose levels are the heatmap columns (combined when several).")
    rate: param.Selector[str] = param.Selector(default="success", objects=["success"],
                                               doc="Rate metric (0/1 per run) of the heatmap and grid.")
    metric: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True,
                                                        doc="Continuous metric shown as distributions per variant.")
    interactions = param.Boolean(default=False, doc="Include two-factor interactions in the attribution chart (slower).")
    auto_compare_max = param.Integer(default=2000, bounds=(0, None), doc="""
        Run the full comparison (bootstrap intervals, tests, verdicts) automatically when
        the filtered catalog has at most this many runs; above, use the button.""")
    plan_drop = param.Number(default=0.1, bounds=(0.01, 0.9), step=0.05, doc="""
        Drop in the rate to plan for: the "Runs needed" table gives, per cell, the runs
        per side that detect it with 80 % power (``workbench plan``).""")
    n_boot = param.Integer(default=500, bounds=(100, 20000), doc="Bootstrap replicates of the comparison in the view.")
    cell = param.Dict(default={}, doc="The last clicked cell: {'x': column label, 'y': variant label}.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        with param.parameterized.discard_events(self):  # no update() before the panes exist
            self._defaults()
        self.cells = pl.DataFrame()
        self.result: Any = None
        self._tap: Any = None
        self._pipes: dict[str, Any] = {}
        hv_opts = {"sizing_mode": "stretch_width", "min_height": 300}
        self.heatmap = pn.pane.HoloViews(None, **hv_opts, css_classes=["wb-heatmap"])
        self.grid = FactorGrid(sizing_mode="stretch_width", css_classes=["wb-factor-grid-pane"])
        self.distribution = pn.pane.HoloViews(None, **hv_opts)
        self._attr_panes = [pn.pane.HoloViews(None, **hv_opts) for _ in range(2)]
        self.attribution = pn.Row(*self._attr_panes, sizing_mode="stretch_width")
        self.verdicts = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                             layout="fit_data_table", css_classes=["wb-verdicts"])
        self.plan = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                         layout="fit_data_table", css_classes=["wb-plan"])
        self.plan_status = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-plan-status"])
        self.compare_button = pn.widgets.Button(label="Compare variants (intervals, tests, verdicts)", color="primary")
        self.compare_button.on_click(lambda _e: self.run_compare())
        self.status = pn.pane.Markdown("", margin=(0, 10))
        self.grid.param.watch(self._on_grid, "selected")
        self.data.param.watch(lambda _e: self.update(), "filtered")
        self.rebuild()

    def _defaults(self) -> None:
        """Choose ``by``, ``x``, ``rate`` and ``metric`` from the catalog where not given."""
        factors = self.data.factors
        cat = self.data.catalog
        order = {g: i for i, g in enumerate(FACTOR_GROUPS)}
        varying = sorted((f for f in factors if 2 <= cat[f].n_unique() <= 60), key=lambda f: order.get(f.split(".", 1)[0], 9))
        self.param.by.objects = factors
        self.param.x.objects = factors
        if self.by is None:
            self.by = "model.version" if "model.version" in varying else (varying[0] if varying else None)
        if not self.x:
            self.x = [f for f in varying if f != self.by and not f.startswith("scenario.")][:2]
        metrics = self.data.metrics
        rates = [m for m in metrics if m == "success" or set(cat[f"metrics.{m}"].drop_nulls().unique().to_list()) <= {0.0, 1.0}]
        self.param.rate.objects = rates or ["success"]
        if self.rate not in self.param.rate.objects:
            self.rate = self.param.rate.objects[0]
        continuous = [m for m in metrics if m not in rates]
        self.param.metric.objects = continuous
        if self.metric is None and continuous:
            self.metric = "time_to_success" if "time_to_success" in continuous else continuous[0]

    # ------------------------------------------------------------------ updates

    @param.depends("by", "x", "rate", "metric", "interactions", watch=True)
    def rebuild(self) -> None:
        """Redraw everything for new axes or metrics (new plots; filters only update them)."""
        self._pipes = {}
        self.update()

    def _show(self, key: str, pane: pn.pane.HoloViews, make: Any, *, layers: int = 0, **payload: Any) -> Any:
        """Show ``make(**payload)`` in *pane*: drawn once, then updated in place.

        The pane holds a DynamicMap fed by a Pipe; a new filter sends new data
        through the pipe, so the Bokeh plot keeps its models and only its data and
        (``framewise``) ranges change — far cheaper than a new plot per filter.
        With *layers* > 0 the overlay is drawn as that many DynamicMaps, one per
        layer (a stream such as Tap attaches to a layer's DynamicMap, not to a
        DynamicMap of an overlay). Returns the (first) DynamicMap when new, else None.
        """
        pipe = self._pipes.get(key)
        if pipe is not None:
            pipe.send(payload)
            return None
        hv = plots.holoviews()
        pipe = hv.streams.Pipe(data=payload)

        def draw(data: dict[str, Any], layer: int | None = None) -> Any:
            obj = make(**data)
            if layer is not None:
                obj = obj.get(layer)
            return obj.map(lambda e: e.opts(framewise=True), hv.Element)

        if layers:
            maps = [hv.DynamicMap(lambda data, i=i: draw(data, i), streams=[pipe]) for i in range(layers)]
            # collated here as HoloViews' plotting would (with a warning box in notebooks): the
            # layers' streams (Tap on the first) are kept by the collated DynamicMap
            pane.object = hv.Overlay(maps).collate() if layers > 1 else maps[0]
            first = maps[0]
        else:
            first = hv.DynamicMap(draw, streams=[pipe])
            pane.object = first
        self._pipes[key] = pipe
        return first

    def _attr_metrics(self) -> list[str]:
        cat = self.data.catalog
        return [m for m in (self.rate, self.metric) if m and f"metrics.{m}" in cat.columns]

    def update(self) -> None:
        """Recompute cells, heatmap, grid, distributions and attribution from ``data.filtered``."""
        cat = self.data.filtered
        if self.by is None or cat.height == 0:
            self.cells = pl.DataFrame()
            self.grid.cells = []
            self.status.object = "No runs to compare."
            return
        x = [f for f in self.x if f != self.by]
        self.cells = plots.rate_cells(cat, x=x, y=[self.by], metric=self.rate)
        x_title = plots.LABEL_SEPARATOR.join(x) or "all"
        # a Tap stream on the heatmap selects the runs of the clicked cell
        heat = self._show("heatmap", self.heatmap, plots.rate_heatmap, layers=2, cells=self.cells, x_label=x_title,
                          y_label=self.by, title=f"{self.rate} rate [95 % CI] · click a cell")
        if heat is not None:
            self._tap = plots.holoviews().streams.Tap(source=heat, x=None, y=None)
            self._tap.add_subscriber(self._on_tap)
        self.grid.param.update(cells=cells_records(self.cells), x_title=x_title, y_title=self.by)
        if self.metric is not None:
            self._show("distribution", self.distribution, plots.metric_summary, catalog=cat, metric=self.metric,
                       by=self.by, group=x, width=900)
        else:
            self.distribution.object = None
        attr = self._attribution(cat)
        metrics = self._attr_metrics()
        for i, pane in enumerate(self._attr_panes):
            # redrawn, not updated in place: BokehJS hangs on in-place updates of these
            # inverted-axis bar charts once a heatmap cell has been clicked
            if i < len(metrics):
                pane.object = plots.attribution_bars(attr, metrics[i], height=300)
            pane.visible = i < len(metrics)
        self.result = None
        if cat.height <= self.auto_compare_max:
            self.run_compare()
        else:
            self.verdicts.value = None
            self.status.object = f"{cat.height} runs: press the button for intervals, tests and verdicts."

    def _attribution(self, cat: pl.DataFrame) -> pl.DataFrame:
        from workbench.comparison import attribution

        metrics = {m: f"metrics.{m}" for m in self._attr_metrics()}
        factors = [f for f in self.data.factors if 2 <= cat[f].n_unique() <= 60 and f != "scenario.seed"]
        return attribution(cat, factors=factors, metrics=metrics, interactions=self.interactions)

    def run_compare(self) -> None:
        """The full comparison of the filtered runs (``wb.compare``), shown as a table of verdicts."""
        from workbench.comparison import compare
        from workbench.model import WorkbenchError

        cat = self.data.filtered
        values = cat[self.by].drop_nulls().unique().sort().to_list() if self.by else []
        if len(values) != 2:
            self.verdicts.value = None
            self.status.object = (f"The comparison needs exactly two variants of {html.escape(str(self.by))}; "
                                  f"the filtered runs have {len(values)}. Filter to two.")
            return
        metrics = [m for m in (self.rate, self.metric) if m]
        try:
            # the attribution chart above is this view's own: the comparison need not repeat it
            self.result = compare(cat, by=self.by, within=[f for f in self.x if f != self.by], metrics=metrics,
                                  n_boot=self.n_boot, attribution_factors=[])
        except WorkbenchError as err:
            self.verdicts.value = None
            self.status.object = f"Comparison not possible: {html.escape(str(err))}"
            return
        tab = self.result.table
        within = self.result.within
        from workbench.comparison import format_p

        # the verdict right after the cell and metric: seen without scrolling sideways
        view = tab.select(
            *within, "metric", "verdict",
            *(pl.col(c).round(3) for c in ("difference", "difference_lo", "difference_hi", "baseline", "candidate")),
            pl.col("p_verdict").map_elements(format_p, return_dtype=pl.String).alias("p (family-adjusted)"),
            "role", "n_baseline", "n_candidate",
            pl.format("{}/{}", "n_unknown_baseline", "n_unknown_candidate").alias("unknown b/c"),
        )
        self.verdicts.value = view.to_pandas()
        self.status.object = self._status_text(self.result)
        self.update_plan()

    @param.depends("plan_drop", watch=True)
    def update_plan(self) -> None:
        """The runs needed per cell of the comparison's rate (``workbench plan``), for :attr:`plan_drop`."""
        from workbench.model import WorkbenchError
        from workbench.planning import plan_result

        res = self.result
        if res is None:
            return
        try:
            table = plan_result(res, metric=self.rate, drop=float(self.plan_drop))
        except WorkbenchError as err:
            self.plan.value = None
            self.plan_status.object = f"Runs needed: {html.escape(str(err))}"
            return
        more = pl.when(pl.col("verdict") != "undecided").then(pl.lit("–")).otherwise(
            pl.col("more_runs_per_arm").cast(pl.String).fill_null("unlikely to decide"))
        view = table.select(
            *res.within, "verdict", pl.format("{} / {}", "n_base", "n_cand").alias("runs b / c"),
            pl.col("mde_now").round(3).alias("drop detectable now"),
            pl.col("runs_needed").alias(f"runs per side for a {self.plan_drop:g} drop"),
            more.alias("more runs per side to decide"),
        )
        self.plan.value = view.to_pandas()
        worst = cast("int | None", table["runs_needed"].max())  # an Int64 column; polars types max() as any literal
        self.plan_status.object = (
            f"**Runs needed** ({html.escape(self.rate)}, 80 % power, exact one-sided test per cell, Bonferroni over "
            f"{table.height} cell(s)): up to **{worst}** runs per side detect a {self.plan_drop:g} drop in every cell."
            if worst is not None else "**Runs needed**: no cell can detect that drop at any number of runs.")

    def _status_text(self, res: Any) -> str:
        """The answer of comparison *res* in one Markdown line: regressions, or that
        nothing (or not every cell) was measured and what the runs lack."""
        from workbench.comparison import NOT_MEASURED

        esc = html.escape
        head = f"**{esc(str(res.candidate))}** vs **{esc(str(res.baseline))}** ({esc(str(self.by))}): "
        unmeasured = res.not_measured.height
        lacking = esc(res.missing_text()) if unmeasured else ""
        if res.status == NOT_MEASURED:
            return head + f"**nothing measured**: {lacking}."
        n_reg = res.regressions.height
        text = f"**{n_reg} regression(s)** with confidence." if n_reg else "no regression with confidence."
        if unmeasured:
            text += f" {unmeasured} of {res.table.height} cells **not measured**: {lacking}."
        return head + text

    # ------------------------------------------------------------------ selection

    def select_cell(self, x: Any, y: Any) -> list[str]:
        """Select the runs of the cell (column label *x*, variant label *y*); returns their ids."""
        if self.cells.height == 0:
            return []
        hit = self.cells.filter((pl.col("x") == str(x)) & (pl.col("y") == str(y)))
        if hit.height == 0:
            return []
        runs = hit["runs"][0].to_list()
        self.cell = {"x": str(x), "y": str(y)}
        self.data.select(runs)
        return runs

    def _on_tap(self, x: Any = None, y: Any = None) -> None:
        if x is None or y is None:
            return
        xs = self.cells["x"].unique().sort().to_list()
        ys = self.cells["y"].unique().sort().to_list()
        # categorical axes report the factor; numeric fallbacks map to the nearest level
        if not isinstance(x, str) and isinstance(x, int | float) and not math.isnan(x) and xs:
            x = xs[min(max(int(x), 0), len(xs) - 1)]
        if not isinstance(y, str) and isinstance(y, int | float) and not math.isnan(y) and ys:
            y = ys[min(max(int(y), 0), len(ys) - 1)]
        self.select_cell(x, y)

    def _on_grid(self, event: Any) -> None:
        sel = event.new or {}
        if "x" in sel and "y" in sel:
            self.select_cell(sel["x"], sel["y"])

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Row(
            pn.widgets.Select.from_param(self.param.by, label="variants (by)", width=200),
            pn.widgets.MultiChoice.from_param(self.param.x, label="cells (x)", width=320),
            pn.widgets.Select.from_param(self.param.rate, label="rate", width=160),
            pn.widgets.Select.from_param(self.param.metric, label="distribution of", width=200),
            sizing_mode="stretch_width",
        )
        return pn.Column(
            controls,
            pn.Row(self.heatmap, pn.Column(self.grid, sizing_mode="stretch_width", max_width=520), sizing_mode="stretch_width"),
            self.distribution,
            self.attribution,
            pn.Row(self.compare_button, self.status, sizing_mode="stretch_width"),
            self.verdicts,
            pn.Row(self.plan_status, pn.widgets.FloatInput.from_param(self.param.plan_drop, label="plan for a drop of",
                                                                     width=160), sizing_mode="stretch_width"),
            self.plan,
            sizing_mode="stretch_width",
        )
