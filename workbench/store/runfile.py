"""A run's data in one file: an uncompressed zip of its events and streams.

A run's ``.run`` file holds::

    events.parquet
    streams/<name>/layout.json     dims, dtypes and attributes of the stream (deflated)
    streams/<name>/<k>.parquet     its tables (see :mod:`workbench.columnar`), stored as is

Members are stored uncompressed (Parquet compresses itself), so each one is a plain
byte range of the file: read in place through a memory map on a local store, or by
one ranged request on an object store. ``unzip -l`` lists a run; ``polars`` or
``pyarrow`` read any table once extracted.

A run's ``.ann`` file (derived tables too large to sit in its manifest) is a zip of the
same kind: ``<table>.parquet`` members, rewritten whole when one of them changes.
"""

from __future__ import annotations

import json
import mmap
import struct
import zipfile
from collections.abc import Mapping
from typing import IO, Any

__all__ = ["Member", "RunFile", "read_zip_members", "write_run_file", "zip_bytes"]

_EPOCH = (1980, 1, 1, 0, 0, 0)
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


def _info(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _EPOCH)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def write_run_file(out: IO[bytes], events: bytes, streams: Mapping[str, tuple[dict[str, Any], list[Any]]]) -> None:
    """Write a run file to the open binary file *out*.

    *streams* maps each stream to its layout and tables as
    :func:`workbench.columnar.encode_stream` or
    :class:`~workbench.columnar.ParquetStreamWriter` give them (bytes, or spooled tables
    with ``copy_to``).
    """
    from workbench.columnar import layout_json

    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        zf.writestr(_info("events.parquet", zipfile.ZIP_STORED), events)
        for name, (layout, tables) in streams.items():
            zf.writestr(_info(f"streams/{name}/layout.json", zipfile.ZIP_DEFLATED), layout_json(layout))
            for member, table in zip(layout["members"], tables, strict=True):
                arc = f"streams/{name}/{member}"
                if isinstance(table, bytes | bytearray | memoryview):
                    zf.writestr(_info(arc, zipfile.ZIP_STORED), bytes(table))
                else:
                    with zf.open(_info(arc, zipfile.ZIP_STORED), "w", force_zip64=True) as dst:
                        table.copy_to(dst)


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    """A zip of *members*: JSON deflated, everything else stored (an annotations file)."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(members.items()):
            zf.writestr(_info(name, zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED), data)
    return buf.getvalue()


def read_zip_members(data: bytes) -> dict[str, bytes]:
    """Every member of the zip *data* (an annotations file)."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


class Member:
    """One stored member of a run file as a picklable source: ``member()`` gives its
    bytes (a zero-copy buffer of a memory map for a local file).

    Parameters
    ----------
    path
        The run file (local path, or a path on *fs*).
    offset, size
        Where the member's bytes are.
    fs
        The fsspec filesystem of a remote store, ``None`` for a local file.
    """

    __slots__ = ("fs", "offset", "path", "size")

    def __init__(self, path: str, offset: int, size: int, fs: Any = None) -> None:
        self.path, self.offset, self.size, self.fs = path, int(offset), int(size), fs

    def __call__(self) -> Any:
        if self.fs is not None:
            return bytes(self.fs.cat_file(self.path, start=self.offset, end=self.offset + self.size))
        import pyarrow as pa

        mm = pa.memory_map(self.path)
        mm.seek(self.offset)
        return mm.read_buffer(self.size)

    def mapped(self) -> tuple[Any, Any]:
        """``(buffer, release)``: the member's bytes as a zero-copy pyarrow buffer of a
        memory map, and ``release(start, stop)`` that drops the pages of bytes
        ``[start, stop)`` of it from this process (``MADV_DONTNEED``; they stay in the
        OS page cache and are read again if touched). A long scan releases what it has
        decoded, so it keeps only its pieces resident. A remote member: its bytes and a
        release that does nothing."""
        import pyarrow as pa

        if self.fs is not None or not hasattr(mmap, "MADV_DONTNEED"):
            return self(), _keep
        with open(self.path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        buf = pa.py_buffer(memoryview(mm)[self.offset: self.offset + self.size])
        return buf, _Release(mm, self.offset)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Member, (self.path, self.offset, self.size, self.fs))


def _keep(start: int, stop: int) -> None:
    """Nothing to release (bytes held in memory)."""


class _Release:
    """Drops pages of a member's memory map (see :meth:`Member.mapped`)."""

    __slots__ = ("mm", "offset")

    def __init__(self, mm: mmap.mmap, offset: int) -> None:
        self.mm, self.offset = mm, offset

    def __call__(self, start: int, stop: int) -> None:
        page = mmap.PAGESIZE
        lo = (self.offset + max(0, start)) // page * page
        hi = min(len(self.mm), self.offset + stop)
        if hi > lo:
            self.mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


class _StreamTables:
    """``tables(k)`` → table *k* of one stream (picklable, for dask tasks)."""

    __slots__ = ("members",)

    def __init__(self, members: list[Member]) -> None:
        self.members = members

    def __call__(self, k: int) -> Any:
        return self.members[k]()

    def mapped(self, k: int) -> tuple[Any, Any]:
        """Table *k* with a release of its pages (:meth:`Member.mapped`)."""
        return self.members[k].mapped()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_StreamTables, (self.members,))


class RunFile:
    """The index of a run file: where each member is, read from its central directory.

    Parameters
    ----------
    path
        The file.
    fs
        fsspec filesystem of a remote store; ``None`` for a local file.
    """

    def __init__(self, path: str, fs: Any = None) -> None:
        self.path, self.fs = path, fs
        self._members: dict[str, tuple[int, int, int]] = {}  # name → (offset, size, compress type)
        opener = open(path, "rb") if fs is None else fs.open(path, "rb")  # noqa: SIM115 - closed below
        with opener as fh, zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                fh.seek(info.header_offset)
                head = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
                if head[0] != b"PK\x03\x04":
                    msg = f"{path}: member {info.filename!r} has no local header"
                    raise zipfile.BadZipFile(msg)
                start = info.header_offset + _LOCAL_HEADER.size + head[10] + head[11]
                self._members[info.filename] = (start, info.compress_size, info.compress_type)

    def names(self) -> list[str]:
        """Every member's name."""
        return list(self._members)

    def streams(self) -> list[str]:
        """Names of the streams stored."""
        return sorted({n.split("/")[1] for n in self._members if n.startswith("streams/") and n.endswith("/layout.json")})

    def member(self, name: str) -> Member:
        """The member *name* as a source (stored members only)."""
        try:
            start, size, compress = self._members[name]
        except KeyError:
            msg = f"{self.path}: no member {name!r}"
            raise KeyError(msg) from None
        if compress != zipfile.ZIP_STORED:
            msg = f"{self.path}: member {name!r} is compressed"
            raise ValueError(msg)
        return Member(self.path, start, size, self.fs)

    def read(self, name: str) -> bytes:
        """The bytes of member *name*."""
        _start, _size, compress = self._members[name]
        if compress == zipfile.ZIP_STORED:
            return bytes(self.member(name)())
        opener = open(self.path, "rb") if self.fs is None else self.fs.open(self.path, "rb")  # noqa: SIM115
        with opener as fh, zipfile.ZipFile(fh) as zf:
            return zf.read(name)

    def layout(self, stream: str) -> dict[str, Any]:
        """The layout of *stream* (:mod:`workbench.columnar`)."""
        return json.loads(self.read(f"streams/{stream}/layout.json"))  # type: ignore[no-any-return]

    def tables(self, stream: str, layout: Mapping[str, Any]) -> _StreamTables:
        """The picklable source of *stream*'s tables, as :func:`workbench.columnar.decode_stream`
        and :func:`~workbench.columnar.open_lazy` take it."""
        return _StreamTables([self.member(f"streams/{stream}/{m}") for m in layout["members"]])

