"""``dtncloud tcpcl``: talk TCPCL to any peer from the shell, to move bundles or debug a link.

``listen`` accepts sessions (TCPCLv4 and v3 on one port) and writes each received bundle to
a directory; ``send`` opens one session, sends files as bundles, waits until each is fully
acknowledged and ends the session with SESS_TERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dtncloud.cla.base import Link, ReceivedBundle, SendOnly
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.cla.tls import TlsConfig
from dtncloud.cli._output import CliError, about, error_line
from dtncloud.cli._params import EID_PARAM, SIZE
from dtncloud.cli._received import save_received, stop_on_signals
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, DtnError, TransferRefused, TransportError
from dtncloud.tcpcl.codes import DEFAULT_PORT, XferRefuseReason
from dtncloud.tcpcl.config import DEFAULT_SEGMENT_MRU, DEFAULT_TRANSFER_MRU

__all__ = ["tcpcl"]

_NO_RESOURCES = int(XferRefuseReason.NO_RESOURCES)
_SESSION_TERMINATING = int(XferRefuseReason.SESSION_TERMINATING)

F = TypeVar("F", bound=Callable[..., Any])


def tls_options(func: F) -> F:
    """The ``--tls-*`` options shared by listen and send."""
    options = [
        click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate (chain) to present; enables TLS."),
        click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key of --tls-cert."),
        click.option("--tls-ca", type=click.Path(), help="CA file or directory that peer certificates must chain to."),
        click.option("--tls-require", is_flag=True, help="Refuse sessions that do not negotiate TLS."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def session_options(func: F) -> F:
    """Negotiation parameters shared by listen and send."""
    options = [
        click.option("--keepalive", "keepalive_s", type=click.IntRange(0, 65535), default=60, show_default=True, help="Keepalive interval offered, in seconds (0: none)."),
        click.option("--segment-mru", type=SIZE, default=DEFAULT_SEGMENT_MRU, show_default=True, help="Largest segment accepted (and sent)."),
        click.option("--transfer-mru", type=SIZE, default=DEFAULT_TRANSFER_MRU, show_default=True, help="Largest bundle accepted."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def make_tls(cert: str | None, key: str | None, ca: str | None, require: bool) -> TlsConfig | None:
    """The TLS configuration the ``--tls-*`` options describe (``None``: no TLS)."""
    return TlsConfig.from_options(cert, key, ca, require=require)


class _Saver:
    """Writes each received bundle to a directory and counts them (the listen command's node)."""

    def __init__(self, out: Path, count: int | None, done: asyncio.Event, quiet: bool) -> None:
        self.out = out
        self.count = count
        self.done = done
        self.quiet = quiet
        self.received = 0
        self.error: OSError | None = None

    def link_up(self, link: Link) -> None:
        if not self.quiet:
            click.echo(
                f"session with {link.peer_address} ({link.peer_node_id or '?'}) up", err=True
            )

    def link_down(self, link: Link, reason: str) -> None:
        if not self.quiet:
            click.echo(f"session with {link.peer_address} ended: {reason}", err=True)

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        if self.error is not None or (self.count is not None and self.received >= self.count):
            raise TransferRefused("the listener is stopping", reason=_SESSION_TERMINATING)
        try:
            path = save_received(self.out, bundle, f"bundle-{self.received + 1}")
        except OSError as exc:
            # Refused (the sender keeps the bundle) and reported: the command ends with it.
            self.error = exc
            self.done.set()
            raise TransferRefused(
                f"cannot store the bundle: {exc.strerror or exc}", reason=_NO_RESOURCES
            ) from None
        self.received += 1
        click.echo(f"{path} ({bundle.length} bytes from {bundle.link.peer_address})")
        if self.count is not None and self.received >= self.count:
            self.done.set()


@click.group()
def tcpcl() -> None:
    """Send and receive bundles over TCPCL (RFC 9174 v4 with TLS, RFC 7242 v3)."""


@tcpcl.command()
@click.option("--host", default="", help="Address to listen on (default: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--node-id", type=EID_PARAM, required=True, help="Our node ID, sent in SESS_INIT.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    required=True,
    help="Directory for received bundles (created if missing).",
)
@click.option("--count", type=click.IntRange(1), help="Exit after this many bundles.")
@click.option("--quiet", "-q", is_flag=True, help="Only print received files.")
@session_options
@tls_options
def listen(
    host: str, port: int, node_id: EID, out: str, count: int | None, quiet: bool,
    keepalive_s: int, segment_mru: int, transfer_mru: int,
    tls_cert: str | None, tls_key: str | None, tls_ca: str | None, tls_require: bool,
) -> None:  # fmt: skip
    """Accept TCPCL sessions and write each received bundle to OUT as its own file.

    Files are named after the bundle ID. A bundle is acknowledged only once its file is
    written and synced.
    """
    out_dir = Path(out)
    with about(out):
        out_dir.mkdir(parents=True, exist_ok=True)
    with about("--tls"):
        tls = make_tls(tls_cert, tls_key, tls_ca, tls_require)
    options = TcpclOptions(
        node_id=str(node_id), listen=host, port=port, keepalive_s=keepalive_s,
        segment_mru=segment_mru, max_segment_size=segment_mru, transfer_mru=transfer_mru,
        tls=tls, spool_dir=out_dir / ".spool",
    )  # fmt: skip
    saver = _Saver(out_dir, count, asyncio.Event(), quiet)
    asyncio.run(_listen(options, saver))
    if saver.error is not None:
        raise CliError(error_line(out, saver.error))


async def _listen(options: TcpclOptions, saver: _Saver) -> None:
    done, quiet, out_dir = saver.done, saver.quiet, saver.out
    cla = TcpclConvergenceLayer(saver, options)
    await cla.start()
    stop_on_signals(done)
    if not quiet:
        tls = " with TLS" if options.tls else ""
        click.echo(
            f"listening on {options.listen or '*'}:{cla.port}{tls} as {options.node_id}", err=True
        )
    try:
        await done.wait()
    finally:
        await cla.stop()
        with contextlib.suppress(OSError):
            (out_dir / ".spool").rmdir()


@tcpcl.command()
@click.option("--node-id", type=EID_PARAM, required=True, help="Our node ID, sent in SESS_INIT.")
@click.option(
    "--version",
    "version",
    type=click.Choice(["3", "4"]),
    default="4",
    show_default=True,
    help="TCPCL version to speak.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the connection and session.",
)
@session_options
@tls_options
@click.argument("address", metavar="HOST:PORT")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def send(
    node_id: EID, version: str, timeout: float, address: str, files: tuple[str, ...],
    keepalive_s: int, segment_mru: int, transfer_mru: int,
    tls_cert: str | None, tls_key: str | None, tls_ca: str | None, tls_require: bool,
) -> None:  # fmt: skip
    """Send each FILE (an encoded bundle) to HOST:PORT over one TCPCL session.

    Waits until every bundle is fully acknowledged, then ends the session with SESS_TERM.
    Exits non-zero with a one-line reason if a transfer was refused or the session failed.
    """
    with about("--tls"):
        tls = make_tls(tls_cert, tls_key, tls_ca, tls_require)
    with about("options"):
        options = TcpclOptions(
            node_id=str(node_id), version=int(version), keepalive_s=keepalive_s,
            segment_mru=segment_mru, max_segment_size=segment_mru, transfer_mru=transfer_mru,
            tls=tls, contact_timeout_s=timeout,
        )  # fmt: skip
    failures = asyncio.run(_send(options, address, files))
    if failures:
        raise CliError(
            failures[0]
            if len(failures) == 1
            else f"{len(failures)} of {len(files)} bundles failed; first: {failures[0]}"
        )


async def _send(options: TcpclOptions, address: str, files: tuple[str, ...]) -> list[str]:
    cla = TcpclConvergenceLayer(SendOnly(), options)
    await cla.start()
    failures: list[str] = []
    try:
        try:
            link = await cla.connect(address)
        except (TransportError, ConfigError) as exc:
            return [f"{address}: {exc}"]

        async def one(name: str) -> None:
            try:
                await link.send(Path(name))
            except DtnError as exc:
                failures.append(f"{name}: {exc}")
            except OSError as exc:
                failures.append(f"{name}: {exc.strerror or exc}")
            else:
                click.echo(f"{name}: sent and acknowledged ({Path(name).stat().st_size} bytes)")

        # All at once: the link pipelines them over the session in this order.
        await asyncio.gather(*(one(name) for name in files))
        await link.close()
    finally:
        await cla.stop()
    return failures


logging.getLogger("dtncloud").addHandler(logging.NullHandler())
