"""TrendsView: a metric per day, week or factor value per cell, its control chart and changes.

The filtered runs are grouped by the window of their start (or by a factor such as
``model.checkpoint``) per cell (:func:`workbench.trends.trend`): the chart shows each
window's value with its interval, the control limits, points out of the limits, and
the windows where a change starts. Clicking a point or a row of the table selects that
window's runs (:attr:`opened`; the app then opens Run detail).
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param
import polars as pl

from workbench.trends import WINDOWS
from workbench.ui.datastore import DataStore, NoNone

__all__ = ["TrendsView"]


class TrendsView(pn.viewable.Viewer):
    """Trend of a metric over the filtered runs; a point opens its runs.

    Examples
    --------
    >>> import workbench as wb                                      # doctest: +SKIP
    >>> view = TrendsView(data=DataStore(store=wb.open_store("workbench-store")), over="day")  # doctest: +SKIP
    >>> view.result.changes                                         # doctest: +SKIP
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state whose filtered runs are trended.")
    metric: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True,
                                                        doc="Metric per window (a rate or a number).")
    over: param.Selector[str] = param.Selector(default="auto", objects=["auto", *WINDOWS], doc="""
        Windows: hour, day, week or month of run start (UTC), auto (the finest with at most
        60 windows), or a factor (its values sorted naturally).""")
    within: param.Selector[str | None] = param.Selector(default=None, objects=[None], allow_None=True,
                                                        doc="Factor whose values are separate series.")
    alpha = param.Number(default=0.05, bounds=(1e-4, 0.5), doc="Level of the change test (Holm across series).")
    n_perm = param.Integer(default=999, bounds=(99, 100_000), doc="Permutations of each change test.")
    result = param.Parameter(default=None, constant=True, doc="The last :class:`~workbench.trends.TrendResult` (read only).")
    opened = param.Dict(default={}, constant=True, doc="""
        The point last clicked: {'window': …, 'cell': {factor: value}, 'run_ids': […]}.""")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        metrics = [m for m in self.data.metrics if not m.endswith(".error")]
        self.param.metric.objects = metrics
        if self.metric is None and metrics:
            self.metric = "success" if "success" in metrics else metrics[0]
        factors = [f for f in self.data.factors if 2 <= self.data.catalog[f].n_unique() <= 200]
        self.param.over.objects = ["auto", *WINDOWS, *factors]
        self.param.within.objects = [None, *[f for f in factors if self.data.catalog[f].n_unique() <= 12]]
        self.status = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-trends-status"])
        self.chart = pn.Column(sizing_mode="stretch_width", css_classes=["wb-trends-chart"])
        self.table = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          layout="fit_data_table", pagination="local", page_size=12, selectable=1,
                                          css_classes=["wb-trends-table"])
        self.table.on_click(self._on_click)
        self._dirty = True
        self._shown = False
        self.data.param.watch(lambda *_e: self._changed(), "filtered")
        self.param.watch(lambda *_e: self._changed(), ["metric", "over", "within", "alpha"])

    def _changed(self) -> None:
        self._dirty = True
        if self._shown:
            self.update()

    def update(self) -> Any:
        """Recompute the trend of the filtered runs and redraw (returns the result or None)."""
        from workbench.model import WorkbenchError
        from workbench.trends import trend

        self._dirty = False
        cat = self.data.filtered
        if self.metric is None:
            self.status.object = "No metric in the catalog: compute metrics first (`workbench metrics`)."
            return None
        if cat is None or cat.height == 0:
            self.status.object = "No run passes the filters."
            self.chart.objects, self.table.value = [], None
            return None
        try:
            res = trend(cat, metric=self.metric, over=self.over, within=[self.within] if self.within else None,
                        alpha=self.alpha, n_perm=self.n_perm)
        except WorkbenchError as err:
            self.status.object = f"**No trend**: {html.escape(str(err), quote=False)}"
            self.chart.objects, self.table.value = [], None
            with param.edit_constant(self):
                self.result = None
            return None
        with param.edit_constant(self):
            self.result = res
        found = res.summary().splitlines() if res.changes.height else []
        head = (f"**{res.metric}** per {html.escape(res.over)} over **{cat.height}** run(s): "
                f"{res.table.height} point(s). ")
        self.status.object = head + ("**Changes:** " + "; ".join(html.escape(s) for s in found) if found
                                     else f"No change found (α = {res.alpha}).") + " Click a point or a row to open its runs."
        from workbench.viz.plots import trend_charts

        # one pane per chart: a whole Layout in one stretching pane draws empty frames
        self.chart.objects = [pn.pane.HoloViews(c, sizing_mode="stretch_width", css_classes=["wb-trends-plot"])
                              for c in trend_charts(res, height=280, on_select=self._on_point)]
        digits = 3
        shown = res.table.select(
            *res.within, pl.col("window").alias(res.over), "n", pl.col("value").round(digits),
            pl.col("lo").round(digits), pl.col("hi").round(digits), pl.col("lcl").round(digits),
            pl.col("ucl").round(digits),
            pl.when(pl.col("change")).then(pl.lit("change")).when(pl.col("out_of_control"))
              .then(pl.lit("out of limits")).otherwise(pl.lit("")).alias("flag"),
            pl.col("run_ids").list.len().alias("runs"),
        )
        self.table.value = shown.to_pandas()
        return res

    def open(self, row: int) -> dict[str, Any]:
        """Select the runs of point *row* (of :attr:`result`'s table) and announce them."""
        res = self.result
        if res is None or not 0 <= row < res.table.height:
            return {}
        r = res.table.row(row, named=True)
        ids = list(r["run_ids"])
        self.data.select(ids)
        with param.edit_constant(self):
            self.opened = {"window": r["window"], "cell": {w: r[w] for w in res.within}, "run_ids": ids}
        return dict(self.opened)

    def _on_click(self, event: Any) -> None:
        self.open(int(event.row))

    def _on_point(self, row: int) -> None:
        self.open(row)

    def __panel__(self) -> pn.viewable.Viewable:
        self._shown = True
        if self._dirty:
            self.update()
        controls = pn.Row(
            pn.widgets.Select.from_param(self.param.metric, label="metric", width=200),
            pn.widgets.Select.from_param(self.param.over, label="over", width=200),
            pn.widgets.Select.from_param(self.param.within, label="one series per", width=200),
            sizing_mode="stretch_width", css_classes=["wb-trends-controls"])
        return pn.Column(controls, self.status, self.chart, self.table, sizing_mode="stretch_width",
                         css_classes=["wb-trends"])
