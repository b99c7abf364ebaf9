"""``dtncloud udp``: send and receive bundles over the UDP convergence layer (RFC 7122).

The interop tools for a UDP link: ``listen`` writes every bundle that arrives to its own file,
``send`` sends bundle files, one datagram each. Both are shells around
:class:`dtncloud.cla.udp.UdpConvergenceLayer`.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import click

from dtncloud.cla.base import Link, ReceivedBundle, SendOnly, parse_host_port
from dtncloud.cla.udp import UdpConvergenceLayer
from dtncloud.cli._output import CliError, about, error_line, read_input, stdin_name
from dtncloud.cli._params import SIZE, SizeParam
from dtncloud.cli._received import save_received, stop_on_signals
from dtncloud.discovery import format_address
from dtncloud.errors import BundleTooLarge, ConfigError, DtnError, TransferRefused
from dtncloud.udpcl import (
    DEFAULT_PORT,
    DEFAULT_RATE_BYTES_PER_S,
    IPV4_MAX_PAYLOAD,
    Classification,
    DatagramKind,
    classify,
)

__all__ = ["udp"]


class RateParam(SizeParam):
    """Bytes per second with an optional unit (``64k``, ``1M``); ``0`` or ``unlimited``: none."""

    name = "BYTES/S"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() in {"0", "unlimited", "none"}:
            return 0
        return super().convert(value, param, ctx)


MAX_BUNDLE_SIZE_OPTION = click.option(
    "--max-bundle-size",
    type=SIZE,
    default=IPV4_MAX_PAYLOAD,
    show_default=True,
    help="Largest bundle carried in one datagram (bytes; at most 65507 over IPv4).",
)


@click.group()
def udp() -> None:
    """Send and receive bundles over UDP (RFC 7122), one bundle per datagram."""


class _Listener:
    """The ``LinkEvents`` of ``udp listen``: writes and reports each bundle."""

    def __init__(self, out_dir: Path | None, count: int | None, max_size: int) -> None:
        self.out_dir = out_dir
        self.count = count
        self.max_size = max_size
        self.received = 0
        self.done = asyncio.Event()
        self.error: BaseException | None = None

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link, reason: str) -> None:
        pass

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        if self.done.is_set():
            return
        data = bundle.read()
        verdict = classify(data, max_size=self.max_size)
        bundle_id = verdict.bundle_id or "unknown"
        where = ""
        if self.out_dir is not None:
            try:
                path = save_received(
                    self.out_dir, bundle, f"bundle-{self.received + 1}", verdict.bundle_id
                )
            except OSError as exc:
                # Reported by the command as one line; the CLA would only log it.
                self.error = exc
                self.done.set()
                return
            where = f", wrote {path}"
        self.received += 1
        version = "BPv6 bundle" if verdict.kind is DatagramKind.BPV6 else "bundle"
        click.echo(
            f"received {version} {bundle_id}: {len(data)} bytes from "
            f"{bundle.link.peer_address}{where}"
        )
        if self.count is not None and self.received >= self.count:
            self.done.set()


@udp.command(short_help="Receive bundles, writing each to its own file.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="UDP port (0: any free port, printed).",
)
@click.option(
    "--out", "out_dir", metavar="DIR", help="Write each bundle to DIR/<bundle ID>.bundle."
)
@click.option("--count", type=click.IntRange(min=1), help="Exit after receiving N bundles.")
@MAX_BUNDLE_SIZE_OPTION
def listen(
    host: str, port: int, out_dir: str | None, count: int | None, max_bundle_size: int
) -> None:
    """Receive bundles on a UDP port and print one line per bundle.

    With --out, each bundle is written to DIR (created if missing) as a file named after its
    bundle ID. Datagrams that are not bundles are ignored. Runs until interrupted, or until
    --count bundles have arrived.
    """
    directory = Path(out_dir) if out_dir is not None else None
    if directory is not None:
        with about(out_dir or ""):
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise PermissionError(errno.EACCES, "directory is not writable", str(directory))
    listener = _Listener(directory, count, max_bundle_size)
    asyncio.run(_listen(listener, host, port, max_bundle_size))
    if listener.error is not None:
        raise CliError(error_line(out_dir, listener.error))


async def _listen(listener: _Listener, host: str, port: int, max_bundle_size: int) -> None:
    cla = UdpConvergenceLayer(
        listener, host=host, port=port, max_bundle_size=max_bundle_size, rate_bytes_per_s=0
    )
    await cla.start()
    stop_on_signals(listener.done)
    try:
        click.echo(f"listening on {format_address(host, cla.port)} (udp)")
        await listener.done.wait()
    finally:
        await cla.stop()
    ignored = cla.stats.ignored
    if ignored:
        click.echo(f"ignored {ignored} datagram{'s' if ignored != 1 else ''} that held no bundle")


def _load(path: str, max_size: int) -> tuple[bytes, Classification]:
    with about(stdin_name(path)):
        try:
            data = read_input(path, max_size)
        except BundleTooLarge as exc:
            raise TransferRefused(
                f"{exc}: too large for one UDP datagram; fragment it first "
                f"(dtncloud bundle fragment --max-size {max_size})",
                reason=2,
            ) from None
        verdict = classify(data, max_size=max_size)
        if not verdict.is_bundle:
            raise ConfigError(f"not a bundle: {verdict.reason}")
    return data, verdict


@udp.command(short_help="Send bundle files, one datagram each.")
@click.argument("address", metavar="HOST:PORT")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@MAX_BUNDLE_SIZE_OPTION
@click.option(
    "--rate",
    type=RateParam(),
    default=DEFAULT_RATE_BYTES_PER_S,
    show_default=True,
    help="Sending limit in bytes per second (suffixes k, M); 0 for none.",
)
def send(address: str, files: tuple[str, ...], max_bundle_size: int, rate: int) -> None:
    """Send each bundle FILE (- is stdin) to HOST:PORT as one UDP datagram.

    Every file is checked first: if one is not a bundle, or too large for a datagram, nothing
    is sent and the exit status is 1. UDP does not acknowledge, so "sent" means handed to the
    operating system.
    """
    try:
        host, _ = parse_host_port(address, DEFAULT_PORT)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="HOST:PORT") from None
    loaded = [(stdin_name(path), *_load(path, max_bundle_size)) for path in files]
    asyncio.run(_send(address, host, loaded, max_bundle_size, rate))


async def _send(
    address: str,
    host: str,
    loaded: list[tuple[str, bytes, Classification]],
    max_bundle_size: int,
    rate: int,
) -> None:
    cla = UdpConvergenceLayer(
        SendOnly(),
        host="::" if ":" in host else "0.0.0.0",
        port=0,
        max_bundle_size=max_bundle_size,
        rate_bytes_per_s=rate,
    )
    try:
        link = await cla.connect(address)
        for name, data, verdict in loaded:
            try:
                await link.send(data)
            except DtnError as exc:
                raise CliError(f"{name}: {exc}") from exc
            click.echo(
                f"sent {name}: {len(data)} bytes, bundle {verdict.bundle_id} to {link.peer_address}"
            )
    finally:
        await cla.stop()
