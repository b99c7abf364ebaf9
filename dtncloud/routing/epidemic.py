"""Epidemic routing with summary vectors (Vahdat and Becker, 2000).

Every node gives a copy of every bundle to every neighbour that lacks it, so a bundle reaches
its destination by the fastest path there is, paid for in copies and storage. To avoid
sending what a neighbour already has, the two routers swap *summary vectors* when a link
comes up: the IDs of the bundles each holds, then of those it let go of recently (delivered
to it, handed on, dropped) while their lifetime lasts, so that a bundle is not sent again to
the node it was delivered to at every later contact. Until the neighbour's vector arrives (or
``vector_wait_ms`` passes) nothing is sent on the link, not even bundles for the neighbour
itself: it may have had them delivered already. A
bundle sent to a neighbour counts as held by it, and a bundle never goes back to the node it
came from, so nothing is offered twice in one contact.

Summary vectors are :mod:`dtncloud.routing.digests`'s.
"""

from __future__ import annotations

import random
from typing import Any

from dtncloud.routing._common import (
    check_int,
    direct_link,
    node_of_cached,
    peer_key,
)
from dtncloud.routing.base import (
    Decision,
    Forward,
    LinkInfo,
    Router,
    RoutingView,
    Wait,
    default_registry,
)
from dtncloud.routing.digests import (
    NeighbourVectors,
    VectorHooks,
    bundle_digest,
    decode_summary,
    encode_summary,
)
from dtncloud.store.base import BundleMeta

__all__ = ["EpidemicRouter", "bundle_digest", "decode_summary", "encode_summary"]

_NOTHING: frozenset[bytes] = frozenset()


class EpidemicRouter(VectorHooks, Router):
    """Replicate every bundle to every neighbour that does not hold it.

    Settings: ``vector_wait_ms`` (default 5000), how long a new link waits for the peer's
    summary vector before bundles are sent on it regardless; ``max_known`` (default 50000),
    the most bundle digests remembered per neighbour (and sent in one vector).
    """

    name = "epidemic"

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        *,
        vector_wait_ms: int = 5000,
        max_known: int = 50_000,
        **params: Any,
    ) -> None:
        super().__init__(node_id, rng, **params)
        self.vector_wait_ms = check_int(self.name, "vector_wait_ms", vector_wait_ms, minimum=0)
        self.max_known = check_int(self.name, "max_known", max_known, minimum=1)
        self._vectors = NeighbourVectors(self.vector_wait_ms, self.max_known)
        #: per neighbour (peer_key): digests of the bundles sent to it this contact
        self._sent_to: dict[str, set[bytes]] = {}

    # -- what a neighbour has -----------------------------------------------------------------

    def peer_knows(self, link: LinkInfo, bundle_id: str) -> bool:
        """Whether the neighbour on ``link`` is known to hold ``bundle_id``: its vector
        lists it, or this node sent it there during the contact."""
        key = peer_key(link)
        digest = bundle_digest(bundle_id)
        return digest in self._vectors.listed(key) or digest in self._sent_to.get(key, _NOTHING)

    def _sent(self, link: LinkInfo, meta: BundleMeta) -> None:
        # Not capped: bounded by what this node holds, and a bundle sent must never be
        # offered again in the contact (a refused duplicate would be retried for ever).
        # A copy that failed stays counted too: it is tried again at the next contact.
        self._sent_to.setdefault(peer_key(link), set()).add(bundle_digest(meta.bundle_id))

    # -- decisions ----------------------------------------------------------------------------

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is not None and not self.peer_knows(link, meta.bundle_id):
            # Straight to its destination, once the destination's vector is in: it may list
            # the bundle, delivered there already by another node (each holder would send
            # it again otherwise, a duplicate per holder).
            wait = self._vectors.waiting(link)
            return Forward((link.link_id,), keep_copy=False) if wait is None else Wait(wait)
        ready: list[str] = []
        until: int | None = None  # when the first link still waiting for a vector gives up
        digest = bundle_digest(meta.bundle_id)
        previous = meta.previous_node
        listed, sent_to, waiting = self._vectors.listed, self._sent_to, self._vectors.waiting
        for lk in view.links():
            # as peer_knows(), with the digest worked out once for every link
            peer = lk.peer_node
            if peer is not None and peer == previous:
                continue  # never back to the node it came from
            key = peer if peer is not None else peer_key(lk)
            if digest in listed(key) or digest in sent_to.get(key, _NOTHING):
                continue
            wait = waiting(lk)
            if wait is None:
                ready.append(lk.link_id)
            elif until is None or wait < until:
                until = wait
        return Forward(tuple(ready), keep_copy=True) if ready else Wait(until)

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        # While the link waits for the peer's vector, route() answers Wait(until the wait
        # ends) for what it would send here; the vector's arrival makes the engine ask again.
        # Called for every link at every routing message, over every bundle held: the tests
        # of peer_knows() and _offer() are made here with the peer's set looked up once.
        peer = link.peer_node
        key = peer_key(link)
        listed, sent = self._vectors.listed(key), self._sent_to.get(key, _NOTHING)
        direct, others = [], []
        for meta in view.bundles():
            digest = bundle_digest(meta.bundle_id)
            if digest in listed or digest in sent:
                continue
            if peer is not None and node_of_cached(meta.destination) == peer:
                direct.append(meta.bundle_id)
            elif peer is None or peer != meta.previous_node:  # never back where it came from
                others.append(meta.bundle_id)
        return direct + others

    def carry(self, meta: BundleMeta, link: LinkInfo, now: int) -> bytes | None:
        self._sent(link, meta)  # held by the peer from the moment it is sent
        return None

    def on_transmitted(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> bytes:
        self._sent(link, meta)
        return meta.routing

    # -- links and summary vectors ------------------------------------------------------------

    def on_link_down(self, link: LinkInfo, view: RoutingView, now: int) -> None:
        if self._vectors.link_down(link, view):
            self._sent_to.pop(peer_key(link), None)


default_registry.register(EpidemicRouter)
