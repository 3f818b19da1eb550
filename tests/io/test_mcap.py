"""MCAP reader: real files, write-then-read round trips, bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from workbench.io import registry
from workbench.io.mcap import MAGIC, McapReader
from workbench.model import ReaderError

ROS2 = get_typestore(Stores.ROS2_HUMBLE)
T = ROS2.types
T0 = 1_700_000_000_000_000_000


def read(path: Path, **options: Any) -> Any:
    runs = list(McapReader().read(path, **options))
    assert len(runs) == 1
    return runs[0]


def mcap_counts(path: Path) -> Counter[str]:
    """Messages per topic according to the mcap library (the independent reference)."""
    from mcap.reader import make_reader

    with open(path, "rb") as fh:
        return Counter(ch.topic for _s, ch, _m in make_reader(fh).iter_messages())


def accounted(run: Any, topic: str) -> int:
    """Messages of *topic* that ended up in streams, events or skipped."""
    n = sum(s["count"] for s in run.skipped if s["topic"] == topic)
    sizes = [ds.sizes["time"] for ds in run.streams.values() if ds.attrs.get("source") == topic]
    if topic in {"/tf", "/tf_static"}:
        return n + (1 if sizes else 0) * run.extra["message_counts"][topic]
    return n + sum(sizes) + (run.events.height if topic == "/events" else 0)


# --------------------------------------------------------------------------- real files


def real_mcaps(real: Path) -> list[Path]:
    return sorted(real.glob("mcap/*.mcap")) + sorted(real.glob("ros2_bag/mcap/*/*.mcap"))


def test_real_mcap_files_ingest_with_library_counts(real_data: Path) -> None:
    files = real_mcaps(real_data)
    assert len(files) == 7
    for path in files:
        run = read(path)
        expected = mcap_counts(path)
        assert run.extra["message_counts"] == dict(expected), path.name
        for topic, n in expected.items():
            assert accounted(run, topic) == n, (path.name, topic)
        assert run.name == path.stem
        for ds in run.streams.values():
            t = ds["time"].values
            assert t.dtype == np.int64 and np.all(np.diff(t) >= 0)
            assert {"source", "message_type", "encoding"} <= set(ds.attrs)
            assert all("units" in v.attrs for v in ds.data_vars.values())


def test_real_json_mcap_values(real_data: Path) -> None:
    from mcap.reader import make_reader

    path = real_data / "mcap" / "foxglove_eip_bridge_2025-07-04_17-53-27.mcap"
    run = read(path)
    assert len(run.streams) == 35 and not run.skipped
    temp = run.streams["eip.temperature"]
    assert temp.sizes["time"] == 3143 and temp.attrs["encoding"] == "json"
    assert "tag_name" in temp.attrs["ignored"]
    with open(path, "rb") as fh:
        msgs = [
            (m.log_time, json.loads(m.data))
            for _s, _c, m in make_reader(fh).iter_messages(topics=["/eip/temperature"])
        ]
    msgs.sort(key=lambda x: x[0])
    assert temp["time"].values.tolist() == [t for t, _ in msgs]
    assert temp["value"].values.tolist() == [m["value"] for _, m in msgs]
    assert temp["timestamp"].values.tolist() == [m["timestamp"] for _, m in msgs]


def test_real_rosbag2_mcap_quirks(real_data: Path) -> None:
    run = read(real_data / "mcap" / "rosbag2_topics_and_services.mcap")
    skipped = {s["topic"]: s for s in run.skipped}
    assert skipped["/add_two_ints/_service_event"]["count"] == 6
    assert "service event" in skipped["/add_two_ints/_service_event"]["reason"]
    assert run.streams["parameter_events"].sizes["time"] == 7
    assert [m["name"] for m in run.extra["mcap_metadata"]] == ["rosbag2", "rosbag2"]
    assert "/rosout" in run.extra["empty_topics"]
    assert run.extra["mcap_header"]["profile"] == "ros2"
    run = read(
        real_data / "ros2_bag" / "mcap" / "rosbag2_talker" / "talker.mcap", events_topics=["/topic"]
    )
    assert run.streams["rosout"]["level"].values.tolist() == [20] * 10
    # "/topic" holds plain text, not JSON events: every message is listed as skipped
    assert run.skipped[0]["topic"] == "/topic" and run.skipped[0]["count"] == 10


def test_real_rosout_log_events(real_data: Path) -> None:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = real_data / "ros2_bag" / "mcap" / "rosbag2_talker" / "talker.mcap"
    with open(path, "rb") as fh:  # decoded by mcap-ros2-support: an independent reference
        ref = sorted(
            (m.log_time, msg)
            for _s, ch, m, msg in make_reader(
                fh, decoder_factories=[DecoderFactory()]
            ).iter_decoded_messages()
            if ch.topic == "/rosout"
        )
    assert len(ref) == 10
    ros2_level = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "FATAL"}
    for parts in (False, True):
        run = read(path, parts=parts)
        if parts:
            run = run.materialize()
        logs = run.events.filter(run.events["kind"] == "log")
        assert logs["time"].to_list() == [t for t, _m in ref]
        assert [json.loads(d) for d in logs["detail"]] == [
            {
                "level": ros2_level[m.level],
                "severity": m.level,
                "message": m.msg,
                "name": m.name,
                "source": "/rosout",
                "file": m.file,
                "function": m.function,
                "line": m.line,
            }
            for _t, m in ref
        ]
        assert run.streams["rosout"]["level"].values.tolist() == [20] * 10  # stream kept


# --------------------------------------------------------------------------- round trips


def msgdef(typename: str) -> str:
    return ROS2.generate_msgdef(typename, ros_version=2)[0]


def header(t: int, frame: str = "base_link") -> dict[str, Any]:
    return {"stamp": {"sec": t // 10**9, "nanosec": t % 10**9}, "frame_id": frame}


def write_campaign_like(path: Path, n: int = 200, **writer_opts: Any) -> dict[str, Any]:
    """A ROS 2 MCAP shaped like the sample campaign, with known values."""
    from mcap_ros2.writer import Writer

    rng = np.random.default_rng(1)
    names = [f"joint_{i}" for i in range(6)]
    pos = rng.standard_normal((n, 6))
    force = rng.standard_normal((n, 3))
    frames = [bytes(rng.integers(0, 255, size=50 + i, dtype=np.uint8)) for i in range(10)]
    with open(path, "wb") as fh, Writer(fh, **writer_opts) as w:
        js = w.register_msgdef("sensor_msgs/msg/JointState", msgdef("sensor_msgs/msg/JointState"))
        imu = w.register_msgdef("sensor_msgs/msg/Imu", msgdef("sensor_msgs/msg/Imu"))
        ws = w.register_msgdef(
            "geometry_msgs/msg/WrenchStamped", msgdef("geometry_msgs/msg/WrenchStamped")
        )
        tf = w.register_msgdef("tf2_msgs/msg/TFMessage", msgdef("tf2_msgs/msg/TFMessage"))
        img = w.register_msgdef(
            "sensor_msgs/msg/CompressedImage", msgdef("sensor_msgs/msg/CompressedImage")
        )
        txt = w.register_msgdef("std_msgs/msg/String", msgdef("std_msgs/msg/String"))
        for i in range(n):
            t = T0 + i * 10_000_000
            w.write_message(
                "/joint_states",
                js,
                {
                    "header": header(t),
                    "name": names,
                    "position": pos[i].tolist(),
                    "velocity": [0.0] * 6,
                    "effort": [],
                },
                log_time=t,
            )
            w.write_message(
                "/imu",
                imu,
                {
                    "header": header(t, "imu_link"),
                    "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
                    "orientation_covariance": [0.0] * 9,
                    "angular_velocity": {"x": 0.1, "y": 0.2, "z": float(i)},
                    "angular_velocity_covariance": [0.0] * 9,
                    "linear_acceleration": {"x": 0.0, "y": 0.0, "z": 9.81},
                    "linear_acceleration_covariance": [0.0] * 9,
                },
                log_time=t,
            )
            w.write_message(
                "/ft_sensor",
                ws,
                {
                    "header": header(t - 500),
                    "wrench": {
                        "force": dict(zip("xyz", force[i].tolist(), strict=True)),
                        "torque": {"x": 0.0, "y": 0.0, "z": 0.5},
                    },
                },
                log_time=t,
            )
            if i % 20 == 0:
                w.write_message(
                    "/tf",
                    tf,
                    {
                        "transforms": [
                            {
                                "header": header(t, "world"),
                                "child_frame_id": "tool0",
                                "transform": {
                                    "translation": {"x": float(i), "y": 0.0, "z": 0.0},
                                    "rotation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
                                },
                            }
                        ]
                    },
                    log_time=t,
                )
            if i < len(frames):
                w.write_message(
                    "/wrist_camera/image_raw/compressed",
                    img,
                    {"header": header(t, "camera"), "format": "jpeg", "data": list(frames[i])},
                    log_time=t,
                )
        for t, payload in [
            (T0 + 5, {"kind": "grasp", "object": "cube"}),
            (T0 + 9, {"kind": "success"}),
        ]:
            w.write_message("/events", txt, {"data": json.dumps(payload)}, log_time=t)
        w.add_metadata("hardware", {"robot": "arm-a", "gripper_mass": "0.35"})
        w.add_metadata("scenario", {"task": "pick", "seed": "7"})
        w.add_metadata("run", {"operator": "kim", "model.checkpoint": "ckpt-12"})
        w.add_attachment(T0, T0, "calibration.yaml", "text/yaml", b"k: 1\n")
    return {"names": names, "pos": pos, "force": force, "frames": frames, "n": n}


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_round_trip_campaign_like(tmp_path: Path, compression: str) -> None:
    from mcap.writer import CompressionType

    path = tmp_path / "run_a.mcap"
    kind = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}[
        compression
    ]
    truth = write_campaign_like(path, compression=kind, chunk_size=8 * 1024)
    run = read(path)
    n = truth["n"]
    assert not run.skipped
    assert set(run.streams) == {
        "joint_states",
        "imu",
        "ft_sensor",
        "tf.tool0",
        "wrist_camera.image_raw.compressed",
    }
    js = run.streams["joint_states"]
    assert list(js["joint"].values) == truth["names"]
    assert np.array_equal(js["position"].values, truth["pos"])
    assert js["time"].values.tolist() == [T0 + i * 10_000_000 for i in range(n)]
    assert js["header_time"].values.tolist() == js["time"].values.tolist()
    ft = run.streams["ft_sensor"]
    assert np.array_equal(ft["force"].values, truth["force"])
    assert (ft["time"].values - ft["header_time"].values).tolist() == [500] * n
    imu = run.streams["imu"]
    assert imu["angular_velocity"].values[:, 2].tolist() == [float(i) for i in range(n)]
    assert imu.attrs["frame_id"] == "imu_link"
    tf = run.streams["tf.tool0"]
    assert tf.attrs["parent_frame"] == "world" and tf.sizes["time"] == n // 20
    cam = run.streams["wrist_camera.image_raw.compressed"]
    data = cam["data"].values
    for i, frame in enumerate(truth["frames"]):
        off, size = int(cam["frame_offset"][i]), int(cam["frame_size"][i])
        assert bytes(data[off : off + size]) == frame
    assert run.events["kind"].to_list() == ["grasp", "success"]
    assert run.factors == {
        "hardware": {"robot": "arm-a", "gripper_mass": 0.35},
        "scenario": {"task": "pick", "seed": 7},
        "model": {"checkpoint": "ckpt-12"},
    }
    assert run.extra["mcap_metadata"] == [{"name": "run", "metadata": {"operator": "kim"}}]
    att = run.extra["attachments"][0]
    assert (att["name"], att["media_type"], att["size"]) == ("calibration.yaml", "text/yaml", 5)
    assert run.extra["message_counts"] == dict(mcap_counts(path))
    assert "count_mismatch" not in run.extra


def write_raw(path: Path, msgs: list[tuple[str, str, int, bytes]], **writer_opts: Any) -> None:
    """Write CDR payloads with the plain mcap writer (full control over the layout)."""
    from mcap.writer import Writer

    with open(path, "wb") as fh:
        w = Writer(fh, **writer_opts)
        w.start(profile="ros2", library="test")
        channels: dict[str, int] = {}
        for topic, typename, t, data in msgs:
            if topic not in channels:
                sid = w.register_schema(typename, "ros2msg", msgdef(typename).encode())
                channels[topic] = w.register_channel(topic, "cdr", sid)
            w.add_message(channels[topic], log_time=t, publish_time=t, data=data)
        w.finish()


def vector_msgs(n: int, times: list[int] | None = None) -> list[tuple[str, str, int, bytes]]:
    out = []
    for i in range(n):
        v = T["geometry_msgs/msg/Vector3"](x=float(i), y=2.0, z=3.0)
        t = times[i] if times is not None else T0 + i
        out.append(
            (
                "/v",
                "geometry_msgs/msg/Vector3",
                t,
                bytes(ROS2.serialize_cdr(v, "geometry_msgs/msg/Vector3")),
            )
        )
    return out


@pytest.mark.parametrize(
    "opts",
    [
        {"use_chunking": False},
        {"index_types": "none"},
        {"use_statistics": False, "use_summary_offsets": False},
    ],
)
def test_unchunked_and_unindexed_files(tmp_path: Path, opts: dict[str, Any]) -> None:
    from mcap.writer import IndexType

    if opts.get("index_types") == "none":
        opts = {"index_types": IndexType.NONE}
    path = tmp_path / "v.mcap"
    write_raw(path, vector_msgs(300), chunk_size=1024, **opts)
    ds = read(path).streams["v"]
    assert ds["vector"].values[:, 0].tolist() == [float(i) for i in range(300)]


def test_out_of_order_log_times_are_sorted_stably(tmp_path: Path) -> None:
    path = tmp_path / "unsorted.mcap"
    times = [T0 + 30, T0 + 10, T0 + 20, T0 + 10]
    write_raw(path, vector_msgs(4, times), chunk_size=64)
    ds = read(path).streams["v"]
    assert ds["time"].values.tolist() == [T0 + 10, T0 + 10, T0 + 20, T0 + 30]
    assert ds["vector"].values[:, 0].tolist() == [1.0, 3.0, 2.0, 0.0]


def test_topics_option_selects(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write_campaign_like(path, n=30)
    run = read(path, topics=["/imu"])
    assert list(run.streams) == ["imu"] and run.events.height == 0


def test_ros1_and_json_encodings(tmp_path: Path) -> None:
    """MCAP channels in ROS 1 serialization and JSON (with a JSON events channel)."""
    from mcap.writer import Writer

    ros1 = get_typestore(Stores.ROS1_NOETIC)
    tt = ros1.types
    path = tmp_path / "mixed.mcap"
    with open(path, "wb") as fh:
        w = Writer(fh)
        w.start(profile="ros1", library="test")
        text = ros1.generate_msgdef("geometry_msgs/msg/PoseStamped", ros_version=1)[0]
        sid = w.register_schema("geometry_msgs/PoseStamped", "ros1msg", text.encode())
        pose = w.register_channel("/pose", "ros1", sid)
        js = w.register_schema("Reading", "jsonschema", b"{}")
        reading = w.register_channel("/reading", "json", js)
        events = w.register_channel("/events", "json", js)
        for i in range(5):
            t = T0 + i * 1000
            hdr = tt["std_msgs/msg/Header"](
                seq=i, stamp=tt["builtin_interfaces/msg/Time"](sec=1, nanosec=i), frame_id="map"
            )
            msg = tt["geometry_msgs/msg/PoseStamped"](
                header=hdr,
                pose=tt["geometry_msgs/msg/Pose"](
                    position=tt["geometry_msgs/msg/Point"](x=float(i), y=0.0, z=0.0),
                    orientation=tt["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                ),
            )
            data = bytes(ros1.serialize_ros1(msg, "geometry_msgs/msg/PoseStamped"))
            w.add_message(pose, log_time=t, publish_time=t, data=data)
            obj = {"value": i * 1.5, "nested": {"ok": i % 2 == 0, "name": "x"}, "v": [i, 1, 2]}
            w.add_message(reading, log_time=t, publish_time=t, data=json.dumps(obj).encode())
        w.add_message(events, log_time=T0 + 3, publish_time=T0,
                      data=b'{"kind": "estop", "by": "operator"}')  # fmt: skip
        w.finish()
    run = read(path)
    assert not run.skipped
    ps = run.streams["pose"]
    assert ps.attrs["encoding"] == "ros1"
    assert ps["position"].values[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ps["header_time"].values.tolist() == [10**9 + i for i in range(5)]
    rd = run.streams["reading"]
    assert rd["value"].values.tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert rd["nested.ok"].values.tolist() == [True, False, True, False, True]
    assert rd["v"].values[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert "nested.name" in rd.attrs["ignored"]
    assert run.events["kind"].to_list() == ["estop"]


# --------------------------------------------------------------------------- bad input


def test_empty_and_wrong_magic(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mcap"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match=r"empty\.mcap.*empty"):
        read(empty)
    wrong = tmp_path / "wrong.mcap"
    wrong.write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 100)
    with pytest.raises(ReaderError, match=r"wrong\.mcap.*not an MCAP file"):
        read(wrong)
    assert not McapReader().guess_can_open(wrong)


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.75])
def test_truncated_file_and_salvage(tmp_path: Path, cut: float) -> None:
    full = tmp_path / "full.mcap"
    write_raw(full, vector_msgs(2000), chunk_size=2048)
    raw = full.read_bytes()
    part = tmp_path / "part.mcap"
    part.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(ReaderError, match=r"part\.mcap.*truncated.*salvage=True"):
        read(part)
    run = read(part, salvage=True)
    got = run.streams["v"]["vector"].values[:, 0] if "v" in run.streams else np.empty(0)
    assert 0 < len(got) < 2000
    assert got.tolist() == [float(i) for i in range(len(got))]  # an exact prefix
    assert run.extra["salvaged"]["messages"] == len(got)
    assert run.extra["salvaged"]["reason"]


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_salvage_reads_into_a_cut_chunk(tmp_path: Path, compression: str) -> None:
    """One big chunk cut in the middle: the complete messages before the cut are kept."""
    from mcap.writer import CompressionType

    full = tmp_path / "one_chunk.mcap"
    kind = CompressionType.NONE if compression == "none" else CompressionType.LZ4
    write_raw(full, vector_msgs(3000), chunk_size=10_000_000, compression=kind)
    raw = full.read_bytes()
    part = tmp_path / "cut.mcap"
    part.write_bytes(raw[: len(raw) // 2])
    run = read(part, salvage=True)
    got = run.streams["v"]["vector"].values[:, 0]
    assert got.tolist() == [float(i) for i in range(len(got))]
    if compression == "none":
        assert 1000 < len(got) < 3000
        assert "read from the start of that chunk" in run.extra["salvaged"]["reason"]


def test_corrupt_chunk_crc(tmp_path: Path) -> None:
    from mcap.writer import CompressionType

    path = tmp_path / "crc.mcap"
    write_raw(path, vector_msgs(50), chunk_size=100_000, compression=CompressionType.NONE)
    raw = bytearray(path.read_bytes())
    # flip one byte of a message payload inside the (uncompressed) chunk
    pos = raw.index(
        bytes(
            ROS2.serialize_cdr(
                T["geometry_msgs/msg/Vector3"](x=7.0, y=2.0, z=3.0), "geometry_msgs/msg/Vector3"
            )
        )
    )
    raw[pos + 6] ^= 0xFF
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ReaderError, match=r"bad\.mcap.*chunk at offset \d+: CRC mismatch"):
        read(bad)


def test_unknown_schema(tmp_path: Path) -> None:
    from mcap.writer import Writer

    path = tmp_path / "schemas.mcap"
    with open(path, "wb") as fh:
        w = Writer(fh)
        w.start(profile="ros2", library="test")
        sid = w.register_schema("acme/msg/Gizmo", "ros2msg", b"this is not a msg definition ?!")
        fb = w.register_schema("acme.Thing", "flatbuffer", b"\x00")
        c1 = w.register_channel("/gizmo", "cdr", sid)
        c2 = w.register_channel("/thing", "flatbuffer", fb)
        c3 = w.register_channel("/dangling", "cdr", 42)  # schema id never defined
        for c in (c1, c2):
            w.add_message(c, log_time=T0, publish_time=T0, data=b"\x00\x01\x00\x00\x01")
        w.finish()
    del c3
    run = read(path)
    reasons = {s["topic"]: s["reason"] for s in run.skipped}
    assert "cannot decode type acme/msg/Gizmo" in reasons["/gizmo"]
    assert "'flatbuffer' is not supported" in reasons["/thing"]
    with open(path, "rb") as fh:
        raw = fh.read()
    # a message on the channel whose schema does not exist: the file is inconsistent
    path2 = tmp_path / "dangling.mcap"
    with open(path2, "wb") as fh:
        w = Writer(fh)
        w.start(profile="ros2", library="test")
        c = w.register_channel("/dangling", "cdr", 42)
        w.add_message(c, log_time=T0, publish_time=T0, data=b"\x00\x01\x00\x00")
        w.finish()
    assert raw.startswith(MAGIC)
    with pytest.raises(ReaderError, match=r"dangling\.mcap.*schema id 42"):
        read(path2)


# --------------------------------------------------------------------------- registry


def test_registered_and_guessed(tmp_path: Path) -> None:
    path = tmp_path / "x.mcap"
    write_raw(path, vector_msgs(3))
    assert registry.get_reader("mcap").name == "mcap"
    assert registry.guess_reader(path).name == "mcap"
    noext = tmp_path / "recording"
    noext.write_bytes(path.read_bytes())
    assert McapReader().guess_can_open(noext)


# --------------------------------------------------------------------------- sample campaign


def test_sample_campaign_decodes_fully(samples_dir: Path) -> None:
    """Every committed sample run decodes with nothing skipped; the planted cut file fails."""
    files = sorted(samples_dir.glob("campaign/*.mcap"))
    assert len(files) >= 100
    topics = {
        "joint_states",
        "joint_commands",
        "imu",
        "ft_sensor",
        "tf.tool0",
        "tf.object",
        "wrist_camera.image_raw.compressed",
    }
    for path in files:
        if "truncated" in path.name:
            with pytest.raises(ReaderError, match="truncated.*salvage=True"):
                read(path)
            run = read(path, salvage=True)
            assert run.extra["salvaged"]["messages"] > 0 and run.streams
            continue
        run = read(path)
        assert run.skipped == [], path.name
        assert set(run.streams) == topics, path.name
        assert set(run.factors) == {"hardware", "environment", "model", "scenario"}
        assert run.events.height >= 1 and run.events["kind"][-1] in {"success", "failure"}
        assert "count_mismatch" not in run.extra
