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


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for browser tests (skips when absent, fails under CI=true)."""
    return need(CHROMIUM, "chromium (apt-get install chromium)")


@pytest.fixture(scope="session")
def browser(chromium):
    """A headless Playwright browser on the system Chromium."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots kept after the run (tests/artifacts, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory, samples_dir):
    """The sample campaign ingested, graded and with metrics computed (built once)."""
    import workbench as wb

    store = wb.open_store(tmp_path_factory.mktemp("samples") / "store")
    report = store.ingest([samples_dir])
    assert len(report.ingested) >= 160, report
    wb.quality.grade_store(store)
    wb.metrics.compute(store)
    return store
