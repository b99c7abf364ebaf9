"""The router plug-in interface.

A router decides where the bundles a node holds go next. It is pure and synchronous: the
engine (``dtncloud.engine``) calls it with a bundle's metadata, a read-only
:class:`RoutingView` of the node (links that are up, bundles held) and ``now``; it answers
with a :class:`Decision`. It never does I/O, never reads a clock and draws random numbers
only from the ``rng`` it is given, so the simulator runs the very routers ``dtnd`` runs.

Routers that talk to their peers (epidemic summary vectors, PRoPHET predictabilities) do it
with :class:`ControlMessage` values: the engine wraps each in a bundle to the peer's routing
endpoint and hands the payloads it receives there to :meth:`Router.on_control_message`.

Per-bundle routing state lives in ``BundleMeta.routing`` (bytes the router alone reads), so it
survives a restart; state that must travel with a bundle (spray-and-wait copy counts) goes in
the routing extension block, see :meth:`Router.admit` and :meth:`Router.carry`.

Each router is one module in this package, named as its registry key, and registers itself
on its last line with ``default_registry.register(...)``.
"""

from __future__ import annotations

import difflib
import inspect
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from dtncloud.errors import ConfigError
from dtncloud.store.base import BundleMeta

__all__ = [
    "ControlMessage",
    "Decision",
    "Drop",
    "Forward",
    "LinkInfo",
    "Router",
    "RouterRegistry",
    "ROUTING_BLOCK_TYPE",
    "RoutingView",
    "Wait",
    "default_registry",
    "node_of",
]

#: RFC 9171 section 6.1.1 reason codes a router gives in :class:`Drop` (kept here as numbers
#: so routers need not import the codec).
NO_KNOWN_ROUTE = 6
NO_TIMELY_CONTACT = 7
HOP_LIMIT_EXCEEDED = 9

#: Block type code of the routing extension block that carries :meth:`Router.carry` content
#: with a bundle (from the RFC 9171 private and experimental range, 192-255).
ROUTING_BLOCK_TYPE = 193


def node_of(eid: str) -> str:
    """The node ID of an endpoint ID string: ``dtn://node/app`` -> ``dtn://node/``,
    ``ipn:5.7`` -> ``ipn:5.0``. Other strings are returned unchanged."""
    if eid.startswith("dtn://"):
        slash = eid.find("/", 6)
        return eid if slash < 0 else eid[: slash + 1]
    if eid.startswith("ipn:"):
        dot = eid.find(".", 4)
        return eid if dot < 0 else eid[:dot] + ".0"
    return eid


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A link that is up, as a router sees it.

    ``peer_node`` is the neighbour's node ID when the convergence layer learnt it (TCPCL
    SESS_INIT, a discovery beacon), else None. ``max_bundle_size`` is None for no limit.
    """

    link_id: str
    peer_node: str | None
    cla: str = ""
    max_bundle_size: int | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the bundle on each of ``links`` now. After every transmission has succeeded the
    node deletes its copy unless ``keep_copy`` (replicating routers keep theirs)."""

    links: tuple[str, ...]
    keep_copy: bool = False
    #: bytes the contact can still carry, when the router knows (contact plans): a larger
    #: bundle sent on a single link is cut, the first fragment sent now and the rest kept
    #: (proactive fragmentation, RFC 9171 5.8)
    volume: int | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """Keep the bundle and ask again when a link comes up (:meth:`Router.select`) or, if
    ``until`` is given, at that DTN time."""

    until: int | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """Give the bundle up: the node deletes it (unless it must keep it for another reason)
    and reports deletion with ``reason``, an RFC 9171 status-report reason code."""

    reason: int = NO_KNOWN_ROUTE


Decision = Forward | Wait | Drop


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A routing message for the router of neighbour ``peer_node``, to be sent on
    ``link_id``."""

    peer_node: str
    link_id: str
    payload: bytes


class RoutingView(Protocol):
    """What a router may read of its node. Implemented by the engine; read-only."""

    @property
    def node_id(self) -> str: ...

    def links(self) -> Sequence[LinkInfo]:
        """The links that are up now."""
        ...

    def link(self, link_id: str) -> LinkInfo | None: ...

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        """The links up now whose peer is ``node_id``."""
        ...

    def bundles(self) -> Iterable[BundleMeta]:
        """Every bundle waiting to be forwarded, oldest first."""
        ...

    def bundle(self, bundle_id: str) -> BundleMeta | None: ...

    def is_local(self, eid: str) -> bool:
        """Whether ``eid`` is this node or one of its registered endpoints."""
        ...

    def wire_size(self, meta: BundleMeta) -> int:
        """The bytes one transmission of ``meta`` from this node puts on a link (the stored
        bundle with this node's previous node block): what to plan and book contacts with."""
        ...

    def let_go(self, now: int) -> Iterator[str]:
        """The IDs of bundles this node held and has let go of recently (delivered,
        forwarded, dropped), newest first, leaving out those whose lifetime is over at
        ``now``: what a neighbour need not send it again."""
        ...


def _unknown_settings(cls: type[Router], unknown: list[str]) -> str:
    """The error for settings no class of ``cls`` consumed, with the settings it knows."""
    known = sorted(
        {
            name
            for klass in cls.__mro__
            if "__init__" in vars(klass)
            for name, parameter in inspect.signature(vars(klass)["__init__"]).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
    )
    message = f"router {cls.name!r}: unknown setting(s): {', '.join(unknown)}"
    close = difflib.get_close_matches(unknown[0], known, n=1)
    if close:
        message += f" (did you mean {close[0]}?)"
    if known:
        message += f"; its settings: {', '.join(known)}"
    return message


class Router(ABC):
    """Base class of router plug-ins. Subclasses set ``name`` and implement :meth:`route`;
    every other hook has a sensible default.

    ``params`` are the router's settings from the configuration; a subclass consumes the ones
    it knows in ``__init__`` and passes the rest up, so that an unknown key is a
    :class:`~dtncloud.errors.ConfigError` naming it.
    """

    name: ClassVar[str]

    def __init__(self, node_id: str, rng: random.Random, **params: Any) -> None:
        if params:
            raise ConfigError(_unknown_settings(type(self), sorted(params)))
        self.node_id = node_id
        self.rng = rng

    # -- decisions ------------------------------------------------------------------------

    @abstractmethod
    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        """Where ``meta``'s bundle goes next. Called when the node takes a bundle that is not
        (only) for itself, and again whenever :meth:`select` is not overridden."""

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        """Bundle IDs to send on ``link``, which has just come up, in sending order. The
        default asks :meth:`route` about every waiting bundle and keeps those routed to
        ``link``.

        The engine then calls :meth:`route` for each ID returned (the decision says which
        links and whether a copy is kept), and calls :meth:`select` again for every link
        after a routing message from a peer arrives."""
        chosen = []
        for meta in view.bundles():
            decision = self.route(meta, view, now)
            if isinstance(decision, Forward) and link.link_id in decision.links:
                chosen.append(meta.bundle_id)
        return chosen

    # -- per-bundle state -----------------------------------------------------------------

    def admit(self, meta: BundleMeta, carried: bytes | None, now: int) -> bytes:
        """Initial routing state for a bundle the node has just taken: stored as
        ``meta.routing``. ``carried`` is the content of the bundle's routing extension block
        (None if it has none)."""
        return b""

    def carry(self, meta: BundleMeta, link: LinkInfo, now: int) -> bytes | None:
        """Content of the routing extension block for the copy sent on ``link``, or None for
        no block."""
        return None

    def on_transmitted(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> bytes:
        """The copy sent on ``link`` was acknowledged. Returns the bundle's new routing
        state (default: unchanged)."""
        return meta.routing

    def on_transmit_failed(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> None:
        """The copy sent on ``link`` was refused or the link broke."""
        return None

    # -- links and peers ------------------------------------------------------------------

    def on_link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[ControlMessage]:
        return []

    def on_link_down(self, link: LinkInfo, view: RoutingView, now: int) -> None:
        return None

    def on_control_message(
        self, peer_node: str, link_id: str | None, payload: bytes, view: RoutingView, now: int
    ) -> list[ControlMessage]:
        """A routing message from ``peer_node``'s router arrived (on ``link_id`` if known)."""
        return []

    # -- time -----------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        """When the router next needs :meth:`handle_timer`, or None."""
        return None

    def handle_timer(self, now: int) -> None:
        return None


R = TypeVar("R", bound=type[Router])


class RouterRegistry:
    """Router classes by name. ``default_registry`` holds the routers shipped here; make your
    own registry to add or replace some without touching it."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Router]] = {}

    def register(self, cls: R) -> R:
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[Router]:
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown router {name!r}; known routers: {known}") from None

    def create(
        self,
        name: str,
        *,
        node_id: str,
        rng: random.Random | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Router:
        cls = self.get(name)
        try:
            return cls(node_id, rng if rng is not None else random.Random(0), **dict(params or {}))
        except TypeError as exc:  # a setting of the wrong kind
            raise ConfigError(f"router {name!r}: {exc}") from None


default_registry = RouterRegistry()
