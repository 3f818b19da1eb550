"""The store without its ingest pipeline: paths, the catalog, loading runs and
writing them atomically, annotations and derived tables.

:class:`StoreCore` is what a worker process opens to write or read runs; the
:class:`workbench.store.Store` front adds ingest, factor tables and event rules."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.model import (
    FACTOR_GROUPS,
    ConfigError,
    Run,
    RunInfo,
    SchemaError,
    StoreError,
    check_events,
    check_stream,
    json_safe,
    run_outcome,
)
from workbench.store.catalog import (
    _catalog_row,
    _finalize,
    _outcome_time,
    _rows_to_frame,
    _sql_where,
    _typed_nulls,
)
from workbench.store.layout import (
    ANNOTATIONS_DIR,
    ANNOTATIONS_SUFFIX,
    CATALOG_PATH,
    COMPARISONS_DIR,
    DERIVED_EVENTS,
    EVENTS_NAME,
    LABELS_SECTION,
    LOCK_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_SUFFIX,
    MARKS_SECTION,
    OUTCOME_SECTION,
    PENDING_DIR,
    RULES_DIR,
    RUN_SUFFIX,
    RUNS_DIR,
    SOURCES_DIR,
    STREAMS_DIR,
    TMP_DIR,
    Files,
    open_files,
)
from workbench.store.locking import _pid_alive

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = ["StoreCore"]

ANNOTATIONS_KEY = "annotations"
"""Manifest key of a run's annotation sections (section → values)."""
TABLES_KEY = "tables"
"""Manifest key of a run's small derived tables (name → base64 Parquet)."""
INLINE_TABLE_BYTES = 4096
"""Derived tables up to this size live in the manifest; larger ones in ``<run_id>.ann``."""
_RUN_FILES: dict[str, tuple[Any, Any]] = {}
_MANIFESTS: dict[str, tuple[Any, dict[str, Any]]] = {}
_ANNOTATIONS: dict[str, tuple[Any, dict[str, bytes]]] = {}


class StoreCore:
    """A folder of runs with a catalog. Create with :func:`open_store`.

    Parameters
    ----------
    url
        Local path or fsspec URL.
    create
        Create the folder layout if missing.
    """

    def __init__(self, url: str | os.PathLike[str], *, create: bool = True) -> None:
        self.url = os.fspath(url)
        try:
            self.files: Files = open_files(self.url)
        except (ValueError, ImportError) as err:
            msg = f"cannot open store {self.url!r}: {err}"
            raise StoreError(msg) from err
        self._catalog_cache: tuple[Any, pl.DataFrame] | None = None
        self._run_files = _RUN_FILES  # path → (stamp, RunFile): shared by the stores of this process
        self._ann_cache = _ANNOTATIONS  # path → (stamp, annotation members)
        if not self.files.exists(self.files.path(RUNS_DIR)):
            if not create:
                msg = f"no store at {self.url!r} (no {RUNS_DIR}/ folder); open_store(path) creates one"
                raise StoreError(msg)
            if self.files.exists(self.root) and not self.files.isdir(self.root):
                msg = f"cannot create store at {self.url!r}: it is a file"
                raise StoreError(msg)
            for sub in (RUNS_DIR, SOURCES_DIR, TMP_DIR):
                self.files.makedirs(self.files.path(sub))
        self._clean_tmp()

    @property
    def fs(self) -> Any:
        """The fsspec filesystem the store lives on."""
        return self.files.fs

    @property
    def local(self) -> bool:
        """Whether the store is a local folder (atomic renames, file locks, direct reads)."""
        return self.files.local

    @property
    def root(self) -> str:
        """The store's folder within its filesystem."""
        return self.files.root

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _clean_tmp(self) -> None:
        """Remove leftovers of local writers that died (their pid is gone)."""
        if not self.local:
            return
        tmp = self.files.path(TMP_DIR)
        self.files.makedirs(tmp)
        for entry in self.files.listdir(tmp):
            parts = entry.split(".")
            pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
            if pid is not None and pid != os.getpid() and not _pid_alive(pid):
                path = self.files.join(tmp, entry)
                if self.files.isdir(path):
                    self.files.rmtree(path)
                else:
                    self.files.remove(path)

    # ------------------------------------------------------------------ listing

    def run_ids(self) -> list[str]:
        """Ids of every complete run (those with a manifest), sorted."""
        names = self.files.listdir(self.files.path(RUNS_DIR))
        ids = {n[: -len(MANIFEST_SUFFIX)] for n in names if n.endswith(MANIFEST_SUFFIX)}
        folders = [n for n in names if "." not in n and n not in ids]  # runs of the folder layout
        if self.files.renames_atomically:  # a folder run appears whole, by one rename
            ids.update(folders)
        else:
            ids.update(i for i in folders if self.files.exists(self.files.path(RUNS_DIR, i, MANIFEST_NAME)))
        return sorted(ids)

    def __len__(self) -> int:
        return len(self.run_ids())

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and (
            self.files.exists(self._packed_manifest(run_id))
            or self.files.exists(self.files.path(RUNS_DIR, run_id, MANIFEST_NAME))
        )

    # ------------------------------------------------------------------ where a run is

    def _packed_manifest(self, run_id: str) -> str:
        return self.files.path(RUNS_DIR, f"{run_id}{MANIFEST_SUFFIX}")

    def _packed(self, run_id: str) -> bool:
        """Whether *run_id* is stored in the current layout (else a run folder of format 1)."""
        return self.files.exists(self._packed_manifest(run_id))

    def manifest_path(self, run_id: str) -> str:
        """Where the manifest of *run_id* is (either layout)."""
        if self._packed(run_id):
            return self._packed_manifest(run_id)
        old = self.files.path(RUNS_DIR, run_id, MANIFEST_NAME)
        return old if self.files.exists(old) else self._packed_manifest(run_id)

    def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> None:
        """Replace the manifest of the stored run *run_id* at once."""
        self.files.write_atomic(self.manifest_path(run_id), _manifest_bytes(manifest))

    def run_file(self, run_id: str) -> Any:
        """The :class:`~workbench.store.runfile.RunFile` of a run in the current layout
        (its index is read once per version of the file)."""
        from workbench.store.runfile import RunFile

        path = self.files.path(RUNS_DIR, f"{run_id}{RUN_SUFFIX}")
        stamp = self.files.stamp(path)
        cached = self._run_files.get(path)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        try:
            rf = RunFile(path, None if self.local else self.fs)
        except FileNotFoundError as err:
            msg = f"run {run_id!r}: its data file {path} is missing"
            raise StoreError(msg) from err
        if stamp is not None:
            if len(self._run_files) > 256:
                self._run_files.clear()
            self._run_files[path] = (stamp, rf)
        return rf

    def _annotation_members(self, run_id: str) -> dict[str, bytes]:
        """The members of a run's annotations file (a copy: callers may change it)."""
        from workbench.store.runfile import read_zip_members

        path = self.files.path(RUNS_DIR, f"{run_id}{ANNOTATIONS_SUFFIX}")
        stamp = self.files.stamp(path)
        cached = self._ann_cache.get(path)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return dict(cached[1])
        try:
            data = self.files.read_bytes(path)
        except FileNotFoundError:
            return {}
        members = read_zip_members(data)
        if stamp is not None:  # replaced files get a new stamp (written atomically)
            if len(self._ann_cache) > 1024:
                self._ann_cache.clear()
            self._ann_cache[path] = (stamp, members)
        return dict(members)

    def manifest(self, run_id: str) -> dict[str, Any]:
        """The manifest of *run_id* as a dict (a fresh top level; treat nested values as
        read-only: parsed manifests are shared until the file changes)."""
        path = self._packed_manifest(run_id)
        stamp = self.files.stamp(path)
        cached = _MANIFESTS.get(path)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return dict(cached[1])
        try:
            try:
                data = self.files.read_bytes(path)
            except FileNotFoundError:
                data = self.files.read_bytes(self.files.path(RUNS_DIR, run_id, MANIFEST_NAME))
                stamp = None
        except FileNotFoundError as err:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg) from err
        try:
            manifest = json.loads(data)
        except json.JSONDecodeError as err:
            msg = f"manifest of run {run_id!r} is corrupt: {err}"
            raise StoreError(msg) from err
        if stamp is not None:  # replaced files get a new stamp (written atomically)
            if len(_MANIFESTS) > 4096:
                _MANIFESTS.clear()
            _MANIFESTS[path] = (stamp, manifest)
            return dict(manifest)
        return manifest  # type: ignore[no-any-return]

    def info(self, run_id: str) -> RunInfo:
        """The :class:`RunInfo` of *run_id*."""
        return RunInfo.from_dict(self.manifest(run_id)["info"])

    def annotations(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Annotation sections (grades, metrics…) stored beside a run."""
        if self._packed(run_id):
            return dict(self.manifest(run_id).get(ANNOTATIONS_KEY) or {})
        folder = self.files.path(RUNS_DIR, run_id, ANNOTATIONS_DIR)
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self.files.listdir(folder)):
            if name.endswith(".json"):
                out[name[:-5]] = json.loads(self.files.read_bytes(self.files.path(RUNS_DIR, run_id, ANNOTATIONS_DIR, name)))
        return out

    # ------------------------------------------------------------------ catalog

    def _catalog_path(self) -> str:
        return self.files.path(CATALOG_PATH)

    def _read_catalog(self) -> pl.DataFrame | None:
        import io

        import polars as pl

        path = self._catalog_path()
        stamp = self.files.stamp(path)
        if stamp is not None and self._catalog_cache and self._catalog_cache[0] == stamp:
            return self._catalog_cache[1]
        try:
            df = pl.read_parquet(io.BytesIO(self.files.read_bytes(path)))
        except FileNotFoundError:
            return None
        self._catalog_cache = (stamp, df) if stamp is not None else None
        return df

    def _write_catalog(self, df: pl.DataFrame) -> None:
        import io

        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        self.files.write_atomic(self._catalog_path(), buf.getvalue())
        self._catalog_cache = None

    def _rows_for(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        rows = []
        for r in run_ids:
            manifest = self.manifest(r)
            ann = manifest.get(ANNOTATIONS_KEY) if manifest.get("format", 1) >= 2 else self.annotations(r)
            rows.append(_catalog_row(manifest, dict(ann or {})))
        return rows

    def rebuild_catalog(self) -> pl.DataFrame:
        """Rebuild ``catalog.parquet`` from the manifests and annotations; returns it."""
        with self.files.lock(LOCK_NAME):
            df = _rows_to_frame(self._rows_for(self.run_ids()))
            self._write_catalog(df)
        return df

    def _update_catalog(self, add: Iterable[str] = (), drop: Iterable[str] = ()) -> pl.DataFrame:
        import polars as pl

        add, drop = list(add), set(drop)
        with self.files.lock(LOCK_NAME):
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
        folder = self.files.path(PENDING_DIR)
        out = []
        for name in self.files.listdir(folder):
            path = self.files.join(folder, name)
            try:
                out.append((path, json.loads(self.files.read_bytes(path))))
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
                self.files.remove(path)

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

        self._reconciled_catalog()
        return self.files.scan_parquet(self._catalog_path())  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ loading

    def load(self, run_id: str, *, streams: Iterable[str] | None = None, lazy: bool = True,
             indexes: bool = True, merged: bool = True) -> Run:
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
        merged
            ``False``: the log's own events only (without the events rules made and
            the label), as rules read them.
        """
        import io

        import polars as pl
        import xarray as xr

        import workbench.accessors  # noqa: F401 - registers ds.wb on the streams

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
        if self._packed(run_id):
            opened = self._open_packed(run_id, names, lazy=lazy, indexes=indexes)
            events_bytes = self.run_file(run_id).read(EVENTS_NAME)
            events = check_events(pl.read_parquet(io.BytesIO(events_bytes)))
            if merged:
                events = self._merged_events(run_id, events, info)
            return Run(info=info, streams=opened, events=events)
        from workbench.zarr_io import UnsupportedLayout, read_stream, register_direct

        opened = {}
        for name in names:
            path = self.files.path(RUNS_DIR, run_id, STREAMS_DIR, f"{name}.zarr")
            try:
                if not lazy:
                    try:
                        opened[name] = read_stream(path, fs=self.files.writer_fs())
                        continue
                    except UnsupportedLayout:
                        pass
                extra: dict[str, Any] = {} if indexes or not lazy else {"create_default_indexes": False}
                ds = xr.open_zarr(self.files.zarr_target(path), chunks={} if lazy else None, consolidated=False, **extra)
                if lazy and self.local:
                    register_direct(ds, path)
                opened[name] = ds if lazy else ds.load()
            except Exception as err:
                msg = f"run {run_id!r}: stream {name!r} cannot be opened: {err}"
                raise StoreError(msg) from err
        events_bytes = self.files.read_bytes(self.files.path(RUNS_DIR, run_id, EVENTS_NAME))
        events = check_events(pl.read_parquet(io.BytesIO(events_bytes)))
        if merged:
            events = self._merged_events(run_id, events, info)
        return Run(info=info, streams=opened, events=events)

    def _open_packed(self, run_id: str, names: list[str], *, lazy: bool, indexes: bool) -> dict[str, xr.Dataset]:
        from workbench.columnar import decode_stream, open_lazy

        rf = self.run_file(run_id)
        opened: dict[str, xr.Dataset] = {}
        for name in names:
            try:
                layout = rf.layout(name)
                tables = rf.tables(name, layout)
                if lazy:
                    opened[name] = open_lazy(layout, tables, indexes=indexes, token=f"{run_id}-{name}-{uuid.uuid4().hex[:8]}")
                else:
                    opened[name] = decode_stream(layout, tables)
            except Exception as err:
                msg = f"run {run_id!r}: stream {name!r} cannot be opened: {err}"
                raise StoreError(msg) from err
        return opened

    def _merged_events(self, run_id: str, events: pl.DataFrame, info: RunInfo,
                       derived: pl.DataFrame | None = None) -> pl.DataFrame:
        """The log's events plus the events rules made (``derived_events``, or *derived*
        when given) and the label's outcome event, each marked by its ``origin``."""
        import polars as pl

        parts = [events]
        if derived is None:
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
        appended along time as they come (see :class:`workbench.columnar.ParquetStreamWriter`),
        written by a background thread while the next part is decoded, so memory is
        bounded by a few parts. *complete*, when given, is called once every stream is
        written, with their overall time span (``None`` when empty), and returns the
        final ``(info, events)`` — for a streamed log, whose metadata is known only
        after its last part; *info* then only gives the run id.
        """
        from workbench.columnar import summary

        if info.run_id in self:
            return False
        if isinstance(streams, Mapping):
            encoded = self._encode_streams(streams)
            span = None
        else:
            encoded, span = self._encode_parts(streams)
        if complete is not None:
            info, events = complete(span)
        tmp = self._write_data_file(info.run_id, events, encoded)
        manifest = {
            "format": MANIFEST_FORMAT,
            "info": info.to_dict(),
            "streams": {name: {k: v for k, v in summary(layout).items() if k != "attrs"}
                        for name, (layout, _tables) in encoded.items()},
            "n_events": events.height,
            "outcome": run_outcome(events),
            "outcome_ns": _outcome_time(events),
        }
        try:
            self.files.publish_file(tmp, self.files.path(RUNS_DIR, f"{info.run_id}{RUN_SUFFIX}"))
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        man = self.files.tmp_file(info.run_id, MANIFEST_SUFFIX)
        with open(man, "wb") as fh:
            fh.write(_manifest_bytes(manifest))
        return self.files.publish_file(man, self._packed_manifest(info.run_id), replace=False)

    def _write_data_file(self, run_id: str, events: pl.DataFrame,
                         encoded: Mapping[str, tuple[dict[str, Any], list[Any]]]) -> str:
        """Write a run's data file (events and encoded streams) to a new local path in
        ``.tmp/``, to publish with :meth:`Files.publish_file`; returns the path."""
        import io

        from workbench.store.runfile import write_run_file

        buf = io.BytesIO()
        events.write_parquet(buf, compression="zstd", statistics=False)
        tmp = self.files.tmp_file(run_id, RUN_SUFFIX)
        try:
            with open(tmp, "wb") as fh:
                write_run_file(fh, buf.getvalue(), encoded)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return tmp

    def _encode_streams(self, streams: Mapping[str, xr.Dataset]) -> dict[str, tuple[dict[str, Any], list[Any]]]:
        """Encode whole streams, several at once (compression releases the GIL)."""
        if len(streams) < 4:
            return {name: self._encode_stream(name, ds) for name, ds in streams.items()}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, len(streams), os.cpu_count() or 1)) as pool:
            futures = {name: pool.submit(self._encode_stream, name, ds) for name, ds in streams.items()}
            return {name: fut.result() for name, fut in futures.items()}

    def _encode_stream(self, name: str, ds: xr.Dataset) -> tuple[dict[str, Any], list[Any]]:
        from workbench.columnar import encode_stream

        ds = self._stream_for_storage(name, ds)
        try:
            return encode_stream(ds)
        except (TypeError, ValueError) as err:
            msg = f"stream {name!r} cannot be stored: {err}"
            raise SchemaError(msg) from err

    def _encode_parts(
        self, parts: Iterable[tuple[str, xr.Dataset]]
    ) -> tuple[dict[str, tuple[dict[str, Any], list[Any]]], tuple[int, int] | None]:
        """Append the parts of streams as they come; returns the encoded streams and time span."""
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        from workbench.columnar import ParquetStreamWriter

        writers: dict[str, ParquetStreamWriter] = {}
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
                    writer = writers[name] = ParquetStreamWriter()
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
        encoded: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        lo: list[int] = []
        hi: list[int] = []
        for name, writer in writers.items():
            try:
                encoded[name] = writer.close()
            except (TypeError, ValueError) as err:
                msg = f"stream {name!r} cannot be stored: {err}"
                raise SchemaError(msg) from err
            if writer.span is not None:
                lo.append(writer.span[0])
                hi.append(writer.span[1])
        return encoded, ((min(lo), max(hi)) if lo else None)

    @staticmethod
    def _stream_for_storage(name: str, ds: xr.Dataset) -> xr.Dataset:
        """*ds*, validated (the encoding makes attributes JSON-safe itself)."""
        check_stream(name, ds)
        return ds

    # ------------------------------------------------------------------ ingest

    def _put_marker(self, path: str, data: dict[str, Any], *, durable: bool = True) -> None:
        self.files.write_atomic(path, json.dumps(data, sort_keys=True).encode(), durable=durable)

    # ------------------------------------------------------------------ editing

    def remove(self, run_id: str) -> None:
        """Delete a run and its catalog row. Raises :class:`StoreError` if absent."""
        if run_id not in self:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg)
        if self._packed(run_id):
            with self.files.lock(LOCK_NAME):  # annotations first: a run is never left with another's
                self.files.remove(self.files.path(RUNS_DIR, f"{run_id}{ANNOTATIONS_SUFFIX}"))
                self.files.remove(self._packed_manifest(run_id))
                self.files.remove(self.files.path(RUNS_DIR, f"{run_id}{RUN_SUFFIX}"))
            self._update_catalog(drop=[run_id])
            return
        final = self.files.path(RUNS_DIR, run_id)
        trash = self.files.path(TMP_DIR, f"removed-{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        with self.files.lock(LOCK_NAME):
            self.files.retire(final, trash)
        self.files.rmtree(trash)
        self._update_catalog(drop=[run_id])

    def annotate(self, run_id: str, section: str, values: dict[str, Any]) -> None:
        """Store an annotation section (e.g. ``quality``, ``metrics``) beside a run.

        Its values appear in the catalog as ``<section>.<key>`` columns and survive
        :meth:`rebuild_catalog`.
        """
        self.annotate_many(section, {run_id: values})

    def annotate_many(self, section: str, values: Mapping[str, dict[str, Any]]) -> None:
        """:meth:`annotate` for many runs with one catalog update."""
        self.annotate_sections({run_id: {section: vals} for run_id, vals in values.items()})

    def annotate_sections(self, values: Mapping[str, Mapping[str, dict[str, Any]]],
                          tables: Mapping[str, Mapping[str, pl.DataFrame]] | None = None) -> None:
        """Store several annotation sections of many runs (run id → section → values),
        and derived tables with them (run id → name → table, as :meth:`put_table`):
        one write per run, one catalog update."""
        tables = tables or {}
        for run_id, named in tables.items():
            if run_id not in values:
                msg = f"tables for run {run_id!r} come without its annotation sections"
                raise ConfigError(msg)
            for name in named:
                _check_table_name(name)
        sections = sorted({section for per_run in values.values() for section in per_run})
        for section in sections:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", section) or section in FACTOR_GROUPS:
                msg = f"annotation section {section!r} must be lowercase letters/digits/_ and not a factor group"
                raise ConfigError(msg)
        for run_id in values:
            if run_id not in self:
                msg = f"no run {run_id!r} in store {self.url!r}"
                raise StoreError(msg)
        marker = None
        if self.local and values:  # a crash before the catalog update is repaired on the next read
            self.files.makedirs(self.files.path(PENDING_DIR))
            marker = self.files.path(PENDING_DIR, f"{'+'.join(sections)[:80]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.json")
            self._put_marker(marker, {"pid": os.getpid(), "section": ",".join(sections), "runs": sorted(values)})
        packed = [r for r in values if self._packed(r)]
        if packed:
            with self.files.lock(LOCK_NAME):  # the manifest holds every section: read, change, replace
                for run_id in packed:
                    manifest = self.manifest(run_id)
                    sections_now = dict(manifest.get(ANNOTATIONS_KEY) or {})
                    sections_now.update({section: json_safe(vals) for section, vals in values[run_id].items()})
                    manifest[ANNOTATIONS_KEY] = sections_now
                    for name, table in (tables.get(run_id) or {}).items():
                        self._place_table(run_id, manifest, name, table)
                    self.write_manifest(run_id, manifest)
        for run_id, per_run in values.items():
            if run_id in packed:
                continue
            for name, table in (tables.get(run_id) or {}).items():
                self.put_table(run_id, name, table)
            folder = self.files.path(RUNS_DIR, run_id, ANNOTATIONS_DIR)
            self.files.makedirs(folder)
            for section, vals in per_run.items():
                self.files.write_atomic(
                    self.files.join(folder, f"{section}.json"), json.dumps(json_safe(vals), sort_keys=True).encode()
                )
        if values:
            self._update_catalog(drop=list(values))
            self._update_catalog(add=list(values))
        if marker is not None:
            self.files.remove(marker)

    def _write_annotation_members(self, run_id: str, members: Mapping[str, bytes]) -> None:
        """Replace a run's file of large tables (hold the store lock); none when empty."""
        from workbench.store.runfile import zip_bytes

        path = self.files.path(RUNS_DIR, f"{run_id}{ANNOTATIONS_SUFFIX}")
        if members:
            self.files.write_atomic(path, zip_bytes(members))
        else:
            self.files.remove(path)

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

    def current_outcome(self, run_id: str) -> str | None:
        """The run's outcome as the catalog shows it (resolved annotation, else the log's)."""
        resolved = self.annotations(run_id).get(OUTCOME_SECTION)
        if resolved is not None:
            return resolved.get("outcome")
        return self.manifest(run_id).get("outcome")

    def record_look(self, key: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Append one look of a sequential comparison (``comparisons/<key>.json``) and
        return every look so far, this one last (its number is the list's length)."""

        if not re.fullmatch(r"[0-9a-f]{8,64}", key):
            msg = f"comparison key {key!r} must be hexadecimal"
            raise ConfigError(msg)
        path = self.files.path(COMPARISONS_DIR, f"{key}.json")
        looks: list[dict[str, Any]] = json.loads(self.files.read_bytes(path)) if self.files.exists(path) else []
        looks.append(json_safe(entry))
        self.files.makedirs(self.files.path(COMPARISONS_DIR))
        self.files.write_atomic(path, json.dumps(looks, sort_keys=True).encode())
        return looks

    def put_rules(self, digest: str, text: str) -> None:
        """Keep the text of a rule set once per store (``rules/<digest>.yaml``)."""

        if not re.fullmatch(r"[0-9a-f]{8,64}", digest):
            msg = f"rule set hash {digest!r} must be hexadecimal"
            raise ConfigError(msg)
        path = self.files.path(RULES_DIR, f"{digest}.yaml")
        if not self.files.exists(path):
            self.files.makedirs(self.files.path(RULES_DIR))
            self.files.write_atomic(path, text.encode())

    def get_rules(self, digest: str) -> str | None:
        """The text of a rule set kept with :meth:`put_rules`, or ``None``."""
        path = self.files.path(RULES_DIR, f"{digest}.yaml")
        return self.files.read_bytes(path).decode() if self.files.exists(path) else None

    def put_table(self, run_id: str, name: str, table: pl.DataFrame) -> None:
        """Keep a derived table (e.g. quality findings) beside a run, as Parquet."""
        import io

        if run_id not in self:
            msg = f"no run {run_id!r} in store {self.url!r}"
            raise StoreError(msg)
        _check_table_name(name)
        if self._packed(run_id):
            with self.files.lock(LOCK_NAME):
                manifest = self.manifest(run_id)
                if self._place_table(run_id, manifest, name, table):
                    self.write_manifest(run_id, manifest)
            return
        buf = io.BytesIO()
        table.write_parquet(buf, compression="zstd", statistics=False)
        folder = self.files.path(RUNS_DIR, run_id, ANNOTATIONS_DIR)
        self.files.makedirs(folder)
        self.files.write_atomic(self.files.join(folder, f"{name}.parquet"), buf.getvalue())

    def _place_table(self, run_id: str, manifest: dict[str, Any], name: str, table: pl.DataFrame) -> bool:
        """Put a derived table into *manifest* when small, else into the run's ``.ann``
        file (hold the store lock); True when *manifest* changed and must be written."""
        import io

        buf = io.BytesIO()
        table.write_parquet(buf, compression="zstd", statistics=False)
        return self._place_table_bytes(run_id, manifest, name, buf.getvalue())

    def _place_table_bytes(self, run_id: str, manifest: dict[str, Any], name: str, data: bytes) -> bool:
        """:meth:`_place_table` of a table already written as Parquet *data*."""
        before = dict(manifest.get(TABLES_KEY) or {})
        inline = dict(before)
        members = self._annotation_members(run_id)
        if len(data) <= INLINE_TABLE_BYTES:  # small (most are): inside the manifest
            inline[name] = base64.b64encode(data).decode()
            if members.pop(f"{name}.parquet", None) is not None:
                self._write_annotation_members(run_id, members)
        else:
            inline.pop(name, None)
            members[f"{name}.parquet"] = data
            self._write_annotation_members(run_id, members)
        if inline == before:
            return False
        manifest[TABLES_KEY] = inline
        return True

    def get_table(self, run_id: str, name: str) -> pl.DataFrame | None:
        """A table stored with :meth:`put_table`, or ``None``."""
        import io

        import polars as pl

        if self._packed(run_id):
            encoded = (self.manifest(run_id).get(TABLES_KEY) or {}).get(name)
            data = base64.b64decode(encoded) if encoded is not None else self._annotation_members(run_id).get(f"{name}.parquet")
            return None if data is None else pl.read_parquet(io.BytesIO(data))
        path = self.files.path(RUNS_DIR, run_id, ANNOTATIONS_DIR, f"{name}.parquet")
        if not self.files.exists(path):
            return None
        return pl.read_parquet(io.BytesIO(self.files.read_bytes(path)))


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()


def _check_table_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        msg = f"table name {name!r} must be lowercase letters/digits/_"
        raise ConfigError(msg)
