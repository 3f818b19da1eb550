"""Rules that turn signals into events and outcomes: the objects and their YAML form.

A rule set is declared in YAML (``events:`` and ``outcome:`` sections of
``workbench.yaml``, or a file given with ``--rules FILE``) or built from the same
Python objects. Nothing in it is executed: it is data, read with ``yaml.safe_load``
and validated here, before anything is written.

Signals
-------
A :class:`Signal` is one time-indexed variable of a stream, narrowed to one component
by dimension labels (``{stream: observation.state, variable: state, joint: gripper.pos}``),
or a derived signal: ``{norm: SIGNAL}`` (vector norm over the components),
``{derivative: SIGNAL}`` (per second), ``{diff: [SIGNAL, SIGNAL]}`` (the first minus
the second, the second interpolated linearly onto the first's times).

Rules (each has a ``name``; the events it makes have ``kind`` = its ``kind`` or name)
---------------------------------------------------------------------------------
* :class:`Threshold` — ``above``/``below`` a level, ending at ``release`` (hysteresis),
  kept when it lasts ``min_duration`` s, none starting within ``refractory`` s of the
  previous one's end;
* :class:`Change` — ``on_change`` (optionally ``from``/``to``) or ``equals`` (an
  interval while the signal equals a value) for bool/int/enum streams;
* :class:`Match` — a regular expression over the text of log messages (ROS
  ``/rosout``, MAVLink STATUSTEXT, ULog logged messages, DataFlash MSG), with a
  minimum ``level``; named groups go into the event's detail;
* :class:`Sequence` — ``first`` then ``then`` within ``within`` s, or ``first``
  ``without`` a following event within ``within`` s.

Which runs
----------
Every rule and outcome clause may carry ``when: {reader: lerobot, hardware.robot: so101_follower}``
(factors, ``reader``, ``name``, ``source``; a list means any of these values): it is then
evaluated only on the runs that match, so one ``workbench.yaml`` serves a store holding
several robots or formats.

Outcome
-------
:class:`Outcome` — ordered clauses ``success``/``failure``; the first clause that holds
decides. A clause is ``{event: KIND}`` (the run has such an event), ``{final: {signal,
above|below|equals}}`` (the last value satisfies it) or ``{any: {…}}`` (some value
does). When no clause holds the outcome stays unknown, never a failure.

Examples
--------
>>> rules = RuleSet.from_yaml('''
... events:
...   - name: grasp
...     signal: {stream: observation.state, variable: state, joint: gripper.pos}
...     below: 20
...     release: 25
...     min_duration: 0.2
... outcome:
...   success: {event: placed}
... ''')
>>> [r.name for r in rules.events], rules.outcome.clauses[0].result
(['grasp'], 'success')
>>> RuleSet.from_dict(rules.to_dict()) == rules
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

from workbench.io.loglevels import LEVELS
from workbench.model import ConfigError

__all__ = [
    "LEVELS",
    "Change",
    "Clause",
    "Match",
    "Outcome",
    "Rule",
    "RuleSet",
    "Sequence",
    "Signal",
    "Threshold",
    "load_rules",
]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_SIGNAL_KEYS = ("stream", "variable", "select", "bit")
_DERIVED = ("norm", "derivative", "diff")


def _err(where: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: {text}")


def _number(where: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(where, f"{key!r} must be a number, got {value!r}")
    if positive and value < 0:
        raise _err(where, f"{key!r} must be ≥ 0, got {value!r}")
    return float(value)


def _value(where: str, key: str, value: Any) -> float:
    """A state value: a number or a boolean (true = 1)."""
    if isinstance(value, bool):
        return float(value)
    return _number(where, key, value)


def _check_keys(where: str, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _err(where, f"unknown key(s) {unknown}; valid keys: {', '.join(allowed)}")


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _err(where, f"expected a mapping, got {type(value).__name__} {value!r}")
    for k in value:
        if not isinstance(k, str):
            raise _err(where, f"keys must be text, got {k!r}")
    return value


# --------------------------------------------------------------------------- signals


@dataclass(frozen=True)
class Signal:
    """A time-indexed signal of a run.

    Exactly one form is used: a stored variable (*stream*, *variable*, *select*), or
    a derived signal (*norm*, *derivative* of another signal, or *diff* of two).

    Attributes
    ----------
    stream
        Stream name as stored (``observation.state``, ``vehicle_status``).
    variable
        Variable of the stream; may be omitted when the stream has exactly one.
    select
        Dimension label per dimension (``{"joint": "gripper.pos"}``) narrowing the
        variable to one component.
    norm, derivative
        The vector norm over the components / the time derivative (per second) of a signal.
    diff
        The first signal minus the second (interpolated onto the first's times).
    """

    stream: str | None = None
    variable: str | None = None
    select: tuple[tuple[str, str], ...] = ()
    norm: Signal | None = None
    derivative: Signal | None = None
    diff: tuple[Signal, Signal] | None = None
    bit: int | None = None

    def __post_init__(self) -> None:
        if self.bit is not None and (self.stream is None or not 0 <= self.bit < 63):
            msg = f"'bit' (0…62) goes with a stream variable (e.g. MAVLink base_mode bit 7 = armed); got {self.bit!r}"
            raise ConfigError(msg)
        forms = sum(x is not None for x in (self.stream, self.norm, self.derivative, self.diff))
        if forms != 1:
            msg = f"a signal is one of: a stream variable ({{stream, variable, <dim>: <label>}}) or one of {list(_DERIVED)}; got {self.to_dict()!r}"
            raise ConfigError(msg)

    @property
    def streams(self) -> list[str]:
        """Streams this signal reads."""
        if self.stream is not None:
            return [self.stream]
        if self.diff is not None:
            return [*self.diff[0].streams, *self.diff[1].streams]
        inner = self.norm or self.derivative
        return inner.streams if inner is not None else []

    def describe(self) -> str:
        """A short text: ``observation.state/state[joint=gripper.pos]``, ``norm(ft/force)``."""
        if self.stream is not None:
            sel = ",".join(f"{k}={v}" for k, v in self.select)
            bit = f".bit{self.bit}" if self.bit is not None else ""
            return f"{self.stream}/{self.variable or '*'}" + (f"[{sel}]" if sel else "") + bit
        if self.diff is not None:
            return f"({self.diff[0].describe()} - {self.diff[1].describe()})"
        if self.norm is not None:
            return f"norm({self.norm.describe()})"
        assert self.derivative is not None
        return f"d/dt({self.derivative.describe()})"

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        if self.stream is not None:
            d: dict[str, Any] = {"stream": self.stream}
            if self.variable is not None:
                d["variable"] = self.variable
            if self.bit is not None:
                d["bit"] = self.bit
            d.update(dict(self.select))
            return d
        if self.diff is not None:
            return {"diff": [self.diff[0].to_dict(), self.diff[1].to_dict()]}
        if self.norm is not None:
            return {"norm": self.norm.to_dict()}
        assert self.derivative is not None
        return {"derivative": self.derivative.to_dict()}

    @classmethod
    def parse(cls, value: Any, where: str) -> Signal:
        """A signal from its YAML form (a mapping, or ``"stream"``/``"stream/variable"`` text)."""
        if isinstance(value, Signal):
            return value
        if isinstance(value, str):
            stream, _, var = value.partition("/")
            if not stream:
                raise _err(where, f"signal {value!r} names no stream")
            return cls(stream=stream, variable=var or None)
        data = _mapping(where, value)
        derived = [k for k in _DERIVED if k in data]
        if derived:
            if len(data) != 1:
                raise _err(where, f"a derived signal ({derived[0]}) has no other keys; got {sorted(data)}")
            key = derived[0]
            if key == "diff":
                pair = data["diff"]
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise _err(where, f"diff takes a list of two signals, got {pair!r}")
                return cls(diff=(cls.parse(pair[0], f"{where}.diff[0]"), cls.parse(pair[1], f"{where}.diff[1]")))
            inner = cls.parse(data[key], f"{where}.{key}")
            return cls(norm=inner) if key == "norm" else cls(derivative=inner)
        if "stream" not in data:
            raise _err(where, f"a signal needs 'stream' (or one of {list(_DERIVED)}); got keys {sorted(data)}")
        stream, variable = data["stream"], data.get("variable")
        if not isinstance(stream, str) or not stream:
            raise _err(where, f"'stream' must be a stream name, got {stream!r}")
        if variable is not None and not isinstance(variable, str):
            raise _err(where, f"'variable' must be a variable name, got {variable!r}")
        select: dict[str, str] = {}
        extra = data.get("select", {})
        for k, v in {**_mapping(f"{where}.select", extra), **{k: v for k, v in data.items() if k not in _SIGNAL_KEYS}}.items():
            if isinstance(v, Mapping | list | tuple) or v is None:
                raise _err(where, f"dimension {k!r} must name one label, got {v!r}")
            select[k] = str(v)
        bit = data.get("bit")
        if bit is not None and (isinstance(bit, bool) or not isinstance(bit, int)):
            raise _err(where, f"'bit' must be a bit number (0…62), got {bit!r}")
        return cls(stream=stream, variable=variable, select=tuple(sorted(select.items())), bit=bit)


# --------------------------------------------------------------------------- which runs

WHEN_KEYS = ("reader", "name", "source")
"""Catalog columns a ``when:`` may test besides the factors (``hardware.robot`` …)."""


def parse_when(value: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``when: {reader: lerobot, hardware.robot: [so101_follower, so100]}``: the runs a
    rule is meant for (every key must match one of its values; values compare as text)."""
    if value is None:
        return ()
    data = _mapping(f"{where}.when", value)
    out = []
    for key, vals in data.items():
        group = key.split(".", 1)[0]
        if key not in WHEN_KEYS and not (group in ("hardware", "environment", "model", "scenario") and "." in key):
            msg = f"{where}.when: key {key!r} is not valid; use a factor (hardware.…, environment.…, model.…, scenario.…) or one of {', '.join(WHEN_KEYS)}"
            raise ConfigError(msg)
        items = vals if isinstance(vals, list) else [vals]
        if not items or any(isinstance(v, Mapping | list) or v is None for v in items):
            raise _err(f"{where}.when", f"{key!r} takes a value or a list of values, got {vals!r}")
        out.append((key, tuple(_text_value(v) for v in items)))
    return tuple(sorted(out))


def _text_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def when_to_dict(when: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    """The YAML form of a parsed ``when``."""
    return {k: (list(v) if len(v) > 1 else v[0]) for k, v in when}


def matches(when: tuple[tuple[str, tuple[str, ...]], ...], context: Mapping[str, Any]) -> bool:
    """True when every key of *when* has one of its values in *context*.

    >>> matches((("reader", ("lerobot",)),), {"reader": "lerobot"}), matches((("hardware.robot", ("a",)),), {})
    (True, False)
    """
    for key, values in when:
        got = context.get(key)
        if got is None or _text_value(got) not in values:
            return False
    return True


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """Common part of every rule: its *name* and the *kind* of the events it makes."""

    name: str
    kind: str = ""
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()

    type: ClassVar[str] = ""

    def applies_to(self, context: Mapping[str, Any]) -> bool:
        """True when the run described by *context* (catalog values) passes ``when``."""
        return matches(self.when, context)

    @property
    def event_kind(self) -> str:
        """Kind of the events this rule makes (its ``kind``, else its name)."""
        return self.kind or self.name

    @property
    def needs(self) -> list[str]:
        """Event kinds this rule reads (sequences)."""
        return []

    @property
    def streams(self) -> list[str]:
        """Streams this rule reads."""
        return []

    def _base(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.kind:
            d["kind"] = self.kind
        if self.when:
            d["when"] = when_to_dict(self.when)
        return d

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every rule overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class Threshold(Rule):
    """An interval while a signal is above (or below) a level, with hysteresis.

    Starts at the first sample beyond *level* (``x > above`` / ``x < below``) and ends at
    the first sample back beyond *release* (``x < release`` / ``x > release``; default:
    the level itself); samples in between (and NaN) keep the state. Kept when it lasts
    at least *min_duration* seconds (an interval still open at the end of the run lasts
    until the last sample); an interval starting less than *refractory* seconds after
    the end of the previous kept one is dropped. The event's time is the interval's
    start; its detail holds ``start``, ``end`` (ns), ``duration_s``, ``peak`` and ``open``.
    """

    signal: Signal = field(default_factory=lambda: Signal(stream="_"))
    direction: str = "above"
    level: float = 0.0
    release: float | None = None
    min_duration: float = 0.0
    refractory: float = 0.0

    type: ClassVar[str] = "threshold"

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if self.direction not in ("above", "below"):
            raise _err(where, f"direction must be 'above' or 'below', got {self.direction!r}")
        if self.release is not None:
            bad = self.release > self.level if self.direction == "above" else self.release < self.level
            if bad:
                rel = "≤" if self.direction == "above" else "≥"
                raise _err(where, f"release {self.release} must be {rel} the level {self.level} for {self.direction!r}")
        for key in ("min_duration", "refractory"):
            if getattr(self, key) < 0:
                raise _err(where, f"{key!r} must be ≥ 0, got {getattr(self, key)}")

    @property
    def release_level(self) -> float:
        """The level that ends an interval."""
        return self.level if self.release is None else float(self.release)

    @property
    def streams(self) -> list[str]:
        return self.signal.streams

    def to_dict(self) -> dict[str, Any]:
        d = {**self._base(), "signal": self.signal.to_dict(), self.direction: self.level}
        if self.release is not None:
            d["release"] = self.release
        if self.min_duration:
            d["min_duration"] = self.min_duration
        if self.refractory:
            d["refractory"] = self.refractory
        return d


@dataclass(frozen=True)
class Change(Rule):
    """State changes of a bool/int/enum signal (modes, arming, e-stop).

    ``on_change``: an event at every sample whose value differs from the previous one,
    optionally only *from* / *to* given values (detail: ``from``, ``to``, and their
    names from *values*). ``equals``: an interval while the signal equals the value
    (detail as for :class:`Threshold`), with *min_duration* and *refractory*.
    """

    signal: Signal = field(default_factory=lambda: Signal(stream="_"))
    on_change: bool = False
    from_: float | None = None
    to: float | None = None
    equals: float | None = None
    min_duration: float = 0.0
    refractory: float = 0.0
    values: tuple[tuple[float, str], ...] = ()

    type: ClassVar[str] = "change"

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if self.on_change == (self.equals is not None):
            raise _err(where, "a change rule takes exactly one of 'on_change: true' or 'equals: VALUE'")
        if self.equals is not None and (self.from_ is not None or self.to is not None):
            raise _err(where, "'from'/'to' go with 'on_change', not with 'equals'")

    @property
    def streams(self) -> list[str]:
        return self.signal.streams

    def value_name(self, value: float) -> Any:
        """The name given to *value* in ``values``, else the value (as int when whole)."""
        names = dict(self.values)
        if value in names:
            return names[value]
        return int(value) if float(value).is_integer() else value

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self._base(), "signal": self.signal.to_dict()}
        if self.on_change:
            d["on_change"] = True
            if self.from_ is not None:
                d["from"] = self.from_
            if self.to is not None:
                d["to"] = self.to
        else:
            d["equals"] = self.equals
            if self.min_duration:
                d["min_duration"] = self.min_duration
            if self.refractory:
                d["refractory"] = self.refractory
        if self.values:
            d["values"] = {_plain(k): v for k, v in self.values}
        return d


def _plain(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


@dataclass(frozen=True)
class Match(Rule):
    """A regular expression over the text of the run's events of kind *text* (``log``).

    The pattern is searched (``re.search``) in the detail field *field* (``message``);
    events below *level* (``DEBUG`` < ``INFO`` < ``WARN`` < ``ERROR`` < ``FATAL``) are
    skipped (a message without a level passes only when no level is asked). The event's
    detail holds the matched text, the level, and the named (or numbered) groups.
    """

    pattern: str = ""
    text: str = "log"
    field: str = "message"
    level: str | None = None
    ignore_case: bool = False

    type: ClassVar[str] = "match"

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if self.level is not None and self.level not in LEVELS:
            raise _err(where, f"level {self.level!r} is not valid; choose one of {', '.join(LEVELS)}")
        try:
            re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        except re.error as err:
            raise _err(where, f"bad regular expression {self.pattern!r}: {err}") from err

    @property
    def needs(self) -> list[str]:
        return [self.text]

    @property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern."""
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self._base(), "match": self.pattern}
        if self.text != "log":
            d["text"] = self.text
        if self.field != "message":
            d["field"] = self.field
        if self.level is not None:
            d["level"] = self.level
        if self.ignore_case:
            d["ignore_case"] = True
        return d


@dataclass(frozen=True)
class Sequence(Rule):
    """``first`` then ``then`` within ``within`` s, or ``first`` ``without`` within ``within`` s.

    *then*: one event per ``first`` event followed (at or after it, at most *within*
    seconds later) by a ``then`` event, at the time of that ``then`` event.
    *without*: one event per ``first`` event that no ``without`` event follows within
    *within* seconds (runs ending before the window closes count only if the window
    ended inside the run), at the time of the ``first`` event.
    """

    first: str = ""
    then: str | None = None
    without: str | None = None
    within: float = 0.0

    type: ClassVar[str] = "sequence"

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if (self.then is None) == (self.without is None):
            raise _err(where, "a sequence takes 'first' and exactly one of 'then' or 'without'")
        if self.within <= 0:
            raise _err(where, f"'within' must be > 0 seconds, got {self.within}")

    @property
    def second(self) -> str:
        """The kind that follows (``then`` or ``without``)."""
        return self.then if self.then is not None else str(self.without)

    @property
    def needs(self) -> list[str]:
        return [self.first, self.second]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self._base(), "first": self.first}
        d["then" if self.then is not None else "without"] = self.second
        d["within"] = self.within
        return d


AnyRule = Union[Threshold, Change, Match, Sequence]  # noqa: UP007 (a runtime alias)
_RULE_KEYS = {
    "threshold": ("name", "kind", "when", "signal", "above", "below", "release", "min_duration", "refractory"),
    "change": ("name", "kind", "when", "signal", "on_change", "from", "to", "equals", "min_duration", "refractory", "values"),
    "match": ("name", "kind", "when", "match", "text", "field", "level", "ignore_case"),
    "sequence": ("name", "kind", "when", "first", "then", "without", "within"),
}


def _rule_type(where: str, data: Mapping[str, Any]) -> str:
    if "match" in data:
        return "match"
    if "first" in data:
        return "sequence"
    if "above" in data or "below" in data:
        return "threshold"
    if "on_change" in data or "equals" in data:
        return "change"
    raise _err(where, "cannot tell the rule's type: give 'above'/'below' (threshold), 'on_change'/'equals' (change), "
                      "'match' (text) or 'first' + 'then'/'without' (sequence)")


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _err(where, f"{key!r} must be text, got {value!r}")
    return value


def parse_rule(data: Any, index: int = 0) -> AnyRule:
    """One rule from its YAML mapping (see the module doc)."""
    where = f"events[{index}]"
    data = _mapping(where, data)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(where, f"every rule needs a 'name' (letters, digits, _ . -), got {name!r}")
    where = f"rule {name!r}"
    kind = data.get("kind", "")
    if kind and (not isinstance(kind, str) or not _NAME_RE.match(kind)):
        raise _err(where, f"'kind' must be a name (letters, digits, _ . -), got {kind!r}")
    rtype = _rule_type(where, data)
    _check_keys(where, data, _RULE_KEYS[rtype])
    when = parse_when(data.get("when"), where)
    if rtype == "threshold":
        if "above" in data and "below" in data:
            raise _err(where, "give 'above' or 'below', not both")
        direction = "above" if "above" in data else "below"
        if "signal" not in data:
            raise _err(where, "a threshold rule needs a 'signal'")
        return Threshold(
            name=name, kind=kind, when=when, signal=Signal.parse(data["signal"], f"{where}.signal"), direction=direction,
            level=_number(where, direction, data[direction]),
            release=None if data.get("release") is None else _number(where, "release", data["release"]),
            min_duration=_number(where, "min_duration", data.get("min_duration", 0.0), positive=True),
            refractory=_number(where, "refractory", data.get("refractory", 0.0), positive=True),
        )
    if rtype == "change":
        if "signal" not in data:
            raise _err(where, "a change rule needs a 'signal'")
        on_change = data.get("on_change", False)
        if not isinstance(on_change, bool):
            raise _err(where, f"'on_change' must be true or false, got {on_change!r}")
        values = data.get("values", {})
        if not isinstance(values, Mapping):
            raise _err(where, f"'values' maps values to names ({{0: disarmed, 1: armed}}), got {values!r}")
        names = tuple(sorted((_value(where, "values", k), str(v)) for k, v in values.items()))
        opt = {k: None if data.get(k) is None else _value(where, k, data[k]) for k in ("from", "to", "equals")}
        return Change(
            name=name, kind=kind, when=when, signal=Signal.parse(data["signal"], f"{where}.signal"), on_change=on_change,
            from_=opt["from"], to=opt["to"], equals=opt["equals"],
            min_duration=_number(where, "min_duration", data.get("min_duration", 0.0), positive=True),
            refractory=_number(where, "refractory", data.get("refractory", 0.0), positive=True),
            values=names,
        )
    if rtype == "match":
        level = data.get("level")
        if level is not None:
            level = str(level).upper()
        ignore_case = data.get("ignore_case", False)
        if not isinstance(ignore_case, bool):
            raise _err(where, f"'ignore_case' must be true or false, got {ignore_case!r}")
        return Match(name=name, kind=kind, when=when, pattern=_text(where, "match", data["match"]),
                     text=_text(where, "text", data.get("text", "log")), field=_text(where, "field", data.get("field", "message")),
                     level=level, ignore_case=ignore_case)
    return Sequence(
        name=name, kind=kind, when=when, first=_text(where, "first", data["first"]),
        then=None if data.get("then") is None else _text(where, "then", data["then"]),
        without=None if data.get("without") is None else _text(where, "without", data["without"]),
        within=_number(where, "within", data.get("within", 0.0)),
    )


# --------------------------------------------------------------------------- outcome

_CLAUSE_FORMS = ("event", "final", "any")
_TEST_KEYS = ("signal", "above", "below", "equals")


@dataclass(frozen=True)
class Clause:
    """One outcome clause: *result* (``success``/``failure``) when its condition holds.

    Attributes
    ----------
    result
        ``"success"`` or ``"failure"``.
    form
        ``"event"`` (the run has an event of kind *event*), ``"final"`` (the signal's
        last value passes the test) or ``"any"`` (some value passes it).
    event
        The event kind (form ``event``).
    signal, op, value
        The test (forms ``final``/``any``): ``op`` is ``above`` (>), ``below`` (<) or
        ``equals`` (==).
    """

    result: str
    form: str
    event: str | None = None
    signal: Signal | None = None
    op: str | None = None
    value: float | None = None
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def applies_to(self, context: Mapping[str, Any]) -> bool:
        """True when the run described by *context* passes ``when``."""
        return matches(self.when, context)

    @property
    def streams(self) -> list[str]:
        return self.signal.streams if self.signal is not None else []

    def to_dict(self) -> dict[str, Any]:
        if self.form == "event":
            body: dict[str, Any] = {"event": self.event}
        else:
            assert self.signal is not None and self.op is not None
            body = {self.form: {"signal": self.signal.to_dict(), self.op: _plain(float(self.value or 0.0))}}
        if self.when:
            body["when"] = when_to_dict(self.when)
        return {self.result: body}

    def describe(self) -> str:
        """``success when event placed`` / ``failure when final next.done/… equals 1``."""
        if self.form == "event":
            return f"{self.result} when event {self.event}"
        assert self.signal is not None
        return f"{self.result} when {self.form} {self.signal.describe()} {self.op} {_plain(float(self.value or 0.0))}"

    @classmethod
    def parse(cls, result: str, value: Any, where: str) -> Clause:
        data = _mapping(where, value)
        forms = [k for k in _CLAUSE_FORMS if k in data]
        _check_keys(where, data, (*_CLAUSE_FORMS, "when"))
        when = parse_when(data.get("when"), where)
        if len(forms) != 1:
            raise _err(where, f"an outcome clause is one of {{event: KIND}}, {{final: TEST}}, {{any: TEST}}; got {sorted(data)}")
        form = forms[0]
        if form == "event":
            return cls(result=result, form=form, event=_text(where, "event", data["event"]), when=when)
        test = _mapping(f"{where}.{form}", data[form])
        _check_keys(f"{where}.{form}", test, _TEST_KEYS)
        ops = [k for k in ("above", "below", "equals") if k in test]
        if "signal" not in test or len(ops) != 1:
            raise _err(f"{where}.{form}", "a test is {signal: SIGNAL, above|below|equals: VALUE}")
        return cls(result=result, form=form, signal=Signal.parse(test["signal"], f"{where}.{form}.signal"),
                   op=ops[0], value=_value(where, ops[0], test[ops[0]]), when=when)


@dataclass(frozen=True)
class Outcome:
    """Ordered outcome clauses: the first that holds decides; none: unknown."""

    clauses: tuple[Clause, ...] = ()

    @property
    def streams(self) -> list[str]:
        return [s for c in self.clauses for s in c.streams]

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.clauses]

    @classmethod
    def parse(cls, value: Any) -> Outcome:
        """From ``{success: C, failure: C}`` (order kept), a list of such one-key
        mappings, or lists of clauses per result (``success: [C, C]``)."""
        where = "outcome"
        items: list[tuple[str, Any]] = []
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            items = list(value.items())
        elif isinstance(value, list):
            for i, entry in enumerate(value):
                entry = _mapping(f"{where}[{i}]", entry)
                if len(entry) != 1:
                    raise _err(f"{where}[{i}]", f"each entry is one 'success:' or 'failure:' clause, got {sorted(entry)}")
                items.extend(entry.items())
        else:
            raise _err(where, f"expected a mapping or a list of clauses, got {value!r}")
        clauses: list[Clause] = []
        for result, body in items:
            if result not in ("success", "failure"):
                raise _err(where, f"unknown key {result!r}; valid keys: success, failure")
            bodies = body if isinstance(body, list) else [body]
            for j, b in enumerate(bodies):
                clauses.append(Clause.parse(result, b, f"{where}.{result}" + (f"[{j}]" if isinstance(body, list) else "")))
        return cls(tuple(clauses))


# --------------------------------------------------------------------------- rule sets

_TOP_KEYS = ("events", "outcome", "defaults")


@dataclass(frozen=True)
class RuleSet:
    """Event rules and outcome clauses, validated.

    Attributes
    ----------
    events
        The event rules, in an order where every sequence comes after the rules that
        make the kinds it reads.
    outcome
        The outcome clauses (empty: the rules decide no outcome).
    defaults
        Whether the format defaults (:mod:`workbench.events.defaults`) apply too
        (``True``), none (``False``) or all but these names (a tuple).
    origin
        Where the rules came from (a file path, ``"python"``, ``"defaults:<format>"``).
    """

    events: tuple[AnyRule, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)
    defaults: bool | tuple[str, ...] = True
    origin: str = field(default="python", compare=False)

    def __post_init__(self) -> None:
        names = [r.name for r in self.events]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            msg = f"rules: the rule name(s) {dup} are used twice; each rule needs its own name"
            raise ConfigError(msg)
        object.__setattr__(self, "events", tuple(_ordered(self.events)))

    @property
    def empty(self) -> bool:
        """True when there are no rules and no outcome clauses."""
        return not self.events and not self.outcome.clauses

    @property
    def streams(self) -> list[str]:
        """Every stream some rule reads."""
        return sorted({s for r in self.events for s in r.streams} | set(self.outcome.streams))

    def rule(self, name: str) -> AnyRule:
        """The rule called *name* (:class:`ConfigError` listing the names otherwise)."""
        for r in self.events:
            if r.name == name:
                return r
        msg = f"no rule named {name!r}; rules: {', '.join(r.name for r in self.events) or '(none)'}"
        raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (``RuleSet.from_dict(rs.to_dict()) == rs``)."""
        d: dict[str, Any] = {}
        if self.events:
            d["events"] = [r.to_dict() for r in self.events]
        if self.outcome.clauses:
            d["outcome"] = self.outcome.to_list()
        if self.defaults is not True:
            d["defaults"] = self.defaults if self.defaults is False else {"disable": list(self.defaults)}
        return d

    def to_yaml(self) -> str:
        """The YAML text of :meth:`to_dict`."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @property
    def digest(self) -> str:
        """A short hash of the rules (the version stored with the events they made)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def merged(self, base: RuleSet) -> RuleSet:
        """These rules over *base* (a format's defaults): a rule of the same name replaces
        the base's, outcome clauses replace the base's when given."""
        mine = {r.name for r in self.events}
        events = [r for r in base.events if r.name not in mine] + list(self.events)
        outcome = self.outcome if self.outcome.clauses else base.outcome
        return RuleSet(events=tuple(events), outcome=outcome, defaults=self.defaults, origin=self.origin)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, origin: str = "python") -> RuleSet:
        """Validate and build from the parsed YAML (unknown keys are refused)."""
        if data is None:
            return cls(origin=origin)
        data = _mapping("rules", data)
        known = [k for k in data if k in _TOP_KEYS]
        rest = [k for k in data if k not in _TOP_KEYS]
        if rest and not known:
            raise _err("rules", f"unknown key(s) {rest}; valid keys: {', '.join(_TOP_KEYS)}")
        events = data.get("events") or []
        if not isinstance(events, list):
            raise _err("events", f"expected a list of rules, got {type(events).__name__}")
        rules = tuple(parse_rule(r, i) for i, r in enumerate(events))
        defaults: bool | tuple[str, ...] = True
        raw = data.get("defaults", True)
        if isinstance(raw, bool):
            defaults = raw
        elif isinstance(raw, Mapping) and set(raw) <= {"disable"} and isinstance(raw.get("disable", []), list):
            defaults = tuple(str(x) for x in raw.get("disable", []))
        else:
            raise _err("defaults", f"expected true, false or {{disable: [RULE, ...]}}, got {raw!r}")
        return cls(events=rules, outcome=Outcome.parse(data.get("outcome")), defaults=defaults, origin=origin)

    @classmethod
    def from_yaml(cls, text: str, *, origin: str = "python") -> RuleSet:
        """Parse YAML text (``yaml.safe_load``: data only)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            msg = f"{origin}: not valid YAML: {err}"
            raise ConfigError(msg) from err
        return cls.from_dict(data, origin=origin)


def _ordered(rules: Iterable[AnyRule]) -> list[AnyRule]:
    """Rules with each sequence after the rules making the kinds it reads; a cycle is an error."""
    rules = list(rules)
    makers: dict[str, list[AnyRule]] = {}
    for r in rules:
        makers.setdefault(r.event_kind, []).append(r)
    state: dict[str, int] = {}
    out: list[AnyRule] = []

    def visit(r: AnyRule, path: list[str]) -> None:
        if state.get(r.name) == 2:
            return
        if state.get(r.name) == 1:
            cycle = [*path[path.index(r.name):], r.name]
            msg = f"rule {r.name!r}: the sequence rules form a cycle: {' -> '.join(cycle)}"
            raise ConfigError(msg)
        state[r.name] = 1
        for kind in r.needs:
            for dep in makers.get(kind, []):
                visit(dep, [*path, r.name])
        state[r.name] = 2
        out.append(r)

    for r in rules:
        visit(r, [])
    return out


def load_rules(path: str | os.PathLike[str] | None = None, *, section_only: bool = True) -> RuleSet:
    """Rules from a YAML file: its ``events:``/``outcome:``/``defaults:`` sections (other
    sections of a ``workbench.yaml``, such as ``factors:``, are ignored).

    Raises :class:`ConfigError` naming the file when it cannot be read or is invalid.
    """
    from workbench.config import read_config

    if path is None:
        return RuleSet(origin="none")
    p = Path(path)
    try:
        data = read_config(p)
    except ConfigError as err:
        msg = f"cannot read rules from {str(p)!r}: {err}"
        raise ConfigError(msg) from err
    if section_only:
        data = {k: v for k, v in data.items() if k in _TOP_KEYS}
    try:
        return RuleSet.from_dict(data, origin=str(p))
    except ConfigError as err:
        msg = f"{str(p)!r}: {err}"
        raise ConfigError(msg) from err
