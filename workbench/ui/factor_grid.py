"""FactorGrid: a 2-D grid of factor-level cells (n and success rate); click to select.

Panel has no widget for this, so it is a custom widget: its browser side is the
anywidget front-end module ``widgets/factor_grid.js`` (with ``factor_grid.css``),
loaded from the file and rendered by Panel's :class:`panel.custom.AnyWidgetComponent`,
so the one implementation works in a notebook, in ``workbench serve`` and in saved HTML.

Panel's ``AnyWidgetComponent`` adds React import-map entries pointing at esm.sh; this
module does not use React, so the import map is emptied: nothing is fetched from the
internet.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, ClassVar

import panel as pn
import param

from workbench.model import ConfigError

__all__ = ["FactorGrid", "widgets_dir"]

WIDGETS_ENV_DIRS = ("share/workbench/widgets",)
"""Where an installed (non-editable) workbench finds ``widgets/``, relative to ``sys.prefix``."""


def widgets_dir() -> Path:
    """The folder of the browser-side widget sources (``widgets/`` of the source tree).

    Looked up beside the package (source checkout, editable install), then under
    ``<sys.prefix>/share/workbench/widgets`` (installed as data files).
    """
    here = Path(__file__).resolve().parents[2] / "widgets"
    candidates = [here, *(Path(sys.prefix) / d for d in WIDGETS_ENV_DIRS)]
    for c in candidates:
        if (c / "factor_grid.js").is_file():
            return c
    msg = f"widget sources not found; looked in {', '.join(str(c) for c in candidates)}"
    raise ConfigError(msg)


class FactorGrid(pn.custom.AnyWidgetComponent):
    """Grid of cells (rows: ``y`` levels, columns: ``x`` levels) with rate and counts.

    Set :attr:`cells` (e.g. from :func:`workbench.viz.plots.rate_cells`); a click in
    the browser sets :attr:`selected` to ``{"x": …, "y": …, "t": …}``.

    Examples
    --------
    >>> grid = FactorGrid(cells=[{"x": "arm-a", "y": "v1", "n": 10, "k": 9,
    ...                           "rate": 0.9, "lo": 0.6, "hi": 0.98}])
    >>> grid.cells[0]["k"]
    9
    """

    cells = param.List(default=[], item_type=dict, doc="""
        One dict per cell: x and y (level labels), n (runs), k (successes), rate, lo, hi
        (Wilson 95 % interval).""")
    x_title = param.String(default="", doc="Label of the factor(s) along the columns.")
    y_title = param.String(default="", doc="Label of the factor(s) along the rows.")
    selected = param.Dict(default={}, doc="""
        The cell last clicked in the browser: {"x": level, "y": level, "t": click time in ms}.""")

    _esm = widgets_dir() / "factor_grid.js"
    _stylesheets: ClassVar[list[str]] = [(widgets_dir() / "factor_grid.css").read_text(encoding="utf-8")]

    @classmethod
    def _process_importmap(cls) -> dict[str, Any]:
        """No import map: the module imports nothing (and must fetch nothing)."""
        return {"imports": {}, "scopes": {}}

    @classmethod
    def from_cells(cls, cells: Any, *, x_title: str = "", y_title: str = "", **params: Any) -> FactorGrid:
        """A grid from a :func:`~workbench.viz.plots.rate_cells` table."""
        return cls(cells=cells_records(cells), x_title=x_title, y_title=y_title, **params)


def cells_records(cells: Any) -> list[dict[str, Any]]:
    """:func:`~workbench.viz.plots.rate_cells` rows as JSON-ready dicts (no run lists, NaN → None)."""
    out = []
    for r in cells.select("x", "y", "n", "k", "rate", "lo", "hi").iter_rows(named=True):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    return out
