"""The read-only face of a bundle protocol agent that its router sees, and the agent's index
of the bundles it holds."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from dtncloud.engine.sizes import wire_size
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta, Retention

__all__ = ["AgentView", "BundleIndex"]

# A plain int: ``int & int`` is a machine operation, where ``Retention & Retention`` builds
# a new flag member through the enum machinery (microseconds, on every bundle routed).
_FORWARD_PENDING = int(Retention.FORWARD_PENDING)
_ABSENT: Any = object()


class BundleIndex(dict[str, BundleMeta]):
    """The agent's bundles by ID (in the order first indexed), which also keeps, up to date
    as bundles are set and removed, those waiting to be forwarded in the same order.

    Routers ask for the waiting bundles on every link that comes up and every routing
    message: filtering the whole index each time was the simulator's main cost under
    epidemic routing. Reads are those of a plain dict; only writes go through here.
    """

    __slots__ = ("_stale", "_waiting")

    def __init__(self) -> None:
        super().__init__()
        #: the forward-pending bundles, in the index's order (unless ``_stale``)
        self._waiting: dict[str, BundleMeta] = {}
        #: ``_waiting`` must be rebuilt: a bundle held already became forward-pending again,
        #: and its place is where it was first indexed, not at the end (rare: custody)
        self._stale = False

    def __setitem__(self, bundle_id: str, meta: BundleMeta) -> None:
        waiting = self._waiting
        if int(meta.retention) & _FORWARD_PENDING:
            if bundle_id in waiting or bundle_id not in self:
                waiting[bundle_id] = meta  # in place, or new (at the end, as in the index)
            else:
                self._stale = True
        elif waiting:
            waiting.pop(bundle_id, None)
        super().__setitem__(bundle_id, meta)

    def __delitem__(self, bundle_id: str) -> None:
        super().__delitem__(bundle_id)
        self._waiting.pop(bundle_id, None)

    def pop(self, bundle_id: str, default: Any = _ABSENT) -> Any:
        self._waiting.pop(bundle_id, None)
        if default is _ABSENT:
            return super().pop(bundle_id)
        return super().pop(bundle_id, default)

    def clear(self) -> None:
        super().clear()
        self._waiting.clear()
        self._stale = False

    # The other ways dicts have of changing would bypass the subset: refused rather than
    # left to go wrong quietly.
    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("BundleIndex is changed by item assignment, del, pop and clear only")

    update = setdefault = popitem = __ior__ = _unsupported

    def waiting(self) -> list[BundleMeta]:
        """The bundles waiting to be forwarded, oldest (first indexed) first: a new list."""
        if self._stale:
            fp = _FORWARD_PENDING
            self._waiting = {i: m for i, m in self.items() if int(m.retention) & fp}
            self._stale = False
        return list(self._waiting.values())


class AgentView:
    """A :class:`~dtncloud.routing.base.RoutingView` over the agent's own tables (shared,
    never copied: the view always shows the agent's present state)."""

    __slots__ = ("_bundles", "_is_local", "_let_go", "_links", "node_id")

    def __init__(
        self,
        node_id: str,
        links: Mapping[str, LinkInfo],
        bundles: BundleIndex,
        is_local: Callable[[str], bool],
        let_go: OrderedDict[str, int],
    ) -> None:
        self.node_id = node_id
        self._links = links
        self._bundles = bundles
        self._is_local = is_local
        self._let_go = let_go

    def links(self) -> Sequence[LinkInfo]:
        return list(self._links.values())

    def link(self, link_id: str) -> LinkInfo | None:
        return self._links.get(link_id)

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        return [link for link in self._links.values() if link.peer_node == node_id]

    def bundles(self) -> Iterable[BundleMeta]:
        return self._bundles.waiting()

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.get(bundle_id)

    def is_local(self, eid: str) -> bool:
        return self._is_local(eid)

    def wire_size(self, meta: BundleMeta) -> int:
        return wire_size(meta, self.node_id)

    def let_go(self, now: int) -> Iterator[str]:
        for bundle_id, expires_at in reversed(self._let_go.items()):
            if expires_at > now:
                yield bundle_id
