"""Streams as Parquet: one table per dimension a stream's variables grow along.

A stream (an xarray Dataset with a ``time`` dimension) is stored as a few Parquet
tables and a small JSON *layout*:

- every variable that has ``time`` goes, time first, into the ``time`` table: one
  column per variable, values of more than one dimension as fixed-size lists of the
  flattened row (an image row, a vector);
- variables without ``time`` go into one table per first dimension (``byte`` of
  encoded frames, ``joint`` names, the flattened values of ragged fields), and scalars
  into a one-row table;
- the layout records each variable's dims, dtype, attributes and whether it is a
  coordinate, so the Dataset comes back exactly.

Tables are LZ4-compressed after delta (integers) and byte-stream-split (floats)
encoding, in row groups of about :data:`GROUP_BYTES` per column.
Row groups are what lazy reads fetch: a dask chunk, or a piece read by
:class:`ColumnReader`. Only ``time`` keeps column statistics.

Types Parquet has are stored as such: bool, int8–64, uint8–64, float32/64, text
(str, with missing values) and bytes. Other fixed-size types are stored as views:
float16 as uint16, datetime64 and timedelta64 as int64, complex numbers as float
pairs, fixed-width text as text. Arbitrary Python objects cannot be stored
(:class:`TypeError` naming the variable).

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"v": (("time", "axis"), np.arange(6.0).reshape(3, 2))},
...                 coords={"time": np.array([5, 6, 7]), "axis": ["x", "y"]})
>>> layout, members = encode_stream(ds)
>>> [g["dim"] for g in layout["groups"]]
['time', 'axis']
>>> back = decode_stream(layout, lambda i: members[i])
>>> back.identical(ds)
True
"""

from __future__ import annotations

import io
import json
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import APPEND_DIMS, concat_parts, json_safe

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr

__all__ = [
    "APPEND_GROUP_BYTES",
    "GROUP_BYTES",
    "ColumnReader",
    "MemoryColumn",
    "ParquetStreamWriter",
    "decode_stream",
    "direct_reader",
    "encode_stream",
    "open_lazy",
    "summary",
]

GROUP_BYTES = 8 * 1024 * 1024
"""Bytes of the widest column in one row group of a stream written whole."""
APPEND_GROUP_BYTES = 2 * 1024 * 1024
"""The same for a stream written part by part (:class:`ParquetStreamWriter`): each
growing table buffers up to one row group, so a log of many topics holds many at once."""
SPOOL_BYTES = 2 * 1024 * 1024
"""Tables of a stream written part by part stay in memory up to this size, then spill
to a temporary file."""
_TEXT_ROW_BYTES = 32
_NATIVE = {"b", "i", "u", "f"}


# --------------------------------------------------------------------------- variables


def _time_first(var: Any) -> tuple[tuple[str, ...], np.ndarray, list[str] | None]:
    """Dims stored, values, and the original dim order when ``time`` was moved first."""
    dims = tuple(str(d) for d in var.dims)
    if "time" in dims and dims[0] != "time":
        var = var.transpose("time", ...)
        return tuple(str(d) for d in var.dims), np.asarray(var.values), list(dims)
    return dims, np.asarray(var.values), None


def _storage(name: str, values: np.ndarray) -> tuple[str, np.ndarray, tuple[int, ...]]:
    """How a variable is stored: (kind, values in the stored dtype, extra tail dims).

    kind is ``num`` (a Parquet number or bool), ``view`` (another fixed-size dtype seen
    as one), ``text`` or ``bytes``.
    """
    dt = values.dtype
    if dt.kind in _NATIVE and not (dt.kind == "f" and dt.itemsize == 2) and dt.itemsize <= 8:
        return "num", values.astype(dt.newbyteorder("="), copy=False), ()
    if dt.kind == "f" and dt.itemsize == 2:
        return "view", values.astype("<f2", copy=False).view("<u2"), ()
    if dt.kind in "mM":
        return "view", values.astype(dt.newbyteorder("<"), copy=False).view("<i8"), ()
    if dt.kind == "c" and dt.itemsize in (8, 16):
        part = "<f4" if dt.itemsize == 8 else "<f8"
        pairs = np.ascontiguousarray(values.astype(dt.newbyteorder("<"), copy=False)).view(part)
        return "view", pairs.reshape((*values.shape, 2)), (2,)
    if dt.kind == "U":
        return "text", values.astype(object), ()
    if dt.kind == "S":
        return "bytes", values.astype(object), ()
    if dt.kind == "O":
        flat = values.ravel().tolist()
        missing = [v is None or (isinstance(v, float) and v != v) for v in flat]  # None, or NaN as xarray makes it
        if any(missing) and not all(missing):
            values = np.array([None if m else v for v, m in zip(flat, missing, strict=True)], dtype=object).reshape(values.shape)
            flat = values.ravel().tolist()
        if all(v is None or isinstance(v, str) for v in flat):
            return "text", values, ()
        if all(v is None or isinstance(v, bytes) for v in flat):
            return "bytes", values, ()
        kinds = sorted({type(v).__name__ for v in flat if not isinstance(v, str | bytes) and v is not None})
        msg = f"variable {name!r} holds Python objects ({', '.join(kinds)}); store numbers, text or bytes"
        raise TypeError(msg)
    msg = f"variable {name!r}: dtype {dt} cannot be stored; store numbers, text or bytes"
    raise TypeError(msg)


def _column(kind: str, values: np.ndarray) -> pa.Array:
    """One Parquet column of *values* (rows first; more dims as fixed-size lists)."""
    import pyarrow as pa

    rows = values.shape[0]
    width = int(np.prod(values.shape[1:], dtype=np.int64)) if values.ndim > 1 else 1
    flat = values.reshape(rows * width) if values.ndim > 1 else values
    if kind == "text":
        arr = pa.array(flat, type=pa.string(), from_pandas=False)
    elif kind == "bytes":
        arr = pa.array(flat, type=pa.binary(), from_pandas=False)
    else:
        arr = pa.array(np.ascontiguousarray(flat))
    if values.ndim > 1:
        arr = pa.FixedSizeListArray.from_arrays(arr, width)
    return arr


def _to_numpy(col: Any, var: dict[str, Any], rows: int) -> np.ndarray:
    """The values of one stored column (a pyarrow array or chunked array) as numpy."""
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    tail = tuple(var["tail"])
    stored_tail = tail + tuple(var.get("extra", ()))
    if stored_tail:
        col = col.flatten()
    kind = var["kind"]
    values = col.to_numpy(zero_copy_only=False)
    if kind in ("text", "bytes"):
        values = np.asarray(values, dtype=object)
    return _restore(values.reshape((rows, *stored_tail)), var, rows)


def _restore(values: np.ndarray, var: dict[str, Any], rows: int) -> np.ndarray:
    """Values as stored (kind's dtype, rows first) back to the variable's dtype."""
    kind = var["kind"]
    tail = tuple(var["tail"])
    dtype = np.dtype(var["dtype"])
    if kind == "view":
        values = np.ascontiguousarray(values).view(dtype.newbyteorder("<"))
        if dtype.kind == "c":
            values = values.reshape((rows, *tail))
        values = values.astype(dtype, copy=False)
    elif (kind == "text" and dtype.kind == "U") or (kind == "bytes" and dtype.kind == "S") or (kind == "num" and values.dtype != dtype):
        values = values.astype(dtype)
    return values


def _row_bytes(kind: str, values: np.ndarray) -> int:
    width = int(np.prod(values.shape[1:], dtype=np.int64)) if values.ndim > 1 else 1
    return max(1, width * (_TEXT_ROW_BYTES if kind in ("text", "bytes") else values.dtype.itemsize))


COMPRESSION = "lz4"
"""Codec of the Parquet tables (large streams): after delta and byte-stream-split
encoding, LZ4 is as compact as zstd on sensor data and decodes about 1.5× faster, which
is what a scan over a long stream waits on. The small block of a stream is zstd."""


def _write_options(schema: pa.Schema, kinds: Sequence[str]) -> dict[str, Any]:
    """Parquet options of a stream's table (:data:`COMPRESSION`); integers (times above
    all) delta-encoded and floats byte-stream-split, which halve the bytes of sensor data
    and read twice as fast as plain encoding; dictionaries for text only; statistics for
    ``time`` only."""
    import pyarrow as pa

    names = list(schema.names)
    encoding: dict[str, str] = {}
    for field in schema:
        if pa.types.is_integer(field.type):
            encoding[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_floating(field.type):
            encoding[field.name] = "BYTE_STREAM_SPLIT"
    options: dict[str, Any] = {
        "compression": COMPRESSION,
        "store_schema": False,
        "write_statistics": [n for n in names if n == "time"] or False,
        "use_dictionary": [n for n, k in zip(names, kinds, strict=True) if k in ("text", "bytes")] or False,
    }
    if encoding:
        options["column_encoding"] = encoding
    return options


# --------------------------------------------------------------------------- whole streams


def _plan(ds: xr.Dataset) -> tuple[dict[str, Any], list[tuple[str | None, list[tuple[str, str, np.ndarray]]]]]:
    """The layout of *ds* (without row counts) and its variables grouped by table."""
    groups: OrderedDict[str | None, list[tuple[str, str, np.ndarray]]] = OrderedDict()
    if "time" in ds.dims:
        groups["time"] = []
    variables: list[dict[str, Any]] = []
    for name, var in ds.variables.items():
        name = str(name)
        dims, values, order = _time_first(var)
        kind, stored, extra = _storage(name, values)
        group = dims[0] if dims else None
        groups.setdefault(group, [])
        entry: dict[str, Any] = {
            "name": name,
            "dims": list(dims),
            "dtype": values.dtype.str,
            "kind": kind,
            "tail": [int(k) for k in values.shape[1:]],
            "coord": name in ds.coords,
            "attrs": json_safe(dict(var.attrs)),
        }
        if extra:
            entry["extra"] = list(extra)
        if order is not None:
            entry["order"] = order
        if _splits(kind, stored) and not any(c in ds.variables for c in _split_names(name, stored.shape[1])):
            entry["columns"] = _split_names(name, stored.shape[1])
        variables.append(entry)
        groups[group].append((name, kind, stored if dims else stored.reshape(1)))
    keys = list(groups)
    for entry in variables:
        entry["group"] = keys.index(entry["dims"][0] if entry["dims"] else None)
    layout = {"attrs": json_safe(dict(ds.attrs)), "groups": [{"dim": g} for g in keys], "vars": variables}
    return layout, list(groups.items())


SPLIT_WIDTH = 32
"""Numeric rows of up to this many values (a joint vector, a quaternion, a wrench) are
stored one Parquet column per component: plain columns read about half again as fast
as fixed-size lists, and compress better."""


def _splits(kind: str, values: np.ndarray) -> bool:
    return kind in ("num", "view") and values.ndim == 2 and 1 < values.shape[1] <= SPLIT_WIDTH


def _split_names(name: str, width: int) -> list[str]:
    return [f"{name}/{j}" for j in range(width)]


def _table(members: list[tuple[str, str, np.ndarray]], rows: int) -> pa.Table:
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for name, kind, values in members:
        if not _width(values):
            continue
        if _splits(kind, values) and not any(c in {n for n, _k, _v in members} for c in _split_names(name, values.shape[1])):
            for j, col in enumerate(_split_names(name, values.shape[1])):
                cols[col] = pa.array(np.ascontiguousarray(values[:, j]))
        else:
            cols[name] = _column(kind, values)
    if not cols:
        return pa.table({"_rows": pa.nulls(rows, pa.bool_())})
    return pa.table(cols)


def _width(values: np.ndarray) -> int:
    return int(np.prod(values.shape[1:], dtype=np.int64)) if values.ndim > 1 else 1


def _group_rows(members: list[tuple[str, str, np.ndarray]], budget: int) -> int:
    widest = max((_row_bytes(k, v) for _n, k, v in members), default=1)
    return max(1, budget // widest)


def _parquet(vars_: list[tuple[str, str, np.ndarray]], rows: int, budget: int) -> bytes:
    import pyarrow.parquet as pq

    table = _table(vars_, rows)
    buf = io.BytesIO()
    kinds = {n: k for n, k, _ in vars_}
    pq.write_table(table, buf, row_group_size=_group_rows(vars_, budget),
                   **_write_options(table.schema, [kinds.get(n, "num") for n in table.column_names]))
    return buf.getvalue()


def _raw_bytes(vars_: list[tuple[str, str, np.ndarray]]) -> int:
    total = 0
    for _n, kind, values in vars_:
        if kind in ("text", "bytes"):
            total += 8 * values.size + sum(len(v) for v in values.ravel().tolist() if v is not None)
        else:
            total += values.nbytes
    return total


SMALL_BYTES = 1024 * 1024
"""Tables of fewer bytes than this (uncompressed) are not Parquet: the small tables of a
stream go together into one zstd-compressed block of their raw values, which costs
no per-column metadata (most topics of a drone log are a few kB)."""


def _blob_entry(kind: str, values: np.ndarray, parts: list[bytes], at: int) -> tuple[dict[str, Any], int]:
    """Append one variable's raw values to *parts*; returns where they are."""
    if kind in ("text", "bytes"):
        items = values.ravel().tolist()
        enc = [None if v is None else (v.encode() if kind == "text" else bytes(v)) for v in items]
        lengths = np.array([-1 if e is None else len(e) for e in enc], dtype="<i8")
        data = lengths.tobytes() + b"".join(e for e in enc if e is not None)
        parts.append(data)
        return {"at": at, "n": len(data), "stored": "<i8"}, at + len(data)
    little = np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"), copy=False))
    data = little.tobytes()
    parts.append(data)
    return {"at": at, "n": len(data), "stored": little.dtype.str}, at + len(data)


def _blob_values(blob: memoryview, var: dict[str, Any], rows: int) -> np.ndarray:
    entry = var["blob"]
    kind = var["kind"]
    stored_tail = tuple(var["tail"]) + tuple(var.get("extra", ()))
    count = rows * int(np.prod(stored_tail, dtype=np.int64)) if stored_tail else rows
    if kind in ("text", "bytes"):
        lengths = np.frombuffer(blob, dtype="<i8", count=count, offset=entry["at"])
        at = entry["at"] + 8 * count
        out = np.empty(count, dtype=object)
        for i, n in enumerate(lengths.tolist()):
            if n < 0:
                out[i] = None
                continue
            raw = bytes(blob[at: at + n])
            out[i] = raw.decode() if kind == "text" else raw
            at += n
        values = out.reshape((rows, *stored_tail))
    else:
        values = np.frombuffer(blob, dtype=np.dtype(entry["stored"]), count=count, offset=entry["at"])
        values = values.reshape((rows, *stored_tail)).astype(np.dtype(entry["stored"]).newbyteorder("="), copy=True)
    return _restore(values, var, rows)


def _encode_groups(layout: dict[str, Any], groups: list[tuple[str | None, list[tuple[str, str, np.ndarray]]]],
                   rows_of: list[int], budget: int, written: dict[int, Any] | None = None) -> list[Any]:
    """Fill *layout*'s groups (rows, member) and return the members: a Parquet table per
    large group, one compressed block for the small ones. *written* gives members
    already written for some groups (a stream written part by part)."""
    import pyarrow as pa

    members: list[Any] = []
    names: list[str] = []
    blob_parts: list[bytes] = []
    at = 0
    by_name = {v["name"]: v for v in layout["vars"]}
    small: list[int] = []
    for i, (_dim, vars_) in enumerate(groups):
        rows = rows_of[i]
        layout["groups"][i]["rows"] = rows
        if written is not None and i in written:
            layout["groups"][i]["member"] = len(members)
            members.append(written[i])
            names.append(f"{len(names)}.parquet")
        elif _raw_bytes(vars_) < SMALL_BYTES:
            small.append(i)
        else:
            layout["groups"][i]["member"] = len(members)
            members.append(_parquet(vars_, rows, budget))
            names.append(f"{len(names)}.parquet")
    if small:
        for i in small:
            layout["groups"][i]["member"] = len(members)
            layout["groups"][i]["small"] = True
            for name, kind, values in groups[i][1]:
                entry, at = _blob_entry(kind, values, blob_parts, at)
                by_name[name]["blob"] = entry
        raw = b"".join(blob_parts)
        layout["small_bytes"] = len(raw)
        members.append(pa.compress(raw, codec="zstd", asbytes=True) if raw else b"")
        names.append("small.zst")
    layout["members"] = names
    return members


def encode_stream(ds: xr.Dataset, *, budget: int = GROUP_BYTES) -> tuple[dict[str, Any], list[Any]]:
    """The layout and the members (bytes) of a whole stream: Parquet tables, and one
    compressed block of its small tables.

    Raises :class:`TypeError` for a variable whose values cannot be stored.
    """
    layout, groups = _plan(ds)
    rows_of = [int(vars_[0][2].shape[0]) if vars_ else int(ds.sizes.get("time", 0)) for _d, vars_ in groups]
    return layout, _encode_groups(layout, groups, rows_of, budget)


def summary(layout: dict[str, Any]) -> dict[str, Any]:
    """``{"dims", "variables", "attrs"}`` of a stored stream, as a run's manifest lists it."""
    dims: dict[str, int] = {}
    for var in layout["vars"]:
        rows = layout["groups"][var["group"]]["rows"]
        for d, k in zip(var["dims"], [rows, *var["tail"]], strict=False):
            dims[d] = int(k)
    return {
        "dims": dims,
        "variables": sorted(v["name"] for v in layout["vars"] if not v["coord"]),
        "attrs": layout["attrs"],
    }


def _dataset(layout: dict[str, Any], arrays: dict[str, Any], *, indexes: bool = True) -> xr.Dataset:
    import xarray as xr

    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for var in layout["vars"]:
        v = xr.Variable(var["dims"], arrays[var["name"]], attrs=var["attrs"])
        if var.get("order"):
            v = v.transpose(*var["order"])
        (coords if var["coord"] else data_vars)[var["name"]] = v
    if not indexes:  # no in-memory index of time (too large to hold)
        return xr.Dataset(data_vars, coords=xr.Coordinates(coords, indexes={}), attrs=layout["attrs"])
    return xr.Dataset(data_vars, coords=coords, attrs=layout["attrs"])


def _small_block(layout: dict[str, Any], member: Callable[[int], Any], k: int) -> memoryview:
    import pyarrow as pa

    size = int(layout.get("small_bytes", 0))
    if not size:
        return memoryview(b"")
    return memoryview(pa.decompress(member(k), decompressed_size=size, codec="zstd", asbytes=True))


def decode_stream(layout: dict[str, Any], member: Callable[[int], Any]) -> xr.Dataset:
    """Read a stream eagerly. *member(k)* gives member *k*: bytes or a pyarrow buffer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays: dict[str, Any] = {}
    blob: memoryview | None = None
    for i, group in enumerate(layout["groups"]):
        vars_ = [v for v in layout["vars"] if v["group"] == i]
        if not vars_:
            continue
        rows = int(group["rows"])
        if group.get("small"):
            if blob is None:
                blob = _small_block(layout, member, int(group["member"]))
            for var in vars_:
                arrays[var["name"]] = _shaped(_blob_values(blob, var, rows if var["dims"] else 1), var)
            continue
        table = pq.read_table(pa.BufferReader(member(int(group["member"]))), use_threads=True)
        for var in vars_:
            arrays[var["name"]] = _values(table, var, rows)
    return _dataset(layout, arrays)


def _shaped(values: np.ndarray, var: dict[str, Any]) -> np.ndarray:
    return values.reshape(()) if not var["dims"] else values


def _split_values(table: Any, var: dict[str, Any], rows: int) -> np.ndarray:
    """A vector stored one column per component, assembled column by column (the result
    is Fortran-ordered: each component is one contiguous copy)."""
    cols = var["columns"]
    out = np.empty((len(cols), rows), dtype=table.column(cols[0]).type.to_pandas_dtype())
    for j, name in enumerate(cols):
        at = 0
        for chunk in table.column(name).chunks:
            n = len(chunk)
            out[j, at:at + n] = chunk.to_numpy(zero_copy_only=False)
            at += n
    return _restore(out.T, var, rows)


def _column_names(var: dict[str, Any]) -> list[str]:
    """The Parquet columns a variable is stored in."""
    return list(var.get("columns") or [var["name"]])


def _values(table: Any, var: dict[str, Any], rows: int) -> np.ndarray:
    name = var["name"]
    shape = (rows, *var["tail"]) if var["dims"] else ()
    if var.get("columns") and var["columns"][0] in table.column_names:
        return _split_values(table, var, rows)
    if name not in table.column_names:  # no values: a zero-width row
        return np.zeros(shape, dtype=np.dtype(var["dtype"]))
    values = _to_numpy(table.column(name), var, rows if var["dims"] else 1)
    return values.reshape(shape) if not var["dims"] else values


# --------------------------------------------------------------------------- lazy reads


class _Tables:
    """The Parquet tables of one stream, opened on demand (a source per table)."""

    def __init__(self, member: Callable[[int], Any]) -> None:
        self._member = member
        self._files: dict[int, Any] = {}

    def file(self, i: int) -> Any:
        pf = self._files.get(i)
        if pf is None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pf = self._files[i] = pq.ParquetFile(pa.BufferReader(self._member(i)))
        return pf


def _read_rows(member: Callable[[int], Any], group: int, column: str, var: dict[str, Any],
               first: int, last: int) -> np.ndarray:
    """Row groups ``first..last`` of one column (a dask task: opens the table itself)."""
    pf = _Tables(member).file(group)
    table = pf.read_row_groups(list(range(first, last + 1)), columns=_column_names(var), use_threads=last > first)
    return _values(table, var, table.num_rows)


def open_lazy(layout: dict[str, Any], member: Callable[[int], Any], *, indexes: bool = True,
              token: str = "") -> xr.Dataset:
    """A dask-backed stream: one chunk per row group, read when computed.

    *member* must be picklable for work on other processes. *token* names the dask
    arrays (a run id and stream); :func:`direct_reader` then finds their columns.
    With *indexes*, coordinates of one dimension (``time``) are read now, as xarray
    indexes need them.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    tables = _Tables(member)
    arrays: dict[str, Any] = {}
    blob: memoryview | None = None
    for var in layout["vars"]:
        group = layout["groups"][var["group"]]
        rows = int(group["rows"])
        k = int(group["member"])
        if group.get("small"):  # small: decoded now, dask-backed all the same
            if blob is None:
                blob = _small_block(layout, member, k)
            values = _shaped(_blob_values(blob, var, rows if var["dims"] else 1), var)
            keep = not var["dims"] or (indexes and var["coord"] and len(var["dims"]) == 1)
            if keep:
                arrays[var["name"]] = values
                continue
            name = f"wb-{token or f'{id(layout):x}'}-{var['name']}"
            arrays[var["name"]] = da.from_array(values, chunks=values.shape, name=name)
            _DIRECT[name] = values
            _DIRECT.move_to_end(name)
            continue
        dtype = np.dtype(var["dtype"])
        tail = tuple(var["tail"])
        stored = _column_names(var)[0] in _columns(tables, k)
        if not var["dims"] or not stored or (indexes and var["coord"] and len(var["dims"]) == 1):
            table = tables.file(k).read(columns=_column_names(var) if stored else [])
            arrays[var["name"]] = _values(table, var, rows)
            continue
        md = tables.file(k).metadata
        sizes = [md.row_group(j).num_rows for j in range(md.num_row_groups)] or [0]
        name = f"wb-{token}-{var['name']}" if token else f"wb-{id(layout):x}-{var['name']}"
        dsk: dict[Any, Any] = {}
        spans = _chunk_spans(sizes, dtype.itemsize * int(np.prod(tail, dtype=np.int64)) if tail else dtype.itemsize)
        for j, (first, last) in enumerate(spans):
            key = (name, j, *([0] * len(tail)))
            rows_j = sum(sizes[first:last + 1])
            dsk[key] = (_read_rows, member, k, var["name"], var, first, last) if rows_j else (
                np.zeros, (0, *tail), dtype)
        chunks = (tuple(sum(sizes[a:b + 1]) for a, b in spans), *((t,) for t in tail))
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
        arrays[var["name"]] = da.Array(graph, name, chunks, dtype=dtype)
        _DIRECT[name] = (member, k, var, sizes)
        _DIRECT.move_to_end(name)
    while len(_DIRECT) > _DIRECT_MAX:
        _DIRECT.popitem(last=False)
    return _dataset(layout, arrays, indexes=indexes)


DASK_CHUNK_BYTES = 64 * 1024 * 1024
"""Bytes of one dask chunk of a lazily opened variable: consecutive row groups up to this."""


def _chunk_spans(sizes: Sequence[int], row_bytes: int) -> list[tuple[int, int]]:
    """Consecutive row groups ``(first, last)`` of about :data:`DASK_CHUNK_BYTES` each."""
    spans: list[tuple[int, int]] = []
    start, acc = 0, 0
    for j, n in enumerate(sizes):
        if j > start and (acc + n) * row_bytes > DASK_CHUNK_BYTES:
            spans.append((start, j - 1))
            start, acc = j, 0
        acc += n
    spans.append((start, len(sizes) - 1))
    return spans


def _columns(tables: _Tables, group: int) -> list[str]:
    return list(tables.file(group).schema_arrow.names)


_DIRECT: OrderedDict[str, tuple[Callable[[int], Any], int, dict[str, Any], list[int]] | np.ndarray] = OrderedDict()
_DIRECT_MAX = 4096


# --------------------------------------------------------------------------- direct reads


_FOLIO = 2 * 2**20
"""Largest run of file pages the OS maps at once around a page read (a PMD-size folio)."""


def _byte_span(group: Any, columns: Sequence[str]) -> tuple[int, int]:
    """Bytes ``[start, stop)`` of a Parquet row group's chunks of *columns*."""
    lo, hi = None, 0
    for j in range(group.num_columns):
        col = group.column(j)
        if columns and col.path_in_schema not in columns:
            continue
        start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
        lo = start if lo is None else min(lo, start)
        hi = max(hi, start + col.total_compressed_size)
    return (lo or 0), hi


class ColumnReader:
    """Rows of one stored column read row group by row group, without dask: what a
    scan over a long stream spends its time on (see :class:`workbench.pieces.StreamPieces`).

    The last decoded row group is kept, so consecutive reads that do not end on a group
    boundary decode each group once. ``shape``, ``dtype`` and ``chunk_rows`` (rows per
    row group) as an array's; :meth:`clone` gives a reader of the same column for
    another thread.
    """

    def __init__(self, member: Callable[[int], Any], group: int, var: dict[str, Any], sizes: Sequence[int]) -> None:
        self._member, self._group, self._var = member, group, var
        self._sizes = list(sizes)
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)]).astype(np.int64)
        self.shape = (int(self._starts[-1]), *(int(t) for t in var["tail"]))
        self.dtype = np.dtype(var["dtype"])
        self.chunk_rows = max(self._sizes) if self._sizes else 1
        self._file: Any = None
        self._release: Callable[[int, int], None] | None = None
        self._reads = 0
        self._cached: tuple[int, np.ndarray] | None = None

    def clone(self) -> ColumnReader:
        """A reader of the same column with its own file handle and cache."""
        return ColumnReader(self._member, self._group, self._var, self._sizes)

    def _rows_of(self, k: int) -> np.ndarray:
        if self._cached is not None and self._cached[0] == k:
            return self._cached[1]
        if self._file is None:
            mapped = getattr(self._member, "mapped", None)
            if mapped is not None:
                import pyarrow as pa
                import pyarrow.parquet as pq

                buf, self._release = mapped(self._group)
                self._file = pq.ParquetFile(pa.BufferReader(buf))
            else:
                self._file = _Tables(self._member).file(self._group)
        columns = _column_names(self._var)
        table = self._file.read_row_group(k, columns=columns, use_threads=False)
        values = _values(table, self._var, table.num_rows)
        if self._release is not None:  # a long scan keeps only what it decodes resident
            lo, hi = _byte_span(self._file.metadata.row_group(k), ())
            self._release(lo, hi)
            self._reads += 1
            if self._reads % 16 == 0:  # the OS maps whole folios around a read, partly before it:
                span = max(hi - lo, _FOLIO)  # now and then, release far enough behind every reader
                self._release(lo - 24 * span, lo - 4 * span)
        self._cached = (k, values)
        return values

    def read(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``[a, b)``. Rows within one row group come as a view of the decoded
        group (valid until the next read); rows across groups are copied, into *out*
        (its first ``b - a`` rows) when given."""
        a, b = max(0, int(a)), min(self.shape[0], int(b))
        n = max(0, b - a)
        if n == 0:
            return out[:0] if out is not None else np.empty((0, *self.shape[1:]), dtype=self.dtype)
        k = int(np.searchsorted(self._starts, a, side="right") - 1)
        lo = int(self._starts[k])
        if b <= int(self._starts[k + 1]):  # one group: no copy
            return self._rows_of(k)[a - lo: b - lo]
        dest = out[:n] if out is not None else np.empty((n, *self.shape[1:]), dtype=self.dtype)
        at = a
        while at < b:
            lo, hi = int(self._starts[k]), int(self._starts[k + 1])
            take = min(b, hi) - at
            dest[at - a: at - a + take] = self._rows_of(k)[at - lo: at - lo + take]
            at += take
            k += 1
        return dest

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows at the sorted indices *index*."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((index.size, *self.shape[1:]), dtype=self.dtype)
        if index.size == 0:
            return out
        groups = np.searchsorted(self._starts, index, side="right") - 1
        for k in np.unique(groups):
            sel = groups == k
            out[sel] = self._rows_of(int(k))[index[sel] - self._starts[k]]
        return out


class MemoryColumn:
    """A column of a small table, already decoded, with the interface of
    :class:`ColumnReader` (so a scan treats every column of a lazy stream alike)."""

    chunk_rows = 1

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self.shape = tuple(values.shape)
        self.dtype = values.dtype

    def clone(self) -> MemoryColumn:
        """This reader (it holds no state)."""
        return self

    def read(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``[a, b)``; into *out* when given."""
        rows = self._values[max(0, int(a)): max(0, int(b))]
        if out is None:
            return rows
        out[: len(rows)] = rows
        return out[: len(rows)]

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows at *index*."""
        return self._values[np.asarray(index, dtype=np.int64)]


def direct_reader(arr: Any) -> ColumnReader | MemoryColumn | None:
    """A reader of the dask array *arr* when it is a whole numeric column opened by
    :func:`open_lazy`; else None."""
    src = _DIRECT.get(getattr(arr, "name", None) or "")
    if src is None:
        return None
    if isinstance(src, np.ndarray):
        if src.dtype.kind not in "biuf" or src.shape != tuple(arr.shape):
            return None
        return MemoryColumn(src)
    if src[2]["kind"] in ("text", "bytes"):
        return None
    rd = ColumnReader(*src)
    if rd.shape != tuple(arr.shape) or rd.dtype != arr.dtype:
        return None
    return rd


# --------------------------------------------------------------------------- parts


class _Spool:
    """Where one table of a stream written part by part goes: memory, then a file."""

    def __init__(self) -> None:
        self.fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by the writer's owner

    def getvalue(self) -> bytes:
        self.fh.seek(0)
        return self.fh.read()

    def __bytes__(self) -> bytes:
        return self.getvalue()

    def copy_to(self, out: Any) -> None:
        """Copy the table into the open binary file *out*."""
        import shutil

        self.fh.seek(0)
        shutil.copyfileobj(self.fh, out, 1 << 20)
        self.fh.close()


class ParquetStreamWriter:
    """Write one stream that arrives in parts (consecutive pieces along ``time``).

    Memory stays bounded by about one row group per growing table: rows are buffered
    until a row group (:data:`APPEND_GROUP_BYTES` of the widest column) is ready, which
    is compressed and written at once. Tables grow along the dims of
    :data:`~workbench.model.APPEND_DIMS`; other variables (the ``joint`` coordinate …)
    must be equal in every part.

    Parts must share variables, dims and dtypes and follow each other in time. When a
    part breaks that (joint names that change mid-log, out-of-order chunks), the writer
    falls back to collecting the stream in memory and writes it whole at :meth:`close`
    (:func:`~workbench.model.concat_parts`): correct, but bounded by the stream's size.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> part = lambda t: xr.Dataset({"v": ("time", np.ones(len(t)))}, coords={"time": np.array(t)})
    >>> w = ParquetStreamWriter()
    >>> w.append(part([1, 2])); w.append(part([3]))
    >>> layout, tables = w.close()
    >>> summary(layout)["dims"], decode_stream(layout, lambda i: bytes(tables[i]))["v"].size
    ({'time': 3}, 3)
    """

    def __init__(self, *, budget: int = APPEND_GROUP_BYTES) -> None:
        self.budget = budget
        self._first: xr.Dataset | None = None
        self._spill: list[xr.Dataset] | None = None
        self._layout: dict[str, Any] | None = None
        self._groups: list[dict[str, Any]] = []
        self._fixed: dict[str, np.ndarray] = {}
        self._span: tuple[int, int] | None = None
        self._closed = False

    @property
    def span(self) -> tuple[int, int] | None:
        """First and last time (int64 ns) written so far."""
        return self._span

    def append(self, ds: xr.Dataset) -> None:
        """Add the next part."""
        if self._closed:
            msg = "stream writer is closed"
            raise ValueError(msg)
        if self._spill is not None:
            self._spill.append(ds)
            self._note_span(ds)
            return
        if self._first is None and self._layout is None:
            self._first = ds
            self._note_span(ds)
            return
        if self._first is not None:
            first, self._first = self._first, None
            if not self._start(first):
                self._spill = [first, ds]
                self._note_span(ds)
                return
        if self._compatible(ds):
            self._add(ds)
        else:
            self._to_memory()
            assert self._spill is not None
            self._spill.append(ds)
            self._note_span(ds)

    def close(self) -> tuple[dict[str, Any], list[Any]]:
        """The layout and the tables: bytes, or a spooled file (``bytes(table)`` reads it,
        ``table.copy_to(fh)`` copies it) for tables written row group by row group."""
        self._closed = True
        if self._first is not None or self._spill is not None:
            parts = [self._first] if self._first is not None else list(self._spill or [])
            ds = parts[0] if len(parts) == 1 else concat_parts(parts)
            return encode_stream(ds)
        if self._layout is None:
            msg = "stream writer received no part"
            raise ValueError(msg)
        return self._finish()

    # ---- internals
    def _note_span(self, ds: xr.Dataset) -> None:
        if not ds.sizes.get("time", 0):
            return
        t = np.asarray(ds["time"].values)
        if t.dtype.kind == "M":
            t = t.astype("datetime64[ns]").astype(np.int64)
        lo, hi = int(t.min()), int(t.max())
        self._span = (lo, hi) if self._span is None else (min(lo, self._span[0]), max(hi, self._span[1]))

    def _start(self, ds: xr.Dataset) -> bool:
        if "time" not in ds.dims or not _sorted(ds):
            return False
        try:
            layout, groups = _plan(ds)
        except TypeError:
            return False
        self._layout = layout
        for i, (dim, vars_) in enumerate(groups):
            grows = dim in APPEND_DIMS
            if not grows:
                for name, _k, values in vars_:
                    self._fixed[name] = values
            names = [n for n, _k, v in vars_ if _width(v)]
            self._groups.append({
                "dim": dim, "grows": grows, "names": names,
                "kinds": {n: k for n, k, _v in vars_},
                "rows_per_group": _group_rows(vars_, self.budget),
                "pending": [], "pending_rows": 0, "rows": 0 if grows else (int(vars_[0][2].shape[0]) if vars_ else 0),
                "spool": None, "writer": None, "layout_index": i,
            })
        self._add(ds)
        return True

    def _compatible(self, ds: xr.Dataset) -> bool:
        assert self._layout is not None
        if set(map(str, ds.variables)) != {v["name"] for v in self._layout["vars"]} or not _sorted(ds):
            return False
        for var in self._layout["vars"]:
            v = ds.variables[var["name"]]
            dims, values, _order = _time_first(v)
            if list(dims) != var["dims"] or values.dtype.str != var["dtype"] or list(values.shape[1:]) != var["tail"]:
                return False
            if var["name"] in self._fixed:
                try:
                    _k, stored, _e = _storage(var["name"], values)
                except TypeError:
                    return False
                if not np.array_equal(stored if dims else stored.reshape(1), self._fixed[var["name"]]):
                    return False
        if ds.sizes.get("time", 0) and self._span is not None and int(_ns_first(ds)) < self._span[1]:
            return False
        for key, value in ds.attrs.items():
            attrs = self._layout["attrs"]
            if key not in attrs:
                attrs[key] = json_safe(value)
            elif key == "notes" and str(value) not in str(attrs[key]):
                attrs[key] = f"{attrs[key]}; {value}"
        return True

    def _add(self, ds: xr.Dataset) -> None:
        self._note_span(ds)
        for g in self._groups:
            if not g["grows"]:
                continue
            cols: dict[str, np.ndarray] = {}
            n = None
            for name, _kind in g["kinds"].items():
                _d, values, _o = _time_first(ds.variables[name])
                _k, stored, _e = _storage(name, values)
                n = len(stored)
                if name in g["names"]:
                    cols[name] = stored
            if n:
                g["pending"].append((cols, n))
                g["pending_rows"] += n
            if g["pending_rows"] >= g["rows_per_group"]:
                self._flush(g, final=False)

    def _flush(self, g: dict[str, Any], *, final: bool) -> None:
        import pyarrow.parquet as pq

        while g["pending_rows"] >= g["rows_per_group"] or (final and g["pending_rows"]):
            want = min(g["rows_per_group"], g["pending_rows"])
            take: list[tuple[dict[str, np.ndarray], int]] = []
            got = 0
            while got < want:
                cols, n = g["pending"][0]
                k = min(want - got, n)
                take.append(({c: v[:k] for c, v in cols.items()}, k))
                got += k
                if k == n:
                    g["pending"].pop(0)
                else:
                    g["pending"][0] = ({c: v[k:] for c, v in cols.items()}, n - k)
            merged = [(name, g["kinds"][name], np.concatenate([c[name] for c, _ in take]) if len(take) > 1
                       else take[0][0][name]) for name in g["names"]]
            table = _table(merged, got)
            if g["writer"] is None:
                g["spool"] = _Spool()
                g["writer"] = pq.ParquetWriter(g["spool"].fh, table.schema,
                                               **_write_options(table.schema, [g["kinds"].get(n, "num") for n in table.column_names]))
            g["writer"].write_table(table, row_group_size=got)
            g["rows"] += got
            g["pending_rows"] -= got
        if g["pending"]:  # copies: a view would keep a whole part alive
            g["pending"] = [({c: v.copy() for c, v in cols.items()}, n) for cols, n in g["pending"]]

    def _finish(self) -> tuple[dict[str, Any], list[Any]]:
        assert self._layout is not None
        groups: list[tuple[str | None, list[tuple[str, str, np.ndarray]]]] = []
        rows_of: list[int] = []
        written: dict[int, Any] = {}
        for g in self._groups:
            i = g["layout_index"]
            names = [v["name"] for v in self._layout["vars"] if v["group"] == i]
            if g["grows"] and g["writer"] is not None:  # row groups written: write the rest, close
                self._flush(g, final=True)
                g["writer"].close()
                written[i] = g["spool"]
                groups.append((g["dim"], []))
            elif g["grows"]:  # less than a row group in all: encoded like a whole stream's
                vars_ = []
                for name in names:
                    var = next(v for v in self._layout["vars"] if v["name"] == name)
                    if name in g["names"] and g["pending"]:
                        values = np.concatenate([c[name] for c, _n in g["pending"]])
                    else:
                        values = np.zeros((g["pending_rows"], *var["tail"], *var.get("extra", ())),
                                          dtype=_empty(var).dtype)
                    vars_.append((name, g["kinds"][name], values))
                g["rows"] = g["pending_rows"]
                groups.append((g["dim"], vars_))
            else:
                groups.append((g["dim"], [(n, g["kinds"][n], self._fixed[n]) for n in names]))
            rows_of.append(g["rows"])
        return self._layout, _encode_groups(self._layout, groups, rows_of, self.budget, written)

    def _to_memory(self) -> None:
        """Fall back: read back what was written, keep the stream in memory from now on."""
        layout, members = self._finish()

        def member(i: int) -> bytes:
            m = members[i]
            return m if isinstance(m, bytes) else m.getvalue()

        back = decode_stream(layout, member)
        self._layout, self._groups, self._fixed = None, [], {}
        self._spill = [back]


def _empty(var: dict[str, Any]) -> np.ndarray:
    _k, stored, _e = _storage(var["name"], np.zeros((0, *var["tail"]), dtype=np.dtype(var["dtype"])))
    return stored


def _ns_first(ds: xr.Dataset) -> int:
    t = np.asarray(ds["time"].values[:1])
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").astype(np.int64)
    return int(t[0])


def _sorted(ds: xr.Dataset) -> bool:
    if "time" not in ds.variables or ds.sizes.get("time", 0) < 2:
        return True
    t = np.asarray(ds["time"].values)
    return not bool(np.any(t[1:] < t[:-1]))


def layout_json(layout: dict[str, Any]) -> bytes:
    """The layout as compact JSON bytes."""
    return json.dumps(layout, separators=(",", ":"), sort_keys=True).encode()

