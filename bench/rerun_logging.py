"""Rerun logging benchmark: ``log_runs`` on a big stored run vs a row-by-row ``rr.log`` loop.

1. A synthetic run is written to a temporary store (``Store._write_run``): ~10M scalar
   samples across joints and axes (joint_states position/velocity/effort × 7 joints and
   imu orientation/angular_velocity/linear_acceleration at 1 kHz, ft_sensor force/torque
   at 1 kHz, joint_commands × 7 at 500 Hz) plus 1,000 JPEG camera frames.
2. Ours, end to end: ``store.load(run_id, lazy=False)`` + ``wb.viz.rerun.log_runs([run],
   layout="side_by_side", out=…rrd)`` until the file is closed (grades={}: grading is a
   separate step whose result the CLI takes from the store).
3. Baseline: what people write by hand: per sample ``rec.set_time(...)`` on both
   timelines + ``rec.log(path, rr.Scalars(v))``, on a subset (default 50k samples) of the
   same data, to its own .rrd; its rate is samples/s.

Prints rates, the speed-up ratio from this one run, and the peak RSS.

Run: ``.venv/bin/python bench/rerun_logging.py [--samples 10000000] [--frames 1000] [--baseline 50000]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is called rerun.py: keep its folder off sys.path so `import rerun` is the SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import io
import resource
import shutil
import tempfile
import time
import uuid

import numpy as np
import polars as pl
import xarray as xr

import workbench as wb
from workbench.model import RunInfo

T0 = 1_780_000_000_000_000_000
JOINTS = [f"joint_{i}" for i in range(1, 8)]
AXES = ["x", "y", "z"]
QUAT = ["x", "y", "z", "w"]
PER_SECOND = 1000 * (3 * len(JOINTS) + 4 + 3 + 3 + 6) + 500 * len(JOINTS)  # scalar samples per second


def _jpegs(n_distinct: int, rng: np.random.Generator) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(n_distinct):
        img = rng.integers(0, 60, (240, 320, 3), dtype=np.uint8)
        img[60 + i % 100 : 140 + i % 100, 120:200] = (220, 30, 30)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def make_run(store: wb.Store, samples: int, frames: int) -> tuple[str, int]:
    """Write the synthetic run; returns its id and its number of scalar samples."""
    rng = np.random.default_rng(0)
    seconds = int(np.ceil(samples / PER_SECOND))
    n = seconds * 1000
    t = T0 + np.arange(n, dtype=np.int64) * 1_000_000
    t_cmd = t[::2]

    def walk(*shape: int) -> np.ndarray:
        return np.cumsum(rng.normal(0, 1e-3, shape), axis=0)

    streams = {
        "joint_states": xr.Dataset(
            {v: (("time", "joint"), walk(n, len(JOINTS))) for v in ("position", "velocity", "effort")},
            coords={"time": t, "joint": JOINTS},
        ),
        "joint_commands": xr.Dataset(
            {"position": (("time", "joint"), walk(len(t_cmd), len(JOINTS)))},
            coords={"time": t_cmd, "joint": JOINTS},
        ),
        "imu": xr.Dataset(
            {
                "orientation": (("time", "quat"), walk(n, 4) + np.array([0, 0, 0, 1.0])),
                "angular_velocity": (("time", "axis"), walk(n, 3)),
                "linear_acceleration": (("time", "axis"), walk(n, 3)),
            },
            coords={"time": t, "axis": AXES, "quat": QUAT},
        ),
        "ft_sensor": xr.Dataset(
            {"force": (("time", "axis"), walk(n, 3)), "torque": (("time", "axis"), walk(n, 3))},
            coords={"time": t, "axis": AXES},
        ),
    }
    jpegs = _jpegs(50, rng)
    sizes = np.array([len(jpegs[i % len(jpegs)]) for i in range(frames)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    data = np.frombuffer(b"".join(jpegs[i % len(jpegs)] for i in range(frames)), dtype=np.uint8)
    t_cam = T0 + np.linspace(0, (n - 1) * 1_000_000, frames).astype(np.int64)
    streams["camera.image_raw.compressed"] = xr.Dataset(
        {"frame_offset": ("time", offsets), "frame_size": ("time", sizes), "data": ("byte", data)},
        coords={"time": t_cam},
        attrs={"kind": "image_encoded", "format": "jpeg"},
    )
    events = pl.DataFrame(
        {"time": [T0 + 5_000_000_000, int(t[-1])], "kind": ["grasp", "success"], "detail": ["{}", "{}"]},
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String},
    )
    info = RunInfo(
        run_id=f"bench-{uuid.uuid4().hex[:8]}",
        name="bench_run",
        hardware={"robot": "arm-bench"},
        model={"version": "policy-v1"},
        scenario={"seed": 0},
        start_ns=int(t[0]),
        end_ns=int(t[-1]),
    )
    store._write_run(info, streams, events)
    total = sum(
        int(np.prod(ds[v].shape)) for name, ds in streams.items() if name != "camera.image_raw.compressed" for v in ds.data_vars
    )
    return info.run_id, total


def baseline(run: wb.Run, n_samples: int, out: Path) -> tuple[int, float]:
    """Row-by-row: set_time on both timelines, then one rr.log per sample."""
    import rerun as rr

    rec = rr.RecordingStream("robotops-bench-baseline", recording_id=uuid.uuid4())
    rec.save(out)
    ds = run.streams["joint_states"]
    t = ds["time"].values.astype(np.int64)
    pos = ds["position"].values
    rows = int(np.ceil(n_samples / len(JOINTS)))
    paths = [f"/runs/bench/joint_states/position/{j}" for j in JOINTS]
    sent = 0
    t0 = time.perf_counter()
    for i in range(rows):
        rec.set_time("aligned", duration=np.timedelta64(int(t[i] - t[0]), "ns"))
        rec.set_time("log_time", timestamp=np.datetime64(int(t[i]), "ns"))
        for j, path in enumerate(paths):
            rec.log(path, rr.Scalars(pos[i, j]))
            sent += 1
    rec.flush()
    rec.disconnect()
    return sent, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000_000, help="scalar samples in the stored run")
    ap.add_argument("--frames", type=int, default=1000, help="camera frames in the stored run")
    ap.add_argument("--baseline", type=int, default=50_000, help="samples for the row-by-row baseline")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-rerun-"))
    try:
        store = wb.open_store(tmp / "store")
        t0 = time.perf_counter()
        run_id, total = make_run(store, args.samples, args.frames)
        print(f"stored run: {total:,} scalar samples + {args.frames:,} JPEG frames ({time.perf_counter() - t0:.1f} s to build)")

        import rerun  # noqa: F401  (import cost outside both timings)

        out = tmp / "ours.rrd"
        t0 = time.perf_counter()
        run = store.load(run_id, lazy=False)
        t_load = time.perf_counter() - t0
        log = wb.viz.rerun.log_runs([run], layout="side_by_side", out=out, grades={})
        t_ours = time.perf_counter() - t0
        assert log.n_scalars == total, (log.n_scalars, total)
        assert log.n_frames == args.frames
        ours_rate = total / t_ours
        mb = out.stat().st_size / 1e6

        sent, t_base = baseline(run, args.baseline, tmp / "baseline.rrd")
        base_rate = sent / t_base
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print()
        print(f"{'':<34}{'samples':>12}{'seconds':>10}{'samples/s':>14}")
        print(f"{'row-by-row set_time + rr.log':<34}{sent:>12,}{t_base:>10.2f}{base_rate:>14,.0f}")
        print(f"{'log_runs (store → .rrd, e2e)':<34}{total:>12,}{t_ours:>10.2f}{ours_rate:>14,.0f}")
        print(f"  of which store.load {t_load:.2f} s; .rrd {mb:.0f} MB; frames {args.frames} (sent as stored JPEG)")
        print()
        print(f"speed-up: {ours_rate / base_rate:,.0f}× the row-by-row loop (target ≥ 100×)")
        print(f"rate: {ours_rate / 1e6:.2f} M samples/s end to end (target ≥ 2 M/s)")
        print(f"peak RSS: {peak_mb:,.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
