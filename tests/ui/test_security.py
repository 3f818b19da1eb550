"""The served app: token off this machine, no path traversal, many sessions at once."""

from __future__ import annotations

import http.client
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

import workbench.ui as ui
from workbench.ui.auth import COOKIE, TokenAuth, is_loopback

TOKEN = "t0ken-for-the-tests-0123456789"
MARKER = "SECRET-OUTSIDE-THE-STORE-7f3a"



def _wait_port(port: int, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(port)


def _get(port: int, path: str, *, cookie: str | None = None, method: str = "GET", body: str | None = None):
    """One raw HTTP request (the path is sent exactly as given: no normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def _interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C a command as a person would; kill it if it does not stop within 20 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def guarded(free_port, sample_store):
    """The app bound to every address (0.0.0.0), with a token."""
    port = free_port()
    server = ui.serve(sample_store, address="0.0.0.0", port=port, token=TOKEN, threaded=True)
    _wait_port(port)
    yield port, server
    server.stop()


def test_loopback_addresses():
    assert [is_loopback(a) for a in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]")] == [True] * 5
    assert [is_loopback(a) for a in ("0.0.0.0", "::", "192.168.1.10", "robot-lab.example")] == [False] * 4
    with pytest.raises(ValueError, match="at least 16"):
        TokenAuth("short")


def test_token_is_required_off_this_machine(guarded):
    port, server = guarded
    assert server.workbench_url == f"http://127.0.0.1:{port}/?token={TOKEN}"
    # no token, a wrong one, or a wrong cookie: sent to the login form, never the app
    for path, cookie in (("/", None), ("/?token=wrong-token-wrong-token", None), ("/", "wrong-token-wrong-token")):
        status, headers, body = _get(port, path, cookie=cookie)
        assert status == 302, (path, status)
        assert headers["Location"].lstrip(".").startswith("/login?next=%2F")
        assert "Bokeh" not in body
    status, _, body = _get(port, "/login?next=%2F")
    assert status == 200 and "access token" in body
    # Bokeh's other document endpoints are guarded too
    assert _get(port, "/autoload.js?bokeh-autoload-element=x")[0] in (302, 403)
    assert _get(port, "/metadata")[0] in (302, 403, 404)
    # the right token in the address opens the app and sets an HTTP-only cookie
    status, headers, body = _get(port, f"/?token={TOKEN}")
    assert status == 200 and "RobotOps Workbench" in body
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # then the cookie alone is enough
    assert _get(port, "/", cookie=TOKEN)[0] == 200
    # the login form: a wrong token is refused, the right one sets the cookie and goes on
    status, _, body = _get(port, "/login?next=%2F", method="POST", body="token=nope")
    assert status == 403 and "Wrong token" in body
    status, headers, _ = _get(port, "/login?next=%2F", method="POST", body=f"token={TOKEN}")
    assert status == 302 and headers["Location"] == "/" and headers["Set-Cookie"].startswith(f"{COOKIE}={TOKEN}")
    # an open redirect through ?next= is not possible
    status, headers, _ = _get(port, "/login?next=%2F%2Fevil.example", method="POST", body=f"token={TOKEN}")
    assert status == 302 and headers["Location"] == "/"


def test_a_token_is_made_when_none_is_given(free_port, sample_store):
    port = free_port()
    server = ui.serve(sample_store, address="0.0.0.0", port=port, threaded=True)
    try:
        _wait_port(port)
        token = re.search(r"\?token=([\w-]+)$", server.workbench_url).group(1)
        assert len(token) >= 32
        assert _get(port, "/")[0] == 302
        assert _get(port, f"/?token={token}")[0] == 200
    finally:
        server.stop()


def test_localhost_needs_no_token(free_port, sample_store):
    port = free_port()
    server = ui.serve(sample_store, port=port, threaded=True)
    try:
        _wait_port(port)
        assert server.workbench_url == f"http://127.0.0.1:{port}/"
        status, headers, _ = _get(port, "/")
        assert status == 200 and "Set-Cookie" not in headers
    finally:
        server.stop()


def test_serve_command_prints_the_address_with_its_token(free_port, sample_store):
    port = free_port()
    exe = Path(sys.executable).with_name("workbench")
    proc = subprocess.Popen(
        [str(exe), "serve", "--store", str(sample_store.root), "--address", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "WORKBENCH_TOKEN": ""},
    )
    try:
        line = proc.stdout.readline()
        m = re.search(rf"at http://127\.0\.0\.1:{port}/\?token=([\w-]+) ", line)
        assert m, line
        _wait_port(port, timeout=60)
        assert _get(port, "/")[0] == 302
        assert _get(port, f"/?token={m.group(1)}")[0] == 200
    finally:
        _interrupt(proc)
    from workbench.cli import cli

    res = CliRunner().invoke(cli, ["serve", "--store", str(sample_store.root), "--token", "short"])
    assert res.exit_code == 1 and "at least 16 characters" in res.output


def test_no_request_reads_files_outside_the_store(guarded, sample_store, tmp_path):
    port, _ = guarded
    root = Path(sample_store.root)
    secret = root.parent / "secret.txt"
    secret.write_text(MARKER)
    manifest = next(root.glob("runs/*/*.json"), None) or next(root.rglob("*.json"))
    rel_secret = os.path.relpath(secret, "/")
    attempts = [
        "/../secret.txt", "/static/../../secret.txt", "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/" + "../" * 12 + "etc/passwd",
        "/static/" + "..%2f" * 12 + quote(rel_secret, safe=""),
        "/static/extensions/panel/" + "..%2f" * 12 + "etc/passwd",
        "/components/os/path/__css__/" + "../" * 12 + "etc/passwd",
        "/components/workbench.ui.factor_grid/FactorGrid/_esm/" + "..%2f" * 12 + quote(rel_secret, safe=""),
        "/components/workbench.ui.factor_grid/FactorGrid/_stylesheets/" + "../" * 12 + "etc/passwd",
        "/components/pathlib/Path/read_text/" + quote(str(secret), safe=""),
        "/?path=" + quote(str(secret)), "/?store=" + quote(str(secret.parent)), "/?file=/etc/passwd",
        "/" + quote(str(secret), safe=""), "//" + str(secret), "/" + quote(str(manifest), safe=""),
        "/runs/" + manifest.parent.name + "/" + manifest.name,
    ]
    for cookie in (None, TOKEN):
        for path in attempts:
            status, _, body = _get(port, path, cookie=cookie)
            assert MARKER not in body and "root:x:0:0" not in body and '"run_id"' not in body, (path, status)
            assert status != 200 or "RobotOps Workbench" in body, (path, status)


def test_twenty_sessions_held_for_a_minute(free_port, sample_store, browser, artifacts, caplog):
    """20 browser sessions open at once and held 60 s: none drops, errs, or stops answering."""
    n, hold = 20, 60.0
    port = free_port()
    caplog.set_level(logging.ERROR)
    server = ui.serve(sample_store, port=port, threaded=True)
    pages = []
    errors: list[str] = []
    closed: list[str] = []
    try:
        _wait_port(port)
        for i in range(n):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m, i=i: errors.append(f"{i}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e, i=i: errors.append(f"{i}: {e}"))
            page.on("requestfailed", lambda r, i=i: errors.append(f"{i}: failed {r.url}"))
            page.on("websocket", lambda ws, i=i: ws.on("close", lambda _ws: closed.append(f"{i}: {ws.url}")))
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=300_000)  # 20 documents are built in turn
            pages.append(page)
        for page in pages:
            page.locator(".wb-run-count p", has_text="164 of 164 runs").wait_for(timeout=300_000)
        # hold every session for a minute while some of them work (round robin)
        end, k = time.time() + hold, 0
        while time.time() < end:
            page = pages[(k * 7) % n]
            page.locator(".wb-fg-cell[data-x='arm-a · dim'][data-y='policy-v1']").click()
            page.locator(".wb-run-count p", has_text="20 selected").wait_for(timeout=60_000)
            k += 1
        assert k >= 3
        # after the minute every session still answers: first and last opened are driven again
        for page in (pages[0], pages[-1]):
            page.locator(".wb-fg-cell[data-x='arm-b · dim'][data-y='policy-v2']").click()
            page.locator(".wb-run-count p", has_text="21 selected").wait_for(timeout=60_000)
        for page in pages:
            assert page.locator(".wb-run-count p").inner_text().startswith("164 of 164 runs")
        pages[-1].screenshot(path=str(artifacts / "app_session_20.png"))
        assert not closed, closed[:5]
        assert not errors, errors[:5]
        server_errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not server_errors, server_errors[:5]
    finally:
        for page in pages:
            page.close()
        server.stop()


# --------------------------------------------------------------------------- the replay, through the app


def _raw(port: int, path: str, *, cookie: str | None = None, host: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def _replay_of(store, n: int = 2):
    """A replay made as a browser session makes it (the ReplayView of one App)."""
    from workbench.ui.datastore import DataStore
    from workbench.ui.replay_view import ReplayView

    data = DataStore(store=store)
    data.selection = data.filtered["run_id"][:n].to_list()
    view = ReplayView(data=data)
    url = view.replay()
    return view, url


def test_the_viewer_fetch_waits_for_a_recording_still_being_written(guarded, sample_store):
    """The page is sent at once and the recording is written in the background: a fetch
    made before it is written gets all of it; a failed write answers 500, not a file."""
    import threading

    from workbench.ui.replay_routes import REPLAYS

    port, _ = guarded
    view, url = _replay_of(sample_store)
    rid = url.rsplit("/", 1)[1]
    got: dict[str, tuple[int, bytes]] = {}
    try:
        status, page = _raw(port, f"/{url}", cookie=TOKEN)  # the page does not wait
        assert status == 200 and rid.encode() in page
        fetch = threading.Thread(target=lambda: got.setdefault("data", _raw(port, f"/replay/data/{rid}.rrd", cookie=TOKEN)))
        fetch.start()
        assert view.written(60)
        fetch.join(60)
        rrd = REPLAYS.path(rid)
        assert got["data"] == (200, rrd.read_bytes()) and len(got["data"][1]) > 10_000
        failed = REPLAYS.reserve()
        REPLAYS.fail(failed, "boom")
        status, body = _raw(port, f"/replay/data/{failed}.rrd", cookie=TOKEN)
        assert status == 500 and b"RRF" not in body and b"boom" not in body
        REPLAYS.remove(failed)
    finally:
        view.close()


def test_replay_routes_need_the_token_and_name_no_file(guarded, sample_store):
    from workbench.ui.replay_routes import REPLAYS, replay_key

    port, _ = guarded
    view, url = _replay_of(sample_store)
    try:
        assert re.fullmatch(r"replay/page/[A-Za-z0-9_-]{32}", url), url  # relative to the app: same origin, any prefix
        rid = url.rsplit("/", 1)[1]
        assert view.written(60)
        rrd = REPLAYS.path(rid)
        assert rrd is not None and rrd.is_file() and rrd.stat().st_size > 10_000
        data = f"/replay/data/{rid}.rrd"
        routes = [f"/{url}", data, "/replay/viewer/widget.js", "/replay/viewer/re_viewer_bg.wasm"]
        # without the token (or with a wrong one) no route returns anything of the replay
        for path in routes:
            for cookie in (None, "wrong-token-wrong-token"):
                status, body = _raw(port, path, cookie=cookie)
                assert status == 403 and len(body) < 200 and b"RRF" not in body, (path, cookie, status)
        assert _raw(port, f"{data}?key=" + "0" * 32)[0] == 403
        assert _raw(port, f"{data}?key={replay_key('another-token-0123456789', rid)}")[0] == 403
        # with the cookie: the page (carrying the key for the viewer's own fetch), the recording, the viewer
        status, page = _raw(port, f"/{url}", cookie=TOKEN)
        assert status == 200 and f"../data/{rid}.rrd?key={replay_key(TOKEN, rid)}".encode() in page
        status, body = _raw(port, data, cookie=TOKEN)
        assert status == 200 and body == rrd.read_bytes()
        assert _raw(port, f"{data}?key={replay_key(TOKEN, rid)}") == (200, body)  # the key opens this one only
        status, js = _raw(port, "/replay/viewer/widget.js", cookie=TOKEN)
        assert status == 200 and b"var WebViewer" in js
        # nothing else can be named: other files, traversal, ids not registered
        store_file = next(Path(sample_store.root).rglob("*.json"))
        for path in ["/replay/viewer/__init__.py", "/replay/viewer/..%2f__init__.py", "/replay/viewer/%2e%2e%2f%2e%2e%2fsecret.txt",
                     "/replay/data/..%2f..%2f..%2fetc%2fpasswd.rrd", "/replay/data/" + "A" * 32 + ".rrd",
                     f"/replay/data/{rid[:-1]}.rrd", f"/replay/page/{rid}x", "/replay/data/" + quote(str(store_file), safe="") + ".rrd",
                     "/replay/page/" + "..%2f" * 8 + "etc%2fpasswd", f"/replay/data/{rid}.rrd/../../../etc/passwd"]:
            status, body = _raw(port, path, cookie=TOKEN)
            assert status == 404 and b"root:x:0:0" not in body and b'"run_id"' not in body, (path, status)
    finally:
        view.close()
    # the session's replay is gone with it: its id answers 404 and its file is deleted
    assert _raw(port, f"/replay/data/{rid}.rrd", cookie=TOKEN)[0] == 404
    assert REPLAYS.path(rid) is None and not rrd.exists()


def test_a_replay_opens_no_listening_socket(guarded, sample_store, listening):

    port, _ = guarded

    before = listening()
    view, _url = _replay_of(sample_store, 4)
    try:
        after = listening()
        assert after == before, after - before  # no new server, no child process listening
        off_machine = {(ip, p) for ip, p in after if not is_loopback(ip)}
        assert off_machine <= {("0.0.0.0", port), ("::", port)}, off_machine
    finally:
        view.close()


def test_view_serve_off_this_machine_needs_a_token(free_port, sample_store):
    """`workbench view --serve --address 0.0.0.0`: one port, the token printed, nothing without it."""
    import psutil

    port = free_port()
    rid = sample_store.run_ids()[0]
    exe = Path(sys.executable).with_name("workbench")
    proc = subprocess.Popen(
        [str(exe), "view", rid, "--store", str(sample_store.root), "--serve", "--address", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = ""
        while "Rerun viewer:" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the command ended before serving"
        m = re.search(rf"http://127\.0\.0\.1:{port}/(replay/page/[\w-]+)\?token=([\w-]+)", line)
        assert m, line
        page, token = m.group(1), m.group(2)
        assert len(token) >= 32
        assert _raw(port, f"/{page}")[0] == 403
        status, html_page = _raw(port, f"/{page}?token={token}")
        assert status == 200
        data = re.search(rb'"\.\./data/([\w-]+\.rrd\?key=\w+)"', html_page).group(1).decode()
        status, body = _raw(port, f"/replay/data/{data}")
        assert status == 200 and len(body) > 10_000
        assert _raw(port, "/replay/data/" + data.split("?")[0])[0] == 403
        listen = {c.laddr.port for c in psutil.Process(proc.pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        assert listen == {port}, listen
    finally:
        _interrupt(proc)
