"""``ds.wb`` accessor on xarray Datasets (extension by accessor, never by subclass).

>>> import numpy as np, xarray as xr, workbench
>>> ds = xr.Dataset({"v": ("time", [0.0, 1.0, 2.0])}, coords={"time": np.array([0, 10**9, 2 * 10**9])})
>>> ds.wb.resample(rate_hz=2, method="linear")["v"].values.tolist()
[0.0, 0.5, 1.0, 1.5, 2.0]
>>> ds.wb.to_polars().columns
['time', 'v']
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

    def to_polars(self) -> Any:
        """The stream as a polars DataFrame, one row per sample.

        Columns: ``time`` (int64 ns, the log clock), ``header_time`` when the stream has
        sensor stamps, each ``(time,)`` variable (numbers or text: log lines, strings)
        and each component of a ``(time, n)`` variable as ``var[label]``. Variables on
        other dimensions (an encoded frame's bytes) are left out.

        Examples
        --------
        >>> import numpy as np, xarray as xr, workbench
        >>> ds = xr.Dataset({"text": ("time", np.array(["armed", "takeoff"], dtype=object)),
        ...                  "p": (("time", "axis"), [[1.0, 2.0], [3.0, 4.0]])},
        ...                 coords={"time": [5, 9], "axis": ["x", "y"]})
        >>> ds.wb.to_polars().rows()
        [(5, 'armed', 1.0, 2.0), (9, 'takeoff', 3.0, 4.0)]
        """
        import polars as pl

        ds = self._ds
        cols: dict[str, Any] = {"time": pl.Series("time", self.times_ns)}
        if "header_time" in ds.coords and ds["header_time"].dims == ("time",):
            cols["header_time"] = pl.Series("header_time", np.asarray(ds["header_time"].values, dtype=np.int64))
        for name, da in ds.data_vars.items():
            if da.dims == ("time",):
                values = np.asarray(da.values)
                cols[str(name)] = (pl.Series(str(name), [None if v is None else str(v) for v in values.tolist()],
                                             dtype=pl.String) if values.dtype.kind in "OUST"
                                   else pl.Series(str(name), values))
            elif da.ndim == 2 and da.dims[0] == "time":
                dim = da.dims[1]
                labels = ([str(c) for c in ds[dim].values.tolist()] if dim in ds.coords
                          else [str(i) for i in range(da.shape[1])])
                values = np.asarray(da.values)
                for j, label in enumerate(labels):
                    cols[f"{name}[{label}]"] = pl.Series(f"{name}[{label}]", values[:, j])
        return pl.DataFrame(cols)
