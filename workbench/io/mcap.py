"""MCAP files (ROS 2 CDR, ROS 1, JSON, protobuf) → one run per file.

The file is memory-mapped and its records are parsed by :mod:`workbench.io.mcap_scan`
(shared with the ROS 2 bag reader), chunk by chunk: each chunk
is decompressed (zstd, lz4) and checked against its CRC — in a worker thread, a few
chunks ahead, for files over :data:`PREFETCH_MIN_BYTES` — its message records are
located through the chunk's message indexes (or by walking the records when there
are none) and each channel's payloads are copied out in one numpy gather. Messages are
then decoded a whole topic at a time (see :mod:`workbench.io.cdr` and
:mod:`workbench.io.messages`), never one Python object per message.

Streaming (files larger than memory). ``McapReader.read(path, parts=True)`` — what the
store asks for — yields a :class:`~workbench.io.messages.StreamingRunData`: the scanner
is a generator that stops after each chunk; whenever the payloads it holds reach
:data:`PART_BYTES`, they are decoded into one partial ``Dataset`` per stream and handed
out, and the buffers start empty again. Stream names are kept from part to part, and the
store appends each part to its tables (:class:`workbench.columnar.ParquetStreamWriter`),
so memory is bounded by a few parts and one row group per table, whatever the file's size;
pages of the mapping already read are handed back to the OS as the scan advances.
Metadata, events, skipped-message counts and the cross-checks are complete once the
last part is out. ``read(path)`` without ``parts`` returns the whole run in memory as
before. ``read(..., progress=f)`` calls ``f(bytes_read_so_far)`` after every chunk
(the store's progress bar uses it); neither ``parts`` nor ``progress`` is an option of
the run (they do not change what is read, nor the run's id).

Factors: MCAP metadata records named ``hardware``, ``environment``, ``model`` or
``scenario`` map to those factor groups (values through
:func:`workbench.model.parse_scalar`); keys of other records that start with a group
and a dot (``scenario.task``) map too. Everything else — other metadata, attachments
(name, media type, size), the file header, salvage facts — goes to ``RunData.extra``.

Examples
--------
>>> from pathlib import Path
>>> McapReader().guess_can_open(Path("missing.mcap"))
False
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from workbench.io import messages
from workbench.io.mcap_scan import (
    MAGIC,
    PREFETCH_MIN_BYTES,
    McapContents,
    McapScanner,
    SchemaRegistries,
    decode_contents,
    merge_buffers,
    scan_mcap,
    split_factors,
)
from workbench.io.messages import (
    DEFAULT_EVENTS_TOPICS,
    PART_BYTES,
    StreamingRunData,
    TopicBuffer,
)
from workbench.io.registry import ReaderEntrypoint, RunData

__all__ = [
    "MAGIC",
    "PART_BYTES",
    "PREFETCH_MIN_BYTES",
    "McapContents",
    "McapReader",
    "McapScanner",
    "SchemaRegistries",
    "decode_contents",
    "merge_buffers",
    "scan_mcap",
    "split_factors",
]


class McapReader(ReaderEntrypoint):
    """MCAP file (ROS 2 CDR, ROS 1, JSON or protobuf messages), one run per file."""

    name: ClassVar[str] = "mcap"
    description: ClassVar[str] = (
        "MCAP log (.mcap) with ROS 2 (cdr), ROS 1, JSON or protobuf messages"
    )
    url: ClassVar[str] = "https://mcap.dev/spec"
    version: ClassVar[str] = "2"  # 2: protobuf channels decoded
    supports_salvage: ClassVar[bool] = True
    supports_progress: ClassVar[bool] = True
    supports_parts: ClassVar[bool] = True

    def guess_can_open(self, path: Path) -> bool:
        """Claim files that start with the MCAP magic (any suffix) or end in ``.mcap``."""
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
        return head == MAGIC or (path.suffix.lower() == ".mcap" and len(head) == 0)

    def read(
        self,
        path: Path,
        *,
        events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
        topics: Sequence[str] | None = None,
        salvage: bool = False,
        progress: Callable[[int], None] | None = None,
        parts: bool = False,
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        events_topics
            Topics whose text messages are events (JSON objects with a ``"kind"`` key).
        topics
            Only decode these topics (all when ``None``).
        salvage
            Read the readable prefix of a truncated or corrupt file instead of failing;
            ``extra["salvaged"]`` then says why and how many messages were read.
        progress
            Called with the number of bytes of the file read so far (not an option of
            the run: it does not change what is read).
        parts
            Yield a :class:`~workbench.io.messages.StreamingRunData` whose streams
            arrive in parts of about :data:`PART_BYTES` of messages each, so memory
            stays bounded whatever the file's size (not an option of the run either).
        """
        path = Path(path)
        wanted = set(topics) if topics is not None else None
        scanner = McapScanner(path, salvage=salvage, topics=wanted, progress=progress)
        if not parts:
            yield build_run(path.stem, [scanner.run()], events_topics=events_topics)
            return
        scanner.open()  # a file that is not an MCAP fails here, before any part
        run = StreamingRunData(key="", name=path.stem)
        run.parts = _stream_parts(scanner, run, events_topics=events_topics)
        yield run




def _stream_parts(
    scanner: McapScanner,
    run: StreamingRunData,
    *,
    events_topics: Sequence[str],
    part_bytes: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Decode the file a group of chunks at a time; fill *run*'s other fields at the end."""
    limit = PART_BYTES if part_bytes is None else part_bytes
    registries = SchemaRegistries()
    registered: set[int] = set()

    def batch(buffers: dict[int, TopicBuffer]) -> list[TopicBuffer]:
        new = [sc for sid, sc in scanner.out.schemas.items() if sid not in registered]
        registered.update(sc.id for sc in new)
        registries.add(new)
        return merge_buffers(buffers.values())

    def batches() -> Iterator[list[TopicBuffer]]:
        for _ in scanner.steps():
            if scanner.buffered >= limit:
                yield batch(scanner.take_buffers())
        yield batch(scanner.take_buffers())

    def done(events: Any, skipped: list[dict[str, Any]], counts: dict[str, int]) -> None:
        run.events = events
        run.skipped = skipped
        _describe(run, [scanner.out], counts)

    yield from messages.decode_parts(
        batches(), registries.for_encoding, events_topics=events_topics, done=done
    )


def build_run(
    name: str,
    contents: Sequence[McapContents],
    *,
    events_topics: Sequence[str] = DEFAULT_EVENTS_TOPICS,
    extra: dict[str, Any] | None = None,
) -> RunData:
    """One :class:`RunData` from the scanned files of a run."""
    streams, events, skipped, counts = decode_contents(contents, events_topics=events_topics)
    run = RunData(key="", streams=streams, events=events, skipped=skipped, name=name)
    _describe(run, contents, counts, extra)
    return run


def _describe(
    run: RunData,
    contents: Sequence[McapContents],
    counts: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> None:
    """Set *run*'s factors and extra (header, metadata, attachments, counts, salvage)."""
    records = [m for c in contents for m in c.metadata]
    factors, rest, rejected = split_factors(records)
    ex: dict[str, Any] = dict(extra or {})
    first = contents[0]
    ex["mcap_header"] = {"profile": first.profile, "library": first.library}
    if rest:
        ex["mcap_metadata"] = rest
    if rejected:
        ex["rejected_factor_keys"] = rejected
    attachments = [a for c in contents for a in c.attachments]
    if attachments:
        ex["attachments"] = attachments
    ex["message_counts"] = counts
    salvaged = [c.salvaged for c in contents if c.salvaged]
    if salvaged:
        ex["salvaged"] = {
            "reason": "; ".join(s["reason"] for s in salvaged),
            "messages": sum(s["messages"] for s in salvaged),
        }
    declared: dict[str, int] = {}
    read: dict[str, int] = {}
    for c in contents:
        for cid, ch in c.channels.items():
            read[ch.topic] = read.get(ch.topic, 0) + c.raw_counts.get(cid, 0)
            if c.statistics is not None and not c.salvaged:
                declared[ch.topic] = declared.get(ch.topic, 0) + c.statistics.get(cid, 0)
    empty = sorted(t for t, k in read.items() if k == 0)
    if empty:
        ex["empty_topics"] = empty
    mismatch = {
        t: {"declared": k, "read": read.get(t, 0)}
        for t, k in declared.items()
        if k != read.get(t, 0)
    }
    if mismatch:
        ex["count_mismatch"] = mismatch
    run.factors = factors
    run.extra = ex
