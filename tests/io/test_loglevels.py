"""Log level normalization: every scheme onto DEBUG < INFO < WARN < ERROR < FATAL."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from workbench.io import loglevels
from workbench.io.loglevels import LEVELS, SCHEMES, SYSLOG_NAMES, normalize_level
from workbench.model import ConfigError, WorkbenchError


def test_levels_lowest_first() -> None:
    assert LEVELS == ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    assert SCHEMES == ("ros1", "ros2", "syslog")


def test_ros1_bit_flags() -> None:
    # rosgraph_msgs/Log constants DEBUG=1 INFO=2 WARN=4 ERROR=8 FATAL=16
    assert [normalize_level(v, "ros1") for v in (1, 2, 4, 8, 16)] == list(LEVELS)
    assert [normalize_level(v, "ros1") for v in (0, 3, 5, 10, 32, -1)] == [None] * 6


def test_ros2_decades() -> None:
    # rcl_interfaces/msg/Log constants DEBUG=10 INFO=20 WARN=30 ERROR=40 FATAL=50
    assert [normalize_level(v, "ros2") for v in (10, 20, 30, 40, 50)] == list(LEVELS)
    assert [normalize_level(v, "ros2") for v in (0, 1, 2, 4, 25, 60)] == [None] * 6
    # numpy scalars as the decoder gives them
    assert normalize_level(np.uint8(40), "ros2") == "ERROR"


def test_syslog_numbers_names_and_digits() -> None:
    # MAV_SEVERITY / PX4: 0 EMERGENCY 1 ALERT 2 CRITICAL 3 ERROR 4 WARNING 5 NOTICE 6 INFO 7 DEBUG
    expect = ["FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG"]
    assert [normalize_level(v, "syslog") for v in range(8)] == expect
    assert [normalize_level(name, "syslog") for name in SYSLOG_NAMES] == expect
    assert [normalize_level(str(v), "syslog") for v in range(8)] == expect
    assert normalize_level("warning", "syslog") == "WARN"
    assert normalize_level(" Critical ", "syslog") == "FATAL"
    assert [normalize_level(name, "syslog") for name in LEVELS] == list(LEVELS)  # idempotent
    assert [normalize_level(v, "syslog") for v in (8, -1, "UNKNOWN", "")] == [None] * 4


def test_no_value_and_non_numbers() -> None:
    for scheme in SCHEMES:
        assert normalize_level(None, scheme) is None
        assert normalize_level(True, scheme) is None  # a bool is not a severity
        assert normalize_level("loud", scheme) is None
    # names belong to the syslog scheme only; ROS logs store numbers
    assert normalize_level("WARN", "ros1") is None
    assert normalize_level("20", "ros2") == "INFO"


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'ros3'.*ros1, ros2, syslog") as err:
        normalize_level(20, "ros3")
    assert isinstance(err.value, WorkbenchError)


def test_doctests() -> None:
    result = doctest.testmod(loglevels)
    assert result.attempted >= 2 and result.failed == 0
