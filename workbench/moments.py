"""Moment search across the fleet: every place a rule holds, in every run, as one table.

:func:`find` takes a rule in the language of :mod:`workbench.events` (a threshold, a
state change, a text match or a sequence) and returns one row per hit: which run,
when it starts and ends (also in seconds from the run's start, the time a replay
opens at), its peak value and its detail. Runs are evaluated where the work runs
(:mod:`workbench.parallel`: threads, processes or a Dask cluster), nothing is
written to the store. :func:`count_by` turns hits into rates per factor value: hits
per hour of logged time (exact Poisson interval) and the share of runs with a hit
(Wilson interval), so "slips per hour on steel vs rubber" is one call.

Examples
--------
>>> import numpy as np, polars as pl, xarray as xr, workbench as wb
>>> t = np.arange(100, dtype=np.int64) * 100_000_000
>>> runs = [wb.Run(info=wb.RunInfo(run_id=f"r{i}", start_ns=0, end_ns=int(t[-1]), environment={"surface": s}),
...                streams={"ft": xr.Dataset({"f": ("time", np.where((t > 2e9) & (t < 4e9), 9.0, 0.0) * i)},
...                                          coords={"time": t})})
...         for i, s in enumerate(["steel", "rubber", "rubber"])]
>>> hits = find(runs, {"name": "push", "signal": {"stream": "ft", "variable": "f"}, "above": 5})
>>> hits.select("run_id", "start_s", "end_s").rows()
[('r1', 2.1, 4.0), ('r2', 2.1, 4.0)]
>>> count_by(hits, runs, "environment.surface").select("environment.surface", "runs", "hits", "runs_with_hit").rows()
[('rubber', 2, 2, 2), ('steel', 1, 0, 0)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.model import ConfigError, Run

if TYPE_CHECKING:
    import polars as pl

    from workbench.events.rules import RuleSet
    from workbench.store import Store

__all__ = ["HIT_SCHEMA", "count_by", "find", "parse_rule"]

_NS = 1e9


def _hit_schema() -> dict[str, Any]:
    import polars as pl

    return {"run_id": pl.String, "name": pl.String, "rule": pl.String, "start": pl.Int64, "end": pl.Int64,
            "start_s": pl.Float64, "end_s": pl.Float64, "duration_s": pl.Float64, "peak": pl.Float64, "detail": pl.String}


HIT_SCHEMA = ("run_id", "name", "rule", "start", "end", "start_s", "end_s", "duration_s", "peak", "detail")
"""Columns of :func:`find`'s table (``start``/``end`` ns since the epoch, ``*_s`` from the run's start)."""


def parse_rule(rule: Any, rules: RuleSet | None = None) -> tuple[RuleSet, str]:
    """``(rule set to evaluate, name of the rule searched for)`` from *rule*: a rule
    object, a mapping (one rule as in ``events:``), an inline YAML mapping, or the
    name of a rule of *rules* (e.g. those of ``workbench.yaml``). The other rules of
    *rules* come along, so a sequence finds the events it reads."""
    import yaml

    from workbench.events.rules import Rule, RuleSet

    base = list(rules.events) if rules is not None else []
    if isinstance(rule, Rule):
        spec = rule.to_dict()
    elif isinstance(rule, Mapping):
        spec = dict(rule)
    elif isinstance(rule, str):
        names = [r.name for r in base]
        if rule in names:
            return RuleSet(events=tuple(base), defaults=False, origin=rules.origin if rules else "python"), rule
        try:
            spec = yaml.safe_load(rule)
        except yaml.YAMLError as err:
            msg = f"rule {rule!r} is neither a rule name ({', '.join(names) or 'no rules configured'}) nor YAML: {err}"
            raise ConfigError(msg) from err
        if not isinstance(spec, Mapping):
            msg = (f"rule {rule!r} is neither a rule name ({', '.join(names) or 'no rules configured'}) nor a YAML "
                   "mapping like '{name: high, signal: {stream: S, variable: V}, above: 1}'")
            raise ConfigError(msg)
        spec = dict(spec)
    else:
        msg = f"a rule is a name, a mapping or a Rule, got {type(rule).__name__}"
        raise ConfigError(msg)
    spec.setdefault("name", "hit")
    others = [r.to_dict() for r in base if r.name != spec["name"]]
    rs = RuleSet.from_dict({"events": [*others, spec], "defaults": False}, origin="find")
    return rs, str(spec["name"])


def _hits(run: Run, rules: RuleSet, name: str, rows: int | None) -> list[dict[str, Any]]:
    """The hits of rule *name* on *run* (which is left as it is). Rules read the log's
    own events and people's labels, not the events other rules stored."""
    from workbench.events.engine import evaluate

    events = run.events
    if "origin" in events.columns:
        events = events.filter(events["origin"].is_in(["log", "label"]))
    ev = evaluate(Run(info=run.info, streams=run.streams, events=events), rules, rows=rows, origin="find")
    mine = ev.events.filter(ev.events["origin"] == f"find:{name}")
    out = []
    t0 = run.info.start_ns
    for t, detail in zip(mine["time"].to_list(), mine["detail"].to_list(), strict=True):
        try:
            d = json.loads(detail) if detail else {}
        except json.JSONDecodeError:
            d = {}
        d = d if isinstance(d, dict) else {}
        end = int(d.get("end", t))
        peak = d.get("peak")
        out.append({"run_id": run.run_id, "name": run.info.name, "rule": name, "start": int(t), "end": end,
                    "start_s": (int(t) - t0) / _NS, "end_s": (end - t0) / _NS, "duration_s": (end - int(t)) / _NS,
                    "peak": float(peak) if isinstance(peak, int | float) else None, "detail": detail})
    return out


def _find_stored(run_id: str, store_url: str, rules_dict: dict[str, Any], name: str, rows: int | None) -> list[dict[str, Any]]:
    """Worker: the hits of rule *name* on one stored run (nothing is written)."""
    from workbench.events.engine import RuleProblem
    from workbench.events.rules import RuleSet
    from workbench.pieces import LAZY_BYTES, stored_bytes
    from workbench.store.core import StoreCore

    store = StoreCore(store_url, create=False)
    manifest = store.manifest(run_id)
    rules = RuleSet.from_dict(rules_dict, origin="find")
    names = [s for s in rules.streams if s in manifest.get("streams", {})]
    large = stored_bytes(manifest) > LAZY_BYTES
    run = store.load(run_id, streams=names, lazy=large, indexes=not large)
    try:
        return _hits(run, rules, name, rows)
    except RuleProblem as err:
        return [{"run_id": run_id, "error": str(err)}]


def find(
    source: Store | Iterable[Run],
    rule: Any,
    *,
    rules: RuleSet | str | os.PathLike[str] | None = None,
    where: str | pl.Expr | None = None,
    run_ids: Iterable[str] | None = None,
    limit: int | None = None,
    scheduler: Any = None,
    progress: bool = False,
    chunk_rows: int | None = None,
) -> pl.DataFrame:
    """Every hit of *rule* in the runs of *source*, one row each (see :data:`HIT_SCHEMA`).

    Parameters
    ----------
    source
        A store (runs are loaded where the work runs) or runs already loaded.
    rule
        A rule (:mod:`workbench.events` object, mapping or inline YAML), or the name
        of a rule of *rules*.
    rules
        Other rules a named rule or a sequence needs (a RuleSet or a YAML file);
        default with a store: ``events:`` of its ``workbench.yaml``.
    where, run_ids
        With a store: only these runs (a catalog condition as ``workbench runs
        --where``, and/or ids: given both, the runs that pass both). Runs already
        loaded are all searched.
    limit
        At most this many hits, in the order of the runs searched (a store's run ids,
        or the runs as given) and in time order within a run; every run is searched.
    scheduler, progress, chunk_rows
        As for :func:`workbench.events.apply_rules`.

    Raises
    ------
    ConfigError
        The rule is not valid, names a stream, variable or label some run has in a
        form it cannot read (naming the run), or is not found among *rules*.

    Notes
    -----
    A run that lacks the rule's stream has no hits (it is searched and nothing is
    there); the count of runs searched is in the table's ``searched`` attribute
    only through :func:`count_by`, which needs the runs.
    """
    import polars as pl

    from workbench.events.apply import configured_rules
    from workbench.store.core import StoreCore as Store

    if isinstance(limit, bool) or (limit is not None and int(limit) < 1):
        msg = f"limit must be a positive number of hits, got {limit!r}"
        raise ConfigError(msg)
    if isinstance(source, Store):
        base = configured_rules(source, rules)
        rs, name = parse_rule(rule, base)
        ids = source.runs(where=where)["run_id"].to_list() if where is not None else source.run_ids()
        if run_ids is not None:  # both: the runs that are in each
            wanted = list(dict.fromkeys(run_ids))
            known = set(ids)
            ids = [r for r in wanted if r in known]
        parts = []
        from workbench.parallel import map_runs

        for got in map_runs(_find_stored, ids, args=(source.url, rs.to_dict(), name, chunk_rows),
                            scheduler=scheduler, progress=progress, label="find"):
            for h in got:
                if "error" in h:
                    msg = f"run {h['run_id']}: {h['error']}"
                    raise ConfigError(msg)
            parts.extend(got)
    else:
        base_rules = None if rules is None else configured_rules(None, rules)
        rs, name = parse_rule(rule, base_rules)
        parts = [h for run in source for h in _hits(run, rs, name, chunk_rows)]
    df = pl.DataFrame(parts, schema=_hit_schema()) if parts else pl.DataFrame(schema=_hit_schema())
    return df.head(int(limit)) if limit is not None else df


def count_by(hits: pl.DataFrame, source: Store | Iterable[Run] | pl.DataFrame, factor: str, *,
             level: float = 0.95, where: str | pl.Expr | None = None) -> pl.DataFrame:
    """Hit rates of :func:`find`'s *hits* per value of *factor* over the runs searched.

    *source* is the store, the runs or a catalog (``run_id``, *factor*, and
    ``duration_s`` or ``start``/``end`` in ns) of every run searched, with or without
    hits. Per factor value: ``runs``, ``hours`` logged, ``hits``, ``runs_with_hit``;
    ``per_hour`` with the exact (Garwood) Poisson interval ``per_hour_lo``/``_hi``;
    ``share_of_runs`` with Wilson's interval ``share_lo``/``share_hi``. Values sort
    as the factor's type sorts (numbers by value); hours (and the per-hour rate) are
    null for a value where some run's length is unknown.

    Raises :class:`ConfigError` when *factor* is not a catalog column (naming them).
    """
    import polars as pl
    from scipy import stats

    from workbench.stats.rates import wilson_interval
    from workbench.store.core import StoreCore as Store

    if isinstance(source, Store):
        cat = source.runs(where=where) if where is not None else source.runs()
    elif isinstance(source, pl.DataFrame):
        cat = source
    else:
        rows = []
        for run in source:
            rows.append({"run_id": run.run_id, factor: run.info.factors().get(factor),
                         "duration_s": (run.info.end_ns - run.info.start_ns) / _NS})
        cat = pl.DataFrame(rows)
    if factor not in cat.columns:
        choices = [c for c in cat.columns if c.split(".", 1)[0] in ("hardware", "environment", "model", "scenario")]
        msg = f"count by {factor!r}: no such factor; factors: {', '.join(choices) or '(none)'}"
        raise ConfigError(msg)
    if "duration_s" not in cat.columns:
        for a, b in (("start_ns", "end_ns"), ("start", "end")):
            if {a, b} <= set(cat.columns) and cat.schema[a].is_integer():
                cat = cat.with_columns(((pl.col(b) - pl.col(a)) / _NS).alias("duration_s"))
                break
        else:
            cat = cat.with_columns(pl.lit(None, dtype=pl.Float64).alias("duration_s"))
    runs = cat.select("run_id", factor, pl.col("duration_s").cast(pl.Float64))
    per_run = hits.group_by("run_id").len("hits") if hits.height else pl.DataFrame(schema={"run_id": pl.String, "hits": pl.UInt32})
    joined = runs.join(per_run, on="run_id", how="left").with_columns(pl.col("hits").fill_null(0))
    groups = joined.group_by(factor).agg(
        pl.len().alias("runs"),
        # hours only when every run's length is known: a rate over part of the time would be too high
        pl.when(pl.col("duration_s").null_count() == 0).then(pl.col("duration_s").sum() / 3600).alias("hours"),
        pl.col("hits").sum().cast(pl.Int64).alias("hits"), (pl.col("hits") > 0).sum().cast(pl.Int64).alias("runs_with_hit"),
    ).sort(factor, nulls_last=True)
    out = []
    tail = 1 - level
    for r in groups.iter_rows(named=True):
        k, n, m = int(r["hits"]), int(r["runs"]), int(r["runs_with_hit"])
        hours = float(r["hours"]) if r["hours"] is not None else 0.0
        lo_c = float(stats.chi2.ppf(tail / 2, 2 * k) / 2) if k > 0 else 0.0
        hi_c = float(stats.chi2.ppf(1 - tail / 2, 2 * k + 2) / 2)
        lo_s, hi_s = wilson_interval(m, n, level=level)
        rate = (k / hours) if hours > 0 else None
        out.append({factor: None if r[factor] is None else str(r[factor]), "runs": n,
                    "hours": hours if r["hours"] is not None else None, "hits": k, "runs_with_hit": m,
                    "per_hour": rate, "per_hour_lo": lo_c / hours if hours > 0 else None,
                    "per_hour_hi": hi_c / hours if hours > 0 else None,
                    "share_of_runs": m / n if n else None, "share_lo": lo_s, "share_hi": hi_s})
    schema = {factor: pl.String, "runs": pl.Int64, "hours": pl.Float64, "hits": pl.Int64, "runs_with_hit": pl.Int64,
              "per_hour": pl.Float64, "per_hour_lo": pl.Float64, "per_hour_hi": pl.Float64,
              "share_of_runs": pl.Float64, "share_lo": pl.Float64, "share_hi": pl.Float64}
    return pl.DataFrame(out, schema=schema)
