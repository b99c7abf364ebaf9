"""Factories for the CLA conformance suite: each starts a sender and a receiver CLA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
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
    """A started sender and receiver, and the receiver's address."""

    kind: str
    sender: ConvergenceLayer
    receiver: ConvergenceLayer
    address: str
    sender_events: Recorder
    receiver_events: Recorder
    #: Largest bundle the receiver was configured to take.
    limit: int
    reliable: bool


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
        yield ClaPair("memory", a, b, "b", a_events, b_events, LIMIT, True)
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
        yield ClaPair("udp", a, b, f"127.0.0.1:{b.port}", a_events, b_events, LIMIT, False)
    finally:
        await a.stop()
        await b.stop()


FACTORIES: dict[str, Factory] = {
    "memory": memory_pair,
    "tcpclv4": _tcpcl_pair(4),
    "tcpclv3": _tcpcl_pair(3),
    "udp": udp_pair,
}
