"""Vehicle metrics (PX4 ULog, ArduPilot DataFlash, MAVLink): what a drone engineer
computes first, from the roles of :mod:`workbench.metrics.roles`.

* :class:`AttitudeTracking` -- setpoint vs estimate per axis, RMS and p95 (deg), for
  attitude and body rates;
* :class:`FlightTime` -- time armed, mode changes and the mode flown longest, and the
  number of take-offs (landed → flying);
* :class:`Battery` -- voltage sag under load, charge used (mAh) and energy (Wh);
* :class:`Vibration` -- vibration level (p95 and max over the axes) and clipping;
* :class:`EstimatorHealth` -- innovation test ratios: the largest, and the time above 1.

The setpoint is held from one sample to the next (zero-order hold) and compared at
the estimate's times inside the setpoint's span, while the vehicle is armed when the
log says when it is; angle errors are wrapped to ±180°.
Vehicle logs are short (kHz at most over minutes), so each input is read whole.

Examples
--------
>>> import numpy as np
>>> wrap_deg(np.array([350.0, -190.0, 10.0])).tolist()
[-10.0, 170.0, 10.0]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from workbench.metrics.registry import Column, Metric
from workbench.model import Run

__all__ = ["AttitudeTracking", "Battery", "EstimatorHealth", "FlightTime", "Vibration", "hold", "state_at", "wrap_deg"]

_NS = 1e9
AXES = ("roll", "pitch", "yaw")


def wrap_deg(x: np.ndarray) -> np.ndarray:
    """Angles (deg) wrapped to [−180, 180)."""
    return (np.asarray(x, dtype=np.float64) + 180.0) % 360.0 - 180.0


def hold(t_src: np.ndarray, v_src: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Values of a step signal at times *t*: the last source sample at or before each
    (NaN before the first source sample and after its last)."""
    i = np.searchsorted(t_src, t, side="right") - 1
    out = np.full((t.size, *v_src.shape[1:]), np.nan)
    ok = (i >= 0) & (t <= t_src[-1])
    out[ok] = v_src[i[ok]]
    return out


def state_at(sig: Any, t: np.ndarray) -> np.ndarray:
    """A 0/1 role (``armed``, ``landed``) as booleans at times *t*: each record held to
    the next and the last to the end; before the first record unknown (False), or its
    opposite for a stream of change records (``Candidate.changes``)."""
    ts, vs = sig.values()
    ok = ~np.isnan(vs[:, 0])
    ts, vs = ts[ok], vs[ok, 0] > 0.5
    if ts.size == 0:
        return np.zeros(t.size, dtype=bool)
    i = np.searchsorted(ts, t, side="right") - 1
    out = np.where(i >= 0, vs[np.clip(i, 0, None)], (not vs[0]) if sig.binding.candidate.changes else False)
    return out.astype(bool)


def _durations(t: np.ndarray, end_ns: int | None = None) -> np.ndarray:
    """Seconds each sample holds until the next (the last until *end_ns*, else 0)."""
    nxt = np.append(t[1:], t[-1] if end_ns is None else max(int(end_ns), int(t[-1])))
    return (nxt - t) / _NS


def _tracking(metric: Metric, run: Run, est_role: str, sp_role: str, prefix: str) -> dict[str, Any]:
    est = metric.role(est_role, run, min_rows=2)
    sp = metric.role(sp_role, run, min_rows=1)
    assert est is not None and sp is not None
    te, ve = est.values()
    ts, vs = sp.values()
    out: dict[str, Any] = {}
    inside = (te >= ts[0]) & (te <= ts[-1])
    if not inside.any():
        metric.note_missing(f"{sp_role} ({sp.binding.describe()}) does not overlap {est_role} in time")
        return out
    armed = metric.role("armed", run, required=False)
    if armed is not None:  # a disarmed vehicle tracks nothing: compare while armed only
        on = state_at(armed, te)
        if not (inside & on).any():
            metric.note_missing(f"the vehicle is never armed while {sp_role} is logged")
            return out
        inside &= on
    target = hold(ts, vs, te[inside])
    got = ve[inside]
    shared = [a for a in AXES if a in est.names and a in sp.names]
    if not shared:
        metric.note_missing(f"{est_role} ({', '.join(est.names)}) and {sp_role} ({', '.join(sp.names)}) share no axis "
                            "named roll, pitch or yaw")
    for axis in shared:
        err = np.degrees(got[:, est.names.index(axis)] - target[:, sp.names.index(axis)])
        if prefix == "attitude":
            err = wrap_deg(err)
        err = np.abs(err[~np.isnan(err)])
        if err.size:
            out[f"{prefix}_error_rms_{axis}"] = float(np.sqrt(np.mean(err**2)))
            out[f"{prefix}_error_p95_{axis}"] = float(np.percentile(err, 95))
    return out


def _axis_columns(prefix: str, unit: str, what: str) -> tuple[Column, ...]:
    return tuple(Column(f"{prefix}_error_{stat}_{axis}", "continuous", unit, False, f"{label} {what} error, {axis}")
                 for axis in AXES for stat, label in (("rms", "RMS"), ("p95", "95th percentile of the absolute")))


class AttitudeTracking(Metric):
    """Attitude and body-rate tracking: |setpoint − estimate| per axis (deg, deg/s).

    Rates are computed only when the log has both ``rate`` and ``rate_setpoint``.
    """

    name: ClassVar[str] = "attitude_tracking"
    description: ClassVar[str] = "attitude and rate tracking error per axis (setpoint vs estimate)"
    columns: ClassVar[tuple[Column, ...]] = (*_axis_columns("attitude", "deg", "attitude"),
                                             *_axis_columns("rate", "deg/s", "body rate"))
    roles: ClassVar[tuple[str, ...]] = ("attitude", "attitude_setpoint", "rate", "rate_setpoint", "armed")

    def compute(self, run: Run) -> dict[str, Any]:
        from workbench.metrics.roles import MissingInput

        out: dict[str, Any] = {}
        missing = []
        for est, sp, prefix in (("attitude", "attitude_setpoint", "attitude"), ("rate", "rate_setpoint", "rate")):
            try:
                out |= _tracking(self, run, est, sp, prefix)
            except MissingInput as err:  # either alone is kept
                missing.append(err)
                self.note_missing(str(err))
        if len(missing) == 2:
            raise missing[0]
        return out


class FlightTime(Metric):
    """Time armed (s), mode changes, the mode flown longest, and take-offs."""

    name: ClassVar[str] = "flight_time"
    description: ClassVar[str] = "time armed, modes and take-offs"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("flight_time", "continuous", "s", None, "time armed"),
        Column("mode_changes", "count", "", None, "changes of flight mode"),
        Column("main_mode", "category", "", None, "the mode held longest (its number)"),
        Column("main_mode_share", "continuous", "", None, "share of the logged time in the main mode"),
        Column("time_per_mode", "category", "s", None, "seconds in each mode, longest first ('15: 5.6; 0: 1.2')"),
        Column("takeoffs", "count", "", None, "landed → flying transitions"),
    )
    roles: ClassVar[tuple[str, ...]] = ("armed", "mode", "landed")

    def compute(self, run: Run) -> dict[str, Any]:
        end = run.info.end_ns or None
        out: dict[str, Any] = {}
        armed = self.role("armed", run, required=False)
        if armed is not None:
            t, v = armed.values()
            t = t[~np.isnan(v[:, 0])]
            if t.size:
                start = min(int(run.info.start_ns or t[0]), int(t[0]))
                before = state_at(armed, np.array([start]))[0]
                out["flight_time"] = float(np.sum(_durations(t, end)[state_at(armed, t)])
                                           + (int(t[0]) - start) / _NS * before)
        mode = self.role("mode", run, required=False)
        if mode is not None:
            t, v = mode.values()
            ok = ~np.isnan(v[:, 0])
            t, m = t[ok], v[ok, 0]
            if t.size:
                out["mode_changes"] = float(np.count_nonzero(m[1:] != m[:-1]))
                dur = _durations(t, end)
                modes, inverse = np.unique(m, return_inverse=True)
                per = np.bincount(inverse, weights=dur, minlength=modes.size)
                top = int(np.argmax(per))
                label = [str(int(x)) if float(x).is_integer() else str(x) for x in modes.tolist()]
                out["main_mode"] = label[top]
                out["time_per_mode"] = "; ".join(f"{label[i]}: {per[i]:.1f}" for i in np.argsort(-per, kind="stable"))
                total = float(per.sum())
                out["main_mode_share"] = float(per[top] / total) if total > 0 else None
        landed = self.role("landed", run, required=False)
        if landed is not None:
            _, v = landed.values()
            x = v[~np.isnan(v[:, 0]), 0] > 0.5
            out["takeoffs"] = float(np.count_nonzero(x[:-1] & ~x[1:])) if x.size else None
        return out


class Battery(Metric):
    """Voltage sag (V), charge used (mAh) and energy used (Wh).

    *Sag* is the drop of the voltage under load: the median voltage at the lowest
    tenth of currents minus the median at the highest tenth (null without a varying
    current). *Charge used* is the battery's own counter (last − first) when logged,
    else ∫ current dt. A current that is mostly below 0 is a sensor mounted the other
    way round (ArduSub logs) and is read with its sign flipped; readings a format marks
    as "not measured" are dropped by the role.
    """

    name: ClassVar[str] = "battery"
    description: ClassVar[str] = "battery sag, charge and energy used"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("battery_sag", "continuous", "V", False, "voltage drop under load"),
        Column("battery_used", "continuous", "mAh", False, "charge drawn during the run"),
        Column("battery_energy", "continuous", "Wh", False, "energy drawn during the run (∫ V·I dt)"),
        Column("battery_min_voltage", "continuous", "V", True, "lowest battery voltage"),
    )
    roles: ClassVar[tuple[str, ...]] = ("battery_voltage", "battery_current", "battery_used")

    def compute(self, run: Run) -> dict[str, Any]:
        volt = self.role("battery_voltage", run, min_rows=2)
        assert volt is not None
        tv, v = volt.values()
        ok = ~np.isnan(v[:, 0]) & (v[:, 0] > 0)  # 0 V: no battery reading
        tv, v = tv[ok], v[ok, 0]
        if v.size < 2:
            self.note_missing(f"battery_voltage ({volt.binding.describe()}) has fewer than 2 readings above 0 V")
            return {}
        out: dict[str, Any] = {"battery_min_voltage": float(v.min())}
        cur = self.role("battery_current", run, required=False, min_rows=2)
        i = None
        if cur is not None:
            tc, c = cur.values()
            good = ~np.isnan(c[:, 0])
            if good.sum() >= 2:
                i = np.interp(tv, tc[good], c[good, 0])
                if np.median(i) < 0:  # a current sensor mounted the other way round (ArduSub logs)
                    i = -i
            else:
                self.note_missing(f"battery_current ({cur.binding.describe()}) has fewer than 2 readings")
        if i is not None:
            dt = np.diff(tv) / _NS
            power = v * i
            out["battery_energy"] = float(np.sum(0.5 * (power[1:] + power[:-1]) * dt) / 3600.0)
            lo, hi = np.percentile(i, [10, 90])
            if hi > lo:
                out["battery_sag"] = float(np.median(v[i <= lo]) - np.median(v[i >= hi]))
            else:
                self.note_missing("battery_sag needs the current to vary (it is the voltage at low minus at high current)")
        used = self.role("battery_used", run, required=False, min_rows=2)
        if used is not None:
            _, u = used.values()
            u = u[~np.isnan(u[:, 0]), 0]
            if u.size >= 2:
                out["battery_used"] = abs(float(u[-1] - u[0]))  # a reversed sensor counts down
        if "battery_used" not in out and i is not None:
            dt = np.diff(tv) / _NS
            out["battery_used"] = float(np.sum(0.5 * (i[1:] + i[:-1]) * dt) / 3.6)  # A·s → mAh
        return out


class Vibration(Metric):
    """Vibration level (p95 and max over the axes, m/s²) and accelerometer clipping."""

    name: ClassVar[str] = "vibration"
    description: ClassVar[str] = "vibration level and clipping"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("vibration_p95", "continuous", "m/s²", False, "95th percentile of the vibration level, worst axis"),
        Column("vibration_max", "continuous", "m/s²", False, "largest vibration level on any axis"),
        Column("clipping", "count", "", False, "accelerometer clipping events during the run (all axes)"),
    )
    roles: ClassVar[tuple[str, ...]] = ("vibration", "clipping")

    def compute(self, run: Run) -> dict[str, Any]:
        vib = self.role("vibration", run)
        assert vib is not None
        _, v = vib.values()
        out: dict[str, Any] = {}
        cols = [v[~np.isnan(v[:, j]), j] for j in range(v.shape[1])]
        cols = [c for c in cols if c.size]
        if cols:
            out["vibration_p95"] = float(max(np.percentile(c, 95) for c in cols))
            out["vibration_max"] = float(max(c.max() for c in cols))
        clip = self.role("clipping", run, required=False)
        if clip is not None:
            _, c = clip.values()
            total = 0.0
            for j in range(c.shape[1]):
                x = c[~np.isnan(c[:, j]), j]
                if x.size:
                    steps = np.diff(x)  # cumulative counters; a reset (negative step) starts again
                    total += float(np.sum(np.where(steps >= 0, steps, x[1:])))
            out["clipping"] = total
        return out


class EstimatorHealth(Metric):
    """Estimator innovation test ratios: the largest and the time any is above 1 (s)."""

    name: ClassVar[str] = "estimator_health"
    description: ClassVar[str] = "estimator innovation test ratios"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("innovation_ratio_max", "continuous", "", False, "largest innovation test ratio (1 = at the gate)"),
        Column("innovation_time_above_1", "continuous", "s", False, "time any test ratio is above 1"),
    )
    roles: ClassVar[tuple[str, ...]] = ("estimator_innovation",)

    def compute(self, run: Run) -> dict[str, Any]:
        est = self.role("estimator_innovation", run)
        assert est is not None
        t, v = est.values()
        finite = np.where(np.isnan(v), -np.inf, v)
        worst = finite.max(axis=1)
        ok = np.isfinite(worst)
        if not ok.any():
            self.note_missing(f"estimator_innovation ({est.binding.describe()}) has no values")
            return {}
        dur = _durations(t, run.info.end_ns or None)  # each ratio holds until the next, the last to the end
        return {"innovation_ratio_max": float(worst[ok].max()),
                "innovation_time_above_1": float(np.sum(dur[ok & (worst > 1.0)]))}
