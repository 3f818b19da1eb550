"""``workbench export``: selected runs out as a dataset (registered by ``workbench.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["export"]


@click.group()
def export() -> None:
    """Write selected runs (or the moments around rule hits) as a dataset."""


def _selection_options(fn: Any) -> Any:
    """The options every export takes to select runs or moments."""
    for opt in reversed([
        click.option("--out", type=click.Path(path_type=Path), required=True, help="A new or empty folder."),
        click.option("--store", "store_path", default=None, metavar="DIR",
                     help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store]."),
        click.option("--where", default=None, metavar="EXPR", help="Catalog condition, as `workbench runs --where`."),
        click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this."),
        click.option("--outcome", "outcomes", multiple=True, type=click.Choice(["success", "failure", "unknown"]),
                     help="Keep runs with this outcome (repeatable)."),
        click.option("--find", "find_rule", default=None, metavar="RULE",
                     help="Export the windows around each hit of this rule (a name in workbench.yaml, inline YAML, or a kind of event)."),
        click.option("--window", default=1.0, show_default=True, metavar="SECONDS", help="Padding around each hit."),
    ]):
        fn = opt(fn)
    return fn


def _selection(store_path: str | None, where: str | None, min_grade: str | None, outcomes: tuple[str, ...],
               find_rule: str | None, window: float) -> tuple[Any, Any]:
    from workbench.selection import select
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    return store, select(store, where=where, min_grade=min_grade, outcome=list(outcomes) or None, find=find_rule,
                         window=window if find_rule else 0.0)


@export.command("mcap")
@_selection_options
def export_mcap_cmd(out: Path, store_path: str | None, where: str | None, min_grade: str | None, outcomes: tuple[str, ...],
                    find_rule: str | None, window: float) -> None:
    """One MCAP per run or moment: cut from the source MCAP with its original schemas, or
    written from the stored streams as JSON.

    \b
    Examples:
      workbench export mcap --out moments/ --find slip --window 2
      workbench export mcap --out failures/ --outcome failure --where "hardware.robot = 'arm-b'"
    """
    from workbench.export_mcap import export_mcap

    store, sel = _selection(store_path, where, min_grade, outcomes, find_rule, window)
    click.echo(str(export_mcap(store, sel, out)))


@export.command("lerobot")
@_selection_options
@click.option("--fps", type=click.IntRange(min=1), default=None, help="Frame rate [default: the state stream's rate].")
@click.option("--feature", "features", multiple=True, metavar="NAME=STREAM/VAR",
              help="Source of a feature, e.g. observation.state=joint_states/position (repeatable).")
@click.option("--no-video", is_flag=True, help="Leave the cameras out.")
def export_lerobot_cmd(out: Path, store_path: str | None, where: str | None, min_grade: str | None, outcomes: tuple[str, ...],
                       find_rule: str | None, window: float, fps: int | None, features: tuple[str, ...], no_video: bool) -> None:
    """A LeRobot v3.0 dataset of the selected runs: observation.state and action from the
    metric roles, cameras as MP4, next.success / next.done / next.reward from outcomes,
    provenance per episode and a dataset card (README.md).

    \b
    Examples:
      workbench export lerobot --out datasets/v1-ok --where "model.version = 'policy-v1'" --outcome success --min-grade B
      workbench export lerobot --out datasets/slips --find slip --window 2
    """
    from workbench.export_lerobot import export_lerobot
    from workbench.model import ConfigError

    mapping = {}
    for item in features:
        key, sep, value = item.partition("=")
        if not sep or not value:
            msg = f"--feature {item!r} must look like observation.state=joint_states/position"
            raise ConfigError(msg)
        mapping[key.strip()] = value.strip()
    store, sel = _selection(store_path, where, min_grade, outcomes, find_rule, window)
    progress = None
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            click.echo(f"\r  episode {done}/{total}", nl=done == total, err=True)
    report = export_lerobot(store, sel, out, fps=fps, features=mapping, video=not no_video, progress=progress)
    click.echo(str(report))
