"""Reader plugins: the interface every log reader implements, and the registry.

Readers are found through the entry-point group ``workbench.readers``; the built-in
ones register the same way (see ``pyproject.toml``). A reader is a class with

* ``name``, ``description``, ``url``, ``version`` class attributes;
* ``guess_can_open(path) -> bool`` — cheap check (extension, magic bytes);
* ``source_files(path) -> list[Path]`` — the files that make up the input
  (one file, or every file of a bag folder / dataset);
* ``read(path, *, <options>) -> Iterator[RunData]`` — an explicit keyword-only
  signature: the options a user may pass, with defaults. No ``**kwargs``;
* capabilities, declared as class attributes: ``supports_salvage``
  (``read(..., salvage=True)`` recovers the readable prefix of a damaged file),
  ``supports_progress`` (``read(..., progress=f)`` calls ``f(bytes_read_so_far)``) and
  ``supports_parts`` (``read(..., parts=True)`` may yield runs whose streams arrive in
  parts, :class:`~workbench.io.messages.StreamingRunData`). ``progress`` and ``parts``
  are ways of calling the reader, not options of a run. A reader that declares a
  capability its ``read`` does not accept is refused when loaded; one that declares
  ``False`` is never called that way; one that leaves it undeclared (``None``, as
  plugins written before the attributes existed) has it when its ``read`` takes the
  keyword.

The :class:`Reader` protocol states this; :class:`ReaderEntrypoint` is a convenient base
class. The registry is a :class:`workbench.plugins.Registry`: a broken plugin (import
error, capability mismatch) gives a ``RuntimeWarning`` naming it, never a crash.

Examples
--------
>>> from workbench.io import registry
>>> "table" in registry.readers()
True
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from workbench.model import (
    FACTOR_GROUPS,
    ConfigError,
    ReaderError,
    Scalar,
    empty_events,
)
from workbench.plugins import Registry

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import xarray as xr

__all__ = [
    "CALLING",
    "ENTRY_POINT_GROUP",
    "MAX_FACTOR_TEXT",
    "READERS",
    "TEXT_KINDS",
    "Reader",
    "ReaderEntrypoint",
    "RunData",
    "check_options",
    "factor_key",
    "get_reader",
    "guess_reader",
    "readers",
    "register_reader",
    "scalar_factors",
    "text_stream",
    "text_variables",
]

ENTRY_POINT_GROUP = "workbench.readers"
MAX_FACTOR_TEXT = 200
"""Longest text (characters) a per-run attribute may hold to become a factor value."""


@dataclass
class RunData:
    """What a reader yields for one run, before the store gives it an id.

    Attributes
    ----------
    key
        Identifies the run inside its source (e.g. ``"episode_3"``); ``""`` when the
        source holds a single run. Part of the run's content address.
    factors
        Factors found in the log itself, by group: ``{"hardware": {"robot": ...}, ...}``.
    streams
        Stream name → ``xarray.Dataset`` with a ``time`` dimension (int64 ns).
    events
        Events table (``time``, ``kind``, ``detail``).
    skipped
        What could not be decoded: ``{"topic": ..., "reason": ..., "count": ...}``.
    extra
        Reader-specific provenance (attachments, salvage, header info).
    name
        A readable label, e.g. the file stem and episode.
    source, size_bytes
        The file this run's data sits in and the bytes that are its share, when the
        input holds many runs (a LeRobot episode's Parquet file and its rows' share of
        it plus its videos); empty/``None``: the input's first file and all its bytes.
        Shown as the catalog's ``source`` and ``size_bytes``; the run id still comes
        from every file of the input.
    wall_clock
        ``(offset_ns, how)`` when the log's clock is not wall-clock time but the log
        says how to get it: add *offset_ns* to its times for UTC (a ULog's GPS time, an
        HDF5 file's ``date``/``time`` attributes); *how* names the source. The catalog's
        ``start`` is then the wall-clock start and ``start_clock`` says where it came from.
    span
        The run's ``(start_ns, end_ns)`` when the log states it (a ULog's own start and
        last timestamp); ``None``: from the first to the last sample or event. Values a
        log carries from before its start (a topic's last known state) keep their
        stamps but do not extend the run.
    """

    key: str = ""
    factors: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    streams: dict[str, xr.Dataset] = field(default_factory=dict)
    events: pl.DataFrame = field(default_factory=empty_events)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    span: tuple[int, int] | None = None
    source: str = ""
    size_bytes: int | None = None
    wall_clock: tuple[int, str] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.factors) - set(FACTOR_GROUPS))
        if unknown:
            msg = f"factor groups {unknown} are not valid; use {list(FACTOR_GROUPS)}"
            raise ReaderError(msg)


CALLING = ("progress", "parts")
"""Keyword arguments of ``read`` that are ways of calling it (set by the store), not options."""

_CAPABILITIES = {"supports_salvage": "salvage", "supports_progress": "progress", "supports_parts": "parts"}


@runtime_checkable
class Reader(Protocol):
    """What a reader plugin is (see the module doc)."""

    name: str
    description: str
    url: str
    version: str
    supports_salvage: bool
    supports_progress: bool
    supports_parts: bool

    def guess_can_open(self, path: Path) -> bool:
        """Whether this reader is likely to read *path* (cheap: name and magic bytes)."""

    def source_files(self, path: Path) -> list[Path]:
        """The files that make up the input at *path*."""

    def read(self, path: Path, **options: Any) -> Iterator[RunData]:
        """Yield the runs in *path*."""


class ReaderEntrypoint:
    """Base class of reader plugins (subclassing it is optional; the :class:`Reader` protocol counts)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    url: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    supports_salvage: ClassVar[bool | None] = None
    supports_progress: ClassVar[bool | None] = None
    supports_parts: ClassVar[bool | None] = None

    def guess_can_open(self, path: Path) -> bool:
        """Whether this reader is likely to read *path* (cheap: name and magic bytes)."""
        raise NotImplementedError  # pragma: no cover - interface

    def source_files(self, path: Path) -> list[Path]:
        """The files that make up the input at *path* (default: the file itself)."""
        return [path]

    def read(self, path: Path) -> Iterator[RunData]:  # pragma: no cover - interface
        """Yield the runs in *path*. Subclasses add keyword-only options."""
        raise NotImplementedError


def _make_reader(cls: Any) -> Reader:
    """An instance of the reader class *cls*, checked against the :class:`Reader` protocol:
    a declared capability must be a keyword-only parameter of its ``read``; an undeclared
    one (``None`` or absent) is taken from that signature."""
    reader = cls()
    missing = [a for a in ("name", "guess_can_open", "source_files", "read") if not hasattr(reader, a)]
    if missing:
        msg = f"reader {cls!r} lacks {', '.join(missing)}"
        raise ConfigError(msg)
    params = {n for n, p in inspect.signature(reader.read).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    for attr, param in _CAPABILITIES.items():
        declared = getattr(reader, attr, None)
        if declared is None:
            setattr(reader, attr, param in params)
        elif declared and param not in params:
            msg = f"reader {reader.name!r} declares {attr} but its read() has no keyword-only {param!r}"
            raise ConfigError(msg)
        else:
            setattr(reader, attr, bool(declared))
    return reader  # type: ignore[no-any-return]


READERS: Registry[Reader] = Registry(ENTRY_POINT_GROUP, "reader", make=_make_reader, error=ReaderError)
"""The installed readers (entry points of ``workbench.readers``, then run-time ones)."""


def register_reader(cls: type, *, replace: bool = False) -> None:
    """Register a reader class at run time (e.g. from a notebook).

    Entry points are the normal way; this is for experiments and tests.
    Registering an existing name raises :class:`ConfigError` unless ``replace=True``.
    """
    READERS.register(cls, replace=replace)


def unregister_reader(name: str) -> None:
    """Remove a reader registered with :func:`register_reader`."""
    READERS.unregister(name)


def readers() -> dict[str, Reader]:
    """Installed readers by name (instances), entry points first then run-time ones."""
    return READERS.all()


def get_reader(name: str) -> Reader:
    """The reader called *name*; :class:`ReaderError` listing the installed ones otherwise."""
    return READERS.get(name)


def guess_reader(path: str | Path) -> Reader:
    """The first installed reader that claims *path*.

    Raises
    ------
    ReaderError
        Naming the file and listing the installed readers when none claims it.
    """
    p = Path(path)
    if not p.exists():
        msg = f"{str(p)!r}: no such file or directory"
        raise ReaderError(msg)
    available = readers()
    for reader in available.values():
        try:
            if reader.guess_can_open(p):
                return reader
        except OSError as err:
            msg = f"{str(p)!r}: cannot be opened: {err}"
            raise ReaderError(msg) from err
    listing = "; ".join(f"{n} ({r.description})" for n, r in sorted(available.items()))
    msg = f"{str(p)!r}: no installed reader recognizes this file. Installed readers: {listing}"
    raise ReaderError(msg)


def check_options(reader: Reader, options: dict[str, Any]) -> dict[str, Any]:
    """Validate *options* against the reader's keyword-only ``read`` signature.

    Returns the options completed with their defaults (so the content address of a
    run does not depend on whether a default was spelled out). The ways of calling a
    reader (:data:`CALLING`: ``progress``, ``parts``) are not options.

    Examples
    --------
    >>> check_options(get_reader("table"), {"nope": 1})
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: reader 'table' has no option(s) ['nope']; valid options: ...
    >>> check_options(get_reader("mcap"), {"parts": True})
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: 'parts' is not an option of the mcap reader (the store sets it)
    """
    for name in CALLING:
        if name in options:
            msg = f"{name!r} is not an option of the {reader.name} reader (the store sets it)"
            raise ConfigError(msg)
    sig = inspect.signature(reader.read)
    params = {
        n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in CALLING
    }
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = ", ".join(sorted(params)) or "none"
        msg = f"reader {reader.name!r} has no option(s) {unknown}; valid options: {valid}"
        raise ConfigError(msg)
    full: dict[str, Any] = {}
    for n, p in params.items():
        if n in options:
            full[n] = options[n]
        elif p.default is not inspect.Parameter.empty:
            full[n] = p.default
        else:
            msg = f"reader {reader.name!r} needs option {n!r}"
            raise ConfigError(msg)
    return full


# --------------------------------------------------------------------------- per-run factors


def factor_key(name: str) -> str:
    """A metadata column or attribute name as a factor key (``""`` when nothing is left).

    ``/`` separates nested keys like ``.`` does; other characters outside letters,
    digits, ``_`` and ``-`` become ``_``.

    >>> factor_key("operator name"), factor_key("meta/site"), factor_key("..x")
    ('operator_name', 'meta.site', 'x')
    """
    key = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name).replace("/", "."))
    key = re.sub(r"\.{2,}", ".", key).lstrip(".-").rstrip(".")
    return re.sub(r"\.-+", ".", key)


def scalar_factors(
    values: Mapping[str, Any], *, reserved: Iterable[str] = ()
) -> tuple[dict[str, Scalar], dict[str, str]]:
    """Split per-run metadata into factor values and the entries left out (with why).

    A value becomes a factor when it is a boolean, an integer, a finite float or a
    text of at most :data:`MAX_FACTOR_TEXT` characters on one line that is not JSON
    structure (an object or array). Lists, mappings, arrays, long texts (an embedded
    XML model…) and ``None`` are left out; so are names that clash with *reserved*
    keys the reader sets itself. Readers keep the left-out values in ``extra``.

    Parameters
    ----------
    values
        Attribute or column name → value (numpy scalars are unwrapped).
    reserved
        Factor keys already set by the reader (they win).

    Returns
    -------
    tuple
        ``({factor_key: value}, {name: reason_left_out})``.

    Examples
    --------
    >>> scalar_factors({"operator": "ana", "seed": 3, "xml": "<m>" * 100, "ids": [1, 2]})
    ({'operator': 'ana', 'seed': 3}, {'xml': 'text of 300 characters', 'ids': 'list, not a scalar'})
    """
    taken = set(reserved)
    factors: dict[str, Scalar] = {}
    left_out: dict[str, str] = {}
    for name, raw in values.items():
        value = raw.item() if hasattr(raw, "item") and getattr(raw, "ndim", 1) == 0 else raw
        reason = _not_a_factor(value)
        key = factor_key(name)
        if reason is None and not key:
            reason = "name has no letters or digits"
        if reason is None and (key in taken or key in factors):
            reason = f"factor key {key!r} is already set by the reader"
        if reason is None:
            factors[key] = value
        else:
            left_out[str(name)] = reason
    return factors, left_out


def _not_a_factor(value: Any) -> str | None:
    """Why *value* cannot be a factor value, or ``None`` when it can."""
    if isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"non-finite number {value}"
    if isinstance(value, str):
        if len(value) > MAX_FACTOR_TEXT:
            return f"text of {len(value)} characters"
        if "\n" in value or "\r" in value:
            return "text of several lines"
        if value.lstrip()[:1] in ("{", "["):
            try:
                json.loads(value)
            except json.JSONDecodeError:
                return None
            return "JSON structure, not a scalar"
        return None
    if value is None:
        return "no value"
    return f"{type(value).__name__}, not a scalar"


def text_stream(
    times: Iterable[int] | np.ndarray,
    texts: Iterable[Any],
    *,
    attrs: Mapping[str, Any] | None = None,
    **more: Iterable[Any],
) -> xr.Dataset:
    """A text stream: ``text`` (strings) on ``time``, plus *more* variables alike
    (``level=…``, ``severity=…``); ``None`` values become empty strings.

    Examples
    --------
    >>> ds = text_stream([1, 2], ["armed", None], level=["info", "error"])
    >>> ds["text"].values.tolist(), ds["level"].values.tolist(), ds.attrs["kind"]
    (['armed', ''], ['info', 'error'], 'text')
    """
    import numpy as np
    import xarray as xr

    t = np.asarray(list(times) if not isinstance(times, np.ndarray) else times, dtype=np.int64)

    def column(values: Iterable[Any]) -> np.ndarray:
        vals = list(values)
        if vals and all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
                        for v in vals):
            return np.asarray(vals)
        return np.asarray(["" if v is None else (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
                           for v in vals], dtype=object)

    data = {"text": ("time", column(texts), {"units": ""})}
    data.update({k: ("time", column(v), {"units": ""}) for k, v in more.items()})
    return xr.Dataset(data, coords={"time": ("time", t)}, attrs={**(attrs or {}), "kind": "text"})


TEXT_KINDS = "OUST"
"""numpy dtype kinds of text variables (object, unicode, bytes, StringDType)."""


def text_variables(ds: xr.Dataset) -> tuple[list[str], str | None]:
    """The text a stream shows, and the variable holding its level.

    A stream with a ``text`` variable (a log stream: message beside its node and level)
    shows that one; otherwise every text variable on ``time`` (CSV text columns).
    The level is ``level_name``, or ``level`` when it is text; ``None`` otherwise.

    Examples
    --------
    >>> ds = text_stream([1, 2], ["armed", "landed"], node=["fc", "fc"], level_name=["INFO", "WARN"])
    >>> text_variables(ds)
    (['text'], 'level_name')
    """
    texts = [str(v) for v in ds.data_vars if ds[v].dims == ("time",) and ds[v].dtype.kind in TEXT_KINDS]
    shown = ["text"] if "text" in texts else texts
    level = next((v for v in ("level_name", "level") if v in texts), None)
    return shown, level
