"""CustodyLedger and SignalAggregator (dtncloud.engine.custody), with hand-stepped time."""

from __future__ import annotations

import doctest

import pytest

import dtncloud.engine.custody as custody_module
from dtncloud.bpv7.admin import (
    ION_ADMIN_RECORD_TYPES,
    admin_bundle,
    decode_admin_record,
    encode_admin_record,
    read_admin_record,
)
from dtncloud.bpv7.bibe import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    bibe_encapsulate,
)
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.engine.custody import (
    CustodyLedger,
    CustodyOutcome,
    CustodyState,
    SignalAggregator,
    disposition_for_error,
    ion_retransmission_time,
    releases_custody,
)
from dtncloud.errors import (
    AdminRecordError,
    BundleDecodeError,
    BundleTooLarge,
    ConfigError,
    CrcMismatch,
    InvalidEID,
    LinkDown,
    StoreFull,
)

D = CustodyDisposition
A, B = "ipn:2.0", "ipn:3.0"
MAX64 = 2**64 - 1


def ledger(**kwargs: int) -> CustodyLedger:
    kwargs.setdefault("retransmit_after_ms", 1000)
    kwargs.setdefault("max_retransmit_after_ms", 5000)
    return CustodyLedger(**kwargs)


def signal(disposition: int, *runs: tuple[int, int]) -> CustodySignal:
    return CustodySignal(disposition, runs)


def test_module_doctests() -> None:
    result = doctest.testmod(custody_module)
    assert result.attempted >= 5
    assert result.failed == 0


# -- allocation and deadlines -------------------------------------------------------------------


def test_ids_start_at_1_and_increase_by_one() -> None:
    book = ledger()
    assert book.next_transmission_id == 1
    got = [book.send(f"b{i}", A, now=100)[0] for i in range(5)]
    assert got == [1, 2, 3, 4, 5]
    assert book.next_transmission_id == 6


def test_ids_continue_from_persisted_counter() -> None:
    book = ledger(next_transmission_id=41)
    assert book.send("b", A, 0) == (41, 1000)
    assert book.next_transmission_id == 42


def test_resending_a_bundle_uses_a_new_id() -> None:
    book = ledger()
    assert book.send("b", A, 0)[0] == 1
    assert book.due(1000) == ["b"]
    assert book.send("b", A, 1000)[0] == 2


def test_deadline_is_now_plus_initial_backoff() -> None:
    book = ledger()
    assert book.send("x", A, now=754_999_990_000) == (1, 754_999_991_000)
    assert book.info("x") == CustodyState(1, A, 754_999_991_000, 1000)
    assert book.outstanding("x")
    assert "x" in book and len(book) == 1 and list(book) == ["x"]


def test_deadline_is_capped_at_uint64() -> None:
    book = ledger()
    assert book.send("x", A, now=MAX64 - 10) == (1, MAX64)


def test_backoff_doubles_on_each_timeout_up_to_the_cap() -> None:
    book = ledger()  # 1000 ms, cap 5000 ms
    now = 0
    deadlines = []
    for _ in range(6):
        tx, deadline = book.send("b", A, now)
        deadlines.append(deadline - now)
        assert book.get_timer() == deadline
        assert book.due(deadline - 1) == []
        assert book.due(deadline) == ["b"]
        now = deadline
    assert deadlines == [1000, 2000, 4000, 5000, 5000, 5000]
    assert tx == 6


def test_backoff_is_per_bundle() -> None:
    book = ledger()
    book.send("slow", A, 0)
    assert book.due(1000) == ["slow"]
    assert book.send("slow", A, 1000) == (2, 3000)
    assert book.send("fresh", A, 1000) == (3, 2000)


def test_release_or_refusal_resets_backoff() -> None:
    book = ledger()
    book.send("b", A, 0)
    book.due(1000)
    tx, _ = book.send("b", A, 1000)
    assert book.on_signal(A, signal(D.NO_KNOWN_ROUTE, (tx, 1)), 1500)[0].refused
    assert "b" not in book
    assert book.send("b", B, 1500) == (3, 2500)


def test_sending_an_outstanding_bundle_replaces_its_entry() -> None:
    book = ledger()
    book.send("b", A, 0)
    assert book.send("b", B, 10) == (2, 1010)
    assert book.on_signal(A, signal(0, (1, 1)), 20) == []
    assert book.get_timer() == 1010
    [outcome] = book.on_signal(B, signal(0, (2, 1)), 30)
    assert outcome.bundle_id == "b" and outcome.released
    assert book.get_timer() is None


# -- timers ---------------------------------------------------------------------------------------


def test_timer_follows_the_earliest_outstanding_deadline() -> None:
    book = ledger()
    assert book.get_timer() is None
    book.send("a", A, 500)  # 1500
    book.send("b", A, 100)  # 1100
    book.send("c", A, 900)  # 1900
    assert book.get_timer() == 1100
    book.on_signal(A, signal(0, (2, 1)), 1000)
    assert book.get_timer() == 1500
    assert book.due(1499) == []
    assert book.due(1900) == ["a", "c"]
    assert book.get_timer() is None


def test_due_bundles_stop_being_outstanding_and_ignore_late_signals() -> None:
    book = ledger()
    book.send("a", A, 0)
    assert book.handle_timer(1000) == ["a"]
    assert not book.outstanding("a")
    assert "a" in book
    assert book.info("a") == CustodyState(0, A, 0, 2000)
    assert not book.info("a").outstanding  # type: ignore[union-attr]
    assert book.on_signal(A, signal(0, (1, 1)), 1001) == []
    assert book.due(10**9) == []
    assert book.get_timer() is None


def test_due_lists_equal_deadlines_in_id_order() -> None:
    book = ledger()
    for name in ("z", "y", "x"):
        book.send(name, A, 0)
    assert book.due(1000) == ["z", "y", "x"]


def test_forget_removes_entry_and_timer() -> None:
    book = ledger()
    book.send("a", A, 0)
    book.send("b", A, 10)
    assert book.forget("a") is True
    assert book.forget("a") is False
    assert book.forget("never") is False
    assert book.get_timer() == 1010
    assert book.state_of("a") == b""
    assert book.on_signal(A, signal(0, (1, 1)), 20) == []
    assert book.due(5000) == ["b"]


# -- custody signals ------------------------------------------------------------------------------


def test_accepted_and_redundant_release_custody() -> None:
    book = ledger()
    for i in range(4):
        book.send(f"b{i}", A, 0)
    out = book.on_signal(A, signal(D.ACCEPTED, (1, 2)), 10)
    assert out == [
        CustodyOutcome("b0", 1, D.ACCEPTED, True),
        CustodyOutcome("b1", 2, D.ACCEPTED, True),
    ]
    out = book.on_signal(A, signal(D.REDUNDANT_RECEPTION, (3, 1)), 10)
    assert out == [CustodyOutcome("b2", 3, D.REDUNDANT_RECEPTION, True)]
    assert list(book) == ["b3"]


@pytest.mark.parametrize(
    "code",
    [
        D.NO_FURTHER_INFORMATION,
        D.DEPLETED_STORAGE,
        D.DESTINATION_EID_UNINTELLIGIBLE,
        D.NO_KNOWN_ROUTE,
        D.NO_TIMELY_CONTACT,
        D.BLOCK_UNINTELLIGIBLE,
        2,
        42,
    ],
)
def test_other_dispositions_are_refusals_and_drop_the_entry(code: int) -> None:
    book = ledger()
    book.send("b", A, 0)
    [outcome] = book.on_signal(A, signal(code, (1, 1)), 10)
    assert outcome == CustodyOutcome("b", 1, code, False)
    assert outcome.refused
    assert "b" not in book
    assert book.get_timer() is None


def test_signal_only_settles_ids_of_the_signalling_peer() -> None:
    book = ledger()
    book.send("to-a", A, 0)  # 1
    book.send("to-b", B, 0)  # 2
    book.send("to-a-2", A, 0)  # 3
    assert book.on_signal(B, signal(0, (1, 1), (3, 1)), 5) == []
    out = book.on_signal(A, signal(0, (1, 3)), 5)
    assert [(o.bundle_id, o.transmission_id) for o in out] == [("to-a", 1), ("to-a-2", 3)]
    assert book.outstanding("to-b")


def test_unknown_and_repeated_ids_are_ignored() -> None:
    book = ledger()
    book.send("b", A, 0)
    assert book.on_signal(A, signal(0, (7, 100)), 1) == []
    assert len(book.on_signal(A, signal(0, (1, 1)), 2)) == 1
    assert book.on_signal(A, signal(0, (1, 1)), 3) == []
    assert book.on_signal(A, signal(0), 3) == []


def test_overlapping_and_unsorted_runs_settle_each_id_once() -> None:
    book = ledger()
    for i in range(10):
        book.send(f"b{i}", A, 0)
    out = book.on_signal(A, signal(0, (6, 3), (1, 4), (2, 2), (7, 1), (5, 1)), 1)
    assert [o.transmission_id for o in out] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_huge_runs_cost_nothing() -> None:
    book = ledger()
    for i in range(1000):
        book.send(f"b{i}", A if i % 2 else B, 0)
    hostile = CustodySignal(0, tuple((i * 2**40, 2**39) for i in range(1, 5000)))
    assert book.on_signal(A, hostile, 1) == []
    out = book.on_signal(A, signal(0, (1, MAX64)), 1)
    assert len(out) == 500
    assert all(book.outstanding(f"b{i}") == (i % 2 == 0) for i in range(1000))


def test_settle_by_bundle_id() -> None:
    book = ledger()
    book.send("b", A, 0)
    book.send("c", A, 0)
    assert book.settle("b", D.ACCEPTED, peer=B) is None
    assert book.settle("b", D.ACCEPTED) == CustodyOutcome("b", 1, D.ACCEPTED, True)
    assert book.settle("b", D.ACCEPTED) is None
    assert book.settle("c", D.DEPLETED_STORAGE, peer=A) == CustodyOutcome(
        "c", 2, D.DEPLETED_STORAGE, False
    )
    book.send("d", A, 0)
    book.due(1000)
    assert book.settle("d", D.ACCEPTED) is None  # not outstanding
    assert book.settle("nope", D.ACCEPTED) is None


def test_releases_custody() -> None:
    assert releases_custody(0) and releases_custody(D.REDUNDANT_RECEPTION)
    assert not any(releases_custody(c) for c in (1, 2, 4, 5, 6, 7, 8, 99))


def test_dead_slots_are_reclaimed() -> None:
    book = ledger()
    for round_ in range(20):
        for i in range(100):
            book.send(f"b{i}", A, round_ * 10)
        out = book.on_signal(A, signal(0, (1, MAX64)), round_ * 10 + 1)
        assert len(out) == 100
    assert len(book) == 0
    assert book.get_timer() is None
    assert len(book._heap) <= 200  # white box: no growth with churn
    assert len(book._by_tx.ids) <= 200


# -- persistence ----------------------------------------------------------------------------------


def test_state_bytes_are_versioned_cbor() -> None:
    book = ledger()
    book.send("b", "ipn:2.0", 10)
    # [1, 1, "ipn:2.0", 1010, 1000]
    assert book.state_of("b").hex() == "8501016769706e3a322e301903f21903e8"
    assert book.state_of("unknown") == b""


def test_restore_round_trip_of_an_outstanding_entry() -> None:
    book = ledger()
    book.send("a", A, 0)
    book.send("b", B, 500)
    book.due(1000)
    book.send("a", A, 1000)  # id 3, deadline 3000, backoff 2000
    states = {bid: book.state_of(bid) for bid in book}

    fresh = ledger(next_transmission_id=2)  # an old counter: restore moves it on
    assert all(fresh.restore(bid, state) for bid, state in states.items())
    assert fresh.info("a") == CustodyState(3, A, 3000, 2000)
    assert fresh.info("b") == CustodyState(2, B, 1500, 1000)
    assert fresh.next_transmission_id == 4
    assert fresh.get_timer() == 1500
    assert [o.bundle_id for o in fresh.on_signal(A, signal(0, (1, 3)), 1600)] == ["a"]
    assert fresh.due(2000) == ["b"]
    assert fresh.send("b", B, 2000) == (4, 4000)


def test_restore_of_a_bundle_waiting_for_retransmission() -> None:
    book = ledger()
    book.send("a", A, 0)
    book.due(1000)
    state = book.state_of("a")
    fresh = ledger()
    assert fresh.restore("a", state) is True
    assert not fresh.outstanding("a")
    assert fresh.get_timer() == 0
    assert fresh.due(5) == ["a"]
    assert fresh.send("a", A, 5) == (1, 2005)  # backoff 2000 kept, not doubled again


def test_restore_out_of_order_ids() -> None:
    book = ledger()
    for i in range(200):
        book.send(f"b{i}", A, i)
    states = [(bid, book.state_of(bid)) for bid in book]
    fresh = ledger()
    for bid, state in reversed(states):
        assert fresh.restore(bid, state)
    out = fresh.on_signal(A, signal(0, (50, 10), (190, 5)), 0)
    assert [o.transmission_id for o in out] == [*range(50, 60), *range(190, 195)]
    assert fresh.send("new", A, 0)[0] == 201


def test_restore_empty_state_restores_nothing() -> None:
    book = ledger()
    assert book.restore("a", b"") is False
    assert "a" not in book


@pytest.mark.parametrize(
    "state",
    [
        b"\x00",
        b"\xff\xff",
        b"garbage that is not cbor",
        bytes.fromhex("8501016769706e3a322e301903f2"),  # truncated
        bytes.fromhex("8501016769706e3a322e301903f21903e800"),  # trailing byte
        bytes.fromhex("8502016769706e3a322e301903f21903e8"),  # version 2
        bytes.fromhex("8401016769706e3a322e301903f2"),  # 4 items
        bytes.fromhex("8501014769706e3a322e301903f21903e8"),  # peer as bytes
        bytes.fromhex("8501206769706e3a322e301903f21903e8"),  # tx id -1
        bytes.fromhex("8501016769706e3a322e301903f200"),  # backoff 0
        bytes.fromhex("850101601903f21903e8"),  # tx id with empty peer
        bytes.fromhex("a10102"),  # a map
        bytes.fromhex("85010167ff706e3a322e301903f21903e8"),  # invalid UTF-8
        bytes.fromhex("9f" * 40),  # deep nesting
        bytes.fromhex("9b" + "ff" * 8),  # array claiming 2**64-1 items
    ],
)
def test_corrupt_state_means_retransmit(state: bytes) -> None:
    book = ledger()
    book.send("other", A, 0)  # id 1
    assert book.restore("victim", state) is False
    assert "victim" in book and not book.outstanding("victim")
    assert book.get_timer() == 0
    assert book.due(0) == ["victim"]
    assert book.send("victim", B, 0) == (2, 1000)
    assert book.next_transmission_id == 3


def test_restored_id_clash_is_treated_as_corrupt() -> None:
    book = ledger()
    book.send("a", A, 0)
    state = book.state_of("a")
    assert book.restore("b", state) is False  # id 1 belongs to "a"
    assert book.outstanding("a") and not book.outstanding("b")
    assert book.due(0) == ["b"]


def test_restored_id_clash_is_found_among_out_of_order_ids() -> None:
    book = ledger()
    book.send("a", A, 0)
    book.send("b", A, 0)
    fresh = ledger()
    assert fresh.restore("b", book.state_of("b"))  # id 2
    assert fresh.restore("a", book.state_of("a"))  # id 1, out of order
    assert fresh.restore("c", book.state_of("a")) is False
    assert [o.bundle_id for o in fresh.on_signal(A, signal(0, (1, 2)), 5)] == ["a", "b"]
    assert fresh.due(5) == ["c"]


def test_restore_replaces_an_existing_entry() -> None:
    book = ledger()
    book.send("a", A, 0)
    other = ledger(next_transmission_id=9)
    other.send("a", B, 50)
    assert book.restore("a", other.state_of("a"))
    assert book.info("a") == CustodyState(9, B, 1050, 1000)
    assert book.on_signal(A, signal(0, (1, 1)), 60) == []
    assert book.get_timer() == 1050


def test_restored_backoff_is_clamped_to_the_configuration() -> None:
    big = CustodyLedger(retransmit_after_ms=10_000, max_retransmit_after_ms=100_000)
    big.send("a", A, 0)
    big.due(10_000)
    big.send("a", A, 10_000)  # backoff 20 s
    small = ledger()  # cap 5 s
    assert small.restore("a", big.state_of("a"))
    assert small.info("a").backoff == 5000  # type: ignore[union-attr]


# -- configuration and helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"next_transmission_id": 0},
        {"retransmit_after_ms": 0},
        {"retransmit_after_ms": 1000, "max_retransmit_after_ms": 999},
    ],
)
def test_ledger_config_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        CustodyLedger(**kwargs)


def test_ion_retransmission_time_is_unix_seconds_rounded_up() -> None:
    assert ion_retransmission_time(0) == 946_684_800
    assert ion_retransmission_time(1) == 946_684_801
    assert ion_retransmission_time(1000) == 946_684_801
    assert ion_retransmission_time(754_999_990_000) == 946_684_800 + 754_999_990


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (StoreFull("quota"), D.DEPLETED_STORAGE),
        (BundleDecodeError("bad"), D.BLOCK_UNINTELLIGIBLE),
        (CrcMismatch("crc"), D.BLOCK_UNINTELLIGIBLE),
        (BundleTooLarge("big"), D.DEPLETED_STORAGE),
        (BundleDecodeError("eid", reason=5), D.DESTINATION_EID_UNINTELLIGIBLE),
        (BundleDecodeError("hop limit", reason=9), D.BLOCK_UNINTELLIGIBLE),
        (InvalidEID("ipn:x"), D.DESTINATION_EID_UNINTELLIGIBLE),
        (AdminRecordError("bpdu"), D.BLOCK_UNINTELLIGIBLE),
        (LinkDown("gone"), D.NO_FURTHER_INFORMATION),
        (RuntimeError("bug"), D.NO_FURTHER_INFORMATION),
    ],
)
def test_disposition_for_error(exc: BaseException, expected: D) -> None:
    assert disposition_for_error(exc) is expected


# -- aggregator -----------------------------------------------------------------------------------


def drain(
    agg: SignalAggregator, now: int
) -> list[tuple[str, tuple[int, tuple[tuple[int, int], ...]]]]:
    return [(c, (int(s.disposition), s.scope)) for c, s in agg.handle_timer(now)]


def test_aggregates_ids_into_runs() -> None:
    agg = SignalAggregator()
    for tid in (1, 2, 3, 7, 5, 6):
        assert agg.add(A, tid, D.ACCEPTED, now=0) == []
    assert agg.get_timer() == 1000
    assert drain(agg, 999) == []
    assert drain(agg, 1000) == [(A, (0, ((1, 3), (5, 3))))]
    assert agg.get_timer() is None and len(agg) == 0


@pytest.mark.parametrize(
    ("ids", "scope"),
    [
        ([5], ((5, 1),)),
        ([5, 5, 5], ((5, 1),)),
        ([3, 1, 2], ((1, 3),)),
        ([1, 3, 5], ((1, 1), (3, 1), (5, 1))),
        ([1, 3, 2], ((1, 3),)),  # a gap filled joins both sides
        ([10, 9, 8, 12, 11], ((8, 5),)),
        ([4, 1, 2, 3, 2, 4], ((1, 4),)),
        ([MAX64, MAX64 - 1, 1], ((1, 1), (MAX64 - 1, 2))),
    ],
)
def test_run_merging(ids: list[int], scope: tuple[tuple[int, int], ...]) -> None:
    agg = SignalAggregator()
    for tid in ids:
        agg.add(A, tid, 0, 0)
    [(custodian, sig)] = agg.flush_all()
    assert custodian == A and sig.scope == scope


def test_separate_signals_per_custodian_and_disposition() -> None:
    agg = SignalAggregator(delay_ms=100)
    agg.add(A, 1, D.NO_KNOWN_ROUTE, 0)
    agg.add(A, 2, D.ACCEPTED, 10)
    agg.add(B, 2, D.ACCEPTED, 50)
    agg.add(A, 3, D.ACCEPTED, 60)
    assert drain(agg, 100) == [(A, (0, ((2, 2),))), (A, (6, ((1, 1),)))]
    assert agg.get_timer() == 150
    assert drain(agg, 149) == []
    assert drain(agg, 150) == [(B, (0, ((2, 1),)))]


def test_timer_starts_with_the_oldest_pending_id() -> None:
    agg = SignalAggregator(delay_ms=100)
    agg.add(A, 1, 0, 0)
    agg.add(A, 2, 0, 90)
    assert agg.get_timer() == 100
    assert drain(agg, 100) == [(A, (0, ((1, 2),)))]
    agg.add(A, 3, 0, 120)
    assert agg.get_timer() == 220


def test_zero_delay_flushes_at_the_next_timer() -> None:
    agg = SignalAggregator(delay_ms=0)
    agg.add(A, 1, 0, 5)
    assert agg.get_timer() == 5
    assert drain(agg, 5) == [(A, (0, ((1, 1),)))]


def test_max_runs_flushes_at_once() -> None:
    agg = SignalAggregator(max_runs=3)
    assert agg.add(A, 1, 0, 0) == []
    assert agg.add(A, 3, 0, 0) == []
    assert agg.add(A, 2, 0, 0) == []  # joins: still one run
    assert agg.add(A, 5, 0, 0) == []
    assert agg.add(A, 7, 0, 0) == [(A, CustodySignal(0, ((1, 3), (5, 1), (7, 1))))]
    assert len(agg) == 0 and agg.get_timer() is None
    assert agg.add(A, 9, 0, 10) == []
    assert agg.get_timer() == 1010


def test_max_runs_flushes_only_the_full_disposition() -> None:
    agg = SignalAggregator(max_runs=2)
    agg.add(A, 10, 4, 0)
    agg.add(A, 1, 0, 5)
    assert agg.add(A, 3, 0, 6) == [(A, CustodySignal(0, ((1, 1), (3, 1))))]
    assert agg.get_timer() == 1000
    assert drain(agg, 1000) == [(A, (4, ((10, 1),)))]


def test_too_many_custodians_flushes_the_oldest() -> None:
    agg = SignalAggregator(max_custodians=2)
    agg.add("c1", 1, 0, 0)
    agg.add("c2", 1, 0, 1)
    assert agg.add("c1", 2, 0, 2) == []
    assert agg.add("c3", 1, 0, 3) == [("c1", CustodySignal(0, ((1, 2),)))]
    assert len(agg) == 2
    assert agg.get_timer() == 1001


def test_flush_and_flush_all() -> None:
    agg = SignalAggregator()
    agg.add(A, 1, 3, 0)
    agg.add(B, 2, 0, 1)
    agg.add(A, 4, 0, 2)
    assert agg.flush("nobody") == []
    assert agg.flush(B) == [(B, CustodySignal(0, ((2, 1),)))]
    assert agg.flush_all() == [(A, CustodySignal(0, ((4, 1),))), (A, CustodySignal(3, ((1, 1),)))]
    assert agg.flush_all() == [] and agg.get_timer() is None


@pytest.mark.parametrize(
    ("tid", "disposition"), [(0, 0), (-1, 0), (2**64, 0), (True, 0), (1, -1), (1.0, 0)]
)
def test_add_refuses_bad_values(tid: object, disposition: object) -> None:
    agg = SignalAggregator()
    with pytest.raises(ValueError):
        agg.add(A, tid, disposition, 0)  # type: ignore[arg-type]
    assert len(agg) == 0


@pytest.mark.parametrize("kwargs", [{"delay_ms": -1}, {"max_runs": 0}, {"max_custodians": 0}])
def test_aggregator_config_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        SignalAggregator(**kwargs)


@pytest.mark.parametrize("types", [None, ION_ADMIN_RECORD_TYPES])
def test_signals_survive_the_admin_record_codec(types: object) -> None:
    agg = SignalAggregator()
    for tid in (1, 2, 3, 7, 5, 6, 300, 2**40):
        agg.add(A, tid, D.ACCEPTED, 0)
    [(_, sig)] = agg.flush_all()
    kwargs = {} if types is None else {"types": types}
    assert decode_admin_record(encode_admin_record(sig, **kwargs), **kwargs) == sig  # type: ignore[arg-type]


# -- both ends over the real wire format ----------------------------------------------------------


def test_ledger_and_aggregator_over_bibe_bundles() -> None:
    """Custodian A sends two bundles in BPDUs to B; B's aggregator answers with one signal
    that releases both, all through the encoders and decoders."""
    sender, receiver = "ipn:1.0", "ipn:2.0"
    book = ledger()
    agg = SignalAggregator(delay_ms=200)
    inner = [
        Bundle.create(
            source="ipn:1.1",
            destination="ipn:9.1",
            payload=b"x" * i,
            creation_time=754_999_990_000,
            sequence=i,
        )
        for i in range(2)
    ]
    wire = []
    for i, bundle in enumerate(inner):
        tx, deadline = book.send(str(bundle.id), receiver, now=1000)
        pdu = bibe_encapsulate(bundle, transmission_id=tx, retransmission_time=deadline)
        outer = admin_bundle(
            pdu,
            source=sender,
            destination=receiver,
            creation_time=754_999_990_000,
            sequence=100 + i,
        )
        wire.append(encode_bundle(outer))

    for data in wire:  # the receiver: decode, "persist", then owe a signal
        record = read_admin_record(decode_bundle(data))
        assert isinstance(record, BibePdu) and record.custody_requested
        assert (
            agg.add(
                str(decode_bundle(data).primary.source), record.transmission_id, D.ACCEPTED, 1100
            )
            == []
        )
    [(to, sig)] = agg.handle_timer(1300)
    assert to == sender
    answer = encode_bundle(
        admin_bundle(sig, source=receiver, destination=to, creation_time=754_999_990_300)
    )
    got = read_admin_record(decode_bundle(answer))
    assert isinstance(got, CustodySignal)
    out = book.on_signal(receiver, got, 1400)
    assert sorted(o.bundle_id for o in out) == sorted(str(b.id) for b in inner)
    assert all(o.released for o in out)
    assert len(book) == 0 and book.get_timer() is None
