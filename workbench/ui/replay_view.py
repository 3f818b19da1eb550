"""ReplayView: the selected runs replayed, aligned, in the Rerun web viewer (iframe).

The runs are logged into one recording (one subtree per run, one aligned timeline,
:func:`workbench.viz.rerun.log_runs`) and shown by the web viewer bundled in
rerun-notebook: nothing is fetched from the internet. In the served app the viewer's
files and the recording come from the app's own routes
(:mod:`workbench.ui.replay_routes`: same origin, same token, no other port), so the
replay works from another machine and behind a reverse proxy; elsewhere (a notebook)
the recording is served on this machine by :func:`workbench.viz.rerun.serve`. The
iframe's address is made here, never taken from the browser.

In the served app the recording is written in the background while the viewer loads
(its page is sent at once; the viewer's fetch of the recording waits for it), so the
replay shows about a second sooner than writing first.
"""

from __future__ import annotations

import html
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

import panel as pn
import param

from workbench.ui.datastore import DataStore, NoNone

__all__ = ["ReplayView", "rerun_available"]

_log = logging.getLogger(__name__)


def rerun_available() -> bool:
    """True when the Rerun replay (``workbench.viz.rerun``) is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("workbench.viz.rerun") is not None and importlib.util.find_spec("rerun") is not None
    except (ImportError, ValueError):
        return False


class ReplayView(pn.viewable.Viewer):
    """Replay the selected runs in the Rerun web viewer, embedded in an iframe."""

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state whose selected runs are replayed.")
    align: param.Selector[str] = param.Selector(default="start", objects=["start", "event:grasp", "event:slip", "event:success",
                                                                    "event:failure"], doc="""
        Anchor of the replay's aligned timeline (each run's start or first event of a kind).""")
    max_runs = param.Integer(default=4, bounds=(1, 12), doc="At most this many selected runs are replayed.")
    height = param.Integer(default=860, bounds=(200, 3000), doc="Height of the embedded viewer in pixels.")
    url = param.String(default="", constant=True, doc="""
        Address of the viewer page (set by :meth:`replay`; not settable from the browser): relative to the
        app (``replay/page/<id>``) in the served app, ``http://127.0.0.1:<port>/…`` elsewhere.""")
    replayed = param.List(default=[], item_type=str, constant=True, doc="Run ids in the current replay.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._served: Any = None
        self._replay_id: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._writer: threading.Thread | None = None
        self.button = pn.widgets.Button(label="Replay selected runs in Rerun", color="primary",
                                        disabled=not rerun_available(), css_classes=["wb-replay-button"])
        self.button.on_click(self._on_replay)
        self.frame = pn.pane.HTML("", sizing_mode="stretch_width", min_height=100, css_classes=["wb-replay-frame"])
        self.link = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-replay-link"])
        self._standby = False  # the frame holds a viewer started ahead of the click
        # the address of a new recording, handed to that viewer in the browser (same origin only)
        self._opener = pn.widgets.TextInput(value="", visible=False, css_classes=["wb-replay-opener"])
        self._opener.jscallback(value="""
            const find = (root) => { for (const el of root.querySelectorAll('*')) {
                if (el.tagName === 'IFRAME' && el.classList.contains('wb-rerun')) return el;
                if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; } } return null; };
            const url = cb_obj.value;
            const send = (tries) => {  // the viewer page may still be starting: wait for its listener
                const frame = find(document);
                let ready = false;
                try { ready = !!(frame && frame.contentWindow && frame.contentWindow.wbReady); } catch (e) { ready = false; }
                if (ready) { frame.contentWindow.postMessage({type: 'wb-open', url: url}, window.location.origin); }
                else if (tries < 300) { setTimeout(() => send(tries + 1), 100); }
            };
            if (url) { send(0); }""")
        note = "" if rerun_available() else " The Rerun replay (workbench.viz.rerun) is not installed."
        self.status = pn.pane.Markdown("Select runs, then replay them." + note, margin=(0, 10), css_classes=["wb-replay-status"])

    def _on_replay(self, _event: Any) -> None:
        self.replay()

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
        from workbench.ui.replay_routes import REPLAYS, page_path

        # events and info first (the alignment and the status); the streams are read by
        # the writer, in the background in the served app
        runs = self.data.load_runs(ids, streams=[]) if REPLAYS.mounted else self.data.load_runs(ids)
        kinds = {k for r in runs for k in r.events["kind"].unique().to_list()}
        align = self.align if not self.align.startswith("event:") or self.align[6:] in kinds else "start"

        if REPLAYS.mounted:  # the served app: its own routes, origin and token
            from workbench.ui.replay_routes import data_path

            self._tmp = tempfile.TemporaryDirectory(prefix="workbench-replay-")
            rrd = Path(self._tmp.name) / "replay.rrd"
            rid = self._replay_id = REPLAYS.reserve()

            def write() -> None:
                try:
                    wb_rerun.log_runs(self.data.load_runs(ids), align=align, at=at, out=rrd)
                    REPLAYS.add(rrd, rid=rid)
                except Exception as err:  # the viewer's fetch answers the failure  # noqa: BLE001
                    _log.warning("replay %s could not be written: %s", rid, err)
                    REPLAYS.fail(rid, f"{type(err).__name__}: {err}")

            self._writer = threading.Thread(target=write, name="workbench-replay-writer", daemon=True)
            self._writer.start()
            url = page_path(rid)
        else:
            self._served = wb_rerun.serve(runs, align=align, at=at)
            url = self._served.url
        with param.edit_constant(self):
            self.url = url
            self.replayed = ids
        src = html.escape(self.url, quote=True)
        self.link.object = (f'<p style="margin:2px 0"><a href="{src}" target="_blank" rel="noopener" '
                            f'class="wb-replay-full">Open the replay on its own page ↗</a></p>')
        if self._standby and self._replay_id is not None:
            # the viewer already runs in the frame: hand it the new recording (no reload)
            self._opener.value = data_path(REPLAYS.token, self._replay_id)
        else:
            self._frame(src)
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

    def _frame(self, src: str) -> None:
        self.frame.object = (f'<iframe src="{src}" title="Rerun replay" class="wb-rerun" '
                             f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd"></iframe>')

    def warm(self) -> None:
        """Start the web viewer (its 60+ MB of WebAssembly) before any replay, so a click
        on Replay only loads the recording (served app; elsewhere nothing to do)."""
        from workbench.ui.replay_routes import REPLAYS, STANDBY, page_path

        if REPLAYS.mounted and not self.frame.object and rerun_available():
            self._frame(html.escape(page_path(STANDBY), quote=True))
            self._standby = True

    def written(self, timeout: float = 120.0) -> bool:
        """Wait until the current replay's recording is written (served app); True when
        it was (or there is nothing being written)."""
        if self._writer is not None:
            self._writer.join(timeout)
            return not self._writer.is_alive()
        return True

    def close(self) -> None:
        """Stop serving the current replay and delete its recording."""
        from workbench.ui.replay_routes import REPLAYS

        self.written()  # never delete a folder the writer is writing into
        self._writer = None
        if self._replay_id is not None:
            REPLAYS.remove(self._replay_id)
            self._replay_id = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
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
        return pn.Column(controls, self.status, self.link, self.frame, self._opener, sizing_mode="stretch_width")
