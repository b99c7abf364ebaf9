"""What a received UDP datagram holds (RFC 7122: one bundle per datagram, nothing else).

RFC 7122 puts one encoded bundle in each datagram, with no header; receivers must ignore
datagrams that are not bundles. The UDPCL draft (draft-ietf-dtn-udpcl) keeps that framing for
plain bundles and tells its other messages apart by the first octet, so the first octet is
enough to sort a datagram:

========================  =============================================================
first octet               meaning
========================  =============================================================
``0x80``-``0x9f``         BPv7 bundle (a CBOR array); also ``0xd9 0xd9 0xf7`` (tag 55799)
``0x06``                  BPv6 bundle (RFC 5050 version octet)
all zero, or empty        keepalive / padding
``0xa0``-``0xbf``         UDPCL extension map (not supported: ignored)
``0x14``-``0x17``         DTLS record (not supported: ignored)
anything else             not a bundle (ignored)
========================  =============================================================

A candidate bundle is decoded (bounded by ``max_size``, leniently, so that pre-RFC bundles
from older peers still reach the engine, which applies its own policy) only to decide that it
*is* a bundle: the convergence layer hands the node the datagram's bytes, not the decoded
object. Classification never raises for any input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dtncloud import bpv6, bpv7
from dtncloud.errors import BundleDecodeError

__all__ = [
    "IPV4_MAX_PAYLOAD",
    "IPV6_MAX_PAYLOAD",
    "KEEPALIVE",
    "Classification",
    "DatagramKind",
    "classify",
    "is_keepalive",
]

#: The largest UDP payload over IPv4: 65,535 - 20 (IP header) - 8 (UDP header).
IPV4_MAX_PAYLOAD = 65_507
#: The largest UDP payload over IPv6 without jumbograms: 65,535 - 8 (UDP header).
IPV6_MAX_PAYLOAD = 65_527
#: The keepalive datagram we send: four zero octets (any all-zero datagram is taken as one).
KEEPALIVE = bytes(4)

_SELF_DESCRIBED_CBOR = b"\xd9\xd9\xf7"
_BPV6_VERSION = 0x06


class DatagramKind(enum.Enum):
    """The sorts of datagram a UDP convergence layer tells apart."""

    BPV7 = "bpv7"
    BPV6 = "bpv6"
    KEEPALIVE = "keepalive"
    #: Anything that is not a bundle we take: junk, unsupported UDPCL messages, bundles that
    #: do not decode, bundles over the size limit, BPv6 when it is not accepted.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one datagram.

    ``bundle_id`` is the text form of the bundle's ID for a bundle; ``reason`` says in words
    why an ignored datagram was ignored, and ``counter`` is a short key to count it under
    (``"not_a_bundle"``, ``"undecodable"``, ``"too_large"``, ``"bpv6"``, ``"extension_map"``,
    ``"dtls"``).
    """

    kind: DatagramKind
    bundle_id: str | None = None
    reason: str | None = None
    counter: str | None = None

    @property
    def is_bundle(self) -> bool:
        return self.kind in (DatagramKind.BPV7, DatagramKind.BPV6)


def is_keepalive(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is a keepalive or padding datagram: empty, or zero octets only."""
    return not any(data)


def _ignored(counter: str, reason: str) -> Classification:
    return Classification(DatagramKind.IGNORED, reason=reason, counter=counter)


def classify(
    data: bytes | bytearray | memoryview,
    *,
    max_size: int = IPV6_MAX_PAYLOAD,
    accept_bpv6: bool = True,
) -> Classification:
    """Sort one received datagram (see the module docstring); never raises for any bytes.

    A bundle larger than ``max_size`` bytes is ignored (counter ``"too_large"``) without being
    decoded. BPv6 bundles are ignored (counter ``"bpv6"``) unless ``accept_bpv6``.
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size == 0 or (data[0] == 0x00 and is_keepalive(data)):
        return Classification(DatagramKind.KEEPALIVE)
    first = data[0]
    is_v7 = 0x80 <= first <= 0x9F or bytes(data[:3]) == _SELF_DESCRIBED_CBOR
    is_v6 = first == _BPV6_VERSION
    if not (is_v7 or is_v6):
        if 0xA0 <= first <= 0xBF:
            return _ignored("extension_map", "a UDPCL extension map (not supported)")
        if 0x14 <= first <= 0x17:
            return _ignored("dtls", "a DTLS record (not supported)")
        return _ignored("not_a_bundle", f"first octet 0x{first:02x} starts no bundle")
    if size > max_size:
        return _ignored("too_large", f"bundle of {size} bytes exceeds the limit of {max_size}")
    if is_v6:
        if not accept_bpv6:
            return _ignored("bpv6", "a BPv6 bundle (BPv6 is not accepted)")
        try:
            v6 = bpv6.decode_bundle(data, max_size=max_size)
        except BundleDecodeError as exc:
            return _ignored("undecodable", f"not a valid BPv6 bundle: {exc}")
        return Classification(DatagramKind.BPV6, bundle_id=str(v6.bundle_id))
    try:
        v7 = bpv7.decode_bundle(bytes(data), max_size=max_size, lenient=True)
    except BundleDecodeError as exc:
        return _ignored("undecodable", f"not a valid BPv7 bundle: {exc}")
    return Classification(DatagramKind.BPV7, bundle_id=str(v7.id))
