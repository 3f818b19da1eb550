"""Write and read a stream (an xarray Dataset) as a Zarr v3 group, fast.

Writing through ``xarray.Dataset.to_zarr`` costs several milliseconds per array in
zarr-python's async machinery; a run has dozens of small arrays, so ingest would be
dominated by it. This module writes the same Zarr v3 layout directly (metadata JSON
and Blosc-compressed chunks, the format of the Zarr v3 specification), which
``xarray.open_zarr`` and zarr-python read back unchanged. Anything it does not
handle (datetimes, complex numbers, non-string objects) goes through xarray.
:func:`read_stream` reads such a group eagerly into memory the same direct way,
and defers to ``xarray.open_zarr`` for codecs it does not know.

Stores now keep streams as Parquet (:mod:`workbench.columnar`); this module writes
Zarr for the tests of the reading path and reads the streams of stores written by
earlier releases (``workbench migrate`` rewrites those).

Examples
--------
>>> import numpy as np, xarray as xr, tempfile, os
>>> ds = xr.Dataset({"v": ("time", [1.0, 2.0])}, coords={"time": np.array([5, 6])})
>>> d = tempfile.mkdtemp()
>>> write_stream(ds, os.path.join(d, "s.zarr"))
>>> xr.open_zarr(os.path.join(d, "s.zarr"))["v"].values.tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from workbench.model import json_safe

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "CHUNK_BYTES",
    "UnsupportedLayout",
    "read_stream",
    "supported",
    "write_stream",
]

CHUNK_BYTES = 8 * 1024 * 1024
SEPARATOR = "."
"""Chunk key separator: ``c.0.0`` files beside ``zarr.json``, no ``c/0/`` folders (a run
has dozens of small arrays; folders cost as much as files on ingest)."""
_NUMERIC = {"b": "bool", "i": "int", "u": "uint", "f": "float"}


def _dtype_name(dt: np.dtype) -> str | None:
    if dt.kind == "b":
        return "bool"
    if dt.kind in "iuf" and dt.itemsize in (1, 2, 4, 8) and not (dt.kind == "f" and dt.itemsize == 1):
        return f"{_NUMERIC[dt.kind]}{8 * dt.itemsize}"
    return None


def _is_text(values: np.ndarray) -> bool:
    if values.dtype.kind in "UST":
        return True
    if values.dtype.kind == "O":
        return all(isinstance(v, str) for v in values.ravel().tolist())
    return False


def supported(ds: xr.Dataset) -> bool:
    """Whether every variable has a dtype this writer handles."""
    for var in ds.variables.values():
        if var.ndim == 0:
            return False  # scalars go through xarray
        values = var.values if var.dtype.kind in "OUST" else None
        if values is not None:
            if not _is_text(values):
                return False
        elif _dtype_name(var.dtype) is None:
            return False
    return True


def _fill(dt: np.dtype) -> Any:
    if dt.kind == "f":
        return "NaN"
    if dt.kind == "b":
        return False
    return 0


def _chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    if not shape:
        return ()
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    first = max(1, min(shape[0], CHUNK_BYTES // max(1, row * itemsize)))
    return (first, *shape[1:])


def _json_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return json_safe(dict(attrs))


class _Sink:
    """Where bytes go: the local filesystem or an fsspec filesystem."""

    def __init__(self, fs: Any = None) -> None:
        self.fs = fs
        self._made: set[str] = set()

    def put(self, p: str, data: bytes | memoryview) -> None:
        if self.fs is None:
            with open(p, "wb") as fh:
                fh.write(data)
        else:
            self.fs.pipe_file(p, bytes(data))

    def makedirs(self, p: str) -> None:
        if p in self._made:
            return
        if self.fs is None:
            try:
                os.mkdir(p)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(p, exist_ok=True)
        else:
            self.fs.makedirs(p, exist_ok=True)
        self._made.add(p)

    def join(self, *parts: str) -> str:
        return os.path.join(*parts) if self.fs is None else "/".join(parts)

    def rmtree(self, p: str) -> None:
        if self.fs is None:
            import shutil

            shutil.rmtree(p, ignore_errors=True)
        elif self.fs.exists(p):
            self.fs.rm(p, recursive=True)
        self._made = {d for d in self._made if not d.startswith(p)}

    def chunk_key(self, arr_dir: str, index: list[int]) -> str:
        return self.join(arr_dir, SEPARATOR.join(["c", *map(str, index)]))


def _coordinates_attr(ds: xr.Dataset, name: str, var: Any) -> str:
    coord_names = [str(c) for c in ds.coords if str(c) not in ds.dims]
    if name in ds.data_vars and coord_names:
        shared = [c for c in coord_names if set(ds[c].dims) <= set(var.dims)]
        return " ".join(shared)
    return ""


def _base_meta(shape: tuple[int, ...], attrs: dict[str, Any], dims: tuple[str, ...]) -> dict[str, Any]:
    return {
        "shape": list(shape),
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": SEPARATOR}},
        "attributes": attrs,
        "dimension_names": [str(d) for d in dims],
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }


def _numeric_meta(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: np.dtype,
    attrs: dict[str, Any],
    dims: tuple[str, ...],
    clevel: int,
) -> dict[str, Any]:
    meta = _base_meta(shape, attrs, dims)
    bytes_codec: dict[str, Any] = (
        {"name": "bytes"} if dtype.itemsize == 1 else {"name": "bytes", "configuration": {"endian": "little"}}
    )
    meta.update(
        data_type=_dtype_name(dtype),
        chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        fill_value=_fill(dtype),
        codecs=[
            bytes_codec,
            {
                "name": "blosc",
                "configuration": {
                    "typesize": dtype.itemsize,
                    "cname": "lz4",
                    "clevel": clevel,
                    "shuffle": "shuffle",
                    "blocksize": 0,
                },
            },
        ],
    )
    return meta


def _little(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.dtype.byteorder == ">":
        values = values.astype(values.dtype.newbyteorder("<"))
    return values


def _encode_chunks(
    sink: _Sink, arr_dir: str, values: np.ndarray, rows: int, first_index: int, clevel: int, *, pad: bool
) -> int:
    """Write ``values`` as chunks of *rows* rows starting at chunk *first_index*.

    Only whole chunks are written unless *pad* (then the last one is padded, as zarr
    stores edge chunks); returns the number of rows written.
    """
    import numcodecs

    codec = numcodecs.Blosc(cname="lz4", clevel=clevel, shuffle=numcodecs.Blosc.SHUFFLE)
    n = values.shape[0]
    full = n // rows
    tail = n - full * rows
    zeros = [0] * (values.ndim - 1)
    for i in range(full):
        block = values[i * rows : (i + 1) * rows]
        sink.put(sink.chunk_key(arr_dir, [first_index + i, *zeros]), codec.encode(np.ascontiguousarray(block)))
    if tail and pad:
        block = values[full * rows :]
        padding = np.zeros((rows - tail, *block.shape[1:]), dtype=values.dtype)
        if values.dtype.kind == "f":
            padding[...] = np.nan
        block = np.concatenate([block, padding])
        sink.put(sink.chunk_key(arr_dir, [first_index + full, *zeros]), codec.encode(block))
        return n
    return full * rows


def _write_text(sink: _Sink, arr_dir: str, values: np.ndarray, meta: dict[str, Any]) -> None:
    import numcodecs

    flat = np.array([str(v) for v in values.ravel().tolist()], dtype=object)
    chunk = values.shape or ()
    meta.update(
        data_type="string",
        chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunk) or []}},
        fill_value="",
        codecs=[
            {"name": "vlen-utf8", "configuration": {}},
            {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
        ],
    )
    sink.put(sink.join(arr_dir, "zarr.json"), _dumps(meta))
    if flat.size:
        raw = numcodecs.VLenUTF8().encode(flat)
        data = numcodecs.Zstd(level=0).encode(raw)
        sink.put(sink.chunk_key(arr_dir, [0] * values.ndim), bytes(data))


def write_stream(ds: xr.Dataset, path: str, *, fs: Any = None, clevel: int = 5) -> None:
    """Write *ds* as a Zarr v3 group at *path*.

    Parameters
    ----------
    fs
        An fsspec filesystem for non-local stores (default: the local filesystem).
    clevel
        Blosc (lz4, byte shuffle) compression level.
    """
    sink = _Sink(fs)
    sink.makedirs(path)
    sink.put(
        sink.join(path, "zarr.json"),
        _dumps({"attributes": _json_attrs(ds.attrs), "zarr_format": 3, "node_type": "group"}),
    )
    for name, var in ds.variables.items():
        name = str(name)
        attrs = _json_attrs(var.attrs)
        coords = _coordinates_attr(ds, name, var)
        if coords:
            attrs["coordinates"] = coords
        values = np.asarray(var.values)
        dims = tuple(str(d) for d in var.dims)
        arr_dir = sink.join(path, name)
        sink.makedirs(arr_dir)
        if values.dtype.kind in "OUST":
            _write_text(sink, arr_dir, values, _base_meta(values.shape, attrs, dims))
            continue
        values = _little(values)
        if _dtype_name(values.dtype) is None:  # pragma: no cover - callers check supported() first
            msg = f"variable {name!r}: dtype {values.dtype} is not supported"
            raise TypeError(msg)
        chunks = _chunk_shape(values.shape, values.dtype.itemsize)
        meta = _numeric_meta(values.shape, chunks, values.dtype, attrs, dims, clevel)
        sink.put(sink.join(arr_dir, "zarr.json"), _dumps(meta))
        if values.size == 0:
            continue
        _encode_chunks(sink, arr_dir, values, chunks[0], 0, clevel, pad=True)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class UnsupportedLayout(Exception):
    """The group uses a Zarr feature :func:`read_stream` does not read (use xarray)."""


_DTYPES = {"bool": np.bool_, **{f"{k}{b}": np.dtype(f"{c}{b // 8}") for k, c in (("int", "i"), ("uint", "u"), ("float", "f")) for b in (8, 16, 32, 64) if not (k == "float" and b == 8)}}


def _decode_chunk(raw: bytes, codecs: list[dict[str, Any]], dtype: Any, count: int) -> np.ndarray:
    import numcodecs

    data: Any = raw
    for codec in reversed(codecs[1:]):
        name = codec["name"]
        if name == "blosc":
            data = numcodecs.Blosc().decode(data)
        elif name == "zstd":
            data = numcodecs.Zstd().decode(data)
        elif name == "gzip":
            data = numcodecs.GZip().decode(data)
        else:
            raise UnsupportedLayout(name)
    first = codecs[0]["name"]
    if first == "vlen-utf8":
        return np.asarray(numcodecs.VLenUTF8().decode(bytes(data)), dtype=object)
    if first != "bytes" or codecs[0].get("configuration", {}).get("endian", "little") != "little":
        raise UnsupportedLayout(first)
    return np.frombuffer(bytes(data), dtype=dtype, count=count)


class _Layout(NamedTuple):
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    sep: str
    dtype_name: str
    dtype: Any
    fixed_text: np.dtype | None
    codecs: list[dict[str, Any]]


def _layout(meta: dict[str, Any], name: str) -> _Layout:
    """Shape, chunking and data type of one array's ``zarr.json``; raises
    :class:`UnsupportedLayout` for what :func:`read_stream` does not read."""
    if meta.get("node_type") != "array":
        raise UnsupportedLayout(f"{name}: nested group")
    shape = tuple(meta["shape"])
    if not shape:
        raise UnsupportedLayout(f"{name}: scalar")
    dtype_name = meta["data_type"]
    fixed_text: np.dtype | None = None
    if isinstance(dtype_name, dict):
        if dtype_name.get("name") != "fixed_length_utf32":
            raise UnsupportedLayout(f"{name}: data type {dtype_name}")
        fixed_text = np.dtype(f"<U{int(dtype_name['configuration']['length_bytes']) // 4}")
        dtype_name = "fixed_length_utf32"
    text = dtype_name == "string"
    if not text and fixed_text is None and dtype_name not in _DTYPES:
        raise UnsupportedLayout(f"{name}: data type {dtype_name}")
    grid = meta["chunk_grid"]
    if grid.get("name") != "regular" or meta["chunk_key_encoding"].get("name") != "default":
        raise UnsupportedLayout(f"{name}: chunk layout")
    chunks = tuple(grid["configuration"]["chunk_shape"])
    if chunks[1:] != shape[1:] and int(np.prod(shape)) > 0:
        raise UnsupportedLayout(f"{name}: chunked along more than the first axis")
    sep = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
    if sep not in ("/", "."):
        raise UnsupportedLayout(f"{name}: chunk key separator {sep!r}")
    dtype = object if text else fixed_text if fixed_text is not None else _DTYPES[dtype_name]
    return _Layout(shape, chunks, sep, dtype_name, dtype, fixed_text, list(meta["codecs"]))


class ChunkReader:
    """Rows of one numeric Zarr v3 array written by :func:`write_stream`, decoded chunk
    by chunk straight from its files (no dask graph, no zarr-python per-chunk
    machinery): what a scan over a long stream spends its time on.

    The last decoded chunk is kept, so consecutive reads that do not end on a chunk
    boundary decode each chunk once.

    Parameters
    ----------
    path
        The array's folder (``…/stream.zarr/variable``), local.

    Examples
    --------
    >>> import os, tempfile, numpy as np, xarray as xr
    >>> d = tempfile.mkdtemp()
    >>> write_stream(xr.Dataset({"v": ("time", np.arange(10.0))}, coords={"time": np.arange(10)}), os.path.join(d, "s.zarr"))
    >>> ChunkReader(os.path.join(d, "s.zarr", "v")).read(3, 6).tolist()
    [3.0, 4.0, 5.0]
    """

    def __init__(self, path: str) -> None:
        with open(os.path.join(path, "zarr.json"), "rb") as fh:
            meta = json.loads(fh.read())
        lay = _layout(meta, os.path.basename(path))
        if lay.dtype is object or lay.fixed_text is not None:
            raise UnsupportedLayout(f"{path}: text")
        attrs = meta.get("attributes") or {}
        if any(k in attrs for k in ("scale_factor", "add_offset", "_FillValue", "units", "calendar")):
            raise UnsupportedLayout(f"{path}: encoded values")  # xarray decodes these: let it
        self.path = path
        self.shape = lay.shape
        self.dtype = np.dtype(lay.dtype)
        self.chunk_rows = int(lay.chunks[0])
        self._layout = lay
        self._row = int(np.prod(self.shape[1:], dtype=np.int64))
        self._cached: tuple[int, np.ndarray] | None = None
        self._buf: np.ndarray | None = None  # the cached chunk, decoded in place

    def clone(self) -> ChunkReader:
        """A reader of the same array with its own cache (for another thread)."""
        return ChunkReader(self.path)

    def _chunk(self, i: int) -> np.ndarray:
        if self._cached is not None and self._cached[0] == i:
            return self._cached[1]
        lay = self._layout
        if self._buf is None:
            self._buf = np.empty((self.chunk_rows, *self.shape[1:]), dtype=self.dtype)
        self._cached = None
        if self._decode_into(i, self._buf):  # into the one reused buffer: no fresh memory per chunk
            self._cached = (i, self._buf)
            return self._buf
        key = os.path.join(self.path, lay.sep.join(["c", str(i), *(["0"] * (len(self.shape) - 1))]))
        count = self.chunk_rows * self._row
        try:
            with open(key, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            fill = np.nan if self.dtype.kind == "f" else 0
            values = np.full(count, fill, dtype=self.dtype)
        else:
            values = _decode_chunk(raw, lay.codecs, self.dtype, count)
        values = values.reshape((self.chunk_rows, *self.shape[1:]))
        self._cached = (i, values)
        return values

    def read(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``[a, b)`` as a numpy array: a new one, or the first ``b - a`` rows of
        *out* (C-contiguous, this array's dtype and row shape), which a scan reuses for
        every piece (on some systems first-touching fresh memory costs more than
        decoding into it). Chunks that lie wholly inside the range are decoded straight
        into the result."""
        a, b = max(0, a), min(self.shape[0], b)
        rows = max(0, b - a)
        if out is None:
            out = np.empty((rows, *self.shape[1:]), dtype=self.dtype)
        else:
            if out.dtype != self.dtype or out.shape[1:] != self.shape[1:] or out.shape[0] < rows or not out.flags.c_contiguous:
                msg = f"out must be C-contiguous {self.dtype} with ≥ {rows} rows of shape {self.shape[1:]}"
                raise ValueError(msg)
            out = out[:rows]
        r = self.chunk_rows
        pos = a
        while pos < b:
            i = pos // r
            end = min(b, (i + 1) * r)
            if pos == i * r and end == (i + 1) * r and self._decode_into(i, out[pos - a : end - a]):
                pos = end
                continue
            out[pos - a : end - a] = self._chunk(i)[pos - i * r : end - i * r]
            pos = end
        return out

    def _decode_into(self, i: int, dest: np.ndarray) -> bool:
        """Decode chunk *i* into *dest* (exactly one chunk's rows) when its codecs are
        ``bytes`` (little-endian) and one compressor; False when not done."""
        codecs = self._layout.codecs
        if len(codecs) != 2 or codecs[0]["name"] != "bytes" or codecs[0].get("configuration", {}).get("endian", "little") != "little":
            return False
        name = codecs[1]["name"]
        if name not in ("blosc", "zstd"):
            return False
        import numcodecs

        key = os.path.join(self.path, self._layout.sep.join(["c", str(i), *(["0"] * (len(self.shape) - 1))]))
        try:
            with open(key, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return False
        codec = numcodecs.Blosc() if name == "blosc" else numcodecs.Zstd()
        try:
            codec.decode(raw, out=dest.reshape(-1).view(np.uint8))
        except (RuntimeError, ValueError):
            return False
        return True

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows at the ascending positions *index*, decoding only the chunks they fall in.

        Examples
        --------
        >>> import os, tempfile, numpy as np, xarray as xr
        >>> d = tempfile.mkdtemp()
        >>> write_stream(xr.Dataset({"v": ("time", np.arange(10.0))}, coords={"time": np.arange(10)}), os.path.join(d, "s.zarr"))
        >>> ChunkReader(os.path.join(d, "s.zarr", "v")).take(np.array([0, 7, 9])).tolist()
        [0.0, 7.0, 9.0]
        """
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((index.size, *self.shape[1:]), dtype=self.dtype)
        if index.size == 0:
            return out
        if index[0] < 0 or index[-1] >= self.shape[0]:
            msg = f"row index out of range [0, {self.shape[0]})"
            raise IndexError(msg)
        chunk = index // self.chunk_rows
        cuts = np.flatnonzero(np.diff(chunk)) + 1
        for lo, hi in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [index.size])).tolist(), strict=True):
            i = int(chunk[lo])
            out[lo:hi] = self._chunk(i)[index[lo:hi] - i * self.chunk_rows]
        return out


_DIRECT: OrderedDict[str, str] = OrderedDict()
_DIRECT_MAX = 65536


def register_direct(ds: xr.Dataset, path: str) -> None:
    """Remember where the dask-backed variables of *ds* (opened lazily from the local
    stream folder *path*) are stored, so :func:`direct_reader` can read them without dask."""
    for name, var in ds.variables.items():
        key = getattr(var.data, "name", None)
        if isinstance(key, str) and type(var.data).__module__.startswith("dask"):
            _DIRECT[key] = os.path.join(path, str(name))
            _DIRECT.move_to_end(key)
    while len(_DIRECT) > _DIRECT_MAX:
        _DIRECT.popitem(last=False)


def direct_reader(arr: Any) -> ChunkReader | None:
    """A :class:`ChunkReader` for the dask array *arr* when it is a whole variable of a
    stream registered by :func:`register_direct` whose values need no decoding; else None."""
    src = _DIRECT.get(getattr(arr, "name", None) or "")
    if src is None:
        return None
    try:
        rd = ChunkReader(src)
    except (UnsupportedLayout, OSError, KeyError, ValueError):
        return None
    if rd.shape != tuple(arr.shape) or rd.dtype != arr.dtype:
        return None
    return rd


def read_stream(path: str, *, fs: Any = None) -> xr.Dataset:
    """Read a Zarr v3 group written as a stream, eagerly (numpy-backed).

    Raises :class:`UnsupportedLayout` for layouts it does not read (then use
    ``xarray.open_zarr``) and ``FileNotFoundError`` when a part is missing.
    """
    import xarray as xr

    if fs is None:

        def get(p: str) -> bytes:
            with open(p, "rb") as fh:
                return fh.read()

        def listdir(p: str) -> list[str]:
            return os.listdir(p)

        join: Callable[..., str] = os.path.join
    else:

        def get(p: str) -> bytes:
            return bytes(fs.cat_file(p))

        def listdir(p: str) -> list[str]:
            return [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(p, detail=False)]

        def join(*parts: str) -> str:
            return "/".join(parts)

    group = json.loads(get(join(path, "zarr.json")))
    if group.get("zarr_format") != 3 or group.get("node_type") != "group":
        raise UnsupportedLayout("not a Zarr v3 group")
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]] = {}
    for name in sorted(listdir(path)):
        meta_path = join(path, name, "zarr.json")
        try:
            meta = json.loads(get(meta_path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        if meta.get("node_type") != "array":
            raise UnsupportedLayout(f"{name}: nested group")
        lay = _layout(meta, name)
        shape, chunks, sep, dtype_name, dtype = lay.shape, lay.chunks, lay.sep, lay.dtype_name, lay.dtype
        text, fixed_text = dtype_name == "string", lay.fixed_text
        per_chunk = int(np.prod(chunks))
        n_chunks = math.ceil(shape[0] / chunks[0]) if shape[0] else 0
        parts = []
        for i in range(n_chunks):
            key = join(path, name, sep.join(["c", str(i), *(["0"] * (len(shape) - 1))]))
            try:
                raw = get(key)
            except FileNotFoundError:
                fill = "" if text or fixed_text is not None else (np.nan if dtype_name.startswith("float") else 0)
                parts.append(np.full(per_chunk, fill, dtype=dtype))
                continue
            parts.append(_decode_chunk(raw, meta["codecs"], dtype, per_chunk))
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        values = flat.reshape((n_chunks * chunks[0], *shape[1:]))[: shape[0]] if n_chunks else flat.reshape(shape)
        attrs = dict(meta.get("attributes") or {})
        for hidden in ("_FillValue", "_ARRAY_DIMENSIONS"):
            attrs.pop(hidden, None)
        arrays[name] = (tuple(meta.get("dimension_names") or ()), values, attrs)
    coord_names: set[str] = set()
    for name, (dims, _, attrs) in arrays.items():
        if len(dims) == 1 and dims[0] == name:
            coord_names.add(name)
        coord_names.update(str(attrs.get("coordinates", "")).split())
    data_vars = {}
    coords = {}
    for name, (dims, values, attrs) in arrays.items():
        attrs = {k: v for k, v in attrs.items() if k != "coordinates"}
        if name in coord_names:
            coords[name] = (dims, values, attrs)
        else:
            data_vars[name] = (dims, values, attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=group.get("attributes") or {})
