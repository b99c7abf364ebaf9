"""BIBE administrative records (draft-ietf-dtn-bibect): the bundle-in-bundle PDU and the
custody signal.

BPv7 has no custody transfer of its own. BIBE tunnels a bundle through the payload of another
bundle (a *BPDU*) and lets the receiving end of that tunnel take custody of it, answering with
a *custody signal* that names the transmission IDs it covers as runs of consecutive IDs.

This module knows the content of the two records; :mod:`dtncloud.bpv7.admin` wraps them in
``[record type, content]`` with the record type numbers of an
:class:`~dtncloud.bpv7.admin.AdminRecordTypes` (3 and 4 in the draft, 7 and 8 in ION).

>>> signal = custody_signal_for([5, 3, 4, 9], CustodyDisposition.ACCEPTED)
>>> signal.scope
((3, 3), (9, 1))
>>> signal.covers(4), signal.covers(6)
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import DEFAULT_MAX_BUNDLE_SIZE, decode_bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.cborutil import MAJOR_ARRAY, MAX_UINT64, encode_bytes, encode_uint, head
from dtncloud.errors import AdminRecordError


class CustodyDisposition(IntEnum):
    """Disposition codes of a BIBE custody signal (the RFC 5050 custody reasons, as ION and
    HDTN use them). Codes not listed here are kept as plain ints."""

    ACCEPTED = 0
    NO_FURTHER_INFORMATION = 1
    REDUNDANT_RECEPTION = 3
    DEPLETED_STORAGE = 4
    DESTINATION_EID_UNINTELLIGIBLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8


def _check_uint(name: str, value: object) -> int:
    """``value`` as a plain int; ValueError unless it is an unsigned 64-bit integer."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UINT64:
        return int(value)
    raise ValueError(f"{name} must be an unsigned 64-bit integer, not {value!r:.40}")


def _disposition(value: int) -> CustodyDisposition | int:
    try:
        return CustodyDisposition(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class BibePdu:
    """A BIBE protocol data unit: an encapsulated bundle, kept as opaque bytes.

    ``transmission_id`` 0 means the sender does not ask for custody; otherwise the receiving
    custodian answers with a :class:`CustodySignal` covering it. ``retransmission_time`` is
    the DTN time (ms) by which the sender expects that signal, or 0.
    """

    transmission_id: int
    retransmission_time: int
    bundle_bytes: bytes

    def __post_init__(self) -> None:
        _check_uint("transmission ID", self.transmission_id)
        _check_uint("retransmission time", self.retransmission_time)
        if isinstance(self.bundle_bytes, bytearray | memoryview):
            object.__setattr__(self, "bundle_bytes", bytes(self.bundle_bytes))
        elif type(self.bundle_bytes) is not bytes:
            raise ValueError("the encapsulated bundle must be bytes")

    @property
    def custody_requested(self) -> bool:
        return self.transmission_id != 0

    def bundle(self, *, max_size: int = DEFAULT_MAX_BUNDLE_SIZE, lenient: bool = False) -> Bundle:
        """Decode the encapsulated bundle (raises :class:`~dtncloud.errors.BundleDecodeError`)."""
        return decode_bundle(self.bundle_bytes, max_size=max_size, lenient=lenient)


@dataclass(frozen=True, slots=True)
class CustodySignal:
    """A BIBE custody signal: a disposition for every transmission ID in ``scope``.

    ``scope`` is a sequence of ``(first transmission ID, count)`` runs, each with count >= 1,
    kept in the order given (a decoded signal re-encodes byte for byte).
    :func:`custody_signal_for` builds the shortest sorted scope for a set of IDs.
    """

    disposition: CustodyDisposition | int
    scope: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        code = _check_uint("disposition code", self.disposition)
        object.__setattr__(self, "disposition", _disposition(code))
        runs = []
        for run in self.scope:
            try:
                first, count = run
            except (TypeError, ValueError):
                raise ValueError(
                    f"a scope run must be (first ID, count), not {run!r:.40}"
                ) from None
            first = _check_uint("first transmission ID", first)
            count = _check_uint("transmission ID count", count)
            if count == 0:
                raise ValueError(f"the run starting at transmission ID {first} has count 0")
            if first + count - 1 > MAX_UINT64:
                raise ValueError(f"the run ({first}, {count}) goes past 2**64 - 1")
            runs.append((first, count))
        object.__setattr__(self, "scope", tuple(runs))

    @property
    def accepted(self) -> bool:
        """Whether custody was accepted for the IDs in scope."""
        return self.disposition == CustodyDisposition.ACCEPTED

    def covers(self, transmission_id: int) -> bool:
        """Whether ``transmission_id`` lies in one of the runs."""
        return any(first <= transmission_id < first + count for first, count in self.scope)

    def transmission_ids(self) -> Iterator[int]:
        """Every transmission ID in scope, run by run."""
        for first, count in self.scope:
            yield from range(first, first + count)


def custody_signal_for(
    ids: Iterable[int], disposition: CustodyDisposition | int = CustodyDisposition.ACCEPTED
) -> CustodySignal:
    """A custody signal whose scope covers exactly ``ids`` (duplicates allowed) with the
    fewest runs: sorted, non-overlapping, and never two runs that could be joined."""
    runs: list[tuple[int, int]] = []
    first = count = 0
    for tid in sorted({_check_uint("transmission ID", i) for i in ids}):
        if count and tid == first + count:
            count += 1
            continue
        if count:
            runs.append((first, count))
        first, count = tid, 1
    if count:
        runs.append((first, count))
    return CustodySignal(disposition, tuple(runs))


def bibe_encapsulate(
    inner: bytes | bytearray | memoryview | Bundle,
    *,
    transmission_id: int = 0,
    retransmission_time: int = 0,
) -> BibePdu:
    """A BPDU carrying ``inner`` (a bundle, or its encoding, which is not checked).

    Put it in a bundle with :func:`~dtncloud.bpv7.admin.admin_bundle`.
    """
    data = encode_bundle(inner) if isinstance(inner, Bundle) else bytes(inner)
    return BibePdu(transmission_id, retransmission_time, data)


# -- content codecs (admin.py adds the [record type, content] framing) --------------------------


def encode_bibe_pdu_content(pdu: BibePdu) -> bytes:
    """``[transmission ID, retransmission time, bundle]`` in deterministic CBOR."""
    return b"".join(
        (
            head(MAJOR_ARRAY, 3),
            encode_uint(pdu.transmission_id),
            encode_uint(pdu.retransmission_time),
            encode_bytes(pdu.bundle_bytes),
        )
    )


def encode_custody_signal_content(signal: CustodySignal) -> bytes:
    """``[disposition, [[first, count], ...]]`` in deterministic CBOR."""
    parts = [
        head(MAJOR_ARRAY, 2),
        encode_uint(int(signal.disposition)),
        head(MAJOR_ARRAY, len(signal.scope)),
    ]
    for first, count in signal.scope:
        parts.append(b"\x82" + encode_uint(first) + encode_uint(count))
    return b"".join(parts)


def _uint_item(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise AdminRecordError(f"{what} must be an unsigned integer, not {value!r:.40}")
    return value


def parse_bibe_pdu(content: Any) -> BibePdu:
    """A :class:`BibePdu` from decoded CBOR content; AdminRecordError if malformed."""
    if type(content) is not list or len(content) != 3:
        raise AdminRecordError(
            "BIBE PDU content must be [transmission ID, retransmission time, bundle]"
        )
    tid = _uint_item(content[0], "BIBE transmission ID")
    deadline = _uint_item(content[1], "BIBE retransmission time")
    if type(content[2]) is not bytes:
        raise AdminRecordError("the encapsulated bundle of a BIBE PDU must be a byte string")
    return BibePdu(tid, deadline, content[2])


def parse_custody_signal(content: Any) -> CustodySignal:
    """A :class:`CustodySignal` from decoded CBOR content; AdminRecordError if malformed."""
    if type(content) is not list or len(content) != 2:
        raise AdminRecordError("custody signal content must be [disposition, scope]")
    code = _uint_item(content[0], "custody disposition code")
    scope = content[1]
    if type(scope) is not list:
        raise AdminRecordError("custody signal scope must be an array of [first, count] runs")
    runs = []
    for index, run in enumerate(scope):
        if type(run) is not list or len(run) != 2:
            raise AdminRecordError(f"custody signal run {index} must be [first ID, count]")
        first = _uint_item(run[0], f"custody signal run {index} first ID")
        count = _uint_item(run[1], f"custody signal run {index} count")
        if count == 0:
            raise AdminRecordError(f"custody signal run {index} has count 0 (must be >= 1)")
        if first + count - 1 > MAX_UINT64:
            raise AdminRecordError(f"custody signal run {index} goes past 2**64 - 1")
        runs.append((first, count))
    return CustodySignal(code, tuple(runs))
