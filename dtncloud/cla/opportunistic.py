"""Opening links to neighbours that discovery finds (opportunistic contacts).

:class:`OpportunisticLinker` is the bridge between a :class:`~dtncloud.cla.discovery.DiscoveryService`
and the node's convergence layers: when a neighbour is found, it picks the first service the
neighbour announces that one of our CLAs speaks (in our order of preference) and connects to
it. A link that is already up is reused by the CLA itself, so beacons repeating the same
announcement open nothing new. Connection failures are logged and counted, never raised: the
next beacon (after the neighbour is lost and found again) retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from dtncloud.cla.base import ConvergenceLayer, Link
from dtncloud.discovery import Service, format_address
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID, TransportError

log = logging.getLogger(__name__)

#: Reliable, acknowledged links first.
DEFAULT_PREFERENCE = ("tcpcl", "tcpclv3", "udp")


class OpportunisticLinker:
    """Connects to discovered neighbours through ``clas`` (CLA name -> driver).

    Pass :meth:`neighbour_found`, :meth:`neighbour_updated` and :meth:`neighbour_lost` as
    the discovery service's ``on_neighbour_found``, ``on_neighbour_updated`` and
    ``on_neighbour_lost``. A lost neighbour's link is closed, so
    the links held stay bounded by the discovery table. Links go to the address the beacon
    came from: a host named inside a beacon is used only with ``trust_announced_hosts``
    (otherwise anyone could point our connections at a third party). A session whose peer
    names another node ID than its beacon did is closed.
    """

    def __init__(
        self,
        clas: Mapping[str, ConvergenceLayer],
        *,
        preference: Sequence[str] = DEFAULT_PREFERENCE,
        trust_announced_hosts: bool = False,
    ) -> None:
        self.clas = dict(clas)
        self.preference = tuple(preference) + tuple(n for n in self.clas if n not in preference)
        self.trust_announced_hosts = trust_announced_hosts
        #: Links opened, by neighbour node ID.
        self.links: dict[str, Link] = {}
        self.failures = 0

    def choose(self, services: Sequence[Service]) -> Service | None:
        """The announced service to use: the first, in our preference, that we can speak."""
        offered = {service.cla: service for service in services if service.port}
        for name in self.preference:
            if name in self.clas and name in offered:
                return offered[name]
        return None

    async def neighbour_found(self, node_id: str, host: str, services: tuple[Service, ...]) -> None:
        """Open a link to a newly found neighbour (no-op if we share no CLA with it)."""
        service = self.choose(services)
        if service is None:
            log.info("neighbour %s at %s offers no CLA we speak (%s)", node_id, host,
                     ", ".join(s.cla for s in services) or "none")  # fmt: skip
            return
        target = service.host if self.trust_announced_hosts and service.host else host
        address = format_address(target, service.port)
        try:
            link = await self.clas[service.cla].connect(address)
        except (TransportError, ConfigError) as exc:
            self.failures += 1
            log.info("opportunistic link to %s (%s) failed: %s", node_id, address, exc)
            return
        if link.peer_node_id is not None and not _same_node(link.peer_node_id, node_id):
            self.failures += 1
            log.warning("%s answered as %s, but its beacon said %s; closing the link",
                        address, link.peer_node_id, node_id)  # fmt: skip
            await link.close()
            return
        self.links[node_id] = link
        log.info("opportunistic %s link to %s at %s", service.cla, node_id, address)

    async def neighbour_updated(
        self, node_id: str, host: str, services: tuple[Service, ...]
    ) -> None:
        """A neighbour moved or changed its services: relink if its address changed."""
        link = self.links.get(node_id)
        service = self.choose(services)
        if link is not None and link.is_up and service is not None:
            target = service.host if self.trust_announced_hosts and service.host else host
            if link.peer_address == format_address(target, service.port):
                return
        if link is not None:
            del self.links[node_id]
            await link.close()
        await self.neighbour_found(node_id, host, services)

    async def neighbour_lost(self, node_id: str, host: str) -> None:
        """Close the link to a neighbour whose beacons stopped."""
        link = self.links.pop(node_id, None)
        if link is not None:
            log.info("neighbour %s is gone; closing its link", node_id)
            await link.close()


def _same_node(a: str, b: str) -> bool:
    try:
        return EID.parse(a).node_id == EID.parse(b).node_id
    except InvalidEID:
        return a == b
