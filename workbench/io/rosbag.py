"""ROS 1 bags (``.bag``) and ROS 2 bags (folders of ``.db3``/``.mcap`` files) → one run each.

ROS 1 bags are parsed here through their index, a chunk at a time; ROS 2 ``.db3`` files
are read with ``rosbags`` and ROS 2 ``.mcap`` storage files with the MCAP reader's own
parser. Messages are decoded a whole topic (or a part of one) at a time by
:mod:`workbench.io.messages` with the type definitions stored in the bag (ROS 1
connection records, ROS 2 ``message_definitions`` / MCAP schemas), falling back to the
built-in ROS 2 Humble / ROS 1 Noetic definitions.

Choices made for the quirks of real bags:

* ``metadata.yaml`` is not trusted for what is in the bag: every storage file is read
  directly (rosbags' folder reader returns 0 messages when the QoS text in
  ``metadata.yaml`` differs from the storage file's). Its counts are cross-checked and
  a disagreement is reported in ``extra["metadata_mismatch"]``. Listed file paths that do
  not exist are looked up by file name in the bag folder.
* A folder without ``metadata.yaml`` is a bag when its storage files are the split
  files of one recording (``<name>_0.mcap``, ``<name>_1.mcap``, …): they are read as one run.
* A bag with zero messages is a run with no streams (the store gives it span 0-0);
  its declared topics are listed in ``extra["empty_topics"]``.
* rosbag2 service-event topics (``*/srv/*_Event``) are listed in ``skipped``.
* Compressed bags (``compression_format: zstd``): with ``compression_mode: file`` each
  storage file (``*.db3.zstd``, ``*.mcap.zstd``) is decompressed, a MiB at a time, into
  a temporary folder removed after the read; with ``message`` every payload is
  decompressed. ``extra["rosbag2"]["compression"]`` records it; the run's sources are
  the compressed files. Other formats raise :class:`~workbench.model.ReaderError`.
* A ROS 1 bag without its index (not reindexed after a crash) raises
  :class:`~workbench.model.ReaderError` saying so.

Streaming (bags larger than memory): ``read(path, parts=True)`` — what the store asks
for — yields a :class:`~workbench.io.messages.StreamingRunData` like the MCAP reader:
whenever the messages read (ROS 1: chunk by chunk, in time order; ``.db3``: row by row;
``.mcap``: chunk by chunk) reach :data:`~workbench.io.messages.PART_BYTES`, they are decoded
into one partial ``Dataset`` per stream and handed out, so memory is bounded by a part,
not by the bag. ``read(path)`` without ``parts`` returns the whole run in memory.

Examples
--------
>>> from pathlib import Path
>>> Rosbag1Reader().guess_can_open(Path("missing.bag"))
False
"""

from __future__ import annotations

import mmap
import re
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from workbench.io import messages
from workbench.io.cdr import gather_rows, gather_slices
from workbench.io.mcap_scan import MAGIC as MCAP_MAGIC
from workbench.io.mcap_scan import McapContents, McapScanner, split_factors
from workbench.io.mcap_scan import SchemaRegistries as McapRegistries
from workbench.io.mcap_scan import merge_buffers as merge_mcap_buffers
from workbench.io.messages import (
    DEFAULT_EVENTS_TOPICS,
    PART_BYTES,
    StreamingRunData,
    TopicBuffer,
    TypeRegistry,
    normalize_type,
)
from workbench.io.registry import ReaderEntrypoint, RunData
from workbench.model import FACTOR_GROUPS, ReaderError, parse_scalar

__all__ = ["METADATA_FILE", "ROSBAG1_MAGIC", "Rosbag1Reader", "Rosbag2Reader"]

ROSBAG1_MAGIC = b"#ROSBAG V2.0\n"
METADATA_FILE = "metadata.yaml"
STORAGE_SUFFIXES = (".mcap", ".db3")
ZSTD_SUFFIX = ".zstd"
"""Suffix of a storage file compressed whole (rosbag2 ``compression_mode: file``)."""
_SPLIT_RE = re.compile(r"^(?P<stem>.+)_(?P<index>0|[1-9][0-9]*)$")
_SQLITE_MAGIC = b"SQLite format 3\x00"


# --------------------------------------------------------------------------- ROS 1


class Rosbag1Reader(ReaderEntrypoint):
    """ROS 1 bag (``#ROSBAG V2.0``), one run per file."""

    name: ClassVar[str] = "rosbag1"
    description: ClassVar[str] = "ROS 1 bag (.bag, format 2.0, uncompressed/bz2/lz4 chunks)"
    url: ClassVar[str] = "http://wiki.ros.org/Bags/Format/2.0"
    version: ClassVar[str] = "1"
    supports_parts: ClassVar[bool] = True

    def guess_can_open(self, path: Path) -> bool:
        """Claim files starting with ``#ROSBAG V2.0``."""
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(len(ROSBAG1_MAGIC)) == ROSBAG1_MAGIC

    def read(
        self,
        path: Path,
        *,
        events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
        topics: Sequence[str] | None = None,
        parts: bool = False,
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        events_topics
            Topics whose ``std_msgs/String`` messages are events (JSON with a ``"kind"`` key).
        topics
            Only decode these topics (all when ``None``).
        parts
            Yield a :class:`~workbench.io.messages.StreamingRunData` whose streams arrive
            in parts of about :data:`~workbench.io.messages.PART_BYTES` of messages, read a
            chunk at a time, so memory stays bounded whatever the bag's size (the store
            asks for it; not an option of the run).
        """
        path = Path(path)
        p = str(path)
        if not path.is_file():
            msg = f"{p!r}: no such file"
            raise ReaderError(msg)
        if path.stat().st_size == 0:
            msg = f"{p!r}: is empty (0 bytes), not a ROS 1 bag"
            raise ReaderError(msg)
        with open(path, "rb") as fh:
            head = fh.read(len(ROSBAG1_MAGIC))
        if head != ROSBAG1_MAGIC:
            msg = f"{p!r}: is not a ROS 1 bag: starts with {head!r}, expected {ROSBAG1_MAGIC!r}"
            raise ReaderError(msg)
        wanted = set(topics) if topics is not None else None
        scan = _Bag1Scanner(path, wanted)
        try:
            scan.open()  # header, connections and chunk index: most bad input fails here
        except _Bag1Error as err:
            raise ReaderError(f"{p!r}: {err}") from err
        registry = TypeRegistry("ros1")
        for conn in scan.connections.values():
            if conn["message_definition"] and (wanted is None or conn["topic"] in wanted):
                registry.add_msg(conn["type"], conn["message_definition"])
        limit = PART_BYTES if parts else None

        def batches() -> Iterator[list[TopicBuffer]]:
            try:
                for _ in scan.steps():
                    if limit is not None and scan.buffered >= limit:
                        yield list(scan.take_buffers().values())
                yield list(scan.take_buffers().values())
            except _Bag1Error as err:
                raise ReaderError(f"{p!r}: {err}") from err

        run = StreamingRunData(key="", name=path.stem)

        def done(events: Any, skipped: list[dict[str, Any]], counts: dict[str, int]) -> None:
            declared = scan.declared
            info = {
                "message_count": sum(declared.values()),
                "chunks": scan.chunks,
                "connections": len(scan.connections),
                "compression": sorted(scan.compressions),
            }
            extra: dict[str, Any] = {"rosbag1": info, "message_counts": counts}
            empty = sorted(t for t, k in declared.items() if k == 0)
            if empty:
                extra["empty_topics"] = empty
            run.events, run.skipped, run.extra = events, skipped, extra

        run.parts = messages.decode_parts(
            batches(), lambda _enc: registry, events_topics=events_topics, done=done
        )
        yield run if parts else run.materialize()


class _Bag1Error(Exception):
    """Internal: what is wrong with a ROS 1 bag (the reader adds the file name)."""


_U32 = struct.Struct("<I")
_RELEASE_BYTES = 16 * 1024 * 1024
_IDX_DTYPE = np.dtype([("sec", "<u4"), ("nsec", "<u4"), ("offset", "<u4")])
_OP_MSGDATA, _OP_BAGHEADER, _OP_IDXDATA, _OP_CHUNK, _OP_CHUNK_INFO, _OP_CONNECTION = (
    2,
    3,
    4,
    5,
    6,
    7,
)


def _header_fields(buf: Any, pos: int, end: int) -> dict[str, bytes]:
    """The ``name=value`` fields of a ROS 1 record header in ``buf[pos:end]``."""
    fields: dict[str, bytes] = {}
    while pos + 4 <= end:
        (n,) = _U32.unpack_from(buf, pos)
        pos += 4
        if pos + n > end:
            msg = f"record header field at offset {pos} runs past its header"
            raise _Bag1Error(msg)
        raw = bytes(buf[pos : pos + n])
        name, eq, value = raw.partition(b"=")
        if not eq:
            msg = f"record header field at offset {pos} has no '='"
            raise _Bag1Error(msg)
        fields[name.decode("ascii", errors="replace")] = value
        pos += n
    return fields


def _u(fields: dict[str, bytes], name: str, fmt: str, where: str) -> int:
    value = fields.get(name)
    if value is None or len(value) != struct.calcsize(fmt):
        msg = f"{where}: header field {name!r} is missing or malformed"
        raise _Bag1Error(msg)
    return int(struct.unpack(fmt, value)[0])


class _Bag1Scanner:
    """Reads a ROS 1 bag (format 2.0) through its index, one chunk at a time.

    The index section (connections, chunk infos) and the index-data records after each
    chunk give every message's offset, so the payloads are copied out with numpy rather
    than parsed one by one.
    """

    def __init__(self, path: Path, wanted: set[str] | None) -> None:
        self.path = path
        self.wanted = wanted
        self.connections: dict[int, dict[str, str]] = {}
        self.buffers: dict[tuple[str, str], TopicBuffer] = {}
        self.declared: dict[str, int] = {}
        self.chunks = 0
        self.compressions: set[str] = set()
        self.buffered = 0
        """Payload bytes held in ``buffers`` (reset by :meth:`take_buffers`)."""
        self._mm: mmap.mmap | None = None
        self._size = 0
        self._chunk_pos: list[int] = []
        self._released = 0

    def run(self) -> None:
        """Read the whole bag into :attr:`buffers`."""
        for _ in self.steps():
            pass

    def open(self) -> None:
        """Map the file and read its header and index (connections, chunk infos)."""
        self._size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._index(self._mm, self._size)
        except (struct.error, IndexError, ValueError) as err:
            self.close()
            msg = f"corrupt or truncated ROS 1 bag: {err}"
            raise _Bag1Error(msg) from err
        except _Bag1Error:
            self.close()
            raise

    def close(self) -> None:
        """Unmap the file."""
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # pragma: no cover - a view is still alive; GC frees it
                pass
            self._mm = None

    def steps(self) -> Iterator[int]:
        """Read the chunks in time order, yielding after each one (so that a caller can
        take the buffers before they grow too large)."""
        if self._mm is None:
            self.open()
        assert self._mm is not None
        try:
            for cpos in self._chunk_pos:
                end = self._chunk(self._mm, cpos, self._size)
                self._release(cpos, end)
                yield cpos
        except (struct.error, IndexError, ValueError) as err:
            msg = f"corrupt or truncated ROS 1 bag: {err}"
            raise _Bag1Error(msg) from err
        finally:
            self.close()

    def _release(self, start: int, stop: int) -> None:
        """Hand the pages of the chunks already read back to the OS, every
        :data:`_RELEASE_BYTES` (they stay in the page cache): read pages of the mapping
        count in this process's RSS, so a big bag would otherwise fill it."""
        if stop - self._released < _RELEASE_BYTES or self._mm is None:
            return
        # chunks are read in time order, nearly always file order: release up to here
        lo = min(self._released, start)
        lo -= lo % mmap.PAGESIZE
        hi = stop - stop % mmap.PAGESIZE
        if hi > lo and hasattr(mmap, "MADV_DONTNEED"):
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        self._released = hi

    def take_buffers(self) -> dict[tuple[str, str], TopicBuffer]:
        """The topics' buffers so far; the scanner starts new, empty ones."""
        taken, self.buffers = self.buffers, {}
        self.buffered = 0
        return taken

    def _record(self, mm: mmap.mmap, pos: int, size: int) -> tuple[dict[str, bytes], int, int, int]:
        """``(header fields, data start, data length, next record position)`` at *pos*."""
        if pos + 4 > size:
            msg = f"record at offset {pos} is cut off (file has {size} bytes): truncated bag"
            raise _Bag1Error(msg)
        (hlen,) = _U32.unpack_from(mm, pos)
        if pos + 8 + hlen > size:
            msg = f"record header at offset {pos} is cut off: truncated bag"
            raise _Bag1Error(msg)
        fields = _header_fields(mm, pos + 4, pos + 4 + hlen)
        (dlen,) = _U32.unpack_from(mm, pos + 4 + hlen)
        data = pos + 8 + hlen
        if data + dlen > size:
            msg = f"record data at offset {pos} is cut off: truncated bag"
            raise _Bag1Error(msg)
        return fields, data, dlen, data + dlen

    def _index(self, mm: mmap.mmap, size: int) -> None:
        fields, _d, _n, _next = self._record(mm, len(ROSBAG1_MAGIC), size)
        if fields.get("op") != bytes([_OP_BAGHEADER]):
            msg = "the first record is not a bag header"
            raise _Bag1Error(msg)
        index_pos = _u(fields, "index_pos", "<Q", "bag header")
        if index_pos == 0:
            msg = (
                "the ROS 1 bag has no index (the recording was not closed cleanly); "
                "run `rosbag reindex` on it first"
            )
            raise _Bag1Error(msg)
        if index_pos > size:
            msg = f"index position {index_pos} is past the end of the file ({size} bytes): truncated bag"
            raise _Bag1Error(msg)
        chunk_pos: list[tuple[int, int]] = []  # (start time, position)
        p = index_pos
        while p < size:
            fields, data, dlen, p = self._record(mm, p, size)
            op = fields.get("op", b"")
            if op == bytes([_OP_CONNECTION]):
                cid = _u(fields, "conn", "<I", f"connection record at {p}")
                info = _header_fields(mm, data, data + dlen)
                conn = {k: v.decode("utf-8", errors="replace") for k, v in info.items()}
                conn["topic"] = fields.get("topic", b"").decode("utf-8", errors="replace")
                conn.setdefault("type", "")
                conn.setdefault("message_definition", "")
                self.connections[cid] = conn
            elif op == bytes([_OP_CHUNK_INFO]):
                cpos = _u(fields, "chunk_pos", "<Q", f"chunk info at {p}")
                start = fields.get("start_time", b"")
                t0 = 0
                if len(start) == 8:
                    sec, nsec = struct.unpack("<II", start)
                    t0 = sec * 1_000_000_000 + nsec
                chunk_pos.append((t0, cpos))
                pairs = np.frombuffer(mm, dtype="<u4", count=dlen // 4, offset=data)
                for cid, count in pairs.reshape(-1, 2).tolist():
                    known = self.connections.get(cid)
                    if known is not None:
                        topic = known["topic"]
                        self.declared[topic] = self.declared.get(topic, 0) + count
                del pairs
        for c in self.connections.values():
            self.declared.setdefault(c["topic"], 0)
        # in time order, so that the parts of a streamed read follow each other in time
        self._chunk_pos = [cpos for _t, cpos in sorted(chunk_pos)]

    def _chunk(self, mm: mmap.mmap, pos: int, size: int) -> int:
        """Read the chunk at *pos* and its index records; returns the offset after them."""
        fields, data, dlen, p = self._record(mm, pos, size)
        if fields.get("op") != bytes([_OP_CHUNK]):
            msg = f"chunk info points at offset {pos}, which is not a chunk record"
            raise _Bag1Error(msg)
        compression = fields.get("compression", b"none").decode("ascii", errors="replace")
        usize = _u(fields, "size", "<I", f"chunk at {pos}")
        raw = mm[data : data + dlen]
        try:
            if compression == "none":
                records = raw
            elif compression == "lz4":
                import lz4.frame

                records = lz4.frame.decompress(raw)
            elif compression == "bz2":
                import bz2

                records = bz2.decompress(raw)
            else:
                msg = f"chunk at offset {pos}: unknown compression {compression!r} (none, lz4, bz2)"
                raise _Bag1Error(msg)
        except _Bag1Error:
            raise
        except Exception as err:  # lz4/bz2 raise their own error types
            msg = f"chunk at offset {pos}: cannot decompress ({compression}): {err}"
            raise _Bag1Error(msg) from err
        if len(records) != usize:
            msg = (
                f"chunk at offset {pos}: decompressed to {len(records)} bytes, header says {usize}"
            )
            raise _Bag1Error(msg)
        self.chunks += 1
        self.compressions.add(compression)
        arr = np.frombuffer(records, dtype=np.uint8)
        # the index-data records right after the chunk: (time, offset) of each message
        while p < size:
            (hlen,) = _U32.unpack_from(mm, p)
            fields = _header_fields(mm, p + 4, p + 4 + hlen)
            if fields.get("op") != bytes([_OP_IDXDATA]):
                break
            fields, idata, ilen, p = self._record(mm, p, size)
            cid = _u(fields, "conn", "<I", f"index data at {p}")
            count = _u(fields, "count", "<I", f"index data at {p}")
            if count * 12 > ilen:
                msg = f"index data for connection {cid} after chunk {pos} is cut short"
                raise _Bag1Error(msg)
            conn = self.connections.get(cid)
            if conn is None:
                msg = f"index data refers to connection {cid}, which the bag does not declare"
                raise _Bag1Error(msg)
            if self.wanted is not None and conn["topic"] not in self.wanted:
                continue
            idx = np.frombuffer(mm, dtype=_IDX_DTYPE, count=count, offset=idata)
            times = idx["sec"].astype(np.int64) * 1_000_000_000 + idx["nsec"].astype(np.int64)
            offs = idx["offset"].astype(np.int64)
            del idx
            self._messages(arr, offs, times, conn, pos)
        return p

    def _messages(
        self, arr: np.ndarray, offs: np.ndarray, times: np.ndarray, conn: dict[str, str], pos: int
    ) -> None:
        if len(offs) == 0:
            return
        n = len(arr)
        if np.any(offs + 8 > n):
            msg = f"chunk at offset {pos}: index points past the chunk"
            raise _Bag1Error(msg)
        hlen = gather_rows(arr, offs, 4).view("<u4").reshape(-1).astype(np.int64)
        dpos = offs + 4 + hlen
        if np.any(dpos + 4 > n):
            msg = f"chunk at offset {pos}: message record header runs past the chunk"
            raise _Bag1Error(msg)
        dlen = gather_rows(arr, dpos, 4).view("<u4").reshape(-1).astype(np.int64)
        starts = dpos + 4
        if np.any(starts + dlen > n):
            msg = f"chunk at offset {pos}: message data runs past the chunk"
            raise _Bag1Error(msg)
        # every record the index points at must be a message-data record ("op=\x02")
        first = _header_fields(arr, int(offs[0]) + 4, int(offs[0]) + 4 + int(hlen[0]))
        if first.get("op") != bytes([_OP_MSGDATA]):
            msg = f"chunk at offset {pos}: index points at a record that is not a message"
            raise _Bag1Error(msg)
        key = (conn["topic"], normalize_type(conn["type"]))
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = TopicBuffer(conn["topic"], key[1], "ros1")
        compact = gather_slices(arr, starts, dlen)
        buf.add_batch(times, compact, np.cumsum(dlen) - dlen, dlen)
        self.buffered += len(compact)


# --------------------------------------------------------------------------- ROS 2


def _plain(path: Path) -> Path:
    """``bag_0.db3.zstd`` → ``bag_0.db3`` (other names unchanged)."""
    return path.with_suffix("") if path.suffix.lower() == ZSTD_SUFFIX else path


def _kind(path: Path) -> str:
    """The storage format of a (possibly compressed) storage file: ``.db3`` or ``.mcap``."""
    return _plain(path).suffix.lower()


def _split_index(path: Path) -> tuple[str, int] | None:
    m = _SPLIT_RE.match(_plain(path).stem)
    if m is None:
        return None
    return m.group("stem"), int(m.group("index"))


def _storage_files(folder: Path) -> list[Path]:
    files = [
        f
        for f in folder.iterdir()
        if f.is_file() and _kind(f) in STORAGE_SUFFIXES and not f.name.startswith(".")
    ]

    def order(f: Path) -> tuple[str, int, str]:
        si = _split_index(f)
        return (si[0], si[1], f.name) if si else (_plain(f).stem, -1, f.name)

    return sorted(files, key=order)


def _is_split_set(folder: Path, files: list[Path]) -> bool:
    """Whether *files* are the split files ``<stem>_0 … <stem>_k`` of one recording."""
    if not files:
        return False
    parts = [_split_index(f) for f in files]
    if any(p is None for p in parts):
        return False
    stems = {p[0] for p in parts if p}
    suffixes = {_kind(f) for f in files}
    indexes = sorted(p[1] for p in parts if p)
    if len(stems) != 1 or len(suffixes) != 1 or indexes != list(range(len(files))):
        return False
    return len(files) >= 2 or next(iter(stems)) == folder.name


def _load_metadata(folder: Path) -> dict[str, Any] | None:
    import yaml

    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        return None
    try:
        doc = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        msg = f"{str(meta_path)!r}: is not valid YAML: {err}"
        raise ReaderError(msg) from err
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        msg = f"{str(meta_path)!r}: has no 'rosbag2_bagfile_information' mapping"
        raise ReaderError(msg)
    return info


def _compression(info: dict[str, Any] | None) -> tuple[str, str]:
    """``(mode, format)`` from ``metadata.yaml``: mode ``none``, ``file`` or ``message``."""
    mode = str((info or {}).get("compression_mode") or "").strip().lower() or "none"
    fmt = str((info or {}).get("compression_format") or "").strip().lower()
    if not fmt:
        mode = "none"
    return mode, fmt


def _unzstd_file(src: Path, folder: Path) -> Path:
    """Decompress the storage file *src* (``x.db3.zstd``) into *folder*, a MiB at a time.

    A stream that ends inside a frame (a recorder killed while compressing) is an error:
    the decompressed prefix of an SQLite or MCAP file is not a usable file.
    """
    import zstandard

    dst = folder / _plain(src).name
    k = 1
    while dst.exists():  # split files of one name in different folders
        dst = folder / f"{k}_{_plain(src).name}"
        k += 1
    dctx = zstandard.ZstdDecompressor()
    try:
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            dobj = dctx.decompressobj()
            fed = False
            while chunk := fi.read(1 << 20):
                data = chunk
                while data:
                    fo.write(dobj.decompress(data))
                    fed = True
                    if dobj.eof:  # one frame ended: the rest belongs to the next one
                        data = dobj.unused_data
                        dobj, fed = dctx.decompressobj(), False
                    else:
                        data = b""
    except zstandard.ZstdError as err:
        msg = f"{str(src)!r}: cannot decompress the zstd storage file: {err}"
        raise ReaderError(msg) from err
    except OSError as err:
        msg = f"{str(src)!r}: cannot be read or decompressed to {str(folder)!r}: {err}"
        raise ReaderError(msg) from err
    if src.stat().st_size == 0:
        msg = f"{str(src)!r}: compressed storage file is empty (0 bytes)"
        raise ReaderError(msg)
    if fed:
        msg = f"{str(src)!r}: compressed storage file ends inside a zstd frame (truncated)"
        raise ReaderError(msg)
    return dst


class _Unzstd:
    """Decompresses the zstd payloads of a bag written with ``compression_mode: message``."""

    def __init__(self, path: Path) -> None:
        import zstandard

        self.path = path
        self._zstd = zstandard
        self._dctx = zstandard.ZstdDecompressor()
        self._count = 0

    def __call__(self, raw: bytes, topic: str) -> bytes:
        self._count += 1
        try:
            try:
                return self._dctx.decompress(raw)
            except self._zstd.ZstdError:
                # a frame without its content size: decompress as a stream, to its end
                dobj = self._dctx.decompressobj()
                out = dobj.decompress(raw)
                if not dobj.eof:
                    raise
                return out
        except self._zstd.ZstdError as err:
            msg = (
                f"{str(self.path)!r}: message {self._count} (topic {topic!r}) cannot be "
                f"decompressed although the bag says compression_mode: message (zstd): {err}"
            )
            raise ReaderError(msg) from err

    def buffer(self, buf: TopicBuffer) -> TopicBuffer:
        """A copy of *buf* with every payload decompressed."""
        times, data, starts, lengths = buf.finish()
        out = TopicBuffer(
            buf.topic, buf.message_type, buf.encoding, schema_encoding=buf.schema_encoding
        )
        raw = data.tobytes()
        for t, s, ln in zip(times.tolist(), starts.tolist(), lengths.tolist(), strict=True):
            out.add(t, self(raw[s : s + ln], buf.topic))
        return out


class Rosbag2Reader(ReaderEntrypoint):
    """ROS 2 bag: a folder with ``metadata.yaml`` and ``.db3``/``.mcap`` files, one run per bag."""

    name: ClassVar[str] = "rosbag2"
    description: ClassVar[str] = (
        "ROS 2 bag folder (metadata.yaml + .db3/.mcap, zstd-compressed or not, or split "
        ".mcap files) or a .db3 file"
    )
    url: ClassVar[str] = "https://github.com/ros2/rosbag2"
    version: ClassVar[str] = "2"  # 2: zstd-compressed bags read
    supports_salvage: ClassVar[bool] = True
    supports_parts: ClassVar[bool] = True

    def guess_can_open(self, path: Path) -> bool:
        """Claim bag folders and lone ``.db3`` files (a lone ``.mcap`` is the MCAP reader's)."""
        if path.is_file():
            if path.suffix.lower() != ".db3":
                return False
            with open(path, "rb") as fh:
                return fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
        if not path.is_dir():
            return False
        files = _storage_files(path)
        if (path / METADATA_FILE).is_file():
            try:
                text = (path / METADATA_FILE).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return False
            return "rosbag2_bagfile_information" in text
        return _is_split_set(path, files)

    def source_files(self, path: Path) -> list[Path]:
        """``metadata.yaml`` and every storage file of the bag."""
        path = Path(path)
        if path.is_file():
            return [path]
        out = []
        if (path / METADATA_FILE).is_file():
            out.append(path / METADATA_FILE)
        out.extend(self._files(path, _load_metadata(path)))
        return out

    def _files(self, folder: Path, info: dict[str, Any] | None) -> list[Path]:
        present = _storage_files(folder)
        if info is None:
            return present
        listed: list[Path] = []
        for rel in info.get("relative_file_paths") or []:
            cand = folder / str(rel)
            if not cand.is_file():
                cand = folder / Path(str(rel)).name  # e.g. "bagname/bagname_0.db3"
            if cand.is_file() and cand not in listed:
                listed.append(cand)
        return listed or present

    def read(
        self,
        path: Path,
        *,
        events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
        topics: Sequence[str] | None = None,
        salvage: bool = False,
        parts: bool = False,
    ) -> Iterator[RunData]:
        """Read the bag at *path* (a folder, or one ``.db3`` file) as one run.

        Parameters
        ----------
        events_topics
            Topics whose ``std_msgs/String`` messages are events (JSON with a ``"kind"`` key).
        topics
            Only decode these topics (all when ``None``).
        salvage
            For ``.mcap`` storage: read the readable prefix of a truncated file (a
            recorder that crashed) instead of failing; see ``extra["salvaged"]``.
        parts
            Yield a :class:`~workbench.io.messages.StreamingRunData` whose streams arrive
            in parts of about :data:`~workbench.io.messages.PART_BYTES` of messages, so
            memory stays bounded whatever the bag's size (the store asks for it; not an
            option of the run).
        """
        path = Path(path)
        p = str(path)
        if not path.exists():
            msg = f"{p!r}: no such file or directory"
            raise ReaderError(msg)
        info = _load_metadata(path) if path.is_dir() else None
        files = [path] if path.is_file() else self._files(path, info)
        if not files:
            msg = f"{p!r}: no storage files (.db3 or .mcap) in the bag folder" + (
                " although metadata.yaml lists some" if info else ""
            )
            raise ReaderError(msg)
        mode, fmt = _compression(info)
        if mode != "none" and fmt != "zstd":
            msg = (
                f"{p!r}: compression format {fmt!r} (mode {mode}) is not supported "
                "(supported: zstd)"
            )
            raise ReaderError(msg)
        suffixes = {_kind(f) for f in files}
        if len(suffixes) > 1:
            msg = f"{p!r}: mixes storage formats {sorted(suffixes)}; one bag uses one format"
            raise ReaderError(msg)
        for f in files:
            if f.suffix.lower() == ZSTD_SUFFIX:
                continue
            magic = MCAP_MAGIC if _kind(f) == ".mcap" else _SQLITE_MAGIC
            with open(f, "rb") as fh:
                if fh.read(len(magic)) != magic:
                    what = "an MCAP file" if _kind(f) == ".mcap" else "an SQLite database"
                    msg = f"{str(f)!r}: storage file of bag {p!r} is not {what} (bad magic)"
                    raise ReaderError(msg)
        # files compressed whole are decompressed, in a stream, to a temporary folder
        # that lives as long as the run's parts are being read
        tmp = tempfile.TemporaryDirectory(prefix="workbench-rosbag2-")
        try:
            plain = {
                f: _unzstd_file(f, Path(tmp.name)) if f.suffix.lower() == ZSTD_SUFFIX else f
                for f in files
            }
            run = StreamingRunData(key="", name=path.stem if path.is_file() else path.name)
            run.parts = self._parts(
                run,
                path,
                info,
                files,
                plain,
                mode,
                tmp,
                events_topics=events_topics,
                topics=topics,
                salvage=salvage,
                limit=PART_BYTES if parts else None,
            )
            if parts:
                yield run
            else:
                yield run.materialize()
        finally:
            if not parts:
                tmp.cleanup()

    def _parts(
        self,
        run: StreamingRunData,
        path: Path,
        info: dict[str, Any] | None,
        files: list[Path],
        plain: dict[Path, Path],
        mode: str,
        tmp: tempfile.TemporaryDirectory[str],
        *,
        events_topics: Sequence[str],
        topics: Sequence[str] | None,
        salvage: bool,
        limit: int | None,
    ) -> Iterator[tuple[str, Any]]:
        """Decode the bag a batch of messages at a time (one batch when *limit* is None)."""
        wanted = list(topics) if topics is not None else None
        per_message = mode == "message"
        extra: dict[str, Any] = {"rosbag2": {"files": [f.name for f in files]}}
        if mode != "none" or any(plain[f] != f for f in files):
            extra["rosbag2"]["compression"] = {"format": "zstd", "mode": mode}
        factors: dict[str, dict[str, Any]] = {}
        declared: set[str] = set()
        scanned: list[tuple[Path, McapContents]] = []
        registry_for: Callable[[str], Any]
        if _kind(files[0]) == ".mcap":
            registries = McapRegistries()
            batches = self._mcap_batches(
                files, plain, wanted, salvage, per_message, limit, registries, scanned
            )
            registry_for = registries.for_encoding
        else:
            registry = TypeRegistry("ros2")
            batches = self._db3_batches(
                [plain[f] for f in files], wanted, per_message, limit, registry, declared
            )
            registry_for = lambda _enc: registry

        def done(events: Any, skipped: list[dict[str, Any]], counts: dict[str, int]) -> None:
            nonlocal factors
            if scanned:
                contents = [c for _f, c in scanned]
                salvaged = [f"{f.name}: {c.salvaged['reason']}" for f, c in scanned if c.salvaged]
                if salvaged:
                    extra["salvaged"] = {
                        "reason": "; ".join(salvaged),
                        "messages": sum(c.salvaged["messages"] for c in contents if c.salvaged),
                    }
                records = [m for c in contents for m in c.metadata if m["name"] != "rosbag2"]
                factors, rest, _rejected = split_factors(records)
                if rest:
                    extra["mcap_metadata"] = rest
                declared.update(ch.topic for c in contents for ch in c.channels.values())
            if info is not None:
                if wanted is None:
                    self._cross_check(info, counts, extra)
                for k, v in (info.get("custom_data") or {}).items():
                    group, dot, sub = str(k).partition(".")
                    if dot and group in FACTOR_GROUPS and sub:
                        factors.setdefault(group, {})[sub] = parse_scalar(str(v))
            extra["message_counts"] = counts
            empty = sorted(t for t in declared if counts.get(t, 0) == 0)
            if empty:
                extra["empty_topics"] = empty
            run.events, run.skipped, run.extra, run.factors = events, skipped, extra, factors

        try:
            yield from messages.decode_parts(
                batches, registry_for, events_topics=events_topics, done=done
            )
        except ReaderError as err:
            # name the bag's own files, not their temporary copies
            text = str(err)
            for f, q in plain.items():
                text = text.replace(str(q), str(f))
            if text == str(err):
                raise
            raise ReaderError(text) from err
        finally:
            tmp.cleanup()

    def _mcap_batches(
        self,
        files: list[Path],
        plain: dict[Path, Path],
        wanted: list[str] | None,
        salvage: bool,
        per_message: bool,
        limit: int | None,
        registries: McapRegistries,
        scanned: list[tuple[Path, McapContents]],
    ) -> Iterator[list[TopicBuffer]]:
        """Buffers of the bag's MCAP files, a group of chunks at a time (all at once
        without *limit*: a topic split over several files then decodes together)."""
        held: list[TopicBuffer] = []
        size = 0
        for f in files:
            scanner = McapScanner(
                plain[f], salvage=salvage, topics=set(wanted) if wanted is not None else None
            )
            scanned.append((f, scanner.out))
            unz = _Unzstd(f) if per_message else None
            registered: set[int] = set()

            def take(
                scanner: McapScanner = scanner,
                registered: set[int] = registered,
                unz: _Unzstd | None = unz,
            ) -> None:
                nonlocal size
                new = [sc for sid, sc in scanner.out.schemas.items() if sid not in registered]
                registered.update(sc.id for sc in new)
                registries.add(new)
                size += scanner.buffered
                taken = scanner.take_buffers().values()
                if unz is not None:
                    held.extend(unz.buffer(b) for b in taken)
                else:
                    held.extend(taken)

            for _ in scanner.steps():
                if limit is not None and size + scanner.buffered >= limit:
                    take()
                    yield merge_mcap_buffers(held)
                    held.clear()
                    size = 0
            take()
            if limit is not None and size >= limit:
                yield merge_mcap_buffers(held)
                held.clear()
                size = 0
        yield merge_mcap_buffers(held)

    def _db3_batches(
        self,
        files: list[Path],
        wanted: list[str] | None,
        per_message: bool,
        limit: int | None,
        registry: TypeRegistry,
        declared: set[str],
    ) -> Iterator[list[TopicBuffer]]:
        """Buffers of the bag's SQLite files, about *limit* bytes of messages at a time."""
        from rosbags.interfaces import MessageDefinitionFormat
        from rosbags.rosbag2 import Reader
        from rosbags.rosbag2 import ReaderError as BagError

        buffers: dict[tuple[str, str], TopicBuffer] = {}
        encodings: dict[tuple[str, str], str] = {}
        size = 0
        for f in files:
            with open(f, "rb") as fh:
                if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                    msg = f"{str(f)!r}: is not an SQLite database (bad magic)"
                    raise ReaderError(msg)
            try:
                with Reader(f) as bag:
                    conns = [c for c in bag.connections if wanted is None or c.topic in wanted]
                    declared.update(c.topic for c in bag.connections)
                    for conn in conns:
                        fmt = conn.msgdef.format
                        if fmt == MessageDefinitionFormat.MSG and conn.msgdef.data:
                            registry.add_msg(conn.msgtype, conn.msgdef.data)
                        elif fmt == MessageDefinitionFormat.IDL and conn.msgdef.data:
                            registry.add_idl(conn.msgtype, conn.msgdef.data)
                        key = (conn.topic, conn.msgtype)
                        enc = getattr(conn.ext, "serialization_format", "cdr") or "cdr"
                        encodings.setdefault(key, enc)
                    keys = {c.id: (c.topic, c.msgtype) for c in conns}
                    unz = _Unzstd(f) if per_message else None
                    messages_iter = bag.messages(connections=conns) if conns else iter(())
                    for conn, t, raw in messages_iter:
                        key = keys[conn.id]
                        buf = buffers.get(key)
                        if buf is None:
                            buf = buffers[key] = TopicBuffer(key[0], key[1], encodings[key])
                        payload = unz(raw, conn.topic) if unz else raw
                        buf.add(t, payload)
                        size += len(payload)
                        if limit is not None and size >= limit:
                            yield list(buffers.values())
                            buffers, size = {}, 0
            except BagError as err:
                msg = f"{str(f)!r}: cannot read ROS 2 storage file: {err}"
                raise ReaderError(msg) from err
            except Exception as err:
                if isinstance(err, ReaderError):
                    raise
                # sqlite3/apsw errors for corrupt databases have many types
                msg = f"{str(f)!r}: cannot read ROS 2 storage file (corrupt?): {err}"
                raise ReaderError(msg) from err
        yield list(buffers.values())

    @staticmethod
    def _cross_check(info: dict[str, Any], counts: dict[str, int], extra: dict[str, Any]) -> None:
        declared: dict[str, int] = {}
        for entry in info.get("topics_with_message_count") or []:
            meta = entry.get("topic_metadata") or {}
            if "name" in meta:
                declared[str(meta["name"])] = int(entry.get("message_count") or 0)
        mismatch = {
            t: {"declared": k, "read": counts.get(t, 0)}
            for t, k in declared.items()
            if k != counts.get(t, 0) and t in counts | declared
        }
        total = info.get("message_count")
        if mismatch or (total is not None and int(total) != sum(counts.values())):
            extra["metadata_mismatch"] = {
                "message_count": {"declared": total, "read": sum(counts.values())},
                "topics": mismatch,
            }
