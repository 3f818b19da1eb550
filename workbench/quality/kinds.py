"""What kind of stream is this, and which checks mean something on it?

A check that is right on a 100 Hz joint encoder is a false alarm on ``/rosout``: a
gap in an event-driven topic is silence, not dropped messages; a mode flag that holds
for a minute is not a frozen sensor; a PX4 field that is NaN says "not set". Each
stream of a run is classified before it is graded:

* ``periodic`` — samples at a regular rate: gaps, drops, jitter, rate and duplicate
  stamps are checked on the sensor's own stamps when it has regular ones (a sample
  lost shows there; one that arrived late is a latency spike), else on the log clock.
* ``bursty`` — regular on the sensor's own clock (``header_time``), bursty on the log
  (receive) clock, e.g. a 20 Hz IMU recorded through a buffering bridge: the timing
  checks use the sensor clock.
* ``event`` — published when something happens (``/rosout``, teleop ``cmd_vel``,
  PX4 ``vehicle_command``, MAVLink ``COMMAND_ACK``): no gap, drop, jitter or frozen
  check.
* ``state`` — a value that changes rarely by design (modes, armed flags, heartbeats,
  a gripper open/closed command): gaps are checked only when it is published at a
  regular rate (a heartbeat), never frozen.
* ``text`` — strings (log lines, ``std_msgs/String``): no numeric checks.

Besides the kind, a stream has a *role*: ``measurement`` (frozen is checked when the
stream is live, see :func:`classify`) or ``command`` (setpoints, actuator outputs,
actions, pilot inputs: holding a value is what a command does, never frozen).

Defaults come from the format (:data:`FORMAT_DEFAULTS`: ROS message types, ULog
topics, MAVLink and DataFlash message names, LeRobot and robosuite keys), else from
the stream's timing. ``workbench.yaml`` overrides them per stream name or glob::

    quality:
      streams:
        "/rosout": {kind: event}
        "imu*": {clock: header}             # measure gaps on the sensor stamps
        "battery_status": {nan: {temperature: unset}}
        "actuator_*": {nan: unset, role: command}
        "joint_states": {frozen: check}     # this one must move: flag any frozen span

Examples
--------
>>> import numpy as np, xarray as xr
>>> t = np.cumsum(np.random.default_rng(0).exponential(0.3e9, 200)).astype(np.int64)
>>> ds = xr.Dataset({"v": ("time", np.arange(200.0))}, coords={"time": t})
>>> k = classify("teleop", ds, reader="table")
>>> k.kind, k.clock
('event', 'log')
>>> t = np.arange(0, 10**10, 10**7)
>>> k = classify("imu", xr.Dataset({"v": ("time", np.sin(t / 1e9))}, coords={"time": t}))
>>> k.kind, round(k.period_ns / 1e6, 1), k.regular
('periodic', 10.0, 1.0)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.io.registry import TEXT_KINDS
from workbench.model import ConfigError

if TYPE_CHECKING:
    import xarray as xr

    from workbench.pieces import StreamPieces

__all__ = [
    "FORMAT_DEFAULTS",
    "KINDS",
    "ROLES",
    "StreamKind",
    "StreamPolicy",
    "classify",
    "nan_is_unset",
    "parse_policies",
    "policy_for",
]

KINDS = ("periodic", "bursty", "event", "state", "text")
ROLES = ("measurement", "command")
NAN_POLICIES = ("unset", "error")
FROZEN_POLICIES = ("auto", "check", "never")
CLOCKS = ("auto", "log", "header")

REGULAR = 0.5
"""A clock is regular when at least this share of its intervals lie within ±50 % of
the median interval (a periodic stream with gaps and jitter still is; Poisson-like
event times are not: about 0.35 of exponential intervals fall in that band)."""
BURST_RATIO = 4.0
"""A clock whose median interval is less than a quarter of its mean interval delivers
samples in bursts (a periodic stream keeps them alike, even with gaps covering half
its span): it is not regular."""
MIN_SAMPLES = 10
"""Fewer samples than this tell nothing about a rate: such a stream is an event stream."""
SAMPLE_INTERVALS = 200_000
"""Regularity is measured on at most this many intervals of a clock, in
:data:`SAMPLE_WINDOWS` windows spread evenly over the stream (a share estimated
within about ±0.3 %, decided against :data:`REGULAR`, at a small fixed cost)."""
SAMPLE_WINDOWS = 20


@dataclass(frozen=True)
class StreamPolicy:
    """What ``workbench.yaml`` → ``quality: streams:`` says about a stream (None: not said).

    Attributes
    ----------
    kind
        One of :data:`KINDS`.
    role
        ``measurement`` or ``command``.
    nan
        ``"unset"`` (NaN means "not set": never a finding) or ``"error"`` (a value is
        expected), for every field, or a mapping field glob → one of those.
    frozen
        ``check`` (the stream must move: any frozen span is a finding), ``never``, or
        ``auto`` (the default: checked on live measurements only).
    clock
        ``header`` (timing on the sensor stamps), ``log`` or ``auto``.
    origin
        Where it was said, for the reasons shown with a finding.
    """

    kind: str | None = None
    role: str | None = None
    nan: str | Mapping[str, str] | None = None
    frozen: str | None = None
    clock: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class StreamKind:
    """The classification of one stream, and why.

    Attributes
    ----------
    kind
        One of :data:`KINDS`.
    role
        One of :data:`ROLES`.
    clock
        ``log`` or ``header``: the clock the timing checks use.
    period_ns
        Median positive interval on that clock (0 when unknown).
    regular
        Share of that clock's intervals within ±50 % of the median.
    why
        A sentence: the default, the override or the timing that decided.
    frozen
        ``check``, ``never`` or ``auto``.
    """

    kind: str
    role: str = "measurement"
    clock: str = "log"
    period_ns: float = 0.0
    regular: float = 0.0
    why: str = ""
    frozen: str = "auto"
    policy: StreamPolicy = field(default_factory=StreamPolicy)
    bursty_arrival: bool = False
    """The log clock is an arrival clock that bunches samples by design (telemetry read
    in packets): samples sharing a log stamp are not a fault."""

    @property
    def timed(self) -> bool:
        """Whether gaps, drops, jitter and rate mean something on this stream."""
        if self.kind in ("periodic", "bursty"):
            return True
        return self.kind == "state" and self.regular >= REGULAR and self.period_ns > 0


# --------------------------------------------------------------------- format defaults

_ROS = ("rosbag1", "rosbag2", "rosbag", "mcap")
FORMAT_DEFAULTS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    # reader → [(what to match: "type:<glob>" on the message type or "name:<glob>" on
    # the stream name / topic / message, why, settings)]
    "ros": [
        ("type:*Log", "ROS log messages are published when something is logged", {"kind": "text"}),
        ("type:*String", "std_msgs/String carries text", {"kind": "text"}),
        ("type:*ParameterEvent", "parameter events", {"kind": "event"}),
        ("type:*Joy", "joystick messages are sent on input", {"kind": "event", "role": "command"}),
        ("type:*DiagnosticArray", "diagnostics are published on change or at a low rate", {"kind": "event"}),
        ("name:*cmd_vel*", "velocity commands (teleop) are sent when someone drives", {"kind": "event", "role": "command"}),
        ("name:*rosout*", "/rosout is published when something is logged", {"kind": "text"}),
        ("name:*tf_static*", "static transforms are latched", {"kind": "state"}),
        ("name:*command*", "commands hold their value", {"role": "command"}),
        ("name:*cmd*", "commands hold their value", {"role": "command"}),
        ("name:*setpoint*", "setpoints hold their value", {"role": "command"}),
    ],
    "ulog": [
        *[(f"name:{t}", "PX4 publishes it when something happens", {"kind": "event"}) for t in (
            "event", "task_stack_info", "vehicle_command", "vehicle_command_ack", "parameter_update",
            "mission_result", "home_position", "action_request", "transponder_report", "test_motor",
            "position_setpoint_triplet", "vehicle_roi", "sensor_selection", "estimator_event_flags",
            "manual_control_switches", "geofence_result", "mission", "navigator_mission_item",
            "logger_status", "orb_test*", "ulog_stream*", "vehicle_local_position_setpoint", "npfg_status",
            "position_controller_status", "register_ext_component_reply", "gimbal_*", "led_control",
            "tune_control", "system_power", "radio_status", "irlock_report", "distance_sensor_mode_change_request",
        )],
        *[(f"name:{t}", "PX4 state: published on change and at a low rate", {"kind": "state"}) for t in (
            "vehicle_status", "vehicle_status_flags", "commander_state", "actuator_armed",
            "vehicle_control_mode", "vehicle_land_detected", "failsafe_flags", "failure_detector_status",
            "safety", "estimator_status_flags", "estimator_selector_status", "sensor_preflight*",
            "telemetry_status", "health_report", "arming_check_*", "vtol_vehicle_status",
            "rtl_time_estimate", "mag_worker_data",
        )],
        *[(f"name:{t}", "PX4 commands and setpoints hold their value", {"role": "command"}) for t in (
            "actuator_*", "*setpoint*", "input_rc", "rc_channels", "manual_control_*", "trajectory_*",
            "vehicle_*_setpoint", "offboard_control_mode", "takeoff_status",
        )],
    ],
    "tlog": [
        ("name:*", "telemetry arrives over a link in bursts: timing is measured on the sender's stamps",
         {"clock": "header", "arrival": "bursty"}),
        ("name:HEARTBEAT*", "the heartbeat repeats the vehicle's mode and state at 1 Hz", {"kind": "state"}),
        ("name:STATUSTEXT*", "status texts are sent when something is reported", {"kind": "text"}),
        *[(f"name:{m}*", "MAVLink sends it on request or on change", {"kind": "event"}) for m in (
            "PARAM_VALUE", "COMMAND_ACK", "COMMAND_LONG", "COMMAND_INT", "MISSION_", "TIMESYNC",
            "AUTOPILOT_VERSION", "PARAM_", "LOG_", "FILE_TRANSFER", "PING", "HOME_POSITION",
        )],
        ("name:NAMED_VALUE_*", "named values are settings that change rarely", {"kind": "state"}),
        *[(f"name:{m}*", "control inputs and outputs hold their value", {"role": "command"}) for m in (
            "RC_CHANNELS", "SERVO_OUTPUT_RAW", "MANUAL_CONTROL", "ACTUATOR_", "SET_", "POSITION_TARGET_",
            "ATTITUDE_TARGET", "GPS_INPUT",
        )],
        ("name:SYS_STATUS*", "system status changes rarely", {"kind": "state"}),
        ("name:EKF_STATUS_REPORT*", "estimator status flags change rarely", {"kind": "state"}),
    ],
    "dataflash": [
        *[(f"name:{m}", "ArduPilot logs it when something happens", {"kind": "event"}) for m in (
            "MSG", "PARM", "EV", "ERR", "MODE", "CMD", "ARM", "FMT", "FMTU", "UNIT", "MULT", "MAV*", "CAM",
            "TRIG", "FILE", "ORGN", "SRTL", "RALY", "FNCE", "PM", "VER", "MSG*", "STAK", "RFND*",
        )],
        *[(f"name:{m}", "control inputs and outputs hold their value", {"role": "command"}) for m in (
            "RCIN", "RCOU", "RCI2", "CTUN", "CTRL", "MOTB", "PIDR", "PIDP", "PIDY", "PIDA", "PIDS", "AETR",
            "GUIP", "GUID",
        )],
    ],
    "lerobot": [
        ("name:action*", "the policy's or the teleoperator's action (a command)", {"role": "command"}),
        ("name:next.*", "done/reward/success flags change rarely", {"kind": "state"}),
        ("name:frame", "frame and episode indices", {"kind": "state"}),
    ],
    "hdf5": [
        ("name:*action*", "actions are commands", {"role": "command"}),
        ("name:*actuation*", "actuations are commands", {"role": "command"}),
        ("name:*gripper*", "gripper commands hold open or closed", {"role": "command"}),
    ],
}
FORMAT_DEFAULTS["*"] = [  # every format, after its own defaults
    ("name:*command*", "commands hold their value", {"role": "command"}),
    ("name:*cmd*", "commands hold their value", {"role": "command"}),
    ("name:*setpoint*", "setpoints hold their value", {"role": "command"}),
    ("name:action", "actions are commands", {"role": "command"}),
    ("name:actions", "actions are commands", {"role": "command"}),
]
for _r in _ROS:
    FORMAT_DEFAULTS[_r] = FORMAT_DEFAULTS["ros"]
FORMAT_DEFAULTS["mavlink"] = FORMAT_DEFAULTS["tlog"]

NAN_UNSET_DEFAULTS: dict[str, tuple[tuple[str, ...], str]] = {
    # reader → (stream globs where NaN is expected data, why NaN means "not set" elsewhere)
    "ulog": (
        ("sensor_combined", "sensor_accel*", "sensor_gyro*", "sensor_baro*", "sensor_mag*",
         "vehicle_attitude", "vehicle_angular_velocity", "vehicle_acceleration", "vehicle_imu*"),
        "PX4 writes NaN for values that are not set (unused channels, absent sensors, inactive estimators)",
    ),
    "table": ((), "an empty cell of a sparse table (e.g. PlotJuggler's CSV) is a topic without a sample at that row"),
}


def _formats(reader: str) -> list[tuple[str, str, dict[str, str]]]:
    return [*FORMAT_DEFAULTS.get(reader, []), *FORMAT_DEFAULTS["*"]]


def _names(name: str, ds: xr.Dataset) -> list[str]:
    out = [name]
    for key in ("topic", "message", "source", "feature"):
        v = ds.attrs.get(key)
        if isinstance(v, str) and v:
            out.append(v)
            out.append(v.lstrip("/"))
    return out


def _defaults_for(reader: str, name: str, ds: xr.Dataset) -> tuple[dict[str, str], list[str]]:
    """The format's settings for this stream (first match per setting) and the reasons."""
    names = _names(name, ds)
    mtype = str(ds.attrs.get("message_type") or "")
    got: dict[str, str] = {}
    why: list[str] = []
    for pattern, reason, settings in _formats(reader):
        how, _, glob = pattern.partition(":")
        hit = fnmatch.fnmatchcase(mtype, glob) if how == "type" else any(fnmatch.fnmatchcase(n, glob) for n in names)
        if not hit:
            continue
        new = {k: v for k, v in settings.items() if k not in got}
        if new:
            got.update(new)
            why.append(f"{reason} (default for {reader or 'every format'})")
    return got, why


# --------------------------------------------------------------------- overrides


def parse_policies(section: Any, *, origin: str = "workbench.yaml") -> dict[str, StreamPolicy]:
    """``quality: streams:`` of ``workbench.yaml``: stream glob → :class:`StreamPolicy`.

    Raises
    ------
    ConfigError
        On an unknown key or value, naming the stream and the valid choices.

    Examples
    --------
    >>> parse_policies({"/rosout": {"kind": "event"}})["/rosout"].kind
    'event'
    >>> parse_policies({"imu": {"kind": "sometimes"}})
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: workbench.yaml: quality.streams['imu'].kind 'sometimes' is not one of periodic, bursty, event, state, text
    """
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        msg = f"{origin}: quality.streams must map stream names or globs to settings, got {type(section).__name__}"
        raise ConfigError(msg)
    valid = {"kind": KINDS, "role": ROLES, "frozen": FROZEN_POLICIES, "clock": CLOCKS}
    out: dict[str, StreamPolicy] = {}
    for glob, spec in section.items():
        where = f"{origin}: quality.streams[{str(glob)!r}]"
        if not isinstance(spec, Mapping):
            msg = f"{where} must be a mapping of {', '.join([*valid, 'nan'])}"
            raise ConfigError(msg)
        unknown = sorted(set(spec) - {*valid, "nan"})
        if unknown:
            msg = f"{where}: unknown setting(s) {unknown}; valid: {', '.join(sorted([*valid, 'nan']))}"
            raise ConfigError(msg)
        for key, choices in valid.items():
            if key in spec and spec[key] not in choices:
                msg = f"{where}.{key} {spec[key]!r} is not one of {', '.join(choices)}"
                raise ConfigError(msg)
        nan = spec.get("nan")
        if nan is not None:
            items = nan.items() if isinstance(nan, Mapping) else [("*", nan)]
            for fld, v in items:
                if v not in NAN_POLICIES:
                    msg = f"{where}.nan{'' if fld == '*' else f'[{fld!r}]'} {v!r} is not one of {', '.join(NAN_POLICIES)}"
                    raise ConfigError(msg)
        out[str(glob)] = StreamPolicy(kind=spec.get("kind"), role=spec.get("role"),
                                      nan=dict(nan) if isinstance(nan, Mapping) else nan,
                                      frozen=spec.get("frozen"), clock=spec.get("clock"), origin=where)
    return out


def policy_for(name: str, ds: xr.Dataset | None, policies: Mapping[str, StreamPolicy]) -> StreamPolicy:
    """The policy of the first glob matching the stream's name (or its topic/message)."""
    names = [name] if ds is None else _names(name, ds)
    for glob, pol in policies.items():
        if any(fnmatch.fnmatchcase(n, glob) for n in names):
            return pol
    return StreamPolicy()


def nan_is_unset(reader: str, name: str, variable: str, policy: StreamPolicy, share: float = 0.0) -> str | None:
    """Why a NaN in *variable* of stream *name* means "not set" (None: a value was
    expected); *share* is the variable's share of NaN values in the run."""
    nan = policy.nan
    if isinstance(nan, Mapping):
        for glob, v in nan.items():
            if fnmatch.fnmatchcase(variable, glob):
                return f"{policy.origin}.nan" if v == "unset" else None
    elif nan is not None:
        return f"{policy.origin}.nan" if nan == "unset" else None
    default = NAN_UNSET_DEFAULTS.get(reader)
    if default is None:
        return None
    expected, why = default
    if any(fnmatch.fnmatchcase(name, g) for g in expected):
        return None if not (reader == "ulog" and share >= 1.0) else "PX4 never set this field in this log"
    return why


# --------------------------------------------------------------------- timing


def _regularity(pieces: Any, period: float | None = None) -> tuple[float, float, int]:
    """(median positive interval, share of intervals within ±50 % of it, intervals)
    of a clock given as pieces of its stamps (neighbouring rows included)."""
    from workbench.pieces import median

    pos = 0
    total = 0
    if period is None:
        for t in pieces():
            dt = np.diff(t)
            pos += int(np.count_nonzero(dt > 0))
            total += dt.size
        if pos == 0:
            return 0.0, 0.0, total
        period = median(lambda: (d[d > 0] for d in (np.diff(t) for t in pieces())), pos)
    if not period:
        return 0.0, 0.0, total
    total = 0
    within = 0
    for t in pieces():
        dt = np.diff(t).astype(np.float64)
        total += dt.size
        within += int(np.count_nonzero(np.abs(dt - period) <= 0.5 * period))
    return float(period), within / total if total else 0.0, total


def classify(
    name: str,
    ds: xr.Dataset,
    *,
    reader: str = "",
    policy: StreamPolicy | None = None,
    pieces: StreamPieces | None = None,
    log_period: float | None = None,
) -> StreamKind:
    """Classify a stream: kind, role, the clock its timing is measured on, and why.

    Order: the ``workbench.yaml`` override (*policy*), then the format's defaults
    (:data:`FORMAT_DEFAULTS` for *reader*), then the stream itself — text variables
    make a text stream; fewer than :data:`MIN_SAMPLES` samples, or log times that are
    not regular (:data:`REGULAR`) while no regular sensor clock exists, an event
    stream; log times bursty but sensor stamps regular, a bursty stream. Regularity
    is measured on at most :data:`SAMPLE_INTERVALS` intervals of each clock.

    Parameters
    ----------
    name
        The stream's name in the run.
    ds
        The stream (may be lazy: it is read piece by piece).
    reader
        The run's reader (``run.info.provenance.reader``), for the format defaults.
    policy
        The stream's ``workbench.yaml`` settings (:func:`policy_for`).
    pieces
        A :class:`~workbench.pieces.StreamPieces` of *ds* to reuse.
    log_period
        The median positive log interval when already known (saves a pass).
    """
    from workbench.pieces import StreamPieces

    policy = policy or StreamPolicy()
    rd = pieces if pieces is not None else StreamPieces(ds)
    settings, why = _defaults_for(reader, name, ds)
    for key in ("kind", "role", "frozen", "clock"):
        v = getattr(policy, key)
        if v is not None:
            settings[key] = v
            why.insert(0, f"{key} {v} ({policy.origin})")
    role = settings.get("role", "measurement")
    frozen = settings.get("frozen", "auto")

    has_numeric = any(v.dtype.kind in "fiub" for v in ds.data_vars.values() if "time" in v.dims)
    has_text = any(v.dtype.kind in TEXT_KINDS for v in ds.data_vars.values() if "time" in v.dims)

    def sampled(col: str) -> Any:
        if rd.n <= SAMPLE_INTERVALS + 1:
            return lambda: (p[col] for _, _, _, p in rd.pieces([col], before=1))
        width = SAMPLE_INTERVALS // SAMPLE_WINDOWS + 1
        starts = np.linspace(0, rd.n - width, SAMPLE_WINDOWS).astype(np.int64).tolist()
        return lambda: (rd.read([col], a, a + width)[col] for a in starts)

    log_pieces, header_pieces = sampled("time"), sampled("header_time")

    period, regular, _ = _regularity(log_pieces, log_period or None) if rd.n >= 2 else (0.0, 0.0, 0)
    clock = "log"
    h_period, h_regular = 0.0, 0.0
    if "header_time" in ds.coords and rd.n >= 2 and settings.get("clock") != "log":
        h_period, h_regular, _ = _regularity(header_pieces)
    if rd.n >= 2:  # bursts: most intervals tiny and alike, the rate set by the pauses between them
        span = rd.time_at(rd.n - 1) - rd.time_at(0)
        if period * BURST_RATIO < span / (rd.n - 1):
            regular = 0.0

    kind = settings.get("kind")
    if kind is None:
        if has_text and not has_numeric:
            kind, reason = "text", "its values are text"
        elif rd.n < MIN_SAMPLES:
            kind, reason = "event", f"only {rd.n} samples"
        elif regular >= REGULAR:
            kind, reason = "periodic", f"{100 * regular:.0f} % of its log intervals are within ±50 % of {period / 1e6:.1f} ms"
        elif h_regular >= REGULAR:
            kind = "bursty"
            reason = (f"log times are bursty ({100 * regular:.0f} % regular) but sensor stamps regular "
                      f"({100 * h_regular:.0f} % within ±50 % of {h_period / 1e6:.1f} ms)")
        else:
            kind, reason = "event", f"its times are irregular ({100 * regular:.0f} % of intervals near the median)"
        why.append(reason)
    if settings.get("clock") == "header" and "header_time" in ds.coords:
        clock = "header"
    elif settings.get("clock") in (None, "auto") and h_regular >= REGULAR and kind in ("periodic", "bursty", "state"):
        clock = "header"  # samples lost show on the sensor's stamps; late arrival is latency
        if kind != "bursty":
            why.append(f"timing on the sensor stamps ({100 * h_regular:.0f} % regular)")
    if clock == "header":
        period, regular = h_period, h_regular
    return StreamKind(kind=kind, role=role, clock=clock, period_ns=period, regular=regular,
                      why="; ".join(why), frozen=frozen, policy=policy,
                      bursty_arrival=settings.get("arrival") == "bursty")
