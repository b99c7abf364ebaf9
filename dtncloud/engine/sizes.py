"""How many bytes sending a stored bundle puts on a link: one figure shared by the router,
which plans and books contacts with it, and the engine, which fits bundles into what is left
of a contact with it."""

from __future__ import annotations

from functools import lru_cache

from dtncloud.bpv7.blocks import previous_node_block
from dtncloud.bpv7.encode import encode_block
from dtncloud.eid import parse_eid
from dtncloud.errors import DtnError
from dtncloud.store.base import BundleMeta

__all__ = ["GROWTH_ALLOWANCE", "wire_size"]

#: What a sent bundle may grow by beyond :func:`wire_size` when it must fit a hard size
#: limit: a routing block the router adds, with room to spare.
GROWTH_ALLOWANCE = 48
#: A hop count block's count going up by one takes at most 2 more bytes (65,535 -> 65,536).
_HOP_COUNT_GROWTH = 2
#: A bundle age block (in bundles without a creation time) may grow to an 8-byte value.
_AGE_GROWTH = 8


@lru_cache(maxsize=4096)
def _previous_node_block_size(node_id: str) -> int:
    """The encoded size of a previous node block naming ``node_id`` (0 if it is no EID)."""
    try:
        return len(encode_block(previous_node_block(parse_eid(node_id), 2)))
    except (DtnError, ValueError):
        return 0


def wire_size(meta: BundleMeta, node_id: str) -> int:
    """At least what one transmission of the stored bundle ``meta`` by ``node_id`` puts on
    a link (before any routing block the router adds), and exactly that for a bundle made
    here without a hop count block. Sending adds ``node_id``'s previous node block (RFC
    9171 4.4.1). It is counted whole even when it replaces one the bundle arrived with,
    because a neighbour need not have sent one; the store keeps no note of which blocks a
    bundle has. A hop count may grow, and so may the age of a bundle without a creation time.

    The router plans and books contacts with this figure and the engine fits bundles into
    what is left of a contact with it, so both count the same bytes, and a bundle fitted
    into a contact's last bytes never overruns it. BPv6 bundles are sent as stored."""
    if meta.protocol == 6:
        return meta.size
    size = meta.size + _previous_node_block_size(node_id)
    if meta.previous_node is not None:
        size += _HOP_COUNT_GROWTH
    if meta.creation_time == 0:
        size += _AGE_GROWTH
    return size
