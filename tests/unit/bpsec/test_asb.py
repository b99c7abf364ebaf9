"""The abstract security block: layout, deterministic encoding, and malformed input."""

from __future__ import annotations

import cbor2
import pytest

from dtncloud.bpsec import AbstractSecurityBlock, MalformedSecurityBlock
from dtncloud.bpsec.asb import encode_value
from dtncloud.cborutil import Tagged
from dtncloud.eid import EID
from dtncloud.errors import BundleDecodeError, SecurityError

SOURCE = EID.parse("ipn:2.1")
# A.1's ASB: targets [1], context 1, flags 1, ipn:2.1, params [[1,7],[3,0]], one HMAC.
A1_ASB = bytes.fromhex(
    "810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a8554368bd1e808f606219d2a"
    "10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2f1a73e303dcd4b6ccece003e95e8164dcc89a156e1"
)


def test_decode_a1() -> None:
    asb = AbstractSecurityBlock.decode(A1_ASB)
    assert asb.targets == (1,)
    assert asb.context_id == 1
    assert asb.context_flags == 1
    assert asb.source == SOURCE
    assert asb.parameters == ((1, 7), (3, 0))
    assert asb.parameter(1) == 7 and asb.parameter(2) is None and asb.parameter(2, 6) == 6
    assert len(asb.results_for(1)[0][1]) == 64
    with pytest.raises(KeyError):
        asb.results_for(2)


def test_no_parameters_means_five_items_and_flag_clear() -> None:
    asb = AbstractSecurityBlock((1,), 1, SOURCE, None, (((1, b"x"),),))
    data = asb.encode()
    assert data == bytes.fromhex("8101010082028202018181820141") + b"x"
    assert AbstractSecurityBlock.decode(data) == asb


def test_empty_parameter_list_is_kept_apart_from_none() -> None:
    asb = AbstractSecurityBlock((1,), 1, SOURCE, (), (((1, b""),),))
    assert asb.context_flags == 1
    assert AbstractSecurityBlock.decode(asb.encode()) == asb


def test_constructor_accepts_lists_and_equals_the_decoded_value() -> None:
    built = AbstractSecurityBlock([1], 1, SOURCE, [[1, 7], [3, 0]], [[[1, b"m"]]])  # type: ignore[arg-type]
    assert AbstractSecurityBlock.decode(built.encode()) == built
    assert built.results == (((1, b"m"),),)


def test_reserved_flag_bits_survive() -> None:
    asb = AbstractSecurityBlock((1,), -5, SOURCE, None, (((1, 2),),), reserved_flags=0x10)
    assert asb.context_flags == 0x10
    again = AbstractSecurityBlock.decode(asb.encode())
    assert again == asb and again.context_id == -5


def test_deterministic_encoding_of_foreign_values() -> None:
    value = {-1: 1, 0: [True, None, "x"], "k": Tagged(18, b"\x00")}
    assert encode_value(value) == bytes.fromhex("a3") + b"".join(
        [
            bytes.fromhex("00 83 f5 f6 61 78".replace(" ", "")),
            bytes.fromhex("20 01".replace(" ", "")),
            bytes.fromhex("61 6b d2 41 00".replace(" ", "")),
        ]
    )
    assert encode_value(1.5) == bytes.fromhex("f93e00")
    with pytest.raises(MalformedSecurityBlock):
        encode_value(object())
    with pytest.raises(MalformedSecurityBlock):
        encode_value(2**64)


def seq(*items: object) -> bytes:
    """A CBOR sequence of ``items`` (cbor2 writes the deterministic forms used here)."""
    return b"".join(cbor2.dumps(item) for item in items)


IPN = [2, [2, 1]]
GOOD_RESULTS = [[[1, b"m"]]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "5 or 6 items"),
        (seq([1]), "5 or 6 items"),
        (seq([1], 1, 1, IPN, GOOD_RESULTS), "call for 6"),  # flag set, parameters absent
        (seq([1], 1, 0, IPN, [[1, 7]], GOOD_RESULTS), "trailing data"),
        (seq([1], 1, 0, IPN, GOOD_RESULTS) + b"\x00", "trailing data"),
        (seq([1], 1, 0, IPN) + bytes.fromhex("818182014278"), "malformed CBOR"),
        (seq(1, 1, 0, IPN, GOOD_RESULTS), "targets must be an array"),
        (seq([1], True, 0, IPN, GOOD_RESULTS), "context ID"),
        (seq([1], 2**64, 0, IPN, GOOD_RESULTS), "context ID"),
        (seq([1], 1, -1, IPN, GOOD_RESULTS), "context flags"),
        (seq([1], 1, 0, [1, 1], GOOD_RESULTS), "security source"),
        (seq([1], 1, 0, [5, [2, 1]], GOOD_RESULTS), "security source"),
        (seq([1], 1, 0, "ipn:2.1", GOOD_RESULTS), "security source"),
        (seq([], 1, 0, IPN, []), "at least one security target"),
        (seq([1, 1], 1, 0, IPN, GOOD_RESULTS * 2), "repeat"),
        (seq([-1], 1, 0, IPN, GOOD_RESULTS), "block numbers"),
        (seq(["1"], 1, 0, IPN, GOOD_RESULTS), "block numbers"),
        (seq([1, 2], 1, 0, IPN, GOOD_RESULTS), "sets of results"),
        (seq([1], 1, 0, IPN, {1: 2}), "results must be an array"),
        (seq([1], 1, 1, IPN, {1: 7}, GOOD_RESULTS), "parameters must be an array"),
        (seq([1], 1, 1, IPN, [1, 7], GOOD_RESULTS), "pairs"),
        (seq([1], 1, 1, IPN, [["x", 7]], GOOD_RESULTS), "pairs"),
        (seq([1], 1, 0, IPN, [[[1, 2, 3]]]), "pairs"),
        (seq([1], 1, 0, IPN, [None]), "target results must be an array"),
        (seq([1], 1, 0, IPN, GOOD_RESULTS, 0), "trailing data"),
        (bytes.fromhex("81" * 40), "malformed CBOR"),
        (bytes.fromhex("ff"), "malformed CBOR"),
        (bytes.fromhex("5f41"), "malformed CBOR"),
    ],
)
def test_malformed_asbs(data: bytes, message: str) -> None:
    with pytest.raises(MalformedSecurityBlock, match=message) as info:
        AbstractSecurityBlock.decode(data)
    # Catchable as a security error and as a block a bundle agent cannot read.
    assert isinstance(info.value, SecurityError)
    assert isinstance(info.value, BundleDecodeError)
    assert info.value.reason == 8


def test_constructor_checks_the_structure_too() -> None:
    with pytest.raises(MalformedSecurityBlock, match="sets of results"):
        AbstractSecurityBlock((1, 2), 1, SOURCE, None, (((1, b""),),))
    with pytest.raises(MalformedSecurityBlock, match="reserved_flags"):
        AbstractSecurityBlock((1,), 1, SOURCE, None, (((1, b""),),), reserved_flags=1)
    with pytest.raises(MalformedSecurityBlock, match="EID"):
        AbstractSecurityBlock((1,), 1, "ipn:2.1", None, (((1, b""),),))  # type: ignore[arg-type]
    with pytest.raises(MalformedSecurityBlock, match="pairs"):
        AbstractSecurityBlock((1,), 1, SOURCE, None, (((1, b"", 3),),))  # type: ignore[arg-type]
    with pytest.raises(MalformedSecurityBlock, match="IDs must be integers"):
        AbstractSecurityBlock((1,), 1, SOURCE, (("a", 1),), (((1, b""),),))  # type: ignore[arg-type]


def test_item_budget_bounds_the_work() -> None:
    targets = bytes.fromhex("9901f4") + bytes.fromhex("01") * 500
    with pytest.raises(MalformedSecurityBlock, match="too many"):
        AbstractSecurityBlock.decode(targets + b"\x01\x00\x82\x01\x00\x80", max_items=100)


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(MalformedSecurityBlock, match="bytes"):
        AbstractSecurityBlock.decode("text")  # type: ignore[arg-type]
