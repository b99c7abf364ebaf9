"""Test doubles for router tests: a hand-driven :class:`RoutingView` and metadata builders.

Generic on purpose (any router's tests may use them) and kept stable::

    view = FakeView("dtn://a/")
    link = view.add_link("l-b", "dtn://b/")
    meta = view.add_bundle(make_meta(destination="dtn://b/inbox"))
    router.route(meta, view, now=0)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import count

from dtncloud.routing.base import LinkInfo, node_of
from dtncloud.store.base import BundleMeta

__all__ = ["FakeView", "make_link", "make_meta"]


class FakeView:
    """A :class:`~dtncloud.routing.base.RoutingView` whose links and bundles a test sets.

    Links and bundles keep insertion order (bundles: oldest first, as the engine's view).
    ``is_local`` is true for the node ID, any endpoint under it, and ``endpoints``.
    """

    def __init__(self, node_id: str, *, endpoints: Iterable[str] = ()) -> None:
        self.node_id = node_id
        self.endpoints = set(endpoints)
        self._links: dict[str, LinkInfo] = {}
        self._bundles: dict[str, BundleMeta] = {}
        #: (bundle ID, expiry) of bundles let go of, oldest first (see let_go)
        self.gone: list[tuple[str, int]] = []

    # -- set-up --------------------------------------------------------------------------

    def add_link(
        self,
        link_id: str,
        peer_node: str | None,
        *,
        cla: str = "fake",
        max_bundle_size: int | None = None,
    ) -> LinkInfo:
        link = LinkInfo(link_id, peer_node, cla, max_bundle_size)
        self._links[link_id] = link
        return link

    def remove_link(self, link_id: str) -> LinkInfo:
        return self._links.pop(link_id)

    def add_bundle(self, meta: BundleMeta) -> BundleMeta:
        """Add ``meta`` (or replace the bundle with its ID, keeping its place)."""
        self._bundles[meta.bundle_id] = meta
        return meta

    def remove_bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.pop(bundle_id, None)

    # -- RoutingView ---------------------------------------------------------------------

    def links(self) -> Sequence[LinkInfo]:
        return list(self._links.values())

    def link(self, link_id: str) -> LinkInfo | None:
        return self._links.get(link_id)

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        return [link for link in self._links.values() if link.peer_node == node_id]

    def bundles(self) -> Iterable[BundleMeta]:
        return list(self._bundles.values())

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.get(bundle_id)

    def wire_size(self, meta: BundleMeta) -> int:
        return meta.size  # these tests' bundles go on the link as stored

    def let_go(self, now: int) -> Iterator[str]:
        return (bundle_id for bundle_id, until in reversed(self.gone) if until > now)

    def is_local(self, eid: str) -> bool:
        return eid in self.endpoints or node_of(eid) == self.node_id


_sequence = count()  # only makes default IDs unique; no test depends on its values


def make_meta(
    bundle_id: str | None = None,
    *,
    source: str = "dtn://src/app",
    destination: str = "dtn://dst/app",
    creation_time: int = 1_000,
    sequence: int | None = None,
    lifetime: int = 86_400_000,
    size: int = 100,
    received_at: int = 0,
    previous_node: str | None = None,
    routing: bytes = b"",
) -> BundleMeta:
    """Bundle metadata with sensible defaults; the ID looks like the engine's
    (``source@creation_time.sequence``)."""
    if sequence is None:
        sequence = next(_sequence)
    return BundleMeta(
        bundle_id=bundle_id or f"{source}@{creation_time}.{sequence}",
        source=source,
        destination=destination,
        creation_time=creation_time,
        sequence=sequence,
        expires_at=creation_time + lifetime,
        size=size,
        received_at=received_at,
        previous_node=previous_node,
        routing=routing,
    )


def make_link(link_id: str = "l1", peer_node: str | None = "dtn://b/") -> LinkInfo:
    return LinkInfo(link_id, peer_node, "fake")
