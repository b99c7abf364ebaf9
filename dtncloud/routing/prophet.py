"""PRoPHET: probabilistic routing using the history of encounters and transitivity (RFC 6693).

Each node keeps a *delivery predictability* P(A, X) in [0, 1] for every node X it has reason
to think it can reach: raised when A meets X, raised transitively when A meets B and B is
likely to meet X, and decaying while nothing happens. A bundle for D is copied to neighbour B
when B is the better bet: P(B, D) > P(A, D) (the GRTR strategy); bundles for B itself always
go to B. Copies are kept, so PRoPHET is a pruned epidemic.

When a link comes up the two routers swap their predictability tables as control messages:
the CBOR array ``[table, digests]``, ``table`` a map of node ID (text) to predictability
(float), at most ``max_table`` entries, the highest first, and ``digests`` the bundles the
node holds or let go of recently (as epidemic's summary vectors, at most ``max_known``).
Those are never sent to it: RFC 6693 has the receiver of a bundle offer decline what it
has, and without this a bundle delivered to its destination would be sent there again at
every contact. A bare table (without digests) is accepted too. Time comes only from ``now`` (DTN milliseconds); aging multiplies every value
by ``gamma`` once per whole ``time_unit_ms`` elapsed.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable
from typing import Any

import cbor2

from dtncloud.routing._common import (
    check_fraction,
    check_int,
    decode_peer_cbor,
    direct_link,
    setting_error,
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
    node_of,
)
from dtncloud.routing.digests import (
    bundle_digest,
    digests_for,
    known_ids,
    pack_digests,
    unpack_digests,
)
from dtncloud.store.base import BundleMeta

__all__ = ["ProphetRouter", "decode_message", "decode_table", "encode_message", "encode_table"]


def encode_table(table: dict[str, float], limit: int) -> bytes:
    """``table`` alone as a CBOR map of its ``limit`` highest entries (the message of a
    node that sends no digests)."""
    return bytes(cbor2.dumps(_highest(table, limit), canonical=True))


def _highest(table: dict[str, float], limit: int) -> dict[str, float]:
    if len(table) > limit:
        return dict(heapq.nlargest(limit, table.items(), key=lambda item: item[1]))
    return table


def decode_table(payload: bytes, limit: int) -> dict[str, float] | None:
    """A peer's table (its ``limit`` highest valid entries), or None if it is not one.

    Entries that are not text -> number in [0, 1] are skipped; decoding work is bounded by
    ``limit`` (a table more than four times larger is refused whole).
    """
    return _table_of(decode_peer_cbor(payload, max_items=8 * limit + 1), limit)


def encode_message(
    table: dict[str, float], known: Iterable[str], limit: int, max_known: int
) -> bytes:
    """The routing message: ``table`` (its ``limit`` highest entries) and the digests of
    at most ``max_known`` of the ``known`` bundle IDs."""
    digests = pack_digests(known, max_known)
    return bytes(cbor2.dumps([_highest(table, limit), digests], canonical=True))


def decode_message(
    payload: bytes, limit: int, max_known: int
) -> tuple[dict[str, float], set[bytes]] | None:
    """A peer's table and the digests of what it has, or None if it is neither a message
    nor a bare table (which has no digests)."""
    item = decode_peer_cbor(payload, max_items=8 * limit + 4)
    if isinstance(item, list) and len(item) == 2:
        table = _table_of(item[0], limit)
        digests = unpack_digests(item[1], max_known)
        return None if table is None or digests is None else (table, digests)
    table = _table_of(item, limit)
    return None if table is None else (table, set())


def _table_of(item: object, limit: int) -> dict[str, float] | None:
    if not isinstance(item, dict):
        return None
    table = {
        node: float(p)
        for node, p in item.items()
        if isinstance(node, str) and type(p) in (int, float) and math.isfinite(p) and 0 <= p <= 1
    }
    return _highest(table, limit)


class ProphetRouter(Router):
    """RFC 6693 delivery predictabilities with the GRTR forwarding strategy (copies kept).

    Settings (RFC 6693 names in lower case): ``p_encounter_max`` 0.7, ``p_encounter_first``
    0.5, ``p_first_threshold`` 0.1, ``delta`` 0.01, ``beta`` 0.9, ``gamma`` 0.999 per
    ``time_unit_ms`` 30000, ``i_typ_ms`` 1800000 (typical time between encounters),
    ``max_table`` 1000 (most nodes remembered, sent or accepted), ``max_known`` 50000
    (most bundle digests sent or accepted in one message), and ``table_wait_ms`` 5000 (how
    long bundles for a new neighbour wait for its message, which may list them; 0: never).
    """

    name = "prophet"

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        *,
        p_encounter_max: float = 0.7,
        p_encounter_first: float = 0.5,
        p_first_threshold: float = 0.1,
        delta: float = 0.01,
        beta: float = 0.9,
        gamma: float = 0.999,
        time_unit_ms: int = 30_000,
        i_typ_ms: int = 1_800_000,
        max_table: int = 1000,
        max_known: int = 50_000,
        table_wait_ms: int = 5000,
        **params: Any,
    ) -> None:
        super().__init__(node_id, rng, **params)
        n = self.name
        self.p_encounter_max = check_fraction(n, "p_encounter_max", p_encounter_max, low_open=True)
        self.p_encounter_first = check_fraction(
            n, "p_encounter_first", p_encounter_first, low_open=True
        )
        self.p_first_threshold = check_fraction(
            n, "p_first_threshold", p_first_threshold, high_open=True
        )
        if self.p_first_threshold >= self.p_encounter_first:
            raise setting_error(
                n, "p_first_threshold", "below p_encounter_first", p_first_threshold
            )
        self.delta = check_fraction(n, "delta", delta, high_open=True)
        self.beta = check_fraction(n, "beta", beta)
        self.gamma = check_fraction(n, "gamma", gamma, low_open=True)
        self.time_unit_ms = check_int(n, "time_unit_ms", time_unit_ms, minimum=1)
        self.i_typ_ms = check_int(n, "i_typ_ms", i_typ_ms, minimum=1)
        self.max_table = check_int(n, "max_table", max_table, minimum=1)
        self.max_known = check_int(n, "max_known", max_known, minimum=1)
        self.table_wait_ms = check_int(n, "table_wait_ms", table_wait_ms, minimum=0)
        #: link ID -> until when bundles for its neighbour wait for the neighbour's message
        self._awaiting: dict[str, int] = {}
        self._p: dict[str, float] = {}  # P(self, node)
        self._met_at: dict[str, int] = {}  # last encounter, for nodes in _p
        self._aged_at: int | None = None
        self._peer_tables: dict[str, dict[str, float]] = {}  # neighbours', this contact
        self._sent: dict[str, set[str]] = {}  # bundle IDs sent to each neighbour, this contact
        self._has: dict[str, set[bytes]] = {}  # digests each neighbour said it has, this contact

    # -- predictabilities ---------------------------------------------------------------------

    def predictability(self, node: str, now: int) -> float:
        """P(this node, ``node``) at ``now``."""
        self._age(now)
        return self._p.get(node, 0.0)

    def table(self, now: int) -> dict[str, float]:
        """A copy of every non-zero predictability at ``now``."""
        self._age(now)
        return dict(self._p)

    def _age(self, now: int) -> None:
        if self._aged_at is None:
            self._aged_at = now
        units = (now - self._aged_at) // self.time_unit_ms
        if units <= 0:
            return
        self._aged_at += units * self.time_unit_ms
        factor = self.gamma**units
        for node, p in list(self._p.items()):
            p *= factor
            if p < self.p_first_threshold:
                self._forget(node)
            else:
                self._p[node] = p

    def _forget(self, node: str) -> None:
        self._p.pop(node, None)
        self._met_at.pop(node, None)

    def _encounter(self, peer: str, now: int) -> None:
        p = self._p.get(peer, 0.0)
        if p < self.p_first_threshold:
            p = self.p_encounter_first
        else:
            since = now - self._met_at.get(peer, now - self.i_typ_ms)
            p_enc = self.p_encounter_max * min(1.0, max(0, since) / self.i_typ_ms)
            p += (1 - self.delta - p) * p_enc
        self._p[peer] = p
        self._met_at[peer] = now
        self._trim()

    def _transitive(self, peer: str, table: dict[str, float]) -> None:
        p_ab = self._p.get(peer, 0.0)
        for node, p_bc in table.items():
            if node in (self.node_id, peer):
                continue
            p = p_ab * p_bc * self.beta
            if p >= self.p_first_threshold and p > self._p.get(node, 0.0):
                self._p[node] = p
        self._trim()

    def _trim(self) -> None:
        excess = len(self._p) - self.max_table
        if excess > 0:
            for node, _ in heapq.nsmallest(excess, self._p.items(), key=lambda item: item[1]):
                self._forget(node)

    # -- decisions ----------------------------------------------------------------------------

    def _better(self, link: LinkInfo, meta: BundleMeta) -> float | None:
        """P(peer, destination) when GRTR sends ``meta`` on ``link``, else None."""
        peer = link.peer_node
        if peer is None or peer == meta.previous_node:
            return None
        table = self._peer_tables.get(peer)
        if table is None or self._peer_has(peer, meta.bundle_id):
            return None
        dest = node_of(meta.destination)
        p_peer = table.get(dest, 0.0)
        return p_peer if p_peer > self._p.get(dest, 0.0) else None

    def _peer_has(self, peer: str, bundle_id: str) -> bool:
        """Whether ``peer`` has ``bundle_id``: sent to it this contact, or in its message."""
        if bundle_id in self._sent.get(peer, ()):
            return True
        has = self._has.get(peer)
        return has is not None and bundle_digest(bundle_id) in has

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is not None and not self._peer_has(link.peer_node or "", meta.bundle_id):
            # to the destination once its message is in: it may list the bundle
            until = self._awaiting.get(link.link_id)
            return Forward((link.link_id,), keep_copy=False) if until is None else Wait(until)
        self._age(now)
        links = tuple(lk.link_id for lk in view.links() if self._better(lk, meta) is not None)
        return Forward(links, keep_copy=True) if links else Wait()

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        peer = link.peer_node
        if peer is None:
            return []
        self._age(now)
        direct: list[str] = []
        ranked: list[tuple[float, str]] = []
        for meta in view.bundles():
            if node_of(meta.destination) == peer:
                if not self._peer_has(peer, meta.bundle_id):
                    direct.append(meta.bundle_id)
            elif (p := self._better(link, meta)) is not None:
                ranked.append((p, meta.bundle_id))
        ranked.sort(key=lambda item: -item[0])  # GRTR-Max order; stable, so oldest first
        return direct + [bundle_id for _, bundle_id in ranked]

    def carry(self, meta: BundleMeta, link: LinkInfo, now: int) -> bytes | None:
        sent = self._sent.get(link.peer_node) if link.peer_node is not None else None
        if sent is not None:
            sent.add(meta.bundle_id)
        return None

    def on_transmitted(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> bytes:
        self.carry(meta, link, now)
        return meta.routing

    # -- encounters and tables ----------------------------------------------------------------

    def on_link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[ControlMessage]:
        peer = link.peer_node
        if peer is None or any(lk.link_id != link.link_id for lk in view.links_to(peer)):
            return []  # unknown peer, or a second link in a contact already counted
        self._age(now)
        self._encounter(peer, now)
        self._sent[peer] = set()
        if self.table_wait_ms:
            self._awaiting[link.link_id] = now + self.table_wait_ms
        known = digests_for(link, self.max_known)
        message = encode_message(self._p, known_ids(view, now), self.max_table, known)
        return [ControlMessage(peer, link.link_id, message)]

    def on_link_down(self, link: LinkInfo, view: RoutingView, now: int) -> None:
        peer = link.peer_node
        if peer is not None and not any(lk.link_id != link.link_id for lk in view.links_to(peer)):
            self._peer_tables.pop(peer, None)
            self._sent.pop(peer, None)
            self._has.pop(peer, None)
        self._awaiting.pop(link.link_id, None)

    def on_control_message(
        self, peer_node: str, link_id: str | None, payload: bytes, view: RoutingView, now: int
    ) -> list[ControlMessage]:
        if peer_node not in self._sent or not view.links_to(peer_node):
            return []  # not in contact with that node: nothing to keep its table for
        message = decode_message(payload, self.max_table, self.max_known)
        if message is None:
            return []
        table, self._has[peer_node] = message
        for lk in view.links_to(peer_node):
            self._awaiting.pop(lk.link_id, None)
        self._age(now)
        self._peer_tables[peer_node] = table
        self._transitive(peer_node, table)
        return []

    def get_timer(self) -> int | None:
        return min(self._awaiting.values()) if self._awaiting else None

    def handle_timer(self, now: int) -> None:
        for link_id in [lid for lid, until in self._awaiting.items() if until <= now]:
            del self._awaiting[link_id]


default_registry.register(ProphetRouter)
