"""The Rerun replay served by the app itself: same origin, same token, no extra port.

Three routes, added to the app's server (:func:`routes`):

* ``replay/viewer/<file>`` -- the web viewer bundled in ``rerun-notebook``
  (``widget.js``, ``re_viewer_bg.wasm``, ``widget.css``); only these three names.
* ``replay/page/<id>`` -- a full page holding the viewer, which opens the recording
  below (addresses relative to the page, so the app works behind a reverse proxy on a
  path prefix and from another machine).
* ``replay/data/<id>.rrd`` -- the recording of one replay: an ``.rrd`` written for a
  browser session's selection (:meth:`Replays.add`), dropped when the session replays
  something else or ends (:meth:`Replays.remove`).

*id* is a random 32-character name made by :meth:`Replays.add`; the request names no
file: an id not registered (or malformed) is a 404, whatever it holds. Every route
needs the app's token (query or cookie) when the app has one, like its pages and
websocket; without it the answer is a 403 and carries no data.

:func:`serve_replay` runs the same routes alone (``workbench view --serve
--address …``): a token-protected page for one recording, for a replay shared off
this machine without running the app.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.web import HTTPError, RequestHandler

from workbench.model import ConfigError
from workbench.ui.auth import has_token

__all__ = ["PREFIX", "REPLAYS", "Replays", "ServedReplay", "page_path", "replay_key", "routes", "serve_replay", "viewer_dir"]

PREFIX = "replay"
"""First path segment of the replay routes (``/replay/…``)."""

_ID = re.compile(r"[A-Za-z0-9_-]{32}")
_ASSETS = {
    "widget.js": "application/javascript; charset=utf-8",
    "re_viewer_bg.wasm": "application/wasm",
    "widget.css": "text/css; charset=utf-8",
}


def viewer_dir() -> Path:
    """Folder of the web viewer files bundled in ``rerun-notebook``.

    Raises
    ------
    ConfigError
        ``rerun-notebook`` is not installed or lacks the viewer files.
    """
    import importlib.util

    spec = importlib.util.find_spec("rerun_notebook")  # located, not imported (its import may inline 67 MB)
    if spec is None or spec.origin is None:
        msg = "the replay needs rerun-notebook (its bundled web viewer); install rerun-sdk[notebook]"
        raise ConfigError(msg)
    folder = Path(spec.origin).parent / "static"
    missing = [n for n in _ASSETS if not (folder / n).is_file()]
    if missing:
        msg = f"rerun-notebook at {folder} lacks {missing}; reinstall rerun-notebook"
        raise ConfigError(msg)
    return folder


@dataclass
class Replays:
    """Recordings the replay routes may serve, by random id (thread-safe).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> rrd = pathlib.Path(tempfile.mkdtemp()) / "r.rrd"
    >>> _ = rrd.write_bytes(b"RRF2")
    >>> reg = Replays()
    >>> rid = reg.add(rrd)
    >>> reg.path(rid) == rrd, reg.path("../../etc/passwd"), len(rid)
    (True, None, 32)
    >>> reg.remove(rid); reg.path(rid) is None
    True
    >>> pending = reg.reserve()          # a recording still being written
    >>> reg.path(pending) is None, reg.pending(pending)
    (True, True)
    >>> reg.add(rrd, rid=pending) == pending, reg.pending(pending), reg.path(pending) == rrd
    (True, False, True)
    """

    mounted: bool = False
    """True once the routes are part of a running app (set by :func:`workbench.ui.app.serve`)."""
    token: str | None = None
    """The app's token (to make the key a page hands to the viewer's fetch)."""
    _items: dict[str, Path] = field(default_factory=dict)
    _pending: dict[str, str] = field(default_factory=dict)  # id → "" while written, or why it failed
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self) -> str:
        """A new id for a recording still being written: its page can be served (the
        viewer starts loading) and a fetch of its data waits until :meth:`add` or
        :meth:`fail` (see ``PENDING_WAIT_S``)."""
        rid = secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]
        with self._lock:
            self._pending[rid] = ""
        return rid

    def add(self, rrd: Path, rid: str | None = None) -> str:
        """Register the recording *rrd* (a file the workbench wrote), under the reserved
        *rid* or a new id; returns the id."""
        rid = rid or secrets.token_urlsafe(24)
        with self._lock:
            self._pending.pop(rid, None)
            self._items[rid] = Path(rrd)
        return rid

    def fail(self, rid: str, reason: str) -> None:
        """The reserved recording *rid* could not be written: its fetch answers *reason*."""
        with self._lock:
            if rid in self._pending:
                self._pending[rid] = reason or "the recording could not be written"

    def pending(self, rid: str) -> bool:
        """Whether *rid* is reserved and still being written."""
        with self._lock:
            return self._pending.get(rid) == ""

    def failure(self, rid: str) -> str:
        """Why the reserved recording *rid* could not be written ("" when it did not fail)."""
        with self._lock:
            return self._pending.get(rid) or ""

    def remove(self, rid: str) -> None:
        """Forget *rid* (its file is the caller's to delete)."""
        with self._lock:
            self._items.pop(rid, None)
            self._pending.pop(rid, None)

    def path(self, rid: str) -> Path | None:
        """The recording registered as *rid*, or None (unknown or malformed id)."""
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            return None
        with self._lock:
            return self._items.get(rid)

    def known(self, rid: str) -> bool:
        """Whether *rid* is registered or reserved (a malformed id is not)."""
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            return False
        with self._lock:
            return rid in self._items or rid in self._pending

    def __len__(self) -> int:
        with self._lock:
            return len(self._items) + len(self._pending)


PENDING_WAIT_S = 120.0
"""How long a fetch of a recording still being written waits for it."""

REPLAYS = Replays()
"""The recordings of this process's served app (one per browser session at most)."""


def page_path(rid: str) -> str:
    """Address of a replay's page relative to the app's root page (``replay/page/<id>``)."""
    return f"{PREFIX}/page/{rid}"


class _Guarded(RequestHandler):
    """A route that answers 403 without the app's token."""

    def initialize(self, token: str | None = None, replays: Replays = REPLAYS) -> None:
        self._token = token
        self._replays = replays

    def prepare(self) -> None:
        if not has_token(self, self._token):
            raise HTTPError(403, "this replay needs the app's token")
        self._private()

    def _private(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {self._reason}")

    def _recording(self, rid: str) -> Path:
        path = self._replays.path(rid)
        if path is None or not path.is_file():
            raise HTTPError(404, "no such replay")
        return path


class _Asset(_Guarded):
    def get(self, name: str) -> None:
        kind = _ASSETS.get(name)
        if kind is None:
            raise HTTPError(404, "no such file")
        self.set_header("Content-Type", kind)
        self.set_header("Cache-Control", "private, max-age=86400")  # the viewer changes with rerun-notebook only
        with open(viewer_dir() / name, "rb") as fh:
            while chunk := fh.read(4 * 2**20):
                self.write(chunk)
        self.finish()


def replay_key(token: str | None, rid: str) -> str:
    """The key that opens replay *rid*'s recording without the cookie: an HMAC of the id
    under the app's token (empty without a token). Only a page served to a holder of
    the token carries it; it opens that one recording and nothing else."""
    if not token:
        return ""
    return hmac.new(token.encode(), rid.encode(), hashlib.sha256).hexdigest()[:32]


class _Data(_Guarded):
    def prepare(self) -> None:  # the viewer's own fetch sends no cookie: a key made from the token opens it
        rid = self.path_args[0] if self.path_args else ""
        key = self.get_query_argument("key", "")
        if self._token and key and hmac.compare_digest(key.encode(), replay_key(self._token, str(rid)).encode()):
            self._private()
            return
        super().prepare()

    async def get(self, rid: str) -> None:
        import asyncio
        import time

        if self._replays.known(rid):  # written while the viewer loads: wait for it
            end = time.monotonic() + PENDING_WAIT_S
            while self._replays.pending(rid) and time.monotonic() < end:
                await asyncio.sleep(0.05)
            if self._replays.failure(rid):
                raise HTTPError(500, reason="the recording could not be written")
        path = self._recording(rid)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(path.stat().st_size))
        with open(path, "rb") as fh:
            while chunk := fh.read(4 * 2**20):
                self.write(chunk)
        self.finish()


_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Replay · RobotOps Workbench</title>
<link rel="stylesheet" href="../viewer/widget.css">
<style>html, body {{ margin: 0; height: 100%; overflow: hidden; background: #0d1011; }}
#viewer {{ position: absolute; inset: 0; }}</style></head>
<body><div id="viewer" data-replay="{rid}"></div>
<script type="module">
import widget from "../viewer/widget.js";
const recording = {recording};
const listeners = {{}};
// a viewer started ahead of the click (standby) opens the recordings its app posts to it:
// from this origin only, and only a recording address of these routes
const allowed = /^\.\.\/data\/[A-Za-z0-9_-]{{32}}\.rrd(\?key=[0-9a-f]{{32}})?$/;
let current = recording;
let viewerReady = false;
let queued = null;
const openNow = (url, rid) => {{
  for (const fn of listeners["msg:custom"] || []) {{
    if (current) fn({{type: "close_url", url: current}}, []);
    fn({{type: "open_url", url}}, []);
  }}
  current = url;
  document.getElementById("viewer").dataset.replay = rid;
}};
window.addEventListener("message", (event) => {{
  const msg = event.data;
  if (event.origin !== window.location.origin || !msg || msg.type !== "wb-open" || !allowed.test(msg.url)) return;
  const url = new URL(msg.url, window.location.href).href;
  if (viewerReady) openNow(url, msg.url.slice(8, 40));
  else queued = [url, msg.url.slice(8, 40)];  // opened once the viewer has started
}});
window.wbReady = true;
const values = {{_url: recording, _width: "auto", _height: window.innerHeight, _panel_states: null,
                _fallback_token: null, _theme: null}};
const model = {{
  get: (key) => (key in values ? values[key] : null),
  on: (name, fn) => {{ (listeners[name] = listeners[name] || []).push(fn); }},
  send: (m) => {{
    if (m === "ready" && !viewerReady) {{
      viewerReady = true;
      if (queued) {{ openNow(...queued); queued = null; }}
    }}
  }},
}};
window.addEventListener("resize", () => {{
  values._height = window.innerHeight;
  for (const fn of listeners["change:_height"] || []) fn(null, values._height);
}});
widget.render({{model, el: document.getElementById("viewer")}});
</script></body></html>
"""


STANDBY = "standby"
"""Page id of a viewer started before there is a recording (it opens the ones posted to it)."""


def data_path(token: str | None, rid: str) -> str:
    """Address of a replay's recording relative to its page (``../data/<id>.rrd?key=…``)."""
    key = replay_key(token, rid)
    return f"../data/{rid}.rrd" + (f"?key={key}" if key else "")


class _Page(_Guarded):
    def get(self, rid: str) -> None:
        if rid == STANDBY:
            recording = "null"
        elif self._replays.known(rid):
            recording = f'new URL("{data_path(self._token, rid)}", window.location.href).href'
        else:
            raise HTTPError(404, "no such replay")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(_PAGE.format(rid=html.escape(rid, quote=True), recording=recording))


def routes(token: str | None, replays: Replays = REPLAYS, root: str = "/") -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """Tornado routes of the replay (for ``pn.serve(extra_patterns=…)``), behind *token*."""
    base = f"{root.rstrip('/')}/{PREFIX}"
    args = {"token": token, "replays": replays}
    return [
        (rf"{base}/viewer/([A-Za-z0-9_.-]+)", _Asset, args),
        (rf"{base}/page/([A-Za-z0-9_-]+)", _Page, args),
        (rf"{base}/data/([A-Za-z0-9_-]+)\.rrd", _Data, args),
    ]


@dataclass
class ServedReplay:
    """One recording served by :func:`serve_replay`; :meth:`close` stops the server."""

    url: str
    """Page to open (token included when there is one)."""
    token: str | None
    _server: Any = field(repr=False, default=None)
    _loop: Any = field(repr=False, default=None)
    _thread: threading.Thread | None = field(repr=False, default=None)

    def close(self) -> None:
        """Stop listening."""
        if self._loop is not None and self._server is not None:
            server, loop = self._server, self._loop
            loop.add_callback(server.stop)
            loop.add_callback(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._loop = None


def serve_replay(rrd: Path, *, address: str = "127.0.0.1", port: int = 9090, token: str | None = None) -> ServedReplay:
    """Serve one recording with the bundled web viewer on *address*:*port*, in a thread.

    Off this machine a token is required (a random one is made when none is given);
    the page address printed holds it once, then a cookie does.

    Parameters
    ----------
    rrd
        The recording (``workbench view --out``).
    address, port
        Where to listen.
    token
        Access token (at least 16 characters); None on a loopback address: none.

    Returns
    -------
    ServedReplay
        Its page address and token.
    """
    import asyncio

    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop
    from tornado.web import Application

    from workbench.ui.auth import is_loopback, new_token

    viewer_dir()
    if token is None and not is_loopback(address):
        token = new_token()
    if token is not None and len(token) < 16:
        msg = "the replay's token must have at least 16 characters"
        raise ConfigError(msg)
    replays = Replays()
    rid = replays.add(Path(rrd))
    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        app = Application(routes(token, replays))
        try:
            server = HTTPServer(app)
            server.listen(port, address=address)
        except OSError as err:
            state["error"] = err
            ready.set()
            return
        state["server"], state["loop"] = server, loop
        ready.set()
        loop.start()

    thread = threading.Thread(target=run, name="workbench-replay", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in state:
        msg = f"cannot listen on {address}:{port}: {state['error']}"
        raise ConfigError(msg)
    host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address  # noqa: S104 - shown as a loopback link
    netloc = f"[{host}]" if ":" in host else host
    url = f"http://{netloc}:{port}/{page_path(rid)}" + (f"?token={token}" if token else "")
    return ServedReplay(url=url, token=token, _server=state["server"], _loop=state["loop"], _thread=thread)
