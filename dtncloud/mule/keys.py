"""Ed25519 keys of mule writers: a node's signing key and the verify keys it trusts.

A node signs the manifest it writes on a stick with its own key; every other node checks it
against the verify key it was given for that node ID (never against a key found on the
stick). Public keys travel between operators as one line of text, like an ssh public key::

    ed25519 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29 dtn://site-a/

This module does no file I/O; :mod:`dtncloud.mule.stick` reads and writes key files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

__all__ = [
    "NodeKey",
    "TrustedKeys",
    "check_node_id",
    "parse_public_key_line",
    "public_key_line",
]

SEED_SIZE = 32
_HEX_KEY = re.compile(r"[0-9a-f]{64}")


def check_node_id(text: str, where: str) -> str:
    """``text`` if it is a node ID (``dtn://name/`` or ``ipn:N.0``); else a ConfigError."""
    try:
        eid = EID.parse(text)
    except InvalidEID as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not eid.is_node_id or eid.is_none:
        raise ConfigError(f"{where}: {text!r} is not a node ID (such as dtn://site-a/)")
    return str(eid)


def _verify_key(hex_key: str, where: str) -> VerifyKey:
    text = hex_key.strip().lower()
    if not _HEX_KEY.fullmatch(text):
        raise ConfigError(f"{where}: an Ed25519 public key is 64 hex digits, not {hex_key!r:.80}")
    return VerifyKey(bytes.fromhex(text))


class NodeKey:
    """A node's Ed25519 signing key (made from its 32-byte seed)."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ConfigError(f"a mule signing key is {SEED_SIZE} bytes, not {len(seed)}")
        self._key = SigningKey(seed)

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public_hex(self) -> str:
        """The verify key, as 64 lowercase hex digits."""
        return bytes(self._key.verify_key).hex()

    @property
    def verify_key(self) -> VerifyKey:
        return self._key.verify_key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of ``message``."""
        return self._key.sign(message).signature


def public_key_line(node_id: str, public_hex: str) -> str:
    """The one-line form of a node's public key (with a trailing newline)."""
    return f"ed25519 {public_hex} {node_id}\n"


def parse_public_key_line(line: str, where: str) -> tuple[str, str]:
    """(node ID, hex verify key) from a line made by :func:`public_key_line`."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "ed25519":
        raise ConfigError(f"{where}: expected 'ed25519 <64 hex digits> <node ID>'")
    _verify_key(parts[1], where)
    return check_node_id(parts[2], where), parts[1].lower()


def verify(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature of ``message``."""
    try:
        key.verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


class TrustedKeys(Mapping[str, VerifyKey]):
    """The verify key of every node whose manifests this node believes, by node ID."""

    def __init__(self, keys: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._keys: dict[str, VerifyKey] = {}
        self._hex: dict[str, str] = {}
        items = keys.items() if isinstance(keys, Mapping) else keys
        for node_id, hex_key in items:
            self.add(node_id, hex_key)

    def add(self, node_id: str, hex_key: str, where: str = "trusted key") -> None:
        """Trust ``hex_key`` for ``node_id``; a second, different key for a node is refused
        (one node, one key: a stick could otherwise be signed with an old, leaked one)."""
        node = check_node_id(node_id, where)
        key = _verify_key(hex_key, f"{where} of {node}")
        text = bytes(key).hex()
        known = self._hex.get(node)
        if known is not None and known != text:
            raise ConfigError(f"{where}: {node} is given two different keys")
        self._keys[node] = key
        self._hex[node] = text

    def hex(self, node_id: str) -> str | None:
        return self._hex.get(node_id)

    def __getitem__(self, node_id: str) -> VerifyKey:
        return self._keys[node_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
