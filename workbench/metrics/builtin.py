"""Built-in behavior metrics (registered as ``workbench.metrics`` entry points).

Stream names they look for (the ROS conventions of the sample campaign; a lab with
other names registers its own metric or renames streams):
``joint_states`` (JointState-like: ``position``/``velocity``/``effort`` on ``joint``),
``joint_commands`` (commanded ``position``), ``ft_sensor`` (``force`` on ``axis``),
``tf.<frame>`` (``translation`` on ``axis``; the end effector frame is the first of
``tool0``, ``ee_link``, ``end_effector``, ``gripper``), and the events table.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np

from workbench.metrics.registry import Column, Metric
from workbench.model import Run

__all__ = [
    "Success",
    "TimeToSuccess",
    "FailureMode",
    "Recoveries",
    "PathLength",
    "Jerk",
    "TrackingError",
    "Effort",
    "PeakForce",
    "ControlLatency",
    "Jitter",
]

MEASURED = "joint_states"
COMMANDED = "joint_commands"
FORCE = "ft_sensor"
EE_FRAMES = ("tool0", "ee_link", "end_effector", "gripper")


def _t(ds: Any) -> np.ndarray:
    t = np.asarray(ds["time"].values)
    return t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64)


def _matrix(run: Run, stream: str, var: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    ds = run.streams.get(stream)
    if ds is None or var not in ds or ds.sizes.get("time", 0) < 3:
        return None
    da = ds[var].transpose("time", ...)
    values = np.asarray(da.values, dtype=np.float64).reshape(da.shape[0], -1)
    names = [str(x) for x in ds[da.dims[1]].values] if da.ndim > 1 and da.dims[1] in ds.coords else [str(i) for i in range(values.shape[1])]
    return _t(ds), values, names


def _events(run: Run, kind: str) -> list[tuple[int, dict[str, Any]]]:
    ev = run.events.filter(run.events["kind"] == kind)
    out = []
    for t, detail in zip(ev["time"].to_list(), ev["detail"].to_list(), strict=True):
        try:
            d = json.loads(detail) if detail else {}
        except json.JSONDecodeError:
            d = {"text": detail}
        out.append((int(t), d if isinstance(d, dict) else {"value": d}))
    return out


class Success(Metric):
    """1 when the run's outcome is success, 0 for failure, null when unknown."""

    name: ClassVar[str] = "success"
    description: ClassVar[str] = "task success from the run's last success/failure event"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("success", "rate", "", True, "share of runs that succeeded"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        outcome = run.outcome
        return {"success": None if outcome is None else float(outcome == "success")}


class TimeToSuccess(Metric):
    """Seconds from the run's start to its success event (null unless it succeeded)."""

    name: ClassVar[str] = "time_to_success"
    description: ClassVar[str] = "time from start to the success event"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("time_to_success", "continuous", "s", False, "seconds from start to success"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        if run.outcome != "success":
            return {"time_to_success": None}
        t = max(t for t, _ in _events(run, "success"))
        return {"time_to_success": (t - run.info.start_ns) / 1e9}


class FailureMode(Metric):
    """Why a run failed: the failure event's ``reason`` (``"none"`` for a success)."""

    name: ClassVar[str] = "failure_mode"
    description: ClassVar[str] = "failure taxonomy from the failure event's reason"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("failure_mode", "category", "", None, "reason of the failure (none if it succeeded)"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        outcome = run.outcome
        if outcome is None:
            return {"failure_mode": None}
        if outcome == "success":
            return {"failure_mode": "none"}
        _, detail = max(_events(run, "failure"), key=lambda e: e[0])
        return {"failure_mode": str(detail.get("reason") or detail.get("mode") or "unspecified")}


class Recoveries(Metric):
    """Recovery events and the time spent between each slip/drop and its recovery."""

    name: ClassVar[str] = "recoveries"
    description: ClassVar[str] = "number of recoveries and seconds spent recovering"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("recoveries", "count", "", None, "recovery events per run"),
        Column("recovery_time", "continuous", "s", False, "seconds from a slip or drop to its recovery"),
        Column("slips", "count", "", False, "slip events per run"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        rec = sorted(t for t, _ in _events(run, "recovery"))
        troubles = sorted(t for kind in ("slip", "drop") for t, _ in _events(run, kind))
        spent = 0.0
        for r in rec:
            before = [t for t in troubles if t <= r]
            if before:
                spent += (r - before[-1]) / 1e9
        return {"recoveries": float(len(rec)), "recovery_time": spent, "slips": float(len(_events(run, "slip")))}


class PathLength(Metric):
    """Length of the end effector's path (m, from TF) and of the joint path (rad)."""

    name: ClassVar[str] = "path_length"
    description: ClassVar[str] = "end-effector path length and joint-space path length"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("path_length", "continuous", "m", False, "end-effector path length"),
        Column("joint_path_length", "continuous", "rad", False, "sum over joints of |Δq|"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        out: dict[str, Any] = {"path_length": None, "joint_path_length": None}
        for frame in EE_FRAMES:
            m = _matrix(run, f"tf.{frame}", "translation")
            if m is not None:
                out["path_length"] = float(np.nansum(np.linalg.norm(np.diff(m[1], axis=0), axis=1)))
                break
        q = _matrix(run, MEASURED, "position")
        if q is not None:
            out["joint_path_length"] = float(np.nansum(np.abs(np.diff(q[1], axis=0))))
        return out


def _uniform(t: np.ndarray, v: np.ndarray, rate: float) -> tuple[np.ndarray, float]:
    dt = 1.0 / rate
    s = (t - t[0]) / 1e9
    grid = np.arange(0, s[-1], dt)
    return np.column_stack([np.interp(grid, s, v[:, j]) for j in range(v.shape[1])]), dt


class Jerk(Metric):
    """Smoothness: RMS jerk of the joint positions (rad/s³) on a 100 Hz grid, smoothed."""

    name: ClassVar[str] = "jerk"
    description: ClassVar[str] = "RMS joint jerk (lower is smoother)"
    columns: ClassVar[tuple[Column, ...]] = (Column("jerk_rms", "continuous", "rad/s³", False, "RMS joint jerk"),)

    def compute(self, run: Run) -> dict[str, Any]:
        q = _matrix(run, MEASURED, "position")
        if q is None or (q[0][-1] - q[0][0]) < 0.5e9:
            return {"jerk_rms": None}
        grid, dt = _uniform(q[0], q[1], 100.0)
        k = np.ones(5) / 5  # 50 ms moving average against sensor noise
        smooth = np.column_stack([np.convolve(grid[:, j], k, mode="valid") for j in range(grid.shape[1])])
        jerk = np.diff(smooth, n=3, axis=0) / dt**3
        return {"jerk_rms": float(np.sqrt(np.nanmean(jerk**2)))}


class TrackingError(Metric):
    """RMS and max of measured − commanded joint position (rad), on the command times."""

    name: ClassVar[str] = "tracking_error"
    description: ClassVar[str] = "commanded vs measured joint position error"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("tracking_error_rms", "continuous", "rad", False, "RMS of measured − commanded position"),
        Column("tracking_error_max", "continuous", "rad", False, "largest |measured − commanded| position"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        c = _matrix(run, COMMANDED, "position")
        m = _matrix(run, MEASURED, "position")
        if c is None or m is None:
            return {"tracking_error_rms": None, "tracking_error_max": None}
        common = [n for n in c[2] if n in m[2]]
        if not common:
            return {"tracking_error_rms": None, "tracking_error_max": None}
        ci = [c[2].index(n) for n in common]
        mi = [m[2].index(n) for n in common]
        inside = (c[0] >= m[0][0]) & (c[0] <= m[0][-1])
        tc = c[0][inside]
        meas = np.column_stack([np.interp(tc, m[0], m[1][:, j]) for j in mi])
        err = meas - c[1][inside][:, ci]
        return {"tracking_error_rms": float(np.sqrt(np.nanmean(err**2))), "tracking_error_max": float(np.nanmax(np.abs(err)))}


class Effort(Metric):
    """Mechanical energy ∫Σ|τ·ω|dt (J) and RMS joint effort (N·m)."""

    name: ClassVar[str] = "effort"
    description: ClassVar[str] = "actuator energy and RMS effort"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("energy", "continuous", "J", False, "∫ Σ |effort · velocity| dt"),
        Column("effort_rms", "continuous", "N·m", False, "RMS joint effort"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        e = _matrix(run, MEASURED, "effort")
        v = _matrix(run, MEASURED, "velocity")
        out: dict[str, Any] = {"energy": None, "effort_rms": None}
        if e is None:
            return out
        out["effort_rms"] = float(np.sqrt(np.nanmean(e[1] ** 2)))
        if v is not None and v[1].shape == e[1].shape:
            power = np.nansum(np.abs(e[1] * v[1]), axis=1)
            s = (e[0] - e[0][0]) / 1e9
            out["energy"] = float(np.sum(0.5 * (power[1:] + power[:-1]) * np.diff(s)))
        return out


class PeakForce(Metric):
    """Largest force magnitude seen by the force/torque sensor (N)."""

    name: ClassVar[str] = "peak_force"
    description: ClassVar[str] = "peak contact force"
    columns: ClassVar[tuple[Column, ...]] = (Column("peak_force", "continuous", "N", False, "max |force|"),)

    def compute(self, run: Run) -> dict[str, Any]:
        f = _matrix(run, FORCE, "force")
        if f is None:
            return {"peak_force": None}
        return {"peak_force": float(np.nanmax(np.linalg.norm(f[1], axis=1)))}


class ControlLatency(Metric):
    """Delay between commanded and measured joint motion (ms), p50 and p95 over windows.

    Estimated with :func:`workbench.sync.estimate_offset` on every joint that moves,
    in windows over the run; the delay includes actuator latency and lag.
    """

    name: ClassVar[str] = "control_latency"
    description: ClassVar[str] = "command-to-motion delay"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("control_latency_p50", "continuous", "ms", False, "median command-to-motion delay"),
        Column("control_latency_p95", "continuous", "ms", False, "95th percentile command-to-motion delay"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        from workbench.sync import estimate_offset

        none = {"control_latency_p50": None, "control_latency_p95": None}
        c = _matrix(run, COMMANDED, "position")
        m = _matrix(run, MEASURED, "position")
        if c is None or m is None or c[0].size < 32:
            return none
        lags: list[float] = []
        for j, name in enumerate(c[2]):
            if name not in m[2]:
                continue
            cj = c[1][:, j]
            if np.nanmax(cj) - np.nanmin(cj) < 0.05:  # joint barely moves: no signal
                continue
            est = estimate_offset((m[0], m[1][:, m[2].index(name)]), (c[0], cj), max_lag="150ms", windows=3)
            lags.extend(w[1] / 1e6 for w in est.windows[1:] if w[2] > 0.8)
            if est.confidence > 0.8 and not est.windows[1:]:
                lags.append(est.offset_ns / 1e6)
        if not lags:
            return none
        return {"control_latency_p50": float(np.percentile(lags, 50)), "control_latency_p95": float(np.percentile(lags, 95))}


class Jitter(Metric):
    """Standard deviation of the measured-state intervals (ms): timing regularity."""

    name: ClassVar[str] = "jitter"
    description: ClassVar[str] = "jitter of the joint-state stream"
    columns: ClassVar[tuple[Column, ...]] = (Column("jitter", "continuous", "ms", False, "std of joint-state intervals"),)

    def compute(self, run: Run) -> dict[str, Any]:
        ds = run.streams.get(MEASURED)
        if ds is None or ds.sizes.get("time", 0) < 3:
            return {"jitter": None}
        dt = np.diff(_t(ds)) / 1e6
        return {"jitter": float(np.std(dt))}
