"""UI benchmark: filter a 10,000-run catalog and recompute the views server-side.

A synthetic catalog (4 factors with 2–3 levels, 20 seeds, success and three
continuous metrics, data grades) feeds a :class:`~workbench.ui.DataStore`, a
:class:`~workbench.ui.RunBrowser` and a :class:`~workbench.ui.CompareView`, rendered
to Bokeh models in a server-side Document (as in a served session, without a
browser). Timed: one facet change → DataStore filter → RunBrowser rows → CompareView
cells, heatmap, factor grid, distributions and attribution, all pushed into the Bokeh
models. Target: < 300 ms. The full comparison with bootstrap intervals and tests is
not part of the live update above ``auto_compare_max`` runs (it runs on its button);
its time is printed beside.

In Chromium (``--browser``, default on when ``/usr/bin/chromium`` exists): the served
app on a synthetic catalog of ``--paint-runs`` runs (default 100,000), the time from
opening the page to its first meaningful paint (the run count and the first rows of the
run table drawn; target < 3 s); and on the store of ``make demo`` (``--store``), the
time from clicking "Replay" with 4 runs selected to the viewer holding the recording
(fetched from the app's route, the viewer's canvas drawn; target < 5 s).

Run: ``.venv/bin/python bench/ui.py [--runs N] [--paint-runs N] [--store DIR] [--no-browser]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import polars as pl

TARGET_MS = 300.0


def synthetic_catalog(n: int, seed: int = 0) -> pl.DataFrame:
    """A catalog shaped like ``store.runs()`` after grading and metrics."""
    rng = np.random.default_rng(seed)
    robot = rng.choice(["arm-a", "arm-b", "arm-c"], n)
    light = rng.choice(["bright", "dim"], n)
    surface = rng.choice(["rubber", "steel"], n)
    version = rng.choice(["policy-v1", "policy-v2"], n)
    p = np.where((robot == "arm-b") & (light == "dim") & (version == "policy-v2"), 0.3, 0.9)
    success = (rng.random(n) < p).astype(float)
    tts = np.where(success == 1, rng.normal(np.where(version == "policy-v1", 5.5, 4.6), 0.4), np.nan)
    return pl.DataFrame({
        "run_id": [f"{i:016x}" for i in range(n)],
        "name": [f"{r}_{lt}_{s}_{v}_s{i % 20:02d}" for i, (r, lt, s, v) in enumerate(zip(robot, light, surface, version, strict=True))],
        "outcome": np.where(success == 1, "success", "failure"),
        "duration_s": rng.normal(7, 1, n),
        "hardware.robot": robot,
        "environment.lighting": light,
        "environment.surface": surface,
        "model.version": version,
        "scenario.seed": rng.integers(0, 20, n),
        "quality.grade": rng.choice(list("AABCD"), n),
        "metrics.success": success,
        "metrics.time_to_success": pl.Series(tts).fill_nan(None),
        "metrics.jerk_rms": rng.normal(80, 15, n),
        "metrics.tracking_error_rms": rng.normal(0.025, 0.004, n),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--paint-runs", type=int, default=100_000, help="runs of the catalog the first paint is timed on")
    ap.add_argument("--store", default="workbench-store", help="store the replay is timed on (make demo writes it)")
    ap.add_argument("--browser", action=argparse.BooleanOptionalAction, default=os.path.exists("/usr/bin/chromium"),
                    help="also time the served app in headless Chromium")
    args = ap.parse_args()

    from bokeh.document import Document

    from workbench.ui import CompareView, DataStore, RunBrowser

    cat = synthetic_catalog(args.runs)
    t0 = time.perf_counter()
    data = DataStore(catalog=cat)
    browser = RunBrowser(data=data)
    compare = CompareView(data=data, by="model.version", x=["hardware.robot", "environment.lighting"])
    doc = Document()
    for view in (data, browser, compare):
        view.__panel__().get_root(doc)  # the Bokeh models a served session would hold
    print(f"catalog {cat.height} runs × {cat.width} columns; views built and rendered in {1000 * (time.perf_counter() - t0):.0f} ms")

    filters = [
        {"hardware.robot": ["arm-a", "arm-b"]},
        {"hardware.robot": ["arm-b"], "environment.lighting": ["dim"]},
        {"environment.surface": ["steel"]},
        {"quality.grade": ["A", "B"]},
        {},
    ]
    times: list[float] = []
    for i in range(args.repeat):
        f = filters[i % len(filters)]
        t = time.perf_counter()
        data.filters = f
        times.append(1000 * (time.perf_counter() - t))
        expected = cat.filter(data.expression()).height if data.expression() is not None else cat.height
        assert browser.table.value.shape[0] == expected, (f, browser.table.value.shape, expected)
        assert compare.cells["n"].sum() == data.filtered["metrics.success"].drop_nulls().len()
    med = statistics.median(times)
    print(f"filter + recompute views (DataStore, RunBrowser, CompareView → Bokeh models): "
          f"median {med:.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms over {len(times)} filter changes "
          f"(target < {TARGET_MS:.0f} ms: {'OK' if med < TARGET_MS else 'MISSED'})")

    data.filters = {"hardware.robot": ["arm-b"]}
    t = time.perf_counter()
    compare.run_compare()
    print(f"on demand: full comparison of {data.filtered.height} runs (bootstrap {compare.n_boot}, tests, verdicts): "
          f"{1000 * (time.perf_counter() - t):.0f} ms")
    if args.browser:
        browser_timings(args.paint_runs, args.store)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_timings(paint_runs: int, store_dir: str) -> None:
    """First meaningful paint on a big catalog and replay latency, in headless Chromium."""
    from pathlib import Path

    import panel as pn
    from playwright.sync_api import sync_playwright

    import workbench as wb
    from workbench.ui import App, DataStore
    from workbench.ui import app as app_module

    big = synthetic_catalog(paint_runs, seed=1)
    port = _free_port()
    server = pn.serve({"/": lambda: App(data=DataStore(catalog=big)).__panel__(),
                       "/eager": lambda: App(data=DataStore(catalog=big), defer_tabs=False).__panel__()},
                      port=port, address="127.0.0.1",
                      show=False, threaded=True, start=True, verbose=False, websocket_origin=[f"127.0.0.1:{port}"])
    store = wb.open_store(store_dir, create=False) if Path(store_dir, "runs").is_dir() else None
    port2 = _free_port()
    served = app_module.serve(store, port=port2, threaded=True) if store is not None else None
    time.sleep(2)
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium")
            def paint(path: str, tabs_too: bool) -> tuple[float, float]:
                """Seconds from opening *path* to the count and first rows drawn (and to the tabs)."""
                page = chromium.new_page(viewport={"width": 1400, "height": 1000})
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}{path}", wait_until="commit")
                page.locator(".wb-run-count p", has_text=f"of {paint_runs} runs").wait_for(timeout=120_000)
                page.locator(".wb-run-browser .tabulator-row").first.wait_for(timeout=120_000)
                first = time.perf_counter() - t
                if tabs_too:  # the tabs (comparison heatmap, grid) are built once the page is up
                    page.locator(".bk-tab", has_text="Compare").first.wait_for(timeout=120_000)
                done = time.perf_counter() - t
                page.close()
                return first, done

            eager = [paint("/eager", False)[0] for _ in range(3)]  # the baseline: every tab built before the page is sent
            paints, tabs = zip(*[paint("/", True) for _ in range(3)], strict=True)
            med = statistics.median(paints)
            print(f"served app, {paint_runs:,}-run catalog: first meaningful paint (count + first table rows) "
                  f"median {med:.2f} s of {len(paints)} (min {min(paints):.2f}, max {max(paints):.2f}; target < 3 s: "
                  f"{'OK' if med < 3 else 'MISSED'}); the tabs follow at {statistics.median(tabs):.2f} s; "
                  f"with the tabs built first (as before): {statistics.median(eager):.2f} s "
                  f"({statistics.median(eager) / med:.2f}× slower)")
            if served is None:
                print(f"replay latency: skipped (no store at {store_dir}; run `make demo` first)")
                return
            page = chromium.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port2}/")
            page.locator(".wb-fg-cell").first.wait_for(timeout=120_000)
            def replay(cell: int) -> float:
                """Click a grid cell, then Replay: seconds from the click (in the page) to the
                recording received by the viewer (the iframe's resource timing), so that
                Playwright's own latency on a busy page is not counted."""
                page.locator(".bk-tab", has_text="Compare").click()
                page.locator(".wb-fg-cell").nth(cell).click()
                page.locator(".wb-run-count p", has_text="selected").wait_for(timeout=60_000)
                page.locator(".bk-tab", has_text="Replay").click()  # the viewer starts with the tab
                button = page.locator(".wb-replay-button button").element_handle()
                clicked = button.evaluate("b => { b.click(); return performance.timeOrigin + performance.now(); }")
                frame = page.locator("iframe.wb-rerun").element_handle()
                end = time.perf_counter() + 120
                while time.perf_counter() < end:
                    inner = frame.content_frame()
                    done = inner.evaluate("""() => performance.getEntriesByType('resource')
                        .filter(e => e.name.includes('/replay/data/') && e.responseEnd > 0)
                        .map(e => performance.timeOrigin + e.responseEnd)""") if inner else []
                    done = [d for d in done if d > clicked]
                    if done:
                        return (done[0] - clicked) / 1000
                    page.wait_for_timeout(100)
                return float("nan")

            cold = replay(0)  # the tab opened and Replay clicked at once: the viewer's wasm still loading
            page.wait_for_timeout(2000)
            warm = replay(1)  # the viewer up, showing the first replay: a second selection
            print(f"replay of 4 runs (the demo store), click → recording received by the viewer: cold (tab just "
                  f"opened, viewer loading) {cold:.2f} s; warm (viewer up) {warm:.2f} s (target < 5 s: "
                  f"{'OK' if max(cold, warm) < 5 else 'MISSED'}; software rendering on the same 2 cores here)")
            chromium.close()
    finally:
        server.stop()
        if served is not None:
            served.stop()


if __name__ == "__main__":
    main()
