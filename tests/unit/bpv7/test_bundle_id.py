"""Bundle IDs (dtncloud.bpv7.BundleId): the text form and BundleId.parse, its inverse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv7 import Bundle, BundleId
from dtncloud.bpv7.bundle import InvalidBundleId
from dtncloud.bpv7.fragment import fragment_bundle
from dtncloud.eid import DTN_NONE, EID, DtnEID, IpnEID
from dtncloud.errors import CodecError
from tests.strategies import MAX_UINT64, eids, uints

NOW = 767_880_000_000


@pytest.mark.parametrize(
    ("bundle_id", "text"),
    [
        (BundleId(DtnEID("//sensor-7/"), NOW, 0), "dtn://sensor-7/@767880000000.0"),
        (BundleId(IpnEID(17, 0), 0, 3), "ipn:17.0@0.3"),
        (BundleId(IpnEID(10, 0), NOW, 1, 253, 252), "ipn:10.0@767880000000.1/253+252"),
        (BundleId(DTN_NONE, 5, 6), "dtn:none@5.6"),
        # A dtn EID may hold "@" and digits itself: only the last "@" separates.
        (BundleId(DtnEID("//a@1.2/b@3.4"), 7, 8), "dtn://a@1.2/b@3.4@7.8"),
        (BundleId(IpnEID(1, 0), MAX_UINT64, MAX_UINT64), f"ipn:1.0@{MAX_UINT64}.{MAX_UINT64}"),
    ],
)
def test_text_form_and_parse(bundle_id: BundleId, text: str) -> None:
    assert str(bundle_id) == text
    assert BundleId.parse(text) == bundle_id


def test_a_dtn_source_is_not_followed_by_a_double_slash() -> None:
    bundle = Bundle.create(
        source="dtn://sensor-7/soil",
        destination="dtn://cloud/ingest",
        payload=b"x",
        creation_time=NOW,
    )
    assert str(bundle.id) == "dtn://sensor-7/@767880000000.0"
    assert "//7" not in str(bundle.id)


def test_fragment_ids_round_trip() -> None:
    bundle = Bundle.create(
        source="ipn:10.1", destination="ipn:20.1", payload=bytes(600), creation_time=NOW
    )
    pieces = fragment_bundle(bundle, 300)
    assert len(pieces) > 1
    for piece in pieces:
        assert piece.id.fragment_offset is not None
        assert BundleId.parse(str(piece.id)) == piece.id
        assert BundleId.parse(str(piece.id.whole)) == bundle.id


@given(
    eids(),
    uints(),
    uints(),
    st.one_of(st.none(), st.tuples(uints(), uints())),
)
def test_parse_inverts_str(
    source: EID, creation_time: int, sequence: int, fragment: tuple[int, int] | None
) -> None:
    offset, length = fragment if fragment is not None else (None, None)
    bundle_id = BundleId(source, creation_time, sequence, offset, length)
    assert BundleId.parse(str(bundle_id)) == bundle_id


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"'' is not a bundle ID \(expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0/767880000000.0", r"expected SOURCE@TIME.SEQUENCE"),  # the old text form
        ("ipn:1.0@", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@5", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@5.", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@-5.0", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@5.0/1", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@5.0/1+", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@5.0 ", r"expected SOURCE@TIME.SEQUENCE"),
        ("ipn:1.0@\u0665.0", r"expected SOURCE@TIME.SEQUENCE"),  # Arabic-Indic digit five
        (f"ipn:1.0@{MAX_UINT64 + 1}.0", r"numbers must be 0..2\^64-1"),
        (f"ipn:1.0@0.0/0+{MAX_UINT64 + 1}", r"numbers must be 0..2\^64-1"),
        ("ipn:1.0@" + "9" * 5000 + ".0", r"numbers must be 0..2\^64-1"),
        ("@5.0", r"not a bundle ID: .*no scheme"),
        ("dtn:node@5.0", r"not a bundle ID: .*a dtn EID must look like dtn://node/demux"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, pattern: str) -> None:
    with pytest.raises(InvalidBundleId, match=pattern) as caught:
        BundleId.parse(text)
    assert isinstance(caught.value, CodecError) and isinstance(caught.value, ValueError)
    assert len(str(caught.value)) < 300  # a huge input is not echoed in full


def test_parse_takes_leading_zeros() -> None:
    assert BundleId.parse("ipn:1.0@" + "0" * 5000 + "7.08") == BundleId(IpnEID(1, 0), 7, 8)
