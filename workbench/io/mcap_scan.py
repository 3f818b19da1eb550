"""MCAP records parsed straight from a memory-mapped file: the scanner shared by the
MCAP reader (:mod:`workbench.io.mcap`) and the ROS 2 bag reader's MCAP storage
(:mod:`workbench.io.rosbag`).

Each chunk is decompressed (zstd, lz4) and checked against its CRC — in a worker
thread, a few chunks ahead, for files over :data:`PREFETCH_MIN_BYTES` — its message
records are located through the chunk's message indexes (or by walking the records
when there are none) and each channel's payloads are copied out in one numpy gather
into :class:`~workbench.io.messages.TopicBuffer` objects, decoded later a whole topic
at a time.
"""

from __future__ import annotations

import mmap
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.io import messages
from workbench.io.cdr import gather_rows, gather_slices
from workbench.io.messages import (
    DEFAULT_EVENTS_TOPICS,
    TopicBuffer,
    TypeRegistry,
)
from workbench.io.protobuf import ProtobufRegistry
from workbench.model import FACTOR_GROUPS, ReaderError, parse_scalar

__all__ = [
    "MAGIC",
    "PREFETCH_MIN_BYTES",
    "McapContents",
    "McapScanner",
    "SchemaRegistries",
    "decode_contents",
    "merge_buffers",
    "scan_mcap",
    "split_factors",
]


MAGIC = b"\x89MCAP0\r\n"

_OP_HEADER = 0x01
_OP_FOOTER = 0x02
_OP_SCHEMA = 0x03
_OP_CHANNEL = 0x04
_OP_MESSAGE = 0x05
_OP_CHUNK = 0x06
_OP_MESSAGE_INDEX = 0x07
_OP_ATTACHMENT = 0x09
_OP_STATISTICS = 0x0B
_OP_METADATA = 0x0C
_OP_DATA_END = 0x0F

_REC = struct.Struct("<BQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_FOOTER_SIZE = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, crc
_FACTOR_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")


_DECODE_ERRORS = (struct.error, ValueError, IndexError, OverflowError, KeyError)
"""What malformed bytes raise while parsing records (length fields out of bounds …)."""


class _Truncated(Exception):
    """Internal: the data section ends early (the caller decides: error or salvage)."""


class _Corrupt(Exception):
    """Internal: a record is malformed (bad length, bad CRC, bad index)."""


@dataclass
class _Schema:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass
class _Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass
class McapContents:
    """What :func:`scan_mcap` found in one file."""

    path: Path
    profile: str = ""
    library: str = ""
    schemas: dict[int, _Schema] = field(default_factory=dict)
    channels: dict[int, _Channel] = field(default_factory=dict)
    buffers: dict[int, TopicBuffer] = field(default_factory=dict)
    """Channel id → its raw messages."""
    metadata: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    statistics: dict[int, int] | None = None
    """Channel id → message count from the summary's Statistics record, if any."""
    salvaged: dict[str, Any] | None = None
    chunks: int = 0
    raw_counts: dict[int, int] = field(default_factory=dict)
    """Channel id → messages found (selected or not)."""


# --------------------------------------------------------------------------- record parsing


def _str(buf: Any, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    return bytes(buf[pos : pos + n]).decode("utf-8", errors="replace"), pos + n


def _bytes32(buf: Any, pos: int) -> tuple[bytes, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    return bytes(buf[pos : pos + n]), pos + n


def _str_map(buf: Any, pos: int) -> tuple[dict[str, str], int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    end = pos + n
    out: dict[str, str] = {}
    while pos < end:
        k, pos = _str(buf, pos)
        v, pos = _str(buf, pos)
        out[k] = v
    return out, end


def _schema(buf: Any, pos: int) -> _Schema:
    (sid,) = _U16.unpack_from(buf, pos)
    name, p = _str(buf, pos + 2)
    enc, p = _str(buf, p)
    data, _ = _bytes32(buf, p)
    return _Schema(sid, name, enc, data)


def _channel(buf: Any, pos: int) -> _Channel:
    cid, sid = struct.unpack_from("<HH", buf, pos)
    topic, p = _str(buf, pos + 4)
    enc, p = _str(buf, p)
    meta, _ = _str_map(buf, p)
    return _Channel(cid, sid, topic, enc, meta)


def _gather_u(arr: np.ndarray, offs: np.ndarray, size: int, dtype: str) -> np.ndarray:
    return gather_rows(arr, offs, size).view(dtype).reshape(len(offs))


class McapScanner:
    """Parses one MCAP file into :class:`McapContents`, a chunk at a time (:meth:`steps`)."""

    def __init__(
        self,
        path: Path,
        *,
        salvage: bool,
        topics: set[str] | None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.p = str(path)
        self.salvage = salvage
        self.topics = topics
        self.progress = progress
        self.out = McapContents(path=path)
        self.messages_read = 0
        self.buffered = 0
        """Payload bytes held in ``out.buffers`` (reset by :meth:`take_buffers`)."""
        self._mm: mmap.mmap | None = None
        self._size = 0
        self._pool: Any = None
        self._ahead: dict[int, Any] = {}  # chunk offset -> future of its records
        self._peek = 0
        self._released = 0

    # ---- helpers
    def fail(self, what: str) -> ReaderError:
        return ReaderError(f"{self.p!r}: {what}")

    def _keep(self, cid: int) -> bool:
        ch = self.out.channels.get(cid)
        return ch is not None and (self.topics is None or ch.topic in self.topics)

    def _buffer(self, cid: int) -> TopicBuffer:
        buf = self.out.buffers.get(cid)
        if buf is None:
            ch = self.out.channels[cid]
            sc = self.out.schemas.get(ch.schema_id)
            if sc is None and ch.schema_id != 0:
                raise self.fail(
                    f"channel {cid} (topic {ch.topic!r}) refers to schema id {ch.schema_id}, "
                    "which the file does not define (corrupt or unknown schema)"
                )
            buf = TopicBuffer(
                topic=ch.topic,
                message_type=sc.name if sc else "",
                encoding=ch.message_encoding,
                schema_encoding=sc.encoding if sc else "",
            )
            self.out.buffers[cid] = buf
        return buf

    # ---- top level
    def run(self) -> McapContents:
        """Scan the whole file."""
        for _ in self.steps():
            pass
        return self.out

    def open(self) -> None:
        """Check the file (size, magic) and map it; the data section is read by :meth:`steps`."""
        try:
            size = self.path.stat().st_size
        except OSError as err:
            raise self.fail(f"cannot be read: {err}") from err
        if size == 0:
            raise self.fail("is empty (0 bytes), not an MCAP file")
        with open(self.path, "rb") as fh:
            head = fh.read(len(MAGIC))
            if head != MAGIC[: len(head)] or len(head) < len(MAGIC):
                if head == MAGIC[: len(head)]:
                    raise self.fail(f"is truncated: only {size} bytes, shorter than the MCAP magic")
                raise self.fail(f"is not an MCAP file: starts with {head!r}, expected {MAGIC!r}")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._size = size

    def close(self) -> None:
        """Stop the decompression thread and unmap the file."""
        self._stop_prefetch()
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # pragma: no cover - an exported view still alive; GC frees it
                pass
            self._mm = None

    def steps(self) -> Iterator[int]:
        """Read the file, yielding the byte offset reached after each chunk (or batch of
        loose messages), so a caller can take the buffers before they grow too large."""
        if self._mm is None:
            self.open()
        assert self._mm is not None
        try:
            yield from self._run(self._mm, self._size)
        except _DECODE_ERRORS as err:  # a length or offset field that points nowhere
            raise self.fail(f"is corrupt: malformed record ({type(err).__name__}: {err})") from err
        finally:
            self.close()

    def take_buffers(self) -> dict[int, TopicBuffer]:
        """The channels' buffers so far; the scanner starts new, empty ones."""
        taken, self.out.buffers = self.out.buffers, {}
        self.buffered = 0
        return taken

    def _run(self, mm: mmap.mmap, size: int) -> Iterator[int]:
        arr = np.frombuffer(mm, dtype=np.uint8)
        try:
            summary_start, complete = self._footer(mm, size)
            if complete and summary_start:
                self._summary(mm, summary_start, size - len(MAGIC) - _FOOTER_SIZE)
            data_end = summary_start if (complete and summary_start) else size
            if not complete and not self.salvage:
                raise self.fail(
                    "is truncated (no footer and end magic: the recording was cut off); "
                    "pass salvage=True to read the readable prefix"
                )
            try:
                yield from self._data_section(mm, arr, len(MAGIC), data_end, complete)
                if not complete:
                    raise _Truncated(f"the file ends at byte {size} without a footer")
            except (_Truncated, _Corrupt, *_DECODE_ERRORS) as err:
                if not self.salvage:
                    kind = "is truncated" if isinstance(err, _Truncated) else "is corrupt"
                    hint = "; pass salvage=True to read the readable prefix"
                    raise self.fail(f"{kind}: {err}{hint}") from err
                self.out.salvaged = {"reason": str(err), "messages": self.messages_read}
        finally:
            del arr
        if self.progress is not None:
            self.progress(size)
        yield size

    def _footer(self, mm: mmap.mmap, size: int) -> tuple[int, bool]:
        if size < 2 * len(MAGIC) + _FOOTER_SIZE:
            return 0, False
        if mm[size - len(MAGIC) : size] != MAGIC:
            return 0, False
        fpos = size - len(MAGIC) - _FOOTER_SIZE
        op, ln = _REC.unpack_from(mm, fpos)
        if op != _OP_FOOTER or ln != 20:
            return 0, False
        summary_start, _summary_offset_start, _crc = struct.unpack_from("<QQI", mm, fpos + 9)
        if summary_start > fpos:
            raise self.fail(f"footer points to a summary at {summary_start}, past the footer")
        return int(summary_start), True

    def _summary(self, mm: mmap.mmap, start: int, end: int) -> None:
        pos = start
        while pos + 9 <= end:
            op, ln = _REC.unpack_from(mm, pos)
            body = pos + 9
            if body + ln > end:
                raise self.fail(f"summary record at offset {pos} runs past the footer (corrupt)")
            if op == _OP_SCHEMA:
                sc = _schema(mm, body)
                self.out.schemas.setdefault(sc.id, sc)
            elif op == _OP_CHANNEL:
                ch = _channel(mm, body)
                self.out.channels.setdefault(ch.id, ch)
            elif op == _OP_STATISTICS:
                p = body + 8 + 2 + 4 * 4 + 16
                (n,) = _U32.unpack_from(mm, p)
                counts = np.frombuffer(
                    mm, dtype=np.dtype([("c", "<u2"), ("n", "<u8")]), count=n // 10, offset=p + 4
                )
                self.out.statistics = {
                    int(c): int(k) for c, k in zip(counts["c"], counts["n"], strict=True)
                }
                del counts
            pos = body + ln

    def _prefetch(self, mm: mmap.mmap, pos: int, end: int) -> None:
        """Start decompressing the chunks after *pos* in a worker thread (zstd, lz4 and
        crc32 release the GIL), so the next chunks are ready when they are reached."""
        if self._size < PREFETCH_MIN_BYTES:
            return  # a small file: starting a thread costs more than it saves
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcap-inflate")
        q = max(pos, self._peek)
        while len(self._ahead) < PREFETCH_CHUNKS and q + 9 <= end:
            op, ln = _REC.unpack_from(mm, q)
            if q + 9 + ln > end:
                break  # damaged: the main loop reports it when it gets there
            if op == _OP_CHUNK and q not in self._ahead:
                self._ahead[q] = self._pool.submit(_inflate, mm, q, q + 9 + ln)
            elif op in (_OP_DATA_END, _OP_FOOTER):
                q = end
                break
            q += 9 + ln
        self._peek = q

    def _stop_prefetch(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ahead.clear()

    def _reached(self, pos: int) -> int:
        if self.progress is not None:
            self.progress(pos)
        if pos - self._released >= _RELEASE_BYTES and self._mm is not None:
            # pages of the mapping already read count in this process's RSS: hand them
            # back (they stay in the page cache) so a big file does not fill the RSS
            start = self._released - self._released % mmap.PAGESIZE
            stop = pos - pos % mmap.PAGESIZE
            if stop > start and hasattr(mmap, "MADV_DONTNEED"):
                self._mm.madvise(mmap.MADV_DONTNEED, start, stop - start)
            self._released = stop
        return pos

    def _data_section(
        self, mm: mmap.mmap, arr: np.ndarray, start: int, end: int, complete: bool
    ) -> Iterator[int]:
        pos = start
        loose: list[int] = []  # message records outside chunks
        pending: tuple[int, int] | None = None  # chunk waiting for its message indexes
        indexes: list[tuple[int, np.ndarray]] = []
        while pos < end:
            if pos + 9 > end or pos + 9 + _REC.unpack_from(mm, pos)[1] > end:
                # keep what came before the damage (used when salvaging)
                if pending is not None:
                    self._chunk(mm, *pending, indexes)
                    pending = None
                if loose:
                    self._loose(arr, loose)
                    loose = []
                if pos + 9 > end:
                    raise _Truncated(f"record header at offset {pos} is cut off")
                op, ln = _REC.unpack_from(mm, pos)
                if complete:
                    raise _Corrupt(
                        f"record (opcode {op:#x}) at offset {pos} claims {ln} bytes, "
                        "past the end of the data section"
                    )
                reason = f"record (opcode {op:#x}) at offset {pos} is cut off"
                if op == _OP_CHUNK and self.salvage:
                    reason += self._partial_chunk(mm, pos, end)
                raise _Truncated(reason)
            op, ln = _REC.unpack_from(mm, pos)
            body = pos + 9
            if op != _OP_MESSAGE_INDEX and pending is not None:
                self._chunk(mm, *pending, indexes)
                pending, indexes = None, []
                yield self._reached(pos)
            if op != _OP_MESSAGE and loose:
                self._loose(arr, loose)
                loose = []
                yield self._reached(pos)
            if op == _OP_MESSAGE:
                loose.append(pos)
            elif op == _OP_CHUNK:
                pending = (pos, body + ln)
                self._prefetch(mm, pos, end)
            elif op == _OP_MESSAGE_INDEX:
                if pending is not None:
                    (cid,) = _U16.unpack_from(mm, body)
                    (nb,) = _U32.unpack_from(mm, body + 2)
                    if nb % 16 or 6 + nb > ln:
                        raise _Corrupt(f"message index at offset {pos} is malformed")
                    pairs = np.frombuffer(mm, dtype="<u8", count=nb // 8, offset=body + 6)
                    indexes.append((cid, pairs.reshape(-1, 2).astype(np.int64)))
                    del pairs
            elif op == _OP_SCHEMA:
                sc = _schema(mm, body)
                self.out.schemas.setdefault(sc.id, sc)
            elif op == _OP_CHANNEL:
                ch = _channel(mm, body)
                self.out.channels.setdefault(ch.id, ch)
            elif op == _OP_HEADER:
                self.out.profile, p = _str(mm, body)
                self.out.library, _ = _str(mm, p)
            elif op == _OP_METADATA:
                name, p = _str(mm, body)
                meta, _ = _str_map(mm, p)
                self.out.metadata.append({"name": name, "metadata": meta})
            elif op == _OP_ATTACHMENT:
                log_time, create_time = struct.unpack_from("<QQ", mm, body)
                name, p = _str(mm, body + 16)
                media, p = _str(mm, p)
                (dlen,) = _U64.unpack_from(mm, p)
                self.out.attachments.append(
                    {
                        "name": name,
                        "media_type": media,
                        "size": int(dlen),
                        "log_time": int(log_time),
                        "create_time": int(create_time),
                    }
                )
            elif op in (_OP_DATA_END, _OP_FOOTER):
                break
            pos = body + ln
        if pending is not None:
            self._chunk(mm, *pending, indexes)
        if loose:
            self._loose(arr, loose)

    def _loose(self, arr: np.ndarray, offsets: list[int]) -> None:
        self._messages(arr, np.asarray(offsets, dtype=np.int64), where="data section")

    def _chunk(
        self, mm: mmap.mmap, pos: int, end: int, indexes: list[tuple[int, np.ndarray]]
    ) -> None:
        fut = self._ahead.pop(pos, None)
        records = fut.result() if fut is not None else _inflate(mm, pos, end)
        usize = len(records)
        self.out.chunks += 1
        carr = np.frombuffer(records, dtype=np.uint8)
        usable = indexes and all(cid in self.out.channels for cid, _ in indexes)
        if usable:
            offs = np.concatenate([pairs[:, 1] for _, pairs in indexes])
            offs.sort()
            if len(offs) and (offs[-1] + 31 > usize or offs[0] < 0):
                raise _Corrupt(f"chunk at offset {pos}: message index points outside the chunk")
        else:
            offs = self._walk_chunk(records, pos)
        self._messages(carr, offs, where=f"chunk at offset {pos}")

    def _partial_chunk(self, mm: mmap.mmap, pos: int, end: int) -> str:
        """Salvage the complete messages at the start of a chunk cut off by truncation."""
        body = pos + 9
        if body + 40 > end:
            return ""
        compression, p = _str(mm, body + 28)
        p += 8
        raw = mm[p:end]
        try:
            if compression == "":
                records = raw
            elif compression == "zstd":
                import zstandard

                records = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
            elif compression == "lz4":
                import lz4.frame

                records = lz4.frame.LZ4FrameDecompressor().decompress(raw)
            else:
                return ""
        except Exception:  # noqa: BLE001 - the cut may fall anywhere in the compressed frame
            return ""
        offs: list[int] = []
        q = 0
        while q + 9 <= len(records):
            op, ln = _REC.unpack_from(records, q)
            if q + 9 + ln > len(records):
                break
            if op == _OP_MESSAGE:
                (cid,) = _U16.unpack_from(records, q + 9)
                if cid in self.out.channels:
                    offs.append(q)
            elif op == _OP_SCHEMA:
                sc = _schema(records, q + 9)
                self.out.schemas.setdefault(sc.id, sc)
            elif op == _OP_CHANNEL:
                ch = _channel(records, q + 9)
                self.out.channels.setdefault(ch.id, ch)
            q += 9 + ln
        if not offs:
            return ""
        self._messages(
            np.frombuffer(records, dtype=np.uint8),
            np.asarray(offs, dtype=np.int64),
            where=f"partial chunk at offset {pos}",
        )
        return f"; {len(offs)} messages read from the start of that chunk (no CRC check)"

    def _walk_chunk(self, records: bytes, pos: int) -> np.ndarray:
        """Offsets of the message records in a chunk, reading schemas/channels on the way."""
        out: list[int] = []
        p = 0
        n = len(records)
        unpack = _REC.unpack_from
        append = out.append
        while p < n:
            if p + 9 > n:
                raise _Corrupt(f"chunk at offset {pos}: record header at {p} is cut off")
            op, ln = unpack(records, p)
            if p + 9 + ln > n:
                raise _Corrupt(f"chunk at offset {pos}: record at {p} runs past the chunk")
            if op == _OP_MESSAGE:
                append(p)
            elif op == _OP_SCHEMA:
                sc = _schema(records, p + 9)
                self.out.schemas.setdefault(sc.id, sc)
            elif op == _OP_CHANNEL:
                ch = _channel(records, p + 9)
                self.out.channels.setdefault(ch.id, ch)
            p += 9 + ln
        return np.asarray(out, dtype=np.int64)

    def _messages(self, arr: np.ndarray, offs: np.ndarray, *, where: str) -> None:
        """Copy the payloads of the message records at *offs* into their channels' buffers."""
        if len(offs) == 0:
            return
        if np.any(arr[offs] != _OP_MESSAGE):
            raise _Corrupt(f"{where}: a message index points at a record that is not a message")
        rec_len = _gather_u(arr, offs + 1, 8, "<u8").astype(np.int64)
        cids = _gather_u(arr, offs + 9, 2, "<u2")
        log_time = _gather_u(arr, offs + 15, 8, "<u8").astype(np.int64)
        starts = offs + 31
        lengths = rec_len - 22
        if np.any(lengths < 0) or np.any(starts + lengths > len(arr)):
            raise _Corrupt(f"{where}: a message record has an impossible length")
        self.messages_read += len(offs)
        binned = np.bincount(cids)
        uniq = np.nonzero(binned)[0]
        per = binned[uniq]
        for cid, k in zip(uniq.tolist(), per.tolist(), strict=True):
            if cid not in self.out.channels:
                raise _Corrupt(f"{where}: message on channel {cid}, which was never declared")
            self.out.raw_counts[cid] = self.out.raw_counts.get(cid, 0) + k
            if not self._keep(cid):
                continue
            sel = np.nonzero(cids == cid)[0] if len(uniq) > 1 else slice(None)
            s, ln, t = starts[sel], lengths[sel], log_time[sel]
            compact = gather_slices(arr, s, ln)
            new_starts = np.cumsum(ln) - ln
            self._buffer(cid).add_batch(t, compact, new_starts, ln)
            self.buffered += len(compact)


_RELEASE_BYTES = 16 * 1024 * 1024
PREFETCH_CHUNKS = 4
"""Chunks decompressed ahead of the one being read (in a worker thread)."""
PREFETCH_MIN_BYTES = 8 * 1024 * 1024
"""Files smaller than this are decompressed in the reading thread."""

_LOCAL = threading.local()


def _inflate(mm: mmap.mmap, pos: int, end: int) -> bytes:
    """The records of the chunk record at *pos*: decompressed, length- and CRC-checked."""
    body = pos + 9
    _start, _end, usize, crc = struct.unpack_from("<QQQI", mm, body)
    compression, p = _str(mm, body + 28)
    (clen,) = _U64.unpack_from(mm, p)
    p += 8
    if p + clen > end:
        raise _Corrupt(f"chunk at offset {pos}: records ({clen} bytes) run past the chunk")
    raw = mm[p : p + clen]
    try:
        if compression == "":
            records = raw
        elif compression == "zstd":
            dctx = getattr(_LOCAL, "zstd", None)
            if dctx is None:
                import zstandard

                dctx = _LOCAL.zstd = zstandard.ZstdDecompressor()
            records = dctx.decompress(raw, max_output_size=usize)
        elif compression == "lz4":
            import lz4.frame

            records = lz4.frame.decompress(raw)
        else:
            raise _Corrupt(
                f"chunk at offset {pos}: unknown compression {compression!r} "
                "(supported: none, zstd, lz4)"
            )
    except _Corrupt:
        raise
    except Exception as err:  # zstandard/lz4 raise their own error types
        raise _Corrupt(f"chunk at offset {pos}: cannot decompress ({compression}): {err}") from err
    if len(records) != usize:
        raise _Corrupt(
            f"chunk at offset {pos}: decompressed to {len(records)} bytes, header says {usize}"
        )
    if crc:
        computed = zlib.crc32(records)
        if computed != crc:
            raise _Corrupt(
                f"chunk at offset {pos}: CRC mismatch (stored {crc:#010x}, computed {computed:#010x})"
            )
    return records


def scan_mcap(
    path: Path,
    *,
    salvage: bool = False,
    topics: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> McapContents:
    """Parse one MCAP file: schemas, channels, every message's payload, metadata, attachments.

    *progress* is called with the number of bytes read so far, after every chunk.

    Raises
    ------
    ReaderError
        Empty file, wrong magic, truncated (unless *salvage*), corrupt chunk.
    """
    return McapScanner(
        path,
        salvage=salvage,
        topics=set(topics) if topics is not None else None,
        progress=progress,
    ).run()


def decode_contents(
    contents: Sequence[McapContents],
    *,
    events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
    vectorized: bool = True,
) -> tuple[dict[str, Any], Any, list[dict[str, Any]], dict[str, int]]:
    """Decode the channels of one or more files of a run (a split bag) together.

    Returns ``(streams, events, skipped, counts)``, *counts* being messages per topic.
    """
    registries = SchemaRegistries()
    for c in contents:
        registries.add(c.schemas.values())
    return messages.decode_buffers(
        merge_buffers(b for c in contents for b in c.buffers.values()),
        registries.for_encoding,
        events_topics=events_topics,
        vectorized=vectorized,
    )


class SchemaRegistries:
    """The message definitions of a run's schemas, one registry per message encoding."""

    def __init__(self) -> None:
        self.ros2 = TypeRegistry("ros2")
        self.ros1 = TypeRegistry("ros1")
        self.protobuf = ProtobufRegistry()

    def add(self, schemas: Iterable[_Schema]) -> None:
        """Register the definitions of *schemas* (ROS 2 msg/idl, ROS 1 msg, protobuf)."""
        for sc in schemas:
            if sc.encoding == "protobuf":
                self.protobuf.add(sc.name, sc.data)
                continue
            text = sc.data.decode("utf-8", errors="replace")
            if sc.encoding == "ros2msg":
                self.ros2.add_msg(sc.name, text)
            elif sc.encoding in ("ros2idl", "omgidl"):
                self.ros2.add_idl(sc.name, text)
            elif sc.encoding == "ros1msg":
                self.ros1.add_msg(sc.name, text)

    def for_encoding(self, encoding: str) -> TypeRegistry | ProtobufRegistry:
        """The registry that decodes messages of *encoding*."""
        if encoding == "protobuf":
            return self.protobuf
        return self.ros1 if encoding == "ros1" else self.ros2


def merge_buffers(buffers: Iterable[TopicBuffer]) -> list[TopicBuffer]:
    """One buffer per (topic, type, encoding): channels of one topic decode together."""
    merged: dict[tuple[str, str, str], TopicBuffer] = {}
    for buf in buffers:
        key = (buf.topic, buf.message_type, buf.encoding)
        if key in merged:
            t, d, s, ln = buf.finish()
            merged[key].add_batch(t, d, s, ln)
        else:
            merged[key] = buf
    return list(merged.values())


def split_factors(
    records: Sequence[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[str]]:
    """MCAP metadata records → (factors by group, other records, rejected keys).

    >>> f, rest, bad = split_factors([{"name": "hardware", "metadata": {"robot": "arm-a"}},
    ...                               {"name": "run", "metadata": {"scenario.seed": "3", "x": "1"}}])
    >>> f, rest
    ({'hardware': {'robot': 'arm-a'}, 'scenario': {'seed': 3}}, [{'name': 'run', 'metadata': {'x': '1'}}])
    """
    factors: dict[str, dict[str, Any]] = {}
    rest: list[dict[str, Any]] = []
    rejected: list[str] = []
    for rec in records:
        name, meta = rec["name"], rec["metadata"]
        if name in FACTOR_GROUPS:
            for k, v in meta.items():
                if _FACTOR_KEY.match(k):
                    factors.setdefault(name, {})[k] = parse_scalar(v)
                else:
                    rejected.append(f"{name}.{k}")
            continue
        left: dict[str, str] = {}
        for k, v in meta.items():
            group, dot, sub = k.partition(".")
            if dot and group in FACTOR_GROUPS and _FACTOR_KEY.match(sub):
                factors.setdefault(group, {})[sub] = parse_scalar(v)
            else:
                left[k] = v
        if left:
            rest.append({"name": name, "metadata": left})
    return factors, rest, rejected
