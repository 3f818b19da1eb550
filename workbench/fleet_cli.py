"""``workbench rank``, ``workbench units`` and ``workbench simreal`` (registered by ``workbench.cli``)."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["rank_cmd", "simreal_cmd", "units_cmd"]

_store = click.option("--store", "store_path", default=None, metavar="DIR",
                      help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
_where = click.option("--where", default=None, metavar="EXPR", help="Only runs matching this condition (as `workbench runs --where`).")
_fmt = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)


def _split(items: tuple[str, ...]) -> list[str]:
    return [w.strip() for item in items for w in item.split(",") if w.strip()]


def _source(store_path: str | None, where: str | None) -> Any:
    from workbench.model import ConfigError
    from workbench.store import open_store

    store = open_store(store_path, create=False)
    if not where:
        return store
    cat = store.runs(where=where)
    if cat.height == 0:
        msg = f"no run matches --where {where!r}"
        raise ConfigError(msg)
    return cat


def _printed(res: Any, rows: Any, fmt: str) -> bool:
    """Print *res* as JSON, or its *rows* as CSV (run ids space-separated); False for a table."""
    import polars as pl

    from workbench.textable import print_frame

    if fmt == "json":
        click.echo(json.dumps(res.to_dict(), indent=1, default=str))
        return True
    if fmt == "csv":
        print_frame(rows.with_columns(pl.col("run_ids").list.join(" ")), fmt)
        return True
    return False


def _interval(lo: str, hi: str, digits: int = 3) -> Any:
    import polars as pl

    return pl.format("[{}, {}]", pl.col(lo).round(digits), pl.col(hi).round(digits))


@click.command("rank")
@_store
@click.option("--by", default="model.version", show_default=True, help="The factor whose values are ranked.")
@click.option("--metric", default="success", show_default=True, help="A rate or a number.")
@click.option("--within", multiple=True, help="Factor defining cells ranked separately (repeatable, or comma-separated).")
@click.option("--pair-by", default=None, metavar="F[,F]", help="Keys pairing runs for head-to-head comparisons [default: scenario.seed when present; '' for none].")
@click.option("--preferences", default=None, type=click.Path(exists=True, dir_okay=False),
              help="CSV or Parquet of explicit pairwise outcomes: columns a, b, winner (a, b or tie).")
@_where
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this.")
@click.option("--alpha", default=0.05, show_default=True, help="Family-wise level of the pairwise comparisons (Holm per cell).")
@click.option("--boot", "n_boot", default=500, show_default=True, type=click.IntRange(min=0), help="Bootstrap replicates of the rank probabilities.")
@_fmt
def rank_cmd(store_path: str | None, by: str, metric: str, within: tuple[str, ...], pair_by: str | None,
             preferences: str | None, where: str | None, min_grade: str | None, alpha: float, n_boot: int, fmt: str) -> None:
    """Rank the values of a factor (checkpoints, policies) on a metric: rates or means
    with intervals, letters (shared letter: no significant difference), a Bradley–Terry
    strength from paired runs and the probability of each rank.

    \b
    Examples:
      workbench rank --by model.version
      workbench rank --by model.checkpoint --metric duration_s --within environment.surface
    """
    import polars as pl

    from workbench.ranking import rank
    from workbench.textable import print_frame

    prefs = None
    if preferences:
        prefs = pl.read_parquet(preferences) if preferences.endswith(".parquet") else pl.read_csv(preferences)
    res = rank(_source(store_path, where), by=by, metric=metric, within=_split(within),
               pair_by=None if pair_by is None else _split((pair_by,)), preferences=prefs, alpha=alpha,
               min_grade=min_grade, n_boot=n_boot)
    if _printed(res, res.table, fmt):
        return
    shown = res.table.select(*res.within, res.by, "n", pl.col("value").round(3).alias(res.metric + (" rate" if res.kind == "rate" else "")),
                             _interval("lo", "hi").alias("95% interval"), "letters", pl.col("strength").round(3).alias("BT strength"),
                             pl.col("p_best").round(3).alias("P(best)"), pl.col("run_ids").list.head(2).list.join(" ").alias("first runs"))
    print_frame(shown, fmt)
    click.echo(res.summary())


@click.command("units")
@_store
@click.option("--group", "groups", multiple=True, default=("hardware.unit",), show_default=True,
              help="Grouping factor whose values are the units (repeatable): hardware.unit, environment.site, operator, day …")
@click.option("--metric", default="success", show_default=True, help="A rate or a number.")
@click.option("--within", multiple=True, help="Factor defining cells analysed separately, e.g. model.version.")
@_where
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this.")
@click.option("--alpha", default=0.05, show_default=True, help="Level of the test of equal units and of the outlier flags.")
@_fmt
def units_cmd(store_path: str | None, groups: tuple[str, ...], metric: str, within: tuple[str, ...], where: str | None,
              min_grade: str | None, alpha: float, fmt: str) -> None:
    """How much a metric varies between units that should be identical: the share of
    variation between units (intra-class correlation), each unit's shrunken estimate,
    outlying units, and whether the logged factors explain the spread.

    \b
    Examples:
      workbench units --group hardware.unit --within model.version
      workbench units --metric duration_s --group environment.site
    """
    import polars as pl

    from workbench.textable import print_frame
    from workbench.units import variation

    res = variation(_source(store_path, where), metric=metric, groups=_split(groups), within=_split(within), alpha=alpha,
                    min_grade=min_grade)
    if _printed(res, res.units, fmt):
        return
    shown = res.units.select(*res.within, "group", "unit", "n", pl.col("raw").round(3), pl.col("shrunk").round(3),
                             _interval("lo", "hi").alias("95% interval"), pl.col("residual").round(2),
                             pl.when(pl.col("flag")).then(pl.lit("outlying")).otherwise(pl.lit("")).alias("flag"))
    print_frame(shown, fmt)
    click.echo(res.summary())


@click.command("simreal")
@_store
@click.option("--by", default="model.version", show_default=True, help="The policy factor.")
@click.option("--metric", default="success", show_default=True, help="A rate or a number.")
@click.option("--domain", default="environment.domain", show_default=True, help="The factor saying sim or real.")
@click.option("--sim", "sim_value", default="sim", show_default=True, help="Its value for simulated runs.")
@click.option("--real", "real_value", default="real", show_default=True, help="Its value for real runs.")
@click.option("--pair-by", default=None, metavar="F[,F]", help="Keys pairing a real run with the simulated run of the same scenario [default: scenario.seed].")
@_where
@click.option("--min-grade", default=None, type=click.Choice(list("ABCDF")), help="Leave out runs graded below this.")
@_fmt
def simreal_cmd(store_path: str | None, by: str, metric: str, domain: str, sim_value: str, real_value: str,
                pair_by: str | None, where: str | None, min_grade: str | None, fmt: str) -> None:
    """Sim against real per policy: rates with intervals, Pearson, Kendall τ and MMRV
    across policies, the pairs sim orders wrongly, and a prediction-powered estimate
    of real success (many sim runs corrected by the paired real ones).

    \b
    Examples:
      workbench simreal --by model.version
      workbench simreal --domain environment.kind --sim isaac --real lab
    """
    import polars as pl

    from workbench.sim_real import simreal
    from workbench.textable import print_frame

    res = simreal(_source(store_path, where), by=by, metric=metric, domain=domain, sim=sim_value, real=real_value,
                  pair_by=None if pair_by is None else _split((pair_by,)), min_grade=min_grade)
    if _printed(res, res.table, fmt):
        return
    shown = res.table.select(res.by, "n_sim", pl.col("sim").round(3), _interval("sim_lo", "sim_hi").alias("sim 95%"),
                             "n_real", pl.col("real").round(3), _interval("real_lo", "real_hi").alias("real 95%"),
                             pl.col("ppi").round(3).alias("prediction-powered"), _interval("ppi_lo", "ppi_hi").alias("its 95%"),
                             pl.col("effective_real").round(0).alias("worth real runs"))
    print_frame(shown, fmt)
    click.echo(res.summary())
