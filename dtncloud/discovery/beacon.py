"""Discovery beacons in the CBOR form dtn7-rs calls IPND version 7 ("IPND-NG").

The IPND draft (draft-irtf-dtnrg-ipnd) encodes beacons with SDNVs and tag-length-value service
records; dtn7-rs kept its fields but moved the encoding to CBOR and numbered that version 7.
dtncloud speaks the CBOR form so that dtn7-rs nodes and dtncloud nodes find each other. A
beacon is one CBOR array::

    [version = 7, flags, node EID, sequence number, ?service block, ?period in seconds]

* ``flags``: 0x01 EID present (dtn7-rs always sets it and always sends the EID), 0x02 service
  block present, 0x04 period present; the other bits are reserved and ignored.
* The EID is in its RFC 9171 CBOR form (``[1, "//node/"]``, ``[2, [node, service]]``).
* The service block is ``[[cla, ...], {tag: value}]``: each CLA is ``[name, port or null]``,
  and the map holds dtn7-rs "custom services" (tag 0-255; the value is an array of octets,
  which is how dtn7-rs serialises bytes; a byte string is accepted too). dtncloud keeps the map
  as it came but does not interpret it.
* With five items the fifth is the service block if flag 0x02 is set, otherwise the period.

Two dtncloud choices on top of that:

* dtn7-rs calls its TCPCLv4 agent ``tcp``; dtncloud's registry calls it ``tcpcl``. The codec
  translates (``tcpcl`` goes out as ``tcp``, ``tcp`` comes in as ``tcpcl``), so a dtn7-rs node
  reading our beacon reaches our TCPCLv4 listener and vice versa. Other names pass unchanged.
* A CLA entry may carry a third item, the host to connect to when it is not the address the
  beacon came from (``[name, port, host]``). dtn7-rs cannot read such entries, so a service
  has no host unless one is configured.

Decoding is bounded (a datagram of at most 64 KiB, a cap on CBOR items and nesting, no size
taken from a length field) and strict about shape; anything else raises
:class:`BeaconDecodeError` and never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2

from dtncloud.cborutil import (
    MAJOR_ARRAY,
    CborError,
    DecodeBudget,
    decode_item,
    encode_uint,
    head,
)
from dtncloud.eid import EID
from dtncloud.errors import CodecError, InvalidEID

__all__ = [
    "FLAG_EID",
    "FLAG_PERIOD",
    "FLAG_SERVICES",
    "IPND_VERSION",
    "MAX_BEACON_SIZE",
    "Beacon",
    "BeaconDecodeError",
    "Service",
    "UnsupportedBeacon",
    "decode_beacon",
    "encode_beacon",
    "format_address",
]

IPND_VERSION = 7
FLAG_EID = 0x01
FLAG_SERVICES = 0x02
FLAG_PERIOD = 0x04
#: The largest beacon read: one UDP datagram.
MAX_BEACON_SIZE = 65_535
#: Limits on the fields of a service entry (nobody needs more; hostile input gets less).
MAX_NAME_LENGTH = 64
MAX_HOST_LENGTH = 255

# dtn7-rs name -> dtncloud registry name; the reverse is used when encoding.
_NAMES_FROM_WIRE = {"tcp": "tcpcl"}
_NAMES_TO_WIRE = {ours: wire for wire, ours in _NAMES_FROM_WIRE.items()}
_MAX_UINT32 = 0xFFFF_FFFF
_MAX_UINT64 = 0xFFFF_FFFF_FFFF_FFFF
# Every CBOR item costs one unit: a 64 KiB beacon of one-byte integers stays within this.
_ITEM_BUDGET = MAX_BEACON_SIZE + 16


class BeaconDecodeError(CodecError):
    """Bytes that are not a beacon dtncloud can read."""


class UnsupportedBeacon(BeaconDecodeError):
    """A beacon in a format or version dtncloud does not speak (e.g. SDNV IPND version 4)."""


@dataclass(frozen=True, slots=True)
class Service:
    """A convergence-layer endpoint a node announces: CLA registry name, port, and optionally
    the host to reach it at (``None``: the address the beacon came from)."""

    cla: str
    port: int | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        if not self.cla or len(self.cla) > MAX_NAME_LENGTH:
            raise ValueError(f"a CLA name has 1 to {MAX_NAME_LENGTH} characters: {self.cla!r}")
        if self.port is not None and not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")
        if self.host is not None and not 0 < len(self.host) <= MAX_HOST_LENGTH:
            raise ValueError(f"a host has 1 to {MAX_HOST_LENGTH} characters")

    def address(self, source_host: str) -> str:
        """``host:port`` to connect to; ``source_host`` (the beacon's sender) if no host."""
        return format_address(self.host or source_host, self.port)


@dataclass(frozen=True, slots=True)
class Beacon:
    """One decoded (or to be encoded) beacon. ``period_ms`` travels in whole seconds, rounded
    up; ``custom`` holds dtn7-rs custom services (tag, value) as they came."""

    node_id: EID
    sequence: int = 0
    services: tuple[Service, ...] = ()
    period_ms: int | None = None
    custom: tuple[tuple[int, bytes], ...] = ()

    @property
    def flags(self) -> int:
        flags = FLAG_EID
        if self.services or self.custom:
            flags |= FLAG_SERVICES
        if self.period_ms is not None:
            flags |= FLAG_PERIOD
        return flags


def format_address(host: str, port: int | None) -> str:
    """``host:port``, with an IPv6 address in brackets; just the host if ``port`` is None."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


# -- encoding -------------------------------------------------------------------------------


def _service_block(beacon: Beacon) -> list[object]:
    clas: list[list[object]] = []
    for service in beacon.services:
        entry: list[object] = [_NAMES_TO_WIRE.get(service.cla, service.cla), service.port]
        if service.host is not None:
            entry.append(service.host)
        clas.append(entry)
    # Octets as an array of small integers: the form dtn7-rs (serde, Vec<u8>) reads.
    custom = {tag: list(value) for tag, value in beacon.custom}
    return [clas, custom]


def encode_beacon(beacon: Beacon) -> bytes:
    """The CBOR encoding of ``beacon`` (see the module docstring)."""
    if not 0 <= beacon.sequence <= _MAX_UINT32:
        raise ValueError(f"sequence number {beacon.sequence} does not fit in 32 bits")
    for tag, _ in beacon.custom:
        if not 0 <= tag <= 0xFF:
            raise ValueError(f"custom service tag {tag} does not fit in 8 bits")
    items = [encode_uint(IPND_VERSION), encode_uint(beacon.flags), beacon.node_id.to_cbor()]
    items.append(encode_uint(beacon.sequence))
    if beacon.flags & FLAG_SERVICES:
        items.append(cbor2.dumps(_service_block(beacon)))
    if beacon.period_ms is not None:
        items.append(encode_uint(-(-max(beacon.period_ms, 0) // 1000)))
    return head(MAJOR_ARRAY, len(items)) + b"".join(items)


# -- decoding -------------------------------------------------------------------------------


def _uint(value: object, what: str, limit: int = _MAX_UINT64) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise BeaconDecodeError(f"{what} must be an unsigned integer up to {limit}")
    return value


def _text(value: object, what: str, limit: int) -> str:
    if type(value) is not str or not 0 < len(value) <= limit:
        raise BeaconDecodeError(f"{what} must be a text string of 1 to {limit} characters")
    return value


def _decode_service(entry: object) -> Service:
    if type(entry) is not list or len(entry) not in (2, 3):
        raise BeaconDecodeError("a CLA entry must be [name, port] or [name, port, host]")
    name = _text(entry[0], "a CLA name", MAX_NAME_LENGTH)
    port = None if entry[1] is None else _uint(entry[1], "a CLA port", 0xFFFF)
    host = _text(entry[2], "a CLA host", MAX_HOST_LENGTH) if len(entry) == 3 else None
    return Service(_NAMES_FROM_WIRE.get(name, name), port, host)


def _decode_custom(value: object) -> tuple[tuple[int, bytes], ...]:
    if type(value) is not dict:
        raise BeaconDecodeError("custom services must be a map")
    custom: list[tuple[int, bytes]] = []
    for tag, content in value.items():
        tag = _uint(tag, "a custom service tag", 0xFF)
        if type(content) is bytes:
            custom.append((tag, content))
        elif type(content) is list and all(type(b) is int and 0 <= b <= 0xFF for b in content):
            custom.append((tag, bytes(content)))
        else:
            raise BeaconDecodeError("a custom service value must be octets")
    return tuple(sorted(custom))


def _decode_service_block(
    block: object,
) -> tuple[tuple[Service, ...], tuple[tuple[int, bytes], ...]]:
    if type(block) is not list or len(block) not in (0, 2):
        raise BeaconDecodeError("a service block must be [CLAs, custom services] or []")
    if not block:
        return (), ()
    clas, custom = block
    if type(clas) is not list:
        raise BeaconDecodeError("the CLAs of a service block must be an array")
    return tuple(_decode_service(entry) for entry in clas), _decode_custom(custom)


def _parse(data: bytes | bytearray | memoryview) -> list[object]:
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size == 0:
        raise BeaconDecodeError("empty datagram")
    if size > MAX_BEACON_SIZE:
        raise BeaconDecodeError(f"{size} bytes is too large for a beacon")
    if not isinstance(data, bytes):
        data = bytes(data)
    if data[0] in (0x01, 0x02, 0x03, 0x04):
        raise UnsupportedBeacon(f"IPND version {data[0]} beacon (SDNV format) is not supported")
    try:
        item, end = decode_item(data, 0, size, DecodeBudget(items=_ITEM_BUDGET))
    except CborError as exc:
        raise BeaconDecodeError(f"not CBOR: {exc}") from None
    if end != size:
        raise BeaconDecodeError(f"{size - end} bytes after the beacon")
    if type(item) is not list:
        raise BeaconDecodeError("a beacon is a CBOR array")
    return item


def decode_beacon(data: bytes | bytearray | memoryview) -> Beacon:
    """Decode one beacon datagram; raises :class:`BeaconDecodeError` (only) if it is not one
    (:class:`UnsupportedBeacon` for a format or version dtncloud does not speak)."""
    items = _parse(data)
    if len(items) < 2 or type(items[0]) is not int:
        raise BeaconDecodeError("a beacon starts with a version number")
    if items[0] != IPND_VERSION:
        raise UnsupportedBeacon(f"IPND version {items[0]} is not supported")
    if not 4 <= len(items) <= 6:
        raise BeaconDecodeError(f"a version 7 beacon has 4 to 6 items, not {len(items)}")
    flags = _uint(items[1], "the flags", 0xFF)
    try:
        node_id = EID.from_cbor(items[2], lenient=True)
    except InvalidEID as exc:
        raise BeaconDecodeError(f"bad node ID: {exc}") from None
    if node_id.is_none:
        raise BeaconDecodeError("a beacon from dtn:none names no node")
    sequence = _uint(items[3], "the sequence number")
    services: tuple[Service, ...] = ()
    custom: tuple[tuple[int, bytes], ...] = ()
    period: int | None = None
    rest = items[4:]
    if len(rest) == 2 or (len(rest) == 1 and flags & FLAG_SERVICES):
        services, custom = _decode_service_block(rest[0])
        rest = rest[1:]
    if rest:
        period = _uint(rest[0], "the period") * 1000
    return Beacon(node_id, sequence, services, period, custom)
