"""An in-memory convergence layer: links between CLAs in one process, no sockets.

For tests of everything above the CLA (and a reference for the CLA conformance suite): a
:class:`MemoryNetwork` joins any number of :class:`MemoryConvergenceLayer` endpoints by name.
Sending is reliable and acknowledged the way TCPCL is: ``send`` returns only after the
receiving node's ``bundle_received`` has returned, and its refusals come back as
:class:`~dtncloud.errors.TransferRefused`. :meth:`MemoryNetwork.cut` takes links down.
"""

from __future__ import annotations

import os
from pathlib import Path

from dtncloud.cla.base import ConvergenceLayer, Link, LinkEvents, Outgoing, ReceivedBundle
from dtncloud.errors import ConnectError, LinkDown, TransferRefused
from dtncloud.tcpcl.codes import XferRefuseReason


class MemoryNetwork:
    """The switchboard that joins memory CLAs by name."""

    def __init__(self) -> None:
        self.endpoints: dict[str, MemoryConvergenceLayer] = {}

    def cut(self, a: str, b: str) -> None:
        """Take down every link between endpoints ``a`` and ``b``."""
        for name, other in ((a, b), (b, a)):
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                continue
            for link in list(endpoint._links.values()):
                if link.peer_address == other:
                    link._go_down("link cut")


class MemoryLink(Link):
    """One direction-agnostic link between two memory endpoints."""

    cla_name = "memory"

    def __init__(self, local: MemoryConvergenceLayer, peer_address: str) -> None:
        super().__init__()
        self.local = local
        self.peer_address = peer_address
        self.peer_link: MemoryLink | None = None
        self._up = True

    @property
    def peer_node_id(self) -> str | None:
        return self.peer_link.local.node_id if self.peer_link is not None else None

    @property
    def max_bundle_size(self) -> int | None:
        peer = self.peer_link.local if self.peer_link is not None else None
        return peer.max_receive_size if peer is not None else None

    @property
    def is_up(self) -> bool:
        return self._up

    async def send(self, bundle: Outgoing) -> None:
        if not self._up or self.peer_link is None or not self.peer_link._up:
            raise LinkDown(f"memory link to {self.peer_address} is down")
        if isinstance(bundle, (bytes, bytearray, memoryview)):
            data = bytes(bundle)
        else:
            data = Path(os.fspath(bundle)).read_bytes()
        limit = self.max_bundle_size
        if limit is not None and len(data) > limit:
            self.stats.refused += 1
            raise TransferRefused(
                f"bundle of {len(data)} bytes exceeds {self.peer_address}'s limit of {limit}",
                reason=XferRefuseReason.NO_RESOURCES,
            )
        peer = self.peer_link
        received = ReceivedBundle(length=len(data), link=peer, data=data)
        try:
            await peer.local.events.bundle_received(received)
        except TransferRefused as exc:
            self.stats.refused += 1
            raise TransferRefused(
                f"{self.peer_address} refused the bundle: {exc}", reason=exc.reason
            ) from None
        if not self._up:
            raise LinkDown(f"memory link to {self.peer_address} went down", acknowledged=0)
        peer.stats.bundles_received += 1
        peer.stats.bytes_received += len(data)
        self.stats.bundles_sent += 1
        self.stats.bytes_sent += len(data)

    async def close(self) -> None:
        self._go_down("closed")

    def _go_down(self, reason: str) -> None:
        for link in (self, self.peer_link):
            if link is not None and link._up:
                link._up = False
                link.local._links.pop(link.peer_address, None)
                link.local.events.link_down(link, reason)


class MemoryConvergenceLayer(ConvergenceLayer):
    """One endpoint named ``address`` on a :class:`MemoryNetwork`."""

    name = "memory"
    reliable = True

    def __init__(
        self,
        events: LinkEvents,
        network: MemoryNetwork,
        address: str,
        *,
        node_id: str | None = None,
        max_receive_size: int | None = None,
    ) -> None:
        super().__init__(events)
        self.network = network
        self.address = address
        self.node_id = node_id
        self.max_receive_size = max_receive_size
        self._links: dict[str, MemoryLink] = {}
        self._running = False

    @property
    def max_bundle_size(self) -> int | None:
        return self.max_receive_size

    @property
    def links(self) -> list[Link]:
        return list(self._links.values())

    async def start(self) -> None:
        if self.network.endpoints.get(self.address, self) is not self:
            raise ConnectError(f"memory address {self.address!r} is taken")
        self.network.endpoints[self.address] = self
        self._running = True

    async def stop(self) -> None:
        self._running = False
        for link in list(self._links.values()):
            link._go_down("stopped")
        if self.network.endpoints.get(self.address) is self:
            del self.network.endpoints[self.address]

    async def connect(self, address: str) -> MemoryLink:
        existing = self._links.get(address)
        if existing is not None and existing.is_up:
            return existing
        peer = self.network.endpoints.get(address)
        if not self._running or peer is None or not peer._running:
            raise ConnectError(f"cannot connect to memory address {address!r}: nobody there")
        ours = MemoryLink(self, address)
        theirs = MemoryLink(peer, self.address)
        ours.peer_link, theirs.peer_link = theirs, ours
        self._links[address] = ours
        peer._links[self.address] = theirs
        self.events.link_up(ours)
        peer.events.link_up(theirs)
        return ours
