"""Properties of contact graph routing on random small contact plans, checked against a
brute-force enumeration of every sequence of contacts."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from hypothesis import given
from hypothesis import strategies as st

from dtncloud.routing.base import Drop, Forward, LinkInfo, Wait
from dtncloud.routing.cgr import CgrRouter, earliest_route
from dtncloud.routing.contact_plan import Contact, ContactPlan
from dtncloud.store.base import BundleMeta

NODES = [f"ipn:{n}.0" for n in range(1, 6)]
SOURCE = NODES[0]


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    sender, receiver = draw(st.lists(st.sampled_from(NODES), min_size=2, max_size=2, unique=True))
    start = draw(st.integers(0, 3_000))
    return Contact(
        start=start,
        end=start + draw(st.integers(1, 3_000)),
        sender=sender,
        receiver=receiver,
        rate=draw(st.sampled_from([500, 1000, 2500, 10_000])),
        owlt=draw(st.integers(0, 300)),
    )


plans = st.lists(contacts(), min_size=0, max_size=7, unique=True).map(ContactPlan)
sizes = st.integers(0, 2_000)
destinations = st.sampled_from(NODES[1:])


def transmit(size: int, rate: float) -> int:
    return -(-size * 1000 // int(rate))


def arrival_along(path: Sequence[Contact], now: int, size: int) -> int | None:
    """When a bundle leaving SOURCE at ``now`` along ``path`` arrives; None if it cannot."""
    t = now
    for c in path:
        depart = max(t, c.start)
        if depart >= c.end or depart + transmit(size, c.rate) > c.end:
            return None
        t = depart + transmit(size, c.rate) + c.owlt
    return t


def all_paths(
    plan: ContactPlan, at: str, used: tuple[Contact, ...]
) -> Iterator[tuple[Contact, ...]]:
    """Every sequence of distinct contacts that chains from ``at`` (node revisits allowed)."""
    for c in plan.from_node(at):
        if c not in used:
            path = (*used, c)
            yield path
            yield from all_paths(plan, c.receiver, path)


def brute_force(plan: ContactPlan, destination: str, now: int, size: int) -> int | None:
    best = None
    for path in all_paths(plan, SOURCE, ()):
        if path[-1].receiver != destination:
            continue
        arrival = arrival_along(path, now, size)
        if arrival is not None and (best is None or arrival < best):
            best = arrival
    return best


@given(plans, destinations, st.integers(0, 3_000), sizes)
def test_route_is_feasible_and_earliest(
    plan: ContactPlan, destination: str, now: int, size: int
) -> None:
    route = earliest_route(plan, SOURCE, destination, now, size)
    best = brute_force(plan, destination, now, size)
    if best is None:
        assert route is None
        return
    assert route is not None
    # feasible: chained contacts from here to there, each carrying the bundle in time
    assert route.contacts[0].sender == SOURCE
    assert route.contacts[-1].receiver == destination
    for before, after in zip(route.contacts, route.contacts[1:], strict=False):
        assert before.receiver == after.sender
    t = now
    for c in route.contacts:
        depart = max(t, c.start)
        assert c.start <= depart < c.end
        assert depart + transmit(size, c.rate) <= c.end
        t = depart + transmit(size, c.rate) + c.owlt
    assert route.arrival == t == arrival_along(route.contacts, now, size)
    # and no sequence of contacts gets there sooner
    assert route.arrival <= best
    assert route.arrival == best


@given(plans, destinations, st.integers(0, 3_000), sizes, st.integers(0, 8_000))
def test_expiry_bounds_the_arrival(
    plan: ContactPlan, destination: str, now: int, size: int, expires_at: int
) -> None:
    route = earliest_route(plan, SOURCE, destination, now, size, deadline=expires_at)
    best = brute_force(plan, destination, now, size)
    if best is None or best >= expires_at:
        assert route is None
    else:
        assert route is not None and route.arrival == best


def meta(number: int, destination: str, size: int) -> BundleMeta:
    return BundleMeta(
        bundle_id=f"b{number}",
        source="ipn:1.1",
        destination=destination.replace(".0", ".1"),
        creation_time=0,
        sequence=number,
        expires_at=10**9,
        size=size,
        received_at=0,
    )


class LinksUp:
    """A view in which every node but ``far`` is a neighbour with a link up (a link to a
    bundle's destination would take it straight there, plan or no plan)."""

    node_id = SOURCE

    def __init__(self, far: str | None = None) -> None:
        self.far = far

    def links(self) -> Sequence[LinkInfo]:
        return [LinkInfo(node, node) for node in NODES[1:] if node != self.far]

    def link(self, link_id: str) -> LinkInfo | None:
        return None if link_id == self.far else LinkInfo(link_id, link_id)

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        return [] if node_id == self.far else [LinkInfo(node_id, node_id)]

    def bundles(self) -> list[BundleMeta]:
        return []

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return None

    def is_local(self, eid: str) -> bool:
        return eid.startswith("ipn:1.")

    def wire_size(self, meta: BundleMeta) -> int:
        return meta.size  # as brute_force counts it

    def let_go(self, now: int) -> Iterator[str]:
        return iter(())


@given(plans, destinations, st.integers(0, 3_000), sizes)
def test_first_decision_follows_the_earliest_route(
    plan: ContactPlan, destination: str, now: int, size: int
) -> None:
    router = CgrRouter(SOURCE, random.Random(0), contact_plan=plan)
    best = brute_force(plan, destination, now, size)
    found = router.find_route(destination, now, size)
    decision = router.route(meta(0, destination, size), LinksUp(far=destination), now)
    if best is None:
        assert found is None
        assert isinstance(decision, Drop)
        return
    assert found is not None and found.arrival == best
    if isinstance(decision, Forward):
        (link,) = decision.links
        # the first hop of some earliest route, on a contact under way now
        assert any(
            c.sender == SOURCE and c.receiver == link and c.start <= now < c.end for c in plan
        )
    else:
        assert isinstance(decision, Wait)
        assert decision.until is not None and decision.until > now


@given(plans, st.lists(st.tuples(destinations, st.integers(1, 3_000)), max_size=12))
def test_bookings_never_exceed_a_contacts_volume(
    plan: ContactPlan, bundles: list[tuple[str, int]]
) -> None:
    router = CgrRouter(SOURCE, random.Random(0), contact_plan=plan)
    for number, (destination, size) in enumerate(bundles):
        router.route(meta(number, destination, size), LinksUp(far=destination), 0)
        for c in plan:
            assert router.booked(c) <= c.volume
            assert router.residual_volume(c, 0) >= 0
    # routing every bundle again moves bookings around, within the same limits
    for number, (destination, size) in enumerate(bundles):
        router.route(meta(number, destination, size), LinksUp(far=destination), 0)
    for c in plan:
        assert router.booked(c) <= c.volume
