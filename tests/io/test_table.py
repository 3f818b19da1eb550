"""The CSV/Parquet table reader on synthetic and real tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.io.table import TableReader, to_ns
from workbench.model import ReaderError


def read_one(path: Path, **opts):
    (run,) = list(TableReader().read(path, **opts))
    return run


def test_parquet_round_trip_with_units(tmp_path):
    t = np.arange(1_700_000_000_000, 1_700_000_000_010, dtype=np.int64)  # milliseconds
    df = pl.DataFrame({"timestamp": t, "v": np.linspace(0, 1, 10), "flag": [True] * 10, "label": ["a"] * 10})
    p = tmp_path / "x.parquet"
    df.write_parquet(p)
    run = read_one(p)
    ds = run.streams["x"]
    np.testing.assert_array_equal(ds["time"].values, t * 1_000_000)
    np.testing.assert_allclose(ds["v"].values, np.linspace(0, 1, 10))
    assert ds["flag"].dtype == bool
    assert run.skipped == []  # text columns are kept as text
    assert ds["label"].values.tolist() == ["a"] * 10


def test_unsorted_csv_is_sorted_and_units_forced(tmp_path):
    p = tmp_path / "y.csv"
    p.write_text("t,v\n3,30\n1,10\n2,20\n")
    ds = read_one(p, time_unit="ms", stream="s").streams["s"]
    assert ds["time"].values.tolist() == [1_000_000, 2_000_000, 3_000_000]
    assert ds["v"].values.tolist() == [10, 20, 30]
    with pytest.raises(ReaderError, match="time unit 'hours' is not valid"):
        read_one(p, time_unit="hours")
    with pytest.raises(ReaderError, match="no time column 'stamp'"):
        read_one(p, time_column="stamp")


def test_to_ns_auto_units():
    assert to_ns(np.array([1.7e9]), "auto").tolist() == [1_700_000_000_000_000_000]
    assert to_ns(np.array([1.7e12]), "auto").tolist() == [1_700_000_000_000_000_000]
    assert to_ns(np.array([1_700_000_000_000_000_000]), "auto").tolist() == [1_700_000_000_000_000_000]
    with pytest.raises(ReaderError, match="NaN"):
        to_ns(np.array([1.0, np.nan]), "s")


def test_bad_tables(tmp_path):
    for name, content, message in [
        ("e.csv", b"", "cannot parse table|no rows"),
        ("h.csv", b"time,x\n", "no rows"),
        ("s.csv", b"time,x\nabc,1\n", "not numeric"),
        ("b.parquet", b"PAR1", "not a Parquet file"),
        ("t.parquet", None, "cannot parse table"),
    ]:
        p = tmp_path / name
        if content is None:
            pl.DataFrame({"time": list(range(1000))}).write_parquet(p)
            p.write_bytes(p.read_bytes()[:100] + p.read_bytes()[-8:])  # cut the middle out
        else:
            p.write_bytes(content)
        with pytest.raises(ReaderError, match=message) as err:
            read_one(p)
        assert str(p) in str(err.value)


def test_real_csv_files(real_data):
    turtle = real_data / "csv" / "plotjuggler" / "turtle.csv"
    src = pl.read_csv(turtle)
    run = read_one(turtle)
    (ds,) = run.streams.values()
    assert ds.sizes["time"] == src.height
    numeric = [c for c in src.columns if src[c].dtype.is_numeric()]
    assert len(ds.data_vars) == len(numeric) - 1  # all numeric columns but the time column
    for p in sorted((real_data / "csv" / "bagpy_catvehicle").glob("*.csv")):
        run = read_one(p)
        (ds,) = run.streams.values()
        assert ds.sizes["time"] == pl.read_csv(p).height
        assert (np.diff(ds["time"].values) >= 0).all()
