"""The asyncio driver of neighbour discovery: beacons over UDP, multicast and/or unicast.

:class:`DiscoveryService` runs a :class:`~dtncloud.discovery.Discovery` object: it sends the
beacon that object makes due to every destination, feeds it every datagram received on the
discovery port, and calls back when a neighbour is found, updated or lost. The node answers
``on_neighbour_found`` by opening an opportunistic link to one of the announced services
(``service.address(host)`` is the ``host:port`` to connect to).

Defaults follow dtn7-rs, the one other implementation of these CBOR beacons: UDP port 3003 and
the multicast group 224.0.0.26 (IPv6: ff02::300), so that a dtncloud node and a dtn7-rs node on
one LAN find each other with no configuration. Every multicast destination is joined on the
receiving side too; ``interface`` chooses the interface for that (IPv4: its address, such as
``127.0.0.1``; IPv6: its name, such as ``lo``). Own beacons looping back are dropped by node ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dtncloud.cla.base import parse_host_port
from dtncloud.discovery import (
    MAX_BEACON_SIZE,
    Discovery,
    DiscoveryConfig,
    DiscoveryStats,
    Neighbour,
    NeighbourFound,
    NeighbourLost,
    NeighbourUpdated,
    Service,
    format_address,
)
from dtncloud.errors import ConfigError, TransportError

__all__ = [
    "DEFAULT_DISCOVERY_PORT",
    "DEFAULT_MULTICAST_V4",
    "DEFAULT_MULTICAST_V6",
    "DiscoveryService",
    "LostCallback",
    "NeighbourCallback",
]

log = logging.getLogger(__name__)

#: dtn7-rs's discovery port.
DEFAULT_DISCOVERY_PORT = 3003
#: dtn7-rs's default beacon groups.
DEFAULT_MULTICAST_V4 = "224.0.0.26"
DEFAULT_MULTICAST_V6 = "ff02::300"

#: ``(node_id, host, services)``; may be a coroutine function (run as a task).
NeighbourCallback = Callable[[str, str, tuple[Service, ...]], Awaitable[None] | None]
#: ``(node_id, host)``; may be a coroutine function (run as a task).
LostCallback = Callable[[str, str], Awaitable[None] | None]


def source_host(sockaddr: tuple[Any, ...]) -> str:
    """The sender's host as a connectable string: an IPv6 link-local address keeps its
    scope (``fe80::1%2``), without which nobody could connect back to it."""
    host = str(sockaddr[0])
    if len(sockaddr) >= 4 and sockaddr[3] and "%" not in host:
        with contextlib.suppress(ValueError):
            if ipaddress.IPv6Address(host).is_link_local:
                return f"{host}%{sockaddr[3]}"
    return host


def _is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_multicast
    except ValueError:
        return False


class DiscoveryService:
    """Sends and receives beacons for one node (see the module docstring).

    ``destinations`` are ``host[:port]`` strings (the port defaults to ``port``, or 3003 when
    ``port`` is 0); ``None`` means the default multicast group of the address family of
    ``host``. ``rng`` supplies the beacon jitter if the config asks for one; ``clock``
    (monotonic milliseconds) may be replaced by tests.
    """

    def __init__(
        self,
        config: DiscoveryConfig,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_DISCOVERY_PORT,
        destinations: Sequence[str] | None = None,
        interface: str | None = None,
        multicast_ttl: int = 1,
        on_neighbour_found: NeighbourCallback | None = None,
        on_neighbour_updated: NeighbourCallback | None = None,
        on_neighbour_lost: LostCallback | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if not 0 <= port <= 0xFFFF:
            raise ConfigError(f"discovery port {port} out of range")
        self.config = config
        self.host = host
        self._port = port
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock: socket.socket | None = None
        if destinations is None:
            group = (
                DEFAULT_MULTICAST_V6 if self._family == socket.AF_INET6 else DEFAULT_MULTICAST_V4
            )
            destinations = [format_address(group, port or DEFAULT_DISCOVERY_PORT)]
        self._destinations: list[tuple[str, int]] = []
        for destination in destinations:
            self.add_destination(destination)
        self.interface = interface
        self.multicast_ttl = multicast_ttl
        self.on_neighbour_found = on_neighbour_found
        self.on_neighbour_updated = on_neighbour_updated
        self.on_neighbour_lost = on_neighbour_lost
        #: Send failures and multicast groups that could not be joined.
        self.errors: dict[str, int] = {}
        self._rng = rng
        self._clock = clock
        self._discovery: Discovery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._callbacks: set[asyncio.Task[Any]] = set()
        self._waiter: asyncio.Future[None] | None = None

    # -- configuration and state --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port once started, else the configured one."""
        return self._port

    @property
    def discovery(self) -> Discovery:
        """The sans-IO object (exists once started)."""
        if self._discovery is None:
            raise RuntimeError("discovery service not started")
        return self._discovery

    @property
    def stats(self) -> DiscoveryStats:
        return self.discovery.stats

    @property
    def neighbours(self) -> dict[str, Neighbour]:
        return self._discovery.neighbours if self._discovery else {}

    @property
    def destinations(self) -> list[str]:
        return [format_address(host, port) for host, port in self._destinations]

    def add_destination(self, address: str) -> None:
        """Send beacons to ``host[:port]`` too (a multicast group is joined at start)."""
        host, port = parse_host_port(address, self._port or DEFAULT_DISCOVERY_PORT)
        if (host, port) not in self._destinations:
            self._destinations.append((host, port))
            if self._sock is not None and _is_multicast(host):
                self._join(self._sock, host)

    def update_services(self, services: Sequence[Service]) -> None:
        """Announce ``services`` from the next beacon on."""
        self.discovery.update_services(tuple(services))

    # -- lifecycle ----------------------------------------------------------------------------

    def _now(self) -> int:
        if self._clock is not None:
            return self._clock()
        return int(asyncio.get_running_loop().time() * 1000)

    async def start(self) -> None:
        """Bind the discovery socket, join multicast groups, start beaconing."""
        if self._sock is not None:
            return
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # Several nodes on one host may share the port; each gets multicast beacons.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._set_multicast_options(sock)
            sock.bind((self.host, self._port))
        except OSError as exc:
            sock.close()
            where = format_address(self.host, self._port)
            raise TransportError(
                f"discovery: cannot listen on {where}: {exc.strerror or exc}"
            ) from exc
        self._sock = sock
        self._port = sock.getsockname()[1]
        for host, _ in self._destinations:
            if _is_multicast(host):
                self._join(sock, host)
        self._discovery = Discovery(self.config, self._now(), rng=self._rng)
        self._tasks = [
            asyncio.create_task(self._receive_loop(sock), name="discovery-receive"),
            asyncio.create_task(self._timer_loop(), name="discovery-timer"),
        ]
        log.info("discovery: listening on %s", format_address(self.host, self._port))

    async def stop(self) -> None:
        """Stop beaconing and listening; neighbours are forgotten without events."""
        # A callback may be the one stopping us: it must not wait for itself.
        current = asyncio.current_task()
        tasks = [task for task in (*self._tasks, *self._callbacks) if task is not current]
        self._tasks = []
        for task in tasks:
            task.cancel()
        # gather, not a loop of awaits under suppress(CancelledError): a cancellation of
        # stop() itself must propagate.
        await asyncio.gather(*tasks, return_exceptions=True)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    # -- socket options -----------------------------------------------------------------------

    def _set_multicast_options(self, sock: socket.socket) -> None:
        try:
            if self._family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.multicast_ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if self.interface:
                    interface = socket.inet_aton(self.interface)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.multicast_ttl)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
                if self.interface:
                    index = socket.if_nametoindex(self.interface)
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        except OSError as exc:
            raise ConfigError(f"discovery interface {self.interface!r}: {exc}") from exc

    def _join(self, sock: socket.socket, group: str) -> None:
        try:
            if self._family == socket.AF_INET:
                request = socket.inet_aton(group) + socket.inet_aton(self.interface or "0.0.0.0")
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
            else:
                index = socket.if_nametoindex(self.interface) if self.interface else 0
                request = socket.inet_pton(socket.AF_INET6, group) + index.to_bytes(4, "little")
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
        except OSError as exc:
            # Unicast destinations still work; say so and carry on.
            self.errors["join"] = self.errors.get("join", 0) + 1
            log.warning("discovery: cannot join multicast group %s: %s", group, exc)

    # -- the loops ----------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        discovery = self.discovery
        while True:
            now = self._now()
            discovery.handle_timer(now)
            beacon = discovery.beacon_to_send(now)
            if beacon is not None:
                await self._send_beacon(beacon)
            self._dispatch_events()
            deadline = discovery.get_timer()
            timeout = None if deadline is None else max(0, deadline - self._now()) / 1000
            await self._sleep(timeout)

    async def _sleep(self, timeout: float | None) -> None:
        """Wait ``timeout`` seconds (``None``: for ever) or until :meth:`_wake` is called."""
        # A bare future rather than asyncio.wait_for(event.wait()): on Python 3.11 wait_for
        # loses a cancellation that arrives as the event is set, and the loop would live on.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        handle = None if timeout is None else loop.call_later(timeout, self._wake)
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _send_beacon(self, beacon: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        for host, port in list(self._destinations):
            try:
                infos = await loop.getaddrinfo(
                    host, port, family=self._family, type=socket.SOCK_DGRAM
                )
                await loop.sock_sendto(sock, beacon, infos[0][4])
            except OSError as exc:
                self.errors["send"] = self.errors.get("send", 0) + 1
                log.debug("discovery: beacon to %s failed: %s", format_address(host, port), exc)

    async def _receive_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        buffer = bytearray(MAX_BEACON_SIZE + 1)
        view = memoryview(buffer)
        while True:
            try:
                size, sockaddr = await loop.sock_recvfrom_into(sock, buffer)
            except OSError as exc:
                if sock.fileno() < 0:
                    return
                self.errors["receive"] = self.errors.get("receive", 0) + 1
                log.debug("discovery: receive error: %s", exc)
                continue
            self.discovery.beacon_received(view[:size], source_host(sockaddr), self._now())
            self._dispatch_events()
            # A neighbour with a shorter period than ours may now expire before our next beacon.
            self._wake()

    def _dispatch_events(self) -> None:
        discovery = self.discovery
        while (event := discovery.next_event()) is not None:
            if isinstance(event, NeighbourFound):
                log.info("discovery: found %s at %s", event.node_id, event.host)
                self._call(self.on_neighbour_found, event.node_id, event.host, event.services)
            elif isinstance(event, NeighbourUpdated):
                log.info("discovery: %s now at %s", event.node_id, event.host)
                self._call(self.on_neighbour_updated, event.node_id, event.host, event.services)
            elif isinstance(event, NeighbourLost):
                log.info("discovery: lost %s", event.node_id)
                self._call(self.on_neighbour_lost, event.node_id, event.host)

    def _call(self, callback: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
        except Exception:
            log.exception("discovery: neighbour callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._callbacks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("discovery: neighbour callback failed", exc_info=task.exception())
