"""Direct delivery: a bundle goes only to its destination's node, over a link to it.

The simplest router there is, and the baseline for the others: one copy, one hop, no
traffic but the bundle itself. Useful when every destination is eventually a neighbour (a
ground station and its satellites, a data mule that visits every sensor).
"""

from __future__ import annotations

from dtncloud.routing._common import direct_link
from dtncloud.routing.base import Decision, Forward, Router, RoutingView, Wait, default_registry
from dtncloud.store.base import BundleMeta

__all__ = ["DirectRouter"]


class DirectRouter(Router):
    """Forward on a link whose peer is the destination's node; otherwise wait for one."""

    name = "direct"

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is None:
            return Wait()
        return Forward((link.link_id,), keep_copy=False)


default_registry.register(DirectRouter)
