"""Message decoding: vectorized CDR / ROS 1 decoding and the typed stream mappings.

Every decoded value is compared with ``rosbags``' per-message deserializer (an
independent implementation), on synthetic messages and on the real bags/MCAPs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from workbench.io import cdr
from workbench.io.loglevels import LEVELS
from workbench.io.messages import (
    TopicBuffer,
    TypeRegistry,
    decode_buffers,
    decode_parts,
    decode_topic,
)

ROS2 = get_typestore(Stores.ROS2_HUMBLE)
ROS1 = get_typestore(Stores.ROS1_NOETIC)
T = ROS2.types


# --------------------------------------------------------------------------- helpers


def header(t_ns: int, frame: str = "base_link", store: Any = ROS2) -> Any:
    tt = store.types
    stamp = tt["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
    if store is ROS1:
        return tt["std_msgs/msg/Header"](seq=0, stamp=stamp, frame_id=frame)
    return tt["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)


def vec3(x: float, y: float, z: float, store: Any = ROS2) -> Any:
    return store.types["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)


def quat(x: float, y: float, z: float, w: float, store: Any = ROS2) -> Any:
    return store.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)


def serialize(msgs: list[Any], typename: str, encoding: str = "cdr") -> list[bytes]:
    if encoding == "cdr":
        return [bytes(ROS2.serialize_cdr(m, typename)) for m in msgs]
    return [bytes(ROS1.serialize_ros1(m, typename)) for m in msgs]


def buffer(
    topic: str,
    typename: str,
    raws: list[bytes],
    times: list[int] | None = None,
    encoding: str = "cdr",
) -> TopicBuffer:
    buf = TopicBuffer(topic, typename, encoding)
    for i, raw in enumerate(raws):
        buf.add(times[i] if times is not None else 1000 + i, raw)
    return buf


def columns(
    raws: list[bytes],
    typename: str,
    *,
    encoding: str = "cdr",
    store: Any = ROS2,
    vectorized: bool = True,
) -> cdr.Columns:
    data = np.frombuffer(b"".join(raws), dtype=np.uint8)
    lengths = np.array([len(r) for r in raws], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    plan = cdr.compile_plan(typename, store.fielddefs, empty_struct_byte=encoding == "cdr")
    return cdr.decode(data, starts, lengths, plan, encoding, vectorized=vectorized)


def flatten(obj: Any, fielddefs: Any, prefix: str = "") -> dict[str, Any]:
    """A rosbags message as ``{leaf path: value}`` with the decoder's path names."""
    out: dict[str, Any] = {}
    mt = getattr(obj, "__msgtype__", None)
    if mt is not None:
        fields = fielddefs[mt][1] or [("structure_needs_at_least_one_member", None)]
        for name, _ in fields:
            out.update(
                flatten(getattr(obj, name, 0), fielddefs, f"{prefix}.{name}" if prefix else name)
            )
        return out
    if (
        isinstance(obj, list)
        and obj
        and (hasattr(obj[0], "__msgtype__") or isinstance(obj[0], str))
    ):
        for i, v in enumerate(obj):
            out.update(flatten(v, fielddefs, f"{prefix}[{i}]"))
        return out
    out[prefix] = np.asarray(obj) if isinstance(obj, list | np.ndarray) else obj
    return out


def assert_matches(cols: cdr.Columns, objs: list[Any], fielddefs: Any) -> int:
    """Every leaf of every message equals the rosbags value; returns values compared."""
    checked = 0
    for j, i in enumerate(cols.rows.tolist()):
        for path, val in flatten(objs[i], fielddefs).items():
            if path in cols.numeric:
                got, exp = np.asarray(cols.numeric[path][j]), np.asarray(val)
            elif path in cols.ragged:
                got, exp = cols.ragged[path].row(j), np.asarray(val)
            elif path in cols.text:
                assert cols.text[path][j] == val, (path, i)
                checked += 1
                continue
            else:
                assert isinstance(val, np.ndarray) and val.size == 0, f"missing {path} row {i}"
                continue
            if got.dtype.itemsize == 1 and exp.dtype.itemsize == 1:  # byte: int8 vs uint8
                got, exp = got.view(np.uint8), exp.view(np.uint8)
            if got.dtype.kind == "f" and exp.dtype.kind != "f":
                exp = exp.astype(np.float64)
            assert np.array_equal(got, exp, equal_nan=got.dtype.kind == "f"), (path, i, got, exp)
            checked += 1
    return checked


def assert_same_columns(a: cdr.Columns, b: cdr.Columns) -> None:
    assert np.array_equal(a.rows, b.rows)
    assert set(a.numeric) == set(b.numeric)
    for k in a.numeric:
        assert np.array_equal(a.numeric[k], b.numeric[k], equal_nan=a.numeric[k].dtype.kind == "f")
    assert set(a.ragged) == set(b.ragged)
    for k in a.ragged:
        assert np.array_equal(a.ragged[k].values, b.ragged[k].values)
        assert np.array_equal(a.ragged[k].offsets, b.ragged[k].offsets)
    assert set(a.text) == set(b.text)
    for k in a.text:
        assert list(a.text[k]) == list(b.text[k])


def joint_states(n: int, names: list[str] | None = None, store: Any = ROS2) -> list[Any]:
    names = names or ["shoulder", "elbow", "wrist"]
    k = len(names)
    return [
        store.types["sensor_msgs/msg/JointState"](
            header=header(10**9 * 5 + i * 1_000_000, store=store),
            name=names,
            position=np.arange(k, dtype=np.float64) + i,
            velocity=np.full(k, 0.5 * i),
            effort=np.array([], dtype=np.float64),
        )
        for i in range(n)
    ]


# --------------------------------------------------------------------------- cdr decoder


@pytest.mark.parametrize("encoding", ["cdr", "ros1"])
def test_vectorized_equals_rosbags_and_per_message(encoding: str) -> None:
    store = ROS2 if encoding == "cdr" else ROS1
    msgs = joint_states(50, store=store)
    raws = serialize(msgs, "sensor_msgs/msg/JointState", encoding)
    vec = columns(raws, "sensor_msgs/msg/JointState", encoding=encoding, store=store)
    one = columns(
        raws, "sensor_msgs/msg/JointState", encoding=encoding, store=store, vectorized=False
    )
    assert vec.groups == 1 and one.groups == 50
    assert_same_columns(vec, one)
    assert assert_matches(vec, msgs, store.fielddefs) > 50 * 5
    assert vec.numeric["position"].shape == (50, 3)


def test_irregular_topic_splits_into_layouts() -> None:
    """TF messages from two broadcasters (different children and counts) decode exactly."""
    msgs = []
    for i in range(40):
        children = ["turtle1"] if i % 2 else ["turtle2", "carrot1"]
        transforms = [
            T["geometry_msgs/msg/TransformStamped"](
                header=header(i * 10**6, "world"),
                child_frame_id=c,
                transform=T["geometry_msgs/msg/Transform"](
                    translation=vec3(float(i), float(j), 0.0), rotation=quat(0.0, 0.0, 0.0, 1.0)
                ),
            )
            for j, c in enumerate(children)
        ]
        msgs.append(T["tf2_msgs/msg/TFMessage"](transforms=transforms))
    raws = serialize(msgs, "tf2_msgs/msg/TFMessage")
    vec = columns(raws, "tf2_msgs/msg/TFMessage")
    assert vec.groups == 2
    assert_same_columns(vec, columns(raws, "tf2_msgs/msg/TFMessage", vectorized=False))
    assert assert_matches(vec, msgs, ROS2.fielddefs) > 0
    second = vec.numeric["transforms[1].transform.translation.y"]
    assert np.isnan(second[1]) and second[0] == 1.0


def test_variable_length_sequences_become_ragged() -> None:
    msgs = [
        T["sensor_msgs/msg/BatteryState"](
            header=header(i),
            voltage=12.0 + i,
            temperature=30.0,
            current=-1.5,
            charge=1.0,
            capacity=2.0,
            design_capacity=2.0,
            percentage=0.5,
            power_supply_status=2,
            power_supply_health=1,
            power_supply_technology=2,
            present=True,
            cell_voltage=np.arange(i % 3 + 1, dtype=np.float32),
            cell_temperature=np.array([], dtype=np.float32),
            location="slot",
            serial_number="sn",
        )
        for i in range(30)
    ]
    raws = serialize(msgs, "sensor_msgs/msg/BatteryState")
    vec = columns(raws, "sensor_msgs/msg/BatteryState")
    assert "cell_voltage" in vec.ragged
    assert list(vec.ragged["cell_voltage"].lengths[:4]) == [1, 2, 3, 1]
    assert assert_matches(vec, msgs, ROS2.fielddefs) > 0
    assert_same_columns(vec, columns(raws, "sensor_msgs/msg/BatteryState", vectorized=False))


def test_images_with_varying_sizes_decode_in_one_layout() -> None:
    """Messages that differ only in their trailing byte array (images) stay vectorized."""
    msgs = [
        T["sensor_msgs/msg/CompressedImage"](
            header=header(i, "cam"), format="jpeg", data=np.full(100 + 7 * i, i, np.uint8)
        )
        for i in range(40)
    ]
    raws = serialize(msgs, "sensor_msgs/msg/CompressedImage")
    vec = columns(raws, "sensor_msgs/msg/CompressedImage")
    assert vec.groups == 1 and "data" in vec.ragged
    assert_same_columns(vec, columns(raws, "sensor_msgs/msg/CompressedImage", vectorized=False))
    assert assert_matches(vec, msgs, ROS2.fielddefs) == 40 * 5
    msgs[5].format = "png"  # a different prefix: falls back to the general grouping
    raws = serialize(msgs, "sensor_msgs/msg/CompressedImage")
    vec = columns(raws, "sensor_msgs/msg/CompressedImage")
    assert list(vec.text["format"][4:7]) == ["jpeg", "png", "jpeg"]
    assert assert_matches(vec, msgs, ROS2.fielddefs) == 40 * 5


def test_bad_payloads_are_reported_not_hidden() -> None:
    raws = serialize(joint_states(10), "sensor_msgs/msg/JointState")
    raws[3] = raws[3][:20]  # cut short
    raws[7] = raws[7] + b"\x00" * 16  # longer than the definition
    cols = columns(raws, "sensor_msgs/msg/JointState")
    assert [i for i, _ in cols.bad] == [3, 7]
    assert "too short" in cols.bad[0][1] and "after the last field" in cols.bad[1][1]
    assert cols.n == 8 and cols.numeric["position"][3, 0] == 4.0  # row 3 is message 4


def test_unsupported_and_unknown_types() -> None:
    with pytest.raises(cdr.UnsupportedTypeError, match="no definition"):
        cdr.compile_plan("acme_msgs/msg/Nope", ROS2.fielddefs)
    defs = {"a/msg/W": ([], [("w", (1, ("wstring", 0)))])}
    with pytest.raises(cdr.UnsupportedTypeError, match="wstring"):
        cdr.compile_plan("a/msg/W", defs)


# --------------------------------------------------------------------------- typed streams


def test_joint_state_stream() -> None:
    raws = serialize(joint_states(20), "sensor_msgs/msg/JointState")
    res = decode_topic(
        buffer("/joint_states", "sensor_msgs/msg/JointState", raws), TypeRegistry("ros2")
    )
    ds = res.streams["joint_states"]
    assert list(ds["joint"].values) == ["shoulder", "elbow", "wrist"]
    assert set(ds.data_vars) == {"position", "velocity"}  # effort empty everywhere: omitted
    assert ds["position"].dims == ("time", "joint")
    assert ds["position"].values[4].tolist() == [4.0, 5.0, 6.0]
    assert ds["time"].values.tolist() == list(range(1000, 1020))
    assert ds["header_time"].values[2] == 5 * 10**9 + 2_000_000
    assert ds.attrs["source"] == "/joint_states" and ds.attrs["encoding"] == "cdr"
    assert ds["position"].attrs["units"] and ds.attrs["frame_id"] == "base_link"


def test_joint_state_names_changing_gives_union_with_nan() -> None:
    msgs = joint_states(3, ["a", "b"]) + joint_states(2, ["b", "c", "d"])
    raws = serialize(msgs, "sensor_msgs/msg/JointState")
    res = decode_topic(buffer("/js", "sensor_msgs/msg/JointState", raws), TypeRegistry("ros2"))
    ds = res.streams["js"]
    assert list(ds["joint"].values) == ["a", "b", "c", "d"]
    pos = ds["position"].values
    assert pos[0].tolist()[:2] == [0.0, 1.0] and np.isnan(pos[0, 2:]).all()
    assert np.isnan(pos[3, 0]) and pos[3, 1:].tolist() == [0.0, 1.0, 2.0]


def test_imu_wrench_odometry_and_vectors() -> None:
    imus = [
        T["sensor_msgs/msg/Imu"](
            header=header(i),
            orientation=quat(0.1, 0.2, 0.3, 0.9),
            orientation_covariance=np.zeros(9),
            angular_velocity=vec3(1.0, 2.0, float(i)),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=vec3(0.0, 0.0, 9.81),
            linear_acceleration_covariance=np.zeros(9),
        )
        for i in range(5)
    ]
    wr = [
        T["geometry_msgs/msg/WrenchStamped"](
            header=header(i),
            wrench=T["geometry_msgs/msg/Wrench"](
                force=vec3(1.0, 2.0, 3.0 + i), torque=vec3(0.1, 0.2, 0.3)
            ),
        )
        for i in range(5)
    ]
    bufs = [
        buffer("/imu", "sensor_msgs/msg/Imu", serialize(imus, "sensor_msgs/msg/Imu")),
        buffer(
            "/ft",
            "geometry_msgs/msg/WrenchStamped",
            serialize(wr, "geometry_msgs/msg/WrenchStamped"),
        ),
    ]
    reg = TypeRegistry("ros2")
    streams, events, skipped, counts = decode_buffers(bufs, lambda _e: reg)
    imu, ft = streams["imu"], streams["ft"]
    assert imu["orientation"].dims == ("time", "quat")
    assert list(imu["quat"].values) == ["x", "y", "z", "w"]
    assert imu["orientation"].values[0].tolist() == [0.1, 0.2, 0.3, 0.9]
    assert imu["angular_velocity"].values[:, 2].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert imu["linear_acceleration"].attrs["units"] == "m/s^2"
    assert ft["force"].values[4].tolist() == [1.0, 2.0, 7.0]
    assert ft["torque"].attrs["units"] == "N*m"
    assert counts == {"/ft": 5, "/imu": 5} and not skipped and events.height == 0


def test_tf_one_stream_per_child_frame() -> None:
    msgs = []
    for i in range(6):
        child = "base_link" if i % 2 == 0 else "tool0"
        msgs.append(
            T["tf2_msgs/msg/TFMessage"](
                transforms=[
                    T["geometry_msgs/msg/TransformStamped"](
                        header=header(i, "world" if child == "base_link" else "base_link"),
                        child_frame_id=child,
                        transform=T["geometry_msgs/msg/Transform"](
                            translation=vec3(float(i), 0.0, 0.0), rotation=quat(0.0, 0.0, 0.0, 1.0)
                        ),
                    )
                ]
            )
        )
    res = decode_topic(
        buffer("/tf", "tf2_msgs/msg/TFMessage", serialize(msgs, "tf2_msgs/msg/TFMessage")),
        TypeRegistry("ros2"),
    )
    assert set(res.streams) == {"tf.base_link", "tf.tool0"}
    tool = res.streams["tf.tool0"]
    assert tool.attrs["parent_frame"] == "base_link" and tool.attrs["child_frame"] == "tool0"
    assert tool["translation"].values[:, 0].tolist() == [1.0, 3.0, 5.0]
    assert tool["time"].values.tolist() == [1001, 1003, 1005]


def test_compressed_and_raw_images() -> None:
    frames = [bytes([i]) * (10 + i) for i in range(4)]
    comp = [
        T["sensor_msgs/msg/CompressedImage"](
            header=header(i), format="jpeg", data=np.frombuffer(f, np.uint8)
        )
        for i, f in enumerate(frames)
    ]
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    raw = [
        T["sensor_msgs/msg/Image"](
            header=header(i),
            height=2,
            width=3,
            encoding="rgb8",
            is_bigendian=0,
            step=9,
            data=(img + i).reshape(-1),
        )
        for i in range(3)
    ]
    depth = np.array([[1, 2], [300, 65535]], dtype="<u2")
    mono = [
        T["sensor_msgs/msg/Image"](
            header=header(0),
            height=2,
            width=2,
            encoding="mono16",
            is_bigendian=0,
            step=4,
            data=depth.view(np.uint8).reshape(-1),
        )
    ]
    odd = [
        T["sensor_msgs/msg/Image"](
            header=header(0),
            height=1,
            width=1,
            encoding="bayer_rggb8",
            is_bigendian=0,
            step=1,
            data=np.zeros(1, np.uint8),
        )
    ]
    reg = TypeRegistry("ros2")
    bufs = [
        buffer(
            "/cam/compressed",
            "sensor_msgs/msg/CompressedImage",
            serialize(comp, "sensor_msgs/msg/CompressedImage"),
        ),
        buffer("/cam/raw", "sensor_msgs/msg/Image", serialize(raw, "sensor_msgs/msg/Image")),
        buffer("/depth", "sensor_msgs/msg/Image", serialize(mono, "sensor_msgs/msg/Image")),
        buffer("/bayer", "sensor_msgs/msg/Image", serialize(odd, "sensor_msgs/msg/Image")),
    ]
    streams, _ev, skipped, _c = decode_buffers(bufs, lambda _e: reg)
    enc = streams["cam.compressed"]
    assert enc.attrs["kind"] == "image_encoded" and enc.attrs["format"] == "jpeg"
    for i, f in enumerate(frames):
        off, size = int(enc["frame_offset"][i]), int(enc["frame_size"][i])
        assert bytes(enc["data"].values[off : off + size]) == f
    rgb = streams["cam.raw"]["image"]
    assert rgb.dims == ("time", "y", "x", "channel") and rgb.dtype == np.uint8
    assert np.array_equal(rgb.values[2], img + 2)
    assert np.array_equal(streams["depth"]["image"].values[0], depth)
    assert [s["topic"] for s in skipped] == ["/bayer"] and "bayer_rggb8" in skipped[0]["reason"]


def test_events_and_text_topics() -> None:
    texts = [
        json.dumps({"kind": "grasp", "object": "cube"}),
        "not json",
        json.dumps({"kind": "success"}),
    ]
    msgs = [T["std_msgs/msg/String"](data=t) for t in texts]
    raws = serialize(msgs, "std_msgs/msg/String")
    reg = TypeRegistry("ros2")
    bufs = [
        buffer("/events", "std_msgs/msg/String", raws, [30, 10, 20]),
        buffer("/chatter", "std_msgs/msg/String", raws),
        buffer("/custom_events", "std_msgs/msg/String", raws[:1]),
    ]
    streams, events, skipped, _c = decode_buffers(bufs, lambda _e: reg)
    assert events["kind"].to_list() == ["success", "grasp"]  # sorted by time
    assert json.loads(events["detail"][1]) == {"object": "cube"}
    reasons = {s["topic"]: s for s in skipped}
    assert reasons["/events"]["count"] == 1 and "JSON" in reasons["/events"]["reason"]
    # free text outside the events topics is a text stream, not skipped
    assert "/chatter" not in reasons
    assert streams["chatter"]["text"].values.tolist() == texts and streams["chatter"].attrs["kind"] == "text"
    _s, events, _sk, _c = decode_buffers(bufs[2:], lambda _e: reg, events_topics=["/custom_events"])
    assert events["kind"].to_list() == ["grasp"]


def rosout_messages(store: Any, levels: list[int]) -> list[Any]:
    """ROS 1 ``rosgraph_msgs/Log`` or ROS 2 ``rcl_interfaces/msg/Log`` messages."""
    tt = store.types
    out = []
    for i, lvl in enumerate(levels):
        fields = {
            "level": lvl,
            "name": f"/node_{i % 2}",
            "msg": f"step {i}: größe {'x' * i}",  # distinct lengths, non-ASCII text
            "file": "src/planner.cpp",
            "function": "plan",
            "line": 100 + i,
        }
        if store is ROS1:
            hdr = header(10**9 + i, "", ROS1)
            out.append(tt["rosgraph_msgs/msg/Log"](header=hdr, topics=["/cmd"], **fields))
        else:
            stamp = tt["builtin_interfaces/msg/Time"](sec=1, nanosec=i)
            out.append(tt["rcl_interfaces/msg/Log"](stamp=stamp, **fields))
    return out


@pytest.mark.parametrize(
    ("store", "typename", "encoding", "raw_levels"),
    [  # the type name as each log spells it (ROS 1 bags: pkg/Name)
        (ROS1, "rosgraph_msgs/Log", "ros1", [1, 2, 4, 8, 16, 3]),
        (ROS2, "rcl_interfaces/msg/Log", "cdr", [10, 20, 30, 40, 50, 0]),
    ],
)
def test_rosout_messages_become_log_events(
    store: Any, typename: str, encoding: str, raw_levels: list[int]
) -> None:
    msgs = rosout_messages(store, raw_levels)
    full = "rosgraph_msgs/msg/Log" if store is ROS1 else typename
    raws = serialize(msgs, full, encoding)
    reg = TypeRegistry("ros1" if encoding == "ros1" else "ros2")
    times = [500 + 10 * i for i in range(len(raws))]
    buf = buffer("/rosout", typename, raws, times, encoding)
    res = decode_topic(buf, reg)
    # the numeric stream stays as before
    assert res.streams["rosout"]["level"].values.tolist() == raw_levels
    assert res.streams["rosout"].attrs["text"] == "also in the run's events (kind 'log')"
    # and its text beside: message, node, level name as the events give them
    details = [json.loads(d) for d in res.events["detail"].to_list()]
    assert res.streams["rosout"]["text"].values.tolist() == [d["message"] for d in details]
    assert res.streams["rosout"]["level_name"].values.tolist() == [d["level"] or "" for d in details]
    assert res.skipped == [] and res.messages == len(raws)
    ev = res.events
    assert ev is not None and ev["time"].to_list() == times
    assert set(ev["kind"].to_list()) == {"log"}
    details = [json.loads(d) for d in ev["detail"]]
    # the last raw level is not defined by the scheme: no level, the raw value kept
    assert [d["level"] for d in details] == [*LEVELS, None]
    assert [d["severity"] for d in details] == raw_levels
    assert details[3] == {
        "level": "ERROR",
        "severity": raw_levels[3],
        "message": msgs[3].msg,
        "name": "/node_1",
        "source": "/rosout",
        "file": "src/planner.cpp",
        "function": "plan",
        "line": 103,
    }
    assert [d["message"] for d in details] == [m.msg for m in msgs]
    # the per-message reference decoder gives the same events
    slow = decode_topic(buffer("/rosout", typename, raws, times, encoding), reg, vectorized=False)
    assert slow.events is not None and slow.events.equals(ev)


def test_rosout_topics_and_other_log_topics() -> None:
    msgs = rosout_messages(ROS2, [20, 30, 40])
    raws = serialize(msgs, "rcl_interfaces/msg/Log")
    reg = TypeRegistry("ros2")
    grasp = serialize([T["std_msgs/msg/String"](data='{"kind": "grasp"}')], "std_msgs/msg/String")
    bufs = [
        buffer("/rosout_agg", "rcl_interfaces/msg/Log", raws, [1, 2, 3]),
        buffer("/robot1/rosout", "rcl_interfaces/msg/Log", raws[:1], [4]),
        buffer("/diagnostics_log", "rcl_interfaces/msg/Log", raws, [5, 6, 7]),  # not rosout
        buffer("/events", "std_msgs/msg/String", grasp, [2]),
    ]
    streams, events, skipped, _c = decode_buffers(bufs, lambda _e: reg)
    assert skipped == []
    assert {"rosout_agg", "robot1.rosout", "diagnostics_log"} <= set(streams)
    assert "text" not in streams["diagnostics_log"].attrs
    # log events of both rosout topics merged with the /events events, sorted by time
    # (stable: at equal times in topic order)
    assert events["time"].to_list() == [1, 2, 2, 3, 4]
    assert events["kind"].to_list() == ["log", "grasp", "log", "log", "log"]
    sources = [json.loads(d).get("source") for d in events["detail"]]
    assert sources == ["/rosout_agg", None, "/rosout_agg", "/rosout_agg", "/robot1/rosout"]


def test_rosout_events_in_parts_equal_one_piece() -> None:
    msgs = rosout_messages(ROS1, [2, 4, 8, 1, 16, 2, 2])
    raws = serialize(msgs, "rosgraph_msgs/msg/Log", "ros1")
    reg = TypeRegistry("ros1")
    times = [100 * (i + 1) for i in range(len(raws))]
    one = buffer("/rosout", "rosgraph_msgs/Log", raws, times, "ros1")
    whole = decode_buffers([one], lambda _e: reg)[1]
    got: dict[str, Any] = {}

    def done(events: Any, skipped: list[dict[str, Any]], counts: dict[str, int]) -> None:
        got.update(events=events, skipped=skipped, counts=counts)

    batches = [
        [buffer("/rosout", "rosgraph_msgs/Log", raws[a:b], times[a:b], "ros1")]
        for a, b in ((0, 3), (3, 4), (4, 7))
    ]
    parts = list(decode_parts(batches, lambda _e: reg, done=done))
    assert [name for name, _ds in parts] == ["rosout"] * 3
    assert sum(ds.sizes["time"] for _n, ds in parts) == len(raws)
    assert got["events"].equals(whole) and whole.height == len(raws)
    assert got["counts"] == {"/rosout": len(raws)} and got["skipped"] == []
    levels = [json.loads(d)["level"] for d in got["events"]["detail"]]
    assert levels == ["INFO", "WARN", "ERROR", "DEBUG", "FATAL", "INFO", "INFO"]


def test_generic_flattening_and_unknown_types() -> None:
    nav = [
        T["sensor_msgs/msg/NavSatFix"](
            header=header(i),
            status=T["sensor_msgs/msg/NavSatStatus"](status=1, service=2),
            latitude=45.0 + i,
            longitude=7.0,
            altitude=100.0,
            position_covariance=np.arange(9.0),
            position_covariance_type=2,
        )
        for i in range(3)
    ]
    reg = TypeRegistry("ros2")
    bufs = [
        buffer("/gps", "sensor_msgs/msg/NavSatFix", serialize(nav, "sensor_msgs/msg/NavSatFix")),
        buffer("/mystery", "acme_msgs/msg/Thing", [b"\x00\x01\x00\x00abcd"]),
    ]
    streams, _e, skipped, _c = decode_buffers(bufs, lambda _e: reg)
    gps = streams["gps"]
    assert gps["latitude"].values.tolist() == [45.0, 46.0, 47.0]
    assert gps["latitude"].attrs["units"] == "deg" and gps["status"].values.tolist() == [1, 1, 1]
    assert gps["position_covariance"].dims == ("time", "position_covariance.index")
    assert skipped == [{"topic": "/mystery", "reason": skipped[0]["reason"], "count": 1}]
    assert "no definition" in skipped[0]["reason"]


def test_wrong_definition_in_log_falls_back_to_builtin() -> None:
    msgs = [T["geometry_msgs/msg/Vector3"](x=1.0, y=2.0, z=float(i)) for i in range(3)]
    reg = TypeRegistry("ros2")
    reg.add_msg("geometry_msgs/msg/Vector3", "float64 x")  # wrong: too short
    res = decode_topic(
        buffer("/v", "geometry_msgs/msg/Vector3", serialize(msgs, "geometry_msgs/msg/Vector3")), reg
    )
    assert res.streams["v"]["vector"].values[:, 2].tolist() == [0.0, 1.0, 2.0]
    assert "does not match" in res.streams["v"].attrs["notes"]


def test_topic_buffer_sorts_by_log_time_stably() -> None:
    buf = TopicBuffer("/x", "t", "cdr")
    for t, p in [(5, b"a"), (1, b"bb"), (5, b"ccc"), (3, b"d")]:
        buf.add(t, p)
    times, data, starts, lengths = buf.finish()
    assert times.tolist() == [1, 3, 5, 5]
    got = [bytes(data[s : s + n]) for s, n in zip(starts, lengths, strict=True)]
    assert got == [b"bb", b"d", b"a", b"ccc"]


# --------------------------------------------------------------------------- real logs


def _real_ros_messages(real: Path) -> list[tuple[str, str, str, list[bytes], Any]]:
    """(name, type, encoding, raw payloads, rosbags typestore) for every real ROS topic."""
    from mcap.reader import make_reader
    from rosbags.rosbag1 import Reader as Reader1
    from rosbags.rosbag2 import Reader as Reader2
    from rosbags.typesys import get_types_from_msg

    out = []
    for p in sorted(real.glob("**/*.mcap")):
        with open(p, "rb") as fh:
            by: dict[str, Any] = {}
            for sc, ch, m in make_reader(fh).iter_messages():
                if ch.message_encoding == "cdr" and "/srv/" not in sc.name:
                    by.setdefault(ch.topic, (sc, []))[1].append(m.data)
        for topic, (sc, raws) in by.items():
            reg = TypeRegistry("ros2")
            reg.add_msg(sc.name, sc.data.decode())
            store = get_typestore(Stores.EMPTY)
            store.register(reg.defs)
            out.append((f"{p.name}:{topic}", sc.name, "cdr", raws, store))
    for p in sorted(real.glob("**/*.bag")):
        with Reader1(p) as bag:
            by = {}
            for conn, _t, raw in bag.messages():
                by.setdefault((conn.topic, conn.msgtype), (conn, []))[1].append(bytes(raw))
        for (topic, mtype), (conn, raws) in by.items():
            store = get_typestore(Stores.EMPTY)
            store.register(get_types_from_msg(conn.msgdef.data, mtype))
            out.append((f"{p.name}:{topic}", mtype, "ros1", raws, store))
    for p in sorted(real.glob("**/*.db3")):
        with Reader2(p) as bag:
            by = {}
            for conn, _t, raw in bag.messages():
                by.setdefault((conn.topic, conn.msgtype), (conn, []))[1].append(bytes(raw))
        for (topic, mtype), (conn, raws) in by.items():
            store = ROS2
            if conn.msgdef.data:  # definitions stored in the file, unless they are wrong
                own = get_typestore(Stores.EMPTY)
                own.register(get_types_from_msg(conn.msgdef.data, mtype))
                try:
                    own.deserialize_cdr(raws[0], mtype)
                    store = own
                except Exception:  # noqa: BLE001 - talker.db3 stores a wrong definition
                    store = ROS2
            out.append((f"{p.name}:{topic}", mtype, "cdr", raws, store))
    return out


def test_real_logs_decode_like_rosbags(real_data: Path) -> None:
    """Every message of every real ROS topic decodes exactly as rosbags decodes it."""
    cases = _real_ros_messages(real_data)
    assert len(cases) >= 30
    compared = 0
    for name, mtype, enc, raws, store in cases:
        cols = columns(raws, mtype, encoding=enc, store=store)
        assert not cols.bad, (name, cols.bad[:1])
        if enc == "cdr":
            objs = [store.deserialize_cdr(r, mtype) for r in raws]
        else:
            objs = [store.deserialize_ros1(r, mtype) for r in raws]
        compared += assert_matches(cols, objs, store.fielddefs)
        if len(raws) <= 400:  # the per-message walker is the slow reference
            assert_same_columns(
                cols, columns(raws, mtype, encoding=enc, store=store, vectorized=False)
            )
    assert compared > 50_000
