"""Selected runs or moments out as MCAP files, one per run or window.

A run read from an MCAP file is cut from that file: every message whose log time falls
in the window is copied with its original channel, schema (ROS 2 ``.msg``, ROS 1,
protobuf …) and encoding, and the file's metadata (factors) is kept, so the cut opens in
Foxglove, in the ``mcap`` tools and in this workbench like the original. Any other run
(a ROS 1 bag, a ULog, a CSV, a LeRobot episode) is written from its stored streams: one
channel per stream with a JSON schema, one JSON message per row (time as ``t_ns``),
readable by the ``mcap`` library and Foxglove. Each file's metadata record ``workbench``
holds the run id, the window and the source's sha256. ``selection.json`` and a dataset
card (``README.md``, :mod:`workbench.export_card`) sit beside the files.

Examples
--------
>>> from workbench.export_mcap import export_mcap                # doctest: +SKIP
>>> export_mcap(store, select(store, find="slip", window=2), "moments/")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from workbench.model import Run
    from workbench.selection import Selection
    from workbench.store import Store

__all__ = ["McapExport", "export_mcap"]


@dataclass
class McapExport:
    """The files written (one per run or window), how (``copied`` from the source MCAP
    or ``json`` from the stored streams), messages per file, runs left out with why."""

    out: Path
    files: list[Path] = field(default_factory=list)
    how: list[str] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        copied = sum(h == "copied" for h in self.how)
        return (f"wrote {len(self.files)} MCAP file(s) to {self.out} ({copied} cut from their source MCAP, "
                f"{len(self.files) - copied} from stored streams as JSON), {sum(self.messages):,} messages"
                + (f"; {len(self.left_out)} left out" if self.left_out else ""))


def _copy(src: Path, dst: Path, start: int, end: int, meta: dict[str, str]) -> int:
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    n = 0
    with open(src, "rb") as fh, open(dst, "wb") as out:
        reader = make_reader(fh)
        header = reader.get_header()
        writer = Writer(out, compression=CompressionType.ZSTD)
        writer.start(profile=header.profile, library=f"workbench export ({header.library})")
        for record in reader.iter_metadata():
            writer.add_metadata(record.name, dict(record.metadata))
        writer.add_metadata("workbench", meta)
        schema_ids: dict[int, int] = {}
        channel_ids: dict[int, int] = {}
        for schema, channel, message in reader.iter_messages(start_time=start, end_time=end + 1, log_time_order=True):
            if channel.id not in channel_ids:
                sid = 0
                if schema is not None:
                    if schema.id not in schema_ids:
                        schema_ids[schema.id] = writer.register_schema(schema.name, schema.encoding, schema.data)
                    sid = schema_ids[schema.id]
                channel_ids[channel.id] = writer.register_channel(channel.topic, channel.message_encoding, sid,
                                                                  dict(channel.metadata))
            writer.add_message(channel_ids[channel.id], message.log_time, message.data, message.publish_time, message.sequence)
            n += 1
        writer.finish()
    return n


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _from_streams(run: Run, dst: Path, start: int, end: int, meta: dict[str, str]) -> int:
    from mcap.writer import CompressionType, Writer

    n = 0
    with open(dst, "wb") as out:
        writer = Writer(out, compression=CompressionType.ZSTD)
        writer.start(profile="", library="workbench export")
        groups: dict[str, dict[str, str]] = {}
        for key, value in run.info.factors().items():
            group, _, name = str(key).partition(".")
            if name and value is not None:
                groups.setdefault(group, {})[name] = str(value)
        for group, values in sorted(groups.items()):
            writer.add_metadata(group, values)
        writer.add_metadata("workbench", meta)
        rows: list[tuple[int, int, bytes]] = []
        for name, ds in sorted(run.streams.items()):
            if "time" not in ds.dims or ds.attrs.get("kind") in ("image_encoded", "video_ref"):
                continue
            t = np.asarray(ds["time"].values)
            t = t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64)
            keep = np.flatnonzero((t >= start) & (t <= end))
            if keep.size == 0:
                continue
            timed = [v for v in ds.data_vars if ds[v].dims[:1] == ("time",)]
            part = ds[timed].isel(time=keep).load()
            props = {v: {"type": "array" if part[v].ndim > 1 else ("number" if part[v].dtype.kind in "fiub" else "string")}
                     for v in timed}
            schema = {"type": "object", "properties": {"t_ns": {"type": "integer"}, **props}}
            sid = writer.register_schema(name, "jsonschema", json.dumps(schema).encode())
            cid = writer.register_channel(f"/{name}", "json", sid)
            cols = {v: part[v].values for v in timed}
            for i, ti in enumerate(t[keep].tolist()):
                msg = {"t_ns": int(ti), **{v: _jsonable(cols[v][i]) for v in timed}}
                rows.append((int(ti), cid, json.dumps(msg, default=str).encode()))
        for ti, cid, data in sorted(rows, key=lambda r: r[0]):
            writer.add_message(cid, ti, data, ti)
            n += 1
        writer.finish()
    return n


def export_mcap(store: Store, selection: Selection, out: str | Path) -> McapExport:
    """One MCAP per run (or window) of *selection* in the folder *out* (see the module doc).

    Raises
    ------
    ConfigError
        A non-empty output folder or an empty selection.
    """
    from workbench.selection import export_target

    folder = export_target(selection, out)
    folder.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, int | None, int | None]]
    if selection.windows is not None:
        items = [(r, int(a), int(b)) for r, a, b in selection.windows.select("run_id", "start", "end").iter_rows()]
    else:
        items = [(r, None, None) for r in selection.run_ids]
    report = McapExport(folder)
    rows: list[dict[str, Any]] = []
    for k, (rid, w0, w1) in enumerate(items):
        info = store.info(rid)
        start = info.start_ns if w0 is None else max(info.start_ns, w0)
        end = info.end_ns if w1 is None else min(info.end_ns, w1)
        src = info.provenance.sources[0] if info.provenance.sources else None
        meta = {"run_id": rid, "name": info.name, "start_ns": str(start), "end_ns": str(end),
                "source": src.path if src else "", "source_sha256": src.sha256 if src else ""}
        stem = f"{info.name or rid}" + (f"_{k:03d}" if w0 is not None else "")
        dst = folder / f"{stem}.mcap"
        path = Path(src.path) if src else None
        if path is not None and path.suffix == ".mcap" and path.is_file() and info.provenance.reader in ("mcap", "rosbag2"):
            n = _copy(path, dst, start, end, meta)
            how = "copied"
        else:
            run = store.load(rid, lazy=True)
            n = _from_streams(run, dst, start, end, meta)
            how = "json"
        if n == 0:
            dst.unlink(missing_ok=True)
            report.left_out[rid] = "no message in the window"
            continue
        report.files.append(dst)
        report.how.append(how)
        report.messages.append(n)
        row = selection.catalog.filter(selection.catalog["run_id"] == rid)
        rows.append({"run_id": rid, "file": dst.name,
                     "grade": row["quality.grade"][0] if "quality.grade" in row.columns and row.height else None,
                     "outcome": (row["outcome"][0] if "outcome" in row.columns and row.height else None) or "unknown"})
    import polars as pl

    from workbench.export_card import write_card

    sel = selection.to_dict()
    sel["left_out"] = report.left_out
    (folder / "selection.json").write_text(json.dumps(sel, indent=1, default=str) + "\n")
    episodes = pl.DataFrame(rows, schema={"run_id": pl.String, "file": pl.String, "grade": pl.String, "outcome": pl.String})
    write_card(folder, selection, report, episodes, kind="mcap")
    return report
