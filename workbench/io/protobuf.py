"""Protobuf messages (MCAP ``protobuf`` encoding) → the columns the message mapping uses.

An MCAP channel with message encoding ``protobuf`` carries, in its schema record
(encoding ``protobuf``), a serialized ``google.protobuf.FileDescriptorSet`` and the full
name of the message type. :class:`ProtobufRegistry` builds the message class from it
(one descriptor pool per schema, so two schemas never clash), and :func:`decode` parses
every payload and flattens it into :class:`~workbench.io.cdr.Columns`, which
:mod:`workbench.io.messages` maps to streams like any other encoding.

Flattening (paths as for ROS messages):

* numeric and bool scalars, enums (their number) → ``field`` / ``parent.field``;
  a field that a message does not carry (a message field not set, an ``optional`` or
  ``oneof`` member not set) is NaN there;
* repeated numbers → ``(time, field.index)`` when every message has the same count,
  else a ragged column (NaN-padded by the mapping);
* repeated messages → ``field[0].sub``, ``field[1].sub`` … (at most
  :data:`~workbench.io.cdr.MAX_STRUCT_SEQUENCE` elements); maps → ``field.<key>``;
* ``google.protobuf.Timestamp`` / ``Duration`` → ``field.sec`` and ``field.nanosec``,
  which the mapping joins into one int64 nanosecond variable;
* the sensor's own time: a ``header.stamp`` field, or — the Foxglove convention — a
  top-level ``timestamp`` Timestamp, becomes the stream's ``header_time``; a top-level
  ``frame_id`` string becomes its ``frame_id`` attribute;
* strings and repeated strings are text columns (ignored by the numeric mapping, listed
  in the stream's ``ignored`` attribute); ``bytes`` are byte blobs (an image's ``data``).

The optional ``protobuf`` package is imported only when a protobuf channel is decoded;
without it the channel is skipped with that reason.

Examples
--------
>>> reg = ProtobufRegistry()
>>> reg.add("pkg.Missing", b"")
>>> try:
...     reg.message_class("pkg.Other")
... except Exception as err:
...     print(type(err).__name__)
UnsupportedTypeError
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.io.cdr import MAX_STRUCT_SEQUENCE, Columns, Ragged, UnsupportedTypeError

__all__ = ["MAX_DEPTH", "ProtobufRegistry", "decode"]

MAX_DEPTH = 12
"""Nested messages deeper than this are not flattened (recursive types such as Struct)."""

_TIME_TYPES = ("google.protobuf.Timestamp", "google.protobuf.Duration")


class ProtobufRegistry:
    """Protobuf schemas found in one log: message type name → serialized FileDescriptorSet."""

    def __init__(self) -> None:
        self.schemas: dict[str, list[bytes]] = {}

    def add(self, name: str, data: bytes) -> None:
        """Register a schema of message type *name* (a log may hold several of one name)."""
        known = self.schemas.setdefault(name, [])
        if bytes(data) not in known:
            known.append(bytes(data))

    def message_class(self, name: str) -> Any:
        """The message class of *name*, from the first of its schemas that builds.

        Raises :class:`UnsupportedTypeError` (with the first schema's problem) otherwise.
        """
        candidates = self.schemas.get(name)
        if not candidates:
            msg = f"no protobuf schema named {name!r} is embedded in the log"
            raise UnsupportedTypeError(msg)
        first: UnsupportedTypeError | None = None
        for data in candidates:
            try:
                return _build_class(name, data)
            except UnsupportedTypeError as err:
                first = first or err
        assert first is not None
        raise first


@functools.lru_cache(maxsize=256)
def _build_class(name: str, data: bytes) -> Any:
    """Build the message class of *name* from its FileDescriptorSet (once per process)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from google.protobuf.message import DecodeError
    except ImportError as err:
        msg = "the optional protobuf package is not installed (pip install protobuf)"
        raise UnsupportedTypeError(msg) from err
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(data)
    except DecodeError as err:
        msg = f"schema of {name!r} is not a serialized FileDescriptorSet: {err}"
        raise UnsupportedTypeError(msg) from err
    pool = descriptor_pool.DescriptorPool()
    files = {f.name: f for f in fds.file}
    added: set[str] = set()

    def add(fname: str, chain: tuple[str, ...]) -> None:
        if fname in added:
            return
        if fname in chain:
            msg = f"schema of {name!r}: import cycle through {fname!r}"
            raise UnsupportedTypeError(msg)
        proto = files.get(fname)
        if proto is None:
            # a well-known type (timestamp.proto …) the writer left out: take the bundled one
            try:
                found = descriptor_pool.Default().FindFileByName(fname)
            except KeyError:
                msg = f"schema of {name!r} imports {fname!r}, which the FileDescriptorSet lacks"
                raise UnsupportedTypeError(msg) from None
            proto = descriptor_pb2.FileDescriptorProto()
            found.CopyToProto(proto)
        for dep in proto.dependency:
            add(dep, (*chain, fname))
        try:
            pool.Add(proto)
        except (TypeError, ValueError, KeyError) as err:
            msg = f"schema of {name!r}: file {fname!r} does not build: {err}"
            raise UnsupportedTypeError(msg) from err
        added.add(fname)

    for fname in files:
        add(fname, ())
    try:
        desc = pool.FindMessageTypeByName(name)
    except KeyError:
        msg = f"the FileDescriptorSet of schema {name!r} does not define that message type"
        raise UnsupportedTypeError(msg) from None
    return message_factory.GetMessageClass(desc)


# --------------------------------------------------------------------------- flattening

_NUM, _TEXT, _REP, _BYTES = 0, 1, 2, 3


class _Sink:
    """Values of every leaf path, one slot per decoded message."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.cols: dict[str, tuple[int, Any, list[Any]]] = {}

    def put(self, kind: int, path: str, dtype: Any, row: int, value: Any) -> None:
        col = self.cols.get(path)
        if col is None:
            col = self.cols[path] = (kind, dtype, [None] * self.n)
        col[2][row] = value

    def put_many(self, specs: tuple[tuple[str, int, Any], ...], row: int, values: Any) -> None:
        """Put the values of several leaves (``specs``: path, kind, dtype) at once."""
        cols = self.cols
        for (path, kind, dtype), value in zip(specs, values, strict=True):
            col = cols.get(path)
            if col is None:
                col = cols[path] = (kind, dtype, [None] * self.n)
            col[2][row] = value


def _dtype(field: Any) -> Any:
    from google.protobuf.descriptor import FieldDescriptor as F

    return {
        F.CPPTYPE_INT32: np.int32,
        F.CPPTYPE_INT64: np.int64,
        F.CPPTYPE_UINT32: np.uint32,
        F.CPPTYPE_UINT64: np.uint64,
        F.CPPTYPE_DOUBLE: np.float64,
        F.CPPTYPE_FLOAT: np.float32,
        F.CPPTYPE_BOOL: np.bool_,
        F.CPPTYPE_ENUM: np.int32,
    }.get(field.cpp_type)


@functools.lru_cache(maxsize=1024)
def _walker(desc: Any, prefix: str, depth: int, root: bool) -> Callable[[Any, _Sink, int], None]:
    """A function that puts every leaf of one message of type *desc* into a sink."""
    from google.protobuf.descriptor import FieldDescriptor as F

    if desc.full_name in _TIME_TYPES:
        time_specs = ((f"{prefix}sec", _NUM, np.int64), (f"{prefix}nanosec", _NUM, np.int64))
        time_get = operator.attrgetter("seconds", "nanos")

        def time_walk(msg: Any, sink: _Sink, row: int) -> None:
            sink.put_many(time_specs, row, time_get(msg))

        return time_walk
    steps: list[Callable[[Any, _Sink, int], None]] = []
    plain: list[tuple[str, tuple[str, int, Any]]] = []  # scalars read with one attrgetter
    names = {f.name for f in desc.fields}
    for field in desc.fields:
        fname = field.name
        path = f"{prefix}{fname}"
        if root and "header" not in names:
            if fname == "timestamp" and field.message_type is not None and (
                field.message_type.full_name == "google.protobuf.Timestamp"
            ):
                path = "header.stamp"
            elif fname == "frame_id" and field.cpp_type == F.CPPTYPE_STRING:
                path = "header.frame_id"
        if not field.is_repeated and not field.has_presence and field.cpp_type != F.CPPTYPE_MESSAGE:
            kind = _NUM
            if field.cpp_type == F.CPPTYPE_STRING:
                kind = _BYTES if field.type == F.TYPE_BYTES else _TEXT
            plain.append((fname, (path, kind, _dtype(field))))
        else:
            steps.append(_field_step(field, path, depth))
    specs = tuple(spec for _n, spec in plain)
    getter = operator.attrgetter(*(n for n, _s in plain)) if plain else None
    single = len(plain) == 1

    def walk(msg: Any, sink: _Sink, row: int) -> None:
        if getter is not None:
            values = getter(msg)
            sink.put_many(specs, row, (values,) if single else values)
        for step in steps:
            step(msg, sink, row)

    return walk


def _field_step(field: Any, path: str, depth: int) -> Callable[[Any, _Sink, int], None]:
    from google.protobuf.descriptor import FieldDescriptor as F

    fname = field.name
    cpp = field.cpp_type

    def nothing(msg: Any, sink: _Sink, row: int) -> None:
        return None

    if cpp == F.CPPTYPE_MESSAGE:
        sub = field.message_type
        if depth >= MAX_DEPTH:
            return nothing
        if field.is_repeated and sub.GetOptions().map_entry:
            value_field = sub.fields_by_name["value"]
            by_key: dict[Any, Callable[[Any, _Sink, int], None]] = {}

            def map_step(msg: Any, sink: _Sink, row: int) -> None:
                entries = getattr(msg, fname)
                for i, key in enumerate(sorted(entries)):
                    if i >= MAX_STRUCT_SEQUENCE:
                        break
                    step = by_key.get(key)
                    if step is None:
                        step = _field_step(value_field, f"{path}.{key}", depth + 1)
                        if len(by_key) < 4 * MAX_STRUCT_SEQUENCE:
                            by_key[key] = step
                    step(_MapValue(entries[key]), sink, row)

            return map_step
        if field.is_repeated:

            def rep_msg_step(msg: Any, sink: _Sink, row: int) -> None:
                for i, item in enumerate(getattr(msg, fname)):
                    if i >= MAX_STRUCT_SEQUENCE:
                        break
                    _walker(sub, f"{path}[{i}].", depth + 1, False)(item, sink, row)

            return rep_msg_step
        walk_sub = _walker(sub, f"{path}.", depth + 1, False)

        def msg_step(msg: Any, sink: _Sink, row: int) -> None:
            if msg.HasField(fname):
                walk_sub(getattr(msg, fname), sink, row)

        return msg_step
    if cpp == F.CPPTYPE_STRING:
        is_bytes = field.type == F.TYPE_BYTES
        if field.is_repeated:
            if is_bytes:
                return nothing

            def rep_text_step(msg: Any, sink: _Sink, row: int) -> None:
                for i, s in enumerate(getattr(msg, fname)):
                    sink.put(_TEXT, f"{path}[{i}]", None, row, s)

            return rep_text_step
        kind = _BYTES if is_bytes else _TEXT
        return _scalar_step(fname, path, kind, None, field.has_presence)
    dtype = _dtype(field)
    if field.is_repeated:

        def rep_step(msg: Any, sink: _Sink, row: int) -> None:
            sink.put(_REP, path, dtype, row, getattr(msg, fname))

        return rep_step
    return _scalar_step(fname, path, _NUM, dtype, field.has_presence)


def _scalar_step(
    fname: str, path: str, kind: int, dtype: Any, presence: bool
) -> Callable[[Any, _Sink, int], None]:
    if presence:

        def optional_step(msg: Any, sink: _Sink, row: int) -> None:
            if msg.HasField(fname):
                sink.put(kind, path, dtype, row, getattr(msg, fname))

        return optional_step

    def step(msg: Any, sink: _Sink, row: int) -> None:
        sink.put(kind, path, dtype, row, getattr(msg, fname))

    return step


class _MapValue:
    """Wraps a map's value so the field steps (which read ``msg.value``) apply to it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def HasField(self, _name: str) -> bool:  # the protobuf method's name
        return True


def _finish(sink: _Sink, rows: np.ndarray) -> Columns:
    cols = Columns(rows=rows)
    n = len(rows)
    for path, (kind, dtype, values) in sink.cols.items():
        values = values[:n]
        if kind == _TEXT:
            cols.text[path] = np.array(values, dtype=object)
        elif kind == _NUM:
            if any(v is None for v in values):
                arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            else:
                arr = np.array(values, dtype=dtype)
            cols.numeric[path] = arr
        elif kind == _BYTES:
            blobs = [b"" if v is None else bytes(v) for v in values]
            lens = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=n)
            offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            cols.ragged[path] = Ragged(
                values=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets
            )
        else:  # repeated numbers
            seqs = [np.asarray(list(v) if v is not None else [], dtype=dtype) for v in values]
            lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
            if n and bool(np.all(lens == lens[0])):
                cols.numeric[path] = (
                    np.stack(seqs) if lens[0] else np.empty((n, 0), dtype=dtype)
                )
            else:
                offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
                flat = np.concatenate(seqs) if n else np.empty(0, dtype=dtype)
                cols.ragged[path] = Ragged(values=flat.astype(dtype, copy=False), offsets=offsets)
    return cols


def decode(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    registry: ProtobufRegistry,
    typename: str,
) -> Columns:
    """Parse the protobuf payloads ``data[starts[i]:starts[i]+lengths[i]]`` of type *typename*.

    Raises
    ------
    UnsupportedTypeError
        The schema is missing, cannot be built, or the protobuf package is not installed.
    """
    from google.protobuf.message import DecodeError

    cls = registry.message_class(typename)
    walk = _walker(cls.DESCRIPTOR, "", 0, True)
    n = len(starts)
    sink = _Sink(n)
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    parse = cls.FromString
    for i, (s, ln) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        try:
            msg = parse(raw[s : s + ln])
        except DecodeError as err:
            bad.append((i, f"not a valid {typename} protobuf message: {err}"))
            continue
        walk(msg, sink, len(good))
        good.append(i)
    cols = _finish(sink, np.asarray(good, dtype=np.int64))
    cols.bad = bad
    cols.groups = 1 if good else 0
    return cols
