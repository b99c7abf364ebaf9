"""ProphetRouter: RFC 6693 encounter, aging and transitivity rules, and GRTR forwarding."""

from __future__ import annotations

import math
import random
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.routing.base import ControlMessage, Forward, Wait
from dtncloud.routing.digests import bundle_digest
from dtncloud.routing.prophet import (
    ProphetRouter,
    decode_message,
    decode_table,
    encode_message,
    encode_table,
)
from tests.unit.routing.fakes import FakeView, make_meta

A, B, C, D = "dtn://a/", "dtn://b/", "dtn://c/", "dtn://d/"
UNIT = 30_000
I_TYP = 1_800_000


def setup(**params: Any) -> tuple[ProphetRouter, FakeView]:
    return ProphetRouter(A, random.Random(0), **params), FakeView(A)


def meet(router: ProphetRouter, view: FakeView, peer: str, now: int, link_id: str = "") -> Any:
    link = view.add_link(link_id or f"to-{peer}", peer)
    return link, router.on_link_up(link, view, now)


def part(router: ProphetRouter, view: FakeView, link: Any, now: int) -> None:
    view.remove_link(link.link_id)
    router.on_link_down(link, view, now)


def test_first_encounter_sends_our_table() -> None:
    router, view = setup()
    link, messages = meet(router, view, B, 0)
    assert router.predictability(B, 0) == 0.5
    payload = cbor2.dumps([{B: 0.5}, b""], canonical=True)  # no bundles: no digests
    assert messages == [ControlMessage(B, link.link_id, payload)]


def test_encounter_update_depends_on_time_since_last_meeting() -> None:
    router, view = setup(gamma=1.0)  # no aging: look at the encounter rule alone
    link, _ = meet(router, view, B, 0)
    part(router, view, link, 10)
    link, _ = meet(router, view, B, I_TYP)  # a typical interval later: full P_encounter_max
    expected = 0.5 + (1 - 0.01 - 0.5) * 0.7
    assert router.predictability(B, I_TYP) == pytest.approx(expected)
    part(router, view, link, I_TYP + 10)
    meet(router, view, B, I_TYP + I_TYP // 10)  # soon again: a tenth of the increase
    expected += (1 - 0.01 - expected) * 0.07
    assert router.predictability(B, I_TYP + I_TYP // 10) == pytest.approx(expected)


def test_second_link_to_a_neighbour_is_not_another_encounter() -> None:
    router, view = setup()
    meet(router, view, B, 0, "l1")
    _, messages = meet(router, view, B, I_TYP, "l2")
    assert messages == []
    assert router.predictability(B, I_TYP) < 0.5


def test_aging_per_whole_time_unit_and_threshold() -> None:
    router, view = setup()
    meet(router, view, B, 0)
    assert router.predictability(B, UNIT - 1) == 0.5
    assert router.predictability(B, UNIT) == pytest.approx(0.5 * 0.999)
    assert router.predictability(B, 10 * UNIT + 5) == pytest.approx(0.5 * 0.999**10)
    # 0.5 * 0.999^k < 0.1 from k = 1609 on: then the entry is gone.
    assert router.predictability(B, 1608 * UNIT) > 0.1
    assert router.predictability(B, 1609 * UNIT) == 0.0
    assert router.table(1609 * UNIT) == {}


def test_transitivity_from_the_peers_table() -> None:
    router, view = setup()
    link, _ = meet(router, view, B, 0)
    table = {C: 0.8, A: 0.9, B: 1.0, D: 0.1}
    router.on_control_message(B, link.link_id, encode_table(table, 10), view, 0)
    assert router.predictability(C, 0) == pytest.approx(0.5 * 0.8 * 0.9)
    assert router.predictability(A, 0) == 0.0  # never about ourselves
    assert router.predictability(D, 0) == 0.0  # 0.045 is under the threshold
    # Transitivity never lowers what we know better.
    router.on_control_message(B, link.link_id, encode_table({C: 0.1}, 10), view, 0)
    assert router.predictability(C, 0) == pytest.approx(0.36)


def test_grtr_forwards_to_the_better_neighbour() -> None:
    router, view = setup()
    link_b, _ = meet(router, view, B, 0)
    link_c, _ = meet(router, view, C, 0)
    for_d = view.add_bundle(make_meta("for-d", destination="dtn://d/app"))
    for_c = view.add_bundle(make_meta("for-c", destination="dtn://c/app"))
    from_b = view.add_bundle(make_meta("from-b", destination="dtn://d/x", previous_node=B))
    # Before the tables arrive nothing moves, not even the bundle for c (c may have it).
    assert router.route(for_c, view, 0) == Wait(until=5_000)
    assert router.route(for_d, view, 0) == Wait()
    router.on_control_message(B, link_b.link_id, encode_table({D: 0.6}, 10), view, 0)
    router.on_control_message(C, link_c.link_id, encode_table({D: 0.2}, 10), view, 0)
    assert router.get_timer() is None
    assert router.route(for_c, view, 0) == Forward(("to-dtn://c/",), keep_copy=False)
    assert router.predictability(D, 0) == pytest.approx(0.5 * 0.6 * 0.9)  # 0.27
    assert router.route(for_d, view, 0) == Forward((link_b.link_id,), keep_copy=True)
    assert router.select(link_b, view, 0) == ["for-d"]
    assert router.select(link_c, view, 0) == ["for-c"]
    assert router.route(from_b, view, 0) == Wait()  # B gave it to us; C is worse than us
    router.carry(for_d, link_b, 0)
    assert router.route(for_d, view, 0) == Wait()  # not twice to the same neighbour
    assert router.select(link_b, view, 0) == []


def test_select_orders_direct_then_by_peer_predictability() -> None:
    router, view = setup()
    link, _ = meet(router, view, B, 0)
    router.on_control_message(B, link.link_id, encode_table({C: 0.3, D: 0.9}, 10), view, 0)
    view.add_bundle(make_meta("to-c", destination="dtn://c/1"))
    view.add_bundle(make_meta("to-d", destination="dtn://d/1"))
    view.add_bundle(make_meta("to-b", destination="dtn://b/1"))
    assert router.select(link, view, 0) == ["to-b", "to-d", "to-c"]


def test_table_messages_are_bounded_and_checked() -> None:
    router, view = setup(max_table=2)
    link, _ = meet(router, view, B, 0)
    big = {f"dtn://n{i}/": i / 10 for i in range(1, 7)}
    assert decode_table(encode_table(big, 100), 2) == {"dtn://n5/": 0.5, "dtn://n6/": 0.6}
    router.on_control_message(B, link.link_id, encode_table(big, 100), view, 0)
    assert set(router.table(0)) == {B, "dtn://n6/"}  # the two highest are kept
    assert cbor2.loads(encode_table(big, 3)) == {f"dtn://n{i}/": i / 10 for i in (4, 5, 6)}
    assert decode_table(cbor2.dumps({"x": 2.0, "y": float("nan"), 5: 0.5, "z": 1}), 10) == {
        "z": 1.0
    }
    assert decode_table(cbor2.dumps([1, 2]), 10) is None
    assert decode_table(cbor2.dumps({f"n{i}": 0.5 for i in range(50)}), 2) is None


def test_without_a_message_bundles_for_the_neighbour_go_after_the_wait() -> None:
    router, view = setup(table_wait_ms=1_000)
    link, _ = meet(router, view, B, 0)
    for_b = view.add_bundle(make_meta("for-b", destination="dtn://b/app"))
    assert router.get_timer() == 1_000
    assert router.route(for_b, view, 10) == Wait(until=1_000)
    router.handle_timer(1_000)
    assert router.get_timer() is None
    assert router.route(for_b, view, 1_000) == Forward((link.link_id,), keep_copy=False)


def test_what_a_neighbour_says_it_has_is_not_sent_to_it() -> None:
    router, view = setup()
    link, _ = meet(router, view, B, 0)
    for_b = view.add_bundle(make_meta("for-b", destination="dtn://b/app"))
    for_d = view.add_bundle(make_meta("for-d", destination="dtn://d/app"))
    # B holds for-d, and had for-b delivered to it a while ago
    message = encode_message({D: 0.9}, ["for-d", "for-b"], 10, 10)
    router.on_control_message(B, link.link_id, message, view, 0)
    assert router.route(for_b, view, 0) == Wait()
    assert router.route(for_d, view, 0) == Wait()  # B is the better bet, but has it
    assert router.select(link, view, 0) == []


def test_the_message_lists_what_is_held_then_what_was_let_go() -> None:
    router, view = setup(max_known=2)
    view.add_bundle(make_meta("held"))
    view.gone = [("older", 10_000), ("expired", 5), ("newer", 10_000)]
    _, messages = meet(router, view, B, 100)
    assert decode_message(messages[0].payload, 10, 10) == (
        {B: 0.5},
        {bundle_digest("held"), bundle_digest("newer")},
    )
    assert decode_message(encode_table({C: 0.2}, 10), 10, 10) == ({C: 0.2}, set())  # bare
    for bad in ([{}, b"1234567"], [{}, "x"], [1, b""], [{}, b"", 3]):
        assert decode_message(cbor2.dumps(bad), 10, 10) is None


def test_messages_outside_a_contact_are_ignored() -> None:
    router, view = setup()
    router.on_control_message(B, None, encode_table({C: 0.9}, 10), view, 0)
    assert router.table(0) == {}
    link, _ = meet(router, view, B, 0)
    part(router, view, link, 5)
    router.on_control_message(B, link.link_id, encode_table({C: 0.9}, 10), view, 6)
    assert router.predictability(C, 6) == 0.0


@given(st.binary(max_size=80))
def test_hostile_tables_never_raise(payload: bytes) -> None:
    router, view = setup()
    link, _ = meet(router, view, B, 0)
    assert router.on_control_message(B, link.link_id, payload, view, 0) == []


events = st.lists(
    st.tuples(
        st.integers(0, 3 * I_TYP),  # time step
        st.sampled_from([B, C, D]),
        st.dictionaries(
            st.sampled_from([A, B, C, D, "dtn://e/", "dtn://f/"]),
            st.floats(0, 1),
            max_size=6,
        ),
    ),
    max_size=30,
)


@given(events, st.floats(0.5, 1.0), st.floats(0, 1))
def test_predictabilities_stay_in_unit_interval(
    steps: list[tuple[int, str, dict[str, float]]], gamma: float, beta: float
) -> None:
    router, view = setup(gamma=gamma, beta=beta, p_encounter_first=1.0)
    now = 0
    for step, peer, table in steps:
        now += step
        link, _ = meet(router, view, peer, now)
        router.on_control_message(peer, link.link_id, encode_table(table, 10), view, now)
        for p in router.table(now).values():
            assert 0.0 <= p <= 1.0 and math.isfinite(p)
        part(router, view, link, now)


@given(events, st.lists(st.integers(0, 50 * UNIT), min_size=1, max_size=10))
def test_aging_is_monotone(steps: list[tuple[int, str, dict[str, float]]], gaps: list[int]) -> None:
    router, view = setup()
    now = 0
    for step, peer, table in steps:
        now += step
        link, _ = meet(router, view, peer, now)
        router.on_control_message(peer, link.link_id, encode_table(table, 10), view, now)
        part(router, view, link, now)
    before = router.table(now)
    for gap in gaps:
        now += gap
        after = router.table(now)
        assert set(after) <= set(before)
        for node, p in after.items():
            assert p <= before[node]
        before = after
