"""Custody transfer for one node: the ledger, the signal aggregator and the counter that
keeps transmission IDs unique across restarts, behind the few calls the agent makes.

The agent decides *when* (see :mod:`dtncloud.engine.agent`); this module only keeps the
books (:mod:`dtncloud.engine.custody`). Custody applies to BPv7 bundles sent whole to a
neighbour whose node ID is known, wrapped in BIBE protocol data units
(draft-ietf-dtn-bibect); administrative records (status reports, custody signals) are never
sent under custody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dtncloud.bpv7.bibe import CustodyDisposition, CustodySignal
from dtncloud.bpv7.flags import BundleFlag, StatusReportReason
from dtncloud.engine.actions import SaveState
from dtncloud.engine.custody import CustodyLedger, SignalAggregator
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta

__all__ = ["Custodian", "disposition_for_reason"]

_ADMIN_RECORD = int(BundleFlag.ADMIN_RECORD)
# Transmission IDs reserved per store write (see dtncloud.engine.counters).
_ID_BLOCK = 1024

R = StatusReportReason
D = CustodyDisposition
_DISPOSITIONS: dict[int, CustodyDisposition] = {
    R.DEPLETED_STORAGE: D.DEPLETED_STORAGE,
    R.DESTINATION_ENDPOINT_UNAVAILABLE: D.DESTINATION_EID_UNINTELLIGIBLE,
    R.NO_KNOWN_ROUTE: D.NO_KNOWN_ROUTE,
    R.HOP_LIMIT_EXCEEDED: D.NO_KNOWN_ROUTE,
    R.NO_TIMELY_CONTACT: D.NO_TIMELY_CONTACT,
    R.LIFETIME_EXPIRED: D.NO_TIMELY_CONTACT,
}


def disposition_for_reason(reason: int) -> CustodyDisposition:
    """The custody refusal matching a reception's status-report reason code."""
    return _DISPOSITIONS.get(reason, D.BLOCK_UNINTELLIGIBLE)


class Custodian:
    """``enabled`` False keeps the books empty: BPDUs received are still unwrapped and
    answered (a neighbour may ask us for custody), but nothing is sent under custody."""

    COUNTER_KEY = "engine.custody_tx"

    def __init__(
        self,
        *,
        enabled: bool,
        retransmit_ms: int,
        max_retransmit_ms: int,
        signal_delay_ms: int,
    ) -> None:
        self.enabled = enabled
        self._retransmit_ms = retransmit_ms
        self._max_retransmit_ms = max_retransmit_ms
        self.ledger = CustodyLedger(
            retransmit_after_ms=retransmit_ms, max_retransmit_after_ms=max_retransmit_ms
        )
        self.aggregator = SignalAggregator(delay_ms=signal_delay_ms)
        self._reserved = 1

    def restore(self, state: Mapping[str, bytes], bundles: Iterable[BundleMeta]) -> None:
        saved = state.get(self.COUNTER_KEY)
        start = max(1, int.from_bytes(saved, "big")) if saved else 1
        self.ledger = CustodyLedger(
            next_transmission_id=start,
            retransmit_after_ms=self._retransmit_ms,
            max_retransmit_after_ms=self._max_retransmit_ms,
        )
        self._reserved = start
        for meta in bundles:
            if meta.custody:
                self.ledger.restore(meta.bundle_id, meta.custody)

    def wants(self, meta: BundleMeta, link: LinkInfo) -> bool:
        """Whether ``meta`` goes to ``link`` under custody (if it need not be fragmented for
        the link: one transmission ID covers one whole bundle)."""
        return (
            self.enabled
            and link.peer_node is not None
            and meta.protocol == 7
            and not meta.flags & _ADMIN_RECORD
        )

    def send(self, bundle_id: str, peer: str, now: int) -> tuple[int, int, SaveState | None]:
        """Transmission ID and retransmission time for a BPDU, and the counter reservation
        to store before the BPDU leaves (or None)."""
        tx_id, deadline = self.ledger.send(bundle_id, peer, now)
        save = None
        if tx_id >= self._reserved:
            self._reserved = tx_id + _ID_BLOCK
            save = SaveState(self.COUNTER_KEY, self._reserved.to_bytes(8, "big"))
        return tx_id, deadline, save

    def signal(
        self, custodian: str, tx_id: int, disposition: int, now: int
    ) -> list[tuple[str, CustodySignal]]:
        """Note our answer to ``custodian``'s transmission; signals due now are returned."""
        return self.aggregator.add(custodian, tx_id, disposition, now)

    def get_timer(self) -> int | None:
        times = [t for t in (self.ledger.get_timer(), self.aggregator.get_timer()) if t is not None]
        return min(times) if times else None
