"""Wireshark's BPv7 dissector as a second opinion on the bundles dtncloud encodes.

Each bundle must dissect with no malformed marker and no warning or error besides the
harmless "Unknown type code" (see tests/interop/tshark.py), and tshark's reading of every
field (primary fields, flags, each block's number, flags, CRC type, CRC value and data length,
hop count, bundle age, previous node, fragment fields) must equal ours. tshark is lenient, so
a clean result proves little on its own; the field comparison and the corrupted bundles at
the end (which tshark must flag) keep these tests able to fail.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dtncloud.bpv7 import (
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CrcType,
    encode_block,
    encode_bundle,
    encode_primary,
    hop_count_block,
    previous_node_block,
)
from dtncloud.eid import DTN_NONE, DtnEID, IpnEID
from tests.strategies import MAX_UINT64, bundles, status_report_adus

tshark = pytest.importorskip("tests.interop.tshark", reason="tests/interop/tshark.py is missing")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not tshark.tshark_available(), reason="tshark with the bpv7 dissector is not installed"
    ),
]

# tshark's names for the bundle flag bits it shows one by one.
FLAG_FIELDS = {
    "is_fragment": BundleFlag.IS_FRAGMENT,
    "payload_admin": BundleFlag.ADMIN_RECORD,
    "no_fragment": BundleFlag.MUST_NOT_FRAGMENT,
    "user_app_ack": BundleFlag.ACK_REQUESTED,
    "req_status_time": BundleFlag.STATUS_TIME_REQUESTED,
    "reception_report": BundleFlag.REPORT_RECEPTION,
    "forwarding_report": BundleFlag.REPORT_FORWARDING,
    "delivery_report": BundleFlag.REPORT_DELIVERY,
    "deletion_report": BundleFlag.REPORT_DELETION,
}
BLOCK_FLAG_FIELDS = {
    "replicate_in_fragment": BlockFlag.REPLICATE,
    "status_if_no_process": BlockFlag.REPORT_IF_UNPROCESSABLE,
    "delete_if_no_process": BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE,
    "discard_if_no_process": BlockFlag.DISCARD_IF_UNPROCESSABLE,
}


def distinct(bundles_: Sequence[Bundle]) -> list[Bundle]:
    """The bundles with distinct IDs: tshark reports nothing on a bundle ID it has seen."""
    return [b.with_primary(sequence=index) for index, b in enumerate(bundles_)]


def crc_values(bundle: Bundle) -> list[str]:
    """The CRC field of every block that has one, as tshark writes it (0x..., wire order)."""
    values = []
    for encoded, crc_type in [
        (encode_primary(bundle.primary), bundle.primary.crc_type),
        *[(encode_block(b), b.crc_type) for b in bundle.blocks],
    ]:
        if crc_type:
            size = 2 if crc_type == CrcType.CRC16 else 4
            values.append("0x" + encoded[-size:].hex())
    return values


def assert_tshark_agrees(result: tshark.TsharkResult, bundle: Bundle) -> None:
    assert result.clean, result.describe()
    assert not result.problems("note"), result.describe()
    p = bundle.primary
    key = result.key_fields
    assert key["version"] == 7
    assert key["crc_type"] == p.crc_type
    assert (key["destination"], key["source"], key["report_to"]) == (
        str(p.destination),
        str(p.source),
        str(p.report_to),
    )
    assert (key["creation_time"], key["sequence_number"], key["lifetime"]) == (
        p.creation_time,
        p.sequence,
        p.lifetime,
    )
    assert key["block_types"] == ",".join(str(b.type_code) for b in bundle.blocks)
    assert key["payload_length"] == len(bundle.payload)

    for name, flag in FLAG_FIELDS.items():
        assert result.value(f"bpv7.primary.bundle_flags.{name}") == str(
            int(bool(p.flags & flag))
        ), name
    if p.is_fragment:
        assert result.value("bpv7.primary.frag_offset") == str(p.fragment_offset)
        assert result.value("bpv7.primary.total_len") == str(p.total_adu_length)
    else:
        assert result.value("bpv7.primary.frag_offset") is None

    fields = result.fields
    assert fields["bpv7.canonical.block_num"] == tuple(str(b.number) for b in bundle.blocks)
    assert [int(v, 16) for v in fields["bpv7.canonical.block_flags"]] == [
        int(b.flags) for b in bundle.blocks
    ]
    for name, flag in BLOCK_FLAG_FIELDS.items():
        expected = tuple(str(int(bool(b.flags & flag))) for b in bundle.blocks)
        assert fields[f"bpv7.canonical.block_flags.{name}"] == expected, name
    assert fields["bpv7.crc_type"] == (str(p.crc_type), *(str(b.crc_type) for b in bundle.blocks))
    assert fields["bpv7.canonical.data"] == tuple(str(len(b.data)) for b in bundle.blocks)
    assert fields.get("bpv7.crc_field", ()) == tuple(crc_values(bundle))
    assert set(fields.get("bpv7.crc_status", ())) <= {"1"}

    hops = bundle.hop_count
    if hops is not None:
        assert (result.value("bpv7.hop_count.limit"), result.value("bpv7.hop_count.current")) == (
            str(hops.limit),
            str(hops.count),
        )
    if bundle.bundle_age is not None:
        assert result.value("bpv7.bundle_age.time") == str(bundle.bundle_age)
    if bundle.previous_node is not None:
        assert result.value("bpv7.previous_node.uri") == str(bundle.previous_node)


# -- generated bundles -------------------------------------------------------------------------


def within_tshark_limits(bundle: Bundle) -> Bundle:
    """Fragment fields below 2^32: tshark 4.0 reports "Cannot defragment this size (wireshark
    limitation)" as an error for a total ADU length of 2^32 or more."""
    p = bundle.primary
    if p.fragment_offset is None or p.total_adu_length is None or p.total_adu_length < 2**32:
        return bundle
    offset = p.fragment_offset % 2**31
    total = offset + len(bundle.payload) + p.total_adu_length % 2**20
    return bundle.with_primary(fragment_offset=offset, total_adu_length=total)


# No BPSec blocks (BPSec-free). Administrative records carry a real status report, since
# tshark dissects them; about a non-fragment subject, since tshark 4.0 leaves the two extra
# items of a fragment's report "not fully dissected".
TSHARK_BUNDLES = st.one_of(
    bundles(security_blocks=False, admin=False),
    bundles(security_blocks=False, admin=False, fragment=True),
    bundles(security_blocks=False, admin=False, all_crcs=True),
    bundles(
        security_blocks=False,
        admin=True,
        fragment=False,
        payloads=status_report_adus(subject_fragment=False),
    ),
).map(within_tshark_limits)


# Each example is one tshark run (about half a second): few examples, and no shrinking (the
# assertion message already shows the bundle and everything tshark said about it).
@settings(max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.lists(TSHARK_BUNDLES, min_size=15, max_size=15))
def test_generated_bundles_dissect_cleanly_and_agree(generated: list[Bundle]) -> None:
    batch = distinct(generated)
    results = tshark.dissect_bpv7([encode_bundle(b) for b in batch])
    for result, bundle in zip(results, batch, strict=True):
        assert_tshark_agrees(result, bundle)


# -- chosen bundles ----------------------------------------------------------------------------


def chosen_bundles() -> dict[str, Bundle]:
    made: dict[str, Bundle] = {}
    extensions = [
        previous_node_block(IpnEID(9, 0), 0, flags=BlockFlag.REPLICATE),
        CanonicalBlock(192, 0, b"\x00private", BlockFlag.DISCARD_IF_UNPROCESSABLE),
    ]
    for primary_crc in (CrcType.CRC16, CrcType.CRC32C):
        for block_crc in CrcType:
            made[f"crc {primary_crc.name}/{block_crc.name}"] = Bundle.create(
                source=DtnEID("//src/app"),
                destination=IpnEID(2, 1),
                payload=b"x" * 300,
                creation_time=755_000_000_000,
                lifetime=3_600_000,
                crc_type=primary_crc,
                block_crc_type=block_crc,
                hop_limit=16,
                bundle_age=250,
                extension_blocks=[b.replace(crc_type=block_crc) for b in extensions],
            )
    made["no clock"] = Bundle.create(
        source=IpnEID(1, 1),
        destination=IpnEID(2, 1),
        payload=b"",
        creation_time=0,
        bundle_age=7,
    )
    made["anonymous"] = Bundle.create(
        source=DTN_NONE,
        destination=DtnEID("//dst/~group"),
        payload=b"a",
        creation_time=1,
    )
    made["fragment"] = Bundle.create(
        source=IpnEID(1, 1),
        destination=IpnEID(2, 1),
        payload=b"middle",
        creation_time=2,
    ).with_primary(flags=BundleFlag.IS_FRAGMENT, fragment_offset=100, total_adu_length=1000)
    made["status report"] = Bundle.create(
        source=IpnEID(1, 0),
        destination=IpnEID(2, 0),
        creation_time=3,
        payload=bytes.fromhex("8201848482f5186482f518c881f481f40082028218f319015e821903e800"),
        flags=BundleFlag.ADMIN_RECORD,
    )
    made["all report requests"] = Bundle.create(
        source=IpnEID(1, 1),
        destination=IpnEID(2, 1),
        payload=b"r",
        creation_time=4,
        flags=BundleFlag.REPORTS | BundleFlag.STATUS_TIME_REQUESTED | BundleFlag.ACK_REQUESTED,
    )
    made["largest numbers"] = Bundle.create(
        source=IpnEID(MAX_UINT64, MAX_UINT64),
        destination=IpnEID(MAX_UINT64, 0),
        payload=b"m",
        creation_time=MAX_UINT64,
        sequence=MAX_UINT64,
        lifetime=MAX_UINT64,
        extension_blocks=[hop_count_block(255, 255, MAX_UINT64)],
    )
    return made


CHOSEN = chosen_bundles()


@pytest.fixture(scope="module")
def chosen_results() -> dict[str, tshark.TsharkResult]:
    names = list(CHOSEN)
    results = tshark.dissect_bpv7([encode_bundle(CHOSEN[name]) for name in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("name", list(CHOSEN))
def test_chosen_bundle_dissects_cleanly_and_agrees(
    name: str, chosen_results: dict[str, tshark.TsharkResult]
) -> None:
    assert_tshark_agrees(chosen_results[name], CHOSEN[name])


def test_status_report_is_read_as_one(chosen_results: dict[str, tshark.TsharkResult]) -> None:
    assert "bpv7.admin_rec" in chosen_results["status report"].protocols


# -- corrupted bundles: tshark must object -------------------------------------------------------


def test_corrupted_bundles_are_flagged() -> None:
    good = CHOSEN["crc CRC32C/CRC16"]
    data = encode_bundle(good)
    payload_at = data.index(b"x" * 300)
    flipped_payload = data[:payload_at] + b"y" + data[payload_at + 1 :]
    primary = encode_primary(good.primary)
    flipped_primary = (
        data[:1] + primary[:5] + bytes([primary[5] ^ 0x01]) + primary[6:] + data[1 + len(primary) :]
    )
    duplicate = encode_bundle(
        good.with_primary(sequence=99).add_block(CanonicalBlock(200, 2, b"")), validate=False
    )
    results = tshark.dissect_bpv7([data, flipped_payload, flipped_primary, duplicate])

    assert results[0].clean, results[0].describe()
    for result in results[1:3]:
        keys = {item.key for item in result.problems()}
        assert "bpv7.block_failed_crc" in keys, result.describe()
    assert results[3].problems(), results[3].describe()


def test_block_types_without_a_dissector_only_give_the_harmless_warning() -> None:
    bundle = Bundle.create(
        source=IpnEID(1, 1),
        destination=IpnEID(2, 1),
        payload=b"p",
        creation_time=5,
        extension_blocks=[CanonicalBlock(code, 0, b"\x01") for code in (2, 13, 191, 255, 2**40)],
    )
    (result,) = tshark.dissect_bpv7([encode_bundle(bundle)])
    assert_tshark_agrees(result, bundle)
    assert {item.key for item in result.expert} == {"bpv7.sub_type_unknown"}
