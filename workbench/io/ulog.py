"""PX4 ULog (``.ulg``) → one run, read with pyulog.

What a run holds
----------------
* One stream per logged topic instance. Instance 0 is named after the topic
  (``vehicle_attitude``), instance *n* > 0 ``<topic>_<n>`` (``sensor_accel_1``), as
  PX4's own tools show them. Should such a name clash with another topic's name
  (PX4 also has topics called ``actuator_controls_1``), the instance is named
  ``<topic>.<n>`` instead. ``extra["streams"]`` maps every stream to its topic and
  ``multi_id``; each stream's attrs carry them too.
* Fields become variables. ``timestamp`` (µs since boot) is the ``time`` coordinate
  in ns; ``timestamp_sample`` (the sensor's own stamp) becomes the ``header_time``
  coordinate. Array fields are grouped when obvious: 3 float elements of a vector
  quantity (``xyz``, ``gyro_rad``, ``accelerometer_m_s2``, ``delta_angle`` …) → an
  ``axis`` dimension ``[x, y, z]``; 4 float elements named ``q``, ``q_d``,
  ``delta_q_reset`` or ``*quat*`` → a ``quat`` dimension ``[x, y, z, w]`` (PX4 stores
  ``w`` first; the reader reorders). Other arrays are flattened: ``control[3]`` →
  ``control_3``, ``esc[0].esc_rpm`` → ``esc_0.esc_rpm``.
* The clock is boot-relative and kept as such: ``extra["clock"] == "boot"``. When a
  GPS topic carries UTC time, ``extra["boot_to_utc_ns"]`` gives the offset to add.
* The run spans the log's own start and last timestamp (pyulog's ``start_timestamp``
  and ``last_timestamp``): PX4 logs each topic's last known state when logging starts,
  with its older stamp; those samples are kept but do not extend the run.
* Parameters: all initial values in ``extra["parameters"]`` (PX4 logs 700–1200);
  the ``factor_params`` option picks a few into ``hardware.param.<NAME>``. Version
  info (``sys_name``, ``ver_hw``, ``ver_hw_subtype``, ``ver_sw``, ``ver_sw_release`` as
  ``firmware``, ``sys_uuid``, ``sys_mcu``) → ``hardware`` factors.
* Events: logged text messages → kind ``"log"`` with detail ``{"level", "severity",
  "message"}`` (tagged ones add ``"tag"``): ``severity`` is PX4's syslog number (0
  EMERGENCY … 7 DEBUG), ``level`` its name in :data:`~workbench.io.loglevels.LEVELS`
  (EMERGENCY/ALERT/CRITICAL → ``FATAL``, WARNING → ``WARN``, NOTICE → ``INFO``); parameter changes in flight → ``"parameter"``;
  dropouts → ``"dropout"`` with ``{"duration_ms"}``.
* Files with appended data sections are read by pyulog's appended-offset logic
  (``extra["appended_data"]``); a file ending in the middle of a message, or where
  pyulog detected corruption, is listed in ``skipped`` with topic ``"(file)"``.

Examples
--------
>>> from pathlib import Path
>>> ULogReader().guess_can_open(Path("flight.ulg"))
False
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.io.loglevels import normalize_level
from workbench.io.registry import ReaderEntrypoint, RunData
from workbench.model import ReaderError, Scalar

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = ["DEFAULT_FACTOR_PARAMS", "ULOG_MAGIC", "VERSION_FACTORS", "ULogReader"]

ULOG_MAGIC = b"ULog\x01\x12\x35"
"""First 7 bytes of every ULog file (then a version byte and a uint64 timestamp)."""
HEADER_SIZE = 16
DEFAULT_FACTOR_PARAMS: tuple[str, ...] = (
    "SYS_AUTOSTART",
    "MAV_TYPE",
    "CA_AIRFRAME",
    "MAV_SYS_ID",
    "SYS_HITL",
)
"""Parameters copied into ``hardware.param.<NAME>``: airframe and vehicle identity."""
VERSION_FACTORS: dict[str, str] = {
    "sys_name": "sys_name",
    "ver_hw": "ver_hw",
    "ver_hw_subtype": "ver_hw_subtype",
    "ver_sw": "ver_sw",
    "sys_uuid": "sys_uuid",
    "sys_mcu": "sys_mcu",
    "sys_os_name": "sys_os_name",
}
"""ULog info keys → ``hardware`` factor keys."""

_ARRAY_RE = re.compile(r"^(?P<base>.+)\[(?P<idx>\d+)\]$")
_VECTOR_WORDS = re.compile(
    r"(xyz|accel|acc|gyro|vel|mag|gravity|torque|thrust|angle|bias|rate|pos|force|_rad|m_s2|_ga)"
)
_QUAT_NAME = re.compile(r"(^|_)(q|q_d|quat\w*)($|_reset$)|quat")
_GPS_TOPICS = ("vehicle_gps_position", "sensor_gps")
_MSG_TYPES = set(
    b"FBIMPQALCDORSO"
)  # ULog message type bytes (incl. tagged logging 'C')


def _firmware(release: Any) -> str | None:
    """``ver_sw_release`` (0xMMmmppTT) → ``"1.14.3"``; ``None`` when absent or 0."""
    if not isinstance(release, int) or release <= 0:
        return None
    major, minor, patch = (
        (release >> 24) & 0xFF,
        (release >> 16) & 0xFF,
        (release >> 8) & 0xFF,
    )
    return f"{major}.{minor}.{patch}"


def _var_name(field: str) -> str:
    return re.sub(r"\[(\d+)\]", r"_\1", field)


def _group_fields(
    data: dict[str, np.ndarray],
) -> tuple[dict[str, tuple[list[str], np.ndarray]], dict[str, dict[str, Any]]]:
    """Field arrays → xarray variables ``{name: (dims, values)}`` and their attrs."""
    arrays: dict[str, dict[int, str]] = {}
    for key in data:
        m = _ARRAY_RE.match(key)
        if m:
            arrays.setdefault(m["base"], {})[int(m["idx"])] = key
    grouped: dict[str, tuple[list[str], np.ndarray]] = {}
    attrs: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for base, members in arrays.items():
        if sorted(members) != list(range(len(members))):
            continue
        cols = [data[members[i]] for i in range(len(members))]
        if not all(c.dtype.kind == "f" for c in cols) or "." in base:
            continue
        leaf = base.rsplit(".", 1)[-1].lower()
        if (
            len(cols) == 3
            and _VECTOR_WORDS.search(leaf)
            and not re.search(r"_[xyz]$", leaf)
        ):
            grouped[base] = (["time", "axis"], np.stack(cols, axis=1))
            used.update(members.values())
        elif len(cols) == 4 and _QUAT_NAME.search(leaf):
            w, x, y, z = cols
            grouped[base] = (["time", "quat"], np.stack([x, y, z, w], axis=1))
            attrs[base] = {"stored_order": "w,x,y,z (reordered to x,y,z,w)"}
            used.update(members.values())
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for key, values in data.items():
        if key in ("timestamp", "timestamp_sample") or key in used:
            continue
        if key.startswith("_padding") or ("._padding" in key):
            continue
        out[_var_name(key)] = (["time"], values)
    out.update(grouped)
    return out, attrs


def _trailing_problem(path: Path) -> str | None:
    """Walk ULog message headers; say how the file ends badly, or ``None`` when it ends cleanly."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    pos, size = HEADER_SIZE, len(raw)
    hdr = struct.Struct("<HB")
    while pos + 3 <= size:
        length, mtype = hdr.unpack_from(raw, pos)
        if mtype not in _MSG_TYPES:
            return None  # corrupt stream: pyulog resynchronises and reports it itself
        end = pos + 3 + length
        if end > size:
            return f"file ends inside a message (truncated): last {size - pos} bytes ignored"
        pos = end
    if pos < size:
        return f"file ends inside a message header (truncated): last {size - pos} bytes ignored"
    return None


class ULogReader(ReaderEntrypoint):
    """PX4 ULog flight log, one run per file."""

    name: ClassVar[str] = "ulog"
    description: ClassVar[str] = "PX4 ULog flight log (.ulg)"
    url: ClassVar[str] = "https://docs.px4.io/main/en/dev_log/ulog_file_format.html"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim ``.ulg`` files and files starting with the ULog magic."""
        if not path.is_file():
            return False
        if path.suffix.lower() == ".ulg":
            return True
        with open(path, "rb") as fh:
            return fh.read(7) == ULOG_MAGIC

    def read(
        self,
        path: Path,
        *,
        topics: Sequence[str] | None = None,
        factor_params: Sequence[str] = DEFAULT_FACTOR_PARAMS,
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        topics
            Topic names to read (all when ``None``); the others are not decoded and
            not listed as skipped.
        factor_params
            Parameter names copied into ``hardware.param.<NAME>`` factors.
        """
        from pyulog import ULog

        p = str(path)
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEADER_SIZE)
        except OSError as err:
            msg = f"{p!r}: cannot open: {err}"
            raise ReaderError(msg) from err
        if len(head) < HEADER_SIZE or head[:7] != ULOG_MAGIC:
            msg = f"{p!r}: not a ULog file (starts with {head[:8]!r}, expected {ULOG_MAGIC!r})"
            raise ReaderError(msg)
        try:
            ulog = ULog(p, list(topics) if topics is not None else None, True)
        except Exception as err:  # pyulog raises assorted errors on corrupt input
            msg = f"{p!r}: cannot parse ULog: {type(err).__name__}: {err}"
            raise ReaderError(msg) from err
        if not ulog.data_list:
            why = " (pyulog detected corruption)" if ulog.file_corruption else ""
            msg = f"{p!r}: ULog holds no data messages{why}; truncated or empty log?"
            raise ReaderError(msg)
        try:
            run = self._run(ulog, path, factor_params)
        except ReaderError:
            raise
        except Exception as err:  # corrupt values pyulog let through (types, overflows)
            msg = f"{p!r}: cannot decode ULog contents: {type(err).__name__}: {err}"
            raise ReaderError(msg) from err
        yield run

    # ----------------------------------------------------------------- run

    def _run(self, ulog: Any, path: Path, factor_params: Sequence[str]) -> RunData:
        import xarray as xr

        skipped: list[dict[str, Any]] = []
        streams: dict[str, xr.Dataset] = {}
        mapping: dict[str, dict[str, Any]] = {}
        topic_names = {d.name for d in ulog.data_list}
        unsorted: list[str] = []
        for d in sorted(ulog.data_list, key=lambda d: (d.name, d.multi_id)):
            name = d.name if d.multi_id == 0 else f"{d.name}_{d.multi_id}"
            if d.multi_id and name in topic_names:
                name = f"{d.name}.{d.multi_id}"
            while name in streams:  # the same instance subscribed twice
                name = f"{name}.dup"
            ts = d.data.get("timestamp")
            if ts is None:
                skipped.append(
                    {
                        "topic": d.name,
                        "reason": "topic has no timestamp field",
                        "count": len(next(iter(d.data.values()), [])),
                    }
                )
                continue
            time_ns = ts.astype(np.int64) * 1000
            order = np.argsort(time_ns, kind="stable")
            if np.any(order != np.arange(order.size)):
                unsorted.append(name)
            variables, var_attrs = _group_fields(d.data)
            data_vars = {k: (dims, v[order]) for k, (dims, v) in variables.items()}
            coords: dict[str, Any] = {"time": ("time", time_ns[order])}
            if "timestamp_sample" in d.data:
                coords["header_time"] = (
                    "time",
                    d.data["timestamp_sample"].astype(np.int64)[order] * 1000,
                )
            if any(dims[-1] == "axis" for dims, _ in data_vars.values()):
                coords["axis"] = ("axis", ["x", "y", "z"])
            if any(dims[-1] == "quat" for dims, _ in data_vars.values()):
                coords["quat"] = ("quat", ["x", "y", "z", "w"])
            ds = xr.Dataset(
                data_vars,
                coords=coords,
                attrs={
                    "source": path.name,
                    "topic": d.name,
                    "multi_id": int(d.multi_id),
                },
            )
            for var, attrs in var_attrs.items():
                ds[var].attrs.update(attrs)
            ds["time"].attrs["clock"] = "boot"
            streams[name] = ds
            mapping[name] = {
                "topic": d.name,
                "multi_id": int(d.multi_id),
                "count": int(ts.size),
            }

        info = {k: v for k, v in ulog.msg_info_dict.items()}
        hardware: dict[str, Scalar] = {}
        for key, fkey in VERSION_FACTORS.items():
            value = info.get(key)
            if isinstance(value, str) and value:
                hardware[fkey] = value
        fw = _firmware(info.get("ver_sw_release"))
        if fw:
            hardware["firmware"] = fw
        params = dict(ulog.initial_parameters)
        for pname in factor_params:
            if pname in params:
                value = params[pname]
                hardware[f"param.{pname}"] = (
                    float(value) if isinstance(value, float) else int(value)
                )

        if ulog.file_corruption:
            skipped.append(
                {
                    "topic": "(file)",
                    "reason": "pyulog detected corrupt data and skipped to the next sync",
                    "count": 1,
                }
            )
        trailing = _trailing_problem(path)
        if trailing:
            skipped.append({"topic": "(file)", "reason": trailing, "count": 1})

        extra: dict[str, Any] = {
            "clock": "boot",
            "start_timestamp_us": int(ulog.start_timestamp),
            "last_timestamp_us": int(ulog.last_timestamp),
            "info": {
                k: (v if isinstance(v, str | int | float | bool) else str(v))
                for k, v in info.items()
            },
            "info_multiple_keys": sorted(ulog.msg_info_multiple_dict),
            "parameters": {
                k: (float(v) if isinstance(v, float) else int(v))
                for k, v in params.items()
            },
            "streams": mapping,
            "appended_data": bool(ulog.has_data_appended),
            "dropouts": len(ulog.dropouts),
        }
        if unsorted:
            extra["reordered"] = sorted(unsorted)
        offset, gps = _boot_to_utc(streams, mapping)
        if offset is not None:
            extra["boot_to_utc_ns"] = offset
        return RunData(
            key="",
            factors={"hardware": hardware},
            streams=streams,
            events=_events(ulog),
            skipped=skipped,
            extra=extra,
            name=path.stem,
            # the log's own start and last timestamp: each topic's last known state,
            # logged at the start with its older stamp, does not extend the run
            span=(int(ulog.start_timestamp) * 1000, max(int(ulog.last_timestamp), int(ulog.start_timestamp)) * 1000),
            wall_clock=(offset, f"GPS UTC ({gps}.time_utc_usec)") if offset is not None else None,
        )


def _boot_to_utc(
    streams: dict[str, xr.Dataset], mapping: dict[str, dict[str, Any]]
) -> tuple[int | None, str]:
    """(offset from boot time to UTC in ns, the GPS topic it came from) or (None, "")."""
    for name, m in mapping.items():
        if m["topic"] in _GPS_TOPICS and "time_utc_usec" in streams[name]:
            ds = streams[name]
            utc = ds["time_utc_usec"].values.astype(np.int64)
            ok = utc > 0
            if np.any(ok):
                return int(np.median(utc[ok] * 1000 - ds["time"].values[ok])), str(m["topic"])
    return None, ""


def _log_detail(m: Any) -> dict[str, Any]:
    """Detail of one logged message: normalized ``level``, raw ``severity``, ``message``.

    PX4 writes the syslog severity as an ASCII digit (``'4'`` is WARNING); ``severity``
    is that digit as a number, or the raw byte when it is not a digit.
    """
    raw = int(m.log_level)
    sev = raw - 0x30 if 0x30 <= raw <= 0x37 else raw
    level = normalize_level(sev, "syslog") if 0x30 <= raw <= 0x37 else None
    return {"level": level, "severity": sev, "message": m.message.rstrip()}


def _events(ulog: Any) -> pl.DataFrame:
    import polars as pl

    rows: list[tuple[int, str, str]] = []
    for m in ulog.logged_messages:
        rows.append(
            (int(m.timestamp) * 1000, "log", json.dumps(_log_detail(m), sort_keys=True))
        )
    for tag, msgs in getattr(ulog, "logged_messages_tagged", {}).items():
        for m in msgs:
            detail = {**_log_detail(m), "tag": int(tag)}
            rows.append(
                (int(m.timestamp) * 1000, "log", json.dumps(detail, sort_keys=True))
            )
    for ts, pname, value in ulog.changed_parameters:
        detail = {
            "name": pname,
            "value": float(value) if isinstance(value, float) else int(value),
        }
        rows.append((int(ts) * 1000, "parameter", json.dumps(detail, sort_keys=True)))
    for d in ulog.dropouts:
        rows.append(
            (
                int(d.timestamp) * 1000,
                "dropout",
                json.dumps({"duration_ms": int(d.duration)}),
            )
        )
    rows.sort(key=lambda r: r[0])
    return pl.DataFrame(
        {
            "time": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "detail": [r[2] for r in rows],
        },
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String},
    )


def count_by_topic(streams: dict[str, Any]) -> Counter[str]:
    """Samples per topic name over all instances (a helper for summaries and tests)."""
    out: Counter[str] = Counter()
    for ds in streams.values():
        out[str(ds.attrs.get("topic", ""))] += int(ds.sizes.get("time", 0))
    return out
