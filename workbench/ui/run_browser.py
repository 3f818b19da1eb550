"""RunBrowser: the filtered catalog as a table with grade badges and metric columns.

Rows selected in the table become the DataStore's ``selection``; a selection made
elsewhere (a click in the CompareView) is shown selected and moved to the top.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param
import polars as pl

from workbench.ui.datastore import DataStore, NoNone

__all__ = ["GRADE_BADGES", "RunBrowser"]

GRADE_COLORS = {"A": "#2ca02c", "B": "#8fbc3f", "C": "#ffbf00", "D": "#ff7f0e", "F": "#d62728"}
"""Badge color of each data grade."""
GRADE_BADGES = {
    g: f'<span class="wb-grade" style="display:inline-block;min-width:1.6em;text-align:center;border-radius:0.7em;'
       f'background:{c};color:white;font-weight:600">{g}</span>'
    for g, c in GRADE_COLORS.items()
}
"""The grade cell's content, by grade (fixed markup: a grade outside A–F shows blank, never as HTML)."""
PRIMARY_METRICS = ("success", "time_to_success", "failure_mode", "recoveries", "tracking_error_rms", "jerk_rms")
"""Metric columns shown by default when present."""


class RunBrowser(pn.viewable.Viewer):
    """The catalog as a paginated, sortable table; select rows to select runs.

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.ui import DataStore, RunBrowser
    >>> data = DataStore(catalog=pl.DataFrame({"run_id": ["a", "b"], "name": ["a", "b"]}))
    >>> RunBrowser(data=data).frame()["run_id"].tolist()
    ['a', 'b']
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state this view shows and selects in.")
    columns = param.List(default=[], item_type=str, doc="""
        Catalog columns shown (default: name, outcome, data grade, the facet factors and
        the primary metrics present).""")
    page_size = param.Integer(default=15, bounds=(5, 500), doc="Rows per page of the table.")
    selected_first = param.Boolean(default=True, doc="Move runs selected by another view to the top of the table.")

    @staticmethod
    def titles(columns: list[str]) -> dict[str, str]:
        """Column headers: metric columns without ``metrics.`` and with their unit.

        >>> RunBrowser.titles(["name", "metrics.jerk_rms", "metrics.success"])
        {'name': 'name', 'metrics.jerk_rms': 'jerk_rms [rad/s³]', 'metrics.success': 'success'}
        """
        from workbench.metrics import columns as metric_columns

        units = {k: v.unit for k, v in metric_columns().items()}
        out = {}
        for c in columns:
            short = c.removeprefix("metrics.")
            unit = units.get(short, "") if c.startswith("metrics.") else ""
            out[c] = f"{short} [{unit}]" if unit else short
        return out

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not self.columns:
            self.columns = self.default_columns(self.data)
        self._ids: list[str] = []
        self._syncing = False
        self.table = pn.widgets.Tabulator(
            self.frame(), pagination="remote", page_size=self.page_size, selectable="checkbox",
            disabled=True, show_index=False, sizing_mode="stretch_width", layout="fit_data_table",
            titles=self.titles(self.columns),
            formatters={
                **{c: {"type": "money", "precision": 3, "symbol": ""} for c in self._float_columns()},
                # a lookup of fixed badges (computed per page in the browser, unlike a pandas Styler
                # over the whole frame on every update)
                "quality.grade": {"type": "lookup", **GRADE_BADGES},
            },
            header_filters=False, css_classes=["wb-run-browser"],
        )
        self.summary = pn.pane.Markdown("", css_classes=["wb-run-count"], margin=(0, 10))
        self.table.param.watch(self._on_table_selection, "selection")
        self.data.param.watch(self._on_data, ["filtered"])
        self.data.param.watch(self._on_selection, ["selection"])
        self.update()

    @staticmethod
    def default_columns(data: DataStore) -> list[str]:
        """run_id, name, outcome, quality.grade, the facet factors, the primary metrics present."""
        cat = data.catalog
        base = [c for c in ("run_id", "name", "outcome", "quality.grade") if c in cat.columns]
        facets = [c for c in data.facets if c not in base]
        metrics = [f"metrics.{m}" for m in PRIMARY_METRICS if f"metrics.{m}" in cat.columns]
        return base + facets + metrics

    def _float_columns(self) -> list[str]:
        schema = self.data.catalog.schema
        return [c for c in self.columns if c in schema and schema[c].is_float()]

    def frame(self) -> Any:
        """The rows shown, as pandas (selected runs first when moved there)."""
        df = self.data.filtered
        cols = [c for c in self.columns if c in df.columns]
        if self.selected_first and self.data.selection:
            df = df.with_columns(pl.col("run_id").is_in(self.data.selection).alias("_sel")).sort(
                "_sel", descending=True, maintain_order=True).drop("_sel")
        out = df.select(cols)
        temporal = [c for c in cols if out.schema[c].is_temporal()]
        if temporal:
            out = out.with_columns(pl.col(temporal).cast(pl.String))
        return out.to_pandas()

    # ------------------------------------------------------------------ updates

    def update(self, *, reorder: bool = True) -> None:
        """Recompute the table rows and the selection shown from the DataStore."""
        frame = self.frame() if reorder else self.table.value
        self._ids = frame["run_id"].tolist() if "run_id" in frame.columns else []
        pos = {r: i for i, r in enumerate(self._ids)}
        self._syncing = True
        try:
            if reorder:
                self.table.value = frame
            self.table.selection = [pos[r] for r in self.data.selection if r in pos]
        finally:
            self._syncing = False
        n_all, n = self.data.catalog.height, len(self._ids)
        self.summary.object = f"**{n}** of {n_all} runs · **{len(self.data.selection)}** selected"

    def _on_data(self, _event: Any) -> None:
        self.update()

    def _on_selection(self, _event: Any) -> None:
        if self._syncing:
            return
        self.update(reorder=self.selected_first)

    def _on_table_selection(self, event: Any) -> None:
        if self._syncing:
            return
        ids = [self._ids[i] for i in event.new if 0 <= i < len(self._ids)]
        self._syncing = True
        try:
            self.data.selection = ids
        finally:
            self._syncing = False
        n_all, n = self.data.catalog.height, len(self._ids)
        self.summary.object = f"**{n}** of {n_all} runs · **{len(ids)}** selected"

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.summary, self.table, sizing_mode="stretch_width")
