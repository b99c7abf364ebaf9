"""Discovery and TCPCL together: a node that comes into range is found and a link opens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.discovery import DiscoveryService
from dtncloud.cla.opportunistic import OpportunisticLinker
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.discovery import DiscoveryConfig, Service
from tests.conformance.clas import Recorder

pytestmark = pytest.mark.timeout(60)


async def node(name: str, number: int, tmp: Path) -> tuple[TcpclConvergenceLayer, Recorder]:
    events = Recorder()
    cla = TcpclConvergenceLayer(
        events,
        TcpclOptions(node_id=f"ipn:{number}.0", listen="127.0.0.1", port=0, spool_dir=tmp / name),
    )
    await cla.start()
    return cla, events


def test_a_neighbour_in_range_is_found_and_a_tcpcl_link_opens(tmp_path: Path) -> None:
    async def body() -> None:
        a_cla, a_events = await node("a", 1, tmp_path)
        b_cla, b_events = await node("b", 2, tmp_path)
        linker = OpportunisticLinker({"tcpcl": a_cla})
        # A only listens; B announces its TCPCL port, by unicast to A's discovery port.
        a_disc = DiscoveryService(
            DiscoveryConfig(node_id="ipn:1.0", announce=False),
            host="127.0.0.1", port=0, destinations=[], on_neighbour_found=linker.neighbour_found,
        )  # fmt: skip
        await a_disc.start()
        b_disc = DiscoveryService(
            DiscoveryConfig(
                node_id="ipn:2.0", period_ms=50,
                services=(Service("udp", 4556), Service("tcpcl", b_cla.port)),
            ),
            host="127.0.0.1", port=0, destinations=[f"127.0.0.1:{a_disc.port}"],
        )  # fmt: skip
        await b_disc.start()
        try:
            await a_events.came_up.wait()
            link = a_events.ups[0]
            assert link.peer_node_id == "ipn:2.0"
            data = encode_bundle(
                Bundle.create(
                    source="ipn:1.1", destination="ipn:2.1", payload=b"hi", creation_time=1
                )
            )
            await link.send(data)
            assert await b_events.received.get() == data
            assert linker.links["ipn:2.0"] is link
            # Repeated beacons reuse the open link instead of opening more.
            assert len(a_events.ups) == 1
        finally:
            await b_disc.stop()
            await a_disc.stop()
            await a_cla.stop()
            await b_cla.stop()

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_neighbour_without_a_shared_cla_is_left_alone() -> None:
    linker = OpportunisticLinker({})
    assert linker.choose((Service("tcpcl", 4556),)) is None
    preferred = OpportunisticLinker({"udp": object(), "tcpcl": object()})  # type: ignore[dict-item]
    chosen = preferred.choose((Service("udp", 1), Service("tcpcl", 2)))
    assert chosen == Service("tcpcl", 2)


def test_lost_neighbours_and_impostors_get_no_link(tmp_path: Path) -> None:
    """Driving the linker directly: a host named in the beacon is not trusted, a peer whose
    session names another node than its beacon is dropped, a lost neighbour's link closes."""

    async def body() -> None:
        a_cla, _ = await node("a", 1, tmp_path)
        b_cla, _ = await node("b", 2, tmp_path)
        linker = OpportunisticLinker({"tcpcl": a_cla})
        try:
            # The beacon names a far-away host; the link goes to where the beacon came from.
            services = (Service("tcpcl", b_cla.port, host="198.51.100.7"),)
            await linker.neighbour_found("ipn:2.0", "127.0.0.1", services)
            link = linker.links["ipn:2.0"]
            assert link.peer_address == f"127.0.0.1:{b_cla.port}" and link.is_up
            # The same announcement again changes nothing; a new port means a new link.
            await linker.neighbour_updated("ipn:2.0", "127.0.0.1", services)
            assert linker.links["ipn:2.0"] is link
            c_cla, _ = await node("c", 2, tmp_path)  # ipn:2.0 restarted on another port
            try:
                moved = (Service("tcpcl", c_cla.port),)
                await linker.neighbour_updated("ipn:2.0", "127.0.0.1", moved)
                assert not link.is_up
                link = linker.links["ipn:2.0"]
                assert link.peer_address == f"127.0.0.1:{c_cla.port}" and link.is_up
            finally:
                await c_cla.stop()
            await linker.neighbour_lost("ipn:2.0", "127.0.0.1")
            assert "ipn:2.0" not in linker.links and not link.is_up
            # A beacon claiming ipn:5.0 that leads to ipn:2.0's listener.
            await linker.neighbour_found("ipn:5.0", "127.0.0.1", services)
            assert linker.links == {} and linker.failures == 1
        finally:
            await a_cla.stop()
            await b_cla.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
