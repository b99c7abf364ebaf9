"""The CBOR beacon codec (dtn7-rs "IPND version 7")."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.discovery import (
    FLAG_EID,
    FLAG_PERIOD,
    FLAG_SERVICES,
    Beacon,
    BeaconDecodeError,
    Service,
    UnsupportedBeacon,
    decode_beacon,
    encode_beacon,
    format_address,
)
from dtncloud.eid import EID, IpnEID
from tests.strategies import node_ids

N1 = EID.parse("dtn://n1/")


def test_full_beacon_layout_matches_dtn7_rs() -> None:
    beacon = Beacon(N1, 3, (Service("tcpcl", 4556), Service("udp", None)), 2000, ((191, b"K"),))
    data = encode_beacon(beacon)
    assert cbor2.loads(data) == [
        7,
        FLAG_EID | FLAG_SERVICES | FLAG_PERIOD,
        [1, "//n1/"],
        3,
        [[["tcp", 4556], ["udp", None]], {191: [75]}],
        2,
    ]
    assert decode_beacon(data) == beacon


def test_plain_beacon_has_four_items() -> None:
    data = encode_beacon(Beacon(IpnEID(5, 0), 0))
    assert cbor2.loads(data) == [7, FLAG_EID, [2, [5, 0]], 0]
    assert data.hex() == "840701820282050000"


def test_five_items_read_by_flags() -> None:
    with_services = cbor2.dumps([7, 3, [1, "//n1/"], 9, [[["mtcp", 16163]], {}]])
    assert decode_beacon(with_services).services == (Service("mtcp", 16163),)
    assert decode_beacon(with_services).period_ms is None
    with_period = cbor2.dumps([7, 5, [1, "//n1/"], 9, 10])
    assert decode_beacon(with_period).period_ms == 10_000
    assert decode_beacon(with_period).services == ()


def test_dtn7_rs_tcp_is_our_tcpcl_and_back() -> None:
    data = cbor2.dumps([7, 3, [1, "//n1/"], 0, [[["tcp", 4556], ["http", None]], {}]])
    assert decode_beacon(data).services == (Service("tcpcl", 4556), Service("http"))


def test_host_travels_as_a_third_item() -> None:
    beacon = Beacon(N1, 1, (Service("udp", 4556, "relay.example"),))
    assert cbor2.loads(encode_beacon(beacon))[4][0] == [["udp", 4556, "relay.example"]]
    assert decode_beacon(encode_beacon(beacon)) == beacon


def test_custom_service_bytes_accepted_as_byte_string_too() -> None:
    data = cbor2.dumps([7, 3, [1, "//n1/"], 0, [[], {63: b"hello"}]])
    assert decode_beacon(data).custom == ((63, b"hello"),)


def test_period_is_rounded_up_to_seconds() -> None:
    assert cbor2.loads(encode_beacon(Beacon(N1, 0, period_ms=1)))[-1] == 1
    assert cbor2.loads(encode_beacon(Beacon(N1, 0, period_ms=2500)))[-1] == 3


def test_pre_rfc_dtn_eid_is_accepted() -> None:
    data = cbor2.dumps([7, 1, [1, "n1/"], 0])
    assert str(decode_beacon(data).node_id) == "dtn://n1/"


@pytest.mark.parametrize(
    "data",
    [
        bytes([4, 0x03, 0, 1]),  # IPND draft version 4 (SDNV)
        bytes([2, 0x01, 0, 1]),  # IBR-DTN version 2
        cbor2.dumps([4, 1, [1, "//n1/"], 0]),
        cbor2.dumps([8, 1, [1, "//n1/"], 0]),
    ],
)
def test_other_versions_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedBeacon):
        decode_beacon(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"hello",
        cbor2.dumps({"version": 7}),
        cbor2.dumps([7]),
        cbor2.dumps([7, 1, [1, "//n1/"]]),  # no sequence number
        cbor2.dumps([7, 1, [1, "//n1/"], 0, 1, 2, 3]),
        cbor2.dumps([7, 256, [1, "//n1/"], 0]),
        cbor2.dumps([7, 1, [1, 0], 0]),  # dtn:none
        cbor2.dumps([7, 1, [3, "x"], 0]),
        cbor2.dumps([7, 1, [1, "//n1/"], -1]),
        cbor2.dumps([7, 1, [1, "//n1/"], True]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[["tcp"]], {}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[["tcp", 70000]], {}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[["", 1]], {}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[["x" * 65, 1]], {}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[], {256: b""}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[], {1: [256]}]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, [[]]]),
        cbor2.dumps([7, 3, [1, "//n1/"], 0, "services"]),
        cbor2.dumps([7, 5, [1, "//n1/"], 0, -5]),
        cbor2.dumps([7, 1, [1, "//n1/"], 0]) + b"\x00",  # trailing bytes
        b"\x9f" * 40 + b"\xff" * 40,  # nested too deep
        b"\x84\x07\x01\x82\x01\x7a\xff\xff\xff\xff",  # huge announced text length
        bytes(70_000),
    ],
)
def test_malformed_beacons_raise_beacon_decode_error(data: bytes) -> None:
    with pytest.raises(BeaconDecodeError):
        decode_beacon(data)


def test_service_checks_its_fields() -> None:
    with pytest.raises(ValueError):
        Service("", 1)
    with pytest.raises(ValueError):
        Service("tcpcl", 65536)
    with pytest.raises(ValueError):
        Service("tcpcl", 1, "")


@pytest.mark.parametrize(
    ("service", "source", "address"),
    [
        (Service("tcpcl", 4556), "192.0.2.7", "192.0.2.7:4556"),
        (Service("tcpcl", 4556), "fe80::1%eth0", "[fe80::1%eth0]:4556"),
        (Service("udp", 4556, "relay.example"), "192.0.2.7", "relay.example:4556"),
        (Service("http"), "192.0.2.7", "192.0.2.7"),
    ],
)
def test_service_address(service: Service, source: str, address: str) -> None:
    assert service.address(source) == address


def test_format_address_keeps_brackets() -> None:
    assert format_address("[::1]", 1) == "[::1]:1"


def test_encoding_checks_ranges() -> None:
    with pytest.raises(ValueError):
        encode_beacon(Beacon(N1, 2**32))
    with pytest.raises(ValueError):
        encode_beacon(Beacon(N1, 0, custom=((256, b""),)))


# -- properties ---------------------------------------------------------------------------

cla_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12
).filter(lambda name: name != "tcp")  # "tcp" is read as "tcpcl" (see the codec docstring)
services = st.builds(
    Service,
    cla_names,
    st.none() | st.integers(0, 65535),
    st.none() | st.text(min_size=1, max_size=20),
)
beacons = st.builds(
    Beacon,
    node_ids(),
    st.integers(0, 2**32 - 1),
    st.lists(services, max_size=5).map(tuple),
    st.none() | st.integers(0, 10**6).map(lambda s: s * 1000),
    st.dictionaries(st.integers(0, 255), st.binary(max_size=8), max_size=3).map(
        lambda d: tuple(sorted(d.items()))
    ),
)


@given(beacons)
def test_round_trip(beacon: Beacon) -> None:
    assert decode_beacon(encode_beacon(beacon)) == beacon


@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_beacon_decode_error(data: bytes) -> None:
    with contextlib.suppress(BeaconDecodeError):
        decode_beacon(data)


@given(beacons, st.data())
def test_corrupted_beacons_only_ever_raise_beacon_decode_error(
    beacon: Beacon, data: st.DataObject
) -> None:
    encoded = bytearray(encode_beacon(beacon))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    with contextlib.suppress(BeaconDecodeError):
        decode_beacon(bytes(encoded[:cut]))


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**64), 2**64)
        | st.text(max_size=5)
        | st.binary(max_size=5)
        | st.floats(),
        lambda inner: (
            st.lists(inner, max_size=6)
            | st.dictionaries(st.integers(0, 300) | st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_any_cbor_item_only_ever_raises_beacon_decode_error(item: object) -> None:
    for candidate in (item, [7, 3, [1, "//n1/"], 0, item], [7, 5, [1, "//n1/"], 0, [[], {}], item]):
        with contextlib.suppress(BeaconDecodeError):
            decode_beacon(cbor2.dumps(candidate))
