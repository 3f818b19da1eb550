"""Selections and LeRobot v3.0 export: layout, values, provenance, card, and a round trip
through the workbench's own LeRobot reader."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.export_lerobot import export_lerobot
from workbench.model import ConfigError
from workbench.selection import catalog_hash, select

WHERE = "model.version = 'policy-v1' and hardware.robot = 'arm-b' and environment.surface = 'steel'"


@pytest.fixture(scope="module")
def exported(sample_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "ds"
    res = CliRunner().invoke(cli, ["export", "lerobot", "--store", sample_store.url, "--out", str(out), "--where", WHERE,
                                   "--outcome", "success", "--outcome", "failure", "--min-grade", "B", "--fps", "25"])
    assert res.exit_code == 0, res.output
    assert "LeRobot v3.0" in res.output
    return out


def test_selection_keeps_its_query_hash_and_exclusions(sample_store):
    sel = select(sample_store, where=WHERE, outcome="success", min_grade="B")
    cat = sample_store.runs(where=WHERE)
    ok = cat.filter((pl.col("outcome") == "success") & pl.col("quality.grade").is_in(list("AB")))
    assert sorted(sel.run_ids) == sorted(ok["run_id"].to_list())
    assert all(why.startswith(("outcome ", "grade ")) for why in sel.excluded.values())
    assert len(sel.excluded) == cat.height - ok.height
    assert sel.catalog_hash == catalog_hash(sample_store.runs())
    assert sel.query == {"where": WHERE, "min_grade": "B", "outcome": ["success"], "find": None, "window": [0.0, 0.0], "limit": None}
    with pytest.raises(ConfigError, match="outcome 'won' is not valid; use one of"):
        select(sample_store, outcome="won")
    with pytest.raises(ConfigError, match="min_grade 'E' is not valid"):
        select(sample_store, min_grade="E")


def test_lerobot_layout_values_and_provenance(exported, sample_store):
    info = json.loads((exported / "meta" / "info.json").read_text())
    sel = json.loads((exported / "meta" / "workbench_selection.json").read_text())
    ids = sel["run_ids"]
    assert info["codebase_version"] == "v3.0" and info["fps"] == 25 and info["total_episodes"] == len(ids) > 5
    assert info["features"]["observation.state"]["shape"] == [6] and info["features"]["action"]["names"][0] == "joint_1"
    assert info["features"]["observation.images.wrist_camera"]["dtype"] == "video"
    data = pl.read_parquet(exported / "data" / "chunk-000" / "file-000.parquet")
    assert data.height == info["total_frames"]
    assert data["index"].to_list() == list(range(data.height))  # one index over the episodes
    eps = pl.read_parquet(exported / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert eps["dataset_to_index"].to_list()[-1] == data.height
    assert (eps["dataset_to_index"] - eps["dataset_from_index"] == eps["length"]).all()
    assert eps["dataset_from_index"].to_list()[1:] == eps["dataset_to_index"].to_list()[:-1]
    # next.done closes every episode once; next.success only in successful runs, from the success on
    prov = pl.read_parquet(exported / "meta" / "workbench_episodes.parquet")
    per = data.group_by("episode_index", maintain_order=True).agg(pl.col("next.done").sum(), pl.col("next.success").any(),
                                                                   pl.col("next.done").last().alias("last_done"))
    assert (per["next.done"] == 1).all() and per["last_done"].all()
    assert per["next.success"].to_list() == [o == "success" for o in prov["outcome"].to_list()]
    assert set(prov["outcome"]) == {"success", "failure"}
    # the state is the run's joint positions on the 25 Hz frame clock
    first = prov.row(0, named=True)
    run = sample_store.load(first["run_id"], lazy=False)
    js = run.streams["joint_states"]
    t = js["time"].values.astype(np.int64)
    want = js["position"].values[np.searchsorted(t, t[0] + 40_000_000 * 3) - 0]
    got = data.filter((pl.col("episode_index") == 0) & (pl.col("frame_index") == 3))["observation.state"].to_list()[0]
    k = int(np.argmin(np.abs(t - (run.info.start_ns + 3 * 40_000_000))))
    np.testing.assert_allclose(got, js["position"].values[k], rtol=1e-6)
    assert want.shape == (6,)
    info_run = sample_store.info(first["run_id"])
    assert first["source_sha256"] == info_run.provenance.sources[0].sha256 and first["grade"] in ("A", "B")
    assert json.loads(first["factors"])["model.version"] == "policy-v1"
    # one video: every frame of every episode
    import av

    with av.open(str(exported / "videos" / "observation.images.wrist_camera" / "chunk-000" / "file-000.mp4")) as c:
        assert c.streams.video[0].frames == data.height
    stats = json.loads((exported / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(stats["observation.state"]["mean"], np.stack(data["observation.state"].to_numpy()).mean(axis=0), rtol=1e-5)
    card = (exported / "README.md").read_text()
    assert f"{len(ids)} episode(s)" in card and sel["catalog_hash"] in card
    assert ("## Left out" in card and "grade D below B" in card) or "Nothing: every selected run" in card


def test_the_export_reads_back_with_the_lerobot_reader(exported, tmp_path):
    store = wb.open_store(tmp_path / "back")
    rep = store.ingest([exported])
    prov = pl.read_parquet(exported / "meta" / "workbench_episodes.parquet")
    assert len(rep.ingested) == prov.height
    cat = store.runs().sort("scenario.episode")
    assert cat["reader"].unique().to_list() == ["lerobot"]
    # outcomes come back from next.success / next.done by the format defaults
    assert cat["outcome"].to_list() == prov["outcome"].to_list()
    eps = pl.read_parquet(exported / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    data = pl.read_parquet(exported / "data" / "chunk-000" / "file-000.parquet")
    assert cat.height == eps.height
    for row in cat.head(3).iter_rows(named=True):  # values as exported (the resampled source), float32 exact
        ep = int(row["scenario.episode"])
        run = store.load(row["run_id"], lazy=False)
        want = np.stack(data.filter(pl.col("episode_index") == ep)["observation.state"].to_numpy())
        got = run.streams["observation.state"]["state"].values if "state" in run.streams["observation.state"] else \
            next(iter(run.streams["observation.state"].data_vars.values())).values
        assert got.shape == want.shape == (eps["length"][ep], 6)
        np.testing.assert_array_equal(got.astype(np.float32), want)



def test_export_refuses_what_it_cannot_do(sample_store, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep me")
    sel = select(sample_store, where=WHERE, outcome="success")
    with pytest.raises(ConfigError, match="is not empty"):
        export_lerobot(sample_store, sel, full)
    assert (full / "x").read_text() == "keep me"
    with pytest.raises(ConfigError, match="holds no run"):
        export_lerobot(sample_store, select(sample_store, where="scenario.seed = 999"), tmp_path / "none")
    with pytest.raises(ConfigError, match="feature 'gripper' cannot be set"):
        export_lerobot(sample_store, sel, tmp_path / "bad", features={"gripper": "joint_states/position"})
    res = CliRunner().invoke(cli, ["export", "lerobot", "--store", sample_store.url, "--out", str(tmp_path / "o"), "--feature", "nope"])
    assert res.exit_code == 1 and "must look like observation.state=joint_states/position" in res.output


def test_moments_around_each_slip_become_episodes(sample_store, tmp_path):
    sel = select(sample_store, where="environment.surface = 'steel' and hardware.robot = 'arm-a'", find="slip", window=1.0)
    assert sel.windows is not None and sel.windows.height >= 3
    assert ((sel.windows["end"] - sel.windows["start"]) >= 2_000_000_000).all()  # ±1 s around each slip
    rep = export_lerobot(sample_store, sel, tmp_path / "slips", fps=20, video=False)
    assert rep.episodes == sel.windows.height and not rep.videos
    data = pl.read_parquet(tmp_path / "slips" / "data" / "chunk-000" / "file-000.parquet")
    lengths = data.group_by("episode_index").len()["len"]
    assert (lengths >= 40).all() and (lengths <= 41).all()  # 2 s at 20 fps (a window clipped at a run's end is shorter)
    prov = pl.read_parquet(tmp_path / "slips" / "meta" / "workbench_episodes.parquet")
    assert prov["window_start_ns"].to_list() == sel.windows["start"].to_list()
    assert json.loads((tmp_path / "slips" / "meta" / "workbench_selection.json").read_text())["query"]["find"] == "slip"
    with pytest.raises(ConfigError, match="neither a rule"):
        select(sample_store, find="no_such_kind")


def test_moments_out_as_mcap_keep_their_schemas_and_read_back(sample_store, tmp_path):
    from mcap.reader import make_reader

    out = tmp_path / "moments"
    res = CliRunner().invoke(cli, ["export", "mcap", "--store", sample_store.url, "--out", str(out), "--find", "slip",
                                   "--window", "0.5", "--where", "environment.surface = 'steel' and hardware.robot = 'arm-b'"])
    assert res.exit_code == 0, res.output
    sel = select(sample_store, find="slip", window=0.5, where="environment.surface = 'steel' and hardware.robot = 'arm-b'")
    files = sorted(out.glob("*.mcap"))
    assert len(files) == sel.windows.height and "cut from their source MCAP" in res.output
    copied = 0
    meta: dict = {}
    for f in files:
        with open(f, "rb") as fh:
            meta = {m.name: dict(m.metadata) for m in make_reader(fh).iter_metadata()}
        source = sample_store.info(meta["workbench"]["run_id"]).provenance.sources[0].path
        if not source.endswith(".mcap"):  # the ROS 1 bag runs: written from their streams
            continue
        copied += 1
        a, b = int(meta["workbench"]["start_ns"]), int(meta["workbench"]["end_ns"])
        with open(source, "rb") as src:  # the same messages as the source holds in the window
            want = sum(1 for _ in make_reader(src).iter_messages(start_time=a, end_time=b + 1))
        with open(f, "rb") as fh:
            got = [(schema.encoding if schema else "", channel.topic, message.log_time)
                   for schema, channel, message in make_reader(fh).iter_messages()]
        assert len(got) == want and all(a <= t <= b for _e, _t, t in got)
        assert all(enc == "ros2msg" for enc, topic, _t in got if topic != "/events")
    assert copied >= 3
    assert meta["hardware"]["robot"] == "arm-b"  # factors kept
    card = (out / "README.md").read_text()
    assert f"{len(files)} MCAP file(s)" in card and sel.catalog_hash in card
    assert json.loads((out / "selection.json").read_text())["run_ids"] == sel.run_ids
    back = wb.open_store(tmp_path / "back")
    assert len(back.ingest([out]).ingested) == len(files)
    assert set(back.runs()["hardware.robot"]) == {"arm-b"}
    # a ROS 1 bag run is written from its stored streams as JSON, and reads back too
    bag = select(sample_store, where="reader = 'rosbag1'", limit=1)
    from workbench.export_mcap import export_mcap

    rep = export_mcap(sample_store, bag, tmp_path / "bag")
    assert rep.how == ["json"] and rep.messages[0] > 100
    again = wb.open_store(tmp_path / "bag-back")
    (rid,) = again.ingest([rep.files[0]]).ingested
    assert {"joint_states", "joint_commands"} <= set(again.load(rid, lazy=True).streams)
    with pytest.raises(ConfigError, match="is not empty"):
        export_mcap(sample_store, bag, tmp_path / "bag")


def test_the_layout_matches_a_real_lerobot_v3_dataset_key_by_key(exported, real_data):
    real = real_data / "lerobot" / "v30_so101_record_test"
    ours_info = json.loads((exported / "meta" / "info.json").read_text())
    real_info = json.loads((real / "meta" / "info.json").read_text())
    assert set(real_info) <= set(ours_info)
    for key in ("codebase_version", "chunks_size", "data_path", "video_path"):
        assert ours_info[key] == real_info[key], key
    common = set(real_info["features"]) & set(ours_info["features"])
    assert {"action", "observation.state", "timestamp", "frame_index", "episode_index", "index", "task_index"} <= common
    for f in common:
        if real_info["features"][f]["dtype"] == "video":
            assert set(real_info["features"][f]["info"]) == set(ours_info["features"][f]["info"])
            continue
        assert ours_info["features"][f]["dtype"] == real_info["features"][f]["dtype"], f
    # the same files, columns and dtypes where the features coincide
    for rel in ("meta/tasks.parquet", "meta/stats.json", "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"):
        assert (exported / rel).is_file() and (real / rel).is_file(), rel
    ours = pl.read_parquet(exported / "data" / "chunk-000" / "file-000.parquet")
    theirs = pl.read_parquet(real / "data" / "chunk-000" / "file-000.parquet")
    for col in theirs.columns:
        assert ours.schema[col].base_type() == theirs.schema[col].base_type(), col
    assert pl.read_parquet(exported / "meta" / "tasks.parquet").columns == pl.read_parquet(real / "meta" / "tasks.parquet").columns
    ours_ep = pl.read_parquet(exported / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    theirs_ep = pl.read_parquet(real / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    shared = [c for c in theirs_ep.columns if not c.startswith(("videos/observation.images.front", "videos/observation.images.top",
                                                                   "stats/observation.images"))]
    assert set(shared) <= set(ours_ep.columns), sorted(set(shared) - set(ours_ep.columns))
    for col in shared:
        assert ours_ep.schema[col].base_type() == theirs_ep.schema[col].base_type(), col
    real_stats = json.loads((real / "meta" / "stats.json").read_text())
    ours_stats = json.loads((exported / "meta" / "stats.json").read_text())
    assert set(real_stats["action"]) == set(ours_stats["action"])
    # stats.json is the statistics of the data written
    act = np.stack(ours["action"].to_numpy()).astype(np.float64)
    for name, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std)):
        np.testing.assert_allclose(ours_stats["action"][name], fn(act, axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours_stats["action"]["q50"], np.quantile(act, 0.5, axis=0), rtol=1e-6)


def test_a_failed_export_leaves_nothing_and_selections_rerun_alike(sample_store, tmp_path):
    sel = select(sample_store, where=WHERE, outcome="success")
    again = wb.select(sample_store, **{k: v for k, v in sel.query.items() if k in ("where", "min_grade", "outcome")})
    assert again.run_ids == sel.run_ids and again.catalog_hash == sel.catalog_hash
    target = tmp_path / "ds"
    with pytest.raises(ConfigError, match="feature source 'no_such_stream/x' is not in run"):
        export_lerobot(sample_store, sel, target, features={"observation.state": "no_such_stream/x"})
    assert not target.exists() and not list(tmp_path.iterdir())  # no partial dataset, no temporary folder


def test_a_real_lerobot_dataset_round_trips_exactly(real_data, tmp_path):
    """The real SO-101 v3.0 dataset ingested and exported again: every frame, the full
    state (gripper included, which the joint-position role leaves out), bit for bit."""
    src_dir = real_data / "lerobot" / "v30_so101_record_test"
    store = wb.open_store(tmp_path / "store")
    store.ingest([src_dir])
    rep = export_lerobot(store, select(store), tmp_path / "out", video=False)
    src = pl.read_parquet(src_dir / "data" / "chunk-000" / "file-000.parquet")
    out = pl.read_parquet(tmp_path / "out" / "data" / "chunk-000" / "file-000.parquet")
    assert rep.fps == 30 and out.height == src.height == rep.frames
    info = json.loads((tmp_path / "out" / "meta" / "info.json").read_text())
    real_info = json.loads((src_dir / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["names"] == real_info["features"]["observation.state"]["names"]
    prov = pl.read_parquet(tmp_path / "out" / "meta" / "workbench_episodes.parquet")
    cat = store.runs()
    for ep, rid in enumerate(prov["run_id"].to_list()):
        e = int(cat.filter(pl.col("run_id") == rid)["scenario.episode"][0])
        for feature in ("observation.state", "action"):
            want = np.stack(src.filter(pl.col("episode_index") == e)[feature].to_numpy())
            got = np.stack(out.filter(pl.col("episode_index") == ep)[feature].to_numpy())
            np.testing.assert_array_equal(got, want)


def test_runs_of_two_robots_in_one_dataset_are_refused_and_nothing_is_written(real_data, tmp_path):
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "lerobot" / "v30_so101_record_test", real_data / "lerobot" / "v21_unitree_g1_inspire"])
    with pytest.raises(ConfigError, match="one dataset needs one shape; select runs of one robot"):
        export_lerobot(store, select(store), tmp_path / "out", video=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no dataset, no temporary folder
