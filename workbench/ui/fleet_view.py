"""FleetView: rank variants, compare units that should be identical, sim against real.

Three views of the filtered runs, one at a time (:attr:`FleetView.view`):

* **ranking** (:func:`workbench.ranking.rank`): each value of *by* with its interval and
  letters, and the probability of each rank;
* **units** (:func:`workbench.units.variation`): per unit of *group* its shrunken and
  raw value, outlying units in red, and how much of the variation lies between units;
* **sim vs real** (:func:`workbench.sim_real.simreal`): per policy sim against real with
  the identity line, the mis-ranked pairs in red, and the prediction-powered estimates.

Clicking a point or a table row selects that variant's, unit's or policy's runs
(:attr:`FleetView.opened`; the app then opens Run detail).
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param
import polars as pl

from workbench.ui.datastore import DataStore, NoNone

__all__ = ["FleetView"]

VIEWS = ("ranking", "units", "sim vs real")


class FleetView(pn.viewable.Viewer):
    """Rankings, unit variation and sim against real of the filtered runs.

    Examples
    --------
    >>> import workbench as wb                                         # doctest: +SKIP
    >>> view = FleetView(data=DataStore(store=wb.open_store("workbench-store")), view="units")  # doctest: +SKIP
    >>> view.result.summary()                                          # doctest: +SKIP
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state whose filtered runs are used.")
    view: param.Selector[str] = param.Selector(default="ranking", objects=list(VIEWS), doc="Which analysis is shown.")
    by: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True, doc="Factor ranked (and the policy in sim vs real).")
    metric: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True, doc="A rate or a number.")
    group: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True, doc="Units of the unit view.")
    within: param.Selector[str | None] = param.Selector(default=None, objects=[None], allow_None=True, doc="Cells analysed separately.")
    domain: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True, doc="Factor saying sim or real.")
    n_boot = param.Integer(default=200, bounds=(0, 10_000), doc="Bootstrap replicates of the rank probabilities.")
    defer = param.Boolean(default=False, doc="""
        Compute nothing until :meth:`activate` is called (the app calls it when the Fleet
        tab is opened, so a page does not wait for a ranking nobody looks at).""")
    result = param.Parameter(default=None, constant=True, doc="The last result shown (read only).")
    opened = param.Dict(default={}, constant=True, doc="The row last clicked: {'view': …, 'label': …, 'run_ids': […]}.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        cat = self.data.catalog
        factors = [f for f in self.data.factors if 2 <= cat[f].n_unique() <= 200]
        metrics = [m for m in self.data.metrics if not m.endswith(".error")]
        self.param.metric.objects = metrics
        self.param.by.objects = factors
        self.param.group.objects = factors
        self.param.domain.objects = [f for f in self.data.factors]
        self.param.within.objects = [None, *[f for f in factors if cat[f].n_unique() <= 12]]
        if self.metric is None and metrics:
            self.metric = "success" if "success" in metrics else metrics[0]
        if self.by is None and factors:
            self.by = "model.version" if "model.version" in factors else factors[0]
        if self.group is None and factors:
            units = [f for f in ("hardware.unit", "hardware.robot", "environment.site") if f in factors]
            self.group = units[0] if units else factors[0]
        if self.domain is None and self.param.domain.objects:
            self.domain = "environment.domain" if "environment.domain" in self.param.domain.objects else self.param.domain.objects[0]
        self.status = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-fleet-status"])
        self.chart = pn.Column(sizing_mode="stretch_width", css_classes=["wb-fleet-chart"])
        self.table = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          layout="fit_data_table", pagination="local", page_size=12, selectable=1,
                                          css_classes=["wb-fleet-table"])
        self.table.on_click(self._on_click)
        self._rows: list[tuple[str, list[str]]] = []
        self._dirty = True
        self._shown = False
        self.data.param.watch(lambda *_e: self._changed(), "filtered")
        self.param.watch(lambda *_e: self._changed(), ["view", "by", "metric", "group", "within", "domain"])

    def _changed(self) -> None:
        self._dirty = True
        if self._shown:
            self.update()

    def _clear(self, text: str) -> None:
        self.status.object = text
        self.chart.objects, self.table.value, self._rows = [], None, []
        with param.edit_constant(self):
            self.result = None

    def update(self) -> Any:
        """Recompute the chosen view over the filtered runs and redraw (returns the result or None)."""
        from workbench.model import WorkbenchError

        self._dirty = False
        cat = self.data.filtered
        if self.metric is None:
            self._clear("No metric in the catalog: compute metrics first (`workbench metrics`).")
            return None
        if cat is None or cat.height == 0:
            self._clear("No run passes the filters.")
            return None
        within = [self.within] if self.within else []
        try:
            if self.view == "ranking":
                res = self._ranking(cat, within)
            elif self.view == "units":
                res = self._units(cat, within)
            else:
                res = self._simreal(cat)
        except WorkbenchError as err:
            self._clear(f"**No {self.view}**: {html.escape(str(err), quote=False)}")
            return None
        with param.edit_constant(self):
            self.result = res
        summary = "<br>".join(html.escape(s) for s in res.summary().splitlines())
        self.status.object = f"{summary}<br>Click a point or a row to open its runs."
        return res

    def _ranking(self, cat: pl.DataFrame, within: list[str]) -> Any:
        from workbench.ranking import rank
        from workbench.viz.fleet_plots import rank_chart, rank_probability_heatmap

        by = self.by or "model.version"
        res = rank(cat, by=by, metric=self.metric or "success", within=[w for w in within if w != by], n_boot=self.n_boot)
        self._rows = [(" · ".join(str(r[w]) for w in [*res.within, res.by]), list(r["run_ids"]))
                      for r in res.table.iter_rows(named=True)]
        self.chart.objects = [pn.pane.HoloViews(rank_chart(res, on_select=self.open), sizing_mode="stretch_width",
                                                css_classes=["wb-fleet-plot"]),
                              pn.pane.HoloViews(rank_probability_heatmap(res), sizing_mode="stretch_width",
                                                css_classes=["wb-fleet-plot"])]
        self.table.value = res.table.select(
            *res.within, res.by, "n", pl.col("value").round(3), pl.col("lo").round(3), pl.col("hi").round(3), "letters",
            pl.col("strength").round(3).alias("BT strength"), pl.col("p_best").round(3).alias("P(best)")).to_pandas()
        return res

    def _units(self, cat: pl.DataFrame, within: list[str]) -> Any:
        from workbench.units import variation
        from workbench.viz.fleet_plots import units_chart

        group = self.group or "hardware.unit"
        res = variation(cat, metric=self.metric or "success", groups=[group], within=[w for w in within if w != group])
        self._rows = [(str(r["unit"]), list(r["run_ids"])) for r in res.units.iter_rows(named=True)]
        self.chart.objects = [pn.pane.HoloViews(units_chart(res, on_select=self.open), sizing_mode="stretch_width",
                                                css_classes=["wb-fleet-plot"])]
        self.table.value = res.units.select(
            *res.within, "unit", "n", pl.col("raw").round(3), pl.col("shrunk").round(3), pl.col("lo").round(3),
            pl.col("hi").round(3), pl.when(pl.col("flag")).then(pl.lit("outlying")).otherwise(pl.lit("")).alias("flag"),
        ).to_pandas()
        return res

    def _simreal(self, cat: pl.DataFrame) -> Any:
        from workbench.sim_real import simreal
        from workbench.viz.fleet_plots import simreal_chart

        res = simreal(cat, by=self.by or "model.version", metric=self.metric or "success",
                      domain=self.domain or "environment.domain")
        self._rows = [(str(r[res.by]), list(r["run_ids"])) for r in res.table.iter_rows(named=True)]
        self.chart.objects = [pn.pane.HoloViews(simreal_chart(res, on_select=self.open), sizing_mode="stretch_width",
                                                css_classes=["wb-fleet-plot"])]
        self.table.value = res.table.select(
            res.by, "n_sim", pl.col("sim").round(3), "n_real", pl.col("real").round(3), pl.col("ppi").round(3),
            pl.col("ppi_lo").round(3), pl.col("ppi_hi").round(3), pl.col("effective_real").round(0)).to_pandas()
        return res

    def _on_click(self, event: Any) -> None:
        self.open(int(event.row))

    def open(self, row: int) -> dict[str, Any]:
        """Select the runs behind row *row* of the table shown and announce them."""
        if not 0 <= row < len(self._rows):
            return {}
        label, ids = self._rows[row]
        self.data.select(ids)
        with param.edit_constant(self):
            self.opened = {"view": self.view, "label": label, "run_ids": ids}
        return dict(self.opened)

    def activate(self) -> None:
        """Start following the data: compute now if anything changed, and on every change after."""
        self._shown = True
        if self._dirty:
            self.update()

    def __panel__(self) -> pn.viewable.Viewable:
        if not self.defer:
            self.activate()
        elif not self._shown:
            self.status.object = "Open this tab to rank, compare units or relate sim to real."
        controls = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(self.param.view, name="", css_classes=["wb-fleet-mode"]),
            pn.widgets.Select.from_param(self.param.metric, label="metric", width=170),
            pn.widgets.Select.from_param(self.param.by, label="rank / policy", width=170),
            pn.widgets.Select.from_param(self.param.group, label="units", width=170),
            pn.widgets.Select.from_param(self.param.within, label="per", width=150),
            pn.widgets.Select.from_param(self.param.domain, label="domain", width=170),
            sizing_mode="stretch_width", css_classes=["wb-fleet-controls"])
        return pn.Column(controls, self.status, self.chart, self.table, sizing_mode="stretch_width", css_classes=["wb-fleet"])
