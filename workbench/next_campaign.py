"""The next campaign, planned from the evidence: which runs to do next, and why.

:func:`next_campaign` proposes factor combinations × new seeds × count, ranked by how
much each would decide, from four kinds of evidence on the store's runs:

1. **undecided cells** of the comparison of *baseline* and *candidate* (the gate's
   cells): the runs per side that would probably decide each (predictive power, as
   :func:`workbench.planning.plan`), on both sides;
2. **untested or thin combinations**: every combination of the values of the *within*
   factors and *by* seen in the catalog with fewer than *min_runs* runs;
3. **failure modes concentrated in a cell**: a cell whose failure rate is higher than
   the rest of the runs (one-sided Fisher exact test, Holm over cells): more runs
   there, with its failed runs listed as the moments to look at;
4. **outlying units** of a unit factor (``hardware.unit``, ``hardware.robot``,
   :func:`workbench.units.variation`): runs on that unit to confirm or clear it.

Each line has a priority (decisions first, then the other kinds), the runs it asks
for, new seeds (after the highest seed used in that cell) and a sentence saying why.
With a *budget*, runs are handed out *min_runs* at a time, round robin over the lines in
priority order (breadth first: a failure mode is not crowded out by a cell that needs
hundreds of runs, and both sides of a cell grow together).

Examples
--------
>>> import polars as pl
>>> rows = [{"run_id": f"{v}-{l}-{s}", "model.version": v, "environment.lighting": l, "scenario.seed": s,
...          "metrics.success": float(s % 4 != 0)} for v in ("v1", "v2") for l in ("bright", "dim") for s in range(8)]
>>> cat = pl.DataFrame(rows).filter(~((pl.col("environment.lighting") == "dim") & (pl.col("model.version") == "v2")))
>>> plan = next_campaign(cat, within=["environment.lighting"], min_runs=5)
>>> plan.filter(pl.col("kind") == "untested")["environment.lighting"].to_list()
['dim']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.model import ConfigError

if TYPE_CHECKING:
    import polars as pl

    from workbench.store import Store

__all__ = ["KINDS", "next_campaign"]

KINDS = ("undecided", "untested", "failures", "outlier unit")
"""Kinds of proposal, highest priority first."""


def _seeds(cat: pl.DataFrame, cell: dict[str, Any], count: int) -> list[int]:
    import polars as pl

    part = cat
    for k, v in cell.items():
        if k in part.columns:
            part = part.filter(pl.col(k) == v)
    used = 0
    if "scenario.seed" in part.columns and part.height:
        vals = part["scenario.seed"].cast(pl.Int64, strict=False).drop_nulls()
        top = vals.max()
        used = int(top) + 1 if isinstance(top, int | float) else 0
    return list(range(used, used + count))


def next_campaign(
    source: Store | pl.DataFrame,
    *,
    by: str = "model.version",
    baseline: Any = None,
    candidate: Any = None,
    within: Sequence[str] | str | None = None,
    metric: str = "success",
    budget: int | None = None,
    min_runs: int = 5,
    unit: str | None = None,
    alpha: float = 0.05,
    max_per_line: int = 60,
) -> pl.DataFrame:
    """Proposed runs, one line per factor combination (see the module doc).

    Parameters
    ----------
    source
        A store (the metric computed where missing) or a catalog.
    by, baseline, candidate, within, metric
        The comparison whose undecided cells are to be decided (as
        :func:`workbench.comparison.compare`; two values of *by* needed for kind 1).
    budget
        Total runs available (default: every proposal in full).
    min_runs
        A combination with fewer runs is proposed as thin (up to this many).
    unit
        The unit factor for kind 4 (default: ``hardware.unit`` or ``hardware.robot``).
    alpha
        Level of the failure-concentration tests (Holm) and of the unit outliers.
    max_per_line
        At most this many runs on one line (a cell the data cannot decide soon).

    Returns
    -------
    polars.DataFrame
        ``priority``, ``kind``, the factor columns, ``count``, ``seeds`` (list),
        ``why``, ``look_at`` (run ids of the moments to look at).

    Raises
    ------
    ConfigError
        An unknown factor, or a budget below 1.
    """
    import polars as pl
    from scipy import stats

    from workbench.ranking import metric_frame
    from workbench.stats.multiplicity import holm

    if isinstance(within, str):
        within = [w.strip() for w in within.split(",") if w.strip()]
    within = list(within or [])
    if budget is not None and budget < 1:
        msg = f"budget must be at least 1 run, got {budget}"
        raise ConfigError(msg)
    frame, kind, _u, higher = metric_frame(source, metric, needs=[by, *within])
    cat = frame
    keys = [*within, by]
    lines: list[dict[str, Any]] = []

    def add(kind_: str, cell: dict[str, Any], count: int, why: str, score: float, look: list[str] | None = None) -> None:
        count = int(min(max_per_line, max(1, count)))
        shared = {k: v for k, v in cell.items() if k != by}  # both sides of a cell get the same new seeds (pairs)
        lines.append({"kind": kind_, **{k: cell.get(k) for k in keys}, "count": count, "seeds": _seeds(cat, shared, count),
                      "why": why, "look_at": look or [], "_score": score})

    # 1. undecided cells of the comparison
    values = sorted(cat[by].drop_nulls().cast(pl.String).unique().to_list())
    if baseline is None and candidate is None and len(values) == 2:
        baseline, candidate = values
    if baseline is not None and candidate is not None and kind == "rate":
        from workbench.comparison import compare
        from workbench.planning import plan_result

        try:
            res = compare(cat, by=by, baseline=baseline, candidate=candidate, within=within, metrics=[metric],
                          primary=[metric], attribution_factors=[])
            table = plan_result(res, metric=metric)
        except ConfigError:
            table = None
        if table is not None:
            for r in table.filter(pl.col("verdict") == "undecided").iter_rows(named=True):
                more = r.get("more_runs_per_arm")
                cell = {w: r[w] for w in within}
                if more is not None and not (isinstance(more, float) and math.isnan(more)):
                    why = (f"undecided cell: about {int(more)} more runs a side would probably decide "
                           f"{candidate} vs {baseline} here (now {r['n_base']} vs {r['n_cand']} runs)")
                    score = 1000 - int(more)
                else:  # the data so far point to no decision soon: runs to detect a 10-point drop
                    need = r.get("runs_needed")
                    if need is None:
                        continue
                    more = max(0, int(need) - min(int(r["n_base"]), int(r["n_cand"])))
                    if more == 0:
                        continue
                    why = (f"undecided cell with no sign of a difference: detecting a 10-point drop needs {int(need)} runs "
                           f"a side (now {r['n_base']} vs {r['n_cand']}); this line adds up to {max_per_line}")
                    score = 900 - int(more)
                for side in (baseline, candidate):
                    add("undecided", {**cell, by: side}, int(more), why, score)
    # 2. untested or thin combinations
    levels = [sorted(cat[k].drop_nulls().unique().to_list(), key=str) for k in keys]
    counts = {tuple(row[:-1]): row[-1] for row in cat.group_by(keys).len().iter_rows()} if keys else {}
    for combo in itertools.product(*levels):
        have = int(counts.get(tuple(combo), 0))
        if have < min_runs:
            cell = dict(zip(keys, combo, strict=True))
            what = "never tested" if have == 0 else f"only {have} run(s)"
            add("untested", cell, min_runs - have, f"combination {what}: {min_runs} runs give it a first estimate", 500 - have)
    # 3. failures concentrated in a cell (rates)
    if kind == "rate" and within:
        fails = cat.with_columns(((pl.col("value") < 0.5) if higher else (pl.col("value") >= 0.5)).alias("_fail"))
        total_f, total_n = int(fails["_fail"].sum()), fails.height
        groups = fails.group_by(keys).agg(pl.col("_fail").sum().alias("f"), pl.len().alias("n"),
                                          pl.col("run_id").filter(pl.col("_fail")).alias("ids"))
        ps, rows = [], []
        for r in groups.iter_rows(named=True):
            f, n = int(r["f"]), int(r["n"])
            rest_f, rest_n = total_f - f, total_n - n
            if n == 0 or rest_n == 0 or f == 0:
                continue
            p = stats.fisher_exact([[f, n - f], [rest_f, rest_n - rest_f]], alternative="greater").pvalue
            ps.append(float(p))
            rows.append(r)
        if ps:
            adj = holm(ps, alpha=alpha).adjusted
            for r, pa in zip(rows, adj, strict=True):
                if pa <= alpha:
                    cell = {k: r[k] for k in keys}
                    rate = r["f"] / r["n"]
                    add("failures", cell, max(min_runs, r["n"] // 2),
                        f"failures concentrate here: {r['f']} of {r['n']} runs ({rate:.0%}) against "
                        f"{total_f - r['f']} of {total_n - r['n']} elsewhere (Holm p={pa:.2g}); more runs to learn why",
                        200 + r["f"], list(r["ids"])[:10])
    # 4. outlying units
    unit = unit or next((u for u in ("hardware.unit", "hardware.robot") if u in cat.columns and cat[u].n_unique() >= 3), None)
    if unit is not None and unit in cat.columns:
        from workbench.units import variation

        try:
            var = variation(cat, metric=metric, groups=[unit], alpha=alpha)
        except ConfigError:
            var = None
        if var is not None:
            for r in var.units.filter(pl.col("flag")).iter_rows(named=True):
                add("outlier unit", {unit: r["unit"]} if unit in keys else {}, min_runs,
                    f"{unit} {r['unit']} stands out ({metric} {r['raw']:.2f} against the fleet's "
                    f"{var.components['center'][0]:.2f}): {min_runs} runs on it to confirm or clear it", 100,
                    list(r["run_ids"])[:10])
                if unit not in keys:
                    lines[-1][unit] = r["unit"]
    if not lines:
        cols: dict[str, Any] = {"priority": pl.Int64, "kind": pl.String, **dict.fromkeys(keys, pl.String), "count": pl.Int64,
                "seeds": pl.List(pl.Int64), "why": pl.String, "look_at": pl.List(pl.String)}
        return pl.DataFrame(schema=cols)
    order = sorted(lines, key=lambda x: (KINDS.index(x["kind"]), -x["_score"]))
    out = order
    if budget is not None:  # min_runs at a time, round robin over cells; both sides of a cell alike
        cells: dict[tuple[Any, ...], list[int]] = {}
        for i, line in enumerate(order):
            cells.setdefault((line["kind"], *(line[k] for k in keys if k != by)), []).append(i)
        give = [0] * len(order)
        left = budget
        moved = True
        while left > 0 and moved:
            moved = False
            for members in cells.values():
                need = min([order[i]["count"] - give[i] for i in members] + [min_runs])
                per = min(need, left // len(members))
                if per <= 0:
                    continue
                for i in members:
                    give[i] += per
                left -= per * len(members)
                moved = True
        out = []
        for line, n in zip(order, give, strict=True):
            if n > 0:
                line["count"], line["seeds"] = n, line["seeds"][:n]
                out.append(line)
    table = pl.DataFrame([{k: v for k, v in x.items() if k != "_score"} for x in out])
    return table.with_row_index("priority", offset=1).with_columns(pl.col("priority").cast(pl.Int64))
