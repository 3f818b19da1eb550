"""The run store: a directory (local or any fsspec URL) of runs and a derived catalog.

A package: :mod:`~workbench.store.layout` (names of the folder layout),
:mod:`~workbench.store.catalog` (catalog rows and ``where`` conditions),
:mod:`~workbench.store.locking`, :mod:`~workbench.store.core` (reading and writing
runs), :mod:`~workbench.store.ingest` (the pipeline from files to runs, here or on
Dask workers), :mod:`~workbench.store.factors` (factor tables), and the
:class:`Store` front defined here. Layout::

    <store>/
      catalog.parquet                 derived index, rebuilt from manifests
      runs/<run_id>.json              the manifest: RunInfo, stream list, outcome, annotations
      runs/<run_id>.run               events and streams in one file (a zip of Parquet)
      runs/<run_id>.ann               derived tables too large for the manifest (optional)
      sources/<source_key>.json       which runs a source file produced
      .tmp/                           runs being written (never read as runs)

Stores of earlier releases (a folder per run, streams as Zarr) open as they are;
``workbench migrate`` rewrites them.

Guarantees:

* run ids are content addresses (source bytes + reader + options + key inside the
  source): ingesting the same log twice is a no-op reported as ``present``;
* a run's data file is written into ``.tmp/``, flushed and renamed into ``runs/``,
  then its manifest the same way: a run exists once its manifest does, so a crash
  never leaves a half-written run visible;
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

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from workbench.store import layout as _layout
from workbench.store.catalog import WALL_CLOCK_FROM_NS, WHERE_FUNCTIONS, check_where, wall_clock_start
from workbench.store.core import StoreCore
from workbench.store.factors import FactorUpdate
from workbench.store.factors import set_factors as _set_factors
from workbench.store.ingest import IngestReport
from workbench.store.ingest import ingest as _ingest
from workbench.store.layout import *  # noqa: F403 - the layout's names are the store's too
from workbench.store.layout import default_store_path

if TYPE_CHECKING:
    import polars as pl

    from workbench.store.migrate import MigrationReport

__all__ = [
    "WALL_CLOCK_FROM_NS",
    "WHERE_FUNCTIONS",
    "FactorUpdate",
    "IngestReport",
    "Store",
    "StoreCore",
    "check_where",
    "open_store",
    "wall_clock_start",
]
__all__ += _layout.__all__  # the folder layout's names and the default location


class Store(StoreCore):
    """A folder of runs with a catalog. Create with :func:`open_store`.

    Everything of :class:`~workbench.store.core.StoreCore` (catalog, loading, writing,
    annotations) plus the ingest pipeline, factor tables and event rules.

    Parameters
    ----------
    url
        Local path or fsspec URL.
    create
        Create the folder layout if missing.
    """

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
        return _ingest(self, paths, meta=meta, pattern=pattern, reader=reader, options=options, salvage=salvage,
                       progress=progress, scheduler=scheduler, events=events)


    def migrate(self, *, progress: bool = False) -> MigrationReport:
        """Rewrite the runs of an earlier release's folder layout into run files, one
        run at a time, each verified by checksum (see :mod:`workbench.store.migrate`).

        >>> import workbench as wb
        >>> wb.open_store("memory://doc-migrate").migrate().migrated
        []
        """
        from workbench.store.migrate import migrate

        return migrate(self, progress=progress)

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
        return _set_factors(self, table, on, source=source)


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
