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


def use_local_panel_css(*, force: bool = False) -> bool:
    """Point Panel's CDN fallback for stylesheets at the local Jupyter server.

    Done only inside a Jupyter kernel (or with *force*); returns whether it was done.
    """
    if not force and "ipykernel" not in sys.modules:
        return False
    import panel.reactive

    panel.reactive.CDN_DIST = LOCAL_DIST  # the fallback of documents without a 'dist_url'
    return True
