"""Writing a simulated run as an MCAP file (ROS 2 CDR) or a ROS 1 bag.

MCAP: high-rate topics are encoded in bulk by :mod:`workbench.samples.cdr`; the
messages of all topics are then merged in log-time order and handed to the
``mcap`` writer one by one (zstd-compressed chunks, full indexes, statistics).
The four factor groups and the generator's parameters go into metadata records.

ROS 1 bags have no metadata records; their factors go into a YAML sidecar
``<bag>.meta.yaml`` written by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workbench.samples import cdr
from workbench.samples.simulation import JOINT_NAMES, SimulatedRun

__all__ = ["FRAMES", "IMU_COVARIANCES", "TOPICS", "write_mcap", "write_rosbag1"]

TOPICS: dict[str, str] = {
    "/joint_states": "sensor_msgs/msg/JointState",
    "/joint_commands": "sensor_msgs/msg/JointState",
    "/imu": "sensor_msgs/msg/Imu",
    "/ft_sensor": "geometry_msgs/msg/WrenchStamped",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/wrist_camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
    "/events": "std_msgs/msg/String",
}
"""Every topic of a sample run and its ROS 2 message type."""

FRAMES: dict[str, str] = {
    "/joint_states": "",
    "/joint_commands": "",
    "/imu": "imu_link",
    "/ft_sensor": "ft_sensor_link",
    "/wrist_camera/image_raw/compressed": "wrist_camera_optical_frame",
}
"""Header frame ids per topic."""

TF_FRAMES: tuple[tuple[str, str], ...] = (("base_link", "tool0"), ("world", "object"))
"""The transforms of every ``/tf`` message (parent, child)."""

IMU_COVARIANCES: tuple[list[float], list[float], list[float]] = (
    [4e-8, 0, 0, 0, 4e-8, 0, 0, 0, 4e-8],
    [9e-6, 0, 0, 0, 9e-6, 0, 0, 0, 9e-6],
    [9e-4, 0, 0, 0, 9e-4, 0, 0, 0, 9e-4],
)
"""Orientation, angular velocity and linear acceleration covariances of the IMU."""


def encode_topics(run: SimulatedRun) -> dict[str, list[bytes]]:
    """CDR bytes of every message of *run*, by topic (in sample order)."""
    tp = run.topics
    js, jc, imu, ft, tf = (
        tp[k] for k in ("/joint_states", "/joint_commands", "/imu", "/ft_sensor", "/tf")
    )
    cam = tp["/wrist_camera/image_raw/compressed"]
    return {
        "/joint_states": cdr.encode_joint_state(
            js.header_ns,
            JOINT_NAMES,
            js.values["position"],
            js.values["velocity"],
            js.values["effort"],
        ),
        "/joint_commands": cdr.encode_joint_state(
            jc.header_ns, JOINT_NAMES, jc.values["position"]
        ),
        "/imu": cdr.encode_imu(
            imu.header_ns,
            imu.values["orientation"],
            imu.values["angular_velocity"],
            imu.values["linear_acceleration"],
            frame_id=FRAMES["/imu"],
            covariances=IMU_COVARIANCES,
        ),
        "/ft_sensor": cdr.encode_wrench(
            ft.header_ns,
            ft.values["force"],
            ft.values["torque"],
            frame_id=FRAMES["/ft_sensor"],
        ),
        "/tf": cdr.encode_tf(
            tf.header_ns,
            TF_FRAMES,
            [tf.values["tool_translation"], tf.values["object_translation"]],
            [tf.values["tool_rotation"], tf.values["object_rotation"]],
        ),
        "/wrist_camera/image_raw/compressed": cdr.encode_compressed_image(
            cam.header_ns,
            cam.values["frames"],
            frame_id=FRAMES["/wrist_camera/image_raw/compressed"],
        ),
        "/events": cdr.encode_string([payload for _, payload in run.events]),
    }


def _merged(
    run: SimulatedRun, encoded: dict[str, list[bytes]]
) -> tuple[list[int], list[int], list[int], list[bytes]]:
    """All messages in log-time order: channel index, log time, sequence, data."""
    chans, logs, seqs, datas = [], [], [], []
    for i, topic in enumerate(TOPICS):
        if topic == "/events":
            log = np.array([t for t, _ in run.events], dtype=np.int64)
            seq = np.arange(len(log))
        else:
            log, seq = run.topics[topic].log_ns, run.topics[topic].seq
        chans.append(np.full(len(log), i, dtype=np.int64))
        logs.append(log)
        seqs.append(np.asarray(seq, dtype=np.int64))
        datas.extend(encoded[topic])
    chan, log, seq = np.concatenate(chans), np.concatenate(logs), np.concatenate(seqs)
    order = np.lexsort((seq, chan, log))
    return (
        chan[order].tolist(),
        log[order].tolist(),
        seq[order].tolist(),
        [datas[i] for i in order],
    )


def write_mcap(
    path: Path,
    run: SimulatedRun,
    metadata: dict[str, dict[str, str]],
    *,
    library: str,
    chunk_size: int = 4 * 1024 * 1024,
) -> dict[str, int]:
    """Write *run* to the MCAP file *path*; returns the message count per topic.

    The file is written beside *path* and renamed into place when complete.
    """
    from mcap.writer import CompressionType, Writer

    encoded = encode_topics(run)
    chan, log, seq, data = _merged(run, encoded)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            writer = Writer(fh, chunk_size=chunk_size, compression=CompressionType.ZSTD)
            writer.start(profile="ros2", library=library)
            schema_ids: dict[str, int] = {}
            channel_ids: list[int] = []
            for topic, msgtype in TOPICS.items():
                if msgtype not in schema_ids:
                    schema_ids[msgtype] = writer.register_schema(
                        name=msgtype,
                        encoding="ros2msg",
                        data=cdr.message_definition(msgtype).encode(),
                    )
                channel_ids.append(
                    writer.register_channel(
                        topic=topic,
                        message_encoding="cdr",
                        schema_id=schema_ids[msgtype],
                        metadata={},
                    )
                )
            for name, values in metadata.items():
                writer.add_metadata(name, values)
            add = writer.add_message
            for c, t, s, d in zip(chan, log, seq, data, strict=True):
                add(channel_ids[c], t, d, t, s)
            writer.finish()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {topic: len(msgs) for topic, msgs in encoded.items()}


def _ros1_typestore() -> Any:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    if "tf2_msgs/msg/TFMessage" not in store.types:
        store.register(
            get_types_from_msg(
                "geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"
            )
        )
    return store


def write_rosbag1(path: Path, run: SimulatedRun) -> dict[str, int]:
    """Write *run* as a ROS 1 bag (lz4 chunks) with ROS 1 serialization.

    A few bags are written, so this uses ``rosbags`` message objects one by one.
    """
    from rosbags.rosbag1 import Writer

    ts = _ros1_typestore()
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    Vec, Quat = T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Quaternion"]

    def header(seq: int, ns: int, frame: str) -> Any:
        return Header(
            seq=seq, stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame
        )

    def vec(v: Any) -> Any:
        return Vec(x=float(v[0]), y=float(v[1]), z=float(v[2]))

    def quat(v: Any) -> Any:
        return Quat(x=float(v[0]), y=float(v[1]), z=float(v[2]), w=float(v[3]))

    tp = run.topics
    empty = np.zeros(0)
    builders: dict[str, Callable[[int], Any]] = {}
    js, jc, imu, ft, tf = (
        tp[k] for k in ("/joint_states", "/joint_commands", "/imu", "/ft_sensor", "/tf")
    )
    cam = tp["/wrist_camera/image_raw/compressed"]
    names = list(JOINT_NAMES)
    builders["/joint_states"] = lambda i: T["sensor_msgs/msg/JointState"](
        header=header(int(js.seq[i]), int(js.header_ns[i]), ""),
        name=names,
        position=js.values["position"][i],
        velocity=js.values["velocity"][i],
        effort=js.values["effort"][i],
    )
    builders["/joint_commands"] = lambda i: T["sensor_msgs/msg/JointState"](
        header=header(int(jc.seq[i]), int(jc.header_ns[i]), ""),
        name=names,
        position=jc.values["position"][i],
        velocity=empty,
        effort=empty,
    )
    cov = [np.asarray(c, dtype=np.float64) for c in IMU_COVARIANCES]
    builders["/imu"] = lambda i: T["sensor_msgs/msg/Imu"](
        header=header(int(imu.seq[i]), int(imu.header_ns[i]), FRAMES["/imu"]),
        orientation=quat(imu.values["orientation"][i]),
        orientation_covariance=cov[0],
        angular_velocity=vec(imu.values["angular_velocity"][i]),
        angular_velocity_covariance=cov[1],
        linear_acceleration=vec(imu.values["linear_acceleration"][i]),
        linear_acceleration_covariance=cov[2],
    )
    builders["/ft_sensor"] = lambda i: T["geometry_msgs/msg/WrenchStamped"](
        header=header(int(ft.seq[i]), int(ft.header_ns[i]), FRAMES["/ft_sensor"]),
        wrench=T["geometry_msgs/msg/Wrench"](
            force=vec(ft.values["force"][i]), torque=vec(ft.values["torque"][i])
        ),
    )

    def tf_msg(i: int) -> Any:
        stamp = int(tf.header_ns[i])
        transforms = []
        for (parent, child), key in zip(TF_FRAMES, ("tool", "object"), strict=True):
            transforms.append(
                T["geometry_msgs/msg/TransformStamped"](
                    header=header(0, stamp, parent),
                    child_frame_id=child,
                    transform=T["geometry_msgs/msg/Transform"](
                        translation=vec(tf.values[f"{key}_translation"][i]),
                        rotation=quat(tf.values[f"{key}_rotation"][i]),
                    ),
                )
            )
        return T["tf2_msgs/msg/TFMessage"](transforms=transforms)

    builders["/tf"] = tf_msg
    cam_topic = "/wrist_camera/image_raw/compressed"
    builders[cam_topic] = lambda i: T["sensor_msgs/msg/CompressedImage"](
        header=header(int(cam.seq[i]), int(cam.header_ns[i]), FRAMES[cam_topic]),
        format="jpeg",
        data=np.frombuffer(cam.values["frames"][i], dtype=np.uint8),
    )
    builders["/events"] = lambda i: T["std_msgs/msg/String"](data=run.events[i][1])

    rows: list[tuple[int, int, str, int]] = []
    for c, topic in enumerate(TOPICS):
        logs = (
            [t for t, _ in run.events]
            if topic == "/events"
            else tp[topic].log_ns.tolist()
        )
        rows.extend((t, c, topic, i) for i, t in enumerate(logs))
    rows.sort()
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    counts = dict.fromkeys(TOPICS, 0)
    try:
        writer = Writer(tmp)
        writer.set_compression(Writer.CompressionFormat.LZ4)
        writer.open()
        try:
            conns = {
                topic: writer.add_connection(topic, msgtype, typestore=ts)
                for topic, msgtype in TOPICS.items()
            }
            for t, _, topic, i in rows:
                msgtype = TOPICS[topic]
                writer.write(
                    conns[topic], t, ts.serialize_ros1(builders[topic](i), msgtype)
                )
                counts[topic] += 1
        finally:
            writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return counts
