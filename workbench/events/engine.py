"""Evaluate a :class:`~workbench.events.rules.RuleSet` on one run.

Signals are read piece by piece along time (:class:`workbench.pieces.StreamPieces`),
so a run larger than memory is evaluated in bounded memory; the detectors of
:mod:`workbench.events.detect` carry their state across pieces.

Examples
--------
>>> import numpy as np, xarray as xr, workbench as wb
>>> from workbench.events import RuleSet, evaluate
>>> t = np.arange(0, 10_000_000_000, 100_000_000)
>>> ds = xr.Dataset({"force": (("time",), np.where((t > 2e9) & (t < 5e9), 30.0, 0.0))}, coords={"time": t})
>>> info = wb.RunInfo(run_id="r1", start_ns=0, end_ns=int(t[-1]))
>>> run = wb.Run(info=info, streams={"ft": ds})
>>> rules = RuleSet.from_dict({"events": [{"name": "contact", "signal": {"stream": "ft"}, "above": 10}],
...                            "outcome": {"success": {"event": "contact"}}})
>>> ev = evaluate(run, rules)
>>> ev.events["kind"].to_list(), ev.outcome, ev.missing
(['contact', 'success'], 'success', {})
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.events.detect import Changes, Intervals, sequence_then, sequence_without
from workbench.events.rules import LEVELS, Change, Clause, Match, RuleSet, Sequence, Signal, Threshold
from workbench.model import ConfigError, Run

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = ["Evaluation", "RuleProblem", "evaluate", "signal_pieces"]

_NS = 1_000_000_000
_EVENT_COLUMNS = ("time", "kind", "detail", "origin")


class RuleProblem(ConfigError):
    """A rule that names a variable, dimension or label the run's stream does not have."""


class _Absent(Exception):
    """The run lacks a stream the rule reads (the rule does not apply to it)."""


@dataclass
class Evaluation:
    """What a rule set made of one run.

    Attributes
    ----------
    events
        The derived events (``time``, ``kind``, ``detail``, ``origin``), by time.
    outcome
        ``"success"``, ``"failure"`` or ``None`` (no outcome clause held or none given).
    outcome_ns
        Time of the evidence that decided the outcome.
    clause
        The clause that decided it (text), or ``None``.
    missing
        Rule name → why it did not apply (the streams it reads are absent).
    skipped
        Rules (and ``outcome[i]`` clauses) whose ``when:`` this run does not match.
    counts
        Rule name → events made.
    """

    events: pl.DataFrame
    outcome: str | None = None
    outcome_ns: int | None = None
    clause: str | None = None
    missing: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- signals


def _ns(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t)
    return t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64, copy=False)


def _base(run: Run, sig: Signal, rule: str) -> tuple[xr.Dataset, str, np.ndarray | None]:
    """Stream, variable and the component columns (``None``: all) of a base signal."""
    assert sig.stream is not None
    ds = run.streams.get(sig.stream)
    if ds is None:
        raise _Absent(f"stream {sig.stream!r} absent")
    timed = [str(v) for v in ds.data_vars if "time" in ds[v].dims]
    var = sig.variable
    if var is None:
        if len(timed) != 1:
            msg = (f"rule {rule!r}: signal {sig.describe()}: stream {sig.stream!r} has {len(timed)} variables; "
                   f"name one with 'variable': {', '.join(timed) or '(none)'}")
            raise RuleProblem(msg)
        var = timed[0]
    if var not in timed:
        msg = f"rule {rule!r}: signal {sig.describe()}: stream {sig.stream!r} has no variable {var!r}; variables: {', '.join(timed)}"
        raise RuleProblem(msg)
    da = ds[var].transpose("time", ...)
    extra = [str(d) for d in da.dims[1:]]
    sel = dict(sig.select)
    unknown = [d for d in sel if d not in extra]
    if unknown:
        msg = (f"rule {rule!r}: signal {sig.describe()}: {sig.stream}/{var} has no dimension {unknown[0]!r}; "
               f"dimensions: {', '.join(extra) or '(only time)'}")
        raise RuleProblem(msg)
    if not extra:
        return ds, var, None
    shape = [int(da.sizes[d]) for d in extra]
    index: list[Any] = []
    for d, size in zip(extra, shape, strict=True):
        if d not in sel:
            index.append(slice(None))
            continue
        labels = [str(v) for v in ds[d].values] if d in ds.coords else [str(i) for i in range(size)]
        if sel[d] not in labels:
            msg = (f"rule {rule!r}: signal {sig.describe()}: no {d} {sel[d]!r} in {sig.stream}/{var}; "
                   f"{d} labels: {', '.join(labels)}")
            raise RuleProblem(msg)
        index.append(labels.index(sel[d]))
    cols = np.arange(int(np.prod(shape))).reshape(shape)[tuple(index)].ravel()
    return ds, var, cols


def signal_pieces(run: Run, sig: Signal, *, rule: str = "", rows: int | None = None,
                  native: bool = False) -> Iterator[tuple[Any, np.ndarray]]:
    """``(times_ns, values)`` pieces of a signal: values are ``(n,)`` float64.

    With *native*, a signal that is one stored variable of one component (no ``norm``,
    ``bit`` or component selection) comes as stored (float32 stays float32) with times
    that may be :class:`~workbench.pieces.LazyTimes` and values that are a
    view of a reused buffer: for a consumer that reads each piece once and looks up
    only a few times (as :class:`~workbench.events.detect.Intervals` does).

    Raises :class:`RuleProblem` when the signal names a variable, dimension or label
    the run does not have, or selects several components without ``norm``.
    """
    from workbench.pieces import StreamPieces

    if sig.stream is not None or sig.norm is not None:
        base = sig if sig.stream is not None else sig.norm
        assert base is not None
        if base.stream is None:
            for t, x in signal_pieces(run, base, rule=rule, rows=rows):
                yield t, np.abs(x)
            return
        ds, var, cols = _base(run, base, rule)
        da = ds[var]
        width = int(np.prod([da.sizes[d] for d in da.dims if d != "time"], dtype=np.int64)) if cols is None else int(cols.size)
        if sig.stream is not None and width > 1:
            dims = ", ".join(f"{d}" for d in da.dims if d != "time")
            msg = (f"rule {rule!r}: signal {sig.describe()} has {width} components; select one "
                   f"({dims}: LABEL) or use {{norm: …}}")
            raise RuleProblem(msg)
        sp = StreamPieces(ds, rows=rows)
        if native and _is_native(sig, cols, width):
            for t, v in sp.scan(var):
                yield t, v.reshape(-1)
            return
        for _a, _b, _lo, p in sp.pieces(["time", var]):
            t = p["time"]
            v = np.asarray(p[var], dtype=np.float64).reshape(t.size, -1)
            if cols is not None:
                v = v[:, cols]
            x = np.sqrt(np.sum(v * v, axis=1)) if sig.norm is not None else v[:, 0]
            if base.bit is not None:
                x = np.where(np.isnan(x), np.nan, (np.nan_to_num(x).astype(np.int64) >> base.bit) & 1).astype(np.float64)
            yield t, x
        return
    if sig.derivative is not None:
        prev: tuple[int, float] | None = None
        for t, x in signal_pieces(run, sig.derivative, rule=rule, rows=rows):
            if t.size == 0:
                continue
            tt = np.concatenate(([prev[0]], t)) if prev else t
            xx = np.concatenate(([prev[1]], x)) if prev else x
            prev = (int(t[-1]), float(x[-1]))
            if tt.size < 2:
                continue
            dt = np.diff(tt).astype(np.float64) / _NS
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(dt > 0, np.diff(xx) / dt, np.nan)
            yield tt[1:], d
        return
    assert sig.diff is not None
    first, second = sig.diff
    other = _Reader(run, second, rule, rows)
    for t, x in signal_pieces(run, first, rule=rule, rows=rows):
        yield t, x - other.at(t)


def _is_native(sig: Signal, cols: np.ndarray | None, width: int) -> bool:
    """One stored variable of one component, read as stored."""
    return sig.stream is not None and cols is None and sig.bit is None and width == 1


def native_pieces(run: Run, sig: Signal, *, rule: str = "", rows: int | None = None) -> tuple[Any, str] | None:
    """``(StreamPieces, variable)`` when *sig* is read as stored (see :func:`signal_pieces`
    with *native*), for a consumer that scans its pieces with
    :meth:`~workbench.pieces.StreamPieces.scan_map`; ``None`` otherwise."""
    from workbench.pieces import StreamPieces

    if sig.stream is None:
        return None
    ds, var, cols = _base(run, sig, rule)
    da = ds[var]
    width = int(np.prod([da.sizes[d] for d in da.dims if d != "time"], dtype=np.int64)) if cols is None else int(cols.size)
    if not _is_native(sig, cols, width):
        return None
    return StreamPieces(ds, rows=rows), var


class _Reader:
    """Values of a base (or norm) signal interpolated at given times, reading only the
    rows that bracket them."""

    def __init__(self, run: Run, sig: Signal, rule: str, rows: int | None) -> None:
        from workbench.pieces import StreamPieces

        base = sig.norm if sig.norm is not None else sig
        if base.stream is None:
            msg = f"rule {rule!r}: the second signal of a diff must be a stream variable or its norm, got {sig.describe()}"
            raise RuleProblem(msg)
        self.ds, self.var, self.cols = _base(run, base, rule)
        self.norm = sig.norm is not None
        self.sp = StreamPieces(self.ds, rows=rows)

    def at(self, t: np.ndarray) -> np.ndarray:
        if t.size == 0 or self.sp.n == 0:
            return np.full(t.size, np.nan)
        a, b = self.sp.covering(int(t[0]), int(t[-1]))
        p = self.sp.read(["time", self.var], a, max(b, a + 1))
        tt = p["time"]
        v = np.asarray(p[self.var], dtype=np.float64).reshape(tt.size, -1)
        if self.cols is not None:
            v = v[:, self.cols]
        y = np.sqrt(np.sum(v * v, axis=1)) if self.norm else v[:, 0]
        out: np.ndarray = np.interp(t, tt, y)
        out[(t < tt[0]) | (t > tt[-1])] = np.nan
        return out


# --------------------------------------------------------------------------- rules


def _detail(**values: Any) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True, default=str)


def _intervals(run: Run, rule: Threshold | Change, rows: int | None) -> list[tuple[int, int, float, bool]]:
    if isinstance(rule, Threshold):
        det = Intervals.threshold(rule.direction, rule.level, rule.release,
                                  min_duration_ns=int(rule.min_duration * _NS), refractory_ns=int(rule.refractory * _NS))
    else:
        assert rule.equals is not None
        det = Intervals.equals(rule.equals, min_duration_ns=int(rule.min_duration * _NS), refractory_ns=int(rule.refractory * _NS))
    source = native_pieces(run, rule.signal, rule=rule.name, rows=rows)
    if source is not None:  # one stored variable: pieces read and scanned on every core
        sp, var = source
        for piece in sp.scan_map(var, lambda t, v, scratch: det.scan(t, v.reshape(-1), scratch)):
            det.merge(piece)
        return det.finish()
    for t, x in signal_pieces(run, rule.signal, rule=rule.name, rows=rows, native=True):
        det.feed(t, x)
    return det.finish()


def _rows_threshold(run: Run, rule: Threshold | Change, rows: int | None) -> list[tuple[int, str]]:
    out = []
    for start, end, peak, is_open in _intervals(run, rule, rows):
        extra: dict[str, Any] = {}
        if isinstance(rule, Threshold):
            extra["level"], extra["release"] = rule.level, rule.release_level
        else:
            extra["value"] = rule.value_name(float(rule.equals or 0.0))
        out.append((start, _detail(rule=rule.name, start=start, end=end, duration_s=(end - start) / _NS,
                                   peak=None if np.isnan(peak) else peak, open=is_open, signal=rule.signal.describe(), **extra)))
    return out


def _rows_change(run: Run, rule: Change, rows: int | None) -> list[tuple[int, str]]:
    det = Changes(rule.from_, rule.to)
    for t, x in signal_pieces(run, rule.signal, rule=rule.name, rows=rows):
        det.feed(t, x)
    return [(t, _detail(rule=rule.name, **{"from": rule.value_name(a), "to": rule.value_name(b)}, signal=rule.signal.describe()))
            for t, a, b in det.finish()]


def _level_rank(level: Any) -> int:
    text = str(level).upper() if level is not None else ""
    text = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}.get(text, text)
    return LEVELS.index(text) if text in LEVELS else -1


def _rows_match(events: list[tuple[int, str, dict[str, Any]]], rule: Match) -> list[tuple[int, str]]:
    rx = rule.regex
    need = LEVELS.index(rule.level) if rule.level is not None else None
    out = []
    for t, kind, detail in events:
        if kind != rule.text:
            continue
        if need is not None and _level_rank(detail.get("level")) < need:
            continue
        text = detail.get(rule.field)
        if not isinstance(text, str):
            continue
        m = rx.search(text)
        if m is None:
            continue
        groups = m.groupdict() or {str(i + 1): g for i, g in enumerate(m.groups())}
        out.append((t, _detail(rule=rule.name, text=text, matched=m.group(0), level=detail.get("level"), **groups)))
    return out


def _parse(detail: Any) -> dict[str, Any]:
    try:
        d = json.loads(detail) if detail else {}
    except (TypeError, json.JSONDecodeError):
        return {"message": str(detail)}
    return d if isinstance(d, dict) else {"value": d}


def _clause(run: Run, clause: Clause, kinds: Mapping[str, list[int]], rows: int | None) -> int | None:
    """Time at which the clause holds, or ``None``."""
    if clause.form == "event":
        times = kinds.get(str(clause.event), [])
        return min(times) if times else None
    assert clause.signal is not None and clause.value is not None
    v = float(clause.value)

    def passes(x: np.ndarray) -> np.ndarray:
        hit: np.ndarray = x > v if clause.op == "above" else x < v if clause.op == "below" else x == v
        return hit

    last: tuple[int, float] | None = None
    for t, x in signal_pieces(run, clause.signal, rule="outcome", rows=rows):
        ok = ~np.isnan(x)
        if clause.form == "any":
            hit = np.flatnonzero(passes(x) & ok)
            if hit.size:
                return int(t[hit[0]])
        elif ok.any():
            i = int(np.flatnonzero(ok)[-1])
            last = (int(t[i]), float(x[i]))
    if clause.form == "final" and last is not None and bool(passes(np.array([last[1]]))[0]):
        return last[0]
    return None


def run_context(run: Run) -> dict[str, Any]:
    """The catalog values a ``when:`` tests: factors, ``name``, ``reader``, ``source``."""
    prov = run.info.provenance
    ctx: dict[str, Any] = dict(run.info.factors())
    ctx.update(name=run.info.name, reader=prov.reader, source=prov.sources[0].path if prov.sources else None)
    return ctx


def evaluate(run: Run, rules: RuleSet, *, origin: str = "rule", rows: int | None = None,
             strict_streams: bool = False, context: Mapping[str, Any] | None = None) -> Evaluation:
    """Apply *rules* to *run*: the events they make and the outcome they decide.

    Parameters
    ----------
    run
        The run (its log events feed text and sequence rules).
    rules
        The rule set.
    origin
        Prefix of the events' origin: ``"rule"`` gives ``rule:<name>``.
    rows
        Rows per piece when streams are read (``None``: automatic).
    strict_streams
        Raise instead of listing a rule whose stream the run lacks.
    context
        Values ``when:`` tests (default: :func:`run_context` of *run*).

    Raises
    ------
    RuleProblem
        A rule names a variable, dimension or label the run's stream does not have.
    """
    import polars as pl

    log_events = [(int(t), str(k), _parse(d)) for t, k, d in zip(run.events["time"].to_list(), run.events["kind"].to_list(),
                                                                  run.events["detail"].to_list(), strict=True)]
    kinds: dict[str, list[int]] = {}
    for t, k, _ in log_events:
        kinds.setdefault(k, []).append(t)
    end_ns = max(int(run.info.end_ns), max((t for t, _, _ in log_events), default=0))
    rows_out: list[tuple[int, str, str, str]] = []
    missing: dict[str, str] = {}
    counts: dict[str, int] = {}
    skipped: list[str] = []
    ctx = run_context(run) if context is None else context
    for rule in rules.events:
        if not rule.applies_to(ctx):
            skipped.append(rule.name)
            continue
        try:
            if isinstance(rule, Threshold) or (isinstance(rule, Change) and rule.equals is not None):
                made = _rows_threshold(run, rule, rows)
            elif isinstance(rule, Change):
                made = _rows_change(run, rule, rows)
            elif isinstance(rule, Match):
                made = _rows_match(log_events, rule)
            else:
                assert isinstance(rule, Sequence)
                a = np.array(sorted(kinds.get(rule.first, [])), dtype=np.int64)
                b = np.array(sorted(kinds.get(rule.second, [])), dtype=np.int64)
                within = int(rule.within * _NS)
                same = rule.first == rule.second
                if rule.then is not None:
                    made = [(tb, _detail(rule=rule.name, first=rule.first, first_time=ta, then=rule.then, after_s=(tb - ta) / _NS))
                            for ta, tb in sequence_then(a, b, within, same=same)]
                else:
                    made = [(ta, _detail(rule=rule.name, first=rule.first, without=rule.without, within_s=rule.within))
                            for ta in sequence_without(a, b, within, end_ns, same=same)]
        except _Absent as why:
            if strict_streams:
                msg = f"rule {rule.name!r}: {why}; streams: {', '.join(sorted(run.streams)) or '(none)'}"
                raise RuleProblem(msg) from None
            missing[rule.name] = str(why)
            continue
        counts[rule.name] = len(made)
        kind = rule.event_kind
        for t, detail in made:
            rows_out.append((t, kind, detail, f"{origin}:{rule.name}"))
            kinds.setdefault(kind, []).append(t)
    outcome = when = clause_text = None
    for i, clause in enumerate(rules.outcome.clauses):
        if not clause.applies_to(ctx):
            skipped.append(f"outcome[{i}]")
            continue
        try:
            at = _clause(run, clause, kinds, rows)
        except _Absent as why:
            missing[f"outcome[{i}]"] = str(why)
            continue
        if at is not None:
            outcome, when, clause_text = clause.result, at, clause.describe()
            rows_out.append((at, clause.result, _detail(rule="outcome", clause=clause_text), f"{origin}:outcome"))
            break
    events = pl.DataFrame(
        {"time": [r[0] for r in rows_out], "kind": [r[1] for r in rows_out],
         "detail": [r[2] for r in rows_out], "origin": [r[3] for r in rows_out]},
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String, "origin": pl.String},
    ).sort("time", maintain_order=True)
    return Evaluation(events=events, outcome=outcome, outcome_ns=when, clause=clause_text, missing=missing,
                      counts=counts, skipped=skipped)
