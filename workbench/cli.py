"""The ``workbench`` command.

Every command works on a store (``--store DIR``, default ``$WORKBENCH_STORE`` or
``./workbench-store``). Errors print one line and exit non-zero (1; 2 for
``compare``, whose 1 means a regression); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from workbench._version import __version__
from workbench.config import env
from workbench.model import ConfigError, WorkbenchError
from workbench.textable import WIDER, print_frame

__all__ = ["cli", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REGRESSION = 1
"""``compare --fail-on-regression``: a cell regresses with confidence."""
EXIT_ERROR = 2
"""``compare``: an error (bad option, unknown factor or metric, no store…) or, with the
gate, nothing measured — never confused with a regression."""
EXIT_UNDECIDED = 3
"""``compare --fail-on-undecided``: no regression, but a measured cell is undecided."""
ERROR_EXIT_CODES: dict[str, int] = {"compare": EXIT_ERROR}
"""Exit code of an error per command where it is not :data:`EXIT_FAILED` (commands whose
exit 1 means something else). An unexpected exception in these commands exits with the
same code after its traceback."""

store_option = click.option(
    "--store",
    "store_path",
    default=None,
    metavar="DIR",
    help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].",
)


_STEP_DOWN = {"score_ordered_holm": "score-ordered Holm", "discrete_holm": "discrete Holm"}

def _open(store_path: str | None, *, create: bool = False) -> Any:
    from workbench.store import open_store

    return open_store(store_path, create=create)


def _echo_err(text: str) -> None:
    click.secho(text, err=True, fg="red")


class _Group(click.Group):
    """Turn workbench errors into one clear line unless ``--debug``; exit with the
    command's error code (:data:`ERROR_EXIT_CODES`, else :data:`EXIT_FAILED`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as err:
            code = ERROR_EXIT_CODES.get(ctx.invoked_subcommand or "")
            if ctx.obj and ctx.obj.get("debug"):
                if code is None:
                    raise
                traceback.print_exc()
            else:
                _echo_err(f"error: {err}")
            ctx.exit(code or EXIT_FAILED)
        except KeyboardInterrupt:
            _echo_err("interrupted")
            ctx.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception:
            code = ERROR_EXIT_CODES.get(ctx.invoked_subcommand or "")
            if code is None:
                raise
            traceback.print_exc()
            ctx.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """RobotOps Workbench: robot logs of many runs → catalog, grades, metrics, comparisons."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# --------------------------------------------------------------------------- ingest


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@click.option("--meta", "meta", multiple=True, metavar="K=V", help="Factor for every run, e.g. hardware.robot=arm-a (repeatable).")
@click.option("--pattern", default=None, metavar="P", help='Factors from paths, e.g. "{hardware.robot}/{model.version}/{scenario.seed}.csv".')
@click.option("--reader", default=None, help="Force a reader by name (see `workbench readers`).")
@click.option("--option", "options", multiple=True, metavar="K=V", help="Reader option, e.g. time_column=stamp (repeatable).")
@click.option("--salvage", is_flag=True, help="Recover the readable prefix of truncated files (marked as salvaged).")
@click.option("--scheduler", default=None, help="Read files in parallel: threads, processes, or a Dask address tcp://host:8786 [default: in this process, or $WORKBENCH_SCHEDULER].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def ingest(
    paths: tuple[Path, ...],
    store_path: str | None,
    meta: tuple[str, ...],
    pattern: str | None,
    reader: str | None,
    options: tuple[str, ...],
    salvage: bool,
    scheduler: str | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Read log files or folders into the store.

    Exit 0 when every file is ingested or already present, 1 when any failed
    (the others are kept).
    """
    from workbench.model import parse_scalar

    store = _open(store_path, create=True)
    opts: dict[str, Any] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} must look like key=value", param_hint="--option")
        opts[key] = parse_scalar(value)
    show_bar = sys.stderr.isatty() if progress is None else progress
    report = store.ingest(
        list(paths),
        meta=list(meta),
        pattern=pattern,
        reader=reader,
        options=opts,
        salvage=salvage,
        progress=show_bar and not as_json,
        scheduler=scheduler or env("WORKBENCH_SCHEDULER"),
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        _print_report(report)
    sys.exit(0 if report.ok else EXIT_FAILED)


def _print_report(report: Any) -> None:
    click.echo(str(report))
    for warn in report.warnings:
        if "salvaged" in warn:
            click.secho(f"  salvaged: {warn['path']}: only its readable prefix was kept ({warn['salvaged']})", fg="yellow")
            continue
        skipped = ", ".join(f"{s.get('topic')} ({s.get('reason')})" for s in warn["skipped"][:5])
        more = len(warn["skipped"]) - 5
        click.echo(f"  note: {warn['path']}: not decoded: {skipped}{f' and {more} more' if more > 0 else ''}")
    for fail in report.failed:
        _echo_err(f"  failed: {fail['error']}")
    ev = getattr(report, "events", None)
    if ev is not None and ev.runs:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(ev.outcomes.items()))
        made = sum(ev.counts.values())
        click.echo(f"  events: {made} made by {'rules ' + ev.rules + ' and ' if ev.rules else ''}the format defaults; outcomes: {outcomes}")
        idle = [n for n in ev.user_rules if n != "outcome" and len(ev.missing.get(n, [])) == len(ev.runs)]
        if idle:
            click.echo(f"  rules not applicable to these runs (a stream they read is absent): {', '.join(idle)}")
    if getattr(report, "events_error", None):
        click.secho(f"  rules not applied: {report.events_error} (fix them, then `workbench events apply`)", fg="yellow", err=True)


# --------------------------------------------------------------------------- runs & show


def _chosen_columns(df: Any, columns: str | None) -> Any:
    """``--columns A,B`` (or ``all``) of *df*; None when not given."""
    if not columns:
        return None
    if columns.strip().lower() == "all":
        return df
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        from workbench.model import ConfigError

        msg = f"no column(s) {missing}; columns: {', '.join(df.columns)} (or all)"
        raise ConfigError(msg)
    return df.select(wanted)


@cli.command()
@store_option
@click.option("--where", default=None, metavar="EXPR", help="SQL condition, e.g. \"hardware.robot = 'arm-a'\".")
@click.option("--columns", default=None, metavar="A,B|all",
              help="These columns (comma-separated), or all [default: identity, outcome, grade and the factors that vary, as many as fit].")
@click.option("--wide", is_flag=True, help="Every chosen column at full width, whatever the terminal's width.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--schema", is_flag=True, help="Describe the catalog's columns instead: group, type, and each metric's kind, unit and direction.")
def runs(store_path: str | None, where: str | None, columns: str | None, wide: bool, fmt: str, schema: bool) -> None:
    """List the runs of the store (the catalog): one line per run, the columns that fit."""
    store = _open(store_path)
    df = store.runs(where=where)
    if schema:
        from workbench.metrics import catalog_schema

        print_frame(catalog_schema(df), fmt, wide=wide)
        return
    chosen = _chosen_columns(df, columns)
    if chosen is not None:
        df = chosen
    elif fmt == "table":
        df = df.select(_table_columns(df))
    print_frame(df, fmt, wide=wide, fit=not (columns and columns.strip().lower() == "all"))


_TABLE_BASE = ("run_id", "name", "outcome", "quality.grade", "duration_s")


def _table_columns(df: Any) -> list[str]:
    """The columns a person reads first: identity, outcome, grade, duration, the factors
    that vary between the listed runs (model and hardware first), then the reader when
    it varies and the constant factors (every column stays available with --columns,
    --wide or --format csv/json)."""
    from workbench.model import FACTOR_GROUPS

    cols = [c for c in _TABLE_BASE if c in df.columns]
    rank = {g: i for i, g in enumerate(("model", "hardware", "environment", "scenario"))}
    factors = sorted((c for c in df.columns if c.split(".", 1)[0] in FACTOR_GROUPS and df[c].null_count() < df.height),
                     key=lambda c: (rank.get(c.split(".", 1)[0], 9), c))
    varying = [c for c in factors if df[c].n_unique() > 1]
    reader = ["reader"] if "reader" in df.columns and df["reader"].n_unique() > 1 else []
    return cols + varying + reader + [c for c in factors if c not in varying]


@cli.command()
@click.argument("run_id")
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show(run_id: str, store_path: str | None, fmt: str) -> None:
    """Show one run (a run id or a unique run name): factors, provenance, streams, events."""
    store = _open(store_path)
    run_id = store.resolve_runs([run_id])[0]
    manifest = store.manifest(run_id)
    if fmt == "json":
        click.echo(json.dumps(manifest, indent=1, sort_keys=True))
        return
    info = manifest["info"]
    click.secho(f"run {info['run_id']}  {info.get('name', '')}", bold=True)
    notes = store.annotations(run_id)
    source = (notes.get("outcome") or {}).get("source")
    click.echo(f"  outcome: {store.current_outcome(run_id) or 'unknown'}" + (f" (from {source})" if source else "")
               + f"   duration: {(info['end_ns'] - info['start_ns']) / 1e9:.2f} s")
    lab = notes.get("labels") or {}
    if lab.get("outcome"):
        click.echo(f"  label: {lab['outcome']} by {lab.get('by')} at {lab.get('when')}" + (f": {lab['reason']}" if lab.get("reason") else ""))
    applied = notes.get("events") or {}
    if applied.get("applied_at"):
        rules = f"rules {applied['rules']} ({applied.get('rules_origin')})" if applied.get("rules") else "format defaults only"
        click.echo(f"  derived events: {applied.get('n_derived', 0)} from {rules}, applied {applied['applied_at']}")
    for group in ("hardware", "environment", "model", "scenario"):
        if info[group]:
            vals = ", ".join(f"{k}={v}" for k, v in info[group].items())
            click.echo(f"  {group}: {vals}")
    prov = info["provenance"]
    click.echo(f"  reader: {prov['reader']} v{prov['reader_version']}  options: {json.dumps(prov['options'])}")
    for src in prov["sources"]:
        click.echo(f"  source: {src['path']}  {src['size']} B  sha256 {src['sha256'][:16]}…")
    for ov in prov.get("overrides", []):
        click.echo(f"  override: {ov['key']}: {ov['old']!r} ({ov['old_source']}) → {ov['new']!r} ({ov['new_source']})")
    click.echo(f"  streams ({len(manifest['streams'])}):")
    for name, desc in manifest["streams"].items():
        dims = ", ".join(f"{k}={v}" for k, v in desc["dims"].items())
        click.echo(f"    {name:<40} {dims}  [{', '.join(desc['variables'][:6])}]")
    click.echo(f"  events: {manifest.get('n_events', 0)}")
    for skip in prov.get("skipped", []):
        click.echo(f"  not decoded: {skip.get('topic')}: {skip.get('reason')}")


@cli.command()
@click.argument("run_ids", nargs=-1, required=True)
@store_option
def remove(run_ids: tuple[str, ...], store_path: str | None) -> None:
    """Delete runs from the store."""
    store = _open(store_path)
    for run_id in run_ids:
        store.remove(run_id)
        click.echo(f"removed {run_id}")


@cli.command()
@store_option
def rebuild(store_path: str | None) -> None:
    """Rebuild the catalog from the run manifests."""
    store = _open(store_path)
    df = store.rebuild_catalog()
    click.echo(f"catalog rebuilt: {df.height} runs")


@cli.command()
@store_option
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def migrate(store_path: str | None, progress: bool | None) -> None:
    """Rewrite a store of an earlier release into the current layout, run by run.

    Each run is read back and compared by checksum before its old folder is removed;
    an interrupted migration resumes where it stopped.
    """
    from workbench.store.migrate import migrate as run_migrate

    store = _open(store_path)
    report = run_migrate(store, progress=sys.stderr.isatty() if progress is None else progress)
    click.echo(str(report))


@cli.command()
@store_option
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition.")
@click.option("--findings", is_flag=True, help="Also list every finding (stream, check, time window, detail).")
@click.option("--scheduler", default=None, help="threads (default), processes, sync, or a Dask address tcp://host:8786.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def grade(store_path: str | None, where: str | None, findings: bool, scheduler: str | None, fmt: str, progress: bool | None) -> None:
    """Grade the data of every run (A–F) and keep grades in the catalog."""
    import polars as pl

    from workbench.quality import grade_store

    store = _open(store_path)
    ids = store.runs(where=where)["run_id"].to_list() if where else None
    show_bar = sys.stderr.isatty() if progress is None else progress
    table = grade_store(store, run_ids=ids, scheduler=scheduler, progress=show_bar and fmt == "table")
    names = store.runs().select("run_id", "name")
    table = names.join(table, on="run_id", how="inner")
    detail = None
    if findings or fmt == "json":
        parts = []
        for rid in table["run_id"].to_list():
            f = store.get_table(rid, "quality_findings")
            if f is not None and f.height:
                parts.append(f.with_columns(pl.lit(rid).alias("run_id")))
        detail = pl.concat(parts) if parts else None
    if fmt == "json":
        out = table.to_dicts()
        by_run: dict[str, list[dict[str, Any]]] = {}
        if detail is not None:
            for row in detail.to_dicts():
                by_run.setdefault(row.pop("run_id"), []).append(row)
        for row in out:
            row["findings"] = by_run.get(row["run_id"], [])
        click.echo(json.dumps(out, indent=1))
        return
    counts = table.group_by("grade").len().sort("grade")
    click.echo("grades: " + ", ".join(f"{g}: {n}" for g, n in counts.iter_rows()))
    flagged = table.filter(pl.col("grade") != "A")
    if flagged.height:
        print_frame(flagged, "table", hint=WIDER)
    if detail is not None:
        print_frame(detail.select("run_id", "stream", "check", "severity", "detail"), "table", hint=WIDER)


@cli.command()
@store_option
@click.option("--metric", "names", multiple=True, help="Metric to compute (repeatable) [default: all installed].")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition.")
@click.option("--scheduler", default=None, help="threads (default), processes, sync, or a Dask address tcp://host:8786.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
@click.option("--roles", "roles_file", default=None, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="YAML file with a roles: section [default: workbench.yaml of the store folder, else of this folder].")
@click.option("--list", "list_only", is_flag=True, help="List the installed metrics: columns, kind, unit, direction, roles read.")
@click.option("--columns", default=None, metavar="A,B|all",
              help="These columns, or all [default: run id, name and the metrics measured on some listed run, as many as fit].")
@click.option("--wide", is_flag=True, help="Every chosen column at full width, whatever the terminal's width.")
def metrics(store_path: str | None, names: tuple[str, ...], where: str | None, scheduler: str | None, fmt: str,
            progress: bool | None, roles_file: Path | None, list_only: bool, columns: str | None, wide: bool) -> None:
    """Compute behavior metrics per run and keep them in the catalog.

    A metric whose inputs a run lacks is null there, with the reason in
    <metric>.why (a summary is printed under the table; see `workbench roles RUN`).
    """
    import polars as pl

    from workbench.metrics import compute, get_metric
    from workbench.metrics import metrics as installed

    if list_only:
        chosen = [get_metric(n) for n in names] if names else list(installed().values())
        rows = [{"metric": m.name, "column": c.name, "kind": c.kind, "unit": c.unit or "-",
                 "better": {True: "higher", False: "lower", None: "-"}[c.higher_is_better],
                 "roles": ", ".join(getattr(m, "roles", ())) or "-", "description": c.description}
                for m in chosen for c in m.columns]
        print_frame(pl.DataFrame(rows), fmt, hint=WIDER)
        return
    store = _open(store_path)
    ids = store.runs(where=where)["run_id"].to_list() if where else None
    show_bar = sys.stderr.isatty() if progress is None else progress
    df = compute(store, list(names) or None, run_ids=ids, scheduler=scheduler, progress=show_bar and fmt == "table",
                 roles=roles_file)
    df = store.runs().select("run_id", "name").join(df, on="run_id", how="inner")
    if fmt != "table":
        print_frame(df, fmt, hint=WIDER)
        return
    from workbench.metrics import columns as metric_columns

    cols = metric_columns(list(names) or None)
    notes = [c for c in df.columns if c.endswith((".why", ".error"))]
    shown = df.drop(notes)
    chosen = _chosen_columns(shown, columns)
    if chosen is not None:
        shown = chosen
    else:  # the metrics measured somewhere first; those null on every listed run are only counted
        empty = [c for c in shown.columns[2:] if shown[c].null_count() == shown.height]
        shown = shown.drop(empty)
        if empty:
            click.echo(f"{len(empty)} metric column(s) null on every listed run (see the reasons below; --columns all shows them)",
                       err=True)
    shown = shown.rename({c: f"{c} [{cols[c].unit}]" for c in shown.columns if c in cols and cols[c].unit})
    print_frame(shown, fmt, wide=wide, fit=not (columns and columns.strip().lower() == "all"))
    for c in notes:
        reasons = df.filter(pl.col(c).is_not_null()).group_by(c).len().sort("len", descending=True)
        for reason, n in reasons.iter_rows():
            kind = "null" if c.endswith(".why") else "error"
            click.echo(f"{c.rsplit('.', 1)[0]}: {kind} on {n} run(s): {reason}", err=True)


@cli.command()
@store_option
@click.option("--by", default="model.version", show_default=True, help="Factor whose two values are compared.")
@click.option("--baseline", default=None, help="Baseline value of --by.")
@click.option("--candidate", default=None, help="Candidate value of --by.")
@click.option("--within", multiple=True, help="Factor defining cells (repeatable, or comma-separated).")
@click.option("--metric", "names", multiple=True, help="Metric to compare (repeatable) [default: the standard set].")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition.")
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")),
              help="Leave out runs graded below this (ungraded runs stay; every exclusion is listed).")
@click.option("--drop-ungraded", is_flag=True, help="With --min-grade: leave out ungraded runs too.")
@click.option("--primary", default=None, metavar="METRIC[,…]",
              help="Metrics the gate decides on [default: success]; the others are secondary and never change the gate.")
@click.option("--margin", default=None, type=float,
              help="Non-inferiority margin δ: absolute for rates (0.1 = 10 points), a fraction of the baseline for others.")
@click.option("--equivalence", default=0.1, show_default=True, type=float,
              help="'no change' when the interval lies inside ± this (absolute for rates, relative otherwise).")
@click.option("--pair-by", default=None, metavar="FACTOR[,…]",
              help="Pair runs by these factors [default: scenario.seed when present].")
@click.option("--replicates", default="first", show_default=True, type=click.Choice(["first", "mean", "majority"]),
              help="How runs of one pairing key on one side are combined.")
@click.option("--unpaired", is_flag=True, help="Never pair runs.")
@click.option("--sequential", is_flag=True,
              help="Anytime-valid gate for re-checking as runs are added (e-process); each look is kept and numbered.")
@click.option("--alpha", default=0.05, show_default=True, help="Family-wise error rate of the gate (one-sided).")
@click.option("--fail-on-regression", is_flag=True,
              help="CI gate: exit 1 when a cell regresses with confidence, 2 when no cell is measured on both sides.")
@click.option("--fail-on-undecided", is_flag=True,
              help="With the gate (implied): exit 3 when nothing regresses but a measured cell is undecided.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--progress/--no-progress", default=None,
              help="Progress bar while missing metrics or grades are computed [default: on a terminal, table format].")
def compare(
    store_path: str | None,
    by: str,
    baseline: str | None,
    candidate: str | None,
    within: tuple[str, ...],
    names: tuple[str, ...],
    where: str | None,
    min_grade: str | None,
    drop_ungraded: bool,
    primary: str | None,
    margin: float | None,
    equivalence: float,
    pair_by: str | None,
    replicates: str,
    unpaired: bool,
    sequential: bool,
    alpha: float,
    fail_on_regression: bool,
    fail_on_undecided: bool,
    fmt: str,
    progress: bool | None,
) -> None:
    """Compare two variants per cell: rates and metrics with intervals, tests, verdicts.

    The gate decides on the primary metrics (--primary, default success), one-sided in
    the harmful direction with an exact step-down test over their cells (for rates,
    score-ordered Holm: the error budget goes first to the largest shortfalls in
    runs); secondary metrics are reported with their own adjustment. Verdicts: regression,
    non_inferior (with --margin), improvement, no_change, undecided (the data cannot
    tell at this n), not measured.

    Metrics (and, with --min-grade, data grades) that the compared runs lack are
    computed first and kept in the catalog. A cell where either side has no value
    (e.g. success when no run has an outcome) is "not measured"; the gate decides on
    the measured cells.

    \b
    Exit codes:
      0  pass (no regression with confidence), or no gate asked
      1  with --fail-on-regression: a cell regresses with confidence
      2  an error (bad option, unknown factor or metric, no store), or, with
         the gate, nothing measured (no cell has values on both sides)
      3  with --fail-on-undecided: no regression, but a measured cell is
         undecided
    """
    import polars as pl

    from workbench.comparison import DEFAULT_METRICS, NOT_MEASURED, compared_ids, ensure_measured, format_p
    from workbench.comparison import compare as run_compare
    from workbench.model import parse_scalar

    store = _open(store_path)
    cat = store.runs(where=where)
    cells = [w.strip() for item in within for w in item.split(",") if w.strip()]
    b_val = None if baseline is None else parse_scalar(baseline)
    c_val = None if candidate is None else parse_scalar(candidate)
    show_bar = (sys.stderr.isatty() if progress is None else progress) and fmt == "table"
    done = ensure_measured(store, run_ids=compared_ids(cat, by, b_val, c_val), metrics=list(names) or list(DEFAULT_METRICS),
                           grades=min_grade is not None, progress=show_bar)
    if done:
        click.echo("computed " + ", ".join(f"{k} for {len(v)} run(s)" for k, v in done.items()), err=True)
        cat = store.runs(where=where)
    res = run_compare(
        store if sequential and where is None else cat,
        by=by,
        baseline=b_val,
        candidate=c_val,
        within=cells,
        metrics=list(names) or None,
        primary=primary,
        min_grade=min_grade,
        drop_ungraded=drop_ungraded,
        alpha=alpha,
        margin=margin,
        equivalence=equivalence,
        paired=not unpaired,
        pair_by=pair_by,
        replicates=replicates,
        sequential=sequential,
    )
    if fmt == "json":
        click.echo(res.to_json())
    else:
        pairing = f"paired by {', '.join(res.pair_by)} ({res.replicates} of replicates)" if res.pair_by else "unpaired"
        click.echo(f"{by}: {res.candidate} (candidate) vs {res.baseline} (baseline); gate on {', '.join(res.primary)}, "
                   f"one-sided at alpha={alpha} ({_STEP_DOWN.get(res.multiplicity.get('primary', ''), 'step-down')}); {pairing}"
                   + (f"; non-inferiority margin {margin}" if margin is not None else "")
                   + (f"; sequential (anytime-valid), look {res.look or 1}" if sequential else ""))

        def interval(name: str) -> pl.Expr:
            value = pl.col(name)
            text = pl.format("{} [{}, {}]", *(pl.col(c).round(3) for c in (name, f"{name}_lo", f"{name}_hi")))
            return pl.when(value.is_null() | value.is_nan()).then(pl.lit("–")).otherwise(text).alias(name)

        def unknown() -> pl.Expr:
            u = pl.format("{}/{}", pl.col("n_unknown_baseline"), pl.col("n_unknown_candidate"))
            return pl.when(pl.col("missing_differs")).then(pl.format("{} (differs)", u)).otherwise(u).alias("unknown b/c")

        view = res.table.select(  # the verdict first after the cell: it is what fits on every terminal
            *cells, "metric", "verdict", interval("difference"),
            pl.col("p_verdict").map_elements(format_p, return_dtype=pl.String).alias("p_adj"),
            "n_baseline", "n_candidate", interval("baseline"), interval("candidate"), unknown(), "role",
        )
        print_frame(view, "table", hint="--format csv or json shows every column")
        top = res.attribution.filter(pl.col("share") > 0).group_by("metric", maintain_order=True).head(3)
        if top.height:
            click.echo("what explains each metric (share of variation):")
            print_frame(top.with_columns(pl.col("share").round(3)), "table", hint=WIDER)
        if res.excluded:
            reasons: dict[str, int] = {}
            for why in res.exclusions.values():
                reasons[why] = reasons.get(why, 0) + 1
            click.echo(f"{len(res.excluded)} runs left out: " + "; ".join(f"{n} {why}" for why, n in reasons.items()))
        paired_cells = res.table.filter(pl.col("paired"))
        if res.pair_by:
            click.echo(f"pairing: {paired_cells.height} of {res.table.height} rows paired"
                       + (f" ({int(paired_cells['n_pairs'].min())}–{int(paired_cells['n_pairs'].max())} pairs)"  # type: ignore[arg-type]
                          if paired_cells.height else ""))
        unmeasured = res.not_measured.height
        if unmeasured and res.n_measured:
            click.secho(f"{unmeasured} of {res.table.height} cells {NOT_MEASURED}: {res.missing_text()}", fg="yellow")
        regress = res.regressions
        if regress.height:
            click.secho(f"{regress.height} regression(s) with confidence:", fg="red", err=fail_on_regression)
            print_frame(regress.select(*cells, "metric", "baseline", "candidate", "difference",
                                        pl.col("p_adjusted").map_elements(format_p, return_dtype=pl.String)), "table")
        elif res.n_measured:
            among = f" among the {res.n_measured} measured cells" if unmeasured else ""
            click.secho(f"no regression with confidence{among}", fg="green")
    if res.status == NOT_MEASURED:
        _echo_err(f"nothing measured: {res.missing_text() or 'no cell to compare'}")
    if fail_on_regression or fail_on_undecided:
        if res.status == "regression":
            sys.exit(EXIT_REGRESSION)
        if res.status == NOT_MEASURED:
            sys.exit(EXIT_ERROR)
        if res.status == "undecided" and fail_on_undecided:
            sys.exit(EXIT_UNDECIDED)


@cli.command(name="plan")
@store_option
@click.option("--by", default="model.version", show_default=True, help="Factor whose two values are compared.")
@click.option("--baseline", default=None, help="Baseline value of --by.")
@click.option("--candidate", default=None, help="Candidate value of --by.")
@click.option("--within", multiple=True, help="Factor defining cells (repeatable, or comma-separated).")
@click.option("--metric", default="success", show_default=True, help="The rate to plan for.")
@click.option("--drop", default=0.1, show_default=True, type=float, help="Drop in success rate to detect (0.1 = 10 points).")
@click.option("--power", default=0.8, show_default=True, type=float, help="Target power.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="The gate's family-wise one-sided level.")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition.")
@click.option("--next", "next_", is_flag=True, help="Propose the next campaign: runs to do, ranked by how much each would decide.")
@click.option("--budget", type=click.IntRange(min=1), default=None, help="With --next: runs available.")
@click.option("--unit", default=None, help="With --next: the unit factor checked for outliers [default: hardware.unit or hardware.robot].")
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=None, help="With --next: also write the plan (.csv or .yaml).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def plan_cmd(store_path: str | None, by: str, baseline: str | None, candidate: str | None, within: tuple[str, ...],
             metric: str, drop: float, power: float, alpha: float, where: str | None, next_: bool, budget: int | None,
             unit: str | None, out_file: Path | None, fmt: str) -> None:
    """How many runs a comparison needs, per cell; with --next, the next campaign.

    The drop detectable now (mde_now), runs per side to detect --drop with --power
    (runs_needed), and for undecided cells how many more runs per side would probably
    decide them (more_runs_per_arm). Exact power of the gate's one-sided exact test.

    With --next: factor combinations × new seeds × count, each with why: undecided
    cells, combinations never or rarely tested, cells where failures concentrate (with
    the failed runs to look at), units that stand out.
    """
    from workbench.comparison import compared_ids, ensure_measured
    from workbench.model import parse_scalar
    from workbench.planning import plan

    store = _open(store_path)
    cat = store.runs(where=where)
    cells = [w.strip() for item in within for w in item.split(",") if w.strip()]
    b_val = None if baseline is None else parse_scalar(baseline)
    c_val = None if candidate is None else parse_scalar(candidate)
    if ensure_measured(store, run_ids=compared_ids(cat, by, b_val, c_val), metrics=[metric]):
        cat = store.runs(where=where)
    if next_:
        _plan_next(cat, by, b_val, c_val, cells, metric, budget, unit, alpha, out_file, fmt)
        return
    table = plan(cat, by=by, baseline=b_val, candidate=c_val, within=cells, metric=metric,
                 drop=drop, power=power, alpha=alpha)
    if fmt == "table":
        import polars as pl

        table = table.with_columns(pl.col("p_base", "alpha_cell", "mde_now").round(4))
        click.echo(f"{metric}: drop {drop} at power {power}, one-sided α={alpha} over {table.height} cell(s) (Bonferroni, conservative)")
    print_frame(table, fmt, hint=WIDER)


def _plan_next(cat: Any, by: str, baseline: Any, candidate: Any, within: list[str], metric: str, budget: int | None,
               unit: str | None, alpha: float, out_file: Path | None, fmt: str) -> None:
    import polars as pl

    from workbench.next_campaign import next_campaign

    table = next_campaign(cat, by=by, baseline=baseline, candidate=candidate, within=within, metric=metric, budget=budget,
                          unit=unit, alpha=alpha)
    flat = table.with_columns(pl.col("seeds").cast(pl.List(pl.String)).list.join(" "), pl.col("look_at").list.join(" "))
    if out_file is not None:
        if out_file.suffix in (".yaml", ".yml"):
            import yaml

            out_file.write_text(yaml.safe_dump({"runs": table.to_dicts()}, sort_keys=False, allow_unicode=True))
        elif out_file.suffix == ".csv":
            flat.write_csv(out_file)
        else:
            msg = f"--out {out_file}: write the plan as .csv or .yaml"
            raise ConfigError(msg)
    if fmt != "table":
        print_frame(flat, fmt)
        return
    total = int(table["count"].sum()) if table.height else 0
    click.echo(f"next campaign: {table.height} line(s), {total} run(s)" + (f" of a budget of {budget}" if budget else ""))
    print_frame(flat.drop("look_at"), fmt, hint=WIDER)
    if out_file is not None:
        click.echo(f"wrote {out_file}")


@cli.command(name="where")
@store_option
@click.option("--by", default="model.version", show_default=True, help="Factor whose two values are compared.")
@click.option("--baseline", required=True, help="Baseline value of --by.")
@click.option("--candidate", required=True, help="Candidate value of --by.")
@click.option("--within", multiple=True, required=True, help="Factors whose cells may drive the change (repeatable, or comma-separated).")
@click.option("--metric", default="success", show_default=True, help="The metric whose change is localized.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def where_cmd(store_path: str | None, by: str, baseline: str, candidate: str, within: tuple[str, ...], metric: str, fmt: str) -> None:
    """Which cells drive a change: each cell's share of the overall difference and a
    heterogeneity test (is the change the same everywhere?)."""
    import polars as pl

    from workbench.comparison import _metric_column, _metric_info, compared_ids, ensure_measured
    from workbench.model import parse_scalar
    from workbench.stats.attribution import where

    store = _open(store_path)
    b_val, c_val = parse_scalar(baseline), parse_scalar(candidate)
    cat = store.runs()
    if ensure_measured(store, run_ids=compared_ids(cat, by, b_val, c_val), metrics=[metric]):
        cat = store.runs()
    cells = [w.strip() for item in within for w in item.split(",") if w.strip()]
    kind = "rate" if _metric_info(metric)[0] == "rate" else "continuous"
    table = where(cat, by=by, baseline=b_val, candidate=c_val, within=cells, column=_metric_column(cat, metric), kind=kind)
    if fmt == "table":
        top = table.row(0, named=True) if table.height else None
        if top is not None:
            click.echo(f"{metric}: {candidate} − {baseline} = {top['overall']:.3f} overall; heterogeneity p = {top['heterogeneity_p']:.3g}")
        table = table.drop("overall", "heterogeneity_df", "heterogeneity_statistic", "heterogeneity_p").with_columns(
            pl.col(pl.Float64).round(4))
    print_frame(table, fmt, hint=WIDER)


@cli.command(name="readers")
def readers_cmd() -> None:
    """List the installed log readers."""
    from workbench.io.registry import readers

    for name, reader in sorted(readers().items()):
        click.echo(f"{name:<12} {reader.description}")


@cli.command()
@store_option
@click.option("--samples", type=click.Path(path_type=Path), default=None, help="Sample folder [default: data/samples].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where the report and the Rerun recording go.")
def demo(store_path: str | None, samples: Path | None, out_dir: Path) -> None:
    """The guided tour: ingest the samples, grade, compare, report, replay."""
    from workbench.demo import tour

    code = tour(store_path or "workbench-store", samples=samples, out_dir=out_dir, echo=click.echo,
                progress=sys.stderr.isatty())
    sys.exit(code)


@cli.group()
def samples() -> None:
    """Generate the simulated sample campaign."""


@samples.command("generate")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--runs", type=int, default=None, help="Number of runs [default: the full grid, 10 seeds per cell].")
@click.option("--duration", type=float, default=None, help="Seconds per run [default: the profile's].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--profile", type=click.Choice(["compact", "full"]), default="compact", show_default=True,
              help="compact: modest rates for the committed samples; full: 200-500 Hz sensors.")
def samples_generate(out: Path, runs: int | None, duration: float | None, seed: int, profile: str) -> None:
    """Write a deterministic campaign of MCAP (and ROS 1 bag) logs with known effects."""
    from workbench.samples import generate

    truth = generate(out, runs=runs, duration_s=duration, seed=seed, profile=profile, progress=sys.stderr.isatty())
    click.echo(f"wrote {len(truth['runs'])} runs to {out} (truth in {out / 'truth.json'})")


@samples.command("fleet")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (fleet/ is written in it).")
@click.option("--policies", type=click.IntRange(2, 6), default=4, show_default=True, help="Policies ckpt-1 … ckpt-N.")
@click.option("--units", type=click.IntRange(min=2), default=5, show_default=True, help="Arms the real runs use; the last is the outlier.")
@click.option("--sim-seeds", type=click.IntRange(min=1), default=40, show_default=True, help="Simulated runs per policy.")
@click.option("--real-seeds", type=click.IntRange(min=1), default=25, show_default=True, help="Real runs per policy (on the first sim seeds).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def samples_fleet(out: Path, policies: int, units: int, sim_seeds: int, real_seeds: int, seed: int, workers: int) -> None:
    """Write a fleet campaign: k policies, arms with a planted outlier, sim and real with a planted gap."""
    from workbench.samples.fleet import FLEET_DIR, generate_fleet

    truth = generate_fleet(out, policies=policies, units=units, sim_seeds=sim_seeds, real_seeds=real_seeds, seed=seed,
                           workers=workers)
    click.echo(f"wrote {len(truth['runs'])} runs to {out / FLEET_DIR} (truth in {out / FLEET_DIR / 'truth.json'}): "
               f"outlier {truth['outlier_unit']}, sim-to-real gap on {truth['sim_to_real_gap_policy']}")


from workbench.events.cli import events, label, mark  # noqa: E402
from workbench.export_cli import export  # noqa: E402
from workbench.factors_cli import factors  # noqa: E402
from workbench.fleet_cli import rank_cmd, simreal_cmd, units_cmd  # noqa: E402
from workbench.metrics.roles_cli import roles  # noqa: E402
from workbench.moments_cli import find_cmd  # noqa: E402
from workbench.report_cli import report  # noqa: E402  (feature commands live with their feature)
from workbench.trends_cli import trends_cmd  # noqa: E402
from workbench.ui.cli import serve  # noqa: E402
from workbench.viz.rerun_cli import view  # noqa: E402

cli.add_command(view)
cli.add_command(report)
cli.add_command(serve)
cli.add_command(factors)
cli.add_command(events)
cli.add_command(label)
cli.add_command(mark)
cli.add_command(roles)
cli.add_command(find_cmd)
cli.add_command(trends_cmd)
cli.add_command(rank_cmd)
cli.add_command(export)
cli.add_command(units_cmd)
cli.add_command(simreal_cmd)

# --------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    os.environ.setdefault("RERUN_NOTEBOOK_ASSET", "inline")
    cli.main(args=argv, prog_name="workbench")



if __name__ == "__main__":  # pragma: no cover
    main()
