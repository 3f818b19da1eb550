"""``workbench find RULE``: every moment a rule holds across the fleet (registered by ``workbench.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["find_cmd"]


@click.command("find")
@click.argument("rule")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--rules", "rules_file", default=None, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Rules file whose events: RULE may name [default: workbench.yaml of the store folder, else of this folder].")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition (as `workbench list --where`).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Show at most N hits.")
@click.option("--count-by", "count_by", default=None, metavar="FACTOR",
              help="Hit rates per value of FACTOR: hits per hour (exact Poisson interval) and share of runs with a hit (Wilson).")
@click.option("--scheduler", default=None, help="threads (default), processes, sync, or a Dask address tcp://host:8786.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def find_cmd(rule: str, store_path: str | None, rules_file: Path | None, where: str | None, limit: int | None,
             count_by: str | None, scheduler: str | None, fmt: str, progress: bool | None) -> None:
    """Find every moment RULE holds in the runs of the store: one row per hit.

    RULE is the name of a rule in events: of workbench.yaml (or --rules FILE), or one
    rule written inline in YAML. Each hit's start_s opens it in replay:
    `workbench view RUN --at START_S --out hit.rrd`.

    \b
    Examples:
      workbench find slip --count-by environment.surface
      workbench find '{name: hard_push, signal: {norm: {stream: ft_sensor, variable: force}}, above: 30, min_duration: 0.2}'
    """
    from workbench.moments import count_by as rates
    from workbench.moments import find
    from workbench.store import open_store
    from workbench.textable import WIDER, print_frame

    store = open_store(store_path, create=False)
    show_bar = sys.stderr.isatty() if progress is None else progress
    hits = find(store, rule, rules=rules_file, where=where, scheduler=scheduler, progress=show_bar and fmt == "table")
    searched = store.runs(where=where) if where else store.runs()
    if count_by:
        print_frame(rates(hits, searched, count_by), fmt, hint=WIDER)
        return
    shown = hits.head(limit) if limit is not None else hits
    if fmt != "table":
        print_frame(shown, fmt, hint=WIDER)
        return
    if hits.height == 0:
        click.echo(f"no hit in {searched.height} run(s)")
        return
    print_frame(shown.drop("start", "end", "detail"), fmt, hint=WIDER)
    more = f" (showing {shown.height})" if shown.height < hits.height else ""
    click.echo(f"{hits.height} hit(s) in {hits['run_id'].n_unique()} of {searched.height} run(s){more}; "
               f"replay one: workbench view {hits['run_id'][0]} --at {hits['start_s'][0]:.3f} --out hit.rrd")
