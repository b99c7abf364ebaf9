"""Endpoint IDs in BPv6: the primary block's dictionary (RFC 5050 4.5.1) and CBHE (RFC 6260).

A BPv6 bundle names an endpoint by two offsets into a dictionary of NUL-terminated ASCII
strings: one for the URI scheme and one for the scheme-specific part. The codec exposes EIDs
as ``"scheme:ssp"`` strings and builds the dictionary itself, storing each distinct string
once. Under Compressed Bundle Header Encoding the dictionary is empty and the two offset fields
carry the node and service numbers of an ``ipn`` EID; the pair (0, 0) stands for ``dtn:none``.

Decoding insists that each offset points at the start of a dictionary string (offset 0 or just
after a NUL) and that the dictionary ends with a NUL. Every implementation we know builds its
dictionary that way, and the rule keeps lookups linear in the input: a hostile bundle cannot
make thousands of references to overlapping suffixes of one long string.
"""

from __future__ import annotations

import re

from dtncloud.errors import BundleDecodeError, BundleEncodeError, BundleTooLarge

__all__ = [
    "DTN_NONE",
    "DictionaryBuilder",
    "DictionaryReader",
    "cbhe_eid",
    "cbhe_numbers",
    "split_eid",
]

#: The null endpoint ID.
DTN_NONE = "dtn:none"

# Canonical decimal only: a leading zero or sign would not survive a decode/encode round trip.
_IPN_CANONICAL = re.compile(r"ipn:(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_U64_MAX = (1 << 64) - 1


def split_eid(eid: str, what: str) -> tuple[bytes, bytes]:
    """Split ``"scheme:ssp"`` into its ASCII scheme and SSP bytes for the dictionary.

    The scheme must be non-empty and the whole EID ASCII without NUL (the dictionary's
    terminator). ``what`` names the field in the
    :class:`~dtncloud.errors.BundleEncodeError` raised for anything else.
    """
    if not isinstance(eid, str):
        raise BundleEncodeError(f"{what}: an EID must be a str, not {type(eid).__name__}")
    scheme, sep, ssp = eid.partition(":")
    if not sep or not scheme:
        raise BundleEncodeError(f"{what}: {eid!r} is not an EID of the form 'scheme:ssp'")
    if not eid.isascii() or "\0" in eid:
        raise BundleEncodeError(f"{what}: {eid!r} must be ASCII without NUL characters")
    return scheme.encode("ascii"), ssp.encode("ascii")


def cbhe_numbers(eid: str) -> tuple[int, int] | None:
    """Return the (node, service) pair CBHE puts in the offset fields, or None if the EID
    cannot travel compressed. ``dtn:none`` is (0, 0), so ``ipn:0.0`` cannot."""
    if eid == DTN_NONE:
        return 0, 0
    match = _IPN_CANONICAL.fullmatch(eid)
    if match is None:
        return None
    node, service = int(match[1]), int(match[2])
    if node > _U64_MAX or service > _U64_MAX or (node, service) == (0, 0):
        return None
    return node, service


def cbhe_eid(node: int, service: int) -> str:
    """Return the EID that a CBHE (node, service) pair stands for."""
    if node == 0 and service == 0:
        return DTN_NONE
    return f"ipn:{node}.{service}"


class DictionaryBuilder:
    """Collects EIDs for one bundle's dictionary, storing each distinct string once.

    Strings go in first-use order, so the primary block's EIDs come first, in the order
    destination, source, report-to, custodian, then the blocks' EID references.
    """

    __slots__ = ("_offsets", "_parts", "_size")

    def __init__(self) -> None:
        self._offsets: dict[bytes, int] = {}
        self._parts: list[bytes] = []
        self._size = 0

    def _intern(self, text: bytes) -> int:
        offset = self._offsets.get(text)
        if offset is None:
            offset = self._size
            self._offsets[text] = offset
            self._parts.append(text + b"\0")
            self._size += len(text) + 1
        return offset

    def add(self, eid: str, what: str) -> tuple[int, int]:
        """Add ``eid``; return its (scheme offset, SSP offset)."""
        scheme, ssp = split_eid(eid, what)
        return self._intern(scheme), self._intern(ssp)

    def encode(self) -> bytes:
        """Return the dictionary byte array."""
        return b"".join(self._parts)


class DictionaryReader:
    """Resolves (scheme offset, SSP offset) pairs against a received dictionary.

    Raises :class:`~dtncloud.errors.BundleDecodeError` (reason 8, block unintelligible) for
    an offset outside the dictionary or not at the start of a string, a scheme that is empty
    or contains ``:``, or text that is not ASCII. Each string is decoded once. ``budget``
    caps the total length of the distinct EIDs handed out (see :meth:`eid`).
    """

    __slots__ = ("_budget", "_cache", "_data", "_eids")

    def __init__(self, data: bytes, budget: int) -> None:
        if data and data[-1] != 0:
            raise BundleDecodeError("the dictionary does not end with a NUL byte")
        self._data = data
        self._budget = budget
        self._cache: dict[int, str] = {}
        self._eids: dict[tuple[int, int], str] = {}

    def _string(self, offset: int, what: str) -> str:
        cached = self._cache.get(offset)
        if cached is not None:
            return cached
        data = self._data
        if offset >= len(data):
            raise BundleDecodeError(
                f"{what}: offset {offset} is outside the {len(data)}-byte dictionary"
            )
        if offset and data[offset - 1] != 0:
            raise BundleDecodeError(f"{what}: offset {offset} is not at the start of a string")
        # The dictionary ends with NUL (checked above), so find() always succeeds.
        end = data.find(0, offset)
        raw = data[offset:end]
        if not raw.isascii():
            raise BundleDecodeError(f"{what}: dictionary string at offset {offset} is not ASCII")
        text = raw.decode("ascii")
        self._cache[offset] = text
        return text

    def eid(self, scheme_offset: int, ssp_offset: int, what: str) -> str:
        """Return the ``"scheme:ssp"`` EID the two offsets name.

        Repeated pairs return the same string object. Distinct pairs are charged against
        the reader's budget of characters: n strings can be paired in n * n ways, so without
        a budget a small dictionary could expand into gigabytes of EIDs. Running out raises
        :class:`~dtncloud.errors.BundleTooLarge`.
        """
        key = (scheme_offset, ssp_offset)
        known = self._eids.get(key)
        if known is not None:
            return known
        scheme = self._string(scheme_offset, f"{what} scheme")
        if not scheme or ":" in scheme:
            raise BundleDecodeError(f"{what}: {scheme!r} is not a URI scheme name")
        eid = f"{scheme}:{self._string(ssp_offset, f'{what} SSP')}"
        self._budget -= len(eid)
        if self._budget < 0:
            raise BundleTooLarge(f"{what}: the EIDs of this bundle expand beyond the limit")
        self._eids[key] = eid
        return eid
