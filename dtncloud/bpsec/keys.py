"""Key material for BPSec: a small key ring, and RFC 3394 AES key wrap.

RFC 9173 leaves key management to the deployment. A receiver holds one long-term key per
security source (and security context): for a block that carries a *wrapped key* parameter
that key is the key-encryption key (KEK) that unwraps the per-block content key; otherwise it
is the content key itself (the HMAC key, or the AES key). :class:`KeyRing` answers "which key
for context C from source S", falling back from the most to the least specific entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeAlias

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from dtncloud.eid import EID, parse_eid
from dtncloud.errors import ConfigError

_KeyId: TypeAlias = tuple[int | None, EID | None]


class KeyRing:
    """Keys by ``(security context ID, security source)``; either part may be a wildcard.

    Immutable: :meth:`with_key` returns a new ring. Lookups try, in order, the exact
    ``(context, source)`` entry, then ``(any context, source)``, then ``(context, any
    source)``, then the ring's default ``(any, any)``.

    >>> ring = KeyRing().with_key(b"k" * 16, source="ipn:2.1", context_id=1)
    >>> ring.key_for(1, EID.parse("ipn:2.1")) == b"k" * 16
    True
    >>> ring.key_for(2, EID.parse("ipn:2.1")) is None
    True
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[tuple[int | None, EID | str | None], bytes] | None = None):
        table: dict[_KeyId, bytes] = {}
        for (context_id, source), key in (keys or {}).items():
            table[_key_id(context_id, source)] = _check_key(key)
        self._keys = table

    def with_key(
        self, key: bytes, *, source: EID | str | None = None, context_id: int | None = None
    ) -> KeyRing:
        """A copy of this ring that also holds ``key`` for ``source`` and ``context_id``
        (``None`` means any)."""
        ring = KeyRing()
        ring._keys = dict(self._keys)
        ring._keys[_key_id(context_id, source)] = _check_key(key)
        return ring

    def key_for(self, context_id: int, source: EID) -> bytes | None:
        """The key to use for a security block of ``context_id`` from ``source``, or None."""
        keys = self._keys
        for candidate in ((context_id, source), (None, source), (context_id, None), (None, None)):
            key = keys.get(candidate)
            if key is not None:
                return key
        return None

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[_KeyId]:
        return iter(self._keys)

    def __repr__(self) -> str:
        # Never print key material.
        names = ", ".join(f"{c if c is not None else '*'}:{s or '*'}" for c, s in self._keys)
        return f"KeyRing({names})"


#: What the receiving functions accept as keys: a ring, or one key for everything.
Keys: TypeAlias = KeyRing | bytes


def as_key_ring(keys: Keys) -> KeyRing:
    """``keys`` as a :class:`KeyRing` (a plain key becomes the ring's default)."""
    if isinstance(keys, KeyRing):
        return keys
    if isinstance(keys, bytes | bytearray):
        return KeyRing({(None, None): bytes(keys)})
    raise ConfigError(f"keys must be a KeyRing or bytes, not {type(keys).__name__}")


def _key_id(context_id: int | None, source: EID | str | None) -> _KeyId:
    if context_id is not None and (type(context_id) is not int):
        raise ConfigError(f"a security context ID is an integer, not {context_id!r}")
    return (context_id, parse_eid(source) if source is not None else None)


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray) or not key:
        raise ConfigError("a key must be a non-empty byte string")
    return bytes(key)


def wrap_key(key_encryption_key: bytes, key: bytes) -> bytes:
    """RFC 3394 AES key wrap of ``key`` under ``key_encryption_key`` (16, 24 or 32 bytes).

    RFC 3394 wraps keys of at least 16 bytes in whole 8-byte blocks; other lengths raise
    :class:`~dtncloud.errors.ConfigError`.
    """
    if len(key_encryption_key) not in (16, 24, 32):
        raise ConfigError(
            f"a key-encryption key is 16, 24 or 32 bytes, not {len(key_encryption_key)}"
        )
    if len(key) < 16 or len(key) % 8:
        raise ConfigError(
            f"AES key wrap needs a key of 16 or more bytes in steps of 8, not {len(key)} bytes"
        )
    return aes_key_wrap(bytes(key_encryption_key), bytes(key))


def unwrap_key(key_encryption_key: bytes, wrapped: bytes) -> bytes | None:
    """The key inside ``wrapped``, or None when the KEK does not fit or the wrap is corrupt."""
    if len(key_encryption_key) not in (16, 24, 32) or len(wrapped) < 24 or len(wrapped) % 8:
        return None
    try:
        return aes_key_unwrap(bytes(key_encryption_key), bytes(wrapped))
    except (InvalidUnwrap, ValueError):
        return None
