"""The ``workbench events`` and ``workbench label`` commands.

Registered on the main group by ``workbench.cli`` (``cli.add_command(events)``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.model import ConfigError

__all__ = ["events", "label", "mark"]

_STORE_HELP = "Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store]."


@click.group()
def events() -> None:
    """Events and outcomes from rules (YAML), applied to stored runs without re-ingesting."""


@events.command("apply")
@click.option("--store", "store_path", default=None, metavar="DIR", help=_STORE_HELP)
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Rules file (events:/outcome: sections) [default: workbench.yaml of the store folder, else of this folder].")
@click.option("--where", default=None, metavar="SQL", help="Only runs matching this catalog filter, e.g. \"reader = 'lerobot'\".")
@click.option("--scheduler", default=None, help="threads, processes, sync, or a Dask address tcp://host:8786 [default: in this process].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def apply_cmd(store_path: str | None, rules_path: Path | None, where: str | None, scheduler: str | None,
              as_json: bool, progress: bool | None) -> None:
    """Apply the rules (and the format defaults) to stored runs.

    Derived events replace the ones the previous rules made (the log's own events and
    people's labels stay); run ids never change. Prints, per rule, the events made and
    what changed, and the runs whose outcome changed.

    \b
    Examples:
      workbench events apply --rules rules.yaml
      workbench events apply --where "reader = 'lerobot'"
    """
    import sys

    from workbench.events.apply import apply_rules
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    show = sys.stderr.isatty() if progress is None else progress
    report = apply_rules(store, rules_path, where=where, scheduler=scheduler, progress=show and not as_json)
    click.echo(json.dumps(report.to_dict(), indent=1) if as_json else str(report))


@events.command("show")
@click.argument("run")
@click.option("--store", "store_path", default=None, metavar="DIR", help=_STORE_HELP)
@click.option("--origin", default=None, help="Only events of this origin: log, label, rule:NAME, default:FORMAT.NAME (prefix).")
def show_cmd(run: str, store_path: str | None, origin: str | None) -> None:
    """List a run's events with their origin (the log, a rule, a label) and its outcome."""
    from workbench.model import resolve_outcome
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    rid = store.resolve_runs([run])[0]
    r = store.load(rid, streams=[])
    ev = r.events
    if origin:
        ev = ev.filter(ev["origin"].str.starts_with(origin))
    t0 = r.info.start_ns
    for t, kind, detail, org in ev.iter_rows():
        click.echo(f"{(t - t0) / 1e9:10.3f} s  {kind:<12} {org:<28} {detail}")
    outcome, at, source = resolve_outcome(r.events)
    click.echo(f"outcome: {outcome or 'unknown'}" + (f" (from {source} at {(at - t0) / 1e9:.3f} s)" if outcome and at is not None else ""))


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--store", "store_path", default=None, metavar="DIR", help=_STORE_HELP)
@click.option("--outcome", type=click.Choice(["success", "failure", "unknown"]), default=None, help="The outcome to record.")
@click.option("--reason", default=None, metavar="TEXT", help="Why (kept in provenance).")
@click.option("--at", "at", type=float, default=None, metavar="SECONDS", help="When it happened, seconds from the run's start [default: its end].")
@click.option("--from", "from_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, metavar="FILE",
              help="Bulk labels from a CSV/Parquet table: outcome, optional reason and at, keyed by run_id or by source + episode.")
def label(runs: tuple[str, ...], store_path: str | None, outcome: str | None, reason: str | None, at: float | None,
          from_file: Path | None) -> None:
    """Label runs' outcome by hand (beats every rule; survives `events apply` and `rebuild`).

    RUN is a run id or a unique run name. Who labels is $WORKBENCH_USER, else the OS user.

    \b
    Examples:
      workbench label 0179889ce5c8dc4f --outcome failure --reason "cube dropped" --at 7.5
      workbench label --from labels.csv
    """
    from workbench.events.apply import label as do_label
    from workbench.events.apply import label_from_file
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    if from_file is not None:
        if runs or outcome:
            msg = "give either RUN… --outcome … or --from FILE, not both"
            raise ConfigError(msg)
        done = label_from_file(store, from_file)
    else:
        if not runs or outcome is None:
            msg = "give RUN… and --outcome success|failure|unknown (or --from FILE)"
            raise ConfigError(msg)
        done = do_label(store, runs, outcome, reason=reason, at=at)
    cat = store.runs().filter(store.runs()["run_id"].is_in(done))
    counts = cat["outcome"].fill_null("unknown").value_counts().sort("outcome").iter_rows()
    click.echo(f"labelled {len(done)} run(s); their outcomes: " + ", ".join(f"{k} {n}" for k, n in counts))


@click.command()
@click.argument("run")
@click.option("--store", "store_path", default=None, metavar="DIR", help=_STORE_HELP)
@click.option("--kind", required=True, help="Event kind of the window (e.g. slip, collision).")
@click.option("--from", "start", type=float, required=True, metavar="SECONDS", help="Start of the window, seconds from the run's start.")
@click.option("--to", "end", type=float, required=True, metavar="SECONDS", help="End of the window, seconds from the run's start.")
@click.option("--note", default=None, metavar="TEXT", help="What happened.")
def mark(run: str, store_path: str | None, kind: str, start: float, end: float, note: str | None) -> None:
    """Mark a time window of RUN as an event with a note (who and when are recorded).

    \b
    Example:
      workbench mark 0179889ce5c8dc4f --kind slip --from 3.2 --to 4.0 --note "cube slid in the gripper"
    """
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    m = store.mark(run, kind, start, end, note=note)
    n = store.annotations(store.resolve_runs([run])[0]).get("marks", {}).get("n")
    click.echo(f"marked {kind} from {start:g} s to {end:g} s by {m['by']} ({n} mark(s) on this run)")
