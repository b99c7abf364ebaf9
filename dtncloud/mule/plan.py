"""The decisions of a mule sync, without I/O: names on the stick, what a bundle is, when a
copy on the stick has done its job, and in which order bundles go onto a small stick.

**When a copy may leave the stick** (:func:`done_reason`). A copy written by node W as
entry E is removed (by whichever node syncs next) when

- its bundle's lifetime is over (``expired``); or
- the node it was written for took it: every node in ``E.peers`` lists the copy's SHA-256
  among what it ``taken`` (``taken``); or
- the bundle reached its destination: the destination node lists the bundle ID among what
  was ``delivered`` to it (``delivered``); this retires every copy of the bundle, whoever
  wrote it.

Records only count in manifests that verified against a trusted key. A node that is neither
the copy's intended next hop nor its destination (a site the stick merely passes through)
takes the bundle too, if its engine wants it, but that does not retire the copy: the stick
keeps carrying it to where it was meant to go.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dtncloud.bpv6.codec import decode_bundle as decode_bundle_v6
from dtncloud.bpv7.admin import decode_admin_record
from dtncloud.bpv7.bibe import BibePdu
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.engine.agent import index_key
from dtncloud.engine.v6 import V6_MARKER, v6_expires_at
from dtncloud.errors import AdminRecordError, CodecError
from dtncloud.mule.manifest import Entry, Manifest
from dtncloud.routing.base import node_of

__all__ = [
    "ORDERS",
    "BundleFacts",
    "bundle_facts",
    "bundle_file_name",
    "done_reason",
    "node_dir_name",
    "order_key",
    "unwrap_bpdu",
]

#: How bundles are ranked when the stick cannot take all of them: ``urgent`` (the soonest
#: to expire first, then the smallest), ``smallest`` (the most bundles), ``engine`` (in the
#: order the engine hands them over).
ORDERS = ("urgent", "smallest", "engine")
#: How long a taken or delivered record is kept when a bundle's expiry is unknown (ms).
UNKNOWN_EXPIRY_KEEP_MS = 30 * 86_400_000

_UNSAFE = re.compile(r"[^a-z0-9.]+")


def node_dir_name(node_id: str) -> str:
    """The directory of ``node_id`` on a stick: readable, safe on FAT file systems, and
    unique (``dtn://site-a/`` -> ``site-a-3f1c9a2e``)."""
    readable = node_id.lower().removeprefix("dtn://").removesuffix("/")
    readable = _UNSAFE.sub("-", readable).strip("-.")[:40] or "node"
    digest = hashlib.blake2b(node_id.encode("utf-8"), digest_size=4).hexdigest()
    return f"{readable}-{digest}"


def bundle_file_name(bundle_id: str) -> str:
    """The file a bundle is written to: a digest of its ID, so that writing the same bundle
    again finds it already there."""
    return hashlib.blake2b(bundle_id.encode("utf-8"), digest_size=16).hexdigest() + ".bundle"


@dataclass(frozen=True, slots=True)
class BundleFacts:
    """What the mule needs to know of an encoded bundle."""

    bundle_id: str
    source: str
    destination: str
    #: DTN ms when its lifetime ends (for a bundle from a node without a clock: counted
    #: from ``now`` and its age)
    expires_ms: int
    size: int


def bundle_facts(data: bytes, now: int, *, max_size: int) -> BundleFacts:
    """Facts of a BPv7 or BPv6 bundle; raises :class:`~dtncloud.errors.CodecError`."""
    if data[:1] == bytes([V6_MARKER]):
        legacy = decode_bundle_v6(data, max_size=max(max_size, len(data)))
        return BundleFacts(
            str(legacy.bundle_id),
            legacy.source,
            legacy.destination,
            v6_expires_at(legacy, now),
            len(data),
        )
    bundle = decode_bundle(data, max_size=max(max_size, len(data)))
    primary = bundle.primary
    created = primary.creation_time or now - (bundle.bundle_age or 0)
    return BundleFacts(
        index_key(bundle, data),
        str(primary.source),
        str(primary.destination),
        created + primary.lifetime,
        len(data),
    )


def unwrap_bpdu(data: bytes, *, max_size: int) -> bytes | None:
    """The bundle inside ``data`` if ``data`` is a BIBE protocol data unit, else None."""
    if data[:1] == bytes([V6_MARKER]):
        return None
    try:
        bundle = decode_bundle(data, max_size=max(max_size, len(data)))
        if not bundle.primary.is_admin_record or bundle.primary.is_fragment:
            return None
        record = decode_admin_record(bundle.payload)
    except (AdminRecordError, CodecError):
        return None
    return record.bundle_bytes if isinstance(record, BibePdu) else None


def record_until(entry: Entry, now: int) -> int:
    """How long a taken or delivered record about ``entry`` is worth keeping."""
    return entry.expires_ms if entry.expires_ms is not None else now + UNKNOWN_EXPIRY_KEEP_MS


def done_reason(entry: Entry, manifests: Mapping[str, Manifest], now: int) -> str | None:
    """Why the copy ``entry`` may leave the stick (``expired``, ``delivered``, ``taken``),
    or None while it must stay. ``manifests`` are the verified manifests, by node ID."""
    if entry.expires_ms is not None and entry.expires_ms <= now:
        return "expired"
    destination = manifests.get(node_of(entry.destination))
    if destination is not None and entry.bundle_id in destination.delivered:
        return "delivered"
    if entry.peers and all(
        (taker := manifests.get(peer)) is not None and entry.sha256 in taker.taken
        for peer in entry.peers
    ):
        return "taken"
    return None


def order_key(order: str, facts: BundleFacts, sequence: int) -> tuple[int, ...]:
    """The rank of a bundle offered to the stick (lower goes first)."""
    if order == "urgent":
        return (facts.expires_ms, facts.size, sequence)
    if order == "smallest":
        return (facts.size, sequence)
    return (sequence,)
