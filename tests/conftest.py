"""Shared fixtures: paths to the bundled samples and to the real public logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
REAL = Path(os.environ.get("WORKBENCH_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(path: Path, what: str) -> Path:
    """Return *path*; skip the test when it is absent, except under CI=true where it fails."""
    if path.exists():
        return path
    msg = f"{what} not found at {path}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: tests may not skip)")
    pytest.skip(msg)
    return path  # unreachable


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real public robot logs (../shared/data/real, see its SOURCES.md)."""
    return need(REAL, "real robot logs")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The committed sample campaign."""
    return need(SAMPLES, "sample campaign")
