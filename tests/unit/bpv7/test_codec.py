"""Unit tests of the BPv7 codec: each validity rule of validate.py, each error path of
decode.py, the encodings RFC 9171 lets a receiver accept, bounded decoding, and the encoder.

Every "rule" test starts from a bundle that passes and changes one thing, so that it fails
for the reason it names and no other. Raw inputs are built with cbor2 or the tests' own
encoder (tests.strategies.raw_encode), never with the encoder under test.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from dtncloud.bpv7 import (
    DEFAULT_MAX_BLOCKS,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    PrimaryBlock,
    bundle_age_block,
    check_bundle,
    decode_bundle,
    encode_block,
    encode_block_header,
    encode_bundle,
    encode_primary,
    encoded_size,
    hop_count_block,
    payload_block,
    previous_node_block,
    read_bundle_age,
    read_previous_node,
)
from dtncloud.eid import DTN_NONE, DtnEID, IpnEID
from dtncloud.errors import (
    BundleDecodeError,
    BundleEncodeError,
    BundleTooLarge,
    CrcMismatch,
    InvalidBundle,
)
from tests.strategies import bib_asb, raw_encode, reference_crc16_x25, with_reference_crc
from tests.vectors import load_vectors

BLOCK_UNINTELLIGIBLE = 8
DEPLETED_STORAGE = 4
CREATED = 755_000_000_000  # DTN ms, 2023-12-05
SRC = IpnEID(1, 1)
DST = DtnEID("//dst/app")


def base_bundle(**primary_changes: Any) -> Bundle:
    """A valid bundle with every RFC 9171 extension block and an unknown one."""
    bundle = Bundle.create(
        source=SRC,
        destination=DST,
        payload=b"payload",
        creation_time=CREATED,
        sequence=3,
        hop_limit=30,
        bundle_age=1234,
        extension_blocks=[
            previous_node_block(IpnEID(7, 0), 0),
            CanonicalBlock(200, 0, b"\x01\x02\x03", BlockFlag.DISCARD_IF_UNPROCESSABLE),
        ],
    )
    return bundle.with_primary(**primary_changes) if primary_changes else bundle


def anonymous_bundle(**primary_changes: Any) -> Bundle:
    bundle = Bundle.create(source=DTN_NONE, destination=DST, payload=b"x", creation_time=CREATED)
    return bundle.with_primary(**primary_changes) if primary_changes else bundle


def admin_bundle(**primary_changes: Any) -> Bundle:
    bundle = Bundle.create(
        source=SRC,
        destination=DST,
        payload=b"\x82\x01\x80",
        creation_time=CREATED,
        flags=BundleFlag.ADMIN_RECORD,
    )
    return bundle.with_primary(**primary_changes) if primary_changes else bundle


def simple(payload: bytes = b"x", **options: Any) -> Bundle:
    """A bundle with only a payload block (``options`` go to Bundle.create)."""
    return Bundle.create(
        source=SRC, destination=DST, payload=payload, creation_time=CREATED, **options
    )


def with_block(bundle: Bundle, block: CanonicalBlock) -> Bundle:
    return bundle.with_blocks((block, *bundle.blocks))


def set_block(bundle: Bundle, type_code: int, **changes: Any) -> Bundle:
    return bundle.with_blocks(
        b.replace(**changes) if b.type_code == type_code else b for b in bundle.blocks
    )


def test_base_bundles_are_valid() -> None:
    for bundle in (base_bundle(), anonymous_bundle(), admin_bundle()):
        check_bundle(bundle)
        assert decode_bundle(encode_bundle(bundle)) == bundle


# -- validity rules ----------------------------------------------------------------------------

LAST = r"last block must be the payload block, numbered 1"
REPORTS = r"anonymous or administrative-record bundle must not request status reports"
NO_CRC = r"primary block needs a CRC unless a BIB covers it"
ANON_BLOCK = r"block 5 requests a status report, which an anonymous bundle must not"
ADMIN_BLOCK = r"block 5 requests a status report, which an administrative-record bundle must not"
FLAG_NO_FIELDS = r"is-fragment flag is set but the fragment fields are missing"
FIELDS_NO_FLAG = r"fragment fields are present but the is-fragment flag is clear"
REPORT_BLOCK = CanonicalBlock(201, 5, b"", BlockFlag.REPORT_IF_UNPROCESSABLE)
# Encoded, a bundle whose fragment fields and flag disagree breaks the primary block's shape
# (its item count follows the flag), which the decoder sees first.
SHAPE_9_FOR_11 = (BundleDecodeError, r"has 9 items, but its flags and CRC type call for 11")
SHAPE_11_FOR_9 = (BundleDecodeError, r"has 11 items, but its flags and CRC type call for 9")


def ext(block: CanonicalBlock) -> Bundle:
    return with_block(base_bundle(), block)


def btsd(type_code: int, data_hex: str) -> Bundle:
    return set_block(base_bundle(), type_code, data=bytes.fromhex(data_hex))


def rotated() -> Bundle:
    blocks = base_bundle().blocks
    return base_bundle().with_blocks((blocks[-1], *blocks[:-1]))


def rule(
    name: str,
    make: Callable[[], Bundle],
    pattern: str,
    relaxed: bool = False,
    decoder: tuple[type[BundleDecodeError], str] | None = None,
) -> Any:
    """One broken rule: the bundle, the message, whether lenient mode forgives it, and what
    the decoder says when that differs from check_bundle."""
    return pytest.param(make, pattern, relaxed, decoder or (InvalidBundle, pattern), id=name)


RULES = [
    rule(
        "no blocks",
        lambda: base_bundle().with_blocks(()),
        r"needs a payload block",
        decoder=(BundleDecodeError, r"needs a primary block and a payload block"),
    ),
    rule("payload not last", rotated, LAST),
    rule("payload numbered 2", lambda: set_block(base_bundle().remove_block(2), 1, number=2), LAST),
    rule("payload numbered 0", lambda: set_block(base_bundle(), 1, number=0), LAST),
    rule("no payload block", lambda: base_bundle().with_blocks(base_bundle().blocks[:-1]), LAST),
    rule(
        "two payloads", lambda: ext(payload_block(b"2").replace(number=9)), r"exactly one payload"
    ),
    rule("extension numbered 1", lambda: ext(CanonicalBlock(201, 1, b"")), r"number 1 is reserved"),
    rule(
        "extension numbered 0",
        lambda: ext(CanonicalBlock(201, 0, b"")),
        r"0 belongs to the primary",
    ),
    rule("duplicate number", lambda: ext(CanonicalBlock(201, 2, b"")), r"number 2 is used twice"),
    rule(
        "type code 0",
        lambda: ext(CanonicalBlock(0, 9, b"")),
        r"block 9 has the reserved type code 0",
    ),
    rule(
        "two previous nodes", lambda: ext(previous_node_block(SRC, 9)), r"one PREVIOUS_NODE block"
    ),
    rule("two bundle ages", lambda: ext(bundle_age_block(5, 9)), r"more than one BUNDLE_AGE block"),
    rule("two hop counts", lambda: ext(hop_count_block(5, 0, 9)), r"more than one HOP_COUNT block"),
    rule("hop limit 0", lambda: btsd(10, "820000"), r"hop limit 0 is outside 1..255"),
    rule("hop limit 256", lambda: btsd(10, "8219010000"), r"hop limit 256 is outside 1..255"),
    rule("hop count 3 items", lambda: btsd(10, "83010000"), r"hop count block \d+ must hold \["),
    rule("hop count negative", lambda: btsd(10, "820520"), r"hop count block \d+ must hold \["),
    rule(
        "hop count truncated", lambda: btsd(10, "8205"), r"hop count block \d+ does not hold valid"
    ),
    rule(
        "bundle age text", lambda: btsd(7, "6161"), r"age block \d+ must hold an unsigned integer"
    ),
    rule(
        "bundle age negative", lambda: btsd(7, "20"), r"age block \d+ must hold an unsigned integer"
    ),
    rule("bundle age empty", lambda: btsd(7, ""), r"bundle age block \d+ does not hold valid CBOR"),
    rule(
        "previous node scheme 3",
        lambda: btsd(6, "820300"),
        r"node block \d+: unsupported EID scheme",
    ),
    rule("previous node truncated", lambda: btsd(6, "8201"), r"node block \d+ does not hold valid"),
    rule(
        "fragment flag, no fields",
        lambda: base_bundle(flags=BundleFlag.IS_FRAGMENT),
        FLAG_NO_FIELDS,
        decoder=SHAPE_9_FOR_11,
    ),
    rule(
        "fragment fields, no flag",
        lambda: base_bundle(fragment_offset=0, total_adu_length=100),
        FIELDS_NO_FLAG,
        decoder=SHAPE_11_FOR_9,
    ),
    rule(
        "fragment beyond total",
        lambda: base_bundle(flags=BundleFlag.IS_FRAGMENT, fragment_offset=94, total_adu_length=100),
        r"fragment extends beyond the total ADU length",
    ),
    rule(
        "must-not-fragment fragment",
        lambda: base_bundle(
            flags=BundleFlag.IS_FRAGMENT | BundleFlag.MUST_NOT_FRAGMENT,
            fragment_offset=0,
            total_adu_length=100,
        ),
        r"a fragment cannot be flagged must-not-fragment",
    ),
    rule(
        "anonymous, fragmentable",
        lambda: anonymous_bundle(flags=BundleFlag.NONE),
        r"anonymous bundle \(source dtn:none\) must be must-not-fragment",
        relaxed=True,
    ),
    *[
        rule(
            f"anonymous requests {flag.name}",
            lambda flag=flag: anonymous_bundle(flags=BundleFlag.MUST_NOT_FRAGMENT | flag),
            REPORTS,
            relaxed=True,
        )
        for flag in BundleFlag.REPORTS
    ],
    *[
        rule(
            f"admin record requests {flag.name}",
            lambda flag=flag: admin_bundle(flags=BundleFlag.ADMIN_RECORD | flag),
            REPORTS,
            relaxed=True,
        )
        for flag in BundleFlag.REPORTS
    ],
    rule(
        "anonymous payload report flag",
        lambda: set_block(anonymous_bundle(), 1, flags=BlockFlag.REPORT_IF_UNPROCESSABLE),
        ANON_BLOCK.replace("5", "1"),
        relaxed=True,
    ),
    rule(
        "anonymous block report flag",
        lambda: with_block(anonymous_bundle(), REPORT_BLOCK),
        ANON_BLOCK,
        relaxed=True,
    ),
    rule(
        "admin block report flag",
        lambda: with_block(admin_bundle(), REPORT_BLOCK),
        ADMIN_BLOCK,
        relaxed=True,
    ),
    rule(
        "creation time 0, no age",
        lambda: base_bundle(creation_time=0).remove_block(5),
        r"creation time 0 \(no accurate clock\) needs a bundle age block",
        relaxed=True,
    ),
    rule("no primary CRC", lambda: base_bundle(crc_type=CrcType.NONE), NO_CRC, relaxed=True),
    rule(
        "no primary CRC, BIB over others",
        lambda: with_block(
            base_bundle(crc_type=CrcType.NONE),
            CanonicalBlock(11, 9, bib_asb([1, 2], SRC, [b"m", b"n"])),
        ),
        NO_CRC,
        relaxed=True,
    ),
]


def test_rule_bundles_number_their_blocks_as_assumed() -> None:
    numbers = {b.type_code: b.number for b in base_bundle().blocks}
    assert numbers == {6: 2, 200: 3, 10: 4, 7: 5, 1: 1}


@pytest.mark.parametrize(("make", "pattern", "relaxed", "decoder"), RULES)
def test_check_bundle_names_the_broken_rule(
    make: Callable[[], Bundle], pattern: str, relaxed: bool, decoder: object
) -> None:
    bundle = make()
    with pytest.raises(InvalidBundle, match=pattern) as caught:
        check_bundle(bundle)
    assert caught.value.reason == BLOCK_UNINTELLIGIBLE
    if relaxed:
        check_bundle(bundle, lenient=True)
    else:
        with pytest.raises(InvalidBundle, match=pattern):
            check_bundle(bundle, lenient=True)


@pytest.mark.parametrize(("make", "pattern", "relaxed", "decoder"), RULES)
def test_decoder_and_encoder_apply_the_rule(
    make: Callable[[], Bundle],
    pattern: str,
    relaxed: bool,
    decoder: tuple[type[BundleDecodeError], str],
) -> None:
    bundle = make()
    with pytest.raises(BundleEncodeError, match=pattern):
        encode_bundle(bundle)
    data = encode_bundle(bundle, validate=False)
    error, decoder_pattern = decoder
    with pytest.raises(error, match=decoder_pattern) as caught:
        decode_bundle(data)
    assert caught.value.reason == BLOCK_UNINTELLIGIBLE
    if relaxed:
        assert decode_bundle(data, lenient=True) == bundle


@pytest.mark.parametrize("targets", [[0], [1, 0], [0, 2, 1]])
def test_bib_over_the_primary_block_allows_no_primary_crc(targets: list[int]) -> None:
    bib = CanonicalBlock(11, 9, bib_asb(targets, SRC, [b"m"] * len(targets)))
    bundle = with_block(base_bundle(crc_type=CrcType.NONE), bib)
    check_bundle(bundle)
    assert decode_bundle(encode_bundle(bundle)) == bundle


def test_blocks_a_bcb_encrypts_are_not_parsed() -> None:
    garbage_hops = set_block(base_bundle(), 10, data=b"\xde\xad")
    hop_number = base_bundle().first_block_of_type(BlockType.HOP_COUNT).number
    bcb = CanonicalBlock(12, 9, bib_asb([hop_number], SRC, [b"tag"]), BlockFlag.REPLICATE)
    check_bundle(with_block(garbage_hops, bcb))
    with pytest.raises(InvalidBundle, match="hop count"):
        check_bundle(garbage_hops)


def test_hop_count_above_limit_is_still_a_valid_bundle() -> None:
    bundle = set_block(base_bundle(), 10, data=b"\x82\x02\x05")
    assert decode_bundle(encode_bundle(bundle)).hop_count.exceeded


def test_reserved_flag_bits_are_kept() -> None:
    bundle = set_block(
        base_bundle(flags=BundleFlag(0x8 | 1 << 40)), 1, flags=BlockFlag(0x8 | 1 << 63)
    )
    decoded = decode_bundle(encode_bundle(bundle))
    assert decoded.primary.flags == 0x8 | 1 << 40
    assert decoded.payload_block.flags == 0x8 | 1 << 63


# -- decode error paths ------------------------------------------------------------------------

PRIMARY = [7, 0, 1, [1, "//dst/app"], [2, [1, 1]], [2, [1, 1]], [CREATED, 3], 3_600_000, b"\0\0"]
PAYLOAD = [1, 1, 0, 0, b"payload"]


def raw(primary: Any = PRIMARY, *blocks: Any, crcs: bool = True) -> bytes:
    """A bundle from items as cbor2 encodes them; well-formed CRCs get their right value."""
    parts = []
    for item in (primary, *(blocks or (PAYLOAD,))):
        encoded = cbor2.dumps(item)
        crc_field = item[-1] if type(item) is list and item else None
        crc_type = {2: 1, 4: 2}.get(len(crc_field)) if type(crc_field) is bytes else None
        if crcs and crc_type and item[2 if item is primary else 3] == crc_type:
            encoded = with_reference_crc(encoded, crc_type)
        parts.append(encoded)
    return b"\x9f" + b"".join(parts) + b"\xff"


def changed(items: list[Any], index: int, value: Any) -> list[Any]:
    copy = list(items)
    copy[index] = value
    return copy


def p(index: int, value: Any) -> bytes:
    """The valid bundle with primary block item ``index`` replaced."""
    return raw(changed(PRIMARY, index, value))


def b(index: int, value: Any, *extra: Any) -> bytes:
    """The valid bundle with payload block item ``index`` replaced (and ``extra`` appended)."""
    return raw(PRIMARY, [*changed(PAYLOAD, index, value), *extra])


FRAGMENT = changed(PRIMARY, 1, 1)[:8]  # is-fragment flag set; add offset, total and CRC
TWO_ITEMS = r"needs a primary block and a payload block"
SHAPE = r"has 9 items, but its flags and CRC type call for"
TIMESTAMP = r"creation timestamp must be \[time, sequence\]"
PRIMARY_CRC = r"primary block CRC field has the wrong form"
BLOCK_INTS = r"block type, number, flags and CRC type must be integers"
DATA = r"block 1 data must be a byte string"
BLOCK_CRC = r"block 1 CRC field has the wrong form"
TRAILING = r"1 bytes of trailing data after the bundle"

DECODE_ERRORS = [
    ("empty", b"", r"0 bytes cannot hold a bundle"),
    ("one byte", b"\x9f", r"1 bytes cannot hold a bundle"),
    ("empty array", b"\x9f\xff", TWO_ITEMS),
    ("primary only", b"\x9f" + with_reference_crc(cbor2.dumps(PRIMARY), 1) + b"\xff", TWO_ITEMS),
    ("primary not an array", raw(7, PAYLOAD), r"primary block must be a CBOR array"),
    ("primary 7 items", raw(PRIMARY[:7]), r"primary block has 7 items \(8 to 11 allowed\)"),
    ("primary 12 items", raw([*PRIMARY, 0, 0, 0]), r"primary block has 12 items"),
    ("version 6", p(0, 6), r"unsupported bundle protocol version 6"),
    ("version text", p(0, "7"), r"unsupported bundle protocol version"),
    ("flags text", p(1, "0"), r"flags, CRC type and lifetime must be integers"),
    ("lifetime negative", p(7, -1), r"primary block integers must be unsigned"),
    ("lifetime float", p(7, 1.5), r"must be integers"),
    ("primary CRC type 3", p(2, 3), r"unknown CRC type 3 in the primary block"),
    ("fragment flag, no fields", p(1, 1), SHAPE + " 11"),
    ("CRC type 0 with CRC field", p(2, 0), SHAPE + " 8"),
    ("timestamp 1 item", p(6, [CREATED]), TIMESTAMP),
    ("timestamp not array", p(6, CREATED), TIMESTAMP),
    ("timestamp negative", p(6, [CREATED, -3]), r"creation timestamp values must be unsigned"),
    ("timestamp over 64 bits", p(6, [2**64, 0]), r"creation timestamp values"),
    ("destination scheme 3", p(3, [3, 0]), r"block destination: unsupported EID scheme code 3"),
    ("source bad ipn", p(4, [2, [1]]), r"block source: ipn SSP must be \[node, service\]"),
    ("report-to bad dtn", p(5, [1, 5]), r"report-to: dtn SSP must be a text string or 0"),
    ("fragment offset text", raw([*FRAGMENT, "0", 100, b"\0\0"]), r"fragment offset and total"),
    ("fragment total over 64 bits", raw([*FRAGMENT, 0, 2**64, b"\0\0"]), r"fragment"),
    ("primary CRC 3 bytes", p(8, b"\0\0\0"), PRIMARY_CRC),
    ("primary CRC int", p(8, 0), PRIMARY_CRC),
    ("block not an array", raw(PRIMARY, 1), r"canonical block must be a CBOR array"),
    ("block 4 items", raw(PRIMARY, PAYLOAD[:4]), r"canonical block has 5 or 6 items, not 4"),
    ("block 7 items", b(4, b"x", b"\0\0", 0), r"canonical block has 5 or 6 items, not 7"),
    ("block type text", b(0, "1"), BLOCK_INTS),
    ("block number negative", b(1, -1), r"block header integers must be unsigned"),
    ("block data text", b(4, "payload"), DATA),
    ("block data other tag", b(4, cbor2.CBORTag(25, b"x")), DATA),
    ("tag 24 around text", b(4, cbor2.CBORTag(24, "x")), DATA),
    ("CRC field with CRC type 0", b(4, b"x", b"\0\0"), r"block 1 has a CRC field but CRC type 0"),
    ("block CRC16 4 bytes", b(3, 1, b"\0\0\0\0"), BLOCK_CRC),
    ("block CRC missing", b(3, 2), BLOCK_CRC),
    ("block CRC type 3", b(3, 3, b"\0\0"), r"unknown CRC type 3 in block 1"),
    ("other tag in front", b"\xc1" + raw(), r"unexpected CBOR tag 1 in front of the bundle"),
    ("a map", cbor2.dumps({1: 2}), r"a bundle is a CBOR array; this input is not$"),
    ("a byte string", cbor2.dumps(raw()), r"a bundle is a CBOR array"),
    ("no end marker", raw()[:-1], r"bundle is truncated \(no end marker\)"),
    ("cut in a block", raw()[:-4], r"malformed CBOR"),
    ("cut in a head", raw()[:3] + b"\xff", r"malformed CBOR"),
    ("trailing byte", raw() + b"\x00", TRAILING),
    ("trailing break", raw() + b"\xff", TRAILING),
    ("definite array, trailing", b"\x82" + raw()[1:-1] + b"\x00\x00", r"2 bytes of trailing data"),
    ("reserved additional info", b"\x9f\x1c\xff", r"malformed CBOR: reserved additional info"),
    ("invalid UTF-8", p(3, [1, "//d/x"]).replace(b"//d/x", b"//d/\xff"), r"not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("data", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in DECODE_ERRORS]
)
def test_decode_error(data: bytes, pattern: str) -> None:
    for lenient in (False, True):
        with pytest.raises(BundleDecodeError, match=pattern) as caught:
            decode_bundle(data, lenient=lenient)
        assert caught.value.reason == BLOCK_UNINTELLIGIBLE
        assert not isinstance(caught.value, BundleTooLarge)


def test_pre_rfc_dtn_eid_needs_lenient_mode() -> None:
    data = raw(changed(PRIMARY, 3, [1, "dst/app"]))
    message = r"primary block destination: dtn:dst/app: a dtn EID must look like dtn://node/demux"
    with pytest.raises(BundleDecodeError, match=message) as caught:
        decode_bundle(data)
    assert caught.value.reason == BLOCK_UNINTELLIGIBLE
    assert decode_bundle(data, lenient=True).primary.destination == DtnEID("//dst/app")


def test_bpv6_input_gets_a_hint() -> None:
    bpv6 = bytes.fromhex(load_vectors("bpv6_rfc5050_custody_signal")["bundle_hex"])
    assert bpv6[0] == 6
    with pytest.raises(BundleDecodeError, match=r"looks like a BPv6 bundle") as caught:
        decode_bundle(bpv6)
    assert caught.value.reason == BLOCK_UNINTELLIGIBLE


def test_decode_refuses_what_is_not_bytes() -> None:
    with pytest.raises(TypeError, match="needs bytes"):
        decode_bundle(raw().hex())  # type: ignore[arg-type]


def test_decode_takes_bytearray_and_memoryview() -> None:
    data = raw()
    assert decode_bundle(bytearray(data)) == decode_bundle(memoryview(data)) == decode_bundle(data)
    assert decode_bundle(data).primary.destination == DST  # and raw() makes a valid bundle


def test_primary_crc_mismatch() -> None:
    data = bytearray(raw())
    data[raw().index(b"\x42") + 1] ^= 0x80  # inside the CRC value
    with pytest.raises(CrcMismatch, match="CRC of the primary block does not match") as caught:
        decode_bundle(bytes(data))
    assert caught.value.reason == BLOCK_UNINTELLIGIBLE


@pytest.mark.parametrize("crc_type", [CrcType.CRC16, CrcType.CRC32C])
def test_block_crc_mismatch_names_the_block(crc_type: CrcType) -> None:
    bundle = with_block(base_bundle(), CanonicalBlock(201, 12, b"guarded", crc_type=crc_type))
    data = encode_bundle(bundle)
    position = data.index(b"guarded")
    broken = data[:position] + b"G" + data[position + 1 :]
    with pytest.raises(CrcMismatch, match=r"CRC of the block 12 does not match"):
        decode_bundle(broken)
    assert decode_bundle(data) == bundle


# -- limits and bounded decoding ---------------------------------------------------------------


def test_too_large() -> None:
    data = encode_bundle(base_bundle())
    assert decode_bundle(data, max_size=len(data)) == base_bundle()
    message = f"bundle of {len(data)} bytes exceeds the limit of {len(data) - 1} bytes"
    with pytest.raises(BundleTooLarge, match=message) as caught:
        decode_bundle(data, max_size=len(data) - 1)
    assert caught.value.reason == DEPLETED_STORAGE


@pytest.mark.parametrize("form", ["indefinite", "definite", "self-described"])
def test_too_many_blocks(form: str) -> None:
    bundle = base_bundle()
    count = 1 + len(bundle.blocks)
    data = {
        "indefinite": raw_encode(bundle),
        "definite": raw_encode(bundle, definite=True),
        "self-described": raw_encode(bundle, self_described=True),
    }[form]
    assert decode_bundle(data, max_blocks=count) == bundle
    with pytest.raises(BundleTooLarge, match=f"more than {count - 1} blocks") as caught:
        decode_bundle(data, max_blocks=count - 1)
    assert caught.value.reason == DEPLETED_STORAGE


def test_default_block_limit() -> None:
    bundle = simple(extension_blocks=[CanonicalBlock(200, 0, b"")] * (DEFAULT_MAX_BLOCKS - 2))
    assert decode_bundle(encode_bundle(bundle)) == bundle
    with pytest.raises(BundleTooLarge):
        decode_bundle(encode_bundle(bundle.add_block(CanonicalBlock(200, 0, b""))))


HOSTILE = {
    # Outer indefinite array whose first item announces a 2^63-byte string (20 bytes in all).
    "2^63-byte string": b"\x9f\x5b\x80" + bytes(7) + bytes(9) + b"\xff",
    "2^32-item array": b"\x9f\x9b\x00\x00\x00\x01\x00\x00\x00\x00" + bytes(9) + b"\xff",
    "2^32 blocks, definite": b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00" + bytes(11),
    "2^32-pair map": b"\x9f\xbb\x00\x00\x00\x01\x00\x00\x00\x00" + bytes(9) + b"\xff",
    "2^63-byte chunk": b"\x9f\x5f\x5b\x80" + bytes(7) + bytes(8) + b"\xff",
    "2^63-byte block data": raw()[:-9] + b"\x5b\x7f" + bytes(7) + b"\xff",
    "deep nesting": b"\x9f" + b"\x81" * 100_000 + b"\x00\xff",
    "2^32-item bundle age BTSD": encode_bundle(btsd(7, "9b0000000100000000"), validate=False),
}


@pytest.mark.parametrize("data", list(HOSTILE.values()), ids=list(HOSTILE))
def test_announced_sizes_allocate_nothing(data: bytes) -> None:
    assert len(HOSTILE["2^63-byte string"]) == len(HOSTILE["2^32-item array"]) == 20
    tracemalloc.start()
    try:
        with pytest.raises(BundleDecodeError):
            decode_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000 + 2 * len(data)


def test_large_bundle_takes_the_exact_path() -> None:
    bundle = simple(bytes(range(256)) * 1200, block_crc_type=CrcType.CRC32C)
    data = encode_bundle(bundle)
    assert len(data) > 256 * 1024
    assert decode_bundle(data) == bundle
    broken = bytearray(data)
    broken[len(data) // 2] ^= 1
    with pytest.raises(CrcMismatch):
        decode_bundle(bytes(broken))


# -- forms a receiver may accept ---------------------------------------------------------------


ACCEPTED_FORMS = {
    "definite outer array": {"definite": True},
    "tag 55799": {"self_described": True},
    "tag 55799 + definite": {"self_described": True, "definite": True},
    "tag 24": {"tag24": frozenset({0, 3})},
    "long-form integers": {"widen": frozenset(range(200))},
}


@pytest.mark.parametrize("options", list(ACCEPTED_FORMS.values()), ids=list(ACCEPTED_FORMS))
def test_accepted_non_canonical_forms_are_normalised(options: dict[str, Any]) -> None:
    bundle = with_block(base_bundle(), CanonicalBlock(201, 12, b"crc'd", crc_type=CrcType.CRC16))
    bundle = set_block(bundle, 1, crc_type=CrcType.CRC32C)
    data = raw_encode(bundle, **options)
    assert data != encode_bundle(bundle)

    decoded = decode_bundle(data)

    assert decoded == bundle
    assert encode_bundle(decoded) == raw_encode(bundle)


def test_non_canonical_form_crc_is_checked_over_the_bytes_sent() -> None:
    bundle = set_block(base_bundle(), 1, crc_type=CrcType.CRC16)
    data = bytearray(raw_encode(bundle, widen=frozenset(range(200))))
    data[data.index(b"payload")] ^= 0x01
    with pytest.raises(CrcMismatch, match="block 1"):
        decode_bundle(bytes(data))


def test_unknown_block_types_are_kept_byte_for_byte() -> None:
    odd = [
        CanonicalBlock(192, 17, b"\xff\x00 not CBOR", BlockFlag.REPLICATE, CrcType.CRC16),
        CanonicalBlock(2**64 - 1, 2**64 - 1, bytes(300), BlockFlag(0xFF), CrcType.CRC32C),
        CanonicalBlock(13, 40, b"", BlockFlag.NONE, CrcType.NONE),
    ]
    bundle = base_bundle().with_blocks((*odd, *base_bundle().blocks))
    data = encode_bundle(bundle)
    decoded = decode_bundle(data)
    assert decoded.blocks[:3] == tuple(odd)
    assert encode_bundle(decoded) == data
    for block in odd:
        assert encode_block(block) in data


# -- regressions: block extents on the decoder's fast path ----------------------------------


def _fast_path_misplaced_crc_bundle() -> bytes:
    """A bundle whose primary CRC is wrong for the primary block's bytes. Its flags are in
    long form (+1 byte); an unknown block's data is a shareable value (tag 28, +2) that the
    payload block refers to (tag 29, -3). The lengths balance, so a decoder that locates
    blocks from decoded values checks the CRC over the wrong bytes, which this CRC fits."""
    body = bytes.fromhex("8907180001820282020182028201018202820101821b000000a2fb405800001a05265c00")
    # The misplaced extent is one byte short: it ends before the CRC's bstr head.
    wrong = reference_crc16_x25(body + b"\x00\x00").to_bytes(2, "big")
    right = reference_crc16_x25(body + b"\x42\x00\x00").to_bytes(2, "big")
    assert wrong != right
    ext = bytes.fromhex("8518c8020000d81c4568656c6c6f")
    payload = bytes.fromhex("8501010000d81d00")
    return b"\x9f" + body + b"\x42" + wrong + ext + payload + b"\xff"


def test_wrong_primary_crc_with_shared_values_is_refused() -> None:
    # The fast path only takes bundles whose EIDs it has met: meet them first.
    warm = simple(b"x").with_primary(destination=IpnEID(2, 1), report_to=SRC)
    assert decode_bundle(encode_bundle(warm)) == warm
    with pytest.raises(BundleDecodeError):
        decode_bundle(_fast_path_misplaced_crc_bundle())


def test_shared_values_with_long_form_tag_heads_are_refused() -> None:
    """The same trick with tags 28 and 29 written with two-byte arguments (d9 00 1c ...)."""
    warm = simple(b"x").with_primary(destination=IpnEID(2, 1), report_to=SRC)
    assert decode_bundle(encode_bundle(warm)) == warm
    data = bytes.fromhex(
        "9f8907180001820282020182028201018202820101821b000000a2fb405800001a05265c00424422"
        "8518c8020000d9001c4768656c6c6f21218501010000d9001d00ff"
    )
    with pytest.raises(BundleDecodeError):
        decode_bundle(data)


def _lenient_long_form_bundle() -> bytes:
    """uD3TN-style destination without '//', CRC-16 primary block, and a payload block (CRC-
    32C) whose number and flags are in long form; every CRC is right for the bytes sent."""
    primary = with_reference_crc(
        bytes.fromhex("8907000182016347533282028201018202820101821903e8001a00015180420000"), 1
    )
    payload = with_reference_crc(bytes.fromhex("86011900011800024268694400000000"), 2)
    return b"\x9f" + primary + payload + b"\xff"


def test_lenient_bundle_with_long_form_integers_decodes() -> None:
    bundle = decode_bundle(_lenient_long_form_bundle(), lenient=True)
    assert bundle.primary.destination == DtnEID("//GS2/")
    assert bundle.payload == b"hi"


def test_lenient_bundle_with_shortest_integers_decodes() -> None:
    """The same bundle without long-form integers decodes (the control for the test above)."""
    long_form = _lenient_long_form_bundle()
    primary = long_form[: long_form.index(b"\x86\x01\x19")]
    payload = with_reference_crc(bytes.fromhex("86010100024268694400000000"), 2)
    assert decode_bundle(primary + payload + b"\xff", lenient=True).payload == b"hi"


@pytest.mark.parametrize(
    ("type_code", "data"), [(7, "07ff"), (7, "0000"), (10, "82050000"), (6, "820282010000")]
)
def test_btsd_with_trailing_bytes_is_refused(type_code: int, data: str) -> None:
    with pytest.raises(InvalidBundle):
        check_bundle(btsd(type_code, data))


def test_btsd_trailing_bytes_message_counts_them() -> None:
    message = r"bundle age block \d+ has 2 bytes after its CBOR item"
    with pytest.raises(InvalidBundle, match=message):
        read_bundle_age(CanonicalBlock(7, 3, b"\x07\x00\x00"))


def test_btsd_nesting_is_bounded() -> None:
    nested = b"\x81" * 10_000 + b"\x00"  # would make a recursive decoder overflow its stack
    with pytest.raises(InvalidBundle, match=r"previous node block 2 does not hold valid CBOR"):
        read_previous_node(CanonicalBlock(6, 2, nested))


def test_pre_rfc_previous_node_needs_lenient_mode() -> None:
    bundle = set_block(base_bundle(), 6, data=cbor2.dumps([1, "GS4"]))
    with pytest.raises(InvalidBundle, match=r"previous node block \d+: dtn:GS4: a dtn EID"):
        check_bundle(bundle)
    check_bundle(bundle, lenient=True)
    block = bundle.first_block_of_type(6)
    assert block is not None
    assert read_previous_node(block, lenient=True) == DtnEID("//GS4/")
    with pytest.raises(InvalidBundle):
        read_previous_node(block)
    assert bundle.previous_node == DtnEID("//GS4/")  # the accessor reads leniently


# -- encoder -----------------------------------------------------------------------------------


def test_encode_matches_an_independent_encoder() -> None:
    bundle = base_bundle(flags=BundleFlag.REPORT_DELIVERY, lifetime=2**40)
    assert encode_bundle(bundle) == raw_encode(bundle)
    assert encoded_size(bundle) == len(encode_bundle(bundle))


@pytest.mark.parametrize("size", [0, 23, 24, 255, 256, 65_535, 65_536])
@pytest.mark.parametrize("crc_type", list(CrcType))
def test_payload_length_heads(size: int, crc_type: CrcType) -> None:
    bundle = simple(b"\xa5" * size, block_crc_type=crc_type)
    data = encode_bundle(bundle)
    assert data == raw_encode(bundle)
    assert encoded_size(bundle) == len(data)
    assert decode_bundle(data) == bundle


def test_block_header_is_the_encoding_before_the_data() -> None:
    bundle = set_block(base_bundle(), 1, crc_type=CrcType.CRC32C)
    for block in (*bundle.blocks, CanonicalBlock(9, 9, b"", crc_type=CrcType.CRC16)):
        encoded = encode_block(block)
        header, crc = encode_block_header(block), (0, 3, 5)[block.crc_type]
        assert (
            encoded.startswith(header + block.data)
            and len(encoded) == len(header + block.data) + crc
        )


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (lambda: CanonicalBlock(1, 1, b"x", crc_type=3), r"unknown CRC type 3"),
        (lambda: CanonicalBlock(1, 1, bytearray(b"x")), r"data must be bytes"),
        (lambda: CanonicalBlock(1, -1, b"x"), r"block number must be an unsigned 64-bit integer"),
        (lambda: CanonicalBlock(2**64, 1, b"x"), r"block type must be an unsigned 64-bit integer"),
        (lambda: CanonicalBlock(1, 1, b"x", flags=-1), r"block flags must be"),
    ],
)
def test_encode_block_refuses_bad_fields(bad: Callable[[], CanonicalBlock], pattern: str) -> None:
    with pytest.raises(BundleEncodeError, match=pattern):
        encode_block(bad())


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"crc_type": 5}, r"unknown CRC type 5"),
        ({"fragment_offset": 0}, r"fragment offset and total ADU length go together"),
        ({"total_adu_length": 9}, r"fragment offset and total ADU length go together"),
        ({"lifetime": -1}, r"lifetime must be an unsigned 64-bit integer"),
        ({"creation_time": 2**64}, r"creation time must be"),
        ({"sequence": "1"}, r"sequence number must be"),
        ({"flags": 1.0}, r"bundle flags must be"),
    ],
)
def test_encode_primary_refuses_bad_fields(changes: dict[str, Any], pattern: str) -> None:
    with pytest.raises(BundleEncodeError, match=pattern):
        encode_primary(PrimaryBlock(DST, SRC, SRC, CREATED).replace(**changes))


def test_encode_primary_crc_covers_the_whole_block() -> None:
    primary = PrimaryBlock(DST, SRC, SRC, CREATED, crc_type=CrcType.CRC16)
    encoded = encode_primary(primary)
    assert encoded[-3] == 0x42
    assert encoded == with_reference_crc(encoded[:-2] + b"\0\0", 1)
    assert encode_primary(primary.replace(crc_type=CrcType.NONE))[0] == 0x88
