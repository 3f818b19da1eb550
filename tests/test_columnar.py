"""Streams as Parquet tables (:mod:`workbench.columnar`) and the run file that packs them."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import xarray as xr

import workbench.columnar as col
from workbench.columnar import ParquetStreamWriter, decode_stream, direct_reader, encode_stream, open_lazy, summary
from workbench.model import concat_parts
from workbench.store.runfile import RunFile, write_run_file


def _every_kind(n: int = 6) -> xr.Dataset:
    rng = np.random.default_rng(5)
    t = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 10_000_000
    return xr.Dataset(
        {
            "position": (("time", "joint"), rng.normal(size=(n, 3)), {"units": "rad"}),
            "image": (("time", "y", "x"), rng.integers(0, 255, (n, 4, 5), dtype=np.uint8)),
            "wide": (("time", "k"), rng.normal(size=(n, 40)).astype(np.float32)),
            "text": ("time", np.array(["a", None, "ccc", "", "é", "f"][:n], dtype=object)),
            "fixed_text": ("time", np.array(["x", "yy", "z", "w", "v", "u"][:n])),
            "blob": ("time", np.array([b"\x00\x01", b"", b"z", b"q", b"r", b"s"][:n], dtype=object)),
            "half": ("time", np.arange(n, dtype=np.float16)),
            "complex": ("time", np.arange(n) + 1j * np.arange(n)),
            "stamp": ("time", t.astype("datetime64[ns]")),
            "flag": ("time", np.arange(n) % 2 == 0),
            "count": ("time", np.arange(n, dtype=np.uint64)),
            "first_not_time": (("joint", "time"), rng.normal(size=(3, n))),
            "empty_row": (("time", "z"), np.zeros((n, 0))),
            "scalar": ((), 4.5),
            "ragged_values": ("item", np.arange(11, dtype=np.int32)),
        },
        coords={"time": t, "joint": ["j1", "j2", "j3"], "header_time": ("time", t - 1000)},
        attrs={"topic": "/arm", "rate_hz": 100.0},
    )


@pytest.mark.parametrize("small", [True, False])
def test_every_kind_round_trips_eagerly_and_lazily(monkeypatch, small):
    monkeypatch.setattr(col, "SMALL_BYTES", 1 << 30 if small else 0)
    ds = _every_kind()
    layout, members = encode_stream(ds)
    assert layout["members"] == (["small.zst"] if small else ["0.parquet", "1.parquet", "2.parquet", "3.parquet"])
    back = decode_stream(layout, lambda k: members[k])
    assert back.identical(ds)
    lazy = open_lazy(layout, lambda k: members[k], token="t")
    assert lazy["position"].chunks is not None and lazy["time"].chunks is None  # time is the index
    assert lazy.compute().identical(ds)
    assert summary(layout) == {"dims": {"time": 6, "joint": 3, "y": 4, "x": 5, "k": 40, "z": 0, "item": 11},
                               "variables": sorted(str(v) for v in ds.data_vars), "attrs": ds.attrs}


def test_narrow_vectors_are_one_column_per_component_and_readable_elsewhere(monkeypatch):
    monkeypatch.setattr(col, "SMALL_BYTES", 0)
    layout, members = encode_stream(_every_kind())
    names = pq.read_table(io.BytesIO(members[0])).column_names
    assert {"position/0", "position/1", "position/2", "time", "image", "wide"} <= set(names)
    assert "position" not in names  # ≤ 32 wide: split; the image and the 40-wide row stay lists
    vec = next(v for v in layout["vars"] if v["name"] == "position")
    assert vec["columns"] == ["position/0", "position/1", "position/2"] and vec["attrs"] == {"units": "rad"}


def test_objects_that_are_not_text_or_bytes_are_refused_by_name():
    ds = xr.Dataset({"bad": ("time", np.array([{"a": 1}, None], dtype=object))}, coords={"time": [1, 2]})
    with pytest.raises(TypeError, match=r"variable 'bad' holds Python objects \(dict\)"):
        encode_stream(ds)


@pytest.mark.parametrize("budget", [64, 1 << 30])
def test_parts_equal_the_whole(budget):
    """A stream written in parts (row groups as they fill, or all in one) reads back as
    its parts joined; a part that breaks the layout falls back to memory, still equal."""
    parts = [_every_kind().drop_vars(["scalar", "ragged_values"]).assign_coords(
        time=_every_kind()["time"].values + 10**9 * k, header_time=("time", _every_kind()["time"].values + 10**9 * k)
    ) for k in range(5)]
    w = ParquetStreamWriter(budget=budget)
    for p in parts:
        w.append(p)
    layout, tables = w.close()
    assert layout["groups"][0]["rows"] == 30 and w.span == (int(parts[0]["time"][0]), int(parts[-1]["time"][-1]))
    back = decode_stream(layout, lambda k: bytes(tables[k]))
    assert back.identical(concat_parts(parts))
    if budget == 64:  # written row group by row group
        assert pq.ParquetFile(io.BytesIO(bytes(tables[0]))).metadata.num_row_groups >= 5
    # joint names that change mid-stream: collected in memory, outer-joined
    w = ParquetStreamWriter(budget=budget)
    w.append(parts[0])
    w.append(parts[1].assign_coords(joint=["a", "b", "c"]))
    layout, tables = w.close()
    assert decode_stream(layout, lambda k: bytes(tables[k])).sizes["joint"] == 6


def test_column_reader_reads_rows_and_takes(monkeypatch):
    monkeypatch.setattr(col, "SMALL_BYTES", 0)
    n = 10_007
    rng = np.random.default_rng(2)
    ds = xr.Dataset({"v": (("time", "axis"), rng.normal(size=(n, 3)).astype(np.float32))},
                    coords={"time": np.arange(n, dtype=np.int64) * 7})
    layout, members = encode_stream(ds, budget=4096)
    lazy = open_lazy(layout, lambda k: members[k], token="reader-test", indexes=False)
    rd = direct_reader(lazy["v"].data)
    assert isinstance(rd, col.ColumnReader) and rd.chunk_rows < n // 5 and rd.shape == (n, 3)
    buf = np.full((5000, 3), -1, dtype=np.float32)
    for a, b in [(0, 5000), (rd.chunk_rows, 3 * rd.chunk_rows), (17, 4099), (n - 5, n + 10), (3, 9)]:
        got = rd.read(a, b, out=buf)
        one_group = a // rd.chunk_rows == (min(b, n) - 1) // rd.chunk_rows
        assert np.shares_memory(got, buf) != one_group  # one group: a view of it, else copied into buf
        np.testing.assert_array_equal(got, ds["v"].values[a:b])
    idx = np.sort(rng.choice(n, 50, replace=False))
    np.testing.assert_array_equal(rd.take(idx), ds["v"].values[idx])
    np.testing.assert_array_equal(rd.clone().read(3, 9), ds["v"].values[3:9])


def test_run_file_members_are_byte_ranges_read_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(col, "SMALL_BYTES", 0)
    ds = _every_kind()
    encoded = {"arm": encode_stream(ds)}
    path = tmp_path / "r.run"
    with open(path, "wb") as fh:
        write_run_file(fh, b"events-bytes", encoded)
    with zipfile.ZipFile(path) as zf:  # a plain zip: any tool lists and extracts it
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == ["events.parquet", "streams/arm/0.parquet", "streams/arm/1.parquet",
                                         "streams/arm/2.parquet", "streams/arm/3.parquet", "streams/arm/layout.json"]
        assert zf.getinfo("streams/arm/0.parquet").compress_type == zipfile.ZIP_STORED
        raw = zf.read("streams/arm/0.parquet")
    rf = RunFile(str(path))
    assert rf.streams() == ["arm"] and rf.read("events.parquet") == b"events-bytes"
    member = rf.member("streams/arm/0.parquet")
    assert bytes(member()) == raw == path.read_bytes()[member.offset:member.offset + member.size]
    shipped = pickle.dumps(rf.tables("arm", rf.layout("arm")))  # what a Dask task receives
    tables = pickle.loads(shipped)  # noqa: S301 - bytes this test just made
    assert decode_stream(rf.layout("arm"), tables).identical(ds)
    with pytest.raises(ValueError, match="compressed"):
        rf.member("streams/arm/layout.json")


def _resident_bytes(path) -> int:
    """Bytes of *path* mapped and resident in this process (``/proc/self/smaps``)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(head[1]) * 1024
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads /proc/self/smaps (Linux)")
def test_a_scan_of_a_stored_stream_keeps_only_its_pieces_resident(tmp_path, monkeypatch):
    """A long scan reads a memory map in place; pages it has decoded are dropped from the
    process (they stay in the OS cache), so its resident memory does not grow with the stream."""
    n = 6_000_000  # 72 MB decoded, ~40 MB stored in ~25 row groups
    rng = np.random.default_rng(5)
    ds = xr.Dataset({"v": ("time", rng.normal(size=n).astype(np.float32))},
                    coords={"time": np.arange(n, dtype=np.int64) * 1_000_000 + rng.integers(0, 1000, n)})
    path = tmp_path / "long.run"
    with open(path, "wb") as fh:
        write_run_file(fh, b"", {"s": encode_stream(ds, budget=2 * 2**20)})
    rf = RunFile(str(path))
    lazy = open_lazy(rf.layout("s"), rf.tables("s", rf.layout("s")), token="resident-test", indexes=False)
    size = path.stat().st_size
    assert size > 30e6
    seen = 0.0
    for name in ("v", "time"):
        rd = direct_reader(lazy[name].data)
        assert isinstance(rd, col.ColumnReader) and rd.shape[0] // rd.chunk_rows >= 10
        for a in range(0, n, rd.chunk_rows):
            seen += float(rd.read(a, a + rd.chunk_rows).astype(np.float64).sum())
            assert _resident_bytes(path) < 12e6  # a few row groups, never the file
        del rd
    assert np.isclose(seen, ds["v"].values.astype(np.float64).sum() + ds["time"].values.astype(np.float64).sum())
    # without releasing, the same reads leave the whole file resident: the check above can fail
    monkeypatch.setattr("workbench.store.runfile._Release.__call__", lambda self, a, b: None)
    rd = direct_reader(lazy["v"].data)
    for a in range(0, n, rd.chunk_rows):
        rd.read(a, a + rd.chunk_rows)
    assert _resident_bytes(path) > 0.4 * size
