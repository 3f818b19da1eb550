"""The HTML report: its content, that it is self-contained, and that it escapes metadata."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.report_cli import report as report_cmd
from workbench.reporting import methods_html, report

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def sample_report(sample_store, tmp_path_factory) -> Path:
    """The report of the sample campaign, written by the CLI command."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(report_cmd, [
        "--store", sample_store.url, "--by", "model.version", "--baseline", "policy-v1", "--candidate", "policy-v2",
        "--within", "hardware.robot,environment.lighting", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    return out


def xss_store(root: Path, samples_dir: Path) -> wb.Store:
    """A store whose factor values are HTML: a CSV run and six sample runs ingested with --meta."""
    csv = root / "run.csv"
    pl.DataFrame({"time": np.arange(100) * 0.01, "x": np.sin(np.arange(100) / 10)}).write_csv(csv)
    samples = sorted((samples_dir / "campaign").glob("arm-b_dim_rubber_policy-v*_s0[0-2].mcap"))
    store = wb.open_store(root / "store")
    rep = store.ingest([csv, *samples], meta=[f"hardware.robot={XSS}", "environment.surface=<b>steel</b>"])
    assert len(rep.ingested) == 7, rep
    wb.quality.grade_store(store)
    wb.metrics.compute(store)
    return store


def test_report_holds_comparison_grades_provenance_and_methods(sample_report, sample_store):
    text = sample_report.read_text(encoding="utf-8")
    cat = sample_store.runs()
    # the comparison table, with the planted regression (policy-v2 on arm-b in dim light)
    table = text[text.index('id="comparison"'):text.index('id="plots"')]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.DOTALL)
    regress = [r for r in rows if "verdict-regression" in r]
    assert len(regress) == 1
    assert "arm-b" in regress[0] and ">dim<" in regress[0] and ">success" in regress[0]
    assert "1 regression(s) with confidence" in text
    # every run's provenance: id, source path and sha256
    prov = text[text.index('id="provenance"'):text.index('id="methods"')]
    for rid in cat["run_id"].to_list():
        info = sample_store.info(rid)
        assert rid in prov
        for src in info.provenance.sources:
            assert src.sha256 in prov
            assert src.path in prov
    assert prov.count("<tr>") == cat.height + 1
    # data grades and the findings of non-A runs
    quality = text[text.index('id="quality"'):text.index('id="provenance"')]
    non_a = cat.filter(pl.col("quality.grade") != "A")
    assert non_a.height >= 1
    for rid in non_a["run_id"].to_list():
        assert rid in quality
    assert "clock_jump" in quality
    # methods taken from workbench.comparison's documentation
    methods = text[text.index('id="methods"'):]
    for word in ("Fisher", "McNemar", "Mann–Whitney", "Hodges–Lehmann", "Wilcoxon", "RMST", "score-ordered", "discrete Holm",
                 "Tarone", "censored"):
        assert word in methods, word
    assert "The gate decides on <b>success</b>" in text
    plan = text[text.index("id=plan>Runs needed"):text.index('id="plots"')]
    assert plan.count("<tr>") == 5 and "runs per side for a 0.1 drop" in plan  # header + 4 cells
    # self-contained: no external script, stylesheet or image
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", text)


def test_report_ranks_the_policies_and_shows_the_robots(sample_report, sample_store):
    text = sample_report.read_text(encoding="utf-8")
    fleet = text[text.index('id="fleet"'):text.index('id="attribution"')]
    cat = sample_store.runs()
    rk = wb.rank(cat, n_boot=0)
    ranking = fleet[fleet.index("scroll ranking"):fleet.index("Unit to unit")]
    rows = re.findall(r"<tr>(.*?)</tr>", ranking, flags=re.DOTALL)[1:]
    assert len(rows) == 2
    for row, (name, value, letters) in zip(rows, rk.table.select("model.version", "value", "letters").iter_rows(), strict=True):
        assert f">{name}<" in row and f"{value:.3f}" in row and f">{letters}<" in row
        assert row.count('href="#run-') == 82  # each policy's runs, linked to their provenance
    units = fleet[fleet.index("Unit to unit: hardware.robot"):fleet.index("Sim against real")]
    assert len(re.findall(r"<tr>", units)) == 1 + 4  # two robots within each of two policies
    assert "of the variation in the success rate is between hardware.robot values" in units
    assert "No sim-vs-real: no factor column &#x27;environment.domain&#x27;" in fleet
    assert fleet.count("<figure class=fleet>") == 2  # ranking and units charts; no sim-vs-real chart


def test_methods_html_lists_the_parameters():
    html = methods_html(margin=0.123)
    assert "0.123" in html and "discrete Holm" in html and "largest shortfalls in runs" in html and "<ul>" in html


def test_report_opens_offline_in_chromium(sample_report, browser, artifacts):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(sample_report.as_uri())
    page.wait_for_selector(".bk-Canvas, .bk-canvas, canvas", state="attached", timeout=30_000)
    page.wait_for_timeout(1500)
    canvases = page.evaluate("""() => {
        const found = [];
        const walk = (root) => { for (const el of root.querySelectorAll('*')) {
            if (el.tagName === 'CANVAS') found.push(el.width);
            if (el.shadowRoot) walk(el.shadowRoot); } };
        walk(document); return found; }""")
    assert len(canvases) >= 8 and all(w > 0 for w in canvases)
    assert page.locator("table").count() >= 5
    assert page.locator(".verdict-regression").count() >= 1
    page.screenshot(path=str(artifacts / "report_top.png"))
    # at 1280 px every verdict of the comparison is visible without scrolling sideways
    boxes = page.evaluate("""() => { const box = document.querySelector('.comparison').getBoundingClientRect();
        return [...document.querySelectorAll('.comparison .badge')].map(b => {
            const r = b.getBoundingClientRect(); return [r.left, r.right, box.left, box.right]; }); }""")
    assert len(boxes) >= 8 and all(box_l <= left and right <= box_r for left, right, box_l, box_r in boxes), boxes
    # and nothing of the table needs a sideways scroll (long test names wrap)
    widths = page.evaluate("() => { const c = document.querySelector('.comparison'); return [c.scrollWidth, c.clientWidth]; }")
    assert widths[0] <= widths[1], widths
    page.locator("#plots").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "report_plots.png"))
    # the trends: one window per hour per variant, each listing its runs, linked to their provenance
    page.locator("#trends").scroll_into_view_if_needed()
    rows = page.locator(".trends tbody tr")
    assert rows.count() >= 40, rows.count()
    first = rows.first
    first.locator("summary").click()
    link = first.locator("details a").first
    target = link.get_attribute("href")
    assert target.startswith("#run-")
    link.click()
    assert page.evaluate("() => location.hash") == target
    assert page.locator(f"[id='{target[1:]}']").count() == 1
    page.locator("#trends").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "report_trends.png"))
    page.close()
    leaving = [u for u in requests if not u.startswith(("file://", "data:", "blob:"))]
    assert not leaving, leaving
    assert not errors, errors


def test_report_escapes_factor_values(tmp_path, samples_dir, browser, artifacts):
    store = xss_store(tmp_path, samples_dir)
    out = report(store, by="model.version", within=["hardware.robot"], out=tmp_path / "xss.html")
    text = out.read_text(encoding="utf-8")
    assert XSS not in text and "<b>steel</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(out.as_uri())
    page.wait_for_timeout(1500)
    body = page.inner_text("main")
    assert XSS in body and "<b>steel</b>" in body  # shown as text
    assert page.locator("main b:text-is('steel')").count() == 0
    page.screenshot(path=str(artifacts / "report_xss.png"))
    page.close()
    assert dialogs == []


def test_report_python_api_names_the_choices(sample_store, tmp_path):
    with pytest.raises(wb.ConfigError, match="hardware.robot"):
        report(sample_store, by="hardware.colour", out=tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_report_says_not_measured_and_computes_what_it_lacks(tmp_path):
    logs = tmp_path / "logs"
    for v, version in enumerate(("v1", "v2")):
        (logs / version).mkdir(parents=True)
        for seed in range(3):
            k = float(10 * v + seed)
            pl.DataFrame({"time": np.arange(50) * 0.02, "x": np.sin(np.arange(50) / 5) + k}).write_csv(logs / version / f"{seed}.csv")
    store = wb.open_store(tmp_path / "store")
    assert len(store.ingest([logs], pattern="{model.version}/{scenario.seed}.csv").ingested) == 6
    out = tmp_path / "report.html"
    res = CliRunner().invoke(report_cmd, ["--store", store.url, "--by", "model.version", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    # computed on demand: grades and the compared metrics are in the catalog now
    cat = store.runs()
    assert cat["quality.grade"].null_count() == 0 and {"metrics.success", "metrics.time_to_success"} <= set(cat.columns)
    assert "have not been graded" not in text
    # honest about emptiness: no pass, no undecided, what is missing and how to define it
    assert "Nothing measured" in text and "No regression with confidence" not in text
    assert "6 of 6 runs have no outcome (metrics.success is null)" in text and "workbench label RUN" in text
    table = text[text.index('id="comparison"'):text.index('id="plots"')]
    assert table.count('<span class="badge verdict-not_measured">not measured</span>') == 2
    assert "verdict-undecided" not in table
    assert "nothing to plot" in text


def test_sample_report_has_every_cell_measured(sample_report):
    text = sample_report.read_text(encoding="utf-8")
    assert "badge verdict-not_measured" not in text and "Nothing measured" not in text
    assert "not measured" in text[text.index('id="methods"'):]  # the methods explain the verdict
