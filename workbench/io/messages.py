"""ROS / MCAP messages → typed streams: the mapping shared by the MCAP and bag readers.

A reader collects each topic's raw payloads into a :class:`TopicBuffer`; :func:`decode_topic`
turns it into streams (``xarray.Dataset``), events and "skipped" entries. A reader that
decodes a big log piece by piece yields a :class:`StreamingRunData` (streams in parts)
and calls :func:`decode_buffers` once per piece with the same ``names``.
Only the fields a typed mapping uses are read (an Imu's covariances are not decoded).

Typed mappings (type names are normalized to ``pkg/msg/Name``):

* ``sensor_msgs/JointState`` → ``position``, ``velocity``, ``effort`` on ``(time, joint)``;
  a field empty in every message is omitted; joint names changing between messages
  give the union of names with NaN where a message has no value.
* ``sensor_msgs/Imu`` → ``orientation (time, quat)``, ``angular_velocity`` and
  ``linear_acceleration (time, axis)``.
* ``geometry_msgs`` Wrench, Pose, Twist, Accel, Vector3, Point, Quaternion, Transform
  (plain, ``Stamped`` and ``WithCovariance``) and ``nav_msgs/Odometry`` → vectors on
  ``axis = [x, y, z]`` and quaternions on ``quat = [x, y, z, w]``.
* ``tf2_msgs/TFMessage`` / ``tf/tfMessage`` → one stream per child frame, named
  ``<topic>.<child_frame>`` (``tf.base_link``), attrs ``parent_frame``/``child_frame``.
* ``sensor_msgs/CompressedImage`` → an encoded-image stream (``frame_offset``,
  ``frame_size`` on ``time``; ``data`` on ``byte``); ``sensor_msgs/Image`` → raw pixels
  ``(time, y, x[, channel])`` for known encodings, else skipped with the reason.
* ``rosgraph_msgs/Log`` (ROS 1) and ``rcl_interfaces/msg/Log`` (ROS 2) on ``/rosout`` or
  ``/rosout_agg`` (also under a namespace, ``/robot1/rosout``) → the numeric stream as
  below (``level``, ``line``, stamps) *and* one event of kind ``"log"`` per message, at
  its log time, detail ``{"level", "severity", "message", "name", "source", "file",
  "function", "line"}``; the stream also holds the text: ``text`` (the message),
  ``node`` and ``level_name``; ``level`` is one of :data:`~workbench.io.loglevels.LEVELS`
  (``None`` for a value the ROS scheme does not define), ``severity`` the raw number,
  ``source`` the topic.
* ``std_msgs/String`` on an events topic → the events table (JSON objects with a
  ``"kind"`` key); on other topics a text stream (:func:`~workbench.io.registry.text_stream`:
  ``text`` on ``time``), shown in Run detail and logged to Rerun as text logs.
* protobuf messages (MCAP ``protobuf`` encoding, schema embedded) are flattened by
  :mod:`workbench.io.protobuf` into the same leaf paths and mapped like the rest
  (``foxglove.CompressedImage`` / ``RawImage`` as images; a top-level ``timestamp``
  becomes ``header_time``); on an events topic their ``data`` (or only) string is the event.
* anything else → every numeric leaf flattened into a variable named by its path
  (``pose.position.x``, ``transforms[0].transform.translation.x``); fixed-size arrays
  get an extra dimension ``<path>.index``; ``sec``/``nanosec`` pairs become one int64
  nanosecond variable; strings are ignored and listed in the ``ignored`` attribute.

Every stream has the int64 ns ``time`` coordinate (log time, sorted, stable), a
``header_time`` coordinate when the message has a ``std_msgs/Header``, attrs ``source``
(the topic), ``message_type``, ``encoding``, and a ``units`` attribute on each variable.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from workbench.io import cdr, protobuf
from workbench.io.cdr import Columns, Plan, Ragged
from workbench.io.loglevels import normalize_level
from workbench.io.protobuf import ProtobufRegistry
from workbench.io.registry import RunData, text_stream
from workbench.model import ConfigError, events_from_json, stream_name
from workbench.plugins import Registry

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = [
    "DECODERS",
    "DEFAULT_EVENTS_TOPICS",
    "PART_BYTES",
    "CompressedImageDecoder",
    "Decoder",
    "JointStateDecoder",
    "RawImageDecoder",
    "StreamingRunData",
    "TfDecoder",
    "TopicBuffer",
    "TopicResult",
    "TypeRegistry",
    "decode_buffers",
    "decode_parts",
    "decode_topic",
    "decoder_for",
    "merge_skipped",
    "normalize_type",
]

PART_BYTES = 16 * 1024 * 1024
"""Message bytes a streaming read decodes at once (the ``parts`` of :meth:`workbench.io.mcap.McapReader.read`
and the ROS 2 bag reader)."""

DEFAULT_EVENTS_TOPICS: tuple[str, ...] = ("/events",)
AXIS = ["x", "y", "z"]
QUAT = ["x", "y", "z", "w"]


def normalize_type(name: str) -> str:
    """``sensor_msgs/Imu`` and ``sensor_msgs/msg/Imu`` → ``sensor_msgs/msg/Imu``.

    >>> normalize_type("sensor_msgs/Imu"), normalize_type("tf/tfMessage")
    ('sensor_msgs/msg/Imu', 'tf/msg/tfMessage')
    """
    parts = name.strip().split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    return "/".join(parts)


# --------------------------------------------------------------------------- type definitions


class TypeRegistry:
    """Message definitions found in one log, with a built-in store as fallback.

    Definitions embedded in the log win over the built-in ones (a log records the
    version of a message it was written with).
    """

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor  # "ros2" or "ros1"
        self.defs: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._plans: dict[str, Plan] = {}
        self._fallback: dict[str, Any] | None = None

    @property
    def fallback(self) -> dict[str, Any]:
        """Definitions of the built-in store (ROS 2 Humble or ROS 1 Noetic)."""
        if self._fallback is None:
            from rosbags.typesys import Stores, get_typestore

            store = Stores.ROS2_HUMBLE if self.flavor == "ros2" else Stores.ROS1_NOETIC
            self._fallback = dict(get_typestore(store).fielddefs)
        return self._fallback

    def add_msg(self, typename: str, text: str) -> None:
        """Register a ``.msg`` definition (with its dependencies, ``MSG:`` separated)."""
        key = normalize_type(typename)
        defs, error = _parse_definition("msg", key, text)
        self.defs.update(defs)
        if error:
            self.errors[key] = error

    def add_idl(self, typename: str, text: str) -> None:
        """Register an ``.idl`` definition (several ``IDL:`` sections allowed)."""
        key = normalize_type(typename)
        defs, error = _parse_definition("idl", key, text)
        self.defs.update(defs)
        if error:
            self.errors[key] = error

    def plan(self, typename: str, *, builtin: bool = False) -> Plan:
        """Compiled plan of *typename*; raises :class:`cdr.UnsupportedTypeError`.

        ``builtin=True`` ignores the definitions found in the log.
        """
        key = normalize_type(typename)
        cache_key = f"builtin:{key}" if builtin else key
        if cache_key in self._plans:
            return self._plans[cache_key]
        if not builtin and key in self.errors and key not in self.defs:
            raise cdr.UnsupportedTypeError(self.errors[key])
        plan = cdr.compile_plan(
            key,
            self.fallback if builtin else self.defs,
            fallback=None if builtin else self.fallback,
            empty_struct_byte=self.flavor == "ros2",
        )
        self._plans[cache_key] = plan
        return plan

    def has_own(self, typename: str) -> bool:
        """Whether the log itself defined *typename*."""
        return normalize_type(typename) in self.defs

    def has_builtin(self, typename: str) -> bool:
        """Whether the built-in store defines *typename*."""
        return normalize_type(typename) in self.fallback


@functools.lru_cache(maxsize=1024)
def _parse_definition(kind: str, key: str, text: str) -> tuple[dict[str, Any], str]:
    """Parse a message definition once per process (a campaign repeats the same schemas)."""
    from rosbags.typesys import TypesysError, get_types_from_idl, get_types_from_msg

    defs: dict[str, Any] = {}
    try:
        if kind == "msg":
            defs.update(get_types_from_msg(text, key))
        else:
            sep = "=" * 80 + "\n"
            if text.startswith(f"{sep}IDL: "):
                for section in text.split(sep)[1:]:
                    _hdr, idl = section.split("\n", 1)
                    defs.update(get_types_from_idl(idl))
            else:
                defs.update(get_types_from_idl(text))
    except (TypesysError, ValueError, KeyError, IndexError) as err:
        return defs, f"cannot parse .{kind} definition: {err}"
    return defs, ""


# --------------------------------------------------------------------------- raw messages


@dataclass
class TopicBuffer:
    """Raw payloads of one topic, collected batch by batch, in any time order.

    Batches are ``(log_time, data, starts, lengths)`` with the payloads inside ``data``;
    single messages can be added with :meth:`add`.
    """

    topic: str
    message_type: str
    encoding: str
    schema_encoding: str = ""
    declared: int = 0
    """Message count the container declares (index/metadata), for cross-checks."""
    _batches: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list, repr=False
    )
    _times: list[int] = field(default_factory=list, repr=False)
    _payloads: list[bytes] = field(default_factory=list, repr=False)

    def add_batch(
        self, log_time: np.ndarray, data: np.ndarray, starts: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Add payloads ``data[starts[i]:starts[i]+lengths[i]]`` logged at ``log_time[i]``."""
        if len(log_time):
            self._batches.append((log_time, data, starts, lengths))

    def add(self, log_time: int, payload: bytes) -> None:
        """Add one message."""
        self._times.append(log_time)
        self._payloads.append(payload)
        if len(self._payloads) >= 65536:
            self._flush()

    def _flush(self) -> None:
        if not self._payloads:
            return
        lengths = np.fromiter(
            (len(p) for p in self._payloads), dtype=np.int64, count=len(self._payloads)
        )
        starts = np.cumsum(lengths) - lengths
        data = np.frombuffer(b"".join(self._payloads), dtype=np.uint8)
        self._batches.append((np.array(self._times, dtype=np.int64), data, starts, lengths))
        self._times, self._payloads = [], []

    @property
    def count(self) -> int:
        """Messages collected so far."""
        return sum(len(b[0]) for b in self._batches) + len(self._times)

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(log_time, data, starts, lengths)`` sorted by log time (stable), payloads contiguous."""
        self._flush()
        if not self._batches:
            e = np.empty(0, dtype=np.int64)
            return e, np.empty(0, dtype=np.uint8), e, e
        parts: list[np.ndarray] = []
        for _t, data, starts, lengths in self._batches:
            starts = starts.astype(np.int64, copy=False)
            lengths = lengths.astype(np.int64, copy=False)
            total = int(lengths.sum())
            packed = len(starts) == 0 or (
                starts[0] == 0
                and len(data) == total
                and bool(np.all(starts[1:] == np.cumsum(lengths[:-1])))
            )
            parts.append(data if packed else cdr.gather_slices(data, starts, lengths))
        times = np.concatenate([b[0] for b in self._batches]).astype(np.int64, copy=False)
        lengths = np.concatenate([b[3] for b in self._batches]).astype(np.int64, copy=False)
        flat = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self._batches = []
        starts = np.cumsum(lengths) - lengths
        if len(times) > 1 and bool(np.any(times[1:] < times[:-1])):
            order = np.argsort(times, kind="stable")
            flat = cdr.gather_slices(flat, starts[order], lengths[order])
            lengths = lengths[order]
            starts = np.cumsum(lengths) - lengths
            times = times[order]
        self._batches = [(times, flat, starts, lengths)]
        return times, flat, starts, lengths


@dataclass
class StreamingRunData(RunData):
    """A :class:`RunData` whose streams arrive in parts, for logs larger than memory.

    ``parts`` yields ``(stream name, Dataset)`` pairs as the log is read, a bounded
    piece of the file at a time. The parts of one stream have the same variables and
    non-time coordinates and follow each other in time, so a consumer appends them
    along ``time`` (see :class:`workbench.columnar.ParquetStreamWriter`); ``frame_offset`` of
    encoded-image parts already counts the bytes of the earlier parts. ``streams`` stays
    empty, and ``events``, ``skipped``, ``extra`` and ``factors`` are complete only once
    ``parts`` is exhausted (an MCAP file may keep its metadata records at the end).

    Readers yield it only when asked (``read(..., parts=True)``); :meth:`materialize`
    turns it into an ordinary in-memory run.
    """

    parts: Iterator[tuple[str, xr.Dataset]] = field(default_factory=lambda: iter(()), repr=False)

    def materialize(self) -> RunData:
        """Read every part into memory: an ordinary :class:`RunData` with ``streams``."""
        from workbench.model import concat_parts

        collected: dict[str, list[xr.Dataset]] = {}
        for name, ds in self.parts:
            collected.setdefault(name, []).append(ds)
        streams = {name: concat_parts(dss) for name, dss in collected.items()}
        return RunData(
            key=self.key,
            factors=self.factors,
            streams=streams,
            events=self.events,
            skipped=self.skipped,
            extra=self.extra,
            name=self.name,
        )


def merge_skipped(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum the counts of skipped entries with the same topic and reason (order kept)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        key = (str(e.get("topic")), str(e.get("reason")))
        if key in out:
            out[key]["count"] = int(out[key].get("count", 0)) + int(e.get("count", 0))
        else:
            out[key] = dict(e)
    return list(out.values())


@dataclass
class TopicResult:
    """What one topic decoded into."""

    streams: dict[str, xr.Dataset] = field(default_factory=dict)
    events: pl.DataFrame | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    """Messages decoded into streams or events."""


# --------------------------------------------------------------------------- entry point


def decode_topic(
    buf: TopicBuffer,
    registry: TypeRegistry | ProtobufRegistry | None,
    *,
    events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
    vectorized: bool = True,
) -> TopicResult:
    """Decode one topic's messages into streams, events and skipped entries.

    Parameters
    ----------
    buf
        The topic's raw messages.
    registry
        Message definitions: a :class:`TypeRegistry` for ``cdr``/``ros1`` encodings, a
        :class:`~workbench.io.protobuf.ProtobufRegistry` for ``protobuf``; ``None`` for JSON.
    events_topics
        Topics whose text messages are events (JSON objects with a ``"kind"`` key).
    vectorized
        ``False`` decodes message by message (slow; the reference for tests).
    """
    topic = buf.topic
    log_time, data, starts, lengths = buf.finish()
    n = len(log_time)
    res = TopicResult()
    if n == 0:
        return res
    mtype = normalize_type(buf.message_type)
    is_events = topic in set(events_topics)
    enc = buf.encoding.lower()

    def skip(reason: str, count: int = n) -> TopicResult:
        res.skipped.append({"topic": topic, "reason": reason, "count": int(count)})
        return res

    if enc == "json":
        if is_events:
            payloads = [
                bytes(data[s : s + ln])
                for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True)
            ]
            return _events(res, topic, log_time, payloads)
        return _json_topic(res, buf, log_time, data, starts, lengths)
    if enc == "protobuf":
        got = _decode_protobuf(buf, registry, data, starts, lengths, skip)
        if got is None:
            return res
        cols, notes = got, ""
    else:
        decoded = _decode_ros(buf, registry, mtype, enc, data, starts, lengths, vectorized, skip)
        if decoded is None:
            return res
        cols, notes = decoded
    if cols.bad:
        first = cols.bad[0]
        skip(
            f"cannot decode {buf.message_type} message (first at log time "
            f"{int(log_time[first[0]])}): {first[1]}",
            len(cols.bad),
        )
    if cols.n == 0:
        return res
    times = log_time[cols.rows]
    attrs = {"source": topic, "message_type": buf.message_type, "encoding": buf.encoding}
    if notes:
        attrs["notes"] = notes
    if enc == "protobuf" and is_events and cols.text:
        # a protobuf text message on an events topic: its ``data`` field, else its only string
        texts = cols.text.get("data")
        if texts is None and len(cols.text) == 1:
            texts = next(iter(cols.text.values()))
        if texts is not None:
            return _events(res, topic, times, list(texts))
    if mtype == "std_msgs/msg/String":
        texts = cols.text.get("data")
        if is_events and texts is not None:
            return _events(res, topic, times, list(texts))
        if texts is None:
            return skip(f"{buf.message_type} without its data field", cols.n)
        # free text outside the events topics: a text stream (time, text)
        res.streams[stream_name(topic)] = text_stream(times, texts, attrs={**attrs, "kind": "text"})
        res.messages += cols.n
        return res
    name = stream_name(topic)
    decoder = decoder_for(mtype)
    mapper: _Mapper = (decoder.decode if decoder is not None
                       else _vector_mapper(_VECTOR_SPECS[mtype]) if mtype in _VECTOR_SPECS else _generic)
    out = mapper(name, times, cols, attrs, res)
    res.streams.update(out)
    logged = mtype in _LOG_SCHEMES and _is_rosout(topic)
    if logged:  # ROS log messages: the numeric stream and also one "log" event each
        res.events = _rosout_events(topic, times, cols, _LOG_SCHEMES[mtype])
        for ds in out.values():  # the text beside the numbers: message, node, level name
            if ds.sizes.get("time") == cols.n:
                detail = res.events["detail"].str.json_decode()
                for var, key in (("text", "message"), ("node", "name"), ("level_name", "level")):
                    ds[var] = ("time", np.asarray(detail.struct.field(key).fill_null("").to_list(), dtype=object),
                               {"units": ""})
            ds.attrs["text"] = "also in the run's events (kind 'log')"
    res.messages += cols.n if (out or logged) else 0
    if not out and not logged and not any(s["topic"] == topic for s in res.skipped):
        skip(f"{buf.message_type} has no numeric fields", cols.n)
    return res


def _decode_ros(
    buf: TopicBuffer,
    registry: TypeRegistry | ProtobufRegistry | None,
    mtype: str,
    enc: str,
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    vectorized: bool,
    skip: Callable[[str], Any],
) -> tuple[Columns, str] | None:
    """CDR / ROS 1 payloads → columns and a note; ``None`` when the topic is skipped."""
    n = len(starts)
    if enc not in ("cdr", "ros1"):
        skip(
            f"message encoding {buf.encoding!r} is not supported "
            "(supported: cdr, ros1, json, protobuf)"
        )
        return None
    if mtype.endswith("_Event") and "/srv/" in mtype:
        skip(
            f"service event type {buf.message_type} is not decodable (no library "
            "decodes rosbag2 service events)"
        )
        return None
    if not isinstance(registry, TypeRegistry):  # pragma: no cover - readers pass one
        skip("no message definitions")
        return None
    try:
        plan = registry.plan(mtype)
    except cdr.UnsupportedTypeError as err:
        skip(f"cannot decode type {buf.message_type}: {err}")
        return None

    keep = _needed_leaves(mtype)
    cols = cdr.decode(data, starts, lengths, plan, enc, vectorized=vectorized, keep=keep)
    if keep is not None and not _has_needed(cols, mtype):
        # the definition lacks a field the typed mapping needs: flatten everything instead
        keep = None
        cols = cdr.decode(data, starts, lengths, plan, enc, vectorized=vectorized)
    notes = ""
    if len(cols.bad) == n and registry.has_own(mtype) and registry.has_builtin(mtype):
        # the definition stored in the log is wrong (seen in real bags): try the built-in one
        try:
            alt = cdr.decode(
                data,
                starts,
                lengths,
                registry.plan(mtype, builtin=True),
                enc,
                vectorized=vectorized,
                keep=keep,
            )
        except cdr.UnsupportedTypeError:
            alt = None
        if alt is not None and len(alt.bad) < n:
            notes = (
                f"the definition of {buf.message_type} stored in the log does not match "
                f"the data ({cols.bad[0][1]}); decoded with the built-in "
                f"{'ROS 2 Humble' if registry.flavor == 'ros2' else 'ROS 1 Noetic'} "
                "definition"
            )
            cols = alt
    return cols, notes


def _decode_protobuf(
    buf: TopicBuffer,
    registry: TypeRegistry | ProtobufRegistry | None,
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    skip: Callable[[str], Any],
) -> Columns | None:
    """Protobuf payloads → columns; ``None`` when the topic is skipped (reason recorded)."""
    if not buf.message_type or not isinstance(registry, ProtobufRegistry):
        skip("protobuf channel without an embedded schema (a FileDescriptorSet is needed)")
        return None
    if buf.schema_encoding and buf.schema_encoding != "protobuf":
        skip(
            f"protobuf channel whose schema has encoding {buf.schema_encoding!r} "
            "(expected 'protobuf': a serialized FileDescriptorSet)"
        )
        return None
    try:
        return protobuf.decode(data, starts, lengths, registry, buf.message_type)
    except cdr.UnsupportedTypeError as err:
        skip(f"cannot decode protobuf type {buf.message_type}: {err}")
        return None


def _needed_leaves(mtype: str) -> Callable[[str], bool] | None:
    """The numeric leaves a typed vector mapping reads (``None``: every leaf is needed)."""
    needed = _NEEDED.get(mtype)
    if needed is None:
        return None
    return lambda path: path in needed or path.startswith("header.")


def _has_needed(cols: Columns, mtype: str) -> bool:
    if cols.n == 0:
        return True
    return all(p in cols.numeric and cols.numeric[p].ndim == 1 for p in _NEEDED.get(mtype, ()))


def decode_buffers(
    buffers: Sequence[TopicBuffer],
    registry_for: Callable[[str], TypeRegistry | ProtobufRegistry | None],
    *,
    events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
    vectorized: bool = True,
    names: dict[tuple[str, str, str], str] | None = None,
) -> tuple[dict[str, xr.Dataset], pl.DataFrame, list[dict[str, Any]], dict[str, int]]:
    """Decode every topic of a run (or one part of a run read in parts).

    Returns ``(streams, events, skipped, counts)``: streams by name (a name already
    taken gets a ``-2``, ``-3`` … suffix), the events of every events topic merged and
    sorted by time, skipped entries, and the number of messages read per topic.

    *names* carries the stream names given so far, ``(topic, type, name) → unique
    name``, so that the parts of a run read piece by piece keep the same names.
    """
    import polars as pl

    from workbench.model import empty_events

    streams: dict[str, xr.Dataset] = {}
    skipped: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    event_parts: list[pl.DataFrame] = []
    for buf in sorted(buffers, key=lambda b: (b.topic, b.message_type)):
        counts[buf.topic] = counts.get(buf.topic, 0) + buf.count
        res = decode_topic(
            buf,
            registry_for(buf.encoding.lower()),
            events_topics=events_topics,
            vectorized=vectorized,
        )
        for name, ds in res.streams.items():
            key = (buf.topic, buf.message_type, name)
            unique = names.get(key, "") if names is not None else ""
            if not unique:
                taken = set(streams) | (set(names.values()) if names is not None else set())
                unique = name
                k = 2
                while unique in taken:
                    unique = f"{name}-{k}"
                    k += 1
                if names is not None:
                    names[key] = unique
            streams[unique] = ds
        skipped.extend(res.skipped)
        if res.events is not None and res.events.height:
            event_parts.append(res.events)
    if event_parts:
        events = pl.concat(event_parts).sort("time", maintain_order=True)
    else:
        events = empty_events()
    return streams, events, skipped, counts


def decode_parts(
    batches: Iterable[Sequence[TopicBuffer]],
    registry_for: Callable[[str], TypeRegistry | ProtobufRegistry | None],
    *,
    events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
    done: Callable[[pl.DataFrame, list[dict[str, Any]], dict[str, int]], None],
) -> Iterator[tuple[str, xr.Dataset]]:
    """Decode a log one batch of topic buffers at a time: the parts of a streamed run.

    Each batch (the messages read since the previous one) is decoded with
    :func:`decode_buffers` and its streams are yielded as ``(name, Dataset)`` parts;
    names stay the same from batch to batch and ``frame_offset`` of encoded images
    counts the bytes of the earlier parts. When the batches are exhausted, *done* gets
    the run's events (sorted by time), its skipped entries (merged) and the message
    count per topic. A reader with everything in one batch gets exactly what
    :func:`decode_buffers` gives.
    """
    import polars as pl

    from workbench.model import empty_events

    names: dict[tuple[str, str, str], str] = {}
    byte_offsets: dict[str, int] = {}
    counts: dict[str, int] = {}
    skipped: list[dict[str, Any]] = []
    event_parts: list[pl.DataFrame] = []
    for batch in batches:
        buffers = list(batch)
        streams, events, sk, cnt = decode_buffers(
            buffers, registry_for, events_topics=events_topics, names=names
        )
        buffers.clear()  # the raw payloads can go before the parts are written
        for topic, k in cnt.items():
            counts[topic] = counts.get(topic, 0) + k
        skipped.extend(sk)
        if events.height:
            event_parts.append(events)
        for name in list(streams):
            ds = streams.pop(name)
            if ds.attrs.get("kind") == "image_encoded" and "frame_offset" in ds:
                shift = byte_offsets.get(name, 0)
                byte_offsets[name] = shift + int(ds.sizes.get("byte", 0))
                if shift:
                    ds = ds.assign(frame_offset=ds["frame_offset"] + shift)
            yield name, ds
    events = (
        pl.concat(event_parts).sort("time", maintain_order=True) if event_parts else empty_events()
    )
    done(events, merge_skipped(skipped), counts)


# --------------------------------------------------------------------------- helpers


def _events(
    res: TopicResult, topic: str, times: np.ndarray, payloads: Sequence[Any]
) -> TopicResult:
    texts = ["" if p is None else p for p in payloads]
    df, problems = events_from_json(times, texts, source=topic)
    res.events = df
    res.messages += df.height
    if problems:
        res.skipped.append(
            {
                "topic": topic,
                "reason": "event message is not a JSON object with a 'kind' key "
                f"(first: {problems[0]['reason']})",
                "count": len(problems),
            }
        )
    return res


_LOG_SCHEMES: dict[str, str] = {
    "rosgraph_msgs/msg/Log": "ros1",
    "rcl_interfaces/msg/Log": "ros2",
}
"""ROS log message types and the level scheme of each (see :mod:`workbench.io.loglevels`)."""

ROSOUT_TOPICS: tuple[str, ...] = ("rosout", "rosout_agg")
"""Last name of the topics whose log messages become ``"log"`` events."""


def _is_rosout(topic: str) -> bool:
    return topic.rstrip("/").rsplit("/", 1)[-1] in ROSOUT_TOPICS


def _rosout_events(topic: str, times: np.ndarray, cols: Columns, scheme: str) -> pl.DataFrame:
    """One ``"log"`` event per decoded ROS log message (columns aligned with *times*).

    Built column-wise (the detail JSON is encoded by polars, compact, keys sorted);
    :func:`~workbench.io.loglevels.normalize_level` runs once per distinct raw level.
    """
    import polars as pl

    n = cols.n

    def text(path: str) -> pl.Series:
        arr = cols.text.get(path)
        return pl.Series(path, [None] * n if arr is None else arr.tolist(), dtype=pl.String)

    def ints(path: str) -> pl.Series:
        arr = cols.numeric.get(path)
        if arr is None or arr.ndim != 1:
            return pl.Series(path, [None] * n, dtype=pl.Int64)
        # float with NaN where some messages lack the field
        return pl.Series(path, arr, nan_to_null=arr.dtype.kind == "f").cast(pl.Int64)

    severity = ints("level")
    names = {v: normalize_level(v, scheme) for v in severity.unique().to_list()}
    level = severity.replace_strict(names, default=None, return_dtype=pl.String)
    fields = pl.DataFrame(
        [
            text("file"),
            text("function"),
            level.alias("level"),
            ints("line"),
            text("msg").alias("message"),
            text("name"),
            severity.alias("severity"),
            pl.Series("source", [topic] * n, dtype=pl.String),
        ]
    )
    detail = fields.select(pl.struct(pl.all()).struct.json_encode().alias("detail"))["detail"]
    return pl.DataFrame(
        {
            "time": pl.Series("time", np.asarray(times, dtype=np.int64)),
            "kind": pl.Series("kind", ["log"] * n, dtype=pl.String),
            "detail": detail,
        }
    )


def _header_time(cols: Columns, prefix: str = "header") -> np.ndarray | None:
    sec = cols.numeric.get(f"{prefix}.stamp.sec")
    nsec = cols.numeric.get(f"{prefix}.stamp.nanosec")
    if sec is None or nsec is None or sec.ndim != 1:
        return None
    if sec.dtype.kind == "f" or nsec.dtype.kind == "f":  # missing in some messages
        ok = np.isfinite(sec) & np.isfinite(nsec)
        out = np.zeros(len(sec), dtype=np.int64)
        out[ok] = sec[ok].astype(np.int64) * 1_000_000_000 + nsec[ok].astype(np.int64)
        return out
    return sec.astype(np.int64) * 1_000_000_000 + nsec.astype(np.int64)


def _const_text(cols: Columns, path: str) -> str | None:
    arr = cols.text.get(path)
    if arr is None or len(arr) == 0:
        return None
    first = arr[0]
    if first is None:
        return None
    if len(arr) > 1 and not bool(np.all(arr == first)):
        return None
    return str(first)


def _stack(cols: Columns, prefix: str, comps: Sequence[str]) -> np.ndarray | None:
    keys = [f"{prefix}.{c}" if prefix else c for c in comps]
    if not all(k in cols.numeric and cols.numeric[k].ndim == 1 for k in keys):
        return None
    arrs = [cols.numeric[k] for k in keys]
    joined = _adjacent_columns(arrs)
    if joined is not None:
        return joined
    return np.stack([a.astype(np.float64, copy=False) for a in arrs], axis=1)


def _adjacent_columns(arrs: Sequence[np.ndarray]) -> np.ndarray | None:
    """``(n, k)`` view of float64 columns that lie side by side in one block, else None.

    The decoder reads fields that follow each other (``x, y, z``) as one block, so a
    vector needs no copy here.
    """
    first = arrs[0]
    if first.dtype != np.float64 or first.ndim != 1 or not isinstance(first.base, np.ndarray):
        return None
    addr = first.__array_interface__["data"][0]
    for j, a in enumerate(arrs):
        if (
            a.dtype != np.float64
            or a.base is not first.base
            or a.strides != first.strides
            or a.__array_interface__["data"][0] != addr + 8 * j
        ):
            return None
    return np.lib.stride_tricks.as_strided(
        first,
        shape=(len(first), len(arrs)),
        strides=(first.strides[0], 8),
        writeable=bool(first.flags.writeable),
    )


def _dataset(
    times: np.ndarray,
    header_time: np.ndarray | None,
    data_vars: Mapping[str, tuple[tuple[str, ...], np.ndarray, str]],
    coords: dict[str, Any],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Build a stream; indexes are made directly (xarray's inference is the slow part)."""
    import xarray as xr

    variables: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    for name, values in [("time", np.asarray(times, dtype=np.int64)),
                         *((k, v[1]) for k, v in coords.items())]:  # fmt: skip
        index = _index(name, values)
        indexes[name] = index
        variables.update(index.create_variables())
    if header_time is not None:
        variables["header_time"] = xr.Variable("time", header_time)
    dv = {
        name: xr.Variable(dims, values, attrs={"units": units})
        for name, (dims, values, units) in data_vars.items()
    }
    return xr.Dataset(dv, coords=xr.Coordinates(variables, indexes=indexes), attrs=attrs)


_INDEX_CACHE: dict[tuple[str, tuple[Any, ...], str], Any] = {}


def _index(name: str, values: Any) -> Any:
    """A pandas-backed xarray index for a dimension coordinate (small label sets cached)."""
    import pandas as pd
    import xarray as xr

    arr = np.asarray(values)
    key = None
    if arr.dtype.kind in "USi" and len(arr) <= 64 and name != "time":
        key = (name, tuple(arr.tolist()), arr.dtype.str)
        cached = _INDEX_CACHE.get(key)
        if cached is not None:
            return cached
    index = xr.indexes.PandasIndex(pd.Index(arr, name=name, copy=False), name, coord_dtype=arr.dtype)
    if key is not None and len(_INDEX_CACHE) < 4096:
        _INDEX_CACHE[key] = index
    return index


def _add_note(attrs: dict[str, Any], text: str) -> None:
    attrs["notes"] = f"{attrs['notes']}; {text}" if attrs.get("notes") else text


def _base_attrs(cols: Columns, attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    frame = _const_text(cols, "header.frame_id")
    if frame is not None:
        out["frame_id"] = frame
    return out


# --------------------------------------------------------------------------- typed mappers

# message type → [(variable, field prefix, components, units)]
_VecSpec = tuple[str, str, list[str], str]
_VECTOR_SPECS: dict[str, list[_VecSpec]] = {
    "sensor_msgs/msg/Imu": [
        ("orientation", "orientation", QUAT, "1"),
        ("angular_velocity", "angular_velocity", AXIS, "rad/s"),
        ("linear_acceleration", "linear_acceleration", AXIS, "m/s^2"),
    ],
    "geometry_msgs/msg/Wrench": [
        ("force", "force", AXIS, "N"),
        ("torque", "torque", AXIS, "N*m"),
    ],
    "geometry_msgs/msg/WrenchStamped": [
        ("force", "wrench.force", AXIS, "N"),
        ("torque", "wrench.torque", AXIS, "N*m"),
    ],
    "nav_msgs/msg/Odometry": [
        ("position", "pose.pose.position", AXIS, "m"),
        ("orientation", "pose.pose.orientation", QUAT, "1"),
        ("linear", "twist.twist.linear", AXIS, "m/s"),
        ("angular", "twist.twist.angular", AXIS, "rad/s"),
    ],
    "geometry_msgs/msg/Pose": [
        ("position", "position", AXIS, "m"),
        ("orientation", "orientation", QUAT, "1"),
    ],
    "geometry_msgs/msg/PoseStamped": [
        ("position", "pose.position", AXIS, "m"),
        ("orientation", "pose.orientation", QUAT, "1"),
    ],
    "geometry_msgs/msg/PoseWithCovarianceStamped": [
        ("position", "pose.pose.position", AXIS, "m"),
        ("orientation", "pose.pose.orientation", QUAT, "1"),
    ],
    "geometry_msgs/msg/Twist": [
        ("linear", "linear", AXIS, "m/s"),
        ("angular", "angular", AXIS, "rad/s"),
    ],
    "geometry_msgs/msg/TwistStamped": [
        ("linear", "twist.linear", AXIS, "m/s"),
        ("angular", "twist.angular", AXIS, "rad/s"),
    ],
    "geometry_msgs/msg/TwistWithCovarianceStamped": [
        ("linear", "twist.twist.linear", AXIS, "m/s"),
        ("angular", "twist.twist.angular", AXIS, "rad/s"),
    ],
    "geometry_msgs/msg/Accel": [
        ("linear", "linear", AXIS, "m/s^2"),
        ("angular", "angular", AXIS, "rad/s^2"),
    ],
    "geometry_msgs/msg/AccelStamped": [
        ("linear", "accel.linear", AXIS, "m/s^2"),
        ("angular", "accel.angular", AXIS, "rad/s^2"),
    ],
    "geometry_msgs/msg/Vector3": [("vector", "", AXIS, "")],
    "geometry_msgs/msg/Vector3Stamped": [("vector", "vector", AXIS, "")],
    "geometry_msgs/msg/Point": [("position", "", AXIS, "m")],
    "geometry_msgs/msg/PointStamped": [("position", "point", AXIS, "m")],
    "geometry_msgs/msg/Quaternion": [("orientation", "", QUAT, "1")],
    "geometry_msgs/msg/QuaternionStamped": [("orientation", "quaternion", QUAT, "1")],
    "geometry_msgs/msg/Transform": [
        ("translation", "translation", AXIS, "m"),
        ("rotation", "rotation", QUAT, "1"),
    ],
    "geometry_msgs/msg/TransformStamped": [
        ("translation", "transform.translation", AXIS, "m"),
        ("rotation", "transform.rotation", QUAT, "1"),
    ],
}

_NEEDED: dict[str, frozenset[str]] = {
    mtype: frozenset(f"{prefix}.{c}" if prefix else c for _, prefix, comps, _ in specs for c in comps)
    for mtype, specs in _VECTOR_SPECS.items()
}
"""Leaves each typed vector mapping reads; the others (covariances…) are not decoded."""

_Mapper = Callable[[str, "np.ndarray", Columns, dict[str, Any], "TopicResult"], "dict[str, xr.Dataset]"]


def _vector_mapper(specs: list[_VecSpec]) -> _Mapper:
    def mapper(
        name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
    ) -> dict[str, xr.Dataset]:
        dv: dict[str, tuple[tuple[str, ...], np.ndarray, str]] = {}
        coords: dict[str, Any] = {}
        for var, prefix, comps, units in specs:
            vals = _stack(cols, prefix, comps)
            if vals is None:  # the definition in the log lacks the field: flatten instead
                return _generic(name, times, cols, attrs, res)
            dim = "quat" if comps is QUAT else "axis"
            coords[dim] = (dim, list(comps))
            dv[var] = (("time", dim), vals, units)
        a = _base_attrs(cols, attrs)
        child = _const_text(cols, "child_frame_id")
        if child is not None:
            a["child_frame"] = child
            if "frame_id" in a:
                a["parent_frame"] = a["frame_id"]
        return {name: _dataset(times, _header_time(cols), dv, coords, a)}

    return mapper


def _joint_state(
    name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
) -> dict[str, xr.Dataset]:
    fields = [("position", "rad|m"), ("velocity", "rad/s|m/s"), ("effort", "N*m|N")]
    name_cols = []
    k = 0
    while f"name[{k}]" in cols.text:
        name_cols.append(cols.text[f"name[{k}]"])
        k += 1
    n = cols.n
    regular = all(f not in cols.ragged for f, _ in fields) and all(
        c[0] is not None and bool(np.all(c == c[0])) for c in name_cols
    )
    dv: dict[str, tuple[tuple[str, ...], np.ndarray, str]] = {}
    notes: list[str] = []
    if regular:
        names = [str(c[0]) for c in name_cols]
        for f, units in fields:
            arr = cols.numeric.get(f)
            if arr is None or arr.ndim != 2 or arr.shape[1] == 0:
                continue
            if not names:
                names = [f"joint_{i}" for i in range(arr.shape[1])]
            if arr.shape[1] != len(names):
                notes.append(f"{f} has {arr.shape[1]} values for {len(names)} joints: omitted")
                continue
            dv[f] = (("time", "joint"), arr.astype(np.float64, copy=False), units)
    else:
        # joint names (or counts) change between messages: union of names, NaN elsewhere
        row_names: list[tuple[str, ...]] = []
        for i in range(n):
            row_names.append(tuple(str(c[i]) for c in name_cols if c[i] is not None))
        names = []
        index: dict[str, int] = {}
        for tup in row_names:
            for nm in tup:
                if nm not in index:
                    index[nm] = len(names)
                    names.append(nm)
        for f, units in fields:
            rows_vals: list[np.ndarray] | None = None
            if f in cols.ragged:
                rg = cols.ragged[f]
                rows_vals = [rg.row(i) for i in range(n)]
            elif f in cols.numeric and cols.numeric[f].ndim == 2:
                arr = cols.numeric[f]
                rows_vals = [arr[i] for i in range(n)]
            if rows_vals is None or not any(len(v) for v in rows_vals):
                continue
            out = np.full((n, len(names)), np.nan)
            mismatched = 0
            for i, vals in enumerate(rows_vals):
                if len(vals) == 0:
                    continue
                tup = row_names[i]
                if len(vals) != len(tup):
                    mismatched += 1
                    continue
                out[i, [index[nm] for nm in tup]] = vals
            if mismatched:
                notes.append(f"{f}: {mismatched} messages with a value count unlike the names")
            dv[f] = (("time", "joint"), out, units)
    a = _base_attrs(cols, attrs)
    if notes:
        _add_note(a, "; ".join(notes))
    if not dv:
        return {}
    return {name: _dataset(times, _header_time(cols), dv, {"joint": ("joint", names)}, a)}


def _tf(
    name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
) -> dict[str, xr.Dataset]:
    entries_rows: list[np.ndarray] = []
    entries_child: list[np.ndarray] = []
    entries_parent: list[np.ndarray] = []
    entries_stamp: list[np.ndarray] = []
    entries_tr: list[np.ndarray] = []
    entries_rot: list[np.ndarray] = []
    k = 0
    while f"transforms[{k}].child_frame_id" in cols.text:
        p = f"transforms[{k}]"
        child = cols.text[f"{p}.child_frame_id"]
        ok = np.array([c is not None for c in child], dtype=bool)
        rows = np.nonzero(ok)[0]
        tr = _stack(cols, f"{p}.transform.translation", AXIS)
        rot = _stack(cols, f"{p}.transform.rotation", QUAT)
        stamp = _header_time(cols, f"{p}.header")
        parent = cols.text.get(f"{p}.header.frame_id")
        if tr is None or rot is None or stamp is None or parent is None:
            k += 1
            continue
        entries_rows.append(rows)
        entries_child.append(child[rows])
        entries_parent.append(parent[rows])
        entries_stamp.append(stamp[rows])
        entries_tr.append(tr[rows])
        entries_rot.append(rot[rows])
        k += 1
    if k > cdr.MAX_STRUCT_SEQUENCE:
        res.skipped.append(
            {
                "topic": attrs["source"],
                "reason": f"message with more than {cdr.MAX_STRUCT_SEQUENCE} transforms",
                "count": 1,
            }
        )
    if not entries_rows:
        return {}
    rows = np.concatenate(entries_rows)
    child = np.concatenate(entries_child)
    parent = np.concatenate(entries_parent)
    stamp = np.concatenate(entries_stamp)
    tr = np.concatenate(entries_tr)
    rot = np.concatenate(entries_rot)
    out: dict[str, xr.Dataset] = {}
    for frame in sorted(set(child.tolist())):
        sel = np.nonzero(child == frame)[0]
        sel = sel[np.argsort(rows[sel], kind="stable")]
        parents = parent[sel]
        uniq, counts = np.unique(parents.astype(str), return_counts=True)
        a = dict(attrs)
        a["child_frame"] = frame
        a["parent_frame"] = str(uniq[np.argmax(counts)])
        if len(uniq) > 1:
            _add_note(a, f"parent frame changes: {', '.join(map(str, uniq))}")
        ds = _dataset(
            times[rows[sel]],
            stamp[sel],
            {
                "translation": (("time", "axis"), tr[sel], "m"),
                "rotation": (("time", "quat"), rot[sel], "1"),
            },
            {"axis": ("axis", AXIS), "quat": ("quat", QUAT)},
            a,
        )
        sname = f"{name}.{stream_name(frame)}"
        out[sname] = ds
    return out


_IMAGE_ENCODINGS: dict[str, tuple[int, str, list[str] | None]] = {
    "mono8": (1, "u1", None),
    "8uc1": (1, "u1", None),
    "mono16": (1, "u2", None),
    "16uc1": (1, "u2", None),
    "rgb8": (3, "u1", ["r", "g", "b"]),
    "bgr8": (3, "u1", ["b", "g", "r"]),
    "8uc3": (3, "u1", None),
    "rgba8": (4, "u1", ["r", "g", "b", "a"]),
    "bgra8": (4, "u1", ["b", "g", "r", "a"]),
    "8uc4": (4, "u1", None),
    "rgb16": (3, "u2", ["r", "g", "b"]),
    "bgr16": (3, "u2", ["b", "g", "r"]),
    "32fc1": (1, "f4", None),
}


def _blob(cols: Columns, path: str) -> Ragged | None:
    if path in cols.ragged:
        return cols.ragged[path]
    arr = cols.numeric.get(path)
    if arr is None or arr.ndim != 2:
        return None
    n, k = arr.shape
    return Ragged(values=arr.reshape(-1), offsets=np.arange(n + 1, dtype=np.int64) * k)


def _compressed_image(
    name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
) -> dict[str, xr.Dataset]:
    blob = _blob(cols, "data")
    if blob is None:
        return {}
    fmt_col = cols.text.get("format")
    formats = [] if fmt_col is None else [str(f).lower() for f in fmt_col]
    fmt = ""
    if formats:
        values, counts = np.unique(np.array(formats), return_counts=True)
        common = str(values[np.argmax(counts)])
        fmt = (
            "png"
            if "png" in common
            else "jpeg"
            if ("jpeg" in common or "jpg" in common)
            else common
        )
    a = _base_attrs(cols, attrs)
    a["kind"] = "image_encoded"
    a["format"] = fmt
    offsets = blob.offsets.astype(np.int64)
    dv = {
        "frame_offset": (("time",), offsets[:-1].copy(), "byte"),
        "frame_size": (("time",), np.diff(offsets), "byte"),
        "data": (("byte",), blob.values.astype(np.uint8, copy=False), "1"),
    }
    return {name: _dataset(times, _header_time(cols), dv, {}, a)}


def _raw_image(
    name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
) -> dict[str, xr.Dataset]:
    topic = attrs["source"]
    n = cols.n

    def skip(reason: str) -> dict[str, xr.Dataset]:
        res.skipped.append({"topic": topic, "reason": reason, "count": n})
        return {}

    enc = _const_text(cols, "encoding")
    h = cols.numeric.get("height")
    w = cols.numeric.get("width")
    step = cols.numeric.get("step")
    big = cols.numeric.get("is_bigendian")
    blob = _blob(cols, "data")
    if enc is None or h is None or w is None or step is None or blob is None:
        return skip("image encoding or size changes between messages (not supported)")
    if not (np.all(h == h[0]) and np.all(w == w[0]) and np.all(step == step[0])):
        return skip("image size changes between messages (not supported)")
    spec = _IMAGE_ENCODINGS.get(enc.lower())
    if spec is None:
        return skip(
            f"image encoding {enc!r} is not supported "
            f"(supported: {', '.join(sorted(_IMAGE_ENCODINGS))})"
        )
    ch, code, labels = spec
    height, width, stride = int(h[0]), int(w[0]), int(step[0])
    itemsize = np.dtype(code).itemsize
    row_bytes = width * ch * itemsize
    sizes = np.diff(blob.offsets)
    if stride < row_bytes or not np.all(sizes == height * stride):
        return skip("image data size does not match height x step")
    endian = ">" if big is not None and bool(big[0]) else "<"
    raw = blob.values.reshape(n, height, stride)[:, :, :row_bytes]
    pixels = np.ascontiguousarray(raw).view(np.dtype(endian + code)).reshape(n, height, width, ch)
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    a = _base_attrs(cols, attrs)
    a["kind"] = "image"
    a["image_encoding"] = enc
    coords: dict[str, Any] = {}
    dv: dict[str, tuple[tuple[str, ...], np.ndarray, str]]
    if ch == 1:
        dv = {"image": (("time", "y", "x"), pixels[..., 0], "1")}
    else:
        dv = {"image": (("time", "y", "x", "channel"), pixels, "1")}
        coords["channel"] = ("channel", labels or [str(i) for i in range(ch)])
    return {name: _dataset(times, _header_time(cols), dv, coords, a)}


# units of well-known scalar fields (type → path → units) and renames
_FIELD_UNITS: dict[str, dict[str, str]] = {
    "sensor_msgs/msg/BatteryState": {
        "voltage": "V",
        "temperature": "degC",
        "current": "A",
        "charge": "Ah",
        "capacity": "Ah",
        "design_capacity": "Ah",
        "percentage": "1",
        "cell_voltage": "V",
        "cell_temperature": "degC",
    },
    "sensor_msgs/msg/NavSatFix": {
        "latitude": "deg",
        "longitude": "deg",
        "altitude": "m",
        "position_covariance": "m^2",
        "status": "1",
        "service": "1",
    },
    "sensor_msgs/msg/Temperature": {"temperature": "degC", "variance": "degC^2"},
    "sensor_msgs/msg/FluidPressure": {"fluid_pressure": "Pa", "variance": "Pa^2"},
    "sensor_msgs/msg/Range": {
        "range": "m",
        "min_range": "m",
        "max_range": "m",
        "field_of_view": "rad",
    },
    "sensor_msgs/msg/LaserScan": {
        "ranges": "m",
        "angle_min": "rad",
        "angle_max": "rad",
        "angle_increment": "rad",
        "time_increment": "s",
        "scan_time": "s",
        "range_min": "m",
        "range_max": "m",
    },
}
_RENAMES: dict[str, dict[str, str]] = {
    "sensor_msgs/msg/NavSatFix": {"status.status": "status", "status.service": "service"},
}


def _generic(
    name: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any], res: TopicResult
) -> dict[str, xr.Dataset]:
    mtype = normalize_type(attrs.get("message_type", ""))
    units_of = _FIELD_UNITS.get(mtype, {})
    renames = _RENAMES.get(mtype, {})
    dv: dict[str, tuple[tuple[str, ...], np.ndarray, str]] = {}
    coords: dict[str, Any] = {}
    ignored: list[str] = []
    numeric = dict(cols.numeric)
    # sec/nanosec pairs → one int64 ns variable
    for path in list(numeric):
        if path.endswith(".sec") and not path.startswith("header."):
            stem = path[: -len(".sec")]
            ns_path = f"{stem}.nanosec"
            if ns_path in numeric and numeric[path].ndim == 1 and numeric[ns_path].ndim == 1:
                sec, nsec = numeric.pop(path), numeric.pop(ns_path)
                if sec.dtype.kind == "f" or nsec.dtype.kind == "f":
                    val = np.where(np.isfinite(sec) & np.isfinite(nsec), sec * 1e9 + nsec, np.nan)
                    dv[stem] = (("time",), val, "ns")
                else:
                    dv[stem] = (("time",), sec.astype(np.int64) * 1_000_000_000 + nsec, "ns")
    for path, arr in numeric.items():
        if path.startswith("header."):
            continue
        var = renames.get(path, path)
        units = units_of.get(var, "")
        if arr.ndim == 1:
            dv[var] = (("time",), arr, units)
        elif arr.shape[1] == 0:
            continue
        else:
            dim = f"{var}.index"
            coords[dim] = (dim, np.arange(arr.shape[1]))
            dv[var] = (("time", dim), arr, units)
    for path, rg in cols.ragged.items():
        var = renames.get(path, path)
        if rg.values.dtype.itemsize == 1 and rg.values.dtype.kind in "ui":
            ignored.append(f"{path} (variable-length byte array)")
            continue
        lens = rg.lengths
        width = int(lens.max()) if len(lens) else 0
        if width == 0:
            continue
        out = np.full((cols.n, width), np.nan)
        rows = np.repeat(np.arange(cols.n), lens)
        within = np.arange(len(rg.values)) - np.repeat(rg.offsets[:-1], lens)
        out[rows, within] = rg.values
        dim = f"{var}.index"
        coords[dim] = (dim, np.arange(width))
        dv[var] = (("time", dim), out, units_of.get(var, ""))
    for path in cols.text:
        if not path.startswith("header."):
            ignored.append(f"{path} (string)")
    if not dv:
        return {}
    a = _base_attrs(cols, attrs)
    if ignored:
        a["ignored"] = ", ".join(ignored)
    return {name: _dataset(times, _header_time(cols), dv, coords, a)}


# --------------------------------------------------------------------------- decoder plugins


@runtime_checkable
class Decoder(Protocol):
    """A stream decoder plugin: the columns of one topic's messages → streams.

    ``message_types`` lists the (normalized, ``pkg/msg/Type``) message types it
    decodes. :meth:`decode` gets the stream name, the messages' log times (int64 ns),
    their fields as :class:`~workbench.io.cdr.Columns` (numeric leaves as arrays,
    text leaves as lists, ragged sequences apart), the topic's attributes, and the
    :class:`TopicResult` (to record skipped messages); it returns Datasets by stream
    name, each with a ``time`` dimension. Decoders register under the entry-point group
    ``workbench.decoders`` (the built-ins too); a run-time one
    (``DECODERS.register(cls)``) wins over an entry point for the same message type.
    """

    name: str
    message_types: tuple[str, ...]

    def decode(self, stream: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any],
               res: TopicResult) -> dict[str, xr.Dataset]:
        """Datasets by stream name."""


class _BuiltinDecoder:
    """A built-in decoder: the mapping function *convert* of this module for its types."""

    name: ClassVar[str] = ""
    message_types: ClassVar[tuple[str, ...]] = ()
    convert: ClassVar[staticmethod[[str, np.ndarray, Columns, dict[str, Any], TopicResult], dict[str, xr.Dataset]]]

    def decode(self, stream: str, times: np.ndarray, cols: Columns, attrs: dict[str, Any],
               res: TopicResult) -> dict[str, xr.Dataset]:
        return self.convert(stream, times, cols, attrs, res)


class JointStateDecoder(_BuiltinDecoder):
    """``sensor_msgs/JointState`` → ``position``/``velocity``/``effort`` on ``(time, joint)``."""

    name = "joint_state"
    message_types = ("sensor_msgs/msg/JointState",)
    convert = staticmethod(_joint_state)


class TfDecoder(_BuiltinDecoder):
    """``tf2_msgs/TFMessage`` → one stream per parent → child frame pair."""

    name = "tf"
    message_types = ("tf2_msgs/msg/TFMessage", "tf/msg/tfMessage")
    convert = staticmethod(_tf)


class CompressedImageDecoder(_BuiltinDecoder):
    """Compressed images (ROS and Foxglove) → an encoded-image stream."""

    name = "compressed_image"
    message_types = ("sensor_msgs/msg/CompressedImage", "foxglove.CompressedImage")
    convert = staticmethod(_compressed_image)


class RawImageDecoder(_BuiltinDecoder):
    """Raw images (ROS and Foxglove) → pixels on ``(time, y, x, channel)``."""

    name = "raw_image"
    message_types = ("sensor_msgs/msg/Image", "foxglove.RawImage")
    convert = staticmethod(_raw_image)


def _make_decoder(cls: Any) -> Decoder:
    decoder = cls()
    types = getattr(decoder, "message_types", None)
    if not isinstance(types, tuple) or not types or not all(isinstance(t, str) and t for t in types):
        msg = f"decoder {cls!r}: message_types must be a non-empty tuple of message type names"
        raise ConfigError(msg)
    if not callable(getattr(decoder, "decode", None)):
        msg = f"decoder {cls!r} has no decode()"
        raise ConfigError(msg)
    return decoder  # type: ignore[no-any-return]


DECODERS: Registry[Decoder] = Registry(
    "workbench.decoders", "decoder", make=_make_decoder,
    builtins={c.name: c for c in (JointStateDecoder, TfDecoder, CompressedImageDecoder, RawImageDecoder)},
)
"""The installed stream decoders (entry points of ``workbench.decoders``, then run-time ones)."""

_BY_TYPE: tuple[dict[str, Decoder], dict[str, Decoder]] | None = None


def decoder_for(message_type: str) -> Decoder | None:
    """The decoder plugin for *message_type* (normalized), or ``None`` (then typed
    vectors, or every numeric leaf flattened).

    Examples
    --------
    >>> decoder_for("sensor_msgs/msg/JointState").name
    'joint_state'
    >>> decoder_for("std_msgs/msg/Float64") is None
    True
    """
    global _BY_TYPE
    found = DECODERS.all()
    if _BY_TYPE is None or _BY_TYPE[0] is not found:
        by_type: dict[str, Decoder] = {}
        for decoder in found.values():  # later ones (run-time) win
            for mtype in decoder.message_types:
                by_type[normalize_type(mtype)] = decoder
        _BY_TYPE = (found, by_type)
    return _BY_TYPE[1].get(message_type)


# --------------------------------------------------------------------------- JSON


def _json_topic(
    res: TopicResult,
    buf: TopicBuffer,
    times: np.ndarray,
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> TopicResult:
    """JSON messages: numeric fields (nested objects flattened with dots) become variables."""
    import polars as pl

    topic = buf.topic
    n = len(times)
    # newline-delimited JSON built without a Python object per message
    total = int(lengths.sum())
    ndjson = np.full(total + n, ord("\n"), dtype=np.uint8)
    keep = np.ones(total + n, dtype=bool)
    keep[starts + lengths + np.arange(n)] = False
    ndjson[keep] = (
        cdr.gather_slices(data, starts, lengths)
        if (n and (starts[0] != 0 or len(data) != total))
        else data[:total]
    )
    try:
        df = pl.read_ndjson(ndjson.tobytes(), infer_schema_length=None)
    except Exception:  # noqa: BLE001 - mixed schemas: fall back to json.loads per message
        df = None
    if df is None or df.height != n:
        payloads = [
            bytes(data[s : s + ln]) for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True)
        ]
        rows: list[dict[str, Any]] = []
        bad = 0
        for p in payloads:
            try:
                obj = json.loads(p)
            except (json.JSONDecodeError, UnicodeDecodeError):
                obj = None
            if not isinstance(obj, dict):
                bad += 1
                obj = {}
            rows.append(_flatten_json(obj))
        if bad:
            res.skipped.append(
                {"topic": topic, "reason": "message is not a JSON object", "count": bad}
            )
        df = pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()
    df = _unnest_all(df)
    dv: dict[str, tuple[tuple[str, ...], np.ndarray, str]] = {}
    coords: dict[str, Any] = {}
    ignored: list[str] = []
    for col in df.columns:
        s = df[col]
        if s.dtype.is_numeric() or s.dtype == pl.Boolean:
            vals = s.cast(pl.Float64).to_numpy() if s.null_count() else s.to_numpy()
            dv[col] = (("time",), vals, "")
        elif isinstance(s.dtype, pl.List | pl.Array) and s.dtype.inner.is_numeric():  # type: ignore[union-attr]
            lens = s.list.len().to_numpy() if isinstance(s.dtype, pl.List) else None
            if lens is not None and (s.null_count() or not np.all(lens == lens[0])):
                ignored.append(f"{col} (variable-length list)")
                continue
            arr = np.asarray(s.to_list(), dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] == 0:
                continue
            dim = f"{col}.index"
            coords[dim] = (dim, np.arange(arr.shape[1]))
            dv[col] = (("time", dim), arr, "")
        else:
            ignored.append(f"{col} ({s.dtype})")
    if not dv:
        res.skipped.append(
            {"topic": topic, "reason": "JSON messages have no numeric fields", "count": n}
        )
        return res
    attrs = {"source": topic, "message_type": buf.message_type, "encoding": buf.encoding}
    if ignored:
        attrs["ignored"] = ", ".join(ignored)
    res.streams[stream_name(topic)] = _dataset(times, None, dv, coords, attrs)
    res.messages += n
    return res


def _flatten_json(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten_json(v, f"{key}."))
        elif isinstance(v, bool | int | float) or v is None:
            out[key] = v
        else:
            out[key] = json.dumps(v)
    return out


def _unnest_all(df: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    while True:
        structs = [c for c in df.columns if isinstance(df[c].dtype, pl.Struct)]
        if not structs:
            return df
        for c in structs:
            fields = df[c].struct.fields
            df = df.with_columns([df[c].struct.field(f).alias(f"{c}.{f}") for f in fields]).drop(c)
