"""UI benchmark: filter a 10,000-run catalog and recompute the views server-side.

A synthetic catalog (4 factors with 2–3 levels, 20 seeds, success and three
continuous metrics, data grades) feeds a :class:`~workbench.ui.DataStore`, a
:class:`~workbench.ui.RunBrowser` and a :class:`~workbench.ui.CompareView`, rendered
to Bokeh models in a server-side Document (as in a served session, without a
browser). Timed: one facet change → DataStore filter → RunBrowser rows → CompareView
cells, heatmap, factor grid, distributions and attribution, all pushed into the Bokeh
models. Target: < 300 ms. The full comparison with bootstrap intervals and tests is
not part of the live update above ``auto_compare_max`` runs (it runs on its button);
its time is printed beside.

Run: ``.venv/bin/python bench/ui.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl

TARGET_MS = 300.0


def synthetic_catalog(n: int, seed: int = 0) -> pl.DataFrame:
    """A catalog shaped like ``store.runs()`` after grading and metrics."""
    rng = np.random.default_rng(seed)
    robot = rng.choice(["arm-a", "arm-b", "arm-c"], n)
    light = rng.choice(["bright", "dim"], n)
    surface = rng.choice(["rubber", "steel"], n)
    version = rng.choice(["policy-v1", "policy-v2"], n)
    p = np.where((robot == "arm-b") & (light == "dim") & (version == "policy-v2"), 0.3, 0.9)
    success = (rng.random(n) < p).astype(float)
    tts = np.where(success == 1, rng.normal(np.where(version == "policy-v1", 5.5, 4.6), 0.4), np.nan)
    return pl.DataFrame({
        "run_id": [f"{i:016x}" for i in range(n)],
        "name": [f"{r}_{lt}_{s}_{v}_s{i % 20:02d}" for i, (r, lt, s, v) in enumerate(zip(robot, light, surface, version, strict=True))],
        "outcome": np.where(success == 1, "success", "failure"),
        "duration_s": rng.normal(7, 1, n),
        "hardware.robot": robot,
        "environment.lighting": light,
        "environment.surface": surface,
        "model.version": version,
        "scenario.seed": rng.integers(0, 20, n),
        "quality.grade": rng.choice(list("AABCD"), n),
        "metrics.success": success,
        "metrics.time_to_success": pl.Series(tts).fill_nan(None),
        "metrics.jerk_rms": rng.normal(80, 15, n),
        "metrics.tracking_error_rms": rng.normal(0.025, 0.004, n),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    from bokeh.document import Document

    from workbench.ui import CompareView, DataStore, RunBrowser

    cat = synthetic_catalog(args.runs)
    t0 = time.perf_counter()
    data = DataStore(catalog=cat)
    browser = RunBrowser(data=data)
    compare = CompareView(data=data, by="model.version", x=["hardware.robot", "environment.lighting"])
    doc = Document()
    for view in (data, browser, compare):
        view.__panel__().get_root(doc)  # the Bokeh models a served session would hold
    print(f"catalog {cat.height} runs × {cat.width} columns; views built and rendered in {1000 * (time.perf_counter() - t0):.0f} ms")

    filters = [
        {"hardware.robot": ["arm-a", "arm-b"]},
        {"hardware.robot": ["arm-b"], "environment.lighting": ["dim"]},
        {"environment.surface": ["steel"]},
        {"quality.grade": ["A", "B"]},
        {},
    ]
    times: list[float] = []
    for i in range(args.repeat):
        f = filters[i % len(filters)]
        t = time.perf_counter()
        data.filters = f
        times.append(1000 * (time.perf_counter() - t))
        expected = cat.filter(data.expression()).height if data.expression() is not None else cat.height
        assert browser.table.value.shape[0] == expected, (f, browser.table.value.shape, expected)
        assert compare.cells["n"].sum() == data.filtered["metrics.success"].drop_nulls().len()
    med = statistics.median(times)
    print(f"filter + recompute views (DataStore, RunBrowser, CompareView → Bokeh models): "
          f"median {med:.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms over {len(times)} filter changes "
          f"(target < {TARGET_MS:.0f} ms: {'OK' if med < TARGET_MS else 'MISSED'})")

    data.filters = {"hardware.robot": ["arm-b"]}
    t = time.perf_counter()
    compare.run_compare()
    print(f"on demand: full comparison of {data.filtered.height} runs (bootstrap {compare.n_boot}, tests, verdicts): "
          f"{1000 * (time.perf_counter() - t):.0f} ms")


if __name__ == "__main__":
    main()
