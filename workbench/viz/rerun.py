"""Synchronized multi-run replay in Rerun.

The Rerun viewer shows one recording at a time and does not sync timelines across
recordings (rerun-io/rerun#9766). Runs meant to be watched side by side are therefore
logged into **one** recording whose entity tree has one subtree per run, all on one
aligned timeline; :func:`log_run` writes a single run as its own recording.

Entity tree (``<label>`` is readable and unique, see :func:`run_labels`)::

    /runs/<label>/provenance                   static TextDocument (markdown) + AnyValues
    /runs/<label>/events                       TextLog, one row per event
    /runs/<label>/quality                      TextLog, one row per grading finding
    /runs/<label>/<stream>/<var>               Scalars, a (time,) variable
    /runs/<label>/<stream>/<var>/<component>   Scalars, one entity per joint/axis/quat component
    /runs/<label>/<stream>/<var>               BarChart, a (time, n) variable with n > 32
    /runs/<label>/<stream>/<var>               TextLog, a text variable (log lines, std_msgs/String,
                                               CSV text; a ``text`` variable with its level and node)
    /runs/<label>/<stream>                     EncodedImage (JPEG/PNG frames as stored) or Image
    /runs/<label>/<stream>                     AssetVideo (a LeRobot MP4, static) + VideoFrameReference
                                               per frame (decoded lazily by the viewer)
    /runs/<label>/tf/<parent>/…/<child>        Transform3D (translation + quaternion)

Per-series names: **one entity per component** (``…/joint_states/position/joint_2``),
each with a static ``SeriesLines`` name (the component). This is what lets an overlay
view plot the *same* signal of every run in one plot (its contents are the runs' entity
paths; a view override renames each line to its run's label and colours it), and it
keeps each entity's row count equal to the stream's length.

Timelines: ``aligned`` (duration; ``time − shift`` from :func:`workbench.sync.align_runs`,
so 0 is each run's anchor: its start or its first ``event:<kind>``) and ``log_time``
(timestamp; the run's original recorder clock). Everything is sent with
``send_columns`` (whole columns, one call per entity) on an explicit ``recording=``;
only static data (names, media types, provenance) goes through ``log(static=True)``.

Recording properties: the recording name (run labels), its start time (earliest run
start) and a ``workbench`` property (version, alignment, layout, run ids, labels,
shifts). :func:`log_run` also writes each factor group as a property
(``/__properties/hardware`` …), which :class:`workbench.io.rrd.RrdReader` reads back
as factors.

Examples
--------
>>> import workbench as wb  # doctest: +SKIP
>>> store = wb.open_store("workbench-store")  # doctest: +SKIP
>>> runs = [store.load(r, lazy=False) for r in store.runs()["run_id"][:3]]  # doctest: +SKIP
>>> log = wb.viz.rerun.log_runs(runs, align="event:grasp", out="three.rrd")  # doctest: +SKIP
>>> sorted(log.labels.values())  # doctest: +SKIP
['arm-a_bright_v1_s00', 'arm-b_dim_v2_s00', 'arm-b_dim_v2_s01']
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import uuid
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote

import numpy as np

from workbench.io.registry import TEXT_KINDS, text_variables
from workbench.model import FACTOR_GROUPS, ConfigError, Run, SchemaError
from workbench.net import LOOPBACK, free_port, is_loopback

if TYPE_CHECKING:
    import rerun as rr
    import rerun.blueprint as rrb
    import xarray as xr

    from workbench.quality import Grade
    from workbench.sync import RunAlignment

__all__ = [
    "ALIGNED_TIMELINE",
    "APPLICATION_ID",
    "ENTITY_ROOT",
    "LOG_TIMELINE",
    "Entity",
    "RerunLog",
    "ServedViewer",
    "build_blueprint",
    "log_run",
    "log_runs",
    "run_labels",
    "serve",
    "show",
]

ENTITY_ROOT = "/runs"
"""Every run's subtree lives under ``/runs/<label>``."""
ALIGNED_TIMELINE = "aligned"
"""Duration timeline shared by all runs (0 = each run's anchor)."""
AT_WINDOW_S = 2.0
"""Half-width (s) of the time selection a replay opened ``at`` a moment shows."""
LOG_TIMELINE = "log_time"
"""Timestamp timeline: each run's original recorder clock."""
APPLICATION_ID = "robotops-workbench"
LAYOUTS = ("side_by_side", "overlay")
MAX_SERIES = 32
"""A (time, n) variable with more components than this is one BarChart entity, not n series."""
KEY_VARIABLES = ("position", "force", "linear_acceleration", "angular_velocity")
"""Variables shown in each run's column and overlaid across runs, in this order of preference."""
MAX_KEY_SIGNALS = 2
MAX_OVERLAY_VIEWS = 9
_MEDIA_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png"}
_EVENT_LEVELS = {"failure": "ERROR", "estop": "ERROR", "drop": "ERROR", "slip": "WARN", "recovery": "WARN"}
_FINDING_LEVELS = {"error": "ERROR", "warning": "WARN", "info": "INFO"}
_PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
_LABEL_RE = re.compile(r"[^A-Za-z0-9_.\-]+")
_VERSION_SUFFIX_RE = re.compile(r"v\d+(?:\.\d+)*$")

Align = str | Mapping[str, int]
Layout = Literal["side_by_side", "overlay"]


def _rerun() -> Any:
    """Import rerun (offline notebook assets unless the user chose otherwise)."""
    os.environ.setdefault("RERUN_NOTEBOOK_ASSET", "inline")
    import rerun

    return rerun


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Entity:
    """One logged entity of a run.

    Attributes
    ----------
    path
        Full entity path (``/runs/<label>/joint_states/position/joint_2``).
    archetype
        ``Scalars``, ``BarChart``, ``EncodedImage``, ``Image``, ``AssetVideo``,
        ``Transform3D``, ``TextLog`` or ``TextDocument``.
    stream
        Source stream name (``""`` for events, quality findings and provenance).
    variable
        Source variable of the stream (``""`` for whole-stream entities; the video
        file's path for ``AssetVideo``).
    component
        Position along the variable's second dimension, ``None`` when it has none.
    rows
        Number of rows sent (the stream's length for stream entities).
    """

    path: str
    archetype: str
    stream: str = ""
    variable: str = ""
    component: int | None = None
    rows: int = 0


@dataclass
class _RunPlan:
    run: Run
    label: str
    root: str
    entities: list[Entity] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # (stream, var) → [(component name, path)] for scalar series
    signals: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    cameras: list[str] = field(default_factory=list)
    tf_root: str | None = None
    grade: Grade | None = None


@dataclass
class RerunLog:
    """What :func:`log_runs` wrote.

    Attributes
    ----------
    recording
        The recording stream (disconnected when :func:`log_runs` opened the file itself).
    path
        The ``.rrd`` written, or ``None``.
    labels
        Run id → label (its subtree is ``/runs/<label>``).
    alignment
        The time shifts used for the ``aligned`` timeline.
    entities
        Run id → every entity logged for it.
    skipped
        Run id → streams/variables not logged, each with ``stream`` and ``reason``.
    blueprint
        The blueprint sent with the recording.
    n_scalars
        Scalar samples sent (rows × components over all Scalars entities).
    n_frames
        Camera frames sent (EncodedImage, Image and VideoFrameReference rows).
    """

    recording: Any
    path: Path | None
    labels: dict[str, str]
    alignment: RunAlignment
    entities: dict[str, list[Entity]]
    skipped: dict[str, list[dict[str, str]]]
    blueprint: Any
    n_scalars: int = 0
    n_frames: int = 0

    def root(self, run_id: str) -> str:
        """Entity path of a run's subtree."""
        return f"{ENTITY_ROOT}/{self.labels[run_id]}"


def _sanitize(text: str) -> str:
    return _LABEL_RE.sub("-", text).strip("-.") or "run"


def _short(value: Any) -> str:
    text = str(value)
    m = _VERSION_SUFFIX_RE.search(text)
    if m and m.start() > 0 and text[m.start() - 1] in "-_. ":
        return m.group(0)
    return text


def run_labels(runs: Sequence[Run]) -> dict[str, str]:
    """Readable, unique, entity-path-safe labels for runs.

    The label joins the values of the factors every run has and that differ between
    them (hashes and values longer than 24 characters left out; ``policy-v2``
    shortened to ``v2``) and the
    scenario seed (``s03``). A single run, or runs whose factors do not differ, use the
    run's name (else its id). Duplicates get the run id's first 8 characters appended.

    Examples
    --------
    >>> from workbench.model import Run, RunInfo
    >>> def mk(i, robot, version, seed):
    ...     return Run(RunInfo(run_id=f"r{i}", hardware={"robot": robot},
    ...                        environment={"lighting": "dim"},
    ...                        model={"version": version}, scenario={"seed": seed}))
    >>> list(run_labels([mk(1, "arm-a", "policy-v1", 3), mk(2, "arm-b", "policy-v2", 3)]).values())
    ['arm-a_v1_s03', 'arm-b_v2_s03']
    """
    factors = [r.info.factors() for r in runs]
    keys: list[str] = []
    for f in factors:
        keys.extend(k for k in f if k not in keys)
    varying = [
        k
        for k in keys
        if k != "scenario.seed"
        and all(k in f for f in factors)
        and len({json.dumps(f.get(k), default=str) for f in factors}) > 1
        and all(len(str(f.get(k, ""))) <= 24 for f in factors)
    ]
    labels: dict[str, str] = {}
    for run, f in zip(runs, factors, strict=True):
        parts = [_short(f[k]) for k in varying if f.get(k) not in (None, "")]
        if parts or len(runs) > 1:
            seed = f.get("scenario.seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                parts.append(f"s{seed:02d}")
            elif seed not in (None, ""):
                parts.append(f"s{seed}")
        if not parts:
            parts = [run.info.name or run.run_id]
        labels[run.run_id] = _sanitize("_".join(str(p) for p in parts))
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    for rid, label in labels.items():
        if counts[label] > 1:
            labels[rid] = _sanitize(f"{label}_{rid[:8]}")
    return labels


def _part(rr: Any, text: Any) -> str:
    return str(rr.escape_entity_path_part(str(text)))


def _select_streams(runs: Sequence[Run], streams: Iterable[str] | None) -> list[str] | None:
    if streams is None:
        return None
    patterns = [streams] if isinstance(streams, str) else list(streams)
    available = sorted({name for r in runs for name in r.streams})
    for pat in patterns:
        if not any(fnmatch.fnmatchcase(n, pat) for n in available):
            msg = f"streams: {pat!r} matches no stream of these runs; streams: {', '.join(available) or 'none'}"
            raise ConfigError(msg)
    return patterns


def _wanted(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _is_transform(ds: xr.Dataset) -> bool:
    tr, rot = ds.data_vars.get("translation"), ds.data_vars.get("rotation")
    return (
        tr is not None
        and rot is not None
        and tr.ndim == 2
        and rot.ndim == 2
        and tr.shape[1] == 3
        and rot.shape[1] == 4
    )


def _tf_frames(run: Run, names: list[str]) -> dict[str, tuple[str, str]]:
    """Stream name → (parent frame, child frame) for the run's transform streams."""
    out: dict[str, tuple[str, str]] = {}
    for name in names:
        ds = run.streams[name]
        if not _is_transform(ds):
            continue
        child = str(ds.attrs.get("child_frame") or name.split(".", 1)[-1])
        parent = str(ds.attrs.get("parent_frame") or "")
        out[name] = (parent, child)
    return out


def _frame_paths(frames: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """Frame → its chain of frames from a root (``world → base_link → tool0``)."""
    parent_of = {child: parent for parent, child in frames.values()}
    chains: dict[str, list[str]] = {}
    for child in parent_of:
        chain, seen, node = [child], {child}, child
        while parent_of.get(node):
            node = parent_of[node]
            if node in seen:  # cycle: cut it
                break
            chain.append(node)
            seen.add(node)
        chains[child] = list(reversed(chain))
    return chains


def _plan_run(rr: Any, run: Run, label: str, patterns: list[str] | None) -> _RunPlan:
    root = f"{ENTITY_ROOT}/{label}"
    plan = _RunPlan(run=run, label=label, root=root)
    names = [n for n in run.streams if _wanted(n, patterns)]
    frames = _tf_frames(run, names)
    chains = _frame_paths(frames)
    if frames:
        plan.tf_root = f"{root}/tf"
    for name in names:
        ds = run.streams[name]
        n = int(ds.sizes.get("time", 0))
        kind = ds.attrs.get("kind")
        base = f"{root}/{_part(rr, name)}"
        if n == 0:
            plan.skipped.append({"stream": name, "reason": "no samples"})
            continue
        if kind == "image_encoded":
            if not {"data", "frame_offset", "frame_size"} <= set(ds.variables):
                plan.skipped.append({"stream": name, "reason": "encoded images without data/frame_offset/frame_size"})
                continue
            plan.entities.append(Entity(base, "EncodedImage", name, rows=n))
            plan.cameras.append(base)
            continue
        if kind == "image":
            var = next((v for v in ds.data_vars if ds[v].dims[:1] == ("time",) and ds[v].ndim in (3, 4)), None)
            if var is None:
                plan.skipped.append({"stream": name, "reason": "image stream without a (time, y, x[, channel]) variable"})
                continue
            plan.entities.append(Entity(base, "Image", name, str(var), rows=n))
            plan.cameras.append(base)
            continue
        if kind == "video_ref":
            video = _video_file(run, ds)
            if video is None:
                plan.skipped.append({"stream": name, "reason": f"video file {ds.attrs.get('path')!r} is not where it was "
                                     "ingested from"})
                continue
            if "video_time" not in ds:
                plan.skipped.append({"stream": name, "reason": "video reference without video_time"})
                continue
            # the MP4 as an asset, one frame reference per sample: the viewer decodes lazily
            plan.entities.append(Entity(base, "AssetVideo", name, str(video), rows=n))
            plan.cameras.append(base)
            continue
        if name in frames:
            _parent, child = frames[name]
            path = "/".join([f"{root}/tf", *(_part(rr, f) for f in chains[child])])
            plan.entities.append(Entity(path, "Transform3D", name, rows=1 if name.startswith("tf_static") else n))
            continue
        shown, _level = text_variables(ds)
        text_vars = {str(v) for v in ds.data_vars if ds[v].dims == ("time",) and ds[v].dtype.kind in TEXT_KINDS}
        for var in ds.data_vars:
            da = ds[var]
            vpath = f"{base}/{_part(rr, var)}"
            if da.dims[:1] != ("time",):
                plan.skipped.append({"stream": name, "variable": str(var), "reason": f"dims {da.dims} do not start with time"})
                continue
            if str(var) in text_vars:
                # text (log lines, std_msgs/String, CSV text): one text log entry per sample; a
                # stream with a ``text`` variable shows it, its level and node folded in
                if var in shown:
                    plan.entities.append(Entity(vpath, "TextLog", name, str(var), None, n))
                continue
            if da.dtype.kind not in "biuf":
                plan.skipped.append({"stream": name, "variable": str(var), "reason": f"{da.dtype} values are not numeric"})
                continue
            if da.ndim == 1:
                plan.entities.append(Entity(vpath, "Scalars", name, str(var), None, n))
                plan.signals[(name, str(var))] = [(str(var), vpath)]
            elif da.ndim == 2 and da.shape[1] <= MAX_SERIES:
                dim = da.dims[1]
                comps = (
                    [str(c) for c in ds[dim].values] if dim in ds.coords else [str(i) for i in range(da.shape[1])]
                )
                series = []
                for j, comp in enumerate(comps):
                    cpath = f"{vpath}/{_part(rr, comp)}"
                    plan.entities.append(Entity(cpath, "Scalars", name, str(var), j, n))
                    series.append((comp, cpath))
                plan.signals[(name, str(var))] = series
            elif da.ndim == 2:
                plan.entities.append(Entity(vpath, "BarChart", name, str(var), None, n))
            else:
                plan.skipped.append({"stream": name, "variable": str(var), "reason": f"{da.ndim}-d variable {da.dims} is not an image"})
    if run.events.height:
        plan.entities.append(Entity(f"{root}/events", "TextLog", rows=run.events.height))
    plan.entities.append(Entity(f"{root}/provenance", "TextDocument", rows=1))
    return plan


# --------------------------------------------------------------------------- blueprint


def _key_signals(plan: _RunPlan) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for var in KEY_VARIABLES:
        cands = [k for k in plan.signals if k[1] == var]
        cands.sort(key=lambda k: ("command" in k[0] or "setpoint" in k[0], k[0]))
        if cands:
            keys.append(cands[0])
        if len(keys) == MAX_KEY_SIGNALS:
            return keys
    for k in plan.signals:
        if len(keys) == MAX_KEY_SIGNALS:
            break
        if k not in keys:
            keys.append(k)
    return keys


def _color(i: int) -> list[int]:
    return list(_PALETTE[i % len(_PALETTE)])


def _overlay_views(rr: Any, rrb: Any, plans: list[_RunPlan]) -> list[Any]:
    """One time-series view per (signal, component): that component of every run."""
    if not plans:
        return []
    views: list[Any] = []
    for key in _key_signals(plans[0]):
        stream, var = key
        comps = [c for c, _ in plans[0].signals[key]]
        for comp in comps:
            if len(views) == MAX_OVERLAY_VIEWS:
                return views
            contents: list[str] = []
            overrides: dict[str, Any] = {}
            for i, plan in enumerate(plans):
                path = dict(plan.signals.get(key, [])).get(comp)
                if path is None:
                    continue
                contents.append(path)
                overrides[path] = rr.SeriesLines(names=plan.label, colors=[_color(i)])
            if not contents:
                continue
            title = f"{comp} {var}" if comp != var else f"{stream} {var}"
            views.append(rrb.TimeSeriesView(origin="/", contents=contents, name=title, overrides=overrides))
    return views


def _run_column(rrb: Any, plan: _RunPlan) -> Any:
    views: list[Any] = []
    if plan.cameras:
        views.append(rrb.Spatial2DView(origin=plan.cameras[0], name=f"{plan.label} · camera"))
    for stream, var in _key_signals(plan):
        views.append(
            rrb.TimeSeriesView(origin=f"{plan.root}/{stream}/{var}", name=f"{plan.label} · {stream}/{var}")
        )
    tabs: list[Any] = [
        rrb.TextLogView(
            origin=plan.root,
            contents=[f"{plan.root}/events", f"{plan.root}/quality"],
            name=f"{plan.label} · events",
        ),
        rrb.TextDocumentView(origin=f"{plan.root}/provenance", name=f"{plan.label} · provenance"),
    ]
    if plan.tf_root:
        tabs.append(rrb.Spatial3DView(origin=plan.tf_root, name=f"{plan.label} · tf"))
    views.append(rrb.Tabs(*tabs, name=f"{plan.label} · details"))
    return rrb.Vertical(*views, name=plan.label)


def build_blueprint(plans: Sequence[Any], layout: Layout = "side_by_side", *, at: float | None = None,
                    window: float = AT_WINDOW_S) -> rrb.Blueprint:
    """The viewer layout for planned runs.

    With *at* (seconds on the aligned timeline, e.g. a hit of ``workbench find``), the
    time panel opens with ``[at − window, at + window]`` selected and paused there.

    ``side_by_side``: one column per run (camera, key signals, TF, events) above a grid
    of overlay plots (each the same signal component of every run). ``overlay``: the
    overlay grid first, the cameras in a row beneath and all events in one log.
    """
    rr = _rerun()
    import rerun.blueprint as rrb

    if layout not in LAYOUTS:
        msg = f"layout={layout!r} is not valid; choose one of {list(LAYOUTS)}"
        raise ConfigError(msg)
    plans = list(plans)
    overlays = _overlay_views(rr, rrb, plans)
    parts: list[Any] = []
    if layout == "side_by_side":
        parts.append(rrb.Horizontal(*(_run_column(rrb, p) for p in plans), name="runs"))
        if overlays:
            parts.append(rrb.Grid(*overlays, name="overlay"))
        root = rrb.Vertical(*parts, row_shares=[3, 2] if overlays else None)
    else:
        if overlays:
            parts.append(rrb.Grid(*overlays, name="overlay"))
        cams = [
            rrb.Spatial2DView(origin=p.cameras[0], name=f"{p.label} · camera") for p in plans if p.cameras
        ]
        bottom: list[Any] = list(cams)
        bottom.append(
            rrb.TextLogView(
                origin=ENTITY_ROOT,
                contents=[f"{p.root}/events" for p in plans] + [f"{p.root}/quality" for p in plans],
                name="events · all runs",
            )
        )
        parts.append(rrb.Horizontal(*bottom, name="cameras & events"))
        root = rrb.Vertical(*parts, row_shares=[3, 1] if overlays else None)
    panel: dict[str, Any] = {"timeline": ALIGNED_TIMELINE, "state": "expanded"}
    if at is not None:
        lo, hi = int(round((at - window) * 1e9)), int(round((at + window) * 1e9))
        panel.update(time_selection=rrb.components.AbsoluteTimeRange(lo, hi), play_state="paused")
    return rrb.Blueprint(
        root,
        rrb.TimePanel(**panel),
        rrb.BlueprintPanel(state="collapsed"),
        rrb.SelectionPanel(state="collapsed"),
    )


# --------------------------------------------------------------------------- logging


def _times(ds: xr.Dataset) -> np.ndarray:
    t = np.asarray(ds["time"].values)
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").view(np.int64)
    return t.astype(np.int64, copy=False)


class _Index:
    """The two time columns of one stream (built once, shared by its entities)."""

    def __init__(self, rr: Any, t: np.ndarray, shift: int) -> None:
        self.columns = [
            rr.TimeColumn(ALIGNED_TIMELINE, duration=(t - shift).view("timedelta64[ns]")),
            rr.TimeColumn(LOG_TIMELINE, timestamp=t.view("datetime64[ns]")),
        ]


def _as_float(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    return arr


def _log_scalars(rr: Any, rec: Any, ds: xr.Dataset, ents: list[Entity], index: _Index) -> int:
    sent = 0
    by_var: dict[str, list[Entity]] = {}
    for e in ents:
        by_var.setdefault(e.variable, []).append(e)
    for var, group in by_var.items():
        values = _as_float(ds[var].values)
        if group[0].archetype == "BarChart":
            rr.send_columns(
                group[0].path,
                indexes=index.columns,
                columns=[_bar_chart_column(rr, values)],
                recording=rec,
                strict=True,
            )
            continue
        for e in group:
            col = values if e.component is None else values[:, e.component]
            rr.send_columns(
                e.path, indexes=index.columns, columns=rr.Scalars.columns(scalars=col), recording=rec, strict=True
            )
            rec.log(e.path, rr.SeriesLines(names=_leaf(e.path)), static=True, strict=True)
            sent += col.shape[0]
    return sent


def _leaf(path: str) -> str:
    return path.rsplit("/", 1)[-1].replace("\\", "")


class _Batch:
    """A ready Arrow array posing as a component batch (for :class:`rerun.ComponentColumn`)."""

    def __init__(self, array: Any, descriptor: Any) -> None:
        self._array = array
        self._descriptor = descriptor

    def as_arrow_array(self) -> Any:
        return self._array

    def component_descriptor(self) -> Any:
        return self._descriptor


def _bar_chart_column(rr: Any, values: np.ndarray) -> Any:
    """BarChart values for every row of a (time, n) array, built as one Arrow array.

    ``BarChart.columns`` treats a 2-D array as a single tensor, so the per-row
    ``TensorData`` structs (shape [n], F64 buffer) are assembled directly.
    """
    import pyarrow as pa

    n, k = values.shape
    typ = rr.BarChart(values[0]).as_component_batches()[0].as_arrow_array().type
    union_t = typ.field("buffer").type
    names = [union_t.field(i).name for i in range(union_t.num_fields)]
    children = [
        pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * k), pa.array(values.ravel()))
        if name == "F64"
        else pa.array([], type=union_t.field(i).type)
        for i, name in enumerate(names)
    ]
    code = union_t.type_codes[names.index("F64")]
    buffer = pa.UnionArray.from_dense(
        pa.array(np.full(n, code, dtype=np.int8)),
        pa.array(np.arange(n, dtype=np.int32)),
        children,
        names,
        list(union_t.type_codes),
    ).view(union_t)
    shape = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)), pa.array(np.full(n, k, dtype=np.uint64))
    ).view(typ.field("shape").type)
    tensors = pa.StructArray.from_arrays([shape, pa.nulls(n, typ.field("names").type), buffer], fields=list(typ))
    descriptor = rr.BarChart.descriptor_values()
    return rr.ComponentColumn(descriptor, _Batch(tensors, descriptor))


def _video_file(run: Run, ds: xr.Dataset) -> Path | None:
    """The video file a ``video_ref`` stream points to: the source file the run was
    ingested from whose path ends with the stream's relative path."""
    rel = str(ds.attrs.get("path") or "")
    if not rel:
        return None
    for src in run.info.provenance.sources:
        if Path(src.path).as_posix().endswith("/" + rel.lstrip("/")) and Path(src.path).is_file():
            return Path(src.path)
    return None


def _log_video(rr: Any, rec: Any, ds: xr.Dataset, e: Entity, index: _Index) -> int:
    """An MP4 logged once as an ``AssetVideo`` and each sample as a
    ``VideoFrameReference`` to its frame (the stream's ``video_time``, snapped to the
    nearest frame the file holds)."""
    video = rr.AssetVideo(path=e.variable)
    rec.log(e.path, video, static=True, strict=True)
    frames = np.asarray(video.read_frame_timestamps_nanos(), dtype=np.int64)
    wanted = np.round(_as_float(ds["video_time"].values) * 1e9).astype(np.int64)
    if frames.size:
        pos = np.clip(np.searchsorted(frames, wanted), 1, frames.size - 1) if frames.size > 1 else np.zeros_like(wanted)
        before = frames[np.maximum(pos - 1, 0)]
        after = frames[pos]
        wanted = np.where(np.abs(wanted - before) <= np.abs(after - wanted), before, after)
    rr.send_columns(e.path, indexes=index.columns, columns=rr.VideoFrameReference.columns_nanos(wanted),
                    recording=rec, strict=True)
    return int(wanted.size)


def _log_encoded(rr: Any, rec: Any, ds: xr.Dataset, e: Entity, index: _Index) -> int:
    data = np.ascontiguousarray(np.asarray(ds["data"].values, dtype=np.uint8))
    offsets = np.asarray(ds["frame_offset"].values, dtype=np.int64)
    sizes = np.asarray(ds["frame_size"].values, dtype=np.int64)
    if (offsets < 0).any() or (offsets + sizes > data.size).any():
        msg = f"stream {e.stream!r}: frame_offset/frame_size point outside the {data.size}-byte data"
        raise SchemaError(msg)
    # one zero-copy view per stored frame: the bytes are sent as stored, never decoded
    blobs = [data[o : o + s] for o, s in zip(offsets.tolist(), sizes.tolist(), strict=True)]
    fmt = str(ds.attrs.get("format", "")).lower()
    media = next((m for k, m in _MEDIA_TYPES.items() if k in fmt), None)
    if media is not None:
        rec.log(e.path, rr.EncodedImage.from_fields(media_type=media), static=True, strict=True)
    rr.send_columns(e.path, indexes=index.columns, columns=rr.EncodedImage.columns(blob=blobs), recording=rec, strict=True)
    return int(offsets.size)


_CHANNEL_TYPES = {
    np.dtype(np.uint8): "U8", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
    np.dtype(np.int8): "I8", np.dtype(np.int16): "I16", np.dtype(np.int32): "I32",
    np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
}


def _log_image(rr: Any, rec: Any, ds: xr.Dataset, e: Entity, index: _Index) -> int:
    arr = np.asarray(ds[e.variable].values)
    n, h, w = arr.shape[:3]
    channels = arr.shape[3] if arr.ndim == 4 else 1
    model = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    dtype = _CHANNEL_TYPES.get(arr.dtype)
    if model is None or dtype is None:
        msg = f"stream {e.stream!r}: cannot show {channels}-channel {arr.dtype} images"
        raise SchemaError(msg)
    fmt = rr.components.ImageFormat(width=w, height=h, color_model=model, channel_datatype=dtype)
    rec.log(e.path, rr.Image.from_fields(format=fmt), static=True, strict=True)
    buffer = np.ascontiguousarray(arr).view(np.uint8).reshape(n, -1)
    rr.send_columns(e.path, indexes=index.columns, columns=rr.Image.columns(buffer=buffer), recording=rec, strict=True)
    return n


def _ordered(ds: xr.Dataset, var: str, dim: str, labels: tuple[str, ...]) -> np.ndarray:
    da = ds[var]
    if dim in da.dims and dim in ds.coords and set(labels) <= {str(c) for c in ds[dim].values}:
        da = da.sel({dim: list(labels)})
    return _as_float(da.values)


def _log_transform(rr: Any, rec: Any, ds: xr.Dataset, e: Entity, index: _Index) -> int:
    tr = _ordered(ds, "translation", str(ds["translation"].dims[1]), ("x", "y", "z"))
    q = _ordered(ds, "rotation", str(ds["rotation"].dims[1]), ("x", "y", "z", "w"))
    norm = np.linalg.norm(q, axis=1)
    bad = ~np.isfinite(norm) | (norm < 1e-9)
    if bad.any():
        q = q.copy()
        q[bad] = (0.0, 0.0, 0.0, 1.0)
    if e.stream.startswith("tf_static"):
        rec.log(e.path, rr.Transform3D(translation=tr[-1], quaternion=q[-1]), static=True, strict=True)
    else:
        rr.send_columns(
            e.path,
            indexes=index.columns,
            columns=rr.Transform3D.columns(translation=tr, quaternion=q),
            recording=rec,
            strict=True,
        )
    rec.log(e.path, rr.TransformAxes3D(0.05, show_frame=True), static=True, strict=True)
    return int(tr.shape[0])


_TEXT_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN", "ERROR": "ERROR",
                "FATAL": "CRITICAL", "CRITICAL": "CRITICAL"}


def _log_text(rr: Any, rec: Any, ds: xr.Dataset, e: Entity, index: _Index) -> int:
    texts = ["" if v is None else str(v) for v in ds[e.variable].values.tolist()]
    if e.variable == "text" and "node" in ds and ds["node"].dtype.kind in TEXT_KINDS:
        texts = [f"[{n}] {t}" if n else t for n, t in zip(ds["node"].values.tolist(), texts, strict=True)]
    _shown, lv = text_variables(ds)
    levels = ["INFO"] * len(texts)
    if lv and e.variable == "text":
        levels = [_TEXT_LEVELS.get(str(x).upper(), "INFO") for x in ds[lv].values.tolist()]
    elif e.variable == "text" and "severity" in ds and ds["severity"].dtype.kind in "iuf":
        from workbench.io.loglevels import (
            normalize_level,  # MAVLink STATUSTEXT: syslog severities
        )

        levels = [_TEXT_LEVELS.get(str(normalize_level(int(x), "syslog")), "INFO") for x in ds["severity"].values.tolist()]
    rr.send_columns(e.path, indexes=index.columns, columns=rr.TextLog.columns(text=texts, level=levels),
                    recording=rec, strict=True)
    return len(texts)


def _log_events(rr: Any, rec: Any, plan: _RunPlan, shift: int) -> None:
    ev = plan.run.events
    if ev.height == 0:
        return
    t = ev["time"].to_numpy().astype(np.int64)
    texts, levels = [], []
    for kind, detail in zip(ev["kind"].to_list(), ev["detail"].to_list(), strict=True):
        extra = "" if detail in (None, "", "{}") else f" {detail}"
        texts.append(f"{kind}{extra}")
        levels.append(_EVENT_LEVELS.get(kind, "INFO"))
    rr.send_columns(
        f"{plan.root}/events",
        indexes=_Index(rr, t, shift).columns,
        columns=rr.TextLog.columns(text=texts, level=levels),
        recording=rec,
        strict=True,
    )


def _log_findings(rr: Any, rec: Any, plan: _RunPlan, shift: int) -> None:
    grade = plan.grade
    if grade is None or grade.findings is None or grade.findings.height == 0:
        return
    f = grade.findings
    start = plan.run.info.start_ns
    t = np.array([start if v is None else int(v) for v in f["start_ns"].to_list()], dtype=np.int64)
    texts = [
        f"[{sev}] {stream or 'run'}: {check} = {value:g} (threshold {thr:g}) {detail or ''}".rstrip()
        for sev, stream, check, value, thr, detail in zip(
            f["severity"].to_list(), f["stream"].to_list(), f["check"].to_list(),
            [float(v) if v is not None else math.nan for v in f["value"].to_list()],
            [float(v) if v is not None else math.nan for v in f["threshold"].to_list()],
            f["detail"].to_list(), strict=True,
        )
    ]
    levels = [_FINDING_LEVELS.get(s, "INFO") for s in f["severity"].to_list()]
    path = f"{plan.root}/quality"
    rr.send_columns(path, indexes=_Index(rr, t, shift).columns, columns=rr.TextLog.columns(text=texts, level=levels), recording=rec, strict=True)
    plan.entities.append(Entity(path, "TextLog", rows=len(texts)))


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns")) + "Z"


def _provenance(rr: Any, rec: Any, plan: _RunPlan, alignment: RunAlignment) -> None:
    info = plan.run.info
    prov = info.provenance
    grade = plan.grade
    shift = alignment.shifts[info.run_id]
    anchored = info.run_id not in alignment.missing
    lines = [f"# {plan.label}", "", f"run `{info.run_id}`" + (f" — {info.name}" if info.name else ""), ""]
    lines += ["| factor | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.factors().items()]
    if grade is not None:
        counts = grade.counts() if hasattr(grade, "counts") else {}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines += ["", f"**Data grade:** {grade.grade}" + (f" ({detail})" if detail else "")]
    else:
        lines += ["", "**Data grade:** not graded"]
    lines += [
        f"**Time span:** {_iso(info.start_ns)} → {_iso(info.end_ns)} ({info.duration_s:.3f} s)",
        f"**Aligned on:** {alignment.on}, aligned 0 = {_iso(shift)}"
        + ("" if anchored else " (event missing: aligned on the run's start)"),
        "",
        "## Sources",
        "",
        "| path | bytes | sha256 |",
        "|---|---|---|",
    ]
    lines += [f"| {s.path} | {s.size} | `{s.sha256}` |" for s in prov.sources]
    lines += [
        "",
        "## Reader",
        "",
        (
            f"{prov.reader} v{prov.reader_version}, options `{json.dumps(prov.options, sort_keys=True, default=str)}`; "
            f"workbench {prov.workbench_version}, ingested {prov.ingested_at}"
        ),
    ]
    if prov.key:
        lines.append(f"sub-run key: `{prov.key}`")
    not_logged = [*prov.skipped, *plan.skipped]
    if not_logged:
        lines += ["", "## Not shown", ""]
        for s in not_logged:
            what = s.get("stream") or s.get("topic") or "?"
            if s.get("variable"):
                what += f"/{s['variable']}"
            lines.append(f"- {what}: {s.get('reason', '')}")
    values: dict[str, Any] = {
        "run_id": info.run_id,
        "name": info.name,
        "label": plan.label,
        "grade": grade.grade if grade is not None else "",
        "reader": prov.reader,
        "reader_version": prov.reader_version,
        "workbench_version": prov.workbench_version,
        "source_paths": [s.path for s in prov.sources] or [""],
        "source_sha256": [s.sha256 for s in prov.sources] or [""],
        "source_sizes": [s.size for s in prov.sources] or [0],
        "start_ns": info.start_ns,
        "end_ns": info.end_ns,
        "aligned_on": alignment.on,
        "shift_ns": shift,
        "anchored": anchored,
    }
    for k, v in info.factors().items():
        values[k] = "" if v is None else v
    rec.log(
        f"{plan.root}/provenance",
        rr.TextDocument("\n".join(lines), media_type=rr.MediaType.MARKDOWN),
        rr.AnyValues(**values),
        static=True,
        strict=True,
    )


def _log_plan(rr: Any, rec: Any, plan: _RunPlan, alignment: RunAlignment) -> tuple[int, int]:
    run = plan.run
    shift = alignment.shifts[run.run_id]
    by_stream: dict[str, list[Entity]] = {}
    for e in plan.entities:
        if e.stream:
            by_stream.setdefault(e.stream, []).append(e)
    scalars = frames = 0
    for name, ents in by_stream.items():
        ds = run.streams[name]
        index = _Index(rr, _times(ds), shift)
        for e in [e for e in ents if e.archetype == "TextLog"]:
            _log_text(rr, rec, ds, e, index)
        ents = [e for e in ents if e.archetype != "TextLog"]
        if not ents:
            continue
        arch = ents[0].archetype
        if arch in ("Scalars", "BarChart"):
            scalars += _log_scalars(rr, rec, ds, ents, index)
        elif arch == "EncodedImage":
            frames += _log_encoded(rr, rec, ds, ents[0], index)
        elif arch == "AssetVideo":
            frames += _log_video(rr, rec, ds, ents[0], index)
        elif arch == "Image":
            frames += _log_image(rr, rec, ds, ents[0], index)
        elif arch == "Transform3D":
            _log_transform(rr, rec, ds, ents[0], index)
    _log_events(rr, rec, plan, shift)
    _log_findings(rr, rec, plan, shift)
    _provenance(rr, rec, plan, alignment)
    return scalars, frames


def _alignment(runs: Sequence[Run], align: Align) -> RunAlignment:
    from workbench.sync import align_runs

    if isinstance(align, str) and align.startswith("event:"):
        kind = align[len("event:") :]
        present = sorted({k for r in runs for k in r.events["kind"].to_list()})
        if kind not in present:
            msg = (
                f"align={align!r}: no run has a {kind!r} event; "
                f"event kinds present: {', '.join(present) if present else 'none'}"
            )
            raise ConfigError(msg)
    alignment = align_runs(runs, on=align)
    if alignment.missing:
        warnings.warn(
            f"align={align!r}: runs {list(alignment.missing)} lack the event and are aligned on their start",
            RuntimeWarning,
            stacklevel=3,
        )
    return alignment


def _grades(runs: Sequence[Run], grades: Mapping[str, Any] | None) -> dict[str, Any]:
    from workbench.quality import Grade, grade

    out: dict[str, Any] = {}
    for run in runs:
        if grades is None:
            out[run.run_id] = grade(run)
        elif run.run_id in grades:
            g = grades[run.run_id]
            if isinstance(g, str):
                import polars as pl

                g = Grade(run.run_id, g, pl.DataFrame(schema={"stream": pl.String, "check": pl.String, "severity": pl.String, "value": pl.Float64, "threshold": pl.Float64, "start_ns": pl.Int64, "end_ns": pl.Int64, "detail": pl.String}))
            out[run.run_id] = g
        else:
            out[run.run_id] = None
    return out


def _check_runs(runs: Sequence[Run] | Run) -> list[Run]:
    if isinstance(runs, Run):
        runs = [runs]
    runs = list(runs)
    if not runs:
        msg = "log_runs needs at least one run"
        raise ConfigError(msg)
    bad = [type(r).__name__ for r in runs if not isinstance(r, Run)]
    if bad:
        msg = f"log_runs takes workbench Run objects (store.load(run_id)), got {bad[0]}"
        raise ConfigError(msg)
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        msg = f"run(s) {dupes} given more than once"
        raise ConfigError(msg)
    return runs


def _recording_name(labels: dict[str, str]) -> str:
    names = list(labels.values())
    if len(names) == 1:
        return names[0]
    text = f"{len(names)} runs: " + " | ".join(names)
    return text if len(text) <= 120 else text[:117] + "…"


@dataclass
class _Prepared:
    runs: list[Run]
    alignment: RunAlignment
    labels: dict[str, str]
    plans: list[_RunPlan]
    blueprint: Any
    recording_id: str


def _prepare(
    runs: Sequence[Run] | Run,
    align: Align,
    layout: str,
    streams: Iterable[str] | None,
    grades: Mapping[str, Any] | None,
    at: float | None = None,
) -> _Prepared:
    rr = _rerun()
    if layout not in LAYOUTS:
        msg = f"layout={layout!r} is not valid; choose one of {list(LAYOUTS)}"
        raise ConfigError(msg)
    runs = _check_runs(runs)
    alignment = _alignment(runs, align)
    patterns = _select_streams(runs, streams)
    labels = run_labels(runs)
    plans = [_plan_run(rr, r, labels[r.run_id], patterns) for r in runs]
    for plan, g in zip(plans, _grades(runs, grades).values(), strict=True):
        plan.grade = g
    bp = build_blueprint(plans, layout, at=at)  # type: ignore[arg-type]
    key = json.dumps(
        {"runs": [r.run_id for r in runs], "align": alignment.shifts, "layout": layout, "streams": patterns, "at": at},
        sort_keys=True,
    )
    rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{APPLICATION_ID}:{key}"))
    return _Prepared(runs, alignment, labels, plans, bp, rid)


def _send(rr: Any, rec: Any, prep: _Prepared, layout: str, factors_as_properties: bool) -> tuple[int, int]:
    rec.send_recording_name(_recording_name(prep.labels))
    rec.send_recording_start_time_nanos(min(r.info.start_ns for r in prep.runs))
    from workbench._version import __version__

    rec.send_property(
        "workbench",
        rr.AnyValues(
            version=__version__,
            aligned_on=prep.alignment.on,
            layout=layout,
            run_ids=[r.run_id for r in prep.runs],
            labels=[prep.labels[r.run_id] for r in prep.runs],
            shifts_ns=[prep.alignment.shifts[r.run_id] for r in prep.runs],
        ),
    )
    if factors_as_properties:
        info = prep.runs[0].info
        for group in FACTOR_GROUPS:
            values = {k: str(v) for k, v in getattr(info, group).items() if v is not None}
            if values:
                rec.send_property(group, rr.AnyValues(**values))
    scalars = frames = 0
    for plan in prep.plans:
        s, f = _log_plan(rr, rec, plan, prep.alignment)
        scalars += s
        frames += f
    return scalars, frames


def _run(
    runs: Sequence[Run] | Run,
    *,
    align: Align,
    layout: str,
    out: str | os.PathLike[str] | None,
    recording: Any,
    streams: Iterable[str] | None,
    grades: Mapping[str, Any] | None,
    application_id: str,
    single: bool,
    at: float | None = None,
) -> RerunLog:
    rr = _rerun()
    prep = _prepare(runs, align, layout, streams, grades, at)
    own = recording is None
    rec = recording if recording is not None else rr.RecordingStream(application_id, recording_id=prep.recording_id)
    path = Path(out) if out is not None else None
    if path is not None:
        if path.suffix.lower() != ".rrd":
            msg = f"out={str(path)!r}: the file name must end in .rrd"
            raise ConfigError(msg)
        path.parent.mkdir(parents=True, exist_ok=True)
        rec.save(path, default_blueprint=prep.blueprint)
    else:
        rec.send_blueprint(prep.blueprint)
    try:
        scalars, frames = _send(rr, rec, prep, layout, single)
        rec.flush()
    finally:
        if path is not None and own:
            rec.disconnect()
    return RerunLog(
        recording=rec,
        path=path,
        labels=prep.labels,
        alignment=prep.alignment,
        entities={p.run.run_id: list(p.entities) for p in prep.plans},
        skipped={p.run.run_id: list(p.skipped) for p in prep.plans},
        blueprint=prep.blueprint,
        n_scalars=scalars,
        n_frames=frames,
    )


def log_runs(
    runs: Sequence[Run],
    *,
    align: Align = "start",
    layout: Layout = "side_by_side",
    out: str | os.PathLike[str] | None = None,
    recording: rr.RecordingStream | None = None,
    streams: Iterable[str] | None = None,
    grades: Mapping[str, Grade | str] | None = None,
    application_id: str = APPLICATION_ID,
    at: float | None = None,
) -> RerunLog:
    """Log runs into one Rerun recording, one subtree per run, on one aligned timeline.

    Parameters
    ----------
    runs
        The runs (``store.load(run_id)``); lazy streams are read once each.
    align
        ``"start"``, ``"event:<kind>"`` (each run's first such event is aligned time 0;
        a kind no run has raises :class:`~workbench.model.ConfigError` listing the kinds
        present) or a mapping run id → shift in ns. See :func:`workbench.sync.align_runs`.
    layout
        Blueprint: ``"side_by_side"`` (a column per run plus overlay plots) or
        ``"overlay"`` (overlay plots first).
    out
        Write the recording to this ``.rrd`` (with the blueprint). When ``None`` the
        data goes to *recording*'s sinks (or stays buffered in a new recording).
    recording
        Log into this recording stream instead of a new one (explicit, never the global one).
    streams
        Only streams whose names match these names or glob patterns (``"joint_*"``).
    grades
        Run id → :class:`~workbench.quality.Grade` (or a grade letter) shown in each
        run's provenance; ``None`` grades every run with :func:`workbench.quality.grade`.
    application_id
        Rerun application id of a new recording.
    at
        Open at this moment: seconds on the aligned timeline (from each run's anchor),
        shown as a selected window of ±:data:`AT_WINDOW_S` s.

    Returns
    -------
    RerunLog
        Labels, alignment, the entities written per run and sample counts.

    Examples
    --------
    >>> log = log_runs(runs, align="event:grasp", out="replay.rrd")  # doctest: +SKIP
    >>> log.root(runs[0].run_id)  # doctest: +SKIP
    '/runs/arm-b_dim_v2_s03'
    """
    return _run(
        runs, align=align, layout=layout, out=out, recording=recording, streams=streams,
        grades=grades, application_id=application_id, single=False, at=at,
    )


def log_run(
    run: Run,
    *,
    out: str | os.PathLike[str] | None = None,
    recording: rr.RecordingStream | None = None,
    streams: Iterable[str] | None = None,
    grade: Grade | str | None = None,
    application_id: str = APPLICATION_ID,
) -> RerunLog:
    """Log one run as its own recording (aligned on its start).

    Same entity tree as :func:`log_runs`; in addition the run's factor groups are
    recording properties (``/__properties/hardware`` …), so reading the ``.rrd`` back
    with ``workbench ingest`` recovers them.
    """
    return _run(
        [run], align="start", layout="side_by_side", out=out, recording=recording, streams=streams,
        grades=None if grade is None else {run.run_id: grade}, application_id=application_id, single=True,
    )


# --------------------------------------------------------------------------- viewers


def show(
    runs: Sequence[Run],
    *,
    align: Align = "start",
    layout: Layout = "side_by_side",
    streams: Iterable[str] | None = None,
    grades: Mapping[str, Grade | str] | None = None,
    width: int | Literal["auto"] | None = "auto",
    height: int | Literal["auto"] | None = 720,
    application_id: str = APPLICATION_ID,
) -> Any:
    """Show runs in a Rerun viewer embedded in the notebook (works offline).

    The viewer's assets are inlined (``RERUN_NOTEBOOK_ASSET=inline``, set before rerun
    is imported unless already set), so nothing is fetched from the internet. Returns
    the :class:`rerun.notebook.Viewer` widget; it renders when it is a cell's value.
    Needs the ``rerun-notebook`` package (``rerun-sdk[notebook]``).
    """
    rr = _rerun()
    try:
        from rerun.notebook import Viewer
    except ImportError as err:  # pragma: no cover - rerun-sdk always ships rerun.notebook
        msg = f"the notebook viewer needs rerun-sdk[notebook]: {err}"
        raise ConfigError(msg) from err
    prep = _prepare(runs, align, layout, streams, grades)
    rec = rr.RecordingStream(application_id, recording_id=prep.recording_id)
    try:
        viewer = Viewer(width=width, height=height, recording=rec, blueprint=prep.blueprint)
    except Exception as err:  # rerun raises its own RerunMissingDependencyError
        msg = f"cannot create the notebook viewer ({err}); install rerun-sdk[notebook]"
        raise ConfigError(msg) from err
    _send(rr, rec, prep, layout, len(prep.runs) == 1)
    rec.flush()
    return viewer


@dataclass
class ServedViewer:
    """A recording served to the bundled web viewer on this machine (see :func:`serve`).

    Attributes
    ----------
    url
        Page to open: ``http://127.0.0.1:<web_port>/?url=<grpc proxy url>``.
    grpc_url
        ``rerun+http://127.0.0.1:<grpc_port>/proxy`` (the native viewer connects here).
    log
        What was logged.
    process
        The ``rerun`` server process (gRPC + web viewer), stopped by :meth:`close`.
    """

    url: str
    grpc_url: str
    log: RerunLog
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Stop the gRPC and web viewer servers and remove the temporary recording."""
        if self.process is not None:
            _stop(self.process)
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _rerun_cli() -> str:
    """Path of the ``rerun`` executable shipped in rerun-sdk's wheel."""
    import importlib.util

    spec = importlib.util.find_spec("rerun_cli")
    if spec is not None and spec.origin is not None:
        exe = Path(spec.origin).parent / ("rerun.exe" if os.name == "nt" else "rerun")
        if exe.is_file():
            return str(exe)
    found = shutil.which("rerun")
    if found is None:
        msg = "cannot find the `rerun` executable shipped with rerun-sdk; reinstall rerun-sdk"
        raise ConfigError(msg)
    return found


def _wait_listening(proc: subprocess.Popen[bytes], host: str, ports: Sequence[int], timeout: float, log: Path) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            err = log.read_text(errors="replace") if log.is_file() else ""
            msg = f"the Rerun server exited with code {proc.returncode} before listening on {host}:{pending}: {err.strip()[-500:]}"
            raise ConfigError(msg)
        try:
            with socket.create_connection((host, pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                _stop(proc)
                msg = f"the Rerun server did not listen on {host}:{pending} within {timeout:.0f} s"
                raise ConfigError(msg) from None
            time.sleep(0.1)


def serve(
    runs: Sequence[Run],
    *,
    align: Align = "start",
    layout: Layout = "side_by_side",
    streams: Iterable[str] | None = None,
    grades: Mapping[str, Grade | str] | None = None,
    grpc_port: int | None = None,
    web_port: int | None = None,
    host: str = LOOPBACK,
    open_browser: bool = False,
    application_id: str = APPLICATION_ID,
    timeout: float = 60.0,
    at: float | None = None,
) -> ServedViewer:
    """Serve runs to the web viewer bundled in rerun-sdk, on this machine and offline.

    The runs are written to a temporary ``.rrd`` (with the blueprint) and served by the
    ``rerun`` executable of rerun-sdk (``--serve-web --bind 127.0.0.1``): its gRPC proxy
    and its web viewer page listen on loopback only, so nothing leaves this machine.
    Rerun's servers have no authentication, so an address other than loopback is
    refused; to share a replay, serve the app (``workbench serve --address … --token …``).

    Parameters
    ----------
    runs, align, layout, streams, grades
        As in :func:`log_runs`.
    grpc_port, web_port
        Ports of the gRPC data server and of the viewer page (``None``: free ports).
    host
        Address to listen on; must be a loopback address (``127.0.0.1``, ``::1``, ``localhost``).
    open_browser
        Open :attr:`ServedViewer.url` in the default browser.
    application_id
        Rerun application id of the recording.
    timeout
        Seconds to wait for the servers to listen.

    Returns
    -------
    ServedViewer
        The page address, the gRPC address and the server process; call
        :meth:`ServedViewer.close` (or use it as a context manager) to stop it.

    Raises
    ------
    ConfigError
        *host* is not a loopback address, or the server did not start.
    """
    if not is_loopback(host):
        msg = (f"host={host!r}: the Rerun replay listens on this machine only (127.0.0.1, ::1 or localhost); "
               "Rerun's servers have no authentication. To share it, serve the app with "
               "`workbench serve --address ADDRESS --token TOKEN`")
        raise ConfigError(msg)
    bind = "127.0.0.1" if host.strip().lower() == "localhost" else host.strip("[]")
    grpc_port = free_port(bind) if grpc_port is None else int(grpc_port)
    web_port = free_port(bind) if web_port is None else int(web_port)
    tmp = tempfile.TemporaryDirectory(prefix="workbench-replay-")
    try:
        rrd = Path(tmp.name) / "replay.rrd"
        log = log_runs(runs, align=align, layout=layout, out=rrd, streams=streams, grades=grades, at=at,
                       application_id=application_id)
        env = {**os.environ, "RERUN_TELEMETRY_ENABLED": "false"}
        with open(Path(tmp.name) / "server.log", "wb") as server_log:
            proc = subprocess.Popen(
                [_rerun_cli(), "--serve-web", "--bind", bind, "--port", str(grpc_port),
                 "--web-viewer-port", str(web_port), str(rrd)],
                stdin=subprocess.DEVNULL, stdout=server_log, stderr=subprocess.STDOUT, env=env,
            )
        _wait_listening(proc, bind, [grpc_port, web_port], timeout, Path(tmp.name) / "server.log")
    except BaseException:
        tmp.cleanup()
        raise
    netloc = f"[{bind}]" if ":" in bind else bind
    grpc_url = f"rerun+http://{netloc}:{grpc_port}/proxy"
    url = f"http://{netloc}:{web_port}/?url={quote(grpc_url, safe='')}"
    served = ServedViewer(url=url, grpc_url=grpc_url, log=log, process=proc, _tmp=tmp)
    weakref.finalize(served, _stop, proc)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    return served
