"""Reader benchmarks: our MCAP ingest beside the readers a user would otherwise use.

Default run (one generated ROS 2 MCAP, ~700k messages of JointState 200 Hz, Imu 400 Hz
and WrenchStamped 500 Hz, zstd chunks of 1 MiB, full indexes), all rates measured in
the same run on the same file:

(a) ``rosbags``: its MCAP storage reader + ``Typestore.deserialize_cdr`` per message,
    in a Python loop over every message;
(b) the pure-Python ``mcap`` reader, raw iteration (no decoding);
(c) rerun-sdk's Rust ``rerun.chunk.McapReader``, decode only (iterating the chunks it
    produces with its ROS 2 decoders);
(d) ``Store.ingest`` in process after imports: scan, decode and write the run's Zarr
    streams into a fresh store;

then the ratios (d)/(a) (target ≥ 10×) and (d)/(c) (target ≥ 50 %), and the per-file
cost on the 160 small files of ``data/samples/campaign`` (ingest vs rosbags).

``--big`` also generates a ~2 GB MCAP (``--big-gb`` to change it), ingests it in a
subprocess and prints that process's peak RSS (target < 1 GB) and throughput in MB/s.

Generation is vectorized (numpy tables of CDR messages written as MCAP records by
:class:`FastMcapWriter`); its time is not measured. Every figure is printed beside the
others from the same run because the machine is shared and absolute rates are noisy.

Run: ``.venv/bin/python bench/readers.py [--messages N] [--big] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# keep this folder off the path so no bench script can shadow a package (`import rerun` is rerun-sdk)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
from numpy.lib.stride_tricks import as_strided

from workbench.samples import cdr as samples_cdr

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "data" / "samples" / "campaign"
MAGIC = b"\x89MCAP0\r\n"
JOINTS = [f"joint_{i}" for i in range(1, 8)]
TOPICS: list[tuple[str, str, float]] = [
    ("/joint_states", "sensor_msgs/msg/JointState", 200.0),
    ("/imu", "sensor_msgs/msg/Imu", 400.0),
    ("/ft_sensor", "geometry_msgs/msg/WrenchStamped", 500.0),
]
T0 = 1_700_000_000_000_000_000


# --------------------------------------------------------------------------- generation


def _joint_table(stamps: np.ndarray, rng: np.random.Generator, state: dict[str, Any]) -> np.ndarray:
    n, k = len(stamps), len(JOINTS)
    lay = samples_cdr.Layout()
    lay.header("", "")
    lay.strings(JOINTS)
    for name in ("position", "velocity", "effort"):
        lay.sequence(name, "<f8", k)
    table = lay.table(n)
    lay.put_stamp(table, "", stamps)
    vel = rng.normal(0.0, 0.2, size=(n, k))
    pos = state.get("pos", np.zeros(k)) + np.cumsum(vel * 0.005, axis=0)
    state["pos"] = pos[-1]
    lay.put(table, "position", pos)
    lay.put(table, "velocity", vel)
    lay.put(table, "effort", rng.normal(0.0, 5.0, size=(n, k)))
    return table


def _imu_table(stamps: np.ndarray, rng: np.random.Generator, state: dict[str, Any]) -> np.ndarray:
    n = len(stamps)
    lay = samples_cdr.Layout()
    lay.header("", "imu_link")
    lay.scalar("orientation", "<f8", 4)
    lay.const("<f8", [4e-8, 0, 0, 0, 4e-8, 0, 0, 0, 4e-8])
    lay.scalar("angular_velocity", "<f8", 3)
    lay.const("<f8", [9e-6, 0, 0, 0, 9e-6, 0, 0, 0, 9e-6])
    lay.scalar("linear_acceleration", "<f8", 3)
    lay.const("<f8", [9e-4, 0, 0, 0, 9e-4, 0, 0, 0, 9e-4])
    table = lay.table(n)
    lay.put_stamp(table, "", stamps)
    q = rng.normal(0.0, 0.05, size=(n, 4))
    q[:, 3] = 1.0
    lay.put(table, "orientation", q / np.linalg.norm(q, axis=1, keepdims=True))
    lay.put(table, "angular_velocity", rng.normal(0.0, 0.1, size=(n, 3)))
    lay.put(table, "linear_acceleration", rng.normal([0.0, 0.0, 9.81], 0.3, size=(n, 3)))
    return table


def _wrench_table(stamps: np.ndarray, rng: np.random.Generator, state: dict[str, Any]) -> np.ndarray:
    n = len(stamps)
    lay = samples_cdr.Layout()
    lay.header("", "ft_sensor_link")
    lay.scalar("force", "<f8", 3)
    lay.scalar("torque", "<f8", 3)
    table = lay.table(n)
    lay.put_stamp(table, "", stamps)
    lay.put(table, "force", rng.normal(0.0, 2.0, size=(n, 3)))
    lay.put(table, "torque", rng.normal(0.0, 0.2, size=(n, 3)))
    return table


_ENCODERS: dict[str, Callable[[np.ndarray, np.random.Generator, dict[str, Any]], np.ndarray]] = {
    "sensor_msgs/msg/JointState": _joint_table,
    "sensor_msgs/msg/Imu": _imu_table,
    "geometry_msgs/msg/WrenchStamped": _wrench_table,
}


def _rec(op: int, body: bytes) -> bytes:
    return struct.pack("<BQ", op, len(body)) + body


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def _map(pairs: dict[str, str]) -> bytes:
    body = b"".join(_s(k) + _s(v) for k, v in pairs.items())
    return struct.pack("<I", len(body)) + body


class FastMcapWriter:
    """Writes an indexed MCAP file from numpy tables of message payloads.

    Records follow the MCAP specification: header, schemas, channels and metadata in
    the data section, zstd chunks each followed by its message indexes, a data-end
    record, then a summary (schemas, channels, statistics, chunk indexes) and the
    footer. Messages are merged in log-time order per block and laid out with numpy.
    """

    def __init__(self, fh: BinaryIO, *, chunk_bytes: int = 1 << 20, level: int = 1) -> None:
        import zstandard

        self.fh = fh
        self.chunk_bytes = chunk_bytes
        self.zstd = zstandard.ZstdCompressor(level=level)
        self.schemas: list[bytes] = []
        self.channels: list[bytes] = []
        self.chunk_indexes: list[bytes] = []
        self.counts: dict[int, int] = {}
        self.seq: dict[int, int] = {}
        self.n_metadata = 0
        self.start_time: int | None = None
        self.end_time = 0

    def start(self, topics: list[tuple[str, str]], metadata: dict[str, dict[str, str]]) -> list[int]:
        """Write the header, one schema per type and one channel per topic; returns channel ids."""
        self.fh.write(MAGIC)
        self.fh.write(_rec(0x01, _s("ros2") + _s("workbench bench/readers.py")))
        schema_ids: dict[str, int] = {}
        ids = []
        for topic, msgtype in topics:
            if msgtype not in schema_ids:
                sid = len(schema_ids) + 1
                schema_ids[msgtype] = sid
                text = samples_cdr.message_definition(msgtype).encode()
                rec = _rec(0x03, struct.pack("<H", sid) + _s(msgtype) + _s("ros2msg") + struct.pack("<I", len(text)) + text)
                self.schemas.append(rec)
                self.fh.write(rec)
            cid = len(ids) + 1
            rec = _rec(0x04, struct.pack("<HH", cid, schema_ids[msgtype]) + _s(topic) + _s("cdr") + _map({}))
            self.channels.append(rec)
            self.fh.write(rec)
            self.counts[cid] = 0
            self.seq[cid] = 0
            ids.append(cid)
        for name, values in metadata.items():
            self.fh.write(_rec(0x0C, _s(name) + _map(values)))
            self.n_metadata += 1
        return ids

    def write_block(self, parts: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        """Write messages ``(channel id, log times, (n, size) payload table)`` as chunks."""
        chans, logs, rows, sizes = [], [], [], []
        for cid, log, table in parts:
            chans.append(np.full(len(log), cid, dtype=np.int64))
            logs.append(log)
            rows.append(np.arange(len(log)))
            sizes.append(np.full(len(log), 31 + table.shape[1], dtype=np.int64))
        chan, log, size = np.concatenate(chans), np.concatenate(logs), np.concatenate(sizes)
        order = np.lexsort((chan, log))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        offs_sorted = np.cumsum(size[order]) - size[order]
        total = int(size.sum())
        out = np.empty(total, dtype=np.uint8)
        base = 0
        for cid, lg, table in parts:
            n, w = table.shape[0], 31 + table.shape[1]
            rec = np.empty((n, w), dtype=np.uint8)
            rec[:, 0] = 0x05
            rec[:, 1:9] = np.full(n, w - 9, dtype="<u8").view(np.uint8).reshape(n, 8)
            rec[:, 9:11] = np.full(n, cid, dtype="<u2").view(np.uint8).reshape(n, 2)
            seq = (self.seq[cid] + np.arange(n)).astype("<u4")
            self.seq[cid] += n
            rec[:, 11:15] = seq.view(np.uint8).reshape(n, 4)
            rec[:, 15:23] = lg.astype("<u8").view(np.uint8).reshape(n, 8)
            rec[:, 23:31] = rec[:, 15:23]
            rec[:, 31:] = table
            target = as_strided(out, shape=(total - w + 1, w), strides=(1, 1))
            target[offs_sorted[rank[base : base + n]]] = rec
            base += n
        chan_s, log_s = chan[order], log[order]
        ends = offs_sorted + size[order]
        a = 0
        while a < len(order):
            b = int(np.searchsorted(ends, offs_sorted[a] + self.chunk_bytes, side="right"))
            b = max(b, a + 1)
            self._chunk(out[offs_sorted[a] : ends[b - 1]], offs_sorted[a : b] - offs_sorted[a], chan_s[a:b], log_s[a:b])
            a = b

    def _chunk(self, records: np.ndarray, offs: np.ndarray, chan: np.ndarray, log: np.ndarray) -> None:
        raw = records.tobytes()
        comp = self.zstd.compress(raw)
        t0, t1 = int(log.min()), int(log.max())
        self.start_time = t0 if self.start_time is None else min(self.start_time, t0)
        self.end_time = max(self.end_time, t1)
        body = struct.pack("<QQQI", t0, t1, len(raw), zlib.crc32(raw)) + _s("zstd") + struct.pack("<Q", len(comp))
        chunk_start = self.fh.tell()
        self.fh.write(struct.pack("<BQ", 0x06, len(body) + len(comp)) + body)
        self.fh.write(comp)
        chunk_len = self.fh.tell() - chunk_start
        index_offsets: dict[int, int] = {}
        idx_start = self.fh.tell()
        for cid in np.unique(chan).tolist():
            sel = chan == cid
            pairs = np.empty((int(sel.sum()), 2), dtype="<u8")
            pairs[:, 0] = log[sel]
            pairs[:, 1] = offs[sel]
            self.counts[cid] += len(pairs)
            index_offsets[cid] = self.fh.tell()
            self.fh.write(_rec(0x07, struct.pack("<HI", cid, pairs.nbytes) + pairs.tobytes()))
        idx_len = self.fh.tell() - idx_start
        imap = b"".join(struct.pack("<HQ", c, o) for c, o in index_offsets.items())
        self.chunk_indexes.append(
            _rec(
                0x08,
                struct.pack("<QQQQ", t0, t1, chunk_start, chunk_len)
                + struct.pack("<I", len(imap))
                + imap
                + struct.pack("<Q", idx_len)
                + _s("zstd")
                + struct.pack("<QQ", len(comp), len(raw)),
            )
        )

    def finish(self) -> None:
        """Data end, summary (schemas, channels, statistics, chunk indexes), footer."""
        self.fh.write(_rec(0x0F, struct.pack("<I", 0)))
        summary_start = self.fh.tell()
        for rec in self.schemas + self.channels:
            self.fh.write(rec)
        cmap = b"".join(struct.pack("<HQ", c, n) for c, n in self.counts.items())
        stats = struct.pack(
            "<QHIIIIQQ",
            sum(self.counts.values()),
            len(self.schemas),
            len(self.channels),
            0,
            self.n_metadata,
            len(self.chunk_indexes),
            self.start_time or 0,
            self.end_time,
        ) + struct.pack("<I", len(cmap)) + cmap
        self.fh.write(_rec(0x0B, stats))
        for rec in self.chunk_indexes:
            self.fh.write(rec)
        self.fh.write(_rec(0x02, struct.pack("<QQI", summary_start, 0, 0)))
        self.fh.write(MAGIC)


def generate_mcap(
    path: Path,
    *,
    messages: int | None = None,
    target_bytes: int | None = None,
    block_s: float = 20.0,
    seed: int = 0,
) -> dict[str, int]:
    """Write a ROS 2 MCAP of the three bench topics; stop at *messages* or *target_bytes*.

    Returns message counts by topic.
    """
    rng = np.random.default_rng(seed)
    per_s = sum(rate for _, _, rate in TOPICS)
    counts = {topic: 0 for topic, _, _ in TOPICS}
    states: dict[str, dict[str, Any]] = {topic: {} for topic, _, _ in TOPICS}
    with open(path, "wb") as fh:
        w = FastMcapWriter(fh)
        cids = w.start(
            [(t, m) for t, m, _ in TOPICS],
            {"hardware": {"robot": "bench-arm"}, "scenario": {"task": "bench", "seed": str(seed)}},
        )
        t_block = 0.0
        total = 0
        while True:
            if messages is not None and total >= messages:
                break
            if target_bytes is not None and fh.tell() >= target_bytes:
                break
            dur = block_s
            if messages is not None:
                dur = min(block_s, (messages - total) / per_s)
            parts = []
            for cid, (topic, msgtype, rate) in zip(cids, TOPICS, strict=True):
                first = counts[topic]
                n = max(1, round((t_block + dur) * rate) - first)
                if messages is not None:
                    n = min(n, max(0, messages - total))
                if n == 0:
                    continue
                k = first + np.arange(n)
                log = T0 + (k * (1e9 / rate)).astype(np.int64) + rng.integers(0, 200_000, n)
                stamps = log - rng.integers(500_000, 2_000_000, n)
                parts.append((cid, log, _ENCODERS[msgtype](stamps, rng, states[topic])))
                counts[topic] += n
                total += n
            if parts:
                w.write_block(parts)
            t_block += dur
        w.finish()
    return counts


# --------------------------------------------------------------------------- measured readers


def rate_rosbags(path: Path) -> tuple[int, float]:
    """rosbags' MCAP storage reader + ``deserialize_cdr`` of every message in a Python loop."""
    from rosbags.rosbag2.storage_mcap import McapReader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    deserialize = store.deserialize_cdr
    t0 = time.perf_counter()
    reader = McapReader(path)
    reader.open()
    n = 0
    for conn, _t, raw in reader.messages(reader.connections):
        deserialize(raw, conn.msgtype)
        n += 1
    reader.close()
    return n, time.perf_counter() - t0


def rate_mcap_raw(path: Path) -> tuple[int, float]:
    """The pure-Python ``mcap`` reader: iterate every message record, no decoding."""
    from mcap.reader import make_reader

    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for _schema, _channel, _message in make_reader(fh).iter_messages(log_time_order=False):
            n += 1
    return n, time.perf_counter() - t0


def rate_rerun(path: Path, decoders: list[str] | None) -> tuple[int, int, float]:
    """rerun-sdk's Rust MCAP reader: iterate the decoded chunks; returns (chunks, rows, s)."""
    from rerun.chunk import McapReader

    t0 = time.perf_counter()
    reader = McapReader(path, decoders=decoders)
    chunks = rows = 0
    for chunk in reader.stream():
        chunks += 1
        rows += chunk.num_rows
    return chunks, rows, time.perf_counter() - t0


def rate_ingest(path: Path, store_dir: Path, *, profile: Path | None = None) -> tuple[int, float]:
    """``Store.ingest`` of *path* into a fresh store (imports already done)."""
    import workbench as wb

    store = wb.open_store(store_dir)
    t0 = time.perf_counter()
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    report = store.ingest(path)
    if profile is not None:
        prof.disable()
        prof.dump_stats(profile)
    dt = time.perf_counter() - t0
    if not report.ok or len(report.ingested) != 1:
        msg = f"ingest failed: {report.to_dict()}"
        raise RuntimeError(msg)
    n = sum(store.manifest(report.ingested[0])["info"]["provenance"]["extra"]["message_counts"].values())
    return n, dt


def warm_up(tmp: Path) -> None:
    """Import and exercise everything once (numcodecs, xarray, polars, the readers)."""
    import workbench as wb

    small = tmp / "warm.mcap"
    generate_mcap(small, messages=3000, seed=99)
    wb.open_store(tmp / "warm-store").ingest(small)
    rate_rosbags(small)
    rate_mcap_raw(small)


def bench_file(tmp: Path, messages: int, profile: Path | None) -> None:
    path = tmp / "bench.mcap"
    t0 = time.perf_counter()
    counts = generate_mcap(path, messages=messages)
    size = path.stat().st_size
    print(
        f"generated {path.name}: {sum(counts.values()):,} messages "
        f"({', '.join(f'{t} {n:,}' for t, n in counts.items())}), {size / 1e6:.0f} MB, "
        f"in {time.perf_counter() - t0:.1f} s (not measured)"
    )
    warm_up(tmp)
    gc.collect()
    n_d, t_d = rate_ingest(path, tmp / "store-d", profile=profile)
    gc.collect()
    n_a, t_a = rate_rosbags(path)
    gc.collect()
    n_b, t_b = rate_mcap_raw(path)
    gc.collect()
    rerun_rates: dict[str, tuple[int, int, float]] = {}
    for label, dec in (("ros2msg", ["ros2msg"]), ("ros2_reflection", ["ros2_reflection"])):
        try:
            rerun_rates[label] = rate_rerun(path, dec)
        except Exception as err:  # noqa: BLE001 - report what rerun cannot do, keep going
            print(f"(c) rerun McapReader decoders={dec}: failed: {type(err).__name__}: {err}")
    n = sum(counts.values())
    for label, k in (("(a) rosbags", n_a), ("(b) mcap", n_b), ("(d) ingest", n_d)):
        if k != n:
            print(f"warning: {label} saw {k:,} messages, expected {n:,}")
    r_a, r_b, r_d = n_a / t_a, n_b / t_b, n_d / t_d
    print(f"(a) rosbags deserialize_cdr loop     {r_a:>12,.0f} msgs/s  ({t_a:.2f} s)")
    print(f"(b) mcap (pure Python) raw iteration {r_b:>12,.0f} msgs/s  ({t_b:.2f} s)")
    best_c = 0.0
    for label, (chunks, rows, t_c) in rerun_rates.items():
        r_c = n / t_c
        best_c = max(best_c, r_c)
        print(
            f"(c) rerun McapReader [{label}] decode {r_c:>10,.0f} msgs/s  ({t_c:.2f} s; "
            f"{chunks:,} chunks, {rows:,} rows)"
        )
    print(
        f"(d) Store.ingest end-to-end         {r_d:>12,.0f} msgs/s  ({t_d:.2f} s, "
        f"{size / t_d / 1e6:.0f} MB/s of file)"
    )
    print(f"(d)/(a) = {r_d / r_a:.1f}×  (target ≥ 10×)")
    if best_c:
        print(f"(d)/(c) = {100 * r_d / best_c:.0f} %  (target ≥ 50 %; against the faster rerun decoder)")


# --------------------------------------------------------------------------- small files


def _rosbags_readable(files: list[Path]) -> list[Path]:
    """The files rosbags opens (it refuses truncated ones, which the campaign includes)."""
    from rosbags.rosbag2.storage_mcap import McapReader

    ok = []
    for f in files:
        reader = McapReader(f)
        try:
            reader.open()
        except Exception:  # noqa: BLE001 - rosbags raises its own errors on damaged files
            continue
        reader.close()
        ok.append(f)
    return ok


def _rosbags_files(files: list[Path]) -> float:
    from rosbags.rosbag2.storage_mcap import McapReader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    t0 = time.perf_counter()
    for f in files:
        reader = McapReader(f)
        reader.open()
        for conn, _t, raw in reader.messages(reader.connections):
            store.deserialize_cdr(raw, conn.msgtype)
        reader.close()
    return time.perf_counter() - t0


def bench_small_files(tmp: Path, profile: Path | None, repeat: int = 3) -> None:
    """Per-file cost on the sample campaign: Store.ingest (fresh store) vs rosbags."""
    import workbench as wb

    files = _rosbags_readable(sorted(CAMPAIGN.glob("*.mcap")))
    if not files:
        print(f"no sample files in {CAMPAIGN}")
        return
    wb.open_store(tmp / "warm-small").ingest(files[0])
    _rosbags_files(files[:2])
    t_ingest = t_rb = float("inf")
    for i in range(repeat):
        store = wb.open_store(tmp / f"small-store-{i}")
        gc.collect()
        t0 = time.perf_counter()
        if profile is not None and i == 0:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        report = store.ingest(files)
        if profile is not None and i == 0:
            prof.disable()
            prof.dump_stats(profile)
        t_ingest = min(t_ingest, time.perf_counter() - t0)
        if not report.ok or len(report.ingested) != len(files):
            print(f"warning: small-file ingest: {report}")
        gc.collect()
        t_rb = min(t_rb, _rosbags_files(files))
    n = len(files)
    print(
        f"{n} small sample files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB, the ones "
        f"rosbags opens): Store.ingest {1000 * t_ingest / n:.1f} ms/file, rosbags read+deserialize "
        f"{1000 * t_rb / n:.1f} ms/file → ingest takes {t_ingest / t_rb:.2f}× rosbags' time"
    )


# --------------------------------------------------------------------------- big file

_CHILD = r"""
import json, resource, sys, time
t_imp = time.perf_counter()
import workbench as wb
path, store_dir = sys.argv[1], sys.argv[2]
store = wb.open_store(store_dir)
t0 = time.perf_counter()
report = store.ingest(path, progress=sys.argv[3] == "1")
dt = time.perf_counter() - t0
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's at fork)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak_kb = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run = report.ingested[0] if report.ingested else None
counts = store.manifest(run)["info"]["provenance"]["extra"]["message_counts"] if run else {}
print(json.dumps({"seconds": dt, "peak_rss_mb": peak_kb / 1024, "ok": report.ok,
                  "report": report.to_dict(), "messages": sum(counts.values())}))
"""


def ingest_subprocess(path: Path, store_dir: Path, *, progress: bool = False) -> dict[str, Any]:
    """Ingest *path* in a fresh Python process; returns its time, peak RSS and report."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(store_dir), "1" if progress else "0"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_big(tmp: Path, gigabytes: float, progress: bool) -> None:
    path = tmp / "big.mcap"
    t0 = time.perf_counter()
    counts = generate_mcap(path, target_bytes=int(gigabytes * 1e9), block_s=60.0)
    size = path.stat().st_size
    print(
        f"generated {path.name}: {size / 1e9:.2f} GB, {sum(counts.values()):,} messages "
        f"in {time.perf_counter() - t0:.0f} s (not measured)"
    )
    res = ingest_subprocess(path, tmp / "big-store", progress=progress)
    if not res["ok"]:
        print(f"big ingest failed: {res['report']}")
        return
    print(
        f"big file ingest in a subprocess: {res['seconds']:.1f} s, {size / res['seconds'] / 1e6:.0f} MB/s, "
        f"{res['messages'] / res['seconds']:,.0f} msgs/s, peak RSS {res['peak_rss_mb']:.0f} MB "
        f"(target < 1024 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=700_000, help="messages in the bench file")
    parser.add_argument("--big", action="store_true", help="also the ~2 GB streaming ingest")
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the big file in GB")
    parser.add_argument("--only-big", action="store_true", help="skip the rate comparison")
    parser.add_argument("--progress", action="store_true", help="show the progress bar of the big ingest")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of (d) here (and <path>.small)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    ctx: Any = tempfile.TemporaryDirectory(prefix="wb-bench-") if args.keep is None else None
    tmp = Path(ctx.name) if ctx is not None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if not args.only_big:
            bench_file(tmp, args.messages, args.profile)
            bench_small_files(tmp, args.profile.with_suffix(".small") if args.profile else None)
        if args.big or args.only_big:
            bench_big(tmp, args.big_gb, args.progress)
    finally:
        if ctx is not None:
            ctx.cleanup()


if __name__ == "__main__":
    main()
