"""The data model shared by every layer: errors, :class:`RunInfo`, :class:`Run`.

Time is int64 nanoseconds since the Unix epoch (UTC) everywhere. A stream is an
``xarray.Dataset`` with a ``time`` dimension whose coordinate holds the recorder's
clock (``log_time``); when the log also carries the sensor's own stamp it is kept
as the non-index coordinate ``header_time`` on the same dimension.

Examples
--------
>>> info = RunInfo(run_id="r1", hardware={"robot": "arm-a"}, start_ns=0, end_ns=10)
>>> RunInfo.from_json(info.to_json()) == info
True
>>> info.factors()["hardware.robot"]
'arm-a'
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = [
    "APPEND_DIMS",
    "EVENT_KINDS",
    "FACTOR_GROUPS",
    "ORIGIN_LOG",
    "OUTCOME_KINDS",
    "ConfigError",
    "Provenance",
    "ReaderError",
    "Run",
    "RunInfo",
    "SchemaError",
    "SourceFile",
    "StoreError",
    "WorkbenchError",
    "check_events",
    "concat_parts",
    "empty_events",
    "events_from_json",
    "json_safe",
    "parse_scalar",
    "resolve_outcome",
    "run_outcome",
    "stream_name",
]

FACTOR_GROUPS: tuple[str, ...] = ("hardware", "environment", "model", "scenario")
"""The four factor groups every run is described by."""

EVENT_KINDS: tuple[str, ...] = (
    "grasp",
    "slip",
    "recovery",
    "drop",
    "success",
    "failure",
    "estop",
)
"""Event kinds the built-in metrics understand (others are kept as they come)."""

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STREAM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_FACTOR_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")

Scalar = str | int | float | bool | None


# --------------------------------------------------------------------------- errors


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose."""


class ReaderError(WorkbenchError):
    """A log file cannot be read: unknown format, corrupt, truncated, mislabeled."""


class StoreError(WorkbenchError):
    """The run store cannot do what was asked (missing run, bad layout, I/O)."""


class SchemaError(WorkbenchError):
    """A value does not fit the data model (bad run id, factor, stream, event)."""


class ConfigError(WorkbenchError):
    """A user-supplied option, pattern or metadata file is malformed."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SourceFile:
    """One file a run was read from."""

    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if self.size < 0:
            msg = f"source file {self.path!r}: negative size {self.size}"
            raise SchemaError(msg)
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            msg = f"source file {self.path!r}: sha256 must be 64 hex digits, got {self.sha256!r}"
            raise SchemaError(msg)


@dataclass(frozen=True)
class Provenance:
    """Where a run came from and how it was read.

    Attributes
    ----------
    sources
        Every source file with its size and sha256.
    reader, reader_version
        The reader plugin that decoded the files.
    options
        The reader options (part of the run's content address).
    workbench_version
        Version of the workbench that ingested the run.
    ingested_at
        ISO 8601 UTC time of ingest.
    key
        Sub-run key inside the source (e.g. an episode index); ``""`` for one run per source.
    metadata
        Each factor value with the source it came from
        (``embedded``, ``workbench.yaml``, ``sidecar``, ``pattern``, ``meta``).
    overrides
        Factor values replaced by a later metadata source: key, old/new value and sources.
    skipped
        What could not be decoded, each with ``topic`` and ``reason``.
    extra
        Reader-specific facts (attachments, salvage, file header…).
    source, size_bytes
        The file holding this run's data and the bytes that are its share, when the
        input holds many runs (a LeRobot episode); ``""``/``None``: the first source
        and all their bytes.
    wall_clock_offset_ns, wall_clock
        Nanoseconds to add to the run's times for UTC, and where that came from (a
        ULog's GPS time, an HDF5 file's date and time), when the log's own clock is not
        wall-clock time; ``None``/``""`` otherwise.
    """

    sources: tuple[SourceFile, ...] = ()
    reader: str = ""
    reader_version: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    workbench_version: str = ""
    ingested_at: str = ""
    key: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    overrides: tuple[dict[str, Any], ...] = ()
    skipped: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    size_bytes: int | None = None
    wall_clock_offset_ns: int | None = None
    wall_clock: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        d = asdict(self)
        d["sources"] = [asdict(s) for s in self.sources]
        d["overrides"] = list(self.overrides)
        d["skipped"] = list(self.skipped)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["sources"] = tuple(SourceFile(**s) for s in d.get("sources", ()))
        d["overrides"] = tuple(d.get("overrides", ()))
        d["skipped"] = tuple(d.get("skipped", ()))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            msg = f"provenance has unknown fields {unknown}; valid: {sorted(known)}"
            raise SchemaError(msg)
        return cls(**d)


def _check_factors(group: str, values: dict[str, Any]) -> dict[str, Scalar]:
    if not isinstance(values, dict):
        msg = f"factor group {group!r} must be a mapping, got {type(values).__name__}"
        raise SchemaError(msg)
    out: dict[str, Scalar] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _FACTOR_KEY_RE.match(key):
            msg = (
                f"factor key {group}.{key!r} is not valid: use letters, digits, '_', '-' "
                "(dots separate nested keys)"
            )
            raise SchemaError(msg)
        if value is not None and not isinstance(value, str | int | float | bool):
            msg = (
                f"factor {group}.{key} must be a string, number or boolean, "
                f"got {type(value).__name__}: {value!r}"
            )
            raise SchemaError(msg)
        out[key] = value
    return out


@dataclass(frozen=True)
class RunInfo:
    """Identity, factors, provenance and time span of one run.

    Validated on construction and JSON round-trippable
    (:meth:`to_json` / :meth:`from_json`).
    """

    run_id: str
    hardware: dict[str, Scalar] = field(default_factory=dict)
    environment: dict[str, Scalar] = field(default_factory=dict)
    model: dict[str, Scalar] = field(default_factory=dict)
    scenario: dict[str, Scalar] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    start_ns: int = 0
    end_ns: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not _RUN_ID_RE.match(self.run_id):
            msg = (
                f"run_id {self.run_id!r} is not valid: 1-128 characters from "
                "letters, digits, '.', '_', '-', not starting with a punctuation mark"
            )
            raise SchemaError(msg)
        for group in FACTOR_GROUPS:
            object.__setattr__(self, group, _check_factors(group, getattr(self, group)))
        for name in ("start_ns", "end_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                msg = f"run {self.run_id}: {name} must be int nanoseconds, got {value!r}"
                raise SchemaError(msg)
        if self.end_ns < self.start_ns:
            msg = f"run {self.run_id}: end_ns {self.end_ns} is before start_ns {self.start_ns}"
            raise SchemaError(msg)
        if not isinstance(self.provenance, Provenance):
            msg = f"run {self.run_id}: provenance must be a Provenance"
            raise SchemaError(msg)

    @property
    def duration_s(self) -> float:
        """Length of the run in seconds."""
        return (self.end_ns - self.start_ns) / 1e9

    def factors(self) -> dict[str, Scalar]:
        """Flattened factors: ``{"hardware.robot": "arm-a", ...}``."""
        out: dict[str, Scalar] = {}
        for group in FACTOR_GROUPS:
            for key, value in getattr(self, group).items():
                out[f"{group}.{key}"] = value
        return out

    def with_factors(self, flat: dict[str, Scalar]) -> RunInfo:
        """Copy with flattened factors (``"group.key": value``) set."""
        groups = {g: dict(getattr(self, g)) for g in FACTOR_GROUPS}
        for dotted, value in flat.items():
            group, _, key = dotted.partition(".")
            if group not in groups or not key:
                msg = f"factor {dotted!r} must start with one of {list(FACTOR_GROUPS)}"
                raise SchemaError(msg)
            groups[group][key] = value
        return replace(self, **groups)  # type: ignore[arg-type]  # keys are FACTOR_GROUPS: dict fields

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return {
            "run_id": self.run_id,
            "name": self.name,
            **{g: dict(getattr(self, g)) for g in FACTOR_GROUPS},
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "provenance": self.provenance.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        """Inverse of :meth:`to_dict`; raises :class:`SchemaError` on bad input."""
        if not isinstance(d, dict):
            msg = f"run info must be a JSON object, got {type(d).__name__}"
            raise SchemaError(msg)
        known = {"run_id", "name", "start_ns", "end_ns", "provenance", *FACTOR_GROUPS}
        unknown = sorted(set(d) - known)
        if unknown:
            msg = f"run info has unknown fields {unknown}; valid: {sorted(known)}"
            raise SchemaError(msg)
        if "run_id" not in d:
            msg = "run info has no run_id"
            raise SchemaError(msg)
        kwargs = dict(d)
        kwargs["provenance"] = Provenance.from_dict(d.get("provenance", {}))
        return cls(**kwargs)

    def to_json(self) -> str:
        """JSON text (sorted keys, stable across processes)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunInfo:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            msg = f"run info is not valid JSON: {err}"
            raise SchemaError(msg) from err
        return cls.from_dict(data)


# --------------------------------------------------------------------------- names & events

_INT_RE = re.compile(r"^[-+]?\d{1,18}$")
_FLOAT_RE = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+\.?\d*[eE][-+]?\d+)$")


def parse_scalar(text: str) -> Scalar:
    """Interpret a metadata string: int, float, bool, null or the string itself.

    Only plain decimal forms convert, so ids like ``"0x1f"`` or 64-digit hashes stay text.

    >>> [parse_scalar(v) for v in ["3", "0.5", "true", "arm-a", "1e5x", ""]]
    [3, 0.5, True, 'arm-a', '1e5x', '']
    """
    t = text.strip()
    if _INT_RE.match(t) and not (len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0")):
        return int(t)
    if _FLOAT_RE.match(t):
        return float(t)
    if t.lower() in {"true", "false"}:
        return t.lower() == "true"
    if t.lower() in {"null", "none", "~"}:
        return None
    return text


def stream_name(topic: str) -> str:
    """Turn a topic or dataset path into a stream name usable as a file name.

    >>> stream_name("/wrist_camera/image_raw/compressed")
    'wrist_camera.image_raw.compressed'
    >>> stream_name("/joint_states")
    'joint_states'
    """
    name = topic.strip().strip("/").replace("/", ".")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    name = re.sub(r"^[.\-]+", "", name)
    if not name:
        name = "root"
    return name[:200]


def check_stream(name: str, ds: xr.Dataset) -> None:
    """Raise :class:`SchemaError` unless *ds* is a valid stream called *name*."""
    if not _STREAM_NAME_RE.match(name):
        msg = f"stream name {name!r} is not valid; use workbench.model.stream_name(topic)"
        raise SchemaError(msg)
    if "time" not in ds.dims:
        msg = f"stream {name!r} has no 'time' dimension (dims: {list(ds.dims)})"
        raise SchemaError(msg)
    t = ds["time"]
    if t.dtype.kind not in "iM":
        msg = f"stream {name!r}: time must be int64 ns or datetime64[ns], got {t.dtype}"
        raise SchemaError(msg)


_EVENT_SCHEMA = {"time": "Int64", "kind": "String", "detail": "String", "origin": "String"}
OUTCOME_KINDS = ("success", "failure")
"""Event kinds that decide a run's outcome."""
ORIGIN_LOG = "log"
"""Origin of the events a log holds itself (rules make ``rule:<name>`` and
``default:<format>.<name>``, people ``label``)."""


def empty_events() -> pl.DataFrame:
    """An events table with no rows and the standard schema."""
    import polars as pl

    return pl.DataFrame(
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String, "origin": pl.String}
    )


def events_from_json(
    times_ns: list[int] | Any, payloads: list[str | bytes], *, source: str = "/events"
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Parse event messages whose payload is a JSON object with a ``"kind"`` key.

    Returns the events table and a list of problems (one per unparseable payload).

    >>> ev, bad = events_from_json([5, 9], ['{"kind": "grasp"}', 'oops'])
    >>> ev["kind"].to_list(), len(bad)
    (['grasp'], 1)
    """
    import polars as pl

    rows_t: list[int] = []
    rows_k: list[str] = []
    rows_d: list[str] = []
    problems: list[dict[str, Any]] = []
    for t, payload in zip(times_ns, payloads, strict=True):
        try:
            obj = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problems.append({"topic": source, "time": int(t), "reason": f"not JSON: {err}"})
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            problems.append(
                {"topic": source, "time": int(t), "reason": "JSON object without a 'kind' string"}
            )
            continue
        kind = obj.pop("kind")
        rows_t.append(int(t))
        rows_k.append(kind)
        rows_d.append(json.dumps(obj, sort_keys=True))
    df = pl.DataFrame(
        {"time": rows_t, "kind": rows_k, "detail": rows_d},
        schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String},
    )
    return df.sort("time", maintain_order=True), problems


def check_events(events: pl.DataFrame) -> pl.DataFrame:
    """Validate an events table; returns it with columns in standard order.

    A table without an ``origin`` column gets ``origin = "log"`` (the log's own events).
    """
    import polars as pl

    missing = [c for c in _EVENT_SCHEMA if c not in events.columns and c != "origin"]
    if missing:
        msg = f"events table lacks columns {missing}; expected {list(_EVENT_SCHEMA)}"
        raise SchemaError(msg)
    if "origin" not in events.columns:
        events = events.with_columns(pl.lit(ORIGIN_LOG, dtype=pl.String).alias("origin"))
    want = {"time": pl.Int64, "kind": pl.String, "detail": pl.String, "origin": pl.String}
    schema = events.schema
    for col, dtype in want.items():
        if schema[col] != dtype:
            msg = f"events column {col!r} must be {dtype}, got {schema[col]}"
            raise SchemaError(msg)
    return events if events.columns == list(want) else events.select(list(want))


def _tier(origin: str | None) -> int:
    """Who decides an outcome: a person's label (2) beats a user's rule (1) beats the
    log and the format defaults (0)."""
    if origin == "label":
        return 2
    if origin is not None and origin.startswith("rule:"):
        return 1
    return 0


def resolve_outcome(events: pl.DataFrame) -> tuple[str | None, int | None, str | None]:
    """``(outcome, time_ns, origin)`` of a run from its events.

    Labels beat rules, rules beat the log (and the format defaults); within the
    deciding tier the last ``success``/``failure`` event wins. A label ``unknown``
    makes the outcome unknown whatever the rules say; no outcome event at all is
    unknown too (``None``), never a failure.

    >>> import polars as pl
    >>> ev = pl.DataFrame({"time": [1, 2, 3], "kind": ["failure", "success", "failure"],
    ...                    "detail": ["{}"] * 3, "origin": ["log", "log", "rule:outcome"]})
    >>> resolve_outcome(ev)
    ('failure', 3, 'rule:outcome')
    """
    import polars as pl

    deciding = {*OUTCOME_KINDS, "unknown"}
    origins_all = events["origin"].to_list() if "origin" in events.columns else [ORIGIN_LOG] * events.height
    if events.height <= 10_000:  # most runs: a few events, read as lists (no query to plan)
        picked = sorted(
            ((t, k, o) for t, k, o in zip(events["time"].to_list(), events["kind"].to_list(), origins_all, strict=True)
             if k in deciding),
            key=lambda row: (row[0] is not None, row[0] or 0),  # as polars sorts: missing times first
        )
    else:
        with_origin = events if "origin" in events.columns else events.with_columns(pl.lit(ORIGIN_LOG).alias("origin"))
        ends = with_origin.filter(pl.col("kind").is_in(sorted(deciding))).sort("time", maintain_order=True)
        picked = list(zip(ends["time"].to_list(), ends["kind"].to_list(), ends["origin"].to_list(), strict=True))
    if not picked:
        return None, None, None
    times = [int(t) for t, _k, _o in picked]
    kinds = [k for _t, k, _o in picked]
    origins = [o for _t, _k, o in picked]
    tiers = [_tier(o) for o in origins]
    best = max(t for t, k in zip(tiers, kinds, strict=True) if k != "unknown" or t == 2) if any(
        k != "unknown" or t == 2 for t, k in zip(tiers, kinds, strict=True)) else None
    if best is None:
        return None, None, None
    rows = [i for i, (t, k) in enumerate(zip(tiers, kinds, strict=True)) if t == best and (k != "unknown" or t == 2)]
    i = rows[-1]
    kind = kinds[i]
    return (None if kind == "unknown" else str(kind)), times[i], str(origins[i])


def run_outcome(events: pl.DataFrame) -> str | None:
    """``"success"``/``"failure"`` (see :func:`resolve_outcome`), ``None`` when unknown.

    >>> import polars as pl
    >>> ev = pl.DataFrame({"time": [1, 2], "kind": ["failure", "success"], "detail": ["{}", "{}"]})
    >>> run_outcome(ev)
    'success'
    """
    return resolve_outcome(events)[0]


# --------------------------------------------------------------------------- run


@dataclass
class Run:
    """One run: its :class:`RunInfo`, its streams and its events.

    Attributes
    ----------
    info
        Identity, factors, provenance, time span.
    streams
        One ``xarray.Dataset`` per topic/sensor, each with a ``time`` dimension.
    events
        ``polars.DataFrame`` with columns ``time`` (int64 ns), ``kind``, ``detail`` (JSON text).
    """

    info: RunInfo
    streams: dict[str, xr.Dataset] = field(default_factory=dict)
    events: pl.DataFrame = field(default_factory=empty_events)

    def __post_init__(self) -> None:
        for name, ds in self.streams.items():
            check_stream(name, ds)
        self.events = check_events(self.events)

    @property
    def run_id(self) -> str:
        """Shortcut for ``info.run_id``."""
        return self.info.run_id

    @property
    def outcome(self) -> str | None:
        """``"success"``, ``"failure"`` or ``None`` (unknown), from the events."""
        return run_outcome(self.events)

    def __repr__(self) -> str:
        streams = ", ".join(f"{k}[{v.sizes.get('time', 0)}]" for k, v in self.streams.items())
        return (
            f"Run({self.info.run_id!r}, {self.info.duration_s:.2f} s, "
            f"streams: {streams or '-'}, events: {self.events.height})"
        )


def json_safe(value: Any) -> Any:
    """*value* as plain JSON types: dict keys as text, tuples as lists, numpy scalars
    and arrays as numbers and lists, anything else as its text.

    Examples
    --------
    >>> import numpy as np
    >>> json_safe({1: (np.float32(0.5), np.arange(2)), "t": object}) == {"1": [0.5, [0, 1]], "t": "<class 'object'>"}
    True
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


APPEND_DIMS = ("time", "byte")
"""Dimensions along which a stream grows when its parts are joined (``byte`` for raw blobs)."""


def concat_parts(parts: list[xr.Dataset]) -> xr.Dataset:
    """Join parts of one stream along ``time`` (outer join of other dims), sorted by time.

    Variables whose first dimension is another of :data:`APPEND_DIMS` (``byte``) are
    concatenated along it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.Dataset({"v": ("time", [1.0, 2.0])}, coords={"time": [10, 30]})
    >>> b = xr.Dataset({"v": ("time", [3.0])}, coords={"time": [20]})
    >>> concat_parts([a, b])["v"].values.tolist()
    [1.0, 3.0, 2.0]
    """
    import numpy as np
    import xarray as xr

    if len(parts) == 1:
        return parts[0]
    other = [
        str(n) for n, v in parts[0].variables.items() if v.dims[:1] and v.dims[0] in APPEND_DIMS[1:]
    ]
    ds = xr.concat(
        [p.drop_vars(other, errors="ignore") for p in parts] if other else parts,
        dim="time",
        join="outer",
        data_vars="all",
        coords="different",
        compat="equals",
        combine_attrs="drop_conflicts",
    )
    for name in other:
        dim = parts[0][name].dims[0]
        ds[name] = xr.concat([p[name] for p in parts if name in p.variables], dim=dim)
    t = np.asarray(ds["time"].values)
    if len(t) > 1 and bool(np.any(t[1:] < t[:-1])):
        ds = ds.isel(time=np.argsort(t, kind="stable"))
    return ds
