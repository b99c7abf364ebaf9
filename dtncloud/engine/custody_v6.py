"""RFC 5050 (BPv6) custody transfer: pure helpers for the engine, beside the BIBE books in
:mod:`dtncloud.engine.custody`.

BPv6 has custody transfer built in. A bundle asks for it with
:attr:`~dtncloud.bpv6.BundleFlag.CUSTODY_REQUESTED` and names its current custodian in the
primary block. A node that takes custody replaces the custodian with itself
(:func:`take_custody_v6`) and sends a *custody signal* (RFC 5050 6.1.2) to the previous
custodian (:func:`custody_signal_bundle_v6`); a node that refuses sends one with
``succeeded=False`` and a reason. Unlike BIBE there are no transmission IDs: the signal names
its subject bundle by source EID, creation timestamp and, for a fragment, offset and length,
and it may come from any node downstream, not only the next hop.

Keys: the engine keys a BPv6 bundle by ``str(bundle.bundle_id)``, the text form of
:class:`dtncloud.bpv6.BundleId` (``SOURCE@SECONDS.SEQUENCE[/OFFSET+LENGTH]``, the creation
time in *seconds* as RFC 5050 counts it). :func:`signal_subject_id` gives the same key for the
subject of a signal. (A BPv7 key has milliseconds in that place, so in theory a BPv6 and a
BPv7 bundle from the same source could share a key; the engine may prefix one if it cares.)

Tracking: the same :class:`~dtncloud.engine.custody.CustodyLedger` keeps the retransmission
deadlines and backoff of BPv6 bundles: :meth:`~dtncloud.engine.custody.CustodyLedger.send`
as for BIBE (the transmission ID it allocates is simply not put on the wire), and
:meth:`~dtncloud.engine.custody.CustodyLedger.settle` with :func:`signal_subject_id` and
:func:`disposition_of_v6` instead of ``on_signal``, with no peer check::

    outcome = ledger.settle(signal_subject_id(signal), disposition_of_v6(signal))

As in ION and DTN2, a signal that reports failure with reason *redundant reception* releases
custody: the receiver already holds the bundle (DTNME sends exactly that, see the vector in
``tests/vectors/bpv6_rfc5050_custody_signal.json``).
"""

from __future__ import annotations

import dataclasses

from dtncloud.bpv6.admin import CustodySignal, CustodySignalReason, DtnTime, encode_admin_record
from dtncloud.bpv6.bundle import Bundle
from dtncloud.bpv6.dictionary import DTN_NONE, cbhe_numbers
from dtncloud.bpv6.flags import BundleFlag
from dtncloud.bpv7.bibe import CustodyDisposition

__all__ = [
    "custody_requested_v6",
    "custody_signal_bundle_v6",
    "custody_signal_v6",
    "disposition_of_v6",
    "dtn_time_v6",
    "signal_subject_id",
    "take_custody_v6",
]

#: Bits the signal bundle keeps from its subject: the priority.
_KEPT_FLAGS = BundleFlag.PRIORITY_MASK


def dtn_time_v6(now_dtn_ms: int) -> DtnTime:
    """A DTN time in ms as RFC 5050's (seconds since 2000, nanoseconds)."""
    if now_dtn_ms < 0:
        raise ValueError(f"DTN time must not be negative, not {now_dtn_ms}")
    seconds, ms = divmod(now_dtn_ms, 1000)
    return DtnTime(seconds, ms * 1_000_000)


def custody_requested_v6(bundle: Bundle) -> bool:
    """Whether ``bundle`` asks for custody transfer."""
    return bool(bundle.flags & BundleFlag.CUSTODY_REQUESTED)


def custody_signal_v6(
    subject: Bundle,
    *,
    succeeded: bool,
    reason: CustodySignalReason | int = CustodySignalReason.NO_ADDITIONAL_INFORMATION,
    now_dtn_ms: int,
) -> CustodySignal:
    """The custody signal record about ``subject`` at ``now_dtn_ms``."""
    return CustodySignal(
        succeeded=succeeded,
        reason=reason,
        signal_time=dtn_time_v6(now_dtn_ms),
        subject=subject.bundle_id,
    )


def custody_signal_bundle_v6(
    subject: Bundle,
    *,
    succeeded: bool,
    reason: CustodySignalReason | int = CustodySignalReason.NO_ADDITIONAL_INFORMATION,
    local_node: str,
    now_dtn_ms: int,
    sequence: int = 0,
    lifetime: int = 86_400,
) -> Bundle:
    """The administrative bundle that carries a custody signal about ``subject`` from
    ``local_node`` to the subject's current custodian.

    Call it with the bundle *as received* (before :func:`take_custody_v6`). The creation time
    is ``now_dtn_ms`` in whole seconds, so pass the node's creation-timestamp ``sequence``
    counter: two signals sent in the same second need different sequence numbers or the
    custodian drops the second as a duplicate. ``lifetime`` is in seconds. The bundle asks
    for neither custody nor reports (RFC 5050 forbids both for administrative records),
    keeps the subject's priority, and uses CBHE when the subject did and every EID allows it.

    Raises ``ValueError`` when the subject names no custodian (``dtn:none``) or the reason
    does not fit in 7 bits, and :class:`~dtncloud.errors.BundleEncodeError` (a ValueError)
    for values the codec cannot carry.
    """
    custodian = subject.custodian
    if custodian == DTN_NONE or not custodian:
        raise ValueError(f"bundle {subject.bundle_id} names no custodian to signal")
    if isinstance(reason, bool) or not isinstance(reason, int) or not 0 <= reason <= 0x7F:
        raise ValueError(f"custody signal reason must be 0-127, not {reason!r}")
    record = custody_signal_v6(subject, succeeded=succeeded, reason=reason, now_dtn_ms=now_dtn_ms)
    payload = encode_admin_record(record)
    cbhe = subject.cbhe and all(cbhe_numbers(eid) is not None for eid in (local_node, custodian))
    return Bundle.create(
        source=local_node,
        destination=custodian,
        payload=payload,
        creation_time=now_dtn_ms // 1000,
        sequence=sequence,
        lifetime=lifetime,
        flags=BundleFlag.ADMIN_RECORD
        | BundleFlag.SINGLETON_DESTINATION
        | (subject.flags & _KEPT_FLAGS),
        cbhe=cbhe,
    )


def take_custody_v6(bundle: Bundle, local_node: str) -> Bundle:
    """``bundle`` with ``local_node`` as its current custodian; every other field, the
    flags included, unchanged. Falls back from CBHE to a dictionary when ``local_node``
    cannot travel compressed. The caller checks :func:`custody_requested_v6` first."""
    cbhe = bundle.cbhe and cbhe_numbers(local_node) is not None
    return dataclasses.replace(bundle, custodian=local_node, cbhe=cbhe)


def signal_subject_id(signal: CustodySignal) -> str:
    """The engine's key for the bundle a custody signal is about: ``str(BundleId)``."""
    return str(signal.subject)


def disposition_of_v6(signal: CustodySignal) -> CustodyDisposition | int:
    """The BIBE disposition equivalent to an RFC 5050 custody signal, for
    :meth:`~dtncloud.engine.custody.CustodyLedger.settle`.

    Succeeded -> accepted (0). Failed -> the reason code, which BIBE shares for 3-8 (so
    *redundant reception* still releases custody); failed with reason 0 -> *no further
    information* (1), a refusal. Unknown reasons stay plain ints (refusals).
    """
    if signal.succeeded:
        return CustodyDisposition.ACCEPTED
    if signal.reason == CustodySignalReason.NO_ADDITIONAL_INFORMATION:
        return CustodyDisposition.NO_FURTHER_INFORMATION
    try:
        return CustodyDisposition(signal.reason)
    except ValueError:
        return int(signal.reason)
