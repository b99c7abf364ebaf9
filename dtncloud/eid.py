"""Endpoint IDs (RFC 9171 section 4.2.5): ``dtn:none``, ``dtn://node/demux`` and ``ipn:node.service``.

>>> eid = EID.parse("dtn://relay/inbox")
>>> eid.node_id
DtnEID('//relay/')
>>> str(EID.parse("ipn:23.42"))
'ipn:23.42'

An EID is an immutable value. :meth:`EID.parse` reads the URI text form and
:meth:`EID.from_cbor` the ``[scheme code, SSP]`` form that bundles carry; both raise
:class:`~dtncloud.errors.InvalidEID` with a message that says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from dtncloud.cborutil import MAJOR_TEXT, MAX_UINT64, encode_uint, head, head_len
from dtncloud.errors import InvalidEID

SCHEME_DTN = 1
SCHEME_IPN = 2

# The CBOR encodings of the fixed parts: [1, 0] is dtn:none, 0x82 0x01 starts a dtn EID,
# 0x82 0x02 0x82 starts an ipn EID.
_DTN_NONE_CBOR = b"\x82\x01\x00"
_DTN_PREFIX = b"\x82\x01"
_IPN_PREFIX = b"\x82\x02\x82"
# 2^64-1 has 20 decimal digits.
_UINT64_DIGITS = len(str(MAX_UINT64))


def _is_ascii_number(text: str) -> bool:
    return text.isascii() and text.isdecimal()


def _clip(text: str, limit: int = 40) -> str:
    """``text`` shortened for an error message (hostile input can be arbitrarily long)."""
    return text if len(text) <= limit else text[:limit] + "..."


class EID:
    """Base class of endpoint IDs. Use :meth:`parse` or :meth:`from_cbor` to make one."""

    __slots__ = ()
    scheme: ClassVar[int]

    @staticmethod
    def parse(text: str, *, lenient: bool = False) -> EID:
        """Parse the URI form. ``lenient`` also accepts pre-RFC ``dtn:node/demux`` (no ``//``)."""
        if not isinstance(text, str):
            raise InvalidEID(f"an EID must be a string, not {type(text).__name__}")
        scheme, sep, ssp = text.partition(":")
        if not sep:
            raise InvalidEID(f"{text!r} is not an endpoint ID: no scheme (expected dtn: or ipn:)")
        scheme = scheme.lower()
        if scheme == "dtn":
            if ssp == "none":
                return DTN_NONE
            return DtnEID.from_ssp(ssp, lenient=lenient)
        if scheme == "ipn":
            return IpnEID.from_ssp(ssp)
        raise InvalidEID(f"{text!r}: unsupported URI scheme {scheme!r} (expected dtn or ipn)")

    @staticmethod
    def from_cbor(item: Any, *, lenient: bool = False) -> EID:
        """Build an EID from its decoded CBOR form ``[scheme code, SSP]``."""
        if type(item) is not list or len(item) != 2:
            raise InvalidEID(f"an EID must be a 2-item array, not {item!r:.60}")
        scheme, ssp = item
        if scheme == SCHEME_DTN and type(scheme) is int:
            if type(ssp) is str:
                return DtnEID.from_ssp(ssp, lenient=lenient)
            if ssp == 0 and type(ssp) is int:
                return DTN_NONE
            raise InvalidEID(f"dtn SSP must be a text string or 0, not {ssp!r:.60}")
        if scheme == SCHEME_IPN and type(scheme) is int:
            if type(ssp) is list and len(ssp) == 2:
                node, service = ssp
                if type(node) is int and type(service) is int:
                    return IpnEID(node, service)
            raise InvalidEID(f"ipn SSP must be [node, service] unsigned integers, not {ssp!r:.60}")
        raise InvalidEID(f"unsupported EID scheme code {scheme!r:.20}")

    def to_cbor(self) -> bytes:
        """The deterministic CBOR encoding of this EID."""
        raise NotImplementedError

    def cbor_length(self) -> int:
        """``len(self.to_cbor())`` without building the bytes."""
        raise NotImplementedError

    @property
    def node_id(self) -> EID:
        """The node ID of the node that registers this endpoint."""
        raise NotImplementedError

    @property
    def is_node_id(self) -> bool:
        return self == self.node_id

    @property
    def is_singleton(self) -> bool:
        """Whether this endpoint names at most one node (RFC 9171 section 4.2.5.1)."""
        return True

    @property
    def is_none(self) -> bool:
        return False

    def matches(self, pattern: str) -> bool:
        """Whether this EID matches ``pattern``: an EID, or a prefix ending in ``*``."""
        text = str(self)
        if pattern.endswith("*"):
            return text.startswith(pattern[:-1])
        return text == pattern


@dataclass(frozen=True, slots=True)
class DtnNone(EID):
    """The null endpoint ``dtn:none``: a bundle from it is anonymous."""

    scheme: ClassVar[int] = SCHEME_DTN

    def __str__(self) -> str:
        return "dtn:none"

    def __repr__(self) -> str:
        return "DTN_NONE"

    def to_cbor(self) -> bytes:
        return _DTN_NONE_CBOR

    def cbor_length(self) -> int:
        return 3

    @property
    def node_id(self) -> EID:
        return self

    @property
    def is_singleton(self) -> bool:
        return False

    @property
    def is_none(self) -> bool:
        return True


DTN_NONE = DtnNone()


@dataclass(frozen=True, slots=True)
class DtnEID(EID):
    """A ``dtn`` scheme EID; ``ssp`` keeps the scheme-specific part with its leading ``//``."""

    scheme: ClassVar[int] = SCHEME_DTN
    ssp: str

    @classmethod
    def from_ssp(cls, ssp: str, *, lenient: bool = False) -> DtnEID:
        # RFC 9171 4.2.5.1.1: "//" node-name "/" demux, node-name 1*VCHAR, demux *VCHAR.
        # VCHAR is printable ASCII without space, which excludes percent-decoded forms too.
        if not (ssp.isascii() and ssp.isprintable()) or " " in ssp:
            raise InvalidEID(f"dtn:{ssp!r:.60}: only printable ASCII without spaces is allowed")
        if ssp.startswith("//"):
            slash = ssp.find("/", 2)
            if slash > 2:
                return cls(ssp)
            if slash == 2:
                raise InvalidEID(f"dtn:{ssp}: empty node name")
            raise InvalidEID(f"dtn:{ssp}: missing '/' after the node name (a node ID ends in '/')")
        if lenient and ssp and not ssp.startswith("/"):
            # Pre-RFC fixtures (uD3TN, old bp7-rs docs) write "node/demux" or just "node".
            node, _, demux = ssp.partition("/")
            return cls(f"//{node}/{demux}")
        raise InvalidEID(f"dtn:{ssp}: a dtn EID must look like dtn://node/demux")

    @property
    def node(self) -> str:
        return self.ssp[2 : self.ssp.find("/", 2)]

    @property
    def demux(self) -> str:
        return self.ssp[self.ssp.find("/", 2) + 1 :]

    @property
    def node_id(self) -> EID:
        cut = self.ssp.find("/", 2) + 1
        return self if cut == len(self.ssp) else DtnEID(self.ssp[:cut])

    @property
    def is_singleton(self) -> bool:
        return not self.demux.startswith("~")

    def with_demux(self, demux: str) -> DtnEID:
        """The endpoint ``demux`` on the same node."""
        return DtnEID.from_ssp(f"//{self.node}/{demux}")

    def __str__(self) -> str:
        return "dtn:" + self.ssp

    def __repr__(self) -> str:
        return f"DtnEID({self.ssp!r})"

    def to_cbor(self) -> bytes:
        raw = self.ssp.encode("utf-8")
        return _DTN_PREFIX + head(MAJOR_TEXT, len(raw)) + raw

    def cbor_length(self) -> int:
        size = len(self.ssp)  # ASCII only, checked in from_ssp
        return 2 + head_len(size) + size


@dataclass(frozen=True, slots=True)
class IpnEID(EID):
    """An ``ipn`` scheme EID: ``ipn:node.service``; service 0 is the node ID."""

    scheme: ClassVar[int] = SCHEME_IPN
    node: int
    service: int

    def __post_init__(self) -> None:
        if not (0 <= self.node <= MAX_UINT64 and 0 <= self.service <= MAX_UINT64):
            raise InvalidEID(f"ipn:{self.node}.{self.service}: numbers must be 0..2^64-1")

    @classmethod
    def from_ssp(cls, ssp: str) -> IpnEID:
        """Parse ``NODE.SERVICE``: ASCII decimal digits only, each number at most 2^64-1."""
        node, dot, service = ssp.partition(".")
        # isdecimal() alone admits other scripts' digits ("\u0661") and int() would also take
        # signs, underscores and spaces, so both parts must be plain ASCII digits.
        if not (dot and _is_ascii_number(node) and _is_ascii_number(service)):
            raise InvalidEID(f"ipn:{_clip(ssp)}: expected ipn:NODE.SERVICE with decimal numbers")
        # Check the length before int(): past 4300 digits int() raises a plain ValueError, and
        # a number that long could never fit in 64 bits anyway. Leading zeros don't count.
        node, service = node.lstrip("0") or "0", service.lstrip("0") or "0"
        if len(node) > _UINT64_DIGITS or len(service) > _UINT64_DIGITS:
            raise InvalidEID(f"ipn:{_clip(ssp)}: numbers must be 0..2^64-1")
        return cls(int(node), int(service))

    @property
    def node_id(self) -> EID:
        return self if self.service == 0 else IpnEID(self.node, 0)

    def with_service(self, service: int) -> IpnEID:
        return IpnEID(self.node, service)

    def __str__(self) -> str:
        return f"ipn:{self.node}.{self.service}"

    def __repr__(self) -> str:
        return f"IpnEID({self.node}, {self.service})"

    def to_cbor(self) -> bytes:
        return _IPN_PREFIX + encode_uint(self.node) + encode_uint(self.service)

    def cbor_length(self) -> int:
        return 3 + head_len(self.node) + head_len(self.service)


class EidCache:
    """A bounded memo of decoded EIDs and their encoded lengths, keyed by their CBOR SSP.

    Decoders see the same few endpoints again and again; reusing the immutable EID objects
    saves most of the cost of decoding a primary block. The memo is invisible in results
    (EIDs are values), and it is emptied when full, so hostile input cannot grow it.
    """

    __slots__ = ("_dtn", "_encoded", "_ipn", "_limit", "dtn_get", "encoded_get", "ipn_get")

    def __init__(self, limit: int = 4096) -> None:
        # dtn:none is memoised under its SSP, the integer 0.
        self._dtn: dict[str | int, tuple[EID, int]] = {0: (DTN_NONE, 3)}
        self._ipn: dict[tuple[int, int], tuple[EID, int]] = {}
        self._limit = limit
        #: Bound ``get`` of the dtn memo (keyed by SSP text) and the ipn memo (keyed by
        #: ``(node, service)``), for decoders that inline the lookup.
        self.dtn_get = self._dtn.get
        self.ipn_get = self._ipn.get
        # EIDs by their deterministic CBOR encoding (as previous node blocks carry them).
        self._encoded: dict[bytes, EID] = {}
        #: Bound ``get`` of the by-encoding memo: the EID whose deterministic encoding is
        #: exactly the key, if :meth:`remember_encoding` met it, else None.
        self.encoded_get = self._encoded.get

    def remember_encoding(self, eid: EID, data: bytes) -> None:
        """Memoise ``eid`` under ``data`` if ``data`` is its deterministic encoding."""
        if eid.to_cbor() == data:
            if len(self._encoded) >= self._limit:
                self._encoded.clear()
            self._encoded[data] = eid

    def lookup(self, item: Any, lenient: bool = False) -> tuple[EID, int]:
        """``(EID.from_cbor(item), its encoded length)``, from the memo when possible."""
        if type(item) is list and len(item) == 2:
            scheme, ssp = item
            if type(ssp) is str:
                hit = self._dtn.get(ssp)
                if hit is not None and scheme == SCHEME_DTN and type(scheme) is int:
                    return hit
            elif type(ssp) is list and len(ssp) == 2:
                key = (ssp[0], ssp[1])
                hit = self._ipn.get(key) if type(key[0]) is int and type(key[1]) is int else None
                if hit is not None and scheme == SCHEME_IPN and type(scheme) is int:
                    return hit
        eid = EID.from_cbor(item, lenient=lenient)
        if isinstance(eid, DtnEID) and eid.ssp != item[1]:
            # A lenient rewrite of a pre-RFC form: the length is that of the form received,
            # and it is not memoised (a strict decoder must still refuse it).
            raw = len(item[1].encode("utf-8"))
            return eid, 2 + head_len(raw) + raw
        entry = (eid, eid.cbor_length())
        if isinstance(eid, DtnEID):
            if len(self._dtn) >= self._limit:
                self._dtn.clear()
                self._dtn[0] = (DTN_NONE, 3)
            self._dtn[eid.ssp] = entry
        elif isinstance(eid, IpnEID):
            if len(self._ipn) >= self._limit:
                self._ipn.clear()
            self._ipn[(eid.node, eid.service)] = entry
        return entry


def parse_eid(value: str | EID, *, lenient: bool = False) -> EID:
    """Accept an EID or its text form; convenient for APIs that take either."""
    if isinstance(value, EID):
        return value
    return EID.parse(value, lenient=lenient)


#: The memo shared by decoders that are not given their own (see EidCache: the results never
#: depend on it, so sharing it between nodes in one process is harmless).
DEFAULT_EID_CACHE = EidCache()
