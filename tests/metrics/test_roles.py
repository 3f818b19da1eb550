"""Roles: format defaults, overrides in YAML and Python, errors, null with a reason, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

import workbench as wb
from workbench.cli import cli
from workbench.metrics.roles import (
    DEFAULTS,
    ROLES,
    MissingInput,
    RoleConfig,
    configured_roles,
    resolve,
    resolve_all,
    role_signal,
    use_roles,
)
from workbench.model import ConfigError

NS = 1_000_000_000


def _run(reader: str = "mcap", *, source: str = "/logs/lab/run.mcap", **streams: xr.Dataset) -> wb.Run:
    prov = wb.Provenance(reader=reader, sources=[wb.SourceFile(path=source, size=1, sha256="0" * 64)])
    return wb.Run(info=wb.RunInfo(run_id="role-test", name="role-test", provenance=prov, start_ns=0, end_ns=10 * NS),
                  streams=streams)


def _joints(n: int = 200, names: tuple[str, ...] = ("j1", "j2", "gripper.pos"), var: str = "state") -> xr.Dataset:
    t = np.arange(n, dtype=np.int64) * 10_000_000
    v = np.stack([np.sin(np.arange(n) / (10 + k)) for k in range(len(names))], axis=1)
    return xr.Dataset({var: (("time", "joint"), v)}, coords={"time": t, "joint": list(names)})


def test_every_default_names_a_known_role():
    assert set(DEFAULTS) <= set(ROLES)
    for role, cands in DEFAULTS.items():
        assert cands, role
        assert all(c.variable or c.variables for c in cands), role


def test_lerobot_defaults_split_the_gripper_from_the_joints():
    run = _run("lerobot", **{"observation.state": _joints(), "action": _joints(var="action")})
    q = resolve(run, "joint_position")
    assert q.names == ("j1", "j2") and q.columns == (0, 1) and "without the gripper" in q.why
    g = resolve(run, "gripper")
    assert g.names == ("gripper.pos",) and g.columns == (2,)
    c = resolve(run, "joint_command")
    assert c.stream == "action" and c.names == ("j1", "j2")
    _, v = role_signal(run, "joint_position").values()
    assert v.shape == (200, 2) and np.array_equal(v, run.streams["observation.state"]["state"].values[:, :2])
    # a ROS-named stream is not read as LeRobot's (defaults are per reader)
    with pytest.raises(MissingInput, match=r"no joint_position \(looked for joint_states/position\)"):
        resolve(_run("mcap", **{"observation.state": _joints()}), "joint_position")


def test_vehicle_defaults_convert_units_and_quaternions():
    t = np.arange(50, dtype=np.int64) * 20_000_000
    roll = np.linspace(-0.5, 0.5, 50)
    half = roll / 2
    q = np.stack([np.sin(half), np.zeros(50), np.zeros(50), np.cos(half)], axis=1)  # x, y, z, w
    ulog = _run("ulog", vehicle_attitude=xr.Dataset({"q": (("time", "quat"), q)}, coords={"time": t, "quat": list("xyzw")}))
    _, rpy = role_signal(ulog, "attitude").values()
    assert np.allclose(rpy[:, 0], roll) and np.allclose(rpy[:, 1:], 0)
    att = xr.Dataset({k: ("time", np.degrees(roll) * (k == "Roll")) for k in ("Roll", "Pitch", "Yaw")}, coords={"time": t})
    df = _run("dataflash", ATT=att)
    b = resolve(df, "attitude")
    assert b.describe() == "ATT/{Roll, Pitch, Yaw}" and b.names == ("roll", "pitch", "yaw")
    assert np.allclose(role_signal(df, "attitude").values()[1][:, 0], roll)  # degrees → rad
    hb = xr.Dataset({"base_mode": ("time", np.array([0, 129, 129, 1] * 5))}, coords={"time": t[:20]})
    armed = role_signal(_run("tlog", HEARTBEAT=hb), "armed").values()[1][:, 0]
    assert armed.tolist() == [0.0, 1.0, 1.0, 0.0] * 5  # base_mode bit 7


def test_yaml_override_changes_which_stream_is_read(tmp_path):
    run = _run("mcap", joint_states=xr.Dataset({"position": (("time", "joint"), np.zeros((10, 2)))},
                                               coords={"time": np.arange(10) * NS // 10, "joint": ["a", "b"]}),
               arm=_joints(10, ("a", "b"), var="q"))
    assert resolve(run, "joint_position").stream == "joint_states"
    cfg_file = tmp_path / "workbench.yaml"
    cfg_file.write_text(yaml.safe_dump({"roles": {"joint_position": [
        {"when": {"source": "*/other/*"}, "stream": "nowhere", "variable": "x"},  # not this run
        {"when": {"source": "*/lab/*"}, "stream": "arm", "variable": "q", "joint": ["a"]},
    ]}}))
    cfg = configured_roles(None, cfg_file)
    b = resolve(run, "joint_position", cfg)
    assert (b.stream, b.names, b.why) == ("arm", ("a",), f"{cfg_file}: roles.joint_position")
    assert RoleConfig.from_dict(cfg.to_dict(), origin=str(cfg_file)) == cfg
    # the same override from Python changes what a metric computes
    base = wb.metrics.compute([run], ["path_length"])["joint_path_length"][0]
    with use_roles(cfg.to_dict()):
        moved = wb.metrics.compute([run], ["path_length"])["joint_path_length"][0]
    q = run.streams["arm"]["q"].values[:, 0]
    assert base == 0.0 and moved == pytest.approx(np.abs(np.diff(q)).sum())
    assert wb.metrics.compute([run], ["path_length"], roles=cfg_file)["joint_path_length"][0] == pytest.approx(moved)


@pytest.mark.parametrize(("block", "message"), [
    ({"stream": "imu", "variable": "x"}, r"role 'joint_position' on run role-test: no stream 'imu'; streams: action, observation.state"),
    ({"stream": "action", "variable": "q"}, r"stream 'action' has no variable 'q'; variables: action"),
    ({"stream": "action", "variable": "action", "axis": "x"}, r"has no dimension 'axis'; dimensions: joint"),
    ({"stream": "action", "variable": "action", "joint": "elbow"}, r"no joint elbow in action/action; joint labels: j1, j2, gripper.pos"),
    ({"stream": "action", "variable": "action", "form": "quat"}, r"is no quaternion \(4 components\)"),
])
def test_an_override_that_does_not_fit_names_the_role_the_run_and_the_choices(block, message):
    run = _run("lerobot", **{"observation.state": _joints(), "action": _joints(var="action")})
    cfg = RoleConfig.from_dict({"joint_position": block})
    with pytest.raises(ConfigError, match=message):
        resolve(run, "joint_position", cfg)
    # a metric on that run records the error for that run only
    row = wb.metrics.compute_run(run, ["jerk", "gripper_cycles"], roles=cfg)
    assert row["jerk_rms"] is None and "ConfigError" in row["jerk.error"]
    assert row["gripper_cycles"] is not None


@pytest.mark.parametrize(("data", "message"), [
    ({"joint_position": "joint_states"}, r"a role is \{stream, variable, …\}"),
    ({"joint_position": {"variable": "q"}}, r"'stream' \(a stream name\) is required"),
    ({"attitude": {"stream": "ATT", "variables": "Roll"}}, r"'variables' is a list of names"),
    ({"attitude": {"stream": "ATT", "scale": "deg"}}, r"'scale' is a number"),
    ({"attitude": {"stream": "ATT", "form": "euler"}}, r"'form' is 'quat'"),
    ({"attitude": {"stream": "ATT", "when": {"colour": "red"}}}, r"key 'colour' is not valid"),
    ({"attitude": {"stream": "ATT", "variable": "q", "variables": ["a"]}}, r"not both"),
])
def test_bad_roles_yaml_is_refused_with_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        RoleConfig.from_dict(data)


def test_missing_inputs_give_null_with_the_reason_never_zero():
    run = _run("mcap", cmd_vel=xr.Dataset({"linear": (("time", "axis"), np.zeros((5, 3)))},
                                          coords={"time": np.arange(5) * NS, "axis": list("xyz")}))
    row = wb.metrics.compute_run(run)
    for col in ("jerk_rms", "tracking_error_rms", "peak_force", "recoveries", "slips", "effort_rms",
                "attitude_error_rms_roll", "battery_used", "success"):
        assert row[col] is None, col
    assert row["jerk.why"] == "no joint_position (looked for joint_states/position)"
    assert row["peak_force.why"] == "no wrench (looked for ft_sensor/force)"
    assert row["recoveries.why"].startswith("no slip/drop/recovery reported")
    assert row["battery.why"] == "no battery_voltage: no default for mcap runs; map it under roles: in workbench.yaml"
    assert row["success.why"].startswith("no outcome")
    found = resolve_all(run)
    assert found["base_velocity"].describe() == "cmd_vel/linear" and isinstance(found["attitude"], MissingInput)


def test_roles_command_shows_what_resolved_and_why(tmp_path, samples_dir):
    store = wb.open_store(tmp_path / "store")
    mcap = min((samples_dir / "campaign").glob("arm-a_bright_*_s00.mcap"))
    (rid,) = store.ingest([mcap]).ingested
    res = CliRunner().invoke(cli, ["roles", rid, "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines()[1:]}
    assert "joint_states/position" in lines["joint_position"] and "default (ROS topics)" in lines["joint_position"]
    assert "jerk" in lines["joint_position"] and "ft_sensor/force" in lines["wrench"]
    assert "attitude" not in lines
    res = CliRunner().invoke(cli, ["roles", rid, "--store", str(tmp_path / "store"), "--all", "--json"])
    rows = {r["role"]: r for r in __import__("json").loads(res.output)[0]["roles"]}
    assert rows["attitude"]["found"] is False and rows["attitude"]["why"].startswith("no attitude")
    bad = tmp_path / "roles.yaml"
    bad.write_text("roles:\n  wrench: {stream: nowhere, variable: f}\n")
    res = CliRunner().invoke(cli, ["roles", rid, "--store", str(tmp_path / "store"), "--roles", str(bad)])
    assert res.exit_code == 1 and "role 'wrench' on run" in res.output and "no stream 'nowhere'" in res.output


def test_compute_missing_redoes_nulls_once_roles_are_mapped(tmp_path):
    import polars as pl

    csv = tmp_path / "arm.csv"
    t = np.arange(300) * 0.01
    pl.DataFrame({"time": t, "q1": np.sin(t), "q2": np.cos(2 * t)}).write_csv(csv)
    store = wb.open_store(tmp_path / "store")
    (rid,) = store.ingest([csv]).ingested
    wb.metrics.compute(store, ["jerk"])
    row = store.runs().row(0, named=True)
    assert row["metrics.jerk_rms"] is None and row["metrics.jerk.why"].startswith("no joint_position")
    assert wb.metrics.compute_missing(store, ["jerk"]) == {}  # nothing changed: nothing to redo
    stream = next(iter(store.manifest(rid)["streams"]))
    (tmp_path / "store" / "workbench.yaml").write_text(
        yaml.safe_dump({"roles": {"joint_position": {"stream": stream, "variables": ["q1", "q2"]}}}))
    assert wb.metrics.compute_missing(store, ["jerk"]) == {"jerk": [rid]}
    row = store.runs().row(0, named=True)
    assert row["metrics.jerk_rms"] > 0 and row.get("metrics.jerk.why") is None
    assert wb.metrics.compute_missing(store, ["jerk"]) == {}
