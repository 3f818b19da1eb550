"""Every example in the package's docstrings runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import workbench

MODULES = sorted(m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_the_public_modules_have_examples() -> None:
    counted = {name: doctest.DocTestFinder().find(importlib.import_module(name)) for name in MODULES}
    with_examples = [n for n, tests in counted.items() if any(t.examples for t in tests)]
    assert len(with_examples) >= 40, with_examples
