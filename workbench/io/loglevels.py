"""Log levels: every reader's severity scheme mapped onto one vocabulary.

Text log messages become events of kind ``"log"`` whose detail has a ``level`` from
:data:`LEVELS` (lowest first) and the format's own value as ``severity``, so that a
rule asking for "``WARN`` or worse" means the same on every log format.

======================  ================================  =====================
scheme                  raw values                        used by
======================  ================================  =====================
``"ros1"``              1 DEBUG, 2 INFO, 4 WARN,          ``rosgraph_msgs/Log``
                        8 ERROR, 16 FATAL
``"ros2"``              10 DEBUG, 20 INFO, 30 WARN,       ``rcl_interfaces/msg/Log``
                        40 ERROR, 50 FATAL
``"syslog"``            0 EMERGENCY, 1 ALERT,             MAVLink ``STATUSTEXT``
                        2 CRITICAL, 3 ERROR, 4 WARNING,   (``MAV_SEVERITY``),
                        5 NOTICE, 6 INFO, 7 DEBUG         PX4 ULog messages
======================  ================================  =====================

Syslog severities fold into the five levels: EMERGENCY, ALERT and CRITICAL →
``FATAL``; WARNING → ``WARN``; NOTICE and INFO → ``INFO``. The syslog scheme also
accepts the names (``"WARNING"``, any case) and the digits as text (PX4 writes the
level as an ASCII digit ``'0'``..``'7'``). A value a scheme does not define maps to
``None`` (no level) rather than a guess; readers keep the raw value as ``severity``.
"""

from __future__ import annotations

from typing import Final

from workbench.model import ConfigError

__all__ = ["LEVELS", "SCHEMES", "SYSLOG_NAMES", "normalize_level"]

LEVELS: Final[tuple[str, ...]] = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
"""Log levels, lowest first."""

SYSLOG_NAMES: Final[tuple[str, ...]] = (
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
)
"""Syslog (RFC 5424) severity names by number, as MAVLink and PX4 use them."""

_SYSLOG_LEVEL: Final[tuple[str, ...]] = (
    "FATAL",
    "FATAL",
    "FATAL",
    "ERROR",
    "WARN",
    "INFO",
    "INFO",
    "DEBUG",
)

_BY_NUMBER: Final[dict[str, dict[int, str]]] = {
    "ros1": {1: "DEBUG", 2: "INFO", 4: "WARN", 8: "ERROR", 16: "FATAL"},
    "ros2": {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "FATAL"},
    "syslog": dict(enumerate(_SYSLOG_LEVEL)),
}

_BY_NAME: Final[dict[str, str]] = {
    **{name: _SYSLOG_LEVEL[i] for i, name in enumerate(SYSLOG_NAMES)},
    **{name: name for name in LEVELS},
}

SCHEMES: Final[tuple[str, ...]] = tuple(_BY_NUMBER)
"""The schemes :func:`normalize_level` knows."""


def normalize_level(value: int | str | None, scheme: str) -> str | None:
    """The :data:`LEVELS` name of a log severity given in *scheme*, or ``None``.

    Parameters
    ----------
    value
        The severity as the log stores it: a number (``20``, ``4``), or for the
        ``"syslog"`` scheme also a digit or a name (``"4"``, ``"WARNING"``,
        ``"warn"``). ``None`` gives ``None``.
    scheme
        ``"ros1"``, ``"ros2"`` or ``"syslog"`` (see :data:`SCHEMES`).

    Returns
    -------
    str or None
        One of :data:`LEVELS`; ``None`` for a value the scheme does not define.

    Raises
    ------
    ConfigError
        When *scheme* is not one of :data:`SCHEMES`.

    Examples
    --------
    >>> normalize_level(20, "ros2"), normalize_level(4, "ros1"), normalize_level(2, "syslog")
    ('INFO', 'WARN', 'FATAL')
    >>> normalize_level("WARNING", "syslog"), normalize_level(3, "ros1")
    ('WARN', None)
    """
    table = _BY_NUMBER.get(scheme)
    if table is None:
        msg = f"unknown log level scheme {scheme!r}; choose one of {', '.join(SCHEMES)}"
        raise ConfigError(msg)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if scheme == "syslog" and text.upper() in _BY_NAME:
            return _BY_NAME[text.upper()]
        try:
            value = int(text)
        except ValueError:
            return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return table.get(number)
