"""Panel components: documented parameters, shared selection, and the served app in Chromium."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import param
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
import workbench.ui as ui

XSS = "<script>alert(1)</script>"
CELL = ("arm-b · dim", "policy-v2")  # the planted regression: 6/21 successes



@pytest.fixture(scope="module")
def served(free_port, sample_store) -> Iterator[str]:
    port = free_port()
    server = ui.serve(sample_store, port=port, threaded=True)
    _wait_port(port)
    yield f"http://127.0.0.1:{port}/"
    server.stop()


def _wait_port(port: int, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(port)


def _the_apps(message) -> bool:
    """A console message of the app itself, not of the Rerun viewer (which starts when the
    Replay tab opens, and whose own tries to reach the internet fail on this offline
    machine: a resource of another host, or its code under /replay/)."""
    url = (message.location or {}).get("url", "")
    return not url or (url.startswith(("http://127.0.0.", "http://localhost")) and "/replay/" not in url)


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    log = {"errors": [], "external": [], "dialogs": []}
    page.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" and _the_apps(m) else None)
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("request", lambda r: log["external"].append(r.url) if not r.url.startswith(("http://127.0.0.", "ws://127.0.0.", "data:", "blob:")) and r.frame == page.main_frame else None)
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector(".wb-run-count p", timeout=90_000)
    page.wait_for_selector(".wb-fg-cell", timeout=60_000)
    return page, log


def _count(page) -> str:
    return page.locator(".wb-run-count p").inner_text()


def _plot_frames(page) -> list[dict]:
    """Title and viewport box of the data frame of every Bokeh plot on the page."""
    return page.evaluate("""() => {
      const out = []; const queue = [...Bokeh.index]; const seen = new Set();
      while (queue.length) {
        const v = queue.shift(); if (seen.has(v)) continue; seen.add(v);
        for (const c of v.children()) queue.push(c);
        if (v.frame && v.model.title && v.model.title.text) {
          const r = (v.canvas_view ?? v.canvas).el.getBoundingClientRect(); const bb = v.frame.bbox;
          out.push({title: v.model.title.text, left: r.left + bb.left, top: r.top + bb.top, width: bb.width, height: bb.height});
        }
      }
      return out; }""")


TABS = ("Compare", "Run detail", "Replay", "Moments", "Trends")


def _tab(page, name: str) -> None:
    """Click a tab of the app as a person would (fails if something covers it)."""
    page.locator(".bk-tab", has_text=name).click(timeout=10_000)
    page.locator(".bk-tab.bk-active", has_text=name).wait_for(timeout=10_000)


# --------------------------------------------------------------------------- without a browser


def test_every_parameter_of_the_ui_has_a_doc():
    import workbench.ui as pkg

    missing = []
    classes = {obj for mod in (pkg.app, pkg.compare_view, pkg.datastore, pkg.factor_grid, pkg.moments_view, pkg.replay_view,
                                pkg.run_browser, pkg.run_detail, pkg.trends_view, pkg.fleet_view)
               for _, obj in inspect.getmembers(mod, inspect.isclass) if issubclass(obj, param.Parameterized)}
    ours = [c for c in classes if c.__module__.startswith("workbench.")]
    assert len(ours) >= 8
    for cls in ours:
        for name, p in cls.param.objects("existing").items():
            if p.owner.__module__.startswith("workbench.") and not (p.doc or "").strip():
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"parameters without doc=: {missing}"


def test_no_parameter_names_a_path():
    """The browser can only reach runs of the store: no string parameter is a path or URL input."""
    for cls in (ui.DataStore, ui.RunBrowser, ui.CompareView, ui.RunDetail, ui.ReplayView, ui.MomentsView, ui.FleetView, ui.App):
        for name, p in cls.param.objects("existing").items():
            if p.owner.__module__.startswith("workbench.") and isinstance(p, param.String | param.Path | param.Filename | param.Foldername):
                assert not isinstance(p, param.Path), f"{cls.__name__}.{name}"
                assert name in {"name", "text", "title", "url", "rule"}, f"{cls.__name__}.{name}"
    assert ui.ReplayView.param.url.constant


def test_selection_flows_between_views(sample_store):
    data = ui.DataStore(store=sample_store)
    browser, compare, detail = ui.RunBrowser(data=data), ui.CompareView(data=data), ui.RunDetail(data=data)
    assert compare.by == "model.version" and compare.x == ["hardware.robot", "environment.lighting"]
    cell = compare.cells.filter((pl.col("x") == CELL[0]) & (pl.col("y") == CELL[1]))
    assert (cell["k"][0], cell["n"][0]) == (6, 21)
    runs = compare.select_cell(*CELL)
    assert len(runs) == 21 and data.selection == runs
    assert sorted(browser.table.selection) == list(range(21))  # moved to the top and selected
    assert set(browser.table.value["run_id"][:21]) == set(runs)
    assert len(detail.runs) == detail.max_runs and detail.provenance.value.shape[0] == detail.max_runs
    assert len(detail.plot.objects) == len(detail.signals) >= 1 and all(p.object is not None for p in detail.plot.objects)
    # filtering drops selected runs outside the filter and shrinks every view
    data.filters = {"hardware.robot": ["arm-a"]}
    assert data.filtered.height == 82 and data.selection == []
    assert browser.table.value.shape[0] == 82
    assert set(compare.cells["x"]) == {"arm-a · bright", "arm-a · dim"}
    assert detail.runs == []
    # a click in the factor grid selects like a heatmap click
    compare.grid.selected = {"x": "arm-a · dim", "y": "policy-v1", "t": 1}
    assert len(data.selection) == 20
    # runs outside the store cannot be loaded
    with pytest.raises(wb.ConfigError):
        data.load_runs(["not-a-run"])


def test_factor_grid_loads_its_module_from_widgets():
    from workbench.ui.factor_grid import widgets_dir

    src = (widgets_dir() / "factor_grid.js").read_text()
    assert ui.FactorGrid._render_esm() == src  # the module is the file in widgets/, verbatim
    assert "textContent" in src and "innerHTML" not in src
    assert ui.FactorGrid._process_importmap() == {"imports": {}, "scopes": {}}


def test_serve_command_binds_localhost_by_default():
    from workbench.ui.cli import serve

    params = {p.name: p for p in serve.params}
    assert params["address"].default == "127.0.0.1"
    assert params["port"].default == 5006
    assert params["show"].default is False
    assert "--store" in CliRunner().invoke(serve, ["--help"]).output


# --------------------------------------------------------------------------- in Chromium


def test_app_loads_filters_and_selects(served, browser, artifacts, drawn_plots):
    page, log = _open(browser, served)
    assert _count(page).startswith("164 of 164 runs")
    page.screenshot(path=str(artifacts / "app_loaded.png"))
    # metric columns are headed with their unit
    headers = page.locator(".wb-run-browser .tabulator-col-title").all_inner_texts()
    assert "time_to_success [s]" in headers and "success" in headers, headers

    # filtering the RunBrowser by a facet changes its rows
    facet = page.locator("select[multiple]").filter(has=page.locator("option", has_text="arm-a (82)"))
    facet.select_option(label="arm-a (82)")
    page.wait_for_function("() => true")
    page.locator(".wb-run-count p", has_text="82 of 164").wait_for(timeout=60_000)
    robots = page.locator(".wb-run-browser .tabulator-row .tabulator-cell[tabulator-field='hardware.robot']").all_inner_texts()
    assert robots and set(robots) == {"arm-a"}
    facet.select_option([])
    page.locator(".wb-run-count p", has_text="164 of 164").wait_for(timeout=60_000)

    # clicking a heatmap cell selects its runs in the RunBrowser and the RunDetail
    page.locator(".wb-heatmap").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    heat = next(f for f in _plot_frames(page) if "click a cell" in f["title"])
    columns = sorted(["arm-a · bright", "arm-a · dim", "arm-b · bright", "arm-b · dim"])
    col = columns.index(CELL[0])
    page.mouse.click(heat["left"] + heat["width"] * (col + 0.5) / 4, heat["top"] + heat["height"] * 0.25)  # top row: policy-v2
    page.locator(".wb-run-count p", has_text="21 selected").wait_for(timeout=60_000)
    selected = page.locator(".wb-run-browser .tabulator-row.tabulator-selected")
    assert selected.count() == 15  # the first page, all selected runs moved to the top
    names = selected.locator(".tabulator-cell[tabulator-field='name']").all_inner_texts()
    assert all(n.startswith("arm-b_dim_") and "policy-v2" in n for n in names)
    page.screenshot(path=str(artifacts / "app_heatmap_click.png"))

    # the comparison's "Runs needed" table: one row per cell, with the runs a 0.1 drop needs
    plan = page.locator(".wb-plan")
    plan.scroll_into_view_if_needed()
    plan.locator(".tabulator-row").first.wait_for(timeout=60_000)
    cells = plan.locator(".tabulator-cell[tabulator-field='runs per side for a 0.1 drop']").all_inner_texts()
    assert len(cells) == 4 and all(c.strip().isdigit() and int(c) > 20 for c in cells), cells
    assert page.locator(".wb-plan-status p", has_text="up to").count() == 1

    # the factor grid (custom anywidget) selects too
    page.locator(".wb-fg-cell[data-x='arm-a · dim'][data-y='policy-v1']").click()
    page.locator(".wb-run-count p", has_text="20 selected").wait_for(timeout=60_000)

    _tab(page, "Run detail")
    status = page.locator(".wb-run-detail-status p", has_text="first 6 of 20 selected")
    status.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    prov = page.locator(".wb-provenance .tabulator-row").all_inner_texts()
    assert len(prov) == 6 and all(".mcap" in r for r in prov)
    page.screenshot(path=str(artifacts / "app_run_detail.png"), full_page=True)
    # each signal's plot is drawn: a frame of real size, six runs' lines with data, coloured pixels inside it
    signals = {"joint_states.position[joint_2]", "ft_sensor.force[z]"}
    def ok(p: dict) -> bool:
        return p["width"] > 500 and p["height"] > 120 and p["points"] > 6 * 100 and p["line_pixels"] > 2000

    def all_drawn(plots: list[dict]) -> bool:
        mine = {p["title"]: p for p in plots if p["title"] in signals}
        return set(mine) == signals and all(ok(p) for p in mine.values())

    drawn = {p["title"]: p for p in drawn_plots(page, until=all_drawn) if p["title"] in signals}
    assert set(drawn) == signals, drawn
    for p in drawn.values():
        assert ok(p), p
    # the legends stay inside their plots: the tab bar is not covered, every tab opens after every other
    walk = [0, 4, 3, 4, 2, 4, 1, 4, 0, 3, 2, 3, 1, 3, 0, 2, 1, 2, 0, 1, 0]  # every ordered pair of different tabs once
    assert len({(a, b) for a, b in itertools.pairwise(walk)}) == len(TABS) * (len(TABS) - 1)
    for i in walk:
        _tab(page, TABS[i])
    _tab(page, "Run detail")
    page.wait_for_timeout(1500)
    again = {p["title"]: p for p in drawn_plots(page, until=all_drawn) if p["title"] in signals}
    assert set(again) == set(drawn) and all(p["line_pixels"] > 2000 for p in again.values()), again
    page.screenshot(path=str(artifacts / "app_run_detail_after_tabs.png"), full_page=True)
    page.close()
    assert not log["errors"], log["errors"]
    assert not log["external"], log["external"]


def test_app_trends_draw_a_control_chart_and_a_point_opens_its_runs(served, sample_store, browser, artifacts, drawn_plots):
    from workbench.trends import trend

    page, log = _open(browser, served)
    _tab(page, "Trends")
    status = page.locator(".wb-trends-status p", has_text="per hour over 164 run(s)")
    status.wait_for(timeout=60_000)
    windows = int(status.inner_text().split("run(s): ")[1].split(" point")[0])
    assert windows == 30, status.inner_text()  # the sample campaign's runs started over 30 hours
    page.wait_for_timeout(1000)
    def chart_drawn(plots: list[dict]) -> bool:
        return any(p["title"] == "success per hour" and p["line_pixels"] > 1500 and p["width"] > 500 for p in plots)

    charts = [p for p in drawn_plots(page, until=chart_drawn) if p["title"] == "success per hour"]
    assert len(charts) == 1, charts
    chart = charts[0]
    assert chart["width"] > 500 and chart["height"] > 150, chart
    assert chart["points"] >= 4 * windows, chart  # value line, center line and two limits
    assert chart["line_pixels"] > 1500, chart
    rows = page.locator(".wb-trends-table .tabulator-row")
    assert rows.count() == 12  # the first page of 30 windows
    first = rows.first.locator(".tabulator-cell[tabulator-field='hour']").inner_text()
    assert first == "2026-06-01 00:00", first
    # one series per model version: two charts, one per version
    page.locator(".wb-trends-controls select").nth(2).select_option(label="model.version")
    points = trend(sample_store.runs(), within="model.version").table.height
    assert points > windows
    page.locator(".wb-trends-status p", has_text=f"{points} point(s)").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    def two_drawn(plots: list[dict]) -> bool:
        return sum(p["title"].startswith("model.version") and p["line_pixels"] > 1500 for p in plots) == 2

    both = sorted((p for p in drawn_plots(page, until=two_drawn) if p["title"].startswith("model.version")),
                  key=lambda p: p["title"])
    assert [p["title"] for p in both] == ["model.version = policy-v1: success per hour",
                                          "model.version = policy-v2: success per hour"], both
    assert all(p["width"] > 500 and p["points"] >= 4 * 20 and p["line_pixels"] > 1500 for p in both), both
    page.screenshot(path=str(artifacts / "app_trends.png"), full_page=True)
    # a row (a point) opens its runs: they are selected and Run detail shows them
    row = page.locator(".wb-trends-table .tabulator-row").nth(1)
    assert row.locator(".tabulator-cell[tabulator-field='model.version']").inner_text() == "policy-v1"
    runs = int(row.locator(".tabulator-cell[tabulator-field='runs']").inner_text())
    assert runs > 0
    row.locator(".tabulator-cell[tabulator-field='hour']").click()
    page.locator(".bk-tab.bk-active", has_text="Run detail").wait_for(timeout=30_000)
    page.locator(".wb-run-count p", has_text=f"· {runs} selected").wait_for(timeout=30_000)
    page.locator(".wb-run-detail-status p", has_text=f"{runs} run(s) shown").wait_for(timeout=30_000)
    page.close()
    assert not log["errors"], log["errors"]
    assert not log["external"], log["external"]


def test_app_fleet_ranks_policies_shows_units_and_a_row_opens_its_runs(served, sample_store, browser, artifacts, drawn_plots):
    page, log = _open(browser, served)
    _tab(page, "Fleet")
    status = page.locator(".wb-fleet-status p", has_text="ranks first")
    status.wait_for(timeout=60_000)
    expect = wb.rank(sample_store.runs(), n_boot=200)
    def ranked(plots: list[dict]) -> bool:
        return any(p["title"].startswith("success by model.version") and p["line_pixels"] > 80 for p in plots)

    plots = drawn_plots(page, until=ranked)
    chart = next(p for p in plots if p["title"].startswith("success by model.version"))
    assert chart["width"] > 500 and chart["line_pixels"] > 80, chart  # two policies drawn as coloured points
    assert any(p["title"] == "probability of each rank" and p["line_pixels"] > 500 for p in plots), plots
    rows = page.locator(".wb-fleet-table .tabulator-row")
    assert rows.count() == 2
    shown = [(rows.nth(i).locator(".tabulator-cell[tabulator-field='model.version']").inner_text(),
              float(rows.nth(i).locator(".tabulator-cell[tabulator-field='value']").inner_text()),
              rows.nth(i).locator(".tabulator-cell[tabulator-field='letters']").inner_text()) for i in range(2)]
    want = [(v, round(x, 3), letters) for v, x, letters in expect.table.select("model.version", "value", "letters").iter_rows()]
    assert shown == want, (shown, want)
    page.screenshot(path=str(artifacts / "app_fleet_ranking.png"), full_page=True)
    # the unit view: one row per robot arm, each with its shrunken rate
    page.locator(".wb-fleet-mode button", has_text="units").click()
    page.locator(".wb-fleet-status p", has_text="of the variation in the success rate is between hardware.robot values").wait_for(timeout=60_000)
    def units_drawn(plots: list[dict]) -> bool:
        return any(p["title"].startswith("success per unit") and p["line_pixels"] > 80 for p in plots)

    assert units_drawn(drawn_plots(page, until=units_drawn))
    units = wb.variation(sample_store.runs(), groups=["hardware.robot"]).units
    rows = page.locator(".wb-fleet-table .tabulator-row")
    assert rows.count() == units.height == 2
    assert [rows.nth(i).locator(".tabulator-cell[tabulator-field='unit']").inner_text() for i in range(2)] == ["arm-a", "arm-b"]
    assert [float(rows.nth(i).locator(".tabulator-cell[tabulator-field='shrunk']").inner_text()) for i in range(2)] == \
        [round(v, 3) for v in units["shrunk"].to_list()]
    page.screenshot(path=str(artifacts / "app_fleet_units.png"), full_page=True)
    # a row opens that unit's runs in Run detail
    n = len(units.row(1, named=True)["run_ids"])
    rows.nth(1).locator(".tabulator-cell[tabulator-field='unit']").click()
    page.locator(".bk-tab.bk-active", has_text="Run detail").wait_for(timeout=30_000)
    page.locator(".wb-run-count p", has_text=f"· {n} selected").wait_for(timeout=30_000)
    # sim vs real on a campaign with no domain factor says what is missing
    _tab(page, "Fleet")
    page.locator(".wb-fleet-mode button", has_text="sim vs real").click()
    page.locator(".wb-fleet-status p", has_text="No sim vs real").wait_for(timeout=60_000)
    assert "must hold both 'sim' and 'real'" in page.locator(".wb-fleet-status p").inner_text()
    page.close()
    assert not log["errors"], log["errors"]
    assert not log["external"], log["external"]


def _xss_store(root: Path, samples_dir: Path) -> wb.Store:
    csv = root / "run.csv"
    pl.DataFrame({"time": np.arange(100) * 0.01, "x": np.sin(np.arange(100) / 10)}).write_csv(csv)
    marked = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v*_s00.mcap"))
    plain = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v*_s01.mcap"))
    store = wb.open_store(root / "store")
    store.ingest([csv, *marked], meta=[f"hardware.robot={XSS}", "environment.surface=<b>steel</b>"])
    store.ingest(plain)
    wb.quality.grade_store(store)
    wb.metrics.compute(store)
    return store


def test_app_moment_search_opens_a_hit_in_replay(served, browser, artifacts):
    page, log = _open(browser, served)
    # the moment search: find the default rule's hits, click one, the replay opens at it
    _tab(page, "Moments")
    page.locator(".wb-moments-find button").click()
    page.locator(".wb-moments-status p", has_text="hit(s) in").wait_for(timeout=60_000)
    starts = page.locator(".wb-moments-hits .tabulator-row .tabulator-cell[tabulator-field='start_s']").all_inner_texts()
    assert len(starts) == 15 and all(float(x) >= 0 for x in starts)
    page.locator(".wb-moments-rates .tabulator-row").nth(1).wait_for(timeout=90_000)  # drawn after the hits (slow on a loaded runner)
    assert page.locator(".wb-moments-rates .tabulator-row").count() >= 2
    page.locator(".wb-moments-hits .tabulator-row").first.locator(".tabulator-cell[tabulator-field='name']").click()
    page.locator(".wb-replay-status p", has_text="Replaying 1 run(s)").wait_for(timeout=60_000)
    assert f"at {float(starts[0]):.2f} s" in page.locator(".wb-replay-status p").inner_text()
    page.screenshot(path=str(artifacts / "app_moments.png"), full_page=True)

    page.close()
    # the app itself logged no error (the Rerun viewer's own refused font and version requests aside)
    ours = [e for e in log["errors"] if "re_viewer" not in e and "ERR_NAME_NOT_RESOLVED" not in e and "rerun" not in e.lower()]
    assert not ours, ours


def test_app_shows_html_metadata_as_text(free_port, tmp_path, samples_dir, browser, artifacts):
    store = _xss_store(tmp_path, samples_dir)
    port = free_port()
    server = ui.serve(store, port=port, threaded=True)
    try:
        _wait_port(port)
        page, log = _open(browser, f"http://127.0.0.1:{port}/")
        page.wait_for_timeout(1500)
        cells = page.locator(".wb-run-browser .tabulator-cell[tabulator-field='hardware.robot']").all_inner_texts()
        assert cells and set(cells) == {XSS, "arm-b"}
        options = page.locator("select[multiple] option").all_inner_texts()
        assert f"{XSS} (3)" in options
        surfaces = page.locator(".wb-run-browser .tabulator-cell[tabulator-field='environment.surface']").all_inner_texts()
        assert "<b>steel</b>" in surfaces
        grid_heads = page.locator(".wb-fg-colhead").all_inner_texts()
        assert any(XSS in h for h in grid_heads)
        page.screenshot(path=str(artifacts / "app_xss.png"))
        page.close()
        assert log["dialogs"] == []
        assert not log["errors"], log["errors"]
    finally:
        server.stop()


@pytest.fixture
def remote(free_port, sample_store) -> Iterator[tuple[str, str, int]]:
    """The app as a colleague reaches it: bound to every address with a token, opened
    through another address of this machine (127.0.0.2, not the one it prints)."""
    port, token = free_port(), "remote-token-0123456789abcdef"
    server = ui.serve(sample_store, address="0.0.0.0", port=port, token=token, threaded=True, allow_origin=["127.0.0.2"])
    _wait_port(port)
    yield f"http://127.0.0.2:{port}/", token, port
    server.stop()


def test_replay_through_the_app_from_another_address(remote, browser, artifacts, listening):
    served, token, port = remote
    page, log = _open(browser, f"{served}?token={token}")
    # the machine is offline: anything not local is refused (and recorded), the replay must still work
    blocked: list[str] = []
    local = ("http://127.0.0.", "http://localhost", "ws://127.0.0.", "ws://localhost", "data:", "blob:")
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local)
               else (blocked.append(route.request.url), route.abort()))
    page.locator(".wb-fg-cell[data-x='arm-b · dim'][data-y='policy-v2']").click()
    page.locator(".wb-run-count p", has_text="21 selected").wait_for(timeout=60_000)


    before = listening()
    recordings: list[int] = []
    page.on("response", lambda r: recordings.append(r.status) if "/replay/data/" in r.url else None)
    _tab(page, "Replay")
    page.locator(".wb-replay-button button").click()
    frame_el = page.locator("iframe.wb-rerun")
    frame_el.wait_for(state="attached", timeout=60_000)
    # the viewer and the recording come from the app's own origin and routes: no other server
    src = frame_el.get_attribute("src")
    assert src.startswith("replay/page/") and "://" not in src, src
    assert listening() == before, listening() - before
    assert {(ip, p) for ip, p in before if not ip.startswith("127.")} == {("0.0.0.0", port)}
    page.locator(".wb-replay-status p", has_text="Replaying 4 run(s)").wait_for(timeout=10_000)
    frame = frame_el.content_frame
    inner = frame_el.element_handle().content_frame()
    assert inner is not None and inner.url == served + src, inner and inner.url
    frame.locator("canvas").first.wait_for(state="attached", timeout=60_000)
    for _ in range(120):  # the viewer fetches the recording once its wasm has started
        if recordings:
            break
        page.wait_for_timeout(500)
    page.wait_for_timeout(3_000)  # then draws it (software rendering here)
    page.screenshot(path=str(artifacts / "app_replay.png"), full_page=True)
    box = frame.locator("canvas").first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    assert recordings and set(recordings) == {200}, recordings  # the viewer fetched the recording
    # the viewer started when the tab was opened (standby) and was handed the recording
    assert src == "replay/page/standby", src
    # the viewer can take the whole page
    full = page.locator("a.wb-replay-full")
    href = full.get_attribute("href")
    assert re.fullmatch(r"replay/page/[A-Za-z0-9_-]{32}", href) and full.get_attribute("target") == "_blank", href
    assert inner.locator("#viewer").get_attribute("data-replay") == href.rsplit("/", 1)[1]
    page.close()
    # the app itself asked nothing of the internet; the Rerun viewer's own tries (fonts,
    # version check) were refused and did not stop the replay
    app_external = [u for u in log["external"] if not u.startswith(local) and u not in blocked]
    assert not app_external, app_external
    assert all("rerun" in u or "fonts.g" in u or "github" in u for u in blocked), blocked


def test_notebook_css_fallback_only_in_a_kernel():
    import panel.reactive

    from workbench.ui.notebook import LOCAL_DIST, use_local_panel_css

    assert use_local_panel_css() is False  # pytest is no Jupyter kernel, even with ipykernel imported
    assert panel.reactive.CDN_DIST != LOCAL_DIST


def test_compare_view_says_what_is_not_measured():
    rows = [{"run_id": f"r{i}", "name": f"r{i}", "hardware.robot": robot, "model.version": version,
             "metrics.success": (float(i % 2) if robot == "arm-a" else None)}
            for i, (robot, version) in enumerate((r, v) for r in ("arm-a", "arm-b") for v in ("v1", "v2") for _ in range(4))]
    cat = pl.DataFrame(rows)
    view = ui.CompareView(data=ui.DataStore(catalog=cat), by="model.version", x=["hardware.robot"])
    verdicts = dict(zip(view.verdicts.value["hardware.robot"], view.verdicts.value["verdict"], strict=True))
    assert verdicts["arm-b"] == "not measured" and verdicts["arm-a"] != "not measured"
    assert list(view.verdicts.value.columns[:3]) == ["hardware.robot", "metric", "verdict"]  # read without scrolling
    assert "1 of 2 cells **not measured**: 8 of 16 runs have no outcome (metrics.success is null)" in view.status.object
    # runs needed for the measured cell only, as `workbench plan` gives them, for the drop asked
    planned = view.plan.value
    assert planned["hardware.robot"].tolist() == ["arm-a"]
    assert planned["runs per side for a 0.1 drop"].tolist() == wb.plan(cat, within=["hardware.robot"], drop=0.1)["runs_needed"].to_list()
    view.plan_drop = 0.3
    assert view.plan.value["runs per side for a 0.3 drop"].tolist() == wb.plan(cat, within=["hardware.robot"], drop=0.3)["runs_needed"].to_list()
    assert "up to" in view.plan_status.object
    view.data.filters = {"hardware.robot": ["arm-b"]}
    assert view.verdicts.value["verdict"].tolist() == ["not measured"]
    assert "**nothing measured**: 8 of 8 runs have no outcome" in view.status.object
    assert "no regression" not in view.status.object


def test_moments_view_finds_hits_rates_and_opens_one(sample_store):
    from workbench.ui.moments_view import EXAMPLE

    data = ui.DataStore(store=sample_store)
    data.filters = {"hardware.robot": ["arm-b"]}
    view = ui.MomentsView(data=data)
    hits = view.search()
    ids = data.filtered["run_id"].to_list()
    want = wb.find(sample_store, EXAMPLE, run_ids=ids)
    assert hits is not None and hits.height == want.height > 10
    assert set(hits["run_id"]) <= set(ids)
    assert view.table.value["start_s"].round(3).tolist() == want["start_s"].round(3).to_list()[: view.max_hits]
    assert f"**{want.height}** hit(s)" in view.status.object
    rates = view.rates.value
    assert rates["runs"].sum() == len(ids) and rates["hits"].sum() == want.height
    opened = view.open(0)
    assert opened == {"run_id": want["run_id"][0], "at": round(want["start_s"][0], 3)} and data.selection == [want["run_id"][0]]
    # a rule that does not fit says why, and keeps the last hits
    view.rule = "{name: x, signal: {stream: ft_sensor, variable: nope}, above: 1}"
    assert view.search() is None and "has no variable 'nope'" in view.status.object
    view.rule = "not: [valid"
    assert view.search() is None and "Cannot search" in view.status.object


def test_serve_command_computes_missing_grades_and_metrics(tmp_path, monkeypatch):
    import importlib

    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(2):
        pl.DataFrame({"time": np.arange(40) * 0.05, "x": np.cos(np.arange(40) / 4) + i}).write_csv(logs / f"{i}.csv")
    store = wb.open_store(tmp_path / "store")
    store.ingest([logs])
    served: list[wb.Store] = []
    monkeypatch.setattr(importlib.import_module("workbench.ui.app"), "serve", lambda s, **_kw: served.append(s))
    from workbench.ui.cli import serve

    res = CliRunner().invoke(serve, ["--store", store.url, "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(served) == 1
    cat = store.runs()
    assert cat["quality.grade"].null_count() == 0
    assert {f"metrics.{c}" for c in wb.metrics.columns()} <= set(cat.columns)
    assert "computed quality.grade for 2 run(s)" in res.stderr
    res = CliRunner().invoke(serve, ["--store", store.url, "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0 and "computed" not in res.stderr  # nothing lacks them any more


def test_facet_counts_follow_the_other_filters_and_sort_naturally(sample_store):
    data = ui.DataStore(store=sample_store)
    widgets = {w.tags[0].removeprefix("facet:"): w for w in data.facet_widgets()}
    robots = widgets["hardware.robot"]
    assert list(robots.options) == ["arm-a (82)", "arm-b (82)"]
    data.filters = {"environment.lighting": ["dim"]}
    cat = sample_store.runs()
    want = cat.filter(pl.col("environment.lighting") == "dim").group_by("hardware.robot").len().sort("hardware.robot")
    assert list(robots.options) == [f"{r} ({n})" for r, n in want.iter_rows()]
    # a facet's own filter does not shrink its own counts: the other levels stay choosable
    lighting = widgets["environment.lighting"]
    assert list(lighting.options) == ["bright (82)", "dim (82)"] and lighting.value == ["dim"]
    seeds = [v for v in widgets["scenario.seed"].options.values()]
    assert seeds == sorted(seeds, key=int) and seeds[:3] == ["0", "1", "2"]


def test_a_link_restores_the_view_and_refuses_the_rest(served, browser, sample_store, artifacts):
    ids = sample_store.runs(where="hardware.robot = 'arm-a'")["run_id"].to_list()[:3]
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(served + "?f.hardware.robot=arm-a&tab=detail&align=event%3Agrasp&sel=" + ",".join(ids))
    page.locator(".wb-run-count p", has_text="82 of 164 runs · 3 selected").wait_for(timeout=90_000)
    assert page.locator(".bk-tab.bk-active").inner_text() == "Run detail"
    page.locator(".wb-run-detail-status p", has_text="3 run(s) shown").wait_for(timeout=60_000)
    assert page.locator(".wb-link-problems").count() == 0
    # the address follows what the person does; "Copy link" copies it (without any token)
    _tab(page, "Replay")
    page.wait_for_function("() => window.location.search.includes('tab=replay')", timeout=30_000)
    page.locator(".wb-copy-link button").click()
    page.locator(".wb-copy-link button", has_text="Link copied").wait_for(timeout=10_000)
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == page.url and "tab=replay" in link and "f.hardware.robot=arm-a" in link and "align=event%3Agrasp" in link
    other = context.new_page()
    other.goto(link)
    other.locator(".wb-run-count p", has_text="82 of 164 runs · 3 selected").wait_for(timeout=90_000)
    assert other.locator(".bk-tab.bk-active").inner_text() == "Replay"
    other.locator(".wb-replay-frame, .wb-replay-status p").first.wait_for(state="visible", timeout=60_000)
    other.close()
    # a hand-made link: a value that is not one of the column's, unknown columns and markup are refused, shown as text
    page.goto(served + "?f.hardware.robot=" + quote("arm-a' OR '1'='1") + "&f." + quote("read_csv('/etc/passwd')") + "=1"
              + "&by=" + quote(XSS) + "&tab=nowhere")
    page.locator(".wb-run-count p", has_text="164 of 164 runs").wait_for(timeout=90_000)
    problems = page.get_by_text("This link's view was restored except").inner_text()
    assert "no facet \"read_csv('/etc/passwd')\"" in problems, problems
    assert "hardware.robot has no value \"arm-a' OR '1'='1\"" in problems, problems
    assert XSS in problems and "tab='nowhere'" in problems
    page.screenshot(path=str(artifacts / "app_link_problems.png"))
    assert dialogs == []
    context.close()


def test_view_state_round_trips_through_a_query(sample_store):
    from workbench.ui.links import apply_state, parse_query, query_string, view_state

    app = ui.App.from_store(sample_store)
    ids = app.data.catalog.filter(pl.col("hardware.robot") == "arm-b")["run_id"].to_list()[:5]
    app.data.param.update(filters={"hardware.robot": ["arm-b"], "environment.lighting": ["dim", "bright"]}, text="policy")
    app.data.selection = ids
    app.compare.metric = app.compare.param.metric.objects[-1]
    app.active_tab, app.replay.align = 3, "event:slip"
    state = view_state(app)
    assert state["f.hardware.robot"] == ["arm-b"] and state["sel"] == ids and state["tab"] == ["moments"]
    again = ui.App.from_store(sample_store)
    assert apply_state(again, parse_query("?" + query_string(state))) == []
    assert view_state(again) == state
    assert again.data.filtered.height == app.data.filtered.height > 0 and again.data.selection == ids
    # a value holding a comma survives; unknown columns, ids and choices are reported, never applied
    assert parse_query(query_string({"q": ["a,b"]})) == {"q": ["a,b"]}
    third = ui.App.from_store(sample_store)
    problems = apply_state(third, {"f.__import__('os')": ["1"], "sel": ["not-a-run"], "rate": ["drop table"], "tab": ["x"],
                                   "f.hardware.robot": ["arm-a' OR 1=1 --"]})
    assert len(problems) == 5 and third.data.filters == {} and third.data.selection == [] and third.active_tab == 0
    assert third.compare.rate == "success"
    # the trends' settings and tab live in the link too
    app.active_tab = 4
    app.trends.param.update(over="day", within="hardware.robot")
    state = view_state(app)
    assert state["tab"] == ["trends"] and state["trend_over"] == ["day"] and state["trend_within"] == ["hardware.robot"]
    fourth = ui.App.from_store(sample_store)
    assert apply_state(fourth, parse_query(query_string(state))) == []
    assert (fourth.active_tab, fourth.trends.over, fourth.trends.within) == (4, "day", "hardware.robot")
    assert apply_state(fourth, {"trend_over": ["fortnight"]}) == [
        f"over='fortnight' is not one of {fourth.trends.param.over.objects}"]


def test_labels_from_run_detail_reach_the_catalog_and_the_comparison(tmp_path, samples_dir):
    files = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v*_s0[0-3].mcap"))
    store = wb.open_store(tmp_path / "store")
    store.ingest(files)
    wb.metrics.compute(store)
    app = ui.App.from_store(store)
    before = app.data.catalog
    wins = before.filter(pl.col("outcome") == "success")["run_id"].to_list()
    assert wins, before.select("run_id", "outcome")
    app.compare.by = "model.version"
    n_fail = int((app.compare.cells["n"] - app.compare.cells["k"]).sum())
    app.data.selection = wins
    detail = app.detail
    detail.label_outcome.value, detail.label_note.value = "failure", f"gripper slipped {XSS}"
    detail.label_button.clicks += 1  # as a person clicks it
    cat = app.data.catalog
    assert cat.filter(pl.col("run_id").is_in(wins))["outcome"].to_list() == ["failure"] * len(wins)
    assert cat.filter(pl.col("run_id").is_in(wins))["metrics.success"].to_list() == [0.0] * len(wins)  # not stale
    assert int((app.compare.cells["n"] - app.compare.cells["k"]).sum()) == n_fail + len(wins)
    status = detail.label_status.object
    assert f"Labelled **{len(wins)}** run(s) as **failure**" in status and XSS not in status and "&lt;script&gt;" in status
    notes = store.annotations(wins[0])["labels"]
    assert notes["outcome"] == "failure" and notes["reason"] == f"gripper slipped {XSS}" and notes["by"] and notes["when"]
    # the comparison the CLI and the report run sees it too
    res = wb.compare(store, by="model.version", metrics=["success"])
    assert int(res.table["n_baseline"].sum() + res.table["n_candidate"].sum()) == len(files)
    assert store.current_outcome(wins[0]) == "failure"


def test_a_brushed_window_is_marked_as_an_event_of_the_run(tmp_path, samples_dir):
    files = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v1_s0[0-1].mcap"))
    store = wb.open_store(tmp_path / "store")
    store.ingest(files)
    app = ui.App.from_store(store)
    detail = app.detail
    rid = next(r for r in app.data.catalog["run_id"] if "grasp" in store.load(r, streams=[]).events["kind"].to_list())
    app.data.selection = list(app.data.catalog["run_id"])
    assert detail.mark_window("slip", 1.0, 2.0) == {} and "exactly one run" in detail.mark_status.object
    app.data.selection = [rid]
    detail.align = "event:grasp"  # the plot's time is from the grasp; the mark is in the run's own seconds
    panel = detail.plot.objects[0].object
    from holoviews.streams import BoundsX, Stream

    brush = next(s for s in Stream.registry[panel] if isinstance(s, BoundsX))  # the plot's x-range brush
    grasp = app.data.load_runs([rid])[0].events.filter(pl.col("kind") == "grasp")["time"][0]
    start_ns = store.info(rid).start_ns
    offset = (grasp - start_ns) / 1e9
    brush.event(boundsx=(-0.5, 0.25))  # what a drag with the x-range select tool sends
    assert detail.mark_from.value == pytest.approx(round(offset - 0.5, 3))
    assert detail.mark_to.value == pytest.approx(round(offset + 0.25, 3))
    detail.mark_kind.value, detail.mark_note.value = "slip", f"cube slid {XSS}"
    detail.mark_button.clicks += 1  # as a person clicks it
    assert "Marked **slip**" in detail.mark_status.object and XSS not in detail.mark_status.object
    assert app.data.catalog.filter(pl.col("run_id") == rid)["marks.n"].to_list() == [1]
    ev = store.load(rid, streams=[]).events.filter((pl.col("kind") == "slip") & (pl.col("origin") == "label"))
    assert ev.height == 1
    detail_json = __import__("json").loads(ev["detail"][0])
    assert detail_json["note"] == f"cube slid {XSS}" and detail_json["by"]
    assert (detail_json["end"] - detail_json["start"]) / 1e9 == pytest.approx(0.75, abs=2e-3)
    assert ev["time"][0] - start_ns == pytest.approx((offset - 0.5) * 1e9, abs=2e6)
    # the plots show it at once: the shown run's events include the mark
    assert "slip" in detail.runs[0].events["kind"].to_list()
    shaded = [e.data for e in detail.plot.objects[0].object if type(e).__name__ == "VSpans"]
    assert [(r["kind"], r["note"]) for d in shaded for r in d.to_dict("records")] == [("slip", f"cube slid {XSS}")]
    assert shaded[0]["x1"][0] - shaded[0]["x0"][0] == pytest.approx(0.75, abs=2e-3)
    detail.mark_kind.value = "failure"
    detail.mark_button.clicks += 1
    assert "Not marked" in detail.mark_status.object and "label outcomes" in detail.mark_status.object


@contextlib.contextmanager
def _run_detail_of(store, rid: str, browser, port: int) -> Iterator[Any]:
    """The app served on *store* at *port*, opened in Chromium on Run detail of run *rid*."""
    server = ui.serve(store, port=port, threaded=True)
    try:
        _wait_port(port)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/?sel={rid}&tab=detail")
        page.locator(".wb-run-detail-status p", has_text="1 run(s) shown").wait_for(timeout=90_000)
        yield page
        page.close()
    finally:
        server.stop()


def test_brushing_a_window_in_the_browser_marks_it(free_port, tmp_path, samples_dir, browser, artifacts):
    files = sorted((samples_dir / "campaign").glob("arm-a_bright_rubber_policy-v1_s0[0-1].mcap"))
    store = wb.open_store(tmp_path / "store")
    store.ingest(files)
    rid = store.runs()["run_id"][0]
    with _run_detail_of(store, rid, browser, free_port()) as page:
        frame = next(f for f in _wait_frames(page) if f["title"] == "joint_states.position[joint_2]")
        page.locator(".bk-tool-icon-x-box-select").first.click()
        y = frame["top"] + frame["height"] / 2
        page.mouse.move(frame["left"] + frame["width"] * 0.25, y)
        page.mouse.down()
        page.mouse.move(frame["left"] + frame["width"] * 0.4, y, steps=8)
        page.mouse.move(frame["left"] + frame["width"] * 0.5, y, steps=8)
        page.mouse.up()
        page.locator(".wb-mark-status p", has_text="seconds from its start").wait_for(timeout=30_000)
        lo = float(page.locator(".wb-mark-from input").input_value())
        hi = float(page.locator(".wb-mark-to input").input_value())
        duration = store.info(rid).duration_s
        assert 0 <= lo < hi <= duration and 0.1 < (hi - lo) / duration < 0.45, (lo, hi, duration)
        page.locator(".wb-mark-kind input").fill("slip")
        page.locator(".wb-mark-note input").fill("cube slid")
        page.locator(".wb-mark-button button").click()
        page.locator(".wb-mark-status p", has_text="Marked slip").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "app_mark_window.png"), full_page=True)
    marks = __import__("json").loads(store.annotations(rid)["marks"]["items"])
    assert [(m["kind"], m["note"]) for m in marks] == [("slip", "cube slid")]
    start = store.info(rid).start_ns
    assert (marks[0]["start_ns"] - start) / 1e9 == pytest.approx(lo, abs=2e-3)
    assert (marks[0]["end_ns"] - start) / 1e9 == pytest.approx(hi, abs=2e-3)


def test_run_detail_shows_a_real_bags_text_in_the_browser(free_port, tmp_path, real_data, browser, artifacts):
    """The ROS 2 talker bag: its std_msgs/String topic and its log lines, as a person reads
    them in Run detail's text table (page by page), and its signals still plotted."""
    store = wb.open_store(tmp_path / "store")
    (rid,) = store.ingest([real_data / "ros2_bag/mcap/rosbag2_talker"]).ingested
    with _run_detail_of(store, rid, browser, free_port()) as page:
        table = page.locator(".wb-texts")
        table.locator(".tabulator-cell", has_text="Hello, world! 0").first.wait_for(timeout=60_000)
        headers = [h for h in table.locator(".tabulator-col-title").all_inner_texts() if h.strip()]
        assert headers == ["run", "t_s", "stream", "level", "text"]
        cells = table.locator(".tabulator-row").all_inner_texts()
        assert len(cells) == 20  # 10 messages on /topic and 10 log lines, one page
        texts = table.locator(".tabulator-cell[tabulator-field='text']").all_inner_texts()
        assert texts.count("Hello, world! 3") == 1
        assert sum(t.startswith("Publishing: 'Hello, world!") for t in texts) == 10
        levels = table.locator(".tabulator-cell[tabulator-field='level']").all_inner_texts()
        assert levels.count("INFO") == 10
        table.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "app_run_detail_text.png"), full_page=True)


def _wait_frames(page, timeout: float = 30.0) -> list[dict]:
    end = time.time() + timeout
    while True:
        frames = [f for f in _plot_frames(page) if f["width"] > 300]
        if frames or time.time() > end:
            return frames
        page.wait_for_timeout(500)


def test_replay_status_names_the_runs_that_fell_back_to_their_start(tmp_path, samples_dir):
    store = _xss_store(tmp_path, samples_dir)
    data = ui.DataStore(store=store)
    cat = data.catalog
    plain = cat.filter(pl.col("reader") == "table")["run_id"].to_list()  # the CSV run: no events at all
    grasped = [r for r in cat["run_id"].to_list()
               if "grasp" in store.load(r, streams=[]).events["kind"].to_list()]
    assert plain and grasped
    data.selection = [*plain, grasped[0]]
    view = ui.ReplayView(data=data, align="event:grasp")
    try:
        assert view.replay()
        status = view.status.object
        name = cat.filter(pl.col("run_id") == plain[0])["name"][0]
        assert "aligned on event:grasp" in status and "1 of 2 have no grasp event" in status and name in status, status
        data.selection = plain
        view.replay()
        assert "No selected run has a grasp event: aligned on their starts." in view.status.object
    finally:
        view.close()
