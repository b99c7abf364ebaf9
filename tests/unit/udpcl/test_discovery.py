"""The sans-IO neighbour discovery object, with time stepped by hand."""

from __future__ import annotations

import doctest
import random

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dtncloud.discovery
from dtncloud.discovery import (
    Beacon,
    Discovery,
    DiscoveryConfig,
    DiscoveryEvent,
    NeighbourFound,
    NeighbourLost,
    NeighbourUpdated,
    Service,
    decode_beacon,
    encode_beacon,
)
from dtncloud.eid import EID
from dtncloud.errors import ConfigError

TCP = (Service("tcpcl", 4556),)
UDP = (Service("udp", 4556),)


def node(name: str, now: int = 0, **options: object) -> Discovery:
    config = DiscoveryConfig(f"dtn://{name}/", **options)  # type: ignore[arg-type]
    return Discovery(config, now)


def events(discovery: Discovery) -> list[DiscoveryEvent]:
    found = []
    while (event := discovery.next_event()) is not None:
        found.append(event)
    return found


def beacon_from(sender: Discovery, now: int) -> bytes:
    sender.handle_timer(now)
    data = sender.beacon_to_send(now)
    assert data is not None
    return data


def test_first_beacon_is_due_at_creation_then_every_period() -> None:
    a = node("a", now=100, period_ms=1000, services=TCP)
    assert a.get_timer() == 100
    assert a.beacon_to_send(100) is None  # nothing due until the timer ran
    a.handle_timer(100)
    first = decode_beacon(a.beacon_to_send(100) or b"")
    assert first == Beacon(EID.parse("dtn://a/"), 0, TCP, 1000)
    assert a.beacon_to_send(100) is None  # taken
    assert a.get_timer() == 1100
    a.handle_timer(1099)
    assert a.beacon_to_send(1099) is None
    a.handle_timer(1100)
    assert decode_beacon(a.beacon_to_send(1100) or b"").sequence == 1
    assert a.stats.beacons_sent == 2


def test_a_late_wake_up_sends_one_beacon_and_reschedules_from_now() -> None:
    a = node("a", period_ms=1000)
    a.handle_timer(0)
    a.beacon_to_send(0)
    a.handle_timer(5500)
    assert a.beacon_to_send(5500) is not None
    assert a.beacon_to_send(5500) is None
    assert a.get_timer() == 6500


def test_listen_only_never_beacons() -> None:
    a = node("a", announce=False)
    assert a.get_timer() is None
    a.handle_timer(10**9)
    assert a.beacon_to_send(10**9) is None


def test_period_can_be_left_out_of_the_beacon() -> None:
    a = node("a", announce_period=False)
    assert decode_beacon(beacon_from(a, 0)).period_ms is None


def test_jitter_shortens_the_period_within_bounds() -> None:
    config = DiscoveryConfig("dtn://a/", period_ms=1000, jitter_ms=200)
    a = Discovery(config, 0, rng=random.Random(7))
    now = 0
    for _ in range(50):
        a.handle_timer(now)
        a.beacon_to_send(now)
        deadline = a.get_timer()
        assert deadline is not None
        assert now + 800 <= deadline <= now + 1000
        now = deadline
    with pytest.raises(ConfigError):
        Discovery(config, 0)  # jitter without a random source


def test_same_seed_same_schedule() -> None:
    config = DiscoveryConfig("dtn://a/", period_ms=1000, jitter_ms=500)
    schedules = []
    for _ in range(2):
        a = Discovery(config, 0, rng=random.Random(42))
        times = []
        for _ in range(10):
            deadline = a.get_timer()
            assert deadline is not None
            a.handle_timer(deadline)
            times.append(deadline)
        schedules.append(times)
    assert schedules[0] == schedules[1]


def test_found_then_refreshed_then_lost() -> None:
    a = node("a", period_ms=1000, services=TCP)
    b = node("b", period_ms=5000, missed_periods=3)
    beacon_from(b, 0)  # b's own first beacon; the next is due at 5000
    b.beacon_received(beacon_from(a, 0), "192.0.2.1", now=10)
    assert events(b) == [NeighbourFound("dtn://a/", "192.0.2.1", TCP)]
    # a announces a 1 s period: b loses it after 3 s of silence, before b's own next beacon.
    assert b.get_timer() == 3010
    b.beacon_received(beacon_from(a, 1000), "192.0.2.1", now=1010)
    assert events(b) == []  # same host, same services: nothing to say
    assert b.get_timer() == 4010
    assert b.neighbours["dtn://a/"].sequence == 1
    b.handle_timer(4009)
    assert events(b) == []
    b.handle_timer(4010)
    assert events(b) == [NeighbourLost("dtn://a/", "192.0.2.1")]
    assert b.neighbours == {}
    assert b.get_timer() == 5000  # b's own next beacon
    b.beacon_received(beacon_from(a, 9000), "192.0.2.1", now=9000)
    assert events(b) == [NeighbourFound("dtn://a/", "192.0.2.1", TCP)]


def test_without_an_announced_period_our_own_is_used() -> None:
    a = node("a", announce_period=False)
    b = node("b", period_ms=2000, missed_periods=2)
    b.beacon_received(beacon_from(a, 0), "192.0.2.1", now=0)
    assert b.neighbours["dtn://a/"].expires_at == 4000


def test_huge_announced_period_is_capped() -> None:
    b = node("b", max_period_ms=60_000, missed_periods=3)
    huge = encode_beacon(Beacon(EID.parse("dtn://a/"), 0, period_ms=10**12))
    b.beacon_received(huge, "192.0.2.1", now=0)
    assert b.neighbours["dtn://a/"].expires_at == 180_000


def test_new_services_are_an_update() -> None:
    a = node("a", services=TCP)
    b = node("b")
    b.beacon_received(beacon_from(a, 0), "192.0.2.1", now=0)
    events(b)
    a.update_services(TCP + UDP)
    b.beacon_received(beacon_from(a, 5000), "192.0.2.1", now=5000)
    assert events(b) == [NeighbourUpdated("dtn://a/", "192.0.2.1", TCP + UDP)]


def test_second_address_is_adopted_only_when_the_first_falls_silent() -> None:
    a = node("a", period_ms=1000, services=TCP)
    b = node("b")
    b.beacon_received(beacon_from(a, 0), "192.0.2.1", now=0)
    events(b)
    # Heard on a second address while the first stays alive: keep the first.
    b.beacon_received(beacon_from(a, 1000), "198.51.100.1", now=500)
    b.beacon_received(beacon_from(a, 2000), "192.0.2.1", now=1000)
    assert events(b) == []
    assert b.neighbours["dtn://a/"].host == "192.0.2.1"
    # The first address silent for more than a period: move.
    b.beacon_received(beacon_from(a, 3000), "198.51.100.1", now=2500)
    assert events(b) == [NeighbourUpdated("dtn://a/", "198.51.100.1", TCP)]
    assert b.neighbours["dtn://a/"].host == "198.51.100.1"


def test_own_beacons_are_ignored_and_counted() -> None:
    a = node("a")
    a.beacon_received(beacon_from(a, 0), "127.0.0.1", now=0)
    assert events(a) == []
    assert a.stats.ignored_own == 1
    assert a.neighbours == {}


@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (b"junk", "ignored_malformed"),
        (cbor2.dumps([7, 1]), "ignored_malformed"),
        (bytes([4, 1, 0, 0]), "ignored_unsupported"),
        (cbor2.dumps([9, 1, [1, "//x/"], 0]), "ignored_unsupported"),
    ],
)
def test_unreadable_beacons_are_ignored_and_counted(data: bytes, counter: str) -> None:
    b = node("b")
    b.beacon_received(data, "192.0.2.1", now=0)
    assert events(b) == []
    assert getattr(b.stats, counter) == 1
    assert b.stats.ignored == 1
    assert b.stats.beacons_received == 0


def test_neighbour_table_is_bounded_and_the_stalest_makes_room() -> None:
    b = node("b", max_neighbours=2)
    for now, name in enumerate(("x", "y", "x", "z")):  # x heard again after y
        b.beacon_received(beacon_from(node(name), 0), "192.0.2.1", now=now)
    assert sorted(b.neighbours) == ["dtn://x/", "dtn://z/"]
    assert b.stats.evicted == 1
    assert NeighbourLost("dtn://y/", "192.0.2.1") in events(b)


@pytest.mark.parametrize(
    "options",
    [
        {"period_ms": 0},
        {"missed_periods": 0},
        {"jitter_ms": 1000, "period_ms": 1000},
        {"jitter_ms": -1},
        {"max_neighbours": 0},
    ],
)
def test_bad_config_is_a_config_error(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        DiscoveryConfig("dtn://a/", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("node_id", ["dtn:none", "not an eid", "dtn://"])
def test_bad_node_id_is_a_config_error(node_id: str) -> None:
    with pytest.raises(ConfigError):
        DiscoveryConfig(node_id)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2000), st.binary(max_size=40))))
def test_any_input_sequence_keeps_the_table_consistent(
    steps: list[tuple[int, int, bytes]],
) -> None:
    """Random beacons (valid ones from three nodes, and junk) arriving at random times:
    nothing raises, the events tell exactly who is in the table, and the next deadline always
    lies ahead."""
    peers = [encode_beacon(Beacon(EID.parse(f"dtn://{name}/"), 0, UDP, 700)) for name in "pqr"]
    b = node("b", period_ms=1000)
    known: set[str] = set()
    now = 0
    for who, step, junk in steps:
        now += step
        b.handle_timer(now)
        data = junk if who == 3 else peers[who]
        b.beacon_received(data, f"192.0.2.{who}", now)
        for event in events(b):
            if isinstance(event, NeighbourFound):
                assert event.node_id not in known
                known.add(event.node_id)
            elif isinstance(event, NeighbourLost):
                known.remove(event.node_id)
            else:
                assert event.node_id in known
        assert set(b.neighbours) == known
        timer = b.get_timer()
        assert timer is not None
        assert timer > now


def test_package_docstring_example() -> None:
    assert doctest.testmod(dtncloud.discovery, raise_on_error=True).attempted > 0


@pytest.mark.parametrize(
    ("sockaddr", "host"),
    [
        (("192.0.2.1", 3003), "192.0.2.1"),
        (("2001:db8::1", 3003, 0, 0), "2001:db8::1"),
        (("fe80::1", 3003, 0, 2), "fe80::1%2"),  # link-local: the scope is needed to reply
        (("fe80::1%lo", 3003, 0, 1), "fe80::1%lo"),
    ],
)
def test_the_source_host_keeps_a_link_local_scope(sockaddr: tuple[object, ...], host: str) -> None:
    from dtncloud.cla.discovery import source_host

    assert source_host(sockaddr) == host
