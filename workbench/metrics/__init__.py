"""Behavior metrics: the registry (plugins) and the built-ins.

>>> import workbench as wb
>>> "success" in wb.metrics.metrics()
True
"""

from workbench.metrics.registry import (
    Column as Column,
    Metric as Metric,
    columns as columns,
    compute as compute,
    compute_run as compute_run,
    get_metric as get_metric,
    metrics as metrics,
    register_metric as register_metric,
)
