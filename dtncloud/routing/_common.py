"""Small helpers the router plug-ins share: checking settings and finding the direct link.

Setting checks raise :class:`~dtncloud.errors.ConfigError` with one line that names the router
and the key, e.g. ``router 'prophet': setting 'beta' must be a number in [0, 1], not 2``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from dtncloud.cborutil import DecodeBudget, decode_item
from dtncloud.errors import ConfigError
from dtncloud.routing.base import LinkInfo, RoutingView, node_of
from dtncloud.store.base import BundleMeta


def setting_error(router: str, key: str, expected: str, value: Any) -> ConfigError:
    """The error for setting ``key`` of ``router`` whose ``value`` is not ``expected``."""
    return ConfigError(f"router {router!r}: setting {key!r} must be {expected}, not {value!r:.40}")


def check_int(router: str, key: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int of at least ``minimum`` (bools are refused)."""
    if type(value) is not int or value < minimum:
        raise setting_error(router, key, f"an integer >= {minimum}", value)
    return value


def check_bool(router: str, key: str, value: Any) -> bool:
    if type(value) is not bool:
        raise setting_error(router, key, "true or false", value)
    return value


def check_fraction(
    router: str, key: str, value: Any, *, low_open: bool = False, high_open: bool = False
) -> float:
    """``value`` as a float in [0, 1]; ``low_open``/``high_open`` exclude 0 or 1."""
    low, high = "(" if low_open else "[", ")" if high_open else "]"
    ok = type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 1
    if not ok or (low_open and value == 0) or (high_open and value == 1):
        raise setting_error(router, key, f"a number in {low}0, 1{high}", value)
    return float(value)


#: :func:`~dtncloud.routing.base.node_of`, remembered: routers ask it of every bundle they
#: route, and a node's bundles go to few destinations.
node_of_cached = lru_cache(maxsize=1 << 14)(node_of)


def direct_link(meta: BundleMeta, view: RoutingView) -> LinkInfo | None:
    """The first link up to the node of ``meta``'s destination, if any."""
    links = view.links_to(node_of_cached(meta.destination))
    return links[0] if links else None


def peer_key(link: LinkInfo) -> str:
    """What a router keys per-neighbour state by: the peer's node ID, or the link when the
    convergence layer did not learn the peer's node ID."""
    return link.peer_node if link.peer_node is not None else f"link:{link.link_id}"


def decode_peer_cbor(data: bytes, *, max_items: int) -> Any:
    """One CBOR item from bytes a peer sent (a control message, a routing block), decoded
    with bounded work and memory; None when malformed, over budget or followed by junk. A
    peer's bad input never raises out of a router."""
    try:
        value, end = decode_item(data, 0, len(data), DecodeBudget(max_items))
    except ValueError:  # CborError
        return None
    return value if end == len(data) else None
