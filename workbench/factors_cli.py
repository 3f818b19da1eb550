"""``workbench factors``: change run factors after ingest (registered by ``workbench.cli``).

``workbench factors set --from labels.csv --on scenario.episode`` joins a user's table
into the runs it names (see :meth:`workbench.store.Store.set_factors`): every row or
none, recorded in provenance, kept by ``workbench rebuild``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["factors"]


@click.group("factors")
def factors() -> None:
    """Set run factors from a table after ingest."""


@factors.command("set")
@click.option("--from", "table", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="CSV, TSV or Parquet table: key column(s) plus factor columns named group.name.")
@click.option("--on", "on", multiple=True, required=True, metavar="COLUMN",
              help="Key column, named like a catalog column (scenario.episode, run_id, name, source); "
                   "repeatable or comma-separated when one key is ambiguous.")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--source", default=None, metavar="LABEL",
              help="Origin recorded in provenance as table:LABEL [default: the file's absolute path].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def set_factors(table: Path, on: tuple[str, ...], store_path: str | None, source: str | None, as_json: bool) -> None:
    """Join factor columns of FILE into the runs its key column(s) name.

    Every row must name exactly one run, and each run at most once; otherwise nothing
    is changed and the offending rows are named (exit 1). Empty cells set nothing.
    """
    from workbench.store import open_store

    keys = [k.strip() for item in on for k in item.split(",") if k.strip()]
    store = open_store(store_path, create=False)
    result = store.set_factors(table, on=keys, source=source)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
        return
    click.echo(
        f"updated {len(result.updated)} run(s), {len(result.unchanged)} already up to date; "
        f"set {', '.join(result.columns)} from {table} (keyed on {', '.join(result.on)})"
    )
