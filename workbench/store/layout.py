"""Where things are in a store: the folder layout's names and the default location.

::

    <store>/
      catalog.parquet                 derived index, rebuilt from manifests
      runs/<run_id>.json              the manifest: RunInfo, streams, outcome, annotation
                                      sections (grades, metrics, labels) and small derived
                                      tables (written last: a run exists once it does)
      runs/<run_id>.run               the run's events and streams, one file
                                      (see :mod:`workbench.store.runfile`)
      runs/<run_id>.ann               derived tables too large for the manifest (optional)
      sources/<source_key>.json       which runs a source file produced
      .tmp/                           runs being written (never read as runs)

Stores written before this layout keep a folder per run, still read as they are
(``workbench migrate`` rewrites them)::

      runs/<run_id>/run.json, events.parquet, streams/<name>.zarr, annotations/
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ADDRESS_NEUTRAL_OPTIONS",
    "ANNOTATIONS_DIR",
    "ANNOTATIONS_SUFFIX",
    "CATALOG_PATH",
    "COMPARISONS_DIR",
    "DEFAULT_STORE",
    "DERIVED_EVENTS",
    "EVENTS_NAME",
    "EVENTS_SECTION",
    "LABELS_SECTION",
    "LOCK_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MANIFEST_SUFFIX",
    "MARKS_SECTION",
    "OUTCOME_SECTION",
    "PENDING_DIR",
    "RULES_DIR",
    "RUNS_DIR",
    "RUN_SUFFIX",
    "SOURCES_DIR",
    "STREAMS_DIR",
    "TMP_DIR",
    "Files",
    "LocalFiles",
    "RemoteFiles",
    "default_store_path",
    "open_files",
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
MANIFEST_FORMAT = 2
"""Format of runs written now (1: the folder-per-run layout of earlier releases)."""
RUN_SUFFIX = ".run"
MANIFEST_SUFFIX = ".json"
ANNOTATIONS_SUFFIX = ".ann"


def default_store_path() -> str:
    """``$WORKBENCH_STORE`` when set, else ``./workbench-store``."""
    from workbench.config import env

    return env("WORKBENCH_STORE") or DEFAULT_STORE


def _tmp_name(stem: str, suffix: str) -> str:
    return f"{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"


def _flush(fd: int) -> None:
    """Flush a file's data (and the size it needs) to disk: ``fdatasync`` where there is
    one (it skips timestamps), else ``fsync``."""
    sync = getattr(os, "fdatasync", None) or os.fsync
    sync(fd)


# --------------------------------------------------------------------------- the files


class Files:
    """A store's files: one adapter for a local folder (:class:`LocalFiles`) and any
    fsspec filesystem (:class:`RemoteFiles`), so the store never branches on where it is.

    Paths are absolute within the filesystem (``path(…)`` joins under the root).
    """

    local: bool = False
    """Files on this machine (pids of other writers can be checked, files read directly)."""
    renames_atomically: bool = False
    """A folder moved into place appears whole (a local rename), so listing ``runs/`` suffices."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root

    def path(self, *parts: str) -> str:
        """*parts* joined under the store's root."""
        return self.join(self.root, *parts)

    def join(self, *parts: str) -> str:
        """*parts* joined with the filesystem's separator."""
        return "/".join(parts)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        return bool(self.fs.isdir(path))

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        """Names in the folder *path*; empty when it does not exist."""
        try:
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]
        except FileNotFoundError:
            return []

    def read_bytes(self, path: str) -> bytes:
        """The file's bytes; :class:`FileNotFoundError` when absent."""
        with self.fs.open(path, "rb") as fh:
            return bytes(fh.read())

    def put(self, path: str, data: bytes) -> None:
        """Write a file of a run being built (published later as a whole)."""
        with self.fs.open(path, "wb") as fh:
            fh.write(data)

    def write_atomic(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Replace the file at *path* at once (an object store's put is atomic).

        *durable*: flushed to disk before it replaces the old file; ``False`` for what
        can be rebuilt (a torn file then reads as absent)."""
        self.put(path, data)

    def remove(self, path: str) -> None:
        """Delete a file; nothing when it is absent."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path)

    def rmtree(self, path: str) -> None:
        """Delete a folder and everything in it; nothing when it is absent."""
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def tmp_file(self, stem: str, suffix: str) -> str:
        """A new local path (``<stem>.<pid>.<random><suffix>``) to build a file in before
        :meth:`publish_file`; the pid lets the next open remove what a dead writer left."""
        import tempfile

        folder = tempfile.mkdtemp(prefix="workbench-")
        return os.path.join(folder, _tmp_name(stem, suffix))

    def publish_file(self, local: str, final: str, *, replace: bool = True) -> bool:
        """Move the finished local file *local* to *final* in one step (one request on an
        object store). Without *replace*, False (and *local* removed) when *final* exists."""
        try:
            if not replace and self.exists(final):
                return False
            self.fs.put_file(local, final)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.remove(local)
                os.rmdir(os.path.dirname(local))

    def retire(self, final: str, trash: str) -> None:
        """Take the run folder *final* out of ``runs/`` (manifest first), to *trash*."""
        self.fs.rm(self.join(final, MANIFEST_NAME))
        self.fs.mv(final, trash, recursive=True)

    def stamp(self, path: str) -> tuple[int, int, int] | None:
        """A stamp that changes whenever the file is replaced or rewritten (inode,
        modification time, size); ``None`` when unknown (read it again every time)."""
        return None

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Exclusive among this store's writers (no-op where files cannot be locked)."""
        yield

    def scheme(self) -> str:
        protocol = self.fs.protocol
        return str(protocol[0] if isinstance(protocol, tuple) else protocol)

    def url(self, path: str) -> str:
        """*path* as a URL other libraries open (zarr, polars)."""
        return f"{self.scheme()}://{path}"

    def zarr_target(self, path: str) -> Any:
        """What ``xarray.open_zarr`` / ``to_zarr`` take for the Zarr group at *path*."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self.url(path))

    def writer_fs(self) -> Any:
        """The filesystem :mod:`workbench.zarr_io` writes through (``None``: local files)."""
        return self.fs

    def scan_parquet(self, path: str) -> Any:
        """A polars lazy scan of the Parquet file at *path*."""
        import io

        import polars as pl

        if self.scheme() == "memory":  # not a polars cloud scheme: read through fsspec
            return pl.read_parquet(io.BytesIO(self.read_bytes(path))).lazy()
        return pl.scan_parquet(self.url(path), storage_options=getattr(self.fs, "storage_options", None) or None)


class LocalFiles(Files):
    """A local folder: writes are flushed to disk and published by atomic renames; the
    catalog is guarded by a file lock."""

    local = True
    renames_atomically = True

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def put(self, path: str, data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data)

    def write_atomic(self, path: str, data: bytes, *, durable: bool = True) -> None:
        # written in .tmp/ (same filesystem), so a writer killed mid-way leaves nothing
        # beside the target; the pid in the name lets the next open remove it
        folder = self.path(TMP_DIR)
        tmp = os.path.join(folder, f"atomic.{os.getpid()}.{uuid.uuid4().hex[:8]}.{os.path.basename(path)}")
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(data)
            if durable:
                fh.flush()
                _flush(fh.fileno())
        os.replace(tmp, path)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def retire(self, final: str, trash: str) -> None:
        os.rename(final, trash)

    def tmp_file(self, stem: str, suffix: str) -> str:
        folder = self.path(TMP_DIR)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, _tmp_name(stem, suffix))

    def publish_file(self, local: str, final: str, *, replace: bool = True) -> bool:
        fd = os.open(local, os.O_RDONLY)
        try:
            _flush(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(local, final)
            return True
        try:
            os.link(local, final)  # atomic, and never over a file already there
        except FileExistsError:
            os.remove(local)
            return False
        except OSError as err:  # a filesystem without hard links
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if os.path.exists(final):
                os.remove(local)
                return False
            os.rename(local, final)
            return True
        os.remove(local)
        return True

    def stamp(self, path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(self.path(name), timeout=600):
            yield

    def zarr_target(self, path: str) -> Any:
        return path

    def writer_fs(self) -> Any:
        return None

    def scan_parquet(self, path: str) -> Any:
        import polars as pl

        return pl.scan_parquet(path)


RemoteFiles = Files
"""Files on any fsspec filesystem (``memory://``, ``s3://`` …): the base behaviour."""


def open_files(url: str) -> Files:
    """The :class:`Files` adapter for the store at *url* (a local path or an fsspec URL).

    Examples
    --------
    >>> open_files("memory://doc-files").local, open_files(".").local
    (False, True)
    """
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(url)
    if isinstance(fs, LocalFileSystem):
        return LocalFiles(fs, os.path.abspath(root))
    return Files(fs, root.rstrip("/"))
