"""Per-run work mapped with Dask: local by default, a cluster when given its address.

``scheduler`` values:

* ``None`` → ``$WORKBENCH_SCHEDULER`` if set, else ``"threads"``;
* ``"threads"``, ``"processes"``, ``"sync"`` → Dask's local schedulers;
* ``"tcp://host:8786"`` (any address with ``://``) → a ``dask.distributed`` cluster;
* a ``distributed.Client`` instance → that client.

The function and its arguments must be importable/picklable (module-level
functions with plain arguments such as a store URL and a run id). Results come
back in the order of the items; a failing item raises after the others finish.

Examples
--------
>>> map_runs(pow, [1, 2, 3], args=(2,), scheduler="sync")
[1, 4, 9]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from workbench.model import ConfigError

__all__ = ["map_runs", "resolve_scheduler"]


def resolve_scheduler(scheduler: Any = None) -> Any:
    """The effective scheduler (see the module doc)."""
    if scheduler is None:
        from workbench.config import env

        scheduler = env("WORKBENCH_SCHEDULER") or "threads"
    if isinstance(scheduler, str):
        if "://" in scheduler:
            return scheduler
        if scheduler not in {"threads", "processes", "sync", "synchronous", "single-threaded"}:
            msg = f"scheduler {scheduler!r} is not valid; use threads, processes, sync or tcp://host:port"
            raise ConfigError(msg)
    return scheduler


def map_runs(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    args: tuple[Any, ...] = (),
    scheduler: Any = None,
    progress: bool = False,
    label: str = "runs",
    retries: int = 2,
) -> list[Any]:
    """``[fn(item, *args) for item in items]`` with Dask.

    Parameters
    ----------
    retries
        On a distributed cluster: how often a task is retried when its worker dies.
    """
    items = list(items)
    if not items:
        return []
    sched = resolve_scheduler(scheduler)
    if sched in {"sync", "synchronous", "single-threaded"} or (len(items) == 1 and not _is_distributed(sched)):
        return _serial(fn, items, args, progress, label)
    if _is_distributed(sched):
        return _distributed(fn, items, args, sched, progress, label, retries)
    import dask

    tasks = [dask.delayed(fn, pure=False)(item, *args) for item in items]
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks, scheduler=sched))
    return list(dask.compute(*tasks, scheduler=sched))


def _is_distributed(sched: Any) -> bool:
    return (isinstance(sched, str) and "://" in sched) or type(sched).__name__ == "Client"


def _serial(fn: Callable[..., Any], items: list[Any], args: tuple[Any, ...], progress: bool, label: str) -> list[Any]:
    if not progress:
        return [fn(item, *args) for item in items]
    from rich.progress import track

    return [fn(item, *args) for item in track(items, description=label)]


def _distributed(
    fn: Callable[..., Any],
    items: list[Any],
    args: tuple[Any, ...],
    sched: Any,
    progress: bool,
    label: str,
    retries: int,
) -> list[Any]:
    from distributed import Client

    client = sched if not isinstance(sched, str) else Client(sched)
    try:
        futures = client.map(fn, items, *[[a] * len(items) for a in args], pure=False, retries=retries)
        if progress:
            from distributed import progress as dprogress

            dprogress(futures)
        return list(client.gather(futures))
    finally:
        if isinstance(sched, str):
            client.close()
