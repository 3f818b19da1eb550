"""ReplayView: the selected runs replayed, aligned, in the Rerun web viewer (iframe).

The runs are logged with :func:`workbench.viz.rerun.serve` (one recording, one
subtree per run, one aligned timeline) and shown by the web viewer bundled in
rerun-sdk, served from this machine: nothing is fetched from the internet. The
iframe's address is made here from the served viewer, never taken from the browser.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param

from workbench.ui.datastore import DataStore

__all__ = ["ReplayView", "rerun_available"]


def rerun_available() -> bool:
    """True when the Rerun replay (``workbench.viz.rerun``) is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("workbench.viz.rerun") is not None and importlib.util.find_spec("rerun") is not None
    except (ImportError, ValueError):
        return False


class ReplayView(pn.viewable.Viewer):
    """Replay the selected runs in the Rerun web viewer, embedded in an iframe."""

    data = param.ClassSelector(class_=DataStore, constant=True, doc="The shared state whose selected runs are replayed.")
    align = param.Selector(default="start", objects=["start", "event:grasp", "event:slip", "event:success", "event:failure"], doc="""
        Anchor of the replay's aligned timeline (each run's start or first event of a kind).""")
    max_runs = param.Integer(default=4, bounds=(1, 12), doc="At most this many selected runs are replayed.")
    height = param.Integer(default=720, bounds=(200, 3000), doc="Height of the embedded viewer in pixels.")
    url = param.String(default="", constant=True, doc="""
        Address of the locally served viewer (set by :meth:`replay`; not settable from the browser).""")
    replayed = param.List(default=[], item_type=str, constant=True, doc="Run ids in the current replay.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._served: Any = None
        self.button = pn.widgets.Button(label="Replay selected runs in Rerun", color="primary",
                                        disabled=not rerun_available(), css_classes=["wb-replay-button"])
        self.button.on_click(lambda _e: self.replay())
        self.frame = pn.pane.HTML("", sizing_mode="stretch_width", min_height=100, css_classes=["wb-replay-frame"])
        note = "" if rerun_available() else " The Rerun replay (workbench.viz.rerun) is not installed."
        self.status = pn.pane.Markdown("Select runs, then replay them." + note, margin=(0, 10), css_classes=["wb-replay-status"])

    def replay(self, at: float | None = None) -> str:
        """Serve the selected runs (first ``max_runs``) to the web viewer; returns its address.

        With *at* (seconds from each run's anchor, e.g. a hit of the moment search) the
        viewer opens with the moment selected (±2 s).
        """
        from workbench.viz import rerun as wb_rerun

        ids = list(self.data.selection)[: self.max_runs]
        if not ids:
            self.status.object = "Select runs first."
            return ""
        self.close()
        runs = self.data.load_runs(ids)
        kinds = {k for r in runs for k in r.events["kind"].unique().to_list()}
        align = self.align if not self.align.startswith("event:") or self.align[6:] in kinds else "start"
        self._served = wb_rerun.serve(runs, align=align, at=at)
        with param.edit_constant(self):
            self.url = self._served.url
            self.replayed = ids
        src = html.escape(self.url, quote=True)
        self.frame.object = (
            f'<iframe src="{src}" title="Rerun replay" class="wb-rerun" '
            f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd"></iframe>'
        )
        where = f", at **{at:.2f} s**" if at is not None else ""
        text = f"Replaying **{len(ids)}** run(s), aligned on {html.escape(align)}{where}."
        if align.startswith("event:"):
            lacking = [r.info.name or r.run_id for r in runs if align[6:] not in set(r.events["kind"].to_list())]
            if lacking:
                text += (f" {len(lacking)} of {len(runs)} have no {html.escape(align[6:])} event and start at their "
                         f"start: {html.escape(', '.join(lacking))}.")
        elif self.align != align:
            text += f" No selected run has a {html.escape(self.align[6:])} event: aligned on their starts."
        self.status.object = text
        return self.url

    def close(self) -> None:
        """Stop serving the current replay."""
        if self._served is not None:
            try:
                self._served.close()
            finally:
                self._served = None

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Row(
            self.button,
            pn.widgets.Select.from_param(self.param.align, label="align on", width=180),
            pn.widgets.IntInput.from_param(self.param.max_runs, label="max runs", width=100),
        )
        return pn.Column(controls, self.status, self.frame, sizing_mode="stretch_width")
