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
from collections.abc import Iterable
from typing import Any

from dtncloud.routing._common import (
    check_int,
    direct_link,
    node_of_cached,
    peer_key,
)
from dtncloud.routing.base import (
    ControlMessage,
    Decision,
    Forward,
    LinkInfo,
    Router,
    RoutingView,
    Wait,
    default_registry,
)
from dtncloud.routing.digests import (
    bundle_digest,
    decode_summary,
    digests_for,
    encode_summary,
    known_ids,
)
from dtncloud.store.base import BundleMeta

__all__ = ["EpidemicRouter", "bundle_digest", "decode_summary", "encode_summary"]

_NOTHING: frozenset[bytes] = frozenset()


class EpidemicRouter(Router):
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
        #: per neighbour: digests of the bundles it holds (its vector, plus what we sent it)
        self._known: dict[str, set[bytes]] = {}
        #: neighbours whose vector arrived during the current contact
        self._heard: set[str] = set()
        #: link ID -> (peer node, time until which the link waits for the peer's vector)
        self._awaiting: dict[str, tuple[str, int]] = {}

    # -- what a neighbour has -----------------------------------------------------------------

    def peer_knows(self, link: LinkInfo, bundle_id: str) -> bool:
        """Whether the neighbour on ``link`` is known to hold ``bundle_id``."""
        known = self._known.get(peer_key(link))
        return known is not None and bundle_digest(bundle_id) in known

    def _learn(self, key: str, digests: Iterable[bytes]) -> None:
        """Note what a neighbour's vector lists, up to ``max_known`` (the vector is the
        peer's to size; forgetting only costs a duplicate the neighbour will refuse)."""
        known = self._known.setdefault(key, set())
        for digest in digests:
            if len(known) >= self.max_known:
                break
            known.add(digest)

    def _sent(self, link: LinkInfo, meta: BundleMeta) -> None:
        # Not capped: bounded by what this node holds, and a bundle sent must never be
        # offered again in the contact (a refused duplicate would be retried for ever).
        # A copy that failed stays counted too: it is tried again at the next contact.
        self._known.setdefault(peer_key(link), set()).add(bundle_digest(meta.bundle_id))

    def _offer(self, link: LinkInfo, meta: BundleMeta) -> bool:
        """Whether the neighbour on ``link`` may lack ``meta``'s bundle and did not send it."""
        if link.peer_node is not None and link.peer_node == meta.previous_node:
            return False
        return not self.peer_knows(link, meta.bundle_id)

    # -- decisions ----------------------------------------------------------------------------

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is not None and not self.peer_knows(link, meta.bundle_id):
            # Straight to its destination, once the destination's vector is in: it may list
            # the bundle, delivered there already by another node (each holder would send
            # it again otherwise, a duplicate per holder).
            pending = self._awaiting.get(link.link_id)
            if pending is not None:
                return Wait(until=pending[1])
            return Forward((link.link_id,), keep_copy=False)
        ready: list[str] = []
        until: int | None = None  # when the first link still waiting for a vector gives up
        digest = bundle_digest(meta.bundle_id)
        previous = meta.previous_node
        known = self._known
        for lk in view.links():
            # as _offer(lk, meta), with the digest worked out once for every link
            peer = lk.peer_node
            if peer is not None and peer == previous:
                continue
            held = known.get(peer if peer is not None else peer_key(lk))
            if held is not None and digest in held:
                continue
            pending = self._awaiting.get(lk.link_id)
            if pending is None:
                ready.append(lk.link_id)
            elif until is None or pending[1] < until:
                until = pending[1]
        return Forward(tuple(ready), keep_copy=True) if ready else Wait(until)

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        # While the link waits for the peer's vector, route() answers Wait(until the wait
        # ends) for what it would send here; the vector's arrival makes the engine ask again.
        # Called for every link at every routing message, over every bundle held: the tests
        # of peer_knows() and _offer() are made here with the peer's set looked up once.
        peer = link.peer_node
        known = self._known.get(peer_key(link), _NOTHING)
        direct, others = [], []
        for meta in view.bundles():
            if peer is not None and node_of_cached(meta.destination) == peer:
                if bundle_digest(meta.bundle_id) not in known:
                    direct.append(meta.bundle_id)
            elif peer is not None and peer == meta.previous_node:
                continue  # never back to the node it came from
            elif bundle_digest(meta.bundle_id) not in known:
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

    def on_link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[ControlMessage]:
        peer = link.peer_node
        if peer is None:
            return []  # nobody to address a vector to: the link floods
        if self.vector_wait_ms and peer not in self._heard:
            self._awaiting[link.link_id] = (peer, now + self.vector_wait_ms)
        if any(lk.link_id != link.link_id for lk in view.links_to(peer)):
            return []  # a second link to a neighbour in contact: it has our vector
        limit = digests_for(link, self.max_known)
        return [ControlMessage(peer, link.link_id, encode_summary(known_ids(view, now), limit))]

    def on_link_down(self, link: LinkInfo, view: RoutingView, now: int) -> None:
        self._awaiting.pop(link.link_id, None)
        key = peer_key(link)
        if link.peer_node is None or not any(
            lk.link_id != link.link_id for lk in view.links_to(link.peer_node)
        ):
            self._known.pop(key, None)
            self._heard.discard(key)

    def on_control_message(
        self, peer_node: str, link_id: str | None, payload: bytes, view: RoutingView, now: int
    ) -> list[ControlMessage]:
        if not view.links_to(peer_node):
            return []  # the contact is over; its state is gone
        digests = decode_summary(payload, self.max_known)
        if digests is None:
            return []
        self._learn(peer_node, digests)
        self._heard.add(peer_node)
        for lid in [lid for lid, (peer, _) in self._awaiting.items() if peer == peer_node]:
            del self._awaiting[lid]
        return []

    def get_timer(self) -> int | None:
        if not self._awaiting:  # asked after every input the node takes: mostly nothing waits
            return None
        return min(at for _, at in self._awaiting.values())

    def handle_timer(self, now: int) -> None:
        for lid in [lid for lid, (_, at) in self._awaiting.items() if at <= now]:
            del self._awaiting[lid]


default_registry.register(EpidemicRouter)
