"""Configuration in one place: ``workbench.yaml`` and the environment variables.

``workbench.yaml`` is found the same way for every section (``quality:``, ``roles:``,
``events:``, ``outcome:``): the file given explicitly, else the one in the store's
folder (local stores), else the one in the current folder, else none. It is read with
``yaml.safe_load`` only: configuration is data, never code. (The ``factors:`` section
is different: each data folder's ``workbench.yaml`` sets the factors of the runs under
it, see :mod:`workbench.metadata`.)

Environment variables, all read through :func:`env`:

* ``WORKBENCH_STORE`` -- the store used when none is given (default ``./workbench-store``);
* ``WORKBENCH_SCHEDULER`` -- where per-run work runs when no scheduler is given
  (``threads``, ``processes``, ``sync`` or a Dask address; default ``threads``);
* ``WORKBENCH_USER`` -- the name recorded with labels and marks (default: the OS user);
* ``WORKBENCH_TOKEN`` -- the access token of ``workbench serve`` off this machine (read by
  the command's ``--token`` option).

Examples
--------
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, CONFIG_NAME), "w") as fh:
...     _ = fh.write("quality:\\n  gap_factor: 4\\n")
>>> path = find_config(folder)
>>> section("quality", path), section("roles", path)
({'gap_factor': 4}, None)
>>> env("WORKBENCH_NOPE")
Traceback (most recent call last):
...
workbench.model.ConfigError: unknown environment variable 'WORKBENCH_NOPE'; the workbench reads WORKBENCH_SCHEDULER, WORKBENCH_STORE, WORKBENCH_TOKEN, WORKBENCH_USER
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.model import ConfigError

__all__ = ["CONFIG_NAME", "ENVIRONMENT", "env", "find_config", "read_config", "section"]

CONFIG_NAME = "workbench.yaml"
"""The configuration file's name, in a store's folder or the current folder."""

ENVIRONMENT = {
    "WORKBENCH_STORE": "the store used when none is given (default ./workbench-store)",
    "WORKBENCH_SCHEDULER": "where per-run work runs when no scheduler is given (default threads)",
    "WORKBENCH_USER": "the name recorded with labels and marks (default: the OS user)",
    "WORKBENCH_TOKEN": "the access token of `workbench serve` off this machine (its --token option)",
}
"""Every environment variable the workbench reads, with what it means."""

_CACHE: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def env(name: str) -> str | None:
    """The value of the workbench environment variable *name*; ``None`` when unset or empty."""
    if name not in ENVIRONMENT:
        msg = f"unknown environment variable {name!r}; the workbench reads {', '.join(sorted(ENVIRONMENT))}"
        raise ConfigError(msg)
    return os.environ.get(name) or None


def find_config(store_root: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``workbench.yaml`` that applies: in *store_root* (a local store's folder), else
    in the current folder; ``None`` when there is none."""
    candidates = [Path(store_root) / CONFIG_NAME] if store_root is not None else []
    candidates.append(Path.cwd() / CONFIG_NAME)
    return next((p for p in candidates if p.is_file()), None)


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in the YAML file *path* (``yaml.safe_load``; re-read when it changes),
    as a copy the caller may change.

    Raises :class:`~workbench.model.ConfigError` naming the file when it is missing,
    unreadable, not YAML, or not a mapping at the top level.
    """
    import copy

    import yaml

    p = Path(path)
    try:
        st = p.stat()
    except OSError as err:
        msg = f"configuration file {str(p)!r} not found"
        raise ConfigError(msg) from err
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    key = str(p.resolve())
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return copy.deepcopy(cached[1])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"configuration file {str(p)!r} cannot be read: {err}"
        raise ConfigError(msg) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        msg = f"{str(p)!r}: not valid YAML: {err}"
        raise ConfigError(msg) from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"{str(p)!r}: expected a mapping of sections (quality:, roles:, events: …) at the top level"
        raise ConfigError(msg)
    _CACHE[key] = (stamp, data)
    return copy.deepcopy(data)


def section(name: str, path: str | os.PathLike[str] | None) -> Any:
    """Section *name* of the configuration file *path*; ``None`` when there is no file or
    no such section."""
    if path is None:
        return None
    return read_config(path).get(name)
