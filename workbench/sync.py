"""Time alignment: resampling onto a common axis, clock offsets, latency, cross-run shifts.

Every function takes and returns int64-nanosecond times. A value is only ever
carried to a target time within a *tolerance*; beyond it the result is NaN, never a
silently stale value.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"v": ("time", [0.0, 10.0])}, coords={"time": np.array([0, 10], dtype=np.int64)})
>>> resample(ds, np.array([0, 5, 10, 30], dtype=np.int64), method="linear", tolerance="20ns")["v"].values
array([ 0.,  5., 10., nan])
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from workbench.model import ConfigError, Run, SchemaError

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = [
    "METHODS",
    "LatencyStats",
    "OffsetEstimate",
    "RunAlignment",
    "align",
    "align_runs",
    "asof_index",
    "dtw",
    "estimate_offset",
    "latency",
    "resample",
    "to_ns_duration",
]

METHODS = ("nearest", "linear", "previous")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000}


def to_ns_duration(value: Any) -> int:
    """A duration as int nanoseconds: ``"20ms"``, ``"1.5s"``, int ns, timedelta.

    >>> to_ns_duration("20ms"), to_ns_duration(5), to_ns_duration("1.5 s")
    (20000000, 5, 1500000000)
    """
    if isinstance(value, bool):
        msg = f"duration must be a number of ns or a string like '20ms', got {value!r}"
        raise ConfigError(msg)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, _dt.timedelta):
        return int(round(value.total_seconds() * 1e9))
    if isinstance(value, np.timedelta64):
        return int(value.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(ns|us|µs|ms|s|min)\s*", value)
        if m:
            return int(round(float(m.group(1)) * _UNIT_NS[m.group(2)]))
    msg = f"duration {value!r} is not valid; use e.g. '20ms', '1.5s', or int nanoseconds"
    raise ConfigError(msg)


def _times(ds: xr.Dataset | xr.DataArray) -> np.ndarray:
    t = np.asarray(ds["time"].values)
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").astype(np.int64)
    return t.astype(np.int64, copy=False)


def _median_period(t: np.ndarray) -> int:
    if t.size < 2:
        return 0
    dt = np.diff(t)
    dt = dt[dt > 0]
    return int(np.median(dt)) if dt.size else 0


_BLOCK = 1 << 14
"""Target rows per block in the block-wise loops: a block's temporaries stay in the L2 cache."""

_INTERP_BLOCK = 1 << 16
"""Target rows per ``np.interp`` call in linear interpolation (it searches within the block itself)."""

_PARALLEL_MIN = 1 << 19
"""Fewest target rows worth splitting over threads."""

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """In a forked child the pool's threads are gone: start a new pool when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _threads() -> int:
    """Threads for the block loops: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _run_blocks(start: int, stop: int, work: Callable[[int, int], None], block: int | None = None) -> None:
    """``work(lo, hi)`` over the rows ``start:stop``, split over threads when there are many rows.

    Each thread gets whole blocks of *block* rows (default ``_BLOCK``) and writes
    only its own rows; the kernels in *work* (``np.interp``, searchsorted, take,
    ufuncs) release the GIL.
    """
    global _pool
    n = stop - start
    threads = _threads()
    if threads == 1 or n < _PARALLEL_MIN:
        work(start, stop)
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="workbench-sync")
    # whole blocks per thread, so the block grid does not depend on the thread count
    block = block or _BLOCK
    per = -(-n // (threads * block)) * block
    cuts = [*range(start, stop, per), stop]
    for future in [_pool.submit(work, lo, hi) for lo, hi in itertools.pairwise(cuts)]:
        future.result()


def _is_sorted(a: np.ndarray) -> bool:
    return a.size < 2 or not bool(np.any(a[1:] < a[:-1]))


def _blocks(
    edges: np.ndarray, target: np.ndarray, start: int, stop: int, *, strict: bool
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Sorted target rows ``start:stop`` in blocks, each with its rows' source rows.

    Row *i* belongs to source row ``k = #{e in edges: e <= target[i]}`` (*strict*:
    ``e < target[i]``); *edges* are sorted. Yields ``(lo, hi, k)`` for rows ``lo:hi``.
    Only the (fewer) edges are searched, among the block's rows, which are in the
    cache; ``k`` is then a cumulative count. The returned array is reused.
    """
    side_k: Literal["left", "right"] = "left" if strict else "right"
    side_pos: Literal["left", "right"] = "right" if strict else "left"
    k = np.empty(min(_BLOCK, stop - start), dtype=np.int64)
    for lo in range(start, stop, _BLOCK):
        hi = min(lo + _BLOCK, stop)
        rows = target[lo:hi]
        a = int(np.searchsorted(edges, rows[0], side=side_k))
        b = int(np.searchsorted(edges, rows[-1], side=side_k))
        pos = np.searchsorted(rows, edges[a:b], side=side_pos)  # first row past each edge
        kb = np.cumsum(np.bincount(pos, minlength=hi - lo)[: hi - lo], out=k[: hi - lo])
        yield lo, hi, np.add(kb, a, out=kb)


def _asof_fill(
    src: np.ndarray,
    target: np.ndarray,
    strategy: str,
    tol: int | None,
    columns: Sequence[np.ndarray],
    outs: Sequence[np.ndarray],
    fill: float,
    *,
    target_sorted: bool,
) -> None:
    """Write the as-of value of each source-aligned column at each target time into *outs*.

    *src* is sorted and not empty; *target_sorted* says whether *target* is. Rows
    without a match, or farther than *tol*, get *fill*. Ties and duplicate source
    times resolve as in polars ``join_asof``: ``backward`` and ``nearest`` take the
    later source row, ``forward`` the earlier.
    """
    n = target.size
    if n == 0:
        return
    if not target_sorted:
        order = np.argsort(target, kind="stable")
        tmp = [np.empty(n, dtype=o.dtype) for o in outs]
        _asof_fill(src, target[order], strategy, tol, columns, tmp, fill, target_sorted=True)
        for o, t in zip(outs, tmp, strict=True):
            o[order] = t
        return
    rows = None
    if strategy == "nearest":
        step = np.diff(src)
        if step.size and not step.all():  # duplicate times: keep the last of each
            rows = np.flatnonzero(np.append(step != 0, True))
            src, step = src[rows], np.diff(src[rows])
        edges, strict = src[:-1] + (step + 1) // 2, False  # a tie goes to the later row
        start, stop = 0, n
    elif strategy == "backward":
        edges, strict = src[1:], False
        start, stop = int(np.searchsorted(target, src[0], side="left")), n
    else:
        edges, strict = src[:-1], True
        start, stop = 0, int(np.searchsorted(target, src[-1], side="right"))
    if tol is not None and tol >= max(int(src[-1]), int(target[-1])) - min(int(src[0]), int(target[0])):
        tol = None  # no pair of times is that far apart
    cols = [c if rows is None else c[rows] for c in columns]
    for o in outs:
        o[:start] = fill
        o[stop:] = fill

    def work(lo0: int, hi0: int) -> None:
        near = np.empty(min(_BLOCK, hi0 - lo0), dtype=np.int64) if tol is not None else None
        for lo, hi, k in _blocks(edges, target, lo0, hi0, strict=strict):
            for c, o in zip(cols, outs, strict=True):
                np.take(c, k, out=o[lo:hi], mode="clip")
            if near is not None:
                matched = np.take(src, k, out=near[: hi - lo], mode="clip")
                dist = np.subtract(target[lo:hi], matched, out=matched)
                if strategy == "forward":
                    np.negative(dist, out=dist)
                elif strategy == "nearest":
                    np.abs(dist, out=dist)
                bad = np.flatnonzero(dist > tol)
                if bad.size:
                    for o in outs:
                        o[lo + bad] = fill

    _run_blocks(start, stop, work)


def _check_strategy(strategy: str) -> None:
    if strategy not in {"backward", "forward", "nearest"}:
        msg = f"strategy {strategy!r} is not valid; choose backward, forward or nearest"
        raise ConfigError(msg)


def asof_index(
    source: np.ndarray,
    target: np.ndarray,
    *,
    strategy: str = "backward",
    tolerance_ns: int | None = None,
) -> np.ndarray:
    """Index into sorted *source* times matched to each *target* time (-1: no match).

    ``strategy`` is ``backward`` (last source ≤ target), ``forward`` (first source ≥
    target) or ``nearest`` (a tie goes to the later source). Of equal source times,
    ``backward`` and ``nearest`` give the last, ``forward`` the first (as polars
    ``join_asof``). *target* need not be sorted.

    >>> asof_index(np.array([0, 10, 20]), np.array([-1, 5, 10, 19]), strategy="nearest", tolerance_ns=4)
    array([ 0, -1,  1,  2])
    """
    _check_strategy(strategy)
    source = np.asarray(source, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    if source.size == 0:
        return np.full(target.shape, -1, dtype=np.int64)
    if not _is_sorted(source):
        msg = "source times must be sorted ascending"
        raise SchemaError(msg)
    if tolerance_ns is not None and tolerance_ns < 0:
        msg = f"tolerance_ns must be >= 0, got {tolerance_ns}"
        raise ConfigError(msg)
    out = np.empty(target.shape, dtype=np.int64)
    rows = np.arange(source.size, dtype=np.int64)
    _asof_fill(source, target, strategy, tolerance_ns, [rows], [out], -1, target_sorted=_is_sorted(target))
    return out


def _take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    missing = idx < 0
    out = np.take(values, np.where(missing, 0, idx), axis=0)
    if missing.any():
        if out.dtype.kind not in "fc":
            out = out.astype(np.float64)
        out[missing] = np.nan
    return out


def _columns(values: np.ndarray) -> list[np.ndarray]:
    """The columns of *values* (time first) as contiguous 1-D arrays, in Fortran order."""
    flat = values.reshape(values.shape[0], -1, order="F")
    return [np.ascontiguousarray(flat[:, j]) for j in range(flat.shape[1])]


def _gap_mask(src: np.ndarray, target: np.ndarray, tol: int, *, target_sorted: bool) -> np.ndarray | None:
    """Target rows strictly inside a source gap wider than *tol* (None: no such row)."""
    gaps = np.flatnonzero(np.diff(src) > tol)
    if gaps.size == 0:
        return None
    if not target_sorted:
        i0 = np.clip(np.searchsorted(src, target, side="right") - 1, 0, src.size - 2)
        mask = (target > src[i0]) & (target < src[i0 + 1]) & (np.diff(src)[i0] > tol)
        return mask if mask.any() else None
    lo = np.searchsorted(target, src[gaps], side="right")
    hi = np.maximum(np.searchsorted(target, src[gaps + 1], side="left"), lo)
    if not np.any(hi > lo):
        return None
    # the row ranges lo:hi are disjoint and in order: one repeat of an alternating pattern
    edges = np.empty(2 * gaps.size + 2, dtype=np.int64)
    edges[0], edges[-1] = 0, target.size
    edges[1:-1:2], edges[2:-1:2] = lo, hi
    pattern = np.zeros(edges.size - 1, dtype=bool)
    pattern[1::2] = True
    return np.repeat(pattern, np.diff(edges))


def _linear(
    values: np.ndarray, src: np.ndarray, target: np.ndarray, tol: int | None, target_sorted: Callable[[], bool]
) -> np.ndarray:
    """Linear interpolation per column, NaN outside the source span and inside gaps wider than *tol*.

    ``np.interp`` on blocks of target rows, each against the source rows around it:
    the block's conversion to float stays in the cache and the blocks run on several
    threads (``np.interp`` releases the GIL). Times are taken relative to the first
    source sample, so the floats are exact within 2**53 ns (104 days) of it, where
    ``np.interp`` on ns since the epoch rounds them to 256 ns. The values, NaN and
    inf included, are ``np.interp``'s.
    """
    n = target.size
    out = np.empty((n, int(np.prod(values.shape[1:]))), dtype=np.float64, order="F")  # contiguous columns
    if src.size == 0 or n == 0:
        out[:] = np.nan
        return out.reshape((n, *values.shape[1:]), order="F")
    columns = _columns(values.astype(np.float64, copy=False))
    base = src[0]
    xp = np.subtract(src, base, out=np.empty(src.size), casting="unsafe")

    def work(lo0: int, hi0: int) -> None:
        x_buf = np.empty(min(_INTERP_BLOCK, hi0 - lo0))
        for lo in range(lo0, hi0, _INTERP_BLOCK):
            rows = target[lo : min(lo + _INTERP_BLOCK, hi0)]
            a = max(int(np.searchsorted(src, rows.min(), side="right")) - 1, 0)  # the source rows around
            b = min(int(np.searchsorted(src, rows.max(), side="right")) + 1, src.size)
            x = np.subtract(rows, base, out=x_buf[: rows.size], casting="unsafe")  # in int64, then float
            for j, c in enumerate(columns):
                out[lo : lo + rows.size, j] = np.interp(x, xp[a:b], c[a:b], left=np.nan, right=np.nan)

    _run_blocks(0, n, work, _INTERP_BLOCK)
    if tol is not None and src.size > 1:
        mask = _gap_mask(src, target, tol, target_sorted=target_sorted())
        if mask is not None:
            out[mask] = np.nan
    return out.reshape((n, *values.shape[1:]), order="F")


def resample(
    ds: xr.Dataset,
    target: np.ndarray,
    *,
    method: str | Mapping[str, str] = "nearest",
    tolerance: Any = None,
) -> xr.Dataset:
    """Resample a stream onto *target* times (int64 ns).

    Parameters
    ----------
    method
        ``nearest``, ``linear`` or ``previous``, or a mapping variable → method
        (unlisted variables use ``nearest``). ``linear`` applies to float variables;
        others fall back to ``nearest``.
    tolerance
        Largest distance to the source sample used (``nearest``/``previous``), or
        largest gap interpolated across (``linear``). Default: twice the stream's
        median sample period. ``"inf"`` disables it.

    Returns
    -------
    xarray.Dataset
        The variables with a ``time`` dimension, on a ``time`` coordinate that shares
        memory with *target* (no copy).

    Notes
    -----
    Targets are processed in cache-sized blocks, on up to one thread per CPU for
    large inputs. As-of matches resolve ties and duplicate times as polars
    ``join_asof`` does; ``linear`` gives ``np.interp``'s values, with times exact
    within 104 days of the first sample.
    """
    import pandas as pd
    import xarray as xr
    from xarray.indexes import PandasIndex

    src = _times(ds)
    target = np.asarray(target, dtype=np.int64)
    if src.size > 1 and np.any(src[1:] < src[:-1]):
        ds = ds.sortby("time")
        src = _times(ds)
    if tolerance == "inf":
        tol: int | None = None
    elif tolerance is None:
        period = _median_period(src)
        tol = 2 * period if period else None
    else:
        tol = to_ns_duration(tolerance)
        if tol < 0:
            msg = f"tolerance must be >= 0, got {tolerance!r}"
            raise ConfigError(msg)
    methods = {str(v): (method if isinstance(method, str) else method.get(str(v), "nearest")) for v in ds.data_vars}
    for vname, m in methods.items():
        if m not in METHODS:
            msg = f"method {m!r} for {vname!r} is not valid; choose from {', '.join(METHODS)}"
            raise ConfigError(msg)
    target_sorted = functools.cache(lambda: _is_sorted(target))
    out_vars: dict[Any, Any] = {}
    floats: dict[str, list[tuple[np.ndarray, list[np.ndarray]]]] = {"nearest": [], "backward": []}
    index: dict[str, np.ndarray] = {}  # per strategy, for the other dtypes
    for name, var in ds.data_vars.items():
        if "time" not in var.dims:
            continue
        var = var.transpose("time", ...)
        values = np.asarray(var.values)
        m = methods[str(name)]
        strategy = "backward" if m == "previous" else "nearest"
        if m == "linear" and values.dtype.kind == "f":
            out = _linear(values, src, target, tol, target_sorted)
        elif values.dtype.kind in "biuf" and src.size == 0:
            out = np.full((target.size, *values.shape[1:]), np.nan)
        elif values.dtype.kind == "f":  # filled below, all columns of a strategy in one pass
            out = np.empty((target.size, *values.shape[1:]), dtype=values.dtype, order="F")
            flat = out.reshape(target.size, -1, order="F")
            floats[strategy].append((values, [flat[:, j] for j in range(flat.shape[1])]))
        else:  # integers, booleans, text: gather by index (float64 with NaN where no match)
            if strategy not in index:
                index[strategy] = asof_index(src, target, strategy=strategy, tolerance_ns=tol)
            out = _take(values, index[strategy])
        out_vars[name] = (var.dims, out, var.attrs)
    for strategy, group in floats.items():
        if group:
            columns = [c for values, _ in group for c in _columns(values)]
            outs = [o for _, var_outs in group for o in var_outs]
            _asof_fill(src, target, strategy, tol, columns, outs, np.nan, target_sorted=target_sorted())
    ordered = {name: out_vars[name] for name in ds.data_vars if name in out_vars}
    # the time index is built on *target* itself: pd.Index would otherwise copy it
    kept = ds.drop_vars([c for c in ds.coords if "time" in ds.coords[c].dims]).coords
    time_index = PandasIndex(pd.Index(target, copy=False), "time")
    coords = xr.Coordinates(
        {**kept.variables, "time": xr.Variable("time", target)}, indexes={**kept.xindexes, "time": time_index}
    )
    return xr.Dataset(ordered, coords=coords, attrs=ds.attrs)


def _target_axis(streams: Mapping[str, xr.Dataset], to: Any) -> np.ndarray:
    if isinstance(to, str):
        if to not in streams:
            msg = f"no stream {to!r} to align to; streams: {', '.join(streams)}"
            raise ConfigError(msg)
        return _times(streams[to])
    if isinstance(to, int | float) and not isinstance(to, bool):
        if to <= 0:
            msg = f"rate_hz must be positive, got {to}"
            raise ConfigError(msg)
        spans = [(_times(s)[0], _times(s)[-1]) for s in streams.values() if s.sizes.get("time", 0)]
        if not spans:
            return np.zeros(0, dtype=np.int64)
        start = min(a for a, _ in spans)
        end = max(b for _, b in spans)
        step = 1e9 / float(to)
        n = int(np.floor((end - start) / step)) + 1
        return start + np.round(np.arange(n) * step).astype(np.int64)
    arr = np.asarray(to)
    if arr.ndim == 1 and arr.dtype.kind in "iuM":
        return arr.astype("datetime64[ns]").astype(np.int64) if arr.dtype.kind == "M" else arr.astype(np.int64)
    msg = f"to={to!r} is not valid: give a stream name, a rate in Hz, or an array of int64 ns times"
    raise ConfigError(msg)


def align(
    run_or_streams: Run | Mapping[str, xr.Dataset],
    *,
    to: str | float | np.ndarray,
    method: str | Mapping[str, str] = "nearest",
    tolerance: Any = None,
    streams: Iterable[str] | None = None,
) -> xr.Dataset:
    """Put several streams on one time axis; variables are named ``<stream>.<var>``.

    Parameters
    ----------
    run_or_streams
        A :class:`~workbench.model.Run` or a mapping of stream name → Dataset.
    to
        A stream name (use its times), a rate in Hz (uniform grid over the streams'
        span) or an array of int64-ns times.
    method
        One method for all variables, or a mapping ``"<stream>.<var>"`` (or
        ``"<var>"``) → method.
    tolerance
        See :func:`resample` (default: twice each source stream's median period).
    streams
        Only these streams (default: all with a ``time`` dimension, except encoded images).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.Dataset({"x": ("time", [1.0, 2.0, 3.0])}, coords={"time": np.array([0, 10, 20])})
    >>> b = xr.Dataset({"y": ("time", [5.0, 6.0])}, coords={"time": np.array([1, 19])})
    >>> align({"a": a, "b": b}, to="a", tolerance="5ns")["b.y"].values
    array([ 5., nan,  6.])
    """
    import xarray as xr

    all_streams = run_or_streams.streams if isinstance(run_or_streams, Run) else dict(run_or_streams)
    names = list(streams) if streams is not None else [
        n for n, s in all_streams.items() if s.attrs.get("kind") not in {"image_encoded", "video_ref"}
    ]
    unknown = [n for n in names if n not in all_streams]
    if unknown:
        msg = f"no stream(s) {unknown}; streams: {', '.join(all_streams)}"
        raise ConfigError(msg)
    chosen = {n: all_streams[n] for n in names}
    target = _target_axis(all_streams if isinstance(to, str) else chosen, to)
    merged = {}
    for name, ds in chosen.items():
        per_var: str | dict[str, str]
        if isinstance(method, str):
            per_var = method
        else:
            per_var = {
                str(v): method.get(f"{name}.{v}", method.get(str(v), "nearest")) for v in ds.data_vars
            }
        out = resample(ds, target, method=per_var, tolerance=tolerance)
        for v, da in out.data_vars.items():
            merged[f"{name}.{v}"] = da
    result = xr.Dataset(merged)
    if "time" not in result.coords:
        result = result.assign_coords(time=("time", target))
    result.attrs["aligned_to"] = to if isinstance(to, str | int | float) else "time_index"
    return result


# --------------------------------------------------------------------------- offsets


@dataclass(frozen=True)
class OffsetEstimate:
    """Clock relation between two signals: ``t_a ≈ t_b + offset_ns + drift_ppm·1e-6·(t_b − t0)``.

    Attributes
    ----------
    offset_ns
        Add this to *b*'s times to put them on *a*'s clock (at the start of the overlap).
    drift_ppm
        Rate difference of the clocks in parts per million (linear clock model).
    confidence
        Peak normalized correlation of the derivatives (0 … 1).
    windows
        Per-window estimates ``(center_ns, offset_ns, correlation)`` used for the drift.
    """

    offset_ns: float
    drift_ppm: float
    confidence: float
    windows: tuple[tuple[int, float, float], ...] = field(default=())

    def offset_at(self, t_ns: int) -> float:
        """Offset at time *t_ns* under the linear clock model."""
        t0 = self.windows[0][0] if self.windows else 0
        return self.offset_ns + self.drift_ppm * 1e-6 * (t_ns - t0)


def _signal(x: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, tuple) and len(x) == 2:
        t, v = np.asarray(x[0], dtype=np.int64), np.asarray(x[1], dtype=np.float64)
    else:
        t = _times(x)
        v = np.asarray(x.values, dtype=np.float64)
    if v.ndim != 1 or t.shape != v.shape:
        msg = f"a signal must be 1-D with one value per time, got shape {v.shape} for {t.shape} times"
        raise SchemaError(msg)
    keep = np.isfinite(v)
    return t[keep], v[keep]


def _xcorr_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """Integer lag L maximizing sum a[n + L]·b[n] within ±max_lag (FFT)."""
    a = a - a.mean()
    b = b - b.mean()
    size = 1 << (a.size + b.size - 1).bit_length()
    cc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([cc[: max_lag + 1], cc[size - max_lag :]]) if max_lag > 0 else cc[:1]
    return int(lags[int(np.argmax(vals))])


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    half = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, half, mode="edge"), k, mode="valid")


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / den) if den > 0 else 0.0


def _offset_in(grid: np.ndarray, ga: np.ndarray, gb: np.ndarray, step: float, max_lag: int) -> tuple[float, float]:
    """Offset (ns) such that a(t) ≈ b(t − offset), and the correlation at it."""
    da = np.gradient(ga)
    db = np.gradient(gb)
    coarse = _xcorr_lag(da, db, min(max_lag, da.size - 2))
    # fine search: shift b continuously around the coarse lag, parabola on the best
    margin = int(np.ceil(abs(coarse))) + 20  # clear of the smoothing and shift edges
    inner = slice(margin, grid.size - margin)
    if grid[inner].size < 8:
        return coarse * step, 0.0
    center = float(coarse)
    for _ in range(6):  # re-center while the best shift sits at the edge of the search
        cands = (center + np.linspace(-1.5, 1.5, 31)) * step
        scores = np.array([_corr(da[inner], np.interp(grid[inner] - c, grid, db)) for c in cands])
        k = int(np.argmax(scores))
        if 0 < k < cands.size - 1 or abs(center - coarse) >= max_lag:
            break
        center += 1.5 if k == cands.size - 1 else -1.5
    best = cands[k]
    if 0 < k < cands.size - 1:
        y0, y1, y2 = scores[k - 1], scores[k], scores[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            best += 0.5 * (y0 - y2) / denom * (cands[1] - cands[0])
    return float(best), float(scores[k])


def estimate_offset(
    a: Any,
    b: Any,
    *,
    max_lag: Any = "500ms",
    rate_hz: float | None = None,
    windows: int = 6,
) -> OffsetEstimate:
    """Estimate the clock offset and drift between two signals that see the same motion.

    Both are resampled (linearly) onto a uniform grid, smoothed, differentiated and
    cross-correlated (FFT) within ±*max_lag*; the peak is then refined to a fraction
    of a sample by shifting one signal continuously. The drift comes from a line
    fitted through the offsets of *windows* consecutive windows.

    Parameters
    ----------
    a, b
        1-D ``xarray.DataArray`` with a ``time`` coordinate, or ``(times_ns, values)``.
    max_lag
        Largest offset searched (duration, e.g. ``"200ms"``).
    rate_hz
        Grid rate (default: the faster signal's rate, at most 2 kHz).
    windows
        Number of windows for the drift estimate (``0``/``1``: no drift).

    Examples
    --------
    >>> t = np.arange(0, 10_000_000_000, 5_000_000)
    >>> f = lambda s: np.sin(2.1 * s) + np.sin(5.3 * s)
    >>> est = estimate_offset((t, f(t / 1e9)), (t, f((t + 7_000_000) / 1e9)), max_lag="50ms")
    >>> round(est.offset_ns / 1e6, 1)
    7.0
    """
    ta, va = _signal(a)
    tb, vb = _signal(b)
    if ta.size < 16 or tb.size < 16:
        msg = "each signal needs at least 16 finite samples to estimate an offset"
        raise SchemaError(msg)
    lag_ns = to_ns_duration(max_lag)
    if rate_hz is None:
        fastest = max(1e9 / max(_median_period(ta), 1), 1e9 / max(_median_period(tb), 1))
        rate_hz = min(fastest, 2000.0)
    step = 1e9 / rate_hz
    start = max(ta[0], tb[0])
    end = min(ta[-1], tb[-1])
    if end <= start:
        msg = "the two signals do not overlap in time"
        raise SchemaError(msg)
    grid = start + np.arange(int((end - start) / step)) * step
    ga = _smooth(np.interp(grid, ta, va), 6)
    gb = _smooth(np.interp(grid, tb, vb), 6)
    max_lag_samples = max(1, int(lag_ns / step))
    offset, corr = _offset_in(grid, ga, gb, step, max_lag_samples)
    rows: list[tuple[int, float, float]] = []
    drift = 0.0
    if windows and windows > 1 and grid.size >= windows * max(4 * max_lag_samples, 64):
        edges = np.linspace(0, grid.size, windows + 1).astype(int)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            o, c = _offset_in(grid[lo:hi], ga[lo:hi], gb[lo:hi], step, max_lag_samples)
            rows.append((int(grid[(lo + hi) // 2]), o, c))
        centers = np.array([r[0] for r in rows], dtype=np.float64)
        offs = np.array([r[1] for r in rows])
        weights = np.clip(np.array([r[2] for r in rows]), 1e-3, None)
        slope, intercept = np.polyfit(centers - grid[0], offs, 1, w=weights)
        drift = float(slope * 1e6)
        offset = float(intercept)
    return OffsetEstimate(
        offset_ns=float(offset),
        drift_ppm=drift,
        confidence=max(0.0, corr),
        windows=((int(grid[0]), float(offset), corr), *rows),
    )


# --------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class LatencyStats:
    """Header-stamp → log-time latency of a stream, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def latency(stream: xr.Dataset) -> LatencyStats:
    """Latency ``log_time − header_time`` percentiles of a stream.

    Raises :class:`SchemaError` when the stream has no ``header_time`` coordinate.
    """
    if "header_time" not in stream.coords:
        msg = f"stream {stream.attrs.get('source', '')!r} has no header_time coordinate (no sensor stamps)"
        raise SchemaError(msg)
    lat = (_times(stream) - np.asarray(stream["header_time"].values, dtype=np.int64)) / 1e6
    if lat.size == 0:
        return LatencyStats(0, *(float("nan"),) * 5)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return LatencyStats(
        n=int(lat.size),
        mean_ms=float(lat.mean()),
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(lat.max()),
    )


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunAlignment:
    """Per-run time shifts: ``aligned_time = time − shifts[run_id]``.

    Attributes
    ----------
    on
        What the runs were aligned on (``start``, ``event:<kind>``, ``offsets``).
    shifts
        Run id → shift in ns.
    missing
        Runs without the requested event (aligned on their start instead).
    """

    on: str
    shifts: dict[str, int]
    missing: tuple[str, ...] = ()

    def aligned(self, run_id: str, times: np.ndarray) -> np.ndarray:
        """Times of *run_id* on the aligned timeline (int64 ns, 0 = the anchor)."""
        return np.asarray(times, dtype=np.int64) - self.shifts[run_id]

    def to_frame(self) -> pl.DataFrame:
        """A table run_id / shift_ns / anchored (False where the event was missing)."""
        import polars as pl

        return pl.DataFrame(
            {
                "run_id": list(self.shifts),
                "shift_ns": list(self.shifts.values()),
                "anchored": [r not in self.missing for r in self.shifts],
            }
        )


def align_runs(runs: Sequence[Run], *, on: str | Mapping[str, int] = "start") -> RunAlignment:
    """Time shifts that put several runs on one timeline.

    Parameters
    ----------
    runs
        The runs.
    on
        ``"start"`` (each run's first sample is 0), ``"event:<kind>"`` (each run's
        first event of that kind is 0; runs without it fall back to their start and
        are listed in ``missing``), or a mapping run id → shift in ns.
    """
    import polars as pl

    if isinstance(on, Mapping):
        ids = [r.run_id for r in runs]
        absent = sorted(set(ids) - set(on))
        if absent:
            msg = f"offsets lack runs {absent}"
            raise ConfigError(msg)
        return RunAlignment("offsets", {r: int(on[r]) for r in ids})
    if on == "start":
        return RunAlignment("start", {r.run_id: r.info.start_ns for r in runs})
    if isinstance(on, str) and on.startswith("event:") and len(on) > 6:
        kind = on[6:]
        shifts: dict[str, int] = {}
        missing: list[str] = []
        for r in runs:
            hits = r.events.filter(pl.col("kind") == kind)
            if hits.height:
                shifts[r.run_id] = int(hits["time"].min())  # type: ignore[arg-type]
            else:
                shifts[r.run_id] = r.info.start_ns
                missing.append(r.run_id)
        return RunAlignment(on, shifts, tuple(missing))
    msg = f"on={on!r} is not valid: use 'start', 'event:<kind>' or a mapping run_id → shift_ns"
    raise ConfigError(msg)


def dtw(a: np.ndarray, b: np.ndarray, *, window: int | None = None) -> tuple[np.ndarray, float]:
    """Dynamic time warping of two 1-D signals.

    Returns the warping path (k × 2 indices into *a* and *b*) and the total cost
    (sum of absolute differences along it). *window* is a Sakoe-Chiba band in samples.
    Meant for behavior comparison of downsampled signals (a few hundred samples).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n, m = a.size, b.size
    if n == 0 or m == 0:
        msg = "dtw needs two non-empty signals"
        raise SchemaError(msg)
    w = max(window if window is not None else max(n, m), abs(n - m))
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        lo, hi = max(1, i - w), min(m, i + w)
        d = np.abs(a[i - 1] - b[lo - 1 : hi])
        row = cost[i]
        prev = cost[i - 1]
        # vertical/diagonal moves vectorized; horizontal needs a running pass
        best = np.minimum(prev[lo : hi + 1], prev[lo - 1 : hi])
        for j in range(lo, hi + 1):
            row[j] = d[j - lo] + min(best[j - lo], row[j - 1])
    path = [(n - 1, m - 1)]
    i, j = n, m
    while i > 1 or j > 1:
        steps = [(cost[i - 1, j - 1], i - 1, j - 1), (cost[i - 1, j], i - 1, j), (cost[i, j - 1], i, j - 1)]
        _, i, j = min(steps, key=lambda s: s[0])
        path.append((i - 1, j - 1))
    return np.array(path[::-1], dtype=np.int64), float(cost[n, m])
