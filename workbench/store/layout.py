"""Where things are in a store: the folder layout's names and the default location.

::

    <store>/
      catalog.parquet                 derived index, rebuilt from manifests
      runs/<run_id>/run.json          RunInfo + stream list (the manifest)
      runs/<run_id>/streams/<name>.zarr
      runs/<run_id>/events.parquet
      runs/<run_id>/annotations/<section>.json   grades, metrics (optional)
      sources/<source_key>.json       which runs a source file produced
      .tmp/                           runs being written (never read as runs)
"""

from __future__ import annotations

import os

__all__ = ["ADDRESS_NEUTRAL_OPTIONS", "ANNOTATIONS_DIR", "CATALOG_PATH", "COMPARISONS_DIR", "DEFAULT_STORE", "DERIVED_EVENTS", "EVENTS_NAME", "EVENTS_SECTION", "LABELS_SECTION", "LOCK_NAME", "MANIFEST_FORMAT", "MANIFEST_NAME", "MARKS_SECTION", "OUTCOME_SECTION", "PENDING_DIR", "RULES_DIR", "RUNS_DIR", "SOURCES_DIR", "STREAMS_DIR", "TMP_DIR", "default_store_path"]


CATALOG_PATH = "catalog.parquet"
RUNS_DIR = "runs"
MANIFEST_NAME = "run.json"
STREAMS_DIR = "streams"
EVENTS_NAME = "events.parquet"
ANNOTATIONS_DIR = "annotations"
DERIVED_EVENTS = "derived_events"
"""Annotation table of the events rules made (``annotations/derived_events.parquet``)."""
EVENTS_SECTION = "events"
"""Annotation section: which rules made the derived events (hash, counts, missing)."""
OUTCOME_SECTION = "outcome"
"""Annotation section: the resolved outcome, its time and its source."""
LABELS_SECTION = "labels"
"""Annotation section: a person's label of the run (outcome, reason, who, when)."""
MARKS_SECTION = "marks"
"""Annotation section of the time windows people marked as events (``Store.mark``)."""
RULES_DIR = "rules"
COMPARISONS_DIR = "comparisons"
"""Store-level folder of the rule sets applied (``rules/<hash>.yaml``)."""
SOURCES_DIR = "sources"
TMP_DIR = ".tmp"
PENDING_DIR = ".pending"
"""Markers of annotation writes not yet reflected in the catalog (repaired after a crash)."""
LOCK_NAME = ".lock"
DEFAULT_STORE = "./workbench-store"
ADDRESS_NEUTRAL_OPTIONS = frozenset({"salvage"})
"""Reader options that do not change what a complete file reads as (not part of run ids)."""
MANIFEST_FORMAT = 1


def default_store_path() -> str:
    """``$WORKBENCH_STORE`` when set, else ``./workbench-store``."""
    from workbench.config import env

    return env("WORKBENCH_STORE") or DEFAULT_STORE


def _fsync_tree(path: str) -> None:
    """Flush a freshly written folder to disk before it is renamed into place."""
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
