"""Behavior metrics as plugins: the interface, the registry, and per-run computation.

A metric is a class with ``name``, ``description``, ``columns`` (the output columns
with their kind: ``"rate"`` for 0/1 outcomes, ``"continuous"``, ``"count"`` or
``"category"``, their unit, and whether higher is better) and
``compute(run) -> dict[column, value]`` returning ``None`` where the run lacks
what the metric needs. Metrics are found through the entry-point group
``workbench.metrics``; the built-ins register the same way. A metric may also
define ``outdated(catalog) -> polars.Expr | None``: true for the catalog rows whose
kept values can no longer be what ``compute`` gives (e.g. the run's outcome changed
since), so that :func:`compute_missing` recomputes them.

Examples
--------
>>> sorted(metrics())[:3]
['attitude_tracking', 'battery', 'control_latency']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.model import ConfigError, Run
from workbench.plugins import Registry

if TYPE_CHECKING:
    import polars as pl

    from workbench.metrics.roles import RoleConfig, RoleSignal
    from workbench.store import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "Column",
    "Metric",
    "catalog_schema",
    "columns",
    "compute",
    "compute_missing",
    "compute_run",
    "get_metric",
    "metrics",
    "register_metric",
]

ENTRY_POINT_GROUP = "workbench.metrics"
KINDS = ("rate", "continuous", "count", "category")


@dataclass(frozen=True)
class Column:
    """One output column of a metric.

    Attributes
    ----------
    name
        Column name (in the catalog it becomes ``metrics.<name>``).
    kind
        ``rate`` (0/1 per run, compared as a proportion), ``continuous``, ``count``
        (compared like continuous) or ``category`` (not compared, tabulated).
    unit
        Unit for display (``s``, ``rad``, ``N``…).
    higher_is_better
        Direction for verdicts; ``None`` when neither is better.
    description
        One line for reports.
    """

    name: str
    kind: str
    unit: str = ""
    higher_is_better: bool | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            msg = f"column {self.name!r}: kind {self.kind!r} is not valid; choose from {KINDS}"
            raise ConfigError(msg)


class Metric:
    """Base class of metric plugins (the protocol is what counts).

    A metric reads its inputs by role (:mod:`workbench.metrics.roles`) with
    :meth:`role`; a required role the run lacks makes every column null and its
    reason lands in ``<metric>.why``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    columns: ClassVar[tuple[Column, ...]] = ()
    roles: ClassVar[tuple[str, ...]] = ()
    """The roles the metric reads (shown by ``workbench roles``)."""

    def role(self, name: str, run: Run, *, required: bool = True, min_rows: int = 1) -> RoleSignal | None:
        """The input of role *name* in *run*, read piece by piece along time.

        Raises :class:`~workbench.metrics.roles.MissingInput` when the run lacks it and
        *required* (the metric's values become null, the reason is kept); returns
        ``None`` otherwise, noting the reason for the columns left null.
        """
        from workbench.metrics.roles import MissingInput, role_signal

        try:
            return role_signal(run, name, min_rows=min_rows)
        except MissingInput as err:
            if required:
                raise
            noted = _MISSING.get()
            if noted is not None:
                noted.append(str(err))
            return None

    def note_missing(self, reason: str) -> None:
        """Record why some columns are null (kept in ``<metric>.why``)."""
        noted = _MISSING.get()
        if noted is not None:
            noted.append(reason)

    def compute(self, run: Run) -> dict[str, Any]:  # pragma: no cover - interface
        """Values of :attr:`columns` for *run* (``None`` where not computable)."""
        raise NotImplementedError

    def outdated(self, catalog: pl.DataFrame) -> pl.Expr | None:
        """Optional: a boolean expression over *catalog* rows, true where the kept values
        are out of date (:func:`compute_missing` recomputes those runs); ``None`` when
        kept values stay valid (recomputed only when absent)."""
        return None


ROLES_KEY = "roles_digest"
"""Key of the ``metrics`` annotation holding the role overrides' digest the values were computed with."""
_MISSING: ContextVar[list[str] | None] = ContextVar("workbench_missing_inputs", default=None)
METRICS: Registry[Metric] = Registry(ENTRY_POINT_GROUP, "metric")
"""The installed metrics (entry points of ``workbench.metrics``, then run-time ones)."""


def register_metric(cls: type, *, replace: bool = False) -> None:
    """Register a metric class at run time (entry points are the normal way)."""
    METRICS.register(cls, replace=replace)


def unregister_metric(name: str) -> None:
    """Remove a metric registered with :func:`register_metric`."""
    METRICS.unregister(name)


def metrics() -> dict[str, Metric]:
    """Installed metrics by name."""
    return METRICS.all()


def get_metric(name: str) -> Metric:
    """The metric called *name*; :class:`ConfigError` listing the installed ones otherwise."""
    return METRICS.get(name)


def columns(names: Iterable[str] | None = None) -> dict[str, Column]:
    """Output columns by column name, of the named metrics (default: all)."""
    chosen = [get_metric(n) for n in names] if names is not None else list(metrics().values())
    return {c.name: c for m in chosen for c in m.columns}


def compute_run(run: Run, names: Sequence[str] | None = None, *, chunk_rows: int | None = None,
                roles: RoleConfig | None = None) -> dict[str, Any]:
    """All chosen metrics of one run as one flat dict (plus ``run_id``).

    A metric that raises records ``None`` for its columns and the error under
    ``"<metric>.error"`` — one broken metric never hides the others. A metric whose
    inputs the run lacks (a role not found) gives ``None`` and the reason under
    ``"<metric>.why"``.

    The built-in metrics read streams piece by piece along time
    (:mod:`workbench.pieces`), so a lazy run larger than memory is measured
    in bounded memory; *chunk_rows* sets the rows per piece (``None``: a stream in
    memory is one piece, a lazy one is read about 64 MB at a time). Plugins see it
    through :func:`workbench.pieces.current_chunk_rows`. *roles* are the
    role overrides (default: those in effect, see :func:`workbench.metrics.roles.use_roles`).
    """
    from workbench.metrics.roles import MissingInput, current_roles, use_roles
    from workbench.pieces import chunk_rows as chunking

    row: dict[str, Any] = {"run_id": run.run_id}
    chosen = _chosen(names)
    with chunking(chunk_rows), use_roles(roles if roles is not None else current_roles()):
        for metric in chosen:
            missing: list[str] = []
            token = _MISSING.set(missing)
            try:
                values = metric.compute(run)
            except MissingInput as err:
                values = {}
                missing.append(str(err))
            except Exception as err:  # noqa: BLE001 - plugin code: report, never crash the batch
                values = {}
                row[f"{metric.name}.error"] = f"{type(err).__name__}: {err}"
            finally:
                _MISSING.reset(token)
            for col in metric.columns:
                row[col.name] = values.get(col.name)
            if missing and any(row[c.name] is None for c in metric.columns):
                row[f"{metric.name}.why"] = "; ".join(dict.fromkeys(missing))
    return row


def catalog_schema(catalog: pl.DataFrame) -> pl.DataFrame:
    """What each catalog column is: one row per column with its ``group`` (a factor
    group, ``metrics``, ``metric reason``, ``run``…), polars ``dtype`` and, for metric
    columns, ``kind``, ``unit``, ``higher_is_better`` and ``description`` (the metric
    registry's declaration).

    >>> import polars as pl
    >>> cat = pl.DataFrame({"run_id": ["a"], "hardware.robot": ["x"], "metrics.jerk_rms": [1.0], "metrics.jerk.why": [None]})
    >>> catalog_schema(cat).select("column", "group", "unit").rows()
    [('run_id', 'run', ''), ('hardware.robot', 'hardware', ''), ('metrics.jerk_rms', 'metrics', 'rad/s³'), ('metrics.jerk.why', 'metric reason', '')]
    """
    import polars as pl

    from workbench.model import FACTOR_GROUPS

    cols = columns()
    rows = []
    for name, dtype in catalog.schema.items():
        head = name.split(".", 1)[0]
        short = name.removeprefix("metrics.")
        col = cols.get(short) if head == "metrics" else None
        if head == "metrics":
            group = "metric reason" if name.endswith(".why") else "metric error" if name.endswith(".error") else "metrics"
        else:
            group = head if head in FACTOR_GROUPS else "run" if "." not in name else head
        rows.append({"column": name, "group": group, "dtype": str(dtype), "kind": col.kind if col else "",
                     "unit": col.unit if col else "", "higher_is_better": col.higher_is_better if col else None,
                     "description": col.description if col else ""})
    schema = {"column": pl.String, "group": pl.String, "dtype": pl.String, "kind": pl.String, "unit": pl.String,
              "higher_is_better": pl.Boolean, "description": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _chosen(names: Sequence[str] | None) -> list[Metric]:
    """The metrics called *names* (default: every installed metric)."""
    return [get_metric(n) for n in names] if names is not None else list(metrics().values())


def _owned_keys(chosen: Iterable[Metric]) -> set[str]:
    """Keys of the ``metrics`` annotation that *chosen* write: their columns and errors."""
    return {k for m in chosen for k in (*(c.name for c in m.columns), f"{m.name}.error", f"{m.name}.why")} | {ROLES_KEY}


def _frame(rows: list[dict[str, Any]], cols: dict[str, Column]) -> pl.DataFrame:
    import polars as pl

    schema: dict[str, Any] = {"run_id": pl.String}
    for name, col in cols.items():
        schema[name] = pl.String if col.kind == "category" else pl.Float64
    errors = sorted({k for r in rows for k in r if k.endswith((".error", ".why"))})
    for e in errors:
        schema[e] = pl.String
    data = {k: [r.get(k) for r in rows] for k in schema}
    for name, col in cols.items():
        if col.kind != "category":
            data[name] = [None if v is None else float(v) for v in data[name]]
    return pl.DataFrame(data, schema=schema)


def compute(
    source: Store | Iterable[Run],
    metrics: Sequence[str] | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    scheduler: str | None = None,
    store_results: bool = True,
    progress: bool = False,
    chunk_rows: int | None = None,
    roles: RoleConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Compute metrics, one row per run.

    Parameters
    ----------
    source
        A store (runs are loaded where the work runs) or runs already loaded.
    metrics
        Metric names (default: every installed metric).
    run_ids
        With a store: only these runs (default: all).
    scheduler
        Where per-run work runs: ``None``/``"threads"`` (local), ``"processes"``,
        ``"sync"``, or a Dask scheduler address ``tcp://host:8786``
        (see :mod:`workbench.parallel`).
    store_results
        With a store: keep the values in the catalog as ``metrics.<column>``. Only
        the computed metrics' columns (and their ``<metric>.error``) are replaced;
        the values of other metrics already kept for a run stay.
    progress
        Show a progress bar.
    chunk_rows
        Rows per piece when streams are read (see :func:`compute_run`). With a store,
        a run larger than :data:`workbench.pieces.LAZY_BYTES` is opened
        lazily and measured piece by piece.
    roles
        Role overrides (a :class:`~workbench.metrics.roles.RoleConfig`, a ``roles:``
        mapping or a YAML file); default: ``roles:`` of ``workbench.yaml`` in the
        store's folder, else the current folder (see :mod:`workbench.metrics.roles`).

    Returns
    -------
    polars.DataFrame
        ``run_id``, one column per metric output, and ``<metric>.why`` (why values
        are null: the inputs the run lacks) / ``<metric>.error`` where any.
    """
    from workbench.parallel import map_runs
    from workbench.store.core import StoreCore

    names = list(metrics) if metrics is not None else None
    cols = columns(names)
    if isinstance(source, StoreCore):
        cfg = _roles_for(source, roles)
        ids = list(run_ids) if run_ids is not None else source.run_ids()
        rows = map_runs(_compute_stored, ids, args=(source.url, names, chunk_rows, cfg.to_dict(), cfg.origin),
                        scheduler=scheduler, progress=progress, label="metrics")
        df = _frame(rows, cols)
        if store_results and rows:
            owned = _owned_keys(_chosen(names))
            merged: dict[str, dict[str, Any]] = {}
            for r in rows:
                kept = source.annotations(r["run_id"]).get("metrics", {})
                merged[r["run_id"]] = ({k: v for k, v in kept.items() if k not in owned}
                                       | {k: v for k, v in r.items() if k != "run_id"} | {ROLES_KEY: cfg.digest})
            source.annotate_many("metrics", merged)
        return df
    cfg = _roles_for(None, roles)
    rows = [compute_run(run, names, chunk_rows=chunk_rows, roles=cfg) for run in source]
    return _frame(rows, cols)


def _roles_for(store: Store | None, roles: Any) -> RoleConfig:
    """*roles* given, else those of :func:`~workbench.metrics.roles.use_roles` in
    effect, else the ``roles:`` of ``workbench.yaml``."""
    from workbench.metrics.roles import configured_roles, current_roles

    if roles is None and current_roles().overrides:
        return current_roles()
    return configured_roles(store, roles)


def compute_missing(
    store: Store,
    names: Iterable[str] | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    chunk_rows: int | None = None,
) -> dict[str, list[str]]:
    """Compute the metrics that runs of *store* lack, for those runs only.

    A run lacks a metric when its ``metrics`` annotation has no key for one of the
    metric's columns, or when the metric's ``outdated(catalog)`` flags its row (the
    outcome metrics do when a run's outcome changed since, e.g. after
    ``workbench label``); a value computed as null (``success`` of a run without an
    outcome) is computed, not lacking. Runs are loaded once per set of lacking metrics.

    Parameters
    ----------
    store
        The store; the values are kept in its catalog (see :func:`compute`).
    names
        Metric names or output column names (``"jerk"`` or ``"jerk_rms"``); default:
        every installed metric. A name that is neither is ignored (the caller, e.g.
        :func:`workbench.comparison.compare`, reports it with the valid choices).
    run_ids
        Only these runs (default: every run of the store).
    scheduler, progress, chunk_rows
        As for :func:`compute`.

    Returns
    -------
    dict
        Metric name → ids of the runs it was computed for (empty when none lacked it).

    Examples
    --------
    >>> import workbench as wb
    >>> store = wb.open_store("workbench-store")            # doctest: +SKIP
    >>> compute_missing(store, ["success", "time_to_success"])  # doctest: +SKIP
    {'success': ['0a1b…', …], 'time_to_success': ['0a1b…', …]}
    """
    import polars as pl

    registry = metrics()
    owner = {c.name: m for m in registry.values() for c in m.columns}
    chosen: dict[str, Metric] = {}
    for n in names if names is not None else list(registry):
        m = registry.get(n) or owner.get(n)
        if m is not None:
            chosen[m.name] = m
    cat = store.runs()
    if not chosen or cat.height == 0:
        return {}
    digest = _roles_for(store, None).digest
    roles_col = f"metrics.{ROLES_KEY}"
    if run_ids is not None:
        cat = cat.filter(pl.col("run_id").is_in(list(run_ids)))
    ids = cat["run_id"].to_list()
    keys: dict[str, set[str]] = {}  # metrics annotation keys per run, read only for null values
    lacking: dict[str, list[str]] = {}  # run id → metrics it lacks
    for m in chosen.values():
        cols = [f"metrics.{c.name}" for c in m.columns]
        if any(c not in cat.columns for c in cols):  # no run has this metric
            for rid in ids:
                lacking.setdefault(rid, []).append(m.name)
            continue
        flagged: set[str] = set()
        why = f"metrics.{m.name}.why"
        if why in cat.columns:  # null for lack of an input, with other role overrides than now
            stale = pl.col(why).is_not_null()
            if roles_col in cat.columns:
                stale &= pl.col(roles_col).cast(pl.String).fill_null("none") != digest
            elif digest == "none":
                stale = pl.lit(False)
            flagged |= set(cat.filter(stale)["run_id"].to_list())
        outdated = getattr(m, "outdated", None)
        expr = outdated(cat) if callable(outdated) else None
        if expr is not None:
            flagged = set(cat.filter(expr.fill_null(False))["run_id"].to_list())
        for rid in cat.filter(pl.any_horizontal(pl.col(c).is_null() for c in cols))["run_id"].to_list():
            if rid in flagged:
                continue
            if rid not in keys:
                keys[rid] = set(store.annotations(rid).get("metrics", {}))
            if not all(c.name in keys[rid] for c in m.columns):
                flagged.add(rid)
        for rid in ids:
            if rid in flagged:
                lacking.setdefault(rid, []).append(m.name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for rid, ms in lacking.items():
        groups.setdefault(tuple(ms), []).append(rid)
    done: dict[str, list[str]] = {}
    for group, rids in groups.items():
        compute(store, list(group), run_ids=rids, scheduler=scheduler, progress=progress, chunk_rows=chunk_rows)
        for name in group:
            done.setdefault(name, []).extend(rids)
    return done


def _compute_stored(
    run_id: str, store_url: str, names: Sequence[str] | None, chunk_rows: int | None = None,
    roles: Mapping[str, Any] | None = None, roles_origin: str = "python",
) -> dict[str, Any]:
    from workbench.metrics.roles import RoleConfig
    from workbench.pieces import load_for_work
    from workbench.store.core import StoreCore

    cfg = RoleConfig.from_dict(roles, origin=roles_origin)
    return compute_run(load_for_work(StoreCore(store_url, create=False), run_id), names, chunk_rows=chunk_rows, roles=cfg)
