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
