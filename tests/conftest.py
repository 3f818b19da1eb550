"""Shared fixtures: paths to the bundled samples and to the real public logs."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
REAL = Path(os.environ.get("WORKBENCH_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(path: Path, what: str) -> Path:
    """Return *path*; skip the test when it is absent, except under CI=true where it fails."""
    if path.exists():
        return path
    msg = f"{what} not found at {path}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: tests may not skip)")
    pytest.skip(msg)
    return path  # unreachable


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real public robot logs (../shared/data/real, see its SOURCES.md)."""
    return need(REAL, "real robot logs")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The committed sample campaign."""
    return need(SAMPLES, "sample campaign")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for browser tests (skips when absent, fails under CI=true)."""
    return need(CHROMIUM, "chromium (apt-get install chromium)")


@pytest.fixture(scope="session")
def browser(chromium):
    """A headless Playwright browser on the system Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots kept after the run (tests/artifacts, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory, samples_dir):
    """The sample campaign ingested, graded and with metrics computed (built once)."""
    import workbench as wb

    store = wb.open_store(tmp_path_factory.mktemp("samples") / "store")
    report = store.ingest([samples_dir])
    assert len(report.ingested) >= 160, report
    wb.quality.grade_store(store)
    wb.metrics.compute(store)
    return store


def _drawn_plots(page: Any, until: Any = None, timeout: float = 30.0) -> list[dict[str, Any]]:
    """What a person sees of every visible titled Bokeh plot on *page*: the frame's
    size, the points held by its line glyphs, and how many coloured (line) pixels a
    screenshot of the frame holds (white background, grey grid and axes excluded).
    Works in the served app and in JupyterLab (each plot is scrolled into view).

    With *until* (a predicate on the list), look again until it holds or *timeout*
    seconds passed (a loaded machine lays out and draws late), then return the last look.
    """
    import time

    end = time.monotonic() + timeout
    while True:
        plots = _drawn_once(page)
        if until is None or until(plots) or time.monotonic() > end:
            return plots
        page.wait_for_timeout(500)


def _drawn_once(page: Any) -> list[dict[str, Any]]:
    import io

    import numpy as np
    from PIL import Image

    count = page.evaluate("""() => { window.__wbPlots = []; const queue = [...Bokeh.index]; const seen = new Set();
      while (queue.length) { const v = queue.shift(); if (seen.has(v)) continue; seen.add(v);
        for (const c of v.children()) queue.push(c);
        const el = v.canvas_view?.el ?? v.canvas?.el;
        if (v.frame && v.model.title && v.model.title.text && el && el.getClientRects().length) window.__wbPlots.push(v); }
      return window.__wbPlots.length; }""")
    out = []
    for i in range(count):
        p = page.evaluate("""(i) => { const v = window.__wbPlots[i]; const el = v.canvas_view?.el ?? v.canvas.el;
          el.scrollIntoView({block: "center"}); const r = el.getBoundingClientRect(); const bb = v.frame.bbox;
          let points = 0;
          for (const rend of v.model.renderers) {
            if (!rend.glyph || !rend.data_source || !rend.glyph.type || !rend.glyph.type.includes("Line")) continue;
            const d = rend.data_source.data; const cols = d instanceof Map ? [...d.values()] : Object.values(d);
            points += cols.length ? cols[0].length : 0; }
          return {title: v.model.title.text, left: r.left + bb.left, top: r.top + bb.top, width: bb.width, height: bb.height, points}; }""", i)
        p["line_pixels"] = 0
        if p["width"] > 4 and p["height"] > 4:
            clip = {"x": p["left"] + 2, "y": p["top"] + 2, "width": p["width"] - 4, "height": p["height"] - 4}
            px = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB"), dtype=np.int16)
            p["line_pixels"] = int(((px.max(axis=2) - px.min(axis=2)) > 60).sum())
        out.append(p)
    return out


@pytest.fixture
def drawn_plots() -> Any:
    """:func:`_drawn_plots`: what is drawn in each visible Bokeh plot of a page."""
    return _drawn_plots


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Any:
    """A function giving a TCP port free on 127.0.0.1 right now."""
    return _free_port


@pytest.fixture(scope="session")
def listening():
    """``listening(pid=None)``: the TCP (address, port) pairs a process tree listens on."""
    return listeners


def listeners(pid: int | None = None) -> set[tuple[str, int]]:
    """(address, port) on which process *pid* (default: this one) and its children listen
    for TCP; a child that ends while being listed is skipped."""
    import os

    import psutil

    root = psutil.Process(pid or os.getpid())
    found: set[tuple[str, int]] = set()
    for p in [root, *root.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def stored_runs(store_dir: Path) -> list[str]:
    """Ids of the runs whose manifest is in ``runs/``; asserts each is complete: its data
    file holds the events and every stream its manifest lists (and nothing else is left
    half-written there; folders are runs of the earlier layout)."""
    from workbench.store import MANIFEST_SUFFIX, RUN_SUFFIX, RUNS_DIR
    from workbench.store.runfile import RunFile

    runs_dir = Path(store_dir) / RUNS_DIR
    ids = []
    for path in sorted(runs_dir.glob(f"*{MANIFEST_SUFFIX}")):
        manifest = json.loads(path.read_text())
        rf = RunFile(str(path.with_suffix(RUN_SUFFIX)))
        assert "events.parquet" in rf.names()
        assert rf.streams() == sorted(manifest["streams"])
        ids.append(path.name[: -len(MANIFEST_SUFFIX)])
    assert not [p for p in runs_dir.iterdir() if p.suffix not in (".json", ".run", ".ann") and not p.is_dir()]
    return ids
