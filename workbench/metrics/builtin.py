"""Built-in behavior metrics (registered as ``workbench.metrics`` entry points).

Each reads its inputs by role (:mod:`workbench.metrics.roles`): ``joint_position``,
``joint_velocity``, ``joint_effort``, ``joint_command``, ``wrench``, ``ee_pose``,
``gripper``, found per run from the format's conventions (the sample campaign's ROS
topics ``joint_states``, ``joint_commands``, ``ft_sensor``, ``tf.<frame>``; LeRobot
``observation.state`` / ``action``; robomimic and robosuite keys) or mapped in the
``roles:`` section of ``workbench.yaml``; and the events table. Vehicle metrics are in
:mod:`workbench.metrics.vehicle`. A metric whose inputs a run lacks is null there,
with the reason in ``<metric>.why``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.metrics.registry import Column, Metric
from workbench.model import Run
from workbench.pieces import StreamPieces

if TYPE_CHECKING:
    import polars as pl

    from workbench.metrics.roles import RoleSignal

__all__ = [
    "ControlLatency",
    "Effort",
    "FailureMode",
    "GripperCycles",
    "Jerk",
    "Jitter",
    "PathLength",
    "PeakForce",
    "Recoveries",
    "Success",
    "TimeToSuccess",
    "TrackingError",
]

TASK_EVENTS = ("slip", "drop", "recovery")
NO_OUTCOME = ("no outcome: the run has no success/failure event; define one with an outcome: rule in "
              "workbench.yaml or label it (workbench label RUN --outcome …)")


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
        if outcome is None:
            self.note_missing(NO_OUTCOME)
        return {"success": None if outcome is None else float(outcome == "success")}

    def outdated(self, catalog: pl.DataFrame) -> pl.Expr | None:
        """Rows whose ``metrics.success`` does not follow from their ``outcome`` (changed since)."""
        import polars as pl

        if not {"outcome", "metrics.success"} <= set(catalog.columns):
            return None
        outcome = pl.col("outcome").cast(pl.String)
        expected = pl.when(outcome.is_null()).then(None).otherwise((outcome == "success").cast(pl.Float64))
        # an all-null column may be typed String in the catalog
        return ~pl.col("metrics.success").cast(pl.Float64, strict=False).eq_missing(expected)


class TimeToSuccess(Metric):
    """Seconds from the run's start to its success event (null unless it succeeded)."""

    name: ClassVar[str] = "time_to_success"
    description: ClassVar[str] = "time from start to the success event"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("time_to_success", "continuous", "s", False, "seconds from start to success"),
    )

    def compute(self, run: Run) -> dict[str, Any]:
        if run.outcome is None:
            self.note_missing(NO_OUTCOME)
        if run.outcome != "success":
            return {"time_to_success": None}
        t = max(t for t, _ in _events(run, "success"))
        return {"time_to_success": (t - run.info.start_ns) / 1e9}

    def outdated(self, catalog: pl.DataFrame) -> pl.Expr | None:
        """Rows with a time but no success outcome, or a success outcome but no time."""
        import polars as pl

        if not {"outcome", "metrics.time_to_success"} <= set(catalog.columns):
            return None
        succeeded = (pl.col("outcome").cast(pl.String) == "success").fill_null(False)
        return succeeded != pl.col("metrics.time_to_success").is_not_null()


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
            self.note_missing(NO_OUTCOME)
            return {"failure_mode": None}
        if outcome == "success":
            return {"failure_mode": "none"}
        _, detail = max(_events(run, "failure"), key=lambda e: e[0])
        return {"failure_mode": str(detail.get("reason") or detail.get("mode") or "unspecified")}

    def outdated(self, catalog: pl.DataFrame) -> pl.Expr | None:
        """Rows whose ``metrics.failure_mode`` does not fit their ``outcome`` (changed since)."""
        import polars as pl

        if not {"outcome", "metrics.failure_mode"} <= set(catalog.columns):
            return None
        outcome, mode = pl.col("outcome").cast(pl.String), pl.col("metrics.failure_mode").cast(pl.String)
        return (outcome.is_null() != mode.is_null()) | ((outcome == "success") != (mode == "none")).fill_null(False)


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
        if not _reports_task_events(run):
            self.note_missing("no slip/drop/recovery reported: the run has no task events (slip, drop, recovery, "
                              "success, failure) from its log and no rule making slip/drop/recovery events")
            return {}
        rec = sorted(t for t, _ in _events(run, "recovery"))
        troubles = sorted(t for kind in ("slip", "drop") for t, _ in _events(run, kind))
        spent = 0.0
        for r in rec:
            before = [t for t in troubles if t <= r]
            if before:
                spent += (r - before[-1]) / 1e9
        return {"recoveries": float(len(rec)), "recovery_time": spent, "slips": float(len(_events(run, "slip")))}


def _reports_task_events(run: Run) -> bool:
    """Whether a count of slips, drops and recoveries is a measurement on *run*: some
    such event is there, a rule making them was applied, or the log itself reports
    task events (its own success / failure), so their absence means none happened.
    (A slip rule that fired on no run of a store leaves no trace: its runs read null.)"""
    ev = run.events
    if ev.height and ev.filter(ev["kind"].is_in(list(TASK_EVENTS))).height:
        return True
    origins = ev["origin"].to_list() if "origin" in ev.columns else ["log"] * ev.height
    kinds = ev["kind"].to_list()
    return any(o == "log" and k in ("success", "failure") for k, o in zip(kinds, origins, strict=True))


class PathLength(Metric):
    """Length of the end effector's path (m, from TF) and of the joint path (rad)."""

    name: ClassVar[str] = "path_length"
    description: ClassVar[str] = "end-effector path length and joint-space path length"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("path_length", "continuous", "m", False, "end-effector path length"),
        Column("joint_path_length", "continuous", "rad", False, "sum over joints of |Δq|"),
    )

    roles: ClassVar[tuple[str, ...]] = ("ee_pose", "joint_position")

    def compute(self, run: Run) -> dict[str, Any]:
        out: dict[str, Any] = {"path_length": None, "joint_path_length": None}
        m = self.role("ee_pose", run, required=False, min_rows=3)
        if m is not None:
            out["path_length"] = sum(
                float(np.nansum(np.linalg.norm(np.diff(v, axis=0), axis=1))) for *_, v in m.pieces(before=1)
            )
        q = self.role("joint_position", run, required=False, min_rows=3)
        if q is not None:
            out["joint_path_length"] = sum(float(np.nansum(np.abs(np.diff(v, axis=0)))) for *_, v in q.pieces(before=1))
        return out


class Jerk(Metric):
    """Smoothness: RMS jerk of the joint positions (rad/s³) on a 100 Hz grid, smoothed.

    The grid is built piece by piece (grid point *k* at ``k / 100`` s from the first
    sample, linear interpolation), carrying the last 7 grid rows that the 5-point
    moving average and the third difference need.
    """

    name: ClassVar[str] = "jerk"
    description: ClassVar[str] = "RMS joint jerk (lower is smoother)"
    columns: ClassVar[tuple[Column, ...]] = (Column("jerk_rms", "continuous", "rad/s³", False, "RMS joint jerk"),)

    rate_hz: ClassVar[float] = 100.0
    roles: ClassVar[tuple[str, ...]] = ("joint_position",)

    def compute(self, run: Run) -> dict[str, Any]:
        q = self.role("joint_position", run, min_rows=3)
        assert q is not None
        t0, t_last = q.first_time(), q.last_time()
        if t_last - t0 < 0.5e9:
            self.note_missing(f"joint_position spans {(t_last - t0) / 1e9:.2f} s, less than the 0.5 s jerk needs")
            return {"jerk_rms": None}
        dt = 1.0 / self.rate_hz
        s_last = (t_last - t0) / 1e9
        n_grid = max(0, int(np.ceil(s_last / dt)))  # len(np.arange(0, s_last, dt))
        kernel = np.ones(5) / 5  # 50 ms moving average against sensor noise
        tail = np.empty((0, q.cols))
        k_next, ssq, count = 0, 0.0, 0
        for _, b, _, t, v in q.pieces(before=1):
            s = (t - t0) / 1e9
            g = np.arange(k_next, min(n_grid, int(np.ceil(s[-1] / dt)) + 2)) * dt
            if b < q.n:  # grid points at or after this piece's last sample belong to the next
                g = g[g < s[-1]]
            if g.size == 0:
                continue
            k_next += g.size
            ext = np.concatenate([tail, np.column_stack([np.interp(g, s, v[:, j]) for j in range(v.shape[1])])])
            if ext.shape[0] >= 8:
                smooth = np.column_stack([np.convolve(ext[:, j], kernel, mode="valid") for j in range(ext.shape[1])])
                jerk = np.diff(smooth, n=3, axis=0) / dt**3
                ok = ~np.isnan(jerk)
                ssq += float(np.sum(jerk[ok] ** 2))
                count += int(ok.sum())
                tail = ext[-7:]
            else:
                tail = ext
        return {"jerk_rms": float(np.sqrt(ssq / count)) if count else float("nan")}


class TrackingError(Metric):
    """RMS and max of measured − commanded joint position (rad), on the command times."""

    name: ClassVar[str] = "tracking_error"
    description: ClassVar[str] = "commanded vs measured joint position error"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("tracking_error_rms", "continuous", "rad", False, "RMS of measured − commanded position"),
        Column("tracking_error_max", "continuous", "rad", False, "largest |measured − commanded| position"),
    )

    roles: ClassVar[tuple[str, ...]] = ("joint_command", "joint_position")

    def compute(self, run: Run) -> dict[str, Any]:
        none = {"tracking_error_rms": None, "tracking_error_max": None}
        c = self.role("joint_command", run, min_rows=3)
        m = self.role("joint_position", run, min_rows=3)
        assert c is not None and m is not None
        common = [n for n in c.names if n in m.names]
        if not common:
            self.note_missing(f"joint_command ({', '.join(c.names[:6])}) and joint_position ({', '.join(m.names[:6])}) "
                              "share no joint name")
            return none
        ci = [c.names.index(n) for n in common]
        mi = [m.names.index(n) for n in common]
        m_first, m_last = m.first_time(), m.last_time()
        ssq, count, size, worst = 0.0, 0, 0, -np.inf
        for *_, tc, cv in c.pieces():
            inside = (tc >= m_first) & (tc <= m_last)
            if not inside.any():
                continue
            tc, cv = tc[inside], cv[inside]
            for group in m.rd.split(tc):  # a bounded window of the measured stream per group
                tg = tc[group]
                mt, mv = m.window(*m.rd.covering(int(tg.min()), int(tg.max())))
                err = np.column_stack([np.interp(tg, mt, mv[:, j]) for j in mi]) - cv[group][:, ci]
                size += err.size
                ok = ~np.isnan(err)
                if ok.any():
                    ssq += float(np.sum(err[ok] ** 2))
                    count += int(ok.sum())
                    worst = max(worst, float(np.max(np.abs(err[ok]))))
        if size == 0:
            np.nanmax(np.empty(0))  # no command inside the measured span: numpy's error, as in memory
        return {
            "tracking_error_rms": float(np.sqrt(ssq / count)) if count else float("nan"),
            "tracking_error_max": worst if count else float("nan"),
        }


class Effort(Metric):
    """Mechanical energy ∫Σ|τ·ω|dt (J) and RMS joint effort (N·m)."""

    name: ClassVar[str] = "effort"
    description: ClassVar[str] = "actuator energy and RMS effort"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("energy", "continuous", "J", False, "∫ Σ |effort · velocity| dt"),
        Column("effort_rms", "continuous", "N·m", False, "RMS joint effort"),
    )

    roles: ClassVar[tuple[str, ...]] = ("joint_effort", "joint_velocity")

    def compute(self, run: Run) -> dict[str, Any]:
        e = self.role("joint_effort", run, min_rows=3)
        assert e is not None
        v = self.role("joint_velocity", run, required=False, min_rows=3)
        out: dict[str, Any] = {"energy": None, "effort_rms": None}
        with_power = v is not None and v.rd.ds is e.rd.ds and v.names == e.names
        if v is not None and not with_power:
            self.note_missing("energy needs joint_velocity on the same stream and joints as joint_effort")
        ssq, count, energy = 0.0, 0, 0.0
        t0 = e.first_time()
        for a, _, lo, t, ev in e.pieces(before=1):
            own = ev[a - lo :]
            ok = ~np.isnan(own)
            ssq += float(np.sum(own[ok] ** 2))
            count += int(ok.sum())
            if with_power:
                assert v is not None
                _, vv = v.window(lo, lo + t.size)
                power = np.nansum(np.abs(ev * vv), axis=1)
                s = (t - t0) / 1e9
                energy += float(np.sum(0.5 * (power[1:] + power[:-1]) * np.diff(s)))
        out["effort_rms"] = float(np.sqrt(ssq / count)) if count else float("nan")
        if with_power:
            out["energy"] = energy
        return out


class PeakForce(Metric):
    """Largest force magnitude seen by the force/torque sensor (N)."""

    name: ClassVar[str] = "peak_force"
    description: ClassVar[str] = "peak contact force"
    columns: ClassVar[tuple[Column, ...]] = (Column("peak_force", "continuous", "N", False, "max |force|"),)

    roles: ClassVar[tuple[str, ...]] = ("wrench",)

    def compute(self, run: Run) -> dict[str, Any]:
        f = self.role("wrench", run, min_rows=3)
        assert f is not None
        peak = None
        for *_, v in f.pieces():
            norms = np.linalg.norm(v, axis=1)
            norms = norms[~np.isnan(norms)]
            if norms.size:
                peak = float(norms.max()) if peak is None else max(peak, float(norms.max()))
        return {"peak_force": float("nan") if peak is None else peak}


class ControlLatency(Metric):
    """Delay between commanded and measured joint motion (ms), p50 and p95 over windows.

    Estimated with :func:`workbench.sync.estimate_offset` on every joint that moves,
    in windows over the run; the delay includes actuator latency and lag.

    Streams of up to :attr:`whole_rows` rows are estimated whole. Longer runs are cut
    into segments of about :attr:`segment_rows` rows, and at most :attr:`max_segments`
    of them, spread evenly over the run, are estimated (bounded memory and time); the
    windows of every segment are pooled.
    """

    name: ClassVar[str] = "control_latency"
    description: ClassVar[str] = "command-to-motion delay"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("control_latency_p50", "continuous", "ms", False, "median command-to-motion delay"),
        Column("control_latency_p95", "continuous", "ms", False, "95th percentile command-to-motion delay"),
    )

    roles: ClassVar[tuple[str, ...]] = ("joint_command", "joint_position")
    whole_rows: ClassVar[int] = 1_000_000
    segment_rows: ClassVar[int] = 65_536
    max_segments: ClassVar[int] = 8

    def compute(self, run: Run) -> dict[str, Any]:
        from workbench.model import SchemaError
        from workbench.sync import estimate_offset

        none = {"control_latency_p50": None, "control_latency_p95": None}
        c = self.role("joint_command", run, min_rows=32)
        m = self.role("joint_position", run, min_rows=3)
        assert c is not None and m is not None
        lo = np.full(c.cols, np.inf)
        hi = np.full(c.cols, -np.inf)
        finite = np.zeros(c.cols, dtype=bool)
        for *_, v in c.pieces():
            ok = ~np.isnan(v)
            finite |= ok.any(axis=0)
            lo = np.minimum(lo, np.where(ok, v, np.inf).min(axis=0))
            hi = np.maximum(hi, np.where(ok, v, -np.inf).max(axis=0))
        span = np.where(finite, hi - lo, np.nan)  # nanmax − nanmin; NaN for an all-NaN joint
        joints = [(j, m.names.index(name)) for j, name in enumerate(c.names) if name in m.names and not span[j] < 0.05]
        if not joints:
            return none
        whole = max(c.n, m.n) <= self.whole_rows
        segments = [(0, c.n, 0, m.n)] if whole else self._segments(c, m)
        lags: list[float] = []
        for ca, cb, ma, mb in segments:
            tc, cv = c.window(ca, cb)
            tm, mv = m.window(ma, mb)
            for j, jm in joints:
                try:
                    est = estimate_offset((tm, mv[:, jm]), (tc, cv[:, j]), max_lag="150ms", windows=3)
                except SchemaError:
                    if whole:
                        raise
                    continue  # a segment with too little overlap or data
                lags.extend(w[1] / 1e6 for w in est.windows[1:] if w[2] > 0.8)
                if est.confidence > 0.8 and not est.windows[1:]:
                    lags.append(est.offset_ns / 1e6)
        if not lags:
            return none
        return {"control_latency_p50": float(np.percentile(lags, 50)), "control_latency_p95": float(np.percentile(lags, 95))}

    def _segments(self, c: RoleSignal, m: RoleSignal) -> list[tuple[int, int, int, int]]:
        """Row ranges ``(c_a, c_b, m_a, m_b)`` of evenly spread time segments."""
        t0, t1 = c.first_time(), c.last_time()
        needed = int(np.ceil(max(c.n, m.n) / self.segment_rows))
        edges = np.linspace(t0, t1, needed + 1)
        chosen = np.unique(np.round(np.linspace(0, needed - 1, min(self.max_segments, needed))).astype(int))
        out = []
        for i in chosen.tolist():
            a_t, b_t = int(edges[i]), int(edges[i + 1])
            out.append((c.rd.searchsorted(a_t), c.rd.searchsorted(b_t, "right"), m.rd.searchsorted(a_t), m.rd.searchsorted(b_t, "right")))
        return out


class Jitter(Metric):
    """Standard deviation of the measured-state intervals (ms): timing regularity."""

    name: ClassVar[str] = "jitter"
    description: ClassVar[str] = "jitter of the joint-state stream"
    columns: ClassVar[tuple[Column, ...]] = (Column("jitter", "continuous", "ms", False, "std of joint-state intervals"),)

    roles: ClassVar[tuple[str, ...]] = ("joint_position",)

    def compute(self, run: Run) -> dict[str, Any]:
        q = self.role("joint_position", run, min_rows=3)
        assert q is not None
        rd = StreamPieces(q.rd.ds)

        def intervals() -> Iterator[np.ndarray]:
            for *_, p in rd.pieces(["time"], before=1):
                yield np.diff(p["time"])

        n, total = 0, 0
        for dt in intervals():
            n += dt.size
            total += int(dt.sum(dtype=np.int64))
        mean = total / n / 1e6  # exact mean (ms)
        ssd = sum(float(np.sum((dt / 1e6 - mean) ** 2)) for dt in intervals())
        return {"jitter": float(np.sqrt(ssd / n))}


class GripperCycles(Metric):
    """Gripper close-open cycles: the opening crosses below the middle of its range and
    back above it (hysteresis of a tenth of the range either side)."""

    name: ClassVar[str] = "gripper_cycles"
    description: ClassVar[str] = "gripper close-open cycles"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("gripper_cycles", "count", "", None, "times the gripper closed (and opened again or stayed closed)"),
    )
    roles: ClassVar[tuple[str, ...]] = ("gripper",)

    def compute(self, run: Run) -> dict[str, Any]:
        from workbench.events.detect import Intervals

        g = self.role("gripper", run, min_rows=3)
        assert g is not None
        if g.cols != 1:
            self.note_missing(f"gripper resolved to {g.cols} components ({', '.join(g.names)}); map one under roles:")
            return {"gripper_cycles": None}
        lo, hi = np.inf, -np.inf
        for *_, v in g.pieces():
            x = v[:, 0][~np.isnan(v[:, 0])]
            if x.size:
                lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
        if not np.isfinite(lo) or hi <= lo:
            return {"gripper_cycles": 0.0 if np.isfinite(lo) else None}
        mid, band = (lo + hi) / 2, (hi - lo) / 10
        det = Intervals.threshold("below", mid - band, mid + band)
        for _a, _b, _lo, t, v in g.pieces():
            det.feed(t, v[:, 0])
        return {"gripper_cycles": float(len(det.finish()))}
