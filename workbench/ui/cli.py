"""The ``workbench serve`` command (registered on the ``workbench`` group by ``workbench.cli``)."""

from __future__ import annotations

import click

__all__ = ["serve"]


@click.command(name="serve")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--port", default=5006, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes the app to the network).")
@click.option("--show/--no-show", default=False, show_default=True, help="Open the app in a browser.")
def serve(store_path: str | None, port: int, address: str, show: bool) -> None:
    """Serve the interactive app (run browser, comparisons, run detail, replay) on a store."""
    from workbench.store import open_store
    from workbench.ui.app import serve as serve_app

    store = open_store(store_path, create=False)
    click.echo(f"serving {store.url} at http://{address}:{port}/ (Ctrl+C stops)")
    serve_app(store, address=address, port=port, show=show)
