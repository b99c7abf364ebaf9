"""The UDP convergence layer (RFC 7122): one bundle per datagram, unreliable, rate-limited.

One socket, bound to ``host:port`` (4556 by default, 0 for an ephemeral port), both receives
and sends, so a peer that does the same sees our datagrams come from the port it sends to and
both ends agree on one link per address pair. A link is only a destination: :meth:`connect`
resolves the address and never touches the network, and :meth:`UdpLink.send` returns once the
datagram is handed to the operating system.

* A bundle larger than ``max_bundle_size`` (default 65,507 bytes, the largest UDP payload over
  IPv4) is refused with ``TransferRefused(reason=2)`` before anything is sent, so that the
  engine fragments it and tries again.
* Received datagrams are sorted by :func:`dtncloud.udpcl.classify`: bundles go to
  ``LinkEvents.bundle_received`` (as bytes, one at a time in arrival order; the first bundle
  from a new address opens a link and reports ``link_up``), keepalives are counted, everything
  else is ignored and counted in :attr:`UdpConvergenceLayer.stats` (``ignored`` and
  ``extra[<reason>]``). A refusal raised by the node is only counted: UDP cannot tell the peer.
* Sending is paced by a :class:`~dtncloud.udpcl.TokenBucket` shared by every link of the CLA
  (RFC 8085 asks UDP senders for congestion control or a rate limit). Datagrams leave in the
  order ``send`` was called.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from dtncloud.cla.base import (
    ConvergenceLayer,
    Link,
    LinkEvents,
    LinkStats,
    Outgoing,
    ReceivedBundle,
    outgoing_length,
    parse_host_port,
)
from dtncloud.discovery.beacon import format_address
from dtncloud.errors import ConfigError, ConnectError, LinkDown, TransferRefused, TransportError
from dtncloud.udpcl import (
    DEFAULT_PORT,
    DEFAULT_RATE_BYTES_PER_S,
    IPV4_MAX_PAYLOAD,
    IPV6_MAX_PAYLOAD,
    KEEPALIVE,
    DatagramKind,
    TokenBucket,
    classify,
)

__all__ = ["UdpConvergenceLayer", "UdpLink"]

log = logging.getLogger(__name__)

#: TCPCLv4 XFER_REFUSE reason 2 ("no resources"): too large for the link; fragment, retry.
_NO_RESOURCES = 2
# Larger than any UDP payload, so that recvfrom never truncates a datagram.
_RECEIVE_BUFFER = 65_536
# Ask the kernel for room for a burst of full-size datagrams (best effort).
_SOCKET_BUFFER = 1 << 20


class UdpLink(Link):
    """A peer address that bundles go to and come from; created by the CLA."""

    cla_name = "udp"

    def __init__(
        self,
        cla: UdpConvergenceLayer,
        sockaddr: tuple[Any, ...],
        *,
        inbound: bool,
        node_id: str | None = None,
    ) -> None:
        super().__init__()
        self._cla = cla
        self.sockaddr = sockaddr
        self.peer_address = format_address(str(sockaddr[0]), int(sockaddr[1]))
        #: Whether the peer's traffic created the link (rather than :meth:`connect`).
        self.inbound = inbound
        self._node_id = node_id
        self._up = True

    @property
    def peer_node_id(self) -> str | None:
        """The node ID given to :meth:`UdpConvergenceLayer.connect` (UDP carries none)."""
        return self._node_id

    @peer_node_id.setter
    def peer_node_id(self, node_id: str | None) -> None:
        self._node_id = node_id

    @property
    def max_bundle_size(self) -> int:
        return self._cla.max_bundle_size

    @property
    def is_up(self) -> bool:
        return self._up

    async def send(self, bundle: Outgoing) -> None:
        """Send one bundle as one datagram; returns once the OS has it (see the module doc)."""
        await self._cla._send(self, bundle)

    async def send_keepalive(self) -> None:
        """Send a keepalive datagram (four zero octets), e.g. to keep a NAT binding open."""
        await self._cla._send_datagram(self, KEEPALIVE, bundle=False)

    async def close(self) -> None:
        self._cla._drop_link(self, "closed")


class UdpConvergenceLayer(ConvergenceLayer):
    """RFC 7122 over one UDP socket (see the module docstring).

    ``rate_bytes_per_s`` limits sending (0: unlimited); ``burst_bytes`` defaults to two
    full-size bundles. ``accept_bpv6`` hands BPv6 bundles to the node too. ``max_links``
    bounds the links that peers' traffic creates (the least recently active is closed).
    ``clock`` (monotonic milliseconds) and ``sleep`` may be replaced by tests. ``node_id``
    is our own node ID, kept for status displays (RFC 7122 datagrams carry none).
    """

    name = "udp"
    reliable = False

    def __init__(
        self,
        events: LinkEvents,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        max_bundle_size: int = IPV4_MAX_PAYLOAD,
        rate_bytes_per_s: int = DEFAULT_RATE_BYTES_PER_S,
        burst_bytes: int | None = None,
        accept_bpv6: bool = True,
        max_links: int = 1024,
        node_id: str | None = None,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(events)
        if not 0 <= port <= 0xFFFF:
            raise ConfigError(f"udp port {port} out of range")
        if not 1 <= max_bundle_size <= IPV6_MAX_PAYLOAD:
            raise ConfigError(
                f"udp max bundle size must be 1..{IPV6_MAX_PAYLOAD} bytes, not {max_bundle_size}"
            )
        if max_links < 1:
            raise ConfigError("udp max_links must be at least 1")
        self.host = host
        self._port = port
        self._max_bundle_size = max_bundle_size
        self.bucket = TokenBucket(rate_bytes_per_s, burst_bytes or 2 * max_bundle_size)
        self.accept_bpv6 = accept_bpv6
        self.max_links = max_links
        self.node_id = node_id
        #: Counters for the whole CLA, including datagrams no link was made for.
        self.stats = LinkStats()
        self._clock = clock
        self._sleep = sleep
        self._sock: socket.socket | None = None
        self._family = socket.AF_INET
        self._receiver: asyncio.Task[None] | None = None
        self._links: OrderedDict[tuple[str, int], UdpLink] = OrderedDict()
        self._send_lock = asyncio.Lock()

    # -- ConvergenceLayer ---------------------------------------------------------------------

    @property
    def max_bundle_size(self) -> int:
        return self._max_bundle_size

    @property
    def port(self) -> int:
        """The bound port once started (the ephemeral one for port 0), else the configured."""
        return self._port

    @property
    def links(self) -> list[Link]:
        return list(self._links.values())

    async def start(self) -> None:
        """Bind the socket and start receiving; raises ``TransportError`` if it cannot."""
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self.host, self._port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
            )
        except OSError as exc:
            raise ConfigError(f"udp host {self.host!r}: {exc.strerror or exc}") from exc
        family, _, _, _, sockaddr = infos[0]
        if family == socket.AF_INET and self._max_bundle_size > IPV4_MAX_PAYLOAD:
            raise ConfigError(
                f"udp max bundle size {self._max_bundle_size} exceeds the IPv4 limit of "
                f"{IPV4_MAX_PAYLOAD} bytes"
            )
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            where = format_address(self.host, self._port)
            raise TransportError(f"udp: cannot listen on {where}: {exc.strerror or exc}") from exc
        self._sock = sock
        self._family = family
        self._port = sock.getsockname()[1]
        self._receiver = asyncio.create_task(self._receive_loop(sock), name=f"udp-{self._port}")
        log.info("udp: listening on %s", format_address(self.host, self._port))

    async def stop(self) -> None:
        """Close every link (reporting ``link_down``) and the socket."""
        for link in list(self._links.values()):
            self._drop_link(link, "convergence layer stopped")
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.cancel()
            # gather, not suppress(CancelledError): a cancellation of stop() must propagate.
            await asyncio.gather(receiver, return_exceptions=True)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def connect(self, address: str, *, node_id: str | None = None) -> UdpLink:
        """A link to ``host[:port]`` (port 4556 by default); starts the CLA if need be.

        Only resolves the address: UDP has no handshake, so a peer that is not there goes
        unnoticed. Raises :class:`ConnectError` if the name does not resolve.
        """
        host, port = parse_host_port(address, DEFAULT_PORT)
        if self._sock is None:
            await self.start()
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, family=self._family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise ConnectError(f"udp {address}: {exc.strerror or exc}") from exc
        sockaddr = infos[0][4]
        link = self._links.get((str(sockaddr[0]), int(sockaddr[1])))
        if link is None:
            link = self._add_link(sockaddr, inbound=False)
        else:
            link.inbound = False
        if node_id is not None:
            link.peer_node_id = node_id
        return link

    # -- links --------------------------------------------------------------------------------

    def _add_link(self, sockaddr: tuple[Any, ...], *, inbound: bool) -> UdpLink:
        if inbound and len(self._links) >= self.max_links:
            # Spoofed source addresses must not grow the table without bound: close the link
            # that has been quiet longest among those peers' traffic made.
            oldest = next((link for link in self._links.values() if link.inbound), None)
            if oldest is not None:
                self._drop_link(oldest, "too many UDP peers; this one was the least active")
        link = UdpLink(self, sockaddr, inbound=inbound)
        self._links[(str(sockaddr[0]), int(sockaddr[1]))] = link
        self.events.link_up(link)
        return link

    def _drop_link(self, link: UdpLink, reason: str) -> None:
        if not link._up:
            return
        link._up = False
        key = (str(link.sockaddr[0]), int(link.sockaddr[1]))
        if self._links.get(key) is link:
            del self._links[key]
        self.events.link_down(link, reason)

    def _count(self, key: str, stats: LinkStats | None = None, amount: int = 1) -> None:
        for target in (self.stats, stats):
            if target is not None:
                target.extra[key] = target.extra.get(key, 0) + amount

    # -- sending ------------------------------------------------------------------------------

    def _now(self) -> int:
        if self._clock is not None:
            return self._clock()
        return int(asyncio.get_running_loop().time() * 1000)

    async def _send(self, link: UdpLink, bundle: Outgoing) -> None:
        size = outgoing_length(bundle)
        if size > self._max_bundle_size:
            self._refuse(link, size)
        if isinstance(bundle, bytes | bytearray | memoryview):
            data = bytes(bundle)
        else:
            data = Path(bundle).read_bytes()
            if len(data) > self._max_bundle_size:  # the file grew since it was measured
                self._refuse(link, len(data))
        await self._send_datagram(link, data, bundle=True)

    def _refuse(self, link: UdpLink, size: int) -> NoReturn:
        link.stats.refused += 1
        self.stats.refused += 1
        raise TransferRefused(
            f"bundle of {size} bytes exceeds the UDP limit of {self._max_bundle_size} bytes: "
            "fragment it",
            reason=_NO_RESOURCES,
        )

    async def _send_datagram(self, link: UdpLink, data: bytes, *, bundle: bool) -> None:
        # The lock keeps datagrams in call order while one of them waits for the bucket.
        async with self._send_lock:
            sock = self._sock
            if not link.is_up or sock is None:
                raise LinkDown(f"udp {link.peer_address}: link is closed")
            size = len(data)
            delay = self.bucket.delay_ms(size, self._now())
            if delay:
                self._count("rate_limited", link.stats)
                self._count("rate_wait_ms", link.stats, delay)
                await self._sleep(delay / 1000)
                sock = self._sock
                if not link.is_up or sock is None:
                    raise LinkDown(f"udp {link.peer_address}: link closed while waiting")
            self.bucket.consume(size, self._now())
            try:
                await asyncio.get_running_loop().sock_sendto(sock, data, link.sockaddr)
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    self._refuse(link, size)
                reason = f"send failed: {exc.strerror or exc}"
                self._drop_link(link, reason)
                raise LinkDown(f"udp {link.peer_address}: {reason}") from exc
        if not bundle:
            self._count("keepalives_sent", link.stats)
            return
        for stats in (link.stats, self.stats):
            stats.bundles_sent += 1
            stats.bytes_sent += size

    # -- receiving ----------------------------------------------------------------------------

    async def _receive_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        buffer = bytearray(_RECEIVE_BUFFER)
        view = memoryview(buffer)
        while True:
            try:
                size, sockaddr = await loop.sock_recvfrom_into(sock, buffer)
            except OSError as exc:
                if sock.fileno() < 0:
                    return
                # ICMP errors for earlier sends surface here on some systems: not fatal.
                self._count("receive_errors")
                log.debug("udp: receive error: %s", exc)
                continue
            try:
                await self._datagram_received(bytes(view[:size]), sockaddr)
            except Exception:
                # The node's callback failed: that must not end reception for everyone.
                self._count("delivery_errors")
                log.exception("udp: handling a datagram from %s failed", sockaddr)

    async def _datagram_received(self, data: bytes, sockaddr: tuple[Any, ...]) -> None:
        key = (str(sockaddr[0]), int(sockaddr[1]))
        link = self._links.get(key)
        verdict = classify(data, max_size=self._max_bundle_size, accept_bpv6=self.accept_bpv6)
        if verdict.kind is DatagramKind.KEEPALIVE:
            self._count("keepalives", link.stats if link else None)
            return
        if not verdict.is_bundle:
            self.stats.ignored += 1
            if link is not None:
                link.stats.ignored += 1
            self._count(verdict.counter or "not_a_bundle", link.stats if link else None)
            log.debug("udp: ignored a datagram from %s: %s", key, verdict.reason)
            return
        if link is None:
            link = self._add_link(sockaddr, inbound=True)
        else:
            self._links.move_to_end(key)
        for stats in (link.stats, self.stats):
            stats.bundles_received += 1
            stats.bytes_received += len(data)
        try:
            await self.events.bundle_received(ReceivedBundle(len(data), link, data=data))
        except TransferRefused as exc:
            # Nobody to tell over UDP; the count is all that remains.
            link.stats.refused += 1
            self.stats.refused += 1
            log.debug("udp: node refused bundle %s: %s", verdict.bundle_id, exc)
