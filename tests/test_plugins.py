"""Plugins: one registry for readers, metrics and stream decoders, with declared capabilities."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest

import workbench as wb
from workbench.io.mcap import McapReader
from workbench.io.messages import DECODERS, JointStateDecoder, decoder_for
from workbench.io.registry import (
    READERS,
    Reader,
    ReaderEntrypoint,
    RunData,
    _make_reader,
    check_options,
    get_reader,
    readers,
    register_reader,
    unregister_reader,
)
from workbench.metrics.registry import METRICS, Metric, compute_run, register_metric, unregister_metric
from workbench.model import ConfigError, ReaderError
from workbench.plugins import Registry


def test_a_broken_plugin_is_named_in_a_warning_and_the_others_load(monkeypatch):
    reg: Registry[Reader] = Registry("workbench.readers", "reader", make=_make_reader, error=ReaderError)
    real = reg.entry_points()
    broken = EntryPoint(name="broken", value="no_such_package.readers:Broken", group="workbench.readers")
    monkeypatch.setattr(reg, "entry_points", lambda: sorted([*real, broken], key=lambda e: e.name))
    with pytest.warns(RuntimeWarning, match=r"reader plugin 'broken' \(no_such_package\.readers:Broken\) failed to load"):
        found = reg.all()
    assert "broken" not in found
    assert set(found) == {e.name for e in real} and len(found) >= 10
    assert all(isinstance(r, Reader) for r in found.values())


class _Declares(ReaderEntrypoint):
    name: ClassVar[str] = "declares"
    supports_parts: ClassVar[bool] = True

    def guess_can_open(self, path: Path) -> bool:
        return False

    def read(self, path: Path, *, rate: float = 1.0) -> Iterator[RunData]:
        yield RunData(key="")


class _Undeclared(ReaderEntrypoint):  # written before the capability attributes existed
    name: ClassVar[str] = "undeclared"

    def guess_can_open(self, path: Path) -> bool:
        return False

    def read(self, path: Path, *, salvage: bool = False, progress: Any = None) -> Iterator[RunData]:
        yield RunData(key="")


class _Declines(_Undeclared):
    name: ClassVar[str] = "declines"
    supports_progress: ClassVar[bool | None] = False


def test_capabilities_are_declared_and_checked_against_read():
    with pytest.raises(ConfigError, match="'declares' declares supports_parts but its read\\(\\) has no keyword-only 'parts'"):
        register_reader(_Declares)
    assert "declares" not in readers()
    register_reader(_Undeclared)
    register_reader(_Declines)
    try:
        old = get_reader("undeclared")  # undeclared: taken from the signature
        assert (old.supports_salvage, old.supports_progress, old.supports_parts) == (True, True, False)
        assert get_reader("declines").supports_progress is False  # declared False: never called that way
    finally:
        unregister_reader("undeclared")
        unregister_reader("declines")
    mcap, table = get_reader("mcap"), get_reader("table")
    assert (mcap.supports_salvage, mcap.supports_progress, mcap.supports_parts) == (True, True, True)
    assert (table.supports_salvage, table.supports_progress, table.supports_parts) == (False, False, False)
    assert all(isinstance(getattr(r, a), bool) for r in readers().values()
               for a in ("supports_salvage", "supports_progress", "supports_parts"))
    assert (get_reader("rosbag2").supports_salvage, get_reader("rosbag2").supports_parts) == (True, True)


def test_replace_and_unknown_names(tmp_path):
    class MyTable(type(get_reader("table"))):  # type: ignore[misc]
        description: ClassVar[str] = "my own table reader"

    with pytest.raises(ConfigError, match="a reader named 'table' is already registered; pass replace=True"):
        register_reader(MyTable)
    try:
        register_reader(MyTable, replace=True)
        assert get_reader("table").description == "my own table reader"
    finally:
        unregister_reader("table")
    assert get_reader("table").description != "my own table reader"  # the entry point again
    with pytest.raises(ReaderError, match="no reader named 'nope'; installed readers: .*mcap.*table"):
        get_reader("nope")
    with pytest.raises(ConfigError, match="no metric named 'nope'; installed metrics: .*success"):
        METRICS.get("nope")


def test_options_are_checked_and_calling_arguments_are_not_options():
    with pytest.raises(ConfigError, match=r"reader 'mcap' has no option\(s\) \['rate'\]; valid options: events_topics, salvage, topics"):
        check_options(get_reader("mcap"), {"rate": 3})
    for calling in ("parts", "progress"):
        with pytest.raises(ConfigError, match=f"'{calling}' is not an option of the mcap reader"):
            check_options(get_reader("mcap"), {calling: True})
    assert check_options(get_reader("mcap"), {}) == {"events_topics": ("/events",), "salvage": False, "topics": None}


def test_a_raising_metric_is_recorded_and_hides_no_other(samples_dir):
    from workbench.metrics.registry import Column

    class Raises(Metric):
        name: ClassVar[str] = "raises"
        columns: ClassVar[tuple[Column, ...]] = (Column("raises_value", "continuous", "", True, "never computed"),)

        def compute(self, run: Any) -> dict[str, Any]:
            msg = "boom"
            raise RuntimeError(msg)

    register_metric(Raises)
    try:
        path = min((samples_dir / "campaign").glob("*.mcap"))
        run = next(iter(McapReader().read(path)))
        from workbench.model import Run

        r = Run(info=wb.RunInfo(run_id="x", start_ns=0, end_ns=1), streams=run.streams, events=run.events)
        row = compute_run(r, ["raises", "path_length"])
        assert row["raises_value"] is None and row["raises.error"] == "RuntimeError: boom"
        assert row["path_length"] is not None and row["path_length"] > 0
    finally:
        unregister_metric("raises")


def test_a_decoder_plugin_decodes_its_message_type(samples_dir):
    import xarray as xr

    assert sorted(DECODERS.all()) == ["compressed_image", "joint_state", "raw_image", "tf"]
    # the built-ins are there even without the package's entry points (stale metadata)
    bare = Registry("workbench.decoders", "decoder", builtins=DECODERS._builtins)
    bare.entry_points = list  # type: ignore[method-assign]
    assert sorted(bare.all()) == ["compressed_image", "joint_state", "raw_image", "tf"]
    assert isinstance(decoder_for("sensor_msgs/msg/JointState"), JointStateDecoder)

    class Positions:
        name = "positions_only"
        message_types = ("sensor_msgs/msg/JointState",)

        def decode(self, stream, times, cols, attrs, res):
            pos = cols.numeric["position"]
            return {f"{stream}_positions": xr.Dataset({"position": (("time", "joint"), pos)}, coords={"time": times})}

    path = min((samples_dir / "campaign").glob("*.mcap"))
    before = next(iter(McapReader().read(path))).streams
    DECODERS.register(Positions)
    try:
        assert decoder_for("sensor_msgs/msg/JointState").name == "positions_only"  # the run-time one wins
        after = next(iter(McapReader().read(path))).streams
    finally:
        DECODERS.unregister("positions_only")
    assert "joint_states" in before and "joint_states" not in after
    got = after["joint_states_positions"]
    assert list(got.data_vars) == ["position"]
    assert (got["position"].values == before["joint_states"]["position"].values).all()
    assert isinstance(decoder_for("sensor_msgs/msg/JointState"), JointStateDecoder)

    class NoTypes:
        name = "no_types"
        message_types = ()

        def decode(self, *args):
            return {}

    with pytest.raises(ConfigError, match="message_types must be a non-empty tuple"):
        DECODERS.register(NoTypes)


def test_every_registry_holds_what_pyproject_declares():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    eps = project["entry-points"]
    for registry in (READERS, METRICS, DECODERS):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no built-in plugin may fail to load
            assert set(registry.all()) >= set(eps[registry.group]), registry.group
    assert len(READERS.all()) == len(eps["workbench.readers"])
