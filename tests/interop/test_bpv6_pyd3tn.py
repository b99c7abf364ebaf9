"""Differential tests of the BPv6 codec against pyd3tn (the µD3TN project's Python tools).

pyd3tn 0.15.2 offers a BPv6 *serializer* (``pyd3tn.bundle6.serialize_bundle6``: primary block
and payload block, no extension blocks, no dictionary deduplication, no CBHE) and an SDNV
codec (``pyd3tn.sdnv``), but no BPv6 bundle parser. So the two directions are:

* bundles pyd3tn serializes must decode with ours to exactly the fields it was given, and our
  re-encoding must equal its bytes whenever its dictionary holds no repeated string (then the
  two layouts coincide);
* bundles we encode are read back by a small walker built on pyd3tn's own SDNV decoder (not
  ours), and must show the same fields as pyd3tn's serialization of the same bundle.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv6 import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    SdnvError,
    decode_bundle,
    decode_sdnv,
    encode_bundle,
    encode_sdnv,
    payload_block,
)

bundle6 = pytest.importorskip("pyd3tn.bundle6")
pyd3tn_sdnv = pytest.importorskip("pyd3tn.sdnv")

pytestmark = pytest.mark.interop

U64 = st.integers(0, (1 << 64) - 1)
NUMBER = st.one_of(st.integers(0, 1 << 20), U64)
SCHEME = st.from_regex(r"[a-z][a-z0-9+.\-]{0,7}", fullmatch=True)
SSP = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=24)
EID = st.one_of(
    st.just("dtn:none"),
    st.builds(lambda n, s: f"ipn:{n}.{s}", NUMBER, NUMBER),
    st.builds(lambda node, app: f"dtn://{node}/{app}", SCHEME, SCHEME),
    st.builds(lambda scheme, ssp: f"{scheme}:{ssp}", SCHEME, SSP),
)


@st.composite
def pyd3tn_arguments(draw: st.DrawFn, distinct: bool = False) -> dict[str, Any]:
    """Keyword arguments for serialize_bundle6 that make a bundle valid under RFC 5050.

    With ``distinct`` the four EIDs use eight different scheme and SSP strings, so that
    deduplication has nothing to do and both encoders must write the same dictionary.
    """
    if distinct:
        parts = draw(st.lists(SCHEME, min_size=8, max_size=8, unique=True))
        eids = [f"{parts[i]}:{parts[i + 1]}" for i in range(0, 8, 2)]
    else:
        eids = [draw(EID) for _ in range(4)]
    source = eids[1]
    flags = draw(st.one_of(st.integers(0, (1 << 21) - 1), U64)) & ~int(BundleFlag.IS_FRAGMENT)
    if flags & BundleFlag.ADMIN_RECORD or source == "dtn:none":
        flags &= ~int(BundleFlag.CUSTODY_REQUESTED | BundleFlag.REPORTS)
    if source == "dtn:none":
        flags |= BundleFlag.MUST_NOT_FRAGMENT
    payload = draw(st.binary(max_size=300))
    arguments: dict[str, Any] = {
        "source_eid": source,
        "destination_eid": eids[0],
        "report_to_eid": eids[2],
        "custodian_eid": eids[3],
        "payload": payload,
        "creation_timestamp": draw(NUMBER),
        "sequence_number": draw(NUMBER),
        "lifetime": draw(NUMBER),
        "flags": flags,
    }
    if draw(st.booleans()):
        offset = draw(st.integers(0, 1 << 40))
        arguments["flags"] = flags | BundleFlag.IS_FRAGMENT
        arguments["fragment_offset"] = offset
        arguments["total_adu_length"] = offset + len(payload) + draw(st.integers(0, 1 << 40))
    return arguments


def as_bundle(arguments: dict[str, Any]) -> Bundle:
    """The bundle we expect serialize_bundle6(**arguments) to stand for."""
    return Bundle(
        flags=BundleFlag(arguments["flags"]),
        destination=arguments["destination_eid"],
        source=arguments["source_eid"],
        report_to=arguments["report_to_eid"],
        custodian=arguments["custodian_eid"],
        creation_time=arguments["creation_timestamp"],
        sequence=arguments["sequence_number"],
        lifetime=arguments["lifetime"],
        # pyd3tn writes one block, the payload, with no flags but the last-block flag
        blocks=(payload_block(arguments["payload"]),),
        fragment_offset=arguments.get("fragment_offset"),
        total_adu_length=arguments.get("total_adu_length"),
    )


def as_arguments(bundle: Bundle) -> dict[str, Any]:
    """serialize_bundle6 keyword arguments for a bundle pyd3tn can express."""
    arguments: dict[str, Any] = {
        "source_eid": bundle.source,
        "destination_eid": bundle.destination,
        "report_to_eid": bundle.report_to,
        "custodian_eid": bundle.custodian,
        "payload": bundle.payload,
        "creation_timestamp": bundle.creation_time,
        "sequence_number": bundle.sequence,
        "lifetime": bundle.lifetime,
        "flags": int(bundle.flags),
    }
    if bundle.fragment_offset is not None:
        arguments["fragment_offset"] = bundle.fragment_offset
        arguments["total_adu_length"] = bundle.total_adu_length
    return arguments


def dictionary_strings(arguments: dict[str, Any]) -> list[str]:
    names = ("destination_eid", "source_eid", "report_to_eid", "custodian_eid")
    return [part for name in names for part in arguments[name].split(":", 1)]


def walk_with_pyd3tn_sdnv(data: bytes) -> dict[str, Any]:
    """Read a dictionary-based BPv6 bundle using pyd3tn's SDNV decoder, not ours."""
    pos = 0

    def sdnv() -> int:
        nonlocal pos
        value, used = pyd3tn_sdnv.sdnv_decode(data[pos:])
        pos += used
        return int(value)

    assert data[0] == 6
    pos = 1
    fields: dict[str, Any] = {"flags": sdnv()}
    length = sdnv()
    end_of_primary = pos + length
    offsets = [sdnv() for _ in range(8)]
    fields["creation_time"], fields["sequence"], fields["lifetime"] = sdnv(), sdnv(), sdnv()
    dict_length = sdnv()
    dictionary = data[pos : pos + dict_length]
    pos += dict_length

    def string(offset: int) -> str:
        return dictionary[offset : dictionary.index(b"\0", offset)].decode("ascii")

    for i, name in enumerate(("destination", "source", "report_to", "custodian")):
        fields[name] = f"{string(offsets[2 * i])}:{string(offsets[2 * i + 1])}"
    if fields["flags"] & 1:
        fields["fragment_offset"], fields["total_adu_length"] = sdnv(), sdnv()
    assert pos == end_of_primary
    blocks = []
    while pos < len(data):
        block_type = data[pos]
        pos += 1
        block_flags = sdnv()
        block_length = sdnv()
        blocks.append((block_type, block_flags, data[pos : pos + block_length]))
        pos += block_length
    fields["blocks"] = blocks
    return fields


# -- pyd3tn -> dtncloud ------------------------------------------------------------------------


@given(pyd3tn_arguments())
def test_pyd3tn_bundles_decode(arguments: dict[str, Any]) -> None:
    raw = bundle6.serialize_bundle6(**arguments)
    bundle = decode_bundle(raw)
    assert bundle == as_bundle(arguments)
    assert int(bundle.flags) == arguments["flags"]
    assert bundle.payload == arguments["payload"]
    assert not bundle.cbhe
    ours = encode_bundle(bundle)
    strings = dictionary_strings(arguments)
    if len(set(strings)) == len(strings):
        # Nothing to deduplicate: both encoders must lay the dictionary out the same way.
        assert ours == raw
    else:
        assert len(ours) < len(raw)
        assert decode_bundle(ours) == bundle


@given(pyd3tn_arguments(distinct=True))
def test_same_bytes_when_there_is_nothing_to_deduplicate(arguments: dict[str, Any]) -> None:
    raw = bundle6.serialize_bundle6(**arguments)
    assert encode_bundle(as_bundle(arguments)) == raw
    assert encode_bundle(decode_bundle(raw)) == raw


def test_pyd3tn_default_bundle() -> None:
    raw = bundle6.serialize_bundle6(
        "dtn://sender/app", "ipn:11.64", b"hello", creation_timestamp=1, sequence_number=0
    )
    bundle = decode_bundle(raw)
    assert (bundle.source, bundle.destination) == ("dtn://sender/app", "ipn:11.64")
    assert (bundle.report_to, bundle.custodian) == ("dtn:none", "dtn:none")
    assert bundle.flags == BundleFlag.SINGLETON_DESTINATION | BundleFlag.PRIORITY_NORMAL
    assert bundle.lifetime == 300
    assert bundle.payload == b"hello"


# -- dtncloud -> pyd3tn ------------------------------------------------------------------------


@given(pyd3tn_arguments())
def test_our_bundles_read_with_pyd3tn_sdnv(arguments: dict[str, Any]) -> None:
    bundle = as_bundle(arguments)
    ours = walk_with_pyd3tn_sdnv(encode_bundle(bundle))
    theirs = walk_with_pyd3tn_sdnv(bundle6.serialize_bundle6(**as_arguments(bundle)))
    assert ours == theirs
    assert ours["blocks"] == [(BlockType.PAYLOAD, BlockFlag.LAST_BLOCK, bundle.payload)]
    for name in ("destination", "source", "report_to", "custodian"):
        assert ours[name] == getattr(bundle, name)
    assert ours["flags"] == int(bundle.flags)
    assert ours.get("fragment_offset") == bundle.fragment_offset


# -- SDNV --------------------------------------------------------------------------------------


@given(U64)
def test_sdnv_encoding_agrees(value: int) -> None:
    assert encode_sdnv(value) == pyd3tn_sdnv.sdnv_encode(value)
    assert decode_sdnv(encode_sdnv(value)) == pyd3tn_sdnv.sdnv_decode(encode_sdnv(value))


@given(st.binary(max_size=16))
def test_sdnv_decoding_agrees(data: bytes) -> None:
    try:
        theirs = pyd3tn_sdnv.sdnv_decode(data)
    except ValueError:
        theirs = None  # pyd3tn: "Insufficient bytes"
    try:
        ours = decode_sdnv(data)
    except SdnvError:
        # Ours refuses more: besides truncation, anything over 10 bytes or 64 bits.
        assert theirs is None or theirs[1] > 10 or theirs[0] >= 1 << 64
        return
    assert ours == theirs


# -- code points -------------------------------------------------------------------------------


def test_flag_values_agree() -> None:
    theirs = bundle6.RFC5050Flag
    pairs = [
        (BundleFlag.IS_FRAGMENT, theirs.IS_FRAGMENT),
        (BundleFlag.ADMIN_RECORD, theirs.ADMINISTRATIVE_RECORD),
        (BundleFlag.MUST_NOT_FRAGMENT, theirs.MUST_NOT_BE_FRAGMENTED),
        (BundleFlag.CUSTODY_REQUESTED, theirs.CUSTODY_TRANSFER_REQUESTED),
        (BundleFlag.SINGLETON_DESTINATION, theirs.SINGLETON_ENDPOINT),
        (BundleFlag.ACK_REQUESTED, theirs.ACKNOWLEDGEMENT_REQUESTED),
        (BundleFlag.PRIORITY_NORMAL, theirs.NORMAL_PRIORITY),
        (BundleFlag.PRIORITY_EXPEDITED, theirs.EXPEDITED_PRIORITY),
        (BundleFlag.REPORT_RECEPTION, theirs.REPORT_RECEPTION),
        (BundleFlag.REPORT_CUSTODY_ACCEPTANCE, theirs.REPORT_CUSTODY_ACCEPTANCE),
        (BundleFlag.REPORT_FORWARDING, theirs.REPORT_FORWARDING),
        (BundleFlag.REPORT_DELIVERY, theirs.REPORT_DELIVERY),
        (BundleFlag.REPORT_DELETION, theirs.REPORT_DELETION),
    ]
    assert [int(ours) for ours, _ in pairs] == [int(t) for _, t in pairs]
    block = bundle6.BlockFlag
    assert [int(f) for f in BlockFlag if f] == [
        int(block.MUST_BE_REPLICATED),
        int(block.REPORT_IF_UNPROC),
        int(block.DELETE_BUNDLE_IF_UNPROC),
        int(block.LAST_BLOCK),
        int(block.DISCARD_IF_UNPROC),
        int(block.FWD_UNPROC),
        int(block.HAS_EID_REF_FIELD),
    ]


def test_block_type_codes_where_pyd3tn_differs() -> None:
    # pyd3tn's bundle6.BlockType borrows the BPv7 codes (RFC 9171) for its extension blocks:
    # PREVIOUS_NODE 7, BUNDLE_AGE 8, HOP_COUNT 9. In the BPv6 world 5 is the previous-hop
    # insertion block (RFC 6259), 8 the metadata block (RFC 6258), 9 the BSP extension
    # security block (RFC 6257). Only the payload code agrees; pyd3tn never writes the others.
    assert int(bundle6.BlockType.PAYLOAD) == BlockType.PAYLOAD
    assert int(bundle6.BlockType.BUNDLE_AGE) == BlockType.METADATA
    assert int(bundle6.BlockType.HOP_COUNT) == BlockType.EXTENSION_SECURITY
