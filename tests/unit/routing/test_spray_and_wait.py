"""SprayAndWaitRouter: copy counts carried and kept, binary and vanilla spraying, waiting."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.routing.base import Forward, LinkInfo, Wait
from dtncloud.routing.digests import encode_summary
from dtncloud.routing.spray_and_wait import MAX_COPIES, SprayAndWaitRouter
from dtncloud.store.base import BundleMeta
from tests.unit.routing.fakes import FakeView, make_meta

A, B, C, P = "dtn://a/", "dtn://b/", "dtn://c/", "dtn://p/"


def setup(**params: Any) -> tuple[SprayAndWaitRouter, FakeView]:
    return SprayAndWaitRouter(A, random.Random(0), **params), FakeView(A)


def link(view: FakeView, link_id: str) -> LinkInfo:
    found = view.link(link_id)
    assert found is not None
    return found


def current(view: FakeView, bundle_id: str = "x") -> BundleMeta:
    found = view.bundle(bundle_id)
    assert found is not None
    return found


def held(router: SprayAndWaitRouter, view: FakeView, bundle_id: str = "x") -> int:
    return router.state(current(view, bundle_id))[0]


def store(
    router: SprayAndWaitRouter, view: FakeView, meta: BundleMeta, carried: bytes | None = None
) -> BundleMeta:
    return view.add_bundle(replace(meta, routing=router.admit(meta, carried, 0)))


def carried(router: SprayAndWaitRouter, view: FakeView, meta: BundleMeta, link_id: str) -> int:
    block = router.carry(meta, link(view, link_id), 0)
    assert block is not None
    return int(cbor2.loads(block))


def send(router: SprayAndWaitRouter, view: FakeView, meta: BundleMeta, link_id: str) -> int:
    """Carry ``meta`` on ``link_id`` and report success; returns the copies handed over."""
    carried = router.carry(meta, link(view, link_id), 0)
    assert carried is not None
    state = router.on_transmitted(meta, link(view, link_id), view, 0)
    view.add_bundle(replace(meta, routing=state))
    return int(cbor2.loads(carried))


@pytest.mark.parametrize(
    ("carried", "copies"),
    [
        (None, 8),
        (cbor2.dumps(3), 3),
        (cbor2.dumps(0), 1),
        (cbor2.dumps(-4), 1),
        (cbor2.dumps(True), 1),
        (cbor2.dumps("3"), 1),
        (b"\xff", 1),
        (cbor2.dumps(3) + b"\x00", 1),
        (cbor2.dumps(1 << 40), MAX_COPIES),
    ],
)
def test_admit_reads_the_carried_count(carried: bytes | None, copies: int) -> None:
    router, _ = setup()
    state = router.admit(make_meta(), carried, 0)
    assert cbor2.loads(state) == [copies, []]


def test_state_without_our_encoding() -> None:
    router, _ = setup(copies=6)
    assert router.state(make_meta()) == (6, ())
    assert router.state(make_meta(previous_node=B)) == (1, ())
    assert router.state(make_meta(routing=cbor2.dumps(4))) == (4, ())
    assert router.state(make_meta(routing=b"junk")) == (6, ())


def test_binary_spray_halves_and_records_the_peer() -> None:
    router, view = setup(copies=8)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    view.add_link("lb", B)
    assert router.route(meta, view, 0) == Forward(("lb",), keep_copy=True)
    assert send(router, view, meta, "lb") == 4
    meta = current(view)
    assert router.state(meta) == (4, (B,))
    assert router.route(meta, view, 0) == Wait()  # b has its share already
    c = view.add_link("lc", C)
    assert router.select(c, view, 0) == ["x"]
    assert send(router, view, meta, "lc") == 2
    assert held(router, view) == 2


def test_vanilla_spray_hands_out_single_copies() -> None:
    router, view = setup(copies=3, binary=False)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    for peer in "bcef":
        view.add_link(f"l{peer}", f"dtn://{peer}/")
    assert router.route(meta, view, 0) == Forward(("lb", "lc"), keep_copy=True)
    assert send(router, view, meta, "lb") == 1
    assert send(router, view, current(view), "lc") == 1
    assert held(router, view) == 1
    assert router.route(current(view), view, 0) == Wait()


def test_concurrent_copies_never_promise_more_than_held() -> None:
    router, view = setup(copies=4)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    for peer in "bce":
        view.add_link(f"l{peer}", f"dtn://{peer}/")
    # 4 copies: b is promised 2, c 1 of the 2 left, e none (1 must stay here).
    assert router.route(meta, view, 0) == Forward(("lb", "lc"), keep_copy=True)
    assert router.route(meta, view, 0) == Forward(("lb", "lc"), keep_copy=True)  # idempotent
    shares = {lid: carried(router, view, meta, lid) for lid in ("lb", "lc")}
    assert shares == {"lb": 2, "lc": 1}
    state = router.on_transmitted(meta, link(view, "lb"), view, 0)
    meta = view.add_bundle(replace(meta, routing=state))
    state = router.on_transmitted(meta, link(view, "lc"), view, 0)
    meta = view.add_bundle(replace(meta, routing=state))
    assert router.state(meta) == (1, (B, C))


def test_a_failed_copy_returns_its_share_and_is_not_offered_again_on_that_link() -> None:
    router, view = setup(copies=8)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    lb = view.add_link("lb", B)
    router.route(meta, view, 0)
    router.carry(meta, lb, 0)
    router.on_transmit_failed(meta, lb, view, 0)
    assert router.route(meta, view, 0) == Wait()
    view.add_link("lc", C)
    assert router.route(meta, view, 0) == Forward(("lc",), keep_copy=True)
    assert carried(router, view, meta, "lc") == 4
    view.remove_link("lb")
    router.on_link_down(lb, view, 1)
    view.add_link("lb", B)
    assert router.select(lb, view, 2) == ["x"]  # a new contact may try again


def test_never_back_to_the_previous_node() -> None:
    router, view = setup()
    meta = store(router, view, make_meta("x", previous_node=P), cbor2.dumps(4))
    p = view.add_link("lp", P)
    assert router.route(meta, view, 0) == Wait()
    assert router.select(p, view, 0) == []


def test_wait_phase_goes_only_to_the_destination() -> None:
    router, view = setup()
    meta = store(router, view, make_meta("x", destination="dtn://d/1", previous_node=P), b"\x01")
    view.add_link("lb", B)
    assert router.route(meta, view, 0) == Wait()
    d = view.add_link("ld", "dtn://d/")
    assert router.route(meta, view, 0) == Forward(("ld",), keep_copy=False)
    assert router.select(d, view, 0) == ["x"]
    assert carried(router, view, meta, "ld") == 1
    assert router.on_transmitted(meta, d, view, 0) == meta.routing


def test_spraying_bundle_goes_straight_to_a_connected_destination() -> None:
    router, view = setup()
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    b = view.add_link("lb", B)
    view.add_link("ld", "dtn://d/")
    assert router.route(meta, view, 0) == Forward(("ld",), keep_copy=False)
    assert router.select(b, view, 0) == []
    assert carried(router, view, meta, "ld") == 8  # all it holds


def test_promises_outlive_the_link_until_the_copy_is_reported() -> None:
    router, view = setup(copies=8)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    gone = store(router, view, make_meta("gone", destination="dtn://d/1"))
    lb = view.add_link("lb", B)
    assert router.select(lb, view, 0) == ["x", "gone"]
    assert carried(router, view, meta, "lb") == 4
    view.remove_link("lb")
    view.remove_bundle("gone")
    router.on_link_down(lb, view, 1)
    # The copy of x may still have arrived: its promise holds until the engine says so.
    view.add_link("lc", C)
    assert carried(router, view, meta, "lc") == 2
    meta = view.add_bundle(replace(meta, routing=router.on_transmitted(meta, lb, view, 2)))
    assert router.state(meta) == (4, (B,))
    assert router._reserved == {"x": {"lc": 2}}  # nothing left for the deleted bundle
    assert gone.bundle_id not in router._reserved


# -- summary vectors ------------------------------------------------------------------------


def test_a_new_link_waits_for_the_vector_and_nothing_it_lists_is_sent() -> None:
    router, view = setup(copies=8, vector_wait_ms=1000)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    for_b = store(router, view, make_meta("for-b", destination="dtn://b/app"))
    b = view.add_link("lb", B)
    (message,) = router.on_link_up(b, view, 100)
    assert message.payload == encode_summary(["x", "for-b"], 50_000)
    assert router.get_timer() == 1100
    assert router.route(meta, view, 100) == Wait(until=1100)  # no spraying before the vector
    assert router.route(for_b, view, 100) == Wait(until=1100)  # b may have had it already
    # b's vector: it has x already, and was given for-b earlier
    router.on_control_message(B, "lb", encode_summary(["x", "for-b"], 10), view, 200)
    assert router.get_timer() is None
    assert router.route(meta, view, 200) == Wait()
    assert router.route(for_b, view, 200) == Wait()
    assert router.select(b, view, 200) == []
    assert held(router, view) == 8  # no copies handed to a node that would drop them


def test_without_a_vector_the_link_sprays_after_the_wait() -> None:
    router, view = setup(copies=8, vector_wait_ms=1000)
    meta = store(router, view, make_meta("x", destination="dtn://d/1"))
    c = view.add_link("lc", C)
    router.on_link_up(c, view, 0)
    assert router.route(meta, view, 500) == Wait(until=1000)
    router.handle_timer(1000)
    assert router.route(meta, view, 1000) == Forward(("lc",), keep_copy=True)
    view.remove_link("lc")
    router.on_link_down(c, view, 2000)
    assert router.get_timer() is None


@given(st.binary(max_size=80))
def test_hostile_vectors_never_raise(payload: bytes) -> None:
    router, view = setup()
    link = view.add_link("l", B)
    router.on_link_up(link, view, 0)
    assert router.on_control_message(B, "l", payload, view, 0) == []
    assert router.get_timer() in (None, 5_000)
