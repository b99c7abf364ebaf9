"""The signed manifest: what is written reads back, and no change to a signed file passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.mule.keys import NodeKey, TrustedKeys
from dtncloud.mule.manifest import (
    MANIFEST_HEADER,
    Entry,
    Manifest,
    ManifestError,
    decode_manifest,
    encode_manifest,
)

KEY_A = NodeKey(bytes(range(32)))
KEY_B = NodeKey(bytes(range(1, 33)))
TRUSTED = TrustedKeys({"dtn://a/": KEY_A.public_hex, "dtn://b/": KEY_B.public_hex})

hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
names = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: h + ".bundle")
ids = st.text(min_size=1, max_size=40)
times = st.integers(0, 2**63)
entries = st.builds(
    Entry,
    bundle_id=ids,
    destination=st.sampled_from(["dtn://b/inbox", "dtn://c/x", "ipn:5.1"]),
    size=st.integers(0, 2**40),
    sha256=hex64,
    expires_ms=st.none() | times,
    peers=st.lists(st.sampled_from(["dtn://b/", "dtn://c/", "dtn://mule/"]), max_size=3).map(tuple),
)
manifests = st.builds(
    Manifest,
    node=st.just("dtn://a/"),
    key=st.just(KEY_A.public_hex),
    seq=st.integers(0, 2**32),
    written_ms=times,
    bundles=st.dictionaries(names, entries, max_size=4),
    taken=st.dictionaries(hex64, times, max_size=3),
    delivered=st.dictionaries(ids, times, max_size=3),
)


def sample() -> Manifest:
    entry = Entry("dtn://a/@1.0", "dtn://b/inbox", 10, "0" * 64, 5, ("dtn://b/",))
    return Manifest("dtn://a/", KEY_A.public_hex, 3, 9, {"a" * 32 + ".bundle": entry})


@given(manifests)
def test_a_signed_manifest_reads_back_as_written(manifest: Manifest) -> None:
    data = encode_manifest(manifest, KEY_A)
    assert decode_manifest(data, TRUSTED, expect_node="dtn://a/") == manifest


@given(manifests, st.data())
def test_any_changed_byte_is_detected(manifest: Manifest, data: st.DataObject) -> None:
    signed = bytearray(encode_manifest(manifest, KEY_A))
    at = data.draw(st.integers(0, len(signed) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != signed[at]), label="byte")
    signed[at] = new
    with pytest.raises(ManifestError):
        decode_manifest(bytes(signed), TRUSTED)


@given(manifests, st.data())
def test_truncation_and_additions_are_detected(manifest: Manifest, data: st.DataObject) -> None:
    signed = encode_manifest(manifest, KEY_A)
    cut = data.draw(st.integers(0, len(signed) - 1), label="cut")
    with pytest.raises(ManifestError):
        decode_manifest(signed[:cut], TRUSTED)
    at = data.draw(st.integers(0, len(signed)), label="insert at")
    extra = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
    with pytest.raises(ManifestError):
        decode_manifest(signed[:at] + extra + signed[at:], TRUSTED)


def test_a_manifest_from_an_untrusted_node_is_refused() -> None:
    stranger = NodeKey(bytes(32))
    manifest = Manifest("dtn://x/", stranger.public_hex)
    with pytest.raises(ManifestError) as caught:
        decode_manifest(encode_manifest(manifest, stranger), TRUSTED)
    assert caught.value.kind == "unknown_key"


def test_a_manifest_signed_with_another_trusted_key_is_refused() -> None:
    # b signs a body that claims to be a's: the key trusted for a does not verify it
    forged = Manifest("dtn://a/", KEY_B.public_hex)
    with pytest.raises(ManifestError) as caught:
        decode_manifest(encode_manifest(forged, KEY_B), TRUSTED)
    assert caught.value.kind == "bad_signature"


def test_unsigned_and_foreign_files_say_so() -> None:
    signed = encode_manifest(sample(), KEY_A)
    body_end = signed.index(b"\n", len(MANIFEST_HEADER)) + 1
    with pytest.raises(ManifestError) as caught:
        decode_manifest(signed[:body_end], TRUSTED)
    assert caught.value.kind == "unsigned"
    with pytest.raises(ManifestError) as caught:
        decode_manifest(b'{"node": "dtn://a/"}', TRUSTED)
    assert caught.value.kind == "corrupt"


def test_a_manifest_in_another_nodes_directory_is_refused() -> None:
    signed = encode_manifest(sample(), KEY_A)
    with pytest.raises(ManifestError) as caught:
        decode_manifest(signed, TRUSTED, expect_node="dtn://b/")
    assert caught.value.kind == "wrong_node"


def test_file_names_from_a_trusted_manifest_cannot_leave_the_directory() -> None:
    manifest = sample()
    entry = next(iter(manifest.bundles.values()))
    manifest.bundles = {"../../etc/passwd": entry}
    with pytest.raises(ManifestError, match="bad bundle file name"):
        decode_manifest(encode_manifest(manifest, KEY_A), TRUSTED)


def test_records_are_forgotten_when_their_time_is_up() -> None:
    manifest = Manifest("dtn://a/", KEY_A.public_hex, taken={"0" * 64: 10}, delivered={"x": 20})
    assert manifest.forget_records(15) == 1
    assert manifest.taken == {} and manifest.delivered == {"x": 20}


def test_the_signing_key_must_be_the_one_named() -> None:
    with pytest.raises(ValueError):
        encode_manifest(sample(), KEY_B)
