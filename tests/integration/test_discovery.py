"""Neighbour discovery on loopback: beacons over real UDP sockets, waited on with timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.base import Link, ReceivedBundle
from dtncloud.cla.discovery import DEFAULT_DISCOVERY_PORT, DiscoveryService
from dtncloud.cla.udp import UdpConvergenceLayer
from dtncloud.discovery import Beacon, DiscoveryConfig, Service, encode_beacon
from dtncloud.eid import EID

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
GROUP = "224.0.0.26"


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 20)

    asyncio.run(main())


Found = tuple[str, str, tuple[Service, ...]]


def collector() -> tuple[asyncio.Queue[Found], Callable[[str, str, tuple[Service, ...]], None]]:
    queue: asyncio.Queue[Found] = asyncio.Queue()

    def found(node_id: str, host: str, services: tuple[Service, ...]) -> None:
        queue.put_nowait((node_id, host, services))

    return queue, found


def config(name: str, **options: object) -> DiscoveryConfig:
    options.setdefault("period_ms", 100)
    return DiscoveryConfig(f"dtn://{name}/", **options)  # type: ignore[arg-type]


def test_two_nodes_find_each_other_by_unicast() -> None:
    async def body() -> None:
        found_a, on_found_a = collector()
        found_b, on_found_b = collector()
        tcp = (Service("tcpcl", 4556),)
        a = DiscoveryService(
            config("a", services=tcp),
            host="127.0.0.1",
            port=0,
            destinations=[],
            on_neighbour_found=on_found_a,
        )
        b = DiscoveryService(
            config("b"), host="127.0.0.1", port=0, destinations=[], on_neighbour_found=on_found_b
        )
        await a.start()
        await b.start()
        try:
            a.add_destination(f"127.0.0.1:{b.port}")
            b.add_destination(f"127.0.0.1:{a.port}")
            assert await asyncio.wait_for(found_b.get(), WAIT) == ("dtn://a/", "127.0.0.1", tcp)
            assert await asyncio.wait_for(found_a.get(), WAIT) == ("dtn://b/", "127.0.0.1", ())
            assert set(b.neighbours) == {"dtn://a/"}
            assert b.stats.beacons_received >= 1
            assert a.stats.beacons_sent >= 1
        finally:
            await a.stop()
            await b.stop()

    run(body)


def test_a_neighbour_that_falls_silent_is_lost() -> None:
    async def body() -> None:
        lost: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        found, on_found = collector()
        # Without a period in a's beacons, b times a out by its own period: 2 x 50 ms.
        a = DiscoveryService(
            config("a", announce_period=False), host="127.0.0.1", port=0, destinations=[]
        )
        b = DiscoveryService(
            config("b", period_ms=50, missed_periods=2),
            host="127.0.0.1",
            port=0,
            destinations=[],
            on_neighbour_found=on_found,
            on_neighbour_lost=lambda node_id, host: lost.set_result((node_id, host)),
        )
        await b.start()
        await a.start()
        a.add_destination(f"127.0.0.1:{b.port}")
        try:
            await asyncio.wait_for(found.get(), WAIT)
            await a.stop()
            assert await asyncio.wait_for(lost, WAIT) == ("dtn://a/", "127.0.0.1")
            assert b.neighbours == {}
        finally:
            await a.stop()
            await b.stop()

    run(body)


def test_junk_on_the_discovery_port_is_ignored_and_counted() -> None:
    async def body() -> None:
        found, on_found = collector()
        b = DiscoveryService(
            config("b"), host="127.0.0.1", port=0, destinations=[], on_neighbour_found=on_found
        )
        await b.start()
        try:
            beacon = encode_beacon(Beacon(EID.parse("ipn:7.0"), 0, period_ms=1000))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for junk in (b"junk", b"\x04\x01\x00\x00", b"\x84\x07"):
                    raw.sendto(junk, ("127.0.0.1", b.port))
                raw.sendto(beacon, ("127.0.0.1", b.port))
                assert await asyncio.wait_for(found.get(), WAIT) == ("ipn:7.0", "127.0.0.1", ())
            # One receive loop, datagrams in order on loopback: the junk came first.
            assert b.stats.ignored_malformed == 2
            assert b.stats.ignored_unsupported == 1
        finally:
            await b.stop()

    run(body)


class _Inbox:
    """LinkEvents of a UDP CLA that queues received bundles."""

    def __init__(self) -> None:
        self.bundles: asyncio.Queue[ReceivedBundle] = asyncio.Queue()

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link, reason: str) -> None:
        pass

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        await self.bundles.put(bundle)


def test_found_neighbour_gets_an_opportunistic_link() -> None:
    """What the node does with discovery: a found node's announced UDP service gets a link
    (from an async callback) and a bundle goes over it."""

    async def body() -> None:
        inbox_a, inbox_b = _Inbox(), _Inbox()
        cla_a = UdpConvergenceLayer(inbox_a, host="127.0.0.1", port=0)
        cla_b = UdpConvergenceLayer(inbox_b, host="127.0.0.1", port=0)
        await cla_a.start()
        await cla_b.start()
        data = encode_bundle(
            Bundle.create(source="ipn:2.1", destination="ipn:1.1", payload=b"hi", creation_time=1)
        )

        async def open_link(node_id: str, host: str, services: tuple[Service, ...]) -> None:
            udp = next(service for service in services if service.cla == "udp")
            link = await cla_b.connect(udp.address(host), node_id=node_id)
            await link.send(data)

        a = DiscoveryService(config("a"), host="127.0.0.1", port=0, destinations=[])
        b = DiscoveryService(
            config("b"), host="127.0.0.1", port=0, destinations=[], on_neighbour_found=open_link
        )
        await b.start()
        await a.start()
        a.update_services([Service("udp", cla_a.port)])  # known once the CLA is bound
        a.add_destination(f"127.0.0.1:{b.port}")
        try:
            received = await asyncio.wait_for(inbox_a.bundles.get(), WAIT)
            assert received.read() == data
            (link,) = cla_b.links
            assert link.peer_node_id == "dtn://a/"
        finally:
            for service in (a, b, cla_a, cla_b):
                await service.stop()

    run(body)


def _multicast_on_loopback_works() -> bool:
    """Whether this host delivers multicast sent on lo (some sandboxes do not)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        try:
            receiver.bind(("0.0.0.0", 0))
            membership = socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1")
            receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            receiver.settimeout(1.0)
            interface = socket.inet_aton("127.0.0.1")
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
            sender.sendto(b"probe", (GROUP, receiver.getsockname()[1]))
            return receiver.recv(16) == b"probe"
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def test_two_nodes_find_each_other_by_multicast_on_loopback() -> None:
    if not _multicast_on_loopback_works():
        pytest.skip("this host does not deliver IPv4 multicast on the loopback interface")

    async def body() -> None:
        port = _free_port()
        found_a, on_found_a = collector()
        found_b, on_found_b = collector()
        common = {"host": "0.0.0.0", "port": port, "interface": "127.0.0.1"}
        a = DiscoveryService(
            config("a"), destinations=[f"{GROUP}:{port}"], on_neighbour_found=on_found_a, **common
        )  # type: ignore[arg-type]
        b = DiscoveryService(
            config("b"), destinations=None, on_neighbour_found=on_found_b, **common
        )  # type: ignore[arg-type]
        assert b.destinations == [f"{GROUP}:{port}"]  # the default group on our port
        await a.start()
        await b.start()
        try:
            node_b, host_b, _ = await asyncio.wait_for(found_a.get(), WAIT)
            node_a, host_a, _ = await asyncio.wait_for(found_b.get(), WAIT)
            assert (node_a, node_b) == ("dtn://a/", "dtn://b/")
            assert host_a == host_b == "127.0.0.1"
            assert a.errors.get("join", 0) == 0
        finally:
            await a.stop()
            await b.stop()

    run(body)


def test_defaults() -> None:
    service = DiscoveryService(config("a"))
    assert service.port == DEFAULT_DISCOVERY_PORT == 3003
    assert service.destinations == [f"{GROUP}:3003"]
    v6 = DiscoveryService(config("a"), host="::")
    assert v6.destinations == ["[ff02::300]:3003"]


def test_stop_is_prompt_even_right_after_a_wake_up() -> None:
    """Regression: on Python 3.11, asyncio.wait_for swallowed a cancellation that arrived
    just as its event was set, so the beacon loop outlived stop() (which then hung)."""

    async def body() -> None:
        service = DiscoveryService(config("a"), host="127.0.0.1", port=0, destinations=[])
        await service.start()
        await asyncio.sleep(0)  # let the beacon loop reach its wait
        service._wake()  # what a received beacon does
        await asyncio.wait_for(service.stop(), WAIT)

    run(body)
