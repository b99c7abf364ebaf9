"""Spray and wait (Spyropoulos, Psounis and Raghavendra, 2005).

A bundle starts with ``copies`` (L) logical copies. While a node holds n > 1 of them it
*sprays*: a neighbour that has none from it (and is not the node it came from) gets
floor(n/2) in the binary variant, or a single one in the vanilla ("source") variant, and the
node keeps the rest. A node left with one copy *waits*: it hands the bundle only to the
destination's node. Total copies never exceed L, so cost is bounded whatever the network.

When a link comes up the two routers swap summary vectors (:mod:`dtncloud.routing.digests`:
the bundles each holds or let go of recently), and wait up to ``vector_wait_ms`` for the
neighbour's before spraying on the link: copies handed to a neighbour that has the bundle
already would be lost with the duplicate it drops. Nothing a vector lists goes to that
neighbour, the destination included, and nothing goes to the destination before its vector
is in.

Wire and storage formats:

- routing extension block (:data:`~dtncloud.routing.base.ROUTING_BLOCK_TYPE`): a CBOR
  unsigned integer, the number of copies handed over with this bundle;
- ``meta.routing``: the CBOR array ``[copies held, [peers given copies]]`` (a bare unsigned
  integer is read as copies held with no peers).
"""

from __future__ import annotations

import random
from typing import Any

import cbor2

from dtncloud.routing._common import (
    check_bool,
    check_int,
    decode_peer_cbor,
    direct_link,
    peer_key,
    setting_error,
)
from dtncloud.routing.base import (
    Decision,
    Forward,
    LinkInfo,
    Router,
    RoutingView,
    Wait,
    default_registry,
    node_of,
)
from dtncloud.routing.digests import NeighbourVectors, VectorHooks
from dtncloud.store.base import BundleMeta

__all__ = ["MAX_COPIES", "SprayAndWaitRouter"]

#: The most copies a bundle may start with or be handed (a peer's block is clamped to it).
MAX_COPIES = 1 << 16
#: The most decoded states a router caches (a bound for nodes that never see a link).
_MAX_CACHED_STATES = 1 << 17


class SprayAndWaitRouter(VectorHooks, Router):
    """Bounded replication: spray ``copies`` (default 8) copies, ``binary`` (default True)
    halving them at each hand-over, then wait for the destination. ``vector_wait_ms``
    (default 5000) and ``max_known`` (default 50000) are as epidemic's."""

    name = "spray_and_wait"

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        *,
        copies: int = 8,
        binary: bool = True,
        vector_wait_ms: int = 5000,
        max_known: int = 50_000,
        **params: Any,
    ) -> None:
        super().__init__(node_id, rng, **params)
        self._vectors = NeighbourVectors(
            check_int(self.name, "vector_wait_ms", vector_wait_ms, minimum=0),
            check_int(self.name, "max_known", max_known, minimum=1),
        )
        self.copies = check_int(self.name, "copies", copies, minimum=1)
        if self.copies > MAX_COPIES:
            raise setting_error(self.name, "copies", f"at most {MAX_COPIES}", copies)
        self.binary = check_bool(self.name, "binary", binary)
        #: bundle ID -> {link ID: copies promised to the copy being sent on that link}
        self._reserved: dict[str, dict[str, int]] = {}
        #: link ID -> bundles whose copy the link refused or lost: not offered again on it
        self._refused: dict[str, set[str]] = {}
        #: bundle ID -> (``meta.routing``, its decoded state): :meth:`select` reads every held
        #: bundle's state on every link-up, and decoding the CBOR each time dominated a run.
        #: An entry counts only while the blob is the same; see :meth:`_prune_states`.
        self._states: dict[str, tuple[bytes, tuple[int, tuple[str, ...]]]] = {}
        #: destination EID -> its node ID (``node_of``), for :meth:`select`
        self._destinations: dict[str, str] = {}

    # -- state --------------------------------------------------------------------------------

    def state(self, meta: BundleMeta) -> tuple[int, tuple[str, ...]]:
        """(copies held, peers given copies) from ``meta.routing``."""
        routing = meta.routing
        cached = self._states.get(meta.bundle_id)
        if cached is not None and (cached[0] is routing or cached[0] == routing):
            return cached[1]
        decoded = self._decode_state(routing)
        if decoded is None:
            # No state of ours: a bundle created here starts spraying, any other one waits.
            return (self.copies if meta.previous_node is None else 1), ()
        if len(self._states) >= _MAX_CACHED_STATES:
            self._states.clear()
        self._states[meta.bundle_id] = (routing, decoded)
        return decoded

    @staticmethod
    def _decode_state(routing: bytes) -> tuple[int, tuple[str, ...]] | None:
        """The state a routing blob holds, or None if it holds none (empty or malformed)."""
        item = decode_peer_cbor(routing, max_items=3 + MAX_COPIES) if routing else None
        if isinstance(item, int) and item >= 1:
            return min(item, MAX_COPIES), ()
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and item[0] >= 1
            and isinstance(item[1], list)
        ):
            return min(item[0], MAX_COPIES), tuple(p for p in item[1] if isinstance(p, str))
        return None

    def _prune_states(self, held: set[str]) -> None:
        """Forget the cached states of bundles no longer ``held`` (called by :meth:`select`
        when they outnumber the held ones, so the cost stays proportional to those)."""
        self._states = {k: v for k, v in self._states.items() if k in held}

    @staticmethod
    def _encode(copies: int, peers: tuple[str, ...]) -> bytes:
        return bytes(cbor2.dumps([copies, list(peers)]))

    def _free(self, meta: BundleMeta) -> int:
        """Copies held and not yet promised to a copy in flight."""
        return self.state(meta)[0] - sum(self._reserved.get(meta.bundle_id, {}).values())

    def _share(self, meta: BundleMeta, link: LinkInfo) -> int | None:
        """The copies promised to ``link`` (promising them now if the spray rules allow),
        or None if the bundle is not to be sprayed there."""
        bundle_id = meta.bundle_id
        promised = self._reserved.get(bundle_id)
        if promised is not None and link.link_id in promised:
            return promised[link.link_id]
        if link.peer_node is not None and link.peer_node == meta.previous_node:
            return None
        copies, peers = self.state(meta)
        free = copies - sum(promised.values()) if promised else copies
        if free <= 1 or peer_key(link) in peers or bundle_id in self._refused.get(link.link_id, ()):
            return None
        share = free // 2 if self.binary else 1
        self._reserved.setdefault(bundle_id, {})[link.link_id] = share
        return share

    # -- per-bundle hooks ---------------------------------------------------------------------

    def admit(self, meta: BundleMeta, carried: bytes | None, now: int) -> bytes:
        if carried is None:
            return self._encode(self.copies, ())
        item = decode_peer_cbor(carried, max_items=1)
        copies = min(item, MAX_COPIES) if type(item) is int and item >= 1 else 1
        return self._encode(copies, ())

    def carry(self, meta: BundleMeta, link: LinkInfo, now: int) -> bytes | None:
        if link.peer_node == node_of(meta.destination):
            share = self._free(meta)  # the destination takes every copy not promised away
        else:
            share = self._share(meta, link) or 1  # 1: a copy sent against our advice
        return bytes(cbor2.dumps(max(1, share)))

    def on_transmitted(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> bytes:
        share = self._release(meta.bundle_id, link.link_id)
        if not share:
            return meta.routing
        copies, peers = self.state(meta)
        return self._encode(max(1, copies - share), (*peers, peer_key(link)))

    def on_transmit_failed(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> None:
        # The promised copies stay ours. The peer may hold the bundle already (a duplicate
        # it refused), so it is not offered again on this link while the link is up.
        self._release(meta.bundle_id, link.link_id)
        self._refused.setdefault(link.link_id, set()).add(meta.bundle_id)

    def on_link_down(self, link: LinkInfo, view: RoutingView, now: int) -> None:
        self._vectors.link_down(link, view)
        # Promises stay until the engine reports each copy sent or failed (a copy may have
        # arrived even though the link is gone now), except for bundles no longer held.
        self._refused.pop(link.link_id, None)
        for bundle_id, promised in list(self._reserved.items()):
            if link.link_id in promised and view.bundle(bundle_id) is None:
                self._release(bundle_id, link.link_id)

    def _release(self, bundle_id: str, link_id: str) -> int | None:
        promised = self._reserved.get(bundle_id)
        if promised is None:
            return None
        share = promised.pop(link_id, None)
        if not promised:
            del self._reserved[bundle_id]
        return share

    # -- decisions ----------------------------------------------------------------------------

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        vectors = self._vectors
        link = direct_link(meta, view)
        if link is not None and not vectors.has(link, meta.bundle_id):
            # to the destination once its vector is in (it may have the bundle already)
            wait = vectors.waiting(link)
            return Forward((link.link_id,), keep_copy=False) if wait is None else Wait(wait)
        links: list[str] = []
        until: int | None = None  # when the first link still waiting for a vector gives up
        for lk in view.links():
            if vectors.has(lk, meta.bundle_id):
                continue
            wait = vectors.waiting(lk)
            if wait is not None:
                until = wait if until is None else min(until, wait)
            elif self._share(meta, lk) is not None:
                links.append(lk.link_id)
        return Forward(tuple(links), keep_copy=True) if links else Wait(until)

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        direct, spray = [], []
        peer = link.peer_node
        links_to = view.links_to
        reserved = self._reserved
        state = self.state
        destinations = self._destinations
        states = self._states
        has = self._vectors.has
        spraying = self._vectors.waiting(link) is None  # else only the direct ones, for now
        held = 0
        for meta in view.bundles():
            held += 1
            destination = destinations.get(meta.destination)
            if destination is None:
                destination = self._node_of(meta.destination)
            if peer is not None and destination == peer:
                if not has(link, meta.bundle_id):
                    direct.append(meta.bundle_id)
            elif not spraying or has(link, meta.bundle_id):
                continue
            elif meta.bundle_id not in reserved:
                # Nothing promised: a waiting bundle (one copy) is not sprayed, and _share()
                # would say so without doing anything; the cached state is read inline.
                cached = states.get(meta.bundle_id)
                if cached is not None and cached[0] is meta.routing:
                    copies = cached[1][0]
                else:
                    copies = state(meta)[0]
                if copies > 1 and not links_to(destination) and self._share(meta, link):
                    spray.append(meta.bundle_id)
            elif not links_to(destination) and self._share(meta, link):
                spray.append(meta.bundle_id)
        if len(self._states) > 2 * held + 64:
            self._prune_states({meta.bundle_id for meta in view.bundles()})
        return direct + spray

    def _node_of(self, eid: str) -> str:
        """``node_of(eid)``, remembered (select asks it for every held bundle)."""
        if len(self._destinations) >= _MAX_CACHED_STATES:
            self._destinations.clear()
        node = self._destinations[eid] = node_of(eid)
        return node


default_registry.register(SprayAndWaitRouter)
