"""Factories for the CLA conformance suite: each starts a sender and a receiver CLA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from dtncloud.cla.base import ConvergenceLayer, Link, ReceivedBundle
from dtncloud.errors import TransferRefused


@dataclass
class Recorder:
    """A node stand-in: records link events and received bundles; can refuse."""

    received: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    ups: list[Link] = field(default_factory=list)
    downs: list[tuple[Link, str]] = field(default_factory=list)
    refuse_with: int | None = None
    spooled: int = 0
    went_down: asyncio.Event = field(default_factory=asyncio.Event)
    came_up: asyncio.Event = field(default_factory=asyncio.Event)

    def link_up(self, link: Link) -> None:
        self.ups.append(link)
        self.came_up.set()

    def link_down(self, link: Link, reason: str) -> None:
        self.downs.append((link, reason))
        self.went_down.set()

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        if self.refuse_with is not None:
            raise TransferRefused("refused by the test", reason=self.refuse_with)
        if bundle.path is not None:
            self.spooled += 1
        await self.received.put(bundle.read())


@dataclass
class ClaPair:
    """A started sender and receiver, and the address the sender connects to (the
    receiver's; for a serial line, the sender's own port, whose one peer is the receiver).

    ``nowhere`` is an address the sender cannot reach. ``lacks`` names the conformance
    properties the CLA cannot have, each with the reason (see
    :func:`tests.conformance.test_cla_conformance.require`): ``refusals`` (a refusal by the
    receiving node reaches the sender), ``nowhere`` (connecting where nobody is fails),
    ``peer_stop`` (the receiver stopping takes the sender's link down).
    """

    kind: str
    sender: ConvergenceLayer
    receiver: ConvergenceLayer
    address: str
    sender_events: Recorder
    receiver_events: Recorder
    #: Largest bundle the receiver was configured to take.
    limit: int
    reliable: bool
    lacks: dict[str, str] = field(default_factory=dict)
    nowhere: str = "127.0.0.1:1"


LIMIT = 60_000

Factory = Callable[[Path], AbstractAsyncContextManager[ClaPair]]


@asynccontextmanager
async def memory_pair(tmp: Path) -> AsyncIterator[ClaPair]:
    from dtncloud.cla.memory import MemoryConvergenceLayer, MemoryNetwork

    network = MemoryNetwork()
    a_events, b_events = Recorder(), Recorder()
    a = MemoryConvergenceLayer(a_events, network, "a", node_id="ipn:1.0", max_receive_size=LIMIT)
    b = MemoryConvergenceLayer(b_events, network, "b", node_id="ipn:2.0", max_receive_size=LIMIT)
    await a.start()
    await b.start()
    try:
        yield ClaPair("memory", a, b, "b", a_events, b_events, LIMIT, True, nowhere="nowhere")
    finally:
        await a.stop()
        await b.stop()


def _tcpcl_pair(version: int) -> Factory:
    @asynccontextmanager
    async def factory(tmp: Path) -> AsyncIterator[ClaPair]:
        from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions

        a_events, b_events = Recorder(), Recorder()
        common = {"transfer_mru": LIMIT, "segment_mru": 16_384, "max_segment_size": 16_384}
        a = TcpclConvergenceLayer(
            a_events,
            TcpclOptions(node_id="ipn:1.0", version=version, spool_dir=tmp / "a", **common),
        )
        b = TcpclConvergenceLayer(
            b_events,
            TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=0, spool_dir=tmp / "b",
                         spool_threshold=20_000, **common),
        )  # fmt: skip
        await a.start()
        await b.start()
        try:
            yield ClaPair(
                f"tcpclv{version}", a, b, f"127.0.0.1:{b.port}", a_events, b_events, LIMIT, True
            )
        finally:
            await a.stop()
            await b.stop()

    return factory


@asynccontextmanager
async def udp_pair(tmp: Path) -> AsyncIterator[ClaPair]:
    from dtncloud.cla.udp import UdpConvergenceLayer

    a_events, b_events = Recorder(), Recorder()
    a = UdpConvergenceLayer(a_events, host="127.0.0.1", port=0, max_bundle_size=LIMIT)
    b = UdpConvergenceLayer(b_events, host="127.0.0.1", port=0, max_bundle_size=LIMIT)
    await a.start()
    await b.start()
    try:
        yield ClaPair(
            "udp", a, b, f"127.0.0.1:{b.port}", a_events, b_events, LIMIT, False, _UDP_LACKS
        )
    finally:
        await a.stop()
        await b.stop()


_UDP_LACKS = {
    "refusals": "UDP does not acknowledge, so it cannot report refusals",
    "nowhere": "UDP is connectionless: it cannot know nobody listens",
    "peer_stop": "UDP is connectionless: nothing tells the sender the receiver stopped",
}


@asynccontextmanager
async def serial_pair(tmp: Path) -> AsyncIterator[ClaPair]:
    """Two serial CLAs on two pseudo-terminals joined by a relay (a null-modem cable)."""
    from dtncloud.cla.serial import SerialConvergenceLayer, SerialOptions
    from tests.serial_ptys import Pty, Relay

    a_pty, b_pty = Pty(), Pty()
    relay = Relay(a_pty, b_pty)
    base = SerialOptions(device="-", max_bundle_size=LIMIT, reopen_initial_s=0.02, reopen_max_s=0.2)
    a_events, b_events = Recorder(), Recorder()
    a = SerialConvergenceLayer(a_events, replace(base, device=a_pty.name, peer_node_id="ipn:2.0"))
    b = SerialConvergenceLayer(b_events, replace(base, device=b_pty.name, peer_node_id="ipn:1.0"))
    try:
        await a.start()
        await b.start()
        yield ClaPair(
            "serial", a, b, a_pty.name, a_events, b_events, LIMIT, False, _SERIAL_LACKS,
            nowhere=str(tmp / "no-such-port"),  # a serial line reaches its own port only
        )  # fmt: skip
    finally:
        await a.stop()
        await b.stop()
        relay.close()
        a_pty.close()
        b_pty.close()


_SERIAL_LACKS = {
    "refusals": "a serial line acknowledges nothing, so a refusal cannot reach the sender",
    "peer_stop": (
        "a serial line has no session: the other end closing its port leaves this end's "
        "port open and its link up"
    ),
}


FACTORIES: dict[str, Factory] = {
    "memory": memory_pair,
    "tcpclv4": _tcpcl_pair(4),
    "tcpclv3": _tcpcl_pair(3),
    "udp": udp_pair,
    "serial": serial_pair,
}
