"""The read-only face of a bundle protocol agent that its router sees."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from dtncloud.engine.sizes import wire_size
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta, Retention

__all__ = ["AgentView"]

_FORWARD_PENDING = Retention.FORWARD_PENDING


class AgentView:
    """A :class:`~dtncloud.routing.base.RoutingView` over the agent's own tables (shared,
    never copied: the view always shows the agent's present state)."""

    __slots__ = ("_bundles", "_is_local", "_links", "node_id")

    def __init__(
        self,
        node_id: str,
        links: Mapping[str, LinkInfo],
        bundles: Mapping[str, BundleMeta],
        is_local: Callable[[str], bool],
    ) -> None:
        self.node_id = node_id
        self._links = links
        self._bundles = bundles
        self._is_local = is_local

    def links(self) -> Sequence[LinkInfo]:
        return list(self._links.values())

    def link(self, link_id: str) -> LinkInfo | None:
        return self._links.get(link_id)

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        return [link for link in self._links.values() if link.peer_node == node_id]

    def bundles(self) -> Iterable[BundleMeta]:
        return [m for m in self._bundles.values() if m.retention & _FORWARD_PENDING]

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.get(bundle_id)

    def is_local(self, eid: str) -> bool:
        return self._is_local(eid)

    def wire_size(self, meta: BundleMeta) -> int:
        return wire_size(meta, self.node_id)
