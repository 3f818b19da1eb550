"""RobotOps Workbench: robot logs of many runs → catalog, sync, grades, metrics, comparisons.

>>> import workbench as wb
>>> store = wb.open_store("memory://doctest-store")
>>> store.runs().height
0
"""

from workbench._version import __version__ as __version__
from workbench.comparison import CompareResult as CompareResult
from workbench.comparison import compare as compare
from workbench.model import (
    ConfigError as ConfigError,
)
from workbench.model import (
    Provenance as Provenance,
)
from workbench.model import (
    ReaderError as ReaderError,
)
from workbench.model import (
    Run as Run,
)
from workbench.model import (
    RunInfo as RunInfo,
)
from workbench.model import (
    SchemaError as SchemaError,
)
from workbench.model import (
    SourceFile as SourceFile,
)
from workbench.model import (
    StoreError as StoreError,
)
from workbench.model import (
    WorkbenchError as WorkbenchError,
)
from workbench.store import IngestReport as IngestReport
from workbench.store import Store as Store
from workbench.store import open_store as open_store

_SUBMODULES = {"sync", "quality", "metrics", "viz", "samples", "io", "accessors", "metadata", "model", "parallel", "ui", "events",
               "trends"}


def plan(source: object, **kwargs: object) -> object:
    """Runs a comparison needs, per cell (see :func:`workbench.planning.plan`)."""
    from workbench.planning import plan as _plan

    return _plan(source, **kwargs)  # type: ignore[arg-type]


def trend(source: object, **kwargs: object) -> object:
    """A metric per time window or factor value per cell, its control chart and change
    points (see :func:`workbench.trends.trend`)."""
    from workbench.trends import trend as _trend

    return _trend(source, **kwargs)  # type: ignore[arg-type]


def find(source: object, rule: object, **kwargs: object) -> object:
    """Every hit of *rule* across runs, one row each (see :func:`workbench.moments.find`)."""
    from workbench.moments import find as _find

    return _find(source, rule, **kwargs)  # type: ignore[arg-type]


def count_by(hits: object, source: object, factor: str, **kwargs: object) -> object:
    """Hit rates per factor value with intervals (see :func:`workbench.moments.count_by`)."""
    from workbench.moments import count_by as _count_by

    return _count_by(hits, source, factor, **kwargs)  # type: ignore[arg-type]


def rank(source: object, **kwargs: object) -> object:
    """Rank the values of a factor on a metric (see :func:`workbench.ranking.rank`)."""
    from workbench.ranking import rank as _rank

    return _rank(source, **kwargs)  # type: ignore[arg-type]


def variation(source: object, **kwargs: object) -> object:
    """Unit-to-unit variation of a metric (see :func:`workbench.units.variation`)."""
    from workbench.units import variation as _variation

    return _variation(source, **kwargs)  # type: ignore[arg-type]


def simreal(source: object, **kwargs: object) -> object:
    """Sim against real per policy (see :func:`workbench.sim_real.simreal`)."""
    from workbench.sim_real import simreal as _simreal

    return _simreal(source, **kwargs)  # type: ignore[arg-type]


def select(store: Store, **kwargs: object) -> object:
    """Runs or moments of *store* for an export or a plan (see :func:`workbench.selection.select`)."""
    from workbench.selection import select as _select

    return _select(store, **kwargs)  # type: ignore[arg-type]


def report(store: Store, **kwargs: object) -> object:
    """Write the self-contained HTML report (see :func:`workbench.reporting.report`).

    """
    from workbench.reporting import report as _report

    return _report(store, **kwargs)  # type: ignore[arg-type]


def __getattr__(name: str) -> object:
    """Import submodules on first use (``wb.sync``, ``wb.quality`` …) so ``import workbench`` stays fast."""
    if name in _SUBMODULES:
        import importlib

        module = importlib.import_module(f"workbench.{name}")
        globals()[name] = module
        return module
    msg = f"module 'workbench' has no attribute {name!r}"
    raise AttributeError(msg)
