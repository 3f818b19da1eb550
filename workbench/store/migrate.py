"""Rewrite a store of the folder-per-run layout (format 1) into the current one.

Run by run: the run's streams, events and annotations are read from its folder,
written as a run file and an annotations file, read back and compared by checksum,
and only then published (its manifest) and the folder removed. A crash leaves every
run either in its old form or in its new one, never both half-done; running again
resumes where it stopped. The catalog is rebuilt at the end and must equal the one
before.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.model import StoreError
from workbench.store.core import ANNOTATIONS_KEY, StoreCore, _manifest_bytes
from workbench.store.layout import (
    ANNOTATIONS_DIR,
    ANNOTATIONS_SUFFIX,
    EVENTS_NAME,
    LOCK_NAME,
    MANIFEST_FORMAT,
    MANIFEST_SUFFIX,
    RUN_SUFFIX,
    RUNS_DIR,
    TMP_DIR,
)

if TYPE_CHECKING:
    import xarray as xr


__all__ = ["MigrationReport", "migrate", "stream_digest"]


@dataclass
class MigrationReport:
    """What :func:`migrate` did."""

    migrated: list[str] = field(default_factory=list)
    already: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0

    @property
    def mb_per_s(self) -> float:
        """Megabytes of old runs rewritten per second."""
        return self.bytes_before / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{len(self.migrated)} runs migrated, {self.already} already in the current layout; "
                f"{self.bytes_before / 1e6:.1f} MB → {self.bytes_after / 1e6:.1f} MB in {self.seconds:.1f} s "
                f"({self.mb_per_s:.1f} MB/s)")


def stream_digest(ds: xr.Dataset) -> str:
    """A checksum of a stream's content: every variable's name, dims, dtype and values,
    and the attributes (the same for a stream read from either layout)."""
    import numpy as np

    h = hashlib.sha256()
    h.update(json.dumps(ds.attrs, sort_keys=True, default=str).encode())
    for name in sorted(map(str, ds.variables)):
        var = ds.variables[name]
        values = np.asarray(var.values)
        h.update(json.dumps([name, list(map(str, var.dims)), values.dtype.str, list(values.shape),
                             json.dumps(dict(var.attrs), sort_keys=True, default=str), name in ds.coords]).encode())
        if values.dtype.kind == "O":
            h.update(json.dumps([None if v is None or v != v else v for v in values.ravel().tolist()], default=repr).encode())
        else:
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def _tree_bytes(files: Any, path: str) -> int:
    if not files.local:
        return 0
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
    return total


def migrate(store: StoreCore, *, progress: bool = False) -> MigrationReport:
    """Rewrite every run of the folder layout in *store* into the current layout.

    Returns a :class:`MigrationReport`. Raises :class:`StoreError` naming the run when
    a rewritten run does not read back equal (that run is left as it was) or when the
    catalog after differs from the catalog before.
    """
    import io

    import polars as pl

    from workbench.columnar import decode_stream

    files = store.files
    report = MigrationReport()
    t0 = time.perf_counter()
    # a run published in the new layout whose old folder was not yet removed (a crash)
    for name in files.listdir(files.path(RUNS_DIR)):
        if "." not in name and files.exists(files.path(RUNS_DIR, f"{name}{MANIFEST_SUFFIX}")):
            files.rmtree(files.path(RUNS_DIR, name))
    ids = store.run_ids()
    old = [r for r in ids if not store._packed(r)]
    report.already = len(ids) - len(old)
    before = store.rebuild_catalog() if old else None
    from workbench.store.ingest import _progress_bar

    sizes = {r: _tree_bytes(files, files.path(RUNS_DIR, r)) for r in old}
    with _progress_bar(sum(sizes.values()), enabled=progress and bool(old), verb="migrate") as advance:
        for rid in old:
            manifest = store.manifest(rid)
            run = store.load(rid, lazy=False)
            events = pl.read_parquet(io.BytesIO(files.read_bytes(files.path(RUNS_DIR, rid, EVENTS_NAME))))
            digests = {name: stream_digest(ds) for name, ds in run.streams.items()}
            members: dict[str, bytes] = {}
            folder = files.path(RUNS_DIR, rid, ANNOTATIONS_DIR)
            for name in files.listdir(folder):
                if name.endswith((".json", ".parquet")):
                    members[name] = files.read_bytes(files.join(folder, name))
            # the data file, then read back and compared before anything is published
            tmp = store._write_data_file(rid, events, {n: store._encode_stream(n, ds) for n, ds in run.streams.items()})
            from workbench.store.runfile import RunFile

            check = RunFile(tmp)
            for name, digest in digests.items():
                layout = check.layout(name)
                back = decode_stream(layout, check.tables(name, layout))
                if stream_digest(back) != digest:
                    os.remove(tmp)
                    msg = f"run {rid!r}: stream {name!r} does not read back equal after migration; the run is left as it was"
                    raise StoreError(msg)
            if not pl.read_parquet(io.BytesIO(check.read(EVENTS_NAME))).equals(events):
                os.remove(tmp)
                msg = f"run {rid!r}: events do not read back equal after migration; the run is left as it was"
                raise StoreError(msg)
            new_manifest = dict(manifest)
            new_manifest["format"] = MANIFEST_FORMAT
            new_manifest["streams"] = {n: {k: v for k, v in s.items() if k != "attrs"} for n, s in manifest["streams"].items()}
            sections = {n[:-5]: json.loads(data) for n, data in sorted(members.items()) if n.endswith(".json")}
            if sections:
                new_manifest[ANNOTATIONS_KEY] = sections
            with files.lock(LOCK_NAME):
                files.publish_file(tmp, files.path(RUNS_DIR, f"{rid}{RUN_SUFFIX}"))
                for n, data in sorted(members.items()):  # small tables into the manifest, large ones beside
                    if n.endswith(".parquet"):
                        store._place_table_bytes(rid, new_manifest, n[: -len(".parquet")], data)
                files.write_atomic(store._packed_manifest(rid), _manifest_bytes(new_manifest))
                trash = files.path(TMP_DIR, f"migrated-{rid}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
                if files.local:  # out of runs/ at once; deleted outside the lock
                    files.retire(files.path(RUNS_DIR, rid), trash)
                else:
                    files.rmtree(files.path(RUNS_DIR, rid))
            files.rmtree(trash)
            report.migrated.append(rid)
            report.bytes_before += sizes[rid]
            report.bytes_after += sum(_size(files, files.path(RUNS_DIR, f"{rid}{s}"))
                                      for s in (RUN_SUFFIX, MANIFEST_SUFFIX, ANNOTATIONS_SUFFIX))
            advance(sizes[rid], run.info.name)
    if before is not None:
        after = store.rebuild_catalog()
        if not after.equals(before):
            msg = "the catalog after migration differs from the catalog before; run `workbench rebuild` and compare"
            raise StoreError(msg)
    report.seconds = time.perf_counter() - t0
    return report


def _size(files: Any, path: str) -> int:
    if not files.exists(path):
        return 0
    return os.path.getsize(path) if files.local else int(files.fs.size(path))

