"""LeRobot datasets (codebase v2.0, v2.1 and v3.0) → one run per episode.

A LeRobot dataset is a folder with ``meta/info.json``. Its frames live in Parquet
files (v2.x: one file per episode; v3.0: many episodes per file, located through
``meta/episodes/*.parquet``) and its camera streams in MP4 files (same split).

What a run holds
----------------
* ``key`` is ``"episode_<index>"``.
* One stream per non-video feature, named after the feature (``observation.state``,
  ``action``, ``next.reward`` …), holding one variable named after the feature's last
  dotted component (``state``, ``action``, ``reward``). Vector features get a second
  dimension: ``joint`` with the feature's ``names`` as coordinate when info.json gives
  names (``axis`` when the names are ``x, y, z``), ``dim_1`` … otherwise.
  The bookkeeping columns ``frame_index``, ``index`` and ``task_index`` form the
  stream ``frame``.
* Time is the ``timestamp`` column (seconds from the episode start) in nanoseconds,
  i.e. 1970-based and episode-relative: ``extra["clock"] == "episode"``.
* Video features are *not* decoded at ingest: each becomes a stream with
  ``attrs["kind"] == "video_ref"``, the MP4 path relative to the dataset
  (``attrs["path"]``), codec and size, and per-frame variables ``frame_index`` and
  ``video_time`` (seconds into the MP4). :func:`read_video_frame` decodes one frame
  with PyAV when asked.
* Factors: ``hardware.robot`` (``robot_type``), ``scenario.episode`` (the episode
  index, an int), ``scenario.task`` (the task text of *this* episode, from the episode
  table or else the ``task_index`` of its frames; ``scenario.tasks`` counts them when
  there are several), ``scenario.split``. Every other column of the episode table
  (v3.0 ``meta/episodes/chunk-*/file-*.parquet``, v2.x ``meta/episodes.jsonl``) that
  holds a scalar for the episode becomes ``scenario.<column>`` (``/`` in a name becomes
  ``.``), except the bookkeeping columns (:data:`EPISODE_BOOKKEEPING`: lengths, index
  ranges, ``stats/*``, ``data/*``, ``videos/*`` and ``meta/*`` file offsets). All such
  columns, scalar or not, are kept in ``extra["episode_metadata"]``; those that are not
  factors are named in ``extra["episode_metadata_left_out"]`` with the reason.
* Episodes that info.json/episode metadata announce but whose data files are absent
  are listed in the ``skipped`` of the first run yielded (one entry per episode);
  every run lists them in ``extra["missing_episodes"]``. Absent videos are listed in
  the ``skipped`` of the run they belong to.

Examples
--------
>>> from pathlib import Path
>>> LeRobotReader().guess_can_open(Path("/nonexistent"))
False
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.io.registry import ReaderEntrypoint, RunData, scalar_factors
from workbench.model import ReaderError, Scalar, stream_name

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr

__all__ = [
    "EPISODES_DIR",
    "EPISODES_JSONL_PATH",
    "EPISODE_BOOKKEEPING",
    "INFO_PATH",
    "SUPPORTED_VERSIONS",
    "TASKS_JSONL_PATH",
    "TASKS_PARQUET_PATH",
    "LeRobotReader",
    "episode_bytes",
    "read_video_frame",
]

INFO_PATH = "meta/info.json"
"""Dataset description: version, fps, robot type, features, path templates."""
TASKS_JSONL_PATH = "meta/tasks.jsonl"
"""v2.x task table: one ``{"task_index", "task"}`` object per line."""
TASKS_PARQUET_PATH = "meta/tasks.parquet"
"""v3.0 task table (``task_index`` and the task text, often as a pandas index column)."""
EPISODES_JSONL_PATH = "meta/episodes.jsonl"
"""v2.x episode table: ``{"episode_index", "tasks", "length"}`` per line."""
EPISODES_STATS_JSONL_PATH = "meta/episodes_stats.jsonl"
"""v2.1 per-episode statistics (listed as a source file, not read)."""
EPISODES_DIR = "meta/episodes"
"""v3.0 episode tables: ``meta/episodes/chunk-XXX/file-XXX.parquet``."""
DATA_DIR = "data"
VIDEOS_DIR = "videos"
DEFAULT_DATA_PATH_V2 = (
    "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
)
DEFAULT_VIDEO_PATH_V2 = (
    "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
)
DEFAULT_DATA_PATH_V3 = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH_V3 = (
    "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
)
DEFAULT_CHUNKS_SIZE = 1000
SUPPORTED_VERSIONS: tuple[str, ...] = ("v2.0", "v2.1", "v3.0")
"""``codebase_version`` values this reader understands."""

EPISODE_BOOKKEEPING: tuple[str, ...] = (
    "episode_index",
    "tasks",
    "length",
    "dataset_from_index",
    "dataset_to_index",
    "episode_chunk",
    "chunk_index",
    "file_index",
    "stats/",
    "data/",
    "videos/",
    "meta/",
)
"""Episode-table columns that describe storage, not the episode (names; ``/``-ending
entries are prefixes). They never become factors."""
_BOOKKEEPING = ("frame_index", "index", "task_index")
_NOT_STREAMS = {"timestamp", "episode_index", *_BOOKKEEPING}
_FRAME_STREAM = "frame"


# --------------------------------------------------------------------------- metadata


@dataclass
class _Episode:
    index: int
    length: int | None
    tasks: list[str]
    data_file: str | None = None  # relative path (v3: shared file)
    videos: dict[str, tuple[str, float]] = field(
        default_factory=dict
    )  # key -> (rel, from_ts)
    metadata: dict[str, Any] = field(default_factory=dict)  # non-bookkeeping columns


def _is_bookkeeping(column: str) -> bool:
    return any(
        column.startswith(b) if b.endswith("/") else column == b
        for b in EPISODE_BOOKKEEPING
    )


def _episode_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of an episode-table row that describe the episode itself."""
    return {k: v for k, v in row.items() if not _is_bookkeeping(str(k))}


@dataclass
class _Meta:
    root: Path
    info: dict[str, Any]
    version: str
    fps: float
    features: dict[str, dict[str, Any]]
    tasks: dict[int, str]
    episodes: list[_Episode]
    meta_files: list[Path]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.get("dtype") == "video"]

    def episode(self, index: int) -> _Episode:
        for ep in self.episodes:
            if ep.index == index:
                return ep
        msg = f"{str(self.root)!r}: no episode {index} (episodes: {_ranges([e.index for e in self.episodes])})"
        raise ReaderError(msg)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{str(path)!r}: cannot read JSON: {err}"
        raise ReaderError(msg) from err


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{str(path)!r}: cannot read: {err}"
        raise ReaderError(msg) from err
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            msg = f"{str(path)!r}: line {lineno} is not JSON: {err}"
            raise ReaderError(msg) from err
        if not isinstance(obj, dict):
            msg = f"{str(path)!r}: line {lineno} is not a JSON object"
            raise ReaderError(msg)
        rows.append(obj)
    return rows


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as err:
        msg = f"{str(path)!r}: cannot read Parquet: {err}"
        raise ReaderError(msg) from err


def _load_meta(root: Path) -> _Meta:
    info_path = root / INFO_PATH
    if not info_path.is_file():
        msg = f"{str(root)!r}: not a LeRobot dataset (no {INFO_PATH})"
        raise ReaderError(msg)
    info = _load_json(info_path)
    if not isinstance(info, dict):
        msg = f"{str(info_path)!r}: must hold a JSON object"
        raise ReaderError(msg)
    version = str(info.get("codebase_version", ""))
    if version not in SUPPORTED_VERSIONS:
        msg = (
            f"{str(info_path)!r}: codebase_version {version!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_VERSIONS)}"
        )
        raise ReaderError(msg)
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        msg = f"{str(info_path)!r}: no 'features' mapping"
        raise ReaderError(msg)
    fps = info.get("fps")
    if not isinstance(fps, int | float) or isinstance(fps, bool) or fps <= 0:
        msg = f"{str(info_path)!r}: 'fps' must be a positive number, got {fps!r}"
        raise ReaderError(msg)
    meta_files = [info_path]
    if version.startswith("v2"):
        tasks, episodes = _load_v2_tables(root, info, meta_files)
    else:
        tasks, episodes = _load_v3_tables(root, info, meta_files)
    return _Meta(root, info, version, float(fps), features, tasks, episodes, meta_files)


def _load_v2_tables(
    root: Path, info: dict[str, Any], meta_files: list[Path]
) -> tuple[dict[int, str], list[_Episode]]:
    tasks: dict[int, str] = {}
    tasks_path = root / TASKS_JSONL_PATH
    if tasks_path.is_file():
        meta_files.append(tasks_path)
        for row in _load_jsonl(tasks_path):
            if "task_index" in row and "task" in row:
                tasks[int(row["task_index"])] = str(row["task"])
    chunks_size = int(info.get("chunks_size") or DEFAULT_CHUNKS_SIZE)
    data_tpl = str(info.get("data_path") or DEFAULT_DATA_PATH_V2)
    video_tpl = str(info.get("video_path") or DEFAULT_VIDEO_PATH_V2)
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    eps_path = root / EPISODES_JSONL_PATH
    rows: list[dict[str, Any]]
    if eps_path.is_file():
        meta_files.append(eps_path)
        rows = _load_jsonl(eps_path)
    else:  # derive from total_episodes (or from the data files present)
        total = info.get("total_episodes")
        if isinstance(total, int) and total > 0:
            rows = [{"episode_index": i} for i in range(total)]
        else:
            found = sorted(root.glob(f"{DATA_DIR}/**/episode_*.parquet"))
            rows = [
                {"episode_index": int(re.findall(r"\d+", p.stem)[-1])} for p in found
            ]
    stats = root / EPISODES_STATS_JSONL_PATH
    if stats.is_file():
        meta_files.append(stats)
    episodes = []
    for row in rows:
        idx = int(row["episode_index"])
        fmt = {"episode_chunk": idx // chunks_size, "episode_index": idx}
        ep = _Episode(
            index=idx,
            length=int(row["length"]) if "length" in row else None,
            tasks=[str(t) for t in row.get("tasks", [])],
            data_file=_format(data_tpl, fmt, root),
            metadata=_episode_metadata(row),
        )
        for key in video_keys:
            ep.videos[key] = (_format(video_tpl, {**fmt, "video_key": key}, root), 0.0)
        episodes.append(ep)
    return tasks, sorted(episodes, key=lambda e: e.index)


def _load_v3_tables(
    root: Path, info: dict[str, Any], meta_files: list[Path]
) -> tuple[dict[int, str], list[_Episode]]:
    tasks: dict[int, str] = {}
    tasks_path = root / TASKS_PARQUET_PATH
    if tasks_path.is_file():
        meta_files.append(tasks_path)
        table = _read_parquet(tasks_path)
        text_cols = [
            n
            for n in table.column_names
            if n != "task_index"
            and str(table.schema.field(n).type) in {"string", "large_string"}
        ]
        if "task_index" in table.column_names and text_cols:
            col = "task" if "task" in text_cols else text_cols[0]
            for i, t in zip(
                table.column("task_index").to_pylist(),
                table.column(col).to_pylist(),
                strict=True,
            ):
                tasks[int(i)] = str(t)
    data_tpl = str(info.get("data_path") or DEFAULT_DATA_PATH_V3)
    video_tpl = str(info.get("video_path") or DEFAULT_VIDEO_PATH_V3)
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    ep_files = sorted((root / EPISODES_DIR).glob("**/*.parquet"))
    episodes: list[_Episode] = []
    if not ep_files:  # derive the episodes from the data files themselves
        for p in sorted((root / DATA_DIR).glob("**/*.parquet")):
            idxs = (
                _read_parquet(p, ["episode_index"]).column("episode_index").to_numpy()
            )
            rel = p.relative_to(root).as_posix()
            for idx in np.unique(idxs):
                episodes.append(
                    _Episode(int(idx), int(np.sum(idxs == idx)), [], data_file=rel)
                )
        return tasks, sorted(episodes, key=lambda e: e.index)
    for p in ep_files:
        meta_files.append(p)
        table = _read_parquet(p)
        cols = [c for c in table.column_names if not c.startswith("stats/")]
        for row in table.select(cols).to_pylist():
            if row.get("episode_index") is None:
                msg = f"{str(p)!r}: episode row without 'episode_index'"
                raise ReaderError(msg)
            ep = _Episode(
                index=int(row["episode_index"]),
                length=int(row["length"]) if row.get("length") is not None else None,
                tasks=[str(t) for t in (row.get("tasks") or [])],
                metadata=_episode_metadata(row),
            )
            if row.get("data/chunk_index") is not None:
                ep.data_file = _format(
                    data_tpl,
                    {
                        "chunk_index": row["data/chunk_index"],
                        "file_index": row["data/file_index"],
                    },
                    root,
                )
            for key in video_keys:
                chunk = row.get(f"videos/{key}/chunk_index")
                if chunk is None:
                    continue
                rel = _format(
                    video_tpl,
                    {
                        "video_key": key,
                        "chunk_index": chunk,
                        "file_index": row[f"videos/{key}/file_index"],
                    },
                    root,
                )
                ep.videos[key] = (
                    rel,
                    float(row.get(f"videos/{key}/from_timestamp") or 0.0),
                )
            episodes.append(ep)
    stats = root / "meta" / "stats.json"
    if stats.is_file():
        meta_files.append(stats)
    return tasks, sorted(episodes, key=lambda e: e.index)


def _format(template: str, values: dict[str, Any], root: Path) -> str:
    try:
        return template.format(**values)
    except (KeyError, ValueError, IndexError) as err:
        msg = (
            f"{str(root / INFO_PATH)!r}: path template {template!r} cannot be filled "
            f"with {sorted(values)}: {err!r}"
        )
        raise ReaderError(msg) from err


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0-2, 5"``."""
    out: list[str] = []
    vals = sorted(values)
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ", ".join(out)


# --------------------------------------------------------------------------- columns


def _feature_names(feature: dict[str, Any]) -> list[str] | None:
    """The per-element names of a vector feature, in any of LeRobot's spellings."""
    names = feature.get("names")
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == 1 and isinstance(names[0], list):
        names = names[0]  # v2.1 writes [[...]]
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return [str(n) for n in names]
    return None


def _column_values(column: pa.ChunkedArray, n_rows: int) -> np.ndarray | None:
    """A Parquet column as a numpy array of shape (rows, ...); None if not numeric."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks()
    shape: list[int] = []
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        if arr.null_count:
            return None
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if lengths.size and np.any(lengths != lengths[0]):
            return None
        shape.append(int(lengths[0]) if lengths.size else 0)
        arr = pc.list_flatten(arr)
    if not (
        pa.types.is_integer(arr.type)
        or pa.types.is_floating(arr.type)
        or pa.types.is_boolean(arr.type)
    ):
        return None
    if arr.null_count:
        if pa.types.is_floating(arr.type):
            values = arr.to_numpy(zero_copy_only=False)
        else:
            values = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = arr.to_numpy(zero_copy_only=False)
    return values.reshape([n_rows, *shape])


def _vector_dims(
    key: str, values: np.ndarray, feature: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    if values.ndim == 1:
        return ["time"], {}
    names = _feature_names(feature)
    if values.ndim == 2 and names is not None and len(names) == values.shape[1]:
        if [n.lower() for n in names] == ["x", "y", "z"]:
            return ["time", "axis"], {"axis": ["x", "y", "z"]}
        return ["time", "joint"], {"joint": names}
    dims = ["time"] + [f"dim_{i}" for i in range(1, values.ndim)]
    return dims, {}


def _var_name(key: str) -> str:
    return key.rsplit(".", 1)[-1] or key


# --------------------------------------------------------------------------- reader


class LeRobotReader(ReaderEntrypoint):
    """LeRobot dataset folder (v2.0, v2.1, v3.0): one run per episode."""

    name: ClassVar[str] = "lerobot"
    description: ClassVar[str] = (
        "LeRobot dataset folder (meta/info.json; v2.0, v2.1, v3.0)"
    )
    url: ClassVar[str] = "https://github.com/huggingface/lerobot"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim a folder holding ``meta/info.json``."""
        return path.is_dir() and (path / INFO_PATH).is_file()

    def source_files(self, path: Path) -> list[Path]:
        """Every metadata, data and video file of the dataset."""
        files: set[Path] = set()
        for sub in ("meta", DATA_DIR, VIDEOS_DIR):
            folder = path / sub
            if folder.is_dir():
                files.update(p for p in folder.rglob("*") if p.is_file())
        return sorted(files)

    def read(
        self, path: Path, *, episodes: Sequence[int] | None = None
    ) -> Iterator[RunData]:
        """Yield one run per episode whose data file is present.

        Parameters
        ----------
        episodes
            Episode indices to read; all when ``None``. Asking for an episode the
            dataset does not declare raises :class:`ReaderError`.
        """
        root = Path(path)
        meta = _load_meta(root)
        wanted = meta.episodes
        if episodes is not None:
            declared = {e.index for e in meta.episodes}
            unknown = sorted({int(i) for i in episodes} - declared)
            if unknown:
                msg = (
                    f"{str(root)!r}: episodes {unknown} are not in the dataset; "
                    f"declared: {_ranges(sorted(declared))}"
                )
                raise ReaderError(msg)
            keep = {int(i) for i in episodes}
            wanted = [e for e in meta.episodes if e.index in keep]

        present: list[_Episode] = []
        missing: list[_Episode] = []
        for ep in wanted:
            if ep.data_file is not None and (root / ep.data_file).is_file():
                present.append(ep)
            else:
                missing.append(ep)
        if not present:
            msg = (
                f"{str(root)!r}: none of the {len(wanted)} episodes has its data file "
                f"(looked for e.g. {wanted[0].data_file if wanted else '-'})"
            )
            raise ReaderError(msg)
        missing_skipped = [
            {
                "topic": f"episode_{ep.index}",
                "reason": f"data file absent: {ep.data_file}",
                "count": ep.length if ep.length is not None else 0,
            }
            for ep in missing
        ]
        missing_idx = [ep.index for ep in missing]

        cache: dict[str, pa.Table] = {}
        rows_of: dict[str, np.ndarray] = {}
        for n, ep in enumerate(present):
            table = self._episode_table(meta, ep, cache, rows_of)
            run = self._episode_run(meta, ep, table)
            assert ep.data_file is not None
            run.source = str(meta.root / ep.data_file)
            run.size_bytes = episode_bytes(meta.root / ep.data_file, rows_of[ep.data_file]) + _video_bytes(meta, ep)
            run.extra["missing_episodes"] = missing_idx
            if n == 0:
                run.skipped[:0] = missing_skipped
            yield run
            if meta.version.startswith("v2"):
                cache.clear()

    # ----------------------------------------------------------------- helpers

    def _episode_table(
        self, meta: _Meta, ep: _Episode, cache: dict[str, pa.Table], rows_of: dict[str, np.ndarray]
    ) -> pa.Table:
        import pyarrow.compute as pc

        assert ep.data_file is not None
        if ep.data_file not in cache:
            cache.clear()
            cache[ep.data_file] = _read_parquet(meta.root / ep.data_file)
        table = cache[ep.data_file]
        rows_of.clear()
        rows_of[ep.data_file] = np.arange(table.num_rows)
        if "episode_index" in table.column_names:
            mask = pc.equal(table.column("episode_index"), ep.index)
            rows_of[ep.data_file] = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            table = table.filter(mask)
        if table.num_rows == 0:
            msg = f"{str(meta.root / ep.data_file)!r}: no rows for episode {ep.index}"
            raise ReaderError(msg)
        return table

    def _episode_run(self, meta: _Meta, ep: _Episode, table: pa.Table) -> RunData:
        import xarray as xr

        data_path = meta.root / ep.data_file if ep.data_file else meta.root
        n = table.num_rows
        if "timestamp" not in table.column_names:
            msg = f"{str(data_path)!r}: no 'timestamp' column; columns: {table.column_names}"
            raise ReaderError(msg)
        ts = _column_values(table.column("timestamp"), n)
        if ts is None or ts.ndim != 1 or not np.all(np.isfinite(ts)):
            msg = f"{str(data_path)!r}: 'timestamp' column of episode {ep.index} is not finite numbers"
            raise ReaderError(msg)
        ts_s = ts.astype(np.float64)
        time_ns = np.round(ts_s * 1e9).astype(np.int64)
        order = np.argsort(time_ns, kind="stable")
        reordered = bool(np.any(order != np.arange(n)))
        time_ns = time_ns[order]
        skipped: list[dict[str, Any]] = []
        streams: dict[str, xr.Dataset] = {}
        rel = ep.data_file or ""

        for key, feature in meta.features.items():
            dtype = feature.get("dtype")
            if key in _NOT_STREAMS or dtype == "video":
                continue
            if key not in table.column_names:
                skipped.append(
                    {
                        "topic": key,
                        "reason": "declared in info.json, absent from the data file",
                        "count": n,
                    }
                )
                continue
            values = _column_values(table.column(key), n)
            if values is None:
                reason = (
                    "image stored in Parquet (not decoded at ingest)"
                    if dtype == "image"
                    else f"non-numeric or ragged column ({table.schema.field(key).type})"
                )
                skipped.append({"topic": key, "reason": reason, "count": n})
                continue
            values = values[order]
            dims, coords = _vector_dims(key, values, feature)
            ds = xr.Dataset(
                {_var_name(key): (dims, values)},
                coords={
                    "time": ("time", time_ns),
                    **{d: (d, c) for d, c in coords.items()},
                },
                attrs={"source": rel, "feature": key},
            )
            streams[stream_name(key)] = ds
        # columns not declared as features are still data: keep the numeric ones
        for key in table.column_names:
            if key in meta.features or key in _NOT_STREAMS:
                continue
            values = _column_values(table.column(key), n)
            if values is None:
                skipped.append(
                    {
                        "topic": key,
                        "reason": f"undeclared non-numeric column ({table.schema.field(key).type})",
                        "count": n,
                    }
                )
                continue
            values = values[order]
            dims = ["time"] + [f"dim_{i}" for i in range(1, values.ndim)]
            streams[stream_name(key)] = xr.Dataset(
                {_var_name(key): (dims, values)},
                coords={"time": ("time", time_ns)},
                attrs={"source": rel, "feature": key},
            )

        frame_vars = {}
        for key in _BOOKKEEPING:
            if key in table.column_names:
                vals = _column_values(table.column(key), n)
                if vals is not None and vals.ndim == 1:
                    frame_vars[key] = ("time", vals[order])
        if frame_vars:
            streams[_FRAME_STREAM] = xr.Dataset(
                frame_vars, coords={"time": ("time", time_ns)}, attrs={"source": rel}
            )

        frame_index = (
            _column_values(table.column("frame_index"), n)[order]  # type: ignore[index]
            if "frame_index" in table.column_names
            else np.arange(n)
        )
        for key in meta.video_keys:
            if key not in ep.videos:
                skipped.append(
                    {
                        "topic": key,
                        "reason": "no video file recorded for this episode",
                        "count": n,
                    }
                )
                continue
            vrel, from_ts = ep.videos[key]
            if not (meta.root / vrel).is_file():
                skipped.append(
                    {"topic": key, "reason": f"video file absent: {vrel}", "count": n}
                )
                continue
            vinfo = meta.features[key].get("info") or {}
            attrs: dict[str, Any] = {
                "source": vrel,
                "kind": "video_ref",
                "path": vrel,
                "video_key": key,
                "from_timestamp": from_ts,
            }
            for src, dst in (
                ("video.codec", "codec"),
                ("video.pix_fmt", "pix_fmt"),
                ("video.height", "height"),
                ("video.width", "width"),
                ("video.fps", "fps"),
            ):
                if src in vinfo:
                    attrs[dst] = vinfo[src]
            video_time = from_ts + ts_s[order]
            ds = xr.Dataset(
                {
                    "frame_index": ("time", frame_index.astype(np.int64)),
                    "video_time": ("time", video_time),
                },
                coords={"time": ("time", time_ns)},
                attrs=attrs,
            )
            ds["video_time"].attrs["units"] = "s"
            streams[stream_name(key)] = ds

        if ep.length is not None and ep.length != n:
            skipped.append(
                {
                    "topic": f"episode_{ep.index}",
                    "reason": f"metadata declares {ep.length} frames, data file holds {n}",
                    "count": max(ep.length - n, 0),
                }
            )

        task_texts = list(ep.tasks)
        if not task_texts and "task_index" in table.column_names:
            for ti in np.unique(table.column("task_index").to_numpy()):
                if int(ti) in meta.tasks:
                    task_texts.append(meta.tasks[int(ti)])
        scenario: dict[str, Scalar] = {"episode": ep.index}
        if task_texts:
            scenario["task"] = task_texts[0]
            if len(task_texts) > 1:
                scenario["tasks"] = len(task_texts)
        split = _split_of(meta.info.get("splits"), ep.index)
        if split:
            scenario["split"] = split
        per_episode, left_out = scalar_factors(ep.metadata, reserved=scenario)
        scenario.update(per_episode)
        hardware: dict[str, Scalar] = {}
        if meta.info.get("robot_type"):
            hardware["robot"] = str(meta.info["robot_type"])
        extra: dict[str, Any] = {
            "codebase_version": meta.version,
            "fps": meta.fps,
            "episode_index": ep.index,
            "length": n,
            "data_file": rel,
            "clock": "episode",
            "total_episodes": meta.info.get("total_episodes"),
            "total_frames": meta.info.get("total_frames"),
            "tasks": task_texts,
        }
        if ep.metadata:
            extra["episode_metadata"] = ep.metadata
        if left_out:
            extra["episode_metadata_left_out"] = left_out
        if reordered:
            extra["reordered"] = (
                "timestamps were not sorted; rows were sorted by timestamp"
            )
        return RunData(
            key=f"episode_{ep.index}",
            factors={"hardware": hardware, "scenario": scenario},
            streams=streams,
            skipped=skipped,
            extra=extra,
            name=f"{meta.root.name} episode {ep.index}",
        )


def episode_bytes(path: Path, rows: np.ndarray) -> int:
    """The bytes of a Parquet file that hold *rows* (positions in the file).

    Each row group's compressed bytes are shared among its rows, and what lies outside
    the row groups (header, footer) among all rows of the file, so the episodes of a
    file add up to its size. One file per episode: the whole file.

    Examples
    --------
    >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> path = Path(tempfile.mkdtemp()) / "f.parquet"
    >>> pq.write_table(pa.table({"episode_index": [0] * 50 + [1] * 150}), path, row_group_size=100)
    >>> a, b = episode_bytes(path, np.arange(50)), episode_bytes(path, np.arange(50, 200))
    >>> a + b == path.stat().st_size, a < b
    (True, True)
    """
    import pyarrow.parquet as pq

    size = path.stat().st_size
    md = pq.ParquetFile(path).metadata
    total_rows = md.num_rows
    if total_rows == 0 or len(rows) == total_rows:
        return size if len(rows) == total_rows else 0
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    in_groups = 0
    share = 0.0
    lo = 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        nbytes = sum(rg.column(j).total_compressed_size for j in range(rg.num_columns))
        in_groups += nbytes
        hi = lo + rg.num_rows
        count = int(np.searchsorted(rows, hi) - np.searchsorted(rows, lo))
        if rg.num_rows:
            share += nbytes * count / rg.num_rows
        lo = hi
    share += max(size - in_groups, 0) * len(rows) / total_rows
    return round(share)


def _video_bytes(meta: _Meta, ep: _Episode) -> int:
    """The episode's share of its video files: a whole file of its own (v2), or its
    frames' share of a file it shares with other episodes (v3)."""
    total = 0
    for vrel, _from_ts in ep.videos.values():
        path = meta.root / vrel
        if not path.is_file():
            continue
        sharing = [e for e in meta.episodes if any(v == vrel for v, _ in e.videos.values())]
        frames = sum(e.length or 0 for e in sharing)
        if len(sharing) <= 1 or not frames:
            total += path.stat().st_size
        else:
            total += round(path.stat().st_size * (ep.length or 0) / frames)
    return total


def _split_of(splits: Any, index: int) -> str | None:
    if not isinstance(splits, dict):
        return None
    for name, spec in splits.items():
        m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(spec))
        if m and int(m.group(1)) <= index < int(m.group(2)):
            return str(name)
    return None


# --------------------------------------------------------------------------- video


def read_video_frame(
    dataset_path: str | Path, video_key: str, episode: int, frame_index: int
) -> np.ndarray:
    """Decode one video frame of an episode (RGB ``uint8`` array of shape (H, W, 3)).

    The frame is found by time: ``from_timestamp + frame_index / fps`` in the MP4 that
    holds the episode (v3.0 files hold many episodes back to back). The decoded frame
    whose presentation time is nearest is returned; a frame further than one frame
    period away raises :class:`ReaderError`.

    Parameters
    ----------
    dataset_path
        The dataset folder (holding ``meta/info.json``).
    video_key
        A video feature, e.g. ``"observation.images.cam_high"``.
    episode
        Episode index.
    frame_index
        Frame number inside the episode (0-based).
    """
    import av

    root = Path(dataset_path)
    meta = _load_meta(root)
    if video_key not in meta.video_keys:
        msg = f"{str(root)!r}: no video feature {video_key!r}; video features: {meta.video_keys}"
        raise ReaderError(msg)
    ep = meta.episode(int(episode))
    if ep.length is not None and not 0 <= frame_index < ep.length:
        msg = f"{str(root)!r}: episode {episode} has {ep.length} frames; frame {frame_index} is out of range"
        raise ReaderError(msg)
    if video_key not in ep.videos:
        msg = f"{str(root)!r}: episode {episode} records no file for {video_key!r}"
        raise ReaderError(msg)
    rel, from_ts = ep.videos[video_key]
    vpath = root / rel
    if not vpath.is_file():
        msg = f"{str(vpath)!r}: video file absent (episode {episode}, {video_key})"
        raise ReaderError(msg)
    vinfo = meta.features[video_key].get("info") or {}
    fps = float(vinfo.get("video.fps") or meta.fps)
    target = from_ts + frame_index / fps
    period = 1.0 / fps
    try:
        with av.open(str(vpath)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            if tb is None:
                msg = f"{str(vpath)!r}: video stream has no time base"
                raise ReaderError(msg)
            container.seek(
                max(math.floor(target / float(tb)), 0), stream=stream, backward=True
            )
            best: tuple[float, Any] | None = None
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                gap = abs(frame.time - target)
                if best is None or gap < best[0]:
                    best = (gap, frame)
                if frame.time > target + period:
                    break
            if best is None or best[0] > period:
                got = (
                    "no frame"
                    if best is None
                    else f"nearest frame at {best[1].time:.4f} s"
                )
                msg = f"{str(vpath)!r}: no frame near {target:.4f} s (frame {frame_index} of episode {episode}); {got}"
                raise ReaderError(msg)
            return np.asarray(best[1].to_ndarray(format="rgb24"))
    except av.FFmpegError as err:
        msg = f"{str(vpath)!r}: cannot decode video: {err}"
        raise ReaderError(msg) from err
