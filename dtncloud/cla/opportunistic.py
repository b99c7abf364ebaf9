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
from dtncloud.discovery import Service
from dtncloud.errors import ConfigError, TransportError

log = logging.getLogger(__name__)

#: Reliable, acknowledged links first.
DEFAULT_PREFERENCE = ("tcpcl", "tcpclv3", "udp")


class OpportunisticLinker:
    """Connects to discovered neighbours through ``clas`` (CLA name -> driver).

    Pass :meth:`neighbour_found` as the discovery service's ``on_neighbour_found``.
    """

    def __init__(
        self,
        clas: Mapping[str, ConvergenceLayer],
        *,
        preference: Sequence[str] = DEFAULT_PREFERENCE,
    ) -> None:
        self.clas = dict(clas)
        self.preference = tuple(preference) + tuple(n for n in self.clas if n not in preference)
        #: Links opened, by neighbour node ID.
        self.links: dict[str, Link] = {}
        self.failures = 0

    def choose(self, services: Sequence[Service]) -> Service | None:
        """The announced service to use: the first, in our preference, that we can speak."""
        offered = {service.cla: service for service in services if service.port is not None}
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
        address = service.address(host)
        try:
            link = await self.clas[service.cla].connect(address)
        except (TransportError, ConfigError) as exc:
            self.failures += 1
            log.info("opportunistic link to %s (%s) failed: %s", node_id, address, exc)
            return
        self.links[node_id] = link
        log.info("opportunistic %s link to %s at %s", service.cla, node_id, address)
