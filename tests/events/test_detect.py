"""Rule semantics against a brute-force reference, on random signals, in any piece size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.events.detect import Changes, Intervals, sequence_then, sequence_without

NS = 1_000_000_000


def brute_intervals(t, x, direction, level, release, min_dur, refractory):
    """One sample at a time, the semantics written out plainly."""
    on = False
    start = peak = None
    raw = []
    for ti, xi in zip(t.tolist(), x.tolist(), strict=True):
        if np.isnan(xi):
            if on:
                pass
            continue
        sets = xi > level if direction == "above" else xi < level
        resets = xi < release if direction == "above" else xi > release
        if not on and sets:
            on, start, peak = True, ti, xi
        elif on and resets:
            raw.append((start, ti, peak, False))
            on = False
        elif on:
            peak = max(peak, xi) if direction == "above" else min(peak, xi)
    if on:
        raw.append((start, int(t[-1]), peak, True))
    out, last_end = [], None
    for s, e, p, o in raw:
        if e - s < min_dur:
            continue
        if last_end is not None and s - last_end < refractory:
            continue
        out.append((s, e, p, o))
        last_end = e
    return out


def feed_all(det, t, x, piece):
    for a in range(0, t.size, piece):
        det.feed(t[a:a + piece], x[a:a + piece])
    return det.finish()


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 400),
    piece=st.integers(1, 64),
    direction=st.sampled_from(["above", "below"]),
    gap=st.floats(0, 1.5),
    min_dur=st.integers(0, 5),
    refractory=st.integers(0, 5),
    nan_share=st.sampled_from([0.0, 0.1]),
)
def test_hysteresis_matches_brute_force(seed, n, piece, direction, gap, min_dur, refractory, nan_share):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 3, n)).astype(np.int64) * NS
    x = np.cumsum(rng.normal(0, 1, n))
    x[rng.random(n) < nan_share] = np.nan
    level = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
    release = level - gap if direction == "above" else level + gap
    want = brute_intervals(t, x, direction, level, release, min_dur * NS, refractory * NS)
    det = Intervals.threshold(direction, level, release, min_duration_ns=min_dur * NS, refractory_ns=refractory * NS)
    got = feed_all(det, t, x, piece)
    assert [(s, e, o) for s, e, _, o in got] == [(s, e, o) for s, e, _, o in want]
    assert np.allclose([p for *_, p, _ in [(g[0], g[1], g[2], g[3]) for g in got]], [w[2] for w in want], equal_nan=True)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000])
def test_hysteresis_chunk_boundaries_give_identical_results(piece):
    rng = np.random.default_rng(0)
    n = 5000
    t = np.arange(n, dtype=np.int64) * 10_000_000
    x = np.sin(np.arange(n) / 50) + rng.normal(0, 0.3, n)
    whole = Intervals.threshold("above", 0.5, 0.0, min_duration_ns=50_000_000, refractory_ns=100_000_000)
    whole.feed(t, x)
    ref = whole.finish()
    got = feed_all(Intervals.threshold("above", 0.5, 0.0, min_duration_ns=50_000_000, refractory_ns=100_000_000), t, x, piece)
    assert got == ref and len(ref) > 5


def test_hysteresis_suppresses_chatter_that_a_plain_threshold_reports():
    t = np.arange(8, dtype=np.int64) * NS
    x = np.array([0, 1.1, 0.95, 1.05, 0.97, 1.2, 0.2, 0.0])
    plain = feed_all(Intervals.threshold("above", 1.0), t, x, 3)
    hyst = feed_all(Intervals.threshold("above", 1.0, 0.5), t, x, 3)
    assert len(plain) == 3
    assert [(s // NS, e // NS, p) for s, e, p, _ in hyst] == [(1, 6, 1.2)]


def test_equals_intervals_and_open_end():
    t = np.arange(6, dtype=np.int64) * NS
    x = np.array([0, 1, 1, 0, 1, 1.0])
    got = feed_all(Intervals.equals(1.0), t, x, 2)
    assert [(s // NS, e // NS, o) for s, e, _, o in got] == [(1, 3, False), (4, 5, True)]


def brute_changes(t, x, frm, to):
    out, prev = [], None
    for ti, xi in zip(t.tolist(), x.tolist(), strict=True):
        if np.isnan(xi):
            continue
        if prev is not None and xi != prev and (frm is None or prev == frm) and (to is None or xi == to):
            out.append((ti, prev, xi))
        prev = xi
    return out


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 200), piece=st.integers(1, 30),
       frm=st.sampled_from([None, 0.0, 1.0]), to=st.sampled_from([None, 1.0, 2.0]))
def test_changes_match_brute_force(seed, n, piece, frm, to):
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.int64)
    x = rng.integers(0, 3, n).astype(float)
    x[rng.random(n) < 0.1] = np.nan
    det = Changes(frm, to)
    assert feed_all(det, t, x, piece) == brute_changes(t, x, frm, to)


def brute_then(a, b, within):
    return [(ta, min(tb for tb in b if tb >= ta)) for ta in a if any(ta <= tb <= ta + within for tb in b)]


def brute_without(a, b, within, end):
    return [ta for ta in a if not any(ta <= tb <= ta + within for tb in b) and ta + within <= end]


@settings(max_examples=100, deadline=None)
@given(a=st.lists(st.integers(0, 100), max_size=15), b=st.lists(st.integers(0, 100), max_size=15), within=st.integers(1, 30))
def test_sequences_match_brute_force(a, b, within):
    a_arr, b_arr = np.array(sorted(a), dtype=np.int64), np.array(sorted(b), dtype=np.int64)
    assert sequence_then(a_arr, b_arr, within) == brute_then(sorted(a), b, within)
    assert sequence_without(a_arr, b_arr, within, 100) == brute_without(sorted(a), b, within, 100)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(200, 6000),
    piece=st.sampled_from([97, 256, 1000, 4096, 10_000]),
    direction=st.sampled_from(["above", "below"]),
    level=st.sampled_from([0.1, 0.3, 1 / 3, 0.5, 0.7000000001]),
    gap=st.sampled_from([0.0, 0.05, 0.2]),
    period=st.sampled_from([30, 300, 3000]),
)
def test_float32_values_give_the_float64_answer(seed, n, piece, direction, level, gap, period):
    # slow waves (blocks of one kind, the flip resolved inside the block) and chatter
    # (mixed blocks), float32 values against levels float32 cannot represent: the
    # answer must be the one on the same values widened to float64
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 3, n)).astype(np.int64) * NS
    x = (0.5 + 0.45 * np.sin(np.arange(n) * 2 * np.pi / period) + rng.normal(0, 0.03, n)).astype(np.float32)
    x[rng.random(n) < 0.01] = np.nan
    x[rng.random(n) < 0.02] = np.float32(level)  # samples equal to the level (as float32)
    release = level - gap if direction == "above" else level + gap
    want = brute_intervals(t, x.astype(np.float64), direction, level, release, 0, 0)
    got = feed_all(Intervals.threshold(direction, level, release), t, x, piece)
    assert [(s, e, o) for s, e, _, o in got] == [(s, e, o) for s, e, _, o in want]
    assert [p for _, _, p, _ in got] == [p for _, _, p, _ in want]  # float32 peaks, exactly


def test_float32_levels_outside_the_range_and_at_infinity():
    t = np.arange(6, dtype=np.int64) * NS
    x = np.array([0, np.inf, 0, 3e38, -np.inf, 0], dtype=np.float32)
    for level in (1e39, np.inf, -1e39, 3e38):
        for direction in ("above", "below"):
            want = brute_intervals(t, x.astype(np.float64), direction, level, level, 0, 0)
            got = feed_all(Intervals.threshold(direction, level), t, x, 4)
            assert [(s, e, o) for s, e, _, o in got] == [(s, e, o) for s, e, _, o in want], (level, direction)


def test_equals_on_float32_values_uses_the_float64_value():
    t = np.arange(4, dtype=np.int64) * NS
    x = np.array([0.1, 0.1, 2.0, 2.0], dtype=np.float32)
    # float32(0.1) is not 0.1: no sample equals it, as in float64
    assert feed_all(Intervals.equals(0.1), t, x, 3) == []
    assert [(s, e) for s, e, _, _ in feed_all(Intervals.equals(2.0), t, x, 3)] == [(2 * NS, 3 * NS)]
