"""Properties of BPv7 administrative records: round trips, run aggregation, hostile input."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv7.admin import (
    DEFAULT_ADMIN_RECORD_TYPES,
    ION_ADMIN_RECORD_TYPES,
    AdminRecord,
    AdminRecordTypes,
    StatusItem,
    StatusReport,
    UnknownAdminRecord,
    decode_admin_record,
    encode_admin_record,
)
from dtncloud.bpv7.bibe import BibePdu, CustodySignal, custody_signal_for
from dtncloud.cborutil import MAX_UINT64
from dtncloud.eid import DTN_NONE, EID
from dtncloud.errors import AdminRecordError

uints = st.one_of(st.integers(0, 30), st.integers(0, 2**16), st.integers(0, MAX_UINT64))
types_in_use = st.sampled_from([DEFAULT_ADMIN_RECORD_TYPES, ION_ADMIN_RECORD_TYPES])
eids = st.one_of(
    st.just(DTN_NONE),
    st.builds(lambda n, s: EID.parse(f"ipn:{n}.{s}"), uints, uints),
    st.from_regex(r"dtn://[a-zA-Z0-9.-]{1,20}/[!-~]{0,20}", fullmatch=True).map(EID.parse),
)
status_items = st.one_of(
    st.just(StatusItem(False)),
    st.just(StatusItem(True)),
    st.builds(StatusItem, st.just(True), uints),
)


@st.composite
def status_reports(draw: st.DrawFn) -> StatusReport:
    fragment = draw(st.booleans())
    return StatusReport(
        received=draw(status_items),
        forwarded=draw(status_items),
        delivered=draw(status_items),
        deleted=draw(status_items),
        reason=draw(uints),
        subject_source=draw(eids),
        subject_creation_time=draw(uints),
        subject_sequence=draw(uints),
        subject_fragment_offset=draw(uints) if fragment else None,
        subject_payload_length=draw(uints) if fragment else None,
    )


@st.composite
def runs(draw: st.DrawFn) -> tuple[int, int]:
    first = draw(uints)
    count = draw(st.integers(1, min(2**20, MAX_UINT64 - first + 1)))
    return first, count


bibe_pdus = st.builds(BibePdu, uints, uints, st.binary(max_size=300))
custody_signals = st.builds(
    CustodySignal, st.integers(0, 300), st.lists(runs(), max_size=20).map(tuple)
)
# Any CBOR value cbor2 can write: the content of records nobody has defined yet.
cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=5)
    ),
    max_leaves=20,
)
unknown_records = st.builds(
    UnknownAdminRecord,
    st.integers(0, MAX_UINT64).filter(lambda t: t not in (1, 3, 4, 7, 8)),
    cbor_values.map(lambda value: cbor2.dumps(value, canonical=True)),
)
records: st.SearchStrategy[AdminRecord] = st.one_of(
    status_reports(), bibe_pdus, custody_signals, unknown_records
)


@given(records, types_in_use)
def test_round_trip(record: AdminRecord, types: AdminRecordTypes) -> None:
    raw = encode_admin_record(record, types)
    decoded = decode_admin_record(raw, types)
    assert decoded == record
    assert type(decoded) is type(record)
    assert encode_admin_record(decoded, types) == raw


@given(st.one_of(status_reports(), bibe_pdus, custody_signals))
def test_known_records_are_deterministic_cbor(record: AdminRecord) -> None:
    raw = encode_admin_record(record)
    assert cbor2.dumps(cbor2.loads(raw), canonical=True) == raw


@given(
    st.lists(
        st.one_of(st.integers(0, 64), st.integers(MAX_UINT64 - 64, MAX_UINT64), uints), max_size=60
    )
)
def test_run_aggregation(ids: list[int]) -> None:
    signal = custody_signal_for(ids)
    scope = signal.scope
    assert set(signal.transmission_ids()) == set(ids)
    assert sum(count for _, count in scope) == len(set(ids))
    for (first, count), (next_first, _) in itertools.pairwise(scope):
        # Sorted, disjoint, and maximal: at least one missing ID between two runs.
        assert first + count < next_first
    for first, count in scope:
        assert count >= 1
        assert signal.covers(first) and signal.covers(first + count - 1)
        assert not signal.covers(first - 1) and not signal.covers(first + count)
    assert all(signal.covers(i) for i in ids)
    assert decode_admin_record(encode_admin_record(signal)) == signal


@given(st.binary(max_size=200), types_in_use)
def test_arbitrary_bytes_only_raise_admin_record_error(raw: bytes, types: AdminRecordTypes) -> None:
    try:
        record = decode_admin_record(raw, types)
    except AdminRecordError:
        return
    assert decode_admin_record(encode_admin_record(record, types), types) == record


@given(st.sampled_from([1, 3, 4, 7, 8, 200]), cbor_values, types_in_use)
def test_arbitrary_content_only_raises_admin_record_error(
    record_type: int, content: Any, types: AdminRecordTypes
) -> None:
    raw = cbor2.dumps([record_type, content])
    try:
        record = decode_admin_record(raw, types)
    except AdminRecordError:
        return
    assert decode_admin_record(encode_admin_record(record, types), types) == record


@given(records, st.data())
def test_damaged_records_only_raise_admin_record_error(
    record: AdminRecord, data: st.DataObject
) -> None:
    raw = bytearray(encode_admin_record(record))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(AdminRecordError):
        decode_admin_record(bytes(raw))
