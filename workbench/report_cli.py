"""The ``workbench report`` command (registered on the ``workbench`` group by ``workbench.cli``).

Kept in its own module so that the report's heavy imports (HoloViews, Bokeh) are
only paid when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report"]


@click.command(name="report")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--by", default="model.version", show_default=True, help="Factor whose two values are compared.")
@click.option("--baseline", default=None, help="Baseline value of --by.")
@click.option("--candidate", default=None, help="Candidate value of --by.")
@click.option("--within", multiple=True, help="Factor defining cells (repeatable, or comma-separated).")
@click.option("--metric", "names", multiple=True, help="Metric to compare (repeatable) [default: the standard set].")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition.")
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this.")
@click.option("--alpha", default=0.05, show_default=True, help="Family-wise error rate (Holm).")
@click.option("--title", default=None, help="Title of the report.")
@click.option("--trend-over", default="auto", show_default=True, metavar="WINDOW",
              help="Windows of the trends section: auto, hour, day, week, month, a factor column, or none.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar while missing metrics or grades are computed [default: on a terminal].")
def report(
    store_path: str | None,
    by: str,
    baseline: str | None,
    candidate: str | None,
    within: tuple[str, ...],
    names: tuple[str, ...],
    where: str | None,
    min_grade: str | None,
    alpha: float,
    title: str | None,
    trend_over: str,
    out: Path,
    progress: bool | None,
) -> None:
    """Write a self-contained HTML report of a comparison (opens offline, no network).

    Metrics that the compared runs lack, and data grades, are computed first and kept
    in the catalog.
    """
    import sys

    from workbench.model import parse_scalar
    from workbench.reporting import report as write_report
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    cells = [w.strip() for item in within for w in item.split(",") if w.strip()]
    path = write_report(
        store,
        by=by,
        baseline=None if baseline is None else parse_scalar(baseline),
        candidate=None if candidate is None else parse_scalar(candidate),
        within=cells,
        metrics=list(names) or None,
        where=where,
        min_grade=min_grade,
        alpha=alpha,
        title=title,
        trend_over=None if trend_over.lower() == "none" else trend_over,
        out=out,
        progress=sys.stderr.isatty() if progress is None else progress,
    )
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
