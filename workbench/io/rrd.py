"""Rerun recordings (``.rrd``) → one run per recording, read with rerun-sdk's own reader.

Chunks are streamed with ``rerun.chunk.RrdReader(path).stream()`` (the only reader in
rerun-sdk 0.41 that also handles legacy files without a footer) and turned into Arrow
record batches.

What a run holds
----------------
* Time series become streams: an entity's ``Scalars`` (any component of type
  ``rerun.components.Scalar``) and numeric untyped components (``AnyValues``) on a
  timeline. The stream is named after the entity path (``/robot/joint0`` →
  ``robot.joint0``); the variable is ``scalars`` (or the component name), with a second
  dimension ``channel`` when a row holds several values (its coordinate is the entity's
  ``SeriesLines``/``SeriesPoints`` names when those are logged). When an entity's
  components do not share rows, each gets its own stream ``<entity>.<component>``.
* The timeline: the ``timeline`` option, else (first in name order) a timestamp timeline
  of the user's, else a duration timeline, else the automatic ``log_time``, else a
  sequence timeline of the user's, else ``log_tick``.
  Timestamps are UTC ns; durations are ns from 0; sequence values are put in the
  ``time`` coordinate unchanged (ticks, not ns). ``extra["timeline"]`` and each stream's
  ``attrs["timeline"]``/``attrs["timeline_kind"]`` say which was used.
* Everything else (meshes, transforms, images, points, static data …) is not converted:
  one ``skipped`` entry per entity and archetype, with the row count;
  ``extra["entities"]`` summarises every entity.
* Recording properties: ``RecordingInfo`` (name, start time) → ``extra["recording_info"]``;
  a property entity named after a factor group (``/__properties/hardware`` with
  component ``robot``) → that factor; other properties → ``extra["properties"]``.
* Files Rerun can no longer read (written before 0.23, or truncated/corrupt) raise
  :class:`ReaderError` naming the file, the writer version from the header when known,
  and the SDK version.

Examples
--------
>>> from pathlib import Path
>>> RrdReader().guess_can_open(Path("scene.rrd"))
False
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.io.registry import ReaderEntrypoint, RunData
from workbench.model import (
    FACTOR_GROUPS,
    ReaderError,
    Scalar,
    parse_scalar,
    stream_name,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr

__all__ = ["OLDEST_READABLE", "RRD_MAGIC_PREFIX", "RrdReader", "rrd_writer_version"]

RRD_MAGIC_PREFIX = b"RRF"
"""An .rrd file starts with ``RRF0``/``RRF1``/``RRF2`` then the writer's version bytes."""
OLDEST_READABLE = (0, 23)
"""Files written by Rerun older than this cannot be read by rerun-sdk 0.41."""
PROPERTIES_ENTITY = "/__properties"
SCALAR_COMPONENT_TYPE = "rerun.components.Scalar"
SERIES_NAME_COMPONENTS = ("SeriesLines:names", "SeriesPoints:names")


def rrd_writer_version(path: Path) -> str | None:
    """The Rerun version that wrote *path*, from its header (``"0.23.1"``), or ``None``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if len(head) < 8 or not head.startswith(RRD_MAGIC_PREFIX):
        return None
    return f"{head[4]}.{head[5]}.{head[6]}"


@dataclass
class _Series:
    """Rows of one (entity, component) on the chosen timeline."""

    times: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Entity:
    archetypes: dict[str, int] = field(default_factory=dict)  # archetype → rows
    timelines: set[str] = field(default_factory=set)
    static_rows: int = 0
    series: dict[str, _Series] = field(default_factory=dict)
    names: list[str] | None = None


def _meta(f: pa.Field) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}


def _numeric_list(col: pa.Array) -> np.ndarray | None:
    """A list<number> column as (rows, width) float64; None if ragged or not numeric."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        return None
    inner = col.type.value_type
    if not (
        pa.types.is_integer(inner)
        or pa.types.is_floating(inner)
        or pa.types.is_boolean(inner)
    ):
        return None
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    widths = np.unique(lengths[valid]) if valid.any() else np.array([1])
    if widths.size != 1:
        return None
    width = int(widths[0])
    out = np.full((len(col), width), np.nan)
    flat = pc.list_flatten(col).cast(pa.float64()).to_numpy(zero_copy_only=False)
    out[valid] = flat.reshape(-1, width) if width else np.empty((int(valid.sum()), 0))
    return out


class RrdReader(ReaderEntrypoint):
    """Rerun recording (.rrd): scalar time series → streams; one run per recording."""

    name: ClassVar[str] = "rrd"
    description: ClassVar[str] = "Rerun recording (.rrd, Rerun >= 0.23)"
    url: ClassVar[str] = "https://rerun.io/docs/reference/sdk/operating-modes#save"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim ``.rrd`` files and files starting with ``RRF``."""
        if not path.is_file():
            return False
        if path.suffix.lower() == ".rrd":
            return True
        with open(path, "rb") as fh:
            return fh.read(3) == RRD_MAGIC_PREFIX

    def read(self, path: Path, *, timeline: str | None = None) -> Iterator[RunData]:
        """Yield one run per recording store in *path*.

        Parameters
        ----------
        timeline
            Timeline giving the time axis; chosen automatically when ``None``
            (see the module docs). A name no time series uses raises :class:`ReaderError`.
        """
        import rerun
        import rerun.chunk as rc

        p = str(path)
        try:
            with open(path, "rb") as fh:
                head = fh.read(8)
        except OSError as err:
            msg = f"{p!r}: cannot open: {err}"
            raise ReaderError(msg) from err
        if not head.startswith(RRD_MAGIC_PREFIX):
            msg = f"{p!r}: not a Rerun .rrd file (starts with {head[:4]!r}, expected 'RRF2')"
            raise ReaderError(msg)
        writer = rrd_writer_version(path)
        sdk = rerun.__version__
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as wlist:
                warnings.simplefilter("always")
                reader = rc.RrdReader(path)
                stores = reader.recordings()
                blueprints = len(reader.blueprints())
                runs = [
                    self._read_store(
                        reader, store, path, timeline, multi=len(stores) > 1
                    )
                    for store in stores
                ]
            caught = [str(w.message) for w in wlist]
        except (RuntimeError, ValueError, OSError) as err:
            msg = f"{p!r}: rerun-sdk {sdk} cannot read this .rrd"
            if writer is not None:
                msg += f" (written by Rerun {writer})"
                if tuple(int(x) for x in writer.split(".")[:2]) < OLDEST_READABLE:
                    msg += "; files written before Rerun 0.23 are no longer readable"
            msg += f": {err}"
            raise ReaderError(msg) from err
        if not runs:
            msg = f"{p!r}: the .rrd holds no recording (only {blueprints} blueprint(s))"
            raise ReaderError(msg)
        for run in runs:
            run.extra["writer_version"] = writer
            run.extra["sdk_version"] = sdk
            run.extra["blueprints"] = blueprints
            if caught:
                run.extra["warnings"] = caught
            yield run

    # ----------------------------------------------------------------- one recording

    def _read_store(
        self, reader: Any, store: Any, path: Path, timeline: str | None, *, multi: bool
    ) -> RunData:
        import pyarrow as pa

        entities: dict[str, _Entity] = {}
        timeline_kinds: dict[str, str] = {}
        batches: list[tuple[str, pa.RecordBatch]] = []
        properties: dict[str, dict[str, Any]] = {}
        for chunk in reader.stream(store=store):
            rb = chunk.to_record_batch()
            entity = chunk.entity_path
            if entity == PROPERTIES_ENTITY or entity.startswith(
                PROPERTIES_ENTITY + "/"
            ):
                _collect_properties(entity, rb, properties)
                continue
            ent = entities.setdefault(entity, _Entity())
            for f in rb.schema:
                m = _meta(f)
                if m.get("rerun:kind") == "index":
                    timeline_kinds[f.name] = (
                        "timestamp"
                        if pa.types.is_timestamp(f.type)
                        else "duration"
                        if pa.types.is_duration(f.type)
                        else "sequence"
                    )
            if chunk.is_static:
                ent.static_rows += chunk.num_rows
                for f in rb.schema:
                    m = _meta(f)
                    if m.get("rerun:component") in SERIES_NAME_COMPONENTS:
                        names = rb.column(f.name).to_pylist()
                        if names and names[-1]:
                            ent.names = [str(x) for x in names[-1]]
            ent.timelines.update(chunk.timeline_names)
            archs = {
                _meta(f).get("rerun:archetype", "")
                for f in rb.schema
                if _meta(f).get("rerun:kind") == "data"
            }
            for a in archs:
                ent.archetypes[a or "(untyped)"] = (
                    ent.archetypes.get(a or "(untyped)", 0) + chunk.num_rows
                )
            if not chunk.is_static:
                batches.append((entity, rb))

        chosen, kind = _choose_timeline(batches, timeline_kinds, timeline, path)
        skipped: list[dict[str, Any]] = []
        if chosen is not None:
            for entity, rb in batches:
                if chosen not in rb.schema.names:
                    continue
                idx = rb.column(chosen)
                present = ~np.asarray(
                    idx.is_null().to_numpy(zero_copy_only=False), dtype=bool
                )
                t = idx.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
                for f in rb.schema:
                    m = _meta(f)
                    if m.get("rerun:kind") != "data":
                        continue
                    is_scalar = m.get("rerun:component_type") == SCALAR_COMPONENT_TYPE
                    untyped = not m.get("rerun:archetype")
                    if not (is_scalar or untyped):
                        continue
                    values = _numeric_list(rb.column(f.name))
                    if values is None:
                        if is_scalar:
                            skipped.append(
                                {
                                    "topic": f"{entity}:{f.name}",
                                    "reason": "scalar rows of varying length",
                                    "count": rb.num_rows,
                                }
                            )
                        continue
                    comp = m.get("rerun:component", f.name)
                    s = entities[entity].series.setdefault(comp, _Series())
                    s.times.append(t[present])
                    s.values.append(values[present])

        streams = _streams(entities, chosen or "", kind or "", path)
        for entity, ent in sorted(entities.items()):
            converted = set()
            if any(
                stream_name(entity) == k or k.startswith(stream_name(entity) + ".")
                for k in streams
            ):
                converted = {
                    a
                    for a in ent.archetypes
                    if a
                    in (
                        "rerun.archetypes.Scalars",
                        "rerun.archetypes.Scalar",
                        "(untyped)",
                    )
                }
            for arch, rows in sorted(ent.archetypes.items()):
                if arch in converted:
                    continue
                what = (
                    "static data"
                    if ent.static_rows and not ent.timelines
                    else "not a scalar time series"
                )
                if (
                    arch
                    in ("rerun.archetypes.SeriesLines", "rerun.archetypes.SeriesPoints")
                    and converted
                ):
                    continue  # styling of a converted series (names are used as coordinates)
                skipped.append(
                    {
                        "topic": entity,
                        "reason": f"{arch}: {what} (not converted)",
                        "count": rows,
                    }
                )

        factors, info, other = _split_properties(properties)
        extra: dict[str, Any] = {
            "recording_id": store.recording_id,
            "application_id": store.application_id,
            "timeline": {"name": chosen, "kind": kind},
            "timelines": dict(sorted(timeline_kinds.items())),
            "entities": {
                e: {
                    "archetypes": dict(sorted(v.archetypes.items())),
                    "timelines": sorted(v.timelines),
                    "static_rows": v.static_rows,
                }
                for e, v in sorted(entities.items())
            },
        }
        if info:
            extra["recording_info"] = info
        if other:
            extra["properties"] = other
        if kind == "timestamp":
            extra["clock"] = "utc"
        elif kind:
            extra["clock"] = kind
        return RunData(
            key=f"recording_{store.recording_id}" if multi else "",
            factors=factors,
            streams=streams,
            skipped=skipped,
            extra=extra,
            name=str(info.get("name") or path.stem),
        )


def _choose_timeline(
    batches: list[tuple[str, pa.RecordBatch]],
    kinds: dict[str, str],
    wanted: str | None,
    path: Path,
) -> tuple[str | None, str | None]:
    used: set[str] = set()
    for _, rb in batches:
        has_series = any(
            _meta(f).get("rerun:kind") == "data"
            and (
                _meta(f).get("rerun:component_type") == SCALAR_COMPONENT_TYPE
                or not _meta(f).get("rerun:archetype")
            )
            for f in rb.schema
        )
        if has_series:
            used.update(n for n in rb.schema.names if n in kinds)
    if wanted is not None:
        if wanted not in used:
            msg = f"{str(path)!r}: no time series on timeline {wanted!r}; timelines with series: {sorted(used) or 'none'}"
            raise ReaderError(msg)
        return wanted, kinds[wanted]
    order = (
        sorted(n for n in used if kinds[n] == "timestamp" and n != "log_time")
        + sorted(n for n in used if kinds[n] == "duration")
        + (["log_time"] if "log_time" in used else [])
        + sorted(n for n in used if kinds[n] == "sequence" and n != "log_tick")
        + (["log_tick"] if "log_tick" in used else [])
    )
    if not order:
        return None, None
    return order[0], kinds[order[0]]


def _streams(
    entities: dict[str, _Entity], timeline: str, kind: str, path: Path
) -> dict[str, xr.Dataset]:
    import xarray as xr

    out: dict[str, xr.Dataset] = {}
    for entity, ent in sorted(entities.items()):
        if not ent.series:
            continue
        merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for comp, s in ent.series.items():
            t = np.concatenate(s.times).astype(np.int64)
            widths = {v.shape[1] for v in s.values}
            if len(widths) != 1:
                continue
            v = np.concatenate(s.values, axis=0)
            order = np.argsort(t, kind="stable")
            merged[comp] = (t[order], v[order])
        if not merged:
            continue
        times = [t for t, _ in merged.values()]
        shared = all(np.array_equal(times[0], t) for t in times[1:])
        groups = (
            [(stream_name(entity), merged)]
            if shared
            else [
                (f"{stream_name(entity)}.{stream_name(_var(c))}", {c: merged[c]})
                for c in merged
            ]
        )
        for name, comps in groups:
            t0 = next(iter(comps.values()))[0]
            data_vars: dict[str, Any] = {}
            coords: dict[str, Any] = {"time": ("time", t0)}
            for comp, (_, v) in comps.items():
                var = _var(comp)
                if v.shape[1] == 1:
                    data_vars[var] = ("time", v[:, 0])
                else:
                    dim = "channel" if len(comps) == 1 else f"{var}_channel"
                    data_vars[var] = (("time", dim), v)
                    if ent.names and len(ent.names) == v.shape[1]:
                        coords[dim] = (dim, ent.names)
            ds = xr.Dataset(
                data_vars,
                coords=coords,
                attrs={
                    "source": path.name,
                    "entity": entity,
                    "timeline": timeline,
                    "timeline_kind": kind,
                },
            )
            if kind == "sequence":
                ds["time"].attrs["units"] = "ticks"
            out[name] = ds
    return out


def _var(component: str) -> str:
    name = component.split(":")[-1]
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "value"


def _collect_properties(
    entity: str, rb: pa.RecordBatch, into: dict[str, dict[str, Any]]
) -> None:
    key = entity[len(PROPERTIES_ENTITY) :].strip("/") or "recording"
    bucket = into.setdefault(key, {})
    for f in rb.schema:
        m = _meta(f)
        if m.get("rerun:kind") != "data":
            continue
        values = rb.column(f.name).to_pylist()
        last = next((v for v in reversed(values) if v is not None), None)
        if isinstance(last, list) and len(last) == 1:
            last = last[0]
        bucket[m.get("rerun:component", f.name)] = last


def _split_properties(
    props: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Scalar]], dict[str, Any], dict[str, Any]]:
    factors: dict[str, dict[str, Scalar]] = {}
    info: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, comps in props.items():
        if key == "recording":
            for comp, value in comps.items():
                info[comp.split(":")[-1]] = value
        elif key in FACTOR_GROUPS:
            for comp, value in comps.items():
                fkey = comp.split(":")[-1]
                if isinstance(value, str):
                    factors.setdefault(key, {})[fkey] = parse_scalar(value)
                elif isinstance(value, bool | int | float):
                    factors.setdefault(key, {})[fkey] = value
                else:
                    other.setdefault(key, {})[fkey] = value
        else:
            other[key] = {c.split(":")[-1]: v for c, v in comps.items()}
    return factors, info, other
