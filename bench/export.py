"""Export speed: runs of the sample campaign out as a LeRobot v3.0 dataset.

1. Numeric streams only (``--no-video``): ``--runs`` runs (default 200, generated with
   ``workbench.samples.generate`` and ingested into a fresh store) exported with
   :func:`workbench.export_lerobot.export_lerobot`, printed as runs/s (target ≥ 20) beside
   the floor a user would otherwise write: reading each run's two streams from the store
   and writing them into one Parquet file with polars (no resampling, no stats).
2. Video: the wrist camera of ``--video-runs`` runs (default 20) put on a 25 fps clock,
   encoded by the export (JPEG decode + H.264 via PyAV), printed in frames/s beside PyAV
   encoding the same frames, already decoded, directly.

Quick: ``.venv/bin/python bench/export.py --runs 40 --video-runs 5``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--video-runs", type=int, default=20)
    args = ap.parse_args()
    import polars as pl

    import workbench as wb
    from workbench.export_lerobot import _add_frames, _decode, _frames_on, _Video, export_lerobot
    from workbench.samples import generate
    from workbench.selection import select

    work = Path(tempfile.mkdtemp(prefix="wb-export-bench-"))
    try:
        t0 = time.perf_counter()
        generate(work / "samples", runs=args.runs, workers=2)
        store = wb.open_store(work / "store")
        files = [f for f in sorted((work / "samples" / "campaign").glob("*.mcap")) if "truncated" not in f.name]
        store.ingest(files, scheduler="processes")
        print(f"generated and ingested {len(files)} runs in {time.perf_counter() - t0:.0f} s")
        sel = select(store)
        export_lerobot(store, select(store, limit=2), work / "warm", fps=25, video=False)  # imports loaded first
        t0 = time.perf_counter()
        rep = export_lerobot(store, sel, work / "numeric", fps=25, video=False)
        t_ours = time.perf_counter() - t0
        # the floor: each run's state and command read from the store, one Parquet file
        t0 = time.perf_counter()
        parts = []
        for rid in sel.run_ids:
            run = store.load(rid, streams=["joint_states", "joint_commands"], lazy=False)
            js = run.streams["joint_states"]["position"].values.astype(np.float32)
            parts.append(pl.DataFrame({"observation.state": js, "episode": [rid] * len(js)}))
        pl.concat(parts).write_parquet(work / "floor.parquet")
        t_floor = time.perf_counter() - t0
        n = rep.episodes
        print(f"== 1. LeRobot export, numeric streams: {n} runs, {rep.frames:,} frames at 25 fps")
        print(f"   workbench export_lerobot (resample, stats, provenance, card) {t_ours:7.2f} s  {n / t_ours:6.1f} runs/s  (target ≥ 20)")
        print(f"   floor: read state from the store + one polars Parquet      {t_floor:7.2f} s  {n / t_floor:6.1f} runs/s"
              f"  → the export takes {t_ours / t_floor:.1f}× the floor")
        # 2. video
        ids = sel.run_ids[: args.video_runs]
        clocks, blobs = [], []
        for rid in ids:
            run = store.load(rid, lazy=True)
            cam = next(name for name, ds in run.streams.items() if ds.attrs.get("kind") == "image_encoded")
            clock = np.arange(run.info.start_ns, run.info.end_ns, 40_000_000, dtype=np.int64)
            clocks.append(clock)
            blobs.extend(_frames_on(run, cam, clock) or [])
        t0 = time.perf_counter()
        first = _decode(blobs[0])
        h, w = first.shape[0] - first.shape[0] % 2, first.shape[1] - first.shape[1] % 2
        vid = _Video(work / "v" / "ours.mp4", 25, w, h)
        _add_frames(vid, blobs, h, w)
        vid.close()
        t_vid = time.perf_counter() - t0
        frames = [np.ascontiguousarray(_decode(b)[:h, :w]) for b in dict.fromkeys(blobs)]
        order = [frames[list(dict.fromkeys(blobs)).index(b)] for b in blobs[: len(blobs)]] if len(frames) < 5000 else frames
        import av

        t0 = time.perf_counter()
        with av.open(str(work / "v" / "direct.mp4"), mode="w") as c:
            st = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
            st.width, st.height, st.pix_fmt = w, h, "yuv420p"  # type: ignore[union-attr]
            for img in order:
                for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):  # type: ignore[union-attr]
                    c.mux(p)
            for p in st.encode():  # type: ignore[union-attr]
                c.mux(p)
        t_direct = time.perf_counter() - t0
        print(f"== 2. video: {len(blobs):,} frames ({w}×{h}) of {len(ids)} runs at 25 fps")
        print(f"   workbench (JPEG decode + encode)   {t_vid:6.2f} s  {len(blobs) / t_vid:8.0f} frames/s")
        print(f"   PyAV encoding the decoded frames   {t_direct:6.2f} s  {len(order) / t_direct:8.0f} frames/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
