"""Streaming MCAP ingest: memory bounded by the part size, not the file size.

Two generated ROS 2 MCAP files, one four times the size of the other, are ingested
each in a fresh subprocess; their peak RSS must stay under a fixed bound and must not
grow with the file (the reader decodes a group of chunks at a time and the store appends
each part to its Zarr arrays). The stored run must equal what the in-memory read gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import workbench as wb
from workbench.io.mcap import PART_BYTES, McapReader
from workbench.samples import cdr

JOINTS = [f"joint_{i:02d}" for i in range(40)]
T0 = 1_700_000_000_000_000_000
PEAK_BOUND_MB = 400
GROWTH_BOUND_MB = 40
SMALL_PART = 2 * 1024 * 1024

CHILD = r"""
import json, resource, sys
import workbench as wb
import workbench.io.mcap
if len(sys.argv) > 3:  # a smaller part size: the steady state is reached in a small file
    workbench.io.mcap.PART_BYTES = int(sys.argv[3])
store = wb.open_store(sys.argv[2])
calls = []
report = store.ingest(sys.argv[1], progress=lambda path, n: calls.append(n))
# VmHWM: this process's own peak (ru_maxrss would include the parent's RSS at fork)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak_kb = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": peak_kb / 1024,
                  "ingested": report.ingested, "failed": report.failed,
                  "progress_calls": len(calls), "progress_bytes": sum(calls)}))
"""


def write_mcap(path: Path, n_joint: int, seed: int = 0) -> dict[str, int]:
    """JointState (40 joints) at 200 Hz and Imu at 400 Hz, zstd chunks, random values."""
    from mcap.writer import CompressionType, Writer

    rng = np.random.default_rng(seed)
    n_imu = 2 * n_joint
    t_js = T0 + np.arange(n_joint, dtype=np.int64) * 5_000_000
    t_imu = T0 + np.arange(n_imu, dtype=np.int64) * 2_500_000 + 1_000
    k = len(JOINTS)
    js = cdr.encode_joint_state(
        t_js, JOINTS, rng.normal(size=(n_joint, k)), rng.normal(size=(n_joint, k)), rng.normal(size=(n_joint, k))
    )
    quat = rng.normal(size=(n_imu, 4))
    imu = cdr.encode_imu(
        t_imu,
        quat / np.linalg.norm(quat, axis=1, keepdims=True),
        rng.normal(size=(n_imu, 3)),
        rng.normal(size=(n_imu, 3)),
        frame_id="imu_link",
        covariances=([0.0] * 9, [0.0] * 9, [0.0] * 9),
    )
    merged = sorted(
        [(int(t), 0, m) for t, m in zip(t_js, js, strict=True)]
        + [(int(t), 1, m) for t, m in zip(t_imu, imu, strict=True)]
    )
    with open(path, "wb") as fh:
        writer = Writer(fh, chunk_size=1 << 20, compression=CompressionType.ZSTD)
        writer.start(profile="ros2", library="test_mcap_streaming")
        channels = []
        for topic, msgtype in (("/joint_states", "sensor_msgs/msg/JointState"), ("/imu", "sensor_msgs/msg/Imu")):
            sid = writer.register_schema(
                name=msgtype, encoding="ros2msg", data=cdr.message_definition(msgtype).encode()
            )
            channels.append(writer.register_channel(topic=topic, message_encoding="cdr", schema_id=sid))
        writer.add_metadata("hardware", {"robot": "arm-stream"})
        for t, c, m in merged:
            writer.add_message(channels[c], t, m, t)
        writer.finish()
    return {"/joint_states": n_joint, "/imu": n_imu}


def ingest_in_subprocess(path: Path, store: Path, part_bytes: int | None = None) -> dict:
    extra = [] if part_bytes is None else [str(part_bytes)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(store), *extra],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("mcap-streaming")
    small, big = folder / "small.mcap", folder / "big.mcap"
    return {"small": (small, write_mcap(small, 11_000)), "big": (big, write_mcap(big, 44_000, seed=1))}


def test_peak_rss_does_not_grow_with_the_file(files, tmp_path):
    big, counts = files["big"]
    small, _ = files["small"]
    size = big.stat().st_size
    assert size > 45e6 and size > 3.5 * small.stat().st_size
    assert size > 2 * PART_BYTES  # really read in several parts
    # with small parts both files reach the steady state: the 4x file needs no more memory
    res_small = ingest_in_subprocess(small, tmp_path / "s1", part_bytes=SMALL_PART)
    res_big4 = ingest_in_subprocess(big, tmp_path / "s2", part_bytes=SMALL_PART)
    assert res_big4["peak_mb"] - res_small["peak_mb"] < GROWTH_BOUND_MB, (res_small, res_big4)
    # default part size: a fixed bound, well below what holding the file would take
    res_big = ingest_in_subprocess(big, tmp_path / "s3")
    assert not res_big["failed"] and len(res_big["ingested"]) == 1
    assert res_big["peak_mb"] < PEAK_BOUND_MB, res_big
    # progress by bytes within the file: many calls that add up to its size
    assert res_big["progress_calls"] > 10 and res_big["progress_bytes"] == size
    store = wb.open_store(tmp_path / "s3")
    manifest = store.manifest(res_big["ingested"][0])
    assert manifest["streams"]["joint_states"]["dims"] == {"time": counts["/joint_states"], "joint": len(JOINTS)}
    assert manifest["streams"]["imu"]["dims"]["time"] == counts["/imu"]
    assert manifest["info"]["hardware"] == {"robot": "arm-stream"}
    # streaming is how the store calls the reader, not an option of the run
    assert set(manifest["info"]["provenance"]["options"]) == {"events_topics", "salvage", "topics"}


def test_streamed_run_equals_the_in_memory_read(files, tmp_path):
    path, _ = files["small"]
    store = wb.open_store(tmp_path / "store")
    report = store.ingest(path)
    run = store.load(report.ingested[0], lazy=False)
    expected = next(iter(McapReader().read(path)))
    assert set(run.streams) == set(expected.streams) == {"joint_states", "imu"}
    for name, ds in expected.streams.items():
        xr.testing.assert_identical(run.streams[name], ds)
    times = np.concatenate([ds["time"].values for ds in expected.streams.values()])
    assert (run.info.start_ns, run.info.end_ns) == (int(times.min()), int(times.max()))
    parts = next(iter(McapReader().read(path, parts=True)))
    assert parts.streams == {} and parts.extra == {}
    whole = parts.materialize()
    for name, ds in expected.streams.items():
        xr.testing.assert_identical(whole.streams[name], ds)
    assert whole.extra["message_counts"] == expected.extra["message_counts"]
    assert whole.factors == expected.factors == {"hardware": {"robot": "arm-stream"}}
