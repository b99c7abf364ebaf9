"""Every way a BPv6 bundle can fail to decode or encode, and the exception class for each."""

from __future__ import annotations

import contextlib
import tracemalloc
from dataclasses import replace

import pytest

from dtncloud.bpv6 import (
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    SdnvError,
    decode_bundle,
    encode_bundle,
    encode_sdnv,
    payload_block,
)
from dtncloud.errors import (
    BundleDecodeError,
    BundleEncodeError,
    BundleTooLarge,
    InvalidBundle,
)

DICTIONARY = b"dtn\x00//a/b\x00//c/d\x00none\x00"
OFFSETS = (0, 4, 0, 10, 0, 10, 0, 16)
PAYLOAD = bytes.fromhex("010805") + b"hello"


def sdnvs(*values: int) -> bytes:
    return b"".join(encode_sdnv(v) for v in values)


def raw(
    *,
    version: int = 6,
    flags: int = 0x90,
    offsets: tuple[int, ...] = OFFSETS,
    dictionary: bytes = DICTIONARY,
    dictionary_length: int | None = None,
    extra: bytes = b"",
    length_delta: int = 0,
    blocks: bytes = PAYLOAD,
) -> bytes:
    """A bundle assembled field by field, so that any one field can be made wrong."""
    length = len(dictionary) if dictionary_length is None else dictionary_length
    body = sdnvs(*offsets, 1000, 2, 3600, length) + dictionary + extra
    return bytes((version,)) + sdnvs(flags, len(body) + length_delta) + body + blocks


def block(block_type: int, flags: int, data: bytes, refs: tuple[int, ...] | None = None) -> bytes:
    head = bytes((block_type,)) + encode_sdnv(flags)
    if refs is not None:
        head += sdnvs(len(refs) // 2, *refs)
    return head + encode_sdnv(len(data)) + data


def test_builder_makes_a_valid_bundle() -> None:
    assert decode_bundle(raw()).payload == b"hello"


def decode_error(data: bytes, kind: type[BundleDecodeError], match: str, **limits: int) -> None:
    with pytest.raises(kind, match=match) as info:
        decode_bundle(data, **limits)
    # Only the exact class asked for: a test for BundleDecodeError must not pass on a subclass
    # that the engine would treat differently (BundleTooLarge carries another reason).
    assert type(info.value) is kind
    assert info.value.reason == (4 if kind is BundleTooLarge else 8)


MALFORMED = {
    "empty input": (b"", BundleDecodeError, "version: data ends"),
    "version 7": (raw(version=7), InvalidBundle, "version is 7, not 6"),
    "a BPv7 bundle": (b"\x9f\x89\x07", InvalidBundle, "looks like a BPv7 bundle"),
    "overlong flags": (b"\x06" + b"\x80" * 20, SdnvError, "bundle flags: .*runs past 10"),
    "flags above 64 bits": (b"\x06\xff" + b"\xff" * 8 + b"\x7f", SdnvError, "exceeds 64 bits"),
    "primary length beyond the data": (
        raw(length_delta=1000),
        BundleDecodeError,
        "primary block length .* exceeds",
    ),
    "primary length longer than its fields": (
        raw(extra=b"\x00"),
        BundleDecodeError,
        "leaves 1 bytes unread",
    ),
    "primary length shorter than its fields": (
        raw(length_delta=-3),
        BundleDecodeError,
        "dictionary: 21 bytes announced",
    ),
    "dictionary length beyond the block": (
        raw(dictionary_length=1 << 40),
        BundleDecodeError,
        "dictionary: 1099511627776 bytes announced",
    ),
    "offset outside the dictionary": (
        raw(offsets=(0, 21, 0, 10, 0, 10, 0, 16)),
        BundleDecodeError,
        "destination SSP: offset 21 is outside",
    ),
    "offset inside a string": (
        raw(offsets=(0, 5, 0, 10, 0, 10, 0, 16)),
        BundleDecodeError,
        "offset 5 is not at the start",
    ),
    "dictionary without final NUL": (
        raw(dictionary=DICTIONARY[:-1] + b"!"),
        BundleDecodeError,
        "does not end with a NUL",
    ),
    "non-ASCII dictionary": (
        raw(dictionary=DICTIONARY.replace(b"//a/b", b"//\xe4/b")),
        BundleDecodeError,
        "not ASCII",
    ),
    "empty scheme": (
        raw(dictionary=b"\x00x\x00", offsets=(0, 1) * 4),
        BundleDecodeError,
        "'' is not a URI scheme",
    ),
    "scheme with a colon": (
        raw(dictionary=b"a:b\x00x\x00", offsets=(0, 4) * 4),
        BundleDecodeError,
        "'a:b' is not a URI scheme",
    ),
    "no blocks": (raw(blocks=b""), BundleDecodeError, "without one marked as the last"),
    "no last-block flag": (
        raw(blocks=block(1, 0, b"hello")),
        BundleDecodeError,
        "after 1 blocks without one marked",
    ),
    "trailing bytes": (raw(blocks=PAYLOAD + b"\x00"), BundleDecodeError, "1 bytes follow"),
    "last-block flag on a middle block": (
        raw(blocks=block(1, 8, b"x") + block(7, 8, b"y")),
        BundleDecodeError,
        "4 bytes follow the block",
    ),
    "block length beyond the data": (
        raw(blocks=bytes.fromhex("0108ffffff7f") + b"x"),
        BundleDecodeError,
        r"block 0 \(type 1\) data: 268435455 bytes announced",
    ),
    "block ends inside its header": (
        raw(blocks=b"\x01\x88"),
        SdnvError,
        r"block 0 \(type 1\) flags",
    ),
    "EID reference count beyond the data": (
        raw(blocks=b"\x05\x40" + encode_sdnv(1 << 62) + PAYLOAD),
        BundleDecodeError,
        "EID references cannot fit",
    ),
    "EID reference outside the dictionary": (
        raw(blocks=block(5, 0x40, b"", (0, 99)) + PAYLOAD),
        BundleDecodeError,
        "EID reference SSP: offset 99 is outside",
    ),
    "EID reference in a CBHE bundle": (
        raw(dictionary=b"", offsets=(1, 1) * 4, blocks=block(5, 0x40, b"", (0, 0)) + PAYLOAD),
        BundleDecodeError,
        "no dictionary",
    ),
    "no payload block": (raw(blocks=block(5, 8, b"")), InvalidBundle, "exactly one payload"),
    "two payload blocks": (
        raw(blocks=block(1, 0, b"a") + PAYLOAD),
        InvalidBundle,
        "exactly one payload block, not 2",
    ),
    "fragment flag without fragment fields": (
        raw(flags=0x91),
        SdnvError,
        "fragment offset: data ends inside the SDNV",
    ),
    "fragment beyond its ADU": (
        raw(flags=0x91, extra=sdnvs(10, 12)),
        InvalidBundle,
        "fragment ends beyond the total ADU length",
    ),
}


@pytest.mark.parametrize(("data", "kind", "match"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(data: bytes, kind: type[BundleDecodeError], match: str) -> None:
    decode_error(data, kind, match)


def valid_bundle(**changes: object) -> Bundle:
    bundle = Bundle.create(
        source="dtn://c/d", destination="dtn://a/b", payload=b"hello", creation_time=1000
    )
    return replace(bundle, **changes)  # type: ignore[arg-type]


REPORTS = BundleFlag.REPORT_DELIVERY
INVALID = {
    "admin record asking for custody": (
        valid_bundle(flags=BundleFlag.ADMIN_RECORD | BundleFlag.CUSTODY_REQUESTED),
        "administrative record requests no custody",
    ),
    "admin record asking for reports": (
        valid_bundle(flags=BundleFlag.ADMIN_RECORD | REPORTS),
        "administrative record requests no custody transfer or reports",
    ),
    "admin record with a block asking for reports": (
        valid_bundle(
            flags=BundleFlag.ADMIN_RECORD,
            blocks=(CanonicalBlock(9, b"", BlockFlag.REPORT_IF_UNPROCESSABLE), payload_block(b"")),
        ),
        "blocks request no status reports",
    ),
    "anonymous bundle asking for custody": (
        valid_bundle(
            source="dtn:none", flags=BundleFlag.MUST_NOT_FRAGMENT | BundleFlag.CUSTODY_REQUESTED
        ),
        "anonymous bundle requests no custody",
    ),
    "anonymous bundle asking for reports": (
        valid_bundle(source="dtn:none", flags=BundleFlag.MUST_NOT_FRAGMENT | REPORTS),
        "anonymous bundle requests no custody transfer or reports",
    ),
    "anonymous bundle that may be fragmented": (
        valid_bundle(source="dtn:none", flags=BundleFlag.NONE),
        "must-not-fragment",
    ),
    "replicated block after the payload": (
        valid_bundle(blocks=(payload_block(b""), CanonicalBlock(9, b"", BlockFlag.REPLICATE))),
        "after the payload block are not replicated",
    ),
    "fragment fields without the flag": (
        valid_bundle(fragment_offset=0, total_adu_length=5),
        "exactly when the is-fragment flag is set",
    ),
    "is-fragment flag without fields": (
        valid_bundle(flags=BundleFlag.IS_FRAGMENT),
        "exactly when the is-fragment flag is set",
    ),
}


@pytest.mark.parametrize(("bundle", "match"), INVALID.values(), ids=INVALID.keys())
def test_rule_breakers_are_refused_both_ways(bundle: Bundle, match: str) -> None:
    with pytest.raises(BundleEncodeError, match=match):
        encode_bundle(bundle)
    # Written anyway, the decoder refuses them: as InvalidBundle when the bytes are well
    # formed, as BundleDecodeError when the rule is about which fields are on the wire.
    with pytest.raises(BundleDecodeError) as info:
        decode_bundle(encode_bundle(bundle, validate=False))
    assert info.value.reason == 8


ENCODE_ERRORS = {
    "no blocks": (valid_bundle(blocks=()), "exactly one payload block, not 0"),
    "caller set the last-block flag": (
        valid_bundle(blocks=(payload_block(b"", BlockFlag.LAST_BLOCK), CanonicalBlock(9, b""))),
        "only the encoder sets the last-block flag",
    ),
    "EID references without the flag": (
        valid_bundle(blocks=(CanonicalBlock(9, b"", BlockFlag.NONE, ("a:b",)), payload_block(b""))),
        "need the has-EID-references flag",
    ),
    "block type above 255": (
        valid_bundle(blocks=(CanonicalBlock(256, b""), payload_block(b""))),
        "one byte",
    ),
    "negative creation time": (valid_bundle(creation_time=-1), "creation time: -1"),
    "lifetime above 64 bits": (valid_bundle(lifetime=1 << 64), "lifetime"),
    "EID without a scheme": (valid_bundle(destination="nocolon"), "destination: 'nocolon'"),
    "EID with an empty scheme": (valid_bundle(report_to=":x"), "report_to"),
    "EID with a NUL": (valid_bundle(custodian="dtn:a\x00b"), "without NUL"),
    "non-ASCII EID": (valid_bundle(source="dtn://ä/b"), "ASCII"),
    "EID that is not a str": (valid_bundle(source=b"dtn:x"), "must be a str"),
    "half a fragment": (
        valid_bundle(fragment_offset=1, flags=BundleFlag.IS_FRAGMENT),
        "go together",
    ),
}


@pytest.mark.parametrize(("bundle", "match"), ENCODE_ERRORS.values(), ids=ENCODE_ERRORS.keys())
def test_encode_errors(bundle: Bundle, match: str) -> None:
    with pytest.raises(BundleEncodeError, match=match):
        encode_bundle(bundle)


def test_payload_property_without_payload() -> None:
    with pytest.raises(BundleEncodeError, match="no payload block"):
        _ = valid_bundle(blocks=()).payload


def test_size_limit() -> None:
    data = raw()
    assert decode_bundle(data, max_size=len(data)).payload == b"hello"
    decode_error(data, BundleTooLarge, "exceeds the limit", max_size=len(data) - 1)


def test_block_count_limit() -> None:
    data = raw(blocks=block(9, 0, b"") + block(9, 0, b"") + PAYLOAD)
    assert len(decode_bundle(data, max_blocks=3).blocks) == 3
    decode_error(data, BundleTooLarge, "more than 2 blocks", max_blocks=2)


def test_not_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode_bundle("06")  # type: ignore[arg-type]


def _pairing_bomb() -> bytes:
    # 256 distinct 1000-character strings, then a reference to every (scheme, SSP) pair:
    # under 1 MB of input that would expand to 130 MB of EID text.
    strings = [bytes((65 + i % 26,)) * 999 + bytes((48 + i // 26,)) for i in range(256)]
    dictionary = b"".join(s + b"\x00" for s in strings)
    starts = [1001 * i for i in range(256)]
    refs = tuple(x for a in starts for b in starts for x in (a, b))
    return raw(
        dictionary=dictionary, offsets=(0, 1001) * 4, blocks=block(5, 0x40, b"", refs) + PAYLOAD
    )


HOSTILE = {
    # a block announcing 2**62 bytes of data behind a megabyte of real data
    "huge block length": (raw(blocks=b"\x01\x08" + encode_sdnv(1 << 62) + bytes(1 << 20)), 4),
    # a megabyte of SDNV continuation bytes where the flags should be
    "endless SDNV": (b"\x06" + b"\x80" * (1 << 20), 4),
    # a dictionary announced as 2**60 bytes long
    "huge dictionary": (raw(dictionary_length=1 << 60, dictionary=bytes(1 << 20)), 4),
    # 200,000 references to one EID: they share one string, but each costs a slot
    # in a list and a tuple (16 bytes for at least 2 bytes of input)
    "many references": (raw(blocks=block(5, 0x40, b"", (0, 4) * 200_000) + PAYLOAD), 16),
    "dictionary pairing bomb": (_pairing_bomb(), 4),
}


@pytest.mark.parametrize(("hostile", "factor"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_allocates_nothing_it_announces(hostile: bytes, factor: int) -> None:
    tracemalloc.start()
    try:
        with contextlib.suppress(BundleDecodeError):
            decode_bundle(hostile)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Memory stays a small multiple of the input, whatever lengths the input announces.
    assert peak < factor * len(hostile) + (1 << 20)


def test_dictionary_pairing_bomb_is_too_large() -> None:
    decode_error(_pairing_bomb(), BundleTooLarge, "expand beyond the limit")
