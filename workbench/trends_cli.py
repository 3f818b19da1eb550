"""``workbench trends``: a metric per day, week or factor value, and when it changed (registered by ``workbench.cli``)."""

from __future__ import annotations

import click

__all__ = ["trends_cmd"]


@click.command("trends")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--metric", default="success", show_default=True, help="Metric per window (a rate or a number).")
@click.option("--over", default="auto", show_default=True, metavar="WINDOW",
              help="hour, day, week, month of run start (UTC), auto, or a factor column such as model.checkpoint.")
@click.option("--within", multiple=True, help="Factor defining cells, each its own series (repeatable, or comma-separated).")
@click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition (as `workbench runs --where`).")
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this.")
@click.option("--alpha", default=0.05, show_default=True, help="Level of the change test (Holm across cells).")
@click.option("--min-size", default=5, show_default=True, type=click.IntRange(min=1), help="Fewest runs on each side of a change.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--wide", is_flag=True, help="Every column at full width.")
def trends_cmd(store_path: str | None, metric: str, over: str, within: tuple[str, ...], where: str | None,
               min_grade: str | None, alpha: float, min_size: int, fmt: str, wide: bool) -> None:
    """A metric per time window per cell: interval, control chart (p-chart for rates)
    and the runs from which behavior changed (permutation test, Holm across cells).

    Each window lists its first runs; `workbench show RUN` opens one.

    \b
    Examples:
      workbench trends --over week --within hardware.robot
      workbench trends --metric duration_s --over model.checkpoint
    """
    import polars as pl

    from workbench.store import open_store
    from workbench.textable import print_frame
    from workbench.trends import trend

    store = open_store(store_path, create=False)
    cells = [w.strip() for item in within for w in item.split(",") if w.strip()]
    source = store.runs(where=where) if where else store
    if isinstance(source, pl.DataFrame) and source.height == 0:
        from workbench.model import ConfigError

        msg = f"no run matches --where {where!r}"
        raise ConfigError(msg)
    res = trend(source, metric=metric, over=over, within=cells, min_grade=min_grade, alpha=alpha, min_size=min_size)
    if fmt != "table":
        out = res.table.with_columns(pl.col("run_ids").list.join(" "))  # CSV holds no lists
        print_frame(out, fmt)
        return
    digits = 3
    shown = res.table.select(
        *res.within, pl.col("window").alias(res.over), "n",
        pl.col("value").round(digits).alias(res.metric + (" rate" if res.kind == "rate" else "")),
        pl.format("[{}, {}]", pl.col("lo").round(digits), pl.col("hi").round(digits)).alias(f"{res.level:.0%} interval"),
        pl.format("{} – {}", pl.col("lcl").round(digits), pl.col("ucl").round(digits)).alias("control limits"),
        pl.when(pl.col("change")).then(pl.lit("change"))
          .when(pl.col("out_of_control")).then(pl.lit("out of limits")).otherwise(pl.lit("")).alias("flag"),
        pl.col("run_ids").list.head(3).list.join(" ").alias("first runs"),
    )
    print_frame(shown, fmt, wide=wide)
    click.echo(res.summary())
