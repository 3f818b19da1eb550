"""The guided tour behind ``make demo`` / ``workbench demo``.

It only calls the public API a notebook user would call: ingest the bundled sample
campaign into the embedded store (the deliberately truncated sample is refused with
a clear message while everything else proceeds), then print the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["default_samples_dir", "tour"]


def default_samples_dir() -> Path:
    """``data/samples`` of the source checkout (where ``make demo`` runs)."""
    return Path(__file__).resolve().parents[1] / "data" / "samples"


def tour(
    store_path: str,
    *,
    samples: Path | None = None,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> int:
    """Run the tour; returns the process exit code (0 unless the tour itself broke)."""
    import polars as pl

    from workbench.store import open_store

    samples = samples or default_samples_dir()
    if not samples.exists() or not any(samples.rglob("*.*")):
        echo(f"no samples in {samples}: generate them with `workbench samples generate --out {samples}`")
        return 1
    store = open_store(store_path)
    echo(f"\n== 1. Ingest the sample campaign ({samples}) into the store {store_path}/")
    report = store.ingest([samples], progress=progress)
    echo(f"   {report}")
    for fail in report.failed:
        echo(f"   refused (as planned for the truncated sample): {fail['error']}")
    echo("\n== 2. The catalog: one row per run, factors as columns")
    df = store.runs()
    factor_cols = [c for c in df.columns if c.split(".")[0] in {"hardware", "environment", "model", "scenario"}]
    show = df.select(["run_id", "name", "outcome", "duration_s", *factor_cols])
    with pl.Config(tbl_rows=12, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=28):
        echo(str(show))
    echo(f"   {df.height} runs in the store; `workbench runs --store {store_path}` lists them all.")
    echo("\nNext: `workbench runs --where \"hardware.robot = 'arm-b'\"`, `workbench show RUN_ID`.")
    return 0
