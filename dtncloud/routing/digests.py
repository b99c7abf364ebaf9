"""Bundle IDs as short digests, packed back to back: how routers tell a neighbour which
bundles it need not be sent (epidemic's summary vectors, PRoPHET's tables)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from functools import lru_cache

from dtncloud.routing.base import RoutingView

__all__ = ["DIGEST_SIZE", "bundle_digest", "known_ids", "pack_digests", "unpack_digests"]

DIGEST_SIZE = 8


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


def pack_digests(bundle_ids: Iterable[str], limit: int) -> bytes:
    """The digests of at most ``limit`` of ``bundle_ids``, back to back."""
    return b"".join(bundle_digest(bundle_id) for bundle_id in itertools.islice(bundle_ids, limit))


def unpack_digests(raw: object, limit: int) -> set[bytes] | None:
    """The first ``limit`` digests of ``raw``, or None unless it is packed digests."""
    if not isinstance(raw, bytes) or len(raw) % DIGEST_SIZE:
        return None
    end = min(len(raw), limit * DIGEST_SIZE)
    return {raw[i : i + DIGEST_SIZE] for i in range(0, end, DIGEST_SIZE)}
