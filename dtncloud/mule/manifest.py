"""The manifest a node keeps on a mule stick: what it wrote there and what it took, signed.

A manifest file is three lines of ASCII::

    dtncloud-mule-manifest 1
    {"bundles":{...},"delivered":{...},"key":"...","node":"dtn://a/","seq":7,"taken":{...},...}
    ed25519 <128 lowercase hex digits>

The signature (Ed25519, by the writing node's key) covers the first two lines exactly as
they are, newlines included, so any change to a byte of the file is detected: in the first
two lines the signature no longer matches, in the third the signature changes or stops being
128 lowercase hex digits. The body is JSON for operators to read (``sed -n 2p manifest |
python -m json.tool``).

Body fields: ``node`` (the writer's node ID), ``key`` (its verify key, hex, informative only:
readers check against the key they trust for ``node``), ``seq`` (incremented on every
rewrite), ``written_ms`` (DTN ms), ``bundles`` (file name -> :class:`Entry`), ``taken``
(SHA-256 of a copy this node took from the stick -> DTN ms until which the record is kept)
and ``delivered`` (ID of a bundle that reached this node as its destination -> the same).

No I/O here: :func:`encode_manifest` gives the bytes to write, :func:`decode_manifest` checks
bytes that were read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dtncloud.errors import DtnError
from dtncloud.mule.keys import NodeKey, TrustedKeys, verify

__all__ = [
    "MANIFEST_HEADER",
    "Entry",
    "Manifest",
    "ManifestError",
    "decode_manifest",
    "encode_manifest",
    "is_bundle_file_name",
]

MANIFEST_HEADER = b"dtncloud-mule-manifest 1\n"
_SIGNATURE_PREFIX = b"ed25519 "
_SIGNATURE = re.compile(rb"ed25519 ([0-9a-f]{128})\n")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[0-9a-f]{32}\.bundle")
#: A manifest larger than this is not read (a stick holds at most some 100,000 bundles).
MAX_MANIFEST = 64 << 20


def is_bundle_file_name(name: str) -> bool:
    """Whether ``name`` has the form of a bundle file (32 hex digits and ``.bundle``): names
    come from manifests, and must never reach outside the writer's directory."""
    return _FILE_NAME.fullmatch(name) is not None


class ManifestError(DtnError):
    """A manifest that cannot be believed. ``kind`` says why, for reports:

    ``corrupt`` (not a manifest, or damaged), ``unsigned`` (no signature line),
    ``unknown_key`` (written by a node this node does not trust), ``bad_signature`` (the
    signature does not match: changed after it was signed, or signed by another key),
    ``wrong_node`` (a valid manifest in another node's directory)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Entry:
    """One bundle file in a manifest."""

    bundle_id: str
    destination: str
    size: int
    sha256: str
    #: DTN ms when the bundle's lifetime ends (None: unknown)
    expires_ms: int | None
    #: the node IDs the writer meant the copy for (the links it was sent on)
    peers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.bundle_id,
            "destination": self.destination,
            "size": self.size,
            "sha256": self.sha256,
            "expires_ms": self.expires_ms,
            "peers": list(self.peers),
        }


@dataclass(slots=True)
class Manifest:
    """What one node wrote on a stick and took from it. Mutable: the writing node changes
    its own during a sync and writes it out with :func:`encode_manifest`."""

    node: str
    key: str
    seq: int = 0
    written_ms: int = 0
    bundles: dict[str, Entry] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "key": self.key,
            "seq": self.seq,
            "written_ms": self.written_ms,
            "bundles": {name: entry.to_json() for name, entry in sorted(self.bundles.items())},
            "taken": dict(sorted(self.taken.items())),
            "delivered": dict(sorted(self.delivered.items())),
        }

    def forget_records(self, now: int) -> int:
        """Drop taken and delivered records whose time is up; how many went."""
        dropped = 0
        for records in (self.taken, self.delivered):
            for name in [name for name, until in records.items() if until <= now]:
                del records[name]
                dropped += 1
        return dropped


def encode_manifest(manifest: Manifest, key: NodeKey) -> bytes:
    """The signed file content of ``manifest`` (which must name ``key``'s verify key)."""
    if manifest.key != key.public_hex:
        raise ValueError("the manifest names another key than the one signing it")
    body = json.dumps(manifest.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    signed = MANIFEST_HEADER + body.encode("ascii") + b"\n"
    return signed + _SIGNATURE_PREFIX + key.sign(signed).hex().encode("ascii") + b"\n"


def decode_manifest(
    data: bytes, trusted: TrustedKeys, *, expect_node: str | None = None
) -> Manifest:
    """Check ``data`` (a manifest file's bytes) and return what it says. Raises
    :class:`ManifestError` unless it is complete, signed by the key ``trusted`` holds for
    the node it names, and (with ``expect_node``) names that node."""
    if len(data) > MAX_MANIFEST:
        raise ManifestError("corrupt", f"larger than {MAX_MANIFEST} bytes")
    if not data.startswith(MANIFEST_HEADER):
        raise ManifestError("corrupt", "not a dtncloud mule manifest (bad first line)")
    end_of_body = data.find(b"\n", len(MANIFEST_HEADER))
    if end_of_body < 0:
        raise ManifestError("corrupt", "truncated: the body line does not end")
    signed, signature_line = data[: end_of_body + 1], data[end_of_body + 1 :]
    if not signature_line:
        raise ManifestError("unsigned", "no signature line")
    match = _SIGNATURE.fullmatch(signature_line)
    if match is None:
        raise ManifestError("corrupt", "the signature line is damaged or truncated")
    try:
        raw = json.loads(signed[len(MANIFEST_HEADER) :].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ManifestError("corrupt", "the body is not JSON") from None
    node = raw.get("node") if isinstance(raw, dict) else None
    if not isinstance(node, str):
        raise ManifestError("corrupt", "the body names no node")
    if node not in trusted:
        raise ManifestError(
            "unknown_key", f"written by {node!r:.80}, which this node does not trust"
        )
    if not verify(trusted[node], signed, bytes.fromhex(match[1].decode("ascii"))):
        raise ManifestError(
            "bad_signature", f"the signature is not {node}'s: changed after it was written?"
        )
    if expect_node is not None and node != expect_node:
        raise ManifestError("wrong_node", f"a manifest of {node} in the directory of another")
    try:
        return _manifest(raw)
    except (KeyError, TypeError, ValueError) as exc:
        # Signed by a trusted node and still malformed: a bug or another version.
        raise ManifestError("corrupt", f"{node}'s manifest is malformed: {exc}") from None


def _int(value: Any, what: str, *, optional: bool = False) -> Any:
    if optional and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not an unsigned integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    return value


def _records(value: Any, what: str, check: Any = None) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not a map")
    out = {}
    for name, until in value.items():
        if check is not None and not check(name):
            raise ValueError(f"{what}: bad key {name!r:.80}")
        out[_str(name, what)] = _int(until, what)
    return out


def _entry(name: str, value: Any) -> Entry:
    if not is_bundle_file_name(name):
        raise ValueError(f"bad bundle file name {name!r:.80}")
    if not isinstance(value, Mapping):
        raise ValueError(f"entry {name} is not a map")
    sha = _str(value["sha256"], f"{name}: sha256")
    if not _SHA256.fullmatch(sha):
        raise ValueError(f"{name}: sha256 is not 64 lowercase hex digits")
    peers = value["peers"]
    if not isinstance(peers, list):
        raise ValueError(f"{name}: peers is not a list")
    return Entry(
        bundle_id=_str(value["id"], f"{name}: id"),
        destination=_str(value["destination"], f"{name}: destination"),
        size=_int(value["size"], f"{name}: size"),
        sha256=sha,
        expires_ms=_int(value["expires_ms"], f"{name}: expires_ms", optional=True),
        peers=tuple(_str(p, f"{name}: peers") for p in peers),
    )


def _manifest(raw: dict[str, Any]) -> Manifest:
    bundles = raw["bundles"]
    if not isinstance(bundles, Mapping):
        raise ValueError("bundles is not a map")
    return Manifest(
        node=_str(raw["node"], "node"),
        key=_str(raw["key"], "key"),
        seq=_int(raw["seq"], "seq"),
        written_ms=_int(raw["written_ms"], "written_ms"),
        bundles={_str(n, "bundles"): _entry(n, v) for n, v in bundles.items()},
        taken=_records(
            raw["taken"], "taken", lambda n: isinstance(n, str) and _SHA256.fullmatch(n)
        ),
        delivered=_records(raw["delivered"], "delivered"),
    )
