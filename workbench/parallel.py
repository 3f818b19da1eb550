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
    batch: int | None = None,
) -> list[Any]:
    """``[fn(item, *args) for item in items]`` with Dask.

    Parameters
    ----------
    retries
        On a distributed cluster: how often a task is retried when its worker dies.
    batch
        Items per task on a distributed cluster (``None``: about eight tasks per
        worker, at most 32 items each): per-run work of a few milliseconds would
        otherwise cost as much in scheduling as in work.
    """
    items = list(items)
    if not items:
        return []
    sched = resolve_scheduler(scheduler)
    if sched in {"sync", "synchronous", "single-threaded"} or (len(items) == 1 and not _is_distributed(sched)):
        return _serial(fn, items, args, progress, label)
    if _is_distributed(sched):
        return _distributed(fn, items, args, sched, progress, label, retries, batch)
    import dask

    tasks = [dask.delayed(fn, pure=False)(item, *args) for item in items]
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks, scheduler=sched))
    return list(dask.compute(*tasks, scheduler=sched))


def _each(chunk: list[Any], *, fn: Callable[..., Any], args: tuple[Any, ...]) -> list[Any]:
    """One task of :func:`map_runs` on a cluster: *fn* over a few items."""
    return [fn(item, *args) for item in chunk]


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
    batch: int | None = None,
) -> list[Any]:
    from distributed import Client

    client = sched if not isinstance(sched, str) else Client(sched)
    try:
        if batch is None:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            batch = max(1, min(32, len(items) // (8 * workers)))
        chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
        futures = client.map(_each, chunks, fn=fn, args=args, pure=False, retries=retries)
        if progress:
            from distributed import progress as dprogress

            dprogress(futures)
        return [out for chunk in client.gather(futures) for out in chunk]
    finally:
        if isinstance(sched, str):
            client.close()
