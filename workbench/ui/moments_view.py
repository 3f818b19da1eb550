"""MomentsView: search the filtered runs for the moments a rule holds, open one in replay.

A rule is picked from the ``events:`` of the store's ``workbench.yaml`` or written in
the text box as one YAML mapping (parsed with ``yaml.safe_load`` and validated as a
rule: data, never code). :func:`workbench.find` runs it over the filtered runs; the
hits are a table (run, start, duration, peak) and their rates per value of a factor
(:func:`workbench.count_by`). Clicking a hit selects its run and asks the app to open
the replay at its start (:attr:`opened`).
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param
import polars as pl

from workbench.ui.datastore import DataStore, NoNone

__all__ = ["MomentsView"]

EXAMPLE = "{name: pushing, signal: {norm: {stream: ft_sensor, variable: force}}, above: 3, release: 1.5, min_duration: 0.2}"


class MomentsView(pn.viewable.Viewer):
    """Moment search over the filtered runs; a hit opens in replay."""

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state whose filtered runs are searched.")
    rule = param.String(default=EXAMPLE, doc="""
        The rule: the name of a rule of the store's workbench.yaml, or one rule as a YAML
        mapping (threshold, change, match or sequence, as in events:).""")
    count_by: param.Selector[str | None] = param.Selector(default=None, objects=[], allow_None=True,
                                                          doc="Factor whose values the hit rates are given for.")
    max_hits = param.Integer(default=500, bounds=(1, 100_000), doc="At most this many hits are listed.")
    hits = param.DataFrame(default=None, allow_None=True, constant=True, doc="The last search's hits (read only).")
    opened = param.Dict(default={}, constant=True, doc="""
        The hit last clicked: {'run_id': …, 'at': seconds from the run's start} (the app replays it).""")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        factors = self.data.factors
        self.param.count_by.objects = [None, *factors]
        if self.count_by is None:
            varying = [f for f in factors if 2 <= self.data.catalog[f].n_unique() <= 30]
            self.count_by = varying[0] if varying else None
        self.named = pn.widgets.Select(name="rules of workbench.yaml", options=["(write one)", *self._named()], width=240)
        self.named.param.watch(self._pick, "value")
        self.text = pn.widgets.TextAreaInput.from_param(self.param.rule, name="rule (YAML)", height=80,
                                                        sizing_mode="stretch_width", css_classes=["wb-moments-rule"])
        self.button = pn.widgets.Button(label="Find in the filtered runs", color="primary", css_classes=["wb-moments-find"])
        self.button.on_click(self._on_find)
        self.status = pn.pane.Markdown("Write or pick a rule, then find.", margin=(0, 10), css_classes=["wb-moments-status"])
        self.table = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          layout="fit_data_table", pagination="local", page_size=15,
                                          selectable=1, css_classes=["wb-moments-hits"])
        self.table.on_click(self._on_click)
        self.rates = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          layout="fit_data_table", css_classes=["wb-moments-rates"])
        self.param.watch(lambda _e: self._rates(), "count_by")

    def _named(self) -> list[str]:
        from workbench.events.apply import configured_rules
        from workbench.model import WorkbenchError

        try:
            return [r.name for r in configured_rules(self.data.store).events] if self.data.store is not None else []
        except WorkbenchError:
            return []

    def _pick(self, event: Any) -> None:
        if event.new and event.new != "(write one)":
            self.rule = str(event.new)

    def _on_find(self, _event: Any) -> None:
        self.search()

    def search(self) -> pl.DataFrame | None:
        """Run the rule over the filtered runs; show the hits and their rates."""
        from workbench.model import WorkbenchError
        from workbench.moments import find

        store = self.data.store
        if store is None:
            self.status.object = "Moment search needs a store."
            return None
        ids = self.data.filtered["run_id"].to_list()
        if not ids:
            self.status.object = "No run passes the filters."
            return None
        try:
            hits = find(store, self.rule.strip(), run_ids=ids, scheduler="threads")
        except WorkbenchError as err:
            self.status.object = f"**Cannot search**: {html.escape(str(err), quote=False)}"
            return None
        with param.edit_constant(self):
            self.hits = hits.to_pandas() if hits.height else None
        self._hits = hits
        self._searched = ids
        shown = hits.head(self.max_hits)
        self.table.value = shown.select(
            "name", "rule", pl.col("start_s").round(3), pl.col("duration_s").round(3), pl.col("peak").round(4), "run_id",
        ).to_pandas() if shown.height else None
        more = f" (first {shown.height} listed)" if shown.height < hits.height else ""
        self.status.object = (f"**{hits.height}** hit(s) in **{hits['run_id'].n_unique() if hits.height else 0}** of "
                              f"{len(ids)} run(s){more}. Click a hit to replay it." if hits.height
                              else f"No hit in {len(ids)} run(s).")
        self._rates()
        return hits

    def _rates(self) -> None:
        from workbench.moments import count_by

        hits = getattr(self, "_hits", None)
        if hits is None or self.count_by is None:
            self.rates.value = None
            return
        searched = self.data.catalog.filter(pl.col("run_id").is_in(self._searched))  # the runs searched, not today's filter
        table = count_by(hits, searched, self.count_by)
        self.rates.value = table.select(
            self.count_by, "runs", "hits", pl.col("per_hour").round(2), pl.col("per_hour_lo").round(2),
            pl.col("per_hour_hi").round(2), pl.col("share_of_runs").round(3), pl.col("share_lo").round(3),
            pl.col("share_hi").round(3),
        ).to_pandas()

    def open(self, row: int) -> dict[str, Any]:
        """Select the run of hit *row* (of the table) and ask for its replay at the hit."""
        value = self.table.value
        if value is None or not 0 <= row < len(value):
            return {}
        hit = value.iloc[row]
        self.data.select([str(hit["run_id"])])
        with param.edit_constant(self):
            self.opened = {"run_id": str(hit["run_id"]), "at": float(hit["start_s"])}
        return dict(self.opened)

    def _on_click(self, event: Any) -> None:
        self.open(int(event.row))

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Row(self.named, self.button,
                          pn.widgets.Select.from_param(self.param.count_by, label="rates by", width=220),
                          sizing_mode="stretch_width")
        return pn.Column(controls, self.text, self.status, self.table, self.rates, sizing_mode="stretch_width")
