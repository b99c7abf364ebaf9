"""EpidemicRouter: summary vectors, what select offers, timers, bounded memory."""

from __future__ import annotations

import random

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.routing.base import ControlMessage, Forward, Wait
from dtncloud.routing.epidemic import (
    EpidemicRouter,
    bundle_digest,
    decode_summary,
    encode_summary,
)
from tests.unit.routing.fakes import FakeView, make_link, make_meta

A, B, C = "dtn://a/", "dtn://b/", "dtn://c/"


def setup(**params: int) -> tuple[EpidemicRouter, FakeView]:
    return EpidemicRouter(A, random.Random(0), **params), FakeView(A)


def test_summary_vector_encoding() -> None:
    payload = encode_summary(["x@1.0", "y@1.0"], limit=10)
    assert cbor2.loads(payload) == [1, bundle_digest("x@1.0") + bundle_digest("y@1.0")]
    assert decode_summary(payload, limit=10) == {bundle_digest("x@1.0"), bundle_digest("y@1.0")}
    assert decode_summary(payload, limit=1) == {bundle_digest("x@1.0")}
    assert (
        len(encode_summary([f"b{i}" for i in range(100)], limit=3)) == 2 + 2 + 24
    )  # [1, h'<24 bytes>']
    for bad in [b"", b"\x01", cbor2.dumps([2, b""]), cbor2.dumps([1, b"123"]), b"\xa0"]:
        assert decode_summary(bad, limit=10) is None


@given(st.binary(max_size=80))
def test_hostile_vectors_never_raise(payload: bytes) -> None:
    router, view = setup()
    link = view.add_link("l", B)
    router.on_link_up(link, view, 0)
    assert router.on_control_message(B, "l", payload, view, 0) == []


def test_link_up_sends_a_vector_and_waits_for_the_peers() -> None:
    router, view = setup(vector_wait_ms=1000)
    x = view.add_bundle(make_meta("x", destination="dtn://d/1"))
    to_b = view.add_bundle(make_meta("for-b", destination="dtn://b/app"))
    link = view.add_link("l", B)
    messages = router.on_link_up(link, view, 100)
    assert messages == [ControlMessage(B, "l", encode_summary(["x", "for-b"], 50_000))]
    assert router.get_timer() == 1100
    # Everything waits for its vector, even what is for the peer itself (it may have it).
    assert router.route(to_b, view, 100) == Wait(until=1100)
    assert router.route(x, view, 100) == Wait(until=1100)

    router.on_control_message(B, "l", encode_summary(["x"], 10), view, 200)
    assert router.get_timer() is None
    assert router.select(link, view, 200) == ["for-b"]
    assert router.route(to_b, view, 200) == Forward(("l",), keep_copy=False)
    assert router.route(x, view, 200) == Wait()


def test_the_vector_lists_what_was_let_go_while_it_lives_after_what_is_held() -> None:
    router, view = setup(max_known=4)
    view.add_bundle(make_meta("held"))
    # oldest first, with expiry times: the delivered one expires at 500
    view.gone = [("old", 10_000), ("delivered", 500), ("dropped", 10_000), ("newest", 10_000)]
    (message,) = router.on_link_up(view.add_link("l", B), view, 1_000)
    # held first, then the newest let go; expired ones left out; cut at max_known
    assert message.payload == encode_summary(["held", "newest", "dropped", "old"], 4)
    (message,) = setup(max_known=3)[0].on_link_up(view.add_link("m", C), view, 1_000)
    assert decode_summary(message.payload, 10) == {
        bundle_digest(i) for i in ("held", "newest", "dropped")
    }


def test_without_a_vector_the_link_floods_after_the_wait() -> None:
    router, view = setup(vector_wait_ms=1000)
    x = view.add_bundle(make_meta("x", destination="dtn://d/1"))
    link = view.add_link("l", B)
    router.on_link_up(link, view, 0)
    assert router.route(x, view, 999) == Wait(until=1000)
    router.handle_timer(1000)
    assert router.get_timer() is None
    assert router.route(x, view, 1000) == Forward(("l",), keep_copy=True)


def test_never_back_to_the_previous_node_and_never_twice() -> None:
    router, view = setup(vector_wait_ms=0)
    came = view.add_bundle(make_meta("came", previous_node=B))
    mine = view.add_bundle(make_meta("mine"))
    link_b = view.add_link("lb", B)
    link_c = view.add_link("lc", C)
    router.on_link_up(link_b, view, 0)
    router.on_link_up(link_c, view, 0)
    assert router.route(came, view, 0) == Forward(("lc",), keep_copy=True)
    assert router.route(mine, view, 0) == Forward(("lb", "lc"), keep_copy=True)
    assert router.select(link_b, view, 0) == ["mine"]
    router.carry(mine, link_b, 0)  # sending it counts as the peer holding it
    assert router.route(mine, view, 0) == Forward(("lc",), keep_copy=True)
    router.on_transmitted(came, link_c, view, 1)
    router.on_transmitted(mine, link_c, view, 1)
    assert router.route(mine, view, 1) == Wait()
    assert router.select(link_c, view, 1) == []


def test_link_down_forgets_the_peer_and_a_stray_vector_is_ignored() -> None:
    router, view = setup()
    x = view.add_bundle(make_meta("x"))
    link = view.add_link("l", B)
    router.on_link_up(link, view, 0)
    router.on_control_message(B, "l", encode_summary(["x"], 10), view, 0)
    assert router.peer_knows(link, "x")
    view.remove_link("l")
    router.on_link_down(link, view, 10)
    assert not router.peer_knows(link, "x")
    assert router.get_timer() is None
    router.on_control_message(B, "l", encode_summary(["x"], 10), view, 20)  # no contact
    assert not router.peer_knows(link, "x")
    # Next contact: the vector exchange starts afresh.
    view.add_link("l", B)
    router.on_link_up(link, view, 30)
    assert router.route(x, view, 30) == Wait(until=5030)


def test_a_second_link_to_the_same_peer_keeps_what_is_known() -> None:
    router, view = setup()
    view.add_bundle(make_meta("x"))
    first = view.add_link("l1", B)
    router.on_link_up(first, view, 0)
    router.on_control_message(B, "l1", encode_summary(["x"], 10), view, 0)
    second = view.add_link("l2", B)
    assert router.on_link_up(second, view, 1) == []  # the peer has our vector already
    assert router.select(second, view, 1) == []
    view.remove_link("l1")
    router.on_link_down(first, view, 2)
    assert router.peer_knows(second, "x")


def test_links_without_a_peer_node_flood_at_once() -> None:
    router, view = setup()
    x = view.add_bundle(make_meta("x"))
    link = view.add_link("anon", None)
    assert router.on_link_up(link, view, 0) == []
    assert router.select(link, view, 0) == ["x"]
    router.carry(x, link, 0)
    assert router.select(link, view, 0) == []
    view.remove_link("anon")
    router.on_link_down(link, view, 1)
    assert not router.peer_knows(make_link("anon", None), "x")


def test_known_set_is_capped() -> None:
    router, view = setup(max_known=3)
    for i in range(5):
        view.add_bundle(make_meta(f"b{i}"))
    link = view.add_link("l", B)
    (message,) = router.on_link_up(link, view, 0)
    assert len(decode_summary(message.payload, 100) or ()) == 3
    router.on_control_message(B, "l", encode_summary([f"b{i}" for i in range(5)], 5), view, 0)
    assert router.select(link, view, 0) == ["b3", "b4"]
    # What we send is remembered beyond the cap: it is never offered twice.
    for bundle_id in ("b3", "b4"):
        router.carry(make_meta(bundle_id), link, 0)
    assert router.select(link, view, 0) == []


def test_a_destination_that_has_the_bundle_is_not_sent_it_again() -> None:
    router, view = setup()
    to_b = view.add_bundle(make_meta("for-b", destination="dtn://b/app"))
    link = view.add_link("l", B)
    router.on_link_up(link, view, 0)
    router.on_control_message(B, "l", encode_summary(["for-b"], 10), view, 10)
    assert router.route(to_b, view, 10) == Wait()
    assert router.select(link, view, 10) == []
    view.add_link("c", C)  # another neighbour lacks it: it goes there, a copy kept
    router.on_link_up(view.link("c"), view, 20)  # type: ignore[arg-type]
    router.on_control_message(C, "c", encode_summary([], 10), view, 30)
    assert router.route(to_b, view, 30) == Forward(("c",), keep_copy=True)
