"""Bundle status reports made from what the index keeps (RFC 9171 section 6.1.1).

The agent no longer holds a bundle's blocks when it reports on it, only its
:class:`~dtncloud.store.base.BundleMeta`, which has everything a report names: the subject's
source and creation timestamp, its fragment offset and payload length (both in the bundle
ID of a fragment), the flags saying which reports it asked for, and where they go.
"""

from __future__ import annotations

from dtncloud.bpv7.admin import NOT_ASSERTED, StatusItem, StatusReport, admin_bundle
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.flags import BundleFlag
from dtncloud.eid import parse_eid
from dtncloud.store.base import BundleMeta

__all__ = ["report_bundle", "status_report_for"]


def _item(at: int | None, with_time: bool) -> StatusItem:
    if at is None:
        return NOT_ASSERTED
    return StatusItem(True, at if with_time else None)


def status_report_for(
    meta: BundleMeta,
    *,
    received: int | None = None,
    forwarded: int | None = None,
    delivered: int | None = None,
    deleted: int | None = None,
    reason: int = 0,
) -> StatusReport:
    """A report about ``meta``'s bundle asserting each status given a time (DTN ms); the
    times are included only if the subject asked for them."""
    with_time = bool(meta.flags & BundleFlag.STATUS_TIME_REQUESTED)
    offset = length = None
    if meta.fragment_offset is not None:
        tail = meta.bundle_id[meta.bundle_id.rfind("/") + 1 :]
        offset_text, _, length_text = tail.partition("+")
        offset, length = int(offset_text), int(length_text)
    return StatusReport(
        received=_item(received, with_time),
        forwarded=_item(forwarded, with_time),
        delivered=_item(delivered, with_time),
        deleted=_item(deleted, with_time),
        reason=reason,
        subject_source=parse_eid(meta.source),
        subject_creation_time=meta.creation_time,
        subject_sequence=meta.sequence,
        subject_fragment_offset=offset,
        subject_payload_length=length,
    )


def report_bundle(
    meta: BundleMeta,
    *,
    node_id: str,
    creation_time: int,
    sequence: int,
    lifetime: int,
    received: int | None = None,
    forwarded: int | None = None,
    delivered: int | None = None,
    deleted: int | None = None,
    reason: int = 0,
) -> Bundle:
    """The administrative bundle carrying a report about ``meta`` from ``node_id`` to the
    subject's report-to endpoint."""
    if meta.report_to is None:
        raise ValueError(f"bundle {meta.bundle_id} has no report-to endpoint")
    report = status_report_for(
        meta,
        received=received,
        forwarded=forwarded,
        delivered=delivered,
        deleted=deleted,
        reason=reason,
    )
    return admin_bundle(
        report,
        source=node_id,
        destination=meta.report_to,
        creation_time=creation_time,
        sequence=sequence,
        lifetime=lifetime,
    )
