"""``workbench view``: replay runs side by side in Rerun (an .rrd file or the local web viewer).

The command object :data:`view` is registered on the ``workbench`` group by
``workbench.cli`` (``cli.add_command(view)``); rerun is imported only when it runs.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import click

from workbench.model import ConfigError, StoreError
from workbench.net import is_loopback

__all__ = ["view"]


def _load(store: Any, run_ids: tuple[str, ...]) -> list[Any]:
    known = set(store.run_ids())
    unknown = [r for r in run_ids if r not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:8]) + (" …" if len(known) > 8 else "")
        msg = (
            f"unknown run id(s) {unknown} in store {store.url!r}; "
            f"`workbench runs --store …` lists them (e.g. {sample or 'the store is empty'})"
        )
        raise StoreError(msg)
    return [store.load(r, lazy=False) for r in run_ids]


def _grades(store: Any, run_ids: tuple[str, ...]) -> dict[str, Any] | None:
    """Grades already in the store (``workbench grade``), or ``None`` to grade now."""
    from workbench.quality import Grade

    cat = store.runs()
    if "quality.grade" not in cat.columns:
        return None
    letters = dict(zip(cat["run_id"].to_list(), cat["quality.grade"].to_list(), strict=True))
    out: dict[str, Any] = {}
    for rid in run_ids:
        letter = letters.get(rid)
        findings = store.get_table(rid, "quality_findings")
        if letter is None or findings is None:
            return None
        out[rid] = Grade(rid, str(letter), findings)
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("view")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--store", "store_path", default=None, metavar="DIR", help="Store folder or fsspec URL [default: $WORKBENCH_STORE or ./workbench-store].")
@click.option("--align", default="start", show_default=True, metavar="start|event:KIND", help="Put every run's start, or its first KIND event, at aligned time 0.")
@click.option("--layout", type=click.Choice(["side_by_side", "overlay"]), default="side_by_side", show_default=True, help="A column per run plus overlays, or overlays first.")
@click.option("--stream", "streams", multiple=True, metavar="NAME", help="Only these streams (names or globs, repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.rrd", help="Write a Rerun recording (open with `rerun FILE.rrd`).")
@click.option("--serve", is_flag=True, help="Serve the bundled web viewer on 127.0.0.1 (offline, this machine only) and wait for Ctrl-C.")
@click.option("--address", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address --serve listens on. Off this machine (e.g. 0.0.0.0) the viewer page and the recording are "
                   "served on --port behind a token (printed, or --token), with no other port open.")
@click.option("--token", default=None, metavar="TEXT", help="Access token of --serve off this machine [default: a random one].")
@click.option("--port", "web_port", type=int, default=9090, show_default=True, help="Web viewer port (with --serve).")
@click.option("--grpc-port", type=int, default=9876, show_default=True, help="gRPC data port (with --serve).")
@click.option("--at", "at", type=float, default=None, metavar="SECONDS",
              help="Open at this moment: seconds from each run's anchor (--align), e.g. a hit's start_s from `workbench find`.")
def view(
    run_ids: tuple[str, ...],
    store_path: str | None,
    align: str,
    layout: str,
    streams: tuple[str, ...],
    out: Path | None,
    serve: bool,
    address: str,
    token: str | None,
    web_port: int,
    grpc_port: int,
    at: float | None,
) -> None:
    """Replay runs side by side in Rerun, synchronized on one aligned timeline.

    Writes FILE.rrd with --out, serves the web viewer with --serve (both may be given).

    \b
    Examples:
      workbench view 0179889ce5c8dc4f 031569be09a82be9 --align event:grasp --out grasp.rrd
      workbench view 0179889ce5c8dc4f --serve
      workbench view 0179889ce5c8dc4f --at 12.5 --out slip.rrd
    """
    from workbench.store import open_store
    from workbench.viz import rerun as wbr

    if out is None and not serve:
        msg = "nothing to do: give --out FILE.rrd and/or --serve"
        raise ConfigError(msg)
    store = open_store(store_path, create=False)
    runs = _load(store, run_ids)
    grades = _grades(store, run_ids)
    chosen = list(streams) or None
    if out is not None:
        log = wbr.log_runs(runs, align=align, layout=layout, out=out, streams=chosen, grades=grades, at=at)  # type: ignore[arg-type]
        labels = ", ".join(log.labels.values())
        click.echo(f"wrote {out} ({len(runs)} run(s): {labels}; {log.n_scalars:,} samples, {log.n_frames:,} frames)")
    if serve:
        served: Any
        if is_loopback(address) and token is None:
            served = wbr.serve(
                runs, align=align, layout=layout, streams=chosen, grades=grades,  # type: ignore[arg-type]
                grpc_port=grpc_port, web_port=web_port, at=at, host=address,
            )
            click.echo(f"Rerun viewer: {served.url}")
            click.echo(f"native viewer: rerun {served.grpc_url}")
        else:  # off this machine: our own token-protected routes, one port
            import tempfile

            from workbench.ui.replay_routes import serve_replay

            tmp = tempfile.TemporaryDirectory(prefix="workbench-replay-")
            rrd = Path(tmp.name) / "replay.rrd"
            wbr.log_runs(runs, align=align, layout=layout, out=rrd, streams=chosen, grades=grades, at=at)  # type: ignore[arg-type]
            replay = serve_replay(rrd, address=address, port=web_port, token=token)

            class _Both:
                def close(self) -> None:
                    replay.close()
                    tmp.cleanup()

            served = _Both()
            click.echo(f"Rerun viewer: {replay.url}")
            click.echo(f"listening on {address}:{web_port}; the page needs the token above (then a cookie)")
        click.echo("serving; press Ctrl-C to stop", err=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignored it
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            served.close()
