"""Static routing: a configured table of destination patterns and next hops.

Each route is a pattern and the node ID of the neighbour to hand matching bundles to. The
first route whose pattern matches a bundle's destination wins; ``default`` catches the rest.
A bundle whose destination node is a neighbour right now goes straight to it, table or not.

Patterns follow :meth:`dtncloud.eid.EID.matches`: a whole endpoint ID (``dtn://b/inbox``),
or a prefix ending in ``*`` (``dtn://b/*``, ``ipn:5.*``, or ``*`` for everything).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID
from dtncloud.routing._common import direct_link
from dtncloud.routing.base import (
    NO_KNOWN_ROUTE,
    Decision,
    Drop,
    Forward,
    Router,
    RoutingView,
    Wait,
    default_registry,
)
from dtncloud.store.base import BundleMeta

__all__ = ["StaticRoute", "StaticRouter"]


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """Bundles whose destination matches ``pattern`` go to neighbour ``via`` (a node ID)."""

    pattern: str
    via: str

    def matches(self, destination: str) -> bool:
        # The rule of EID.matches, on the text form the engine hands us (no parse per call).
        if self.pattern.endswith("*"):
            return destination.startswith(self.pattern[:-1])
        return destination == self.pattern


def _node_id(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"router 'static': {where}: next hop must be a node ID string")
    try:
        eid = EID.parse(text)
    except InvalidEID as exc:
        raise ConfigError(f"router 'static': {where}: bad next hop: {exc}") from None
    if not eid.is_node_id or eid.is_none:
        raise ConfigError(
            f"router 'static': {where}: next hop {text!r} is not a node ID "
            "(such as dtn://b/ or ipn:5.0)"
        )
    return str(eid)


def _check_pattern(pattern: Any, where: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"router 'static': {where}: pattern must be a non-empty string")
    star = pattern.find("*")
    if star >= 0 and star != len(pattern) - 1:
        raise ConfigError(f"router 'static': {where}: '*' may only end a pattern")
    if star < 0:
        try:
            EID.parse(pattern)
        except InvalidEID as exc:
            raise ConfigError(f"router 'static': {where}: bad pattern: {exc}") from None
    elif pattern != "*" and not pattern.lower().startswith(("dtn:", "ipn:")):
        raise ConfigError(f"router 'static': {where}: pattern must start with dtn: or ipn:")
    return pattern


def _parse_route(index: int, item: Any) -> StaticRoute:
    if isinstance(item, Mapping) and set(item) == {"pattern", "via"}:
        pattern, via = item["pattern"], item["via"]
    elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
        pattern, via = item
    else:
        raise ConfigError(
            f"router 'static': route {index} ({item!r:.60}): expected "
            "{'pattern': ..., 'via': ...} or a (pattern, via) pair"
        )
    where = f"route {index} ({pattern!r:.40} via {via!r:.40})"
    return StaticRoute(_check_pattern(pattern, where), _node_id(via, where))


class StaticRouter(Router):
    """First matching route wins; a missing next hop means wait, no route means drop."""

    name = "static"

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        *,
        routes: Sequence[Any] = (),
        default: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(node_id, rng, **params)
        if isinstance(routes, str | bytes | Mapping) or not isinstance(routes, Sequence):
            raise ConfigError("router 'static': setting 'routes' must be a list of routes")
        self.routes = tuple(_parse_route(i, item) for i, item in enumerate(routes, 1))
        self.default = None if default is None else _node_id(default, "default")

    def add_route(self, pattern: str, via: str) -> StaticRoute:
        """Add a route at run time (the agent must then be told ``RoutesChanged``). A route
        for the same pattern is replaced where it stands; a new one goes first, so that it
        is not hidden behind a broader route configured earlier."""
        where = f"route ({pattern!r:.40} via {via!r:.40})"
        route = StaticRoute(_check_pattern(pattern, where), _node_id(via, where))
        patterns = [known.pattern for known in self.routes]
        if route.pattern in patterns:
            at = patterns.index(route.pattern)
            self.routes = (*self.routes[:at], route, *self.routes[at + 1 :])
        else:
            self.routes = (route, *self.routes)
        return route

    def remove_route(self, pattern: str) -> bool:
        """Remove the route for ``pattern``; whether there was one."""
        kept = tuple(route for route in self.routes if route.pattern != pattern)
        removed = len(kept) != len(self.routes)
        self.routes = kept
        return removed

    def next_hop(self, destination: str) -> str | None:
        """The configured next hop for ``destination``, or None when no route matches."""
        for route in self.routes:
            if route.matches(destination):
                return route.via
        return self.default

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        link = direct_link(meta, view)
        if link is None:
            via = self.next_hop(meta.destination)
            if via is None:
                return Drop(NO_KNOWN_ROUTE)
            links = view.links_to(via)
            if not links:
                return Wait()
            link = links[0]
        return Forward((link.link_id,), keep_copy=False)


default_registry.register(StaticRouter)
