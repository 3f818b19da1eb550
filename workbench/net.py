"""Addresses the workbench's servers listen on: loopback checks and free ports.

Every server the workbench starts (the served app, the Rerun replay, Dask) binds
``127.0.0.1`` unless the user asks otherwise; these helpers are shared by them.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["LOOPBACK", "free_port", "is_loopback"]

LOOPBACK = "127.0.0.1"
"""The default address of every server the workbench starts."""


def is_loopback(address: str) -> bool:
    """True when *address* only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on *host* right now (the OS picks it).

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
