"""Data grading: can this run's data be trusted, and if not, where and why?

:func:`grade` runs a fixed set of checks on every stream of a run and returns a
letter grade with a findings table (one row per finding: stream, check, severity,
value, threshold, time window, detail).

Severities and grades:

* ``error`` — the data misleads if used as is (clock jump, a truncated/salvaged file,
  mostly NaN values);
* ``warning`` — the data is usable with care (gaps/dropped messages, rate off nominal,
  jitter, duplicate or out-of-order stamps, latency spikes, frozen or saturated
  values, calibration that drifts during the run);
* ``info`` — worth knowing, no effect on the grade (a steady calibration offset,
  topics the reader could not decode).

Grade: ``A`` no warning or error; ``B`` one or two warnings; ``C`` three or more
warnings; ``D`` one error; ``F`` two or more errors.

Thresholds have defaults (:class:`Thresholds`) and can be set in a ``quality:``
section of ``workbench.yaml``.

Streams are read piece by piece along time (:mod:`workbench.pieces`): a
lazy run larger than memory is graded in bounded memory with the findings it would
have in memory (medians and percentiles included: they are exact).

Examples
--------
>>> import numpy as np, xarray as xr
>>> from workbench.model import Run, RunInfo
>>> t = np.arange(0, 2_000_000_000, 10_000_000)
>>> t = np.delete(t, range(50, 90))            # a 0.4 s hole in a 100 Hz stream
>>> ds = xr.Dataset({"v": ("time", np.sin(t / 1e8))}, coords={"time": t})
>>> result = grade(Run(RunInfo("r", start_ns=0, end_ns=int(t[-1])), {"s": ds}))
>>> result.grade, result.findings["check"].to_list()
('B', ['gap'])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError, Run
from workbench.parallel import map_runs
from workbench.pieces import (
    COLLECT_VALUES,
    Runs,
    StreamPieces,
    median,
    percentile,
)

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

    from workbench.quality.kinds import StreamKind
    from workbench.store import Store

__all__ = [
    "GRADES",
    "SEVERITIES",
    "Grade",
    "Thresholds",
    "explain",
    "grade",
    "grade_letter",
    "grade_missing",
    "grade_store",
    "load_thresholds",
]

SEVERITIES = ("info", "warning", "error")
GRADES = ("A", "B", "C", "D", "F")


@dataclass(frozen=True)
class Thresholds:
    """Limits of the checks. Every field can be set in ``workbench.yaml`` → ``quality:``.

    Attributes
    ----------
    gap_factor
        A gap is an interval longer than this many median periods.
    rate_tolerance
        Relative deviation of the measured rate from the nominal one that is flagged.
    nominal_rates
        Nominal rate (Hz) per stream name; also read from a stream's
        ``nominal_rate_hz`` attribute.
    jitter_cv
        Coefficient of variation of the sample intervals (gaps excluded) that is flagged.
    clock_jump_ms
        A step in (header − log) time larger than this is a clock jump.
    latency_spike_ms
        Latency above the run's median latency by more than this is a spike.
    nan_warning, nan_error
        Fractions of NaN values flagged as warning / error.
    frozen_s, frozen_min_samples
        A stream whose values stay identical this long (and this many samples) is frozen.
    saturation_fraction, saturation_min_samples
        Samples at or beyond a variable's limits, as a fraction and a count.
    limits
        Valid range per ``"<stream>.<variable>"`` (``[min, max]``); also read from the
        variable's ``valid_min``/``valid_max``/``valid_range`` attributes (CF
        conventions). Without limits a variable is not checked for saturation: an
        arm resting at a joint angle is indistinguishable from a clipped sensor.
    calibration_offset_rad
        Commanded-vs-measured offset at rest worth reporting (info), and the change of
        that offset during the run that is flagged as drift (warning).
    rest_speed
        Commanded joint speed (units/s) below which the arm is considered at rest.
    command_stream, measured_stream
        Streams compared for calibration (JointState-like, with ``position``).
    frozen_exempt
        Stream name patterns (``fnmatch``) never flagged as frozen: setpoints and
        transforms of objects at rest legitimately hold still.
    frozen_live
        A measurement is checked for frozen spans only when it is *live*: its values
        change on at least this share of its steps outside those spans (a noisy or
        continuous signal that suddenly repeats itself), and the run's commands do
        not hold still at the same time (an arm at rest is not a frozen sensor).
    gap_missing, gap_longest_s
        A stream's gaps are a warning when they miss at least this share of the
        samples expected at its rate, or the longest lasts at least this long;
        otherwise they are reported as info (shaded in plots, no effect on the grade).
    outcome_window_s
        Consequences: a gap, frozen span or NaN span (warning) on a stream that feeds a
        metric becomes an error when it covers the moment the run's outcome was decided
        or ends less than this many seconds before it — the data that decided the
        outcome is missing.
    streams
        Per stream name or glob: ``kind``, ``role``, ``nan``, ``frozen``, ``clock``
        (see :mod:`workbench.quality.kinds`).
    """

    gap_factor: float = 3.0
    rate_tolerance: float = 0.1
    nominal_rates: dict[str, float] = field(default_factory=dict)
    jitter_cv: float = 1.0
    clock_jump_ms: float = 100.0
    latency_spike_ms: float = 50.0
    nan_warning: float = 0.0
    nan_error: float = 0.5
    frozen_s: float = 2.0
    frozen_min_samples: int = 20
    saturation_fraction: float = 0.02
    saturation_min_samples: int = 10
    limits: dict[str, list[float]] = field(default_factory=dict)
    calibration_offset_rad: float = 0.01
    rest_speed: float = 0.01
    command_stream: str = "joint_commands"
    measured_stream: str = "joint_states"
    frozen_exempt: tuple[str, ...] = ("joint_commands", "*command*", "tf.*", "tf_static.*")
    frozen_live: float = 0.9
    gap_missing: float = 0.01
    gap_longest_s: float = 1.0
    outcome_window_s: float = 1.0
    streams: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "thresholds") -> Thresholds:
        """Build from a mapping, rejecting unknown keys with the valid ones listed."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            msg = f"{origin}: unknown quality threshold(s) {unknown}; valid: {', '.join(sorted(valid))}"
            raise ConfigError(msg)
        kwargs = dict(data)
        if "streams" in kwargs:
            from workbench.quality.kinds import parse_policies

            parse_policies(kwargs["streams"], origin=origin)  # refused here, with the choices
            kwargs["streams"] = dict(kwargs["streams"] or {})
        if "frozen_exempt" in kwargs:
            kwargs["frozen_exempt"] = tuple(kwargs["frozen_exempt"])
        try:
            return cls(**kwargs)
        except TypeError as err:
            msg = f"{origin}: {err}"
            raise ConfigError(msg) from err


def load_thresholds(path: str | Path | None = None, *, store_root: str | Path | None = None) -> Thresholds:
    """Thresholds from the ``quality:`` section of *path*, else of the ``workbench.yaml``
    that applies (:func:`workbench.config.find_config`: the store's folder, then the
    current folder); the defaults when there is none."""
    from workbench.config import find_config
    from workbench.config import section as config_section

    p = Path(path) if path is not None else find_config(store_root)
    if p is None or not p.is_file():
        return Thresholds()
    section = config_section("quality", p) or {}
    if not isinstance(section, dict):
        msg = f"{str(p)!r}: 'quality' must be a mapping"
        raise ConfigError(msg)
    return Thresholds.from_mapping(section, origin=str(p))


def grade_letter(n_warning: int, n_error: int) -> str:
    """The grade for a count of warnings and errors (see the module doc)."""
    if n_error >= 2:
        return "F"
    if n_error == 1:
        return "D"
    if n_warning >= 3:
        return "C"
    if n_warning >= 1:
        return "B"
    return "A"


def _issues(findings: pl.DataFrame) -> list[tuple[str, str, str, int, str]]:
    """(severity, stream, check, rows, what) per stream and check that affects the
    grade: many gaps of one stream are one issue, at its worst severity."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in findings.iter_rows(named=True):
        if r["severity"] in ("warning", "error"):
            groups.setdefault((r["stream"], r["check"]), []).append(r)
    out = []
    for (stream, check), rows in groups.items():
        sev = "error" if any(r["severity"] == "error" for r in rows) else "warning"
        detail = next(r for r in rows if r["severity"] == sev)["detail"]  # the worst one speaks
        what = detail.split("; ", 1)[1] if check == "gap" and "; " in detail else detail
        if check != "gap" and len(rows) > 1:
            what += f" (and {len(rows) - 1} more)"
        out.append((sev, stream, check, len(rows), what))
    out.sort(key=lambda x: (x[0] != "error", x[1], x[2]))
    return out


def _letter(findings: pl.DataFrame) -> str:
    issues = _issues(findings)
    return grade_letter(sum(i[0] == "warning" for i in issues), sum(i[0] == "error" for i in issues))


def explain(letter: str, findings: pl.DataFrame, *, limit: int = 3, feeds: Mapping[str, Sequence[str]] | None = None,
            events: pl.DataFrame | None = None, start_ns: int | None = None) -> str:
    """The grade in a sentence: the letter and the issues behind it, worst first.

    With *feeds* (stream → the metrics it is an input of), issues on streams that feed
    a metric come first and name them; with *events* (and the run's *start_ns*), the
    moment of each issue is placed after the run's last event before it ("after grasp").

    Examples
    --------
    >>> import polars as pl
    >>> f = pl.DataFrame({"stream": ["imu", "imu"], "check": ["gap", "gap"], "severity": ["warning"] * 2,
    ...                   "detail": ["0.5 s without data; 2.4 % of the samples expected at 100 Hz missing in 2 gap(s)"] * 2})
    >>> explain("B", f)
    'B: imu gap — 2.4 % of the samples expected at 100 Hz missing in 2 gap(s)'
    """
    issues = _issues(findings)
    if not issues:
        n_info = findings.height
        return f"{letter}: no warning or error" + (f" ({n_info} note(s))" if n_info else "")
    feeds = feeds or {}
    # worst first, and among equals those whose stream feeds a metric
    issues.sort(key=lambda x: (x[0] != "error", not feeds.get(x[1]), x[1], x[2]))
    moments = _moments(findings, events, start_ns)
    parts = []
    for _sev, stream, check, _n, what in issues[:limit]:
        text = f"{stream or 'file'} {check} — {what}"
        if moments.get((stream, check)):
            text += f", {moments[(stream, check)]}"
        if feeds.get(stream):
            shown = list(feeds[stream])[:4]
            text += f" (feeds {', '.join(shown)}{' …' if len(feeds[stream]) > 4 else ''})"
        parts.append(text)
    more = f"; and {len(issues) - limit} more issue(s)" if len(issues) > limit else ""
    return f"{letter}: " + "; ".join(parts) + more


_QUIET_EVENTS = frozenset({"log", "parameter", "dropout", "mark"})
"""Event kinds too frequent or too generic to place a finding by."""


def _moments(findings: pl.DataFrame, events: pl.DataFrame | None, start_ns: int | None) -> dict[tuple[str, str], str]:
    """(stream, check) → "at 12.3 s, after grasp" for its first finding with a time."""
    if start_ns is None:
        return {}
    timed = [e for e in (events.select("time", "kind").rows() if events is not None and events.height else [])
             if e[1] not in _QUIET_EVENTS]
    timed.sort()
    out: dict[tuple[str, str], str] = {}
    for r in findings.iter_rows(named=True):
        key = (r["stream"], r["check"])
        if key in out or r["severity"] == "info" or r["start_ns"] is None:
            continue
        t = int(r["start_ns"])
        text = f"at {(t - start_ns) / 1e9:.1f} s"
        before = [k for et, k in timed if et <= t]
        if before:
            text += f", after {before[-1]}"
        out[key] = text
    return out


def _feeds(run: Run) -> dict[str, tuple[str, ...]]:
    """Stream → the registered metrics that read it (through their roles)."""
    from workbench.metrics.registry import metrics
    from workbench.metrics.roles import ROLES, Binding, resolve_all

    by_role: dict[str, list[str]] = {}
    for name, metric in metrics().items():
        for role in getattr(metric, "roles", ()):
            by_role.setdefault(role, []).append(name)
    try:
        bound = resolve_all(run, roles=sorted(r for r in by_role if r in ROLES))
    except Exception:  # noqa: BLE001 - a role override that cannot apply must not stop grading
        return {}
    out: dict[str, list[str]] = {}
    for role, b in bound.items():
        if isinstance(b, Binding):
            for m in by_role.get(role, []):
                if m not in out.setdefault(b.stream, []):
                    out[b.stream].append(m)
    return {k: tuple(v) for k, v in out.items()}


@dataclass
class Grade:
    """A run's grade, the findings behind it and how each stream was classified.

    ``feeds`` maps each stream to the metrics that read it; ``events`` and ``start_ns``
    place each issue in time (:func:`explain`).
    """

    run_id: str
    grade: str
    findings: pl.DataFrame
    kinds: dict[str, StreamKind] = field(default_factory=dict)
    feeds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: pl.DataFrame | None = None
    start_ns: int | None = None

    def explain(self) -> str:
        """The letter and the issues behind it (:func:`explain`)."""
        return explain(self.grade, self.findings, feeds=self.feeds, events=self.events, start_ns=self.start_ns)

    def streams(self) -> pl.DataFrame:
        """One row per stream: kind, role, clock, period (ms), regularity, why."""
        import polars as pl

        rows = [{"stream": n, "kind": k.kind, "role": k.role, "clock": k.clock,
                 "period_ms": k.period_ns / 1e6, "regular": k.regular, "why": k.why} for n, k in self.kinds.items()]
        schema = {"stream": pl.String, "kind": pl.String, "role": pl.String, "clock": pl.String,
                  "period_ms": pl.Float64, "regular": pl.Float64, "why": pl.String}
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity."""
        sev = self.findings["severity"].to_list()
        return {s: sev.count(s) for s in SEVERITIES}

    def summary(self) -> dict[str, Any]:
        """What the catalog keeps: grade, counts, and the checks that fired."""
        c = self.counts()
        flagged = sorted({r["check"] for r in self.findings.iter_rows(named=True) if r["severity"] != "info"})
        return {
            "grade": self.grade,
            "n_warning": c["warning"],
            "n_error": c["error"],
            "n_info": c["info"],
            "checks": ",".join(flagged),
            "why": self.explain(),
        }


class _Findings:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        stream: str,
        check: str,
        severity: str,
        value: float,
        threshold: float,
        start: int | None = None,
        end: int | None = None,
        detail: str = "",
    ) -> None:
        self.rows.append(
            {
                "stream": stream,
                "check": check,
                "severity": severity,
                "value": float(value),
                "threshold": float(threshold),
                "start_ns": None if start is None else int(start),
                "end_ns": None if end is None else int(end),
                "detail": detail,
            }
        )

    def frame(self) -> pl.DataFrame:
        import polars as pl

        schema = {
            "stream": pl.String,
            "check": pl.String,
            "severity": pl.String,
            "value": pl.Float64,
            "threshold": pl.Float64,
            "start_ns": pl.Int64,
            "end_ns": pl.Int64,
            "detail": pl.String,
        }
        return pl.DataFrame(self.rows, schema=schema, orient="row") if self.rows else pl.DataFrame(schema=schema)


# ----------------------------------------------------------------------------- checks
#
# Every check reads its stream through StreamPieces: piece by piece along time, with
# the neighbouring row a difference needs, carrying counts, extremes, first positions
# and open runs from piece to piece. Medians and percentiles are exact (multi-pass
# selection, see workbench.pieces). A stream held in memory is one piece
# unless chunk_rows says otherwise; a lazy stream is read ~64 MB at a time.


@dataclass
class _TimeStats:
    """What one pass over a stream's log times tells (shared by the timing checks)."""

    n: int
    first: int = 0
    last: int = 0
    dup: int = 0
    dup_at: int = 0
    back: int = 0
    back_at: int = -1  # index i of the first backward step t[i] → t[i + 1]
    pos: int = 0
    period: float = 0.0  # median of the positive intervals (0: none)


def _intervals(rd: StreamPieces, col: str = "time") -> Iterator[np.ndarray]:
    for _, _, _, p in rd.pieces([col], before=1):
        yield np.diff(p[col])


def _time_stats(rd: StreamPieces, col: str = "time", period: float | None = None) -> _TimeStats:
    """Counts of a clock's intervals (duplicate, backward, positive) and its period: the
    median positive interval, or *period* when given (a second clock's period measured
    on a sample by the classification, which saves a full pass for the median)."""
    st = _TimeStats(rd.n)
    if rd.n == 0:
        return st
    for a, _, lo, p in rd.pieces([col, "time"] if col != "time" else ["time"], before=1):
        t = p[col]
        if a == 0:
            st.first = int(t[0])
        st.last = int(t[-1])
        dt = np.diff(t)
        zero = dt == 0
        k = int(zero.sum())
        if k:
            if not st.dup:
                st.dup_at = int(p["time"][np.flatnonzero(zero)[0]])
            st.dup += k
        neg = dt < 0
        k = int(neg.sum())
        if k:
            if not st.back:
                st.back_at = lo + int(np.flatnonzero(neg)[0])
            st.back += k
        st.pos += int(np.count_nonzero(dt > 0))
    if st.pos:
        st.period = period or median(lambda: (dt[dt > 0] for dt in _intervals(rd, col)), st.pos)
    return st


def _clock_name(ds: xr.Dataset, col: str) -> str:
    if col == "time":
        return "log clock"
    field_name = ds.attrs.get("header_field") or ds[col].attrs.get("clock") or "header stamp"
    return f"sensor clock ({field_name})"


def _check_timing(name: str, ds: xr.Dataset, rd: StreamPieces, st: _TimeStats, kind: StreamKind, th: Thresholds,
                  out: _Findings) -> None:
    """Duplicates, order, gaps, jitter and rate, on the clock the stream's kind names.

    Event and text streams get no gap, drop, jitter or duplicate check (their times
    say when something happened); a bursty stream is measured on its sensor stamps.
    """
    if st.n < 3:
        return
    if st.back:
        t_i, t_next = rd.times(st.back_at, st.back_at + 2)
        out.add(name, "out_of_order", "warning", st.back, 0, t_i, t_next, f"{st.back} log times go backwards")
    if not kind.timed:
        return
    col = "header_time" if kind.clock == "header" else "time"
    # the sensor clock's period from the classification when it was measured on a sample
    # of a long stream (exact below that size)
    from workbench.quality.kinds import SAMPLE_INTERVALS

    hint = kind.period_ns if kind.clock == "header" and rd.n > SAMPLE_INTERVALS + 1 else None
    cs = _time_stats(rd, col, hint) if col != "time" else st
    clock = _clock_name(ds, col)
    # duplicate stamps on the clock that is regular: the log clock of a periodic stream
    # (a recording fault), the sensor clock of a bursty one
    dup, dup_at, dup_clock = (cs.dup, cs.dup_at, clock) if kind.kind == "bursty" else (st.dup, st.dup_at, "log clock")
    if dup and not (dup_clock == "log clock" and kind.bursty_arrival):
        out.add(name, "duplicate_timestamps", "warning", dup, 0, dup_at, dup_at,
                f"{dup} samples share a stamp on the {dup_clock}")
    if cs.pos < 2:
        return
    period = cs.period
    limit = th.gap_factor * period
    n_regular = 0
    sum_regular = 0  # exact (Python int): the mean of the intervals is exact
    gaps: list[tuple[float, int, int, int]] = []
    names = [col, "time"] if col != "time" else ["time"]
    for _, _, _, p in rd.pieces(names, before=1):
        c, t = p[col], p["time"]
        dt = np.diff(c)
        for i in np.flatnonzero(dt > limit).tolist():
            gaps.append((float(dt[i]), int(t[i]), int(t[i + 1]), int(round(dt[i] / period)) - 1))
        regular = dt[(dt > 0) & (dt <= limit)]
        n_regular += regular.size
        sum_regular += int(regular.sum(dtype=np.int64))
    if gaps:
        expected = max(1.0, (cs.last - cs.first) / period + 1)
        missing = sum(g[3] for g in gaps)
        share = missing / expected
        longest = max(g[0] for g in gaps)
        serious = share >= th.gap_missing or longest / 1e9 >= th.gap_longest_s
        sev = "warning" if serious else "info"
        span = max(cs.last - cs.first, 1)
        summary = (f"{100 * share:.2g} % of the samples expected at {1e9 / period:.3g} Hz missing in {len(gaps)} "
                   f"gap(s), the longest {longest / 1e9:.3f} s ({longest / period:.0f} periods), "
                   f"{100 * sum(g[0] for g in gaps) / span:.2g} % of its time")
        for dt_i, t0, t1, n_missing in gaps:
            out.add(name, "gap", sev, dt_i / 1e6, limit / 1e6, t0, t1,
                    f"{dt_i / 1e9:.3f} s without data on the {clock}, about {n_missing} messages dropped "
                    f"(period {period / 1e6:.1f} ms); {summary}")

    def regular_pieces() -> Iterator[np.ndarray]:
        for dt in _intervals(rd, col):
            yield dt[(dt > 0) & (dt <= limit)]

    if n_regular > 10 and kind.kind != "state":
        mean = sum_regular / n_regular
        ssd = sum(float(np.sum((r.astype(np.float64) - mean) ** 2)) for r in regular_pieces())
        cv = float(np.sqrt(ssd / n_regular) / period)
        if cv > th.jitter_cv:
            p99 = percentile(regular_pieces, n_regular, 99)
            out.add(name, "jitter", "warning", cv, th.jitter_cv, st.first, st.last,
                    f"interval std/median {cv:.2f} on the {clock}, p99 {p99 / 1e6:.1f} ms vs median {period / 1e6:.1f} ms")
    nominal = th.nominal_rates.get(name) or ds.attrs.get("nominal_rate_hz")
    if nominal:
        duration = (cs.last - cs.first) / 1e9
        measured = (cs.n - 1) / duration if duration > 0 else 0.0
        dev = abs(measured - float(nominal)) / float(nominal)
        if dev > th.rate_tolerance:
            out.add(name, "rate", "warning", measured, float(nominal), st.first, st.last,
                    f"measured {measured:.1f} Hz vs nominal {float(nominal):.1f} Hz on the {clock}")


def _latency(rd: StreamPieces, a: int, b: int) -> np.ndarray:
    """(log − header) time of rows [a, b) as float64 ns: latency incl. any constant clock offset."""
    p = rd.read(["time", "header_time"], a, b)
    return (p["time"] - p["header_time"]).astype(np.float64)


def _check_clocks(name: str, ds: xr.Dataset, rd: StreamPieces, st: _TimeStats, kind: StreamKind, th: Thresholds,
                  out: _Findings) -> bool:
    """Clock jumps, backward sensor stamps and latency spikes: the sensor's stamp of a
    message against the time it was logged, two clocks that measure the same thing.
    Returns whether the sensor clock jumps or goes backwards (then it cannot time gaps).

    Only on timed streams (an event's stamp may be when it was raised, long before it
    was logged); on a bursty stream latency varies with the bursts, so only a
    persistent step of its lower envelope is a jump and spikes are not judged.
    """
    if "header_time" not in ds.coords or rd.n < 3 or not kind.timed:
        return False
    clocks = f"{_clock_name(ds, 'header_time')} vs the log clock"
    back, back_at = 0, -1
    for _, _, lo, p in rd.pieces(["header_time"], before=1):
        neg = np.diff(p["header_time"]) < 0
        k = int(neg.sum())
        if k:
            if not back:
                back_at = lo + int(np.flatnonzero(neg)[0])
            back += k
    jumps = _level_jumps(rd, st, th.clock_jump_ms * 1e6, envelope=kind.kind == "bursty")
    for j, size in jumps:
        direction = "backward" if size > 0 else "forward"  # sensor clock fell behind / ran ahead
        t_prev, t_j = rd.times(j - 1, j + 1)
        out.add(name, "clock_jump", "error", abs(size) / 1e6, th.clock_jump_ms, t_prev, t_j,
                f"sensor clock jumps {direction} by {abs(size) / 1e6:.1f} ms relative to the log clock ({clocks})")
    if back and not jumps:
        t_i, t_next = rd.times(back_at, back_at + 2)
        out.add(name, "out_of_order", "warning", back, 0, t_i, t_next,
                f"{back} stamps go backwards on the {_clock_name(ds, 'header_time')}")
    if jumps or kind.kind == "bursty" or kind.bursty_arrival:
        return bool(jumps or back)  # latency statistics are meaningless across a jump, and on bursty arrival

    def lat_ns() -> Iterator[np.ndarray]:  # exact int64: its order is that of the float latencies
        for _, _, _, p in rd.pieces(["time", "header_time"]):
            yield p["time"] - p["header_time"]

    med = median(lat_ns, rd.n)
    above = med + th.latency_spike_ms * 1e6
    runs = Runs(limit=1)
    n_spikes, worst_d = 0, -np.inf
    for a, _, _, p in rd.pieces(["time", "header_time"]):
        t = p["time"]
        d = (t - p["header_time"]).astype(np.float64)
        spikes = d > above
        k = int(spikes.sum())
        if k:
            n_spikes += k
            worst_d = max(worst_d, float(d[spikes].max()))
        runs.feed(spikes, a, t, t)
    runs.finish()
    if runs.count:
        worst = float(worst_d - med) / 1e6
        _, _, t_lo, t_hi = runs.kept[0]
        out.add(name, "latency_spike", "warning", worst, th.latency_spike_ms, t_lo, t_hi,
                f"{n_spikes} samples arrive > {th.latency_spike_ms:.0f} ms later than usual "
                f"({runs.count} episode(s), worst +{worst:.1f} ms; {clocks})")
    return bool(back)


def _level_jumps(rd: StreamPieces, st: _TimeStats, limit: float, *, envelope: bool = False) -> list[tuple[int, float]]:
    """``(index, size)`` where the latency steps persistently by more than *limit*.

    Latency is summarized per block of about 0.25 s (at least 5 samples): its median,
    or with *envelope* (blocks of about 1 s) its minimum (the messages that arrived without waiting, when
    arrival is bursty). A step counts when the level of the two blocks after it differs
    from the two before by more than *limit*, each pair steady (within *limit* / 2) —
    a burst or a spike at the start of a log is not a jump; an up-step followed within 2 s by a matching down-step back to the
    old level is a latency episode, not a clock jump. Memory: one float per block.
    """
    if st.pos == 0:
        return []
    block = max(5, int(round((1e9 if envelope else 0.25e9) / st.period)))
    nblocks = rd.n // block
    if nblocks < 4:
        return []
    step = max(1, rd.rows // block) * block  # whole blocks per piece
    reduce = np.min if envelope else np.median
    levels = np.concatenate([
        reduce((p["time"] - p["header_time"]).astype(np.float64).reshape(-1, block), axis=1)
        for _, _, _, p in rd.pieces(["time", "header_time"], stop=nblocks * block, step=step)
    ])
    # a step between block b and b + 1 (b = 1 … nblocks - 3), two blocks each side: the
    # median of two levels is their mean, their spread the difference (vectorized: one
    # pass over the blocks, a loop over the few candidates only)
    size_at = (levels[2:-1] + levels[3:]) / 2 - (levels[:-3] + levels[1:-2]) / 2
    steady = (np.abs(levels[1:-2] - levels[:-3]) <= limit / 2) & (np.abs(levels[3:] - levels[2:-1]) <= limit / 2)
    cands: list[tuple[int, float]] = []
    for b in (np.flatnonzero((np.abs(size_at) > limit) & steady) + 1).tolist():
        size = float(size_at[b - 1])
        if cands and b - cands[-1][0] // block <= 2 and np.sign(size) == np.sign(cands[-1][1]):
            continue  # the same step seen from the next blocks
        lo, hi = max(1, (b - 1) * block), min(rd.n, (b + 3) * block)
        j = lo + int(np.argmax(np.abs(np.diff(_latency(rd, lo - 1, hi)))))
        k = 5
        d = _latency(rd, max(0, j - k), min(rd.n, j + k))
        at = j - max(0, j - k)
        cands.append((j, float(np.median(d[at:]) - np.median(d[:at]))))
    jumps: list[tuple[int, float]] = []
    i = 0
    while i < len(cands):
        j, size = cands[i]
        if i + 1 < len(cands):
            j2, size2 = cands[i + 1]
            returns = np.sign(size2) != np.sign(size) and abs(size + size2) < 0.5 * limit
            if returns and (rd.time_at(j2) - rd.time_at(j)) <= 2e9:
                i += 2  # a temporary excursion: latency episode
                continue
        jumps.append((j, size))
        i += 1
    return jumps


def _numeric_vars(ds: xr.Dataset) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(vname), dict(var.attrs))
        for vname, var in ds.data_vars.items()
        if "time" in var.dims and var.dtype.kind in "fiu" and var.dtype.itemsize > 1
    ]


def _limits(name: str, vname: str, attrs: dict[str, Any], th: Thresholds) -> tuple[float, float] | None:
    configured = th.limits.get(f"{name}.{vname}")
    if configured is not None:
        return float(configured[0]), float(configured[1])
    if "valid_range" in attrs:
        lo, hi = attrs["valid_range"]
        return float(lo), float(hi)
    if "valid_min" in attrs or "valid_max" in attrs:
        return float(attrs.get("valid_min", -np.inf)), float(attrs.get("valid_max", np.inf))
    return None


@dataclass
class _VarState:
    """Counts carried over the pieces of one variable."""

    limits: tuple[float, float] | None
    cols: int = 0
    size: int = 0
    nan: int = 0
    nan_first: int = -1
    nan_last: int = -1
    # per column and limit ("max", "min"): [count, first row, last row]
    pinned: dict[tuple[int, str], list[int]] = field(default_factory=dict)


@dataclass
class _Frozen:
    """A stream's spans of unchanged values, and how often it changes elsewhere."""

    kind: StreamKind
    spans: list[tuple[int, int, int, int]]  # (first row, last row, first time, last time)
    steps: int = 0  # steps between samples
    changed: int = 0  # of those, steps where some value changed
    frozen_steps: int = 0  # steps inside the spans
    silences: list[tuple[int, int]] = field(default_factory=list)  # no sample for >= frozen_s
    first: int = 0
    last: int = 0

    @property
    def live(self) -> float:
        """Share of steps outside the spans where a value changed."""
        outside = self.steps - self.frozen_steps
        return self.changed / outside if outside > 0 else 0.0

    def covered(self, t0: int, t1: int) -> float:
        """Share of [t0, t1] inside this stream's spans."""
        if t1 <= t0:
            return 0.0
        held = [(a, b) for _, _, a, b in self.spans] + self.silences + [(t0, self.first), (self.last, t1)]
        held.sort()
        inside, reach = 0, t0
        for a, b in held:  # length of the union of the held intervals inside [t0, t1]
            a, b = max(a, reach), min(b, t1)
            if b > a:
                inside += b - a
                reach = b
        return inside / (t1 - t0)


def _check_values(name: str, ds: xr.Dataset, rd: StreamPieces, th: Thresholds, out: _Findings,
                  kind: StreamKind | None = None, reader: str = "") -> _Frozen | None:
    """NaN (only where a value was expected) and saturation; returns the frozen spans,
    judged with the other streams of the run (:func:`_report_frozen`)."""
    from workbench.quality.kinds import StreamKind, nan_is_unset

    kind = kind or StreamKind("periodic")
    if ds.attrs.get("kind") in {"image_encoded", "video_ref", "image"} or kind.kind == "text":
        return None
    if rd.n < 3:
        return None
    variables = _numeric_vars(ds)
    if not variables:
        return None
    states = {vname: _VarState(_limits(name, vname, attrs, th)) for vname, attrs in variables}
    frozen = Runs(
        keep=lambda lo, hi, t_lo, t_hi: (hi - lo + 1 >= th.frozen_min_samples) & ((t_hi - t_lo) / 1e9 >= th.frozen_s)
    )
    steps = changed = first = last = 0
    silences: list[tuple[int, int]] = []
    for a, _, lo, p in rd.pieces(["time", *states], before=1):
        t = p["time"]
        own = a - lo  # first row of this piece (row 0 may be the previous piece's last)
        rows_same = np.ones(t.size - 1, dtype=bool)
        for vname, s in states.items():
            v = p[vname].reshape(t.size, -1)
            s.cols = v.shape[1]
            s.size += (t.size - own) * v.shape[1]
            if v.dtype.kind == "f":
                nan = np.isnan(v)
                s.nan += int(nan[own:].sum())
                rows = np.flatnonzero(nan[own:].any(axis=1))
                if rows.size:
                    if s.nan_first < 0:
                        s.nan_first = int(t[own + rows[0]])
                    s.nan_last = int(t[own + rows[-1]])
                same = (v[1:] == v[:-1]) | (nan[1:] & nan[:-1])
            else:
                same = v[1:] == v[:-1]
            rows_same &= np.all(same, axis=1)
            if s.limits is None:
                continue
            lo_lim, hi_lim = s.limits
            for col in range(v.shape[1]):
                c = v[own:, col].astype(np.float64)
                for label, mask in (("max", c >= hi_lim), ("min", c <= lo_lim)):
                    idx = np.flatnonzero(mask)
                    if idx.size:
                        entry = s.pinned.setdefault((col, label), [0, int(t[own + idx[0]]), 0])
                        entry[0] += int(idx.size)
                        entry[2] = int(t[own + idx[-1]])
        frozen.feed(rows_same, lo, t[:-1], t[1:])
        if kind.role == "command" and len(silences) < 10_000:  # a command not sent holds too
            quiet = np.flatnonzero(np.diff(t) >= th.frozen_s * 1e9)
            silences.extend((int(t[i]), int(t[i + 1])) for i in quiet[:10_000].tolist())
        first = int(t[0]) if a == 0 else first
        last = int(t[-1])
        steps += rows_same.size  # each piece's steps are new (it starts at the previous piece's last row)
        changed += int(np.count_nonzero(~rows_same))
    frozen.finish()
    n = rd.n
    for vname, s in states.items():
        if s.nan and nan_is_unset(reader, name, vname, kind.policy, s.nan / s.size) is None:
            frac = s.nan / s.size
            if frac > th.nan_warning:
                sev = "error" if frac > th.nan_error else "warning"
                out.add(name, "nan", sev, frac, th.nan_warning if sev == "warning" else th.nan_error,
                        s.nan_first, s.nan_last, f"{vname}: {100 * frac:.1f} % NaN")
        if s.limits is None:
            continue
        lo_lim, hi_lim = s.limits
        for col in range(s.cols):
            for label in ("max", "min"):
                pinned, first, last = s.pinned.get((col, label), [0, 0, 0])
                if pinned >= th.saturation_min_samples and pinned / n >= th.saturation_fraction:
                    limit = hi_lim if label == "max" else lo_lim
                    out.add(name, "saturated", "warning", pinned / n, th.saturation_fraction,
                            first, last, f"{vname}[{col}] at its {label} limit {limit:g} in {pinned} samples")
    spans = [tuple(int(x) for x in k) for k in frozen.kept]
    return _Frozen(kind, spans, steps=steps, changed=changed,  # type: ignore[arg-type]
                   frozen_steps=sum(hi - lo for lo, hi, _, _ in spans), silences=silences, first=first, last=last)


def _namespace(name: str) -> str:
    """The first segment of a stream name (``turtle1`` of ``turtle1.pose``), or ''."""
    head, sep, _ = name.lstrip("/").replace("/", ".").partition(".")
    return head if sep else ""


def _report_frozen(candidates: dict[str, _Frozen], th: Thresholds, out: _Findings) -> None:
    """Frozen spans only where the signal was expected to move.

    Never on state, event, text or command streams (holding a value is what they do),
    nor on :attr:`Thresholds.frozen_exempt`. A measurement declared ``frozen: check``
    is flagged on every span. Otherwise (``auto``) a span is flagged when the stream is
    live (changes on :attr:`Thresholds.frozen_live` of its other steps: it repeats
    itself only now) and the run's commands, if it has any, were not holding still over
    most of that span (an arm at rest holds its sensors still too).
    """
    import fnmatch

    every_command = {n: c for n, c in candidates.items() if c.kind.role == "command" and c.steps}
    for name, c in candidates.items():
        ns = _namespace(name)  # a robot's own commands, when streams are named per robot (turtle1.*)
        commands = {n: cmd for n, cmd in every_command.items() if _namespace(n) == ns} if ns else {}
        commands = commands or every_command
        k = c.kind
        if not c.spans or k.frozen == "never" or k.role == "command" or k.kind not in ("periodic", "bursty"):
            continue
        if k.frozen != "check" and (any(fnmatch.fnmatch(name, pat) for pat in th.frozen_exempt) or c.live < th.frozen_live):
            continue
        for lo, hi, t_lo, t_hi in c.spans:
            why = "declared to move (frozen: check)" if k.frozen == "check" else (
                f"it changes on {100 * c.live:.0f} % of its other steps")
            if k.frozen != "check" and commands:
                held = [n for n, cmd in commands.items() if cmd.covered(t_lo, t_hi) >= 0.5]
                if len(held) == len(commands):
                    continue  # every command held still too: the robot was at rest
                why += f"; commanded to move ({', '.join(sorted(set(commands) - set(held))[:3])} changing)"
            out.add(name, "frozen", "warning", (t_hi - t_lo) / 1e9, th.frozen_s, t_lo, t_hi,
                    f"all values unchanged for {(t_hi - t_lo) / 1e9:.2f} s ({hi - lo + 1} samples): {why}")


def _gradient(c: np.ndarray, x: np.ndarray, uniform_dx: float | None) -> np.ndarray:
    """``numpy.gradient(c, x, axis=0)`` of a piece, with the spacing rule (uniform or
    not) decided on the whole stream, so pieces give the values of the whole."""
    if uniform_dx is not None:
        return np.gradient(c, uniform_dx, axis=0)
    dx = np.diff(x)
    out = np.empty_like(c)
    dx1, dx2 = dx[:-1, None], dx[1:, None]
    a = -dx2 / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    cc = dx1 / (dx2 * (dx1 + dx2))
    out[1:-1] = a * c[:-2] + b * c[1:-1] + cc * c[2:]
    out[0] = (c[1] - c[0]) / dx[0]
    out[-1] = (c[-1] - c[-2]) / dx[-1]
    return out


def _check_calibration(run: Run, th: Thresholds, out: _Findings, rows: int | None) -> None:
    cmd = run.streams.get(th.command_stream)
    meas = run.streams.get(th.measured_stream)
    if cmd is None or meas is None or "position" not in cmd or "position" not in meas:
        return
    import xarray as xr

    from workbench.sync import resample

    rc = StreamPieces(cmd, rows)
    if rc.n < 10:
        return
    if "joint" not in cmd["position"].dims or "joint" not in meas["position"].dims:
        return
    if cmd["position"].ndim != 2 or meas["position"].ndim != 2:
        return
    meas_joints = [str(j) for j in meas["joint"].values.tolist()]
    cmd_joints = [str(j) for j in cmd["joint"].values.tolist()]
    joints = [j for j in cmd_joints if j in set(meas_joints)]
    if not joints:
        return
    ci = [cmd_joints.index(j) for j in joints]
    mi = [meas_joints.index(j) for j in joints]
    rm = StreamPieces(meas, rows)
    st_m = _time_stats(rm)
    if st_m.back:  # resampling needs sorted times: an unsorted stream is sorted in memory
        rm = StreamPieces(meas[["position"]].sortby("time").load(), rows)
    period = int(st_m.period) if st_m.pos else 0  # as workbench.sync.resample's default
    tolerance: Any = 2 * period if period else "inf"

    def measured_at(tc: np.ndarray) -> np.ndarray:
        """The measured positions linearly resampled at *tc*, as ``sync.resample`` does
        on the whole stream, from a bounded window of it per group of times."""
        out = np.empty((tc.size, len(mi)))
        for group in rm.split(tc):
            tg = tc[group]
            p = rm.read(["time", "position"], *rm.covering(int(tg.min()), int(tg.max())))
            window = xr.Dataset({"position": (("time", "joint"), p["position"][:, mi])}, coords={"time": p["time"]})
            out[group] = resample(window, tg, method="linear", tolerance=tolerance)["position"].values
        return out

    # the spacing rule of numpy.gradient, decided on the whole command stream
    dx0: float | None = None
    uniform = True
    for _, _, _, p in rc.pieces(["time"], before=1):
        dx = np.diff(p["time"] / 1e9)
        if dx.size:
            dx0 = float(dx[0]) if dx0 is None else dx0
            uniform = uniform and bool(np.all(dx == dx0))
    rests = Runs(keep=lambda lo, hi, t_lo, t_hi: (hi - lo >= 3) & ((t_hi - t_lo) / 1e9 >= 0.15))
    for a, b, lo, p in rc.pieces(["time", "position"], before=1, after=1):
        tc = p["time"]
        c = p["position"][:, ci].astype(np.float64)
        speed = np.abs(_gradient(c, tc / 1e9, dx0 if uniform else None)).max(axis=1)
        own = slice(a - lo, a - lo + (b - a))
        rests.feed(speed[own] < th.rest_speed, a, tc[own], tc[own])
    periods = rests.finish()
    if not periods:
        return
    offsets = []
    for lo, hi, _, _ in periods:
        # skip the settling part of each rest period: use its second half
        mid = lo + (hi - lo) // 2

        def differences(mid: int = mid, hi: int = hi) -> Iterator[np.ndarray]:
            for _, _, _, p in rc.pieces(["time", "position"], start=mid, stop=hi):
                yield measured_at(p["time"]) - p["position"][:, ci].astype(np.float64)

        if (hi - mid) * len(joints) <= COLLECT_VALUES:
            offsets.append(np.nanmedian(np.concatenate(list(differences())), axis=0))
        else:  # a very long rest: exact median per joint, in passes
            row = []
            for j in range(len(joints)):
                def column(j: int = j) -> Iterator[np.ndarray]:
                    for d in differences():
                        yield d[:, j][~np.isnan(d[:, j])]

                count = sum(x.size for x in column())
                row.append(median(column, count) if count else np.nan)
            offsets.append(np.array(row))
    offs = np.array(offsets)
    steady = np.nanmedian(offs, axis=0)
    t_first, t_last = periods[0][2], periods[-1][3]
    for j, name in enumerate(joints):
        if abs(steady[j]) > th.calibration_offset_rad:
            out.add(th.measured_stream, "calibration_offset", "info", float(steady[j]), th.calibration_offset_rad,
                    t_first, t_last, f"{name}: measured − commanded = {steady[j]:+.4f} rad at rest")
        if len(periods) >= 2:
            change = float(offs[-1, j] - offs[0, j])
            if abs(change) > th.calibration_offset_rad:
                out.add(th.measured_stream, "calibration_drift", "warning", change, th.calibration_offset_rad,
                        t_first, t_last, f"{name}: offset at rest changes by {change:+.4f} rad during the run")


def _within_run(ds: xr.Dataset, run: Run) -> xr.Dataset:
    """The samples inside the run's span: values a log carries from before it started
    (a ULog's last known state of each topic) are not samples of this run's timing."""
    info = run.info
    if not info.end_ns or "time" not in ds.coords or ds.sizes.get("time", 0) == 0:
        return ds
    rd = StreamPieces(ds)  # read piece by piece: a long run's times are never held whole
    if rd.time_at(0) >= info.start_ns and rd.time_at(rd.n - 1) <= info.end_ns:
        return ds
    last = None
    for _, _, _, p in rd.pieces(["time"]):
        t = p["time"]
        if (last is not None and t.size and t[0] < last) or np.any(np.diff(t) < 0):
            return ds  # unsorted: graded whole (out_of_order says why)
        last = int(t[-1]) if t.size else last
    a, b = rd.searchsorted(info.start_ns, "left"), rd.searchsorted(info.end_ns, "right")
    return ds.isel(time=slice(a, b))


def grade(
    run: Run,
    *,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    chunk_rows: int | None = None,
) -> Grade:
    """Grade one run.

    Every stream is read piece by piece along time (see
    :mod:`workbench.pieces`): a lazy (dask-backed) run larger than memory is
    graded in bounded memory, with the same findings as in memory.

    Parameters
    ----------
    run
        The run (streams may be lazy).
    thresholds
        :class:`Thresholds`, a mapping of overrides, or ``None`` for the defaults.
    chunk_rows
        Rows per piece; ``None``: a stream in memory is one piece, a lazy stream is
        read about 64 MB at a time (or :func:`workbench.pieces.chunk_rows`).

    Returns
    -------
    Grade
        ``.grade`` (A–F) and ``.findings`` (polars: stream, check, severity, value,
        threshold, start_ns, end_ns, detail).
    """
    th = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds or {})
    out = _Findings()
    prov = run.info.provenance
    salvaged = prov.extra.get("salvaged")
    if salvaged:
        reason = salvaged.get("reason", "truncated") if isinstance(salvaged, dict) else str(salvaged)
        out.add("", "truncated", "error", 1, 0, run.info.end_ns, run.info.end_ns,
                f"the source file was cut short; only its readable prefix was recovered ({reason})")
    for skip in prov.skipped:
        out.add(str(skip.get("topic", "")), "not_decoded", "info", float(skip.get("count", 0) or 0), 0,
                detail=str(skip.get("reason", "")))
    from workbench.quality.kinds import classify, parse_policies, policy_for

    reader = prov.reader or ""
    policies = parse_policies(th.streams, origin="quality")
    kinds: dict[str, StreamKind] = {}
    candidates: dict[str, _Frozen] = {}
    for name, ds in run.streams.items():
        if ds.attrs.get("kind") == "image_encoded":
            ds = ds.drop_vars([v for v in ("data",) if v in ds.variables])
        ds = _within_run(ds, run)
        rd = StreamPieces(ds, chunk_rows)
        st = _time_stats(rd)
        kind = kinds[name] = classify(name, ds, reader=reader, policy=policy_for(name, ds, policies), pieces=rd,
                                      log_period=st.period)
        if _check_clocks(name, ds, rd, st, kind, th, out) and kind.clock == "header":
            import dataclasses

            kind = kinds[name] = dataclasses.replace(
                kind, clock="log", period_ns=st.period,
                why=f"{kind.why}; its sensor clock jumps or goes backwards: timing on the log clock")
        _check_timing(name, ds, rd, st, kind, th, out)
        frozen = _check_values(name, ds, rd, th, out, kind, reader)
        if frozen is not None:
            candidates[name] = frozen
    _report_frozen(candidates, th, out)
    _check_calibration(run, th, out, chunk_rows)
    feeds = _feeds(run) if out.rows else {}
    _at_the_outcome(run, out, feeds, th)
    findings = out.frame()
    return Grade(run.run_id, _letter(findings), findings, kinds=kinds, feeds=feeds,
                 events=run.events, start_ns=run.info.start_ns)


_CONSEQUENTIAL = ("gap", "frozen", "nan")
"""Checks whose spans mean the data is missing or stale (not merely late)."""


def _at_the_outcome(run: Run, out: _Findings, feeds: Mapping[str, Sequence[str]], th: Thresholds) -> None:
    """Escalate a warning to an error when it hides the data a metric read at the moment
    the run's outcome was decided (see ``Thresholds.outcome_window_s``)."""
    from workbench.model import resolve_outcome

    outcome, t_out, _origin = resolve_outcome(run.events)
    if outcome is None or t_out is None:
        return
    window = int(th.outcome_window_s * 1e9)
    for r in out.rows:
        if (r["severity"] != "warning" or r["check"] not in _CONSEQUENTIAL or not feeds.get(r["stream"])
                or r["start_ns"] is None or r["end_ns"] is None):
            continue
        if r["start_ns"] <= t_out and r["end_ns"] >= t_out - window:
            r["severity"] = "error"
            at = (t_out - run.info.start_ns) / 1e9
            r["detail"] += (f"; at the outcome ({outcome} at {at:.1f} s): "
                            f"{', '.join(feeds[r['stream']])} read data that is not there")


def _grade_stored(run_id: str, store_url: str, thresholds: Thresholds, chunk_rows: int | None = None) -> Grade:
    from workbench.pieces import load_for_work
    from workbench.store.core import StoreCore

    run = load_for_work(StoreCore(store_url, create=False), run_id)
    return grade(run, thresholds=thresholds, chunk_rows=chunk_rows)


def grade_store(
    store: Store,
    *,
    run_ids: Iterable[str] | None = None,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    chunk_rows: int | None = None,
) -> pl.DataFrame:
    """Grade runs of a store, keep grades in the catalog and findings beside each run.

    Per-run work is mapped with :func:`workbench.parallel.map_runs` (*scheduler*).
    A run larger than :data:`workbench.pieces.LAZY_BYTES` is opened lazily
    and graded piece by piece (*chunk_rows*, see :func:`grade`).

    Thresholds default to the ``quality:`` section of ``workbench.yaml`` in the
    store folder (local stores), else in the current folder, else the defaults.

    Returns one row per run: run_id, grade, n_warning, n_error, n_info, checks, why
    (the grade in a sentence, :func:`explain`).
    """
    import polars as pl

    if thresholds is None:
        thresholds = load_thresholds(store_root=store.root if store.local else None)
    ids = list(run_ids) if run_ids is not None else store.run_ids()
    th = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds or {})
    results = map_runs(_grade_stored, ids, args=(store.url, th, chunk_rows), scheduler=scheduler, progress=progress, label="grading")
    rows = []
    summaries: dict[str, dict[str, Any]] = {}
    for rid, result in zip(ids, results, strict=True):
        summary = result.summary()
        store.put_table(rid, "quality_findings", result.findings)
        summaries[rid] = summary
        rows.append({"run_id": rid, **summary})
    store.annotate_many("quality", summaries)
    schema = {"run_id": pl.String, "grade": pl.String, "n_warning": pl.Int64, "n_error": pl.Int64, "n_info": pl.Int64,
              "checks": pl.String, "why": pl.String}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def grade_missing(
    store: Store,
    *,
    run_ids: Iterable[str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> list[str]:
    """Grade the runs of *store* that have no grade yet (:func:`grade_store` on those).

    Parameters
    ----------
    store
        The store; grades go into its catalog (``quality.grade``).
    run_ids
        Only these runs (default: every run of the store).
    scheduler, progress
        As for :func:`grade_store`.

    Returns
    -------
    list of str
        Ids of the runs graded now (empty when every run already had a grade).

    Examples
    --------
    >>> import workbench as wb
    >>> store = wb.open_store("workbench-store")   # doctest: +SKIP
    >>> grade_missing(store)                       # doctest: +SKIP
    []
    """
    import polars as pl

    cat = store.runs()
    if cat.height == 0:
        return []
    if run_ids is not None:
        cat = cat.filter(pl.col("run_id").is_in(list(run_ids)))
    if "quality.grade" in cat.columns:
        cat = cat.filter(pl.col("quality.grade").is_null())
    ids = cat["run_id"].to_list()
    if ids:
        grade_store(store, run_ids=ids, scheduler=scheduler, progress=progress)
    return ids
