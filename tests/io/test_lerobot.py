"""LeRobot reader: real v2.1/v3.0 datasets checked against pyarrow/PyAV, synthetic round trips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from workbench.io.lerobot import INFO_PATH, LeRobotReader, read_video_frame
from workbench.model import ReaderError

V21 = "lerobot/v21_unitree_g1_inspire"
V30 = "lerobot/v30_so101_record_test"
CAM = "observation.images.cam_high"


@pytest.fixture(scope="module")
def v21_runs(real_data: Path) -> list:
    return list(LeRobotReader().read(real_data / V21))


@pytest.fixture(scope="module")
def v30_runs(real_data: Path) -> list:
    return list(LeRobotReader().read(real_data / V30))


# --------------------------------------------------------------------------- real v2.1


def test_guess_and_source_files(real_data: Path, tmp_path: Path) -> None:
    reader = LeRobotReader()
    assert reader.guess_can_open(real_data / V21)
    assert reader.guess_can_open(real_data / V30)
    assert not reader.guess_can_open(real_data / V21 / INFO_PATH)
    assert not reader.guess_can_open(tmp_path)
    files = reader.source_files(real_data / V21)
    names = {p.relative_to(real_data / V21).as_posix() for p in files}
    assert INFO_PATH in names
    assert "meta/episodes_stats.jsonl" in names
    assert sum(n.endswith(".parquet") for n in names) == 10
    assert sum(n.endswith(".mp4") for n in names) == 2


def test_v21_episodes_match_pyarrow(real_data: Path, v21_runs: list) -> None:
    root = real_data / V21
    assert [r.key for r in v21_runs] == [f"episode_{i}" for i in range(25, 35)]
    info = json.loads((root / INFO_PATH).read_text())
    names = info["features"]["observation.state"]["names"][0]
    for run in v21_runs:
        idx = int(run.key.split("_")[1])
        table = pq.read_table(root / f"data/chunk-000/episode_{idx:06d}.parquet")
        state = run.streams["observation.state"]
        assert state.sizes == {"time": table.num_rows, "joint": 26}
        assert list(state["joint"].values) == names
        expected = np.asarray(
            table.column("observation.state").to_pylist(), dtype=np.float32
        )
        np.testing.assert_array_equal(state["state"].values, expected)
        ts = table.column("timestamp").to_numpy().astype(np.float64)
        np.testing.assert_array_equal(
            state["time"].values, np.round(ts * 1e9).astype(np.int64)
        )
        action = run.streams["action"]["action"].values
        np.testing.assert_array_equal(
            action[7], np.asarray(table.column("action")[7].as_py(), dtype=np.float32)
        )
        frame = run.streams["frame"]
        np.testing.assert_array_equal(
            frame["index"].values, table.column("index").to_numpy()
        )
        assert state["time"].dtype == np.int64
        assert run.factors["hardware"]["robot"] == "Unitree_G1_Inspire"
        assert (
            run.factors["scenario"]["task"] == "Pick up the yellow bottle on the table."
        )
        assert run.factors["scenario"]["split"] == "train"
        assert run.extra["codebase_version"] == "v2.1"
        assert run.extra["clock"] == "episode"
        assert run.extra["fps"] == 30


def test_v21_missing_episodes_are_listed(v21_runs: list) -> None:
    first = v21_runs[0]
    missing = [s for s in first.skipped if s["topic"].startswith("episode_")]
    assert len(missing) == 90
    assert {s["topic"] for s in missing} == {
        f"episode_{i}" for i in [*range(25), *range(35, 100)]
    }
    assert all("data file absent" in s["reason"] for s in missing)
    assert missing[0]["count"] == 479  # episodes.jsonl length of episode 0
    # later runs do not repeat them, but every run names them in extra
    assert not any(s["topic"].startswith("episode_") for s in v21_runs[1].skipped)
    assert len(v21_runs[5].extra["missing_episodes"]) == 90


def test_v21_video_refs(real_data: Path, v21_runs: list) -> None:
    by_key = {r.key: r for r in v21_runs}
    for idx in (29, 30):
        run = by_key[f"episode_{idx}"]
        ds = run.streams[CAM]
        assert ds.attrs["kind"] == "video_ref"
        assert ds.attrs["path"] == f"videos/chunk-000/{CAM}/episode_{idx:06d}.mp4"
        assert ds.attrs["codec"] == "av1"
        assert ds.sizes["time"] == run.streams["observation.state"].sizes["time"]
        np.testing.assert_array_equal(
            ds["frame_index"].values, np.arange(ds.sizes["time"])
        )
        assert not any(s["topic"] == CAM for s in run.skipped)
    run25 = by_key["episode_25"]
    assert CAM not in run25.streams
    (skip,) = [s for s in run25.skipped if s["topic"] == CAM]
    assert skip["count"] == 310 and "absent" in skip["reason"]


def test_read_video_frame_matches_pyav(real_data: Path) -> None:
    import av

    root = real_data / V21
    frame = read_video_frame(root, CAM, 29, 100)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    with av.open(str(root / f"videos/chunk-000/{CAM}/episode_000029.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == 100:
                expected = f.to_ndarray(format="rgb24")
                break
    np.testing.assert_array_equal(frame, expected)
    with pytest.raises(ReaderError, match="episode_000025.mp4"):
        read_video_frame(root, CAM, 25, 0)
    with pytest.raises(ReaderError, match="out of range"):
        read_video_frame(root, CAM, 29, 221)


def test_episode_selection(real_data: Path) -> None:
    runs = list(LeRobotReader().read(real_data / V21, episodes=[30, 31]))
    assert [r.key for r in runs] == ["episode_30", "episode_31"]
    with pytest.raises(ReaderError, match="not in the dataset"):
        list(LeRobotReader().read(real_data / V21, episodes=[500]))
    with pytest.raises(ReaderError, match="none of the 1 episodes"):
        list(LeRobotReader().read(real_data / V21, episodes=[3]))


# --------------------------------------------------------------------------- real v3.0


def test_v30_episodes_match_pyarrow(real_data: Path, v30_runs: list) -> None:
    root = real_data / V30
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert [r.key for r in v30_runs] == [f"episode_{i}" for i in range(4)]
    assert [r.streams["action"].sizes["time"] for r in v30_runs] == [373, 374, 372, 373]
    for run in v30_runs:
        idx = run.extra["episode_index"]
        rows = table.filter(pc.equal(table.column("episode_index"), idx))
        ds = run.streams["observation.state"]
        assert ds.sizes["time"] == rows.num_rows
        assert next(iter(ds["joint"].values)) == "shoulder_pan.pos"
        np.testing.assert_array_equal(
            ds["state"].values[-1],
            np.asarray(rows.column("observation.state")[-1].as_py(), np.float32),
        )
        assert ds["time"].values[0] == 0
        assert run.factors["hardware"]["robot"] == "so101_follower"
        assert (
            run.factors["scenario"]["task"]
            == "Pick the orange cube and place it in the box"
        )
        assert run.extra["codebase_version"] == "v3.0"
        absent = {s["topic"] for s in run.skipped if "video file absent" in s["reason"]}
        assert absent == {"observation.images.front", "observation.images.top"}


# --------------------------------------------------------------------------- per-episode factors


def test_real_episode_factors_match_metadata(
    real_data: Path, v21_runs: list, v30_runs: list
) -> None:
    """Each run carries its episode index and the task text of *its* episode."""
    v21_tasks = {
        row["episode_index"]: row["tasks"]
        for row in map(
            json.loads,
            (real_data / V21 / "meta/episodes.jsonl").read_text().splitlines(),
        )
    }
    eps = pq.read_table(
        real_data / V30 / "meta/episodes/chunk-000/file-000.parquet",
        columns=["episode_index", "tasks"],
    ).to_pylist()
    v30_tasks = {row["episode_index"]: row["tasks"] for row in eps}
    for runs, tasks, indices in (
        (v21_runs, v21_tasks, range(25, 35)),
        (v30_runs, v30_tasks, range(4)),
    ):
        assert [r.factors["scenario"]["episode"] for r in runs] == list(indices)
        for run in runs:
            scenario = run.factors["scenario"]
            assert isinstance(scenario["episode"], int)
            assert run.key == f"episode_{scenario['episode']}"
            assert scenario["task"] == tasks[scenario["episode"]][0]
            # the real tables hold only bookkeeping columns: no other factor appears
            assert set(scenario) == {"episode", "task", "split"}
            assert "episode_metadata_left_out" not in run.extra


def _copy_without_videos(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("videos"))
    return dst


def test_v21_episode_columns_become_factors(real_data: Path, tmp_path: Path) -> None:
    root = _copy_without_videos(real_data / V21, tmp_path / "g1")
    path = root / "meta/episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        i = row["episode_index"]
        row["operator"] = "ana" if i % 2 else "bo"
        row["success"] = i != 30
        row["location/site"] = "lab-2"
        row["notes"] = "x" * 500  # long text: not a factor
        row["tags"] = ["a", "b"]  # a list: not a factor
        row["empty"] = None
        if i == 31:
            row["tasks"] = ["Hand the bottle over."]  # this episode's own task
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = {r.key: r for r in LeRobotReader().read(root)}
    s30 = runs["episode_30"].factors["scenario"]
    assert s30 == {
        "episode": 30,
        "task": "Pick up the yellow bottle on the table.",
        "split": "train",
        "operator": "bo",
        "success": False,
        "location.site": "lab-2",
    }
    s31 = runs["episode_31"].factors["scenario"]
    assert s31["task"] == "Hand the bottle over." and s31["operator"] == "ana"
    assert s31["success"] is True
    extra = runs["episode_31"].extra
    assert extra["episode_metadata"]["tags"] == ["a", "b"]
    assert extra["episode_metadata_left_out"] == {
        "notes": "text of 500 characters",
        "tags": "list, not a scalar",
        "empty": "no value",
    }


def test_v30_episode_columns_become_factors(real_data: Path, tmp_path: Path) -> None:
    root = _copy_without_videos(real_data / V30, tmp_path / "so101")
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    n = table.num_rows
    table = (
        table.append_column("operator", pa.array(["ana", "bo", "ana", "bo"][:n]))
        .append_column("seed", pa.array(list(range(100, 100 + n)), pa.int64()))
        .append_column("lighting/lux", pa.array([300.0, 310.5, 320.0, 330.0][:n]))
        .append_column("task", pa.array(["ignored"] * n))  # clashes: the reader's wins
    )
    pq.write_table(table, path)
    runs = list(LeRobotReader().read(root))
    for i, run in enumerate(runs):
        scenario = run.factors["scenario"]
        assert scenario["episode"] == i
        assert scenario["operator"] == ["ana", "bo"][i % 2]
        assert scenario["seed"] == 100 + i and isinstance(scenario["seed"], int)
        assert scenario["lighting.lux"] == [300.0, 310.5, 320.0, 330.0][i]
        assert scenario["task"] == "Pick the orange cube and place it in the box"
        # bookkeeping columns never become factors
        assert not any(
            k.startswith(("data", "videos", "stats", "meta", "dataset_"))
            or k == "length"
            for k in scenario
        )
        assert "already set by the reader" in run.extra["episode_metadata_left_out"]["task"]


# --------------------------------------------------------------------------- synthetic


def _write_video(path: Path, values: list[int], fps: int = 30) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"qscale": "2"}
        for v in values:
            img = np.full((48, 64, 3), v, dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _features(video: bool) -> dict:
    feats = {
        "observation.state": {
            "dtype": "float32",
            "shape": [3],
            "names": ["a", "b", "c"],
        },
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    if video:
        feats["observation.images.cam"] = {
            "dtype": "video",
            "shape": [48, 64, 3],
            "names": ["height", "width", "channel"],
            "info": {
                "video.codec": "mpeg4",
                "video.fps": 30,
                "video.height": 48,
                "video.width": 64,
            },
        }
    return feats


def _frames(lengths: list[int]) -> pa.Table:
    rows = {
        k: []
        for k in [
            "observation.state",
            "action",
            "next.reward",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        ]
    }
    g = 0
    for ep, n in enumerate(lengths):
        for i in range(n):
            rows["observation.state"].append([ep, i, g * 0.5])
            rows["action"].append([-i, 2.0 * ep])
            rows["next.reward"].append(float(i == n - 1))
            rows["timestamp"].append(i / 30)
            rows["frame_index"].append(i)
            rows["episode_index"].append(ep)
            rows["index"].append(g)
            rows["task_index"].append(ep % 2)
            g += 1
    return pa.table(
        {
            "observation.state": pa.array(
                rows["observation.state"], pa.list_(pa.float32(), 3)
            ),
            "action": pa.array(rows["action"], pa.list_(pa.float32(), 2)),
            "next.reward": pa.array(rows["next.reward"], pa.float32()),
            "timestamp": pa.array(rows["timestamp"], pa.float32()),
            **{
                k: pa.array(rows[k], pa.int64())
                for k in ["frame_index", "episode_index", "index", "task_index"]
            },
        }
    )


def _make_v30(root: Path, lengths: list[int]) -> None:
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    info = {
        "codebase_version": "v3.0",
        "robot_type": "toy_arm",
        "fps": 30,
        "total_episodes": len(lengths),
        "total_frames": sum(lengths),
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": _features(video=True),
    }
    (root / INFO_PATH).write_text(json.dumps(info))
    pq.write_table(
        pa.table({"task_index": [0, 1], "task": ["pick", "place"]}),
        root / "meta/tasks.parquet",
    )
    pq.write_table(_frames(lengths), root / "data/chunk-000/file-000.parquet")
    starts = np.cumsum([0, *lengths])
    eps = {
        "episode_index": list(range(len(lengths))),
        "tasks": [["pick" if i % 2 == 0 else "place"] for i in range(len(lengths))],
        "length": lengths,
        "data/chunk_index": [0] * len(lengths),
        "data/file_index": [0] * len(lengths),
        "dataset_from_index": starts[:-1].tolist(),
        "dataset_to_index": starts[1:].tolist(),
        "videos/observation.images.cam/chunk_index": [0] * len(lengths),
        "videos/observation.images.cam/file_index": [0] * len(lengths),
        "videos/observation.images.cam/from_timestamp": (starts[:-1] / 30).tolist(),
        "videos/observation.images.cam/to_timestamp": (starts[1:] / 30).tolist(),
        "stats/action/min": [[0.0, 0.0]] * len(lengths),
    }
    pq.write_table(pa.table(eps), root / "meta/episodes/chunk-000/file-000.parquet")
    values = [20 * (g % 12) + 10 for g in range(sum(lengths))]
    _write_video(root / "videos/observation.images.cam/chunk-000/file-000.mp4", values)


def test_v30_round_trip_with_video(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _make_v30(root, [5, 7])
    runs = list(LeRobotReader().read(root))
    assert [r.key for r in runs] == ["episode_0", "episode_1"]
    r1 = runs[1]
    assert r1.factors == {
        "hardware": {"robot": "toy_arm"},
        "scenario": {"episode": 1, "task": "place", "split": "train"},
    }
    st = r1.streams["observation.state"]
    assert st.sizes == {"time": 7, "joint": 3}
    assert list(st["joint"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(
        st["state"].values[:, 1], np.arange(7, dtype=np.float32)
    )
    assert r1.streams["action"]["action"].dims == ("time", "dim_1")
    assert r1.streams["next.reward"]["reward"].values.tolist() == [0, 0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(
        st["time"].values,
        np.round(np.float32(np.arange(7) / 30).astype(np.float64) * 1e9),
    )
    vid = r1.streams["observation.images.cam"]
    assert vid.attrs["kind"] == "video_ref" and vid.attrs["codec"] == "mpeg4"
    np.testing.assert_allclose(
        vid["video_time"].values, 5 / 30 + np.arange(7) / 30, atol=1e-6
    )
    for ep, i, g in [(0, 0, 0), (0, 4, 4), (1, 0, 5), (1, 6, 11)]:
        img = read_video_frame(root, "observation.images.cam", ep, i)
        assert img.shape == (48, 64, 3)
        assert abs(float(img.mean()) - (20 * (g % 12) + 10)) < 6, (ep, i)
    assert runs[0].skipped == []


def test_v21_round_trip_with_missing_episode(tmp_path: Path) -> None:
    root = tmp_path / "ds21"
    (root / "meta").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    info = {
        "codebase_version": "v2.1",
        "robot_type": "toy",
        "fps": 30,
        "total_episodes": 3,
        "chunks_size": 1000,
        "features": _features(video=False),
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
    }
    (root / INFO_PATH).write_text(json.dumps(info))
    (root / "meta/tasks.jsonl").write_text(
        '{"task_index": 0, "task": "pick"}\n{"task_index": 1, "task": "place"}\n'
    )
    (root / "meta/episodes.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "episode_index": i,
                    "tasks": [["pick", "place"][i % 2]],
                    "length": 4 + i,
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    full = _frames([4, 5, 6])
    for ep in (0, 2):  # episode 1 is absent
        part = full.filter(pc.equal(full.column("episode_index"), ep))
        pq.write_table(part, root / f"data/chunk-000/episode_{ep:06d}.parquet")
    runs = list(LeRobotReader().read(root))
    assert [r.key for r in runs] == ["episode_0", "episode_2"]
    assert runs[0].skipped == [
        {
            "topic": "episode_1",
            "reason": "data file absent: data/chunk-000/episode_000001.parquet",
            "count": 5,
        }
    ]
    assert runs[1].skipped == []
    assert runs[1].streams["frame"]["index"].values.tolist() == [9, 10, 11, 12, 13, 14]
    assert runs[1].factors["scenario"]["task"] == "pick"


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_file(real_data: Path, tmp_path: Path) -> None:
    reader = LeRobotReader()
    with pytest.raises(ReaderError, match="no meta/info.json"):
        list(reader.read(tmp_path))
    bad = tmp_path / "bad"
    (bad / "meta").mkdir(parents=True)
    (bad / INFO_PATH).write_text("{not json")
    with pytest.raises(ReaderError, match=r"bad/meta/info.json.*JSON"):
        list(reader.read(bad))
    (bad / INFO_PATH).write_text(
        json.dumps({"codebase_version": "v1.6", "fps": 10, "features": {"a": {}}})
    )
    with pytest.raises(ReaderError, match="v1.6.*supported: v2.0, v2.1, v3.0"):
        list(reader.read(bad))
    # a truncated Parquet file
    ds = tmp_path / "trunc"
    shutil.copytree(real_data / V30, ds)
    data = ds / "data/chunk-000/file-000.parquet"
    data.write_bytes(data.read_bytes()[:5000])
    with pytest.raises(ReaderError, match="file-000.parquet"):
        list(reader.read(ds))
    # an empty data file
    data.write_bytes(b"")
    with pytest.raises(ReaderError, match="file-000.parquet"):
        list(reader.read(ds))


def _row_group_share(path: Path, rows: np.ndarray) -> float:
    """The reference: each row group's compressed bytes shared by its rows (pyarrow
    metadata), plus the file's bytes outside row groups shared by all rows."""
    md = pq.ParquetFile(path).metadata
    groups, lo, share = 0, 0, 0.0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        nbytes = sum(rg.column(j).total_compressed_size for j in range(rg.num_columns))
        groups += nbytes
        mine = np.count_nonzero((rows >= lo) & (rows < lo + rg.num_rows))
        share += nbytes * mine / rg.num_rows
        lo += rg.num_rows
    return share + (path.stat().st_size - groups) * len(rows) / md.num_rows


@pytest.mark.parametrize("dataset", [V21, V30])
def test_each_episode_has_its_own_source_and_bytes_in_the_catalog(real_data: Path, tmp_path: Path, dataset: str) -> None:
    import workbench as wb

    root = real_data / dataset
    store = wb.open_store(tmp_path / "store")
    store.ingest([root])
    cat = store.runs().sort("scenario.episode")
    info = json.loads((root / "meta/info.json").read_text())
    assert set(cat["format_version"].to_list()) == {info["codebase_version"]}
    assert set(cat["fps"].to_list()) == {float(info["fps"])}
    assert cat["start"].null_count() == cat.height and set(cat["start_clock"].to_list()) == {
        "episode-relative (no wall time in the dataset)"}
    whole = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    by_file: dict[str, int] = {}
    for row in cat.iter_rows(named=True):
        src = Path(row["source"])
        assert src.is_file() and src.suffix == ".parquet" and src.is_relative_to(root / "data")
        episodes = pq.read_table(src, columns=["episode_index"])["episode_index"].to_numpy()
        rows = np.flatnonzero(episodes == row["scenario.episode"])
        videos = sum(p.stat().st_size for p in root.glob(f"videos/*/*/episode_{row['scenario.episode']:06d}.mp4"))
        assert row["size_bytes"] == pytest.approx(_row_group_share(src, rows) + videos, abs=1)
        assert row["size_bytes"] < whole
        by_file[str(src)] = by_file.get(str(src), 0) + row["size_bytes"] - videos
    if dataset == V30:  # four episodes share one file: their shares add up to it
        (shared,) = by_file
        assert by_file[shared] == pytest.approx(Path(shared).stat().st_size, abs=len(cat))
    else:  # one file per episode: the whole file
        assert all(n == Path(f).stat().st_size for f, n in by_file.items())
