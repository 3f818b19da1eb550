"""Panel components of the workbench: one implementation for notebooks, ipywidgets and ``panel serve``.

Every component is a ``param``-based :class:`panel.viewable.Viewer` fed by a shared
:class:`DataStore` (catalog, filters, selection):

* :class:`RunBrowser` — the filtered catalog (grade badges, metric columns), row selection;
* :class:`CompareView` — success-rate heatmap (click a cell to select its runs), metric
  distributions per variant, attribution, and the comparison's verdicts;
* :class:`RunDetail` — aligned time series of the selected runs with events and findings,
  and their provenance;
* :class:`ReplayView` — the selected runs in the Rerun web viewer, served locally;
* :class:`MomentsView` — moment search (a rule over the filtered runs), hit rates per
  factor, a hit opened in replay at its time;
* :class:`TrendsView` — a metric per day, week or factor value per cell: control chart,
  change points, a point opens its runs;
* :class:`FactorGrid` — a custom (anywidget) grid of factor-level cells, click to select;
* :class:`App` — all of them on one page; :func:`serve` runs it with Panel's server.

In a notebook, call ``pn.extension("tabulator", inline=True)`` first (offline); wrap a
component with ``pn.ipywidget(component)`` where an ipywidget is needed.

>>> import polars as pl
>>> from workbench.ui import DataStore
>>> DataStore(catalog=pl.DataFrame({"run_id": ["a"], "name": ["a"]})).filtered.height
1
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.ui.app import App as App
    from workbench.ui.app import serve as serve
    from workbench.ui.compare_view import CompareView as CompareView
    from workbench.ui.datastore import DataStore as DataStore
    from workbench.ui.factor_grid import FactorGrid as FactorGrid
    from workbench.ui.fleet_view import FleetView as FleetView
    from workbench.ui.moments_view import MomentsView as MomentsView
    from workbench.ui.replay_view import ReplayView as ReplayView
    from workbench.ui.run_browser import RunBrowser as RunBrowser
    from workbench.ui.run_detail import RunDetail as RunDetail
    from workbench.ui.trends_view import TrendsView as TrendsView

__all__ = ["App", "CompareView", "DataStore", "FactorGrid", "FleetView", "MomentsView", "ReplayView", "RunBrowser", "RunDetail",
           "TrendsView", "serve"]

_WHERE = {
    "App": "app", "serve": "app", "CompareView": "compare_view", "DataStore": "datastore", "FactorGrid": "factor_grid",
    "MomentsView": "moments_view", "ReplayView": "replay_view", "RunBrowser": "run_browser", "RunDetail": "run_detail",
    "TrendsView": "trends_view", "FleetView": "fleet_view",
}


def __getattr__(name: str) -> Any:
    """Import Panel only when a component is used (``workbench.ui.cli`` stays light)."""
    import importlib

    if name in _WHERE:
        from workbench.ui.notebook import use_local_panel_css

        use_local_panel_css()
        value = getattr(importlib.import_module(f"workbench.ui.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    if name in set(_WHERE.values()) | {"cli", "auth", "notebook"}:
        return importlib.import_module(f"workbench.ui.{name}")
    msg = f"module 'workbench.ui' has no attribute {name!r}"
    raise AttributeError(msg)
