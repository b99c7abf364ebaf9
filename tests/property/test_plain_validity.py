"""The decoder skips the validity rules for bundles of the 'plainly valid' shape.

``validate.is_plainly_valid`` names that shape and ``fastdecode`` evaluates it inline; these
properties hold both to the rules: every plainly valid bundle passes ``check_bundle``, and
the decoder refuses exactly what ``check_bundle`` refuses, whichever path it takes.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtncloud.bpv7 import Bundle, check_bundle, decode_bundle, encode_bundle
from dtncloud.bpv7.blocks import PrimaryBlock, payload_block
from dtncloud.bpv7.flags import BundleFlag, CrcType
from dtncloud.bpv7.validate import is_plainly_valid
from dtncloud.eid import EidCache
from dtncloud.errors import InvalidBundle
from tests import strategies as bst


@st.composite
def two_block_bundles(draw: st.DrawFn) -> Bundle:
    """Primary plus payload, with the fields the shortcut looks at chosen freely (many of
    these break a rule)."""
    flags = draw(st.sampled_from([0, 1, 2, 3, 4, 6, 0x20004, 0x4000, 0x40]))
    fragment = bool(flags & 1)
    primary = PrimaryBlock(
        destination=draw(bst.eids(allow_none=False)),
        source=draw(bst.eids()),
        report_to=draw(bst.eids()),
        creation_time=draw(st.sampled_from([0, 1, 755_000_000_000])),
        sequence=draw(st.integers(0, 3)),
        lifetime=3_600_000,
        flags=BundleFlag(flags),
        crc_type=draw(st.sampled_from(list(CrcType))),
        fragment_offset=draw(st.integers(0, 8)) if fragment else None,
        total_adu_length=draw(st.integers(0, 24)) if fragment else None,
    )
    payload = draw(st.binary(max_size=8))
    return Bundle(primary, (payload_block(payload, crc_type=draw(st.sampled_from(list(CrcType)))),))


@given(two_block_bundles(), st.booleans())
def test_decoder_refuses_exactly_what_check_bundle_refuses(bundle: Bundle, lenient: bool) -> None:
    data = encode_bundle(bundle, validate=False)
    try:
        check_bundle(bundle, lenient=lenient)
    except InvalidBundle:
        valid = False
    else:
        valid = True
    for cache in (EidCache(), EidCache()):  # the first call misses the memo, the second hits
        try:
            decoded = decode_bundle(data, lenient=lenient, eid_cache=cache)
        except InvalidBundle:
            assert not valid
        else:
            assert valid
            assert decoded == bundle


@given(st.one_of(bst.bundles(), two_block_bundles()))
def test_plainly_valid_bundles_pass_every_rule(bundle: Bundle) -> None:
    if is_plainly_valid(bundle):
        check_bundle(bundle)
