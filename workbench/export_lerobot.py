"""Selected runs out as a LeRobot dataset (codebase version v3.0).

:func:`export_lerobot` writes, from a :class:`~workbench.selection.Selection`::

    meta/info.json                  codebase_version v3.0, fps, robot_type, features (shapes, names)
    meta/tasks.parquet              task_index and the task text (the index of the frame)
    meta/episodes/chunk-000/file-000.parquet
                                    per episode: length, data file, index range, tasks, stats
    meta/stats.json                 per feature: min, max, mean, std, count, q01…q99
    data/chunk-000/file-000.parquet many episodes per file: one row per frame
    videos/<camera>/chunk-000/file-000.mp4
                                    each camera, every episode one after the other (PyAV)
    meta/workbench_episodes.parquet provenance of each episode: run id, source sha256,
                                    grade, outcome, factors (JSON)
    meta/workbench_selection.json   the query, the store's catalog hash, the run ids
    README.md                       the dataset card (:mod:`workbench.export_card`)

Each run (or each window of a selection made with *find*) is one episode. Streams are
put on the frame clock with :func:`workbench.sync.resample` (nearest sample within
twice the stream's period). Features come from the metric roles: ``observation.state``
from ``joint_position``, ``action`` from ``joint_command``, cameras from the encoded
image streams (``observation.images.<name>``); *features* overrides them
(``{"observation.state": "stream/variable"}``). ``next.done`` is true on an episode's
last frame; ``next.success`` from the frame at the run's success (its outcome time) on,
and ``next.reward`` 1.0 on those frames, 0.0 elsewhere; a run without a known outcome
has ``next.success`` false throughout and says so in ``workbench_episodes``.

Examples
--------
>>> import workbench as wb                                    # doctest: +SKIP
>>> from workbench.selection import select                    # doctest: +SKIP
>>> sel = select(store, where="model.version = 'policy-v1'", outcome="success", min_grade="B")  # doctest: +SKIP
>>> export_lerobot(store, sel, "datasets/v1-successes")       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.model import ConfigError

if TYPE_CHECKING:

    from workbench.model import Run
    from workbench.selection import Selection
    from workbench.store import Store

__all__ = ["CODEBASE_VERSION", "ExportReport", "export_lerobot"]

CODEBASE_VERSION = "v3.0"
_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
_ROLE_FEATURES = {"observation.state": "joint_position", "action": "joint_command"}


@dataclass
class ExportReport:
    """What an export wrote: the folder, episodes, frames, the features, the runs left
    out with why, and the cameras written as video."""

    out: Path
    episodes: int
    frames: int
    fps: int
    features: dict[str, Any]
    left_out: dict[str, str] = field(default_factory=dict)
    videos: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        extra = f"; {len(self.left_out)} run(s) left out (see README.md)" if self.left_out else ""
        cams = f", video: {', '.join(self.videos)}" if self.videos else ""
        return (f"wrote {self.episodes} episode(s), {self.frames} frames at {self.fps} fps to {self.out} "
                f"(LeRobot {CODEBASE_VERSION}; features: {', '.join(k for k in self.features if '.' in k or k == 'action')}{cams}){extra}")


def _source(run: Run, role: str, override: str | None) -> tuple[str, str, Any, list[str]]:
    """(stream, variable, column selection, names) of a feature: the whole variable the
    role resolves to (a metric's role may leave components out, such as the gripper of a
    joint vector; a dataset keeps them all), or the override ``stream/variable``."""
    from workbench.metrics.roles import resolve

    if override:
        stream, _, var = override.partition("/")
        if stream not in run.streams or (var and var not in run.streams[stream]):
            msg = f"feature source {override!r} is not in run {run.run_id}; streams: {', '.join(sorted(run.streams))}"
            raise ConfigError(msg)
        var = var or str(next(iter(run.streams[stream].data_vars)))
    else:
        b = resolve(run, role)
        stream, var = b.stream, b.variables[0]
    ds = run.streams[stream]
    da = ds[var]
    width = int(np.prod([da.sizes[d] for d in da.dims if d != "time"], dtype=np.int64))
    extra = [d for d in da.dims if d != "time"]
    names = ([str(x) for x in ds[extra[0]].values] if len(extra) == 1 and extra[0] in ds.coords and width == ds.sizes[extra[0]]
             else [f"{var}_{i}" for i in range(width)])
    return stream, var, None, names


def _values_on(run: Run, stream: str, var: str, cols: Any, clock: np.ndarray) -> np.ndarray:
    from workbench.sync import resample

    ds = run.streams[stream][[var]]
    if any(v.chunks is not None for v in ds.variables.values()):
        ds = ds.load()
    on = resample(ds, clock, method="nearest")[var].values
    arr = np.asarray(on, dtype=np.float32).reshape(clock.size, -1)
    return arr[:, list(cols)] if cols is not None else arr


def _frames_on(run: Run, stream: str, clock: np.ndarray) -> list[bytes] | None:
    """The encoded image nearest each frame time (None without frames)."""
    ds = run.streams[stream]
    t = np.asarray(ds["time"].values).astype("datetime64[ns]").astype(np.int64) if ds["time"].dtype.kind == "M" \
        else np.asarray(ds["time"].values, dtype=np.int64)
    if t.size == 0:
        return None
    data = np.asarray(ds["data"].values, dtype=np.uint8)
    offsets = np.asarray(ds["frame_offset"].values, dtype=np.int64)
    sizes = np.asarray(ds["frame_size"].values, dtype=np.int64)
    k = np.clip(np.searchsorted(t, clock), 0, t.size - 1)
    prev = np.clip(k - 1, 0, t.size - 1)
    k = np.where(np.abs(t[prev] - clock) <= np.abs(t[k] - clock), prev, k)
    return [data[offsets[i]: offsets[i] + sizes[i]].tobytes() for i in k]


def _stats(values: np.ndarray) -> dict[str, Any]:
    v = values.reshape(values.shape[0], -1).astype(np.float64)
    q = {f"q{int(p * 100):02d}": np.quantile(v, p, axis=0).tolist() for p in _QUANTILES}
    return {"min": v.min(axis=0).tolist(), "max": v.max(axis=0).tolist(), "mean": v.mean(axis=0).tolist(),
            "std": v.std(axis=0).tolist(), "count": [int(v.shape[0])], **q}


class _Video:
    """One camera's MP4: frames of every episode appended in order (PyAV)."""

    def __init__(self, path: Path, fps: int, width: int, height: int) -> None:
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream: Any = self.container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        self.stream = stream
        self.codec, self.frames = ("h264" if codec == "libx264" else codec), 0

    def add(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.closed = True

    def abort(self) -> None:
        """Close without flushing (the export failed; its folder is removed)."""
        if not getattr(self, "closed", False):
            self.container.close()
            self.closed = True


def _decode(blob: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def _add_frames(vid: _Video, blobs: list[bytes], h: int, w: int) -> None:
    """Decode each stored frame (once per distinct blob), crop it to ``h x w`` and
    append it to ``vid``."""
    cache: dict[bytes, np.ndarray] = {}
    for blob in blobs:
        img = cache.get(blob)
        if img is None:
            img = cache[blob] = _decode(blob)[:h, :w]
        vid.add(np.ascontiguousarray(img))


def export_lerobot(
    store: Store,
    selection: Selection,
    out: str | Path,
    *,
    fps: int | None = None,
    features: Mapping[str, str] | None = None,
    robot_type: str | None = None,
    task: str | None = None,
    video: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the runs (or windows) of *selection* as a LeRobot v3.0 dataset in *out*.

    Parameters
    ----------
    store
        The store the selection was made on.
    selection
        From :func:`workbench.selection.select`.
    out
        A new or empty folder.
    fps
        Frame rate (default: the rounded rate of the first episode's ``observation.state``).
    features
        Overrides of the feature sources, ``{"observation.state": "stream/variable", …}``.
    robot_type
        ``robot_type`` of ``info.json`` (default: the runs' ``hardware.robot``).
    task
        Task text of every episode (default: each run's ``scenario.task``).
    video
        Write the cameras as MP4 (PyAV).
    progress
        Called as ``progress(done, total)`` after each episode.

    Raises
    ------
    ConfigError
        A non-empty output folder, an empty selection, a run lacking a feature's source
        (naming it and the streams there are), or a bad feature override.
    """
    import polars as pl

    from workbench.export_card import write_card
    from workbench.selection import export_target

    folder = export_target(selection, out)
    final = folder
    folder = final.parent / f".{final.name}.partial-{os.getpid()}"  # renamed into place once complete
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    videos: dict[str, _Video] = {}
    used_streams: set[str] = set()
    try:
        overrides = dict(features or {})
        bad = [k for k in overrides if k not in _ROLE_FEATURES and not k.startswith("observation.")]
        if bad:
            msg = f"feature {bad[0]!r} cannot be set; use observation.state, action or observation.<name>"
            raise ConfigError(msg)
        cat = selection.catalog
        windows = selection.windows
        episodes: list[tuple[str, int | None, int | None]] = []  # run id, window start, end
        if windows is not None:
            episodes = [(r, int(a), int(b)) for r, a, b in windows.select("run_id", "start", "end").iter_rows()]
        else:
            episodes = [(r, None, None) for r in selection.run_ids]
        rows = {r["run_id"]: r for r in cat.iter_rows(named=True)}
        columns: dict[str, list[Any]] = {}
        ep_rows: list[dict[str, Any]] = []
        prov_rows: list[dict[str, Any]] = []
        left_out: dict[str, str] = {}
        tasks: dict[str, int] = {}
        feature_info: dict[str, Any] = {}
        video_spans: dict[str, list[tuple[float, float]]] = {}
        state_all: dict[str, list[np.ndarray]] = {}
        index = 0
        names_of: dict[str, list[str]] = {}
        for n_ep, (rid, w_start, w_end) in enumerate(episodes):
            # only the streams the features came from on earlier runs (and the cameras): a run
            # opens a few streams, not all of them; a run where they do not fit is opened whole
            listed = store.manifest(rid).get("streams", {})
            cams = [n for n, d in listed.items() if {"data", "frame_offset", "frame_size"} <= set(d.get("variables", []))]
            want = [n for n in [*used_streams, *(cams if video else [])] if n in listed]
            run = store.load(rid, streams=want, lazy=False) if used_streams and len(want) >= len(used_streams) \
                else store.load(rid, lazy=True)
            try:
                try:
                    sources = {f: _source(run, role, overrides.get(f)) for f, role in _ROLE_FEATURES.items()}
                except Exception:
                    if set(run.streams) == set(listed):
                        raise
                    run = store.load(rid, lazy=True)
                    sources = {f: _source(run, role, overrides.get(f)) for f, role in _ROLE_FEATURES.items()}
                used_streams.update(src[0] for src in sources.values())
            except ConfigError:
                raise  # a feature mapping naming what a run lacks: the export stops, nothing is written
            except Exception as err:  # noqa: BLE001 - a run where a role resolves to nothing is left out, with why
                left_out[rid] = f"no source for a feature: {err}"
                continue
            t0 = run.info.start_ns if w_start is None else max(run.info.start_ns, w_start)
            t1 = run.info.end_ns if w_end is None else min(run.info.end_ns, w_end)
            if fps is None:
                st = run.streams[sources["observation.state"][0]]
                tt = np.asarray(st["time"].values, dtype=np.int64)
                fps = max(1, round(1e9 / float(np.median(np.diff(tt))))) if tt.size > 1 else 10
            step = int(round(1e9 / fps))
            clock = np.arange(t0, t1 + step // 2, step, dtype=np.int64)  # a last sample a rounding short still counts
            if clock.size < 2:
                left_out[rid] = "shorter than two frames"
                continue
            values = {f: _values_on(run, s, v, c, clock) for f, (s, v, c, _n) in sources.items()}
            if any(np.isnan(v).all() for v in values.values()):
                left_out[rid] = "a feature has no sample in the episode's time span"
                continue
            for f, (_s, _v, _c, names) in sources.items():
                if f in names_of and names_of[f] != names:
                    msg = (f"run {rid}: {f} has components {names}, earlier episodes {names_of[f]}: one dataset needs one "
                           f"shape; select runs of one robot (e.g. --where \"hardware.robot = '…'\") or map the feature with --feature")
                    raise ConfigError(msg)
                names_of[f] = names
            n = clock.size
            info_row = rows.get(rid, {})
            text = task or str(info_row.get("scenario.task") or "task")
            t_idx = tasks.setdefault(text, len(tasks))
            outcome = info_row.get("outcome")
            out_ns = info_row.get("outcome_ns")
            success = np.zeros(n, dtype=bool)
            if outcome == "success":
                success = clock >= (int(out_ns) if out_ns is not None else clock[-1])
                if not success.any():  # the success lies after the window: the last frame
                    success[-1] = w_end is None
            done = np.zeros(n, dtype=bool)
            done[-1] = True
            ts = ((clock - clock[0]) / 1e9).astype(np.float32)
            for f, v in values.items():
                columns.setdefault(f, []).extend(np.nan_to_num(v, nan=0.0))
                state_all.setdefault(f, []).append(v)
            columns.setdefault("timestamp", []).extend(ts.tolist())
            columns.setdefault("frame_index", []).extend(range(n))
            columns.setdefault("episode_index", []).extend([len(ep_rows)] * n)
            columns.setdefault("index", []).extend(range(index, index + n))
            columns.setdefault("task_index", []).extend([t_idx] * n)
            columns.setdefault("next.done", []).extend(done.tolist())
            columns.setdefault("next.success", []).extend(success.tolist())
            columns.setdefault("next.reward", []).extend(success.astype(np.float32).tolist())
            ep: dict[str, Any] = {"episode_index": len(ep_rows), "tasks": [text], "length": n, "data/chunk_index": 0,
                                  "data/file_index": 0, "dataset_from_index": index, "dataset_to_index": index + n}
            if video:
                for name, ds in run.streams.items():
                    if ds.attrs.get("kind") != "image_encoded":
                        continue
                    key = f"observation.images.{name.split('.')[0]}"
                    blobs = _frames_on(run, name, clock)
                    if blobs is None:
                        continue
                    first = _decode(blobs[0])
                    h, w = first.shape[0] - first.shape[0] % 2, first.shape[1] - first.shape[1] % 2
                    vid = videos.get(key)
                    if vid is None:
                        vid = videos[key] = _Video(folder / "videos" / key / "chunk-000" / "file-000.mp4", fps, w, h)
                        feature_info[key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                                             "info": {"video.height": h, "video.width": w, "video.codec": vid.codec,
                                                      "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                                      "video.fps": fps, "video.channels": 3, "has_audio": False}}
                    start_t = vid.frames / fps
                    _add_frames(vid, blobs, h, w)
                    video_spans.setdefault(key, []).append((start_t, vid.frames / fps))
                    ep[f"videos/{key}/chunk_index"] = 0
                    ep[f"videos/{key}/file_index"] = 0
                    ep[f"videos/{key}/from_timestamp"] = start_t
                    ep[f"videos/{key}/to_timestamp"] = vid.frames / fps
            per_frame = {**{f: np.nan_to_num(v) for f, v in values.items()}, "timestamp": ts[:, None],
                         "frame_index": np.arange(n)[:, None], "episode_index": np.full((n, 1), len(ep_rows)),
                         "index": np.arange(index, index + n)[:, None], "task_index": np.full((n, 1), t_idx)}
            for f, v in per_frame.items():  # per-episode statistics, as LeRobot writes them
                for stat, val in _stats(v).items():
                    ep[f"stats/{f}/{stat}"] = val
            ep["meta/episodes/chunk_index"] = 0
            ep["meta/episodes/file_index"] = 0
            ep_rows.append(ep)
            info = store.info(rid)
            prov_rows.append({"episode_index": len(ep_rows) - 1, "run_id": rid, "name": info.name,
                              "source": info.provenance.sources[0].path if info.provenance.sources else None,
                              "source_sha256": info.provenance.sources[0].sha256 if info.provenance.sources else None,
                              "grade": info_row.get("quality.grade"), "outcome": outcome or "unknown",
                              "window_start_ns": w_start, "window_end_ns": w_end,
                              "factors": json.dumps(info.factors(), sort_keys=True, default=str)})
            index += n
            if progress:
                progress(n_ep + 1, len(episodes))
        for vid in videos.values():
            vid.close()
        if not ep_rows:
            msg = f"no selected run could be exported: {'; '.join(f'{r}: {why}' for r, why in list(left_out.items())[:5])}"
            raise ConfigError(msg)
        assert fps is not None
        data = {}
        for f in _ROLE_FEATURES:
            width = len(names_of[f])
            data[f] = pl.Series(f, np.asarray(columns[f], dtype=np.float32).reshape(-1, width), dtype=pl.Array(pl.Float32, width))
        frame = pl.DataFrame([*data.values(),
                              pl.Series("timestamp", columns["timestamp"], dtype=pl.Float32),
                              pl.Series("frame_index", columns["frame_index"], dtype=pl.Int64),
                              pl.Series("episode_index", columns["episode_index"], dtype=pl.Int64),
                              pl.Series("index", columns["index"], dtype=pl.Int64),
                              pl.Series("task_index", columns["task_index"], dtype=pl.Int64),
                              pl.Series("next.reward", columns["next.reward"], dtype=pl.Float32),
                              pl.Series("next.done", columns["next.done"], dtype=pl.Boolean),
                              pl.Series("next.success", columns["next.success"], dtype=pl.Boolean)])
        (folder / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / "data" / "chunk-000" / "file-000.parquet")
        (folder / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pl.DataFrame(ep_rows).write_parquet(folder / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq

        task_table = pa.table({"task_index": list(tasks.values())})
        pq.write_table(task_table.append_column("__index_level_0__", pa.array(list(tasks))), folder / "meta" / "tasks.parquet")
        pl.DataFrame(prov_rows).write_parquet(folder / "meta" / "workbench_episodes.parquet")
        feats: dict[str, Any] = {f: {"dtype": "float32", "shape": [len(names_of[f])], "names": names_of[f]} for f in _ROLE_FEATURES}
        feats.update(feature_info)
        for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
                            ("task_index", "int64"), ("next.reward", "float32"), ("next.done", "bool"), ("next.success", "bool")):
            feats[name] = {"dtype": dtype, "shape": [1], "names": None}
        robot = robot_type or str(cat["hardware.robot"][0]) if "hardware.robot" in cat.columns and cat.height else (robot_type or "unknown")
        info_json = {
            "codebase_version": CODEBASE_VERSION, "robot_type": robot, "total_episodes": len(ep_rows), "total_frames": index,
            "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": fps, "splits": {"train": f"0:{len(ep_rows)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if videos else None,
            "features": feats,
        }
        (folder / "meta" / "info.json").write_text(json.dumps(info_json, indent=4) + "\n")
        stats = {f: _stats(np.nan_to_num(np.concatenate(state_all[f]))) for f in _ROLE_FEATURES}
        for col in ("timestamp", "frame_index", "episode_index", "index", "task_index", "next.reward"):
            stats[col] = _stats(np.asarray(columns[col], dtype=np.float64)[:, None])
        (folder / "meta" / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
        sel = selection.to_dict()
        sel["left_out"] = left_out
        (folder / "meta" / "workbench_selection.json").write_text(json.dumps(sel, indent=1, default=str) + "\n")
        report = ExportReport(folder, len(ep_rows), index, fps, feats, left_out, sorted(videos))
        write_card(folder, selection, report, pl.DataFrame(prov_rows), kind="lerobot")
    except BaseException:
        for vid in videos.values():
            vid.abort()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if final.exists():
        final.rmdir()  # empty (checked above)
    os.replace(folder, final)
    report.out = final
    return report

