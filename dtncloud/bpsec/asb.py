"""The Abstract Security Block (RFC 9172 section 3.6): the data of every BIB and BCB.

The block-type-specific data of a BIB or BCB is a CBOR *sequence* (the items follow one another,
with no enclosing array):

1. security targets: array of block numbers (0 is the primary block), at least one, no repeats
2. security context ID: int
3. security context flags: uint; bit 0 says whether item 5 is present
4. security source: EID
5. security context parameters, if flagged: ``[[id, value], ...]``
6. security results: one array per target, in target order, each ``[[result id, value], ...]``

:class:`AbstractSecurityBlock` is that structure as a value. Decoding is bounded by the input
length and by an item budget, and any malformed input raises :class:`MalformedSecurityBlock`;
encoding is deterministic (RFC 8949 section 4.2.1), which reproduces the RFC 9173 examples byte
for byte. Parameter and result values are kept as decoded CBOR values (``int``, ``bytes``,
``str``, ``list``, ``dict``, :class:`~dtncloud.cborutil.Tagged`, ...) so that blocks of security
contexts dtncloud does not implement still parse and re-encode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cbor2

from dtncloud.bpsec.exceptions import MalformedSecurityBlock
from dtncloud.cborutil import (
    MAJOR_ARRAY,
    MAJOR_BYTES,
    MAJOR_MAP,
    MAJOR_NINT,
    MAJOR_TAG,
    MAJOR_TEXT,
    MAJOR_UINT,
    MAX_UINT64,
    CborError,
    DecodeBudget,
    Tagged,
    Undefined,
    decode_item,
    encode_uint,
    head,
)
from dtncloud.eid import EID
from dtncloud.errors import InvalidEID

#: Context flag bit 0: the security context parameters are present.
PARAMETERS_PRESENT = 0x01

#: Default item budget for :meth:`AbstractSecurityBlock.decode`.
DEFAULT_MAX_ITEMS = 4096

#: One ``[id, value]`` pair, as a parameter or a result.
Pair = tuple[int, Any]


@dataclass(frozen=True, slots=True)
class AbstractSecurityBlock:
    """The contents of a BIB or BCB.

    ``parameters`` is ``None`` when the context flags say there are none (an empty tuple is an
    explicitly present, empty list). ``results[i]`` holds the results for ``targets[i]``.
    ``reserved_flags`` keeps context flag bits other than bit 0, which RFC 9172 leaves
    unassigned, so a received block re-encodes unchanged. The constructor checks the structure
    and raises :class:`MalformedSecurityBlock` when it breaks a rule of RFC 9172.
    """

    targets: tuple[int, ...]
    context_id: int
    source: EID
    parameters: tuple[Pair, ...] | None
    results: tuple[tuple[Pair, ...], ...]
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        # Tuples throughout, so that a block built from lists equals its decoded twin.
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.parameters is not None:
            object.__setattr__(self, "parameters", tuple(_as_pairs(self.parameters)))
        object.__setattr__(self, "results", tuple(tuple(_as_pairs(r)) for r in self.results))
        _check(self)

    @property
    def context_flags(self) -> int:
        """The security context flags field as it is encoded."""
        present = PARAMETERS_PRESENT if self.parameters is not None else 0
        return self.reserved_flags | present

    def parameter(self, parameter_id: int, default: Any = None) -> Any:
        """The value of the first parameter with that ID, or ``default``."""
        for pid, value in self.parameters or ():
            if pid == parameter_id:
                return value
        return default

    def results_for(self, target: int) -> tuple[Pair, ...]:
        """The results for block number ``target`` (KeyError if it is not a target)."""
        try:
            return self.results[self.targets.index(target)]
        except ValueError:
            raise KeyError(f"block {target} is not a security target of this block") from None

    # -- encoding -------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The deterministic encoding: the block-type-specific data of the security block."""
        parts = [
            head(MAJOR_ARRAY, len(self.targets)),
            *(encode_uint(t) for t in self.targets),
            encode_value(self.context_id),
            encode_uint(self.context_flags),
            self.source.to_cbor(),
        ]
        if self.parameters is not None:
            parts.append(_encode_pairs(self.parameters))
        parts.append(head(MAJOR_ARRAY, len(self.results)))
        parts.extend(_encode_pairs(r) for r in self.results)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, *, max_items: int = DEFAULT_MAX_ITEMS) -> AbstractSecurityBlock:
        """Parse the data of a BIB or BCB. Raises :class:`MalformedSecurityBlock` (never
        anything else) when ``data`` is not exactly one well-formed ASB."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedSecurityBlock(f"ASB data must be bytes, not {type(data).__name__}")
        end = len(data)
        budget = DecodeBudget(items=max_items)
        items: list[Any] = []
        pos = 0
        try:
            while pos < end and len(items) < 6:
                item, pos = decode_item(data, pos, end, budget)
                items.append(item)
        except CborError as exc:
            raise MalformedSecurityBlock(f"malformed CBOR in security block: {exc}") from exc
        if pos != end:
            raise MalformedSecurityBlock("trailing data after the security results")
        if len(items) < 5:
            raise MalformedSecurityBlock(f"an ASB has 5 or 6 items, this one has {len(items)}")
        targets, context_id, flags, source = items[:4]
        if type(flags) is not int or not 0 <= flags <= MAX_UINT64:
            raise MalformedSecurityBlock("security context flags must be an unsigned integer")
        expected = 6 if flags & PARAMETERS_PRESENT else 5
        if len(items) > expected:
            raise MalformedSecurityBlock("trailing data after the security results")
        if len(items) != expected:
            raise MalformedSecurityBlock(
                f"context flags {flags:#x} call for {expected} ASB items, found {len(items)}"
            )
        if type(targets) is not list:
            raise MalformedSecurityBlock("security targets must be an array")
        if type(context_id) is not int:
            raise MalformedSecurityBlock("the security context ID must be an integer")
        try:
            eid = EID.from_cbor(source)
        except InvalidEID as exc:
            raise MalformedSecurityBlock(f"security source: {exc}") from exc
        parameters = _pairs(items[4], "security context parameters") if expected == 6 else None
        results = items[-1]
        if type(results) is not list:
            raise MalformedSecurityBlock("security results must be an array")
        return cls(
            targets=tuple(targets),
            context_id=context_id,
            source=eid,
            parameters=parameters,
            results=tuple(_pairs(r, "target results") for r in results),
            reserved_flags=flags & ~PARAMETERS_PRESENT,
        )


def _pairs(value: Any, what: str) -> tuple[Pair, ...]:
    if type(value) is not list:
        raise MalformedSecurityBlock(f"{what} must be an array")
    pairs = []
    for pair in value:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not int:
            raise MalformedSecurityBlock(f"{what} must be [id, value] pairs with integer IDs")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _as_pairs(pairs: Iterable[Any]) -> Iterable[Pair]:
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise MalformedSecurityBlock("parameters and results are (id, value) pairs")
        yield (pair[0], pair[1])


def _check(asb: AbstractSecurityBlock) -> None:
    targets = asb.targets
    if not targets:
        raise MalformedSecurityBlock("an ASB needs at least one security target")
    if not all(type(t) is int and 0 <= t <= MAX_UINT64 for t in targets):
        raise MalformedSecurityBlock("security targets must be block numbers (unsigned integers)")
    if len(set(targets)) != len(targets):
        raise MalformedSecurityBlock(f"security targets {list(targets)} repeat a block")
    if len(asb.results) != len(targets):
        raise MalformedSecurityBlock(
            f"{len(targets)} security targets but {len(asb.results)} sets of results"
        )
    if type(asb.context_id) is not int or not -MAX_UINT64 - 1 <= asb.context_id <= MAX_UINT64:
        raise MalformedSecurityBlock("the security context ID must be a 64-bit integer")
    flags = asb.reserved_flags
    if type(flags) is not int or not 0 <= flags <= MAX_UINT64 or flags & PARAMETERS_PRESENT:
        raise MalformedSecurityBlock("reserved_flags must be an unsigned integer without bit 0")
    if not isinstance(asb.source, EID):
        raise MalformedSecurityBlock("the security source must be an EID")
    pairs = [*(asb.parameters or ()), *(p for r in asb.results for p in r)]
    if not all(type(pid) is int for pid, _ in pairs):
        raise MalformedSecurityBlock("parameter and result IDs must be integers")


# -- deterministic CBOR for parameter and result values -----------------------------------


def _encode_pairs(pairs: Iterable[Pair]) -> bytes:
    encoded = [b"\x82" + encode_value(pid) + encode_value(value) for pid, value in pairs]
    return head(MAJOR_ARRAY, len(encoded)) + b"".join(encoded)


def encode_value(value: Any) -> bytes:
    """Deterministic CBOR (RFC 8949 section 4.2.1) for a decoded CBOR value: map keys sorted by
    their encoding, shortest heads. Raises :class:`MalformedSecurityBlock` for a value CBOR
    cannot carry."""
    if value is True or value is False:
        return b"\xf5" if value else b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        if 0 <= value <= MAX_UINT64:
            return head(MAJOR_UINT, value)
        if -MAX_UINT64 - 1 <= value < 0:
            return head(MAJOR_NINT, -1 - value)
        raise MalformedSecurityBlock(f"integer {value} does not fit in CBOR")
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return head(MAJOR_BYTES, len(raw)) + raw
    if isinstance(value, str):
        text = value.encode("utf-8")
        return head(MAJOR_TEXT, len(text)) + text
    if isinstance(value, list | tuple):
        return head(MAJOR_ARRAY, len(value)) + b"".join(encode_value(v) for v in value)
    if isinstance(value, dict):
        entries = sorted((encode_value(k), encode_value(v)) for k, v in value.items())
        return head(MAJOR_MAP, len(entries)) + b"".join(k + v for k, v in entries)
    if isinstance(value, Tagged):
        return head(MAJOR_TAG, value.tag) + encode_value(value.value)
    if isinstance(value, Undefined):
        return b"\xf7"
    if isinstance(value, float):
        # cbor2's canonical mode picks the shortest float form that keeps the value.
        return bytes(cbor2.dumps(value, canonical=True))
    raise MalformedSecurityBlock(f"cannot encode a {type(value).__name__} as CBOR")
