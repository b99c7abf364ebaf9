"""Endpoint IDs (dtncloud.eid): parsing, formatting, CBOR forms, node IDs, lenient forms and
error messages (RFC 9171 section 4.2.5)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.eid import DTN_NONE, EID, DtnEID, IpnEID, parse_eid
from dtncloud.errors import CodecError, InvalidEID
from tests.strategies import MAX_UINT64, dtn_eids, eids, ipn_eids

# -- parsing and formatting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dtn:none", DTN_NONE),
        ("dtn://node/", DtnEID("//node/")),
        ("dtn://node/app/sub", DtnEID("//node/app/sub")),
        ("dtn://node/~group", DtnEID("//node/~group")),
        ("dtn://a.b-c_d/x?y=1#z", DtnEID("//a.b-c_d/x?y=1#z")),
        ("ipn:0.0", IpnEID(0, 0)),
        ("ipn:23.42", IpnEID(23, 42)),
        (f"ipn:{MAX_UINT64}.{MAX_UINT64}", IpnEID(MAX_UINT64, MAX_UINT64)),
        ("DTN://node/x", DtnEID("//node/x")),  # scheme names are case-insensitive
        ("IPN:1.2", IpnEID(1, 2)),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert EID.parse(text) == expected
    assert parse_eid(text) == expected


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"no scheme"),
        ("node/app", r"'node/app' is not an endpoint ID: no scheme"),
        ("http://x/", r"unsupported URI scheme 'http'"),
        ("dtn:", r"a dtn EID must look like dtn://node/demux"),
        ("dtn:node/app", r"dtn:node/app: a dtn EID must look like dtn://node/demux"),
        ("dtn://node", r"missing '/' after the node name"),
        ("dtn:///app", r"empty node name"),
        ("dtn://no de/", r"only printable ASCII without spaces"),
        ("dtn://nöde/", r"only printable ASCII"),
        ("dtn://node/\x7f", r"only printable ASCII"),
        ("dtn://node/\t", r"only printable ASCII"),
        ("ipn:1", r"expected ipn:NODE.SERVICE with decimal numbers"),
        ("ipn:1.", r"expected ipn:NODE.SERVICE"),
        ("ipn:.1", r"expected ipn:NODE.SERVICE"),
        ("ipn:1.2.3", r"expected ipn:NODE.SERVICE"),
        ("ipn:-1.2", r"expected ipn:NODE.SERVICE"),
        ("ipn:+1.2", r"expected ipn:NODE.SERVICE"),
        ("ipn:0x1.2", r"expected ipn:NODE.SERVICE"),
        ("ipn: 1.2", r"expected ipn:NODE.SERVICE"),
        (f"ipn:{MAX_UINT64 + 1}.0", r"numbers must be 0..2\^64-1"),
        (f"ipn:0.{MAX_UINT64 + 1}", r"numbers must be 0..2\^64-1"),
        ("ipn:\u0661.1", r"expected ipn:NODE.SERVICE"),  # Arabic-Indic digit one
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, pattern: str) -> None:
    with pytest.raises(InvalidEID, match=pattern):
        EID.parse(text)
    assert issubclass(InvalidEID, CodecError)
    assert issubclass(InvalidEID, ValueError)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(InvalidEID, match="must be a string, not bytes"):
        EID.parse(b"dtn:none")  # type: ignore[arg-type]


def test_ipn_service_with_non_ascii_digits_is_refused() -> None:
    with pytest.raises(InvalidEID):
        EID.parse("ipn:1.\u0661")


@pytest.mark.parametrize(
    "text", ["ipn:1.\u00b2", "ipn:" + "9" * 5000 + ".1", "ipn:1." + "9" * 5000]
)
def test_odd_ipn_numbers_raise_invalid_eid(text: str) -> None:
    with pytest.raises(InvalidEID):
        EID.parse(text)


@pytest.mark.parametrize(
    "text",
    ["ipn:1_0.1", "ipn:1.1_0", "ipn:1.+2", "ipn:1.-2", "ipn:1. 2", "ipn:1.2 ", "ipn:\uff11.2"],
)
def test_ipn_numbers_are_plain_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidEID, match=r"expected ipn:NODE.SERVICE with decimal numbers"):
        EID.parse(text)


def test_ipn_numbers_may_have_leading_zeros() -> None:
    # RFC 9171's ABNF is 1*DIGIT; zeros in front do not make a number too large.
    assert EID.parse("ipn:" + "0" * 5000 + "1.02") == IpnEID(1, 2)
    with pytest.raises(InvalidEID, match=r"numbers must be 0..2\^64-1"):
        EID.parse(f"ipn:1.000{MAX_UINT64 + 1}")


def test_long_ipn_errors_are_clipped() -> None:
    with pytest.raises(InvalidEID) as caught:
        EID.parse("ipn:1." + "9" * 5000)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("eid", "text", "representation"),
    [
        (DTN_NONE, "dtn:none", "DTN_NONE"),
        (DtnEID("//n/a/b"), "dtn://n/a/b", "DtnEID('//n/a/b')"),
        (IpnEID(3, 0), "ipn:3.0", "IpnEID(3, 0)"),
    ],
)
def test_str_and_repr(eid: EID, text: str, representation: str) -> None:
    assert str(eid) == text
    assert repr(eid) == representation


@given(eids())
def test_text_form_round_trips(eid: EID) -> None:
    assert EID.parse(str(eid)) == eid


@given(eids())
def test_cbor_form_round_trips_and_matches_cbor2(eid: EID) -> None:
    encoded = eid.to_cbor()
    assert eid.cbor_length() == len(encoded)
    item = cbor2.loads(encoded)
    assert cbor2.dumps(item) == encoded  # deterministic, as cbor2 writes it
    assert EID.from_cbor(item) == eid


@given(dtn_eids())
def test_dtn_cbor_form_keeps_the_leading_slashes(eid: DtnEID) -> None:
    assert cbor2.loads(eid.to_cbor()) == [1, str(eid)[4:]]
    assert str(eid)[4:].startswith("//")


@given(ipn_eids())
def test_ipn_cbor_form(eid: IpnEID) -> None:
    assert cbor2.loads(eid.to_cbor()) == [2, [eid.node, eid.service]]


# -- from_cbor errors and lenient forms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ([1], r"an EID must be a 2-item array"),
        ([1, 0, 0], r"an EID must be a 2-item array"),
        ("dtn:none", r"an EID must be a 2-item array"),
        ((1, 0), r"an EID must be a 2-item array"),
        ([0, 0], r"unsupported EID scheme code 0"),
        ([3, "x"], r"unsupported EID scheme code 3"),
        ([True, 0], r"unsupported EID scheme code True"),
        ([1.0, 0], r"unsupported EID scheme code"),
        ([1, 1], r"dtn SSP must be a text string or 0"),
        ([1, False], r"dtn SSP must be a text string or 0"),
        ([1, b"//a/"], r"dtn SSP must be a text string or 0"),
        ([1, "a/b"], r"a dtn EID must look like dtn://node/demux"),
        ([2, [1]], r"ipn SSP must be \[node, service\]"),
        ([2, [1, 2, 3]], r"ipn SSP must be \[node, service\]"),
        ([2, [1, "2"]], r"ipn SSP must be \[node, service\]"),
        ([2, [1, True]], r"ipn SSP must be \[node, service\]"),
        ([2, [-1, 0]], r"numbers must be 0..2\^64-1"),
        ([2, [0, 2**64]], r"numbers must be 0..2\^64-1"),
        ([2, "1.2"], r"ipn SSP must be \[node, service\]"),
    ],
)
def test_from_cbor_errors(item: object, pattern: str) -> None:
    with pytest.raises(InvalidEID, match=pattern):
        EID.from_cbor(item)


@pytest.mark.parametrize(
    ("ssp", "normalised"),
    [
        ("GS2", "//GS2/"),
        ("n2/inbox", "//n2/inbox"),
        ("node/a/b", "//node/a/b"),
        ("node/", "//node/"),
    ],
)
def test_lenient_accepts_pre_rfc_dtn_forms(ssp: str, normalised: str) -> None:
    with pytest.raises(InvalidEID, match="dtn://node/demux"):
        EID.parse(f"dtn:{ssp}")
    assert EID.parse(f"dtn:{ssp}", lenient=True) == DtnEID(normalised)
    assert EID.from_cbor([1, ssp], lenient=True) == DtnEID(normalised)
    # and the encoder always writes the RFC form
    assert cbor2.loads(EID.from_cbor([1, ssp], lenient=True).to_cbor()) == [1, normalised]


@pytest.mark.parametrize("ssp", ["", "/x", "//", "no de", "//x"])
def test_lenient_still_refuses_garbage(ssp: str) -> None:
    with pytest.raises(InvalidEID):
        EID.parse(f"dtn:{ssp}", lenient=True)


def test_lenient_does_not_change_rfc_forms() -> None:
    for text in ("dtn://a/b", "dtn:none", "ipn:1.2"):
        assert EID.parse(text, lenient=True) == EID.parse(text)


def test_ipn_node_zero_with_a_service_is_kept() -> None:
    # bp7-rs treats ipn:0.x as ipn:0.0; dtncloud keeps what was sent.
    assert EID.from_cbor([2, [0, 1]]) == IpnEID(0, 1)


# -- node IDs and singletons --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "node_id"),
    [
        ("dtn://node/app", "dtn://node/"),
        ("dtn://node/a/b/", "dtn://node/"),
        ("dtn://node/", "dtn://node/"),
        ("ipn:5.7", "ipn:5.0"),
        ("ipn:5.0", "ipn:5.0"),
        ("dtn:none", "dtn:none"),
    ],
)
def test_node_id(text: str, node_id: str) -> None:
    eid = EID.parse(text)
    assert str(eid.node_id) == node_id
    assert eid.is_node_id == (text == node_id)
    assert eid.node_id.node_id == eid.node_id


@pytest.mark.parametrize(
    ("text", "singleton"),
    [
        ("dtn://n/app", True),
        ("dtn://n/~group", False),
        ("dtn://n/", True),
        ("dtn://n/a~b", True),
        ("ipn:1.2", True),
        ("dtn:none", False),
    ],
)
def test_singleton(text: str, singleton: bool) -> None:
    assert EID.parse(text).is_singleton is singleton


def test_dtn_parts_and_derivations() -> None:
    eid = EID.parse("dtn://relay.example/inbox/x")
    assert isinstance(eid, DtnEID)
    assert (eid.node, eid.demux) == ("relay.example", "inbox/x")
    assert eid.with_demux("other") == DtnEID("//relay.example/other")
    with pytest.raises(InvalidEID):
        eid.with_demux("has space")
    ipn = IpnEID(4, 9)
    assert ipn.with_service(0) == ipn.node_id == IpnEID(4, 0)


def test_none_properties() -> None:
    assert DTN_NONE.is_none and not IpnEID(0, 0).is_none and not DtnEID("//n/").is_none
    assert DTN_NONE.to_cbor() == b"\x82\x01\x00"
    assert EID.parse("dtn:none") is DTN_NONE


def test_matches() -> None:
    eid = EID.parse("dtn://node/app/x")
    assert eid.matches("dtn://node/app/x")
    assert eid.matches("dtn://node/*")
    assert not eid.matches("dtn://node/app")
    assert not eid.matches("dtn://other/*")


def test_eids_are_hashable_values() -> None:
    a, b = EID.parse("ipn:1.2"), EID.parse("ipn:1.2")
    assert a == b and hash(a) == hash(b) and len({a, b, DTN_NONE}) == 2
    assert EID.parse("dtn://n/") != EID.parse("dtn://n/x")


def test_parse_eid_passes_eids_through() -> None:
    eid = IpnEID(1, 2)
    assert parse_eid(eid) is eid
    assert parse_eid("dtn:GS2", lenient=True) == DtnEID("//GS2/")


@given(st.integers(0, MAX_UINT64), st.integers(0, MAX_UINT64))
def test_ipn_cbor_length_counts_heads(node: int, service: int) -> None:
    assert IpnEID(node, service).cbor_length() == len(cbor2.dumps([2, [node, service]]))
