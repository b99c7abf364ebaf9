"""render() encodes with its own copy of encode_bundle's layout (to reuse the primary
block's encoding, which never changes on the way): the two must agree on every bundle."""

from __future__ import annotations

from hypothesis import given

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.engine.transmit import _encode
from tests.strategies import bundles


@given(bundles())
def test_render_encodes_as_encode_bundle(bundle: Bundle) -> None:
    assert _encode(bundle) == encode_bundle(bundle, validate=False)
    assert _encode(bundle) == encode_bundle(bundle, validate=False)  # the cached primary too
