"""How many runs a comparison needs: per cell, what it can detect now and what it would take.

:func:`plan` reads the same cells as :func:`workbench.comparison.compare` (the gate's
primary rate, ``success`` by default) and answers, per cell, with the exact power of
the one-sided exact test (:mod:`workbench.stats.plan`):

* ``mde_now`` -- the smallest drop in success rate detected with the target power at
  the runs each side has now;
* ``runs_needed`` -- runs per side to detect a drop of *drop* with that power, at the
  baseline's observed rate;
* ``more_runs_per_arm`` -- for a cell the gate left undecided, how many more runs per
  side would probably decide it (predictive power given the data so far).

The cell's level is the family-wise α split by Bonferroni over the gate's measured
cells: the gate's step-down test is never less powerful (score-ordered Holm first
gives every cell its Bonferroni share; discrete Holm contains Holm), so the plan errs
on the side of more runs.

Examples
--------
>>> import polars as pl
>>> cat = pl.DataFrame({"run_id": [f"r{i}" for i in range(40)], "model.version": ["v1"] * 20 + ["v2"] * 20,
...                     "metrics.success": [1.0] * 18 + [0.0] * 2 + [1.0] * 15 + [0.0] * 5})
>>> row = plan(cat, drop=0.2).row(0, named=True)
>>> row["verdict"], row["n_base"], row["runs_needed"] > 20
('undecided', 20, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.model import ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.comparison import CompareResult
    from workbench.store import Store

__all__ = ["plan", "plan_result"]


def plan(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | None = None,
    metric: str = "success",
    drop: float = 0.1,
    power: float = 0.8,
    alpha: float = 0.05,
    min_grade: str | None = None,
) -> pl.DataFrame:
    """Per cell: the drop detectable now, runs needed for *drop*, more runs to decide.

    Parameters
    ----------
    source, by, baseline, candidate, within, min_grade
        As for :func:`workbench.comparison.compare`.
    metric
        The rate planned for (a metric of kind ``rate``; default ``success``).
    drop
        The drop in success rate to plan for (absolute: ``0.1`` = 10 points).
    power
        Target power.
    alpha
        The gate's family-wise one-sided level.

    Returns
    -------
    polars.DataFrame
        One row per cell: the *within* factors, ``verdict`` (the gate's), the counts
        ``k_base``, ``n_base``, ``k_cand``, ``n_cand``, ``p_base``, ``alpha_cell``,
        ``mde_now``, ``runs_needed``, ``more_runs_per_arm``.

    Raises
    ------
    ConfigError
        *metric* is not a rate, or nothing is measured (naming what the runs lack).
    """
    from workbench.comparison import compare

    res = compare(source, by=by, baseline=baseline, candidate=candidate, within=within, metrics=[metric],
                  primary=[metric], min_grade=min_grade, alpha=alpha, attribution_factors=[])
    return plan_result(res, metric=metric, drop=drop, power=power)


def plan_result(res: CompareResult, *, metric: str = "success", drop: float = 0.1, power: float = 0.8) -> pl.DataFrame:
    """:func:`plan` for a comparison already made (its cells, counts, verdicts and α).

    Parameters
    ----------
    res
        A :class:`~workbench.comparison.CompareResult` whose metrics include *metric*.
    metric, drop, power
        As for :func:`plan`.

    Returns
    -------
    polars.DataFrame
        As :func:`plan`.

    Raises
    ------
    ConfigError
        *metric* is not in *res*, is not a rate, or nothing of it is measured.

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.comparison import compare
    >>> cat = pl.DataFrame({"run_id": [f"r{i}" for i in range(40)], "model.version": ["v1"] * 20 + ["v2"] * 20,
    ...                     "metrics.success": [1.0] * 18 + [0.0] * 2 + [1.0] * 15 + [0.0] * 5})
    >>> plan_result(compare(cat, metrics=["success"]), drop=0.2)["runs_needed"].to_list() == plan(cat, drop=0.2)["runs_needed"].to_list()
    True
    """
    import polars as pl

    from workbench.comparison import NOT_MEASURED
    from workbench.stats.plan import plan_table

    if metric not in res.table["metric"].unique().to_list():
        msg = f"plan: the comparison has no metric {metric!r}; it has: {', '.join(sorted(set(res.table['metric'].to_list())))}"
        raise ConfigError(msg)
    rows = res.table.filter((pl.col("metric") == metric) & (pl.col("verdict") != NOT_MEASURED))
    if rows.height and rows["kind"][0] != "rate":
        msg = f"plan works on a rate (a metric of kind rate, e.g. success); {metric!r} is {rows['kind'][0]}"
        raise ConfigError(msg)
    if rows.height == 0:
        msg = f"nothing to plan: {res.missing_text() or 'no cell has runs on both sides'}"
        raise ConfigError(msg)
    alpha = res.alpha
    cells = []
    for r in rows.iter_rows(named=True):
        kb, kc = round(r["baseline"] * r["n_baseline"]), round(r["candidate"] * r["n_candidate"])
        cells.append({"cell": tuple(r[w] for w in res.within), "k_base": int(kb), "n_base": int(r["n_baseline"]),
                      "k_cand": int(kc), "n_cand": int(r["n_candidate"])})
    table = plan_table(cells, alpha=alpha, power=power, delta=drop)
    out = []
    for r, p in zip(rows.iter_rows(named=True), table, strict=True):
        out.append({**{w: r[w] for w in res.within}, "verdict": r["verdict"],
                    **{k: p[k] for k in ("k_base", "n_base", "k_cand", "n_cand", "p_base", "alpha_cell", "mde_now",
                                         "runs_needed", "more_runs_per_arm")}})
        if r["verdict"] != "undecided":
            out[-1]["more_runs_per_arm"] = None
    schema = {"mde_now": pl.Float64, "runs_needed": pl.Int64, "more_runs_per_arm": pl.Int64, "p_base": pl.Float64,
              "alpha_cell": pl.Float64}
    return pl.DataFrame(out, schema_overrides=schema)
