"""What the application API shows of a daemon, and the changes it may make at run time.

:class:`DaemonInventory` adds to the node's own view (bundles, links) what only the daemon
knows: the configured peers and whether each is connected, the static routes or the contact
plan of its router, and the status document with the metrics' counters. Routes (router
``static``) and contacts (router ``cgr``) changed through the API take effect at once:
bundles waiting for a route are routed again. They are not written back to the
configuration file; a restart goes back to what the file says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dtncloud.errors import ConfigError
from dtncloud.routing.cgr import CgrRouter
from dtncloud.routing.contact_plan import contact_from_json
from dtncloud.routing.static import StaticRouter
from dtncloud.runtime.apps import NodeInventory

if TYPE_CHECKING:
    from dtncloud.daemon.runner import Daemon

__all__ = ["DaemonInventory"]


class DaemonInventory(NodeInventory):
    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon.node)
        self.daemon = daemon

    async def status(self) -> dict[str, Any]:
        document = await self.daemon.status()
        document["now_ms"] = self.node.clock()
        return document

    async def peers(self) -> list[dict[str, Any]]:
        links = self.node.links
        items = []
        for peer in self.daemon.config.peers:
            up = [
                link_id
                for link_id, link in links.items()
                if link.peer_node_id == peer.node_id and link.is_up
            ]
            items.append(
                {
                    "node_id": peer.node_id,
                    "cla": peer.cla,
                    "address": peer.address,
                    "up": bool(up),
                    "links": up,
                }
            )
        return items

    async def routes(self) -> list[dict[str, Any]]:
        router = self.daemon.router
        if not isinstance(router, StaticRouter):
            return []
        items = [{"destination": route.pattern, "via": route.via} for route in router.routes]
        if router.default is not None:
            items.append({"destination": "(default)", "via": router.default})
        return items

    async def contacts(self) -> list[dict[str, Any]]:
        router = self.daemon.router
        if not isinstance(router, CgrRouter):
            return []
        contacts: list[dict[str, Any]] = router.plan.to_json()["contacts"]
        return contacts

    async def add_route(self, destination: str, via: str) -> None:
        self._static().add_route(destination, via)
        self.node.routes_changed()

    async def remove_route(self, destination: str) -> bool:
        removed = self._static().remove_route(destination)
        if removed:
            self.node.routes_changed()
        return removed

    async def add_contact(self, contact: dict[str, Any]) -> None:
        self._cgr().add_contact(contact_from_json(contact))
        self.node.routes_changed()

    async def remove_contact(self, contact: dict[str, Any]) -> bool:
        removed = self._cgr().remove_contact(contact_from_json(contact))
        if removed:
            self.node.routes_changed()
        return removed

    def _static(self) -> StaticRouter:
        router = self.daemon.router
        if not isinstance(router, StaticRouter):
            raise ConfigError(
                f"router {router.name!r} has no routes to change (routes are for router 'static')"
            )
        return router

    def _cgr(self) -> CgrRouter:
        router = self.daemon.router
        if not isinstance(router, CgrRouter):
            raise ConfigError(
                f"router {router.name!r} has no contact plan (contacts are for router 'cgr')"
            )
        return router
