"""BPv6 bundle encoding and decoding: literal bytes, the dictionary, CBHE, flags."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dtncloud.bpv6 import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    Priority,
    decode_bundle,
    encode_bundle,
    payload_block,
)
from dtncloud.bpv7 import BundleId as BundleIdV7
from dtncloud.eid import EID
from dtncloud.errors import BundleEncodeError

# A bundle worked out by hand from RFC 5050 4.5: the dictionary holds "dtn" once, and the
# source and report-to share one SSP string.
DICTIONARY = b"dtn\x00//a/b\x00//c/d\x00none\x00"
LITERAL = (
    bytes.fromhex(
        "06"  # version
        "8110"  # flags 0x90: singleton destination, normal priority
        "23"  # primary block length 35
        "0004 000a 000a 0010"  # dictionary offsets: dest, source, report-to, custodian
        "8768"  # creation time 1000
        "02"  # sequence 2
        "9c10"  # lifetime 3600
        "15"  # dictionary length 21
    )
    + DICTIONARY
    + bytes.fromhex("010805")  # payload block: type 1, last block, length 5
    + b"hello"
)


def literal_bundle() -> Bundle:
    return Bundle(
        flags=BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL,
        destination="dtn://a/b",
        source="dtn://c/d",
        report_to="dtn://c/d",
        custodian="dtn:none",
        creation_time=1000,
        sequence=2,
        lifetime=3600,
        blocks=(payload_block(b"hello"),),
    )


def test_encode_literal() -> None:
    assert encode_bundle(literal_bundle()) == LITERAL


def test_decode_literal() -> None:
    bundle = decode_bundle(LITERAL)
    assert bundle == literal_bundle()
    assert not bundle.cbhe
    assert bundle.payload == b"hello"
    assert bundle.bundle_id == BundleId("dtn://c/d", 1000, 2)
    assert str(bundle.bundle_id) == "dtn://c/d@1000.2"


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_bundle(bytearray(LITERAL)) == decode_bundle(memoryview(LITERAL))


def test_create_defaults() -> None:
    bundle = Bundle.create(source="ipn:1.1", destination="ipn:2.1", payload=b"x", creation_time=7)
    assert bundle.flags == BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL
    assert bundle.report_to == bundle.custodian == "dtn:none"
    assert bundle.lifetime == 86_400
    assert decode_bundle(encode_bundle(bundle)) == bundle


def test_create_anonymous_sets_must_not_fragment() -> None:
    bundle = Bundle.create(source="dtn:none", destination="ipn:2.1", payload=b"", creation_time=0)
    assert bundle.flags & BundleFlag.MUST_NOT_FRAGMENT
    assert decode_bundle(encode_bundle(bundle)) == bundle


def test_extension_blocks_with_eid_references() -> None:
    refs = ("dtn://a/b", "x-sec:key/1", "dtn:none")
    security = CanonicalBlock(
        BlockType.PAYLOAD_INTEGRITY,
        b"\x01\x02",
        BlockFlag.HAS_EID_REFERENCES | BlockFlag.REPLICATE,
        refs,
    )
    empty_refs = CanonicalBlock(200, b"", BlockFlag.HAS_EID_REFERENCES)
    bundle = replace(literal_bundle(), blocks=(security, empty_refs, payload_block(b"hello")))
    encoded = encode_bundle(bundle)
    decoded = decode_bundle(encoded)
    assert decoded == bundle
    assert decoded.blocks[0].eid_references == refs
    assert decoded.blocks[1].eid_references == ()
    assert decoded.extension_blocks == (security, empty_refs)
    # Only the new strings join the dictionary, after the primary block's, each once.
    assert DICTIONARY + b"x-sec\x00key/1\x00" in encoded
    assert encoded.count(b"none\x00") == 1


def test_unknown_blocks_and_flags_survive_byte_for_byte() -> None:
    odd = CanonicalBlock(0xEE, bytes(range(256)), BlockFlag(0x80 | 0x20 | 0x02))
    after = CanonicalBlock(0x42, b"\x00trailer", BlockFlag.DISCARD_IF_UNPROCESSABLE)
    bundle = replace(
        literal_bundle(),
        flags=BundleFlag(int(BundleFlag.SINGLETON_DESTINATION) | (1 << 40)),
        blocks=(odd, payload_block(b"p", BlockFlag(1 << 33)), after),
    )
    encoded = encode_bundle(bundle)
    assert decode_bundle(encoded) == bundle
    assert encode_bundle(decode_bundle(encoded)) == encoded


def test_last_block_flag_is_set_only_on_the_final_block() -> None:
    ext = CanonicalBlock(0x42, b"ab")
    bundle = replace(literal_bundle(), blocks=(payload_block(b"hello"), ext))
    encoded = encode_bundle(bundle)
    assert encoded.endswith(bytes.fromhex("010005") + b"hello" + bytes.fromhex("420802") + b"ab")
    assert all(not b.flags & BlockFlag.LAST_BLOCK for b in decode_bundle(encoded).blocks)


def test_fragment_fields() -> None:
    fragment = replace(
        literal_bundle(),
        flags=literal_bundle().flags | BundleFlag.IS_FRAGMENT,
        fragment_offset=300,
        total_adu_length=305,
    )
    encoded = encode_bundle(fragment)
    assert bytes.fromhex("822c 8231") in encoded  # 300, 305 after the dictionary
    decoded = decode_bundle(encoded)
    assert decoded == fragment
    assert decoded.is_fragment
    assert decoded.bundle_id == BundleId("dtn://c/d", 1000, 2, 300, 5)
    assert str(decoded.bundle_id) == "dtn://c/d@1000.2/300+5"


@pytest.mark.parametrize(
    ("source", "fragment"), [("ipn:10.0", ()), ("dtn://c/d", ()), ("ipn:10.0", (253, 252))]
)
def test_bundle_id_text_matches_bpv7(source: str, fragment: tuple[int, ...]) -> None:
    v6 = BundleId(source, 755000000, 7, *fragment)
    v7 = BundleIdV7(EID.parse(source), 755000000, 7, *fragment)
    assert str(v6) == str(v7)
    assert BundleIdV7.parse(str(v6)) == v7


def test_large_values() -> None:
    big = (1 << 64) - 1
    bundle = replace(literal_bundle(), creation_time=big, sequence=big, lifetime=big)
    assert decode_bundle(encode_bundle(bundle)) == bundle


class TestCbhe:
    def test_cbhe_encoding(self) -> None:
        bundle = Bundle.create(
            source="ipn:32768.0",
            destination="ipn:11.64",
            report_to="ipn:32768.0",
            payload=b"",
            creation_time=0,
            cbhe=True,
        )
        encoded = encode_bundle(bundle)
        # offsets hold node/service numbers; custodian dtn:none is (0, 0); dictionary empty.
        assert encoded[4:].startswith(bytes.fromhex("0b40 82800000 82800000 0000"))
        assert decode_bundle(encoded) == bundle

    @pytest.mark.parametrize("eid", ["dtn://a/b", "ipn:0.0", "ipn:01.2", "ipn:1.+2", "ipn:1"])
    def test_cbhe_refuses_eids_it_cannot_carry(self, eid: str) -> None:
        bundle = Bundle.create(source="ipn:1.1", destination=eid, payload=b"", creation_time=0)
        with pytest.raises(BundleEncodeError, match="CBHE"):
            encode_bundle(replace(bundle, cbhe=True))
        assert decode_bundle(encode_bundle(bundle)).destination == eid

    def test_cbhe_refuses_eid_references(self) -> None:
        block = CanonicalBlock(9, b"", BlockFlag.HAS_EID_REFERENCES, ("ipn:1.1",))
        bundle = Bundle.create(
            source="ipn:1.1",
            destination="ipn:2.1",
            payload=b"",
            creation_time=0,
            extension_blocks=[block],
            cbhe=True,
        )
        with pytest.raises(BundleEncodeError, match="dictionary"):
            encode_bundle(bundle)


class TestFlags:
    def test_priority(self) -> None:
        assert BundleFlag.NONE.priority is Priority.BULK
        assert BundleFlag.PRIORITY_NORMAL.priority is Priority.NORMAL
        assert BundleFlag.PRIORITY_EXPEDITED.priority is Priority.EXPEDITED
        assert BundleFlag.PRIORITY_MASK.priority is Priority.RESERVED

    def test_with_priority_keeps_other_bits(self) -> None:
        flags = BundleFlag.ADMIN_RECORD | BundleFlag.PRIORITY_EXPEDITED
        changed = flags.with_priority(Priority.NORMAL)
        assert changed == BundleFlag.ADMIN_RECORD | BundleFlag.PRIORITY_NORMAL
        assert changed.with_priority(0) == BundleFlag.ADMIN_RECORD

    def test_bundle_priority_property(self) -> None:
        bundle = replace(literal_bundle(), flags=BundleFlag.PRIORITY_EXPEDITED)
        assert bundle.priority is Priority.EXPEDITED

    def test_bit_positions(self) -> None:
        # RFC 5050 4.2: report requests are bits 14-18; 4.3: block flags bits 0-6.
        assert [
            int(f).bit_length() - 1
            for f in (
                BundleFlag.REPORT_RECEPTION,
                BundleFlag.REPORT_CUSTODY_ACCEPTANCE,
                BundleFlag.REPORT_FORWARDING,
                BundleFlag.REPORT_DELIVERY,
                BundleFlag.REPORT_DELETION,
            )
        ] == [14, 15, 16, 17, 18]
        assert int(BlockFlag.HAS_EID_REFERENCES) == 1 << 6
        assert int(BlockFlag.LAST_BLOCK) == 1 << 3


def test_block_repr_is_short() -> None:
    text = repr(payload_block(b"x" * 10_000))
    assert "PAYLOAD" in text and "10000 bytes" in text and len(text) < 200
    assert "CanonicalBlock(77," in repr(CanonicalBlock(77, b""))
