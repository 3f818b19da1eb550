"""Nothing dropped silently: text topics, log lines and CSV text become text streams,
stored and readable in polars (Rerun: tests/viz/test_rerun.py; Run detail:
tests/ui/test_run_detail.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.model import ReaderError

TALKER = "ros2_bag/mcap/rosbag2_talker"


def _reference(real_data: Path) -> dict[str, list[tuple[int, str]]]:
    """(log time, text) per topic, decoded by mcap-ros2-support, not by the workbench."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out: dict[str, list[tuple[int, str]]] = {}
    with open(real_data / TALKER / "talker.mcap", "rb") as fh:
        for _schema, channel, message, msg in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            text = msg.data if channel.topic == "/topic" else msg.msg
            out.setdefault(channel.topic, []).append((message.log_time, text))
    return out


@pytest.fixture(scope="module")
def talker(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Store, wb.Run]:
    store = wb.open_store(tmp_path_factory.mktemp("text") / "store")
    report = store.ingest([real_data / TALKER])
    assert report.failed == [] and len(report.ingested) == 1
    return store, store.load(report.ingested[0])


def test_a_string_topic_is_a_text_stream_equal_to_the_reference(talker, real_data: Path) -> None:
    _store, run = talker
    ref = _reference(real_data)
    ds = run.streams["topic"]
    assert ds["text"].dims == ("time",)
    got = list(zip(ds.wb.times_ns.tolist(), [str(v) for v in ds["text"].values.tolist()], strict=True))
    assert got == ref["/topic"] and len(got) == 10 and got[0][1] == "Hello, world! 0"
    assert not [s for s in run.info.provenance.skipped if s["topic"] == "/topic"]
    # the ROS log stream keeps its text beside its numbers
    log = run.streams["rosout"]
    assert [str(v) for v in log["text"].values.tolist()] == [t for _, t in ref["/rosout"]]
    assert set(log["level_name"].values.tolist()) == {"INFO"} and all(log["node"].values.tolist())
    # graded as text: no numeric check on it
    kinds = wb.quality.grade(run).kinds
    assert kinds["topic"].kind == "text"


def test_text_streams_read_in_polars(talker) -> None:
    _, run = talker
    df = run.streams["topic"].wb.to_polars()
    assert df.columns == ["time", "text"] and df.height == 10
    assert df.schema["text"] == pl.String and df["text"][9] == "Hello, world! 9"
    log = run.streams["rosout"].wb.to_polars()
    assert {"time", "text", "node", "level_name", "level"} <= set(log.columns)


def test_csv_text_and_nan_written_as_text_are_kept(real_data: Path, tmp_path: Path) -> None:
    from workbench.io.table import TableReader

    (run,) = list(TableReader().read(real_data / "csv/bagpy_catvehicle/-catvehicle-cmd_vel.csv"))
    ds = next(iter(run.streams.values()))
    assert "angular.z" in ds and np.isnan(ds["angular.z"].values).all() and ds.sizes["time"] == 263
    assert run.skipped == []
    csv = tmp_path / "notes.csv"
    csv.write_text("time,x,note\n1.0,2.0,start\n2.0,3.0,\n3.0,4.0,<b>stop</b>\n")
    store = wb.open_store(tmp_path / "store")
    (rid,) = store.ingest([csv]).ingested
    df = store.load(rid).streams["notes"].wb.to_polars()
    assert df["note"].to_list() == ["start", "", "<b>stop</b>"] and df["x"].to_list() == [2.0, 3.0, 4.0]


def test_an_unknown_reader_is_an_error_listing_the_readers(real_data: Path, tmp_path: Path) -> None:
    store = wb.open_store(tmp_path / "store")
    with pytest.raises(ReaderError, match=r"no reader named 'nosuch'; installed readers: .*lerobot.*table"):
        store.ingest([real_data / "csv"], reader="nosuch")
    assert store.run_ids() == []
