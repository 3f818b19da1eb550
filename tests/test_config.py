"""workbench.yaml is found one way for every section, and read as data only."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.config import ENVIRONMENT, env, find_config, read_config
from workbench.events.apply import configured_rules
from workbench.metrics.roles import configured_roles
from workbench.model import ConfigError
from workbench.quality import load_thresholds

STORE_YAML = """
quality:
  gap_factor: 7
roles:
  ee_pose: {stream: tcp, variables: [x, y, z]}
events:
  - {name: from_store, signal: {stream: s, variable: v}, above: 1}
"""
CWD_YAML = """
quality:
  gap_factor: 3
events:
  - {name: from_cwd, signal: {stream: s, variable: v}, above: 1}
"""


def test_every_section_comes_from_the_store_folder_before_the_current_folder(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "workbench.yaml").write_text(CWD_YAML)
    monkeypatch.chdir(here)
    store = wb.open_store(tmp_path / "store")
    # without a file in the store folder: the current folder's
    assert find_config(store.root) == here / "workbench.yaml"
    assert load_thresholds(store_root=store.root).gap_factor == 3
    assert [r.name for r in configured_rules(store).events] == ["from_cwd"]
    assert configured_roles(store).overrides == ()
    # the store folder's file wins, for every section alike
    (tmp_path / "store" / "workbench.yaml").write_text(STORE_YAML)
    assert find_config(store.root) == tmp_path / "store" / "workbench.yaml"
    assert load_thresholds(store_root=store.root).gap_factor == 7
    assert [r.name for r in configured_rules(store).events] == ["from_store"]
    assert [o.role for o in configured_roles(store).overrides] == ["ee_pose"]
    # a remote store has no folder of its own: the current folder's
    assert find_config(None) == here / "workbench.yaml"


def test_configuration_is_data_never_code(tmp_path):
    bad = tmp_path / "workbench.yaml"
    bad.write_text("quality: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_config(bad)
    assert not (tmp_path / "pwned").exists()
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        read_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_config(tmp_path / "absent.yaml")


def test_a_changed_file_is_read_again_and_callers_get_copies(tmp_path):
    import os

    p = tmp_path / "workbench.yaml"
    p.write_text("quality: {gap_factor: 2}\n")
    first = read_config(p)
    assert first["quality"] == {"gap_factor": 2}
    first["quality"]["gap_factor"] = 99  # a caller changing its copy changes nothing kept
    assert read_config(p)["quality"] == {"gap_factor": 2}
    # replaced by a new file with the same modification time (an editor, rsync -t)
    st = p.stat()
    new = tmp_path / "new.yaml"
    new.write_text("quality: {gap_factor: 9}\n")
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, p)
    assert p.stat().st_mtime_ns == st.st_mtime_ns
    assert read_config(p)["quality"] == {"gap_factor": 9}
    # a folder or an unreadable file is a ConfigError naming it
    with pytest.raises(ConfigError, match="cannot be read"):
        read_config(tmp_path)


def test_environment_variables_are_read_in_one_place(monkeypatch):
    assert set(ENVIRONMENT) == {"WORKBENCH_STORE", "WORKBENCH_SCHEDULER", "WORKBENCH_USER", "WORKBENCH_TOKEN"}
    monkeypatch.setenv("WORKBENCH_SCHEDULER", "sync")
    monkeypatch.setenv("WORKBENCH_STORE", "")
    assert env("WORKBENCH_SCHEDULER") == "sync" and env("WORKBENCH_STORE") is None
    from workbench.parallel import resolve_scheduler
    from workbench.store import default_store_path

    assert resolve_scheduler(None) == "sync"
    assert default_store_path() == "./workbench-store"
    with pytest.raises(ConfigError, match="WORKBENCH_SCHEDULER, WORKBENCH_STORE, WORKBENCH_TOKEN, WORKBENCH_USER"):
        env("WORKBENCH_SCHEDUL")
