"""DataStore: the shared state of the UI (catalog, filters, selection) and its facets.

Every view takes one :class:`DataStore` and listens to its parameters: ``filtered``
(the catalog after the facet filters) and ``selection`` (run ids). Views change the
selection; only the DataStore reads the store. It reaches runs of its store only:
there is no parameter that names a path, and run ids are checked against the catalog.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import panel as pn
import param
import polars as pl

from workbench.model import FACTOR_GROUPS, ConfigError, Run
from workbench.store import Store

if TYPE_CHECKING:
    from param.parameters import NoNone as NoNone
else:
    # For type checkers only (param >= 2.4): a parameter declared with ``allow_None=NoNone`` is typed as never
    # None, its None default being a placeholder until ``__init__`` sets it. At run time a parameter whose
    # default is None allows None whatever ``allow_None`` says, so this changes nothing (as in HoloViews).
    NoNone = False

__all__ = ["MISSING", "DataStore"]

MISSING = "∅"
"""Facet label of a missing (null) value."""
MAX_FACET_LEVELS = 60
"""Factors with more distinct values than this get no facet (e.g. checkpoints hashes)."""
EXTRA_FACETS = ("outcome", "quality.grade")
"""Catalog columns offered as facets besides the factors."""


def _as_label(value: Any) -> str:
    return MISSING if value is None else str(value)


def _natural(label: str) -> tuple[Any, ...]:
    """Sort key: numbers by value before text, text alphabetically, missing last."""
    if label == MISSING:
        return (2, 0.0, label)
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


class DataStore(pn.viewable.Viewer):
    """The store's catalog, the facet filters and the shared selection.

    Parameters are the contract between views: set ``filters`` or ``text`` to filter,
    read ``filtered``; set or watch ``selection``.

    Examples
    --------
    >>> import polars as pl
    >>> cat = pl.DataFrame({"run_id": ["a", "b", "c"], "name": ["a", "b", "c"],
    ...                     "hardware.robot": ["arm-a", "arm-b", "arm-a"]})
    >>> data = DataStore(catalog=cat)
    >>> data.filters = {"hardware.robot": ["arm-a"]}
    >>> data.filtered["run_id"].to_list()
    ['a', 'c']
    """

    store = param.ClassSelector(class_=Store, default=None, allow_None=True, constant=True, doc="""
        The store whose runs are shown. Set from Python when the DataStore is made;
        nothing in the browser can change it.""")
    catalog = param.ClassSelector(class_=pl.DataFrame, default=None, allow_None=NoNone, doc="""
        The full catalog (``store.runs()``); :meth:`refresh` re-reads it from the store.""")
    filters = param.Dict(default={}, doc="""
        Facet filters: column → allowed values as labels (strings, ``∅`` for missing).
        A column that is absent or has an empty list is not filtered.""")
    text = param.String(default="", doc="Only runs whose name or run id contains this text (case-insensitive).")
    facets = param.List(default=[], item_type=str, doc="""
        Columns offered as multi-select facets (default: factors with 2 to 60 values,
        the outcome and the data grade).""")
    filtered = param.ClassSelector(class_=pl.DataFrame, default=None, allow_None=NoNone, doc="""
        The catalog after ``filters`` and ``text`` (computed; read it, do not set it).""")
    selection = param.List(default=[], item_type=str, doc="""
        Selected run ids, shared by every view (only ids of the catalog are kept).""")
    cache_size = param.Integer(default=16, bounds=(0, 1000), doc="Loaded runs kept in memory for the views.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.catalog is None:
            if self.store is None:
                msg = "DataStore needs a store or a catalog"
                raise ConfigError(msg)
            self.catalog = self.store.runs()
        if "run_id" not in self.catalog.columns:
            msg = f"the catalog has no run_id column; columns: {', '.join(self.catalog.columns)}"
            raise ConfigError(msg)
        if not self.facets:
            self.facets = self.default_facets(self.catalog)
        self._runs: OrderedDict[tuple[str, tuple[str, ...] | None], Run] = OrderedDict()
        self._facet_widgets: dict[str, pn.widgets.MultiSelect] = {}
        self._syncing = False
        self._apply()

    # ------------------------------------------------------------------ catalog

    @staticmethod
    def default_facets(catalog: pl.DataFrame) -> list[str]:
        """Factor columns with 2…60 distinct values, then ``outcome`` and ``quality.grade``."""
        cols = [c for c in catalog.columns if c.split(".", 1)[0] in FACTOR_GROUPS]
        cols += [c for c in EXTRA_FACETS if c in catalog.columns]
        return [c for c in cols if 2 <= catalog[c].n_unique() <= MAX_FACET_LEVELS]

    @property
    def factors(self) -> list[str]:
        """Factor columns of the catalog (``hardware.*``, ``environment.*``, …)."""
        return [c for c in self.catalog.columns if c.split(".", 1)[0] in FACTOR_GROUPS]

    @property
    def metrics(self) -> list[str]:
        """Metric names with a numeric column in the catalog (``metrics.<name>``)."""
        return [c.removeprefix("metrics.") for c in self.catalog.columns
                if c.startswith("metrics.") and self.catalog.schema[c].is_numeric()]

    def levels(self, column: str) -> list[str]:
        """Distinct values of *column* as facet labels, sorted naturally (numbers by
        value: 2 before 10), the missing label last.

        >>> DataStore(catalog=pl.DataFrame({"run_id": list("abcd"), "scenario.seed": [10, 2, None, 1]})).levels("scenario.seed")
        ['1', '2', '10', '∅']
        """
        values = self.catalog[column].unique().to_list()
        return sorted({_as_label(v) for v in values}, key=_natural)

    def refresh(self) -> None:
        """Re-read the catalog from the store (after ingest, grading or metrics)."""
        if self.store is not None:
            self.catalog = self.store.runs()

    def expression(self) -> pl.Expr | None:
        """The polars filter of ``filters`` and ``text`` (None when nothing is filtered)."""
        return self._expression(self.filters)

    def _expression(self, filters: dict[str, Any]) -> pl.Expr | None:
        exprs: list[pl.Expr] = []
        for col, values in filters.items():
            if not values or col not in self.catalog.columns:
                continue
            wanted = [str(v) for v in values]
            exprs.append(pl.col(col).cast(pl.String).fill_null(MISSING).is_in(wanted))
        if self.text.strip():
            needle = self.text.strip().lower()
            cols = [c for c in ("name", "run_id") if c in self.catalog.columns]
            exprs.append(pl.any_horizontal(*(pl.col(c).str.to_lowercase().str.contains(needle, literal=True) for c in cols)))
        if not exprs:
            return None
        return pl.all_horizontal(exprs)

    @param.depends("catalog", "filters", "text", watch=True)
    def _apply(self) -> None:
        expr = self.expression()
        self.filtered = self.catalog if expr is None else self.catalog.filter(expr)
        if self.selection:
            keep = set(self.filtered["run_id"].to_list())
            kept = [r for r in self.selection if r in keep]
            if kept != self.selection:
                self.selection = kept
        self._sync_widgets()

    @param.depends("selection", watch=True)
    def _check_selection(self) -> None:
        known = set(self.catalog["run_id"].to_list())
        unknown = [r for r in self.selection if r not in known]
        if unknown:
            self.selection = [r for r in self.selection if r in known]

    def select(self, run_ids: Iterable[str]) -> None:
        """Select these runs (ids not in the filtered catalog are dropped)."""
        keep = set(self.filtered["run_id"].to_list())
        self.selection = [r for r in dict.fromkeys(run_ids) if r in keep]

    # ------------------------------------------------------------------ runs

    def _check_ids(self, run_ids: Sequence[str]) -> None:
        known = set(self.catalog["run_id"].to_list())
        unknown = [r for r in run_ids if r not in known]
        if unknown:
            msg = f"run(s) {unknown} are not in this store's catalog"
            raise ConfigError(msg)

    def load_runs(self, run_ids: Sequence[str], *, streams: Sequence[str] | None = None) -> list[Run]:
        """Load runs of the store (eagerly, cached); *streams* limits the streams read."""
        if self.store is None:
            msg = "this DataStore has a catalog but no store: runs cannot be loaded"
            raise ConfigError(msg)
        self._check_ids(run_ids)
        out = []
        for rid in run_ids:
            key = (rid, tuple(streams) if streams is not None else None)
            run = self._runs.get(key) or self._runs.get((rid, None))
            if run is None:
                wanted = None
                if streams is not None:
                    have = set(self.store.manifest(rid).get("streams", {}))
                    wanted = [s for s in streams if s in have]
                run = self.store.load(rid, streams=wanted, lazy=False)
                self._runs[key] = run
                while len(self._runs) > self.cache_size:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(key if key in self._runs else (rid, None))
            out.append(run)
        return out

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop these runs from the cache (their events changed: a label or a mark)."""
        drop = set(run_ids)
        for key in [k for k in self._runs if k[0] in drop]:
            del self._runs[key]

    def findings(self, run_id: str) -> pl.DataFrame | None:
        """Quality findings of a run of the store (None when not graded)."""
        self._check_ids([run_id])
        if self.store is None:
            return None
        return self.store.get_table(run_id, "quality_findings")

    # ------------------------------------------------------------------ facets

    def facet_counts(self, col: str) -> dict[str, int]:
        """Runs per level of facet *col* among the runs the *other* filters pass (so a
        count says how many runs choosing that level would show)."""
        others = {c: v for c, v in self.filters.items() if c != col}
        expr = self._expression(others)
        cat = self.catalog if expr is None else self.catalog.filter(expr)
        return dict(cat.select(pl.col(col).cast(pl.String).fill_null(MISSING).alias("v")).group_by("v").len().iter_rows())

    def _options(self, col: str) -> dict[str, str]:
        counts = self.facet_counts(col)
        return {f"{lv} ({counts.get(lv, 0)})": lv for lv in self.levels(col)}

    def _facet_widget(self, col: str) -> pn.widgets.MultiSelect:
        levels = self.levels(col)
        options = self._options(col)
        w = pn.widgets.MultiSelect(
            label=col, options=options, value=list(self.filters.get(col, [])),
            size=min(max(len(levels), 2), 6), sizing_mode="stretch_width",
            css_classes=["wb-facet"], tags=[f"facet:{col}"],
        )
        w.param.watch(lambda e, c=col: self._on_facet(c, e.new), "value")
        return w

    def _on_facet(self, col: str, values: list[str]) -> None:
        if self._syncing:
            return
        filters = dict(self.filters)
        if values:
            filters[col] = list(values)
        else:
            filters.pop(col, None)
        self.filters = filters

    def _sync_widgets(self) -> None:
        self._syncing = True
        try:
            for col, w in getattr(self, "_facet_widgets", {}).items():
                options = self._options(col)
                if options != w.options:  # counts follow the other filters
                    w.options = options
                want = list(self.filters.get(col, []))
                if list(w.value) != want:
                    w.value = want
        finally:
            self._syncing = False

    def facet_widgets(self) -> list[pn.widgets.MultiSelect]:
        """One multi-select per facet column (made once, kept in sync with ``filters``)."""
        for col in self.facets:
            if col not in self._facet_widgets and col in self.catalog.columns:
                self._facet_widgets[col] = self._facet_widget(col)
        return [self._facet_widgets[c] for c in self.facets if c in self._facet_widgets]

    def _clear(self, _event: Any) -> None:
        self.param.update(filters={}, text="")

    def __panel__(self) -> pn.viewable.Viewable:
        search = pn.widgets.TextInput.from_param(self.param.text, label="name or run id contains",
                                                 sizing_mode="stretch_width")
        clear = pn.widgets.Button(label="clear filters", color="light", sizing_mode="stretch_width")
        clear.on_click(self._clear)
        return pn.Column(
            pn.pane.Markdown("### Filters", margin=(0, 10)), search, *self.facet_widgets(), clear,
            sizing_mode="stretch_width", css_classes=["wb-datastore"],
        )
