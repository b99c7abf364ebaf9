"""Custody transfer in the agent (BIBE, draft-ietf-dtn-bibect): unwrapping BPDUs, custody
signals received, and the timers that send bundles again or signals out. The books are in
:mod:`dtncloud.engine.custodian`."""

from __future__ import annotations

from dataclasses import replace

from dtncloud.bpv6.admin import CustodySignal as CustodySignalV6
from dtncloud.bpv6.admin import decode_admin_record as decode_admin_record_v6
from dtncloud.bpv6.bundle import Bundle as BundleV6
from dtncloud.bpv6.codec import encode_bundle as encode_bundle_v6
from dtncloud.bpv7.bibe import BibePdu, CustodySignal
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.engine._base import AgentBase
from dtncloud.engine.custody_v6 import (
    custody_signal_bundle_v6,
    disposition_of_v6,
    signal_subject_id,
)
from dtncloud.engine.v6 import meta_for_v6
from dtncloud.errors import AdminRecordError, BundleDecodeError
from dtncloud.store.base import Retention

R = StatusReportReason


class CustodyMixin(AgentBase):
    """The custody part of :class:`~dtncloud.engine.agent.BundleProtocolAgent`."""

    def _unwrap(
        self, pdu: BibePdu, custodian: str, link_id: str | None, receipt: object, now: int
    ) -> None:
        """A bundle that came in a BPDU is received as if it had come alone; the sender's
        acknowledgement waits for it to be stored, as for any bundle, and a custody request
        is answered once that is settled."""
        custody = (custodian, pdu.transmission_id) if pdu.transmission_id else None
        try:
            inner = decode_bundle(
                pdu.bundle_bytes,
                max_size=self.config.max_bundle_size,
                max_blocks=self.config.max_blocks,
                lenient=self.config.lenient,
            )
        except BundleDecodeError as exc:
            self._refuse(receipt, None, exc.reason, str(exc), now, custody)
            return
        self._accept(inner, pdu.bundle_bytes, link_id, receipt, now, custody)

    def _on_custody_signal(self, peer: str, signal: CustodySignal, now: int) -> None:
        for outcome in self._custodian.ledger.on_signal(peer, signal, now):
            meta = self._bundles.get(outcome.bundle_id)
            if meta is None:
                continue
            if outcome.released:
                meta = replace(meta, custody=b"")
                self._bundles[meta.bundle_id] = meta
                self._release(meta, Retention.CUSTODY_ACCEPTED, R.NO_ADDITIONAL_INFORMATION, now)
            else:  # refused downstream: find another way after a while
                retention = (meta.retention & ~Retention.CUSTODY_ACCEPTED) | (
                    Retention.FORWARD_PENDING
                )
                self._update(replace(meta, retention=retention, custody=b""))
                self._wake(meta.bundle_id, now + self.config.retry_ms)

    def _custody_timers(self, now: int) -> None:
        """Bundles whose custody signal did not come in time are sent again; signals that
        have waited long enough go out."""
        ledger = self._custodian.ledger
        for bundle_id in ledger.due(now):
            meta = self._bundles.get(bundle_id)
            if meta is None:
                ledger.forget(bundle_id)
                continue
            meta = replace(
                meta,
                retention=meta.retention | Retention.FORWARD_PENDING,
                custody=ledger.state_of(bundle_id),
            )
            self._update(meta)
            self._route(meta, now)
        for to, signal in self._custodian.aggregator.handle_timer(now):
            self._send_admin_record(signal, to, now)

    # -- RFC 5050 custody (BPv6) -----------------------------------------------------------

    def _signal_v6(self, subject: BundleV6, succeeded: bool, reason: int, now: int) -> None:
        """Tell ``subject``'s custodian whether this node took custody of it."""
        if subject.custodian in ("", "dtn:none"):
            return
        # RFC 5050 creation times are whole seconds: fold the millisecond into the sequence
        # number so that signals made in the same second keep distinct bundle IDs.
        creation_time, sequence = self._next_timestamp(now)
        if creation_time:
            sequence += (now % 1000) * 1_000_000
        signal = custody_signal_bundle_v6(
            subject,
            succeeded=succeeded,
            reason=reason,
            local_node=self._node,
            now_dtn_ms=now,
            sequence=sequence,
            lifetime=max(1, self.config.report_lifetime // 1000),
        )
        data = encode_bundle_v6(signal)
        local = self.is_local(signal.destination)
        meta = meta_for_v6(signal, len(data), now, local=local, previous=None)
        self._persist(meta, data, created=True)

    def _on_admin_record_v6(self, bundle: BundleV6, now: int) -> None:
        """RFC 5050 custody signals settle this node's custody; other records (status
        reports) are not used by the engine."""
        try:
            record = decode_admin_record_v6(bundle.payload)
        except AdminRecordError:
            return
        if not isinstance(record, CustodySignalV6):
            return
        outcome = self._custodian.ledger.settle(
            signal_subject_id(record), disposition_of_v6(record)
        )
        meta = self._bundles.get(signal_subject_id(record))
        if meta is None:
            return
        if outcome is None or outcome.released:
            # A signal may also come from a custodian further on, before our own timer
            # started: acceptance anywhere downstream ends our custody.
            if outcome is not None or record.succeeded:
                meta = replace(meta, custody=b"")
                self._bundles[meta.bundle_id] = meta
                self._release(meta, Retention.CUSTODY_ACCEPTED, R.NO_ADDITIONAL_INFORMATION, now)
            return
        retention = meta.retention | Retention.FORWARD_PENDING
        self._update(replace(meta, retention=retention, custody=b""))
        self._wake(meta.bundle_id, now + self.config.retry_ms)
