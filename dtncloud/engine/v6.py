"""BPv6 (RFC 5050) bundles in the agent: what the index keeps of them.

A node forwards legacy bundles for ION, DTN2/DTNME and IBR-DTN neighbours and delivers those
addressed to it; it does not rewrite them (BPv6 has no previous-node or age blocks to
update) and makes no BPv6 status reports. RFC 5050 custody transfer is handled with
:mod:`dtncloud.engine.custody_v6`.

Times: RFC 5050 counts whole seconds since 2000, BPv7 and the index milliseconds.
"""

from __future__ import annotations

from dtncloud.bpv6.bundle import Bundle as BundleV6
from dtncloud.store.base import BundleMeta, Retention

__all__ = ["V6_MARKER", "meta_for_v6", "v6_expires_at"]

#: The first byte of every BPv6 bundle (its version); a BPv7 bundle starts with 0x9F.
V6_MARKER = 0x06


def v6_expires_at(bundle: BundleV6, now: int) -> int:
    """When the bundle's lifetime ends, in DTN ms. A creation time of 0 (a node without a
    clock) counts from its arrival here."""
    if bundle.creation_time:
        return (bundle.creation_time + bundle.lifetime) * 1000
    return now + bundle.lifetime * 1000


def meta_for_v6(
    bundle: BundleV6, size: int, now: int, *, local: bool, previous: str | None
) -> BundleMeta:
    """The index entry of a received BPv6 bundle: for local delivery when ``local``, to be
    forwarded otherwise."""
    return BundleMeta(
        bundle_id=str(bundle.bundle_id),
        source=bundle.source,
        destination=bundle.destination,
        creation_time=bundle.creation_time * 1000,
        sequence=bundle.sequence,
        expires_at=v6_expires_at(bundle, now),
        size=size,
        received_at=now,
        retention=Retention.DISPATCH_PENDING if local else Retention.FORWARD_PENDING,
        protocol=6,
        fragment_offset=bundle.fragment_offset,
        total_length=bundle.total_adu_length,
        previous_node=previous,
        flags=int(bundle.flags),
        report_to=None,
    )
