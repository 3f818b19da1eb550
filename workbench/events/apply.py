"""Rules applied to stored runs after ingest, and labels by people.

:func:`apply_rules` evaluates the user's rules (merged over each format's defaults)
on every chosen run, mapped through :func:`workbench.parallel.map_runs` like grading.
Nothing is re-ingested and run ids never change: the events rules make are kept as
an annotation beside the log's own events (``annotations/derived_events.parquet``),
with the hash of the rules that made them (their text is kept once per store in
``rules/<hash>.yaml``). Every run is evaluated before anything is written, so a rule
that cannot be evaluated changes nothing. Re-applying replaces only derived events.

:func:`label` records a person's outcome for runs; a label beats every rule and
survives :func:`apply_rules` and ``rebuild``.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.events.defaults import defaults_for
from workbench.events.engine import RuleProblem, evaluate
from workbench.events.rules import Outcome, RuleSet, load_rules
from workbench.model import ConfigError, resolve_outcome

if TYPE_CHECKING:
    import polars as pl

    from workbench.store.core import StoreCore as Store

__all__ = ["ApplyReport", "apply_rules", "configured_rules", "label", "label_from_file", "mark_span", "rules_for_run"]

LABEL_OUTCOMES = ("success", "failure", "unknown")


def configured_rules(store: Store | None = None, rules: RuleSet | str | os.PathLike[str] | None = None) -> RuleSet:
    """The rules to apply: *rules* (a RuleSet or a YAML file), else the ``events:`` /
    ``outcome:`` sections of ``workbench.yaml`` in the store's folder, else in the
    current folder, else none (format defaults only)."""
    if isinstance(rules, RuleSet):
        return rules
    if rules is not None:
        return load_rules(rules)
    from workbench.config import find_config

    path = find_config(store.root if store is not None and store.local else None)
    return load_rules(path) if path is not None else RuleSet(origin="none")


def rules_for_run(rules: RuleSet, reader: str) -> RuleSet:
    """*rules* over the defaults of *reader*'s format (as ``rules.defaults`` says)."""
    if rules.defaults is False:
        return rules
    base = defaults_for(reader)
    if isinstance(rules.defaults, tuple) and rules.defaults:  # names of other formats' defaults are fine here
        keep = tuple(r for r in base.events if r.name not in rules.defaults)
        base = RuleSet(events=keep, outcome=Outcome() if "outcome" in rules.defaults else base.outcome, origin=base.origin)
    return rules.merged(base)


def _origins(rules: RuleSet, merged: RuleSet, reader: str) -> dict[str, str]:
    mine = {r.name for r in rules.events}
    out = {r.name: ("rule" if r.name in mine else f"default:{reader}") for r in merged.events}
    out["outcome"] = "rule" if rules.outcome.clauses else f"default:{reader}"
    return out


@dataclass
class ApplyReport:
    """What :func:`apply_rules` did.

    Attributes
    ----------
    rules
        Hash of the user's rules (``""`` when only the format defaults applied).
    runs
        Run ids evaluated.
    counts
        Rule name → events made over all runs.
    missing
        Rule name → run ids the rule did not apply to (a stream it reads is absent).
    added, removed
        Rule name → events added / removed compared with the previous application.
    outcome_changed
        Run id → ``(before, after)`` for runs whose outcome changed.
    outcomes
        Outcome (``success``/``failure``/``unknown``) → runs, after rules and labels.
    user_rules
        Names of the user's rules (the others are format defaults).
    """

    rules: str
    runs: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    outcome_changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    user_rules: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "runs": len(self.runs), "user_rules": self.user_rules, "counts": self.counts, "missing": self.missing,
                "added": self.added, "removed": self.removed, "outcomes": self.outcomes,
                "outcome_changed": {k: list(v) for k, v in self.outcome_changed.items()}}

    def __str__(self) -> str:
        lines = [f"applied {'rules ' + self.rules if self.rules else 'the format defaults'} to {len(self.runs)} run(s)"]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        if outcomes:
            lines.append(f"  outcomes: {outcomes}")

        def change(name: str) -> str:
            parts = [f"+{self.added[name]}"] if self.added.get(name) else []
            parts += [f"-{self.removed[name]}"] if self.removed.get(name) else []
            return f" ({' '.join(parts)})" if parts else ""

        for name in self.user_rules:
            if name == "outcome":
                continue
            text = f"  {name}: {self.counts.get(name, 0)} event(s){change(name)}"
            miss = self.missing.get(name, [])
            if miss:
                shown = ", ".join(miss[:5]) + (f" … (+{len(miss) - 5})" if len(miss) > 5 else "")
                text += f"; not applicable to {len(miss)} run(s), a stream it reads is absent: {shown}"
            lines.append(text)
        defaults = sorted((set(self.counts) | set(self.missing)) - set(self.user_rules))
        made = [f"{n} {self.counts[n]}{change(n)}" for n in defaults if self.counts.get(n)]
        if made:
            lines.append(f"  format defaults: {', '.join(made)}")
        removed = [f"{n}{change(n)}" for n in defaults if not self.counts.get(n) and self.removed.get(n)]
        if removed:
            lines.append(f"  format defaults now making nothing: {', '.join(removed)}")
        if self.outcome_changed:
            lines.append(f"  outcome changed in {len(self.outcome_changed)} run(s):")
            for rid, (a, b) in sorted(self.outcome_changed.items())[:20]:
                lines.append(f"    {rid}: {a or 'unknown'} -> {b or 'unknown'}")
            if len(self.outcome_changed) > 20:
                lines.append(f"    … and {len(self.outcome_changed) - 20} more")
        return "\n".join(lines)


def _evaluate_stored(run_id: str, store_url: str, rules_dict: dict[str, Any], origin: str, rows: int | None) -> dict[str, Any]:
    """Worker: evaluate the rules on one stored run (nothing is written here)."""
    from workbench.pieces import LAZY_BYTES, stored_bytes
    from workbench.store.core import StoreCore

    store = StoreCore(store_url, create=False)
    manifest = store.manifest(run_id)
    reader = str(manifest["info"].get("provenance", {}).get("reader", ""))
    rules = RuleSet.from_dict(rules_dict, origin=origin)
    merged = rules_for_run(rules, reader)
    names = [s for s in merged.streams if s in manifest.get("streams", {})]
    large = stored_bytes(manifest) > LAZY_BYTES
    run = store.load(run_id, streams=names, lazy=large, indexes=not large, merged=False)
    run.events = run.events.filter(run.events["origin"] == "log")  # rules read the log's own events
    try:
        ev = evaluate(run, merged, rows=rows)
    except RuleProblem as err:
        return {"run_id": run_id, "error": str(err)}
    origins = _origins(rules, merged, reader)
    ev.events = ev.events.with_columns(
        ev.events["origin"].map_elements(lambda o: _origin(o, origins), return_dtype=ev.events["origin"].dtype)
    ) if ev.events.height else ev.events
    from workbench.store.layout import DERIVED_EVENTS

    added, removed = _diff(store.get_table(run_id, DERIVED_EVENTS), ev.events)
    # the outcome these events resolve to (with the log's events and any label), known now
    outcome, at, source = resolve_outcome(store._merged_events(run_id, run.events, run.info, derived=ev.events))
    return {"run_id": run_id, "reader": reader, "events": ev.events, "missing": ev.missing, "counts": ev.counts,
            "outcome": {"outcome": outcome, "outcome_ns": at, "source": source},
            "skipped": ev.skipped, "added": added, "removed": removed,
            "outcome_before": store.current_outcome(run_id),
            "user_rules": sorted(r.name for r in rules.events)}


def _origin(origin: str, origins: Mapping[str, str]) -> str:
    name = origin.split(":", 1)[1]
    where = origins.get(name, "rule")
    return f"rule:{name}" if where == "rule" else f"{where}.{name}"


def apply_rules(
    store: Store,
    rules: RuleSet | str | os.PathLike[str] | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    where: str | pl.Expr | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    chunk_rows: int | None = None,
    strict: bool = True,
) -> ApplyReport:
    """Evaluate rules (and the format defaults) on stored runs; keep what they make.

    Parameters
    ----------
    store
        The store.
    rules
        A :class:`RuleSet`, a YAML file, or ``None`` for :func:`configured_rules`.
    run_ids, where
        Only these runs / the runs matching this catalog filter (default: all).
    scheduler
        Where per-run work runs (see :func:`workbench.parallel.map_runs`).
    progress
        Show a progress bar.
    chunk_rows
        Rows per piece when streams are read (``None``: automatic).
    strict
        Refuse a user rule whose streams are absent from every chosen run (a typo,
        most likely). Ingest passes ``False``: rules for other formats then simply do
        not apply to the new runs (they are listed in the report).

    Returns
    -------
    ApplyReport
        Counts per rule, runs each rule did not apply to, what changed.

    Raises
    ------
    ConfigError
        A rule names a variable, dimension or label a run's stream lacks, or a user
        rule's stream is absent from every run (naming the rule and the valid choices).
        Nothing is written then.
    """
    from workbench.parallel import map_runs
    from workbench.store.layout import EVENTS_SECTION, OUTCOME_SECTION

    rules = configured_rules(store, rules)
    ids = list(run_ids) if run_ids is not None else None
    if where is not None:
        chosen = store.runs(where=where)["run_id"].to_list()
        ids = chosen if ids is None else [r for r in ids if r in set(chosen)]
    if ids is None:
        ids = store.run_ids()
    report = ApplyReport(rules=rules.digest if not rules.empty else "", runs=list(ids),
                         user_rules=[r.name for r in rules.events] + (["outcome"] if rules.outcome.clauses else []))
    if not ids:
        return report
    results = map_runs(_evaluate_stored, ids, args=(store.url, rules.to_dict(), rules.origin, chunk_rows),
                       scheduler=scheduler, progress=progress, label="events")
    errors = [r for r in results if "error" in r]
    if errors:
        first = errors[0]["error"]
        others = f" (and {len(errors) - 1} more run(s))" if len(errors) > 1 else ""
        msg = f"{first} — in run {errors[0]['run_id']}{others}; nothing was written"
        raise ConfigError(msg)
    for name in (r.name for r in rules.events) if strict else ():
        meant = [r for r in results if name not in r["skipped"]]
        if not meant:
            msg = f"rule {name!r}: its when: matches none of the {len(results)} run(s); nothing was written"
            raise ConfigError(msg)
        absent = [r for r in meant if name in r["missing"]]
        if len(absent) == len(meant):
            why = absent[0]["missing"][name]
            streams = sorted(store.manifest(absent[0]["run_id"]).get("streams", {}))
            msg = (f"rule {name!r}: {why} in every run ({len(meant)}); streams of run {absent[0]['run_id']}: "
                   f"{', '.join(streams) or '(none)'}; nothing was written")
            raise ConfigError(msg)
    digest = rules.digest
    if not rules.empty:
        store.put_rules(digest, rules.to_yaml())
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    events_sections: dict[str, dict[str, Any]] = {}
    outcome_sections: dict[str, dict[str, Any]] = {}
    # the rules held on every run: keep the derived events with the sections below, one
    # write per run (each atomic; the catalog updated once)
    for res in results:
        rid = res["run_id"]
        outcome = res["outcome"]
        new: pl.DataFrame = res["events"]
        for name, n in res["added"].items():
            report.added[name] = report.added.get(name, 0) + n
        for name, n in res["removed"].items():
            report.removed[name] = report.removed.get(name, 0) + n
        outcome_sections[rid] = outcome
        if res["outcome_before"] != outcome["outcome"]:
            report.outcome_changed[rid] = (res["outcome_before"], outcome["outcome"])
        key = outcome["outcome"] or "unknown"
        report.outcomes[key] = report.outcomes.get(key, 0) + 1
        for name, n in res["counts"].items():
            report.counts[name] = report.counts.get(name, 0) + int(n)
        for name in res["missing"]:
            report.missing.setdefault(name, []).append(rid)
        events_sections[rid] = {
            "rules": digest if not rules.empty else None, "rules_origin": rules.origin, "applied_at": now,
            "n_derived": int(new.height), "missing": ", ".join(sorted(res["missing"])) or None,
        }
    from workbench.store.layout import DERIVED_EVENTS

    store.annotate_sections({rid: {EVENTS_SECTION: events_sections[rid], OUTCOME_SECTION: outcome_sections[rid]}
                             for rid in events_sections},
                            tables={res["run_id"]: {DERIVED_EVENTS: res["events"]} for res in results})
    return report


def _diff(before: pl.DataFrame | None, after: pl.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Events added and removed per rule between two derived tables."""

    def key_counts(df: pl.DataFrame | None) -> dict[str, set[tuple[int, str]]]:
        out: dict[str, set[tuple[int, str]]] = {}
        if df is None or df.height == 0:
            return out
        for t, o, d in zip(df["time"].to_list(), df["origin"].to_list(), df["detail"].to_list(), strict=True):
            name = o.split(":", 1)[-1].split(".", 1)[-1] if o.startswith("default:") else o.split(":", 1)[-1]
            out.setdefault(name, set()).add((int(t), d))
        return out

    a, b = key_counts(before), key_counts(after)
    added: dict[str, int] = {}
    removed: dict[str, int] = {}
    for name in set(a) | set(b):
        plus = len(b.get(name, set()) - a.get(name, set()))
        minus = len(a.get(name, set()) - b.get(name, set()))
        if plus:
            added[name] = plus
        if minus:
            removed[name] = minus
    return added, removed


# --------------------------------------------------------------------------- labels


def _user() -> str:
    from workbench.config import env as env_var

    env = env_var("WORKBENCH_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def label(
    store: Store,
    run_ids: Iterable[str],
    outcome: str,
    *,
    reason: str | None = None,
    at: float | None = None,
    user: str | None = None,
) -> list[str]:
    """Label runs' outcome by hand; the label beats every rule.

    Parameters
    ----------
    store
        The store.
    run_ids
        Runs to label (ids or unique names).
    outcome
        ``"success"``, ``"failure"`` or ``"unknown"`` (an explicit "we do not know",
        which also overrides the rules).
    reason
        Why (kept in provenance and in the event's detail).
    at
        Seconds from the run's start at which the outcome happened (default: its end).
    user
        Who labels (default: ``$WORKBENCH_USER``, else the OS user).

    Returns
    -------
    list of str
        The run ids labelled.
    """
    ids = store.resolve_runs(list(run_ids))
    return _label_many(store, [(rid, outcome, reason, at) for rid in ids], user=user)


def _label_many(store: Store, specs: list[tuple[str, str, str | None, float | None]], *, user: str | None) -> list[str]:
    from workbench.store.layout import LABELS_SECTION, OUTCOME_SECTION

    who = user or _user()
    when = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    sections: dict[str, dict[str, Any]] = {}
    for rid, outcome, reason, at in specs:
        if outcome not in LABEL_OUTCOMES:
            msg = f"outcome {outcome!r} is not valid; choose one of {', '.join(LABEL_OUTCOMES)}"
            raise ConfigError(msg)
        info = store.info(rid)
        at_ns = None if at is None else int(info.start_ns + round(float(at) * 1e9))
        if at_ns is not None and not info.start_ns <= at_ns <= max(info.end_ns, info.start_ns):
            msg = f"at={at} s is outside run {rid!r} (0 … {info.duration_s:.3f} s)"
            raise ConfigError(msg)
        previous = store.annotations(rid).get(LABELS_SECTION) or {}
        history = json.loads(previous.get("history") or "[]")
        if previous.get("outcome"):
            history.append({k: previous.get(k) for k in ("outcome", "reason", "by", "when", "at_ns")})
        sections[rid] = {"outcome": outcome, "reason": reason, "by": who, "when": when, "at_ns": at_ns,
                         "history": json.dumps(history)}
    store.annotate_many(LABELS_SECTION, sections)
    outcomes: dict[str, dict[str, Any]] = {}
    for rid in sections:
        res = resolve_outcome(store.load(rid, streams=[]).events)
        outcomes[rid] = {"outcome": res[0], "outcome_ns": res[1], "source": res[2]}
    store.annotate_many(OUTCOME_SECTION, outcomes)
    return list(sections)


MAX_NOTE = 500
"""Characters of a label's reason or a mark's note kept."""


def mark_span(
    store: Store,
    run_id: str,
    kind: str,
    start: float,
    end: float,
    *,
    note: str | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """Mark a time window of a run as an event, by hand (e.g. a span brushed in Run detail).

    The mark is an event of the run (``kind`` at *start*, with ``start``, ``end``,
    ``duration_s``, ``note``, ``by`` and ``when`` in its detail, origin ``label``), kept
    beside the run (annotation section ``marks``: the catalog's ``marks.n`` counts them)
    and surviving :func:`apply_rules` and ``rebuild``.

    Parameters
    ----------
    store
        The store.
    run_id
        The run (id or unique name).
    kind
        Event kind: lowercase letters, digits and ``_`` (e.g. ``slip``, ``collision``);
        an outcome (success, failure, unknown) is given with :func:`label` instead.
    start, end
        The window in seconds from the run's start, ``start < end``, inside the run.
    note
        What happened (at most :data:`MAX_NOTE` characters are kept).
    user
        Who marks (default: ``$WORKBENCH_USER``, else the OS user).

    Returns
    -------
    dict
        The mark as stored (``kind``, ``start_ns``, ``end_ns``, ``note``, ``by``, ``when``).

    Raises
    ------
    ConfigError
        On a bad kind, a window that is empty, reversed or outside the run.
    """
    import math
    import re

    from workbench.store.layout import MARKS_SECTION

    (rid,) = store.resolve_runs([run_id])
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", kind):
        msg = f"mark kind {kind!r} is not valid: use lowercase letters, digits and _ (e.g. 'slip'), at most 64"
        raise ConfigError(msg)
    if kind in LABEL_OUTCOMES or kind == "start":
        msg = f"mark kind {kind!r} is an outcome: label outcomes with `workbench label` (store.label) instead"
        raise ConfigError(msg)
    try:
        a, b = float(start), float(end)
    except (TypeError, ValueError) as err:
        msg = f"a mark's window needs numbers of seconds, got start={start!r}, end={end!r}"
        raise ConfigError(msg) from err
    info = store.info(rid)
    dur = info.duration_s
    if not (math.isfinite(a) and math.isfinite(b)) or not a < b or a < 0 or b > dur + 1e-9:
        msg = f"window {a:g} … {b:g} s is not a window inside run {rid!r} (0 … {dur:.3f} s, start before end)"
        raise ConfigError(msg)
    entry = {"kind": kind, "start_ns": int(info.start_ns + round(a * 1e9)), "end_ns": int(info.start_ns + round(b * 1e9)),
             "note": (note or "").strip()[:MAX_NOTE] or None, "by": user or _user(),
             "when": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    previous = store.annotations(rid).get(MARKS_SECTION) or {}
    items = json.loads(previous.get("items") or "[]")
    items.append(entry)
    store.annotate_many(MARKS_SECTION, {rid: {"n": len(items), "items": json.dumps(items, sort_keys=True)}})
    return entry


def label_from_file(store: Store, path: str | os.PathLike[str], *, user: str | None = None) -> list[str]:
    """Labels from a CSV or Parquet table, refused whole when any row is bad.

    Columns: ``outcome`` (success/failure/unknown), optional ``reason`` and ``at``
    (seconds from the run's start), and a key: ``run_id``, or ``source`` (the log file's
    or dataset folder's name or path, as in the catalog's ``source``) with ``episode``
    (``scenario.episode``) for files holding many runs.
    """
    import polars as pl

    p = Path(path)
    try:
        table = pl.read_parquet(p) if p.suffix.lower() == ".parquet" else pl.read_csv(p, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as err:
        msg = f"cannot read labels from {str(p)!r}: {err}"
        raise ConfigError(msg) from err
    if "outcome" not in table.columns:
        msg = f"{str(p)!r}: a label file needs an 'outcome' column; columns: {', '.join(table.columns)}"
        raise ConfigError(msg)
    cat = store.runs()
    rows = table.with_row_index("row", offset=2 if p.suffix.lower() != ".parquet" else 0).to_dicts()
    keys: list[str] = []
    bad: list[str] = []
    if "run_id" in table.columns:
        known = set(cat["run_id"].to_list())
        for r in rows:
            rid = str(r["run_id"] or "")
            if rid not in known:
                bad.append(f"row {r['row']}: unknown run id {rid!r}")
            keys.append(rid)
    elif "source" in table.columns:
        ep_col = "episode" if "episode" in table.columns else ("scenario.episode" if "scenario.episode" in table.columns else None)
        has_ep = "scenario.episode" in cat.columns
        for r in rows:
            src = str(r["source"] or "")
            src = src.rstrip("/")
            sel = cat.filter((pl.col("source") == src) | pl.col("source").str.ends_with("/" + src)
                             | pl.col("source").str.contains("/" + src + "/", literal=True))
            if ep_col is not None and has_ep:
                sel = sel.filter(pl.col("scenario.episode").cast(pl.String) == str(r[ep_col]))
            if sel.height != 1:
                what = "no run" if sel.height == 0 else f"{sel.height} runs (add an 'episode' column)"
                bad.append(f"row {r['row']}: source {src!r}" + (f" episode {r[ep_col]}" if ep_col else "") + f" matches {what}")
                keys.append("")
            else:
                keys.append(str(sel["run_id"][0]))
    else:
        msg = f"{str(p)!r}: a label file is keyed by 'run_id' or by 'source' (+ 'episode'); columns: {', '.join(table.columns)}"
        raise ConfigError(msg)
    for r in rows:
        if str(r["outcome"]) not in LABEL_OUTCOMES:
            bad.append(f"row {r['row']}: outcome {r['outcome']!r} is not one of {', '.join(LABEL_OUTCOMES)}")
    seen: dict[str, int] = {}
    for r, k in zip(rows, keys, strict=True):
        if k and k in seen:
            bad.append(f"row {r['row']}: run {k} is labelled twice (also row {seen[k]})")
        seen.setdefault(k, r["row"])
    if bad:
        msg = f"{str(p)!r}: refused, nothing was labelled: " + "; ".join(bad[:10]) + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
        raise ConfigError(msg)
    specs = []
    for r, k in zip(rows, keys, strict=True):
        at, reason = r.get("at"), r.get("reason")
        try:
            at_s = float(at) if at not in (None, "") else None
        except ValueError:
            msg = f"{str(p)!r}: refused, nothing was labelled: row {r['row']}: 'at' must be seconds, got {at!r}"
            raise ConfigError(msg) from None
        specs.append((k, str(r["outcome"]), str(reason) if reason not in (None, "") else None, at_s))
    return _label_many(store, specs, user=user)
