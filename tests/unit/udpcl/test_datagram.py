"""Sorting received UDP datagrams: bundles, keepalives, and everything to ignore."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud import bpv6, bpv7
from dtncloud.udpcl import (
    IPV4_MAX_PAYLOAD,
    KEEPALIVE,
    Classification,
    DatagramKind,
    classify,
    is_keepalive,
)

CREATED = 755_000_000_000


def v7_bundle(payload: bytes = b"hello") -> bytes:
    bundle = bpv7.Bundle.create(
        source="dtn://a/app", destination="dtn://b/app", payload=payload, creation_time=CREATED
    )
    return bpv7.encode_bundle(bundle)


def v6_bundle() -> bytes:
    bundle = bpv6.Bundle.create(
        source="dtn://a/app", destination="ipn:11.64", payload=b"hi", creation_time=731540048
    )
    return bpv6.encode_bundle(bundle)


def test_bpv7_bundle_is_recognised_with_its_id() -> None:
    verdict = classify(v7_bundle())
    assert verdict.kind is DatagramKind.BPV7
    assert verdict.is_bundle
    assert verdict.bundle_id == f"dtn://a/@{CREATED}.0"
    assert verdict.reason is None


def test_bpv7_bundle_with_self_described_cbor_tag() -> None:
    assert classify(b"\xd9\xd9\xf7" + v7_bundle()).kind is DatagramKind.BPV7


def test_bpv6_bundle_is_recognised_unless_refused() -> None:
    data = v6_bundle()
    assert classify(data).kind is DatagramKind.BPV6
    assert classify(data).bundle_id is not None
    refused = classify(data, accept_bpv6=False)
    assert (refused.kind, refused.counter) == (DatagramKind.IGNORED, "bpv6")


@pytest.mark.parametrize("data", [b"", b"\x00", KEEPALIVE, bytes(1000)])
def test_empty_and_all_zero_datagrams_are_keepalives(data: bytes) -> None:
    assert is_keepalive(data)
    assert classify(data) == Classification(DatagramKind.KEEPALIVE)
    assert not classify(data).is_bundle


@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (b"hello", "not_a_bundle"),
        (b"\x00\x01", "not_a_bundle"),  # padding must be zero to the end
        (b"\xa1\x04\x01", "extension_map"),  # UDPCL draft extension map
        (b"\x16\xfe\xfd", "dtls"),  # DTLS handshake record
        (b"\x9f\xff", "undecodable"),  # an empty indefinite array is not a bundle
        (b"\x82\x01\x02", "undecodable"),
        (b"\x06\x00", "undecodable"),  # BPv6 version octet, then nonsense
    ],
)
def test_other_datagrams_are_ignored_with_a_counter(data: bytes, counter: str) -> None:
    verdict = classify(data)
    assert verdict.kind is DatagramKind.IGNORED
    assert verdict.counter == counter
    assert verdict.reason
    assert verdict.bundle_id is None


def test_corrupted_bundle_is_ignored() -> None:
    data = bytearray(v7_bundle())
    data[data.index(b"\x85\x01\x01") - 1] ^= 0xFF  # the primary block's CRC-32C, last byte
    assert classify(bytes(data)).counter == "undecodable"


def test_bundle_over_the_limit_is_ignored_without_decoding() -> None:
    data = v7_bundle(b"x" * 200)
    verdict = classify(data, max_size=len(data) - 1)
    assert verdict.counter == "too_large"
    assert classify(data, max_size=len(data)).kind is DatagramKind.BPV7


def test_memoryview_and_bytearray_inputs() -> None:
    data = v7_bundle()
    assert classify(memoryview(data)).kind is DatagramKind.BPV7
    assert classify(bytearray(data)).kind is DatagramKind.BPV7


def test_ipv4_limit_constant() -> None:
    assert IPV4_MAX_PAYLOAD == 65_535 - 20 - 8


@given(st.binary(max_size=300))
def test_classify_never_raises(data: bytes) -> None:
    verdict = classify(data)
    assert verdict.is_bundle == (verdict.bundle_id is not None)


@given(st.sampled_from([0x06, 0x80, 0x9F, 0x9A]), st.binary(max_size=200))
def test_classify_never_raises_on_bundle_like_starts(first: int, rest: bytes) -> None:
    classify(bytes([first]) + rest)


@given(st.lists(st.integers(0, 2**16), max_size=8))
def test_cbor_arrays_that_are_not_bundles_are_ignored(items: list[int]) -> None:
    verdict = classify(cbor2.dumps(items))
    assert verdict.kind is DatagramKind.IGNORED
