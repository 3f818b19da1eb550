"""Rules, defaults and labels applied to real stored runs (the public logs in ../shared/data/real)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.events import RuleSet
from workbench.events.apply import apply_rules, label, label_from_file
from workbench.model import ConfigError, StoreError

SO101_RULES = """
events:
  - name: grasp
    signal: {stream: action, variable: action, joint: gripper.pos}
    below: 10
    release: 20
    min_duration: 0.5
  - name: open
    signal: {stream: action, variable: action, joint: gripper.pos}
    above: 25
    release: 20
    min_duration: 0.3
  - {name: placed, first: grasp, then: open, within: 15}
outcome:
  success: {event: placed}
"""


def _gripper_reference(run: wb.Run) -> list[int]:
    """Grasp starts computed by hand from the stored action (the rule's semantics)."""
    ds = run.streams["action"]
    labels = [str(v) for v in ds["joint"].values]
    x = ds["action"].values[:, labels.index("gripper.pos")].astype(float)
    t = ds["time"].values.astype(np.int64)
    out, on, start = [], False, 0
    for ti, xi in zip(t, x, strict=True):
        if not on and xi < 10:
            on, start = True, int(ti)
        elif on and xi > 20:
            on = False
            if ti - start >= 0.5e9:
                out.append(start)
    if on and t[-1] - start >= 0.5e9:
        out.append(start)
    return out


@pytest.fixture
def so101_store(tmp_path, real_data):
    store = wb.open_store(tmp_path / "store")
    report = store.ingest([real_data / "lerobot" / "v30_so101_record_test"])
    assert len(report.ingested) == 4
    return store


def test_gripper_rules_on_so101_give_events_outcomes_and_keep_run_ids(so101_store, tmp_path):
    store = so101_store
    ids_before = sorted(store.run_ids())
    assert store.runs()["outcome"].null_count() == 4  # nothing decides an outcome by default
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(SO101_RULES)
    report = apply_rules(store, rules_file)
    assert sorted(store.run_ids()) == ids_before
    cat = store.runs()
    for rid in ids_before:
        run = store.load(rid, lazy=False)
        grasps = run.events.filter(pl.col("kind") == "grasp")
        assert grasps["time"].to_list() == _gripper_reference(run)
        assert set(grasps["origin"].to_list()) <= {"rule:grasp"}
        row = cat.filter(pl.col("run_id") == rid).row(0, named=True)
        placed = run.events.filter(pl.col("kind") == "placed")
        assert row["outcome"] == ("success" if placed.height else None)
        assert row["outcome.source"] == ("rule:outcome" if placed.height else None)
        assert row["events.rules"] == report.rules
    assert report.counts["grasp"] == sum(len(_gripper_reference(store.load(r, lazy=False))) for r in ids_before) > 0
    assert store.get_rules(report.rules) is not None and "gripper.pos" in store.get_rules(report.rules)
    # re-applying the same rules changes nothing
    again = apply_rules(store, rules_file)
    assert again.added == {} and again.removed == {} and again.outcome_changed == {}
    assert store.runs().drop("events.applied_at").equals(cat.drop("events.applied_at"))
    # changed rules replace only derived events, and say what changed
    rules_file.write_text(SO101_RULES.replace("within: 15", "within: 0.5"))
    changed = apply_rules(store, rules_file)
    assert changed.removed.get("placed", 0) > 0 and changed.outcome_changed
    assert all(b is None for _a, b in changed.outcome_changed.values())
    # the metrics see the outcome
    wb.metrics.compute(store, metrics=["success"])
    assert store.runs()["metrics.success"].null_count() == store.runs()["outcome"].null_count()


def test_labels_beat_rules_and_survive_apply_and_rebuild(so101_store, tmp_path, monkeypatch):
    store = so101_store
    apply_rules(store, RuleSet.from_yaml(SO101_RULES))
    cat = store.runs()
    rid = cat.filter(pl.col("outcome") == "success")["run_id"][0]
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    label(store, [rid], "failure", reason="cube fell out of the box", at=5.0)
    row = store.runs().filter(pl.col("run_id") == rid).row(0, named=True)
    assert row["outcome"] == "failure" and row["outcome.source"] == "label"
    assert row["labels.by"] == "ana" and row["labels.reason"] == "cube fell out of the box"
    run = store.load(rid, streams=[])
    lab = run.events.filter(pl.col("origin") == "label")
    assert lab["kind"].to_list() == ["failure"] and lab["time"][0] == run.info.start_ns + 5_000_000_000
    assert run.outcome == "failure"
    apply_rules(store, RuleSet.from_yaml(SO101_RULES))
    store.rebuild_catalog()
    assert store.runs().filter(pl.col("run_id") == rid)["outcome"][0] == "failure"
    # an explicit unknown label overrides the rule's success too
    other = cat.filter(pl.col("outcome") == "success")["run_id"][-1]
    label(store, [other], "unknown")
    assert store.runs().filter(pl.col("run_id") == other)["outcome"][0] is None
    with pytest.raises(ConfigError, match="choose one of success, failure, unknown"):
        label(store, [rid], "meh")
    with pytest.raises(StoreError, match=r"unknown run id\(s\) or name\(s\) \['nope'\]"):
        label(store, ["nope"], "success")
    with pytest.raises(ConfigError, match="outside run"):
        label(store, [rid], "success", at=1e6)


def test_label_file_is_refused_whole_on_a_bad_row(so101_store, tmp_path):
    store = so101_store
    ids = sorted(store.run_ids())
    bad = tmp_path / "labels.csv"
    bad.write_text(f"run_id,outcome,reason\n{ids[0]},success,ok\nffff000011112222,failure,x\n{ids[0]},failure,dup\n{ids[1]},great,\n")
    before = store.runs()
    with pytest.raises(ConfigError) as err:
        label_from_file(store, bad)
    text = str(err.value)
    assert "nothing was labelled" in text and "row 3: unknown run id 'ffff000011112222'" in text
    assert "row 4: run" in text and "labelled twice (also row 2)" in text and "row 5: outcome 'great'" in text
    assert store.runs().equals(before)
    # keyed by source file + episode
    good = tmp_path / "by_episode.csv"
    good.write_text("source,episode,outcome,reason\nv30_so101_record_test,0,success,placed\nv30_so101_record_test,3,failure,missed\n")
    assert "scenario.episode" in store.runs().columns  # every LeRobot run carries its episode index
    done = label_from_file(store, good)
    cat = store.runs().filter(pl.col("run_id").is_in(done)).sort("scenario.episode")
    assert cat["scenario.episode"].to_list() == [0, 3] and cat["outcome"].to_list() == ["success", "failure"]


def test_cli_label_and_events_apply(so101_store, tmp_path):
    store = so101_store
    rules = tmp_path / "rules.yaml"
    rules.write_text(SO101_RULES)
    res = CliRunner().invoke(cli, ["events", "apply", "--store", store.url, "--rules", str(rules)])
    assert res.exit_code == 0, res.output
    assert "applied rules" in res.output and "grasp:" in res.output and "outcome changed in" in res.output
    rid = min(store.run_ids())
    res = CliRunner().invoke(cli, ["events", "show", rid, "--store", store.url, "--origin", "rule:"])
    assert res.exit_code == 0 and "rule:grasp" in res.output and "outcome:" in res.output
    res = CliRunner().invoke(cli, ["label", rid, "--outcome", "failure", "--reason", "dropped", "--store", store.url])
    assert res.exit_code == 0 and "labelled 1 run(s); their outcomes: failure 1" in res.output
    res = CliRunner().invoke(cli, ["label", rid, "--store", store.url])
    assert res.exit_code != 0 and "give RUN… and --outcome" in res.output



def test_marked_windows_are_events_that_survive_apply_and_rebuild(so101_store, monkeypatch):
    store = so101_store
    rid = min(store.run_ids())
    info = store.info(rid)
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    m = store.mark(rid, "slip", 1.25, 2.0, note="cube slid")
    assert (m["start_ns"] - info.start_ns, m["end_ns"] - info.start_ns) == (1_250_000_000, 2_000_000_000)
    assert m["by"] == "ana" and m["note"] == "cube slid"
    store.mark(rid, "collision", 0.5, 0.75)
    assert store.runs().filter(pl.col("run_id") == rid)["marks.n"].to_list() == [2]

    def marks() -> list[tuple[str, int, float, str | None]]:
        ev = store.load(rid, streams=[]).events.filter(pl.col("origin") == "label")
        out = []
        for kind, t, d in ev.select("kind", "time", "detail").iter_rows():
            detail = json.loads(d)
            out.append((kind, t - info.start_ns, detail["duration_s"], detail.get("note")))
        return out

    expected = [("collision", 500_000_000, 0.25, None), ("slip", 1_250_000_000, 0.75, "cube slid")]
    assert marks() == expected  # in time order, among the run's events
    apply_rules(store, RuleSet.from_yaml(SO101_RULES))  # rules replace derived events, never marks
    store.rebuild_catalog()
    assert marks() == expected and store.runs().filter(pl.col("run_id") == rid)["marks.n"].to_list() == [2]
    before = store.annotations(rid)["marks"]
    for kind, a, b, match in [("Slip!", 1, 2, "lowercase letters"), ("failure", 1, 2, "label outcomes"),
                              ("slip", 2, 1, "start before end"), ("slip", -1, 1, "not a window inside run"),
                              ("slip", 0, info.duration_s + 5, "not a window inside run"),
                              ("slip", float("nan"), 1, "not a window")]:
        with pytest.raises(ConfigError, match=match):
            store.mark(rid, kind, a, b)
    with pytest.raises(StoreError, match=r"unknown run id\(s\) or name\(s\) \['nope'\]"):
        store.mark("nope", "slip", 1, 2)
    assert store.annotations(rid)["marks"] == before  # a refused mark changes nothing
    res = CliRunner().invoke(cli, ["mark", rid, "--store", store.url, "--kind", "slip", "--from", "3", "--to", "3.5",
                                   "--note", "again"])
    assert res.exit_code == 0, res.output
    assert "marked slip from 3 s to 3.5 s by ana (3 mark(s) on this run)" in res.output
    res = CliRunner().invoke(cli, ["mark", rid, "--store", store.url, "--kind", "success", "--from", "3", "--to", "4"])
    assert res.exit_code != 0 and "label outcomes" in res.output
    assert store.runs().filter(pl.col("run_id") == rid)["marks.n"].to_list() == [3]

def test_bad_rules_change_nothing_and_name_the_choices(so101_store, tmp_path):
    store = so101_store
    before = store.runs()
    tables = {r: store.get_table(r, "derived_events") for r in store.run_ids()}
    cases = [
        ("events: [{name: g, signal: {stream: action, variable: act}, above: 1}]",
         r"rule 'g': .*stream 'action' has no variable 'act'; variables: action"),
        ("events: [{name: g, signal: {stream: action, variable: action, joint: claw}, above: 1}]",
         r"rule 'g': .*no joint 'claw' in action/action; joint labels: shoulder_pan.pos, .*gripper.pos"),
        ("events: [{name: g, signal: {stream: action, variable: action, arm: x}, above: 1}]",
         r"rule 'g': .*has no dimension 'arm'; dimensions: joint"),
        ("events: [{name: g, signal: {stream: action, variable: action}, above: 1}]",
         r"rule 'g': .*has 6 components; select one \(joint: LABEL\) or use \{norm"),
        ("events: [{name: g, signal: {stream: gripper_cmd}, above: 1}]",
         r"rule 'g': stream 'gripper_cmd' absent in every run \(4\); streams of run .*: action, frame, observation.state"),
    ]
    for text, message in cases:
        with pytest.raises(ConfigError, match=message):
            apply_rules(store, RuleSet.from_yaml(text))
        assert store.runs().equals(before)
        assert all(store.get_table(r, "derived_events").equals(tables[r]) for r in store.run_ids())


def _lerobot_with_outcomes(src: Path, dst: Path) -> Path:
    """A copy of the SO-101 dataset with LeRobot's next.success / next.done / next.reward columns."""
    shutil.copytree(src, dst)
    data = dst / "data" / "chunk-000" / "file-000.parquet"
    df = pl.read_parquet(data)
    last = pl.col("frame_index") == pl.col("frame_index").max().over("episode_index")
    near_end = pl.col("frame_index") >= pl.col("frame_index").max().over("episode_index") - 10
    succeeded = pl.col("episode_index").is_in([0, 2])
    df = df.with_columns(
        (near_end & succeeded).alias("next.success"),
        last.alias("next.done"),
        pl.when(near_end & succeeded).then(1.0).otherwise(0.0).cast(pl.Float32).alias("next.reward"),
    )
    df.write_parquet(data)
    info = json.loads((dst / "meta" / "info.json").read_text())
    info["features"]["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    info["features"]["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    info["features"]["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    (dst / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return dst


def test_lerobot_next_success_gives_outcomes_by_default(tmp_path, real_data):
    ds = _lerobot_with_outcomes(real_data / "lerobot" / "v30_so101_record_test", tmp_path / "so101_outcomes")
    store = wb.open_store(tmp_path / "store")
    report = store.ingest([ds])
    assert len(report.ingested) == 4 and report.events_error is None
    cat = store.runs().sort("name")
    assert cat["outcome"].to_list() == ["success", "failure", "success", "failure"]
    assert set(cat["outcome.source"].to_list()) == {"default:lerobot.outcome"}
    assert report.events.counts["done"] == 4
    for rid in cat["run_id"]:
        done = store.load(rid, streams=[]).events.filter(pl.col("kind") == "done")
        assert done.height == 1 and done["origin"][0] == "default:lerobot.done"
    # the defaults can be switched off: outcomes go back to unknown
    apply_rules(store, RuleSet.from_yaml("defaults: false"))
    assert store.runs()["outcome"].null_count() == 4


def test_robosuite_reward_based_success(tmp_path, real_data):
    import h5py

    src = real_data / "hdf5" / "robosuite_v1_wipe_panda" / "demo.hdf5"
    dst = tmp_path / "demo.hdf5"
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        demos = sorted(f["data"].keys())
        for i, name in enumerate(demos):
            n = f["data"][name]["states"].shape[0]
            rewards = np.zeros(n)
            if i % 2 == 0:
                rewards[-5:] = 1.0
            f["data"][name].create_dataset("rewards", data=rewards)
            f["data"][name].create_dataset("dones", data=(np.arange(n) == n - 1).astype(np.int64))
    store = wb.open_store(tmp_path / "store")
    store.ingest([dst])
    cat = store.runs().sort("name")
    assert cat.height == len(demos)
    assert cat["outcome"].to_list() == ["success" if i % 2 == 0 else "failure" for i in range(len(demos))]


def test_px4_arming_and_landing_events_by_default(tmp_path, real_data):
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "ulog" / "foxglove_mcap" / "test_ulog.ulg"])
    rid = store.run_ids()[0]
    run = store.load(rid, lazy=False)
    arming = run.events.filter(pl.col("kind") == "arming")
    status = run.streams["vehicle_status"]
    a = status["arming_state"].values.astype(float)
    want = [int(t) for t, x0, x1 in zip(status["time"].values[1:], a[:-1], a[1:], strict=True) if x0 != x1]
    assert arming["time"].to_list() == want and len(want) >= 1
    assert json.loads(arming["detail"][-1])["to"] == "disarmed"
    assert set(arming["origin"]) == {"default:ulog.arming"}
    landed = run.events.filter(pl.col("kind").is_in(["landed", "takeoff"]))
    lv = run.streams["vehicle_land_detected"]["landed"].values.astype(float)
    assert landed.height == int((np.diff(lv) != 0).sum())
    assert store.runs()["outcome"][0] is None  # a default never invents an outcome


def test_tlog_heartbeat_arming_from_base_mode(tmp_path, real_data):
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "mavlink_tlog" / "ardusub_log_tools" / "small.tlog"])
    run = store.load(store.run_ids()[0], lazy=False)
    hb = run.streams["HEARTBEAT"]
    armed = (hb["base_mode"].values.astype(np.int64) >> 7) & 1
    want = int((np.diff(armed) != 0).sum())
    arming = run.events.filter(pl.col("kind") == "arming")
    assert arming.height == want
    for d in arming["detail"]:
        assert json.loads(d)["to"] in {"armed", "disarmed"}


def test_user_regex_rule_over_px4_log_messages(tmp_path, real_data):
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "ulog" / "foxglove_mcap" / "test_ulog.ulg"])
    rid = store.run_ids()[0]
    logs = store.load(rid, streams=[]).events.filter((pl.col("kind") == "log") & (pl.col("origin") == "log"))
    messages = [json.loads(d)["message"] for d in logs["detail"]]
    import re

    want = [m for m in messages if re.search(r"^\[(?P<module>\w+)\]", m)]
    report = apply_rules(store, RuleSet.from_yaml("events: [{name: said, match: '^\\[(?P<module>\\w+)\\]', level: INFO}]"))
    said = store.load(rid, streams=[]).events.filter(pl.col("kind") == "said")
    assert said.height == len(want) == report.counts["said"] > 0
    assert [json.loads(d)["text"] for d in said["detail"]] == want
    assert json.loads(said["detail"][0])["module"] == re.match(r"^\[(\w+)\]", want[0]).group(1)
    none = apply_rules(store, RuleSet.from_yaml("events: [{name: said, match: '^\\[(?P<module>\\w+)\\]', level: ERROR}]"))
    assert none.counts["said"] == 0 and none.removed["said"] == len(want)


def test_unitree_hand_rules_on_the_g1_dataset(tmp_path, real_data):
    """The second real LeRobot dataset (v2.1, Unitree G1 with Inspire hands): a hand-closing rule."""
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "lerobot" / "v21_unitree_g1_inspire"])
    rules = RuleSet.from_yaml("""
events:
  - name: close_right
    signal: {stream: action, variable: action, joint: kRightHandIndex}
    below: 0.5
    release: 0.6
    min_duration: 0.2
outcome:
  success: {event: close_right}
""")
    report = apply_rules(store, rules)
    assert len(report.runs) == 10 and "close_right" not in report.missing
    for rid in store.run_ids():
        run = store.load(rid, lazy=False)
        ds = run.streams["action"]
        x = ds["action"].values[:, [str(v) for v in ds["joint"].values].index("kRightHandIndex")].astype(float)
        closes = run.events.filter(pl.col("kind") == "close_right")
        # every event starts at a sample below 0.5, and the run's outcome says whether there was one
        idx = np.searchsorted(ds["time"].values.astype(np.int64), closes["time"].to_numpy())
        assert (x[idx] < 0.5).all()
        assert store.current_outcome(rid) == ("success" if closes.height else None)
    assert sum(report.outcomes.values()) == 10


def test_workbench_yaml_rules_apply_right_after_ingest(tmp_path, real_data, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "workbench.yaml").write_text(SO101_RULES)
    monkeypatch.chdir(project)
    store = wb.open_store(project / "store")
    report = store.ingest([real_data / "lerobot" / "v30_so101_record_test"])
    assert report.events is not None and report.events.rules and report.events.counts["grasp"] > 0
    assert store.runs()["outcome.source"].drop_nulls().to_list() == ["rule:outcome"] * store.runs()["outcome"].drop_nulls().len()
    res = CliRunner().invoke(cli, ["ingest", str(real_data / "ulog" / "pyulog" / "sample_log_small.ulg"), "--store", str(project / "store")])
    assert res.exit_code == 0 and "events:" in res.output
    assert "rules not applicable to these runs (a stream they read is absent): grasp, open" in res.output
    # a rule that cannot be evaluated keeps the runs ingested and says so
    (project / "workbench.yaml").write_text("events: [{name: g, signal: {stream: action, variable: nope}, above: 1}]")
    other = wb.open_store(project / "store2")
    rep = other.ingest([real_data / "lerobot" / "v30_so101_record_test"])
    assert len(rep.ingested) == 4 and rep.events is None and "has no variable 'nope'" in (rep.events_error or "")
    res = CliRunner().invoke(cli, ["ingest", str(real_data / "lerobot" / "v21_unitree_g1_inspire"), "--store", str(project / "store3")])
    assert res.exit_code == 0, res.output
    assert "rules not applied" in res.output and "workbench events apply" in res.output


def test_apply_on_a_local_dask_cluster_equals_serial(so101_store):
    import distributed

    store = so101_store
    rules = RuleSet.from_yaml(SO101_RULES)
    apply_rules(store, rules, scheduler="sync")
    serial = {r: store.get_table(r, "derived_events") for r in store.run_ids()}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        report = apply_rules(store, rules.merged(RuleSet()), scheduler=client)
    assert report.added == {} and report.removed == {}
    assert all(store.get_table(r, "derived_events").equals(serial[r]) for r in store.run_ids())


def test_when_limits_rules_to_the_runs_they_are_for(tmp_path, real_data):
    """One rules file for a store holding two robots with different joint names."""
    store = wb.open_store(tmp_path / "store")
    store.ingest([real_data / "lerobot" / "v30_so101_record_test", real_data / "lerobot" / "v21_unitree_g1_inspire"])
    both = SO101_RULES.replace("  - name: grasp\n", "  - name: grasp\n    when: {hardware.robot: so101_follower}\n").replace(
        "  - name: open\n", "  - name: open\n    when: {hardware.robot: so101_follower}\n")
    with pytest.raises(ConfigError, match=r"no joint 'gripper.pos'"):
        apply_rules(store, RuleSet.from_yaml(SO101_RULES))
    events, outcome = both.split("outcome:")
    rules = RuleSet.from_yaml(events + """
  - name: close_right
    when: {hardware.robot: [Unitree_G1_Inspire, unitree_g1]}
    signal: {stream: action, variable: action, joint: kRightHandIndex}
    below: 0.5
outcome:""" + outcome)
    assert rules.rule("close_right").when == (("hardware.robot", ("Unitree_G1_Inspire", "unitree_g1")),)
    report = apply_rules(store, rules)
    cat = store.runs()
    so = cat.filter(pl.col("hardware.robot") == "so101_follower")["run_id"].to_list()
    for rid in cat["run_id"]:
        kinds = set(store.load(rid, streams=[]).events["kind"].to_list())
        if rid in so:
            assert "close_right" not in kinds
        else:
            assert "grasp" not in kinds
    assert report.counts["grasp"] > 0 and "close_right" in report.counts
    with pytest.raises(ConfigError, match=r"rule 'x': its when: matches none of the 14 run\(s\)"):
        apply_rules(store, RuleSet.from_yaml("events: [{name: x, when: {reader: ulog}, match: a}]"))
    with pytest.raises(ConfigError, match=r"key 'robot' is not valid"):
        RuleSet.from_yaml("events: [{name: x, when: {robot: a}, match: a}]")


def test_gate_exits_2_when_nothing_is_measured_and_decides_once_outcomes_exist(so101_store):
    store = so101_store
    base = ["compare", "--store", store.url, "--by", "scenario.episode", "--baseline", "0", "--candidate", "1",
            "--metric", "success", "--fail-on-regression"]
    res = CliRunner().invoke(cli, base)
    assert res.exit_code == 2, res.output
    assert "nothing measured: 2 of 2 runs have no outcome" in res.output and "workbench label RUN --outcome" in res.output
    assert "not measured" in res.output
    bad = CliRunner().invoke(cli, [*base[:4], "hardware.nope", *base[5:]])
    assert bad.exit_code == 2 and "no factor column 'hardware.nope'" in bad.output
    cat = store.runs()
    for ep, outcome in ((0, "success"), (1, "failure")):
        label(store, cat.filter(pl.col("scenario.episode") == ep)["run_id"].to_list(), outcome)
    decided = CliRunner().invoke(cli, base)
    assert decided.exit_code == 0, decided.output  # 1 vs 1 run: measured, not a confident regression
    assert "not measured" not in decided.output
