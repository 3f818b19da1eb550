"""The examples in the statistics modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["workbench.stats.rates", "workbench.stats.cell", "workbench.stats.plan", "workbench.stats.sequential",
           "workbench.stats.attribution", "workbench.planning", "workbench.comparison"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1 and result.failed == 0, result
