"""Visualization: Rerun replay (``workbench.viz.rerun``) and HoloViews plots (``workbench.viz.plots``).

Submodules load on first use (``wb.viz.rerun``, ``wb.viz.plots``), so importing this
package pulls in neither rerun nor holoviews.
"""

_SUBMODULES = frozenset({"rerun", "rerun_cli", "plots"})


def __getattr__(name: str) -> object:
    """Import ``workbench.viz.<name>`` on first attribute access."""
    if name in _SUBMODULES:
        import importlib

        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
