"""The application API of a node: what applications may ask of it, over any byte stream.

:class:`ApiService` serves one connection per :meth:`~ApiService.serve` call on asyncio
streams, whatever carries them (the Unix socket and TCP listeners of
:mod:`dtncloud.runtime.api_server`, or a socket pair for an application that embeds its node).
Requests and pushes are the CBOR maps of :mod:`dtncloud.runtime.api_wire`, handled per
connection by :mod:`dtncloud.runtime.api_connection`; ``docs/api.md`` describes every operation.

What the service reports and changes beyond the node itself (peers, routes, contacts) comes
from an :class:`Inventory`; :class:`NodeInventory` answers from a bare
:class:`~dtncloud.runtime.node.Node` and the daemon extends it.

A delivery is handed over in three steps: the node calls the registration's handler, the
handler pushes the bundle and waits for the application's ``ack``, and only then returns, so
the node deletes the bundle. A ``nack``, a lost connection or :meth:`ApiService.close` makes
the handler raise instead: the bundle stays stored and comes again later.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Protocol

from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID
from dtncloud.runtime.api_connection import REPORT_FLAGS, Connection
from dtncloud.runtime.api_wire import FRAME_OVERHEAD, ApiError
from dtncloud.runtime.node import Node
from dtncloud.store.base import Retention

__all__ = ["REPORT_FLAGS", "ApiService", "Inventory", "NodeInventory"]


class Inventory(Protocol):
    """What the API reports about a node and lets applications change beyond sending and
    receiving. Every value returned is made of str, int, float, bool, None, list and dict,
    so that it encodes as CBOR and as JSON alike. Changes that the node cannot make raise
    :class:`~dtncloud.errors.ConfigError` with a one-line reason."""

    async def status(self) -> dict[str, Any]: ...

    async def bundles(self, limit: int | None) -> list[dict[str, Any]]: ...

    async def peers(self) -> list[dict[str, Any]]: ...

    async def links(self) -> list[dict[str, Any]]: ...

    async def routes(self) -> list[dict[str, Any]]: ...

    async def contacts(self) -> list[dict[str, Any]]: ...

    async def add_route(self, destination: str, via: str) -> None: ...

    async def remove_route(self, destination: str) -> bool: ...

    async def add_contact(self, contact: dict[str, Any]) -> None: ...

    async def remove_contact(self, contact: dict[str, Any]) -> bool: ...

    async def cancel(self, bundle_id: str) -> bool: ...


class NodeInventory:
    """An :class:`Inventory` that knows only what a :class:`Node` knows: its bundles and
    links. It has no peers, routes or contacts to list or change; subclasses add them."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def status(self) -> dict[str, Any]:
        stored = self.node.stored()
        return {
            "node_id": self.node.config.node_id,
            "now_ms": self.node.clock(),
            "bundles": len(stored),
            "bytes": sum(meta.size for meta in stored),
            "links": len(self.node.links),
        }

    async def bundles(self, limit: int | None) -> list[dict[str, Any]]:
        stored = self.node.stored()
        if limit is not None:
            stored = stored[:limit]
        return [
            {
                "bundle_id": meta.bundle_id,
                "source": meta.source,
                "destination": meta.destination,
                "size": meta.size,
                "created_ms": meta.creation_time,
                "received_ms": meta.received_at,
                "expires_ms": meta.expires_at,
                "retention": _retention_names(meta.retention),
                "protocol": meta.protocol,
                "fragment_offset": meta.fragment_offset,
                "total_length": meta.total_length,
                "previous_node": meta.previous_node,
                "report_to": meta.report_to,
            }
            for meta in stored
        ]

    async def links(self) -> list[dict[str, Any]]:
        items = []
        for link_id, link in self.node.links.items():
            item: dict[str, Any] = {
                "link_id": link_id,
                "cla": link.cla_name,
                "peer_node": link.peer_node_id,
                "peer_address": getattr(link, "peer_address", None),
                "up": link.is_up,
                "max_bundle_size": link.max_bundle_size,
            }
            stats = getattr(link, "stats", None)
            if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
                item["stats"] = dataclasses.asdict(stats)
            items.append(item)
        return items

    async def peers(self) -> list[dict[str, Any]]:
        return []

    async def routes(self) -> list[dict[str, Any]]:
        return []

    async def contacts(self) -> list[dict[str, Any]]:
        return []

    async def add_route(self, destination: str, via: str) -> None:
        raise _no_routes()

    async def remove_route(self, destination: str) -> bool:
        raise _no_routes()

    async def add_contact(self, contact: dict[str, Any]) -> None:
        raise _no_routes()

    async def remove_contact(self, contact: dict[str, Any]) -> bool:
        raise _no_routes()

    async def cancel(self, bundle_id: str) -> bool:
        return await self.node.cancel(bundle_id)


def _no_routes() -> ConfigError:
    return ConfigError("this router has no routes to change")


def _retention_names(retention: Retention) -> list[str]:
    return [flag.name.lower() for flag in Retention if flag and flag.name and flag in retention]


class ApiService:
    """The API's request handling for one node, independent of the transport.

    ``default_lifetime_ms`` is the lifetime of a bundle whose ``send`` names none;
    ``max_payload`` the largest payload a ``send`` may carry (frames may be
    ``max_payload + 64 KiB``). ``token``, if set, is what a ``hello`` must present on a
    connection served with ``authenticated=False`` (TCP).
    """

    def __init__(
        self,
        node: Node,
        inventory: Inventory,
        *,
        default_lifetime_ms: int = 86_400_000,
        max_payload: int = 64 << 20,
        token: str | None = None,
    ) -> None:
        self.node = node
        self.inventory = inventory
        self.default_lifetime_ms = default_lifetime_ms
        self.max_payload = max_payload
        self.token = token
        #: endpoint -> the connection that registered it
        self.owners: dict[str, Connection] = {}
        self._connections: set[Connection] = set()
        self._closed = False

    @property
    def max_frame(self) -> int:
        return self.max_payload + FRAME_OVERHEAD

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, authenticated: bool
    ) -> None:
        """Serve one connection until it closes. ``authenticated`` False (TCP) makes a
        ``hello`` with the service's token the first request it must send."""
        connection = Connection(self, reader, writer, authenticated=authenticated)
        if self._closed:
            connection.shutdown("the node is shutting down")
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    def close(self) -> None:
        """Close every connection: waiting deliveries fail at once (their bundles stay
        stored), so that stopping the node is never held up by an application."""
        self._closed = True
        for connection in list(self._connections):
            connection.shutdown("the node is shutting down", abort=True)

    # -- endpoint names ------------------------------------------------------------------

    def resolve(self, text: str, what: str) -> str:
        """The full endpoint ID for ``text``: a bare name is an endpoint of this node
        (``sensor`` -> ``dtn://node/sensor``, ``5`` -> ``ipn:N.5`` on an ipn node)."""
        node_id = self.node.config.node_id
        eid = text
        if ":" not in text:
            if not text:
                raise ApiError(f"field {what!r} is empty", "bad_request")
            if node_id.startswith("ipn:"):
                if not (text.isascii() and text.isdigit()):
                    raise ApiError(
                        f"{what} {text!r}: endpoints of ipn node {node_id} are numbers",
                        "bad_request",
                    )
                eid = f"{node_id[:-2]}.{int(text)}"
            else:
                eid = node_id + text
        try:
            return str(EID.parse(eid))
        except InvalidEID as exc:
            raise ApiError(f"{what}: {exc}", "bad_request") from None

    def local_endpoint(self, text: str, what: str) -> str:
        """:meth:`resolve`, and the endpoint must be one an application may take here."""
        eid = self.resolve(text, what)
        config = self.node.config
        if not self.node.agent.is_local(eid):
            raise ApiError(f"{what} {eid} is not on this node ({config.node_id})", "bad_request")
        if eid in (config.node_id, config.routing_endpoint):
            raise ApiError(f"{what} {eid} is reserved for the node itself", "bad_request")
        return eid
