"""Vectorized ROS 2 CDR encoding of the sample topics.

Every message of a high-rate topic has the same byte layout (fixed frame ids, joint
names and array lengths), so a topic is encoded by building one *template* message
with :class:`Layout`, copying it into an ``(n, size)`` ``uint8`` array and writing the
stamps and values of all ``n`` messages into their columns at once. Only the final
split into one ``bytes`` object per message is a Python loop.

The result is byte-identical to ``rosbags`` (``Stores.ROS2_HUMBLE``) serialization;
``tests/test_samples.py`` checks it for every message type.

Examples
--------
>>> import numpy as np
>>> msgs = encode_wrench([1_000_000_001], np.zeros((1, 3)), np.zeros((1, 3)), frame_id="ft")
>>> len(msgs), msgs[0][:4]
(1, b'\\x00\\x01\\x00\\x00')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CDR_HEADER",
    "MESSAGE_TYPES",
    "Layout",
    "encode_compressed_image",
    "encode_imu",
    "encode_joint_state",
    "encode_string",
    "encode_tf",
    "encode_wrench",
    "message_definition",
]

CDR_HEADER = b"\x00\x01\x00\x00"
"""Encapsulation header of little-endian plain CDR (what ROS 2 writes)."""

MESSAGE_TYPES: tuple[str, ...] = (
    "sensor_msgs/msg/JointState",
    "sensor_msgs/msg/Imu",
    "geometry_msgs/msg/WrenchStamped",
    "tf2_msgs/msg/TFMessage",
    "sensor_msgs/msg/CompressedImage",
    "std_msgs/msg/String",
)
"""The ROS 2 message types the sample campaign uses."""


@cache
def message_definition(msgtype: str) -> str:
    """The concatenated ``ros2msg`` definition of *msgtype*, as rosbag2 stores it.

    The main definition comes first, then each dependency after a line of 80 ``=``
    and a ``MSG: pkg/Type`` line.

    >>> message_definition("std_msgs/msg/String")
    'string data\\n'
    """
    from rosbags.typesys import Stores, get_typestore

    text, _ = get_typestore(Stores.ROS2_HUMBLE).generate_msgdef(msgtype, ros_version=2)
    return text


class Layout:
    """Builds a CDR template message and remembers where each value lives.

    Offsets are aligned relative to the end of the 4-byte encapsulation header, as
    CDR requires. ``fields`` maps a name to ``(offset, dtype, count)``.
    """

    def __init__(self) -> None:
        self.body = bytearray()
        self.fields: dict[str, tuple[int, str, int]] = {}

    def _align(self, size: int) -> None:
        self.body += b"\0" * ((-len(self.body)) % size)

    def scalar(self, name: str, dtype: str, count: int = 1) -> None:
        """Reserve *count* values of *dtype* (``'<i4'``, ``'<u4'``, ``'<f8'``)."""
        size = np.dtype(dtype).itemsize
        self._align(size)
        self.fields[name] = (len(self.body), dtype, count)
        self.body += b"\0" * (size * count)

    def const(self, dtype: str, values: Sequence[float]) -> None:
        """Write constant values (e.g. a covariance matrix) into the template."""
        arr = np.asarray(values, dtype=dtype)
        self._align(arr.dtype.itemsize)
        self.body += arr.tobytes()

    def string(self, text: str) -> None:
        """A constant string: uint32 length (with the NUL), bytes, NUL."""
        raw = text.encode() + b"\0"
        self._align(4)
        self.body += struct.pack("<I", len(raw)) + raw

    def header(self, prefix: str, frame_id: str) -> None:
        """``std_msgs/Header``: stamp (sec, nanosec) and a constant frame id."""
        self.scalar(f"{prefix}sec", "<i4")
        self.scalar(f"{prefix}nanosec", "<u4")
        self.string(frame_id)

    def sequence(self, name: str, dtype: str, count: int) -> None:
        """A sequence of *count* primitives: uint32 count, then the aligned values."""
        self._align(4)
        self.body += struct.pack("<I", count)
        if count:
            self.scalar(name, dtype, count)

    def strings(self, values: Sequence[str]) -> None:
        """A constant ``string[]``."""
        self._align(4)
        self.body += struct.pack("<I", len(values))
        for value in values:
            self.string(value)

    def table(self, n: int) -> NDArray[np.uint8]:
        """``(n, size)`` array of *n* copies of the template (header included)."""
        row = np.frombuffer(CDR_HEADER + bytes(self.body), dtype=np.uint8)
        return np.tile(row, (n, 1))

    def put(self, table: NDArray[np.uint8], name: str, values: ArrayLike) -> None:
        """Write *values* (shape ``(n,)`` or ``(n, count)``) into column *name* of *table*."""
        offset, dtype, count = self.fields[name]
        start = len(CDR_HEADER) + offset
        arr = np.ascontiguousarray(np.asarray(values).astype(dtype, copy=False))
        width = np.dtype(dtype).itemsize * count
        table[:, start : start + width] = arr.reshape(len(table), -1).view(np.uint8)

    def put_stamp(
        self, table: NDArray[np.uint8], prefix: str, stamps_ns: ArrayLike
    ) -> None:
        """Split int64 nanosecond stamps into the ``sec``/``nanosec`` columns."""
        ns = np.asarray(stamps_ns, dtype=np.int64)
        self.put(table, f"{prefix}sec", ns // 1_000_000_000)
        self.put(table, f"{prefix}nanosec", ns % 1_000_000_000)


def _split(table: NDArray[np.uint8]) -> list[bytes]:
    raw = table.tobytes()
    size = table.shape[1]
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def encode_joint_state(
    stamps_ns: ArrayLike,
    names: Sequence[str],
    position: ArrayLike,
    velocity: ArrayLike | None = None,
    effort: ArrayLike | None = None,
    *,
    frame_id: str = "",
) -> list[bytes]:
    """``sensor_msgs/msg/JointState`` messages; ``None`` arrays are encoded empty."""
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    n, k = len(stamps), len(names)
    lay = Layout()
    lay.header("", frame_id)
    lay.strings(names)
    cols = {"position": position, "velocity": velocity, "effort": effort}
    for name, values in cols.items():
        lay.sequence(name, "<f8", 0 if values is None else k)
    table = lay.table(n)
    lay.put_stamp(table, "", stamps)
    for name, values in cols.items():
        if values is not None:
            lay.put(table, name, values)
    return _split(table)


def encode_imu(
    stamps_ns: ArrayLike,
    orientation: ArrayLike,
    angular_velocity: ArrayLike,
    linear_acceleration: ArrayLike,
    *,
    frame_id: str,
    covariances: tuple[Sequence[float], Sequence[float], Sequence[float]],
) -> list[bytes]:
    """``sensor_msgs/msg/Imu``; orientation is ``(n, 4)`` as x, y, z, w."""
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    lay = Layout()
    lay.header("", frame_id)
    lay.scalar("orientation", "<f8", 4)
    lay.const("<f8", covariances[0])
    lay.scalar("angular_velocity", "<f8", 3)
    lay.const("<f8", covariances[1])
    lay.scalar("linear_acceleration", "<f8", 3)
    lay.const("<f8", covariances[2])
    table = lay.table(len(stamps))
    lay.put_stamp(table, "", stamps)
    lay.put(table, "orientation", orientation)
    lay.put(table, "angular_velocity", angular_velocity)
    lay.put(table, "linear_acceleration", linear_acceleration)
    return _split(table)


def encode_wrench(
    stamps_ns: ArrayLike, force: ArrayLike, torque: ArrayLike, *, frame_id: str
) -> list[bytes]:
    """``geometry_msgs/msg/WrenchStamped`` messages."""
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    lay = Layout()
    lay.header("", frame_id)
    lay.scalar("force", "<f8", 3)
    lay.scalar("torque", "<f8", 3)
    table = lay.table(len(stamps))
    lay.put_stamp(table, "", stamps)
    lay.put(table, "force", force)
    lay.put(table, "torque", torque)
    return _split(table)


def encode_tf(
    stamps_ns: ArrayLike,
    frames: Sequence[tuple[str, str]],
    translations: Sequence[ArrayLike],
    rotations: Sequence[ArrayLike],
) -> list[bytes]:
    """``tf2_msgs/msg/TFMessage`` with one transform per ``(parent, child)`` in *frames*.

    ``translations[i]`` is ``(n, 3)`` and ``rotations[i]`` is ``(n, 4)`` (x, y, z, w)
    for frame pair *i*; all transforms of a message share its stamp.
    """
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    lay = Layout()
    lay._align(4)
    lay.body += struct.pack("<I", len(frames))
    for i, (parent, child) in enumerate(frames):
        lay.header(f"{i}.", parent)
        lay.string(child)
        lay.scalar(f"{i}.translation", "<f8", 3)
        lay.scalar(f"{i}.rotation", "<f8", 4)
    table = lay.table(len(stamps))
    for i in range(len(frames)):
        lay.put_stamp(table, f"{i}.", stamps)
        lay.put(table, f"{i}.translation", translations[i])
        lay.put(table, f"{i}.rotation", rotations[i])
    return _split(table)


def _header_bytes(stamp_ns: int, frame_id: str) -> bytes:
    raw = frame_id.encode() + b"\0"
    return (
        struct.pack(
            "<iII", stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000, len(raw)
        )
        + raw
    )


def encode_compressed_image(
    stamps_ns: ArrayLike,
    frames: Sequence[bytes],
    *,
    frame_id: str,
    fmt: str = "jpeg",
) -> list[bytes]:
    """``sensor_msgs/msg/CompressedImage`` messages (variable size, so one at a time)."""
    out = []
    fmt_raw = fmt.encode() + b"\0"
    for stamp, data in zip(
        np.asarray(stamps_ns, dtype=np.int64).tolist(), frames, strict=True
    ):
        body = bytearray(_header_bytes(int(stamp), frame_id))
        body += b"\0" * ((-len(body)) % 4)
        body += struct.pack("<I", len(fmt_raw)) + fmt_raw
        body += b"\0" * ((-len(body)) % 4)
        body += struct.pack("<I", len(data)) + data
        out.append(CDR_HEADER + bytes(body))
    return out


def encode_string(texts: Sequence[str]) -> list[bytes]:
    """``std_msgs/msg/String`` messages."""
    out = []
    for text in texts:
        raw = text.encode() + b"\0"
        out.append(CDR_HEADER + struct.pack("<I", len(raw)) + raw)
    return out
