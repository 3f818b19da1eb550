"""``workbench roles RUN``: what each role resolved to on a run, and why (registered by ``workbench.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["roles"]


@click.command("roles")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--roles", "roles_file", default=None, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="YAML file with a roles: section [default: workbench.yaml of the store folder, else of this folder].")
@click.option("--all", "show_all", is_flag=True, help="Also list the roles not found.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def roles(run_ids: tuple[str, ...], store_path: str | None, roles_file: Path | None, show_all: bool, as_json: bool) -> None:
    """Show where each metric input (role) of RUN comes from: stream, variable,
    components, and why (a format default or a roles: override); with --all, the roles
    not found and where they were looked for. Exit 1 when an override does not fit."""
    from workbench.metrics import metrics
    from workbench.metrics.roles import ROLES, Binding, configured_roles, resolve_all
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    cfg = configured_roles(store, roles_file)
    users: dict[str, list[str]] = {}
    for m in metrics().values():
        for r in getattr(m, "roles", ()):
            users.setdefault(r, []).append(m.name)
    out: list[dict[str, Any]] = []
    for rid in store.resolve_runs(list(run_ids)):
        run = store.load(rid, lazy=True, indexes=False)
        names = list(dict.fromkeys([*ROLES, *(o.role for o in cfg.overrides)]))
        found = resolve_all(run, cfg, names)
        rows = []
        for role, b in found.items():
            if isinstance(b, Binding):
                rows.append({"role": role, "found": True, "signal": b.describe(), "components": list(b.names),
                             "why": b.why, "metrics": users.get(role, [])})
            elif show_all:
                rows.append({"role": role, "found": False, "signal": None, "components": [], "why": str(b),
                             "metrics": users.get(role, [])})
        out.append({"run_id": rid, "name": run.info.name, "reader": run.info.provenance.reader,
                    "roles_from": cfg.origin, "roles": rows})
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    for item in out:
        click.secho(f"run {item['run_id']}  {item['name']}  (reader {item['reader']}; overrides: {item['roles_from']})", bold=True)
        if not any(r["found"] for r in item["roles"]):
            click.echo("  no role found: map them under roles: in workbench.yaml (see `workbench roles --help`)")
        for r in item["roles"]:
            comps = ", ".join(r["components"][:8]) + (" …" if len(r["components"]) > 8 else "")
            used = f"  → {', '.join(r['metrics'])}" if r["metrics"] else ""
            if r["found"]:
                click.echo(f"  {r['role']:<22} {r['signal']:<48} [{comps}]  {r['why']}{used}")
            else:
                click.echo(f"  {r['role']:<22} {'—':<48} {r['why']}{used}")
