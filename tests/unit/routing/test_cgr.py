"""Contact graph routing: routes and arrival times on hand-built plans, volume booking, route
exclusion, decisions against a fake node view, and the registry entry."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from dtncloud.errors import ConfigError
from dtncloud.routing.base import (
    NO_KNOWN_ROUTE,
    NO_TIMELY_CONTACT,
    Drop,
    Forward,
    LinkInfo,
    Wait,
    default_registry,
)
from dtncloud.routing.cgr import CgrRouter, ContactGraph, earliest_route
from dtncloud.routing.contact_plan import Contact, ContactPlan, parse_contact_plan
from dtncloud.store.base import BundleMeta

A, B, C, D = "ipn:1.0", "ipn:2.0", "ipn:3.0", "ipn:4.0"
E = "ipn:5.0"
NAMES = {A: "A", B: "B", C: "C", D: "D", E: "E"}
FAR = 10**12


class FakeView:
    """A RoutingView of node A with the given links up and bundles waiting."""

    def __init__(
        self,
        links: Iterable[LinkInfo] = (),
        bundles: Iterable[BundleMeta] = (),
        *,
        overhead: int = 0,
    ):
        self._links = list(links)
        self._bundles = list(bundles)
        self._overhead = overhead  # what sending adds to a stored bundle

    @property
    def node_id(self) -> str:
        return A

    def links(self) -> Sequence[LinkInfo]:
        return list(self._links)

    def link(self, link_id: str) -> LinkInfo | None:
        return next((lk for lk in self._links if lk.link_id == link_id), None)

    def links_to(self, node_id: str) -> Sequence[LinkInfo]:
        return [lk for lk in self._links if lk.peer_node == node_id]

    def bundles(self) -> Iterable[BundleMeta]:
        return iter(self._bundles)

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return next((m for m in self._bundles if m.bundle_id == bundle_id), None)

    def is_local(self, eid: str) -> bool:
        return eid.startswith("ipn:1.")

    def wire_size(self, meta: BundleMeta) -> int:
        return meta.size + self._overhead

    def let_go(self, now: int) -> Iterator[str]:
        return iter(())


def up(peer: str, max_bundle_size: int | None = None, link_id: str | None = None) -> LinkInfo:
    return LinkInfo(link_id or f"to-{NAMES[peer]}", peer, "tcpcl", max_bundle_size)


MUST_NOT_FRAGMENT = 0x04


def bundle(
    bundle_id: str,
    destination: str = D,
    size: int = 1000,
    *,
    expires_at: int = FAR,
    previous_node: str | None = None,
) -> BundleMeta:
    node = destination[4:].partition(".")[0]
    return BundleMeta(
        bundle_id=bundle_id,
        source="ipn:1.1",
        destination=f"ipn:{node}.7",
        creation_time=0,
        sequence=0,
        expires_at=expires_at,
        size=size,
        received_at=0,
        previous_node=previous_node,
    )


def router(*contacts: Contact, node: str = A, **params: object) -> CgrRouter:
    return CgrRouter(node, random.Random(0), contact_plan=ContactPlan(contacts), **params)


def contact(
    sender: str, receiver: str, start: int, end: int, rate: int = 1000, owlt: int = 0
) -> Contact:
    return Contact(start, end, sender, receiver, rate, owlt)


# -- routes and arrival times ---------------------------------------------------------------

CHAIN = (
    contact(A, B, 0, 10_000, owlt=100),
    contact(B, C, 5_000, 20_000, owlt=200),
    contact(C, D, 0, 30_000, rate=500),
)


def test_linear_chain_route_and_arrival() -> None:
    r = router(*CHAIN)
    route = r.find_route(D, 0, 1000)
    assert route is not None
    # A->B: sent by 1000, +100 owlt; B->C waits for 5000, sent by 6000, +200; C->D 2 s at 500 B/s
    assert route.contacts == CHAIN
    assert route.arrival == 8_200
    assert route.hops == (B, C, D)
    assert route.next_hop == B
    assert route.first == CHAIN[0]
    assert route.limit == 10_000
    assert r.find_route(C, 0, 1000) is not None
    assert r.find_route(C, 0, 1000).arrival == 6_200  # type: ignore[union-attr]


def test_chain_decisions() -> None:
    r = router(*CHAIN)
    assert r.route(bundle("b1"), FakeView([up(B)]), 0) == Forward(("to-B",))
    assert r.route(bundle("b2"), FakeView(), 0) == Wait(until=10_000)  # contact on, no link


def test_first_contact_in_the_future_means_wait_until_it_starts() -> None:
    r = router(contact(A, B, 2_000, 10_000), contact(B, D, 0, 20_000))
    assert r.route(bundle("b1"), FakeView([up(B)]), 0) == Wait(until=2_000)
    assert r.route(bundle("b1"), FakeView([up(B)]), 2_000) == Forward(("to-B",))


def diamond(c_to_d_start: int) -> tuple[Contact, ...]:
    return (
        contact(A, B, 0, 100_000, rate=1_000_000),
        contact(B, D, 50_000, 100_000, rate=1_000_000),
        contact(A, C, 10_000, 100_000, rate=1_000_000),
        contact(C, D, c_to_d_start, 100_000, rate=1_000_000),
    )


def test_diamond_later_first_hop_can_arrive_earlier() -> None:
    plan = diamond(20_000)
    r = router(*plan)
    route = r.find_route(D, 0, 1000)
    assert route is not None
    assert route.contacts == (plan[2], plan[3])
    assert route.arrival == 20_001
    # A->B is on and its link is up, but waiting for A->C gets the bundle there sooner.
    assert r.route(bundle("b1"), FakeView([up(B), up(C)]), 0) == Wait(until=10_000)


def test_diamond_other_way_round() -> None:
    plan = diamond(60_000)
    r = router(*plan)
    route = r.find_route(D, 0, 1000)
    assert route is not None
    assert route.contacts == (plan[0], plan[1])
    assert route.arrival == 50_001
    assert r.route(bundle("b1"), FakeView([up(B), up(C)]), 0) == Forward(("to-B",))


def test_owlt_decides_between_two_paths() -> None:
    plan = (
        contact(A, B, 0, 100_000, owlt=30_000),
        contact(B, D, 0, 100_000),
        contact(A, C, 0, 100_000, owlt=1_000),
        contact(C, D, 0, 100_000, owlt=1_000),
    )
    route = router(*plan).find_route(D, 0, 500)
    assert route is not None
    assert route.hops == (C, D)
    assert route.arrival == 500 + 1_000 + 500 + 1_000
    via_b = earliest_route(ContactPlan(plan[:2]), A, D, 0, 500)
    assert via_b is not None and via_b.arrival == 500 + 30_000 + 500


def test_equal_arrival_prefers_fewer_hops() -> None:
    plan = (
        contact(A, B, 0, 100_000, rate=10**9),
        contact(B, D, 0, 100_000, rate=10**9),
        contact(A, D, 0, 100_000, rate=10**9),
    )
    route = router(*plan).find_route(D, 0, 1)
    assert route is not None and route.hops == (D,)


def test_contact_that_ends_before_arrival_is_not_used() -> None:
    plan = (contact(A, B, 0, 10_000, owlt=100), contact(B, D, 0, 1_050))
    r = router(*plan)
    assert r.find_route(D, 0, 1000) is None  # at B at 1100, B->D ended at 1050
    assert r.route(bundle("b1"), FakeView([up(B)]), 0) == Drop(NO_KNOWN_ROUTE)
    # A smaller bundle makes it: at B at 600, sent on by 1100 > 1050: still too late...
    assert r.find_route(D, 0, 500) is None
    # ... while 400 bytes reach B at 500 and are sent on by 900.
    small = r.find_route(D, 0, 400)
    assert small is not None and small.arrival == 900


def test_transmission_must_finish_inside_the_contact() -> None:
    r = router(contact(A, D, 0, 1_000))
    assert r.find_route(D, 0, 1_000) is not None
    assert r.find_route(D, 0, 1_001) is None
    assert r.find_route(D, 500, 500) is not None
    assert r.find_route(D, 501, 500) is None


def test_expiry_makes_routes_infeasible() -> None:
    r = router(*CHAIN)
    assert r.route(bundle("b1", expires_at=8_201), FakeView([up(B)]), 0) == Forward(("to-B",))
    assert r.route(bundle("b2", expires_at=8_200), FakeView([up(B)]), 0) == Drop(NO_TIMELY_CONTACT)
    assert r.find_route(D, 0, 1000, expires_at=8_200) is None


def test_no_route_at_all() -> None:
    r = router(*CHAIN, contact(D, A, 0, 100))
    view = FakeView([up(B)])
    assert r.route(bundle("b1", destination="ipn:9.0"), view, 0) == Drop(NO_KNOWN_ROUTE)
    assert r.route(bundle("b2"), view, 40_000) == Drop(NO_KNOWN_ROUTE)  # the plan is over
    lonely = router(*CHAIN, node="ipn:8.0")
    assert lonely.route(bundle("b3"), view, 0) == Drop(NO_KNOWN_ROUTE)


def test_bundle_for_this_node_is_left_to_the_engine() -> None:
    r = router(*CHAIN)
    assert r.route(bundle("b1", destination=A), FakeView([up(B)]), 0) == Wait()


# -- previous node ----------------------------------------------------------------------------


def test_never_back_to_the_previous_node() -> None:
    plan = diamond(60_000)  # B is the better way
    r = router(*plan)
    view = FakeView([up(B), up(C)])
    assert r.route(bundle("b1", previous_node=B), view, 0) == Wait(until=10_000)  # via C
    only_b = router(*plan[:2])
    assert only_b.route(bundle("b2", previous_node=B), view, 0) == Drop(NO_KNOWN_ROUTE)
    route = only_b.find_route(D, 0, 1000, previous_node=B)
    assert route is None


def test_back_to_the_previous_node_when_it_is_the_destination() -> None:
    r = router(contact(A, B, 0, 10_000))
    assert r.route(bundle("b1", destination=B, previous_node=B), FakeView([up(B)]), 0) == Forward(
        ("to-B",)
    )


# -- volume booking and route exclusion -------------------------------------------------------

VOLUME = (
    contact(A, B, 0, 10_000),  # 10,000 bytes
    contact(B, D, 0, 100_000),
    contact(A, C, 20_000, 40_000),
    contact(C, D, 0, 100_000),
)


def test_route_list_excludes_the_limiting_contact() -> None:
    r = router(*VOLUME)
    routes = r.candidate_routes(D, 0, 8_000)
    assert [route.contacts for route in routes] == [VOLUME[:2], VOLUME[2:]]
    assert [route.arrival for route in routes] == [16_000, 36_000]
    assert len(router(*VOLUME, max_routes=1).candidate_routes(D, 0, 8_000)) == 1


def test_plans_and_books_what_goes_on_the_link_not_what_is_stored() -> None:
    r = router(*VOLUME)
    view = FakeView([up(B), up(C)], overhead=13)
    # 9,990 stored bytes would fit A->B's 10,000; the 10,003 sent do not.
    assert r.route(bundle("b1", size=9_990), view, 0) == Wait(until=20_000)
    assert r.booked(VOLUME[0]) == 0
    assert r.booked(VOLUME[2]) == r.booked(VOLUME[3]) == 10_003
    # The booking is released at its sent size, so nothing is left booked.
    assert r.route(bundle("b1", size=9_990, expires_at=1), view, 0) == Drop(NO_TIMELY_CONTACT)
    assert r.booked(VOLUME[2]) == r.booked(VOLUME[3]) == 0


@pytest.mark.parametrize("max_routes", [1, 3])
def test_full_contact_sends_the_next_bundle_the_second_way(max_routes: int) -> None:
    r = router(*VOLUME, max_routes=max_routes)
    view = FakeView([up(B), up(C)])
    assert r.route(bundle("b1", size=8_000), view, 0) == Forward(("to-B",))
    assert r.booked(VOLUME[0]) == 8_000
    assert r.booked(VOLUME[1]) == 8_000
    assert r.residual_volume(VOLUME[0], 0) == 2_000
    assert r.residual_volume(VOLUME[0], 1_000) == 1_000
    # 2,000 bytes left on A->B: the second bundle goes by C, when A->C starts.
    assert r.route(bundle("b2", size=8_000), view, 0) == Wait(until=20_000)
    assert r.booked(VOLUME[2]) == 8_000
    # A small one still fits behind the first: A->B is free from 8 s, sent by 9.5 s.
    assert r.route(bundle("b3", size=1_500), view, 0) == Forward(("to-B",))
    assert r.find_route(D, 0, 500) is not None
    assert r.find_route(D, 0, 500).first == VOLUME[0]  # type: ignore[union-attr]
    assert r.find_route(D, 0, 600).first == VOLUME[2]  # type: ignore[union-attr]
    assert r.find_route(D, 0, 600, with_bookings=False).first == VOLUME[0]  # type: ignore[union-attr]


def test_bundle_bigger_than_a_contact_takes_the_other_path() -> None:
    r = router(*VOLUME)
    assert r.route(bundle("big", size=12_000), FakeView([up(B)]), 0) == Wait(until=20_000)


def test_routing_a_bundle_again_moves_its_booking() -> None:
    r = router(*VOLUME)
    view = FakeView([up(B)])
    for _ in range(3):
        assert r.route(bundle("b1", size=8_000), view, 0) == Forward(("to-B",))
    assert r.booked(VOLUME[0]) == 8_000
    # Re-routed later, the bundle no longer fits on A->B and moves to A->C.
    assert r.route(bundle("b1", size=8_000), view, 5_000) == Wait(until=20_000)
    assert r.booked(VOLUME[0]) == 0
    assert r.booked(VOLUME[2]) == 8_000


def test_transmission_frees_the_first_hop_only() -> None:
    r = router(*VOLUME)
    view = FakeView([up(B)])
    b1 = bundle("b1", size=8_000)
    assert r.route(b1, view, 0) == Forward(("to-B",))
    r.on_transmitted(b1, up(B), view, 0)
    assert r.booked(VOLUME[0]) == 0
    assert r.booked(VOLUME[1]) == 8_000  # still on its way over B->D
    r.on_transmitted(b1, up(B), view, 0)  # twice: no harm
    assert r.booked(VOLUME[1]) == 8_000


def test_failed_transmission_frees_the_whole_route() -> None:
    r = router(*VOLUME)
    view = FakeView([up(B)])
    b1 = bundle("b1", size=8_000)
    assert r.route(b1, view, 0) == Forward(("to-B",))
    assert r.route(bundle("b2", size=8_000), view, 0) == Wait(until=20_000)
    r.on_transmit_failed(b1, up(B), view, 0)
    assert r.booked(VOLUME[0]) == r.booked(VOLUME[1]) == 0
    assert r.route(bundle("b3", size=8_000), view, 0) == Forward(("to-B",))


def test_booked_out_routes_mean_wait_not_drop() -> None:
    r = router(contact(A, B, 0, 10_000), contact(B, D, 0, 100_000, rate=10**6))
    view = FakeView([up(B)])
    b1 = bundle("b1", size=8_000)
    b2 = replace(bundle("b2", size=8_000), flags=MUST_NOT_FRAGMENT)
    assert r.route(b1, view, 0) == Forward(("to-B",))
    assert r.route(b2, view, 0) == Wait(until=10_000)
    r.on_transmitted(b1, up(B), view, 0)
    assert r.route(b2, view, 0) == Forward(("to-B",))


def test_part_of_a_bundle_goes_when_the_contact_has_room_for_part() -> None:
    r = router(contact(A, B, 0, 10_000), contact(B, D, 0, 100_000, rate=10**6))
    view = FakeView([up(B)])
    assert r.route(bundle("b1", size=8_000), view, 0) == Forward(("to-B",))
    # 2,000 bytes of the contact are left: the engine sends a first fragment that fits
    assert r.route(bundle("b2", size=8_000), view, 0) == Forward(("to-B",), volume=2_000)
    # no room at all: wait for the contact's end
    assert r.route(bundle("b3", size=2_000), view, 0) == Forward(("to-B",))
    assert r.route(bundle("b4", size=500), view, 0) == Wait(until=10_000)


def test_booked_out_with_a_later_contact_waits_for_its_start() -> None:
    r = router(contact(A, B, 5_000, 10_000), contact(B, D, 0, 100_000, rate=10**6))
    view = FakeView([up(B)])
    assert r.route(bundle("b1", size=4_000), view, 0) == Wait(until=5_000)
    assert r.route(bundle("b2", size=4_000), view, 0) == Wait(until=5_000)


def test_queue_behind_booked_bundles_delays_arrival() -> None:
    r = router(contact(A, D, 0, 100_000))
    assert r.route(bundle("b1", size=5_000), FakeView(), 0) == Wait(until=100_000)
    route = r.find_route(D, 0, 1_000)
    assert route is not None and route.arrival == 6_000
    # 3 s later the contact is 3 s shorter, and the 5,000 bytes are still booked.
    assert r.residual_volume(route.first, 3_000) == 92_000
    later = r.find_route(D, 3_000, 1_000)
    assert later is not None and later.arrival == 9_000


# -- links and select -------------------------------------------------------------------------


def test_forward_uses_a_link_that_takes_the_bundle() -> None:
    r = router(*CHAIN)
    view = FakeView([up(B, 500, "small"), up(B, None, "big")])
    assert r.route(bundle("b1"), view, 0) == Forward(("big",))
    only_small = FakeView([up(B, 500, "small")])
    assert r.route(bundle("b2"), only_small, 0) == Wait(until=10_000)


def test_select_picks_bundles_whose_route_starts_on_the_link() -> None:
    plan = (
        contact(A, B, 0, 100_000, rate=10**6),
        contact(B, D, 0, 100_000, rate=10**6),
        contact(A, C, 50_000, 100_000, rate=10**6),
        contact(C, "ipn:5.0", 0, 100_000, rate=10**6),
    )
    waiting = [
        bundle("to-d-1"),
        bundle("to-e", destination="ipn:5.0"),
        bundle("mine", destination=A),
        bundle("to-d-2", size=2_000),
        bundle("nowhere", destination="ipn:9.0"),
    ]
    r = router(*plan)
    view = FakeView([up(B)], waiting)
    assert r.select(up(B), view, 0) == ["to-d-1", "to-d-2"]
    assert r.select(up(B, max_bundle_size=1_500), view, 0) == ["to-d-1"]
    assert r.select(LinkInfo("anon", None), view, 0) == []
    assert r.select(up(C), FakeView([up(C)], waiting), 0) == []  # A->C not on yet
    assert r.select(up(C), FakeView([up(C)], waiting), 50_000) == ["to-e"]
    # Selecting twice books nothing twice.
    assert r.booked(plan[1]) == 3_000


# -- caching, pruning and timers --------------------------------------------------------------


def test_routes_are_recomputed_when_a_contact_ends() -> None:
    plan = (
        contact(A, C, 0, 15_000, rate=10**6),
        contact(C, D, 0, 100_000, rate=10**6),
        contact(A, B, 0, 100_000, rate=10**6),
        contact(B, D, 20_000, 100_000, rate=10**6),
    )
    r = router(*plan)
    view = FakeView([up(B), up(C)])
    assert r.route(bundle("b1"), view, 0) == Forward(("to-C",))
    assert r.route(bundle("b2"), view, 14_000) == Forward(("to-C",))
    assert r.route(bundle("b3"), view, 15_000) == Forward(("to-B",))
    assert r.find_route(D, 15_000, 1000, with_bookings=False).arrival == 20_001  # type: ignore[union-attr]
    # b3's 1,000 bytes are booked ahead on both contacts: 1 ms later each
    assert r.find_route(D, 15_000, 1000).arrival == 20_002  # type: ignore[union-attr]


def test_long_plan_stays_correct_as_contacts_are_pruned() -> None:
    plan = [contact(A, B, k * 1000, k * 1000 + 500) for k in range(40)]
    r = router(*plan, contact(B, D, 0, 100_000, rate=10**6))
    view = FakeView([up(B)])
    for now in range(0, 40_000, 700):
        # one bundle routed again and again (a new one each time would queue behind the
        # bookings of those still waiting)
        decision = r.route(bundle("b", size=100), view, now)
        k, offset = divmod(now, 1000)
        if offset <= 400:  # 100 bytes take 100 ms; the contact ends at +500
            assert decision == Forward(("to-B",)), now
        elif k == 39:  # the last contact is over
            assert decision == Drop(NO_KNOWN_ROUTE), now
        else:
            assert decision == Wait(until=(k + 1) * 1000), now
        r.handle_timer(now)
    assert r.route(bundle("late"), view, 40_000) == Drop(NO_KNOWN_ROUTE)


def test_timer_forgets_bookings_of_expired_bundles() -> None:
    r = router(*VOLUME)
    view = FakeView([up(B)])
    assert r.get_timer() is None
    assert r.route(bundle("b1", size=8_000, expires_at=90_000), view, 0) == Forward(("to-B",))
    assert r.route(bundle("b2", size=500, expires_at=50_000), view, 0) == Forward(("to-B",))
    assert r.get_timer() == 50_000
    r.handle_timer(49_999)
    assert r.booked(VOLUME[1]) == 8_500
    r.handle_timer(50_000)
    assert r.booked(VOLUME[1]) == 8_000
    assert r.get_timer() == 90_000
    r.handle_timer(95_000)
    assert r.booked(VOLUME[1]) == 0
    assert r.get_timer() is None


def test_contact_graph_search_options() -> None:
    graph = ContactGraph(ContactPlan(diamond(20_000)))
    a, b, c, d = (graph.node(n) for n in (A, B, C, D))
    assert None not in (a, b, c, d)
    assert graph.node("ipn:9.0") is None and graph.node(None) is None
    assert a is not None and d is not None and c is not None
    found = graph.search(a, d, 0, 1000)
    assert found is not None and found[1] == 20_001
    via_b = graph.search(a, d, 0, 1000, avoid=c)
    assert via_b is not None and via_b[1] == 50_001
    assert graph.search(a, d, 0, 1000, deadline=20_001) is None
    assert graph.search(a, d, 0, 1000, excluded={found[0][0], via_b[0][0]}) is None
    assert graph.evaluate(found[0], 0, 1000) == 20_001
    assert graph.evaluate(found[0], 0, 1000, {found[0][0]: 10**9}) is None
    assert graph.search(a, a, 0, 1) is None


# -- settings and the registry ----------------------------------------------------------------

ION_PLAN = """
a contact +0 +10 1 2 1000
a contact +0 +10 2 4 1000
"""


def test_registry_creates_cgr_from_plan_text_and_json() -> None:
    made = default_registry.create(
        "cgr", node_id=A, params={"contact_plan": ION_PLAN, "epoch": 5_000}
    )
    assert isinstance(made, CgrRouter)
    assert made.plan.contacts[0].start == 5_000
    assert made.route(bundle("b1", size=10), FakeView([up(B)]), 5_000) == Forward(("to-B",))
    as_json = made.plan.to_json()
    for form in (as_json, as_json["contacts"], json.dumps(as_json)):
        again = default_registry.create("cgr", node_id=A, params={"contact_plan": form})
        assert isinstance(again, CgrRouter) and again.plan == made.plan
    empty = default_registry.create("cgr", node_id=A)
    assert empty.route(bundle("b1"), FakeView(), 0) == Drop(NO_KNOWN_ROUTE)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (
            {"contact_plan": "a contact +0 +10 1 2 0\n", "epoch": 0},
            "router 'cgr': setting 'contact_plan': contact plan: line 1: rate must be > 0",
        ),
        (
            {"contact_plan": ION_PLAN},
            "router 'cgr': setting 'contact_plan': contact plan: line 2: relative start time",
        ),
        (
            {"contact_plan": {"contacts": [{"from": 1}]}},
            "router 'cgr': setting 'contact_plan': contact plan: contacts[0]: missing key(s)",
        ),
        ({"contact_plan": "plans/leo.ionrc"}, "looks like a file name"),
        ({"contact_plan": 42}, "must be a ContactPlan, plan text or its JSON value, not int"),
        ({"max_routes": 0}, "setting 'max_routes' must be an integer >= 1"),
        ({"epoch": -1}, "setting 'epoch' must be an integer >= 0"),
        ({"contact_plan": "", "bogus": 1}, "unknown setting(s): bogus"),
    ],
)
def test_bad_settings_are_config_errors(params: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        default_registry.create("cgr", node_id=A, params=params)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


# -- the destination as a neighbour -----------------------------------------------------------


def test_destination_neighbour_gets_the_bundle_whatever_the_plan() -> None:
    r = router(*CHAIN)
    view = FakeView([up(B), up(D)])
    # The plan says via B and C; D's link is up now, so straight there, and nothing booked.
    assert r.route(bundle("b1"), view, 0) == Forward(("to-D",))
    assert r.booked(CHAIN[0]) == 0
    # Even with no route in the plan at all, and even when D is where it came from.
    late = bundle("b2", previous_node=D)
    assert r.route(late, view, 50_000) == Forward(("to-D",))
    assert r.route(bundle("b3", destination="ipn:9.0"), FakeView([up(E)]), 0) == Drop(
        NO_KNOWN_ROUTE
    )
    # A link too small for the bundle does not count.
    fresh = router(*CHAIN)
    assert fresh.route(bundle("b4"), FakeView([up(B), up(D, 10)]), 0) == Forward(("to-B",))


def test_select_offers_bundles_for_the_peer_itself() -> None:
    r = router(*CHAIN)
    waiting = [bundle("for-d"), bundle("for-c", destination=C), bundle("big", size=5_000)]
    assert r.select(up(D), FakeView([up(D)], waiting), 0) == ["for-d", "big"]
    assert r.select(up(D, 2_000), FakeView([up(D, 2_000)], waiting), 0) == ["for-d"]


# -- the documentation ------------------------------------------------------------------------


def test_the_cgr_section_of_the_routing_doc_runs(capsys: pytest.CaptureFixture[str]) -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "routing.md"
    text = doc.read_text(encoding="utf-8")
    section = text.split("## Contact graph routing (cgr)")[1].split("\n## ")[0]
    examples = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert examples
    for source in examples:
        exec(compile(source, str(doc), "exec"), {"__name__": "cgr_doc_example"})
    assert capsys.readouterr().out == "('ipn:2.0', 'ipn:3.0') 3601.5\n"
    # the plan examples parse, to the same contacts
    (ion_text,) = re.findall(r"```\n(# a contact plan.*?)```", section, flags=re.DOTALL)
    (json_text,) = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    from_ion = parse_contact_plan(ion_text, source="plan.ionrc")
    assert len(from_ion) == 3
    assert [(c.owlt, c.confidence) for c in from_ion] == [(1000, 1.0), (1000, 0.9), (0, 1.0)]
    from_json = parse_contact_plan(json_text, source="plan.json")
    assert from_json.contacts[0] == from_ion.contacts[0]
    assert from_json.contacts[1].receiver == "dtn://mule/"
