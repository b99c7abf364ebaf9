"""Property tests for the BPv6 codec: round trips of valid bundles and admin records, and
nothing but the documented errors for arbitrary or damaged bytes."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv6 import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    BundleStatusReport,
    CanonicalBlock,
    CustodySignal,
    DtnTime,
    SdnvError,
    decode_admin_record,
    decode_bundle,
    decode_sdnv,
    encode_admin_record,
    encode_bundle,
    encode_sdnv,
)
from dtncloud.errors import AdminRecordError, BundleDecodeError, BundleTooLarge

U64 = st.integers(0, (1 << 64) - 1)
SMALL = st.integers(0, 1 << 20)
NUMBER = st.one_of(SMALL, U64)

# -- EIDs ------------------------------------------------------------------------------------

SCHEME = st.from_regex(r"[a-z][a-z0-9+.\-]{0,7}", fullmatch=True)
# Any ASCII but NUL, ':' included: only the first ':' separates scheme and SSP.
SSP = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=24)
IPN = st.builds(lambda n, s: f"ipn:{n}.{s}", NUMBER, NUMBER).filter(lambda e: e != "ipn:0.0")
CBHE_EID = st.one_of(st.just("dtn:none"), IPN)
EID = st.one_of(
    st.just("dtn:none"),
    IPN,
    st.builds(lambda node, app: f"dtn://{node}/{app}", SCHEME, SCHEME),
    st.builds(lambda scheme, ssp: f"{scheme}:{ssp}", SCHEME, SSP),
)

# -- admin records ---------------------------------------------------------------------------

TIME = st.builds(DtnTime, NUMBER, st.one_of(st.integers(0, 999_999_999), U64))
MAYBE_TIME = st.none() | TIME


@st.composite
def subjects(draw: st.DrawFn) -> BundleId:
    source = draw(EID)
    creation_time, sequence = draw(NUMBER), draw(NUMBER)
    if draw(st.booleans()):
        return BundleId(source, creation_time, sequence, draw(NUMBER), draw(NUMBER))
    return BundleId(source, creation_time, sequence)


ADMIN_RECORDS = st.one_of(
    st.builds(
        BundleStatusReport,
        reason=st.integers(0, 255),
        subject=subjects(),
        received_at=MAYBE_TIME,
        custody_accepted_at=MAYBE_TIME,
        forwarded_at=MAYBE_TIME,
        delivered_at=MAYBE_TIME,
        deleted_at=MAYBE_TIME,
    ),
    st.builds(
        CustodySignal,
        succeeded=st.booleans(),
        reason=st.integers(0, 127),
        signal_time=TIME,
        subject=subjects(),
    ),
)

# -- bundles ---------------------------------------------------------------------------------

NO_LAST = ~int(BlockFlag.LAST_BLOCK)
BLOCK_FLAGS = st.one_of(st.integers(0, 0x7F), U64).map(lambda f: f & NO_LAST)


@st.composite
def extension_blocks(draw: st.DrawFn, cbhe: bool) -> CanonicalBlock:
    block_type = draw(st.integers(0, 255).filter(lambda t: t != BlockType.PAYLOAD))
    flags = draw(BLOCK_FLAGS) & ~int(BlockFlag.HAS_EID_REFERENCES)
    refs: tuple[str, ...] = ()
    if not cbhe and draw(st.booleans()):
        flags |= BlockFlag.HAS_EID_REFERENCES
        refs = tuple(draw(st.lists(EID, max_size=4)))
    return CanonicalBlock(block_type, draw(st.binary(max_size=40)), BlockFlag(flags), refs)


@st.composite
def bundles(draw: st.DrawFn, admin_record: bool = False) -> Bundle:
    """Valid bundles: every flag combination the RFC 5050 rules allow, with or without CBHE,
    fragments, extension blocks with and without EID references, admin-record payloads.
    With ``admin_record`` every bundle carries a status report or custody signal."""
    cbhe = draw(st.booleans())
    eid = CBHE_EID if cbhe else EID
    source = draw(eid)
    flags = draw(st.one_of(st.integers(0, (1 << 21) - 1), U64)) & ~int(BundleFlag.IS_FRAGMENT)
    if admin_record:
        flags |= BundleFlag.ADMIN_RECORD
    admin = bool(flags & BundleFlag.ADMIN_RECORD)
    forbidden = int(BundleFlag.CUSTODY_REQUESTED | BundleFlag.REPORTS)
    if admin or source == "dtn:none":
        flags &= ~forbidden
    if source == "dtn:none":
        flags |= BundleFlag.MUST_NOT_FRAGMENT
    if admin_record or (admin and draw(st.booleans())):
        payload = encode_admin_record(draw(ADMIN_RECORDS))
    else:
        payload = draw(st.binary(max_size=200))
    extensions = draw(st.lists(extension_blocks(cbhe), max_size=4))
    position = draw(st.integers(0, len(extensions)))
    blocks = [
        *extensions[:position],
        CanonicalBlock(BlockType.PAYLOAD, payload, BlockFlag(draw(BLOCK_FLAGS))),
        *extensions[position:],
    ]
    # RFC 5050 4.3: blocks after the payload are not replicated; an admin record's blocks
    # do not ask for reports.
    for i, block in enumerate(blocks):
        block_flags = int(block.flags)
        if i > position:
            block_flags &= ~int(BlockFlag.REPLICATE)
        if admin:
            block_flags &= ~int(BlockFlag.REPORT_IF_UNPROCESSABLE)
        blocks[i] = replace(block, flags=BlockFlag(block_flags))
    fragment_offset = total_adu_length = None
    if draw(st.booleans()):
        flags |= BundleFlag.IS_FRAGMENT
        fragment_offset = draw(st.integers(0, 1 << 40))
        total_adu_length = fragment_offset + len(payload) + draw(st.integers(0, 1 << 40))
    return Bundle(
        flags=BundleFlag(flags),
        destination=draw(eid),
        source=source,
        report_to=draw(eid),
        custodian=draw(eid),
        creation_time=draw(NUMBER),
        sequence=draw(NUMBER),
        lifetime=draw(NUMBER),
        blocks=tuple(blocks),
        fragment_offset=fragment_offset,
        total_adu_length=total_adu_length,
        cbhe=cbhe,
    )


# -- round trips -----------------------------------------------------------------------------


@given(bundles())
def test_bundle_round_trip(bundle: Bundle) -> None:
    encoded = encode_bundle(bundle)
    decoded = decode_bundle(encoded)
    assert decoded == bundle
    assert encode_bundle(decoded) == encoded


@given(bundles(admin_record=True))
def test_admin_record_bundle_round_trip(bundle: Bundle) -> None:
    decoded = decode_bundle(encode_bundle(bundle))
    assert decoded.is_admin_record
    record = decode_admin_record(decoded.payload)
    assert encode_admin_record(record) == bundle.payload


@given(ADMIN_RECORDS)
def test_admin_record_round_trip(record: BundleStatusReport | CustodySignal) -> None:
    encoded = encode_admin_record(record)
    assert decode_admin_record(encoded) == record
    if isinstance(record, BundleStatusReport):
        assert encoded[1] == record.status


@given(U64)
def test_sdnv_round_trip(value: int) -> None:
    encoded = encode_sdnv(value)
    assert decode_sdnv(encoded) == (value, len(encoded))
    assert encoded[-1] < 0x80 and all(b >= 0x80 for b in encoded[:-1])
    assert len(encoded) == 1 or encoded[0] != 0x80  # minimal


@given(st.binary(max_size=16))
def test_sdnv_decode_matches_the_definition(data: bytes) -> None:
    # RFC 6256 read literally: bytes up to and including the first without the high bit.
    end = next((i + 1 for i, b in enumerate(data) if b < 0x80), None)
    try:
        value, used = decode_sdnv(data)
    except SdnvError:
        assert end is None or end > 10 or _groups(data[:end]) >= 1 << 64
        return
    assert used == end and value == _groups(data[:end])


def _groups(data: bytes) -> int:
    value = 0
    for b in data:
        value = value << 7 | b & 0x7F
    return value


@given(bundles())
def test_block_limit(bundle: Bundle) -> None:
    encoded = encode_bundle(bundle)
    count = len(bundle.blocks)
    assert decode_bundle(encoded, max_blocks=count) == bundle
    try:
        decode_bundle(encoded, max_blocks=count - 1)
    except BundleTooLarge as exc:
        assert exc.reason == 4
    else:
        raise AssertionError("max_blocks was not enforced")


@given(bundles(), st.data())
def test_every_truncation_fails(bundle: Bundle, data: st.DataObject) -> None:
    encoded = encode_bundle(bundle)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decode_bundle(encoded[:cut])
    except BundleDecodeError as exc:
        assert exc.reason == 8
    else:
        raise AssertionError(f"a {cut}-byte prefix of a {len(encoded)}-byte bundle decoded")


# -- hostile input ---------------------------------------------------------------------------


def _decodes_or_fails_cleanly(data: bytes) -> None:
    """decode_bundle either returns a bundle that round-trips or raises BundleDecodeError."""
    try:
        bundle = decode_bundle(data)
    except BundleDecodeError as exc:
        assert exc.reason in (4, 8)
        return
    assert decode_bundle(encode_bundle(bundle)) == bundle


@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _decodes_or_fails_cleanly(data)
    _decodes_or_fails_cleanly(b"\x06" + data)


MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.integers(0, 1 << 16),
    st.integers(0, 255),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        i = where % (len(buf) + 1)
        if kind == "insert":
            buf[i:i] = bytes((value,))
        elif kind == "truncate":
            del buf[i:]
        elif i < len(buf):
            if kind == "flip":
                buf[i] ^= 1 << (value % 8)
            elif kind == "set":
                buf[i] = value
            else:
                del buf[i]
    return bytes(buf)


@given(bundles(), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_bundles(bundle: Bundle, mutations: list[tuple[str, int, int]]) -> None:
    _decodes_or_fails_cleanly(_mutate(encode_bundle(bundle), mutations))


@given(st.binary(max_size=100))
def test_arbitrary_admin_records(data: bytes) -> None:
    for candidate in (data, b"\x20" + data, b"\x11" + data):
        try:
            record = decode_admin_record(candidate)
        except AdminRecordError:
            continue
        assert encode_admin_record(record) == candidate


@given(ADMIN_RECORDS, st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_admin_records(
    record: BundleStatusReport | CustodySignal, mutations: list[tuple[str, int, int]]
) -> None:
    damaged = _mutate(encode_admin_record(record), mutations)
    try:
        decoded = decode_admin_record(damaged)
    except AdminRecordError:
        return
    assert decode_admin_record(encode_admin_record(decoded)) == decoded
