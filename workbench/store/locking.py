"""Who else is writing: liveness of the processes that left markers and temporary runs.
(The catalog's lock itself is a file lock taken by :class:`workbench.store.core.StoreCore`.)"""

from __future__ import annotations

import os

__all__ = ["_pid_alive"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
