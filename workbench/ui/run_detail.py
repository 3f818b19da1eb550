"""RunDetail: aligned time series of the selected runs, events, findings, provenance.

The selected runs (the first ``max_runs``) are loaded from the store and plotted on
one timeline aligned on their start or on an event (``event:grasp``): one panel per
chosen signal, the runs' events as vertical lines, quality findings shaded. Below,
their text (log lines, ``std_msgs/String`` topics, CSV text columns) in one table on
the same timeline, and the provenance of each run (source files with sha256, reader, factors). A person can
label the selected runs' outcome with a failure mode or note (``store.label``: who and
when are recorded; the label beats every rule and the catalog shows it at once).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import panel as pn
import param
import polars as pl

from workbench.io.registry import text_variables
from workbench.model import WorkbenchError
from workbench.ui.datastore import DataStore, NoNone
from workbench.viz import plots

__all__ = ["DEFAULT_SIGNALS", "RunDetail"]

DEFAULT_SIGNALS = ("joint_states.position[joint_2]", "ft_sensor.force[z]", "joint_states.velocity[joint_2]")
"""Signals shown first when the runs have them (else the first two of the run)."""
_COUNTERS = ("index", "timestamp", "episode", "frame", "seq")
"""Words of a variable name that make it a counter rather than a signal worth plotting first."""
ALIGN_CHOICES = ("start", "event:grasp", "event:slip", "event:success", "event:failure")
"""Alignments offered (``workbench.sync.align_runs``)."""
MAX_TEXT_ROWS = 5_000
"""Text rows shown at most (the first by time)."""


class RunDetail(pn.viewable.Viewer):
    """Time series, events, findings and provenance of the selected runs.

    Examples
    --------
    >>> import workbench as wb                                  # doctest: +SKIP
    >>> data = DataStore(store=wb.open_store("workbench-store"))  # doctest: +SKIP
    >>> detail = RunDetail(data=data, align="event:grasp")      # doctest: +SKIP
    >>> data.selection = data.filtered["run_id"][:3].to_list()  # doctest: +SKIP
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state whose selected runs are shown.")
    signals = param.ListSelector(default=[], objects=[], doc="Signals plotted, as stream.variable[component].")
    align: param.Selector[str] = param.Selector(default="start", objects=list(ALIGN_CHOICES), doc="""
        Anchor of the common timeline: each run's start or its first event of a kind.""")
    max_runs = param.Integer(default=6, bounds=(1, 24), doc="At most this many selected runs are loaded and drawn.")
    plot_width = param.Integer(default=None, allow_None=True, bounds=(300, 4000), doc="""
        Width of each time-series panel in pixels (legend included); None: the page's width.""")
    plot_height = param.Integer(default=240, bounds=(120, 2000), doc="Height of each time-series panel in pixels.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.runs: list[Any] = []
        self._hold = False
        # one pane per signal, each sized by itself: a whole Layout in one stretching pane
        # drew no frames (only floating legends) in the served app and in JupyterLab
        self.plot = pn.Column(sizing_mode="stretch_width", css_classes=["wb-run-detail-plot"])
        self.provenance = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                               layout="fit_data_table", css_classes=["wb-provenance"])
        self.texts = pn.widgets.Tabulator(None, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          layout="fit_data_stretch", pagination="local", page_size=20,
                                          css_classes=["wb-texts"])
        self.status = pn.pane.Markdown("Select runs (table, heatmap cell or grid cell) to see them here.",
                                       margin=(0, 10), css_classes=["wb-run-detail-status"])
        # labels by people: the selected runs' outcome and failure mode, stored through store.label
        self.label_outcome = pn.widgets.Select(options=["failure", "success", "unknown"], value="failure", width=120,
                                               css_classes=["wb-label-outcome"])
        self.label_note = pn.widgets.TextInput(placeholder="failure mode or note (optional)", width=320,
                                               css_classes=["wb-label-note"])
        self.label_button = pn.widgets.Button(label="Label the selected runs", width=200, css_classes=["wb-label-button"],
                                              disabled=self.data.store is None)
        self.label_button.on_click(self._on_label)
        self.label_status = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-label-status"])
        # a time window of one run marked as an event: brushed in a plot (x-range select) or typed
        self.mark_kind = pn.widgets.TextInput(placeholder="event kind, e.g. slip", width=160, css_classes=["wb-mark-kind"])
        self.mark_from = pn.widgets.FloatInput(value=None, placeholder="from (s)", width=110, css_classes=["wb-mark-from"])
        self.mark_to = pn.widgets.FloatInput(value=None, placeholder="to (s)", width=110, css_classes=["wb-mark-to"])
        self.mark_note = pn.widgets.TextInput(placeholder="note (optional)", width=260, css_classes=["wb-mark-note"])
        self.mark_button = pn.widgets.Button(label="Mark the window", width=160, css_classes=["wb-mark-button"],
                                             disabled=self.data.store is None)
        self.mark_button.on_click(self._on_mark)
        self.mark_status = pn.pane.Markdown("Brush a window in a plot (x-range select tool) or type it; one run shown.",
                                            margin=(0, 10), css_classes=["wb-mark-status"])
        self._alignment: Any = None
        self.data.param.watch(lambda _e: self.update(), "selection")
        self.update()

    def _on_label(self, _event: Any) -> None:
        self.label_selected(self.label_outcome.value, self.label_note.value)

    def _on_mark(self, _event: Any) -> None:
        self.mark_window(self.mark_kind.value, self.mark_from.value, self.mark_to.value, self.mark_note.value)

    def _signal_options(self) -> None:
        if not self.runs:
            return
        names: list[str] = []
        for run in self.runs[:3]:
            names += [n for n in plots.signal_names(run) if n not in names]
        # labels escaped: the multi-choice widget (Choices.js) renders option labels as HTML
        self.param.signals.objects = {html.escape(n): n for n in names}
        chosen = [s for s in self.signals if s in names]
        if not chosen:
            # else the first two that are measurements, not counters (a LeRobot frame.index, timestamps)
            measured = [n for n in names if not any(w in n.split("[", 1)[0].rsplit(".", 1)[-1] for w in _COUNTERS)]
            chosen = [s for s in DEFAULT_SIGNALS if s in names][:2] or (measured or names)[:2]
        if chosen != self.signals:
            self._hold = True  # update() redraws once, after the provenance
            try:
                self.signals = chosen
            finally:
                self._hold = False

    @param.depends("max_runs", watch=True)
    def _more_runs(self) -> None:
        self.update()

    @param.depends("signals", "align", watch=True)
    def redraw(self) -> None:
        """Redraw the time series of the loaded runs (no reload)."""
        if self._hold:
            return
        if not self.runs:
            self.plot.objects = []
            return
        findings = {r.run_id: f for r in self.runs if (f := self.data.findings(r.run_id)) is not None}
        kinds = {k for r in self.runs for k in r.events["kind"].unique().to_list()}
        on = self.align if not self.align.startswith("event:") or self.align[6:] in kinds else "start"
        layout = plots.signals(self.runs, self.signals, on=on, findings=findings, height=self.plot_height,
                               width=self.plot_width, brush=True)
        from workbench.sync import align_runs

        self._alignment = align_runs(self.runs, on=on)
        sizing = {"width": self.plot_width} if self.plot_width else {"sizing_mode": "stretch_width"}
        panes = []
        for panel in layout:
            hv = plots.holoviews()
            hv.streams.BoundsX(source=panel).add_subscriber(self._brushed)
            panes.append(pn.pane.HoloViews(panel, height=self.plot_height, linked_axes=True, **sizing))
        self.plot.objects = panes

    def _brushed(self, boundsx: Any = None) -> None:
        """A window brushed on the aligned timeline: shown in the run's own seconds."""
        if not boundsx or not self.runs or self._alignment is None:
            return
        run = self.runs[0]
        offset = (self._alignment.shifts[run.run_id] - run.info.start_ns) / 1e9
        lo, hi = sorted(float(b) for b in boundsx)
        self.mark_from.value, self.mark_to.value = round(max(lo + offset, 0.0), 3), round(hi + offset, 3)
        self.mark_status.object = (f"Window {self.mark_from.value:g} … {self.mark_to.value:g} s of "
                                   f"**{html.escape(run.info.name or run.run_id)}** (seconds from its start).")

    def mark_window(self, kind: str | None, start: float | None, end: float | None, note: str | None = "") -> dict[str, Any]:
        """Mark *start* … *end* (seconds from the run's start) of the one run shown as an
        event *kind* with *note* (:meth:`workbench.store.Store.mark`); the catalog and
        the plots follow at once. Returns the mark (empty when refused)."""
        store = self.data.store
        if store is None:
            self.mark_status.object = "No store to mark in."
            return {}
        if len(self.runs) != 1:
            self.mark_status.object = f"Show exactly one run to mark a window ({len(self.runs)} shown)."
            return {}
        if start is None or end is None:
            self.mark_status.object = "Brush a window in a plot or type its start and end (s)."
            return {}
        rid = self.runs[0].run_id
        try:
            m = store.mark(rid, (kind or "").strip(), float(start), float(end), note=(note or "").strip() or None)
        except WorkbenchError as err:
            self.mark_status.object = f"Not marked: {html.escape(str(err))}"
            return {}
        self.data.refresh()
        self.data.forget([rid])
        self.update()
        why = f" ({html.escape(m['note'])})" if m.get("note") else ""
        self.mark_status.object = (f"Marked **{html.escape(m['kind'])}** from {float(start):g} s to {float(end):g} s"
                                   f"{why} by {html.escape(m['by'])}.")
        return m

    def update(self) -> None:
        """Load the selected runs (cached) and redraw plots and provenance."""
        ids = list(self.data.selection)[: self.max_runs]
        if not ids:
            self.runs = []
            self.plot.objects = []
            self.provenance.value = None
            self.texts.value = None
            self.status.object = "Select runs (table, heatmap cell or grid cell) to see them here."
            return
        self.runs = self.data.load_runs(ids)
        self._signal_options()
        more = len(self.data.selection) - len(ids)
        self.status.object = f"**{len(ids)}** run(s) shown" + (
            f" (first {len(ids)} of {len(self.data.selection)} selected)" if more > 0 else "")
        self.provenance.value = self.provenance_frame().to_pandas()
        self.redraw()
        self.texts.value = self.text_frame().to_pandas()

    def label_selected(self, outcome: str, note: str | None = "") -> list[str]:
        """Label every selected run's outcome (with *note* as the reason, e.g. a failure
        mode) through :meth:`workbench.store.Store.label`; the catalog is re-read so the
        table, facets and comparison show it at once. Returns the labelled run ids."""
        store = self.data.store
        ids = list(self.data.selection)
        if store is None or not ids:
            self.label_status.object = "Select runs first." if store is not None else "No store to label in."
            return []
        note = (note or "").strip()[:500] or None
        from workbench.metrics import compute_missing

        try:
            done = store.label(ids, outcome, reason=note)
        except WorkbenchError as err:
            self.label_status.object = f"Not labelled: {html.escape(str(err))}"
            return []
        compute_missing(store, run_ids=done)  # outcome metrics (success, time to success) follow the label
        self.data.refresh()
        self.data.forget(done)
        self.data.selection = [r for r in ids if r in set(self.data.filtered["run_id"].to_list())]
        why = f" ({html.escape(note)})" if note else ""
        self.label_status.object = f"Labelled **{len(done)}** run(s) as **{html.escape(outcome)}**{why}."
        return done

    def text_frame(self, limit: int = MAX_TEXT_ROWS) -> pl.DataFrame:
        """The shown runs' text streams (log lines, ``std_msgs/String``, CSV text), one
        row per sample: run, seconds on the common timeline, stream, level, text; the
        first *limit* rows by time."""
        from workbench.sync import align_runs

        schema = {"run": pl.String, "t_s": pl.Float64, "stream": pl.String, "level": pl.String, "text": pl.String}
        frames = []
        if not self.runs:
            return pl.DataFrame(schema=schema)
        shifts = (self._alignment or align_runs(self.runs, on="start")).shifts
        for run in self.runs:
            for name, ds in run.streams.items():
                shown, lv = text_variables(ds)  # a log stream: its text, with its level beside it
                for var in shown:
                    n = int(ds.sizes["time"])
                    t = np.asarray(ds["time"].values[:limit], dtype=np.int64)
                    frames.append(pl.DataFrame({
                        "run": [run.info.name or run.run_id] * min(n, limit),
                        "t_s": (t - shifts.get(run.run_id, run.info.start_ns)) / 1e9,
                        "stream": [name if var == "text" else f"{name}.{var}"] * min(n, limit),
                        "level": ([str(x) for x in ds[lv].values[:limit].tolist()] if lv and var == "text"
                                  else [None] * min(n, limit)),
                        "text": [str(x) for x in ds[var].values[:limit].tolist()],
                    }, schema=schema))
        if not frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(frames).sort("t_s").head(limit)

    def provenance_frame(self) -> pl.DataFrame:
        """One row per shown run: id, name, source path, sha256, size, reader, factors."""
        rows = []
        for run in self.runs:
            info = run.info
            prov = info.provenance
            for src in prov.sources or [None]:
                rows.append({
                    "run_id": info.run_id,
                    "name": info.name,
                    "source": src.path if src else "",
                    "sha256": src.sha256 if src else "",
                    "size_bytes": src.size if src else None,
                    "reader": f"{prov.reader} {prov.reader_version}".strip(),
                    "factors": "; ".join(f"{k}={v}" for k, v in info.factors().items()),
                    "ingested_at": prov.ingested_at,
                })
        schema = {"run_id": pl.String, "name": pl.String, "source": pl.String, "sha256": pl.String, "size_bytes": pl.Int64,
                  "reader": pl.String, "factors": pl.String, "ingested_at": pl.String}
        return pl.DataFrame(rows, schema=schema)

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Row(
            pn.widgets.MultiChoice.from_param(self.param.signals, label="signals", width=520),
            pn.widgets.Select.from_param(self.param.align, label="align on", width=180),
            pn.widgets.IntInput.from_param(self.param.max_runs, label="max runs", width=100),
            sizing_mode="stretch_width",
        )
        labels = pn.Row(pn.pane.Markdown("**Label:**", margin=(12, 10)), self.label_outcome, self.label_note,
                        self.label_button, self.label_status, sizing_mode="stretch_width")
        marks = pn.Row(pn.pane.Markdown("**Mark a window:**", margin=(12, 10)), self.mark_kind, self.mark_from,
                       self.mark_to, self.mark_note, self.mark_button, self.mark_status, sizing_mode="stretch_width")
        texts = pn.Column(pn.pane.Markdown("#### Text: log lines and text streams", margin=(0, 10)), self.texts,
                          visible=self.texts.param.value.rx.pipe(lambda v: v is not None and len(v) > 0),
                          sizing_mode="stretch_width")
        return pn.Column(self.status, controls, labels, marks, self.plot, texts,
                         pn.pane.Markdown("#### Provenance", margin=(0, 10)), self.provenance,
                         sizing_mode="stretch_width")
