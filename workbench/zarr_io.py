"""Write and read a stream (an xarray Dataset) as a Zarr v3 group, fast.

Writing through ``xarray.Dataset.to_zarr`` costs several milliseconds per array in
zarr-python's async machinery; a run has dozens of small arrays, so ingest would be
dominated by it. This module writes the same Zarr v3 layout directly (metadata JSON
and Blosc-compressed chunks, the format of the Zarr v3 specification), which
``xarray.open_zarr`` and zarr-python read back unchanged. Anything it does not
handle (datetimes, complex numbers, non-string objects) goes through xarray.
:func:`read_stream` reads such a group eagerly into memory the same direct way,
and defers to ``xarray.open_zarr`` for codecs it does not know.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CHUNK_BYTES", "write_stream", "read_stream", "supported", "UnsupportedLayout"]

CHUNK_BYTES = 8 * 1024 * 1024
_NUMERIC = {"b": "bool", "i": "int", "u": "uint", "f": "float"}


def _dtype_name(dt: np.dtype) -> str | None:
    if dt.kind == "b":
        return "bool"
    if dt.kind in "iuf" and dt.itemsize in (1, 2, 4, 8) and not (dt.kind == "f" and dt.itemsize == 1):
        return f"{_NUMERIC[dt.kind]}{8 * dt.itemsize}"
    return None


def _is_text(values: np.ndarray) -> bool:
    if values.dtype.kind in "US":
        return True
    if values.dtype.kind == "O":
        return all(isinstance(v, str) for v in values.ravel().tolist())
    return False


def supported(ds: xr.Dataset) -> bool:
    """Whether every variable has a dtype this writer handles."""
    for var in ds.variables.values():
        if var.ndim == 0:
            return False  # scalars go through xarray
        values = var.values if var.dtype.kind in "OUS" else None
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
    from workbench.store import _json_safe

    return _json_safe(dict(attrs))


def write_stream(ds: xr.Dataset, path: str, *, fs: Any = None, clevel: int = 5) -> None:
    """Write *ds* as a Zarr v3 group at *path*.

    Parameters
    ----------
    fs
        An fsspec filesystem for non-local stores (default: the local filesystem).
    clevel
        Blosc (lz4, byte shuffle) compression level.
    """
    import numcodecs

    if fs is None:

        def put(p: str, data: bytes) -> None:
            with open(p, "wb") as fh:
                fh.write(data)

        def makedirs(p: str) -> None:
            os.makedirs(p, exist_ok=True)

        join: Callable[..., str] = os.path.join
    else:

        def put(p: str, data: bytes) -> None:
            fs.pipe_file(p, data)

        def makedirs(p: str) -> None:
            fs.makedirs(p, exist_ok=True)

        def join(*parts: str) -> str:
            return "/".join(parts)

    makedirs(path)
    put(join(path, "zarr.json"), _dumps({"attributes": _json_attrs(ds.attrs), "zarr_format": 3, "node_type": "group"}))
    coord_names = [str(c) for c in ds.coords if str(c) not in ds.dims]
    for name, var in ds.variables.items():
        name = str(name)
        attrs = _json_attrs(var.attrs)
        if name in ds.data_vars and coord_names:
            shared = [c for c in coord_names if set(ds[c].dims) <= set(var.dims)]
            if shared:
                attrs["coordinates"] = " ".join(shared)
        values = np.asarray(var.values)
        arr_dir = join(path, name)
        makedirs(arr_dir)
        meta: dict[str, Any] = {
            "shape": list(values.shape),
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "attributes": attrs,
            "dimension_names": [str(d) for d in var.dims],
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": [],
        }
        if values.dtype.kind in "OUS":
            flat = np.array([str(v) for v in values.ravel().tolist()], dtype=object)
            chunk = values.shape if values.shape else ()
            meta.update(
                data_type="string",
                chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunk) or []}},
                fill_value="",
                codecs=[{"name": "vlen-utf8", "configuration": {}}, {"name": "zstd", "configuration": {"level": 0, "checksum": False}}],
            )
            put(join(arr_dir, "zarr.json"), _dumps(meta))
            if flat.size:
                raw = numcodecs.VLenUTF8().encode(flat)
                data = numcodecs.Zstd(level=0).encode(raw)
                put(_chunk_key(arr_dir, [0] * values.ndim, join, makedirs), bytes(data))
            continue
        values = np.ascontiguousarray(values)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("<"))
        dtype_name = _dtype_name(values.dtype)
        if dtype_name is None:  # pragma: no cover - callers check supported() first
            msg = f"variable {name!r}: dtype {values.dtype} is not supported"
            raise TypeError(msg)
        chunks = _chunk_shape(values.shape, values.dtype.itemsize)
        bytes_codec: dict[str, Any] = {"name": "bytes"} if values.dtype.itemsize == 1 else {"name": "bytes", "configuration": {"endian": "little"}}
        meta.update(
            data_type=dtype_name,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            fill_value=_fill(values.dtype),
            codecs=[
                bytes_codec,
                {
                    "name": "blosc",
                    "configuration": {"typesize": values.dtype.itemsize, "cname": "lz4", "clevel": clevel, "shuffle": "shuffle", "blocksize": 0},
                },
            ],
        )
        put(join(arr_dir, "zarr.json"), _dumps(meta))
        if values.size == 0:
            continue
        codec = numcodecs.Blosc(cname="lz4", clevel=clevel, shuffle=numcodecs.Blosc.SHUFFLE)
        n_first = math.ceil(values.shape[0] / chunks[0])
        for i in range(n_first):
            block = values[i * chunks[0] : (i + 1) * chunks[0]]
            if block.shape[0] < chunks[0]:  # edge chunk: zarr stores full chunks
                pad = np.zeros((chunks[0] - block.shape[0], *block.shape[1:]), dtype=values.dtype)
                if values.dtype.kind == "f":
                    pad[...] = np.nan
                block = np.concatenate([block, pad])
            put(_chunk_key(arr_dir, [i] + [0] * (values.ndim - 1), join, makedirs), bytes(codec.encode(np.ascontiguousarray(block))))


def _chunk_key(arr_dir: str, index: list[int], join: Callable[..., str], makedirs: Callable[[str], None]) -> str:
    parts = [str(i) for i in index]
    folder = join(arr_dir, "c", *parts[:-1])
    makedirs(folder)
    return join(folder, parts[-1])


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
        if sep != "/":
            raise UnsupportedLayout(f"{name}: chunk key separator {sep!r}")
        dtype = object if text else fixed_text if fixed_text is not None else _DTYPES[dtype_name]
        per_chunk = int(np.prod(chunks))
        n_chunks = math.ceil(shape[0] / chunks[0]) if shape[0] else 0
        parts = []
        for i in range(n_chunks):
            key = join(path, name, "c", str(i), *(["0"] * (len(shape) - 1)))
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
