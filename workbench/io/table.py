"""CSV and Parquet tables with a time column → one run with one stream.

The time column is found by name (``time``, ``timestamp``, ``t``, ``stamp``,
``log_time``, ``__time``, …) unless given; its unit is inferred from its magnitude
(seconds, milliseconds, microseconds or nanoseconds since the epoch, or relative)
unless given. Every other numeric column becomes a variable on the ``time`` dimension
(a text column of numbers with ``nan``/``inf`` among them is read as numbers); a text
column is kept as a text variable (strings); a column named ``kind`` with a ``detail`` column next to it is not special: event
tables come from log readers.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> reader = TableReader()
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "run.csv").write_text("time,x")
>>> reader.guess_can_open(d / "run.csv"), reader.guess_can_open(d / "missing.csv")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from workbench.io.registry import ReaderEntrypoint, RunData
from workbench.model import ReaderError, stream_name

__all__ = ["TIME_COLUMN_CANDIDATES", "TableReader", "to_ns"]

TIME_COLUMN_CANDIDATES: tuple[str, ...] = (
    "time",
    "timestamp",
    "log_time",
    "time_ns",
    "timestamp_ns",
    "stamp",
    "t",
    "__time",
    "%time",
    "time_s",
    "seconds",
)

_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_PARQUET_MAGIC = b"PAR1"


def to_ns(values: np.ndarray, unit: str, *, path: str = "", column: str = "") -> np.ndarray:
    """Convert a time column to int64 nanoseconds.

    *unit* is ``"s"``, ``"ms"``, ``"us"``, ``"ns"`` or ``"auto"`` (by magnitude:
    values above 1e17 are ns, 1e14 µs, 1e11 ms, otherwise seconds).

    >>> to_ns(np.array([1.5, 2.0]), "s").tolist()
    [1500000000, 2000000000]
    """
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").astype(np.int64)
    if values.dtype.kind not in "iuf":
        msg = f"{path!r}: time column {column!r} is not numeric (dtype {values.dtype})"
        raise ReaderError(msg)
    if unit == "auto":
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        peak = float(np.max(np.abs(finite))) if finite.size else 0.0
        unit = "ns" if peak > 1e17 else "us" if peak > 1e14 else "ms" if peak > 1e11 else "s"
    if unit not in _UNITS:
        msg = f"time unit {unit!r} is not valid; choose from auto, {', '.join(_UNITS)}"
        raise ReaderError(msg)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            msg = f"{path!r}: time column {column!r} has NaN or infinite values"
            raise ReaderError(msg)
        return np.round(values * _UNITS[unit]).astype(np.int64)
    return values.astype(np.int64) * _UNITS[unit]


class TableReader(ReaderEntrypoint):
    """CSV or Parquet table with a time column, one run per file."""

    name: ClassVar[str] = "table"
    description: ClassVar[str] = "CSV/Parquet table with a time column (.csv, .tsv, .parquet)"
    url: ClassVar[str] = "https://www.rfc-editor.org/rfc/rfc4180"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim ``.csv``/``.tsv``/``.parquet``/``.pq`` files."""
        return path.is_file() and path.suffix.lower() in {".csv", ".tsv", ".parquet", ".pq"}

    def read(
        self,
        path: Path,
        *,
        time_column: str | None = None,
        time_unit: str = "auto",
        stream: str | None = None,
    ) -> Iterator[RunData]:
        """Read *path* as one run.

        Parameters
        ----------
        time_column
            Name of the time column; found among :data:`TIME_COLUMN_CANDIDATES` when ``None``.
        time_unit
            ``auto``, ``s``, ``ms``, ``us`` or ``ns``.
        stream
            Name of the stream; the file stem when ``None``.
        """
        import polars as pl
        import xarray as xr

        p = str(path)
        try:
            if path.suffix.lower() in {".parquet", ".pq"}:
                size = path.stat().st_size
                with open(path, "rb") as fh:
                    head = fh.read(4)
                    fh.seek(max(size - 4, 0))
                    tail = fh.read(4)
                if size < 12 or head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
                    msg = f"{p!r}: not a Parquet file (missing PAR1 magic at start or end)"
                    raise ReaderError(msg)
                df = pl.read_parquet(path)
            else:
                sep = "\t" if path.suffix.lower() == ".tsv" else ","
                df = pl.read_csv(path, separator=sep, infer_schema_length=10_000)
        except ReaderError:
            raise
        except Exception as err:  # polars raises several types for malformed input
            msg = f"{p!r}: cannot parse table: {err}"
            raise ReaderError(msg) from err
        if df.height == 0:
            msg = f"{p!r}: table has no rows"
            raise ReaderError(msg)
        col = time_column or _find_time_column(df.columns)
        if col is None or col not in df.columns:
            wanted = repr(time_column) if time_column else f"one of {list(TIME_COLUMN_CANDIDATES)}"
            msg = f"{p!r}: no time column {wanted}; columns are {df.columns}"
            raise ReaderError(msg)
        time_ns = to_ns(df[col].to_numpy(), time_unit, path=p, column=col)
        order = np.argsort(time_ns, kind="stable")
        data_vars = {}
        skipped = []
        for name in df.columns:
            if name == col:
                continue
            series = df[name]
            if series.dtype == pl.String:
                # numbers written as text with "nan"/"inf" among them (bagpy writes NaN as
                # the text nan): numbers; anything else stays as text, never dropped
                as_float = series.str.strip_chars().cast(pl.Float64, strict=False)
                if as_float.null_count() == series.null_count():
                    series = as_float
            if series.dtype.is_numeric() or series.dtype == pl.Boolean:
                values = series.to_numpy()
                if values.dtype == object:
                    values = series.cast(pl.Float64).to_numpy()
                data_vars[_var_name(name)] = ("time", values[order])
            elif series.dtype == pl.String:
                data_vars[_var_name(name)] = ("time", np.asarray(series.fill_null("").to_list(), dtype=object)[order])
            else:
                skipped.append({"topic": name, "reason": f"column of type {series.dtype} (not numbers or text)"})
        name = stream or stream_name(path.stem)
        ds = xr.Dataset(
            data_vars, coords={"time": ("time", time_ns[order])}, attrs={"source": p}
        )
        yield RunData(
            key="", streams={stream_name(name): ds}, skipped=skipped, name=path.stem
        )


def _find_time_column(columns: list[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for cand in TIME_COLUMN_CANDIDATES:
        if cand in lower:
            return lower[cand]
    return None


def _var_name(column: str) -> str:
    name = column.strip().strip("/").replace("/", ".")
    return name or "value"
