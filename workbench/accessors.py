"""``ds.wb`` accessor on xarray Datasets (extension by accessor, never by subclass).

>>> import numpy as np, xarray as xr, workbench
>>> ds = xr.Dataset({"v": ("time", [0.0, 1.0, 2.0])}, coords={"time": np.array([0, 10**9, 2 * 10**9])})
>>> ds.wb.resample(rate_hz=2, method="linear")["v"].values.tolist()
[0.0, 0.5, 1.0, 1.5, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["StreamAccessor"]


@xr.register_dataset_accessor("wb")
class StreamAccessor:
    """Workbench operations on one stream (a Dataset with a ``time`` dimension)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def resample(
        self,
        *,
        rate_hz: float | None = None,
        times: np.ndarray | None = None,
        method: str | dict[str, str] = "nearest",
        tolerance: Any = None,
    ) -> xr.Dataset:
        """Resample onto a uniform grid (*rate_hz*) or given int64-ns *times*.

        See :func:`workbench.sync.resample` for *method* and *tolerance*.
        """
        from workbench.model import ConfigError
        from workbench.sync import _target_axis, resample

        if (rate_hz is None) == (times is None):
            msg = "give exactly one of rate_hz or times"
            raise ConfigError(msg)
        target = _target_axis({"s": self._ds}, rate_hz if rate_hz is not None else times)
        return resample(self._ds, target, method=method, tolerance=tolerance)

    def latency(self) -> Any:
        """Header-to-log latency statistics (see :func:`workbench.sync.latency`)."""
        from workbench.sync import latency

        return latency(self._ds)

    @property
    def times_ns(self) -> np.ndarray:
        """The ``time`` coordinate as int64 nanoseconds."""
        t = np.asarray(self._ds["time"].values)
        return t.astype("datetime64[ns]").astype(np.int64) if t.dtype.kind == "M" else t.astype(np.int64)
