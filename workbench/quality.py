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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError, Run
from workbench.parallel import map_runs

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

    from workbench.store import Store

__all__ = [
    "SEVERITIES",
    "GRADES",
    "Thresholds",
    "Grade",
    "grade",
    "grade_store",
    "grade_letter",
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

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "thresholds") -> Thresholds:
        """Build from a mapping, rejecting unknown keys with the valid ones listed."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            msg = f"{origin}: unknown quality threshold(s) {unknown}; valid: {', '.join(sorted(valid))}"
            raise ConfigError(msg)
        kwargs = dict(data)
        if "frozen_exempt" in kwargs:
            kwargs["frozen_exempt"] = tuple(kwargs["frozen_exempt"])
        try:
            return cls(**kwargs)
        except TypeError as err:
            msg = f"{origin}: {err}"
            raise ConfigError(msg) from err


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Thresholds from the ``quality:`` section of a ``workbench.yaml`` (defaults if absent)."""
    import yaml

    p = Path(path) if path is not None else Path("workbench.yaml")
    if not p.is_file():
        return Thresholds()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        msg = f"{str(p)!r}: cannot read YAML: {err}"
        raise ConfigError(msg) from err
    section = data.get("quality") or {} if isinstance(data, dict) else {}
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


@dataclass
class Grade:
    """A run's grade and the findings behind it."""

    run_id: str
    grade: str
    findings: pl.DataFrame

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


def _times(ds: xr.Dataset) -> np.ndarray:
    t = np.asarray(ds["time"].values)
    return t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64)


def _runs_of_true(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs (end exclusive) of consecutive True values."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _check_timing(name: str, ds: xr.Dataset, th: Thresholds, out: _Findings) -> None:
    t = _times(ds)
    if t.size < 3:
        return
    dt = np.diff(t)
    dup = int(np.sum(dt == 0))
    if dup:
        i = int(np.flatnonzero(dt == 0)[0])
        out.add(name, "duplicate_timestamps", "warning", dup, 0, t[i], t[i], f"{dup} samples share a log time")
    back = int(np.sum(dt < 0))
    if back:
        i = int(np.flatnonzero(dt < 0)[0])
        out.add(name, "out_of_order", "warning", back, 0, t[i], t[i + 1], f"{back} log times go backwards")
    pos = dt[dt > 0]
    if pos.size < 2:
        return
    period = float(np.median(pos))
    gap_mask = dt > th.gap_factor * period
    for lo, hi in _runs_of_true(gap_mask):
        for i in range(lo, hi):
            missing = int(round(dt[i] / period)) - 1
            out.add(
                name, "gap", "warning", dt[i] / 1e6, th.gap_factor * period / 1e6, t[i], t[i + 1],
                f"{dt[i] / 1e9:.3f} s without data, about {missing} messages dropped (period {period / 1e6:.1f} ms)",
            )
    regular = pos[pos <= th.gap_factor * period]
    if regular.size > 10:
        cv = float(np.std(regular) / period)
        if cv > th.jitter_cv:
            p99 = float(np.percentile(regular, 99))
            out.add(name, "jitter", "warning", cv, th.jitter_cv, t[0], t[-1],
                    f"interval std/median {cv:.2f}, p99 {p99 / 1e6:.1f} ms vs median {period / 1e6:.1f} ms")
    nominal = th.nominal_rates.get(name) or ds.attrs.get("nominal_rate_hz")
    if nominal:
        duration = (t[-1] - t[0]) / 1e9
        measured = (t.size - 1) / duration if duration > 0 else 0.0
        dev = abs(measured - float(nominal)) / float(nominal)
        if dev > th.rate_tolerance:
            out.add(name, "rate", "warning", measured, float(nominal), t[0], t[-1],
                    f"measured {measured:.1f} Hz vs nominal {float(nominal):.1f} Hz")


def _check_clocks(name: str, ds: xr.Dataset, th: Thresholds, out: _Findings) -> None:
    if "header_time" not in ds.coords:
        return
    t = _times(ds)
    h = np.asarray(ds["header_time"].values, dtype=np.int64)
    if t.size < 3:
        return
    dh = np.diff(h)
    back = int(np.sum(dh < 0))
    d = (t - h).astype(np.float64)  # latency incl. any constant clock offset
    jumps = _level_jumps(d, t, th.clock_jump_ms * 1e6)
    for j in jumps:
        k = 5
        size = float(np.median(d[j : j + k]) - np.median(d[max(0, j - k) : j]))
        direction = "backward" if size > 0 else "forward"  # sensor clock fell behind / ran ahead
        out.add(name, "clock_jump", "error", abs(size) / 1e6, th.clock_jump_ms, t[j - 1], t[j],
                f"sensor clock jumps {direction} by {abs(size) / 1e6:.1f} ms relative to the log clock")
    if back and not jumps:
        i = int(np.flatnonzero(dh < 0)[0])
        out.add(name, "out_of_order", "warning", back, 0, t[i], t[i + 1], f"{back} sensor stamps go backwards")
    if jumps:
        return  # latency statistics are meaningless across a jump
    med = float(np.median(d))
    spikes = d > med + th.latency_spike_ms * 1e6
    runs = _runs_of_true(spikes)
    if runs:
        worst = float(d[spikes].max() - med) / 1e6
        lo, hi = runs[0]
        out.add(name, "latency_spike", "warning", worst, th.latency_spike_ms, t[lo], t[hi - 1],
                f"{int(spikes.sum())} samples arrive > {th.latency_spike_ms:.0f} ms later than usual "
                f"({len(runs)} episode(s), worst +{worst:.1f} ms)")


def _level_jumps(d: np.ndarray, t: np.ndarray, limit: float) -> list[int]:
    """Indices where *d* steps persistently by more than *limit*.

    Block medians (blocks of about 0.25 s) ignore short spikes; an up-step followed
    within 2 s by a matching down-step back to the old level is a latency episode,
    not a clock jump.
    """
    dt = np.diff(t)
    dt = dt[dt > 0]
    if dt.size == 0:
        return []
    block = max(5, int(round(0.25e9 / float(np.median(dt)))))
    nblocks = d.size // block
    if nblocks < 3:
        return []
    med = np.median(d[: nblocks * block].reshape(nblocks, block), axis=1)
    steps = np.diff(med)
    cands: list[tuple[int, float]] = []
    for b in np.flatnonzero(np.abs(steps) > limit):
        if cands and b - cands[-1][0] // block <= 1 and np.sign(steps[b]) == np.sign(cands[-1][1]):
            continue  # the same step seen from the next block
        lo, hi = max(1, b * block), min(d.size, (b + 2) * block)
        j = lo + int(np.argmax(np.abs(np.diff(d[lo - 1 : hi]))))
        cands.append((j, float(steps[b])))
    jumps: list[int] = []
    i = 0
    while i < len(cands):
        j, size = cands[i]
        if i + 1 < len(cands):
            j2, size2 = cands[i + 1]
            returns = np.sign(size2) != np.sign(size) and abs(size + size2) < 0.5 * limit
            if returns and (t[j2] - t[j]) <= 2e9:
                i += 2  # a temporary excursion: latency episode
                continue
        jumps.append(j)
        i += 1
    return jumps


def _numeric_vars(ds: xr.Dataset) -> Iterable[tuple[str, np.ndarray, dict[str, Any]]]:
    for vname, var in ds.data_vars.items():
        if "time" in var.dims and var.dtype.kind in "fiu" and var.dtype.itemsize > 1:
            values = np.asarray(var.transpose("time", ...).values)
            yield str(vname), values.reshape(values.shape[0], -1), dict(var.attrs)


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


def _check_values(name: str, ds: xr.Dataset, th: Thresholds, out: _Findings) -> None:
    import fnmatch

    if ds.attrs.get("kind") in {"image_encoded", "video_ref", "image"}:
        return
    t = _times(ds)
    if t.size < 3:
        return
    rows_same = np.ones(t.size - 1, dtype=bool)
    any_var = False
    for vname, v, attrs in _numeric_vars(ds):
        any_var = True
        if v.dtype.kind == "f":
            nan = np.isnan(v)
            frac = float(nan.mean()) if v.size else 0.0
            if frac > th.nan_warning:
                sev = "error" if frac > th.nan_error else "warning"
                idx = np.flatnonzero(nan.any(axis=1))
                out.add(name, "nan", sev, frac, th.nan_warning if sev == "warning" else th.nan_error,
                        t[idx[0]], t[idx[-1]], f"{vname}: {100 * frac:.1f} % NaN")
            same = (v[1:] == v[:-1]) | (nan[1:] & nan[:-1])
        else:
            same = v[1:] == v[:-1]
        rows_same &= np.all(same, axis=1)
        limits = _limits(name, vname, attrs, th)
        if limits is None:
            continue
        lo_lim, hi_lim = limits
        for col in range(v.shape[1]):
            c = v[:, col].astype(np.float64)
            for label, pinned_mask in (("max", c >= hi_lim), ("min", c <= lo_lim)):
                pinned = int(pinned_mask.sum())
                if pinned >= th.saturation_min_samples and pinned / c.size >= th.saturation_fraction:
                    idx = np.flatnonzero(pinned_mask)
                    limit = hi_lim if label == "max" else lo_lim
                    out.add(name, "saturated", "warning", pinned / c.size, th.saturation_fraction,
                            t[idx[0]], t[idx[-1]], f"{vname}[{col}] at its {label} limit {limit:g} in {pinned} samples")
    if not any_var or any(fnmatch.fnmatch(name, pat) for pat in th.frozen_exempt):
        return
    for lo, hi in _runs_of_true(rows_same):
        if hi - lo + 1 >= th.frozen_min_samples and (t[hi] - t[lo]) / 1e9 >= th.frozen_s:
            out.add(name, "frozen", "warning", (t[hi] - t[lo]) / 1e9, th.frozen_s, t[lo], t[hi],
                    f"all values unchanged for {(t[hi] - t[lo]) / 1e9:.2f} s ({hi - lo + 1} samples)")


def _check_calibration(run: Run, th: Thresholds, out: _Findings) -> None:
    cmd = run.streams.get(th.command_stream)
    meas = run.streams.get(th.measured_stream)
    if cmd is None or meas is None or "position" not in cmd or "position" not in meas:
        return
    from workbench.sync import resample

    tc = _times(cmd)
    if tc.size < 10:
        return
    if "joint" in cmd["position"].dims and "joint" in meas["position"].dims:
        joints = [j for j in cmd["joint"].values.tolist() if j in set(meas["joint"].values.tolist())]
        if not joints:
            return
        c = np.asarray(cmd["position"].sel(joint=joints).transpose("time", "joint").values, dtype=np.float64)
        m_ds = resample(meas[["position"]].sel(joint=joints), tc, method="linear")
        m = np.asarray(m_ds["position"].transpose("time", "joint").values, dtype=np.float64)
    else:
        return
    speed = np.abs(np.gradient(c, tc / 1e9, axis=0)).max(axis=1)
    rest = speed < th.rest_speed
    periods = [(lo, hi) for lo, hi in _runs_of_true(rest) if hi - lo >= 3 and (tc[hi - 1] - tc[lo]) / 1e9 >= 0.15]
    if not periods:
        return
    offsets = []
    for lo, hi in periods:
        # skip the settling part of each rest period: use its second half
        mid = lo + (hi - lo) // 2
        offsets.append(np.nanmedian(m[mid:hi] - c[mid:hi], axis=0))
    offs = np.array(offsets)
    steady = np.nanmedian(offs, axis=0)
    for j, name in enumerate(joints):
        if abs(steady[j]) > th.calibration_offset_rad:
            out.add(th.measured_stream, "calibration_offset", "info", float(steady[j]), th.calibration_offset_rad,
                    tc[periods[0][0]], tc[periods[-1][1] - 1],
                    f"{name}: measured − commanded = {steady[j]:+.4f} rad at rest")
        if len(periods) >= 2:
            change = float(offs[-1, j] - offs[0, j])
            if abs(change) > th.calibration_offset_rad:
                out.add(th.measured_stream, "calibration_drift", "warning", change, th.calibration_offset_rad,
                        tc[periods[0][0]], tc[periods[-1][1] - 1],
                        f"{name}: offset at rest changes by {change:+.4f} rad during the run")


def grade(run: Run, *, thresholds: Thresholds | Mapping[str, Any] | None = None) -> Grade:
    """Grade one run.

    Parameters
    ----------
    run
        The run (streams may be lazy; each is read once).
    thresholds
        :class:`Thresholds`, a mapping of overrides, or ``None`` for the defaults.

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
    for name, ds in run.streams.items():
        if ds.attrs.get("kind") == "image_encoded":
            ds = ds.drop_vars([v for v in ("data",) if v in ds.variables])
        ds = ds.load()
        _check_timing(name, ds, th, out)
        _check_clocks(name, ds, th, out)
        _check_values(name, ds, th, out)
    _check_calibration(run, th, out)
    findings = out.frame()
    sev = findings["severity"].to_list()
    return Grade(run.run_id, grade_letter(sev.count("warning"), sev.count("error")), findings)


def _grade_stored(run_id: str, store_url: str, thresholds: Thresholds) -> Grade:
    from workbench.store import open_store

    return grade(open_store(store_url, create=False).load(run_id, lazy=False), thresholds=thresholds)


def grade_store(
    store: Store,
    *,
    run_ids: Iterable[str] | None = None,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pl.DataFrame:
    """Grade runs of a store, keep grades in the catalog and findings beside each run.

    Per-run work is mapped with :func:`workbench.parallel.map_runs` (*scheduler*).

    Thresholds default to the ``quality:`` section of ``workbench.yaml`` in the
    store folder (local stores), else in the current folder, else the defaults.

    Returns one row per run: run_id, grade, n_warning, n_error, n_info, checks.
    """
    import polars as pl

    if thresholds is None:
        local_cfg = Path(store.root) / "workbench.yaml" if store.local else None
        thresholds = load_thresholds(local_cfg if local_cfg and local_cfg.is_file() else None)
    ids = list(run_ids) if run_ids is not None else store.run_ids()
    th = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds or {})
    results = map_runs(_grade_stored, ids, args=(store.url, th), scheduler=scheduler, progress=progress, label="grading")
    rows = []
    summaries: dict[str, dict[str, Any]] = {}
    for rid, result in zip(ids, results, strict=True):
        summary = result.summary()
        store.put_table(rid, "quality_findings", result.findings)
        summaries[rid] = summary
        rows.append({"run_id": rid, **summary})
    store.annotate_many("quality", summaries)
    schema = {"run_id": pl.String, "grade": pl.String, "n_warning": pl.Int64, "n_error": pl.Int64, "n_info": pl.Int64, "checks": pl.String}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)

