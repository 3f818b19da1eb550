"""HDF5 reader: real robosuite demo files checked against h5py, synthetic round trips."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from workbench.io.hdf5 import DEFAULT_RATE_HZ, Hdf5Reader
from workbench.model import ReaderError

SAWYER = "hdf5/robosuite_v01_SawyerLift/demo.hdf5"
WIPE = "hdf5/robosuite_v1_wipe_panda/demo.hdf5"


def test_guess_can_open(real_data: Path, tmp_path: Path) -> None:
    reader = Hdf5Reader()
    assert reader.guess_can_open(real_data / SAWYER)
    renamed = tmp_path / "noext"
    renamed.write_bytes((real_data / WIPE).read_bytes())
    assert reader.guess_can_open(renamed)  # by signature
    other = tmp_path / "x.bin"
    other.write_bytes(b"not hdf5 at all")
    assert not reader.guess_can_open(other)
    assert not reader.guess_can_open(tmp_path)


def test_robosuite_v01_sawyer_lift(real_data: Path) -> None:
    path = real_data / SAWYER
    runs = list(Hdf5Reader().read(path))
    assert [r.key for r in runs] == ["demo_1", "demo_2"]
    with h5py.File(path) as f:
        for run in runs:
            g = f["data"][run.key]
            n = g["states"].shape[0]
            assert {k: v.sizes["time"] for k, v in run.streams.items()} == {
                "gripper_actuations": n,
                "joint_velocities": n,
                "right_dpos": n,
                "right_dquat": n,
                "states": n,
            }
            np.testing.assert_array_equal(
                run.streams["states"]["states"].values, g["states"][()]
            )
            np.testing.assert_array_equal(
                run.streams["joint_velocities"]["joint_velocities"].values[123],
                g["joint_velocities"][123],
            )
            assert run.streams["right_dquat"]["right_dquat"].dims == ("time", "quat")
            assert list(run.streams["right_dquat"]["quat"].values) == [
                "x",
                "y",
                "z",
                "w",
            ]
            assert run.streams["joint_velocities"]["joint_velocities"].dims == (
                "time",
                "joint",
            )
            # zero-width datasets hold no values: listed, not silently dropped
            assert sorted(s["topic"] for s in run.skipped) == [
                f"{run.key}/left_dpos",
                f"{run.key}/left_dquat",
            ]
            assert all(s["count"] == n for s in run.skipped)
            # synthetic time at the default rate, flagged
            t = run.streams["states"]["time"].values
            assert t.dtype == np.int64 and t[0] == 0
            assert np.all(np.diff(t) == int(1e9 / DEFAULT_RATE_HZ))
            assert run.extra["clock"] == "synthetic"
            assert run.extra["time"]["synthetic"] is True
            assert run.factors["hardware"]["robot"] == "Sawyer"
            assert run.factors["scenario"]["task"] == "SawyerLift"
            assert run.factors["environment"]["simulator_version"] == "0.1.0"
            assert run.extra["demo_attrs"]["model_file"] == f"model_{run.key[-1]}.xml"
    assert [r.streams["states"].sizes["time"] for r in runs] == [1058, 837]


def test_robosuite_v1_wipe_factors(real_data: Path) -> None:
    path = real_data / WIPE
    (run,) = list(Hdf5Reader().read(path, rate_hz=10.0))
    with h5py.File(path) as f:
        np.testing.assert_array_equal(
            run.streams["actions"]["actions"].values, f["data/demo_1/actions"][()]
        )
        env_info = json.loads(f["data"].attrs["env_info"])
    assert run.factors["hardware"] == {"robot": "Panda", "controller": "OSC_POSE"}
    assert run.factors["scenario"]["task"] == "Wipe"
    assert run.factors["environment"]["simulator"] == "robosuite"
    assert run.extra["env_info"] == env_info
    assert run.streams["actions"].sizes == {"time": 174, "dim_1": 6}
    assert run.streams["joint_torques"]["joint_torques"].dims == ("time", "joint")
    assert run.streams["actions"]["time"].values[-1] == 173 * 100_000_000
    assert run.extra["time"]["rate_source"] == "option rate_hz"


def test_real_demos_get_their_demo_factor(real_data: Path) -> None:
    for rel, demos in ((SAWYER, [1, 2]), (WIPE, [1])):
        runs = list(Hdf5Reader().read(real_data / rel))
        assert [r.factors["scenario"]["demo"] for r in runs] == demos
        with h5py.File(real_data / rel) as f:
            for run in runs:
                # model_file names the demo's MuJoCo XML: kept in extra, never a factor
                assert "model_file" in f["data"][run.key].attrs
                assert "model_file" not in run.factors["scenario"]
                assert set(run.factors["scenario"]) == {"task", "demo"}


def test_demo_attributes_become_factors(tmp_path: Path) -> None:
    path = tmp_path / "attrs.hdf5"
    xml = "<mujoco model='base'>" + "<body/>" * 400 + "</mujoco>"
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env"] = "Lift"
        for i in (3, 10):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = 4
            g.attrs["model_file"] = xml
            g.attrs["operator"] = "ana" if i == 3 else "bo"
            g.attrs["seed"] = np.int64(i * 7)
            g.attrs["success"] = np.bool_(i == 3)
            g.attrs["friction"] = 0.25 * i
            g.attrs["ep_meta"] = json.dumps({"lang": "lift the cube", "layout_id": 2})
            g.attrs["init_qpos"] = np.zeros(7)
            g.attrs["object name"] = b"cube"
            g.create_dataset("actions", data=np.zeros((4, 2)))
        g = data.create_group("demo_extra")
        g.create_dataset("actions", data=np.zeros((4, 2)))
    runs = {r.key: r for r in Hdf5Reader().read(path)}
    assert list(runs) == ["demo_3", "demo_10", "demo_extra"]
    s3 = runs["demo_3"].factors["scenario"]
    assert s3 == {
        "task": "Lift",
        "demo": 3,
        "operator": "ana",
        "seed": 21,
        "success": True,
        "friction": 0.75,
        "object_name": "cube",
    }
    assert type(s3["seed"]) is int and type(s3["success"]) is bool
    s10 = runs["demo_10"].factors["scenario"]
    assert (s10["demo"], s10["operator"], s10["success"]) == (10, "bo", False)
    assert runs["demo_3"].extra["demo_attrs_left_out"] == {
        "ep_meta": "JSON structure, not a scalar",
        "init_qpos": "list, not a scalar",
    }
    assert runs["demo_3"].extra["demo_attrs"]["model_file"] == xml  # kept, not a factor
    assert runs["demo_extra"].factors["scenario"] == {"task": "Lift", "demo": "demo_extra"}


def _write_robomimic(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    env_args = {
        "env_name": "Lift",
        "type": 1,
        "env_kwargs": {
            "robots": ["Panda"],
            "control_freq": 10,
            "controller_configs": {"type": "OSC_POSE"},
        },
    }
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["total"] = 30
        for i, n in ((0, 12), (1, 18)):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = n
            arrays[f"demo_{i}/actions"] = rng.normal(size=(n, 7))
            arrays[f"demo_{i}/obs/robot0_eef_pos"] = rng.normal(size=(n, 3))
            arrays[f"demo_{i}/obs/robot0_eef_quat"] = rng.normal(size=(n, 4))
            arrays[f"demo_{i}/obs/agentview_image"] = rng.integers(
                0, 255, size=(n, 8, 8, 3), dtype=np.uint8
            )
            arrays[f"demo_{i}/rewards"] = np.r_[np.zeros(n - 1), 1.0]
            arrays[f"demo_{i}/dones"] = np.r_[np.zeros(n - 1, dtype=np.int64), 1]
            arrays[f"demo_{i}/next_obs/robot0_eef_pos"] = rng.normal(size=(n, 3))
            for key, value in arrays.items():
                if key.startswith(f"demo_{i}/"):
                    g.create_dataset(key.split("/", 1)[1], data=value)
        mask = f.create_group("mask")
        mask.create_dataset("train", data=np.array([b"demo_0"]))
        mask.create_dataset("valid", data=np.array([b"demo_1"]))
    return arrays


def test_robomimic_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "robomimic.hdf5"
    arrays = _write_robomimic(path)
    runs = list(Hdf5Reader().read(path))
    assert [r.key for r in runs] == ["demo_0", "demo_1"]
    r0, r1 = runs
    assert set(r0.streams) == {
        "actions",
        "obs.robot0_eef_pos",
        "obs.robot0_eef_quat",
        "obs.agentview_image",
        "rewards",
        "dones",
    }
    np.testing.assert_array_equal(
        r1.streams["obs.robot0_eef_pos"]["robot0_eef_pos"].values,
        arrays["demo_1/obs/robot0_eef_pos"],
    )
    assert r1.streams["obs.robot0_eef_pos"]["robot0_eef_pos"].dims == ("time", "axis")
    img = r0.streams["obs.agentview_image"]["agentview_image"]
    assert img.dims == ("time", "y", "x", "channel") and img.dtype == np.uint8
    np.testing.assert_array_equal(img.values, arrays["demo_0/obs/agentview_image"])
    assert np.all(
        np.diff(r1.streams["actions"]["time"].values) == 100_000_000
    )  # control_freq 10
    assert r1.extra["time"]["rate_source"] == "env_args.env_kwargs.control_freq"
    assert r0.factors["hardware"] == {"robot": "Panda", "controller": "OSC_POSE"}
    assert r0.factors["scenario"] == {"task": "Lift", "split": "train", "demo": 0}
    assert r1.factors["scenario"]["split"] == "valid"
    assert r0.skipped == [
        {
            "topic": "demo_0/next_obs/robot0_eef_pos",
            "reason": "next_obs repeats obs shifted by one step (include_next_obs=False)",
            "count": 12,
        }
    ]
    with_next = list(Hdf5Reader().read(path, include_next_obs=True))
    assert (
        "next_obs.robot0_eef_pos" in with_next[0].streams and with_next[0].skipped == []
    )


def test_generic_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "log.h5"
    t = np.array([0.3, 0.1, 0.2, 0.4])  # unsorted on purpose
    acc = np.arange(12.0).reshape(4, 3)
    rec = np.zeros(5, dtype=[("timestamp", "f8"), ("v", "f4"), ("label", "S4")])
    rec["timestamp"] = np.arange(5) * 0.5
    rec["v"] = np.arange(5)
    with h5py.File(path, "w") as f:
        f.attrs["robot"] = "arm-a"
        f.attrs["task"] = "stack"
        imu = f.create_group("imu")
        imu.create_dataset("time", data=t)
        d = imu.create_dataset("linear_acc", data=acc)
        d.attrs["units"] = "m/s^2"
        f.create_dataset("raw/counter", data=np.arange(7))
        f.create_dataset("raw/names", data=np.array([b"a", b"b"]))
        f.create_dataset("gain", data=3.5)
        f.create_dataset("table", data=rec)
    (run,) = list(Hdf5Reader().read(path, rate_hz=2.0))
    assert run.key == ""
    assert run.factors == {
        "hardware": {"robot": "arm-a"},
        "scenario": {"task": "stack"},
    }
    acc_ds = run.streams["imu.linear_acc"]
    assert acc_ds["time"].values.tolist() == [
        100_000_000,
        200_000_000,
        300_000_000,
        400_000_000,
    ]
    np.testing.assert_array_equal(acc_ds["linear_acc"].values, acc[[1, 2, 0, 3]])
    assert acc_ds["linear_acc"].attrs["units"] == "m/s^2"
    assert acc_ds["linear_acc"].dims == ("time", "axis")
    counter = run.streams["raw.counter"]
    assert counter["time"].values.tolist() == [i * 500_000_000 for i in range(7)]
    assert run.extra["synthetic_time"] == {"rate_hz": 2.0, "streams": ["raw/counter"]}
    assert run.extra["time_datasets"] == {"imu": "/imu/time"}
    assert run.extra["scalars"] == {"gain": 3.5}
    table = run.streams["table"]
    assert table["v"].values.tolist() == [0, 1, 2, 3, 4]
    assert table["time"].values[-1] == 2_000_000_000
    topics = {s["topic"]: s for s in run.skipped}
    assert set(topics) == {"raw/names", "table.label"}
    assert topics["raw/names"]["count"] == 2


def test_bad_files_name_the_file(real_data: Path, tmp_path: Path) -> None:
    reader = Hdf5Reader()
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty.h5.*not an HDF5 file"):
        list(reader.read(empty))
    wrong = tmp_path / "wrong.hdf5"
    wrong.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(ReaderError, match="wrong.hdf5.*not an HDF5 file"):
        list(reader.read(wrong))
    trunc = tmp_path / "trunc.hdf5"
    trunc.write_bytes((real_data / SAWYER).read_bytes()[:20_000])
    with pytest.raises(ReaderError, match="trunc.hdf5"):
        list(reader.read(trunc))
    with pytest.raises(ReaderError, match="rate_hz"):
        list(reader.read(real_data / WIPE, rate_hz=0.0))


@pytest.mark.parametrize("rel", [SAWYER, WIPE])
def test_each_demo_has_its_bytes_and_the_files_wall_clock(real_data: Path, tmp_path: Path, rel: str) -> None:
    import datetime as dt

    import workbench as wb

    path = real_data / rel
    store = wb.open_store(tmp_path / "store")
    store.ingest([path])
    cat = store.runs().sort("scenario.demo")
    with h5py.File(path) as fh:
        attrs = dict(fh["data"].attrs)
        expected = {}
        for demo in fh["data"]:
            sizes = []
            fh["data"][demo].visititems(lambda _n, o, sizes=sizes: sizes.append(o.id.get_storage_size())
                                        if isinstance(o, h5py.Dataset) else None)
            expected[int(demo.split("_")[1])] = sum(sizes)
    assert dict(zip(cat["scenario.demo"].to_list(), cat["size_bytes"].to_list(), strict=True)) == expected
    assert sum(expected.values()) <= path.stat().st_size
    assert set(cat["source"].to_list()) == {str(path.resolve())}
    month, day, year = (int(x) for x in attrs["date"].split("-"))
    when = dt.datetime(year, month, day, *(int(x) for x in attrs["time"].split(":")), tzinfo=dt.UTC)
    assert set(cat["start"].to_list()) == {when}
    assert all(c.startswith("HDF5 date/time attributes") for c in cat["start_clock"].to_list())
