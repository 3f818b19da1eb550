"""Mutation fuzzing of every reader: only WorkbenchError escapes, nothing hangs.

Each reader gets a real file (or a sample) that hypothesis mutates — bit flips,
truncation, spliced chunks, huge length fields — and the reader must either read it
or raise a :class:`~workbench.model.WorkbenchError` within 10 s. A short run is part
of the suite (``FUZZ_EXAMPLES`` per reader, default 25); ``bench/fuzz.py`` runs a long one.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.io.registry import get_reader
from workbench.model import WorkbenchError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
TIMEOUT_S = 10

# reader → (path relative to the real-data or samples folder, the file inside a folder input to mutate)
TARGETS = {
    "table": ("real", "csv/plotjuggler/turtle.csv", None),
    "mcap": ("samples", "campaign/arm-a_bright_rubber_policy-v1_s01.mcap", None),
    "rosbag1": ("samples", "rosbag1/arm-a_bright_rubber_policy-v1_s10.bag", None),
    "rosbag2": ("real", "ros2_bag/mcap/cdr_test", "cdr_test_0.mcap"),
    "lerobot": ("real", "lerobot/v30_so101_record_test", "data/chunk-000/file-000.parquet"),
    "hdf5": ("real", "hdf5/robosuite_v1_wipe_panda/demo.hdf5", None),
    "ulog": ("real", "ulog/pyulog/sample_appended_multiple.ulg", None),
    "dataflash": ("real", "ardupilot_dataflash/pymavlink/test.BIN", None),
    "tlog": ("real", "mavlink_tlog/ardusub_log_tools/small.tlog", None),
    "rrd": ("real", "rrd/so_arm100/so100.rrd", None),
}


@st.composite
def mutations(draw, size: int):
    """A list of edits applied in order to the file's bytes."""
    kinds = st.sampled_from(["flip", "truncate", "splice", "length", "zero"])
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(kinds)
        pos = draw(st.integers(0, max(0, size - 1)))
        if kind == "flip":
            edits.append(("flip", pos, draw(st.integers(0, 7))))
        elif kind == "truncate":
            edits.append(("truncate", pos, 0))
        elif kind == "splice":
            edits.append(("splice", pos, draw(st.integers(0, max(0, size - 1)))))
        elif kind == "length":  # a huge or negative length field at a random place
            edits.append(("length", pos, draw(st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF, 2**40, 0]))))
        else:
            edits.append(("zero", pos, draw(st.integers(1, 256))))
    return edits


def apply(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in edits:
        if not buf:
            break
        pos = min(pos, len(buf) - 1)
        if kind == "flip":
            buf[pos] ^= 1 << arg
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "splice":  # repeat a slice from elsewhere (a duplicated chunk)
            src = min(arg, len(buf) - 1)
            buf[pos:pos] = buf[src : src + 512]
        elif kind == "length":
            fmt = "<Q" if arg > 0xFFFFFFFF else "<I"
            packed = struct.pack(fmt, arg)
            buf[pos : pos + len(packed)] = packed
        else:
            buf[pos : pos + arg] = bytes(min(arg, len(buf) - pos))
    return bytes(buf)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def read_all(reader, path: Path) -> None:
    for run in reader.read(path):
        for ds in run.streams.values():
            ds.load()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_reader_survives_mutations(name, tmp_path_factory, request):
    where, rel, inner = TARGETS[name]
    base = request.getfixturevalue("real_data" if where == "real" else "samples_dir")
    source = base / rel
    reader = get_reader(name)
    work = tmp_path_factory.mktemp(f"fuzz-{name}")
    if source.is_dir():
        target_dir = work / source.name
        shutil.copytree(source, target_dir)
        victim = target_dir / inner
        read_path = target_dir
    else:
        victim = work / source.name
        shutil.copy(source, victim)
        read_path = victim
    victim.chmod(0o644)
    original = victim.read_bytes()
    seen: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(edits=mutations(len(original)))
    def check(edits):
        victim.write_bytes(apply(original, edits))
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIMEOUT_S)
        try:
            read_all(reader, read_path)
            seen["ok"] = seen.get("ok", 0) + 1
        except WorkbenchError as err:
            seen["error"] = seen.get("error", 0) + 1
            assert str(read_path) in str(err) or victim.name in str(err) or read_path.name in str(err), err
        except Hang:
            pytest.fail(f"{name} reader hung > {TIMEOUT_S} s on mutation {edits}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    check()
    print(f"{name}: {EXAMPLES} mutations, outcomes {seen}")
    read = sum(seen.values())
    assert read >= EXAMPLES // 2, f"only {read} of the {EXAMPLES} planned mutations of {name} were read"
