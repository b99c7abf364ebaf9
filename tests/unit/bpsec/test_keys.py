"""KeyRing lookups and RFC 3394 key wrap."""

from __future__ import annotations

import pytest

from dtncloud.bpsec import KeyRing
from dtncloud.bpsec.keys import as_key_ring, unwrap_key, wrap_key
from dtncloud.eid import EID
from dtncloud.errors import ConfigError

A = EID.parse("ipn:2.1")
B = EID.parse("dtn://b/")


def test_lookup_prefers_the_most_specific_entry() -> None:
    ring = (
        KeyRing({(None, None): b"default"})
        .with_key(b"ctx1", context_id=1)
        .with_key(b"a-any", source="ipn:2.1")
        .with_key(b"a-1", source=A, context_id=1)
    )
    assert ring.key_for(1, A) == b"a-1"
    assert ring.key_for(2, A) == b"a-any"
    assert ring.key_for(1, B) == b"ctx1"
    assert ring.key_for(2, B) == b"default"
    assert len(ring) == 4
    assert (1, A) in set(ring)


def test_with_key_leaves_the_original_alone() -> None:
    ring = KeyRing()
    bigger = ring.with_key(b"k", source=B)
    assert ring.key_for(1, B) is None and bigger.key_for(1, B) == b"k"


def test_repr_hides_keys() -> None:
    text = repr(KeyRing().with_key(b"secret", source=A, context_id=2))
    assert "secret" not in text and "ipn:2.1" in text


def test_bad_entries_and_key_types() -> None:
    with pytest.raises(ConfigError):
        KeyRing().with_key(b"")
    with pytest.raises(ConfigError):
        KeyRing().with_key(b"k", context_id="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        as_key_ring(42)  # type: ignore[arg-type]
    ring = as_key_ring(bytearray(b"k"))  # type: ignore[arg-type]
    assert ring.key_for(7, A) == b"k"


def test_key_wrap_round_trip_and_limits() -> None:
    kek = b"abcdefghijklmnop"
    for key in (bytes(16), bytes(24), bytes(32)):
        wrapped = wrap_key(kek, key)
        assert len(wrapped) == len(key) + 8
        assert unwrap_key(kek, wrapped) == key
        assert unwrap_key(b"x" * 16, wrapped) is None
    assert unwrap_key(kek, b"short") is None
    assert unwrap_key(b"bad kek", bytes(24)) is None
    with pytest.raises(ConfigError):
        wrap_key(kek, bytes(15))
    with pytest.raises(ConfigError):
        wrap_key(kek, bytes(20))
    with pytest.raises(ConfigError):
        wrap_key(b"short", bytes(16))
