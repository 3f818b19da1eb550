"""The direct Zarr v3 writer reads back identically through xarray and zarr-python."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import workbench.zarr_io as zw


def sample_stream(n=37):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(n, 3))
    pos[5, 1] = np.nan
    return xr.Dataset(
        {
            "position": (("time", "joint"), pos, {"units": "rad"}),
            "f32": ("time", rng.normal(size=n).astype(np.float32)),
            "i8": ("time", rng.integers(-100, 100, n).astype(np.int8)),
            "u16": ("time", rng.integers(0, 60000, n).astype(np.uint16)),
            "u64": ("time", rng.integers(0, 2**62, n).astype(np.uint64)),
            "flag": ("time", rng.random(n) > 0.5),
            "frame": (("time", "y", "x"), rng.integers(0, 255, (n, 4, 5)).astype(np.uint8)),
            "data": ("byte", rng.integers(0, 255, 101).astype(np.uint8)),
        },
        coords={
            "time": np.arange(n, dtype=np.int64) * 5_000_000 + 10**18,
            "header_time": ("time", np.arange(n, dtype=np.int64) * 5_000_000 + 10**18 - 3),
            "joint": ["shoulder", "elbow", "wrist_ü"],
        },
        attrs={"source": "/joint_states", "nominal_rate_hz": 200.0, "nested": {"a": [1, 2]}},
    )


@pytest.mark.parametrize("chunk_bytes", [zw.CHUNK_BYTES, 64])
def test_round_trip_matches_xarray(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(zw, "CHUNK_BYTES", chunk_bytes)
    ds = sample_stream()
    assert zw.supported(ds)
    zw.write_stream(ds, str(tmp_path / "fast.zarr"))
    back = xr.open_zarr(tmp_path / "fast.zarr", consolidated=False).load()
    xr.testing.assert_identical(back.drop_encoding(), ds)
    assert "header_time" in back.coords and back["joint"].values.tolist() == ["shoulder", "elbow", "wrist_ü"]
    arr = zarr.open_array(tmp_path / "fast.zarr" / "position", mode="r")
    assert arr.shape == (37, 3) and arr.metadata.dimension_names == ("time", "joint")
    if chunk_bytes == 64:
        assert arr.chunks[0] < 37  # really several chunks, with a padded edge chunk
    np.testing.assert_array_equal(arr[:], ds["position"].values)


def test_fsspec_memory_round_trip():
    import fsspec

    fs = fsspec.filesystem("memory")
    ds = sample_stream(8)
    zw.write_stream(ds, "/zw-test/s.zarr", fs=fs)
    back = xr.open_zarr(zarr.storage.FsspecStore.from_url("memory://zw-test/s.zarr"), consolidated=False).load()
    xr.testing.assert_identical(back.drop_encoding(), ds)
    fs.rm("/zw-test", recursive=True)


def test_unsupported_dtypes_are_reported():
    ds = xr.Dataset({"t": ("time", np.array(["2020-01-01"], dtype="datetime64[ns]"))}, coords={"time": [1]})
    assert not zw.supported(ds)
    assert not zw.supported(xr.Dataset({"s": ((), 3.5)}))
    assert not zw.supported(xr.Dataset({"o": ("time", np.array([{"a": 1}], dtype=object))}, coords={"time": [1]}))


def test_empty_stream(tmp_path):
    ds = xr.Dataset({"v": ("time", np.zeros(0))}, coords={"time": np.zeros(0, dtype=np.int64)})
    zw.write_stream(ds, str(tmp_path / "e.zarr"))
    back = xr.open_zarr(tmp_path / "e.zarr", consolidated=False).load()
    assert back.sizes["time"] == 0 and back["v"].dtype == np.float64


@pytest.mark.parametrize("chunk_bytes", [zw.CHUNK_BYTES, 64])
def test_direct_reader_equals_xarray(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(zw, "CHUNK_BYTES", chunk_bytes)
    ds = sample_stream()
    zw.write_stream(ds, str(tmp_path / "s.zarr"))
    eager = zw.read_stream(str(tmp_path / "s.zarr"))
    xr.testing.assert_identical(eager, ds)
    # a group written by xarray itself (zstd codec) reads the same
    ds.to_zarr(tmp_path / "x.zarr", zarr_format=3, consolidated=False)
    xr.testing.assert_identical(zw.read_stream(str(tmp_path / "x.zarr")), ds)


def test_direct_reader_refuses_what_it_does_not_know(tmp_path):
    xr.Dataset({"s": ((), 1.0)}).to_zarr(tmp_path / "scalar.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(zw.UnsupportedLayout):
        zw.read_stream(str(tmp_path / "scalar.zarr"))


@pytest.mark.parametrize("writer", ["workbench", "xarray"])
def test_chunk_reader_read_into_a_buffer_and_take(tmp_path, monkeypatch, writer):
    from workbench.pieces import LazyTimes

    monkeypatch.setattr(zw, "CHUNK_BYTES", 4096)  # many chunks (blosc), or xarray's zstd
    n = 10_007
    rng = np.random.default_rng(3)
    ds = xr.Dataset({"v": ("time", rng.normal(size=n).astype(np.float32))},
                    coords={"time": np.cumsum(rng.integers(1, 9, n)).astype(np.int64)})
    if writer == "workbench":
        zw.write_stream(ds, str(tmp_path / "s.zarr"))
    else:
        ds.to_zarr(tmp_path / "s.zarr", zarr_format=3, consolidated=False, encoding={"v": {"chunks": (1000,), "_FillValue": None}, "time": {"chunks": (1000,)}})
    rd = zw.ChunkReader(str(tmp_path / "s.zarr" / "v"))
    assert rd.chunk_rows < n // 5
    buf = np.full(5000, -1, dtype=np.float32)
    for a, b in [(0, 5000), (rd.chunk_rows, 3 * rd.chunk_rows), (17, 4099), (n - 5, n + 10)]:
        got = rd.read(a, b, out=buf)
        assert np.shares_memory(got, buf)
        np.testing.assert_array_equal(got, ds["v"].values[a:b])
    with pytest.raises(ValueError, match="out must be C-contiguous float32"):
        rd.read(0, 6000, out=buf)
    idx = np.sort(rng.choice(n, 50, replace=False))
    np.testing.assert_array_equal(rd.take(idx), ds["v"].values[idx])
    with pytest.raises(IndexError, match="out of range"):
        rd.take(np.array([n]))
    t = LazyTimes(zw.ChunkReader(str(tmp_path / "s.zarr" / "time")), 100, 9000)
    want = ds["time"].values[100:9000]
    assert len(t) == t.size == 8900
    assert t[-1] == want[-1] and t[0] == want[0]
    pick = np.array([8899, 5, 4000, 5])
    np.testing.assert_array_equal(t[pick], want[pick])
    np.testing.assert_array_equal(t[10:20], want[10:20])
    np.testing.assert_array_equal(np.asarray(t), want)
    with pytest.raises(IndexError):
        t[np.array([8900])]
