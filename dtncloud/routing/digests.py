"""Bundle IDs as short digests, packed back to back: how routers tell a neighbour which
bundles it need not be sent (epidemic's and spray and wait's summary vectors, PRoPHET's
tables).

Summary vector (a control-message payload): the CBOR array ``[1, digests]``, where
``digests`` is one byte string of 8-byte BLAKE2b digests of bundle ID strings, back to back.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from functools import lru_cache

import cbor2

from dtncloud.routing._common import decode_peer_cbor, peer_key
from dtncloud.routing.base import ControlMessage, LinkInfo, RoutingView

__all__ = [
    "DIGEST_SIZE",
    "NeighbourVectors",
    "VectorHooks",
    "bundle_digest",
    "decode_summary",
    "digests_for",
    "encode_summary",
    "known_ids",
    "pack_digests",
    "unpack_digests",
]

DIGEST_SIZE = 8
_VERSION = 1
_NOTHING: frozenset[bytes] = frozenset()
#: Bytes of a routing message's bundle other than its digests: primary and payload blocks
#: with two long-ish node IDs, the vector's CBOR heads, a PRoPHET table of a few entries.
_MESSAGE_ROOM = 256


# Cached: a node asks for the digests of everything it holds at every contact (its vector,
# what each neighbour lacks), each ID many times over; hashing them again was a fifth of an
# epidemic simulation. Bounded, as a daemon runs for ever; IDs are not secret.
@lru_cache(maxsize=1 << 16)
def bundle_digest(bundle_id: str) -> bytes:
    """The 8-byte digest (BLAKE2b) that stands for a bundle ID."""
    return hashlib.blake2b(bundle_id.encode(), digest_size=DIGEST_SIZE).digest()


def known_ids(view: RoutingView, now: int) -> Iterator[str]:
    """What a neighbour need not send this node: the bundles it holds, then those it let
    go of recently and that still live, newest first (the ones to keep if cut short)."""
    return itertools.chain((meta.bundle_id for meta in view.bundles()), view.let_go(now))


def digests_for(link: LinkInfo, max_known: int) -> int:
    """How many digests a message on ``link`` may carry: ``max_known``, fewer on a link
    that takes bundles of at most ``max_bundle_size`` bytes (with room for the bundle's
    blocks and the rest of the message: the engine drops a routing message too big for
    its link rather than cut it)."""
    size = link.max_bundle_size
    if size is None:
        return max_known
    return max(0, min(max_known, (size - _MESSAGE_ROOM) // DIGEST_SIZE))


def pack_digests(bundle_ids: Iterable[str], limit: int) -> bytes:
    """The digests of at most ``limit`` of ``bundle_ids``, back to back."""
    return b"".join(bundle_digest(bundle_id) for bundle_id in itertools.islice(bundle_ids, limit))


def unpack_digests(raw: object, limit: int) -> set[bytes] | None:
    """The first ``limit`` digests of ``raw``, or None unless it is packed digests."""
    if not isinstance(raw, bytes) or len(raw) % DIGEST_SIZE:
        return None
    end = min(len(raw), limit * DIGEST_SIZE)
    return {raw[i : i + DIGEST_SIZE] for i in range(0, end, DIGEST_SIZE)}


def encode_summary(bundle_ids: Iterable[str], limit: int) -> bytes:
    """A summary vector of at most ``limit`` of ``bundle_ids``."""
    return bytes(cbor2.dumps([_VERSION, pack_digests(bundle_ids, limit)]))


def decode_summary(payload: bytes, limit: int) -> set[bytes] | None:
    """The digests of a summary vector (at most ``limit``), or None if it is not one."""
    item = decode_peer_cbor(payload, max_items=4)
    if not (isinstance(item, list) and len(item) == 2 and item[0] == _VERSION):
        return None
    return unpack_digests(item[1], limit)


class NeighbourVectors:
    """The summary vectors of the neighbours in contact: each link that comes up sends this
    node's vector and waits up to ``wait_ms`` for the neighbour's (a neighbour that runs
    another router sends none); what a vector lists is never sent to that neighbour. State
    per neighbour lasts while a link to it is up."""

    def __init__(self, wait_ms: int, max_known: int) -> None:
        self.wait_ms = wait_ms
        self.max_known = max_known
        #: neighbour (peer_key) -> digests its vector listed, this contact
        self._has: dict[str, set[bytes]] = {}
        #: link ID -> (neighbour, time until which the link waits for its vector)
        self._awaiting: dict[str, tuple[str, int]] = {}

    def link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[ControlMessage]:
        """This node's vector for ``link``'s neighbour (none for an unknown neighbour, or a
        second link to one in contact already)."""
        peer = link.peer_node
        if peer is None:
            return []
        if self.wait_ms and peer not in self._has:
            self._awaiting[link.link_id] = (peer, now + self.wait_ms)
        if any(lk.link_id != link.link_id for lk in view.links_to(peer)):
            return []
        limit = digests_for(link, self.max_known)
        return [ControlMessage(peer, link.link_id, encode_summary(known_ids(view, now), limit))]

    def link_down(self, link: LinkInfo, view: RoutingView) -> bool:
        """``link`` is down; True when it was the last to its neighbour, whose vector is
        forgotten then."""
        self._awaiting.pop(link.link_id, None)
        if link.peer_node is None or not any(
            lk.link_id != link.link_id for lk in view.links_to(link.peer_node)
        ):
            self._has.pop(peer_key(link), None)
            return True
        return False

    def heard(self, peer: str, payload: bytes, view: RoutingView) -> bool:
        """Take ``peer``'s vector; False if it is none, or the contact is over."""
        if not view.links_to(peer):
            return False
        digests = decode_summary(payload, self.max_known)
        if digests is None:
            return False
        self._has[peer] = digests
        for link_id in [lid for lid, (p, _) in self._awaiting.items() if p == peer]:
            del self._awaiting[link_id]
        return True

    def has(self, link: LinkInfo, bundle_id: str) -> bool:
        """Whether ``link``'s neighbour listed ``bundle_id`` in its vector."""
        return bundle_digest(bundle_id) in self.listed(peer_key(link))

    def listed(self, key: str) -> AbstractSet[bytes]:
        """The digests neighbour ``key`` (a :func:`peer_key`) listed: none before its
        vector came."""
        return self._has.get(key, _NOTHING)

    def waiting(self, link: LinkInfo) -> int | None:
        """Until when ``link`` waits for its neighbour's vector, or None."""
        pending = self._awaiting.get(link.link_id)
        return None if pending is None else pending[1]

    def get_timer(self) -> int | None:
        if not self._awaiting:
            return None
        return min(at for _, at in self._awaiting.values())

    def handle_timer(self, now: int) -> None:
        for link_id in [lid for lid, (_, at) in self._awaiting.items() if at <= now]:
            del self._awaiting[link_id]


class VectorHooks:
    """The router hooks of a router that swaps summary vectors through ``self._vectors``
    (mixed in before :class:`~dtncloud.routing.base.Router`)."""

    _vectors: NeighbourVectors

    def on_link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[ControlMessage]:
        return self._vectors.link_up(link, view, now)

    def on_control_message(
        self, peer_node: str, link_id: str | None, payload: bytes, view: RoutingView, now: int
    ) -> list[ControlMessage]:
        self._vectors.heard(peer_node, payload, view)
        return []

    def get_timer(self) -> int | None:
        return self._vectors.get_timer()

    def handle_timer(self, now: int) -> None:
        self._vectors.handle_timer(now)
