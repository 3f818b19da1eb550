"""Behavior metrics: the registry (plugins) and the built-ins.

>>> import workbench as wb
>>> "success" in wb.metrics.metrics()
True
"""

from workbench.metrics.registry import (
    Column as Column,
)
from workbench.metrics.registry import (
    Metric as Metric,
)
from workbench.metrics.registry import (
    catalog_schema as catalog_schema,
)
from workbench.metrics.registry import (
    columns as columns,
)
from workbench.metrics.registry import (
    compute as compute,
)
from workbench.metrics.registry import (
    compute_missing as compute_missing,
)
from workbench.metrics.registry import (
    compute_run as compute_run,
)
from workbench.metrics.registry import (
    get_metric as get_metric,
)
from workbench.metrics.registry import (
    metrics as metrics,
)
from workbench.metrics.registry import (
    register_metric as register_metric,
)
