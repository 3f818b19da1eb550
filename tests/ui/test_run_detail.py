"""Run detail without a browser: what its tables hold for the selected runs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import workbench as wb


@pytest.fixture(scope="module")
def talker(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Store, wb.Run]:
    store = wb.open_store(tmp_path_factory.mktemp("text") / "store")
    (rid,) = store.ingest([real_data / "ros2_bag/mcap/rosbag2_talker"]).ingested
    return store, store.load(rid)


def test_run_detail_lists_the_text_on_the_common_timeline(talker) -> None:
    from workbench.ui.datastore import DataStore
    from workbench.ui.run_detail import RunDetail

    store, run = talker
    data = DataStore(store=store)
    detail = RunDetail(data=data)
    data.selection = [run.run_id]
    f = detail.text_frame()
    assert f.height == 20 and set(f["stream"].to_list()) == {"topic", "rosout"}
    assert f["t_s"].is_sorted() and f["t_s"].min() >= 0
    assert f.filter(pl.col("stream") == "topic")["text"].to_list() == [f"Hello, world! {i}" for i in range(10)]
    assert detail.texts.value.shape == (20, 5)
    assert detail.text_frame(limit=3).height == 3
