"""ROS 1 / ROS 2 bag readers: real bags, write-then-read round trips, bad input."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from workbench.io import registry
from workbench.io.loglevels import LEVELS
from workbench.io.rosbag import Rosbag1Reader, Rosbag2Reader
from workbench.model import ReaderError

ROS1 = get_typestore(Stores.ROS1_NOETIC)
ROS2 = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_600_000_000_000_000_000


def read1(path: Path, **options: Any) -> Any:
    runs = list(Rosbag1Reader().read(path, **options))
    assert len(runs) == 1
    return runs[0]


def read2(path: Path, **options: Any) -> Any:
    runs = list(Rosbag2Reader().read(path, **options))
    assert len(runs) == 1
    return runs[0]


def accounted(run: Any) -> Counter[str]:
    """Messages per topic that went into streams (TF: per message), events or skipped.

    ``log`` events are not counted: a ``/rosout`` message is both a stream sample and a
    ``log`` event (the tests of ``/rosout`` check those events on their own).
    """
    out: Counter[str] = Counter()
    tf_topics = set()
    for ds in run.streams.values():
        if "child_frame" in ds.attrs and ds.attrs["message_type"].endswith("fMessage"):
            tf_topics.add(ds.attrs["source"])
        else:
            out[ds.attrs["source"]] += ds.sizes["time"]
    for topic in tf_topics:
        out[topic] += run.extra["message_counts"][topic]
    for s in run.skipped:
        out[s["topic"]] += s["count"]
    others = run.events.filter(run.events["kind"] != "log").height
    if others:
        out["/events"] += others
    return out


def stored_values(path: Path, topic: str, store: Any, field: str) -> list[Any]:
    """``field`` of every message of *topic*, deserialized by rosbags (the reference)."""
    if path.suffix == ".bag":
        from rosbags.rosbag1 import Reader

        with Reader(path) as bag:
            conns = [c for c in bag.connections if c.topic == topic]
            typs: dict[str, Any] = {}
            for c in conns:
                typs.update(get_types_from_msg(c.msgdef.data, c.msgtype))
            own = get_typestore(Stores.EMPTY)
            own.register(typs)
            msgs = [
                (t, own.deserialize_ros1(raw, c.msgtype))
                for c, t, raw in bag.messages(connections=conns)
            ]
    else:
        from rosbags.rosbag2 import Reader

        with Reader(path) as bag:
            conns = [c for c in bag.connections if c.topic == topic]
            msgs = [
                (t, store.deserialize_cdr(raw, c.msgtype))
                for c, t, raw in bag.messages(connections=conns)
            ]
    msgs.sort(key=lambda x: x[0])
    out = []
    for _t, m in msgs:
        for part in field.split("."):
            m = getattr(m, part)
        out.append(m)
    return out


# --------------------------------------------------------------------------- real ROS 1


def test_real_ros1_bags_counts(real_data: Path) -> None:
    from rosbags.rosbag1 import Reader

    bags = sorted(real_data.glob("ros1_bag/*/*.bag"))
    assert len(bags) == 5
    for path in bags:
        assert Rosbag1Reader().guess_can_open(path)
        run = read1(path)
        with Reader(path) as bag:
            expected = Counter(c.topic for c, _t, _r in bag.messages())
        assert run.extra["message_counts"] == dict(expected), path.name
        assert accounted(run) == expected, path.name
        assert run.name == path.stem


def test_real_ros1_values_and_custom_types(real_data: Path) -> None:
    tilt = real_data / "ros1_bag" / "plotjuggler" / "tilt_laser.bag"
    run = read1(tilt)
    assert not run.skipped
    temp = run.streams["temperature"]  # xsens_mtig/Thermistor: defined only in the bag
    assert temp.sizes["time"] == 712 and temp.attrs["message_type"] == "xsens_mtig/msg/Thermistor"
    assert run.streams["info_gps"].sizes["time"] == 356
    imu = run.streams["imu_data"]
    ref = stored_values(tilt, "/imu_data", None, "orientation")
    assert imu["orientation"].values.tolist() == [[q.x, q.y, q.z, q.w] for q in ref]
    ref_stamp = stored_values(tilt, "/imu_data", None, "header.stamp")
    assert imu["header_time"].values.tolist() == [s.sec * 10**9 + s.nanosec for s in ref_stamp]
    scan = run.streams["scan"]
    ranges = stored_values(tilt, "/scan", None, "ranges")
    assert np.array_equal(scan["ranges"].values, np.stack(ranges))
    gps = run.streams["position_gps"]
    assert gps["latitude"].values.tolist() == stored_values(tilt, "/position_gps", None, "latitude")
    assert {"tf.tilt_axis", "tf.laser", "tf.camera"} <= set(run.streams)

    example = real_data / "ros1_bag" / "plotjuggler" / "example.bag"
    lz4 = real_data / "ros1_bag" / "rosbag_js" / "example-lz4.bag"
    a, b = read1(example), read1(lz4)
    assert set(a.streams) == set(b.streams)
    for name in a.streams:
        assert a.streams[name].equals(b.streams[name]), name
    pose = a.streams["turtle1.pose"]
    assert pose["x"].values.tolist() == stored_values(example, "/turtle1/pose", None, "x")
    assert a.streams["tf.turtle1"].sizes["time"] == 1344
    assert a.streams["tf_static.carrot"].attrs["parent_frame"] == "turtle1"
    assert a.streams["tf.turtle1"].attrs["parent_frame"] == "world"


def rosout_reference(path: Path, store: Any, topic: str = "/rosout") -> list[tuple[int, Any]]:
    """``(log time, message)`` of every *topic* message, read and decoded by rosbags."""
    if path.suffix == ".bag":
        from rosbags.rosbag1 import Reader as Reader1

        with Reader1(path) as bag:
            conns = [c for c in bag.connections if c.topic == topic]
            msgs = [
                (t, store.deserialize_ros1(raw, c.msgtype))
                for c, t, raw in bag.messages(connections=conns)
            ]
    else:
        from rosbags.rosbag2 import Reader as Reader2

        with Reader2(path) as bag:  # the storage file itself (metadata.yaml QoS quirk)
            conns = [c for c in bag.connections if c.topic == topic]
            msgs = [
                (t, store.deserialize_cdr(raw, c.msgtype))
                for c, t, raw in bag.messages(connections=conns)
            ]
    return sorted(msgs, key=lambda x: x[0])


def assert_log_events(run: Any, ref: list[tuple[int, Any]], log_type: Any) -> None:
    """The run's ``log`` events are the reference messages, levels named by ROS' constants."""
    logs = run.events.filter(run.events["kind"] == "log")
    assert logs.height == len(ref) > 0
    assert logs["time"].to_list() == [t for t, _m in ref]
    details = [json.loads(d) for d in logs["detail"]]
    level_name = {getattr(log_type, name): name for name in LEVELS}  # Log.DEBUG == 1 / 10 …
    assert [d["level"] for d in details] == [level_name[m.level] for _t, m in ref]
    assert all(d["level"] in LEVELS for d in details)
    assert [d["severity"] for d in details] == [m.level for _t, m in ref]
    assert [d["message"] for d in details] == [m.msg for _t, m in ref]
    assert [d["name"] for d in details] == [m.name for _t, m in ref]
    assert [(d["file"], d["function"], d["line"]) for d in details] == [
        (m.file, m.function, m.line) for _t, m in ref
    ]
    assert {d["source"] for d in details} == {"/rosout"}


def test_real_ros1_rosout_log_events(real_data: Path) -> None:
    example = real_data / "ros1_bag" / "plotjuggler" / "example.bag"
    ref = rosout_reference(example, ROS1)
    assert len(ref) == 10  # SOURCES.md: /rosout rosgraph_msgs/Log x10
    log_type = ROS1.types["rosgraph_msgs/msg/Log"]
    for path in (example, real_data / "ros1_bag" / "rosbag_js" / "example-lz4.bag"):
        run = read1(path)
        assert_log_events(run, ref, log_type)
        assert run.streams["rosout"]["level"].values.tolist() == [m.level for _t, m in ref]
        # the streaming read (what the store does) gives the same events
        streamed = next(Rosbag1Reader().read(path, parts=True)).materialize()
        assert streamed.events.equals(run.events), path.name
    # bags without /rosout have no log events
    assert read1(real_data / "ros1_bag" / "plotjuggler" / "tilt_laser.bag").events.height == 0


def test_real_ros2_rosout_log_events(real_data: Path) -> None:
    log_type = ROS2.types["rcl_interfaces/msg/Log"]
    for storage, suffix in (("sqlite3", ".db3"), ("mcap", ".mcap")):
        folder = real_data / "ros2_bag" / storage / "rosbag2_talker"
        ref = rosout_reference(folder / f"talker{suffix}", ROS2)
        assert len(ref) == 10
        run = read2(folder)
        assert_log_events(run, ref, log_type)
        assert json.loads(run.events["detail"][0])["message"] == "Publishing: 'Hello, world! 0'"
        streamed = next(Rosbag2Reader().read(folder, parts=True)).materialize()
        assert streamed.events.equals(run.events), storage
    # /rosout declared but empty: no events
    for name in ("empty_bag", "plotjuggler_rosbag2_test"):
        assert read2(real_data / "ros2_bag" / "sqlite3" / name).events.height == 0


def test_real_ros1_edge_cases(real_data: Path) -> None:
    run = read1(real_data / "ros1_bag" / "rosbag_js" / "no-messages.bag")
    assert run.streams == {} and run.skipped == [] and run.events.height == 0
    run = read1(
        real_data / "ros1_bag" / "rosbag_js" / "example-unsorted-chunks.bag", events_topics=["foo"]
    )
    assert run.skipped[0]["topic"] == "foo" and run.skipped[0]["count"] == 3


# --------------------------------------------------------------------------- real ROS 2


def test_real_ros2_bags_counts(real_data: Path) -> None:
    from rosbags.rosbag2 import Reader

    folders = sorted(p for p in real_data.glob("ros2_bag/*/*") if p.is_dir())
    assert len(folders) == 7
    for folder in folders:
        assert Rosbag2Reader().guess_can_open(folder), folder
        run = read2(folder)
        expected: Counter[str] = Counter()
        for f in sorted(folder.iterdir()):
            if f.suffix in {".db3", ".mcap"}:
                with Reader(f) as bag:  # the storage file itself, never metadata.yaml
                    expected.update(c.topic for c, _t, _r in bag.messages())
        got = {t: k for t, k in run.extra["message_counts"].items() if k}
        assert got == dict(expected), folder.name
        assert accounted(run) == expected, folder.name
        assert run.name == folder.name


def test_real_ros2_quirks(real_data: Path) -> None:
    # QoS text in metadata.yaml disagrees with the storage file: still 20 messages
    for storage in ("mcap", "sqlite3"):
        run = read2(real_data / "ros2_bag" / storage / "rosbag2_talker")
        assert run.extra["message_counts"]["/rosout"] == 10
        assert run.streams["rosout"]["level"].values.tolist() == [20] * 10
    # split files without metadata.yaml: one run
    split = real_data / "ros2_bag" / "mcap" / "multiple_files_no_metadata"
    run = read2(split)
    assert run.extra["message_counts"] == {"/chatter": 3177}
    assert [f.name for f in Rosbag2Reader().source_files(split)] == [
        "multiple_files_0.mcap",
        "multiple_files_1.mcap",
        "multiple_files_2.mcap",
    ]
    # .db3 without message definitions, and a file path that includes the folder name
    pj = real_data / "ros2_bag" / "sqlite3" / "plotjuggler_rosbag2_test"
    run = read2(pj)
    assert not run.skipped
    for name in ("imu", "battery", "pose"):
        assert run.streams[name].sizes["time"] == 1565
    db3 = pj / "rosbag2_test_0.db3"
    ref = stored_values(db3, "/imu", ROS2, "linear_acceleration")
    assert run.streams["imu"]["linear_acceleration"].values.tolist() == [
        [v.x, v.y, v.z] for v in ref
    ]
    volts = stored_values(db3, "/battery", ROS2, "voltage")
    assert run.streams["battery"]["voltage"].values.tolist() == volts
    assert run.streams["battery"]["voltage"].attrs["units"] == "V"
    pos = stored_values(db3, "/pose", ROS2, "pose.position")
    assert run.streams["pose"]["position"].values[:, 0].tolist() == [p.x for p in pos]
    # zero messages: a run without streams
    run = read2(real_data / "ros2_bag" / "sqlite3" / "empty_bag")
    assert run.streams == {} and run.extra["empty_topics"] == ["/parameter_events", "/rosout"]


# --------------------------------------------------------------------------- round trips


CUSTOM_MSG = "float64 reading\nint32 count\nstring label\nfloat32[3] triple\n"


def _ros1_joint(store: Any, i: int, t: int) -> Any:
    tt = store.types
    return tt["sensor_msgs/msg/JointState"](
        header=tt["std_msgs/msg/Header"](
            seq=i,
            stamp=tt["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9),
            frame_id="base",
        ),
        name=["j1", "j2"],
        position=np.array([i, -i], dtype=np.float64),
        velocity=np.array([], dtype=np.float64),
        effort=np.array([], dtype=np.float64),
    )


@pytest.mark.parametrize("compression", [None, "lz4", "bz2"])
def test_ros1_round_trip(tmp_path: Path, compression: str | None) -> None:
    from rosbags.rosbag1 import Writer

    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(get_types_from_msg(CUSTOM_MSG, "acme_msgs/msg/Gauge"))
    path = tmp_path / "run.bag"
    times = [T0 + k * 1_000_000 for k in (3, 1, 2, 0, 4)]  # written out of time order
    writer = Writer(path)
    if compression:
        writer.set_compression(getattr(Writer.CompressionFormat, compression.upper()))
    with writer as w:
        js = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        gauge = w.add_connection("/gauge", "acme_msgs/msg/Gauge", typestore=store)
        ev = w.add_connection("/events", "std_msgs/msg/String", typestore=store)
        for i, t in enumerate(times):
            w.write(js, t, store.serialize_ros1(_ros1_joint(store, i, t), js.msgtype))
            g = store.types["acme_msgs/msg/Gauge"](
                reading=0.5 * i, count=i, label="x", triple=np.array([i, 1, 2], dtype=np.float32)
            )
            w.write(gauge, t, store.serialize_ros1(g, gauge.msgtype))
        w.write(
            ev,
            T0,
            store.serialize_ros1(
                store.types["std_msgs/msg/String"](data=json.dumps({"kind": "drop"})), ev.msgtype
            ),
        )
    run = read1(path)
    assert not run.skipped
    js_ds = run.streams["joint_states"]
    order = np.argsort(times)
    assert js_ds["time"].values.tolist() == sorted(times)
    assert js_ds["position"].values[:, 0].tolist() == [float(i) for i in order]
    assert js_ds["header_time"].values.tolist() == sorted(times)
    g = run.streams["gauge"]
    assert g["reading"].values.tolist() == [0.5 * i for i in order]
    assert g["count"].dtype == np.int32 and g["triple"].shape == (5, 3)
    assert run.events["kind"].to_list() == ["drop"]


@pytest.mark.parametrize("storage", ["SQLITE3", "MCAP"])
def test_ros2_round_trip(tmp_path: Path, storage: str) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    tt = ROS2.types
    path = tmp_path / "bag"
    n = 120
    with Writer(path, version=8, storage_plugin=getattr(StoragePlugin, storage)) as w:
        w.set_custom_data("hardware.robot", "arm-b")
        js = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ROS2)
        odom = w.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=ROS2)
        for i in range(n):
            t = T0 + i * 2_000_000
            stamp = tt["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
            hdr = tt["std_msgs/msg/Header"](stamp=stamp, frame_id="odom")
            msg = tt["sensor_msgs/msg/JointState"](
                header=hdr,
                name=["a", "b", "c"],
                position=np.array([i, 2.0 * i, -1.0]),
                velocity=np.zeros(3),
                effort=np.ones(3),
            )
            w.write(js, t, ROS2.serialize_cdr(msg, js.msgtype))
            vec = tt["geometry_msgs/msg/Vector3"]
            od = tt["nav_msgs/msg/Odometry"](
                header=hdr,
                child_frame_id="base_link",
                pose=tt["geometry_msgs/msg/PoseWithCovariance"](
                    pose=tt["geometry_msgs/msg/Pose"](
                        position=tt["geometry_msgs/msg/Point"](x=float(i), y=1.0, z=0.0),
                        orientation=tt["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                    ),
                    covariance=np.zeros(36),
                ),
                twist=tt["geometry_msgs/msg/TwistWithCovariance"](
                    twist=tt["geometry_msgs/msg/Twist"](
                        linear=vec(x=0.5, y=0.0, z=0.0), angular=vec(x=0.0, y=0.0, z=0.1 * i)
                    ),
                    covariance=np.zeros(36),
                ),
            )
            w.write(odom, t, ROS2.serialize_cdr(od, odom.msgtype))
    assert Rosbag2Reader().guess_can_open(path)
    run = read2(path)
    assert not run.skipped and "metadata_mismatch" not in run.extra
    assert run.factors == {"hardware": {"robot": "arm-b"}}
    ds = run.streams["joint_states"]
    assert ds["position"].values[:, 1].tolist() == [2.0 * i for i in range(n)]
    assert ds["effort"].values.tolist() == [[1.0, 1.0, 1.0]] * n
    od_ds = run.streams["odom"]
    assert od_ds["position"].values[:, 0].tolist() == [float(i) for i in range(n)]
    assert od_ds["angular"].values[:, 2].tolist() == [0.1 * i for i in range(n)]
    assert od_ds.attrs["child_frame"] == "base_link" and od_ds.attrs["parent_frame"] == "odom"
    files = Rosbag2Reader().source_files(path)
    assert files[0].name == "metadata.yaml" and len(files) == 2
    # a lone storage file reads the same
    storage_file = files[1]
    if storage_file.suffix == ".db3":
        assert read2(storage_file).streams["odom"].equals(od_ds)


# --------------------------------------------------------------------------- bad input


def test_ros1_bad_input(tmp_path: Path, real_data: Path) -> None:
    empty = tmp_path / "empty.bag"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match=r"empty\.bag.*empty"):
        read1(empty)
    wrong = tmp_path / "wrong.bag"
    wrong.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    with pytest.raises(ReaderError, match=r"wrong\.bag.*not a ROS 1 bag"):
        read1(wrong)
    assert not Rosbag1Reader().guess_can_open(wrong)
    src = (real_data / "ros1_bag" / "plotjuggler" / "example.bag").read_bytes()
    noindex = tmp_path / "noindex.bag"
    # a bag whose recorder died: header says "not indexed" (index_pos 0), index missing
    raw = bytearray(src)
    pos = raw.index(b"index_pos=") + len(b"index_pos=")
    raw[pos : pos + 8] = b"\x00" * 8
    noindex.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(ReaderError, match=r"noindex\.bag.*no index.*reindex"):
        read1(noindex)
    cut = tmp_path / "cut.bag"
    cut.write_bytes(src[:5000])
    with pytest.raises(ReaderError, match=r"cut\.bag"):
        read1(cut)


def test_ros2_bad_input_and_guessing(tmp_path: Path, real_data: Path) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(real_data / "ros2_bag" / "sqlite3" / "cdr_test", bag)
    (bag / "cdr_test_0.db3").unlink()
    with pytest.raises(ReaderError, match=r"bag.*no storage files"):
        read2(bag)
    (bag / "cdr_test_0.db3").write_bytes(b"not a database at all" * 10)
    with pytest.raises(ReaderError, match=r"cdr_test_0\.db3.*not an SQLite database"):
        read2(bag)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    with pytest.raises(ReaderError, match=r"metadata\.yaml.*not valid YAML"):
        read2(bag)
    # a folder of independent recordings is not a split bag
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    src = real_data / "ros2_bag" / "mcap" / "rosbag2_talker" / "talker.mcap"
    for name in ("run_000.mcap", "run_001.mcap", "arm-a_seed3.mcap"):
        shutil.copy(src, campaign / name)
    assert not Rosbag2Reader().guess_can_open(campaign)
    assert registry.guess_reader(src).name == "mcap"
    split = real_data / "ros2_bag" / "mcap" / "multiple_files_no_metadata"
    assert registry.guess_reader(split).name == "rosbag2"
    assert (
        registry.guess_reader(real_data / "ros1_bag" / "plotjuggler" / "example.bag").name
        == "rosbag1"
    )


def test_ros2_truncated_mcap_storage_salvage(tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = tmp_path / "crashed"
    tt = ROS2.types
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/v", "geometry_msgs/msg/Vector3", typestore=ROS2)
        for i in range(5000):
            v = tt["geometry_msgs/msg/Vector3"](x=float(i), y=0.0, z=0.0)
            w.write(conn, T0 + i, ROS2.serialize_cdr(v, conn.msgtype))
    storage = next(path.glob("*.mcap"))
    raw = storage.read_bytes()
    storage.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(ReaderError, match=r"\.mcap.*truncated.*salvage=True"):
        read2(path)
    run = read2(path, salvage=True)
    got = run.streams["v"]["vector"].values[:, 0]
    assert 0 < len(got) < 5000 and got.tolist() == [float(i) for i in range(len(got))]
    assert run.extra["salvaged"]["messages"] == len(got)
    assert run.extra["metadata_mismatch"]["topics"]["/v"] == {"declared": 5000, "read": len(got)}


# --------------------------------------------------------------------------- compressed ROS 2 bags


def write_ros2_bag(path: Path, storage: str, mode: str | None, n: int = 300) -> None:
    """A JointState + Vector3 + events bag, optionally zstd-compressed (file or message)."""
    from rosbags.rosbag2 import (
        CompressionFormat,
        CompressionMode,
        StoragePlugin,
        Writer,
    )

    tt = ROS2.types
    w = Writer(path, version=8, storage_plugin=getattr(StoragePlugin, storage))
    if mode is not None:
        w.set_compression(getattr(CompressionMode, mode), CompressionFormat.ZSTD)
    with w:
        js = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ROS2)
        vec = w.add_connection("/v", "geometry_msgs/msg/Vector3", typestore=ROS2)
        ev = w.add_connection("/events", "std_msgs/msg/String", typestore=ROS2)
        for i in range(n):
            t = T0 + i * 5_000_000
            stamp = tt["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
            msg = tt["sensor_msgs/msg/JointState"](
                header=tt["std_msgs/msg/Header"](stamp=stamp, frame_id="base"),
                name=["a", "b"],
                position=np.array([float(i), -0.5 * i]),
                velocity=np.array([1.0, 2.0]),
                effort=np.zeros(2),
            )
            w.write(js, t, ROS2.serialize_cdr(msg, js.msgtype))
            v = tt["geometry_msgs/msg/Vector3"](x=np.sin(i), y=float(i), z=0.0)
            w.write(vec, t + 1, ROS2.serialize_cdr(v, vec.msgtype))
            if i in (10, 200):
                kind = "grasp" if i == 10 else "success"
                s = tt["std_msgs/msg/String"](data=json.dumps({"kind": kind}))
                w.write(ev, t + 2, ROS2.serialize_cdr(s, ev.msgtype))


@pytest.mark.parametrize("storage", ["SQLITE3", "MCAP"])
@pytest.mark.parametrize("mode", ["FILE", "MESSAGE"])
def test_ros2_compressed_bag_equals_uncompressed(tmp_path: Path, storage: str, mode: str) -> None:
    import workbench as wb

    plain, packed = tmp_path / "plain", tmp_path / "packed"
    write_ros2_bag(plain, storage, None)
    write_ros2_bag(packed, storage, mode)
    suffix = ".db3" if storage == "SQLITE3" else ".mcap"
    stored_as = f"packed{suffix}" + (".zstd" if mode == "FILE" else "")
    assert sorted(f.name for f in packed.iterdir()) == sorted(["metadata.yaml", stored_as])
    assert Rosbag2Reader().guess_can_open(packed)
    direct = read2(packed)
    assert direct.extra["rosbag2"]["compression"] == {"format": "zstd", "mode": mode.lower()}
    assert not direct.skipped and "metadata_mismatch" not in direct.extra
    store = wb.open_store(tmp_path / "store")
    report = store.ingest([plain, packed])
    assert not report.failed and len(report.ingested) == 2
    a, b = (store.load(r) for r in report.ingested)
    assert sorted(a.streams) == sorted(b.streams) == ["joint_states", "v"]
    for name in a.streams:
        xa, xb = a.streams[name].load(), b.streams[name].load()
        assert xa.sizes["time"] == 300
        assert xa.identical(xb.assign_attrs(xa.attrs)), name
    assert b.events["kind"].to_list() == ["grasp", "success"]
    # the compressed files themselves are the run's sources
    assert stored_as in {Path(s.path).name for s in b.info.provenance.sources}


def test_ros2_compressed_bad_input(tmp_path: Path) -> None:
    import yaml

    bag = tmp_path / "bag"
    write_ros2_bag(bag, "SQLITE3", "FILE", n=2000)
    storage = next(bag.glob("*.zstd"))
    raw = storage.read_bytes()
    storage.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReaderError, match=r"bag\.db3\.zstd.*truncated"):
        read2(bag)
    storage.write_bytes(b"not zstd at all" * 20)
    with pytest.raises(ReaderError, match=r"bag\.db3\.zstd.*cannot decompress"):
        read2(bag)
    import zstandard

    # valid zstd around a file that is not a database: the error names the bag's file
    storage.write_bytes(zstandard.ZstdCompressor().compress(b"not a database" * 50))
    with pytest.raises(ReaderError, match=r"'[^']*/bag/bag\.db3\.zstd'.*not an SQLite database"):
        read2(bag)
    # a format other than zstd is refused, naming the bag and the valid choice
    meta_path = bag / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["rosbag2_bagfile_information"]["compression_format"] = "lz4"
    meta_path.write_text(yaml.safe_dump(meta))
    with pytest.raises(ReaderError, match=r"bag.*'lz4'.*supported: zstd"):
        read2(bag)
    # metadata says message compression but the payloads are plain
    plain = tmp_path / "plainbag"
    write_ros2_bag(plain, "SQLITE3", None, n=5)
    meta_path = plain / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["rosbag2_bagfile_information"].update(compression_format="zstd", compression_mode="MESSAGE")
    meta_path.write_text(yaml.safe_dump(meta))
    with pytest.raises(ReaderError, match=r"plainbag\.db3.*cannot be decompressed"):
        read2(plain)


# --------------------------------------------------------------------------- streaming bags


def write_ros1_bag(path: Path, n: int = 3000) -> None:
    """JointState + Vector3 + events, many small lz4 chunks."""
    from rosbags.rosbag1 import Writer

    tt = ROS1.types
    writer = Writer(path)
    writer.set_compression(Writer.CompressionFormat.LZ4)
    writer.chunk_threshold = 16 * 1024
    with writer as w:
        js = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ROS1)
        vec = w.add_connection("/v", "geometry_msgs/msg/Vector3", typestore=ROS1)
        ev = w.add_connection("/events", "std_msgs/msg/String", typestore=ROS1)
        for i in range(n):
            t = T0 + i * 5_000_000
            w.write(js, t, ROS1.serialize_ros1(_ros1_joint(ROS1, i, t), js.msgtype))
            v = tt["geometry_msgs/msg/Vector3"](x=np.sin(i), y=float(i), z=0.0)
            w.write(vec, t + 1, ROS1.serialize_ros1(v, vec.msgtype))
            if i in (10, n - 5):
                kind = "grasp" if i == 10 else "success"
                s = tt["std_msgs/msg/String"](data=json.dumps({"kind": kind}))
                w.write(ev, t + 2, ROS1.serialize_ros1(s, ev.msgtype))


def rechunk(path: Path, chunk_size: int) -> None:
    """Rewrite an MCAP file with small chunks (rosbags writes 1 MiB ones)."""
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    with open(path, "rb") as fh:
        reader = make_reader(fh)
        summary = reader.get_summary()
        assert summary is not None
        msgs = [(m.channel_id, m.log_time, m.publish_time, m.data) for _s, _c, m in reader.iter_messages()]
        meta = [(r.name, dict(r.metadata)) for r in reader.iter_metadata()]
    out = path.with_suffix(".tmp")
    with open(out, "wb") as fh:
        w = Writer(fh, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        w.start(profile="ros2", library="rechunk")
        for sc in summary.schemas.values():
            w.register_schema(name=sc.name, encoding=sc.encoding, data=sc.data)
        ids = {}
        for ch in summary.channels.values():
            ids[ch.id] = w.register_channel(topic=ch.topic, message_encoding=ch.message_encoding,
                                            schema_id=ch.schema_id, metadata=dict(ch.metadata))
        for cid, t, pt, data in msgs:
            w.add_message(ids[cid], log_time=t, data=data, publish_time=pt)
        for name, m in meta:
            w.add_metadata(name, m)
        w.finish()
    out.replace(path)


@pytest.mark.parametrize("kind", ["ros1", "SQLITE3", "MCAP", "SQLITE3-message", "MCAP-message"])
def test_bags_stream_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    import workbench as wb
    from workbench.io import rosbag

    if kind == "ros1":
        path, reader = tmp_path / "run.bag", Rosbag1Reader()
        write_ros1_bag(path)
    else:
        storage, _, mode = kind.partition("-")
        path, reader = tmp_path / "bag", Rosbag2Reader()
        write_ros2_bag(path, storage, mode.upper() or None, n=3000)
        if storage == "MCAP":
            rechunk(next(path.glob("*.mcap")), 8 * 1024)
    whole = next(reader.read(path))
    monkeypatch.setattr(rosbag, "PART_BYTES", 40_000)
    run = next(reader.read(path, parts=True))
    parts = list(run.parts)
    per_stream: dict[str, list[Any]] = {}
    for name, ds in parts:
        per_stream.setdefault(name, []).append(ds)
    assert sorted(per_stream) == ["joint_states", "v"]
    assert len(per_stream["joint_states"]) >= 5  # really read a piece at a time
    for dss in per_stream.values():  # the parts follow each other in time
        ends = [(int(d["time"].values[0]), int(d["time"].values[-1])) for d in dss]
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ends))
    run.parts = iter(parts)
    streamed = run.materialize()
    assert streamed.extra == whole.extra and streamed.skipped == whole.skipped
    assert streamed.events.equals(whole.events) and streamed.events.height == 2
    for name, ds in whole.streams.items():
        assert streamed.streams[name].identical(ds), name
    # the store asks for parts: same values on disk
    store = wb.open_store(tmp_path / "store")
    report = store.ingest(path)
    assert not report.failed
    loaded = store.load(report.ingested[0])
    for name, ds in whole.streams.items():
        got = loaded.streams[name].load()
        for var in ds.data_vars:
            np.testing.assert_array_equal(got[var].values, ds[var].values)
        np.testing.assert_array_equal(got["time"].values.astype("int64"), ds["time"].values)


def test_streamed_bag_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.io import rosbag

    path = tmp_path / "run.bag"
    write_ros1_bag(path, n=2000)
    raw = bytearray(path.read_bytes())
    # damage a chunk in the middle (the index at the end stays readable)
    pos = raw.index(b"compression=lz4", len(raw) // 2)
    end = pos + 400
    raw[pos + 100 : end] = b"\x00" * (end - pos - 100)
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(rosbag, "PART_BYTES", 40_000)
    run = next(Rosbag1Reader().read(path, parts=True))
    with pytest.raises(ReaderError, match=r"run\.bag"):
        list(run.parts)
