"""Keep a notebook's Panel components offline.

With ``pn.extension(..., inline=True)`` Panel inlines its resources into a notebook
cell's first render, but stylesheets of models created later (updates sent through the
comm) fall back to Panel's CDN. Inside a Jupyter kernel this points that fallback at
the route of Panel's Jupyter server extension (installed with Panel), so the same CSS
comes from the local Jupyter server and nothing leaves the machine. Served apps and
saved files are not affected (their documents name their own resource location).
"""

from __future__ import annotations

import sys

__all__ = ["LOCAL_DIST", "use_local_panel_css"]

LOCAL_DIST = "/panel-preview/static/extensions/panel/"
"""Where Panel's Jupyter server extension serves Panel's ``dist`` folder."""


def _in_kernel() -> bool:
    """True inside a running Jupyter (ZMQ) kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001  (any failure: not a kernel)
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def use_local_panel_css(*, force: bool = False) -> bool:
    """Point Panel's CDN fallback for stylesheets at the local Jupyter server.

    Done only inside a running Jupyter kernel (or with *force*), never in a process
    that merely imported ``ipykernel`` (a served app keeps Panel's own locations);
    returns whether it was done.
    """
    if not force and not _in_kernel():
        return False
    import panel.reactive

    panel.reactive.CDN_DIST = LOCAL_DIST  # the fallback of documents without a 'dist_url'
    return True
