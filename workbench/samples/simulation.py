"""Simulation of one pick-and-place run of a 6-joint arm, fully vectorized.

The task plan is a list of minimum-jerk moves between joint-space waypoints
(approach, descend, grasp, lift, transport, place, release, retreat). The outcome
(missed grasp, slips, recoveries, drop, timeout) is drawn first from probabilities
that depend on the factors (:data:`EFFECTS`), then the plan is laid out in time and
every sensor is sampled from the resulting motion:

* joint commands: the plan itself;
* true joint motion: the command delayed by the actuator latency
  (arm-b: +15 ms) and passed through a first-order lag;
* joint states: true positions with noise, the arm-b calibration offset on
  joint 2 and encoder quantization (multiples of 2**-16 rad), velocities and
  efforts (gravity, inertia, friction, payload);
* tool pose by forward kinematics of a UR5-like arm; IMU and force/torque at the
  wrist; the object's pose; a 64x48 wrist-camera picture drawn with PIL.

Everything random comes from generators seeded by the caller, so a run is a pure
function of its :class:`RunSpec`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EFFECTS",
    "JOINT_NAMES",
    "Plan",
    "RunSpec",
    "SimulatedRun",
    "forward_kinematics",
    "plan_run",
    "quaternion_from_matrix",
    "simulate",
]

F8 = NDArray[np.float64]
I8 = NDArray[np.int64]

JOINT_NAMES: tuple[str, ...] = tuple(f"joint_{i}" for i in range(1, 7))
"""Names of the six joints in every JointState message."""

# UR5 Denavit-Hartenberg parameters (metres, radians).
_DH_D = np.array([0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823])
_DH_A = np.array([0.0, -0.425, -0.39225, 0.0, 0.0, 0.0])
_DH_ALPHA = np.array([np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0])

ENCODER_LSB = 2.0**-16
"""Joint encoder resolution in radians: measured positions are multiples of this."""

GRAVITY = 9.81
GRIP_OFFSET_M = 0.09
"""Distance from the tool flange to the centre of a grasped object."""
TASK_TIMEOUT_S = 8.0
POSTROLL_S = 0.6
"""Recording continues this long after the success or failure event."""
"""A run whose task is not done this long after its start fails with ``timeout``."""

EFFECTS: dict[str, Any] = {
    "speed_factor": {"policy-v1": 1.0, "policy-v2": 0.8},
    "p_missed_grasp": {
        "policy-v1": {"bright": 0.04, "dim": 0.06},
        "policy-v2": {"bright": 0.02, "dim": 0.03},
        "policy-v2/arm-b/dim": 0.65,
    },
    "p_slip_per_phase": {"rubber": 0.06, "steel": 0.24},
    "slip_factor": {"policy-v1": 1.0, "policy-v2": 0.8},
    "slip_phases": ["lift", "transport"],
    "p_recover": 0.75,
    "regrasp_s": 1.2,
    "actuator_latency_ms": {"arm-a": 10.0, "arm-b": 25.0},
    "lag_time_constant_ms": 40.0,
    "calibration_offset_rad": {
        "arm-a": [0.0] * 6,
        "arm-b": [0.0, 0.03, 0.0, 0.0, 0.0, 0.0],
    },
    "camera_gain": {"bright": 1.0, "dim": 0.32},
    "camera_noise_sigma": {"bright": 2.0, "dim": 10.0},
    "task_timeout_s": TASK_TIMEOUT_S,
}
"""The planted effects: every factor's influence on the simulation, in one place.

Random draws for the outcome are shared by runs with the same scenario seed,
hardware and environment (common random numbers), so with the same scenario seed
policy-v2 succeeds whenever policy-v1 does, except on arm-b in dim light.
"""


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run."""

    robot: str
    lighting: str
    surface: str
    version: str
    scenario_seed: int
    campaign_seed: int
    run_index: int
    start_ns: int
    rates_hz: dict[str, float]
    duration_s: float | None = None
    camera_gap_s: tuple[float, float] | None = None
    imu_jump: tuple[float, float] | None = None  # (at fraction of run, jump seconds)
    p_miss: float | None = None  # a planted chance of a missed grasp (fleet campaigns), instead of EFFECTS'
    unit_key: int | None = None  # draws keyed by this unit instead of the robot (fleet campaigns)


# --------------------------------------------------------------------------- kinematics


def forward_kinematics(q: F8) -> NDArray[np.float64]:
    """Homogeneous transforms base_link→tool0, shape ``(n, 4, 4)``, for joints ``(n, 6)``.

    >>> T = forward_kinematics(np.zeros((1, 6)))
    >>> np.round(T[0, :3, 3], 3).tolist()
    [-0.817, -0.191, -0.005]
    """
    q = np.atleast_2d(q)
    n = len(q)
    out = np.broadcast_to(np.eye(4), (n, 4, 4)).copy()
    for j in range(6):
        ct, st = np.cos(q[:, j]), np.sin(q[:, j])
        ca, sa = np.cos(_DH_ALPHA[j]), np.sin(_DH_ALPHA[j])
        a = np.zeros((n, 4, 4))
        a[:, 0, 0], a[:, 0, 1], a[:, 0, 2], a[:, 0, 3] = (
            ct,
            -st * ca,
            st * sa,
            _DH_A[j] * ct,
        )
        a[:, 1, 0], a[:, 1, 1], a[:, 1, 2], a[:, 1, 3] = (
            st,
            ct * ca,
            -ct * sa,
            _DH_A[j] * st,
        )
        a[:, 2, 1], a[:, 2, 2], a[:, 2, 3] = sa, ca, _DH_D[j]
        a[:, 3, 3] = 1.0
        out = out @ a
    return out


def quaternion_from_matrix(r: F8) -> F8:
    """Unit quaternions ``(n, 4)`` as x, y, z, w from rotations ``(n, 3, 3)``.

    Shepperd's method (pivot on the largest of w, x, y, z); the sign is then chosen
    so that consecutive quaternions stay in one hemisphere (no sign flips in a series).

    >>> quaternion_from_matrix(np.eye(3)[None]).tolist()
    [[0.0, 0.0, 0.0, 1.0]]
    """
    r = np.asarray(r, dtype=np.float64)
    m00, m11, m22 = r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]
    trace = m00 + m11 + m22
    candidates = np.stack(
        [
            np.stack(
                [
                    r[:, 2, 1] - r[:, 1, 2],
                    r[:, 0, 2] - r[:, 2, 0],
                    r[:, 1, 0] - r[:, 0, 1],
                    1 + trace,
                ],
                1,
            ),
            np.stack(
                [
                    1 + m00 - m11 - m22,
                    r[:, 0, 1] + r[:, 1, 0],
                    r[:, 0, 2] + r[:, 2, 0],
                    r[:, 2, 1] - r[:, 1, 2],
                ],
                1,
            ),
            np.stack(
                [
                    r[:, 0, 1] + r[:, 1, 0],
                    1 - m00 + m11 - m22,
                    r[:, 1, 2] + r[:, 2, 1],
                    r[:, 0, 2] - r[:, 2, 0],
                ],
                1,
            ),
            np.stack(
                [
                    r[:, 0, 2] + r[:, 2, 0],
                    r[:, 1, 2] + r[:, 2, 1],
                    1 - m00 - m11 + m22,
                    r[:, 1, 0] - r[:, 0, 1],
                ],
                1,
            ),
        ],
        axis=1,
    )
    pivot = np.argmax(np.stack([trace, m00, m11, m22], axis=1), axis=1)
    quat = candidates[np.arange(len(r)), pivot]
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    if len(quat) > 1:
        flips = np.einsum("ij,ij->i", quat[1:], quat[:-1]) < 0
        sign = np.concatenate([[1.0], np.where(np.cumsum(flips) % 2 == 1, -1.0, 1.0)])
        quat *= sign[:, None]
    if quat[0, 3] < 0:
        quat = -quat
    return quat


def _pose(base: float, radius: float, height: float) -> F8:
    """Joints putting the flange at *radius*/*height* (m) at base angle *base*, pointing down.

    Solved by a few Newton steps on the shoulder and elbow (q4 keeps the tool
    vertical: q2 + q3 + q4 = -pi/2).
    """

    def pose(q2: float, q3: float) -> F8:
        return np.array([base, q2, q3, -np.pi / 2 - q2 - q3, -np.pi / 2, base])

    def reach(q23: F8) -> F8:
        p = forward_kinematics(pose(*q23))[0, :3, 3]
        return np.array([np.hypot(p[0], p[1]), p[2]])

    q23 = np.array([-1.15, 1.95])
    target = np.array([radius, height])
    for _ in range(8):
        err = reach(q23) - target
        jac = np.stack(
            [(reach(q23 + d) - reach(q23)) / 1e-6 for d in np.eye(2) * 1e-6], axis=1
        )
        q23 = q23 - np.linalg.solve(jac, err)
    return pose(*q23)


HOME = np.array([0.0, -1.45, 1.55, -1.67, -np.pi / 2, 0.0])


def _quantize(x: F8, lsb: float) -> F8:
    return np.round(x / lsb) * lsb


def _min_jerk(tau: F8) -> F8:
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """The laid-out task: motion segments, gripper, object and events (seconds from start)."""

    seg_t0: list[float] = field(default_factory=list)
    seg_dur: list[float] = field(default_factory=list)
    seg_from: list[F8] = field(default_factory=list)
    seg_to: list[F8] = field(default_factory=list)
    gripper: list[tuple[float, float]] = field(
        default_factory=list
    )  # (t, opening 0..1)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    object_pick: F8 = field(default_factory=lambda: np.zeros(6))
    attach_t: float | None = None
    release_t: float | None = None  # placed
    drop_t: float | None = None
    slip_shift: list[tuple[float, float]] = field(default_factory=list)  # (t, metres)
    jolts: list[tuple[float, float]] = field(default_factory=list)  # (t, m/s2)
    end_t: float = 0.0
    outcome: str = "failure"
    reason: str | None = None
    slips: int = 0
    recoveries: int = 0
    time_to_success_s: float | None = None

    def move(self, q_to: F8, duration: float) -> None:
        """Append a minimum-jerk move from the current end pose."""
        t0 = self.t
        q_from = self.seg_to[-1] if self.seg_to else HOME
        self.seg_t0.append(t0)
        self.seg_dur.append(duration)
        self.seg_from.append(q_from)
        self.seg_to.append(np.asarray(q_to, dtype=float))

    def hold(self, duration: float) -> None:
        """Stay at the current pose."""
        self.move(self.seg_to[-1] if self.seg_to else HOME, duration)

    @property
    def t(self) -> float:
        return self.seg_t0[-1] + self.seg_dur[-1] if self.seg_t0 else 0.0

    def truncate(self, t_stop: float) -> None:
        """Stop all motion at *t_stop*: the arm halts where it is and holds."""
        q_stop = self.command(np.array([t_stop]))[0]
        keep = [i for i, t0 in enumerate(self.seg_t0) if t0 < t_stop]
        for name in ("seg_t0", "seg_dur", "seg_from", "seg_to"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self.seg_t0.append(t_stop)
        self.seg_dur.append(1e-3)
        self.seg_from.append(q_stop)
        self.seg_to.append(q_stop)
        self.gripper = [(t, g) for t, g in self.gripper if t <= t_stop]
        self.events = [(t, e) for t, e in self.events if t < t_stop]
        self.jolts = [(t, a) for t, a in self.jolts if t < t_stop]
        self.slip_shift = [(t, s) for t, s in self.slip_shift if t < t_stop]
        if self.release_t is not None and self.release_t >= t_stop:
            self.release_t = None
        if self.drop_t is not None and self.drop_t >= t_stop:
            self.drop_t = None

    def command(self, t: F8) -> F8:
        """Commanded joint positions ``(n, 6)`` at times *t* (seconds)."""
        t0 = np.asarray(self.seg_t0)
        idx = np.clip(np.searchsorted(t0, t, side="right") - 1, 0, len(t0) - 1)
        tau = (t - t0[idx]) / np.asarray(self.seg_dur)[idx]
        s = _min_jerk(tau)[:, None]
        qa, qb = np.asarray(self.seg_from)[idx], np.asarray(self.seg_to)[idx]
        return qa + (qb - qa) * s

    def opening(self, t: F8) -> F8:
        """Gripper opening (1 open, 0 closed) at times *t*."""
        ts, gs = zip(*self.gripper, strict=True)
        return np.interp(t, ts, gs)


def plan_run(spec: RunSpec) -> Plan:
    """Draw the scenario and outcome of *spec* and lay the task out in time."""
    scen = np.random.default_rng([spec.campaign_seed, spec.scenario_seed, 101])
    hw = ("arm-a", "arm-b").index(spec.robot)
    env = (
        ("bright", "dim").index(spec.lighting),
        ("rubber", "steel").index(spec.surface),
    )
    draws = np.random.default_rng(
        [spec.campaign_seed, spec.scenario_seed, 202, hw if spec.unit_key is None else 1000 + spec.unit_key, *env]
    )
    u_miss, u_slip1, u_slip2, u_rec1, u_rec2, f1, f2, u_mm = draws.random(8)
    miss_dir = 1.0 if draws.random() < 0.5 else -1.0

    # Scenario: where the object is and where it goes (same for every variant).
    base_pick = -0.55 + scen.uniform(-0.2, 0.2)
    base_place = base_pick + 1.25 + scen.uniform(-0.15, 0.15)
    reach_pick, reach_place = scen.uniform(-0.06, 0.06, size=2)
    m_approach, m_transport = scen.uniform(0.88, 1.18, size=2)

    speed = EFFECTS["speed_factor"][spec.version]
    pm = EFFECTS["p_missed_grasp"]
    if spec.p_miss is not None:
        p_miss = spec.p_miss
    elif spec.version == "policy-v2" and spec.robot == "arm-b" and spec.lighting == "dim":
        p_miss = pm["policy-v2/arm-b/dim"]
    else:
        p_miss = pm[spec.version][spec.lighting]
    p_slip = (
        EFFECTS["p_slip_per_phase"][spec.surface] * EFFECTS["slip_factor"][spec.version]
    )
    p_rec = EFFECTS["p_recover"]
    regrasp = EFFECTS["regrasp_s"]

    grasp = _pose(base_pick, 0.55 + reach_pick, 0.12)
    pre = _pose(base_pick, 0.55 + reach_pick, 0.26)
    place = _pose(base_place, 0.55 + reach_place, 0.12)
    pre_place = _pose(base_place, 0.55 + reach_place, 0.26)

    plan = Plan(object_pick=grasp)
    plan.gripper.append((0.0, 1.0))
    plan.hold(0.3)
    plan.move(pre, 1.25 * m_approach * speed)
    missed = u_miss < p_miss
    aim = grasp.copy()
    if missed:
        # Perception error: the gripper closes beside the object.
        aim[0] += miss_dir * 0.09
        aim[5] = aim[0]
    plan.move(aim, 0.5 * speed)
    t_close = plan.t
    plan.hold(0.35 * speed)
    plan.gripper += [(t_close, 1.0), (plan.t, 0.0)]
    if missed:
        plan.events.append(
            (plan.t + 0.25, {"kind": "failure", "reason": "missed_grasp"})
        )
        plan.hold(0.3)
        plan.gripper.append((plan.t, 1.0))
        plan.move(pre, 0.5 * speed)
        plan.move(HOME, 1.2 * speed)
    else:
        plan.attach_t = plan.t
        plan.events.append((plan.t, {"kind": "grasp"}))
        dropped = False
        for phase, target, duration, u_slip, u_rec, frac in (
            ("lift", pre, 0.6 * speed, u_slip1, u_rec1, f1),
            ("transport", pre_place, 1.4 * m_transport * speed, u_slip2, u_rec2, f2),
        ):
            t_start = plan.t
            plan.move(target, duration)
            if u_slip >= p_slip:
                continue
            t_slip = t_start + (0.2 + 0.6 * frac) * duration
            slip_mm = round(4.0 + 14.0 * u_mm, 1)
            plan.slips += 1
            plan.events.append(
                (t_slip, {"kind": "slip", "phase": phase, "slip_mm": slip_mm})
            )
            plan.jolts.append((t_slip, 1.5))
            plan.slip_shift.append((t_slip, slip_mm / 1000.0))
            if u_rec < p_rec:
                # The policy notices the slip, stops at the end of the move and regrasps.
                plan.gripper += [
                    (plan.t, 0.0),
                    (plan.t + 0.3, 0.35),
                    (plan.t + regrasp - 0.3, 0.35),
                    (plan.t + regrasp, 0.0),
                ]
                plan.hold(regrasp)
                plan.recoveries += 1
                plan.events.append((plan.t, {"kind": "recovery", "regrasp_s": regrasp}))
                plan.slip_shift.append((plan.t, 0.0))
            else:
                t_drop = t_slip + 0.12
                plan.truncate(t_drop + 0.3)
                plan.drop_t = t_drop
                plan.jolts.append((t_drop, 3.0))
                plan.events.append((t_drop, {"kind": "drop"}))
                plan.events.append(
                    (t_drop + 0.3, {"kind": "failure", "reason": "drop"})
                )
                plan.gripper += [(plan.t, 0.0), (plan.t + 0.2, 1.0)]
                plan.move(HOME, 1.4 * speed)
                dropped = True
                break
        if not dropped:
            plan.move(place, 0.5 * speed)
            t_open = plan.t
            plan.hold(0.3 * speed)
            plan.gripper += [(t_open, 0.0), (plan.t, 1.0)]
            plan.release_t = plan.t
            plan.events.append((plan.t, {"kind": "success"}))
            plan.move(pre_place, 0.4 * speed)
            plan.move(HOME, 1.0 * speed)

    plan.events.sort(key=lambda e: e[0])
    end_event_t = next(t for t, e in plan.events if e["kind"] in ("success", "failure"))
    if end_event_t > TASK_TIMEOUT_S:
        plan.truncate(TASK_TIMEOUT_S)
        plan.events.append((TASK_TIMEOUT_S, {"kind": "failure", "reason": "timeout"}))
    plan.end_t = plan.events[-1][0] + POSTROLL_S
    if plan.events[-1][1]["kind"] == "failure":
        # A failed run records the arm's way home.
        plan.end_t = max(plan.end_t, plan.t + 0.2)
    if spec.duration_s is not None:
        if plan.events[-1][0] > spec.duration_s - 0.05:
            t_stop = spec.duration_s - 0.05
            plan.truncate(t_stop)
            plan.events.append((t_stop, {"kind": "failure", "reason": "timeout"}))
        plan.end_t = spec.duration_s
    plan.gripper.sort(key=lambda g: g[0])
    final = plan.events[-1][1]
    plan.outcome = final["kind"]
    plan.reason = final.get("reason")
    if plan.outcome == "success":
        plan.time_to_success_s = round(float(plan.events[-1][0]), 6)
    plan.slips = sum(1 for _, e in plan.events if e["kind"] == "slip")
    plan.recoveries = sum(1 for _, e in plan.events if e["kind"] == "recovery")
    return plan


# --------------------------------------------------------------------------- sensors


@dataclass
class Topic:
    """Samples of one topic: header stamps, log times, values, sequence numbers."""

    header_ns: I8
    log_ns: I8
    seq: NDArray[np.int64]
    values: dict[str, Any]


@dataclass
class SimulatedRun:
    """Sensor data and truth of one simulated run."""

    spec: RunSpec
    plan: Plan
    topics: dict[str, Topic]
    events: list[tuple[int, str]]  # (log_time ns, JSON payload)
    end_ns: int


# Sensor latency: log_time = header stamp + base + gamma-distributed jitter (ms).
LATENCY_MS: dict[str, tuple[float, float]] = {
    "/joint_states": (1.2, 0.3),
    "/joint_commands": (0.4, 0.1),
    "/imu": (1.8, 0.4),
    "/ft_sensor": (0.9, 0.2),
    "/tf": (2.5, 0.5),
    "/wrist_camera/image_raw/compressed": (28.0, 4.0),
}
IMU_CLOCK_OFFSET_NS = -37_000_000
"""The IMU's header stamps run 37 ms behind the recorder clock."""
# Phase of each sensor's sampling grid relative to the run start (ns).
_PHASE_NS = {
    "/joint_states": 0,
    "/joint_commands": 0,
    "/imu": 700_000,
    "/ft_sensor": 300_000,
    "/tf": 1_100_000,
    "/wrist_camera/image_raw/compressed": 17_000_000,
}


def _grid(topic: str, rate: float, end_s: float) -> tuple[F8, I8]:
    period_ns = round(1e9 / rate)
    n = int((end_s * 1e9 - _PHASE_NS[topic]) // period_ns) + 1
    k = np.arange(n, dtype=np.int64)
    rel_ns = _PHASE_NS[topic] + k * period_ns
    return rel_ns / 1e9, rel_ns


def _latency_ns(rng: np.random.Generator, topic: str, n: int) -> I8:
    base, jitter = LATENCY_MS[topic]
    ms = base + rng.gamma(2.0, jitter / 2.0, size=n)
    return np.round(ms * 1e3).astype(np.int64) * 1000  # microsecond resolution


def _first_order_lag(x: F8, dt: float, tau: float) -> F8:
    """Discrete first-order lag (unity gain) of *x* sampled every *dt*, along axis 0."""
    taps = int(np.ceil(6 * tau / dt)) + 1
    kernel = np.exp(-np.arange(taps) * dt / tau)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(x[:1], taps - 1, axis=0), x], axis=0)
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        out[:, j] = np.convolve(padded[:, j], kernel, mode="valid")
    return out


def _body_rates(rot: F8, dt: float) -> F8:
    """Angular velocity in the body frame from rotations sampled every *dt*."""
    rdot = np.gradient(rot, dt, axis=0)
    w = np.einsum("nji,njk->nik", rot, rdot)  # R^T Rdot = [omega]x
    return 0.5 * np.stack(
        [w[:, 2, 1] - w[:, 1, 2], w[:, 0, 2] - w[:, 2, 0], w[:, 1, 0] - w[:, 0, 1]],
        axis=1,
    )


class _Motion:
    """True arm motion on a fine grid, interpolated to any sensor's times."""

    DT = 0.001

    def __init__(self, plan: Plan, spec: RunSpec) -> None:
        self.plan = plan
        latency = EFFECTS["actuator_latency_ms"][spec.robot] / 1000.0
        tau = EFFECTS["lag_time_constant_ms"] / 1000.0
        n = int(plan.end_t / self.DT) + 3
        self.t = np.arange(n) * self.DT
        self.q = _first_order_lag(plan.command(self.t - latency), self.DT, tau)

    def joints(self, t: F8) -> F8:
        return np.stack([np.interp(t, self.t, self.q[:, j]) for j in range(6)], axis=1)

    def tool(self, t: F8) -> F8:
        return forward_kinematics(self.joints(t))

    def holding(self, t: F8) -> NDArray[np.bool_]:
        p = self.plan
        if p.attach_t is None:
            return np.zeros(len(t), dtype=bool)
        end = min(x for x in (p.release_t, p.drop_t, np.inf) if x is not None)
        return (t >= p.attach_t) & (t < end)

    def slip(self, t: F8) -> F8:
        out = np.zeros(len(t))
        for ts, shift in self.plan.slip_shift:
            out[t >= ts] = shift
        return out

    def jolt(self, t: F8) -> F8:
        out = np.zeros(len(t))
        for tj, amp in self.plan.jolts:
            dt = t - tj
            on = dt >= 0
            out[on] += amp * np.exp(-dt[on] / 0.04) * np.cos(2 * np.pi * 25 * dt[on])
        return out

    def _held_pose(self, t: F8, tool: F8) -> tuple[F8, F8]:
        grip = np.stack(
            [np.zeros(len(t)), self.slip(t), np.full(len(t), GRIP_OFFSET_M)], axis=1
        )
        pos = tool[:, :3, 3] + np.einsum("nij,nj->ni", tool[:, :3, :3], grip)
        quat = quaternion_from_matrix(tool[:, :3, :3] @ np.diag([1.0, -1.0, -1.0]))
        return pos, quat

    def object_pose(self, t: F8) -> tuple[F8, F8]:
        """Object position ``(n, 3)`` and orientation ``(n, 4)`` in the world frame."""
        p = self.plan
        pick = forward_kinematics(p.object_pick)[0]
        rest = pick[:3, 3] + pick[:3, :3] @ np.array([0.0, 0.0, GRIP_OFFSET_M])
        pos = np.tile(rest, (len(t), 1))
        upright = quaternion_from_matrix(
            (pick[:3, :3] @ np.diag([1.0, -1.0, -1.0]))[None]
        )[0]
        quat = np.tile(upright, (len(t), 1))
        if p.attach_t is None:
            return pos, quat
        held = self.holding(t)
        if held.any():
            held_pos, held_quat = self._held_pose(t[held], self.tool(t[held]))
            pos[held], quat[held] = held_pos, held_quat
        t_let_go = p.release_t if p.release_t is not None else p.drop_t
        if t_let_go is not None:
            tl = np.array([t_let_go])
            p_let, q_let = self._held_pose(tl, self.tool(tl))
            after = t >= t_let_go
            fall = t[after] - t_let_go
            pos[after] = p_let[0]
            pos[after, 2] = np.maximum(rest[2], p_let[0, 2] - 0.5 * GRAVITY * fall**2)
            quat[after] = q_let[0]
        return pos, quat


def _camera_frames(
    motion: _Motion,
    t: F8,
    spec: RunSpec,
    rng: np.random.Generator,
    size: tuple[int, int],
    quality: int,
) -> list[bytes]:
    from PIL import Image, ImageDraw

    width, height = size
    gain = EFFECTS["camera_gain"][spec.lighting]
    sigma = EFFECTS["camera_noise_sigma"][spec.lighting]
    tool = motion.tool(t)
    obj_pos, _ = motion.object_pose(t)
    opening = motion.plan.opening(t)
    rel = np.einsum("nji,nj->ni", tool[:, :3, :3], obj_pos - tool[:, :3, 3])
    focal = 0.9 * width
    frames = []
    for i in range(len(t)):
        img = Image.new("RGB", (width, height), (132, 124, 108))
        draw = ImageDraw.Draw(img)
        # Table texture: a few fixed stripes so the background is not flat.
        for y in range(0, height, 12):
            draw.line([(0, y), (width, y)], fill=(120, 113, 98))
        x, y, z = rel[i]
        if z > 0.02:
            u = width / 2 + focal * x / z
            v = height / 2 + focal * y / z
            half = max(1.0, focal * 0.025 / z)
            draw.rectangle([u - half, v - half, u + half, v + half], fill=(196, 40, 36))
        gap = 4 + 16 * opening[i]
        for side in (-1, 1):
            cx = width / 2 + side * gap
            draw.rectangle([cx - 3, height - 14, cx + 3, height - 1], fill=(70, 72, 78))
        arr = np.asarray(img, dtype=np.float64) * gain
        arr += rng.normal(0.0, sigma, size=arr.shape)
        out = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=quality, optimize=False)
        frames.append(buf.getvalue())
    return frames


def simulate(
    spec: RunSpec, *, image_size: tuple[int, int] = (64, 48), jpeg_quality: int = 70
) -> SimulatedRun:
    """Simulate the run *spec*: every topic's samples, its events and its truth."""
    plan = plan_run(spec)
    hw = ("arm-a", "arm-b").index(spec.robot)
    rng = np.random.default_rng([spec.campaign_seed, spec.run_index, 303, hw])
    motion = _Motion(plan, spec)
    rates = spec.rates_hz
    topics: dict[str, Topic] = {}

    def stamps(topic: str) -> tuple[F8, I8, I8]:
        t, rel_ns = _grid(topic, rates[topic], plan.end_t)
        header = spec.start_ns + rel_ns
        return t, header, header + _latency_ns(rng, topic, len(t))

    # Joint commands: the plan.
    t, header, log = stamps("/joint_commands")
    cmd = _quantize(plan.command(t), ENCODER_LSB)
    topics["/joint_commands"] = Topic(header, log, np.arange(len(t)), {"position": cmd})

    # Joint states.
    t, header, log = stamps("/joint_states")
    q = motion.joints(t)
    dt = 1.0 / rates["/joint_states"]
    qd = np.gradient(q, dt, axis=0)
    qdd = np.gradient(qd, dt, axis=0)
    offset = np.asarray(EFFECTS["calibration_offset_rad"][spec.robot])
    pos = _quantize(
        q + offset + rng.normal(0.0, 0.5 * ENCODER_LSB, q.shape), ENCODER_LSB
    )
    vel = _quantize(qd + rng.normal(0.0, 0.0015, q.shape), 2.0**-10)
    payload = 0.4 * motion.holding(t)
    s2, s23, s234 = (
        np.cos(q[:, 1]),
        np.cos(q[:, 1] + q[:, 2]),
        np.cos(q[:, 1] + q[:, 2] + q[:, 3]),
    )
    gravity = np.zeros_like(q)
    gravity[:, 1] = (
        34.0 * s2 + 11.5 * s23 + (4.1 * payload) * (0.425 * s2 + 0.392 * s23)
    )
    gravity[:, 2] = 11.5 * s23 + 4.1 * payload * 0.392 * s23 + 0.8 * s234
    gravity[:, 3] = 0.8 * s234 + 0.3 * payload
    inertia = np.array([2.2, 2.6, 1.1, 0.25, 0.22, 0.08])
    friction = np.array([3.0, 3.4, 2.2, 0.9, 0.8, 0.4])
    eff = gravity + inertia * qdd + friction * np.tanh(qd / 0.05)
    eff = _quantize(eff + rng.normal(0.0, 0.03, q.shape), 2.0**-6)
    topics["/joint_states"] = Topic(
        header,
        log,
        np.arange(len(t)),
        {"position": pos, "velocity": vel, "effort": eff},
    )

    # IMU on the wrist (tool0 frame), with a constant clock offset on its stamps.
    t, header, log = stamps("/imu")
    tool = motion.tool(t)
    rot = tool[:, :3, :3]
    dt = 1.0 / rates["/imu"]
    acc_world = np.gradient(np.gradient(tool[:, :3, 3], dt, axis=0), dt, axis=0)
    acc_world[:, 2] += GRAVITY
    acc = np.einsum("nji,nj->ni", rot, acc_world)
    acc[:, 2] += motion.jolt(t)
    gyro = _body_rates(rot, dt)
    quat = quaternion_from_matrix(rot)
    imu_header = header + IMU_CLOCK_OFFSET_NS
    if spec.imu_jump is not None:
        at, jump = spec.imu_jump
        imu_header = imu_header + np.where(t >= at, round(jump * 1e9), 0)
    topics["/imu"] = Topic(
        imu_header,
        log,
        np.arange(len(t)),
        {
            "orientation": _quantize(
                quat + rng.normal(0.0, 1e-4, quat.shape), 2.0**-12
            ),
            "angular_velocity": _quantize(
                gyro + rng.normal(0.0, 0.003, gyro.shape), 2.0**-9
            ),
            "linear_acceleration": _quantize(
                acc + rng.normal(0.0, 0.02, acc.shape), 2.0**-7
            ),
        },
    )

    # Force/torque at the wrist: object weight while held, grasp squeeze, slip relief.
    t, header, log = stamps("/ft_sensor")
    rot = motion.tool(t)[:, :3, :3]
    held = motion.holding(t).astype(float)
    load = np.zeros((len(t), 3))
    load[:, 2] = -0.4 * GRAVITY * held
    for ts, shift in plan.slip_shift:
        if shift > 0:
            relief = np.where(t >= ts, np.exp(-np.clip(t - ts, 0, None) / 0.08), 0.0)
            load[:, 2] += 0.4 * GRAVITY * 0.6 * relief * held
    force = np.einsum("nji,nj->ni", rot, load)
    opening = plan.opening(t)
    force[:, 1] += 6.0 * (1.0 - opening) * (held > 0)  # grip squeeze seen by the sensor
    torque = np.cross(np.array([0.0, 0.0, 0.09]), force)
    force = _quantize(force + rng.normal(0.0, 0.05, force.shape), 2.0**-5)
    torque = _quantize(torque + rng.normal(0.0, 0.004, torque.shape), 2.0**-8)
    topics["/ft_sensor"] = Topic(
        header, log, np.arange(len(t)), {"force": force, "torque": torque}
    )

    # TF: base_link→tool0 from forward kinematics of the *measured* joints (as a
    # robot_state_publisher would), world→object from the simulation.
    t, header, log = stamps("/tf")
    js = topics["/joint_states"]
    js_t = (js.header_ns - spec.start_ns) / 1e9
    q_meas = np.stack(
        [np.interp(t, js_t, js.values["position"][:, j]) for j in range(6)], axis=1
    )
    tool = forward_kinematics(q_meas)
    obj_pos, obj_quat = motion.object_pose(t)
    topics["/tf"] = Topic(
        header,
        log,
        np.arange(len(t)),
        {
            "tool_translation": _quantize(tool[:, :3, 3], 2.0**-20),
            "tool_rotation": _quantize(
                quaternion_from_matrix(tool[:, :3, :3]), 2.0**-20
            ),
            "object_translation": _quantize(obj_pos, 2.0**-20),
            "object_rotation": _quantize(obj_quat, 2.0**-20),
        },
    )

    # Wrist camera.
    topic = "/wrist_camera/image_raw/compressed"
    t, header, log = stamps(topic)
    seq = np.arange(len(t))
    if spec.camera_gap_s is not None:
        a, b = spec.camera_gap_s
        keep = (t < a) | (t >= b)
        t, header, log, seq = t[keep], header[keep], log[keep], seq[keep]
    frames = _camera_frames(motion, t, spec, rng, image_size, jpeg_quality)
    topics[topic] = Topic(header, log, seq, {"frames": frames})

    events = [
        (spec.start_ns + round(te * 1e9), json.dumps(ev)) for te, ev in plan.events
    ]
    end_ns = spec.start_ns + round(plan.end_t * 1e9)
    return SimulatedRun(spec, plan, topics, events, end_ns)
