"""Event detection on signals that arrive in pieces: vectorized, with carried state.

Every detector is fed consecutive pieces ``(t, x)`` of one signal (int64 ns times,
float values) and keeps only the state needed to continue across a piece boundary
(the current state, an open interval's start and peak, the previous value), so a
signal larger than memory is read once, a piece at a time, with identical results
for every piece size.

Examples
--------
>>> import numpy as np
>>> t = np.arange(10) * 1_000_000_000
>>> x = np.array([0, 5, 9, 8, 4, 2, 9, 9, 1, 0.0])
>>> h = Intervals.threshold("above", level=7, release=3)
>>> for a in range(0, 10, 3):
...     h.feed(t[a:a + 3], x[a:a + 3])
>>> [(int(s // 10**9), int(e // 10**9), p) for s, e, p, _ in h.finish()]
[(2, 5, 9.0), (6, 8, 9.0)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

__all__ = ["Changes", "Intervals", "Scan", "filter_intervals", "sequence_then", "sequence_without"]

Masks = Callable[[np.ndarray, np.ndarray, np.ndarray], None]
"""``masks(x, set_out, reset_out)`` writes the two boolean masks of *x* into the outputs."""
Interval = tuple[int, int, float, bool]
"""``(start_ns, end_ns, peak, open)``: *end* is the time of the sample that ended it
(or of the last sample when still *open* at the end of the signal)."""

BLOCK = 128
"""Samples per block of the two-level flip search in :meth:`Intervals.feed`."""


def _as_values(x: np.ndarray) -> np.ndarray:
    """float32 and float64 as they are (contiguous), anything else as float64."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return np.ascontiguousarray(x)


def _level(value: float, dtype: np.dtype, side: str) -> np.floating:
    """The *dtype* level that gives, on values of *dtype*, the same comparison as
    *value* in float64: ``x > value`` iff ``x > _level(value, dt, "down")`` (the
    largest representable ≤ value), ``x < value`` iff ``x < _level(value, dt, "up")``.

    >>> float(_level(0.1, np.dtype(np.float32), "down")) < 0.1 < float(_level(0.1, np.dtype(np.float32), "up"))
    True
    """
    kind = dtype.type
    if dtype == np.float64:
        return np.float64(value)
    with np.errstate(over="ignore"):
        f = kind(value)
    if side == "down" and float(f) > value:
        f = np.nextafter(f, kind(-np.inf))
    elif side == "up" and float(f) < value:
        f = np.nextafter(f, kind(np.inf))
    return cast(np.floating, f)


def _block_any(mask: np.ndarray, blocks: int) -> np.ndarray:
    """Whether each of the first *blocks* blocks of :data:`BLOCK` samples has a True."""
    words = mask[: blocks * BLOCK].view(np.uint64)
    return np.add.reduceat(words, np.arange(0, words.size, BLOCK // 8)) != 0 if blocks else np.zeros(0, bool)


@dataclass(frozen=True)
class Scan:
    """One piece as :meth:`Intervals.scan` saw it (independent of the state before it).

    ``codes`` (+1 set, −1 reset) where the code changes, ``times`` (ns) of those
    samples, ``peaks`` of the stretch from each of them to the next (or the piece's
    end); ``head`` whether samples precede the first of them, ``head_peak`` their
    peak (of the whole piece when there is no code), ``last_t`` the last sample's time.
    """

    codes: np.ndarray
    times: np.ndarray
    peaks: np.ndarray
    head: bool
    head_peak: float
    last_t: int


@dataclass
class Intervals:
    """Intervals of a two-level state machine (hysteresis), fed in pieces.

    *masks(x, set, reset)* fills the ``set`` and ``reset`` boolean arrays: a sample in
    *set* only turns the state on, one in *reset* only turns it off, any other sample
    (NaN, values between the levels, or both) keeps it. *sign* = +1 keeps each
    interval's maximum as its peak, −1 its minimum. Intervals shorter than
    *min_duration_ns* are dropped; one starting less than *refractory_ns* after the
    end of the previous kept one too.

    Values may be float32 (compared exactly as their float64 values would be) or
    float64; anything else is converted to float64.
    """

    masks: Callable[[np.dtype], Masks]
    sign: float = 1.0
    min_duration_ns: int = 0
    refractory_ns: int = 0
    state: bool = False
    _open_start: int = 0
    _open_peak: float = float("nan")
    _last_t: int | None = None
    _last_end: int | None = None
    kept: list[Interval] = field(default_factory=list)
    _made: dict[np.dtype, Masks] = field(default_factory=dict, repr=False)

    @classmethod
    def threshold(cls, direction: str, level: float, release: float | None = None, *,
                  min_duration_ns: int = 0, refractory_ns: int = 0) -> Intervals:
        """Above (``x > level`` … ``x < release``) or below (``x < level`` … ``x > release``)."""
        rel = level if release is None else release

        def make(dt: np.dtype) -> Masks:
            if direction == "above":
                hi, lo = _level(level, dt, "down"), _level(rel, dt, "up")

                def above(x: np.ndarray, on: np.ndarray, off: np.ndarray) -> None:
                    np.greater(x, hi, out=on)
                    np.less(x, lo, out=off)
                return above
            lo2, hi2 = _level(level, dt, "up"), _level(rel, dt, "down")

            def below(x: np.ndarray, on: np.ndarray, off: np.ndarray) -> None:
                np.less(x, lo2, out=on)
                np.greater(x, hi2, out=off)
            return below

        return cls(make, 1.0 if direction == "above" else -1.0, min_duration_ns, refractory_ns)

    @classmethod
    def equals(cls, value: float, *, min_duration_ns: int = 0, refractory_ns: int = 0) -> Intervals:
        """While ``x == value`` (NaN keeps the state)."""

        def make(dt: np.dtype) -> Masks:
            v = dt.type(value)
            exact = float(v) == value

            def eq(x: np.ndarray, on: np.ndarray, off: np.ndarray) -> None:
                if exact:
                    np.equal(x, v, out=on)
                else:  # no value of this dtype equals it
                    on[:] = False
                np.logical_not(on, out=off)
                off &= ~np.isnan(x)
            return eq

        return cls(make, 1.0, min_duration_ns, refractory_ns)

    def _buffers(self, n: int, scratch: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        size = -(-n // BLOCK) * BLOCK
        held = self.__dict__ if scratch is None else scratch
        buf = held.get("_scratch")
        if buf is None or buf[0].size < size:
            buf = held["_scratch"] = (np.zeros(size, dtype=bool), np.zeros(size, dtype=bool))
        on, off = buf
        return on[:size], off[:size]

    def _codes(self, x: np.ndarray, scratch: dict[str, Any] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions and codes (+1 set, −1 reset) of the first sample of every run of
        one code among the non-zero ones (a superset of the flips, in order); plus the
        masks. Blocks with samples of one kind only give one candidate each (resolved
        later), so the work is a few passes over the piece whatever its activity."""
        n = x.size
        on, off = self._buffers(n, scratch)
        masks = self._made.get(x.dtype)
        if masks is None:
            masks = self._made[x.dtype] = self.masks(x.dtype)
        masks(x, on[:n], off[:n])
        on[n:] = False
        off[n:] = False
        nb = on.size // BLOCK
        has_on, has_off = _block_any(on, nb), _block_any(off, nb)
        single = np.flatnonzero(has_on != has_off)
        mixed = np.flatnonzero(has_on & has_off)
        pos_s = single * BLOCK
        code_s = np.where(has_on[single], 1, -1).astype(np.int8)
        if mixed.size:
            rows_on = on.reshape(nb, BLOCK)[mixed]
            rows_off = off.reshape(nb, BLOCK)[mixed]
            code = np.subtract(rows_on, rows_off, dtype=np.int8)
            prev = np.zeros_like(code)
            prev[:, 1:] = code[:, :-1]
            r, c = np.nonzero((code != 0) & (code != prev))
            pos_m = mixed[r] * BLOCK + c
            code_m = code[r, c]
            pos = np.concatenate((pos_s, pos_m))
            codes = np.concatenate((code_s, code_m))
            exact = np.concatenate((np.zeros(pos_s.size, bool), np.ones(pos_m.size, bool)))
            order = np.argsort(pos, kind="stable")
            pos, codes, exact = pos[order], codes[order], exact[order]
        else:
            pos, codes, exact = pos_s, code_s, np.zeros(pos_s.size, bool)
        return pos, codes, exact, on, off

    def scan(self, t: Any, x: np.ndarray, scratch: dict[str, Any] | None = None) -> Scan | None:
        """What one piece holds, whatever the state before it: the samples where the
        code (set / reset) changes, their times and the peak of each stretch between
        them. Reads nothing of this detector's state, so pieces may be scanned in any
        order (in threads, each with its own *scratch* dict); :meth:`merge` then takes
        the scans in time order. ``None`` for an empty piece."""
        n = int(t.size)
        if n == 0:
            return None
        x = _as_values(x)
        pos, codes, exact, on, off = self._codes(x, scratch)
        keep = np.ones(codes.size, dtype=bool)
        keep[1:] = codes[1:] != codes[:-1]
        pos, codes, exact = pos[keep], codes[keep], exact[keep]
        if pos.size and not exact.all():  # first set / reset sample of a one-kind block
            rough = np.flatnonzero(~exact)
            blk = pos[rough] // BLOCK
            sets = codes[rough] > 0
            rows = np.where(sets[:, None], on.reshape(-1, BLOCK)[blk], off.reshape(-1, BLOCK)[blk])
            pos = pos.copy()
            pos[rough] = blk * BLOCK + rows.argmax(axis=1)
        reduce = np.fmax.reduceat if self.sign > 0 else np.fmin.reduceat
        if pos.size == 0:
            last = int(t[np.array([n - 1])][0])
            return Scan(codes, np.zeros(0, np.int64), np.zeros(0), True, float(reduce(x, [0])[0]), last)
        head = bool(pos[0] > 0)
        peaks = reduce(x, np.concatenate(([0], pos)) if head else pos)  # peak of each stretch
        at = np.asarray(t[np.append(pos, n - 1)], dtype=np.int64)  # one ascending read
        head_peak = float(peaks[0]) if head else float("nan")
        return Scan(codes, at[:-1], peaks[1:] if head else peaks, head, head_peak, int(at[-1]))

    def feed(self, t: Any, x: np.ndarray) -> None:
        """Add the next piece (times ascending, after the previous piece's).

        *t* is int64 ns (an array, or anything indexable by an int array with a
        ``size``, such as :class:`~workbench.pieces.LazyTimes`): only the
        samples where the state flips are located (a few passes over the piece, none in
        Python), and times are read at those samples and the last one only.
        """
        self.merge(self.scan(t, x))

    def merge(self, piece: Scan | None) -> None:
        """Continue the state machine over the next piece's :meth:`scan`."""
        if piece is None:
            return
        codes, at, peaks, head, first_peak = piece.codes, piece.times, piece.peaks, piece.head, piece.head_peak
        if codes.size and codes[0] == (1 if self.state else -1):  # keeps the state: no flip there
            first_peak = _better(first_peak, float(peaks[0]), self.sign) if head else float(peaks[0])
            codes, at, peaks, head = codes[1:], at[1:], peaks[1:], True
        was_open = self.state
        self._last_t = piece.last_t
        if codes.size == 0:
            if was_open:  # on through the whole piece
                self._open_peak = _better(self._open_peak, first_peak, self.sign)
            return
        k = 1 if was_open else 0  # the interval open at the previous piece's end ends at the first flip
        ons, on_peaks = at[k::2], peaks[k::2]
        offs = at[k + 1::2]
        m = offs.size
        starts, ends, tops = ons[:m], offs, on_peaks[:m].astype(np.float64)
        if was_open:
            peak = _better(self._open_peak, first_peak, self.sign) if head else self._open_peak
            starts = np.concatenate(([self._open_start], starts))
            ends = np.concatenate((at[:1], ends))
            tops = np.concatenate(([peak], tops))
        self.state = ons.size > m
        if self.state:  # still open at this piece's end
            self._open_start, self._open_peak = int(ons[-1]), float(on_peaks[-1])
        if self.min_duration_ns > 0:  # most short intervals go here, before any Python object
            long = (ends - starts) >= self.min_duration_ns
            starts, ends, tops = starts[long], ends[long], tops[long]
        self._keep(list(zip(starts.tolist(), ends.tolist(), tops.tolist(), [False] * starts.size, strict=True)))

    def _keep(self, done: list[Interval]) -> None:
        for iv in done:
            if iv[1] - iv[0] < self.min_duration_ns:
                continue
            if self._last_end is not None and iv[0] - self._last_end < self.refractory_ns:
                continue
            self.kept.append(iv)
            self._last_end = iv[1]

    def finish(self) -> list[Interval]:
        """Close an interval still open at the last sample; returns the kept intervals."""
        if self.state and self._last_t is not None:
            self._keep([(self._open_start, self._last_t, self._open_peak, True)])
            self.state = False
        return self.kept


def _better(a: float, b: float, sign: float) -> float:
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return max(a, b) if sign > 0 else min(a, b)


def filter_intervals(intervals: list[Interval], min_duration_ns: int, refractory_ns: int) -> list[Interval]:
    """Apply *min_duration* and *refractory* to intervals in time order (as :class:`Intervals` does)."""
    out: list[Interval] = []
    last_end: int | None = None
    for iv in intervals:
        if iv[1] - iv[0] < min_duration_ns:
            continue
        if last_end is not None and iv[0] - last_end < refractory_ns:
            continue
        out.append(iv)
        last_end = iv[1]
    return out


@dataclass
class Changes:
    """Samples whose value differs from the previous (non-NaN) sample, fed in pieces.

    Keeps ``(time_ns, from, to)`` for changes that pass *from_* / *to* (``None``: any).
    The first sample of the signal makes no change.
    """

    from_: float | None = None
    to: float | None = None
    _prev: float | None = None
    kept: list[tuple[int, float, float]] = field(default_factory=list)

    def feed(self, t: np.ndarray, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        ok = ~np.isnan(x)
        t, x = t[ok], x[ok]
        if x.size == 0:
            return
        before = np.empty_like(x)
        before[0] = x[0] if self._prev is None else self._prev
        before[1:] = x[:-1]
        hit = x != before
        if self.from_ is not None:
            hit &= before == self.from_
        if self.to is not None:
            hit &= x == self.to
        for i in np.flatnonzero(hit):
            self.kept.append((int(t[i]), float(before[i]), float(x[i])))
        self._prev = float(x[-1])

    def finish(self) -> list[tuple[int, float, float]]:
        return self.kept


def sequence_then(a: np.ndarray, b: np.ndarray, within_ns: int, *, same: bool = False) -> list[tuple[int, int]]:
    """For each time in *a*, the first time of *b* at or after it (after it when *same*)
    and at most *within_ns* later: ``(t_a, t_b)`` pairs.

    >>> sequence_then(np.array([0, 10, 50]), np.array([5, 70]), 20)
    [(0, 5), (50, 70)]
    """
    b = np.sort(b)
    j = np.searchsorted(b, a, side="right" if same else "left")
    out = []
    for ta, k in zip(a.tolist(), j.tolist(), strict=True):
        if k < b.size and b[k] - ta <= within_ns:
            out.append((int(ta), int(b[k])))
    return out


def sequence_without(a: np.ndarray, b: np.ndarray, within_ns: int, end_ns: int, *, same: bool = False) -> list[int]:
    """Times of *a* followed by no *b* within *within_ns*, whose window closed by *end_ns*.

    >>> sequence_without(np.array([0, 10, 50]), np.array([5]), 20, end_ns=60)
    [10]
    """
    b = np.sort(b)
    j = np.searchsorted(b, a, side="right" if same else "left")
    out = []
    for ta, k in zip(a.tolist(), j.tolist(), strict=True):
        followed = k < b.size and b[k] - ta <= within_ns
        if not followed and ta + within_ns <= end_ns:
            out.append(int(ta))
    return out
