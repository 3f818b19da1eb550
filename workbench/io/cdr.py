"""Vectorized decoding of ROS messages (CDR for ROS 2, ROS 1 serialization) into columns.

Decoding one Python object per message is what makes ROS log readers slow. This
module decodes a whole topic at once:

1. A message type is compiled once into a :class:`Plan` (a tree of fields built from
   the type definitions that ``rosbags`` parses from ``.msg``/``.idl`` text).
2. One message is walked with a real parser (:func:`walk`) which returns its *layout*:
   the offset of every numeric leaf, the strings, and the *structural bytes* (string
   and sequence length prefixes, string contents, the CDR encapsulation header).
3. Every other message of the same payload length whose structural bytes are identical
   has the same layout, so each numeric field is read for all of them at once with numpy.
   Messages that differ get their own layout (a new reference message), so irregular
   topics still decode exactly, only slower.

The result is a :class:`Columns` table: numeric leaves as ``(n,)`` or ``(n, k)`` arrays,
variable-length numeric sequences as :class:`Ragged`, strings as object arrays.

Examples
--------
>>> from rosbags.typesys import Stores, get_typestore
>>> store = get_typestore(Stores.ROS2_HUMBLE)
>>> msg = store.types["geometry_msgs/msg/Vector3"](x=1.0, y=2.0, z=3.0)
>>> raw = bytes(store.serialize_cdr(msg, "geometry_msgs/msg/Vector3"))
>>> plan = compile_plan("geometry_msgs/msg/Vector3", store.fielddefs)
>>> data = np.frombuffer(raw * 2, dtype=np.uint8)
>>> cols = decode(data, np.array([0, len(raw)]), np.array([len(raw)] * 2), plan, "cdr")
>>> cols.numeric["y"].tolist()
[2.0, 2.0]
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "Columns",
    "DecodeError",
    "Layout",
    "Plan",
    "Ragged",
    "UnsupportedTypeError",
    "compile_plan",
    "decode",
    "gather_rows",
    "gather_slices",
    "walk",
]

# field kinds in a plan node
_PRIM, _STR, _STRUCT, _ARR, _SEQ = range(5)

_PRIMITIVES: dict[str, tuple[str, int]] = {
    "bool": ("?", 1),
    "byte": ("u1", 1),
    "char": ("u1", 1),
    "int8": ("i1", 1),
    "uint8": ("u1", 1),
    "int16": ("i2", 2),
    "uint16": ("u2", 2),
    "int32": ("i4", 4),
    "uint32": ("u4", 4),
    "int64": ("i8", 8),
    "uint64": ("u8", 8),
    "float32": ("f4", 4),
    "float64": ("f8", 8),
}
_STRUCT_FMT = {
    "?": "?",
    "u1": "B",
    "i1": "b",
    "i2": "h",
    "u2": "H",
    "i4": "i",
    "u4": "I",
    "i8": "q",
    "u8": "Q",
    "f4": "f",
    "f8": "d",
}

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct(">I")

# bail out of the "find a new reference message" loop after this many one-message groups
_MAX_SINGLETON_GROUPS = 16
# at most this many elements of a sequence of structures are expanded into columns
MAX_STRUCT_SEQUENCE = 64


class DecodeError(ValueError):
    """A message payload does not match its type definition (short, bad length, bad header)."""


class UnsupportedTypeError(ValueError):
    """A type uses a feature this decoder does not handle (wstring, float128, unknown type)."""


@dataclass(frozen=True)
class Plan:
    """A compiled message type: the field tree the walker follows."""

    typename: str
    root: tuple[Any, ...]
    leaf_types: dict[str, str] = field(default_factory=dict, compare=False)
    """Path of every nested structure → its type name (e.g. ``"header.stamp"`` → Time)."""


@dataclass
class Ragged:
    """Variable-length numeric sequences: ``values[offsets[i]:offsets[i+1]]`` is row *i*."""

    values: np.ndarray
    offsets: np.ndarray

    def row(self, i: int) -> np.ndarray:
        """Values of row *i*."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Number of values in each row."""
        return np.diff(self.offsets)


@dataclass
class Columns:
    """One topic decoded into columns (all aligned with ``rows``).

    Attributes
    ----------
    rows
        Indices (into the messages given to :func:`decode`) of the decoded messages;
        messages that failed to decode are listed in ``bad`` instead.
    numeric
        Numeric leaf path → ``(n,)`` or ``(n, k)`` array. A leaf missing from some
        messages is float64 with NaN there.
    ragged
        Numeric sequences whose length varies between messages.
    text
        String leaf path → object array (``None`` where the message has no such leaf).
    bad
        ``(message index, reason)`` for every message that could not be decoded.
    groups
        Number of distinct layouts found (1 for a perfectly regular topic).
    """

    rows: np.ndarray
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    ragged: dict[str, Ragged] = field(default_factory=dict)
    text: dict[str, np.ndarray] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)
    groups: int = 0

    @property
    def n(self) -> int:
        """Number of decoded messages."""
        return len(self.rows)

    def paths(self) -> list[str]:
        """Every leaf path, numeric, ragged and text."""
        return [*self.numeric, *self.ragged, *self.text]


# --------------------------------------------------------------------------- plan


def compile_plan(
    typename: str,
    fielddefs: Mapping[str, Any],
    *,
    fallback: Mapping[str, Any] | None = None,
    empty_struct_byte: bool = True,
) -> Plan:
    """Compile *typename* into a :class:`Plan`.

    Parameters
    ----------
    typename
        Full type name, e.g. ``"sensor_msgs/msg/Imu"``.
    fielddefs
        ``rosbags`` type definitions: name → ``(constants, fields)`` (a
        ``Typestore.fielddefs`` or the result of ``get_types_from_msg``).
    fallback
        Definitions used for types missing from *fielddefs*.
    empty_struct_byte
        A structure without fields occupies one ``uint8`` (ROS 2 / CDR: the generated
        ``structure_needs_at_least_one_member``); ``False`` for ROS 1, where it is empty.

    Raises
    ------
    UnsupportedTypeError
        When a type is unknown, recursive, or uses ``wstring``/``float128``.
    """
    leaf_types: dict[str, str] = {}

    def lookup(name: str) -> Any:
        if name in fielddefs:
            return fielddefs[name]
        if fallback is not None and name in fallback:
            return fallback[name]
        msg = f"message type {name!r} has no definition (needed by {typename!r})"
        raise UnsupportedTypeError(msg)

    def node_of(desc: Any, name: str, path: str, stack: tuple[str, ...]) -> tuple[Any, ...]:
        kind = int(desc[0])
        if kind == 1:  # BASE
            base = desc[1][0]
            if base == "string":
                return (_STR, name)
            if base in _PRIMITIVES:
                code, size = _PRIMITIVES[base]
                return (_PRIM, name, code, size)
            msg = f"{typename}: field {path!r} has unsupported type {base!r}"
            raise UnsupportedTypeError(msg)
        if kind == 2:  # NAME
            return struct_of(desc[1], name, path, stack)
        if kind in (3, 4):  # ARRAY, SEQUENCE
            sub, length = desc[1]
            elem = node_of(sub, "", path, stack)
            if kind == 3:
                return (_ARR, name, elem, int(length))
            return (_SEQ, name, elem)
        msg = f"{typename}: field {path!r} has an unknown node type {desc!r}"
        raise UnsupportedTypeError(msg)

    def struct_of(tname: str, name: str, path: str, stack: tuple[str, ...]) -> tuple[Any, ...]:
        if tname in stack:
            msg = f"message type {typename!r} is recursive through {tname!r}"
            raise UnsupportedTypeError(msg)
        leaf_types[path] = tname
        _consts, fields = lookup(tname)
        if not fields and empty_struct_byte:
            fields = [("structure_needs_at_least_one_member", (1, ("uint8", 0)))]
        children = tuple(
            node_of(desc, fname, f"{path}.{fname}" if path else fname, (*stack, tname))
            for fname, desc in fields
        )
        return (_STRUCT, name, children)

    root = struct_of(typename, "", "", ())
    return Plan(typename=typename, root=root, leaf_types=leaf_types)


# --------------------------------------------------------------------------- one message


@dataclass
class Layout:
    """Where each field of one message sits (offsets relative to the payload start)."""

    leaves: list[tuple[str, int, str, int]]
    """``(path, offset, dtype, count)``; count ``-1`` for a scalar."""
    strings: list[tuple[str, str]]
    """``(path, value)``."""
    structural: list[tuple[int, int]]
    """``(offset, length)`` byte ranges that must match for another message to share the layout."""
    size: int
    """Bytes consumed (the payload may have trailing padding)."""


def walk(buf: Any, start: int, end: int, plan: Plan, encoding: str) -> Layout:
    """Parse the message in ``buf[start:end]`` and return its :class:`Layout`.

    *encoding* is ``"cdr"`` (ROS 2, with the 4-byte encapsulation header and
    alignment) or ``"ros1"`` (packed, little-endian).

    Raises
    ------
    DecodeError
        When the payload is shorter than its fields or has an unknown CDR header.
    """
    mv = memoryview(buf)
    leaves: list[tuple[str, int, str, int]] = []
    strings: list[tuple[str, str]] = []
    structural: list[tuple[int, int]] = []
    cdr = encoding == "cdr"
    if cdr:
        if end - start < 4:
            msg = f"payload of {end - start} bytes is shorter than the CDR header"
            raise DecodeError(msg)
        kind = bytes(mv[start : start + 2])
        if kind == b"\x00\x01":
            endian = "<"
        elif kind == b"\x00\x00":
            endian = ">"
        else:
            msg = f"unsupported CDR encapsulation {kind.hex()} (only plain CDR v1 is supported)"
            raise DecodeError(msg)
        structural.append((0, 2))
        base = start + 4
    elif encoding == "ros1":
        endian = "<"
        base = start
    else:
        msg = f"unknown message encoding {encoding!r}; expected 'cdr' or 'ros1'"
        raise DecodeError(msg)
    u32 = _U32_LE if endian == "<" else _U32_BE
    pos = base

    def align(n: int) -> None:
        nonlocal pos
        if cdr and n > 1:
            pos = base + ((pos - base + n - 1) & -n)

    def need(n: int, path: str) -> None:
        if pos + n > end:
            msg = f"payload too short at field {path or '<root>'!r}: needs {n} bytes at offset {pos - start}, has {end - pos}"
            raise DecodeError(msg)

    def read_len(path: str) -> int:
        nonlocal pos
        align(4)
        need(4, path)
        structural.append((pos - start, 4))
        (n,) = u32.unpack_from(mv, pos)
        pos += 4
        return int(n)

    def visit(node: tuple[Any, ...], path: str) -> None:
        nonlocal pos
        kind = node[0]
        if kind == _PRIM:
            size = node[3]
            align(size)
            need(size, path)
            leaves.append((path, pos - start, endian + node[2], -1))
            pos += size
        elif kind == _STR:
            n = read_len(path)
            need(n, path)
            structural.append((pos - start, n))
            raw = bytes(mv[pos : pos + n])
            if cdr and raw.endswith(b"\x00"):
                raw = raw[:-1]
            strings.append((path, raw.decode("utf-8", errors="replace")))
            pos += n
        elif kind == _STRUCT:
            for child in node[2]:
                visit(child, f"{path}.{child[1]}" if path else child[1])
        elif kind in (_ARR, _SEQ):
            elem = node[2]
            count = node[3] if kind == _ARR else read_len(path)
            if elem[0] == _PRIM:
                size = elem[3]
                if count:
                    align(size)
                need(count * size, path)
                leaves.append((path, pos - start, endian + elem[2], count))
                pos += count * size
            else:
                if kind == _SEQ and count > end - pos:
                    msg = f"sequence {path!r} claims {count} elements in {end - pos} bytes"
                    raise DecodeError(msg)
                for i in range(count):
                    visit(elem, f"{path}[{i}]")
        else:  # pragma: no cover - plans are built by compile_plan
            msg = f"bad plan node {node!r}"
            raise DecodeError(msg)

    visit(plan.root, "")
    extra = end - pos
    if extra > (3 if cdr else 0):
        msg = (
            f"payload has {extra} bytes after the last field of {plan.typename}: "
            "the message definition does not match the data"
        )
        raise DecodeError(msg)
    return Layout(leaves, strings, structural, pos - start)


# --------------------------------------------------------------------------- many messages
#
# Byte ranges of many messages are moved with numpy "void" items: a window of ``w`` bytes
# is one ``|V<w>`` element, so gathering ``n`` ranges is a 1-D fancy index (one memcpy
# per message) and comparing them is one ``==`` — several times faster than the 2-D
# ``(n, w)`` uint8 indexing that treats every byte as an element. When the messages sit
# at a constant stride (one topic's payloads packed back to back), ranges are read as a
# strided view without any index at all.


def _void(width: int) -> np.dtype:
    return np.dtype((np.void, width))


def _contiguous(buf: np.ndarray) -> np.ndarray:
    buf = np.asarray(buf)
    if buf.dtype != np.uint8:
        buf = buf.view(np.uint8)
    return buf if buf.flags.c_contiguous else np.ascontiguousarray(buf)


def _void_windows(buf: np.ndarray, width: int) -> np.ndarray:
    """Every ``buf[i:i+width]`` as one void element of a read-only 1-D view."""
    return np.ndarray(
        (len(buf) - width + 1,), dtype=_void(width), buffer=buf, strides=(1,)
    )


def _windows(buf: np.ndarray, width: int) -> np.ndarray:
    """Every ``buf[i:i+width]`` as rows of a (len-width+1, width) read-only view."""
    return as_strided(
        buf, shape=(len(buf) - width + 1, width), strides=(buf.strides[0], 1), writeable=False
    )


def _gather_void(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``buf[s:s+width]`` for every start as a 1-D void array (a copy)."""
    buf = _contiguous(buf)
    if width > len(buf):
        msg = f"cannot read {width} bytes from a buffer of {len(buf)}"
        raise DecodeError(msg)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) and (int(starts.min()) < 0 or int(starts.max()) + width > len(buf)):
        msg = f"cannot read {width} bytes at offsets up to {int(starts.max())} from a buffer of {len(buf)}"
        raise DecodeError(msg)
    return _void_windows(buf, width)[starts]


def gather_rows(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``buf[s:s+width]`` for every start, as an (n, width) uint8 array (one row copy each)."""
    n = len(starts)
    if n == 0 or width == 0:
        return np.empty((n, width), dtype=np.uint8)
    return _gather_void(buf, starts, width).view(np.uint8).reshape(n, width)


def gather_slices(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``buf[s:s+l]`` for every (start, length) pair, as one uint8 array."""
    n = len(starts)
    if n == 0:
        return np.empty(0, dtype=np.uint8)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint8)
    first = int(lengths[0])
    if np.all(lengths == first):
        return gather_rows(buf, starts, first).reshape(-1)
    buf = _contiguous(buf)
    uniq = np.unique(lengths)
    out = np.empty(total, dtype=np.uint8)
    if len(uniq) * 8 > n:  # mostly distinct lengths (images, text): copy slice by slice
        o = 0
        for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True):
            out[o : o + ln] = buf[s : s + ln]
            o += ln
        return out
    out_off = np.cumsum(lengths) - lengths
    for ln in uniq.tolist():
        if ln == 0:
            continue
        sel = np.nonzero(lengths == ln)[0]
        target = _void_windows(out, ln)
        target.flags.writeable = True
        target[out_off[sel]] = _gather_void(buf, starts[sel], ln)
    return out


def _stride_of(starts: np.ndarray) -> int | None:
    """The constant step of *starts* (messages of one length back to back), else None."""
    if len(starts) < 2:
        return 0 if len(starts) == 1 else None
    step = int(starts[1] - starts[0])
    if step <= 0:
        return None
    if len(starts) > 2 and not bool(np.all(np.diff(starts) == step)):
        return None
    return step


def _column_void(
    data: np.ndarray, starts: np.ndarray, off: int, nbytes: int, stride: int | None, *, copy: bool
) -> np.ndarray:
    """Bytes ``[off, off+nbytes)`` of every message as a 1-D void array.

    With a constant *stride* this is a strided view of *data* (copied when *copy*);
    otherwise a gather.
    """
    n = len(starts)
    if stride is not None and n:
        first = int(starts[0]) + off
        if first >= 0 and first + stride * (n - 1) + nbytes <= len(data):
            view = np.ndarray(
                (n,), dtype=_void(nbytes), buffer=data, offset=first, strides=(stride,)
            )
            return view.copy() if copy else view
    return _gather_void(data, starts + off, nbytes)


def _leaf_view(block: np.ndarray, rel: int, dtype: str, count: int) -> np.ndarray:
    """One leaf of an (n, width) byte block as values in native byte order (a view if possible)."""
    n, width = block.shape
    dt = np.dtype(dtype)
    if count < 0:
        vals = np.ndarray((n,), dtype=dt, buffer=block, offset=rel, strides=(width,))
    else:
        vals = np.ndarray(
            (n, count), dtype=dt, buffer=block, offset=rel, strides=(width, dt.itemsize)
        )
    if not dt.isnative:
        vals = vals.astype(dt.newbyteorder("="))
    return vals


def _leaf_runs(
    leaves: Sequence[tuple[str, int, str, int]],
) -> list[tuple[int, int, list[tuple[str, int, str, int]]]]:
    """Group leaves that follow each other without padding: ``(offset, nbytes, members)``.

    Each run is read as one block; its leaves are views of the block (so ``x, y, z`` of a
    vector come out as adjacent columns of one array).
    """
    runs: list[tuple[int, int, list[tuple[str, int, str, int]]]] = []
    for path, off, dtype, count in leaves:
        nb = np.dtype(dtype).itemsize * max(count, 1)
        if runs and runs[-1][0] + runs[-1][1] == off:
            start, size, members = runs[-1]
            members.append((path, off - start, dtype, count))
            runs[-1] = (start, size + nb, members)
        else:
            runs.append((off, nb, [(path, 0, dtype, count)]))
    return runs


def _read_fixed(
    data: np.ndarray,
    starts: np.ndarray,
    off: int,
    nbytes: int,
    stride: int | None,
) -> np.ndarray:
    """Bytes ``[off, off+nbytes)`` of every row as an (n, nbytes) uint8 array (a copy)."""
    n = len(starts)
    if n == 0 or nbytes == 0:
        return np.empty((n, nbytes), dtype=np.uint8)
    return _column_void(data, starts, off, nbytes, stride, copy=True).view(np.uint8).reshape(
        n, nbytes
    )


def _as_dtype(raw: np.ndarray, dtype: str, count: int) -> np.ndarray:
    """View an (n, nbytes) uint8 array as values of *dtype* in native byte order."""
    dt = np.dtype(dtype)
    vals = raw.view(dt)
    if count < 0:
        vals = vals.reshape(len(raw))
    else:
        vals = vals.reshape(len(raw), count)
    if not dt.isnative:
        vals = vals.astype(dt.newbyteorder("="))
    return vals


def decode(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    plan: Plan,
    encoding: str,
    *,
    vectorized: bool = True,
    keep: Callable[[str], bool] | None = None,
) -> Columns:
    """Decode every message ``data[starts[i]:starts[i]+lengths[i]]`` of one type.

    Parameters
    ----------
    data
        uint8 buffer holding the payloads.
    starts, lengths
        Where each message is (int64 arrays of equal length).
    plan
        The compiled message type.
    encoding
        ``"cdr"`` or ``"ros1"``.
    vectorized
        ``False`` walks every message on its own (the reference the vectorized path
        is tested against).
    keep
        Only read the numeric leaves whose path it accepts (all when ``None``); the
        message structure is still checked in full, strings are always read.
    """
    n = len(starts)
    data = _contiguous(data)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    groups: list[tuple[np.ndarray, Layout]] = []
    bad: list[tuple[int, str]] = []
    if n:
        if vectorized and n > 1 and _has_byte_tail(plan) and not np.all(lengths == lengths[0]):
            cols = _decode_byte_tail(data, starts, lengths, plan, encoding, keep)
            if cols is not None:
                return cols
        if vectorized:
            _group_by_layout(data, starts, lengths, plan, encoding, groups, bad)
        else:
            for i in range(n):
                s = int(starts[i])
                try:
                    lay = walk(data, s, s + int(lengths[i]), plan, encoding)
                except DecodeError as err:
                    bad.append((i, str(err)))
                    continue
                groups.append((np.array([i], dtype=np.int64), lay))
    return _assemble(data, starts, lengths, groups, bad, n, keep)


def _has_byte_tail(plan: Plan) -> bool:
    """Whether the message ends with a byte sequence (images, point clouds' data, blobs)."""
    fields = plan.root[2]
    if not fields:
        return False
    last = fields[-1]
    return last[0] == _SEQ and last[2][0] == _PRIM and last[2][3] == 1


def _decode_byte_tail(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    plan: Plan,
    encoding: str,
    keep: Callable[[str], bool] | None = None,
) -> Columns | None:
    """Decode messages that differ only in the length of their final byte sequence.

    Typical of images: header, format and sizes identical, ``data`` of varying size.
    Returns ``None`` when the messages do not all share the prefix layout.
    """
    n = len(starts)
    ref = int(starts[0])
    try:
        lay = walk(data, ref, ref + int(lengths[0]), plan, encoding)
    except DecodeError:
        return None
    tail_path, tail_off, tail_dtype, _count = lay.leaves[-1]
    count_off, count_len = lay.structural[-1]
    if count_len != 4 or count_off + 4 != tail_off or tail_path != plan.root[2][-1][1]:
        return None  # pragma: no cover - guaranteed by the walker for a trailing sequence
    prefix = Layout(lay.leaves[:-1], lay.strings, lay.structural[:-1], count_off)
    rows = np.arange(n, dtype=np.int64)
    if np.any(lengths < tail_off) or not bool(
        np.all(_same_structure(data, starts, rows, ref, prefix))
    ):
        return None
    big = encoding == "cdr" and bytes(data[ref : ref + 2]) == b"\x00\x00"
    counts = gather_rows(data, starts + count_off, 4).view(">u4" if big else "<u4")
    counts = counts.reshape(n).astype(np.int64)
    spare = lengths - (tail_off + counts)
    if np.any(spare < 0) or np.any(spare > (3 if encoding == "cdr" else 0)):
        return None
    cols = _assemble(data, starts, lengths, [(rows, prefix)], [], n, keep)
    values = gather_slices(data, starts + tail_off, counts).view(np.dtype(tail_dtype))
    if np.all(counts == counts[0]):
        cols.numeric[tail_path] = values.reshape(n, int(counts[0]))
    else:
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        cols.ragged[tail_path] = Ragged(values=values, offsets=offsets)
    return cols


def _group_by_layout(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    plan: Plan,
    encoding: str,
    groups: list[tuple[np.ndarray, Layout]],
    bad: list[tuple[int, str]],
) -> None:
    """Split messages into groups that share one layout (see the module docstring)."""
    uniq, inverse = np.unique(lengths, return_inverse=True)
    if len(uniq) == 1:
        buckets = [np.arange(len(starts), dtype=np.int64)]
    else:
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
        buckets = np.split(order.astype(np.int64), bounds)
    for bucket in buckets:
        remaining = bucket
        singletons = 0
        while len(remaining):
            if singletons >= _MAX_SINGLETON_GROUPS:
                for i in remaining.tolist():  # irregular: walk each message on its own
                    s = int(starts[i])
                    try:
                        lay = walk(data, s, s + int(lengths[i]), plan, encoding)
                    except DecodeError as err:
                        bad.append((i, str(err)))
                        continue
                    groups.append((np.array([i], dtype=np.int64), lay))
                break
            ref = int(remaining[0])
            s = int(starts[ref])
            try:
                lay = walk(data, s, s + int(lengths[ref]), plan, encoding)
            except DecodeError as err:
                bad.append((ref, str(err)))
                remaining = remaining[1:]
                continue
            if len(remaining) == 1:
                groups.append((remaining, lay))
                break
            same = _same_structure(data, starts, remaining, s, lay)
            if bool(same.all()):
                groups.append((remaining, lay))
                break
            members = remaining[same]
            groups.append((members, lay))
            remaining = remaining[~same]
            if len(members) == 1:
                singletons += 1


def _same_structure(
    data: np.ndarray, starts: np.ndarray, rows: np.ndarray, ref_start: int, lay: Layout
) -> np.ndarray:
    """Boolean mask over *rows*: whose structural bytes equal the reference message's."""
    same = np.ones(len(rows), dtype=bool)
    if not lay.structural:
        return same
    # merge adjacent ranges (a length prefix and its string bytes are back to back)
    ranges: list[list[int]] = []
    for o, ln in sorted(lay.structural):
        if ln <= 0:
            continue
        if ranges and ranges[-1][0] + ranges[-1][1] == o:
            ranges[-1][1] += ln
        else:
            ranges.append([o, ln])
    row_starts = starts[rows]
    stride = _stride_of(row_starts)
    for o, ln in ranges:
        ref = np.frombuffer(data[ref_start + o : ref_start + o + ln].tobytes(), dtype=_void(ln))[0]
        same &= _column_void(data, row_starts, o, ln, stride, copy=False) == ref
    return same


def _assemble(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    groups: list[tuple[np.ndarray, Layout]],
    bad: list[tuple[int, str]],
    n: int,
    keep: Callable[[str], bool] | None = None,
) -> Columns:
    """Read every leaf of every group into aligned columns."""
    if bad:
        bad_rows = np.array(sorted(i for i, _ in bad), dtype=np.int64)
        keep_rows = np.setdiff1d(np.arange(n, dtype=np.int64), bad_rows)
    else:
        keep_rows = np.arange(n, dtype=np.int64)
    m = len(keep_rows)
    cols = Columns(rows=keep_rows, bad=sorted(bad), groups=len(groups))
    if not groups:
        return cols

    def wanted(leaves: list[tuple[str, int, str, int]]) -> list[tuple[str, int, str, int]]:
        return leaves if keep is None else [leaf for leaf in leaves if keep(leaf[0])]

    # one group covering everything: the common fast path
    if len(groups) == 1 and len(groups[0][0]) == m:
        rows, lay = groups[0]
        if not np.array_equal(rows, keep_rows):  # pragma: no cover - groups are built in index order
            rows = np.sort(rows)
        row_starts = starts[rows]
        stride = _stride_of(row_starts)
        leaves = wanted(lay.leaves)
        for path, _off, dtype, count in leaves:
            if count == 0:
                cols.numeric[path] = np.empty((m, 0), dtype=np.dtype(dtype).newbyteorder("="))
        for off, nbytes, members in _leaf_runs([lf for lf in leaves if lf[3] != 0]):
            block = _read_fixed(data, row_starts, off, nbytes, stride)
            for path, rel, dtype, count in members:
                cols.numeric[path] = _leaf_view(block, rel, dtype, count)
        for path, value in lay.strings:
            arr = np.empty(m, dtype=object)
            arr[:] = value
            cols.text[path] = arr
        return cols

    # position of each original message index in the output
    pos_of = np.full(n, -1, dtype=np.int64)
    pos_of[keep_rows] = np.arange(m, dtype=np.int64)
    # several layouts: collect per leaf (output rows, absolute start, dtype, count)
    num_parts: dict[str, list[tuple[np.ndarray, np.ndarray, str, int]]] = {}
    str_parts: dict[str, list[tuple[np.ndarray, str]]] = {}
    for rows, lay in groups:
        out_rows = pos_of[rows]
        row_starts = starts[rows]
        for path, off, dtype, count in wanted(lay.leaves):
            num_parts.setdefault(path, []).append((out_rows, row_starts + off, dtype, count))
        for path, value in lay.strings:
            str_parts.setdefault(path, []).append((out_rows, value))

    for path, parts in num_parts.items():
        _assemble_numeric(cols, path, parts, data, m)
    for path, sparts in str_parts.items():
        arr = np.full(m, None, dtype=object)
        for out_rows, value in sparts:
            arr[out_rows] = value
        cols.text[path] = arr
    return cols


def _assemble_numeric(
    cols: Columns,
    path: str,
    parts: Sequence[tuple[np.ndarray, np.ndarray, str, int]],
    data: np.ndarray,
    m: int,
) -> None:
    out_rows = np.concatenate([p[0] for p in parts])
    abs_starts = np.concatenate([p[1] for p in parts])
    counts = np.concatenate([np.full(len(p[0]), p[3], dtype=np.int64) for p in parts])
    dtypes = {p[2] for p in parts}
    if len(dtypes) > 1:  # mixed byte order (never seen in practice): normalize per part
        dtype = np.dtype(min(dtypes)).newbyteorder("=").str
    else:
        dtype = next(iter(dtypes))
    dt = np.dtype(dtype)
    native = dt.newbyteorder("=")
    complete = len(out_rows) == m
    scalar = bool(np.all(counts == -1))
    if scalar or (np.all(counts == counts[0]) and counts[0] >= 0):
        count = int(counts[0])
        nb = dt.itemsize * max(count, 1)
        if len(dtypes) > 1:
            vals = np.concatenate(
                [
                    _as_dtype(_read_fixed(data, p[1], 0, nb, None), p[2], count).astype(native)
                    for p in parts
                ]
            )
        elif count == 0:
            vals = np.empty((len(out_rows), 0), dtype=native)
        else:
            vals = _as_dtype(_read_fixed(data, abs_starts, 0, nb, None), dtype, count)
        shape = (m,) if count < 0 else (m, count)
        if complete:
            out = np.empty(shape, dtype=vals.dtype)
        else:
            out = np.full(shape, np.nan, dtype=np.float64)
        out[out_rows] = vals
        cols.numeric[path] = out
        return
    if np.any(counts == -1):
        # the same path is a scalar in one layout and a sequence in another: cannot happen
        # for a valid plan; keep the sequence form
        counts = np.where(counts < 0, 1, counts)
    # ragged sequence
    order = np.argsort(out_rows, kind="stable")
    out_rows, abs_starts, counts = out_rows[order], abs_starts[order], counts[order]
    per_row = np.zeros(m, dtype=np.int64)
    per_row[out_rows] = counts
    offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    raw = gather_slices(data, abs_starts, counts * dt.itemsize)
    values = raw.view(dt)
    if not dt.isnative:
        values = values.astype(native)
    cols.ragged[path] = Ragged(values=values, offsets=offsets)
