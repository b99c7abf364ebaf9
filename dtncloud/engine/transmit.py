"""Turning a stored bundle into what goes on a link, as a pure function both shells call.

The store keeps each bundle as it was accepted. What changes per transmission is worked out
here, from a :class:`TransmitPlan` the agent made: the previous node block names this node,
the hop count goes up by one, the bundle age grows by the time the bundle spent here
(RFC 9171 section 5.4), the router's extension block is set, the bundle is cut into
fragments that fit the link (section 5.8), and it may be wrapped in a BIBE protocol data
unit for custody transfer (draft-ietf-dtn-bibect).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from dtncloud.bpv7.admin import admin_bundle
from dtncloud.bpv7.bibe import bibe_encapsulate
from dtncloud.bpv7.blocks import (
    CanonicalBlock,
    PrimaryBlock,
    bundle_age_block,
    hop_count_block,
    previous_node_block,
    read_bundle_age,
    read_hop_count,
)
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.encode import encode_block, encode_bundle, encode_primary
from dtncloud.bpv7.flags import BlockType
from dtncloud.bpv7.fragment import fragment_bundle, reassemble, split_at
from dtncloud.eid import parse_eid
from dtncloud.errors import FragmentError

__all__ = ["BibeWrap", "TransmitPlan", "cut_stored", "reassemble_stored", "render"]


@dataclass(frozen=True, slots=True)
class BibeWrap:
    """Send the bundle inside a BPDU from ``source`` to ``destination`` (the next
    custodian's node ID), asking for custody with ``transmission_id`` by
    ``retransmission_time``."""

    source: str
    destination: str
    transmission_id: int
    retransmission_time: int
    creation_time: int
    sequence: int
    lifetime: int


@dataclass(frozen=True, slots=True)
class TransmitPlan:
    """How to prepare one transmission.

    ``node_id`` is the sending node (for the previous node block). ``received_at`` is when
    the bundle arrived here, so its age can grow by the time spent here. ``max_size`` is
    the largest bundle the link takes (fragments are made to fit), ``routing_block`` the
    content for the router's extension block of type ``routing_block_type``, ``inline`` the
    encoded bundle itself for bundles that are never stored (routing messages), and
    ``protocol`` 6 sends a BPv6 bundle unchanged.
    """

    node_id: str
    received_at: int
    max_size: int | None = None
    routing_block: bytes | None = None
    routing_block_type: int = 193
    bibe: BibeWrap | None = None
    inline: bytes | None = None
    protocol: int = 7
    #: leave the extension blocks alone (bundles this node has just made)
    rewrite: bool = True


def _set_block(bundle: Bundle, type_code: int, data: bytes) -> Bundle:
    """``bundle`` with the first block of ``type_code`` holding ``data`` (added if absent)."""
    existing = bundle.first_block_of_type(type_code)
    if existing is not None:
        return bundle.replace_block(existing.with_data(data))
    return bundle.add_block(CanonicalBlock(type_code, bundle.next_block_number(), data))


# A node sends many bundles, each rewritten for it: what depends on the node alone is
# worked out once per node (bounded, for a simulation of many nodes).
@lru_cache(maxsize=1 << 12)
def _previous_node_data(node_id: str) -> bytes:
    """The data of ``node_id``'s previous node block (as :func:`previous_node_block`)."""
    return previous_node_block(parse_eid(node_id), 1).data


@lru_cache(maxsize=1 << 14)
def _primary_encoding(primary: PrimaryBlock) -> bytes:
    """:func:`encode_primary`, remembered: the primary block never changes on the way, and
    a bundle is sent on many times (its CRC is the costly part). Equal primary blocks
    encode alike, so the cache may be shared by every node in a process."""
    return encode_primary(primary)


def _encode(bundle: Bundle) -> bytes:
    """``encode_bundle(bundle, validate=False)``, the primary block's encoding remembered."""
    parts = [b"\x9f", _primary_encoding(bundle.primary)]
    parts.extend(map(encode_block, bundle.blocks))
    parts.append(b"\xff")
    return b"".join(parts)


def _rewrite(bundle: Bundle, plan: TransmitPlan, now: int) -> Bundle:
    """The extension blocks updated for forwarding by ``plan.node_id`` at ``now``."""
    node_data = _previous_node_data(plan.node_id)
    previous = bundle.first_block_of_type(BlockType.PREVIOUS_NODE)
    if previous is None:
        number = bundle.next_block_number()
        bundle = bundle.add_block(CanonicalBlock(BlockType.PREVIOUS_NODE, number, node_data))
    else:
        fresh = CanonicalBlock(
            BlockType.PREVIOUS_NODE, previous.number, node_data, previous.flags, previous.crc_type
        )
        bundle = bundle.replace_block(fresh)
    hop = bundle.first_block_of_type(BlockType.HOP_COUNT)
    if hop is not None:
        count = read_hop_count(hop)
        bundle = bundle.replace_block(
            hop_count_block(
                count.limit, count.count + 1, hop.number, crc_type=hop.crc_type, flags=hop.flags
            )
        )
    age = bundle.first_block_of_type(BlockType.BUNDLE_AGE)
    if age is not None:
        grown = read_bundle_age(age) + max(0, now - plan.received_at)
        bundle = bundle.replace_block(
            bundle_age_block(grown, age.number, crc_type=age.crc_type, flags=age.flags)
        )
    if plan.routing_block is not None:
        bundle = _set_block(bundle, plan.routing_block_type, plan.routing_block)
    return bundle


def render(data: bytes, plan: TransmitPlan, now: int) -> list[bytes]:
    """The encoded bundles to send, in order, for one transmission of ``data`` (the stored
    encoding; ignored when ``plan.inline`` is set).

    Raises :class:`~dtncloud.errors.FragmentError` when the bundle is larger than
    ``plan.max_size`` and must not (or cannot) be fragmented, and
    :class:`~dtncloud.errors.BundleDecodeError` if the stored bytes do not decode.
    """
    if plan.inline is not None:
        data = plan.inline
    if plan.protocol == 6:
        return [data]
    if not plan.rewrite and plan.max_size is None and plan.bibe is None:
        return [data]
    bundle = decode_bundle(data, max_size=max(len(data), 1))
    if plan.rewrite:
        bundle = _rewrite(bundle, plan, now)
    pieces = [bundle]
    if plan.max_size is not None:
        pieces = fragment_bundle(bundle, plan.max_size)
    encoded = [_encode(piece) for piece in pieces]
    if plan.bibe is None:
        return encoded
    wrap = plan.bibe
    return [
        encode_bundle(
            admin_bundle(
                bibe_encapsulate(
                    inner,
                    transmission_id=wrap.transmission_id,
                    retransmission_time=wrap.retransmission_time,
                ),
                source=wrap.source,
                destination=wrap.destination,
                creation_time=wrap.creation_time,
                sequence=wrap.sequence + index,
                lifetime=wrap.lifetime,
            )
        )
        for index, inner in enumerate(encoded)
    ]


def cut_stored(
    data: bytes, *, payload_offset: int | None = None, first_size: int | None = None
) -> tuple[bytes, ...]:
    """The fragments to keep instead of the stored bundle ``data``, as a
    :class:`~dtncloud.engine.actions.Refragment` asks. Raises
    :class:`~dtncloud.errors.FragmentError` if it cannot be cut that way."""
    bundle = decode_bundle(data, max_size=max(len(data), 1))
    if payload_offset is not None:
        return (encode_bundle(split_at(bundle, payload_offset)[1], validate=False),)
    if first_size is None:
        raise FragmentError("a cut needs a payload offset or a first fragment size")
    first, *rest = fragment_bundle(bundle, len(data) + 64, first_fragment_size=first_size)
    if not rest:
        return (data,)
    second = rest[0] if len(rest) == 1 else split_at(bundle, len(first.payload))[1]
    return encode_bundle(first, validate=False), encode_bundle(second, validate=False)


def reassemble_stored(fragments: Iterable[bytes]) -> bytes:
    """The whole bundle rebuilt from the encodings of its fragments.

    Raises :class:`~dtncloud.errors.FragmentError` (missing or inconsistent pieces) or
    :class:`~dtncloud.errors.BundleDecodeError`."""
    decoded = [decode_bundle(data, max_size=max(len(data), 1)) for data in fragments]
    return encode_bundle(reassemble(decoded), validate=False)
