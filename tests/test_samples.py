"""The sample-campaign generator and the committed samples in data/samples.

Small campaigns are generated into ``tmp_path``; the committed files are checked
directly with independent readers (``mcap`` + ``mcap_ros2``, ``rosbags``).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mcap.exceptions import McapError
from mcap.reader import NonSeekingReader, make_reader
from mcap_ros2.decoder import DecoderFactory
from PIL import Image
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from workbench.model import ConfigError, parse_scalar
from workbench.samples import GRID, TOPICS, cdr, checkpoint_id, generate
from workbench.samples.campaign import PROFILES
from workbench.samples.writers import IMU_COVARIANCES, TF_FRAMES

CAMERA = "/wrist_camera/image_raw/compressed"
TS2 = get_typestore(Stores.ROS2_HUMBLE)


# --------------------------------------------------------------------------- helpers


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read_mcap(
    path: Path, topics: list[str] | None = None
) -> dict[str, list[tuple[int, Any]]]:
    """(log_time, decoded message) per topic, with the mcap reader and mcap_ros2."""
    out: dict[str, list[tuple[int, Any]]] = {}
    with path.open("rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for _, channel, message, decoded in reader.iter_decoded_messages(topics=topics):
            out.setdefault(channel.topic, []).append((message.log_time, decoded))
    return out


def _stamp(msg: Any) -> int:
    header = msg.transforms[0].header if hasattr(msg, "transforms") else msg.header
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher exact p-value of the 2×2 table [[a, b], [c, d]]."""
    n, row1, col1 = a + b + c + d, a + b, a + c

    def p(x: int) -> float:
        return math.comb(row1, x) * math.comb(n - row1, col1 - x) / math.comb(n, col1)

    p_obs = p(a)
    lo, hi = max(0, col1 - (n - row1)), min(row1, col1)
    return sum(p(x) for x in range(lo, hi + 1) if p(x) <= p_obs * (1 + 1e-9))


def _key(run: dict[str, Any]) -> tuple[str, str, str, str]:
    f = run["factors"]
    return (
        f["hardware"]["robot"],
        f["environment"]["lighting"],
        f["environment"]["surface"],
        f["model"]["version"],
    )


@pytest.fixture(scope="module")
def truth(samples_dir: Path) -> dict[str, Any]:
    return json.loads((samples_dir / "truth.json").read_text())


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("small")
    return out, generate(out, runs=4, seed=0)


# --------------------------------------------------------------------------- generator


def test_same_seed_gives_identical_bytes(
    small: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first, truth = small
    again = generate(tmp_path / "again", runs=4, seed=0)
    assert again == truth
    a, b = _files(first), _files(tmp_path / "again")
    assert sorted(a) == sorted(b)
    assert (
        len([k for k in a if k.endswith(".mcap")]) == 5
    )  # 4 runs + the truncated copy
    assert [k for k in a if a[k] != b[k]] == []


def test_other_seed_gives_other_bytes(
    small: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first, _ = small
    generate(tmp_path / "other", runs=4, seed=1)
    a, b = _files(first), _files(tmp_path / "other")
    runs = [k for k in a if k.endswith(".mcap") and "truncated" not in k]
    assert runs and all(a[k] != b[k] for k in runs)


def test_worker_processes_and_progress_do_not_change_the_bytes(
    small: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first, truth = small
    calls: list[tuple[int, int]] = []
    again = generate(
        tmp_path, runs=4, seed=0, workers=2, progress=lambda *a: calls.append(a)
    )
    assert again == truth
    assert calls == [(i, 8) for i in range(1, 9)]  # 4 MCAP runs + 4 ROS 1 bag runs
    assert _files(first) == _files(tmp_path)


def mcap_runs(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs recorded as MCAP (the grid); the ROS 1 bag runs are extra seeds."""
    return [r for r in truth["runs"] if r["format"] == "mcap"]


def test_runs_cycle_through_the_grid(small: tuple[Path, dict[str, Any]]) -> None:
    out, truth = small
    assert [r["name"] for r in mcap_runs(truth)] == [
        "arm-a_bright_rubber_policy-v1_s00",
        "arm-a_bright_rubber_policy-v2_s00",
        "arm-a_bright_steel_policy-v1_s00",
        "arm-a_bright_steel_policy-v2_s00",
    ]
    starts = [r["start_ns"] for r in mcap_runs(truth)]
    assert starts[0] == 1_780_272_000 * 10**9  # 2026-06-01T00:00:00Z
    assert np.diff(starts).tolist() == [600 * 10**9] * 3
    assert {f["kind"] for f in truth["faults"]} == {
        "camera_gap",
        "imu_clock_jump",
        "truncated_file",
    }
    assert (out / "README.md").read_text().startswith("# Sample campaign")


def test_bad_arguments_and_stray_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid profiles: compact, full"):
        generate(tmp_path, runs=1, profile="huge")
    with pytest.raises(ConfigError, match="runs must be"):
        generate(tmp_path, runs=0)
    with pytest.raises(ConfigError, match="duration_s"):
        generate(tmp_path, runs=1, duration_s=1.0)
    (tmp_path / "campaign").mkdir()
    (tmp_path / "campaign" / "mine.mcap").write_bytes(b"x")
    with pytest.raises(ConfigError, match="mine.mcap"):
        generate(tmp_path, runs=1)
    assert (tmp_path / "campaign" / "mine.mcap").read_bytes() == b"x"


def test_fixed_duration_and_full_profile(tmp_path: Path) -> None:
    truth = generate(tmp_path, runs=1, duration_s=4.0, profile="full", seed=3)
    (run,) = mcap_runs(truth)
    assert run["duration_s"] == 4.0
    # A 4 s recording is too short for the task: it fails with a timeout.
    assert (run["outcome"], run["failure_reason"]) == ("failure", "timeout")
    rates = PROFILES["full"]["rates_hz"]
    for topic, rate in rates.items():
        expected = rate * 4.0
        # The camera-gap fault lands on run 1 % 1 == 0 here.
        if topic == CAMERA:
            expected -= 1.5 * rate
        assert abs(run["message_counts"][topic] - expected) <= 2, topic
    msgs = _read_mcap(tmp_path / run["file"], topics=["/events"])["/events"]
    assert json.loads(msgs[-1][1].data) == {"kind": "failure", "reason": "timeout"}


# --------------------------------------------------------------------------- encoding


def _header(ns: int, frame: str) -> Any:
    T = TS2.types
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
        frame_id=frame,
    )


def test_fast_cdr_equals_rosbags_serialization() -> None:
    rng = np.random.default_rng(7)
    T = TS2.types
    stamps = [1_780_272_000_123_456_789, 1_780_272_001_000_000_001, 5]
    names = [f"joint_{i}" for i in range(1, 7)]
    p, v, e = (rng.normal(size=(3, 6)) for _ in range(3))

    def vec(a: Any) -> Any:
        return T["geometry_msgs/msg/Vector3"](x=a[0], y=a[1], z=a[2])

    def quat(a: Any) -> Any:
        return T["geometry_msgs/msg/Quaternion"](x=a[0], y=a[1], z=a[2], w=a[3])

    cases: list[tuple[str, list[bytes], list[Any]]] = []
    js = T["sensor_msgs/msg/JointState"]
    cases.append(
        (
            "sensor_msgs/msg/JointState",
            cdr.encode_joint_state(stamps, names, p, v, e),
            [
                js(
                    header=_header(s, ""),
                    name=names,
                    position=p[i],
                    velocity=v[i],
                    effort=e[i],
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    empty = np.zeros(0)
    cases.append(
        (
            "sensor_msgs/msg/JointState",
            cdr.encode_joint_state(stamps, names, p, frame_id="base"),
            [
                js(
                    header=_header(s, "base"),
                    name=names,
                    position=p[i],
                    velocity=empty,
                    effort=empty,
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    o, w, a = rng.normal(size=(3, 4)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    cov = [np.asarray(c, dtype=float) for c in IMU_COVARIANCES]
    cases.append(
        (
            "sensor_msgs/msg/Imu",
            cdr.encode_imu(
                stamps, o, w, a, frame_id="imu_link", covariances=IMU_COVARIANCES
            ),
            [
                T["sensor_msgs/msg/Imu"](
                    header=_header(s, "imu_link"),
                    orientation=quat(o[i]),
                    orientation_covariance=cov[0],
                    angular_velocity=vec(w[i]),
                    angular_velocity_covariance=cov[1],
                    linear_acceleration=vec(a[i]),
                    linear_acceleration_covariance=cov[2],
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    f, t = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    cases.append(
        (
            "geometry_msgs/msg/WrenchStamped",
            cdr.encode_wrench(stamps, f, t, frame_id="ft"),
            [
                T["geometry_msgs/msg/WrenchStamped"](
                    header=_header(s, "ft"),
                    wrench=T["geometry_msgs/msg/Wrench"](
                        force=vec(f[i]), torque=vec(t[i])
                    ),
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    tr = [rng.normal(size=(3, 3)) for _ in TF_FRAMES]
    rot = [rng.normal(size=(3, 4)) for _ in TF_FRAMES]
    cases.append(
        (
            "tf2_msgs/msg/TFMessage",
            cdr.encode_tf(stamps, TF_FRAMES, tr, rot),
            [
                T["tf2_msgs/msg/TFMessage"](
                    transforms=[
                        T["geometry_msgs/msg/TransformStamped"](
                            header=_header(s, parent),
                            child_frame_id=child,
                            transform=T["geometry_msgs/msg/Transform"](
                                translation=vec(tr[k][i]), rotation=quat(rot[k][i])
                            ),
                        )
                        for k, (parent, child) in enumerate(TF_FRAMES)
                    ]
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    blobs = [b"", b"\xff\xd8abc", bytes(range(200))]
    cases.append(
        (
            "sensor_msgs/msg/CompressedImage",
            cdr.encode_compressed_image(stamps, blobs, frame_id="cam"),
            [
                T["sensor_msgs/msg/CompressedImage"](
                    header=_header(s, "cam"),
                    format="jpeg",
                    data=np.frombuffer(blobs[i], dtype=np.uint8),
                )
                for i, s in enumerate(stamps)
            ],
        )
    )
    texts = ["", '{"kind": "grasp"}', "ü" * 5]
    cases.append(
        (
            "std_msgs/msg/String",
            cdr.encode_string(texts),
            [T["std_msgs/msg/String"](data=x) for x in texts],
        )
    )
    assert {c[0] for c in cases} == set(cdr.MESSAGE_TYPES)
    for msgtype, fast, objects in cases:
        expected = [bytes(TS2.serialize_cdr(obj, msgtype)) for obj in objects]
        assert fast == expected, msgtype


def test_committed_bytes_roundtrip_through_rosbags(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    """Every message of a committed run re-serializes to exactly its bytes."""
    path = samples_dir / truth["runs"][15]["file"]
    seen = set()
    with path.open("rb") as fh:
        for schema, channel, message in make_reader(fh).iter_messages():
            assert schema is not None and schema.encoding == "ros2msg"
            assert schema.data.decode() == cdr.message_definition(schema.name)
            obj = TS2.deserialize_cdr(message.data, schema.name)
            assert bytes(TS2.serialize_cdr(obj, schema.name)) == message.data
            seen.add(channel.topic)
    assert seen == set(TOPICS)


# --------------------------------------------------------------------------- committed campaign


def test_committed_campaign_layout_and_size(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    runs = mcap_runs(truth)
    assert truth["campaign"]["standard"] and len(runs) == 160
    cells: dict[tuple[str, ...], set[str]] = {}
    for run in runs:
        cells.setdefault(_key(run), set()).add(run["factors"]["scenario"]["seed"])
    assert len(cells) == math.prod(len(v) for v in GRID.values()) == 16
    seeds = set(next(iter(cells.values())))
    assert len(seeds) >= 10 and all(s == seeds for s in cells.values())
    on_disk = {
        str(p.relative_to(samples_dir)) for p in samples_dir.rglob("*") if p.is_file()
    }
    listed = {r["file"] for r in truth["runs"]} | {f["file"] for f in truth["faults"]}
    listed |= {b["file"] for b in truth["rosbag1"]} | {
        b["sidecar"] for b in truth["rosbag1"]
    }
    assert on_disk == listed | {"truth.json", "README.md"}
    assert sum((samples_dir / p).stat().st_size for p in on_disk) <= 15_000_000
    durations = [r["duration_s"] for r in runs]
    assert min(durations) >= 3.5 and max(durations) <= 9.0


def test_committed_metadata_and_counts_match_truth(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    """Summary-only read of every run: metadata records and per-topic counts."""
    for run in mcap_runs(truth):
        with (samples_dir / run["file"]).open("rb") as fh:
            reader = make_reader(fh)
            assert reader.get_header().profile == "ros2"
            summary = reader.get_summary()
            assert summary is not None
            topics = {
                c.id: (c.topic, c.message_encoding) for c in summary.channels.values()
            }
            counts = {
                topics[cid][0]: n
                for cid, n in summary.statistics.channel_message_counts.items()
            }
            meta = {m.name: m.metadata for m in reader.iter_metadata()}
        assert {enc for _, enc in topics.values()} == {"cdr"}
        assert {s.name for s in summary.schemas.values()} == set(TOPICS.values())
        assert counts == run["message_counts"]
        for group in ("hardware", "environment", "model", "scenario"):
            assert meta[group] == run["factors"][group]
        assert meta["model"]["checkpoint"] == checkpoint_id(meta["model"]["version"])
        assert len(meta["model"]["checkpoint"]) == 64
        sample = meta["workbench.sample"]
        assert json.loads(sample["rates_hz"]) == truth["campaign"]["rates_hz"]
        assert sample["profile"] == "compact" and sample["run_index"] == str(
            run["index"]
        )


def test_committed_run_decodes_with_mcap_ros2(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    run = truth["runs"][6]
    msgs = _read_mcap(samples_dir / run["file"])
    assert set(msgs) == set(TOPICS)
    assert {k: len(v) for k, v in msgs.items()} == run["message_counts"]
    rates = truth["campaign"]["rates_hz"]
    for topic, rate in rates.items():
        stamps = np.array([_stamp(m) for _, m in msgs[topic]])
        logs = np.array([t for t, _ in msgs[topic]])
        assert np.median(np.diff(stamps)) == pytest.approx(1e9 / rate, rel=1e-3), topic
        assert np.median(np.diff(logs)) == pytest.approx(1e9 / rate, rel=0.05), topic
        latency = (logs - stamps) / 1e6
        if topic == "/imu":  # constant -37 ms clock offset in its stamps
            assert np.median(latency) == pytest.approx(37 + 2, abs=1.5)
        else:
            assert latency.min() > 0 and latency.max() < 60, topic
    js = msgs["/joint_states"][0][1]
    assert list(js.name) == [f"joint_{i}" for i in range(1, 7)]
    assert len(js.position) == len(js.velocity) == len(js.effort) == 6
    cmd = msgs["/joint_commands"][0][1]
    assert len(cmd.position) == 6 and len(cmd.velocity) == len(cmd.effort) == 0
    pos = np.array([m.position for _, m in msgs["/joint_states"]])
    assert np.all(pos * 2**16 == np.round(pos * 2**16))  # encoder quantization
    tf = msgs["/tf"][0][1]
    assert [(t.header.frame_id, t.child_frame_id) for t in tf.transforms] == list(
        TF_FRAMES
    )
    image = msgs[CAMERA][0][1]
    assert image.format == "jpeg"
    assert Image.open(io.BytesIO(bytes(image.data))).size == (64, 48)


def test_committed_run_reads_with_rosbags(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    run = truth["runs"][9]
    with AnyReader([samples_dir / run["file"]], default_typestore=TS2) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in conns.items()} == TOPICS
        assert {t: c.msgcount for t, c in conns.items()} == run["message_counts"]
        counts: dict[str, int] = {}
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.topic == "/events":
                assert "kind" in json.loads(msg.data)
    assert counts == run["message_counts"]


def test_events_agree_with_truth(samples_dir: Path, truth: dict[str, Any]) -> None:
    for run in mcap_runs(truth):
        events = _read_mcap(samples_dir / run["file"], topics=["/events"])["/events"]
        kinds = [json.loads(m.data) for _, m in events]
        ends = [
            (t, k)
            for (t, _), k in zip(events, kinds, strict=True)
            if k["kind"] in ("success", "failure")
        ]
        assert len(ends) == 1, run["name"]
        t_end, last = ends[0]
        assert kinds[-1] == last
        assert last["kind"] == run["outcome"]
        assert last.get("reason") == run["failure_reason"]
        assert sum(k["kind"] == "slip" for k in kinds) == run["slips"]
        assert sum(k["kind"] == "recovery" for k in kinds) == run["recoveries"]
        if run["outcome"] == "success":
            assert (t_end - run["start_ns"]) / 1e9 == pytest.approx(
                run["time_to_success_s"], abs=1e-6
            )
            assert kinds[0] == {"kind": "grasp"}
        else:
            assert run["time_to_success_s"] is None


# --------------------------------------------------------------------------- planted effects


def test_planted_effects_in_truth(truth: dict[str, Any]) -> None:
    runs = {(*_key(r), r["factors"]["scenario"]["seed"]): r for r in mcap_runs(truth)}
    succ: dict[tuple[str, str, str], list[int]] = {}
    for (robot, light, _, version, _), r in runs.items():
        succ.setdefault((robot, light, version), []).append(r["outcome"] == "success")
    for robot in ("arm-a", "arm-b"):
        for light in ("bright", "dim"):
            v1, v2 = (
                succ[(robot, light, "policy-v1")],
                succ[(robot, light, "policy-v2")],
            )
            assert len(v1) == len(v2) == 20
            if (robot, light) == ("arm-b", "dim"):
                assert np.mean(v1) - np.mean(v2) >= 0.3
                p = _fisher_two_sided(sum(v1), 20 - sum(v1), sum(v2), 20 - sum(v2))
                assert p < 0.05
            else:
                assert np.mean(v2) >= np.mean(v1)
    # policy-v2 is faster: paired by scenario seed, where both succeed.
    ratios = [
        r["time_to_success_s"] / runs[(*k[:3], "policy-v1", k[4])]["time_to_success_s"]
        for k, r in runs.items()
        if k[3] == "policy-v2"
        and r["outcome"] == "success"
        and runs[(*k[:3], "policy-v1", k[4])]["outcome"] == "success"
    ]
    assert len(ratios) > 50
    assert 0.75 <= float(np.mean(ratios)) <= 0.88 and max(ratios) < 1.0
    slips = {
        s: sum(r["slips"] for k, r in runs.items() if k[2] == s)
        for s in ("rubber", "steel")
    }
    assert slips["steel"] >= 2 * slips["rubber"] > 0
    reasons = {r["failure_reason"] for r in runs.values()}
    assert {"missed_grasp", "drop"} <= reasons
    assert sum(r["outcome"] == "success" for r in runs.values()) not in (0, len(runs))


def test_planted_effects_in_the_signals(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    """The arm-b calibration offset and the dim camera are visible in the bytes."""
    by_name = {r["name"]: r for r in truth["runs"]}
    offsets, brightness = {}, {}
    for name in ("arm-a_bright_rubber_policy-v1_s05", "arm-b_dim_rubber_policy-v1_s05"):
        msgs = _read_mcap(samples_dir / by_name[name]["file"])
        js = msgs["/joint_states"]
        cmd = msgs["/joint_commands"]
        t_js = np.array([_stamp(m) for _, m in js])
        t_cmd = np.array([_stamp(m) for _, m in cmd])
        q2 = np.array([m.position[1] for _, m in js])
        c2 = np.interp(t_js, t_cmd, [m.position[1] for _, m in cmd])
        still = np.abs(np.gradient(c2)) < 1e-6  # arm at rest: no lag, no latency
        offsets[name[:5]] = float(np.median((q2 - c2)[still]))
        frames = [
            np.asarray(Image.open(io.BytesIO(bytes(m.data))).convert("L"))
            for _, m in msgs[CAMERA]
        ]
        brightness[name.split("_")[1]] = float(np.mean([f.mean() for f in frames]))
    assert offsets["arm-a"] == pytest.approx(0.0, abs=1e-3)
    assert offsets["arm-b"] == pytest.approx(0.03, abs=1e-3)
    assert brightness["dim"] < 0.5 * brightness["bright"]


# --------------------------------------------------------------------------- planted faults


def test_camera_gap_is_in_the_file(samples_dir: Path, truth: dict[str, Any]) -> None:
    (fault,) = [f for f in truth["faults"] if f["kind"] == "camera_gap"]
    msgs = _read_mcap(samples_dir / fault["file"], topics=[CAMERA])[CAMERA]
    logs = np.array([t for t, _ in msgs])
    gaps = np.diff(logs)
    i = int(np.argmax(gaps))
    assert gaps[i] >= 1e9
    assert logs[i] <= fault["start_ns"] + 50_000_000 and logs[i + 1] >= fault["end_ns"]
    assert np.sort(gaps)[-2] < 0.3e9  # one gap only
    other = next(r for r in truth["runs"] if "faults" not in r)
    normal = np.diff(
        [t for t, _ in _read_mcap(samples_dir / other["file"], topics=[CAMERA])[CAMERA]]
    )
    assert normal.max() < 0.3e9


def test_imu_clock_jump_is_in_the_file(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    (fault,) = [f for f in truth["faults"] if f["kind"] == "imu_clock_jump"]
    msgs = _read_mcap(samples_dir / fault["file"], topics=["/imu"])["/imu"]
    stamps = np.array([_stamp(m) for _, m in msgs])
    logs = np.array([t for t, _ in msgs])
    period = 1e9 / truth["campaign"]["rates_hz"]["/imu"]
    jumps = np.flatnonzero(np.diff(stamps) > 2 * period)
    assert len(jumps) == 1
    assert np.diff(stamps)[jumps[0]] == pytest.approx(
        fault["jump_s"] * 1e9 + period, abs=1e6
    )
    assert abs(logs[jumps[0] + 1] - fault["start_ns"]) < 3 * period
    assert np.diff(logs).max() < 2 * period  # the recorder's clock is continuous


def test_truncated_file_fails_with_mcap(
    samples_dir: Path, truth: dict[str, Any]
) -> None:
    (fault,) = [f for f in truth["faults"] if f["kind"] == "truncated_file"]
    path = samples_dir / fault["file"]
    source = (samples_dir / fault["source"]).read_bytes()
    data = path.read_bytes()
    assert path.name.endswith("_truncated.mcap")
    assert len(data) == fault["size_bytes"] and source.startswith(data)
    assert 0.2 * len(source) < len(data) < 0.8 * len(source)
    with path.open("rb") as fh, pytest.raises(McapError):
        list(make_reader(fh).iter_messages())
    salvaged: list[Any] = []
    with path.open("rb") as fh, pytest.raises(McapError):
        salvaged.extend(NonSeekingReader(fh).iter_messages(log_time_order=False))
    # The cut falls after at least one complete chunk: a prefix can be salvaged.
    source_run = next(r for r in truth["runs"] if r["file"] == fault["source"])
    assert 0 < len(salvaged) < sum(source_run["message_counts"].values())


# --------------------------------------------------------------------------- ROS 1 bags


def test_rosbag1_runs_match_truth(samples_dir: Path, truth: dict[str, Any]) -> None:
    by_name = {r["name"]: r for r in truth["runs"]}
    assert len(truth["rosbag1"]) == 4
    grid = {(r["name"].rsplit("_s", 1)[0], r["factors"]["scenario"]["seed"]) for r in mcap_runs(truth)}
    for bag in truth["rosbag1"]:
        run = by_name[bag["run"]]
        assert run["format"] == "rosbag1" and run["file"] == bag["file"]
        # an extra seed of its cell, not a second copy of an MCAP run
        assert (run["name"].rsplit("_s", 1)[0], run["factors"]["scenario"]["seed"]) not in grid
        factors = yaml.safe_load((samples_dir / bag["sidecar"]).read_text())
        assert factors == {g: {k: parse_scalar(v) for k, v in kv.items()} for g, kv in run["factors"].items()}
        assert factors["scenario"]["seed"] == 10  # typed, as MCAP metadata values read back
        with AnyReader([samples_dir / bag["file"]]) as reader:
            assert reader.is2 is False
            conns = {c.topic: c for c in reader.connections}
            assert {t: c.msgtype for t, c in conns.items()} == TOPICS
            assert {t: c.msgcount for t, c in conns.items()} == run["message_counts"]
            events = [
                json.loads(reader.deserialize(raw, c.msgtype).data)
                for c, _, raw in reader.messages(connections=[conns["/events"]])
            ]
        assert events[-1]["kind"] == run["outcome"]
