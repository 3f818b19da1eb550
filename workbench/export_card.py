"""The dataset card (``README.md``) written with every export.

It states what the dataset holds and what it does not: the selection (query and catalog
hash), counts, the outcome rate with its Wilson interval (overall and per value of each
factor that varies), the grade distribution, a factor coverage table, and every run
left out with why.

Examples
--------
>>> from workbench.export_card import outcome_line
>>> outcome_line(["success", "success", "failure", "unknown"])
'success 2 of 3 known (66.7 %, 95 % interval 20.8–93.9 %); 1 unknown'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.model import FACTOR_GROUPS

if TYPE_CHECKING:
    import polars as pl

    from workbench.selection import Selection

__all__ = ["outcome_line", "write_card"]


def outcome_line(outcomes: Sequence[str]) -> str:
    """The success rate among known outcomes with its Wilson interval, and the unknowns."""
    from workbench.stats.rates import wilson_interval

    counts = Counter(o or "unknown" for o in outcomes)
    known = counts["success"] + counts["failure"]
    unknown = f"; {counts['unknown']} unknown" if counts["unknown"] else ""
    if known == 0:
        return f"no known outcome ({counts['unknown']} unknown)"
    lo, hi = wilson_interval(counts["success"], known)
    return (f"success {counts['success']} of {known} known ({100 * counts['success'] / known:.1f} %, "
            f"95 % interval {100 * lo:.1f}–{100 * hi:.1f} %){unknown}")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_card(out: Path, selection: Selection, report: Any, episodes: pl.DataFrame, *, kind: str) -> Path:
    """Write ``out/README.md`` for an export: *report* an
    :class:`~workbench.export_lerobot.ExportReport` (*kind* ``lerobot``) or a
    :class:`~workbench.export_mcap.McapExport` (*kind* ``mcap``); *episodes* one row per
    episode or file with ``run_id``, ``grade`` and ``outcome``."""
    import polars as pl

    cat = selection.catalog.filter(pl.col("run_id").is_in(episodes["run_id"].unique().to_list()))
    factors = [c for c in cat.columns if c.split(".", 1)[0] in FACTOR_GROUPS and cat[c].n_unique() >= 1
               and c not in ("scenario.seed", "scenario.episode") and cat[c].dtype != pl.List]
    lines = [f"# Dataset exported by RobotOps Workbench ({kind})", ""]
    if kind == "mcap":
        lines += [f"{len(report.files)} MCAP file(s) ({sum(h == 'copied' for h in report.how)} cut from their source MCAP "
                  f"with the original schemas, the others written from stored streams as JSON), "
                  f"{sum(report.messages):,} messages, from {cat.height} run(s).", ""]
    else:
        lines += [f"{report.episodes} episode(s), {report.frames} frames at {report.fps} fps, from {cat.height} run(s)."
                  + (f" Cameras as video: {', '.join(report.videos)}." if report.videos else ""), ""]
    lines += ["## Selection", "", "```json", json.dumps(selection.query, indent=1, default=str), "```", "",
              f"Catalog hash: `{selection.catalog_hash}` (sha256 of the store's catalog when the selection was made). "
              + ("The run ids are in `meta/workbench_selection.json`; each episode's run, source file and hash, grade, "
               "outcome and factors in `meta/workbench_episodes.parquet`." if kind != "mcap" else
               "The run ids are in `selection.json`; each file's metadata record `workbench` names its run, window "
               "and source hash."), ""]
    lines += ["## Outcomes", "", f"All episodes: {outcome_line(episodes['outcome'].to_list())}.", ""]
    varying = [f for f in factors if cat[f].n_unique() > 1]
    if varying:
        rows = []
        by_run = dict(zip(episodes["run_id"], episodes["outcome"], strict=True))
        for f in varying:
            for value in sorted(cat[f].drop_nulls().unique().to_list(), key=str):
                ids = cat.filter(pl.col(f) == value)["run_id"].to_list()
                rows.append([f, value, len(ids), outcome_line([by_run.get(r, "unknown") for r in ids])])
        lines += [_table(["factor", "value", "runs", "outcome"], rows), ""]
    grades = Counter(str(g) if g is not None else "ungraded" for g in episodes["grade"].to_list())
    lines += ["## Data grades", "", ", ".join(f"{g}: {n}" for g, n in sorted(grades.items())), ""]
    lines += ["## Factor coverage", ""]
    cov = [[f, ", ".join(f"{v} ({n})" for v, n in sorted(Counter(map(str, cat[f].to_list())).items()))] for f in factors]
    lines += [_table(["factor", "values (runs)"], cov) if cov else "No factors.", ""]
    if getattr(report, "features", None):
        lines += ["## Features", ""]
        lines += [_table(["feature", "dtype", "shape", "names"],
                         [[k, v.get("dtype"), v.get("shape"), ", ".join(map(str, v.get("names") or []))[:120]]
                          for k, v in report.features.items()]), ""]
    lines += ["## Left out", ""]
    gone = {**selection.excluded, **report.left_out}
    if gone:
        lines += [_table(["run", "why"], sorted(gone.items())), ""]
    else:
        lines += ["Nothing: every selected run is in the dataset.", ""]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
