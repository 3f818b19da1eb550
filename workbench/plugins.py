"""One registry for every kind of plugin: readers, metrics and stream decoders.

A plugin is a class named in a package's entry points (``[project.entry-points."workbench.readers"]``
and so on, the built-ins included) or registered at run time (:meth:`Registry.register`,
for a notebook or a test). :class:`Registry` loads them once, in a stable order (entry
points by name, then run-time ones), and turns each into an instance. A plugin that
fails to load is left out with a :class:`RuntimeWarning` naming it and its entry
point: one broken package never hides the others.

Examples
--------
>>> class Hello:
...     name = "hello"
>>> reg = Registry("workbench.examples", "example")
>>> reg.register(Hello)
>>> sorted(reg.all())
['hello']
>>> reg.register(Hello)
Traceback (most recent call last):
...
workbench.model.ConfigError: an example named 'hello' is already registered; pass replace=True to override
>>> reg.get("nope")
Traceback (most recent call last):
...
workbench.model.ConfigError: no example named 'nope'; installed examples: hello
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from workbench.model import ConfigError, WorkbenchError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """The plugins of one entry-point *group*, as instances, by name.

    Parameters
    ----------
    group
        The entry-point group (``workbench.readers``, ``workbench.metrics``, ``workbench.decoders``).
    kind
        What a plugin is called in messages (``reader``, ``metric``, ``decoder``).
    make
        Turns a loaded class into the registered object (default: call it with no argument).
    error
        The error raised for an unknown name (a :class:`~workbench.model.WorkbenchError` subclass).
    builtins
        Plugins that ship with the workbench, by name, loaded before the entry points
        (an entry point of the same name replaces one): they are there even when the
        installed package metadata is stale.
    """

    def __init__(self, group: str, kind: str, *, make: Callable[[Any], T] | None = None,
                 error: type[WorkbenchError] = ConfigError, builtins: dict[str, Any] | None = None) -> None:
        self.group, self.kind = group, kind
        self._builtins = dict(builtins or {})
        self._make: Callable[[Any], T] = make if make is not None else (lambda cls: cls())
        self._error = error
        self._runtime: dict[str, Any] = {}
        self._cache: dict[str, T] | None = None

    def _article(self) -> str:
        return "an" if self.kind[:1] in "aeiou" else "a"

    def register(self, cls: Any, *, replace: bool = False) -> None:
        """Register *cls* (its ``name`` attribute names it) at run time.

        Raises :class:`~workbench.model.ConfigError` when it has no name, when the name
        is taken and *replace* is false, or when it does not make a valid plugin (the
        registry's check, e.g. a reader's declared capabilities).
        """
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            msg = f"{self.kind} {cls!r} has no 'name'"
            raise ConfigError(msg)
        if not replace and name in self.all():
            msg = f"{self._article()} {self.kind} named {name!r} is already registered; pass replace=True to override"
            raise ConfigError(msg)
        self._make(cls)  # refused now rather than on first use
        self._runtime[name] = cls
        self._cache = None

    def unregister(self, name: str) -> None:
        """Remove a plugin registered with :meth:`register` (entry points stay)."""
        self._runtime.pop(name, None)
        self._cache = None

    def entry_points(self) -> list[EntryPoint]:
        """The group's entry points, by name."""
        return sorted(entry_points(group=self.group), key=lambda e: e.name)

    def all(self) -> dict[str, T]:
        """Every plugin by name: entry points first, then run-time ones (which win)."""
        if self._cache is not None:
            return self._cache
        found: dict[str, T] = {name: self._make(cls) for name, cls in self._builtins.items()}
        for ep in self.entry_points():
            try:
                found[ep.name] = self._make(ep.load())
            except Exception as err:  # noqa: BLE001 - a broken plugin must not break the others
                warnings.warn(f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {err!r}",
                              RuntimeWarning, stacklevel=3)
        for name, cls in self._runtime.items():
            found[name] = self._make(cls)
        self._cache = found
        return found

    def get(self, name: str) -> T:
        """The plugin called *name*; the registry's error, listing the installed ones, otherwise."""
        available = self.all()
        if name not in available:
            msg = f"no {self.kind} named {name!r}; installed {self.kind}s: {', '.join(sorted(available))}"
            raise self._error(msg)
        return available[name]
