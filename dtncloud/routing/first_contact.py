"""First contact: hand the single copy of a bundle to whichever neighbour turns up.

The bundle hops from node to node, never straight back to the node it came from, until it
meets its destination's node. It costs one copy and needs no knowledge at all, at the price
of a random walk; a fair baseline for sparse networks where any move beats waiting.
"""

from __future__ import annotations

from dtncloud.routing._common import direct_link
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
from dtncloud.store.base import BundleMeta

__all__ = ["FirstContactRouter"]


def _eligible(link: LinkInfo, meta: BundleMeta) -> bool:
    return link.peer_node is None or link.peer_node != meta.previous_node


class FirstContactRouter(Router):
    """Forward, keeping no copy, on one link (picked with the injected ``rng``) whose peer is
    not the previous node; the destination's node is always preferred."""

    name = "first_contact"

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is None:
            candidates = [lk for lk in view.links() if _eligible(lk, meta)]
            if not candidates:
                return Wait()
            link = candidates[0] if len(candidates) == 1 else self.rng.choice(candidates)
        return Forward((link.link_id,), keep_copy=False)

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        # A bundle still waiting when ``link`` comes up had no eligible link before, so it
        # goes on this one; one that could go elsewhere has been sent there already.
        chosen = []
        for meta in view.bundles():
            dest = node_of(meta.destination)
            if link.peer_node == dest or (
                _eligible(link, meta)
                and not view.links_to(dest)
                and not any(
                    lk.link_id != link.link_id and _eligible(lk, meta) for lk in view.links()
                )
            ):
                chosen.append(meta.bundle_id)
        return chosen


default_registry.register(FirstContactRouter)
