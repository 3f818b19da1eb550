"""Inputs of metrics by role: which stream and variable of a run is the joint position,
the attitude, the battery voltage…

A metric asks for a *role* (``self.role("joint_position", run)``), not a stream name,
and gets a :class:`RoleSignal` read piece by piece along time. Each role resolves per
run, first match wins:

1. an override: the ``roles:`` section of ``workbench.yaml`` (in the store's folder,
   else the current folder), or :func:`use_roles` / ``compute(…, roles=…)`` in Python;
   a block may carry ``when:`` (``reader``, ``name``, ``source`` with ``*`` globs, or
   factors) to apply to some runs only;
2. the format defaults of :data:`DEFAULTS`: the sample campaign's ROS topics, LeRobot
   ``observation.state`` / ``action`` (joint names from ``meta/info.json``), robomimic
   and robosuite keys, PX4 ULog topics, ArduPilot DataFlash messages, MAVLink messages.

A role that is not found raises :class:`MissingInput`, which
:func:`workbench.metrics.compute_run` turns into null values and the reason in
``<metric>.why``: a metric never reports 0 for what it did not measure. An override
that names a stream, variable or label the run lacks is a :class:`ConfigError`
naming the role, the run and what it has.

YAML::

    roles:
      joint_position: {stream: arm_state, variable: q}          # every run
      gripper:
        - when: {reader: lerobot}
          stream: observation.state
          variable: state
          joint: gripper.pos                                     # one label of a dimension
      attitude:                                                  # several scalar variables
        - when: {source: "*/bench_rig/*"}
          stream: ATT
          variables: [Roll, Pitch, Yaw]
          scale: 0.017453292519943295                            # degrees → radians

Examples
--------
>>> import numpy as np, xarray as xr, workbench as wb
>>> ds = xr.Dataset({"state": (("time", "joint"), np.zeros((5, 2)))},
...                 coords={"time": np.arange(5) * 10**8, "joint": ["a.pos", "gripper.pos"]})
>>> run = wb.Run(info=wb.RunInfo(run_id="r", provenance=wb.Provenance(reader="lerobot")),
...              streams={"observation.state": ds})
>>> b = resolve(run, "joint_position")
>>> b.describe(), b.why
('observation.state/state[joint=a.pos]', 'default (lerobot): observation.state/state without the gripper')
>>> resolve(run, "gripper").describe()
'observation.state/state[joint=gripper.pos]'
"""

from __future__ import annotations

import fnmatch
import math
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError, WorkbenchError

if TYPE_CHECKING:
    from workbench.model import Run
    from workbench.pieces import StreamPieces

__all__ = [
    "DEFAULTS",
    "ROLES",
    "Binding",
    "MissingInput",
    "Role",
    "RoleConfig",
    "RoleSignal",
    "configured_roles",
    "current_roles",
    "resolve",
    "resolve_all",
    "role_signal",
    "use_roles",
]

DEG = math.pi / 180


@dataclass(frozen=True)
class Role:
    """One kind of input: what it is and the unit its values have once resolved."""

    name: str
    description: str
    unit: str


ROLES: dict[str, Role] = {r.name: r for r in (
    Role("joint_position", "measured joint positions (one component per joint)", "rad"),
    Role("joint_velocity", "measured joint velocities", "rad/s"),
    Role("joint_effort", "measured joint efforts (torques)", "N·m"),
    Role("joint_command", "commanded joint positions (the policy's action)", "rad"),
    Role("wrench", "force at the wrist / end effector (x, y, z)", "N"),
    Role("ee_pose", "end-effector position (x, y, z)", "m"),
    Role("gripper", "gripper opening (one component)", ""),
    Role("base_velocity", "mobile base velocity (linear x, y, z)", "m/s"),
    Role("attitude", "vehicle attitude estimate (roll, pitch, yaw)", "rad"),
    Role("attitude_setpoint", "attitude setpoint (roll, pitch, yaw)", "rad"),
    Role("rate", "body angular rate estimate (roll, pitch, yaw rate)", "rad/s"),
    Role("rate_setpoint", "body angular rate setpoint (roll, pitch, yaw rate)", "rad/s"),
    Role("position", "vehicle local position (x, y, z)", "m"),
    Role("position_setpoint", "vehicle local position setpoint (x, y, z)", "m"),
    Role("battery_voltage", "battery voltage", "V"),
    Role("battery_current", "battery current", "A"),
    Role("battery_used", "charge drawn from the battery so far", "mAh"),
    Role("vibration", "vibration level per accelerometer axis (x, y, z)", "m/s²"),
    Role("clipping", "accelerometer clipping counters (cumulative)", ""),
    Role("estimator_innovation", "estimator innovation test ratios (1 = at the gate)", ""),
    Role("mode", "flight / control mode number", ""),
    Role("armed", "armed state (1 armed, 0 disarmed)", ""),
    Role("landed", "landed state (1 on the ground, 0 flying)", ""),
)}
"""Every role a built-in metric reads; plugins may ask for their own names too (they
resolve through overrides only)."""


@dataclass(frozen=True)
class Candidate:
    """Where a role may be in a run: *stream*, one *variable* (narrowed by *select*
    labels, or with labels *drop*-ped) or several scalar *variables* as components;
    values times *scale* (plus *offset*); *form* ``quat`` turns an (x, y, z, w)
    quaternion into roll, pitch, yaw; *bit* takes one bit of an integer (armed);
    *equals* gives 1 where the value equals it (armed state 2), else 0."""

    stream: str
    variable: str | None = None
    variables: tuple[str, ...] = ()
    select: tuple[tuple[str, tuple[str, ...]], ...] = ()
    drop: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0
    offset: float = 0.0
    form: str = ""
    bit: int | None = None
    equals: float | None = None
    readers: tuple[str, ...] = ()
    note: str = ""
    names: tuple[str, ...] = ()
    changes: bool = False
    """The stream records changes of a 0/1 state only (DataFlash ARM): before its
    first record the state was the opposite."""
    invalid: tuple[float, ...] = ()
    """Raw values that mean "not measured" (MAVLink: −1, UINT16_MAX): read as NaN."""


def _c(stream: str, variable: str | None = None, *, readers: Sequence[str] = (), **kw: Any) -> Candidate:
    if "variables" in kw:
        kw["variables"] = tuple(kw["variables"])
    if "invalid" in kw:
        kw["invalid"] = tuple(float(x) for x in kw["invalid"])
    if "names" in kw:
        kw["names"] = tuple(kw["names"])
    return Candidate(stream, variable, readers=tuple(readers), **kw)


_RPY = ("roll", "pitch", "yaw")
_XYZ = ("x", "y", "z")
_AXES = {"attitude": _RPY, "attitude_setpoint": _RPY, "rate": _RPY, "rate_setpoint": _RPY,
         "position": _XYZ, "position_setpoint": _XYZ, "vibration": _XYZ, "wrench": _XYZ, "ee_pose": _XYZ}
"""Component names of roles whose components are axes (given to scalar ``variables`` without names)."""
_ULOG, _DF, _TLOG = ("ulog",), ("dataflash",), ("tlog",)
_GRIP = "*gripper*"

DEFAULTS: dict[str, tuple[Candidate, ...]] = {
    "joint_position": (
        _c("joint_states", "position"),
        _c("observation.state", "state", readers=("lerobot",), drop=(("*", _GRIP),), note="without the gripper"),
        _c("obs.robot0_joint_pos", "robot0_joint_pos", readers=("hdf5",)),
    ),
    "joint_velocity": (
        _c("joint_states", "velocity"),
        _c("joint_velocities", "joint_velocities", readers=("hdf5",)),
        _c("obs.robot0_joint_vel", "robot0_joint_vel", readers=("hdf5",)),
    ),
    "joint_effort": (
        _c("joint_states", "effort"),
        _c("joint_torques", "joint_torques", readers=("hdf5",)),
    ),
    "joint_command": (
        _c("joint_commands", "position"),
        _c("action", "action", readers=("lerobot",), drop=(("*", _GRIP),), note="the action without the gripper"),
    ),
    "wrench": (_c("ft_sensor", "force"),),
    "ee_pose": (
        *(_c(f"tf.{f}", "translation") for f in ("tool0", "ee_link", "end_effector", "gripper")),
        _c("obs.robot0_eef_pos", "robot0_eef_pos", readers=("hdf5",)),
    ),
    "gripper": (
        _c("observation.state", "state", readers=("lerobot",), select=(("*", (_GRIP,)),)),
        _c("obs.robot0_gripper_qpos", "robot0_gripper_qpos", readers=("hdf5",)),
        _c("gripper_actuations", "gripper_actuations", readers=("hdf5",)),
    ),
    "base_velocity": (_c("odom", "twist.linear"), _c("cmd_vel", "linear")),
    "attitude": (
        _c("vehicle_attitude", "q", readers=_ULOG, form="quat", names=_RPY, note="quaternion as roll, pitch, yaw"),
        _c("ATT", variables=("Roll", "Pitch", "Yaw"), readers=_DF, scale=DEG, names=_RPY, note="degrees"),
        _c("ATTITUDE", variables=("roll", "pitch", "yaw"), readers=_TLOG, names=_RPY),
    ),
    "attitude_setpoint": (
        _c("vehicle_attitude_setpoint", variables=("roll_body", "pitch_body", "yaw_body"), readers=_ULOG, names=_RPY),
        _c("vehicle_attitude_setpoint", "q_d", readers=_ULOG, form="quat", names=_RPY, note="quaternion as roll, pitch, yaw"),
        _c("ATT", variables=("DesRoll", "DesPitch", "DesYaw"), readers=_DF, scale=DEG, names=_RPY, note="degrees"),
        _c("ATTITUDE_TARGET", "q", readers=_TLOG, form="quat", names=_RPY),
    ),
    "rate": (
        _c("vehicle_angular_velocity", "xyz", readers=_ULOG, names=_RPY),
        _c("vehicle_attitude", variables=("rollspeed", "pitchspeed", "yawspeed"), readers=_ULOG, names=_RPY),
        _c("RATE", variables=("R", "P", "Y"), readers=_DF, scale=DEG, names=_RPY, note="degrees/s"),
        _c("ATTITUDE", variables=("rollspeed", "pitchspeed", "yawspeed"), readers=_TLOG, names=_RPY),
    ),
    "rate_setpoint": (
        _c("vehicle_rates_setpoint", variables=("roll", "pitch", "yaw"), readers=_ULOG, names=_RPY),
        _c("RATE", variables=("RDes", "PDes", "YDes"), readers=_DF, scale=DEG, names=_RPY, note="degrees/s"),
    ),
    "position": (
        _c("vehicle_local_position", variables=("x", "y", "z"), readers=_ULOG, names=_XYZ),
        _c("LOCAL_POSITION_NED", variables=("x", "y", "z"), readers=_TLOG, names=_XYZ),
    ),
    "position_setpoint": (
        _c("vehicle_local_position_setpoint", variables=("x", "y", "z"), readers=_ULOG, names=_XYZ),
        _c("POSITION_TARGET_LOCAL_NED", variables=("x", "y", "z"), readers=_TLOG, names=_XYZ),
    ),
    "battery_voltage": (
        _c("battery_status", "voltage_v", readers=_ULOG),
        _c("BAT", "Volt", readers=_DF),
        _c("SYS_STATUS", "voltage_battery", readers=_TLOG, scale=1e-3, invalid=(65535.0,), note="millivolts"),
    ),
    "battery_current": (
        _c("battery_status", "current_a", readers=_ULOG),
        _c("BAT", "Curr", readers=_DF),
        _c("SYS_STATUS", "current_battery", readers=_TLOG, scale=1e-2, invalid=(-1.0,), note="centiamperes"),
    ),
    "battery_used": (
        _c("battery_status", "discharged_mah", readers=_ULOG),
        _c("BAT", "CurrTot", readers=_DF),
        _c("BATTERY_STATUS", "current_consumed", readers=_TLOG, invalid=(-1.0,)),
    ),
    "vibration": (
        _c("vehicle_imu_status", "accel_vibration_metric", readers=_ULOG),
        _c("VIBE", variables=("VibeX", "VibeY", "VibeZ"), readers=_DF, names=_XYZ),
        _c("VIBRATION", variables=("vibration_x", "vibration_y", "vibration_z"), readers=_TLOG, names=_XYZ),
    ),
    "clipping": (
        _c("vehicle_imu_status", variables=("accel_clipping_0", "accel_clipping_1", "accel_clipping_2"), readers=_ULOG,
           names=_XYZ, note="cumulative counters"),
        _c("VIBE", variables=("Clip0", "Clip1", "Clip2"), readers=_DF),
        _c("VIBE", "Clip", readers=_DF),
        _c("VIBRATION", variables=("clipping_0", "clipping_1", "clipping_2"), readers=_TLOG),
    ),
    "estimator_innovation": (
        _c("estimator_status", variables=("vel_test_ratio", "pos_test_ratio", "hgt_test_ratio", "mag_test_ratio"),
           readers=_ULOG, names=("velocity", "position", "height", "magnetometer")),
        _c("XKF4", variables=("SV", "SP", "SH", "SM"), readers=_DF, names=("velocity", "position", "height", "magnetometer")),
        _c("NKF4", variables=("SV", "SP", "SH", "SM"), readers=_DF, names=("velocity", "position", "height", "magnetometer")),
        _c("ESTIMATOR_STATUS", variables=("vel_ratio", "pos_horiz_ratio", "pos_vert_ratio", "mag_ratio"), readers=_TLOG,
           names=("velocity", "position", "height", "magnetometer")),
    ),
    "mode": (
        _c("vehicle_status", "nav_state", readers=_ULOG),
        _c("MODE", "ModeNum", readers=_DF),
        _c("HEARTBEAT", "custom_mode", readers=_TLOG),
    ),
    "armed": (
        _c("vehicle_status", "arming_state", readers=_ULOG, equals=2, note="arming_state 2 = armed"),
        _c("ARM", "ArmState", readers=_DF, changes=True, note="records of arming and disarming"),
        _c("HEARTBEAT", "base_mode", readers=_TLOG, bit=7, note="base_mode bit 7 = armed"),
    ),
    "landed": (
        _c("vehicle_land_detected", "landed", readers=_ULOG),
    ),
}
"""Format defaults per role, in order (a candidate with *readers* only for runs of
those readers)."""


class MissingInput(WorkbenchError):
    """A role a metric needs is not in the run (the metric's values are null)."""

    def __init__(self, role: str, looked: str) -> None:
        self.role, self.looked = role, looked
        if looked.startswith("no default"):
            text = f"no {role}: {looked}"
        else:
            text = f"no {role}" + (f" (looked for {looked})" if looked else "")
        super().__init__(text)


# --------------------------------------------------------------------------- overrides


_OVERRIDE_KEYS = ("when", "stream", "variable", "variables", "scale", "offset", "form", "bit", "equals", "drop", "names",
                  "changes")


@dataclass(frozen=True)
class Override:
    """One ``roles:`` block: a candidate that must resolve on the runs *when* matches."""

    role: str
    candidate: Candidate
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    origin: str = "workbench.yaml"


@dataclass(frozen=True)
class RoleConfig:
    """The role overrides in effect (from ``roles:`` of ``workbench.yaml`` or Python)."""

    overrides: tuple[Override, ...] = ()
    origin: str = "none"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, origin: str = "python") -> RoleConfig:
        """Parse a ``roles:`` mapping (role → block or list of blocks)."""
        if not data:
            return cls(origin=origin)
        if not isinstance(data, Mapping):
            msg = f"{origin}: 'roles' is a mapping of role names to {{stream, variable, …}}, got {type(data).__name__}"
            raise ConfigError(msg)
        out = []
        for role, value in data.items():
            blocks = value if isinstance(value, list) else [value]
            for i, block in enumerate(blocks):
                where = f"{origin}: roles.{role}" + (f"[{i}]" if isinstance(value, list) else "")
                out.append(_parse_block(str(role), block, where, origin))
        return cls(tuple(out), origin)

    @property
    def digest(self) -> str:
        """A short hash of the overrides (``"none"`` without any): kept with computed
        metrics, so values left null for lack of an input are recomputed once the
        overrides change (:func:`workbench.metrics.compute_missing`)."""
        if not self.overrides:
            return "none"
        import hashlib
        import json

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (``RoleConfig.from_dict(c.to_dict()) == c``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for o in self.overrides:
            c = o.candidate
            d: dict[str, Any] = {"stream": c.stream}
            if o.when:
                from workbench.events.rules import when_to_dict

                d["when"] = when_to_dict(o.when)
            if c.variable is not None:
                d["variable"] = c.variable
            if c.variables:
                d["variables"] = list(c.variables)
            for k, v in (("scale", 1.0), ("offset", 0.0), ("form", ""), ("bit", None), ("equals", None), ("changes", False)):
                if getattr(c, k) != v:
                    d[k] = getattr(c, k)
            if c.names:
                d["names"] = list(c.names)
            if c.drop:
                d["drop"] = {dim: label for dim, label in c.drop}
            for dim, labels in c.select:
                d[dim] = labels[0] if len(labels) == 1 else list(labels)
            out.setdefault(o.role, []).append(d)
        return {k: v for k, v in out.items()}


def _parse_block(role: str, block: Any, where: str, origin: str) -> Override:
    from workbench.events.rules import parse_when

    if not isinstance(block, Mapping):
        msg = f"{where}: a role is {{stream, variable, …}}, got {block!r}"
        raise ConfigError(msg)
    if "stream" not in block or not isinstance(block["stream"], str):
        msg = f"{where}: 'stream' (a stream name) is required; keys: {', '.join(_OVERRIDE_KEYS)}, or a dimension label"
        raise ConfigError(msg)
    if "variable" in block and "variables" in block:
        msg = f"{where}: give 'variable' (one, with its components) or 'variables' (several scalars), not both"
        raise ConfigError(msg)
    kw: dict[str, Any] = {}
    select = []
    for key, value in block.items():
        if key in ("when", "stream"):
            continue
        if key == "variable":
            kw["variable"] = str(value)
        elif key in ("variables", "names"):
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                msg = f"{where}: {key!r} is a list of names, got {value!r}"
                raise ConfigError(msg)
            kw[key] = tuple(value)
        elif key in ("scale", "offset", "equals"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"{where}: {key!r} is a number, got {value!r}"
                raise ConfigError(msg)
            kw[key] = float(value)
        elif key == "bit":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 63:
                msg = f"{where}: 'bit' is 0…62, got {value!r}"
                raise ConfigError(msg)
            kw["bit"] = value
        elif key == "changes":
            if not isinstance(value, bool):
                msg = f"{where}: 'changes' is true or false (the stream records changes of a 0/1 state only), got {value!r}"
                raise ConfigError(msg)
            kw["changes"] = value
        elif key == "form":
            if value not in ("", "quat"):
                msg = f"{where}: 'form' is 'quat' (an x, y, z, w quaternion read as roll, pitch, yaw), got {value!r}"
                raise ConfigError(msg)
            kw["form"] = value
        elif key == "drop":
            if not isinstance(value, Mapping):
                msg = f"{where}: 'drop' is {{dimension: label glob}}, got {value!r}"
                raise ConfigError(msg)
            kw["drop"] = tuple((str(k), str(v)) for k, v in value.items())
        else:  # a dimension label (or labels) narrowing the variable
            labels = value if isinstance(value, list) else [value]
            if not labels or any(isinstance(v, Mapping | list) or v is None for v in labels):
                msg = (f"{where}: key {key!r} is taken as a dimension of the variable and needs a label or a list of "
                       f"labels, got {value!r}; the keys of a role are {', '.join(_OVERRIDE_KEYS)}")
                raise ConfigError(msg)
            select.append((str(key), tuple(str(v) for v in labels)))
    kw["select"] = tuple(select)
    cand = Candidate(block["stream"], note=f"{origin} roles.{role}", **kw)
    return Override(role, cand, parse_when(block.get("when"), where), origin)




def configured_roles(store: Any = None, roles: RoleConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None) -> RoleConfig:
    """The overrides to use: *roles* (a RoleConfig, a mapping, or a YAML file with a
    ``roles:`` section), else ``roles:`` of ``workbench.yaml`` in the store's folder,
    else in the current folder, else none (format defaults only)."""
    if isinstance(roles, RoleConfig):
        return roles
    if isinstance(roles, Mapping):
        return RoleConfig.from_dict(roles)
    from workbench.config import find_config, section

    if roles is not None and not Path(roles).is_file():
        msg = f"roles file {str(roles)!r} not found"
        raise ConfigError(msg)
    path = Path(roles) if roles is not None else find_config(store.root if store is not None and getattr(store, "local", False) else None)
    if path is None:
        return RoleConfig()
    return RoleConfig.from_dict(section("roles", path), origin=str(path))


_CONFIG: ContextVar[RoleConfig | None] = ContextVar("workbench_roles", default=None)


@contextmanager
def use_roles(config: RoleConfig | Mapping[str, Any] | None) -> Iterator[RoleConfig]:
    """Within the block, metrics resolve roles with these overrides.

    >>> with use_roles({"joint_position": {"stream": "arm", "variable": "q"}}) as cfg:
    ...     current_roles().overrides[0].candidate.stream
    'arm'
    """
    cfg = config if isinstance(config, RoleConfig) else RoleConfig.from_dict(config)
    token = _CONFIG.set(cfg)
    try:
        yield cfg
    finally:
        _CONFIG.reset(token)


def current_roles() -> RoleConfig:
    """The overrides in effect (:func:`use_roles`), else none."""
    return _CONFIG.get() or RoleConfig()


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Binding:
    """A role resolved on one run: where it is read and why there."""

    role: str
    stream: str
    variables: tuple[str, ...]
    columns: tuple[int, ...] | None  # component columns of one variable (None: all)
    names: tuple[str, ...]
    candidate: Candidate
    why: str
    dim: str = ""  # the dimension the columns were chosen on
    labels: tuple[str, ...] = ()  # their labels

    def describe(self) -> str:
        c = self.candidate
        if c.variables:
            return f"{self.stream}/{{{', '.join(self.variables)}}}"
        sel = ""
        if self.columns is not None:
            sel = f"[{self.dim}={','.join(self.labels or self.names)}]"
        bit = f".bit{c.bit}" if c.bit is not None else ""
        return f"{self.stream}/{self.variables[0]}{sel}{bit}"


def _context(run: Run) -> dict[str, Any]:
    prov = run.info.provenance
    ctx: dict[str, Any] = dict(run.info.factors())
    ctx.update(name=run.info.name, reader=prov.reader, source=prov.sources[0].path if prov.sources else None)
    return ctx


def _matches(when: tuple[tuple[str, tuple[str, ...]], ...], ctx: Mapping[str, Any]) -> bool:
    from workbench.events.rules import _text_value

    for key, values in when:
        got = ctx.get(key)
        if got is None:
            return False
        text = _text_value(got)
        if not any(fnmatch.fnmatchcase(text, v) if any(ch in v for ch in "*?[") else text == v for v in values):
            return False
    return True


_LABELS: dict[int, tuple[Any, dict[str, list[str]]]] = {}


def _labels(ds: Any, var: str, dim: str) -> list[str]:
    """Labels of *dim* (read once per dataset: a lazily opened coordinate is read from disk)."""
    held = _LABELS.get(id(ds))
    if held is None or held[0]() is not ds:
        if len(_LABELS) > 256:
            for key in [k for k, (ref, _) in _LABELS.items() if ref() is None]:
                del _LABELS[key]
        held = _LABELS[id(ds)] = (weakref.ref(ds), {})
    got = held[1].get(dim)
    if got is None:
        v = ds.variables[var]
        size = int(v.shape[v.dims.index(dim)])
        got = held[1][dim] = [str(x) for x in ds.variables[dim].values] if dim in ds.coords else [str(i) for i in range(size)]
    return got


def _timed(ds: Any) -> dict[str, Any]:
    """Time-indexed data variables of *ds* → their ``xarray.Variable`` (no DataArray built)."""
    variables = ds.variables
    return {str(k): variables[k] for k in ds.data_vars if "time" in variables[k].dims}


def _bind(run: Run, role: str, cand: Candidate, why: str, *, strict: bool) -> Binding | None:
    """*cand* on *run*, or ``None`` when it is not there (a :class:`ConfigError` when *strict*)."""
    where = f"role {role!r} on run {run.run_id}"

    def fail(text: str) -> None:
        if strict:
            raise ConfigError(f"{where}: {text}")

    ds = run.streams.get(cand.stream)
    if ds is None:
        fail(f"no stream {cand.stream!r}; streams: {', '.join(sorted(run.streams)) or '(none)'}")
        return None
    if ds.sizes.get("time", 0) == 0:
        if strict:
            raise MissingInput(role, f"{cand.stream} has no rows")
        return None
    timed = _timed(ds)
    axes = _AXES.get(role)
    if cand.variables:
        lacking = [v for v in cand.variables if v not in timed]
        if lacking:
            fail(f"stream {cand.stream!r} has no variable {lacking[0]!r}; variables: {', '.join(sorted(timed))}")
            return None
        bad = [v for v in cand.variables if len(timed[v].dims) != 1]
        if bad:
            fail(f"{cand.stream}/{bad[0]} has dimensions {timed[bad[0]].dims}; 'variables' are scalars per time")
            return None
        if cand.names and len(cand.names) != len(cand.variables):
            fail(f"{len(cand.names)} names for {len(cand.variables)} variables")
            return None
        given = cand.names or (axes if axes and len(axes) == len(cand.variables) else cand.variables)
        return Binding(role, cand.stream, cand.variables, None, tuple(given), cand, why)
    var = cand.variable
    if var is None:
        if len(timed) != 1:
            fail(f"stream {cand.stream!r} has {len(timed)} variables; name one with 'variable': {', '.join(sorted(timed))}")
            return None
        var = next(iter(timed))
    if var not in timed:
        fail(f"stream {cand.stream!r} has no variable {var!r}; variables: {', '.join(sorted(timed))}")
        return None
    v = timed[var]
    extra = [str(d) for d in v.dims if d != "time"]
    if len(extra) > 1:
        fail(f"{cand.stream}/{var} has {len(extra)} dimensions besides time ({', '.join(extra)}); a role reads one")
        return None
    width = int(v.shape[v.dims.index(extra[0])]) if extra else 1
    if cand.form == "quat" and width != 4:
        fail(f"{cand.stream}/{var} is no quaternion (4 components), its shape is {tuple(v.shape)}")
        return None
    labels = _labels(ds, var, extra[0]) if extra else [var]

    def dim_of(dim: str) -> str | None:
        if dim == "*":  # the variable's one dimension besides time, whatever its name
            return extra[0] if extra else None
        return dim if dim in extra else None

    cols: list[int] | None = None
    for dim, wanted in cand.select:
        if dim_of(dim) is None:
            fail(f"{cand.stream}/{var} has no dimension {dim!r}; dimensions: {', '.join(extra) or '(only time)'}")
            return None
        cols = [i for i, lab in enumerate(labels) if any(fnmatch.fnmatchcase(lab.lower(), w.lower()) for w in wanted)]
        if not cols:
            fail(f"no {dim_of(dim)} {', '.join(wanted)} in {cand.stream}/{var}; {dim_of(dim)} labels: {', '.join(labels)}")
            return None
    for dim, pattern in cand.drop:
        if dim_of(dim) is None:
            fail(f"{cand.stream}/{var} has no dimension {dim!r}; dimensions: {', '.join(extra) or '(only time)'}")
            return None
        base = cols if cols is not None else list(range(len(labels)))
        kept = [i for i in base if not fnmatch.fnmatchcase(labels[i].lower(), pattern.lower())]
        cols = kept if len(kept) != len(base) else cols
        if not kept:
            fail(f"dropping {dim_of(dim)} {pattern} leaves nothing of {cand.stream}/{var}")
            return None
    picked = [labels[i] for i in cols] if cols is not None else labels
    names: list[str]
    if cand.form == "quat":
        names = list(cand.names or _RPY)
        if len(names) != 3:
            fail(f"a quaternion gives 3 angles; {len(names)} names given")
            return None
    elif cand.names:
        if len(cand.names) != len(picked):
            fail(f"{len(cand.names)} names for the {len(picked)} component(s) of {cand.stream}/{var} ({', '.join(picked)})")
            return None
        names = list(cand.names)
    else:
        names = list(picked)
    return Binding(role, cand.stream, (var,), None if cols is None else tuple(cols), tuple(names), cand, why,
                   dim=extra[0] if extra else "", labels=tuple(picked))


def _looked(role: str, reader: str) -> str:
    cands = [c for c in DEFAULTS.get(role, ()) if not c.readers or reader in c.readers]
    if not cands:
        return f"no default for {reader or 'these'} runs; map it under roles: in workbench.yaml"
    return ", ".join(f"{c.stream}/{c.variable or '{' + ','.join(c.variables) + '}'}" for c in cands)


def resolve(run: Run, role: str, config: RoleConfig | None = None, *, context: Mapping[str, Any] | None = None) -> Binding:
    """Where *role* is in *run*: the first override whose ``when`` matches (which must
    resolve), else the first format default present.

    Raises
    ------
    MissingInput
        The run has none of the role's candidates.
    ConfigError
        An override matching the run names what the run does not have.
    """
    cfg = config if config is not None else current_roles()
    ctx = context if context is not None else (_context(run) if cfg.overrides else {"reader": run.info.provenance.reader})
    for o in cfg.overrides:
        if o.role == role and _matches(o.when, ctx):
            b = _bind(run, role, o.candidate, f"{o.origin}: roles.{role}", strict=True)
            assert b is not None
            return b
    reader = str(ctx.get("reader") or "")
    for cand in DEFAULTS.get(role, ()):
        if cand.readers and reader not in cand.readers:
            continue
        fmt = ", ".join(cand.readers) if cand.readers else "ROS topics"
        why = f"default ({fmt}): {cand.stream}/{cand.variable or '{' + ', '.join(cand.variables) + '}'}"
        if cand.note:
            why += f" {cand.note}" if cand.note.startswith(("without", "the ")) else f" ({cand.note})"
        b = _bind(run, role, cand, why, strict=False)
        if b is not None:
            return b
    raise MissingInput(role, _looked(role, reader) if role in DEFAULTS else "no default; map it under roles: in workbench.yaml")


def resolve_all(run: Run, config: RoleConfig | None = None, roles: Sequence[str] | None = None) -> dict[str, Binding | MissingInput]:
    """Every role (default: :data:`ROLES`) on *run*: its binding, or why it is missing."""
    out: dict[str, Binding | MissingInput] = {}
    ctx = _context(run)
    for role in roles if roles is not None else list(ROLES):
        try:
            out[role] = resolve(run, role, config, context=ctx)
        except MissingInput as err:
            out[role] = err
    return out


# --------------------------------------------------------------------------- reading


def _quat_to_rpy(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) rows → (roll, pitch, yaw) in rad (ZYX, as PX4 and ROS)."""
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.column_stack([roll, pitch, yaw])


@dataclass
class RoleSignal:
    """A resolved role read piece by piece as float64 ``(rows, components)``.

    ``names`` are the components (joint names, ``roll``/``pitch``/``yaw``…), ``unit``
    the role's unit, ``binding`` where it came from.
    """

    binding: Binding
    rd: StreamPieces
    unit: str = ""
    _n: int = field(default=0, repr=False)

    @property
    def names(self) -> list[str]:
        return list(self.binding.names)

    @property
    def cols(self) -> int:
        return len(self.binding.names)

    @property
    def n(self) -> int:
        return self.rd.n

    @property
    def var(self) -> str:
        return self.binding.variables[0]

    def first_time(self) -> int:
        return self.rd.time_at(0)

    def last_time(self) -> int:
        return self.rd.time_at(self.rd.n - 1)

    def _values(self, p: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        b, c = self.binding, self.binding.candidate
        if c.variables:
            v = np.column_stack([np.asarray(p[name], dtype=np.float64).reshape(rows) for name in b.variables])
        else:
            v = np.asarray(p[b.variables[0]], dtype=np.float64).reshape(rows, -1)
            if c.form == "quat":
                v = _quat_to_rpy(v)
            elif b.columns is not None:
                v = v[:, list(b.columns)]
        if c.invalid:
            v = np.where(np.isin(v, c.invalid), np.nan, v)
        if c.bit is not None:
            v = np.where(np.isnan(v), np.nan, (np.nan_to_num(v).astype(np.int64) >> c.bit) & 1).astype(np.float64)
        if c.equals is not None:
            v = np.where(np.isnan(v), np.nan, (v == c.equals).astype(np.float64))
        if c.scale != 1.0 or c.offset != 0.0:
            v = v * c.scale + c.offset
        return v

    def window(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of rows ``[a, b)``."""
        p = self.rd.read(["time", *self.binding.variables], a, b)
        t = p["time"]
        return t, self._values(p, t.size)

    def pieces(self, *, before: int = 0) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
        """``(a, b, lo, times, values)`` per piece ``[a, b)``, rows from ``lo``."""
        for a, b, lo, p in self.rd.pieces(["time", *self.binding.variables], before=before):
            t = p["time"]
            yield a, b, lo, t, self._values(p, t.size)

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row at once (times, values): for short streams (vehicle logs)."""
        return self.window(0, self.n)


def role_signal(run: Run, role: str, config: RoleConfig | None = None, *, min_rows: int = 1) -> RoleSignal:
    """The :class:`RoleSignal` of *role* on *run* (see :func:`resolve`).

    Raises :class:`MissingInput` also when the stream has fewer than *min_rows* rows.
    """
    from workbench.pieces import StreamPieces

    b = resolve(run, role, config)
    ds = run.streams[b.stream]
    if int(ds.sizes.get("time", 0)) < min_rows:
        raise MissingInput(role, f"{b.describe()} has {int(ds.sizes.get('time', 0))} rows, fewer than {min_rows}")
    spec = ROLES.get(role)
    return RoleSignal(b, StreamPieces(ds), spec.unit if spec else "")
