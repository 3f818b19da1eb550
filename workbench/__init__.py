"""RobotOps Workbench: robot logs of many runs → catalog, sync, grades, metrics, comparisons.

>>> import workbench as wb
>>> store = wb.open_store("memory://doctest-store")
>>> store.runs().height
0
"""

from workbench._version import __version__ as __version__
from workbench.model import (
    ConfigError as ConfigError,
    Provenance as Provenance,
    ReaderError as ReaderError,
    Run as Run,
    RunInfo as RunInfo,
    SchemaError as SchemaError,
    SourceFile as SourceFile,
    StoreError as StoreError,
    WorkbenchError as WorkbenchError,
)
from workbench.store import IngestReport as IngestReport, Store as Store, open_store as open_store
