"""Contact graph routing (CGR): forward along the earliest-arrival path through a contact plan.

The router knows the :class:`~dtncloud.routing.contact_plan.ContactPlan` of the network, the
scheduled windows in which one node can send to another. For a bundle it searches, from this
node at ``now``, the sequence of contacts that delivers the bundle to its destination node
earliest, and hands the bundle to the first contact's receiver when that contact is under way
and a link to it is up.

**The search** is Dijkstra's algorithm on nodes with arrival times as labels (time-dependent
earliest arrival; waiting at a node is allowed, so the FIFO property holds and the labels are
exact). Taking contact *c* from a node reached at time *t*: the bundle leaves at
``max(t, c.start, first free time of c)``, its last byte is sent ``ceil(size * 1000 / rate)``
ms later, which must be no later than ``c.end``, and it arrives ``c.owlt`` ms after that. A
contact is usable only if the whole bundle fits in what is left of it. Arrivals must be
before the bundle's ``expires_at``; ties go to fewer hops.

**Volume accounting**: when a bundle is routed, its size is booked on every contact of its
route. A contact's residual volume is ``rate * (end - max(start, now)) - booked``, and its
first free time is ``max(start, now)`` plus the time to send what is booked on it, so later
bundles queue behind earlier ones and go elsewhere when a contact is full. Booking is a soft,
in-memory estimate: re-routing a bundle moves its booking, a successful transmission frees
the first hop's share (the time it took is gone from the contact anyway), a failed one frees
all of it, and bookings of expired bundles and ended contacts are pruned.

**Route lists and caching**: per destination the router keeps up to ``max_routes`` candidate
routes, found as ION and SABR do: after each search, exclude the found route's limiting
contact (the one that ends first) and search again. A bundle takes the candidate that,
evaluated for its size and the current bookings, arrives first. Only when none fits does it
run a search of its own (whose result joins the candidates). Candidates are recomputed when
time passes the end of one of their contacts.

**Decisions**: as with every router, a bundle whose destination node is a neighbour with a
link up goes straight there. Otherwise: the best route's first contact under way and a link
up to its receiver -> :class:`Forward` on that link; the contact still to come ->
:class:`Wait` until it starts; no route at all -> :class:`Drop` with ``NO_KNOWN_ROUTE``,
routes only after expiry -> ``Drop`` with ``NO_TIMELY_CONTACT``. A bundle that would have a route but for other bundles' bookings
waits (bookings are estimates, not grounds to delete data). Routes never start by going back
to the node a bundle came from, unless that node is its destination.

Settings: ``contact_plan`` (a ContactPlan, its JSON form as a dict or list, or plan text in
either form; files are read by the caller), ``epoch`` (DTN ms that ``+seconds`` times in ION
text count from) and ``max_routes`` (candidates per destination, default 3).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dtncloud.errors import ConfigError
from dtncloud.routing._common import check_int
from dtncloud.routing.base import (
    NO_KNOWN_ROUTE,
    NO_TIMELY_CONTACT,
    Decision,
    Drop,
    Forward,
    LinkInfo,
    Router,
    RoutingView,
    Wait,
    default_registry,
    node_of,
)
from dtncloud.routing.contact_plan import (
    Contact,
    ContactPlan,
    parse_contact_plan,
    parse_json_contact_plan,
    transmit_ms,
)
from dtncloud.store.base import BundleMeta

__all__ = ["CgrRouter", "ContactGraph", "Route", "earliest_route"]

_NEVER = 2**64
#: Candidate routes kept per destination, as a multiple of ``max_routes`` (the searches of
#: single bundles add to the list).
_EXTRA_CANDIDATES = 4

Path = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """A path through the contact plan and when a bundle following it arrives."""

    contacts: tuple[Contact, ...]
    arrival: int

    @property
    def next_hop(self) -> str:
        return self.contacts[0].receiver

    @property
    def first(self) -> Contact:
        return self.contacts[0]

    @property
    def hops(self) -> tuple[str, ...]:
        """The nodes the bundle visits after this one, destination last."""
        return tuple(c.receiver for c in self.contacts)

    @property
    def limit(self) -> int:
        """When the route stops existing: the earliest end among its contacts."""
        return min(c.end for c in self.contacts)


class ContactGraph:
    """A contact plan indexed for route searches. Contacts are numbered by their position in
    ``plan.contacts``; nodes get numbers too. :meth:`prune` forgets ended contacts."""

    def __init__(self, plan: ContactPlan) -> None:
        self.plan = plan
        self.contacts = plan.contacts
        self._index: dict[str, int] = {}
        for contact in self.contacts:
            for name in (contact.sender, contact.receiver):
                self._index.setdefault(name, len(self._index))
        self._start = [c.start for c in self.contacts]
        self._end = [c.end for c in self.contacts]
        self._rate = [c.rate for c in self.contacts]
        self._owlt = [c.owlt for c in self.contacts]
        self._receiver = [self._index[c.receiver] for c in self.contacts]
        self._out: list[list[int]] = [[] for _ in self._index]
        #: when a quarter of the contacts left will have ended: a good moment to prune again
        self.next_prune: int | None = None
        self.prune(-1)

    def node(self, name: str | None) -> int | None:
        return None if name is None else self._index.get(name)

    def receiver(self, contact: int) -> int:
        return self._receiver[contact]

    def prune(self, now: int) -> None:
        """Forget contacts that ended by ``now`` (searches skip them anyway; this keeps
        searches fast in long plans) and set :attr:`next_prune`."""
        for lst in self._out:
            lst.clear()
        ends = []
        for number, contact in enumerate(self.contacts):
            if contact.end > now:
                self._out[self._index[contact.sender]].append(number)
                ends.append(contact.end)
        ends.sort()
        self.next_prune = ends[len(ends) // 4] if ends else None

    def is_live(self, contact: int, now: int) -> bool:
        return self._end[contact] > now

    def search(
        self,
        source: int,
        target: int,
        now: int,
        size: int,
        *,
        deadline: int | None = None,
        avoid: int | None = None,
        excluded: frozenset[int] | set[int] = frozenset(),
        booked: Mapping[int, int] | None = None,
    ) -> tuple[Path, int] | None:
        """The earliest-arrival path from ``source`` at ``now`` to ``target`` for a bundle of
        ``size`` bytes, and its arrival time; None if there is none.

        ``deadline``: arrivals must be earlier. ``avoid``: a node the first hop must not go to.
        ``excluded``: contacts not to use. ``booked``: bytes already booked per contact.
        """
        start, end, rate, owlt, receiver, out = (
            self._start,
            self._end,
            self._rate,
            self._owlt,
            self._receiver,
            self._out,
        )
        count = len(self._index)
        arrival = [_NEVER] * count
        hops = [0] * count
        done = [False] * count
        pred = [-1] * count
        arrival[source] = now
        heap = [(now, 0, source)]
        limit = _NEVER if deadline is None else deadline
        while heap:
            t, h, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = True
            if u == target:
                break
            for ci in out[u]:
                e = end[ci]
                if e <= t or ci in excluded:
                    continue
                v = receiver[ci]
                if done[v] or (u == source and v == avoid):
                    continue
                s = start[ci]
                depart = t if t > s else s
                r = rate[ci]
                if booked:
                    queued = booked.get(ci, 0)
                    if queued:
                        free = (s if s > now else now) + transmit_ms(queued, r)
                        if free > depart:
                            depart = free
                if depart >= e:
                    continue
                sent = depart + (-(-size * 1000 // r) if type(r) is int else transmit_ms(size, r))
                if sent > e:
                    continue
                a = sent + owlt[ci]
                if a >= limit:
                    continue
                if a < arrival[v] or (a == arrival[v] and h + 1 < hops[v]):
                    arrival[v] = a
                    hops[v] = h + 1
                    pred[v] = ci
                    heapq.heappush(heap, (a, h + 1, v))
        if not done[target] or target == source:
            return None
        path = []
        node = target
        while node != source:
            ci = pred[node]
            path.append(ci)
            node = self._index[self.contacts[ci].sender]
        path.reverse()
        return tuple(path), arrival[target]

    def evaluate(
        self, path: Path, now: int, size: int, booked: Mapping[int, int] | None = None
    ) -> int | None:
        """When a bundle of ``size`` bytes leaving at ``now`` along ``path`` arrives, under the
        rules of :meth:`search`; None if some contact cannot carry it in time."""
        t = now
        for ci in path:
            s, e, r = self._start[ci], self._end[ci], self._rate[ci]
            depart = t if t > s else s
            if booked:
                queued = booked.get(ci, 0)
                if queued:
                    depart = max(depart, (s if s > now else now) + transmit_ms(queued, r))
            if depart >= e:
                return None
            sent = depart + transmit_ms(size, r)
            if sent > e:
                return None
            t = sent + self._owlt[ci]
        return t

    def routes(
        self, source: int, target: int, now: int, size: int, count: int
    ) -> list[tuple[Path, int]]:
        """Up to ``count`` routes: each search excludes the limiting contact (earliest end)
        of every route found before it, as in ION and SABR."""
        excluded: set[int] = set()
        found: list[tuple[Path, int]] = []
        while len(found) < count:
            result = self.search(source, target, now, size, excluded=excluded)
            if result is None:
                break
            found.append(result)
            path = result[0]
            excluded.add(min(path, key=lambda ci: self._end[ci]))
        return found

    def as_route(self, path: Path, arrival: int) -> Route:
        return Route(tuple(self.contacts[ci] for ci in path), arrival)


def earliest_route(
    plan: ContactPlan,
    source: str,
    destination: str,
    now: int,
    size: int,
    *,
    deadline: int | None = None,
) -> Route | None:
    """The earliest-arrival route in ``plan`` (no bookings), or None. Builds the index each
    call: for one-off questions, not for routing many bundles."""
    graph = ContactGraph(plan)
    src, dst = graph.node(source), graph.node(destination)
    if src is None or dst is None:
        return None
    found = graph.search(src, dst, now, size, deadline=deadline)
    return None if found is None else graph.as_route(*found)


#: RFC 9171 bundle processing flag "must not be fragmented"
_MUST_NOT_FRAGMENT = 0x04


# -- the router -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Booking:
    path: Path
    size: int
    expires_at: int


@dataclass(slots=True)
class _Candidates:
    paths: list[Path] = field(default_factory=list)
    #: recompute when now reaches this (the earliest end of a contact on a candidate)
    valid_until: int = _NEVER
    #: how many paths came from the per-destination route computation
    computed: int = 0


def _coerce_plan(value: Any, epoch: int | None) -> ContactPlan:
    if value is None:
        return ContactPlan()
    if isinstance(value, ContactPlan):
        return value
    if isinstance(value, dict | list):
        return parse_json_contact_plan(value)
    if isinstance(value, str):
        text = value.strip()
        if text and "\n" not in text and " " not in text:
            raise ConfigError(
                f"router 'cgr': setting 'contact_plan' looks like a file name ({text[:60]!r}); "
                "give the plan's text or its JSON value (the caller reads files)"
            )
        return parse_contact_plan(value, epoch=epoch)
    raise ConfigError(
        "router 'cgr': setting 'contact_plan' must be a ContactPlan, plan text or its JSON "
        f"value, not {type(value).__name__}"
    )


class CgrRouter(Router):
    """Contact graph routing over a scheduled contact plan; see the module docstring."""

    name = "cgr"

    def __init__(
        self,
        node_id: str,
        rng: random.Random,
        *,
        contact_plan: Any = None,
        max_routes: Any = 3,
        epoch: Any = None,
        **params: Any,
    ) -> None:
        super().__init__(node_id, rng, **params)
        self.max_routes = check_int("cgr", "max_routes", max_routes, minimum=1)
        if epoch is not None:
            epoch = check_int("cgr", "epoch", epoch, minimum=0)
        try:
            self.plan = _coerce_plan(contact_plan, epoch)
        except ConfigError as exc:
            message = str(exc)
            if not message.startswith("router "):
                message = f"router 'cgr': setting 'contact_plan': {message}"
            raise ConfigError(message) from None
        self._graph = ContactGraph(self.plan)
        self._source = self._graph.node(node_of(node_id))
        #: bytes booked per contact number
        self._booked: dict[int, int] = {}
        self._bookings: dict[str, _Booking] = {}
        self._candidates: dict[int, _Candidates] = {}
        #: (destination, avoided node) -> (size, expires_at, release count) of a bundle that
        #: found no route: bigger bundles that expire sooner find none either, until booked
        #: volume is released
        self._saturated: dict[tuple[int, int | None], tuple[int, int, int]] = {}
        self._releases = 0
        #: when to forget ended contacts again (see ContactGraph.prune)
        self._prune_at: int | None = self._graph.next_prune
        #: (expires_at, bundle ID) of bookings, to forget those of expired bundles
        self._expiries: list[tuple[int, str]] = []

    def replace_plan(self, plan: ContactPlan) -> None:
        """Route by ``plan`` from now on (contacts added or removed at run time; the agent
        must then be told ``RoutesChanged``). Bookings on the old plan are dropped: the
        bundles they were for are routed again, and book again, on the new one."""
        self.plan = plan
        self._graph = ContactGraph(plan)
        self._source = self._graph.node(node_of(self.node_id))
        self._booked.clear()
        self._bookings.clear()
        self._candidates.clear()
        self._saturated.clear()
        self._expiries.clear()
        self._prune_at = self._graph.next_prune

    def add_contact(self, contact: Contact) -> None:
        if contact not in self.plan:
            self.replace_plan(self.plan + ContactPlan([contact]))

    def remove_contact(self, contact: Contact) -> bool:
        if contact not in self.plan:
            return False
        self.replace_plan(ContactPlan(c for c in self.plan if c != contact))
        return True

    # -- questions (no booking) ---------------------------------------------------------------

    def find_route(
        self,
        destination: str,
        now: int,
        size: int,
        *,
        expires_at: int | None = None,
        previous_node: str | None = None,
        with_bookings: bool = True,
    ) -> Route | None:
        """The earliest-arrival route from this node for a bundle of ``size`` bytes (a full
        search, taking the current bookings into account unless ``with_bookings`` is
        false). Books nothing."""
        target = self._graph.node(node_of(destination))
        if self._source is None or target is None:
            return None
        avoid = self._avoid(previous_node, node_of(destination))
        found = self._graph.search(
            self._source,
            target,
            now,
            size,
            deadline=expires_at,
            avoid=avoid,
            booked=self._booked if with_bookings else None,
        )
        return None if found is None else self._graph.as_route(*found)

    def candidate_routes(self, destination: str, now: int, size: int) -> list[Route]:
        """The route list computed for ``destination`` (limiting-contact exclusion, no
        bookings), best first."""
        target = self._graph.node(node_of(destination))
        if self._source is None or target is None:
            return []
        found = self._graph.routes(self._source, target, now, size, self.max_routes)
        return [self._graph.as_route(*item) for item in found]

    def booked(self, contact: Contact) -> int:
        """Bytes currently booked on ``contact``."""
        return sum(
            self._booked.get(number, 0)
            for number, known in enumerate(self._graph.contacts)
            if known == contact
        )

    def residual_volume(self, contact: Contact, now: int) -> int:
        """``rate * (end - max(start, now)) - booked``, in bytes (may be negative)."""
        left = contact.end - max(contact.start, now)
        return int(contact.rate * max(left, 0) // 1000) - self.booked(contact)

    # -- decisions ----------------------------------------------------------------------------

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        return self._route(meta, view, now)[0]

    def select(self, link: LinkInfo, view: RoutingView, now: int) -> list[str]:
        """The waiting bundles for ``link``'s peer and those whose best route starts with a
        contact to it that is under way now, oldest first."""
        peer = link.peer_node
        if peer is None:
            return []
        chosen = []
        for meta in list(view.bundles()):
            decision, path = self._route(meta, view, now)
            if link.max_bundle_size is not None and view.wire_size(meta) > link.max_bundle_size:
                continue
            if node_of(meta.destination) == peer and isinstance(decision, Forward):
                chosen.append(meta.bundle_id)
            elif path is not None:
                first = self._graph.contacts[path[0]]
                if first.receiver == peer and first.start <= now:
                    chosen.append(meta.bundle_id)
        return chosen

    def _route(self, meta: BundleMeta, view: RoutingView, now: int) -> tuple[Decision, Path | None]:
        if self._prune_at is not None and now >= self._prune_at:
            self._prune_contacts(now)
        destination = node_of(meta.destination)
        if destination == self.node_id:
            return Wait(), None  # delivery is the engine's business, not routing's
        old = self._bookings.pop(meta.bundle_id, None)
        if old is not None:
            self._unbook(old.path, old.size)
        # planned and booked with what goes on the link, not what is stored
        size = view.wire_size(meta)
        target = self._graph.node(destination)
        path = None
        decision: Decision
        direct = self._usable_link(destination, size, view)
        if direct is not None:
            # Like every router: the destination's node is a neighbour now, so straight
            # there, whatever the plan says.
            decision = Forward((direct,))
        elif self._source is None or target is None:
            decision = Drop(NO_KNOWN_ROUTE)
        else:
            avoid = self._avoid(meta.previous_node, destination)
            path = self._choose(target, avoid, meta, size, now, old)
            if path is None:
                decision = self._no_route(target, avoid, meta, size, view, now)
            else:
                self._book(meta, size, path, old)
                decision = self._decide(path, size, view, now)
        if old is not None and (path != old.path or size != old.size):
            self._releases += 1  # volume freed somewhere: failed searches may now succeed
        return decision, path

    @staticmethod
    def _usable_link(node: str, size: int, view: RoutingView) -> str | None:
        for link in view.links_to(node):
            if link.max_bundle_size is None or size <= link.max_bundle_size:
                return link.link_id
        return None

    def _avoid(self, previous_node: str | None, destination: str) -> int | None:
        if previous_node is None or node_of(previous_node) == destination:
            return None
        return self._graph.node(node_of(previous_node))

    def _choose(
        self,
        target: int,
        avoid: int | None,
        meta: BundleMeta,
        size: int,
        now: int,
        old: _Booking | None,
    ) -> Path | None:
        """The best route for the bundle (``size`` bytes on the wire) with the current
        bookings, or None."""
        assert self._source is not None
        expires = meta.expires_at
        entry = self._candidates.get(target)
        if entry is None or now >= entry.valid_until:
            entry = self._compute_candidates(target, now, size)
        paths = entry.paths if old is None else [*entry.paths, old.path]
        best = self._best_of(paths, avoid, now, size, expires, self._booked)
        if best is not None:
            return best
        key = (target, avoid)
        known = self._saturated.get(key)
        if (
            known is not None
            and known[2] == self._releases
            and size >= known[0]
            and expires <= known[1]
        ):
            return None
        found = self._graph.search(
            self._source, target, now, size, deadline=expires, avoid=avoid, booked=self._booked
        )
        if found is None:
            self._saturated[key] = (size, expires, self._releases)
            return None
        self._add_candidate(entry, found[0])
        return found[0]

    def _best_of(
        self,
        paths: Sequence[Path],
        avoid: int | None,
        now: int,
        size: int,
        expires: int,
        booked: Mapping[int, int] | None,
    ) -> Path | None:
        best: Path | None = None
        best_key = (_NEVER, 0)
        for path in paths:
            if avoid is not None and self._graph.receiver(path[0]) == avoid:
                continue
            arrival = self._graph.evaluate(path, now, size, booked)
            if arrival is None or arrival >= expires:
                continue
            key = (arrival, len(path))
            if key < best_key:
                best, best_key = path, key
        return best

    def _compute_candidates(self, target: int, now: int, size: int) -> _Candidates:
        assert self._source is not None
        found = self._graph.routes(self._source, target, now, size, self.max_routes)
        entry = _Candidates(computed=len(found))
        for path, _ in found:
            self._add_candidate(entry, path)
        self._candidates[target] = entry
        return entry

    def _add_candidate(self, entry: _Candidates, path: Path) -> None:
        if path in entry.paths:
            return
        if len(entry.paths) >= self.max_routes * _EXTRA_CANDIDATES:
            del entry.paths[entry.computed]  # the oldest added by a single bundle's search
        entry.paths.append(path)
        ends = self._graph.plan.contacts
        entry.valid_until = min(entry.valid_until, *(ends[ci].end for ci in path))

    def _no_route(
        self,
        target: int,
        avoid: int | None,
        meta: BundleMeta,
        size: int,
        view: RoutingView,
        now: int,
    ) -> Decision:
        """No route with the current bookings: wait if one exists without them, else drop."""
        assert self._source is not None
        entry = self._candidates[target]
        path = self._best_of(entry.paths, avoid, now, size, meta.expires_at, None)
        if path is None:
            found = self._graph.search(
                self._source, target, now, size, deadline=meta.expires_at, avoid=avoid
            )
            if found is None:
                late = self._graph.search(self._source, target, now, size, avoid=avoid)
                return Drop(NO_KNOWN_ROUTE if late is None else NO_TIMELY_CONTACT)
            path = found[0]
            self._add_candidate(entry, path)
        first = self._graph.contacts[path[0]]
        partial = self._partial_forward(first, meta, size, view, now)
        if partial is not None:
            return partial
        return Wait(until=first.start if first.start > now else first.end)

    def _partial_forward(
        self, first: Contact, meta: BundleMeta, size: int, view: RoutingView, now: int
    ) -> Forward | None:
        """Proactive fragmentation (RFC 9171 5.8): the contact under way cannot carry the
        whole bundle any more, but part of it; the engine sends a first fragment that fits
        and keeps the rest."""
        if first.start > now or meta.flags & _MUST_NOT_FRAGMENT or meta.protocol != 7:
            return None
        room = self.residual_volume(first, now)
        if not 0 < room < size:
            return None
        link_id = self._usable_link(first.receiver, room, view)
        return None if link_id is None else Forward((link_id,), volume=room)

    def _decide(self, path: Path, size: int, view: RoutingView, now: int) -> Decision:
        first = self._graph.contacts[path[0]]
        if first.start > now:
            return Wait(until=first.start)
        link_id = self._usable_link(first.receiver, size, view)
        if link_id is not None:
            return Forward((link_id,))
        # The plan says the contact is under way but no link is up (yet): select() hears of
        # the link when it comes; after the contact the bundle is routed afresh.
        return Wait(until=first.end)

    # -- bookings -----------------------------------------------------------------------------

    def _book(self, meta: BundleMeta, size: int, path: Path, old: _Booking | None) -> None:
        self._bookings[meta.bundle_id] = _Booking(path, size, meta.expires_at)
        booked = self._booked
        for ci in path:
            booked[ci] = booked.get(ci, 0) + size
        if old is None or old.expires_at != meta.expires_at:  # else its entry is still there
            heapq.heappush(self._expiries, (meta.expires_at, meta.bundle_id))

    def _unbook(self, path: Path, size: int) -> None:
        booked = self._booked
        for ci in path:
            left = booked.get(ci, 0) - size
            if left > 0:
                booked[ci] = left
            else:
                booked.pop(ci, None)

    def on_transmitted(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> bytes:
        # The first hop's share is spent (its time has passed); the rest stays booked on the
        # downstream contacts, where the bundle will travel.
        booking = self._bookings.pop(meta.bundle_id, None)
        if booking is not None:
            self._unbook(booking.path[:1], booking.size)
            self._releases += 1
        return meta.routing

    def on_transmit_failed(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> None:
        booking = self._bookings.pop(meta.bundle_id, None)
        if booking is not None:
            self._unbook(booking.path, booking.size)
            self._releases += 1

    # -- time ---------------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        """When the booking of a bundle that may still be held here expires (it is then
        forgotten, in case the engine dropped the bundle without telling the router)."""
        return self._expiries[0][0] if self._expiries else None

    def handle_timer(self, now: int) -> None:
        expiries, bookings = self._expiries, self._bookings
        while expiries and expiries[0][0] <= now:
            expires_at, bundle_id = heapq.heappop(expiries)
            booking = bookings.get(bundle_id)
            if booking is not None and booking.expires_at == expires_at:
                del bookings[bundle_id]
                self._unbook(booking.path, booking.size)
                self._releases += 1
        if self._prune_at is not None and now >= self._prune_at:
            self._prune_contacts(now)

    def _prune_contacts(self, now: int) -> None:
        graph = self._graph
        graph.prune(now)
        self._prune_at = graph.next_prune
        for number in [ci for ci in self._booked if not graph.is_live(ci, now)]:
            del self._booked[number]


default_registry.register(CgrRouter)
