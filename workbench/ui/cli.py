"""The ``workbench serve`` command (registered on the ``workbench`` group by ``workbench.cli``)."""

from __future__ import annotations

import click

__all__ = ["serve"]


@click.command(name="serve")
@click.option("--store", "store_path", default=None, metavar="DIR",
              help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--port", default=5006, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes the app to the network "
                   "and requires a token).")
@click.option("--token", default=None, envvar="WORKBENCH_TOKEN", metavar="TEXT",
              help="Access token (at least 16 characters) [default: $WORKBENCH_TOKEN; a random one is made when "
                   "--address is not this machine; none on 127.0.0.1].")
@click.option("--allow-origin", multiple=True, metavar="HOST[:PORT]",
              help="Another name the browser uses to reach this machine (repeatable).")
@click.option("--show/--no-show", default=False, show_default=True, help="Open the app in a browser.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar while missing grades or metrics are computed [default: on a terminal].")
def serve(store_path: str | None, port: int, address: str, token: str | None, allow_origin: tuple[str, ...],
          show: bool, progress: bool | None) -> None:
    """Serve the interactive app (run browser, comparisons, run detail, replay) on a store.

    Data grades and metrics that runs lack are computed first and kept in the catalog.
    """
    import sys

    from workbench.comparison import ensure_measured
    from workbench.model import ConfigError
    from workbench.store import open_store
    from workbench.ui.app import serve as serve_app
    from workbench.ui.auth import is_loopback, new_token

    if token is not None and len(token) < 16:
        msg = "--token must have at least 16 characters"
        raise ConfigError(msg)
    if token is None and not is_loopback(address):
        token = new_token()
    store = open_store(store_path, create=False)
    done = ensure_measured(store, metrics=None, grades=True,
                           progress=sys.stderr.isatty() if progress is None else progress)
    if done:
        click.echo("computed " + ", ".join(f"{k} for {len(v)} run(s)" for k, v in done.items()), err=True)
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address  # noqa: S104 - shown as a loopback link
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"serving {store.url} at {url} (Ctrl+C stops)", err=False)
    if token:
        click.echo("open that address once (token included); the browser then keeps the token in a cookie")
    serve_app(store, address=address, port=port, show=show, token=token, allow_origin=allow_origin)
