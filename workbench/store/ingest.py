"""The ingest pipeline: files → readers → provenance and factors → runs written
once (content addresses), in this process or mapped over Dask workers."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._version import __version__
from workbench.io.registry import Reader, RunData, check_options, get_reader, guess_reader
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
    RunInfo,
    Scalar,
    SourceFile,
    WorkbenchError,
    check_events,
    json_safe,
)
from workbench.parallel import map_runs
from workbench.store.catalog import (
    _span,
)
from workbench.store.layout import (
    ADDRESS_NEUTRAL_OPTIONS,
    SOURCES_DIR,
)

if TYPE_CHECKING:
    import polars as pl

    from workbench.store.core import StoreCore

__all__ = ["IngestReport", "collect_sources", "ingest", "ingest_source", "ingest_sources", "make_info"]


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


def _sha256(path: Path, bufsize: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def _tree_size(reader: Any, path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in reader.source_files(path))
    except (OSError, WorkbenchError):
        return 0


@contextmanager
def _progress_bar(total: int, *, enabled: bool, verb: str = "ingest") -> Iterator[Callable[[int, str], None]]:
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
        TextColumn(f"[bold]{verb}[/bold] {{task.description:<40.40}}"),
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


def ingest(
    store: StoreCore,
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
    """The pipeline behind :meth:`workbench.store.Store.ingest` (its docstring gives the
    parameters): sources collected, then read here or mapped over Dask workers, the
    catalog updated once, and the format defaults and configured rules applied to the new
    runs."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    meta_factors = parse_meta(meta)
    path_pattern = PathPattern(pattern) if pattern else None
    options = dict(options or {})
    report = IngestReport()
    if reader is not None:
        get_reader(reader)  # an unknown name is an error listing the readers, not "skipped"
    sources = collect_sources(store, [Path(p) for p in paths], reader, report)
    if scheduler is not None:
        report = ingest_sources(
            store, sources, report, options=options, meta=meta_factors, pattern=pattern,
            salvage=salvage, scheduler=scheduler, progress=progress is True,
        )
        if events and report.ingested:
            _apply_events(store, report, scheduler=scheduler, progress=progress is True)
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

            new_ids.extend(_read_source(store, src, root, rdr, options, meta_factors, path_pattern, salvage,
                                        report, progress=step))
            if callable(progress) and size - done:
                progress(str(src), size - done)
            advance(size - done, src.name)
    if new_ids or not store.files.exists(store._catalog_path()):
        store._update_catalog(add=new_ids)
    if events and new_ids:  # in this process, one run after another, like the ingest
        _apply_events(store, report, scheduler="sync", progress=False)
    return report


def _apply_events(store: StoreCore, report: IngestReport, *, scheduler: Any, progress: bool) -> None:
    """Format defaults and the configured rules on newly ingested runs.

    A rule that cannot be evaluated on them is reported in ``report.events_error``
    (the runs stay ingested; fix the rules and run ``workbench events apply``)."""
    from workbench.events.apply import apply_rules

    try:
        report.events = apply_rules(store, run_ids=report.ingested, scheduler=scheduler, progress=progress, strict=False)
    except ConfigError as err:
        report.events_error = str(err)


def collect_sources(
    store: StoreCore, paths: list[Path], reader: str | None, report: IngestReport
) -> list[tuple[Path, Path, int, Reader]]:
    """The sources under *paths*: ``(source, the path given, bytes, reader)`` each; a
    folder a reader claims whole is one source. What no reader claims is listed in
    *report* (failed when named, skipped when found in a folder)."""
    out: list[tuple[Path, Path, int, Reader]] = []
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


def ingest_source(
    store: StoreCore,
    path: Path,
    root: Path,
    reader: Reader,
    options: dict[str, Any],
    meta: dict[str, Scalar],
    pattern: PathPattern | None,
    report: IngestReport,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], list[str]]:
    """Read one source into runs.

    A reader's declared capabilities (:class:`~workbench.io.registry.Reader`) say how
    it is called; they are never part of a run's address or provenance: with
    ``supports_progress``, ``progress`` (given *progress*) is called with the bytes of
    the source read so far; with ``supports_parts``, ``parts=True`` lets the reader
    yield runs whose streams arrive in parts
    (:class:`~workbench.io.messages.StreamingRunData`), written part by part so that a
    log larger than memory can be ingested.
    """
    opts = check_options(reader, options)
    call: dict[str, Any] = {}
    if getattr(reader, "supports_parts", False):
        call["parts"] = True
    if getattr(reader, "supports_progress", False) and progress is not None:
        call["progress"] = progress
    files = reader.source_files(path)
    sources = tuple(
        SourceFile(path=str(f.resolve()), size=f.stat().st_size, sha256=_sha256(f)) for f in files
    )
    key_material = json.dumps(
        {
            "reader": reader.name,
            "options": json_safe({k: v for k, v in opts.items() if k not in ADDRESS_NEUTRAL_OPTIONS}),
            "files": sorted(s.sha256 for s in sources),
        },
        sort_keys=True,
    )
    source_key = hashlib.sha256(key_material.encode()).hexdigest()[:24]
    marker = store.files.path(SOURCES_DIR, f"{source_key}.json")
    if store.files.exists(marker):
        try:  # a marker torn by a crash reads as absent: the source is read again
            listed = json.loads(store.files.read_bytes(marker)).get("runs", [])
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            listed = []
        if listed and all(r in store for r in listed):
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
            if run_id in store:
                present.append(run_id)
                if parts is not None and hasattr(parts, "close"):
                    parts.close()
                continue
            if parts is None:
                info = make_info(run_id, data, layers_base, reader, opts, sources)
                events = check_events(data.events)
                written = store._write_run(info, data.streams, events)
            else:

                def complete(
                    span: tuple[int, int] | None, data: RunData = data, run_id: str = run_id
                ) -> tuple[RunInfo, pl.DataFrame]:
                    # a streamed run's metadata and events are complete only now
                    info = make_info(run_id, data, layers_base, reader, opts, sources)
                    events = check_events(data.events)
                    if span is not None and data.span is None:
                        lo, hi = span
                        if events.height:
                            lo, hi = min(lo, info.start_ns), max(hi, info.end_ns)
                        info = dataclasses.replace(info, start_ns=lo, end_ns=hi)
                    return info, events

                written = store._write_run(RunInfo(run_id=run_id), parts, data.events, complete=complete)
            if written:
                ingested.append(run_id)
            else:
                present.append(run_id)
            if data.skipped:
                report.warnings.append(
                    {"path": str(path), "run_id": run_id, "skipped": json_safe(data.skipped)}
                )
            if data.extra.get("salvaged"):
                report.warnings.append(
                    {"path": str(path), "run_id": run_id, "salvaged": json_safe(data.extra["salvaged"])}
                )
    except WorkbenchError:
        if ingested:
            store._update_catalog(add=ingested)
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as err:
        if ingested:
            store._update_catalog(add=ingested)
        msg = f"{str(path)!r}: {reader.name} reader failed: {type(err).__name__}: {err}"
        raise ReaderError(msg) from err
    if not all_ids:
        msg = f"{str(path)!r}: the {reader.name} reader found no run in it"
        raise ReaderError(msg)
    # derived (which runs a source made): not flushed, rebuilt by reading the source again
    store._put_marker(marker, {"runs": all_ids, "reader": reader.name, "path": str(path)}, durable=False)
    return ingested, present


def make_info(
    run_id: str,
    data: RunData,
    layers_base: FactorLayers,
    reader: Any,
    opts: dict[str, Any],
    sources: tuple[SourceFile, ...],
) -> RunInfo:
    """The :class:`RunInfo` of one run a reader yielded: factors merged from every
    layer (embedded, ``workbench.yaml``, sidecars, pattern, ``--meta``), provenance
    of the source files, reader and options, and the run's time span."""
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
        options=json_safe(opts),
        workbench_version=__version__,
        ingested_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        key=data.key,
        metadata=origin,
        overrides=tuple(json_safe(overrides)),
        skipped=tuple(json_safe(data.skipped)),
        extra=json_safe(data.extra),
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


def _read_source(
    store: StoreCore,
    src: Path,
    root: Path,
    reader: Reader,
    options: dict[str, Any],
    meta: dict[str, Scalar],
    pattern: PathPattern | None,
    salvage: bool,
    report: IngestReport,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """:func:`ingest_source` for one source, its outcome recorded in *report*; never
    raises for bad input (a failure is listed, so the other sources proceed). Returns
    the new run ids."""
    opts = dict(options)
    if salvage and reader.supports_salvage:
        opts["salvage"] = True
    try:
        ids, present = ingest_source(store, src, root, reader, opts, meta, pattern, report, progress=progress)
    except WorkbenchError as err:
        report.failed.append({"path": str(src), "error": str(err)})
        return []
    except Exception as err:  # noqa: BLE001 - a reader bug must not lose the other files
        report.failed.append({"path": str(src), "error": f"unexpected {type(err).__name__}: {err}"})
        return []
    report.ingested.extend(ids)
    report.present.extend(present)
    return ids


def _ingest_task(
    item: tuple[str, str, str],
    store_url: str,
    options: dict[str, Any],
    meta: dict[str, Any],
    pattern: str | None,
    salvage: bool,
) -> dict[str, Any]:
    """Read one source ``(path, root, reader name)`` into the store (runs in a worker).
    Never raises for bad input: the failure is returned, so the other sources proceed."""
    from workbench.store.core import StoreCore

    src, root, reader_name = item
    store = StoreCore(store_url, create=False)
    report = IngestReport()
    _read_source(store, Path(src), Path(root), get_reader(reader_name), options, meta,
                 PathPattern(pattern) if pattern else None, salvage, report)
    return {"ingested": report.ingested, "present": report.present, "warnings": report.warnings, "failed": report.failed}


def ingest_sources(
    store: StoreCore,
    sources: Sequence[tuple[Path, Path, int, Reader]],
    report: IngestReport,
    *,
    options: dict[str, Any],
    meta: dict[str, Any],
    pattern: str | None,
    salvage: bool,
    scheduler: Any,
    progress: bool = False,
) -> IngestReport:
    """The parallel path of :meth:`workbench.store.Store.ingest` (one task per source).

    A task retried after its worker died finds the runs it had already written
    (content addresses) and writes only the rest: every run lands exactly once.
    """
    # one task per source, all mapped at once (each carries its own root and reader)
    items = [(str(src), str(root), rdr.name) for src, root, _size, rdr in sources]
    new_ids: list[str] = []
    results = map_runs(
        _ingest_task, items,
        args=(store.url, dict(options), dict(meta), pattern, salvage),
        scheduler=scheduler, progress=progress, label="ingest",
    )
    for res in results:
        report.ingested.extend(res["ingested"])
        report.present.extend(res["present"])
        report.warnings.extend(res["warnings"])
        report.failed.extend(res["failed"])
        new_ids.extend(res["ingested"])
    store._update_catalog(add=new_ids)
    return report
