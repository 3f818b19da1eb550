"""The workbench app: DataStore facets, RunBrowser, CompareView, RunDetail, ReplayView, MomentsView, TrendsView, FleetView.

:class:`App` is a Viewer like the components it lays out, so the same object renders
in a notebook cell and in the served app. :func:`serve` runs it with Panel's server
(``pn.serve``), bound to 127.0.0.1 unless told otherwise; one App (one DataStore) is
made per browser session, all on the one store given on the command line.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import panel as pn
import param

from workbench.store import Store
from workbench.ui.compare_view import CompareView
from workbench.ui.datastore import DataStore, NoNone
from workbench.ui.fleet_view import FleetView
from workbench.ui.moments_view import MomentsView
from workbench.ui.replay_view import ReplayView
from workbench.ui.run_browser import RunBrowser
from workbench.ui.run_detail import RunDetail
from workbench.ui.trends_view import TrendsView

__all__ = ["App", "serve"]

TITLE = "RobotOps Workbench"
"""Title of the app's page."""


class App(pn.viewable.Viewer):
    """Every component on one page, sharing one :class:`DataStore`.

    Examples
    --------
    >>> import workbench as wb                      # doctest: +SKIP
    >>> app = App.from_store(wb.open_store("workbench-store"))  # doctest: +SKIP
    >>> app  # renders in a notebook                # doctest: +SKIP
    """

    data = param.ClassSelector(class_=DataStore, allow_None=NoNone, constant=True, doc="The shared state of every component.")
    title = param.String(default=TITLE, doc="Heading of the page.")
    active_tab = param.Integer(default=0, bounds=(0, 5), doc="""
        Open tab: 0 Compare, 1 Run detail, 2 Replay, 3 Moments, 4 Trends, 5 Fleet (``tab=`` of a link).""")
    defer_tabs = param.Boolean(default=True, doc="""
        In a served page, draw the filters, run count and run table first and build the
        tabs once the page is up (the first paint does not wait for plots and heatmaps).""")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.browser = RunBrowser(data=self.data)
        self.compare = CompareView(data=self.data)
        self.detail = RunDetail(data=self.data)
        self.replay = ReplayView(data=self.data)
        self.moments = MomentsView(data=self.data)
        self.trends = TrendsView(data=self.data)
        self.fleet = FleetView(data=self.data, defer=True)  # computed when its tab opens
        self._tabs: Any = None
        self.moments.param.watch(self._open_moment, "opened")
        self.trends.param.watch(self._open_window, "opened")
        self.fleet.param.watch(self._open_window, "opened")
        c, t = self.compare, self.trends
        self._link_defaults = {"by": c.by, "x": list(c.x), "rate": c.rate, "metric": c.metric,
                               "trend_metric": t.metric, "trend_over": t.over, "trend_within": t.within}

    def _open_window(self, event: Any) -> None:
        """A point clicked in the trends: its runs are selected; show them in Run detail."""
        if event.new and event.new.get("run_ids"):
            self.active_tab = 1

    def _open_moment(self, event: Any) -> None:
        """A hit clicked in the moment search: replay its run at its time."""
        if not event.new:
            return
        self.active_tab = 2
        self.replay.replay(at=float(event.new["at"]))

    @classmethod
    def from_store(cls, store: Store, **params: Any) -> App:
        """An app on *store* (its catalog read now)."""
        return cls(data=DataStore(store=store), **params)

    def __panel__(self) -> pn.viewable.Viewable:
        store = self.data.store
        where = f" · <code>{html.escape(str(store.url))}</code>" if store is not None else ""
        title = pn.pane.HTML(f"<h2 style='margin:4px 0'>{html.escape(self.title)}</h2><span>{where}</span>",
                             sizing_mode="stretch_width", css_classes=["wb-header"])
        copy = pn.widgets.Button(label="Copy link", width=110, css_classes=["wb-copy-link"],
                                 description="Copy this view's address: filters, selection, tab and settings")
        copy.js_on_click(args={"btn": copy}, code="""
            const url = window.location.href.replace(/([?&])token=[^&]*&?/, "$1").replace(/[?&]$/, "");
            const done = () => { btn.label = "Link copied"; setTimeout(() => { btn.label = "Copy link"; }, 2000); };
            if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(url).then(done); }
            else { const t = document.createElement("textarea"); t.value = url; document.body.appendChild(t);
                   t.select(); document.execCommand("copy"); t.remove(); done(); }""")
        header = pn.Row(title, copy, sizing_mode="stretch_width")
        side = pn.Column(self.data, width=280, css_classes=["wb-sidebar"])
        doc = pn.state.curdoc
        if self.defer_tabs and doc is not None and doc.session_context is not None:
            # a served page: filters, count and run table first; the tabs (plots, heatmap,
            # grid) are built once the page is up, so the first paint does not wait for them
            pending = pn.pane.Markdown("Loading the comparison…", css_classes=["wb-tabs-loading"], margin=(10, 10))
            main = pn.Column(self.browser, pending, sizing_mode="stretch_width")
            pn.state.onload(lambda: main.__setitem__(1, self._build_tabs()))
        else:
            main = pn.Column(self.browser, self._build_tabs(), sizing_mode="stretch_width")
        return pn.Column(header, pn.Row(side, main, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _build_tabs(self) -> pn.Tabs:
        tabs = pn.Tabs(("Compare", self.compare), ("Run detail", self.detail), ("Replay", self.replay),
                       ("Moments", self.moments), ("Trends", self.trends), ("Fleet", self.fleet), dynamic=False, sizing_mode="stretch_width",
                       css_classes=["wb-tabs"], active=self.active_tab)
        self._tabs = tabs
        tabs.param.watch(lambda e: setattr(self, "active_tab", e.new), "active")
        self.param.watch(lambda e: setattr(tabs, "active", e.new), "active_tab")
        # plots drawn while their tab was hidden have no size: redraw the run detail when shown
        tabs.param.watch(lambda e: self.detail.redraw() if e.new == 1 else None, "active")
        # the Rerun viewer starts loading when its tab is opened, before any click on Replay
        tabs.param.watch(lambda e: self.replay.warm() if e.new == 2 else None, "active")
        tabs.param.watch(lambda e: self.fleet.activate() if e.new == 5 else None, "active")
        if self.active_tab == 2:
            self.replay.warm()
        if self.active_tab == 5:
            self.fleet.activate()
        return tabs

    def close(self) -> None:
        """Release what the app started (a served replay)."""
        self.replay.close()


def serve(
    store: Store,
    *,
    address: str = "127.0.0.1",
    port: int = 5006,
    show: bool = False,
    threaded: bool = False,
    token: str | None = None,
    allow_origin: Sequence[str] = (),
    **_never: Any,
) -> Any:
    """Serve the app on *store* with Panel's server; blocks unless *threaded*.

    Parameters
    ----------
    store
        The only store the app reads; the browser cannot name another.
    address, port
        Where to listen (default 127.0.0.1:5006, this machine only).
    show
        Open a browser tab.
    threaded
        Run the server in a thread and return it (``server.stop()`` ends it).
    token
        Access token every page and websocket request must carry (``?token=…`` once,
        then a cookie). Required off this machine: when *address* is not a loopback
        address and no token is given, a random one is made. The server's
        ``workbench_url`` attribute is the address to open, token included.
    allow_origin
        Extra ``host[:port]`` names the browser may use to reach the app (for its
        websocket origin check), e.g. a DNS name of this machine.
    """
    if _never:
        msg = f"unexpected options {sorted(_never)}"
        raise TypeError(msg)
    import panel.reactive
    from panel.io.resources import LOCAL_DIST

    from workbench.ui.auth import TokenAuth, is_loopback, new_token
    from workbench.ui.links import apply_state, keep_address_current, parse_query
    from workbench.ui.replay_routes import REPLAYS
    from workbench.ui.replay_routes import routes as replay_routes

    # Stylesheets of models updated outside a session's templated document fall back to
    # Panel's CDN (a race under many sessions at once): point that fallback at this
    # server's own copy, so nothing is fetched from the internet.
    panel.reactive.CDN_DIST = f"/{LOCAL_DIST}"
    local = is_loopback(address)
    if token is None and not local:
        token = new_token()

    def session() -> pn.viewable.Viewable:
        app = App.from_store(store)
        pn.state.on_session_destroyed(lambda _ctx: app.close())
        problems = apply_state(app, parse_query(pn.state.session_args))  # a link: its view, validated
        view = app.__panel__()
        if problems:
            text = html.escape("; ".join(problems))  # a link's text is shown, never rendered
            view = pn.Column(pn.pane.Alert(f"This link's view was restored except: {text}",
                                           alert_type="warning", css_classes=["wb-link-problems"]), view,
                             sizing_mode="stretch_width")
        keep_address_current(app)
        return view

    origins = [f"localhost:{port}", f"127.0.0.1:{port}", f"{address}:{port}"]
    if not local:
        import socket

        origins += [f"{socket.gethostname()}:{port}", f"{socket.getfqdn()}:{port}"]
    origins += [o if ":" in o else f"{o}:{port}" for o in allow_origin]
    extra: dict[str, Any] = {"auth_provider": TokenAuth(token)} if token else {}
    REPLAYS.mounted = True  # replays go through this server's routes, behind the same token
    REPLAYS.token = token
    server = pn.serve(
        {"/": session}, address=address, port=port, show=show, threaded=threaded, title=TITLE,
        websocket_origin=sorted(set(origins)), start=True, verbose=False,
        extra_patterns=replay_routes(token), **extra,
    )
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address  # noqa: S104 - shown as a loopback link
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    try:
        server.workbench_url = url
    except AttributeError:  # pragma: no cover  (a server object without a __dict__)
        pass
    return server
