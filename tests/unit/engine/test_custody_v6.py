"""RFC 5050 custody helpers (dtncloud.engine.custody_v6)."""

from __future__ import annotations

import dataclasses

import pytest

from dtncloud import bpv6
from dtncloud.bpv6 import BundleFlag, CustodySignalReason, DtnTime
from dtncloud.bpv7.bibe import CustodyDisposition
from dtncloud.engine.custody import CustodyLedger, CustodyOutcome
from dtncloud.engine.custody_v6 import (
    custody_requested_v6,
    custody_signal_bundle_v6,
    custody_signal_v6,
    disposition_of_v6,
    dtn_time_v6,
    signal_subject_id,
    take_custody_v6,
)
from tests.vectors import load_vectors

D = CustodyDisposition
R = CustodySignalReason
CUSTODY = (
    BundleFlag.CUSTODY_REQUESTED | BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL
)


def subject(**changes: object) -> bpv6.Bundle:
    bundle = bpv6.Bundle.create(
        source="ipn:11.64",
        destination="ipn:5.1",
        payload=b"hello custody",
        creation_time=731539820,
        sequence=377,
        custodian="ipn:32969.0",
        flags=CUSTODY,
        cbhe=True,
    )
    return dataclasses.replace(bundle, **changes)  # type: ignore[arg-type]


def test_dtn_time_v6() -> None:
    assert dtn_time_v6(0) == DtnTime(0, 0)
    assert dtn_time_v6(731_540_048_000) == DtnTime(731_540_048, 0)
    assert dtn_time_v6(1_500) == DtnTime(1, 500_000_000)
    assert dtn_time_v6(999) == DtnTime(0, 999_000_000)
    with pytest.raises(ValueError):
        dtn_time_v6(-1)


def test_reproduces_the_dtnme_custody_signal_vector() -> None:
    """DTNME's signal (redundant reception) rebuilt from its subject, byte for byte."""
    vector = load_vectors("bpv6_rfc5050_custody_signal")
    captured = bpv6.decode_bundle(bytes.fromhex(vector["bundle_hex"]))
    ours = custody_signal_bundle_v6(
        subject(),
        succeeded=False,
        reason=R.REDUNDANT_RECEPTION,
        local_node="ipn:32768.0",
        now_dtn_ms=731_540_048_000,
        sequence=71325,
    )
    assert ours.payload.hex() == vector["payload_block"]["adu_hex"]
    for field in ("flags", "destination", "source", "report_to", "custodian", "creation_time",
                  "sequence", "lifetime", "cbhe"):  # fmt: skip
        assert getattr(ours, field) == getattr(captured, field), field
    # DTNME adds a previous-hop and an extended-class-of-service block; we add none.
    assert ours.extension_blocks == ()
    assert bpv6.decode_bundle(bpv6.encode_bundle(ours)) == ours


def test_the_vector_signal_releases_custody() -> None:
    vector = load_vectors("bpv6_rfc5050_custody_signal")
    captured = bpv6.decode_bundle(bytes.fromhex(vector["bundle_hex"]))
    record = bpv6.decode_admin_record(captured.payload)
    assert isinstance(record, bpv6.CustodySignal)
    key = signal_subject_id(record)
    assert key == "ipn:11.64@731539820.377" == str(subject().bundle_id)
    assert disposition_of_v6(record) is D.REDUNDANT_RECEPTION

    book = CustodyLedger()
    tx, _ = book.send(key, "ipn:32768.0", now=731_539_900_000)
    outcome = book.settle(key, disposition_of_v6(record))
    assert outcome == CustodyOutcome(key, tx, D.REDUNDANT_RECEPTION, True)
    assert key not in book


def test_signal_round_trips_through_the_bpv6_codec() -> None:
    bundle = custody_signal_bundle_v6(
        subject(),
        succeeded=True,
        local_node="ipn:7.0",
        now_dtn_ms=731_540_100_250,
        sequence=4,
        lifetime=3600,
    )
    decoded = bpv6.decode_bundle(bpv6.encode_bundle(bundle))
    assert decoded == bundle
    assert decoded.is_admin_record
    assert decoded.destination == "ipn:32969.0" and decoded.source == "ipn:7.0"
    assert (decoded.creation_time, decoded.sequence, decoded.lifetime) == (731_540_100, 4, 3600)
    record = bpv6.decode_admin_record(decoded.payload)
    assert record == bpv6.CustodySignal(
        succeeded=True,
        reason=R.NO_ADDITIONAL_INFORMATION,
        signal_time=DtnTime(731_540_100, 250_000_000),
        subject=bpv6.BundleId("ipn:11.64", 731539820, 377),
    )
    assert isinstance(record, bpv6.CustodySignal)
    assert disposition_of_v6(record) is D.ACCEPTED


def test_signal_bundle_asks_for_nothing_and_keeps_the_priority() -> None:
    expedited = (CUSTODY & ~BundleFlag.PRIORITY_MASK) | BundleFlag.PRIORITY_EXPEDITED
    flags = expedited | BundleFlag.REPORT_DELIVERY | BundleFlag.REPORT_CUSTODY_ACCEPTANCE
    bundle = custody_signal_bundle_v6(
        subject(flags=flags), succeeded=True, local_node="ipn:7.0", now_dtn_ms=1
    )
    assert bundle.flags == (
        BundleFlag.ADMIN_RECORD | BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_EXPEDITED
    )
    assert not custody_requested_v6(bundle)
    assert bpv6.validity_problems(bundle) == []


def test_signal_about_a_fragment_names_offset_and_length() -> None:
    whole = subject(cbhe=False)
    fragment = dataclasses.replace(
        whole,
        flags=whole.flags | BundleFlag.IS_FRAGMENT,
        fragment_offset=100,
        total_adu_length=1000,
    )
    bundle = custody_signal_bundle_v6(
        fragment,
        succeeded=False,
        reason=R.DEPLETED_STORAGE,
        local_node="dtn://relay/",
        now_dtn_ms=5_000,
    )
    assert not bundle.cbhe
    record = bpv6.decode_admin_record(bpv6.decode_bundle(bpv6.encode_bundle(bundle)).payload)
    assert isinstance(record, bpv6.CustodySignal)
    assert record.subject == fragment.bundle_id
    assert signal_subject_id(record) == str(fragment.bundle_id) == "ipn:11.64@731539820.377/100+13"
    assert disposition_of_v6(record) is D.DEPLETED_STORAGE


def test_cbhe_only_when_every_eid_allows_it() -> None:
    dtn_node = custody_signal_bundle_v6(
        subject(), succeeded=True, local_node="dtn://me/", now_dtn_ms=0
    )
    assert not dtn_node.cbhe
    bpv6.decode_bundle(bpv6.encode_bundle(dtn_node))
    dictionary_subject = custody_signal_bundle_v6(
        subject(cbhe=False), succeeded=True, local_node="ipn:7.0", now_dtn_ms=0
    )
    assert not dictionary_subject.cbhe


def test_signal_needs_a_custodian_and_a_7_bit_reason() -> None:
    with pytest.raises(ValueError, match="no custodian"):
        custody_signal_bundle_v6(
            subject(custodian="dtn:none"), succeeded=True, local_node="ipn:7.0", now_dtn_ms=0
        )
    for bad in (128, -1, True):
        with pytest.raises(ValueError, match="reason"):
            custody_signal_bundle_v6(
                subject(), succeeded=False, reason=bad, local_node="ipn:7.0", now_dtn_ms=0
            )


def test_custody_signal_v6_record() -> None:
    record = custody_signal_v6(subject(), succeeded=False, reason=7, now_dtn_ms=2_001)
    assert record == bpv6.CustodySignal(False, 7, DtnTime(2, 1_000_000), subject().bundle_id)


def test_take_custody_replaces_only_the_custodian() -> None:
    original = subject()
    taken = take_custody_v6(original, "ipn:7.0")
    assert taken.custodian == "ipn:7.0"
    assert taken.flags == original.flags and custody_requested_v6(taken)
    assert dataclasses.replace(taken, custodian=original.custodian) == original
    assert bpv6.decode_bundle(bpv6.encode_bundle(taken)) == taken


def test_take_custody_leaves_cbhe_for_a_dtn_scheme_node() -> None:
    taken = take_custody_v6(subject(), "dtn://relay/")
    assert taken.custodian == "dtn://relay/" and not taken.cbhe
    decoded = bpv6.decode_bundle(bpv6.encode_bundle(taken))
    assert decoded.custodian == "dtn://relay/" and decoded.bundle_id == subject().bundle_id


def test_custody_requested_v6() -> None:
    assert custody_requested_v6(subject())
    assert not custody_requested_v6(subject(flags=BundleFlag.SINGLETON_DESTINATION))


@pytest.mark.parametrize(
    ("succeeded", "reason", "expected"),
    [
        (True, 0, D.ACCEPTED),
        (True, 3, D.ACCEPTED),
        (False, 0, D.NO_FURTHER_INFORMATION),
        (False, 3, D.REDUNDANT_RECEPTION),
        (False, 4, D.DEPLETED_STORAGE),
        (False, 5, D.DESTINATION_EID_UNINTELLIGIBLE),
        (False, 6, D.NO_KNOWN_ROUTE),
        (False, 7, D.NO_TIMELY_CONTACT),
        (False, 8, D.BLOCK_UNINTELLIGIBLE),
        (False, 99, 99),
    ],
)
def test_disposition_of_v6(succeeded: bool, reason: int, expected: int) -> None:
    record = bpv6.CustodySignal(succeeded, reason, DtnTime(0), bpv6.BundleId("ipn:1.1", 1, 2))
    assert disposition_of_v6(record) == expected
    book = CustodyLedger()
    book.send("ipn:1.1@1.2", "anyone", 0)
    outcome = book.settle(signal_subject_id(record), disposition_of_v6(record))
    assert outcome is not None
    assert outcome.released == (expected in (D.ACCEPTED, D.REDUNDANT_RECEPTION))
