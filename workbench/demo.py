"""The guided tour behind ``make demo`` / ``workbench demo``.

It only calls the public API a notebook user would call:

1. ingest the bundled sample campaign into the embedded store (the deliberately
   truncated sample is refused with a clear message while everything else proceeds);
2. print the catalog;
3. grade the data of every run and show the runs that are not clean, and why;
4. compute behavior metrics;
5. answer "did policy-v2 get better?" per robot × lighting cell, with the CI gate's verdict;
6. write the HTML report and the Rerun recording when those components are installed,
   and say how to open them and how to serve the app.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.model import Run
    from workbench.store import Store

__all__ = ["default_samples_dir", "tour"]


def default_samples_dir() -> Path:
    """``data/samples`` of the source checkout (where ``make demo`` runs)."""
    return Path(__file__).resolve().parents[1] / "data" / "samples"


def _table(df: object, rows: int = 12) -> str:
    import polars as pl

    with pl.Config(
        tbl_rows=rows,
        tbl_cols=-1,
        tbl_width_chars=180,
        fmt_str_lengths=36,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        return str(df)


def tour(
    store_path: str,
    *,
    samples: Path | None = None,
    out_dir: Path = Path("reports"),
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> int:
    """Run the tour; returns the process exit code (0 unless the tour itself broke)."""
    import polars as pl

    import workbench as wb

    samples = samples or default_samples_dir()
    if not samples.exists() or not any(samples.rglob("*.*")):
        echo(f"no samples in {samples}: generate them with `workbench samples generate --out {samples}`")
        return 1
    store = wb.open_store(store_path)

    echo(f"\n== 1. Ingest the sample campaign ({samples}) into the store {store_path}/")
    report = store.ingest([samples], progress=progress)
    echo(f"   {report}")
    for fail in report.failed:
        echo(f"   refused (the planted truncated file; `--salvage` recovers its prefix): {fail['error']}")

    echo("\n== 2. The catalog: one row per run, factors as columns")
    cat = store.runs()
    cols = ["name", "outcome", "duration_s", "hardware.robot", "environment.lighting", "environment.surface",
            "model.version", "scenario.seed"]
    echo(_table(cat.select([c for c in cols if c in cat.columns]).sort("name"), rows=8))
    echo(f"   {cat.height} runs from {cat['reader'].n_unique()} formats ({', '.join(sorted(cat['reader'].unique()))}).")

    echo("\n== 3. Data grades: which runs have bad data, and why")
    grades = wb.quality.grade_store(store, progress=progress)
    counts = grades.group_by("grade").len().sort("grade")
    echo("   " + ", ".join(f"{g}: {n}" for g, n in counts.iter_rows()))
    for row in grades.filter(pl.col("grade") != "A").iter_rows(named=True):
        name = cat.filter(pl.col("run_id") == row["run_id"])["name"][0]
        echo(f"   {name} — {row['why']}")  # the grade in a sentence, worst issue first

    echo("\n== 4. Behavior metrics per run (success, time to success, recoveries, latency …)")
    metrics = wb.metrics.compute(store, progress=progress)
    values = [c for c in metrics.columns if c != "run_id" and not c.endswith((".why", ".error"))]
    empty = [c for c in values if metrics[c].null_count() == metrics.height]
    echo(f"   {len(values)} metric columns for {metrics.height} runs, kept in the catalog as metrics.*"
         + (f"; {len(empty)} null on every run for lack of inputs (vehicle metrics on a manipulator campaign; "
            "the reasons are in metrics.<name>.why)" if empty else ""))

    from workbench.comparison import format_p

    echo("\n== 5. Did policy-v2 get worse? Per robot × lighting: the gate on success (one-sided, score-ordered Holm), runs paired by seed")
    res = wb.compare(store, by="model.version", baseline="policy-v1", candidate="policy-v2",
                     within=["hardware.robot", "environment.lighting"], min_grade="B")
    view = res.table.select(
        "hardware.robot", "environment.lighting", "metric", "n_baseline", "n_candidate",
        pl.col("baseline").round(3), pl.col("candidate").round(3),
        pl.format("[{}, {}]", pl.col("difference_lo").round(3), pl.col("difference_hi").round(3)).alias("difference interval"),
        pl.col("p_verdict").map_elements(format_p, return_dtype=pl.String).alias("p adj"),
        "verdict",
    )
    echo(_table(view, rows=20))
    if res.excluded:
        echo(f"   {len(res.excluded)} run(s) below grade B left out of the comparison")
    top = res.attribution.group_by("metric", maintain_order=True).head(1)
    for r in top.iter_rows(named=True):
        echo(f"   what explains {r['metric']} most: {r['term']} ({100 * r['share']:.0f} % of its variation)")
    gate = "FAIL — a cell regresses with confidence" if not res.passed else "pass"
    echo(f"   CI gate (`workbench compare … --fail-on-regression`): {gate}")

    out_dir.mkdir(parents=True, exist_ok=True)
    step = 6
    if importlib.util.find_spec("workbench.reporting") is not None:
        from workbench.reporting import report as write_report

        echo(f"\n== {step}. The report: one HTML file that opens offline")
        path = write_report(store, by="model.version", baseline="policy-v1", candidate="policy-v2",
                         within=["hardware.robot", "environment.lighting"], out=out_dir / "demo.html")
        echo(f"   wrote {path}  (open it in a browser; it needs no network)")
        step += 1
    if importlib.util.find_spec("workbench.viz.rerun") is not None:
        from workbench.viz.rerun import log_runs

        echo(f"\n== {step}. Side-by-side replay in Rerun, aligned on the grasp")
        pick = res.table.filter(pl.col("verdict") == "regression")
        if pick.height:  # a success of the baseline beside a failure of the candidate, same cell
            base_ids, cand_ids = pick["runs_baseline"][0].to_list(), pick["runs_candidate"][0].to_list()
        else:
            base_ids = cand_ids = cat["run_id"].to_list()
        found = [r for r in (_first(store, base_ids, "success"), _first(store, cand_ids, "failure")) if r is not None]
        runs = found or [store.load(cat["run_id"][0], lazy=False)]
        logged = log_runs(runs, align="event:grasp", out=out_dir / "demo.rrd")
        ids = " ".join(r.run_id for r in runs)
        echo(f"   {', '.join(r.info.name for r in runs)} on one timeline, 0 = the grasp")
        echo(f"   wrote {logged.path}  (open with `rerun {logged.path}`, or `workbench view {ids} --serve`)")
        step += 1
    _fleet_tour(store_path, out_dir, step, echo)
    serve = f", `workbench serve --store {store_path}`" if importlib.util.find_spec("workbench.ui") else ""
    echo(f"\nNext: `workbench runs --store {store_path} --where \"hardware.robot = 'arm-b'\"`, "
         f"`workbench show RUN_ID --store {store_path}`{serve}.")
    return 0


def _fleet_tour(store_path: str, out_dir: Path, step: int, echo: Callable[[str], None]) -> None:
    """Many policies, arms and sim against real, on a small generated fleet campaign."""
    import polars as pl

    import workbench as wb
    from workbench.ranking import rank
    from workbench.samples.fleet import FLEET_DIR, generate_fleet
    from workbench.sim_real import simreal
    from workbench.units import variation

    fleet_store = f"{str(store_path).rstrip('/')}-fleet"
    echo(f"\n== {step}. Many policies, five arms, sim and real: a generated fleet campaign in {fleet_store}/")
    import json

    store = wb.open_store(fleet_store)
    truth_path = out_dir / "fleet-samples" / FLEET_DIR / "truth.json"
    truth = json.loads(truth_path.read_text()) if truth_path.exists() else generate_fleet(out_dir / "fleet-samples", workers=2)
    if store.runs().height == 0:
        store.ingest([truth_path.parent])
    wb.metrics.compute(store, ["success"])
    cat = store.runs()
    echo(f"   {cat.height} runs; planted: {truth['outlier_unit']} fails more, sim flatters {truth['sim_to_real_gap_policy']}")
    real = cat.filter(pl.col("environment.domain") == "real")
    echo("   rank (real runs): " + rank(real, by="model.version", n_boot=200).summary())
    echo("   units (real runs): " + variation(real, groups="hardware.unit").summary())
    for line in simreal(cat, by="model.version").summary().splitlines()[:2]:
        echo(f"   sim vs real: {line}")
    echo(f"   the same in the app's Fleet tab: `workbench serve --store {fleet_store}`")


def _first(store: Store, run_ids: list[str], outcome: str) -> Run | None:
    """The first run of *run_ids* with that outcome and a grasp event (so it aligns)."""
    import polars as pl

    for rid in run_ids:
        run = store.load(rid, lazy=False)
        if run.outcome == outcome and run.events.filter(pl.col("kind") == "grasp").height:
            return run
    return None
