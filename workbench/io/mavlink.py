"""ArduPilot DataFlash logs (``.bin``) and MAVLink telemetry logs (``.tlog``), via pymavlink.

Both readers decode message by message in Python (pymavlink): measured about 16 000
DataFlash and 20 000 MAVLink messages per second, i.e. a few seconds per 10 MB of log. Fine for the logs a robot team keeps per
run; convert very long logs once and ingest the result if that is too slow.

DataFlash (:class:`DataFlashReader`)
------------------------------------
* One stream per message type, and per instance when the format declares an instance
  field (FMTU ``#``, e.g. ``IMU.I``, ``BAT.Instance``, ``XKF1.C``): instance 0 is named
  after the type (``IMU``), instance *n* > 0 ``<TYPE>_<n>`` (``IMU_1``). The instance
  field itself is not a variable; it is in the stream's attrs.
* Time is ``TimeUS`` (µs since boot; ``TimeMS`` in old logs) in ns, kept boot-relative:
  ``extra["clock"] == "boot"``.
* Units from FMT/FMTU/UNIT/MULT (as pymavlink resolves them, e.g. ``deg``, ``m/s``,
  ``cm`` for a centi multiplier) in each variable's ``units`` attr.
* ``PARM``: the first value of each parameter in ``extra["parameters"]``, later changes
  as ``"parameter"`` events; the ``factor_params`` option copies a few into
  ``hardware.param.<NAME>``. ``MSG`` text → ``"log"`` events (``level`` null: MSG
  has none). The banner, e.g. ``ArduSub V4.1.0 (89639005)``, gives ``hardware.firmware``,
  ``hardware.firmware_version``, ``hardware.firmware_git``). ``MODE``, ``ERR``, ``EV``
  and ``ARM`` are streams and also events (``mode``, ``error``, ``event``, ``arm``).
* Bytes pymavlink skipped as corrupt and a final incomplete message are listed in
  ``skipped`` (topic ``"(file)"``).

MAVLink telemetry (:class:`TlogReader`)
---------------------------------------
* Each record's 8-byte header is the receiving station's wall clock (µs since the Unix
  epoch): ``time`` is UTC, ``extra["clock"] == "utc"``. A ``time_boot_ms`` (or
  ``time_usec``) field becomes the ``header_time`` coordinate (the sender's stamp).
* One stream per message type and sender. Messages from the main vehicle (the most
  frequent autopilot heartbeat sender) are named after the type; other senders get
  ``<TYPE>.src<sys>_<comp>``. Message instances (``BATTERY_STATUS.id``,
  ``SERVO_OUTPUT_RAW.port``) follow the DataFlash rule (``<TYPE>_<n>`` for n > 0);
  ``NAMED_VALUE_FLOAT``/``NAMED_VALUE_INT`` get one stream per name
  (``NAMED_VALUE_FLOAT.CamTilt``). Array fields are flattened (``voltages_0`` …),
  except a 4-element ``q`` which becomes a ``quat`` dimension ``[x, y, z, w]`` (MAVLink
  stores ``w`` first). Units from the dialect's field units.
* ``PARAM_VALUE`` → ``extra["parameters"]`` (+ factors, as above); ``STATUSTEXT`` →
  ``"log"`` events, detail ``{"level", "severity", "message", "source"}``: ``severity``
  is the raw ``MAV_SEVERITY`` number (0 EMERGENCY … 7 DEBUG), ``level`` its name in
  :data:`~workbench.io.loglevels.LEVELS` (EMERGENCY/ALERT/CRITICAL → ``FATAL``, WARNING →
  ``WARN``, NOTICE → ``INFO``), ``source`` the sender ``"<sys>/<comp>"``; ``HEARTBEAT`` of the vehicle →
  ``hardware.vehicle_type`` / ``hardware.autopilot``. ``BAD_DATA`` frames are listed in
  ``skipped`` by reason, and a final incomplete frame as ``"(file)"``.
* Text fields (``STATUSTEXT.text``, ``PARAM_VALUE.param_id``, ``NAMED_VALUE_*.name``)
  are kept as text variables of their stream (the STATUSTEXT stream is also a text log
  in the replay, its ``severity`` beside it).

Examples
--------
>>> from pathlib import Path
>>> TlogReader().guess_can_open(Path("flight.tlog"))
False
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.io.loglevels import normalize_level
from workbench.io.registry import ReaderEntrypoint, RunData
from workbench.model import ReaderError, Scalar

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = [
    "DATAFLASH_MAGIC",
    "DEFAULT_FACTOR_PARAMS",
    "DataFlashReader",
    "TlogReader",
]

DATAFLASH_MAGIC = b"\xa3\x95\x80"
"""A DataFlash log starts with a message header (0xA3 0x95) of the FMT message (0x80)."""
MAVLINK_STX = {0xFE: 8, 0xFD: 12}
"""MAVLink frame start bytes (v1, v2) → frame overhead besides the payload."""
DEFAULT_FACTOR_PARAMS: tuple[str, ...] = (
    "FRAME_CLASS",
    "FRAME_TYPE",
    "SYSID_THISMAV",
    "Q_ENABLE",
    "BRD_TYPE",
)
"""Parameters copied into ``hardware.param.<NAME>``: frame, vehicle id, board."""

_METADATA_TYPES = {"FMT", "FMTU", "UNIT", "MULT"}
_EVENT_TYPES = {"MODE": "mode", "ERR": "error", "EV": "event", "ARM": "arm"}
_FIRMWARE_RE = re.compile(
    r"^(?P<name>Ardu\w+|APM:\w+|Blimp|AntennaTracker|PX4\w*)\s+V?(?P<version>\d+\.\d+(?:\.\d+)?[\w.\-]*)"
    r"(?:\s+\w+)?(?:\s*\((?P<git>[0-9a-fA-F]{6,})\))?"
)
_NAMED_VALUE = {"NAMED_VALUE_FLOAT", "NAMED_VALUE_INT", "DEBUG_FLOAT_ARRAY"}


# --------------------------------------------------------------------------- shared


@dataclass
class _Acc:
    """Columns of one stream, filled message by message."""

    attrs: dict[str, Any]
    fields: list[str]
    times: list[int] = field(default_factory=list)
    header: list[int] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    kept_elsewhere: dict[str, str] = field(
        default_factory=dict
    )  # text field → where it went


def _firmware_factors(text: str) -> dict[str, Scalar]:
    m = _FIRMWARE_RE.match(text.strip())
    if not m:
        return {}
    out: dict[str, Scalar] = {"firmware": m["name"], "firmware_version": m["version"]}
    if m["git"]:
        out["firmware_git"] = m["git"]
    return out


def _param_value(v: Any) -> int | float:
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _column(values: list[Any]) -> np.ndarray | None:
    """A list of message values as a numeric array; None when not numeric."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, str | bytes | bytearray):
        return None
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        return None
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            return None
    if arr.dtype.kind not in "iufb":
        return None
    return arr


@contextlib.contextmanager
def _decode_guard(p: str, what: str) -> Iterator[None]:
    """pymavlink and numpy raise assorted errors on corrupt logs: name the file."""
    try:
        yield
    except ReaderError:
        raise
    except Exception as err:
        msg = f"{p!r}: cannot decode {what}: {type(err).__name__}: {err}"
        raise ReaderError(msg) from err


def _build_streams(
    accs: dict[str, _Acc], source: str, skipped: list[dict[str, Any]], clock: str
) -> dict[str, xr.Dataset]:
    import xarray as xr

    streams: dict[str, xr.Dataset] = {}
    for name, acc in accs.items():
        if not acc.times:
            continue
        t = np.asarray(acc.times, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        n = t.size
        data_vars: dict[str, Any] = {}
        for i, fname in enumerate(acc.fields):
            values = [row[i] for row in acc.rows]
            first = values[0]
            if isinstance(first, list | tuple):
                width = len(first)
                if any(
                    not isinstance(v, list | tuple) or len(v) != width for v in values
                ):
                    skipped.append(
                        {
                            "topic": f"{name}.{fname}",
                            "reason": "array field of varying length",
                            "count": n,
                        }
                    )
                    continue
                arr = _column([list(v) for v in values])
                if arr is None:
                    skipped.append(
                        {
                            "topic": f"{name}.{fname}",
                            "reason": "non-numeric array field",
                            "count": n,
                        }
                    )
                    continue
                if fname == "q" and width == 4 and arr.dtype.kind == "f":
                    data_vars["q"] = (
                        ("time", "quat"),
                        arr[order][:, [1, 2, 3, 0]],
                        {"stored_order": "w,x,y,z (reordered to x,y,z,w)"},
                    )
                    continue
                for j in range(width):
                    data_vars[f"{fname}_{j}"] = (
                        ("time",),
                        arr[order, j],
                        {"units": acc.units[fname]} if fname in acc.units else {},
                    )
                continue
            arr = _column(values)
            if arr is None and all(isinstance(v, str | bytes) for v in values):
                # text fields are kept as text (STATUSTEXT.text is also in the events)
                texts = np.asarray([v.decode(errors="replace") if isinstance(v, bytes) else v for v in values],
                                   dtype=object)
                data_vars[fname] = (("time",), texts[order], {})
                continue
            if arr is None and fname in acc.kept_elsewhere:
                continue
            if arr is None:
                skipped.append(
                    {
                        "topic": f"{name}.{fname}",
                        "reason": f"text field ({type(first).__name__}) not kept as a variable",
                        "count": n,
                    }
                )
                continue
            data_vars[fname] = (
                ("time",),
                arr[order],
                {"units": acc.units[fname]} if fname in acc.units else {},
            )
        coords: dict[str, Any] = {"time": ("time", t[order])}
        if acc.header and len(acc.header) == n:
            coords["header_time"] = (
                "time",
                np.asarray(acc.header, dtype=np.int64)[order],
            )
        if any(v[0][-1] == "quat" for v in data_vars.values()):
            coords["quat"] = ("quat", ["x", "y", "z", "w"])
        ds = xr.Dataset(
            {k: (dims, vals, attrs) for k, (dims, vals, attrs) in data_vars.items()},
            coords=coords,
            attrs={"source": source, **acc.attrs},
        )
        ds["time"].attrs["clock"] = clock
        if "header_time" in ds.coords:
            ds["header_time"].attrs["clock"] = f"sender {acc.attrs.get('header_field', 'stamp')}"
        streams[name] = ds
    return streams


def _events_frame(rows: list[tuple[int, str, dict[str, Any]]]) -> pl.DataFrame:
    import polars as pl

    rows = sorted(rows, key=lambda r: r[0])
    return pl.DataFrame(
        {
            "time": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "detail": [json.dumps(r[2], sort_keys=True, default=str) for r in rows],
        },
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String},
    )


def _instance_name(base: str, inst: Any) -> str:
    if inst is None or inst == 0 or inst == "":
        return base
    if isinstance(inst, int | np.integer):
        return f"{base}_{int(inst)}"
    text = re.sub(r"[^A-Za-z0-9_\-]", "_", str(inst).strip("\x00 ")) or "_"
    return f"{base}.{text}"


# --------------------------------------------------------------------------- DataFlash


class DataFlashReader(ReaderEntrypoint):
    """ArduPilot DataFlash binary log (``.bin``), one run per file."""

    name: ClassVar[str] = "dataflash"
    description: ClassVar[str] = "ArduPilot DataFlash binary log (.bin)"
    url: ClassVar[str] = (
        "https://ardupilot.org/dev/docs/code-overview-adding-a-new-log-message.html"
    )
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim files that start with a DataFlash FMT message (any suffix)."""
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(3) == DATAFLASH_MAGIC

    def read(
        self, path: Path, *, factor_params: Sequence[str] = DEFAULT_FACTOR_PARAMS
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        factor_params
            Parameter names copied into ``hardware.param.<NAME>`` factors.
        """
        from pymavlink.DFReader import DFReader_binary

        p = str(path)
        try:
            with open(path, "rb") as fh:
                head = fh.read(3)
        except OSError as err:
            msg = f"{p!r}: cannot open: {err}"
            raise ReaderError(msg) from err
        if head != DATAFLASH_MAGIC:
            msg = f"{p!r}: not an ArduPilot DataFlash log (starts with {head!r}, expected {DATAFLASH_MAGIC!r})"
            raise ReaderError(msg)
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                log = DFReader_binary(p, zero_time_base=False)
        except Exception as err:  # pymavlink raises bare Exception for corrupt FMT records
            msg = f"{p!r}: cannot open DataFlash log: {type(err).__name__}: {err}"
            raise ReaderError(msg) from err
        try:
            with _decode_guard(p, "DataFlash log"):
                run = self._read(log, path, factor_params)
            yield run
        finally:
            with contextlib.suppress(Exception):
                log.close()

    def _read(self, log: Any, path: Path, factor_params: Sequence[str]) -> RunData:
        p = str(path)
        accs: dict[str, _Acc] = {}
        skipped: list[dict[str, Any]] = []
        no_time: Counter[str] = Counter()
        params: dict[str, int | float] = {}
        last_param: dict[str, int | float] = {}
        events: list[tuple[int, str, dict[str, Any]]] = []
        hardware: dict[str, Scalar] = {}
        counts: Counter[str] = Counter()
        last_time = 0
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                while True:
                    msg = log.recv_msg()
                    if msg is None:
                        break
                    mtype = msg.get_type()
                    counts[mtype] += 1
                    if mtype in _METADATA_TYPES:
                        continue
                    fmt = msg.fmt
                    cols = list(fmt.columns)
                    if "TimeUS" in cols:
                        t_ns = int(msg.TimeUS) * 1000
                    elif "TimeMS" in cols:
                        t_ns = int(msg.TimeMS) * 1_000_000
                    else:
                        t_ns = None
                    if mtype == "PARM":
                        name, value = str(msg.Name), _param_value(msg.Value)
                        if name not in params:
                            params[name] = value
                        elif last_param[name] != value:
                            events.append(
                                (
                                    t_ns or last_time,
                                    "parameter",
                                    {"name": name, "value": value},
                                )
                            )
                        last_param[name] = value
                        continue
                    if mtype == "MSG":
                        text = str(msg.Message)
                        events.append(
                            (t_ns or last_time, "log", {"level": None, "message": text})
                        )
                        if "firmware" not in hardware:
                            hardware.update(_firmware_factors(text))
                        continue
                    if t_ns is None:
                        no_time[mtype] += 1
                        continue
                    last_time = t_ns
                    inst_field = getattr(fmt, "instance_field", None)
                    inst = getattr(msg, inst_field) if inst_field else None
                    sname = _instance_name(mtype, inst)
                    acc = accs.get(sname)
                    if acc is None:
                        fields = [
                            c for c in cols if c not in ("TimeUS", "TimeMS", inst_field)
                        ]
                        attrs: dict[str, Any] = {"message": mtype}
                        if inst_field:
                            attrs["instance_field"] = inst_field
                            attrs["instance"] = inst
                        acc = accs[sname] = _Acc(attrs=attrs, fields=fields)
                        for c in fields:
                            try:
                                unit = fmt.get_unit(c)
                            except (ValueError, IndexError, AttributeError):
                                unit = ""
                            if unit:
                                acc.units[c] = unit
                    acc.times.append(t_ns)
                    acc.rows.append([getattr(msg, c) for c in acc.fields])
                    if mtype in _EVENT_TYPES:
                        detail = {c: getattr(msg, c) for c in acc.fields}
                        events.append((t_ns, _EVENT_TYPES[mtype], detail))
        except (struct.error, ValueError, IndexError, KeyError, AttributeError) as err:
            msg_ = f"{p!r}: cannot decode DataFlash message near offset {getattr(log, 'offset', '?')}: {err}"
            raise ReaderError(msg_) from err
        if not accs and not params:
            msg_ = f"{p!r}: no DataFlash data messages could be decoded"
            raise ReaderError(msg_)

        for mtype, n in sorted(no_time.items()):
            skipped.append(
                {
                    "topic": mtype,
                    "reason": "message has no TimeUS/TimeMS field",
                    "count": n,
                }
            )
        for m in re.finditer(
            r"Skipped (\d+) bad bytes in log at offset (\d+)", noise.getvalue()
        ):
            skipped.append(
                {
                    "topic": "(file)",
                    "reason": f"{m[1]} corrupt bytes skipped at offset {m[2]}",
                    "count": int(m[1]),
                }
            )
        offset, size = int(getattr(log, "offset", 0)), int(getattr(log, "data_len", 0))
        if 0 < offset < size:
            skipped.append(
                {
                    "topic": "(file)",
                    "reason": f"file ends inside a message (truncated): last {size - offset} bytes ignored",
                    "count": size - offset,
                }
            )

        streams = _build_streams(accs, path.name, skipped, "boot")
        for pname in factor_params:
            if pname in params:
                hardware[f"param.{pname}"] = params[pname]
        extra: dict[str, Any] = {
            "clock": "boot",
            "parameters": params,
            "message_counts": dict(sorted(counts.items())),
            "streams": {k: dict(v.attrs) for k, v in accs.items()},
        }
        return RunData(
            key="",
            factors={"hardware": hardware},
            streams=streams,
            events=_events_frame(events),
            skipped=skipped,
            extra=extra,
            name=path.stem,
        )


# --------------------------------------------------------------------------- tlog


def _tlog_frames_end(path: Path) -> str | None:
    """Walk ``[8-byte time][MAVLink frame]`` records; describe a truncated last record."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    pos, size = 0, len(raw)
    while pos < size:
        if pos + 8 + 3 > size:
            return f"file ends inside a record header (truncated): last {size - pos} bytes ignored"
        stx = raw[pos + 8]
        if stx not in MAVLINK_STX:
            return None  # garbage: pymavlink reports it as BAD_DATA
        length = 8 + MAVLINK_STX[stx] + raw[pos + 9]
        if stx == 0xFD and raw[pos + 10] & 0x01:
            length += 13  # signed MAVLink 2 frame
        if pos + length > size:
            return f"file ends inside a MAVLink frame (truncated): last {size - pos} bytes ignored"
        pos += length
    return None


class TlogReader(ReaderEntrypoint):
    """MAVLink telemetry log (``.tlog``) as written by ground stations, one run per file."""

    name: ClassVar[str] = "tlog"
    description: ClassVar[str] = "MAVLink telemetry log (.tlog)"
    url: ClassVar[str] = "https://mavlink.io/en/guide/serialization.html"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim ``.tlog`` files, or files whose first record is a plausible tlog record."""
        if not path.is_file():
            return False
        if path.suffix.lower() == ".tlog":
            return True
        with open(path, "rb") as fh:
            head = fh.read(9)
        if len(head) < 9 or head[8] not in MAVLINK_STX:
            return False
        t_us = struct.unpack(">Q", head[:8])[0]
        return 946_684_800_000_000 < t_us < 4_102_444_800_000_000  # years 2000..2100

    def read(
        self,
        path: Path,
        *,
        dialect: str = "ardupilotmega",
        factor_params: Sequence[str] = DEFAULT_FACTOR_PARAMS,
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        dialect
            pymavlink dialect used to decode messages (``ardupilotmega``, ``common`` …).
        factor_params
            Parameter names copied into ``hardware.param.<NAME>`` factors.
        """
        from pymavlink import mavutil

        p = str(path)
        try:
            with open(path, "rb") as fh:
                head = fh.read(9)
        except OSError as err:
            msg = f"{p!r}: cannot open: {err}"
            raise ReaderError(msg) from err
        if len(head) < 9 or head[8] not in MAVLINK_STX:
            msg = (
                f"{p!r}: not a MAVLink telemetry log (expected an 8-byte timestamp then "
                f"0xFE or 0xFD, got {head!r})"
            )
            raise ReaderError(msg)
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                conn = mavutil.mavlink_connection(
                    p, dialect=dialect, notimestamps=False, robust_parsing=True
                )
        except Exception as err:  # pymavlink raises bare Exception for many bad inputs
            msg = f"{p!r}: cannot open MAVLink log (dialect {dialect!r}): {type(err).__name__}: {err}"
            raise ReaderError(msg) from err
        try:
            with _decode_guard(p, "MAVLink log"):
                run = self._read(conn, path, factor_params)
            yield run
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _read(self, conn: Any, path: Path, factor_params: Sequence[str]) -> RunData:
        from pymavlink import mavutil

        p = str(path)
        raw: list[tuple[int, Any]] = []
        bad: Counter[str] = Counter()
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                while True:
                    msg = conn.recv_msg()
                    if msg is None:
                        break
                    if msg.get_type() == "BAD_DATA":
                        reason = str(getattr(msg, "reason", "bad data"))
                        bad[re.sub(r"0x[0-9a-fA-F]+|\d+", "N", reason)] += 1
                        continue
                    raw.append((round(float(msg._timestamp) * 1e6) * 1000, msg))
        except (struct.error, ValueError, IndexError, KeyError, AttributeError) as err:
            msg_ = f"{p!r}: cannot decode MAVLink frame: {err}"
            raise ReaderError(msg_) from err
        if not raw:
            msg_ = f"{p!r}: no MAVLink message could be decoded ({sum(bad.values())} bad frames)"
            raise ReaderError(msg_)

        # the main vehicle: most frequent heartbeat sender that is an autopilot
        hb = Counter(
            (m.get_srcSystem(), m.get_srcComponent())
            for _, m in raw
            if m.get_type() == "HEARTBEAT"
            and getattr(m, "autopilot", 8) != mavutil.mavlink.MAV_AUTOPILOT_INVALID
        )
        main = hb.most_common(1)[0][0] if hb else None

        accs: dict[str, _Acc] = {}
        params: dict[str, int | float] = {}
        last_param: dict[str, int | float] = {}
        events: list[tuple[int, str, dict[str, Any]]] = []
        hardware: dict[str, Scalar] = {}
        counts: Counter[str] = Counter()
        for t_ns, msg in raw:
            mtype = msg.get_type()
            counts[mtype] += 1
            src = (msg.get_srcSystem(), msg.get_srcComponent())
            from_main = main is None or src == main
            if mtype == "PARAM_VALUE" and from_main:
                name, value = str(msg.param_id), _param_value(msg.param_value)
                if name not in params:
                    params[name] = value
                elif last_param[name] != value:
                    events.append((t_ns, "parameter", {"name": name, "value": value}))
                last_param[name] = value
            elif mtype == "STATUSTEXT":
                sev = int(msg.severity)
                events.append(
                    (
                        t_ns,
                        "log",
                        {
                            "level": normalize_level(sev, "syslog"),
                            "severity": sev,
                            "message": str(msg.text),
                            "source": f"{src[0]}/{src[1]}",
                        },
                    )
                )
                if from_main and "firmware" not in hardware:
                    hardware.update(_firmware_factors(str(msg.text)))
            elif mtype == "HEARTBEAT" and from_main and "vehicle_type" not in hardware:
                hardware["vehicle_type"] = _enum_name("MAV_TYPE", msg.type)
                hardware["autopilot"] = _enum_name("MAV_AUTOPILOT", msg.autopilot)

            inst_field = getattr(msg, "instance_field", None)
            if mtype in _NAMED_VALUE and "name" in msg.fieldnames:
                inst_field = "name"
            inst = getattr(msg, inst_field) if inst_field else None
            base = mtype if from_main else f"{mtype}.src{src[0]}_{src[1]}"
            sname = _instance_name(base, inst)
            acc = accs.get(sname)
            if acc is None:
                fields = [f for f in msg.fieldnames if f != inst_field]
                # the sender's own stamp: time_boot_ms, or time_usec except on GPS
                # messages, whose time_usec is GPS time (UTC or unset), another clock
                stamps = ("time_boot_ms",) if "GPS" in mtype else ("time_boot_ms", "time_usec")
                header_field = next((f for f in stamps if f in fields), None)
                attrs: dict[str, Any] = {
                    "message": mtype,
                    "src_system": src[0],
                    "src_component": src[1],
                }
                if inst_field:
                    attrs["instance_field"] = inst_field
                    attrs["instance"] = (
                        inst
                        if not isinstance(inst, bytes)
                        else inst.decode(errors="replace")
                    )
                if header_field:
                    attrs["header_field"] = header_field
                    fields.remove(header_field)
                acc = accs[sname] = _Acc(attrs=attrs, fields=fields)
                if mtype == "STATUSTEXT":
                    acc.kept_elsewhere["text"] = "events"
                    attrs["text"] = "also in the run's events (kind 'log')"
                elif mtype == "PARAM_VALUE" and from_main:
                    acc.kept_elsewhere["param_id"] = "extra"
                    attrs["param_id"] = "also in extra['parameters']"
                units = getattr(msg, "fieldunits_by_name", {}) or {}
                acc.units = {f: u for f, u in units.items() if u and f in fields}
            hf = acc.attrs.get("header_field")
            if hf == "time_boot_ms":
                acc.header.append(int(msg.time_boot_ms) * 1_000_000)
            elif hf == "time_usec":
                acc.header.append(int(msg.time_usec) * 1000)
            acc.times.append(t_ns)
            acc.rows.append([getattr(msg, f) for f in acc.fields])

        skipped: list[dict[str, Any]] = [
            {"topic": "BAD_DATA", "reason": reason, "count": n}
            for reason, n in sorted(bad.items())
        ]
        trailing = _tlog_frames_end(path)
        if trailing:
            skipped.append({"topic": "(file)", "reason": trailing, "count": 1})
        streams = _build_streams(accs, path.name, skipped, "utc")
        for pname in factor_params:
            if pname in params:
                hardware[f"param.{pname}"] = params[pname]
        extra: dict[str, Any] = {
            "clock": "utc",
            "parameters": params,
            "message_counts": dict(sorted(counts.items())),
            "main_source": list(main) if main else None,
            "streams": {k: dict(v.attrs) for k, v in accs.items()},
        }
        return RunData(
            key="",
            factors={"hardware": hardware},
            streams=streams,
            events=_events_frame(events),
            skipped=skipped,
            extra=extra,
            name=path.stem,
        )


def _enum_name(enum: str, value: int) -> str:
    from pymavlink import mavutil

    entry = mavutil.mavlink.enums.get(enum, {}).get(int(value))
    return str(entry.name) if entry is not None else f"{enum}_{int(value)}"
