"""Routers of several nodes wired together through fake views (no engine): what they send
each other over a sequence of contacts."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.routing.epidemic import decode_summary
from dtncloud.routing.spray_and_wait import SprayAndWaitRouter
from tests.unit.routing.harness import Net


def epidemic_net(**params: int) -> Net:
    net = Net()
    for name in "abcd":
        net.add(name, "epidemic", **params)
    return net


def test_epidemic_summary_vectors_avoid_resending() -> None:
    net = epidemic_net()
    x = net.create("a", "dtn://z/app", sequence=1).bundle_id
    y = net.create("a", "dtn://z/app", sequence=2).bundle_id
    net.connect("a", "b")
    assert sorted(net.sends()) == [("a", "b"), ("a", "b")]
    net.disconnect("a", "b")

    z = net.create("b", "dtn://z/app", sequence=3).bundle_id
    net.connect("b", "c")
    assert net.holders(z) == ["b", "c"]
    net.disconnect("b", "c")

    before = len(net.sent)
    net.connect("a", "c")  # c holds x, y, z; a holds x, y: only z moves
    assert net.sent[before:] == [s for s in net.sent[before:] if s.bundle_id == z]
    assert net.sends()[before:] == [("c", "a")]
    net.disconnect("a", "c")

    before = len(net.sent)
    net.connect("a", "b")  # both hold x, y, z now
    net.connect("c", "b")
    assert net.sent[before:] == []
    for bundle_id in (x, y, z):
        assert net.holders(bundle_id) == ["a", "b", "c"]
    assert net.refused == []  # no copy was ever offered to a node that had it
    # The vectors of the last contact listed all three bundles.
    last = [payload for src, dst, payload in net.control if (src, dst) == ("b", "a")][-1]
    assert len(decode_summary(last, 10) or ()) == 3


def test_without_waiting_for_vectors_duplicates_are_offered() -> None:
    net = epidemic_net(vector_wait_ms=0)
    net.create("a", "dtn://z/app", sequence=1)
    net.connect("a", "b")
    net.disconnect("a", "b")
    net.connect("a", "b")  # offered before b's vector arrived: b refuses it
    assert len(net.refused) == 1


def test_epidemic_delivers_through_a_chain_and_stops_at_the_destination() -> None:
    net = epidemic_net()
    x = net.create("a", "dtn://d/app").bundle_id
    net.connect("a", "b")
    net.disconnect("a", "b")
    net.connect("b", "c")
    net.disconnect("b", "c")
    net.connect("c", "d")
    assert net.nodes["d"].delivered == [x]
    assert net.holders(x) == ["a", "b"]  # c handed it to d and let its copy go
    assert net.refused == []


def test_epidemic_vector_timeout_floods_a_silent_peer() -> None:
    net = Net()
    net.add("a", "epidemic", vector_wait_ms=1000)
    net.add("b", "direct")  # sends no vector
    x = net.create("a", "dtn://z/app").bundle_id
    net.connect("a", "b")
    assert net.sent == []
    net.advance(999)
    assert net.sent == []
    net.advance(1000)
    assert net.sends(x) == [("a", "b")]


def test_prophet_forwards_towards_the_frequent_visitor() -> None:
    net = Net()
    for name in "abd":
        net.add(name, "prophet")
    # a meets d regularly; b never meets d.
    for t in range(4):
        net.advance(t * 600_000)
        net.connect("a", "d")
        net.disconnect("a", "d")
    x = net.create("b", "dtn://d/app").bundle_id
    net.connect("b", "a")
    assert net.sends(x) == [("b", "a")]
    net.disconnect("b", "a")
    net.connect("a", "d")
    assert net.nodes["d"].delivered == [x]
    assert net.holders(x) == ["b"]  # a delivered and let go; b keeps its copy (GRTR)


def test_prophet_does_not_hand_bundles_to_a_worse_neighbour() -> None:
    net = Net()
    for name in "abcd":
        net.add(name, "prophet")
    net.connect("a", "d")
    net.disconnect("a", "d")
    x = net.create("a", "dtn://d/app").bundle_id
    net.connect("a", "c")  # c has never met d
    assert net.sends(x) == []


def spray_total(net: Net, bundle_id: str) -> int:
    """Copies held for ``bundle_id`` across the network, plus copies handed to its
    destination."""
    total = 0
    for node in net.nodes.values():
        meta = node.view.bundle(bundle_id)
        if meta is not None:
            assert isinstance(node.router, SprayAndWaitRouter)
            total += node.router.state(meta)[0]
    for sent in net.sent:
        if sent.bundle_id == bundle_id and sent.dst == "z":
            total += cbor2.loads(sent.carried) if sent.carried else 0
    return total


encounters = st.lists(
    st.tuples(st.sampled_from("abcdefz"), st.sampled_from("abcdefz")).filter(
        lambda pair: pair[0] != pair[1]
    ),
    max_size=25,
)


@settings(max_examples=60)
@given(encounters, st.integers(1, 20), st.booleans())
def test_spray_copies_are_conserved(
    pairs: list[tuple[str, str]], copies: int, binary: bool
) -> None:
    net = Net()
    for name in "abcdefz":
        net.add(name, "spray_and_wait", copies=copies, binary=binary)
    x = net.create("a", "dtn://z/app").bundle_id
    for a, b in pairs:
        net.connect(a, b)
        assert spray_total(net, x) == copies
        net.disconnect(a, b)
    assert len(net.holders(x)) <= copies
    assert len(net.sent) <= copies  # one hand-over per copy at most, delivery included


def test_spray_reaches_the_destination_in_wait_phase() -> None:
    net = Net()
    for name in "abcz":
        net.add(name, "spray_and_wait", copies=4)
    x = net.create("a", "dtn://z/app").bundle_id
    net.connect("a", "b")  # b gets 2, a keeps 2
    net.disconnect("a", "b")
    net.connect("b", "c")  # c gets 1, b keeps 1
    net.disconnect("b", "c")
    net.connect("c", "a")  # c waits with its 1 copy; its vector says so: a offers none
    net.disconnect("c", "a")
    assert net.refused == []
    assert spray_total(net, x) == 4
    net.connect("c", "z")
    assert net.nodes["z"].delivered == [x]
    assert sorted(net.holders(x)) == ["a", "b"]
