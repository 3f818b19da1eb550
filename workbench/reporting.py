"""The comparison report: one self-contained HTML file that opens with no network.

:func:`report` compares two variants of a store (:func:`workbench.comparison.compare`) and
writes what a reviewer needs to judge the result without the workbench installed:

* the question and the answer (regressions with confidence, the CI gate),
* the comparison table with intervals, tests, adjusted p-values and verdicts,
* interactive plots (HoloViews rendered to Bokeh; Bokeh's JavaScript and CSS inlined),
* what explains each metric (attribution) and how reproducible runs are,
* the data grades, with the quality findings of every run graded below A,
* the provenance manifest of every run (source files with sha256, reader, factors),
* a methods section (taken from :mod:`workbench.comparison`'s documentation, so it
  cannot drift from the code) with the parameters used.

Every value that comes from the logs or the user (factor values, names, paths) is
HTML-escaped, so a factor value ``<script>…</script>`` is shown as text.

Examples
--------
>>> import workbench as wb
>>> from workbench.reporting import report
>>> store = wb.open_store("data/store")                        # doctest: +SKIP
>>> report(store, by="model.version", within=["hardware.robot"],
...        out="report.html")                                   # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.model import ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.comparison import CompareResult
    from workbench.store import Store

__all__ = ["methods_html", "render_report", "report"]

GRADE_COLORS = {"A": "#2ca02c", "B": "#8fbc3f", "C": "#ffbf00", "D": "#ff7f0e", "F": "#d62728"}
"""Badge color of each data grade."""

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff}
h1{font-size:1.6rem;margin:.2rem 0 1rem} h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0;width:100%}
th,td{border:1px solid #e3e3e3;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0} td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.78rem;word-break:break-all}
.badge{display:inline-block;padding:0 .45rem;border-radius:.7rem;color:#fff;font-weight:600;font-size:.78rem}
.verdict-regression{background:#d62728}.verdict-improvement{background:#2ca02c}.verdict-no_change{background:#7f7f7f}
.verdict-undecided{background:#ff7f0e}.verdict-non_inferior{background:#17becf}.verdict-changed{background:#1f77b4}.verdict-not_measured{background:#b0b0b0}
.summary{padding:.8rem 1rem;border-radius:.4rem;margin:1rem 0}.pass{background:#e8f5e9}.fail{background:#fdecea}
.unmeasured{background:#f1f1f1}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}
.muted{color:#666}.nowrap{white-space:nowrap}.scroll{max-height:36rem;overflow:auto}
.comparison td{overflow-wrap:anywhere}
nav a{margin-right:1rem}
"""


def _e(value: Any) -> str:
    """HTML-escaped text of any value (None → empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else html.escape(f"{value:.4g}")
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _interval(v: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    return f"{_num(v, digits)} <span class=muted>[{_num(lo, digits)}, {_num(hi, digits)}]</span>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """An HTML table; *rows* hold already-escaped cell HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll {cls}"><table>{thead}<tbody>{body}</tbody></table></div>'


def _rst_to_html(text: str) -> str:
    """Escape a docstring paragraph and turn its ``literals`` and *emphasis* into HTML."""
    out = _e(text)
    out = re.sub(r"``(.+?)``", r"<code>\1</code>", out)
    out = re.sub(r":\w+:`~?(?:[\w.]+\.)?([\w]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*(\w[^*]*?)\*", r"<em>\1</em>", out)
    return out


def methods_html(result: CompareResult | None = None, *, n_boot: int = 2000, seed: int = 0, margin: Any = 0.1) -> str:
    """The methods section, built from :mod:`workbench.comparison`'s documentation.

    The module docstring up to its examples (tests, intervals, corrections, verdicts)
    and the docstrings of :func:`~workbench.comparison.attribution` and
    :func:`~workbench.comparison.reproducibility`, followed by the parameters used.
    """
    mod = importlib.import_module("workbench.comparison")
    doc = (mod.__doc__ or "").split("\nExamples\n")[0].strip()
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", doc):
        lines = [ln.strip() for ln in block.strip().splitlines()]
        if lines and lines[0].startswith("* "):
            items: list[str] = []
            for ln in lines:
                if ln.startswith("* "):
                    items.append(ln[2:])
                elif items:
                    items[-1] += " " + ln
            parts.append("<ul>" + "".join(f"<li>{_rst_to_html(i)}</li>" for i in items) + "</ul>")
        else:
            parts.append(f"<p>{_rst_to_html(' '.join(lines))}</p>")
    cell = importlib.import_module("workbench.stats.cell")
    mdoc = (cell.__doc__ or "").split("\nMethods\n-------\n", 1)
    if len(mdoc) == 2:
        items = [" ".join(ln.strip() for ln in it.splitlines()) for it in re.split(r"\n\* ", "\n" + mdoc[1].split("\nExamples\n")[0].strip()) if it.strip()]
        parts.append("<h3>Tests, one method per cell</h3><ul>" + "".join(f"<li>{_rst_to_html(i.lstrip('* '))}</li>" for i in items) + "</ul>")
    mult = importlib.import_module("workbench.stats.multiplicity")
    bullets = re.split(r"\n\* ", (mult.__doc__ or "").split("\nExamples\n")[0])
    chosen = sorted((" ".join(ln.strip() for ln in b.split("\n\n")[0].splitlines()) for b in bullets
                     if b.startswith((":func:`score_ordered_holm`", ":func:`discrete_holm`"))), reverse=True)
    if chosen:
        parts.append("<h3>Multiplicity</h3>" + "".join(f"<p>{_rst_to_html(c)}</p>" for c in chosen))
    for fn in (mod.attribution, mod.reproducibility):
        text = (fn.__doc__ or "").strip()
        paras = [" ".join(ln.strip() for ln in p.splitlines()) for p in re.split(r"\n\s*\n", text)]
        parts.append(f"<h3><code>{_e(fn.__name__)}</code></h3>" + "".join(f"<p>{_rst_to_html(p)}</p>" for p in paras))
    params: list[tuple[str, Any]] = [("equivalence margin", margin)]
    if result is not None:
        params = [("compared factor", result.by), ("baseline", result.baseline), ("candidate", result.candidate),
                  ("cells within", ", ".join(result.within) or "one cell with every run"),
                  ("primary metrics (the gate)", ", ".join(result.primary)),
                  ("family-wise error rate α (one-sided)", result.alpha),
                  ("step-down test of the gate's family", result.multiplicity.get("primary", "none")),
                  ("tests in the gate's family", result.gate.filter(~result.gate["p_value"].is_nan()).height),
                  ("non-inferiority margin", result.margin if result.margin is not None else "none"),
                  ("pairing", f"by {', '.join(result.pair_by)}, {result.replicates} of replicates" if result.pair_by else "unpaired"),
                  *params]
    parts.append("<h3>Parameters of this comparison</h3>" + _table(["parameter", "value"], [[_e(k), _e(v)] for k, v in params]))
    return "\n".join(parts)


# --------------------------------------------------------------------------- sections


def _verdict_badge(verdict: str) -> str:
    css = re.sub(r"[^a-z_]", "_", str(verdict))  # "not measured" → verdict-not_measured
    return f'<span class="badge verdict-{css}">{_e(verdict)}</span>'


def _grade_badge(grade: Any) -> str:
    g = str(grade) if grade is not None else "?"
    return f'<span class="badge" style="background:{GRADE_COLORS.get(g, "#999")}">{_e(g)}</span>'


def _comparison_section(res: CompareResult) -> str:
    from workbench.comparison import format_p

    rows = []
    for r in res.table.iter_rows(named=True):
        unit = f" {r['unit']}" if r.get("unit") else ""
        unknown = f"{r['n_unknown_baseline']} / {r['n_unknown_candidate']}"
        if r["missing_differs"]:
            unknown += " <span class=badge style='background:#d62728'>differs</span>"
        bounds = ""
        if r["difference_worst"] is not None and math.isfinite(r["difference_worst"]) and (r["n_unknown_baseline"] or r["n_unknown_candidate"]):
            bounds = f"<br><span class=muted>if unknowns: [{_num(r['difference_worst'])}, {_num(r['difference_best'])}]</span>"
        level = r["critical"]
        ci = "" if level is None or not math.isfinite(level) else f" <span class=muted>(each bound one-sided at {format_p(level)})</span>"
        rows.append([
            *[_e(r[w]) for w in res.within],
            f"{_e(r['metric'])}{_e(unit)}" + (" <span class=muted>(secondary)</span>" if r["role"] != "primary" else ""),
            _verdict_badge(r["verdict"]),
            _interval(r["difference"], r["difference_lo"], r["difference_hi"]) + ci + bounds,
            _interval(r["baseline"], r["baseline_lo"], r["baseline_hi"]),
            _interval(r["candidate"], r["candidate_lo"], r["candidate_hi"]),
            f"<span class='num nowrap'>{_e(r['n_baseline'])} / {_e(r['n_candidate'])}</span>",
            unknown,
            _e(format_p(r["p_value"])),
            _e(format_p(r["p_verdict"])),
            _e(r["test"]) + f"<br><span class=muted>{_e(r['pairing'])}</span>",
        ])
    # the verdict right after the cell and metric: read without scrolling at any width
    header = [*res.within, "metric", "verdict", "difference [interval of the test]", f"baseline {res.baseline}",
              f"candidate {res.candidate}", "n b / c", "unknown b / c", "p (one-sided, harm)",
              "p of the verdict (family-adjusted)", "test"]
    gate = (f"<p>The gate decides on <b>{_e(', '.join(res.primary))}</b> "
            f"({res.gate.height} cell(s), one-sided at α = {_e(res.alpha)}); other metrics are secondary and never change it. "
            f"Status: <b>{_e(res.status)}</b>.</p>")
    excl = ""
    if res.exclusions:
        reasons: dict[str, int] = {}
        for why in res.exclusions.values():
            reasons[why] = reasons.get(why, 0) + 1
        excl = "<p class=muted>Left out: " + "; ".join(f"{n} run(s): {_e(w)}" for w, n in reasons.items()) + "</p>"
    return gate + _table(header, rows, cls="comparison") + excl


def _plan_section(res: CompareResult) -> str:
    """Runs needed per cell of the gate's rate (``workbench plan``), for a 0.1 drop."""
    from workbench.model import WorkbenchError
    from workbench.planning import plan_result

    gate = res.gate
    if gate.height == 0 or gate["kind"][0] != "rate" or res.n_measured == 0:
        return ""
    try:
        table = plan_result(res, metric=res.primary[0], drop=0.1)
    except WorkbenchError:
        return ""
    rows = []
    for r in table.iter_rows(named=True):
        more = r["more_runs_per_arm"]
        rows.append([*[_e(r[w]) for w in res.within], _e(r["verdict"]), _e(f"{r['n_base']} / {r['n_cand']}"),
                     _num(r["mde_now"]), _e(r["runs_needed"] if r["runs_needed"] is not None else "–"),
                     _e(more if more is not None else ("–" if r["verdict"] != "undecided" else "unlikely to decide"))])
    head = [*res.within, "verdict", "runs b / c", "drop detectable now (80 % power)", "runs per side for a 0.1 drop",
            "more runs per side to decide"]
    return ("<h3 id=plan>Runs needed</h3><p class=muted>Exact power of the gate's one-sided test per cell "
            "(Bonferroni over the cells: conservative); <code>workbench plan</code> gives the same for any drop.</p>"
            + _table(head, rows))


def _attribution_section(res: CompareResult) -> str:
    if res.attribution.height == 0:
        return "<p class=muted>Not enough varied runs to attribute variation to factors.</p>"
    rows = [[_e(r["metric"]), _e(r["term"]), _e(r["order"]), _num(r["share"]), _e(r["measure"])]
            for r in res.attribution.iter_rows(named=True)]
    return _table(["metric", "factor / interaction", "order", "share", "measure"], rows)


def _reproducibility_section(res: CompareResult) -> str:
    if res.reproducibility.height == 0:
        return "<p class=muted>No configuration has two runs or more.</p>"
    rows = [[_e(r["metric"]), _e(r["unit"]), _e(r["n_configs"]), _num(r["median_sd"]), _num(r["pooled_sd"]), _num(r["share_within"])]
            for r in res.reproducibility.iter_rows(named=True)]
    return _table(["metric", "unit", "configurations", "median SD", "pooled SD", "share of variance within"], rows)


def _quality_section(store: Store, cat: pl.DataFrame) -> str:
    import polars as pl

    if "quality.grade" not in cat.columns:
        return "<p>Runs have not been graded (run <code>workbench grade</code>).</p>"
    counts = cat.group_by("quality.grade").len().sort("quality.grade")
    summary = " ".join(f"{_grade_badge(g)} {n}" for g, n in counts.iter_rows())
    rows = []
    for r in cat.filter(pl.col("quality.grade").fill_null("?") != "A").sort("quality.grade", "name").iter_rows(named=True):
        findings = store.get_table(r["run_id"], "quality_findings")
        items = []
        if findings is not None:
            for f in findings.iter_rows(named=True):
                items.append(
                    f"<li><b>{_e(f.get('severity'))}</b> {_e(f.get('stream'))} / {_e(f.get('check'))}: "
                    f"{_e(f.get('detail'))} <span class=muted>(value {_num(f.get('value'))}, threshold {_num(f.get('threshold'))})</span></li>"
                )
        rows.append([_grade_badge(r["quality.grade"]), f"<span class=mono>{_e(r['run_id'])}</span>", _e(r.get("name")),
                     "<ul>" + "".join(items) + "</ul>" if items else "<span class=muted>no findings stored</span>"])
    table = _table(["grade", "run", "name", "findings"], rows) if rows else "<p>Every run is graded A.</p>"
    return f"<p>Data grades: {summary}</p>{table}"


def _provenance_section(store: Store, run_ids: Sequence[str], cat: pl.DataFrame) -> str:
    names = dict(zip(cat["run_id"].to_list(), cat["name"].to_list(), strict=True)) if "name" in cat.columns else {}
    rows = []
    for rid in run_ids:
        info = store.info(rid)
        prov = info.provenance
        sources = "<br>".join(
            f"<span class=mono>{_e(s.path)}</span><br><span class=mono muted>sha256 {_e(s.sha256)}</span> <span class=muted>({_e(s.size)} B)</span>"
            for s in prov.sources
        ) or "<span class=muted>–</span>"
        factors = "<br>".join(f"{_e(k)} = {_e(v)}" for k, v in info.factors().items())
        reader = f"{_e(prov.reader)} {_e(prov.reader_version)}"
        extra = []
        if prov.key:
            extra.append(f"key {_e(prov.key)}")
        if prov.options:
            extra.append(f"options <span class=mono>{_e(json.dumps(prov.options, sort_keys=True, default=str))}</span>")
        if prov.skipped:
            extra.append(f"{len(prov.skipped)} skipped: " + ", ".join(_e(s.get('topic')) for s in prov.skipped))
        if prov.overrides:
            extra.append(f"{len(prov.overrides)} factor override(s)")
        rows.append([f"<span class=mono id=\"run-{_e(rid)}\">{_e(rid)}</span><br>{_e(names.get(rid, info.name))}", sources,
                     reader + ("<br>" + "<br>".join(extra) if extra else ""), factors,
                     f"{_e(prov.workbench_version)}<br><span class=muted>{_e(prov.ingested_at)}</span>"])
    return _table(["run", "source files", "reader", "factors", "ingested by"], rows, cls="provenance")


def _trend_section(cat: pl.DataFrame, res: CompareResult, over: str) -> tuple[str, Any]:
    """(HTML, chart or None) of the primary metric per window per variant, with changes."""
    import polars as pl

    from workbench.model import WorkbenchError
    from workbench.trends import trend

    metric = res.primary[0] if res.primary else "success"
    sides = cat.filter(pl.col(res.by).is_in([res.baseline, res.candidate]) & ~pl.col("run_id").is_in(res.excluded))
    try:
        tr = trend(sides, metric=metric, over=over, within=[res.by])
    except WorkbenchError as err:
        return f"<p class=muted>No trend: {_e(err)}</p>", None
    names = dict(zip(cat["run_id"].to_list(), cat["name"].to_list(), strict=True)) if "name" in cat.columns else {}
    fmt = (lambda v: _num(v, 3))
    rows = []
    for r in tr.table.iter_rows(named=True):
        state = ("<span class='badge verdict-regression'>change</span>" if r["change"] else
                 "<span class='badge verdict-undecided'>out of limits</span>" if r["out_of_control"] else "")
        links = ", ".join(f'<a href="#run-{_e(rid)}">{_e(names.get(rid, rid))}</a>' for rid in r["run_ids"])
        runs = f"<details><summary>{len(r['run_ids'])} run(s)</summary>{links}</details>"
        rows.append([*[_e(r[w]) for w in tr.within], _e(r["window"]), f"<span class=num>{_e(r['n'])}</span>",
                     _interval(r["value"], r["lo"], r["hi"]), fmt(r["center"]),
                     f"{fmt(r['lcl'])} – {fmt(r['ucl'])}", state, runs])
    what = "rate" if tr.kind == "rate" else "mean"
    head = [*tr.within, tr.over, "runs measured", f"{tr.metric} {what} [{tr.level:.0%} interval]", "center",
            "control limits", "", "runs"]
    if tr.changes.height:
        found = "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in tr.summary().splitlines()) + "</ul>"
    else:
        found = f"<p>No change of {_e(tr.metric)} found (α = {_e(tr.alpha)}, each variant on its own).</p>"
    chart_kind = "p-chart" if tr.kind == "rate" else "X̄ chart"
    intro = (f"<p class=muted>{_e(tr.metric)} per {_e(tr.over)} of run start (UTC) per variant: a {chart_kind} "
             f"(center line and ±3σ limits for each window's runs) and the runs from which behavior changed "
             f"(permutation test of the strongest split, Holm across variants). Each window lists its runs.</p>")
    return intro + found + _table(head, rows, cls="trends"), tr.plot(height=260)


UNIT_FACTORS = ("hardware.unit", "hardware.robot", "environment.site")
"""Factors the report looks for, in this order, to show unit-to-unit variation."""


def _run_links(ids: Sequence[str], names: dict[str, str]) -> str:
    links = ", ".join(f'<a href="#run-{_e(rid)}">{_e(names.get(rid, rid))}</a>' for rid in ids)
    return f"<details><summary>{len(ids)} run(s)</summary>{links}</details>"


def _fleet_section(cat: pl.DataFrame, res: CompareResult) -> list[tuple[str, Any]]:
    """(HTML, chart or None) of the ranking of every value of the compared factor, the
    unit-to-unit variation and sim against real."""
    import polars as pl

    from workbench.model import WorkbenchError
    from workbench.ranking import rank
    from workbench.sim_real import simreal
    from workbench.units import variation
    from workbench.viz.fleet_plots import rank_chart, simreal_chart, units_chart

    metric = res.primary[0] if res.primary else "success"
    names = dict(zip(cat["run_id"].to_list(), cat["name"].to_list(), strict=True)) if "name" in cat.columns else {}
    kept = cat.filter(~pl.col("run_id").is_in(res.excluded))
    parts: list[tuple[str, Any]] = []
    try:
        rk = rank(kept, by=res.by, metric=metric, n_boot=200)
        rows = [[_e(r[res.by]), f"<span class=num>{r['n']}</span>", _interval(r["value"], r["lo"], r["hi"]), _e(r["letters"]),
                 _num(r["strength"]), _num(r["p_best"], 2), _run_links(r["run_ids"], names)] for r in rk.table.iter_rows(named=True)]
        parts.append((f"<h3>Ranking of every {_e(res.by)}</h3><p>{_e(rk.summary())}</p>" + _table(
            [res.by, "runs", f"{metric} [95% interval]", "letters", "Bradley–Terry strength", "P(best)", "runs"], rows, cls="ranking"),
            rank_chart(rk, height=280)))
    except WorkbenchError as err:
        parts.append((f"<h3>Ranking</h3><p class=muted>No ranking: {_e(err)}</p>", None))
    unit = next((f for f in UNIT_FACTORS if f in kept.columns and kept[f].n_unique() >= 2 and f != res.by), None)
    if unit is not None:
        try:
            va = variation(kept, metric=metric, groups=[unit], within=[res.by])
            rows = [[_e(r[res.by]), _e(r["unit"]), f"<span class=num>{r['n']}</span>", _num(r["raw"]),
                     _interval(r["shrunk"], r["lo"], r["hi"]),
                     "<span class='badge verdict-regression'>outlying</span>" if r["flag"] else "", _run_links(r["run_ids"], names)]
                    for r in va.units.iter_rows(named=True)]
            text = "".join(f"<li>{_e(line)}</li>" for line in va.summary().splitlines())
            parts.append((f"<h3>Unit to unit: {_e(unit)}</h3><ul>{text}</ul>" + _table(
                [res.by, unit, "runs", "raw", "shrunken [95%]", "", "runs"], rows, cls="units"), units_chart(va, height=280)))
        except WorkbenchError as err:
            parts.append((f"<h3>Unit to unit</h3><p class=muted>No unit analysis: {_e(err)}</p>", None))
    else:
        parts.append((f"<h3>Unit to unit</h3><p class=muted>No unit factor ({_e(', '.join(UNIT_FACTORS))}) with two values or more.</p>",
                      None))
    try:
        sr = simreal(kept, by=res.by, metric=metric)
        rows = [[_e(r[res.by]), _interval(r["sim"], r["sim_lo"], r["sim_hi"]) + f" <span class=muted>n={r['n_sim']}</span>",
                 _interval(r["real"], r["real_lo"], r["real_hi"]) + f" <span class=muted>n={r['n_real']}</span>",
                 _interval(r["ppi"], r["ppi_lo"], r["ppi_hi"]), _num(r["effective_real"], 0), _run_links(r["run_ids"], names)]
                for r in sr.table.iter_rows(named=True)]
        text = "".join(f"<li>{_e(line)}</li>" for line in sr.summary().splitlines())
        parts.append((f"<h3>Sim against real</h3><ul>{text}</ul>" + _table(
            [res.by, "sim [95%]", "real [95%]", "prediction-powered [95%]", "worth real runs", "runs"], rows, cls="simreal"),
            simreal_chart(sr, height=320)))
    except WorkbenchError as err:
        parts.append((f"<h3>Sim against real</h3><p class=muted>No sim-vs-real: {_e(err)}</p>", None))
    return parts


def _plots(cat: pl.DataFrame, res: CompareResult) -> list[tuple[str, Any]]:
    """(caption, HoloViews object) for each plot of the report (none for a metric that
    no cell measured)."""
    import polars as pl

    from workbench.comparison import NOT_MEASURED
    from workbench.viz import plots

    sides = cat.filter(pl.col(res.by).is_in([res.baseline, res.candidate]))
    out: list[tuple[str, Any]] = []
    measured = res.table.filter(pl.col("verdict") != NOT_MEASURED)
    rate_metrics = measured.filter(pl.col("kind") == "rate")["metric"].unique(maintain_order=True).to_list()
    for m in rate_metrics:
        out.append((f"{m} rate per cell and variant (Wilson 95 % interval)",
                    plots.success_heatmap(sides, x=res.within, y=[res.by], metric=m, height=300)))
    for m in measured["metric"].unique(maintain_order=True).to_list():
        out.append((f"{m}: candidate − baseline per cell", plots.difference_intervals(res, m, height=300)))
    for m in measured.filter(pl.col("kind") != "rate")["metric"].unique(maintain_order=True).to_list():
        out.append((f"{m} per variant", plots.metric_distribution(sides, m, by=res.by, group=res.within, height=300)))
    for m in res.attribution["metric"].unique(maintain_order=True).to_list():
        out.append((f"what explains {m}", plots.attribution_bars(res.attribution, m, height=300)))
    return out


def _bokeh_embed(objects: Sequence[Any]) -> tuple[str, list[str], str]:
    """(script, divs, resources) for HoloViews objects, Bokeh's JS/CSS inlined."""
    from bokeh.embed import components
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    from workbench.viz.plots import holoviews

    hv = holoviews()
    models = [hv.render(obj, backend="bokeh") for obj in objects]
    script, divs = components(models)
    # only what these models need (INLINE.render_js() would also list every loaded
    # extension, e.g. Panel's, some by relative URL)
    bundle = bundle_for_objs_and_resources(models, INLINE)
    # Panel (imported by HoloViews) adds its module shim, and once a Panel widget such
    # as Tabulator has been used in the process, that widget's stylesheets, to every
    # Resources; these Bokeh-only models use neither
    def _not_panel(u: Any) -> bool:
        text = str(getattr(u, "url", u))
        return "extensions/panel/" not in text and "cdn.holoviz.org/panel/" not in text

    bundle.js_files = [u for u in bundle.js_files if _not_panel(u)]
    bundle.css_files = [u for u in bundle.css_files if _not_panel(u)]
    external = [*bundle.js_urls, *bundle.css_urls]
    if external:
        msg = f"the report's plots need external resources {external}; they must be inlined"
        raise ConfigError(msg)
    resources = bundle._render_js() + bundle._render_css()
    return script, list(divs), resources


# --------------------------------------------------------------------------- entry points


def render_report(
    store: Store,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    where: str | None = None,
    min_grade: str | None = None,
    alpha: float = 0.05,
    title: str | None = None,
    trend_over: str | None = "auto",
    progress: bool = False,
) -> str:
    """The report's HTML text (see :func:`report`)."""
    from workbench._version import __version__
    from workbench.comparison import (
        DEFAULT_METRICS,
        NOT_MEASURED,
        compare,
        compared_ids,
        ensure_measured,
    )

    cat = store.runs(where=where)
    if cat.height == 0:
        msg = f"no runs in {store!r}" + (f" match {where!r}" if where else "")
        raise ConfigError(msg)
    done = ensure_measured(store, run_ids=compared_ids(cat, by, baseline, candidate),
                           metrics=list(metrics) if metrics else list(DEFAULT_METRICS), grades=True, progress=progress)
    if done:
        cat = store.runs(where=where)
    res = compare(cat, by=by, baseline=baseline, candidate=candidate, within=list(within or []),
                  metrics=list(metrics) if metrics else None, min_grade=min_grade, alpha=alpha)
    title = title or f"{res.by}: {res.candidate} vs {res.baseline}"
    plot_items = _plots(cat, res)
    trends_html, trend_plot = _trend_section(cat, res, trend_over) if trend_over else ("<p class=muted>Not asked for.</p>", None)
    fleet = _fleet_section(cat, res)
    fleet_charts = [c for _, c in fleet if c is not None]
    objects = [obj for _, obj in plot_items] + ([trend_plot] if trend_plot is not None else []) + fleet_charts
    script, divs, resources = _bokeh_embed(objects) if objects else ("", [], "")
    fleet_divs = iter([divs.pop() for _ in fleet_charts][::-1])
    if trend_plot is not None:
        trends_html = f"<figure class=trend>{divs.pop()}</figure>" + trends_html
    fleet_html = "".join(part + (f"<figure class=fleet>{next(fleet_divs)}</figure>" if chart is not None else "")
                         for part, chart in fleet)
    figures = "".join(f"<figure><figcaption>{_e(cap)}</figcaption>{div}</figure>" for (cap, _), div in zip(plot_items, divs, strict=True))
    if not plot_items:
        figures = "<p class=muted>No metric is measured in any cell: nothing to plot.</p>"

    regress = res.regressions
    unmeasured = res.not_measured.height
    lacking = f" {_e(res.missing_text())}." if unmeasured else ""
    if res.status == NOT_MEASURED:
        summary = (f'<div class="summary unmeasured"><b>Nothing measured</b>: no cell has values on both sides, '
                   f"so the gate cannot decide.{lacking}</div>")
    elif res.passed:
        among = f" among the {res.n_measured} measured cells; {unmeasured} not measured:{lacking}" if unmeasured else "."
        summary = (f'<div class="summary pass"><b>No regression with confidence</b> (Holm-adjusted, α = {_e(alpha)})'
                   f"{among}</div>")
    else:
        cells = "; ".join(
            " · ".join(_e(r[w]) for w in res.within) + f" <b>{_e(r['metric'])}</b>" for r in regress.iter_rows(named=True)
        )
        summary = f'<div class="summary fail"><b>{regress.height} regression(s) with confidence:</b> {cells}</div>'
        if unmeasured:
            summary += f'<div class="summary unmeasured">{unmeasured} cell(s) not measured:{lacking}</div>'
    counts = res.table["verdict"].value_counts().sort("verdict")
    verdicts = " ".join(f"{_verdict_badge(v)} {n}" for v, n in counts.iter_rows())
    compared = cat.filter(~cat["run_id"].is_in(res.excluded))
    run_ids = compared["run_id"].to_list() + [r for r in res.excluded if r in set(cat["run_id"].to_list())]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    question = _table(["", ""], [
        ["store", f"<span class=mono>{_e(store.url if hasattr(store, 'url') else store)}</span>"],
        ["filter", _e(where or "all runs")],
        ["compared", f"{_e(res.by)}: candidate <b>{_e(res.candidate)}</b> against baseline <b>{_e(res.baseline)}</b>"],
        ["cells", _e(", ".join(res.within) or "one cell with every run")],
        ["metrics", _e(", ".join(res.table["metric"].unique(maintain_order=True).to_list()))],
        ["runs", f"{compared.height} compared, {len(res.excluded)} left out" + (f" (below grade {_e(min_grade)} or other variants)" if res.excluded else "")],
        ["generated", f"{_e(now)} by workbench {_e(__version__)}"],
    ])
    body = f"""
<main>
<h1>{_e(title)}</h1>
<nav><a href="#comparison">comparison</a><a href="#plots">plots</a><a href="#trends">trends</a><a href="#fleet">ranking, units, sim vs real</a><a href="#attribution">attribution</a>
<a href="#quality">data quality</a><a href="#provenance">provenance</a><a href="#methods">methods</a></nav>
{question}
{summary}
<p>Verdicts: {verdicts}</p>
<h2 id="comparison">Comparison per cell and metric</h2>
{_comparison_section(res)}
{_plan_section(res)}
<h2 id="plots">Plots</h2>
<p class=muted>Interactive: hover for values, drag to pan, scroll to zoom.</p>
<div class="plots">{figures}</div>
<h2 id="trends">Trends over time</h2>
{trends_html}
<h2 id="fleet">Ranking, units, sim against real</h2>
{fleet_html}
<h2 id="attribution">What explains each metric</h2>
{_attribution_section(res)}
<h3>Reproducibility (runs of identical configuration)</h3>
{_reproducibility_section(res)}
<h2 id="quality">Data quality</h2>
{_quality_section(store, cat)}
<h2 id="provenance">Provenance of every run ({len(run_ids)})</h2>
{_provenance_section(store, run_ids, cat)}
<h2 id="methods">Methods</h2>
{methods_html(res)}
</main>"""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' blob:; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; worker-src blob:; connect-src 'none'">
<title>{_e(title)}</title>
{resources}
<style>{_CSS}</style>
</head>
<body>
{body}
{script}
</body>
</html>
"""


def report(
    store: Store,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    where: str | None = None,
    min_grade: str | None = None,
    alpha: float = 0.05,
    title: str | None = None,
    trend_over: str | None = "auto",
    out: str | Path = "report.html",
    progress: bool = False,
) -> Path:
    """Compare two variants of *store* and write a self-contained HTML report.

    Parameters
    ----------
    store
        The store. Metrics the compared runs lack (``wb.metrics.compute``) and data
        grades (``wb.quality.grade_store``) are computed first and kept in its catalog.
    by, baseline, candidate, within, metrics, min_grade, alpha
        The comparison, see :func:`workbench.comparison.compare`.
    where
        Only runs matching this condition (see :meth:`workbench.store.Store.runs`).
    title
        Title of the report (default: ``"<by>: <candidate> vs <baseline>"``).
    trend_over
        Windows of the trends section (:func:`workbench.trends.trend`'s *over*: ``auto``,
        ``day``, ``week``, … or a factor such as ``model.checkpoint``); None leaves it out.
    out
        The HTML file to write (its folder is created).
    progress
        Show a progress bar while missing metrics or grades are computed.

    Returns
    -------
    pathlib.Path
        *out*.
    """
    text = render_report(store, by=by, baseline=baseline, candidate=candidate, within=within, metrics=metrics,
                         where=where, min_grade=min_grade, alpha=alpha, title=title, trend_over=trend_over,
                         progress=progress)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
