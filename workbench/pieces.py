"""Streams read piece by piece along time, and exact statistics kept while reading.

Grading (:func:`workbench.quality.grade`) and the built-in metrics read every stream
through :class:`StreamPieces`: consecutive rows along ``time``, a piece at a time, with
the one or two neighbouring rows that a difference, a gradient or an interpolation
needs. Memory is bounded by a piece plus small carried state, so a run larger than
the machine's memory is graded and measured from a lazy (dask-backed) store.

How big a piece is:

* an explicit ``chunk_rows`` (``grade(run, chunk_rows=…)``,
  ``metrics.compute(…, chunk_rows=…)``, or the :func:`chunk_rows` context), else
* :data:`CHUNK_ROWS` (module setting, ``None`` by default), else
* a stream held in memory is one piece (the vectorized path, no copy), and a
  dask-backed stream is read in pieces of about :data:`PIECE_BYTES` (as stored).

What is exact: counts, sums, extremes and first/last positions are exact (sums up to
float rounding, as they are added piece by piece). Medians and percentiles are exact
too: :func:`order_statistics` finds the k-th smallest value by refining a value range
over repeated passes (histogram of the current range, then the values of the one bin
that holds the rank are gathered when they are few), so no pass keeps more than
:data:`COLLECT_VALUES` values.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"v": ("time", np.arange(10.0))}, coords={"time": np.arange(10)})
>>> sp = StreamPieces(ds, rows=4)
>>> [(a, b) for a, b in sp.ranges()]
[(0, 4), (4, 8), (8, 10)]
>>> [p["v"].tolist() for _, _, _, p in sp.pieces(["v"], before=1)]
[[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0, 7.0], [7.0, 8.0, 9.0]]
>>> median(lambda: (p["v"] for _, _, _, p in sp.pieces(["v"])), 10)
4.5
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from workbench.columnar import ColumnReader, MemoryColumn
from workbench.columnar import direct_reader as _column_reader
from workbench.model import ConfigError
from workbench.zarr_io import ChunkReader
from workbench.zarr_io import direct_reader as _chunk_reader

_DIRECT_READERS = (ChunkReader, ColumnReader, MemoryColumn)


def direct_reader(arr: Any) -> ChunkReader | ColumnReader | MemoryColumn | None:
    """A reader of the stored column behind the dask array *arr* (either layout), or None."""
    return _column_reader(arr) or _chunk_reader(arr)

if TYPE_CHECKING:
    import xarray as xr

    from workbench.model import Run
    from workbench.store.core import StoreCore

__all__ = [
    "CHUNK_ROWS",
    "COLLECT_VALUES",
    "LAZY_BYTES",
    "PIECE_BYTES",
    "SCAN_THREADS",
    "LazyTimes",
    "Runs",
    "StreamPieces",
    "chunk_rows",
    "current_chunk_rows",
    "load_for_work",
    "median",
    "order_statistics",
    "percentile",
    "stored_bytes",
]

CHUNK_ROWS: int | None = None
"""Rows per piece for every stream (``None``: automatic, see the module doc)."""

PIECE_BYTES = 32 * 2**20
"""Target size of a piece of a dask-backed stream (all its time-indexed variables)."""

LAZY_BYTES = 512 * 2**20
"""Runs of a store larger than this (estimated from the manifest) are opened lazily
by :func:`workbench.quality.grade_store` and :func:`workbench.metrics.compute`."""

COLLECT_VALUES = 1 << 22
"""Largest number of values :func:`order_statistics` gathers at once (32 MB of float64)."""

_BINS = 4096
_ROWS: ContextVar[int | None] = ContextVar("workbench_chunk_rows", default=None)


def _check_rows(rows: int | None) -> int | None:
    if rows is not None and (isinstance(rows, bool) or int(rows) < 1):
        msg = f"chunk_rows must be a positive number of rows or None, got {rows!r}"
        raise ConfigError(msg)
    return None if rows is None else int(rows)


@contextmanager
def chunk_rows(rows: int | None) -> Iterator[None]:
    """Within the block, read streams in pieces of *rows* rows (``None``: automatic).

    >>> with chunk_rows(100):
    ...     current_chunk_rows()
    100
    """
    token = _ROWS.set(_check_rows(rows))
    try:
        yield
    finally:
        _ROWS.reset(token)


def current_chunk_rows() -> int | None:
    """Rows per piece in effect (the :func:`chunk_rows` context, else :data:`CHUNK_ROWS`)."""
    rows = _ROWS.get()
    return rows if rows is not None else _check_rows(CHUNK_ROWS)


def _is_dask(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "dask"


def _lazy(arr: Any) -> bool:
    """A dask array or a chunk reader: read a piece at a time."""
    return isinstance(arr, _DIRECT_READERS) or _is_dask(arr)


def _ns(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").astype(np.int64)
    return values.astype(np.int64, copy=False) if values.dtype.kind in "iub" else values


SCAN_BYTES = 8 * 2**20
"""Size of the buffer :meth:`StreamPieces.scan` decodes one variable's pieces into."""


SCAN_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads :meth:`StreamPieces.scan_map` reads and scans pieces in."""


class LazyTimes:
    """The times (int64 ns) of rows ``[a, b)`` of a stored stream, read only where
    indexed: a scan that needs the times of a few rows of a piece (where a state
    flips, its last row) does not decode the whole time column.

    ``len``, ``size`` and ``shape`` as an array's; indexing by an int, a slice or an
    int array reads those rows; ``numpy.asarray`` reads them all.

    Examples
    --------
    >>> import os, tempfile, numpy as np, xarray as xr
    >>> from workbench.zarr_io import ChunkReader, write_stream
    >>> d = tempfile.mkdtemp()
    >>> write_stream(xr.Dataset({"v": ("time", np.zeros(10))}, coords={"time": np.arange(10) * 5}), os.path.join(d, "s.zarr"))
    >>> t = LazyTimes(ChunkReader(os.path.join(d, "s.zarr", "time")), 2, 8)
    >>> t.size, int(t[-1]), t[np.array([0, 3])].tolist()
    (6, 35, [10, 25])
    """

    def __init__(self, reader: ChunkReader | ColumnReader | MemoryColumn, a: int, b: int) -> None:
        self.reader, self.a, self.b = reader, int(a), int(b)
        self.size = max(0, self.b - self.a)
        self.shape = (self.size,)
        self.dtype = np.dtype(np.int64)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.size)
            return _ns(self.reader.read(self.a + lo, self.a + max(lo, hi)))[::step]
        idx = np.asarray(key)
        if idx.dtype.kind not in "iu":
            msg = f"LazyTimes takes ints, int arrays or slices, got {key!r}"
            raise TypeError(msg)
        flat = idx.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + self.size, flat)
        if flat.size and (flat.min() < 0 or flat.max() >= self.size):
            msg = f"index out of range for {self.size} times"
            raise IndexError(msg)
        order = np.argsort(flat, kind="stable")
        got = np.empty(flat.size, dtype=np.int64)
        got[order] = _ns(self.reader.take(self.a + flat[order]))
        return int(got[0]) if idx.ndim == 0 else got.reshape(idx.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = _ns(self.reader.read(self.a, self.b))
        return out if dtype is None else out.astype(dtype)


class StreamPieces:
    """One stream read in pieces of consecutive rows along ``time``.

    Parameters
    ----------
    ds
        The stream (numpy- or dask-backed).
    rows
        Rows per piece; ``None`` for the rule of the module doc.

    Notes
    -----
    ``time`` and ``header_time`` come back as int64 nanoseconds; every other variable
    as stored, time first (``var.transpose("time", ...)``).
    """

    def __init__(self, ds: xr.Dataset, rows: int | None = None) -> None:
        self.ds = ds
        self.n = int(ds.sizes.get("time", 0))
        timed = [v for v in ds.variables.values() if "time" in v.dims]
        self.lazy = any(_is_dask(v.data) for v in timed)
        rows = _check_rows(rows)
        if rows is None:
            rows = current_chunk_rows()
        self._auto = rows is None and self.lazy  # pieces sized by the variables read
        if rows is None:
            rows = self._rows_for(timed) if self.lazy else max(1, self.n)
        self.rows = int(rows)
        self._arrays: dict[str, Any] = {}
        self._starts: np.ndarray | None = None  # first time of each piece (sorted streams)

    # ---------------------------------------------------------------- access
    def _rows_for(self, variables: Iterable[Any]) -> int:
        row_bytes = sum(int(v.dtype.itemsize) * int(np.prod(v.shape[1:], dtype=np.int64)) for v in variables)
        return max(1024, PIECE_BYTES // max(1, row_bytes))

    def _array(self, name: str) -> Any:
        arr = self._arrays.get(name)
        if arr is None:
            var = self.ds[name].variable
            if "time" not in var.dims:
                msg = f"variable {name!r} has no time dimension"
                raise ValueError(msg)
            var = var.transpose("time", ...)
            if _is_dask(var.data):
                arr = direct_reader(var.data) or var.data
            else:
                arr = np.asarray(var.values)
            self._arrays[name] = arr
        return arr

    def read(self, names: Sequence[str], a: int, b: int) -> dict[str, np.ndarray]:
        """Rows ``[a, b)`` of the named variables, as numpy."""
        a, b = max(0, a), min(self.n, b)
        out: dict[str, np.ndarray] = {}
        lazy: list[tuple[str, Any]] = []
        for name in names:
            arr = self._array(name)
            if isinstance(arr, _DIRECT_READERS):
                out[name] = arr.read(a, b)
            elif _is_dask(arr):
                lazy.append((name, arr[a:b]))
            else:
                out[name] = arr[a:b]
        if lazy:
            import dask

            values = dask.compute(*[x for _, x in lazy], scheduler="threads")
            out.update({name: np.asarray(v) for (name, _), v in zip(lazy, values, strict=True)})
        for name in ("time", "header_time"):
            if name in out:
                out[name] = _ns(out[name])
        return {name: out[name] for name in names}

    def times(self, a: int, b: int) -> np.ndarray:
        """Times (int64 ns) of rows ``[a, b)``."""
        return self.read(["time"], a, b)["time"]

    def time_at(self, i: int) -> int:
        """Time of row *i*."""
        return int(self.times(i, i + 1)[0])

    def ranges(self, start: int = 0, stop: int | None = None, *, step: int | None = None) -> Iterator[tuple[int, int]]:
        """``(a, b)`` row ranges of the pieces between *start* and *stop*."""
        stop = self.n if stop is None else min(stop, self.n)
        step = self.rows if step is None else max(1, step)
        for a in range(max(0, start), stop, step):
            yield a, min(a + step, stop)

    def pieces(
        self,
        names: Sequence[str],
        *,
        before: int = 0,
        after: int = 0,
        start: int = 0,
        stop: int | None = None,
        step: int | None = None,
    ) -> Iterator[tuple[int, int, int, dict[str, np.ndarray]]]:
        """Yield ``(a, b, lo, arrays)``: arrays hold rows ``[lo, …)`` = piece ``[a, b)``
        widened by up to *before* rows before and *after* rows after (within the stream)."""
        stop = self.n if stop is None else min(stop, self.n)
        if step is None and self._auto:  # fewer, larger pieces when few variables are read
            step = max(self.rows, self._rows_for(self.ds[name].variable for name in names))
        for a, b in self.ranges(start, stop, step=step):
            lo = max(0, a - before)
            yield a, b, lo, self.read(names, lo, min(self.n, b + after))

    def scan(self, name: str) -> Iterator[tuple[np.ndarray | LazyTimes, np.ndarray]]:
        """``(times, values)`` of one variable, piece by piece, for a single pass.

        On a lazily opened local stream the values are decoded into one reused buffer
        (a view of it is yielded: use it before asking for the next piece) and the
        times come as :class:`LazyTimes`, read only where indexed; otherwise the
        pieces of :meth:`pieces`. Values keep their stored dtype.

        :meth:`scan_map` does the same work on several cores.
        """
        values, times = self._array(name), self._array("time")
        if not (isinstance(values, _DIRECT_READERS) and isinstance(times, _DIRECT_READERS)):
            for _a, _b, _lo, p in self.pieces(["time", name]):
                yield p["time"], p[name]
            return
        step = self._scan_step(values)
        buf = np.empty((min(step, self.n), *values.shape[1:]), dtype=values.dtype)
        for a, b in self.ranges(step=step):
            if b - a > buf.shape[0]:
                buf = np.empty((b - a, *values.shape[1:]), dtype=values.dtype)
            yield LazyTimes(times, a, b), values.read(a, b, out=buf)

    def scan_map(self, name: str, fn: Callable[[Any, np.ndarray, dict[str, Any]], Any], *,
                 threads: int | None = None) -> Iterator[Any]:
        """``fn(times, values, scratch)`` of every piece of :meth:`scan`, in order.

        On a lazily opened local stream of several pieces the pieces are read and
        *fn* runs in *threads* threads (default :data:`SCAN_THREADS`), each with its
        own readers, buffer and *scratch* dict: *fn* must keep nothing of *values*
        (a reused buffer) and touch no shared state. Decoding and numpy release the
        GIL, so a scan runs on several cores; at most two pieces per thread are in
        flight (bounded memory). Elsewhere it is ``fn`` over :meth:`scan` here.
        """
        values, times = self._array(name), self._array("time")
        threads = SCAN_THREADS if threads is None else max(1, int(threads))
        if not (isinstance(values, _DIRECT_READERS) and isinstance(times, _DIRECT_READERS)) or threads < 2:
            scratch: dict[str, Any] = {}
            for t, v in self.scan(name):
                yield fn(t, v, scratch)
            return
        step = self._scan_step(values)
        ranges = list(self.ranges(step=step))
        if len(ranges) < 2:
            scratch = {}
            for t, v in self.scan(name):
                yield fn(t, v, scratch)
            return
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor
        from threading import local

        mine = local()

        def task(a: int, b: int) -> Any:
            st = getattr(mine, "st", None)
            if st is None:
                buf = np.empty((step, *values.shape[1:]), dtype=values.dtype)
                st = mine.st = (values.clone(), times.clone(), {}, buf)
            vr, tr, scratch, buf = st
            return fn(LazyTimes(tr, a, b), vr.read(a, b, out=buf), scratch)

        with ThreadPoolExecutor(threads, thread_name_prefix="workbench-scan") as pool:
            pending: deque[Future[Any]] = deque()
            for a, b in ranges:
                pending.append(pool.submit(task, a, b))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _scan_step(self, values: ChunkReader | ColumnReader | MemoryColumn) -> int:
        if isinstance(values, ColumnReader) and self._auto:  # a row group at a time: read in place
            return values.chunk_rows
        row = int(values.dtype.itemsize) * int(np.prod(values.shape[1:], dtype=np.int64))
        step = max(1, SCAN_BYTES // max(1, row) // values.chunk_rows) * values.chunk_rows
        return step if self._auto else self.rows  # rows set by the caller or the chunk_rows context

    # ---------------------------------------------------------------- search
    def piece_starts(self) -> np.ndarray:
        """The first time of every piece (one small read per piece of a lazy stream)."""
        if self._starts is None:
            arr = self._array("time")
            if _lazy(arr):
                self._starts = np.array([self.time_at(a) for a, _ in self.ranges()], dtype=np.int64)
            else:
                self._starts = _ns(np.asarray(arr))[:: self.rows].copy()
        return self._starts

    def searchsorted(self, value: int, side: Literal["left", "right"] = "left") -> int:
        """``numpy.searchsorted`` on the times of a stream sorted by time."""
        arr = self._array("time")
        if not _lazy(arr):
            return int(np.searchsorted(_ns(np.asarray(arr)), value, side=side))
        k = int(np.searchsorted(self.piece_starts(), value, side=side))
        # the answer lies in piece k - 1 (or is its end)
        if k == 0:
            return 0
        a = (k - 1) * self.rows
        b = min(self.n, a + self.rows)
        return a + int(np.searchsorted(self.times(a, b), value, side=side))

    def covering(self, t_lo: int, t_hi: int) -> tuple[int, int]:
        """Rows ``[a, b)`` of a sorted stream that bracket every time in ``[t_lo, t_hi]``
        (the last row at or before *t_lo* to the first row at or after *t_hi*)."""
        a = max(0, self.searchsorted(t_lo, "right") - 1)
        b = min(self.n, self.searchsorted(t_hi, "left") + 1)
        return a, max(a, b)

    def split(self, t: np.ndarray) -> Iterator[np.ndarray]:
        """Indices into *t* (any order) grouped by the piece of this sorted stream each
        time falls in: the rows that bracket one group span about one piece, so
        interpolating this stream at ``t[group]`` reads a bounded window."""
        if t.size == 0:
            return
        k = np.searchsorted(self.piece_starts(), t, side="right")
        if k.size and k.min() == k.max():
            yield np.arange(t.size)
            return
        order = np.argsort(k, kind="stable")
        cuts = np.flatnonzero(np.diff(k[order])) + 1
        yield from np.split(order, cuts)


class Runs:
    """Runs of consecutive True values of a mask that arrives in pieces.

    Each run is ``(lo, hi, first, last)``: global positions (``hi`` exclusive) and the
    caller's values at its first and its last position. *keep* (vectorized, on arrays
    of ``lo, hi, first, last``) selects the runs remembered in :attr:`kept`, at most
    *limit* of them; :attr:`count` counts every run.
    """

    def __init__(
        self,
        keep: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        *,
        limit: int | None = None,
    ) -> None:
        self.keep = keep
        self.limit = limit
        self.count = 0
        self.kept: list[tuple[int, int, int, int]] = []
        self._open: tuple[int, Any, Any] | None = None  # start, first value, last value
        self._end = 0

    def feed(self, mask: np.ndarray, offset: int, first: np.ndarray, last: np.ndarray) -> None:
        """Add ``mask`` (positions ``offset…``); *first*/*last*: values per position."""
        mask = np.asarray(mask, dtype=bool)
        self._end = offset + mask.size
        if mask.size == 0:
            return
        prev = 1 if self._open is not None else 0
        d = np.diff(np.concatenate(([prev], mask.astype(np.int8), [0])))
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1)  # the final 0 closes a run reaching the end (reopened below)
        if prev:
            ends_open, ends = ends[0], ends[1:]
            lo0, f0, l0 = self._open  # type: ignore[misc]
            self._open = None
            if ends_open == mask.size:  # still running past this piece
                self._open = (lo0, f0, last[-1])
            else:
                lastv = last[ends_open - 1] if ends_open > 0 else l0
                self._close(np.array([lo0]), np.array([offset + ends_open]), np.array([f0]), np.array([lastv]))
        if starts.size:
            if ends[-1] == mask.size:  # the last run continues into the next piece
                s = starts[-1]
                self._open = (offset + int(s), first[s], last[-1])
                starts, ends = starts[:-1], ends[:-1]
            if starts.size:
                self._close(offset + starts, offset + ends, np.asarray(first)[starts], np.asarray(last)[ends - 1])

    def finish(self) -> list[tuple[int, int, int, int]]:
        """Close a run still open at the end; returns :attr:`kept`."""
        if self._open is not None:
            lo0, f0, l0 = self._open
            self._open = None
            self._close(np.array([lo0]), np.array([self._end]), np.array([f0]), np.array([l0]))
        return self.kept

    def _close(self, lo: np.ndarray, hi: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        self.count += int(lo.size)
        if self.limit is not None and len(self.kept) >= self.limit:
            return
        sel = np.ones(lo.size, dtype=bool) if self.keep is None else np.asarray(self.keep(lo, hi, first, last), dtype=bool)
        for i in np.flatnonzero(sel):
            if self.limit is not None and len(self.kept) >= self.limit:
                break
            self.kept.append((int(lo[i]), int(hi[i]), first[i].item(), last[i].item()))


# --------------------------------------------------------------------------- order statistics


def order_statistics(pieces: Callable[[], Iterable[np.ndarray]], ranks: Sequence[int]) -> list[Any]:
    """Exact k-th smallest values (0-based *ranks*) of the values *pieces()* yields.

    *pieces* is called once per pass and must yield the same 1-D, NaN-free values
    every time. Memory: one piece plus at most :data:`COLLECT_VALUES` gathered values.

    >>> data = [np.array([5, 1, 4]), np.array([2, 3])]
    >>> order_statistics(lambda: iter(data), [0, 2, 4])
    [1, 3, 5]
    """
    ranks = [int(k) for k in ranks]
    lo: Any = None
    hi: Any = None
    below = 0  # values smaller than lo
    for _ in range(64):
        counts: np.ndarray | None = None
        edges: np.ndarray | None = None
        gathered: list[np.ndarray] | None = []
        n_in = 0
        dtype: np.dtype | None = None
        seen_lo: Any = None
        seen_hi: Any = None
        if lo is not None and lo != hi:
            edges = _edges(lo, hi)
            counts = np.zeros(edges.size - 1, dtype=np.int64)
        for piece in pieces():
            x = np.asarray(piece).ravel()
            if dtype is None:
                dtype = x.dtype
            if lo is not None:
                x = x[(x >= lo) & (x <= hi)]
            if x.size == 0:
                continue
            if lo is None:  # first pass: the range
                mn, mx = x.min(), x.max()
                seen_lo = mn if seen_lo is None else min(seen_lo, mn)
                seen_hi = mx if seen_hi is None else max(seen_hi, mx)
            elif counts is not None and edges is not None:
                idx = np.minimum(np.searchsorted(edges, x, side="right") - 1, counts.size - 1)
                counts += np.bincount(idx, minlength=counts.size)
            n_in += x.size
            if gathered is not None:
                if n_in <= COLLECT_VALUES:
                    gathered.append(x.copy())
                else:
                    gathered = None
        if n_in == 0 or any(not 0 <= k - below < n_in for k in ranks):
            msg = f"ranks {ranks} are outside the {below + n_in} values"
            raise ValueError(msg)
        if gathered is not None:
            values = np.sort(np.concatenate(gathered))
            return [values[k - below].item() for k in ranks]
        if lo is None:
            lo, hi = seen_lo, seen_hi
            if not (np.isfinite(lo) and np.isfinite(hi)):  # infinities: no histogram, gather all
                return _gather_all(pieces, ranks)
            continue
        if lo == hi:
            return [lo.item() if hasattr(lo, "item") else lo for _ in ranks]
        assert counts is not None and edges is not None
        cum = np.cumsum(counts)
        first_bin = int(np.searchsorted(cum, min(ranks) - below, side="right"))
        last_bin = int(np.searchsorted(cum, max(ranks) - below, side="right"))
        below += int(cum[first_bin - 1]) if first_bin else 0
        new_lo = edges[first_bin]
        if edges.dtype.kind == "f" or last_bin == counts.size - 1:
            new_hi = edges[last_bin + 1]
        else:
            new_hi = edges[last_bin + 1] - 1
        lo, hi = new_lo, new_hi
    return _gather_all(pieces, ranks)  # pragma: no cover - a range that will not shrink


def _edges(lo: Any, hi: Any) -> np.ndarray:
    if isinstance(lo, np.integer | int) and isinstance(hi, np.integer | int):
        lo_i, span = int(lo), int(hi) - int(lo)
        edges = sorted({lo_i + (span * i) // _BINS for i in range(_BINS + 1)})
        return np.array(edges, dtype=np.int64)
    return np.linspace(float(lo), float(hi), _BINS + 1)


def _gather_all(pieces: Callable[[], Iterable[np.ndarray]], ranks: Sequence[int]) -> list[Any]:
    values = np.sort(np.concatenate([np.asarray(p).ravel() for p in pieces()]))
    return [values[k].item() for k in ranks]


def median(pieces: Callable[[], Iterable[np.ndarray]], n: int) -> float:
    """Exact median (as ``numpy.median``) of *n* values yielded by *pieces()*."""
    a, b = order_statistics(pieces, [(n - 1) // 2, n // 2])
    if n % 2:
        return float(a)
    return float(np.mean(np.array([a, b], dtype=np.float64)))


def percentile(pieces: Callable[[], Iterable[np.ndarray]], n: int, q: float) -> float:
    """Exact ``numpy.percentile(values, q)`` (linear method) of *n* values from *pieces()*."""
    virtual = (q / 100.0) * (n - 1)
    k = int(np.floor(virtual))
    k2 = min(k + 1, n - 1)
    a, b = (float(v) for v in order_statistics(pieces, [k, k2]))
    t = virtual - k
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


# --------------------------------------------------------------------------- loading


def stored_bytes(manifest: Mapping[str, Any]) -> int:
    """Estimated in-memory size of a stored run (8 bytes per value), from its manifest."""
    total = 0
    for stream in (manifest.get("streams") or {}).values():
        dims = dict(stream.get("dims") or {})
        rows = int(dims.pop("time", 0))
        encoded = int(dims.pop("byte", 0))
        width = int(np.prod([int(v) for v in dims.values()])) if dims else 1
        total += rows * (8 * width * max(1, len(stream.get("variables") or ())) + 16) + encoded
    return total


def load_for_work(store: StoreCore, run_id: str) -> Run:
    """Open a stored run for grading or metrics: in memory when small, lazily when larger
    than :data:`LAZY_BYTES` (then read piece by piece)."""
    large = stored_bytes(store.manifest(run_id)) > LAZY_BYTES
    return store.load(run_id, lazy=large, indexes=not large)
