"""The run store: a directory (local or any fsspec URL) of runs and a derived catalog.

Layout (paths are constants below)::

    <store>/
      catalog.parquet                 derived index, rebuilt from manifests
      runs/<run_id>/run.json          RunInfo + stream list (the manifest)
      runs/<run_id>/streams/<name>.zarr
      runs/<run_id>/events.parquet
      runs/<run_id>/annotations/<section>.json   grades, metrics (optional)
      sources/<source_key>.json       which runs a source file produced
      .tmp/                           runs being written (never read as runs)

Guarantees:

* run ids are content addresses (source bytes + reader + options + key inside the
  source): ingesting the same log twice is a no-op reported as ``present``;
* a run is written into ``.tmp/`` and renamed into ``runs/`` in one step, manifest
  last, so a crash never leaves a half-written run visible;
* several processes may ingest into one local store at once: the catalog is updated
  under a file lock and reconciled with ``runs/`` whenever they disagree.

Examples
--------
>>> import workbench as wb
>>> store = wb.open_store("memory://doc-store")
>>> len(store)
0
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import hashlib
import inspect
import json
import re
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._version import __version__
from workbench.io.registry import RunData, check_options, get_reader, guess_reader
from workbench.metadata import (
    FactorLayers,
    PathPattern,
    folder_configs,
    is_metadata_file,
    load_factor_file,
    parse_meta,
    sidecar_paths,
)
from workbench.model import (
    FACTOR_GROUPS,
    ConfigError,
    Provenance,
    ReaderError,
    Run,
    RunInfo,
    Scalar,
    SchemaError,
    SourceFile,
    StoreError,
    WorkbenchError,
    check_events,
    check_stream,
    run_outcome,
)

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = [
    "ANNOTATIONS_DIR",
    "DERIVED_EVENTS",
    "EVENTS_SECTION",
    "LABELS_SECTION",
    "MARKS_SECTION",
    "OUTCOME_SECTION",
    "RULES_DIR",
    "CATALOG_PATH",
    "DEFAULT_STORE",
    "EVENTS_NAME",
    "MANIFEST_NAME",
    "RUNS_DIR",
    "SOURCES_DIR",
    "STREAMS_DIR",
    "TMP_DIR",
    "FactorUpdate",
    "IngestReport",
    "Store",
    "default_store_path",
    "open_store",
]

CATALOG_PATH = "catalog.parquet"
RUNS_DIR = "runs"
MANIFEST_NAME = "run.json"
STREAMS_DIR = "streams"
EVENTS_NAME = "events.parquet"
ANNOTATIONS_DIR = "annotations"
DERIVED_EVENTS = "derived_events"
"""Annotation table of the events rules made (``annotations/derived_events.parquet``)."""
EVENTS_SECTION = "events"
"""Annotation section: which rules made the derived events (hash, counts, missing)."""
OUTCOME_SECTION = "outcome"
"""Annotation section: the resolved outcome, its time and its source."""
LABELS_SECTION = "labels"
"""Annotation section: a person's label of the run (outcome, reason, who, when)."""
MARKS_SECTION = "marks"
"""Annotation section of the time windows people marked as events (``Store.mark``)."""
RULES_DIR = "rules"
COMPARISONS_DIR = "comparisons"
"""Store-level folder of the rule sets applied (``rules/<hash>.yaml``)."""
SOURCES_DIR = "sources"
TMP_DIR = ".tmp"
PENDING_DIR = ".pending"
"""Markers of annotation writes not yet reflected in the catalog (repaired after a crash)."""
LOCK_NAME = ".lock"
DEFAULT_STORE = "./workbench-store"
ADDRESS_NEUTRAL_OPTIONS = frozenset({"salvage"})
"""Reader options that do not change what a complete file reads as (not part of run ids)."""
MANIFEST_FORMAT = 1
_CHUNK_BYTES = 8 * 1024 * 1024
_BASE_COLUMNS = (
    "run_id",
    "name",
    "outcome",
    "start",
    "start_clock",
    "duration_s",
    "n_streams",
    "n_events",
    "n_skipped",
    "salvaged",
    "reader",
    "format_version",
    "fps",
    "source",
    "size_bytes",
    "ingested_at",
    "start_ns",
    "end_ns",
    "outcome_ns",
)


def default_store_path() -> str:
    """``$WORKBENCH_STORE`` when set, else ``./workbench-store``."""
    return os.environ.get("WORKBENCH_STORE") or DEFAULT_STORE


def open_store(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
    """Open (and by default create) the store at *path*.

    Parameters
    ----------
    path
        A local folder or an fsspec URL (``file://``, ``memory://``, ``s3://`` …);
        default :func:`default_store_path`.
    create
        Create the store when it does not exist; otherwise raise :class:`StoreError`.
    """
    return Store(path if path is not None else default_store_path(), create=create)


# --------------------------------------------------------------------------- report


@dataclass
class IngestReport:
    """What an ingest did: runs written, runs already present, failures, skipped files."""

    ingested: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    events: Any = None
    """The :class:`workbench.events.ApplyReport` of the rules applied to the new runs."""
    events_error: str | None = None
    """Why the configured rules could not be applied (the runs stay ingested)."""

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``workbench ingest --json`` output)."""
        return {
            "ingested": list(self.ingested),
            "present": list(self.present),
            "failed": list(self.failed),
            "skipped": list(self.skipped),
            "warnings": list(self.warnings),
            "events": self.events.to_dict() if self.events is not None else None,
            "events_error": self.events_error,
        }

    def __str__(self) -> str:
        return (
            f"{len(self.ingested)} ingested, {len(self.present)} already present, "
            f"{len(self.failed)} failed, {len(self.skipped)} skipped"
        )


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path, bufsize: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _span(streams: dict[str, xr.Dataset], events: pl.DataFrame) -> tuple[int, int]:
    import numpy as np

    lo: list[int] = []
    hi: list[int] = []
    for ds in streams.values():
        if ds.sizes.get("time", 0):
            t = np.asarray(ds["time"].values)
            if t.dtype.kind == "M":
                t = t.astype("datetime64[ns]").astype(np.int64)
            lo.append(int(t.min()))
            hi.append(int(t.max()))
    if events.height:
        lo.append(int(events["time"].min()))  # type: ignore[arg-type]
        hi.append(int(events["time"].max()))  # type: ignore[arg-type]
    if not lo:
        return 0, 0
    return min(lo), max(hi)


def _outcome_time(events: pl.DataFrame) -> int | None:
    import polars as pl

    ends = events.filter(pl.col("kind").is_in(["success", "failure"]))
    return int(ends["time"].max()) if ends.height else None  # type: ignore[arg-type]


def _column_values(values: list[Any]) -> tuple[list[Any], Any]:
    """Pick one polars dtype for a catalog column; mixed types become strings."""
    import polars as pl

    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return values, pl.String
    if kinds == {bool}:
        return values, pl.Boolean
    if kinds == {int}:
        return values, pl.Int64
    if kinds <= {int, float}:
        return [None if v is None else float(v) for v in values], pl.Float64
    if kinds == {str}:
        return values, pl.String
    return [None if v is None else str(v) for v in values], pl.String


def _rows_to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    import polars as pl

    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    data = {}
    for col in columns:
        values, dtype = _column_values([row.get(col) for row in rows])
        if col == "start":
            data[col] = pl.Series(col, values, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
        else:
            data[col] = pl.Series(col, values, dtype=dtype)
    return _finalize(pl.DataFrame(data) if data else pl.DataFrame())


def _finalize(df: pl.DataFrame) -> pl.DataFrame:
    """Canonical column order and row order; empty catalogs keep the base columns."""
    import polars as pl

    if df.width == 0 or df.height == 0:  # every empty catalog has the same schema
        return pl.DataFrame(
            {
                "run_id": pl.Series([], dtype=pl.String),
                "name": pl.Series([], dtype=pl.String),
                "outcome": pl.Series([], dtype=pl.String),
                "start": pl.Series([], dtype=pl.Datetime("ns", "UTC")),
                "duration_s": pl.Series([], dtype=pl.Float64),
            }
        )
    null_cols = [c for c, t in df.schema.items() if t == pl.Null]
    if null_cols:
        df = df.with_columns(pl.col(null_cols).cast(pl.String))
    base = [c for c in _BASE_COLUMNS if c in df.columns]
    factors = sorted(c for c in df.columns if c.split(".", 1)[0] in FACTOR_GROUPS)
    rest = sorted(set(df.columns) - set(base) - set(factors))
    return df.select(base + factors + rest).sort("run_id")


def _typed_nulls(a: pl.DataFrame, b: pl.DataFrame) -> list[pl.DataFrame]:
    """*a* and *b* with a column that is all null (typed String by :func:`_finalize`) on
    one side cast to the other side's type, so that values arriving later (a metric
    of runs that had none) keep their own type instead of becoming text."""
    import polars as pl

    fixes: tuple[list[pl.Expr], list[pl.Expr]] = ([], [])
    for col in set(a.columns) & set(b.columns):
        ta, tb = a.schema[col], b.schema[col]
        if ta == tb:
            continue
        if ta == pl.String and a[col].null_count() == a.height:
            fixes[0].append(pl.col(col).cast(tb))
        elif tb == pl.String and b[col].null_count() == b.height:
            fixes[1].append(pl.col(col).cast(ta))
    return [df.with_columns(fix) if fix else df for df, fix in zip((a, b), fixes, strict=True)]


def _catalog_row(manifest: dict[str, Any], annotations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    info = RunInfo.from_dict(manifest["info"])
    prov = info.provenance
    start, start_clock = wall_clock_start(info)
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "name": info.name,
        "outcome": manifest.get("outcome"),
        "outcome_ns": manifest.get("outcome_ns"),
        "start": start,
        "duration_s": info.duration_s,
        "n_streams": len(manifest.get("streams", {})),
        "n_events": int(manifest.get("n_events", 0)),
        "n_skipped": len(prov.skipped),
        "salvaged": bool(prov.extra.get("salvaged")),
        "start_clock": start_clock,
        "reader": prov.reader,
        "format_version": _format_version(prov.extra),
        "fps": _fps(prov.extra),
        "source": prov.source or (prov.sources[0].path if prov.sources else ""),
        "size_bytes": prov.size_bytes if prov.size_bytes is not None else sum(s.size for s in prov.sources),
        "ingested_at": prov.ingested_at,
        "start_ns": info.start_ns,
        "end_ns": info.end_ns,
    }
    row.update(info.factors())
    for section, values in sorted(annotations.items()):
        if section == OUTCOME_SECTION:  # resolved from the log, rules and labels together
            row["outcome"] = values.get("outcome")
            row["outcome_ns"] = values.get("outcome_ns")
            row["outcome.source"] = values.get("source")
            continue
        for key, value in values.items():
            if isinstance(value, dict | list):
                continue  # nested provenance (e.g. a label's history) stays in the annotation
            row[f"{section}.{key}" if key != section else section] = value
    return row


WALL_CLOCK_FROM_NS = 946_684_800 * 10**9
"""Times from 2000-01-01 on are taken as wall-clock (epoch) times; earlier ones as a
clock that starts near zero (boot-relative, episode-relative, synthetic)."""
_CLOCK_NAMES = {
    "boot": "boot-relative (no wall time in the log)",
    "episode": "episode-relative (no wall time in the dataset)",
    "synthetic": "synthetic (sample index at a nominal rate)",
}


def wall_clock_start(info: RunInfo) -> tuple[int | None, str]:
    """The run's wall-clock start (ns since the epoch, UTC) and where it came from.

    The log's own clock when it is wall-clock time; else the offset the reader found
    (a ULog's GPS UTC time, an HDF5 file's date and time attributes); else ``None``
    with the kind of clock the log has (boot-relative, episode-relative, synthetic).

    Examples
    --------
    >>> from workbench.model import Provenance, RunInfo
    >>> wall_clock_start(RunInfo("r", start_ns=1_700_000_000 * 10**9, end_ns=1_700_000_001 * 10**9))
    (1700000000000000000, 'log clock')
    >>> prov = Provenance(extra={"clock": "boot"}, wall_clock_offset_ns=1_600_000_000 * 10**9, wall_clock="GPS UTC")
    >>> wall_clock_start(RunInfo("r", start_ns=5 * 10**9, end_ns=6 * 10**9, provenance=prov))
    (1600000005000000000, 'GPS UTC')
    >>> wall_clock_start(RunInfo("r", start_ns=5 * 10**9, end_ns=6 * 10**9, provenance=Provenance(extra={"clock": "boot"})))
    (None, 'boot-relative (no wall time in the log)')
    """
    prov = info.provenance
    if prov.wall_clock_offset_ns is not None:
        return info.start_ns + int(prov.wall_clock_offset_ns), prov.wall_clock or "reader"
    clock = str(prov.extra.get("clock") or "")
    if info.start_ns >= WALL_CLOCK_FROM_NS and clock not in _CLOCK_NAMES:
        return info.start_ns, "log clock"
    if info.start_ns == info.end_ns == 0:
        return None, "no samples"
    return None, _CLOCK_NAMES.get(clock, "relative (no wall time in the log)")


def _format_version(extra: dict[str, Any]) -> str | None:
    v = extra.get("format_version", extra.get("codebase_version"))
    return None if v is None else str(v)


def _fps(extra: dict[str, Any]) -> float | None:
    v = extra.get("fps")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


_SQL_OPS = (("==", "="),)


WHERE_FUNCTIONS = frozenset({
    "abs", "cast", "ceil", "ceiling", "coalesce", "concat", "ends_with", "floor", "greatest", "ifnull", "least",
    "length", "char_length", "lower", "ltrim", "nullif", "round", "rtrim", "starts_with", "strpos", "substr",
    "substring", "trim", "upper", "date", "year", "month", "day", "in",
})
"""Functions a ``where`` text may call (scalar functions of one row); anything else is refused."""
_WHERE_REFUSED = ("select", "from", "with", "join", "union", "exists", "table", "values", "into", "copy", "attach",
                  "pragma", "lateral", "unnest", "intersect", "except")


def _where_tokens(where: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens of a ``where`` text, scanned as SQL scans it: ``str``
    (a '…' literal, '' escapes a quote), ``ident`` (a "…" quoted name), ``word``
    (a bare name, dotted parts included), ``punct`` (anything else). Comments,
    backticks and dollar quoting are refused: they are where a checker and the SQL
    parser can disagree about what is text."""
    hint = "e.g. hardware.robot = 'arm-a' and outcome = 'success'"
    out: list[tuple[str, str]] = []
    i, n = 0, len(where)
    while i < n:
        ch = where[i]
        if where.startswith(("--", "/*"), i) or ch in "`$#":
            msg = f"where: {where[i:i + 2]!r} is not allowed (no comments, backticks or $ quoting); {hint}"
            raise ConfigError(msg)
        if ch in "'\"":
            j = i + 1
            while True:
                k = where.find(ch, j)
                if k < 0:
                    msg = f"where: unclosed {ch} at character {i + 1}; {hint}"
                    raise ConfigError(msg)
                if k + 1 < n and where[k + 1] == ch:  # doubled quote: an escaped one
                    j = k + 2
                    continue
                break
            out.append(("str" if ch == "'" else "ident", where[i + 1:k]))
            i = k + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (where[j].isalnum() or where[j] in "_."):
                j += 1
            out.append(("word", where[i:j]))
            i = j
        elif ch.isspace():
            i += 1
        else:
            out.append(("punct", ch))
            i += 1
    return out


def check_where(where: str) -> None:
    """Refuse a ``where`` text that is more than an expression over catalog columns:
    no query (``SELECT``, ``FROM``, subqueries), no table function (``read_csv(…)``),
    only the scalar functions of :data:`WHERE_FUNCTIONS`, no comments.

    >>> check_where("hardware.robot = 'arm-a' and lower(name) like '%from%'")
    >>> check_where("x in (select a from read_csv('/etc/passwd'))")
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: where: only a condition over catalog columns is allowed, not 'select' (no queries, subqueries or table functions); e.g. hardware.robot = 'arm-a' and outcome = 'success'
    """
    hint = "e.g. hardware.robot = 'arm-a' and outcome = 'success'"
    tokens = _where_tokens(where)
    for pos, (kind, text) in enumerate(tokens):
        if kind == "punct" and text == ";":
            msg = f"where: one condition, no ';'; {hint}"
            raise ConfigError(msg)
        if kind != "word":
            continue
        if "." not in text and text.lower() in _WHERE_REFUSED:  # a dotted column name may hold such a word
            msg = (f"where: only a condition over catalog columns is allowed, not {text.lower()!r} "
                   f"(no queries, subqueries or table functions); {hint}")
            raise ConfigError(msg)
        called = pos + 1 < len(tokens) and tokens[pos + 1] == ("punct", "(")
        if called and text.lower() not in WHERE_FUNCTIONS and text.lower() not in ("and", "or", "not"):
            msg = f"where: function {text!r} is not allowed; functions: {', '.join(sorted(WHERE_FUNCTIONS - {'in'}))}; {hint}"
            raise ConfigError(msg)


def _sql_where(where: str, columns: list[str]) -> str:
    """Quote dotted column names and accept ``==`` so users can write natural filters
    (string literals are left as they are)."""
    check_where(where)
    parts, i = [], 0
    for m in re.finditer(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", where):
        outside = where[i:m.start()]
        for old, new in _SQL_OPS:
            outside = outside.replace(old, new)
        parts += [outside, m.group(0)]
        i = m.end()
    tail = where[i:]
    for old, new in _SQL_OPS:
        tail = tail.replace(old, new)
    out = "".join([*parts, tail])
    # quote dotted catalog columns not already quoted, longest first
    for col in sorted((c for c in columns if "." in c or "-" in c), key=len, reverse=True):
        out = _quote_identifier(out, col)
    return out


def _quote_identifier(text: str, col: str) -> str:
    import re

    pattern = re.compile(r'(?<![\w."\'])' + re.escape(col) + r'(?![\w"])')
    result = []
    pos = 0
    in_str: str | None = None
    i = 0
    # skip over string literals so values like 'hardware.robot' are untouched
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == in_str:
                in_str = None
            i += 1
            continue
        if ch in "'\"":
            in_str = ch
            i += 1
            continue
        m = pattern.match(text, i) if (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "._")) else None
        if m:
            result.append(text[pos:i])
            result.append(f'"{col}"')
            i = m.end()
            pos = i
            continue
        i += 1
    result.append(text[pos:])
    return "".join(result)


# --------------------------------------------------------------------------- store


class Store:
    """A folder of runs with a catalog. Create with :func:`open_store`.

    Parameters
    ----------
    url
        Local path or fsspec URL.
    create
        Create the folder layout if missing.
    """

    def __init__(self, url: str | os.PathLike[str], *, create: bool = True) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.url = os.fspath(url)
        try:
            fs, root = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError) as err:
            msg = f"cannot open store {self.url!r}: {err}"
            raise StoreError(msg) from err
        self.fs = fs
        self.local = isinstance(fs, LocalFileSystem)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        self._catalog_cache: tuple[Any, pl.DataFrame] | None = None
        exists = self.fs.exists(self._p(RUNS_DIR))
        if not exists:
            if not create:
                msg = f"no store at {self.url!r} (no {RUNS_DIR}/ folder); open_store(path) creates one"
                raise StoreError(msg)
            if self.fs.exists(self.root) and not self.fs.isdir(self.root):
                msg = f"cannot create store at {self.url!r}: it is a file"
                raise StoreError(msg)
            for sub in (RUNS_DIR, SOURCES_DIR, TMP_DIR):
                self.fs.makedirs(self._p(sub), exist_ok=True)
        self._clean_tmp()

    # ------------------------------------------------------------------ paths & io

    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if not self.local else os.path.join(self.root, *parts)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _read_bytes(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as fh:
                return fh.read()
        with self.fs.open(path, "rb") as fh:
            return fh.read()

    def _write_bytes_atomic(self, path: str, data: bytes) -> None:
        if self.local:
            tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            with self.fs.open(path, "wb") as fh:
                fh.write(data)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        if not self.local:
            yield
            return
        from filelock import FileLock

        with FileLock(self._p(LOCK_NAME), timeout=600):
            yield

    def _clean_tmp(self) -> None:
        """Remove leftovers of writers that died (their pid is gone)."""
        if not self.local:
            return
        tmp = self._p(TMP_DIR)
        try:
            entries = os.listdir(tmp)
        except FileNotFoundError:
            os.makedirs(tmp, exist_ok=True)
            return
        for entry in entries:
            parts = entry.split(".")
            pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
            if pid is not None and pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)

    # ------------------------------------------------------------------ listing

    def run_ids(self) -> list[str]:
        """Ids of every complete run (those with a manifest), sorted."""
        runs_dir = self._p(RUNS_DIR)
        if self.local:
            try:
                names = os.listdir(runs_dir)
            except FileNotFoundError:
                return []
            # local runs appear by an atomic rename of a complete folder: listing suffices
            return sorted(names)
        try:
            entries = self.fs.ls(runs_dir, detail=False)
        except FileNotFoundError:
            return []
        ids = [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return sorted(i for i in ids if self.fs.exists(self._p(RUNS_DIR, i, MANIFEST_NAME)))

    def __len__(self) -> int:
        return len(self.run_ids())

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and self._exists(self._p(RUNS_DIR, run_id, MANIFEST_NAME))

    def _exists(self, path: str) -> bool:
        return os.path.exists(path) if self.local else bool(self.fs.exists(path))

    def manifest(self, run_id: str) -> dict[str, Any]:
        """The manifest (``run.json``) of *run_id* as a dict."""
        path = self._p(RUNS_DIR, run_id, MANIFEST_NAME)
        try:
            data = self._read_bytes(path)
        except FileNotFoundError as err:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg) from err
        try:
            manifest = json.loads(data)
        except json.JSONDecodeError as err:
            msg = f"manifest of run {run_id!r} is corrupt: {err}"
            raise StoreError(msg) from err
        return manifest  # type: ignore[no-any-return]

    def info(self, run_id: str) -> RunInfo:
        """The :class:`RunInfo` of *run_id*."""
        return RunInfo.from_dict(self.manifest(run_id)["info"])

    def annotations(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Annotation sections (grades, metrics…) stored beside a run."""
        folder = self._p(RUNS_DIR, run_id, ANNOTATIONS_DIR)
        out: dict[str, dict[str, Any]] = {}
        if self.local:
            names = os.listdir(folder) if os.path.isdir(folder) else []
        else:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)] if self.fs.exists(folder) else []
        for name in sorted(names):
            if name.endswith(".json"):
                out[name[:-5]] = json.loads(self._read_bytes(self._p(RUNS_DIR, run_id, ANNOTATIONS_DIR, name)))
        return out

    # ------------------------------------------------------------------ catalog

    def _catalog_path(self) -> str:
        return self._p(CATALOG_PATH)

    def _read_catalog(self) -> pl.DataFrame | None:
        import polars as pl

        path = self._catalog_path()
        if self.local:
            try:
                mtime = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                return None
            if self._catalog_cache and self._catalog_cache[0] == mtime:
                return self._catalog_cache[1]
            df = pl.read_parquet(path)
            self._catalog_cache = (mtime, df)
            return df
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as fh:
            return pl.read_parquet(fh)

    def _write_catalog(self, df: pl.DataFrame) -> None:
        import io

        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        self._write_bytes_atomic(self._catalog_path(), buf.getvalue())
        self._catalog_cache = None

    def _rows_for(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [_catalog_row(self.manifest(r), self.annotations(r)) for r in run_ids]

    def rebuild_catalog(self) -> pl.DataFrame:
        """Rebuild ``catalog.parquet`` from the manifests and annotations; returns it."""
        with self._lock():
            df = _rows_to_frame(self._rows_for(self.run_ids()))
            self._write_catalog(df)
        return df

    def _update_catalog(self, add: Iterable[str] = (), drop: Iterable[str] = ()) -> pl.DataFrame:
        import polars as pl

        add, drop = list(add), set(drop)
        with self._lock():
            current = self._read_catalog()
            if current is None:
                df = _rows_to_frame(self._rows_for(self.run_ids()))
            else:
                df = current
                if drop:
                    df = _finalize(df.filter(~pl.col("run_id").is_in(sorted(drop))))
                have = set(df["run_id"].to_list())
                add = [r for r in add if r not in have and r not in drop]
                if add:
                    new = _rows_to_frame(self._rows_for(add))
                    df = _finalize(pl.concat(_typed_nulls(df, new), how="diagonal_relaxed")) if df.height else new
            self._write_catalog(df)
        return df

    def _reconciled_catalog(self) -> pl.DataFrame:
        """The catalog, repaired if it disagrees with ``runs/`` (after a crash)."""
        import polars as pl

        df = self._read_catalog()
        on_disk = set(self.run_ids())
        if df is None:
            return self._update_catalog()
        listed = set(df["run_id"].to_list()) if df.height else set()
        stale = self._stale_annotations() & on_disk & listed
        if listed != on_disk or stale:
            if stale:  # rows re-read from the annotations a dead writer left
                self._update_catalog(drop=stale)
            df = self._update_catalog(add=sorted((on_disk - listed) | stale), drop=listed - on_disk)
            self._clear_stale_markers()
            return df
        return df if df.width else pl.DataFrame()

    def _pending_markers(self) -> list[tuple[str, dict[str, Any]]]:
        """Annotation writes in progress or cut short: ``(path, {"pid", "runs"})``."""
        if not self.local:
            return []
        folder = self._p(PENDING_DIR)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            path = os.path.join(folder, name)
            try:
                out.append((path, json.loads(self._read_bytes(path))))
            except (OSError, json.JSONDecodeError):
                continue
        return out

    def _stale_annotations(self) -> set[str]:
        """Runs whose annotations a writer that died changed after the catalog last saw them."""
        stale: set[str] = set()
        for _path, data in self._pending_markers():
            pid = data.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
                stale |= set(data.get("runs", []))
        return stale

    def _clear_stale_markers(self) -> None:
        for path, data in self._pending_markers():
            pid = data.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def runs(self, where: str | pl.Expr | None = None) -> pl.DataFrame:
        """The catalog: one row per run, flattened factor columns.

        Parameters
        ----------
        where
            A polars expression (``pl.col("hardware.robot") == "arm-a"``) or a SQL
            condition (``"hardware.robot = 'arm-a' and scenario.seed < 5"``; dotted
            column names need no quotes, ``==`` is accepted).

        Examples
        --------
        >>> import workbench as wb
        >>> wb.open_store("memory://doc-runs").runs(where="outcome = 'success'").height
        0
        """
        import polars as pl

        df = self._reconciled_catalog()
        if where is None:
            return df
        if isinstance(where, pl.Expr):
            try:
                return df.filter(where)
            except pl.exceptions.PolarsError as err:
                msg = f"cannot filter runs with {where}: {err}"
                raise ConfigError(msg) from err
        if not isinstance(where, str):
            msg = f"where must be a polars expression or a string, got {type(where).__name__}"
            raise ConfigError(msg)
        query = _sql_where(where, df.columns)
        try:
            return df.filter(pl.sql_expr(query))
        except (pl.exceptions.PolarsError, ValueError, OSError) as err:
            msg = f"cannot filter runs with {where!r}: {err}. Columns: {', '.join(df.columns)}"
            raise ConfigError(msg) from err

    def scan(self) -> pl.LazyFrame:
        """The catalog as a polars lazy scan: only the columns and rows a query needs
        are read (useful when the catalog of a fleet is large or remote).

        >>> import workbench as wb, polars as pl
        >>> wb.open_store("memory://doc-scan").scan().select("run_id").collect().height
        0
        """
        import polars as pl

        self._reconciled_catalog()
        path = self._catalog_path()
        if self.local:
            return pl.scan_parquet(path)
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol
        if protocol == "memory":  # not a polars cloud scheme: read through fsspec
            return self._read_catalog().lazy()  # type: ignore[union-attr]
        return pl.scan_parquet(f"{protocol}://{path}", storage_options=getattr(self.fs, "storage_options", None) or None)

    # ------------------------------------------------------------------ loading

    def _zarr_target(self, path: str) -> Any:
        if self.local:
            return path
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(f"{self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol}://{path}")

    def load(self, run_id: str, *, streams: Iterable[str] | None = None, lazy: bool = True,
             indexes: bool = True) -> Run:
        """Open a run: streams as xarray, events as polars.

        Parameters
        ----------
        run_id
            The run to open.
        streams
            Only these streams (default: all).
        lazy
            ``True``: dask-backed arrays, read on demand (for runs larger than memory);
            ``False``: read everything into memory now (faster for small runs).
        indexes
            With ``lazy``: ``False`` leaves the ``time`` coordinate lazy too, without an
            in-memory index (``.sel`` by time is then unavailable) — for runs whose time
            axis alone is too large to hold; grading and metrics read such runs this way.
        """
        import io

        import polars as pl
        import xarray as xr

        import workbench.accessors  # noqa: F401  (registers ds.wb)

        manifest = self.manifest(run_id)
        info = RunInfo.from_dict(manifest["info"])
        names = list(manifest.get("streams", {}))
        if streams is not None:
            wanted = list(streams)
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                msg = f"run {run_id!r} has no stream(s) {unknown}; it has {names}"
                raise StoreError(msg)
            names = wanted
        from workbench.zarr_io import UnsupportedLayout, read_stream, register_direct

        opened: dict[str, xr.Dataset] = {}
        for name in names:
            path = self._p(RUNS_DIR, run_id, STREAMS_DIR, f"{name}.zarr")
            try:
                if not lazy:
                    try:
                        opened[name] = read_stream(path, fs=None if self.local else self.fs)
                        continue
                    except UnsupportedLayout:
                        pass
                extra = {} if indexes or not lazy else {"create_default_indexes": False}
                ds = xr.open_zarr(self._zarr_target(path), chunks={} if lazy else None, consolidated=False, **extra)
                if lazy and self.local:
                    register_direct(ds, path)
                opened[name] = ds if lazy else ds.load()
            except Exception as err:  # zarr/xarray raise many types for a damaged array
                msg = f"run {run_id!r}: stream {name!r} cannot be opened: {err}"
                raise StoreError(msg) from err
        events_bytes = self._read_bytes(self._p(RUNS_DIR, run_id, EVENTS_NAME))
        events = self._merged_events(run_id, check_events(pl.read_parquet(io.BytesIO(events_bytes))), info)
        return Run(info=info, streams=opened, events=events)

    def _merged_events(self, run_id: str, events: pl.DataFrame, info: RunInfo) -> pl.DataFrame:
        """The log's events plus the events rules made (``derived_events``) and the
        label's outcome event, each marked by its ``origin``."""
        import polars as pl

        parts = [events]
        derived = self.get_table(run_id, DERIVED_EVENTS)
        if derived is not None and derived.height:
            parts.append(check_events(derived))
        label = self.annotations(run_id).get(LABELS_SECTION)
        if label and label.get("outcome"):
            at = label.get("at_ns")
            detail = json.dumps({k: label.get(k) for k in ("reason", "by", "when") if label.get(k) is not None}, sort_keys=True)
            parts.append(pl.DataFrame(
                {"time": [int(at) if at is not None else int(info.end_ns)], "kind": [str(label["outcome"])],
                 "detail": [detail], "origin": ["label"]},
                schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String, "origin": pl.String},
            ))
        marks = self.annotations(run_id).get(MARKS_SECTION)
        if marks and marks.get("items"):
            items = json.loads(marks["items"])
            parts.append(pl.DataFrame(
                {"time": [int(m["start_ns"]) for m in items], "kind": [str(m["kind"]) for m in items],
                 "detail": [json.dumps({"start": m["start_ns"], "end": m["end_ns"],
                                        "duration_s": (m["end_ns"] - m["start_ns"]) / 1e9,
                                        **{k: m.get(k) for k in ("note", "by", "when") if m.get(k) is not None}},
                                       sort_keys=True) for m in items],
                 "origin": ["label"] * len(items)},
                schema={"time": pl.Int64, "kind": pl.String, "detail": pl.String, "origin": pl.String},
            ))
        if len(parts) == 1:
            return events
        return pl.concat(parts).sort("time", maintain_order=True)

    # ------------------------------------------------------------------ writing

    def _write_run(
        self,
        info: RunInfo,
        streams: Mapping[str, xr.Dataset] | Iterable[tuple[str, xr.Dataset]],
        events: pl.DataFrame,
        *,
        complete: Callable[[tuple[int, int] | None], tuple[RunInfo, pl.DataFrame]] | None = None,
    ) -> bool:
        """Write a run atomically; False when it was already present.

        *streams* is either a mapping of whole streams (written in parallel threads) or
        an iterable of ``(name, part)`` pairs: the parts of a stream read piece by piece,
        appended along time as they come (see :class:`workbench.zarr_io.StreamWriter`),
        written by a background thread while the next part is decoded, so memory is
        bounded by a few parts. *complete*, when given, is called once every stream is
        written, with their overall time span (``None`` when empty), and returns the
        final ``(info, events)`` — for a streamed log, whose metadata is known only
        after its last part; *info* then only gives the run id.
        """
        import io

        final = self._p(RUNS_DIR, info.run_id)
        if self._exists(self._p(RUNS_DIR, info.run_id, MANIFEST_NAME)):
            return False
        tmp = self._p(TMP_DIR, f"{info.run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        self.fs.makedirs(self._p(TMP_DIR), exist_ok=True)
        try:
            self.fs.makedirs(tmp + "/" + STREAMS_DIR if not self.local else os.path.join(tmp, STREAMS_DIR), exist_ok=True)
            if isinstance(streams, Mapping):
                stream_list = self._write_streams(tmp, streams)
                span = None
            else:
                stream_list, span = self._write_parts(tmp, streams)
            if complete is not None:
                info, events = complete(span)
            buf = io.BytesIO()
            events.write_parquet(buf)
            self._put(self._join(tmp, EVENTS_NAME), buf.getvalue())
            manifest = {
                "format": MANIFEST_FORMAT,
                "info": info.to_dict(),
                "streams": stream_list,
                "n_events": events.height,
                "outcome": run_outcome(events),
                "outcome_ns": _outcome_time(events),
            }
            self._put(self._join(tmp, MANIFEST_NAME), json.dumps(manifest, indent=1, sort_keys=True).encode())
            return self._publish(tmp, final)
        except BaseException:
            self._rmtree(tmp)
            raise

    def _write_streams(self, run_dir: str, streams: Mapping[str, xr.Dataset]) -> dict[str, Any]:
        """Write whole streams, several at once (compression and file writes release the GIL)."""
        if len(streams) < 2:
            return {name: self._write_stream(run_dir, name, ds) for name, ds in streams.items()}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, len(streams), os.cpu_count() or 1)) as pool:
            futures = {name: pool.submit(self._write_stream, run_dir, name, ds) for name, ds in streams.items()}
            return {name: fut.result() for name, fut in futures.items()}

    def _write_parts(
        self, run_dir: str, parts: Iterable[tuple[str, xr.Dataset]]
    ) -> tuple[dict[str, Any], tuple[int, int] | None]:
        """Append the parts of streams as they come; returns the stream list and time span."""
        import functools
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        from workbench.zarr_io import StreamWriter

        writers: dict[str, StreamWriter] = {}
        inflight: deque[Future[Any]] = deque()
        pool: ThreadPoolExecutor | None = None  # started when a stream gets a second part

        def wait(fut: Future[Any], name: str) -> None:
            try:
                fut.result()
            except (TypeError, ValueError) as err:
                msg = f"a stream{f' near {name!r}' if name else ''} cannot be stored: {err}"
                raise SchemaError(msg) from err
        try:
            for name, ds in parts:
                ds = self._stream_for_storage(name, ds)
                writer = writers.get(name)
                if writer is None:
                    path = self._join(run_dir, STREAMS_DIR, f"{name}.zarr")
                    writer = writers[name] = StreamWriter(
                        path,
                        fs=None if self.local else self.fs,
                        write_whole=functools.partial(self._store_whole, name),
                    )
                    writer.append(ds)  # a first part is only held: no need for a thread
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-write")
                inflight.append(pool.submit(writer.append, ds))
                while len(inflight) > 2:  # at most two parts waiting: bounded memory
                    wait(inflight.popleft(), name)
            while inflight:
                wait(inflight.popleft(), "")
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        stream_list: dict[str, Any] = {}
        lo: list[int] = []
        hi: list[int] = []
        # closing writes what is still buffered (all of a stream read in one part):
        # several streams at once, as for whole streams
        if len(writers) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(writers))) as closer:
                closing = {name: closer.submit(w.close) for name, w in writers.items()}
        else:
            closing = {}
        for name, writer in writers.items():
            try:
                summary = closing[name].result() if name in closing else writer.close()
            except (TypeError, ValueError) as err:
                msg = f"stream {name!r} cannot be stored: {err}"
                raise SchemaError(msg) from err
            if summary["span"] is not None:
                lo.append(summary["span"][0])
                hi.append(summary["span"][1])
            stream_list[name] = {
                "dims": summary["dims"],
                "variables": summary["variables"],
                "attrs": _json_safe(summary["attrs"]),
            }
        return stream_list, ((min(lo), max(hi)) if lo else None)

    def _join(self, *parts: str) -> str:
        return os.path.join(*parts) if self.local else "/".join(parts)

    def _put(self, path: str, data: bytes) -> None:
        if self.local:
            with open(path, "wb") as fh:
                fh.write(data)
        else:
            with self.fs.open(path, "wb") as fh:
                fh.write(data)

    def _rmtree(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
        elif self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def _publish(self, tmp: str, final: str) -> bool:
        if self.local:
            _fsync_tree(tmp)
            try:
                os.rename(tmp, final)
            except OSError as err:
                if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    shutil.rmtree(tmp, ignore_errors=True)
                    return False
                raise
            return True
        if self.fs.exists(self._join(final, MANIFEST_NAME)):
            self._rmtree(tmp)
            return False
        # object stores have no atomic folder rename: copy everything but the manifest,
        # then the manifest, so a reader never sees a run without all its parts
        manifest = self._read_bytes(self._join(tmp, MANIFEST_NAME))
        self.fs.rm(self._join(tmp, MANIFEST_NAME))
        self.fs.mv(tmp, final, recursive=True)
        self._put(self._join(final, MANIFEST_NAME), manifest)
        return True

    def _write_stream(self, run_dir: str, name: str, ds: xr.Dataset) -> dict[str, Any]:
        ds = self._stream_for_storage(name, ds)
        self._store_whole(name, ds, self._join(run_dir, STREAMS_DIR, f"{name}.zarr"))
        return {
            "dims": {str(k): int(v) for k, v in ds.sizes.items()},
            "variables": sorted(str(v) for v in ds.data_vars),
            "attrs": ds.attrs,
        }

    @staticmethod
    def _stream_for_storage(name: str, ds: xr.Dataset) -> xr.Dataset:
        """A validated shallow copy of *ds* with JSON-safe attributes and no encodings."""
        check_stream(name, ds)
        ds = ds.copy()
        ds.attrs = _json_safe(dict(ds.attrs))
        for var in ds.variables.values():
            var.attrs = _json_safe(dict(var.attrs))
            var.encoding = {}
        return ds

    def _store_whole(self, name: str, ds: xr.Dataset, path: str) -> None:
        from workbench.zarr_io import supported, write_stream

        try:
            if supported(ds):
                write_stream(ds, path, fs=None if self.local else self.fs)
            else:
                ds.to_zarr(self._zarr_target(path), mode="w", consolidated=False, zarr_format=3)
        except (TypeError, ValueError) as err:
            msg = f"stream {name!r} cannot be stored: {err}"
            raise SchemaError(msg) from err

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        meta: Iterable[str] | dict[str, Any] | None = None,
        pattern: str | None = None,
        reader: str | None = None,
        options: dict[str, Any] | None = None,
        salvage: bool = False,
        progress: bool | Callable[[str, int], None] = False,
        scheduler: Any = None,
        events: bool = True,
    ) -> IngestReport:
        """Read logs into the store.

        Folders are walked; a folder that a reader claims as a whole (a ROS 2 bag,
        a LeRobot dataset) is one source. Files no reader claims inside a walked
        folder are listed as ``skipped``; a file named explicitly that no reader
        claims is ``failed``.

        Parameters
        ----------
        paths
            Files or folders.
        meta
            Factors to set on every run: ``["hardware.robot=arm-a", ...]`` or a mapping.
        pattern
            Path pattern such as ``"{hardware.robot}/{model.version}/{scenario.seed}.csv"``.
        reader
            Force a reader by name (default: guessed per file).
        options
            Reader options (validated against the reader's signature).
        salvage
            Recover the readable prefix of truncated files, for readers that can
            (the run is marked as salvaged in its provenance and graded down).
        progress
            ``True`` for a progress bar (by bytes), or a callback ``(path, nbytes)``
            called with the bytes done since its last call (readers that report their
            progress, like MCAP, advance it during a big file; the sizes of a source's
            calls add up to the source's size).
        scheduler
            ``None`` (default): read in this process. Otherwise sources are read in
            parallel by :func:`workbench.parallel.map_runs` (``"threads"``,
            ``"processes"``, a Dask address or client); runs land exactly once
            whatever the retries, and the catalog is updated once at the end.
        events
            Apply the format defaults and the configured rules (``events:`` /
            ``outcome:`` of ``workbench.yaml``, see :func:`workbench.events.apply_rules`)
            to the new runs.

        Returns
        -------
        IngestReport
            Run ids ingested and already present, failures with reasons, skipped files.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        meta_factors = parse_meta(meta)
        path_pattern = PathPattern(pattern) if pattern else None
        options = dict(options or {})
        report = IngestReport()
        if reader is not None:
            get_reader(reader)  # an unknown name is an error listing the readers, not "skipped"
        sources = self._collect_sources([Path(p) for p in paths], reader, report)
        if scheduler is not None:
            from workbench.parallel import ingest_sources

            report = ingest_sources(
                self, sources, report, options=options, meta=meta_factors, pattern=pattern,
                salvage=salvage, scheduler=scheduler, progress=progress is True,
            )
            if events and report.ingested:
                self._apply_events(report, scheduler=scheduler, progress=progress is True)
            return report
        total = sum(size for _, _, size, _ in sources)
        bar_ctx = _progress_bar(total, enabled=progress is True)
        new_ids: list[str] = []
        with bar_ctx as advance:
            for src, root, size, rdr in sources:
                done = 0

                def step(so_far: int, src: Path = src, size: int = size) -> None:
                    # readers that report progress call this with the bytes read so far
                    nonlocal done
                    k = min(int(so_far), size) - done
                    if k > 0:
                        done += k
                        if callable(progress):
                            progress(str(src), k)
                        advance(k, src.name)

                try:
                    opts = dict(options)
                    if salvage and "salvage" in inspect.signature(rdr.read).parameters:
                        opts["salvage"] = True
                    ids, present = self._ingest_source(
                        src, root, rdr, opts, meta_factors, path_pattern, report, progress=step
                    )
                    report.ingested.extend(ids)
                    report.present.extend(present)
                    new_ids.extend(ids)
                except WorkbenchError as err:
                    report.failed.append({"path": str(src), "error": str(err)})
                except Exception as err:  # a reader bug must not lose the other files
                    report.failed.append(
                        {"path": str(src), "error": f"unexpected {type(err).__name__}: {err}"}
                    )
                if callable(progress) and size - done:
                    progress(str(src), size - done)
                advance(size - done, src.name)
        if new_ids or not self._exists(self._catalog_path()):
            self._update_catalog(add=new_ids)
        if events and new_ids:
            self._apply_events(report, scheduler=None, progress=False)
        return report

    def _apply_events(self, report: IngestReport, *, scheduler: Any, progress: bool) -> None:
        """Format defaults and the configured rules on newly ingested runs.

        A rule that cannot be evaluated on them is reported in ``report.events_error``
        (the runs stay ingested; fix the rules and run ``workbench events apply``)."""
        from workbench.events.apply import apply_rules

        try:
            report.events = apply_rules(self, run_ids=report.ingested, scheduler=scheduler, progress=progress, strict=False)
        except ConfigError as err:
            report.events_error = str(err)

    def _collect_sources(
        self, paths: list[Path], reader: str | None, report: IngestReport
    ) -> list[tuple[Path, Path, int, Any]]:
        out: list[tuple[Path, Path, int, Any]] = []
        seen: set[Path] = set()

        def claim(p: Path) -> Any:
            if reader is not None:
                return get_reader(reader)
            return guess_reader(p)

        def visit(p: Path, root: Path, explicit: bool) -> None:
            rp = p.resolve()
            if rp in seen:
                return
            seen.add(rp)
            if p.is_dir():
                try:
                    rdr = claim(p) if reader is None else (get_reader(reader) if get_reader(reader).guess_can_open(p) else None)
                except ReaderError:
                    rdr = None
                if rdr is not None:
                    out.append((p, root, _tree_size(rdr, p), rdr))
                    return
                for child in sorted(p.iterdir()):
                    if child.name.startswith(".") or is_metadata_file(child):
                        continue
                    visit(child, root, False)
                return
            try:
                rdr = claim(p)
            except ReaderError as err:
                if explicit:
                    report.failed.append({"path": str(p), "error": str(err)})
                else:
                    report.skipped.append({"path": str(p), "reason": "no reader recognizes it"})
                return
            out.append((p, root, p.stat().st_size, rdr))

        for p in paths:
            if not p.exists():
                report.failed.append({"path": str(p), "error": f"{str(p)!r}: no such file or directory"})
                continue
            visit(p, p, True)
        return out

    def _ingest_source(
        self,
        path: Path,
        root: Path,
        reader: Any,
        options: dict[str, Any],
        meta: dict[str, Scalar],
        pattern: PathPattern | None,
        report: IngestReport,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Read one source into runs.

        Two keyword-only parameters of a reader's ``read`` are not options but ways of
        calling it, detected by signature and never part of a run's address or
        provenance: ``progress`` (given *progress*, called with the bytes of the source
        read so far) and ``parts`` (set to True: the reader may yield runs whose streams
        arrive in parts, :class:`~workbench.io.messages.StreamingRunData`, written
        part by part so that a log larger than memory can be ingested).
        """
        params = inspect.signature(reader.read).parameters
        calling = [
            n for n in ("progress", "parts")
            if n in params and params[n].kind is inspect.Parameter.KEYWORD_ONLY
        ]
        for name in calling:
            if name in options:
                msg = f"{name!r} is not an option of the {reader.name} reader (the store sets it)"
                raise ConfigError(msg)
        opts = check_options(reader, options)
        call: dict[str, Any] = {}
        for name in calling:
            opts.pop(name, None)
            if name == "parts":
                call["parts"] = True
            elif progress is not None:
                call["progress"] = progress
        files = reader.source_files(path)
        sources = tuple(
            SourceFile(path=str(f.resolve()), size=f.stat().st_size, sha256=_sha256(f)) for f in files
        )
        key_material = json.dumps(
            {
                "reader": reader.name,
                "options": _json_safe({k: v for k, v in opts.items() if k not in ADDRESS_NEUTRAL_OPTIONS}),
                "files": sorted(s.sha256 for s in sources),
            },
            sort_keys=True,
        )
        source_key = hashlib.sha256(key_material.encode()).hexdigest()[:24]
        marker = self._p(SOURCES_DIR, f"{source_key}.json")
        if self._exists(marker):
            listed = json.loads(self._read_bytes(marker)).get("runs", [])
            if all(r in self for r in listed):
                return [], listed

        layers_base = FactorLayers()
        for cfg in folder_configs(path, root):
            layers_base.add("workbench.yaml", load_factor_file(cfg, section="factors"))
        for side in sidecar_paths(path):
            layers_base.add("sidecar", load_factor_file(side))
        if pattern is not None:
            rel = path.resolve().as_posix()
            matched = pattern.match(rel)
            if matched is None:
                msg = f"{str(path)!r} does not match the pattern {pattern.pattern!r}"
                raise ConfigError(msg)
            layers_base.add("pattern", matched)
        if meta:
            layers_base.add("meta", meta)

        ingested: list[str] = []
        present: list[str] = []
        all_ids: list[str] = []
        try:
            runs_iter = reader.read(path, **opts, **call)
            for data in runs_iter:
                if not isinstance(data, RunData):
                    msg = f"reader {reader.name!r} yielded {type(data).__name__}, not RunData"
                    raise ReaderError(msg)
                run_id = hashlib.sha256(f"{source_key}\0{data.key}".encode()).hexdigest()[:16]
                all_ids.append(run_id)
                parts = getattr(data, "parts", None)
                if run_id in self:
                    present.append(run_id)
                    if parts is not None and hasattr(parts, "close"):
                        parts.close()
                    continue
                if parts is None:
                    info = self._make_info(run_id, data, layers_base, reader, opts, sources)
                    events = check_events(data.events)
                    written = self._write_run(info, data.streams, events)
                else:

                    def complete(
                        span: tuple[int, int] | None, data: RunData = data, run_id: str = run_id
                    ) -> tuple[RunInfo, pl.DataFrame]:
                        # a streamed run's metadata and events are complete only now
                        info = self._make_info(run_id, data, layers_base, reader, opts, sources)
                        events = check_events(data.events)
                        if span is not None and data.span is None:
                            lo, hi = span
                            if events.height:
                                lo, hi = min(lo, info.start_ns), max(hi, info.end_ns)
                            info = dataclasses.replace(info, start_ns=lo, end_ns=hi)
                        return info, events

                    written = self._write_run(RunInfo(run_id=run_id), parts, data.events, complete=complete)
                if written:
                    ingested.append(run_id)
                else:
                    present.append(run_id)
                if data.skipped:
                    report.warnings.append(
                        {"path": str(path), "run_id": run_id, "skipped": _json_safe(data.skipped)}
                    )
                if data.extra.get("salvaged"):
                    report.warnings.append(
                        {"path": str(path), "run_id": run_id, "salvaged": _json_safe(data.extra["salvaged"])}
                    )
        except WorkbenchError:
            if ingested:
                self._update_catalog(add=ingested)
            raise
        except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as err:
            if ingested:
                self._update_catalog(add=ingested)
            msg = f"{str(path)!r}: {reader.name} reader failed: {type(err).__name__}: {err}"
            raise ReaderError(msg) from err
        if not all_ids:
            msg = f"{str(path)!r}: the {reader.name} reader found no run in it"
            raise ReaderError(msg)
        self._put_marker(marker, {"runs": all_ids, "reader": reader.name, "path": str(path)})
        return ingested, present

    def _put_marker(self, path: str, data: dict[str, Any]) -> None:
        self._write_bytes_atomic(path, json.dumps(data, sort_keys=True).encode())

    def _make_info(
        self,
        run_id: str,
        data: RunData,
        layers_base: FactorLayers,
        reader: Any,
        opts: dict[str, Any],
        sources: tuple[SourceFile, ...],
    ) -> RunInfo:
        from workbench.metadata import flatten_factors

        layers = FactorLayers({k: dict(v) for k, v in layers_base.layers.items()})
        embedded = flatten_factors(
            {g: v for g, v in data.factors.items() if v}, origin=f"{reader.name} reader"
        ) if data.factors else {}
        layers.layers = {"embedded": embedded, **layers.layers} if embedded else layers.layers
        merged, origin, overrides = layers.merge()
        start, end = data.span if data.span is not None else _span(data.streams, data.events)
        prov = Provenance(
            sources=sources,
            reader=reader.name,
            reader_version=str(getattr(reader, "version", "")),
            options=_json_safe(opts),
            workbench_version=__version__,
            ingested_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            key=data.key,
            metadata=origin,
            overrides=tuple(_json_safe(overrides)),
            skipped=tuple(_json_safe(data.skipped)),
            extra=_json_safe(data.extra),
            source=str(Path(data.source).resolve()) if data.source else "",
            size_bytes=data.size_bytes,
            wall_clock_offset_ns=data.wall_clock[0] if data.wall_clock else None,
            wall_clock=data.wall_clock[1] if data.wall_clock else "",
        )
        groups: dict[str, dict[str, Scalar]] = {g: {} for g in FACTOR_GROUPS}
        for dotted, value in merged.items():
            group, _, key = dotted.partition(".")
            groups[group][key] = value
        name = data.name or Path(sources[0].path).stem if sources else data.name
        if data.key and data.name and data.key not in data.name:
            name = f"{data.name}/{data.key}"
        return RunInfo(run_id=run_id, provenance=prov, start_ns=start, end_ns=end, name=name, **groups)

    # ------------------------------------------------------------------ editing

    def remove(self, run_id: str) -> None:
        """Delete a run and its catalog row. Raises :class:`StoreError` if absent."""
        if run_id not in self:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg)
        final = self._p(RUNS_DIR, run_id)
        trash = self._p(TMP_DIR, f"removed-{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        with self._lock():
            if self.local:
                os.rename(final, trash)
            else:
                self.fs.rm(self._join(final, MANIFEST_NAME))
                self.fs.mv(final, trash, recursive=True)
        self._rmtree(trash)
        self._update_catalog(drop=[run_id])

    def annotate(self, run_id: str, section: str, values: dict[str, Any]) -> None:
        """Store an annotation section (e.g. ``quality``, ``metrics``) beside a run.

        Its values appear in the catalog as ``<section>.<key>`` columns and survive
        :meth:`rebuild_catalog`.
        """
        self.annotate_many(section, {run_id: values})

    def annotate_many(self, section: str, values: Mapping[str, dict[str, Any]]) -> None:
        """:meth:`annotate` for many runs with one catalog update."""
        import re

        if not re.fullmatch(r"[a-z][a-z0-9_]*", section) or section in FACTOR_GROUPS:
            msg = f"annotation section {section!r} must be lowercase letters/digits/_ and not a factor group"
            raise ConfigError(msg)
        for run_id in values:
            if run_id not in self:
                msg = f"no run {run_id!r} in store {self.url!r}"
                raise StoreError(msg)
        marker = None
        if self.local and values:  # a crash before the catalog update is repaired on the next read
            os.makedirs(self._p(PENDING_DIR), exist_ok=True)
            marker = self._p(PENDING_DIR, f"{section}.{os.getpid()}.{uuid.uuid4().hex[:8]}.json")
            self._put_marker(marker, {"pid": os.getpid(), "section": section, "runs": sorted(values)})
        for run_id, vals in values.items():
            folder = self._p(RUNS_DIR, run_id, ANNOTATIONS_DIR)
            self.fs.makedirs(folder, exist_ok=True)
            self._write_bytes_atomic(
                self._join(folder, f"{section}.json"), json.dumps(_json_safe(vals), sort_keys=True).encode()
            )
        if values:
            self._update_catalog(drop=list(values))
            self._update_catalog(add=list(values))
        if marker is not None:
            os.remove(marker)

    def resolve_runs(self, refs: Iterable[str]) -> list[str]:
        """Run ids for *refs*: run ids, or run names matching exactly one run.

        Raises :class:`StoreError` naming the refs that match no run or several.
        """
        refs = list(refs)
        if not refs:
            msg = "no runs given"
            raise StoreError(msg)
        cat = self.runs()
        ids = set(cat["run_id"].to_list()) if cat.height else set()
        names: dict[str, list[str]] = {}
        if "name" in cat.columns:
            for rid, name in zip(cat["run_id"].to_list(), cat["name"].to_list(), strict=True):
                names.setdefault(str(name), []).append(rid)
        out: list[str] = []
        unknown: list[str] = []
        ambiguous: list[str] = []
        for ref in refs:
            if ref in ids:
                out.append(ref)
            elif len(names.get(ref, [])) == 1:
                out.append(names[ref][0])
            elif names.get(ref):
                ambiguous.append(f"{ref!r} ({len(names[ref])} runs: {', '.join(names[ref][:4])}…)")
            else:
                unknown.append(ref)
        if unknown or ambiguous:
            parts = []
            if unknown:
                parts.append(f"unknown run id(s) or name(s) {unknown}")
            if ambiguous:
                parts.append(f"names matching several runs: {'; '.join(ambiguous)} — give run ids")
            msg = f"{'; '.join(parts)} in store {self.url!r}"
            raise StoreError(msg)
        return list(dict.fromkeys(out))

    def label(self, run_ids: str | Iterable[str], outcome: str, *, reason: str | None = None,
              at: float | None = None, user: str | None = None) -> list[str]:
        """Label runs' outcome by hand (see :func:`workbench.events.label`): ``success``,
        ``failure`` or ``unknown``; the label beats every rule and survives
        ``events apply`` and :meth:`rebuild_catalog`.

        >>> import workbench as wb
        >>> wb.open_store("memory://doc-label").label([], "success")
        Traceback (most recent call last):
        ...
        workbench.model.StoreError: no runs given
        """
        from workbench.events.apply import label

        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        return label(self, ids, outcome, reason=reason, at=at, user=user)

    def mark(self, run_id: str, kind: str, start: float, end: float, *, note: str | None = None,
             user: str | None = None) -> dict[str, Any]:
        """Mark the window *start* … *end* (seconds from the run's start) as an event
        *kind* with a *note* (see :func:`workbench.events.apply.mark_span`); who and when
        are recorded.

        >>> import workbench as wb
        >>> wb.open_store("memory://doc-mark").mark("nope", "slip", 1.0, 2.0)
        Traceback (most recent call last):
        ...
        workbench.model.StoreError: unknown run id(s) or name(s) ['nope'] in store 'memory://doc-mark'
        """
        from workbench.events.apply import mark_span

        return mark_span(self, run_id, kind, start, end, note=note, user=user)

    def apply_rules(self, rules: Any = None, *, run_ids: Iterable[str] | None = None, where: Any = None,
                    scheduler: Any = None, progress: bool = False) -> Any:
        """Apply event rules and the format defaults (see :func:`workbench.events.apply_rules`);
        returns its :class:`~workbench.events.ApplyReport`."""
        from workbench.events.apply import apply_rules

        return apply_rules(self, rules, run_ids=run_ids, where=where, scheduler=scheduler, progress=progress)

    def current_outcome(self, run_id: str) -> str | None:
        """The run's outcome as the catalog shows it (resolved annotation, else the log's)."""
        resolved = self.annotations(run_id).get(OUTCOME_SECTION)
        if resolved is not None:
            return resolved.get("outcome")
        return self.manifest(run_id).get("outcome")

    def record_look(self, key: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Append one look of a sequential comparison (``comparisons/<key>.json``) and
        return every look so far, this one last (its number is the list's length)."""
        import re

        if not re.fullmatch(r"[0-9a-f]{8,64}", key):
            msg = f"comparison key {key!r} must be hexadecimal"
            raise ConfigError(msg)
        path = self._p(COMPARISONS_DIR, f"{key}.json")
        looks: list[dict[str, Any]] = json.loads(self._read_bytes(path)) if self._exists(path) else []
        looks.append(_json_safe(entry))
        self.fs.makedirs(self._p(COMPARISONS_DIR), exist_ok=True)
        self._write_bytes_atomic(path, json.dumps(looks, sort_keys=True).encode())
        return looks

    def put_rules(self, digest: str, text: str) -> None:
        """Keep the text of a rule set once per store (``rules/<digest>.yaml``)."""
        import re

        if not re.fullmatch(r"[0-9a-f]{8,64}", digest):
            msg = f"rule set hash {digest!r} must be hexadecimal"
            raise ConfigError(msg)
        path = self._p(RULES_DIR, f"{digest}.yaml")
        if not self._exists(path):
            self.fs.makedirs(self._p(RULES_DIR), exist_ok=True)
            self._write_bytes_atomic(path, text.encode())

    def get_rules(self, digest: str) -> str | None:
        """The text of a rule set kept with :meth:`put_rules`, or ``None``."""
        path = self._p(RULES_DIR, f"{digest}.yaml")
        return self._read_bytes(path).decode() if self._exists(path) else None

    def put_table(self, run_id: str, name: str, table: pl.DataFrame) -> None:
        """Keep a derived table (e.g. quality findings) beside a run, as Parquet."""
        import io
        import re

        if run_id not in self:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            msg = f"table name {name!r} must be lowercase letters/digits/_"
            raise ConfigError(msg)
        folder = self._p(RUNS_DIR, run_id, ANNOTATIONS_DIR)
        self.fs.makedirs(folder, exist_ok=True)
        buf = io.BytesIO()
        table.write_parquet(buf)
        self._write_bytes_atomic(self._join(folder, f"{name}.parquet"), buf.getvalue())

    def get_table(self, run_id: str, name: str) -> pl.DataFrame | None:
        """A table stored with :meth:`put_table`, or ``None``."""
        import io

        import polars as pl

        path = self._p(RUNS_DIR, run_id, ANNOTATIONS_DIR, f"{name}.parquet")
        if not self._exists(path):
            return None
        return pl.read_parquet(io.BytesIO(self._read_bytes(path)))

    def set_factors(
        self,
        table: pl.DataFrame | str | os.PathLike[str],
        on: str | Iterable[str],
        *,
        source: str | None = None,
    ) -> FactorUpdate:
        """Join a table of factors into the runs it names, all rows or none.

        Each row names one run by its key column(s) — catalog columns such as
        ``scenario.episode``, ``run_id``, ``name`` or ``source`` (the ingested file or
        dataset folder: a run matches when its first source file is that path or lies
        under it) — and gives factor values in columns named ``<group>.<name>``
        (``hardware.gripper``, ``environment.lighting`` …). An empty cell sets nothing.

        The values are written into each run's manifest with the origin
        ``table:<source>`` in ``provenance.metadata``; a value that replaces another one
        is also recorded in ``provenance.overrides`` (old and new value and source, and
        when). They therefore survive :meth:`rebuild_catalog`, and reapplying the same
        table changes nothing. Run ids do not change.

        Parameters
        ----------
        table
            A CSV/TSV or Parquet file (read with :func:`workbench.metadata.read_factor_table`;
            CSV cells are interpreted like ``--meta`` values), or a polars DataFrame.
        on
            The key column(s). Give several when one is ambiguous, e.g.
            ``["scenario.episode", "source"]`` for episodes of two datasets.
        source
            Label recorded as the values' origin (``table:<source>``); default the
            file's absolute path, or ``dataframe``.

        Returns
        -------
        FactorUpdate
            The runs updated and those already up to date, and the columns set.

        Raises
        ------
        ConfigError
            Nothing is changed when the table is malformed (see
            :func:`workbench.metadata.factor_table`), a key column is not a catalog
            column, or any row matches no run, several runs, or the same run as
            another row; the message names the rows.

        Examples
        --------
        >>> import polars as pl, workbench as wb
        >>> store = wb.open_store("memory://doc-set-factors")
        >>> store.set_factors(pl.DataFrame({"run_id": ["r1"], "model.ckpt": ["s1"]}), on="run_id")
        Traceback (most recent call last):
        ...
        workbench.model.ConfigError: dataframe: row 1 (run_id='r1') matches no run. Nothing was changed.
        """
        from workbench.metadata import TABLE_SOURCE, factor_table, read_factor_table

        if isinstance(table, str | os.PathLike):
            path = Path(table)
            frame = read_factor_table(path)
            origin, text = str(path), path.suffix.lower() in {".csv", ".tsv"}
            label = source or str(path.resolve())
        else:
            frame, text = table, False
            origin = label = source or "dataframe"
        parsed = factor_table(frame, [on] if isinstance(on, str) else list(on), origin=origin, text=text)
        label = f"{TABLE_SOURCE}:{label}"
        targets = _match_rows(parsed, self.runs())
        at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        updated: list[str] = []
        unchanged: list[str] = []
        with self._lock():
            writes: list[tuple[str, bytes]] = []
            for row, run_id in enumerate(targets):
                manifest = self.manifest(run_id)
                info = RunInfo.from_dict(manifest["info"])
                try:
                    new = _with_table_factors(info, parsed.values[row], label, at)
                except SchemaError as err:
                    msg = f"{origin}: {parsed.describe(row)}: {err}"
                    raise ConfigError(msg) from err
                if new is None:
                    unchanged.append(run_id)
                    continue
                manifest["info"] = new.to_dict()
                data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                writes.append((self._p(RUNS_DIR, run_id, MANIFEST_NAME), data))
                updated.append(run_id)
            for target, data in writes:  # every row checked before the first write
                self._write_bytes_atomic(target, data)
        if updated:
            self._update_catalog(drop=updated)
            self._update_catalog(add=updated)
        return FactorUpdate(
            updated=updated, unchanged=unchanged, columns=list(parsed.columns), on=list(parsed.on), source=label
        )


def _fsync_tree(path: str) -> None:
    """Flush a freshly written folder to disk before it is renamed into place."""
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _tree_size(reader: Any, path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in reader.source_files(path))
    except (OSError, WorkbenchError):
        return 0


@contextmanager
def _progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[int, str], None]]:
    if not enabled:
        yield lambda n, label: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]ingest[/bold] {task.description:<40.40}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("", total=total or 1)

        def advance(n: int, label: str) -> None:
            bar.update(task, advance=n, description=label)

        yield advance



# --------------------------------------------------------------------------- factor tables


@dataclass
class FactorUpdate:
    """What :meth:`Store.set_factors` did.

    Attributes
    ----------
    updated
        Runs whose factors (or their recorded origin) changed.
    unchanged
        Runs the table names whose factors already had these values from this source.
    columns
        The factor columns of the table.
    on
        The key columns.
    source
        The origin recorded in provenance (``table:<file>``).
    """

    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=list)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``workbench factors set --json`` output)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (
            f"{len(self.updated)} run(s) updated, {len(self.unchanged)} already up to date; "
            f"set {', '.join(self.columns)} keyed on {' + '.join(self.on)} (origin {self.source})"
        )


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (``1``, ``1.0`` and ``True`` are different factor values)."""
    return type(a) is type(b) and a == b


def _with_table_factors(info: RunInfo, values: Mapping[str, Scalar], label: str, at: str) -> RunInfo | None:
    """*info* with *values* set from the table *label*, or ``None`` when nothing changes."""
    flat = info.factors()
    prov = info.provenance
    origin = dict(prov.metadata)
    overrides = list(prov.overrides)
    changes: dict[str, Scalar] = {}
    for key, value in values.items():
        had = key in flat
        if had and _same(flat[key], value) and origin.get(key) == label:
            continue
        if had and not _same(flat[key], value):
            overrides.append(
                {
                    "key": key,
                    "old": flat[key],
                    "old_source": origin.get(key, "unknown"),
                    "new": value,
                    "new_source": label,
                    "at": at,
                }
            )
        origin[key] = label
        changes[key] = value
    if not changes:
        return None
    new = info.with_factors(changes)
    return dataclasses.replace(
        new, provenance=dataclasses.replace(prov, metadata=origin, overrides=tuple(_json_safe(overrides)))
    )


def _key_values(column: str, dtype: Any, values: list[Any], parsed: Any) -> list[Any]:
    """The table's key values of *column* in the type of the catalog column (*dtype*)."""
    import polars as pl

    out: list[Any] = []
    bad: list[str] = []
    for row, value in enumerate(values):
        if dtype.is_numeric():
            if isinstance(value, str):
                try:
                    number: Any = int(value)
                except ValueError:
                    try:
                        number = float(value)
                    except ValueError:
                        number = None
                value = number
            if isinstance(value, bool) or not isinstance(value, int | float):
                bad.append(parsed.describe(row))
                value = None
        elif dtype == pl.Boolean:
            if isinstance(value, str):
                value = {"true": True, "false": False}.get(value.strip().lower())
            if not isinstance(value, bool):
                bad.append(parsed.describe(row))
        elif dtype == pl.String:
            value = value if isinstance(value, str) else str(value)
        else:
            msg = f"{parsed.origin}: cannot join on the catalog column {column!r} ({dtype}); use run_id, name, source or a factor"
            raise ConfigError(msg)
        out.append(value)
    if bad:
        kind = "a number" if dtype.is_numeric() else "true or false"
        msg = f"{parsed.origin}: {column} must be {kind} (as in the catalog) in {_listed(bad)}"
        raise ConfigError(msg)
    return out


def _listed(items: list[str], limit: int = 10) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def _match_rows(parsed: Any, catalog: pl.DataFrame) -> list[str]:
    """The run id each row of *parsed* (a FactorTable) names; ConfigError naming bad rows."""
    unknown = [c for c in parsed.on if c not in catalog.columns]
    if unknown:
        factor_cols = [c for c in catalog.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
        msg = (
            f"{parsed.origin}: key column(s) {unknown} are not catalog columns; join on "
            f"run_id, name, source or a factor column ({', '.join(factor_cols) or 'none yet'})"
        )
        raise ConfigError(msg)
    run_ids: list[str] = catalog["run_id"].to_list()
    candidates: list[list[set[str]]] = [[] for _ in parsed.keys]
    for i, column in enumerate(parsed.on):
        wanted = _key_values(column, catalog.schema[column], [k[i] for k in parsed.keys], parsed)
        have = catalog[column].to_list()
        if column == "source":  # a dataset folder or file: runs whose source lies under it
            for row, value in enumerate(wanted):
                root = os.path.abspath(value).rstrip(os.sep)
                candidates[row].append(
                    {r for r, s in zip(run_ids, have, strict=True)
                     if isinstance(s, str) and (s == value or s == root or s.startswith(root + os.sep))}
                )
            continue
        index: dict[Any, set[str]] = {}
        for rid, value in zip(run_ids, have, strict=True):
            if value is not None:
                index.setdefault(value, set()).add(rid)
        for row, value in enumerate(wanted):
            candidates[row].append(index.get(value, set()))
    names = dict(zip(run_ids, catalog["name"].to_list(), strict=True)) if "name" in catalog.columns else {}
    no_run: list[str] = []
    several: list[str] = []
    taken: dict[str, int] = {}
    twice: list[str] = []
    targets: list[str] = []
    for row, sets in enumerate(candidates):
        found = set.intersection(*sets)
        if not found:
            no_run.append(parsed.describe(row))
        elif len(found) > 1:
            shown = ", ".join(f"{r} ({names.get(r, '')})" for r in sorted(found)[:3])
            several.append(f"{parsed.describe(row)} → {len(found)} runs: {shown}{' …' if len(found) > 3 else ''}")
        else:
            (rid,) = found
            if rid in taken:
                twice.append(f"rows {taken[rid] + 1} and {row + 1} → run {rid}")
            taken.setdefault(rid, row)
            targets.append(rid)
    problems = []
    if no_run:
        problems.append(f"{_listed(no_run)} {'matches' if len(no_run) == 1 else 'match'} no run")
    if several:
        problems.append(
            f"{_listed(several)}; the key {list(parsed.on)} is ambiguous: add a key column that "
            "tells these runs apart (e.g. source, the dataset path) and join on it too"
        )
    if twice:
        problems.append(f"{_listed(twice)}: two rows name the same run")
    if problems:
        msg = f"{parsed.origin}: " + "; ".join(problems) + ". Nothing was changed."
        raise ConfigError(msg)
    return targets
