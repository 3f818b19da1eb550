"""MCAP channels with protobuf messages: schemas built from the embedded FileDescriptorSet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    timestamp_pb2,
)

import workbench as wb
from workbench.io.mcap import McapReader, McapScanner, _stream_parts
from workbench.io.messages import StreamingRunData
from workbench.model import ReaderError

F = descriptor_pb2.FieldDescriptorProto
T0 = 1_700_000_000_000_000_000


def _file() -> descriptor_pb2.FileDescriptorProto:
    """``demo/arm.proto``: Vec, ArmState (Foxglove-style timestamp + frame_id), Note."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="demo/arm.proto",
        package="demo",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    vec = fdp.message_type.add(name="Vec")
    for i, nm in enumerate("xyz"):
        vec.field.add(name=nm, number=i + 1, type=F.TYPE_DOUBLE)
    arm = fdp.message_type.add(name="ArmState")
    arm.field.add(name="timestamp", number=1, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    arm.field.add(name="frame_id", number=2, type=F.TYPE_STRING)
    arm.field.add(name="position", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_REPEATED)
    arm.field.add(name="force", number=4, type=F.TYPE_MESSAGE, type_name=".demo.Vec")
    arm.field.add(name="count", number=5, type=F.TYPE_UINT32)
    arm.field.add(name="ok", number=6, type=F.TYPE_BOOL)
    arm.field.add(name="label", number=7, type=F.TYPE_STRING)
    arm.field.add(name="contacts", number=8, type=F.TYPE_MESSAGE, type_name=".demo.Vec", label=F.LABEL_REPEATED)
    arm.field.add(name="effort", number=9, type=F.TYPE_FLOAT, label=F.LABEL_REPEATED)
    arm.field.add(name="mode", number=10, type=F.TYPE_ENUM, type_name=".demo.Mode")
    arm.field.add(name="gains", number=11, type=F.TYPE_MESSAGE, type_name=".demo.ArmState.GainsEntry", label=F.LABEL_REPEATED)
    arm.field.add(name="elapsed", number=12, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    entry = arm.nested_type.add(name="GainsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING)
    entry.field.add(name="value", number=2, type=F.TYPE_DOUBLE)
    mode = fdp.enum_type.add(name="Mode")
    mode.value.add(name="IDLE", number=0)
    mode.value.add(name="RUN", number=2)
    note = fdp.message_type.add(name="Note")
    note.field.add(name="data", number=1, type=F.TYPE_STRING)
    return fdp


def _timestamp_file() -> descriptor_pb2.FileDescriptorProto:
    out = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(out)
    return out


def schema(*, with_timestamp: bool = True) -> bytes:
    """The FileDescriptorSet an MCAP writer embeds (timestamp.proto optionally left out)."""
    fds = descriptor_pb2.FileDescriptorSet()
    if with_timestamp:
        fds.file.append(_timestamp_file())
    fds.file.append(_file())
    return fds.SerializeToString()


def classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_timestamp_file())
    pool.Add(_file())
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"demo.{n}")) for n in ("ArmState", "Note", "Vec")}


def arm_messages(n: int) -> list[tuple[int, bytes]]:
    Arm = classes()["ArmState"]
    out = []
    for i in range(n):
        m = Arm(frame_id="base", position=[i, 2.0 * i], count=i, ok=bool(i % 2), label=f"m{i}")
        m.timestamp.seconds = 100 + i
        m.timestamp.nanos = 7
        m.elapsed.seconds = i
        if i % 4 != 2:
            m.force.x, m.force.y, m.force.z = 1.5 * i, -1.0, 0.25
        for k in range(i % 3):
            m.contacts.add(x=float(k), y=float(i))
        m.effort.extend([0.5] * (i % 3))
        m.mode = 2 if i % 2 else 0
        m.gains["kp"] = 10.0 + i
        m.gains["kd"] = 0.5
        out.append((T0 + i * 10_000_000, m.SerializeToString()))
    return out


def write(path: Path, channels: list[dict[str, Any]], **writer_opts: Any) -> None:
    """Write an MCAP file: each channel dict has topic, schema (name, encoding, data) and messages."""
    from mcap.writer import Writer

    with open(path, "wb") as fh:
        w = Writer(fh, **writer_opts)
        w.start("", "test_mcap_protobuf")
        rows = []
        for ch in channels:
            sid = 0
            if ch.get("schema") is not None:
                name, enc, data = ch["schema"]
                sid = w.register_schema(name=name, encoding=enc, data=data)
            cid = w.register_channel(topic=ch["topic"], message_encoding=ch.get("encoding", "protobuf"), schema_id=sid)
            rows.extend((t, cid, data) for t, data in ch["messages"])
        for t, cid, data in sorted(rows, key=lambda r: r[0]):
            w.add_message(cid, log_time=t, publish_time=t, data=data)
        w.finish()


def read(path: Path, **options: Any) -> Any:
    runs = list(McapReader().read(path, **options))
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("with_timestamp", [True, False])
def test_protobuf_channel_flattens_to_columns(tmp_path: Path, with_timestamp: bool) -> None:
    path = tmp_path / "arm.mcap"
    msgs = arm_messages(12)
    write(path, [{"topic": "/arm", "schema": ("demo.ArmState", "protobuf", schema(with_timestamp=with_timestamp)), "messages": msgs}])
    run = read(path)
    assert run.skipped == []
    assert run.extra["message_counts"] == {"/arm": 12}
    ds = run.streams["arm"]
    i = np.arange(12)
    np.testing.assert_array_equal(ds["time"].values, T0 + i * 10_000_000)
    # the Foxglove-style top-level timestamp is the sensor clock; frame_id an attribute
    np.testing.assert_array_equal(ds["header_time"].values, (100 + i) * 1_000_000_000 + 7)
    assert ds.attrs["frame_id"] == "base"
    assert ds.attrs["encoding"] == "protobuf" and ds.attrs["message_type"] == "demo.ArmState"
    assert "label (string)" in ds.attrs["ignored"]
    np.testing.assert_array_equal(ds["position"].values, np.stack([i, 2.0 * i], axis=1))
    assert ds["position"].dims == ("time", "position.index")
    fx = ds["force.x"].values
    unset = i % 4 == 2
    assert np.all(np.isnan(fx[unset]))  # a message field not set is missing, not 0
    np.testing.assert_array_equal(fx[~unset], 1.5 * i[~unset])
    np.testing.assert_array_equal(ds["count"].values, i)
    assert ds["count"].dtype == np.uint32
    np.testing.assert_array_equal(ds["ok"].values, i % 2 == 1)
    np.testing.assert_array_equal(ds["mode"].values, np.where(i % 2, 2, 0))
    # repeated messages → field[k].sub, NaN where the message has fewer elements
    c1 = ds["contacts[1].y"].values
    np.testing.assert_array_equal(np.isnan(c1), i % 3 != 2)
    np.testing.assert_array_equal(c1[i % 3 == 2], i[i % 3 == 2])
    # variable-length numbers are NaN-padded; maps become one variable per key
    eff = ds["effort"].values
    assert eff.shape == (12, 2)
    np.testing.assert_array_equal(np.isnan(eff).sum(axis=1), 2 - i % 3)
    np.testing.assert_array_equal(ds["gains.kp"].values, 10.0 + i)
    np.testing.assert_array_equal(ds["gains.kd"].values, 0.5)
    # another Timestamp field: one int64 ns variable
    np.testing.assert_array_equal(ds["elapsed"].values, i * 1_000_000_000)
    assert ds["elapsed"].attrs["units"] == "ns"


def test_protobuf_events_text_and_bad_schemas_are_reported(tmp_path: Path) -> None:
    Note = classes()["Note"]
    events = [(T0 + k, Note(data=f'{{"kind": "{kind}", "why": "x"}}').SerializeToString()) for k, kind in enumerate(["grasp", "success"])]
    text = [(T0 + k, Note(data="hello").SerializeToString()) for k in range(3)]
    good = arm_messages(4)
    bad_payload = [*good[:3], (T0 + 99, b"\xff\xff\xff")]
    write(
        tmp_path / "mix.mcap",
        [
            {"topic": "/events", "schema": ("demo.Note", "protobuf", schema()), "messages": events},
            {"topic": "/log", "schema": ("demo.Note", "protobuf", schema()), "messages": text},
            {"topic": "/noschema", "schema": None, "messages": good[:2]},
            {"topic": "/garbage", "schema": ("demo.Broken", "protobuf", b"\x0a\xff\xff"), "messages": good[:2]},
            {"topic": "/wrongname", "schema": ("demo.Missing", "protobuf", schema()), "messages": good[:2]},
            {"topic": "/jsonschema", "schema": ("demo.Other", "jsonschema", b"{}"), "messages": good[:2]},
            {"topic": "/arm", "schema": ("demo.ArmState", "protobuf", schema()), "messages": bad_payload},
        ],
    )
    run = read(tmp_path / "mix.mcap")
    assert run.events["kind"].to_list() == ["grasp", "success"]
    reasons = {s["topic"]: (s["reason"], s["count"]) for s in run.skipped}
    assert reasons["/log"] == ("demo.Note has no numeric fields", 3)
    assert "without an embedded schema" in reasons["/noschema"][0]
    assert "not a serialized FileDescriptorSet" in reasons["/garbage"][0]
    assert "does not define that message type" in reasons["/wrongname"][0]
    assert "schema has encoding 'jsonschema'" in reasons["/jsonschema"][0]
    assert reasons["/arm"][1] == 1 and "not a valid demo.ArmState protobuf message" in reasons["/arm"][0]
    assert run.streams["arm"].sizes["time"] == 3
    assert set(run.streams) == {"arm"}


def test_protobuf_streamed_in_parts_equals_whole_read(tmp_path: Path) -> None:
    from mcap.writer import CompressionType

    path = tmp_path / "arm.mcap"
    write(path, [{"topic": "/arm", "schema": ("demo.ArmState", "protobuf", schema()), "messages": arm_messages(400)}],
          chunk_size=2048, compression=CompressionType.ZSTD)
    whole = read(path)
    run = StreamingRunData(key="", name="arm")
    run.parts = _stream_parts(McapScanner(path, salvage=False, topics=None), run, events_topics=("/events",), part_bytes=4096)
    parts = list(run.parts)
    assert len(parts) > 3
    run.parts = iter(parts)
    streamed = run.materialize()
    a, b = whole.streams["arm"], streamed.streams["arm"]
    assert a.sizes["time"] == b.sizes["time"] == 400
    for var in ("position", "force.x", "gains.kp", "header_time", "contacts[1].y"):
        np.testing.assert_array_equal(a[var].values, b[var].values)

    # and through the store, which asks for parts
    store = wb.open_store(tmp_path / "store")
    report = store.ingest(path)
    assert not report.failed
    loaded = store.load(report.ingested[0])
    np.testing.assert_array_equal(loaded.streams["arm"]["force.x"].values, a["force.x"].values)
    np.testing.assert_array_equal(loaded.streams["arm"]["header_time"].values, a["header_time"].values)


def test_foxglove_compressed_image_is_an_image_stream(tmp_path: Path) -> None:
    fdp = descriptor_pb2.FileDescriptorProto(name="foxglove/CompressedImage.proto", package="foxglove", syntax="proto3",
                                             dependency=["google/protobuf/timestamp.proto"])
    m = fdp.message_type.add(name="CompressedImage")
    m.field.add(name="timestamp", number=1, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    m.field.add(name="frame_id", number=4, type=F.TYPE_STRING)
    m.field.add(name="data", number=2, type=F.TYPE_BYTES)
    m.field.add(name="format", number=3, type=F.TYPE_STRING)
    fds = descriptor_pb2.FileDescriptorSet(file=[_timestamp_file(), fdp])
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    Img = message_factory.GetMessageClass(pool.FindMessageTypeByName("foxglove.CompressedImage"))
    frames = [bytes([k]) * (10 + k) for k in range(5)]
    msgs = []
    for k, fr in enumerate(frames):
        img = Img(frame_id="cam", data=fr, format="jpeg")
        img.timestamp.seconds = k
        msgs.append((T0 + k, img.SerializeToString()))
    write(tmp_path / "img.mcap", [{"topic": "/cam", "schema": ("foxglove.CompressedImage", "protobuf", fds.SerializeToString()), "messages": msgs}])
    ds = read(tmp_path / "img.mcap").streams["cam"]
    assert ds.attrs["kind"] == "image_encoded" and ds.attrs["format"] == "jpeg"
    np.testing.assert_array_equal(ds["frame_size"].values, [len(f) for f in frames])
    assert ds["data"].values.tobytes() == b"".join(frames)
    np.testing.assert_array_equal(ds["header_time"].values, np.arange(5) * 1_000_000_000)


def test_truncated_protobuf_file_still_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "arm.mcap"
    write(path, [{"topic": "/arm", "schema": ("demo.ArmState", "protobuf", schema()), "messages": arm_messages(50)}])
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ReaderError, match="cut.mcap"):
        read(cut)
