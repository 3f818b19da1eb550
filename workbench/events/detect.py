"""Event detection on signals that arrive in pieces: vectorized, with carried state.

Every detector is fed consecutive pieces ``(t, x)`` of one signal (int64 ns times,
float64 values) and keeps only the state needed to continue across a piece boundary
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

import numpy as np

__all__ = ["Changes", "Intervals", "filter_intervals", "sequence_then", "sequence_without"]

Masks = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Interval = tuple[int, int, float, bool]
"""``(start_ns, end_ns, peak, open)``: *end* is the time of the sample that ended it
(or of the last sample when still *open* at the end of the signal)."""


@dataclass
class Intervals:
    """Intervals of a two-level state machine (hysteresis), fed in pieces.

    *masks(x)* gives ``(set, reset)`` boolean arrays (disjoint): a sample in *set*
    turns the state on, one in *reset* turns it off, any other sample (NaN, values
    between the levels) keeps it. *sign* = +1 keeps each interval's maximum as its
    peak, −1 its minimum. Intervals shorter than *min_duration_ns* are dropped; one
    starting less than *refractory_ns* after the end of the previous kept one too.
    """

    masks: Masks
    sign: float = 1.0
    min_duration_ns: int = 0
    refractory_ns: int = 0
    state: bool = False
    _open_start: int = 0
    _open_peak: float = float("nan")
    _last_t: int | None = None
    _last_end: int | None = None
    kept: list[Interval] = field(default_factory=list)

    @classmethod
    def threshold(cls, direction: str, level: float, release: float | None = None, *,
                  min_duration_ns: int = 0, refractory_ns: int = 0) -> Intervals:
        """Above (``x > level`` … ``x < release``) or below (``x < level`` … ``x > release``)."""
        rel = level if release is None else release
        if direction == "above":
            return cls(lambda x: (x > level, x < rel), 1.0, min_duration_ns, refractory_ns)
        return cls(lambda x: (x < level, x > rel), -1.0, min_duration_ns, refractory_ns)

    @classmethod
    def equals(cls, value: float, *, min_duration_ns: int = 0, refractory_ns: int = 0) -> Intervals:
        """While ``x == value`` (NaN keeps the state)."""
        return cls(lambda x: (x == value, (x != value) & ~np.isnan(x)), 1.0, min_duration_ns, refractory_ns)

    def feed(self, t: np.ndarray, x: np.ndarray) -> None:
        """Add the next piece (times ascending, after the previous piece's).

        Only the samples where the state flips are located (a few passes over the piece,
        none in Python); times are read at those samples only.
        """
        n = int(t.size)
        if n == 0:
            return
        x = np.asarray(x, dtype=np.float64)
        on, off = self.masks(x)
        code = np.subtract(on, off, dtype=np.int8)  # 1 sets, -1 resets, 0 keeps the state
        # starts of runs of one non-zero code: the only samples where the state can flip
        runs = np.flatnonzero(code[1:] != code[:-1]) + 1
        if code[0]:
            runs = np.concatenate(([0], runs))
        runs = runs[code[runs] != 0]
        codes = code[runs]
        before = np.empty_like(codes)
        if codes.size:
            before[0] = 1 if self.state else -1
            before[1:] = codes[:-1]
        flips = runs[codes != before]  # alternately off and on, starting with the state's opposite
        was_open = self.state
        reduce = np.fmax.reduceat if self.sign > 0 else np.fmin.reduceat
        done: list[Interval] = []
        if flips.size == 0:
            if was_open:  # on through the whole piece
                self._open_peak = _better(self._open_peak, float(reduce(x, [0])[0]), self.sign)
            self._last_t = int(t[-1])
            return
        head = flips[0] > 0
        bounds = np.concatenate(([0], flips)) if head else flips
        peaks = reduce(x, bounds).tolist()  # peak of each segment between flips
        at = t[flips].tolist()
        if head:
            first_peak = peaks[0]
            peaks = peaks[1:]
        k = 0
        if was_open:  # the interval open at the previous piece's end ends at flips[0]
            peak = _better(self._open_peak, first_peak, self.sign) if head else self._open_peak
            done.append((self._open_start, int(at[0]), peak, False))
            k = 1
        ons, offs = at[k::2], at[k + 1::2]
        on_peaks = peaks[k::2]
        for i, off_t in enumerate(offs):
            done.append((int(ons[i]), int(off_t), float(on_peaks[i]), False))
        self.state = len(ons) > len(offs)
        if self.state:  # still open at this piece's end
            self._open_start, self._open_peak = int(ons[-1]), float(on_peaks[-1])
        self._last_t = int(t[-1])
        self._keep(done)

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
