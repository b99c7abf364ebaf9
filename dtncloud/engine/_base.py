"""The state every part of the bundle protocol agent shares, and the bookkeeping they all
use: storing, updating and deleting bundles, status reports and administrative records,
creation timestamps. The parts themselves are the mixins in ``_forwarding.py`` and
``_custody_transfer.py`` and the reception and delivery code in ``agent.py``.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from sys import intern

from dtncloud.bpv6.bundle import Bundle as BundleV6
from dtncloud.bpv7.admin import admin_bundle
from dtncloud.bpv7.bibe import CustodySignal
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.bpv7.flags import BlockType, BundleFlag, StatusReportReason
from dtncloud.engine import actions as act
from dtncloud.engine.config import EngineConfig
from dtncloud.engine.counters import CreationStamps
from dtncloud.engine.custodian import Custodian, disposition_for_reason
from dtncloud.engine.deliveries import DeliveryBook
from dtncloud.engine.fragments import FragmentBook
from dtncloud.engine.listener import EngineListener
from dtncloud.engine.reports import report_bundle
from dtncloud.engine.view import AgentView, BundleIndex
from dtncloud.routing.base import LinkInfo, Router, node_of
from dtncloud.store.base import BundleMeta, Retention

R = StatusReportReason

# Extension blocks this agent knows how to process (or to carry unchanged: BPSec blocks are
# for the security source and acceptor, which are applications here).
_KNOWN_BLOCKS = frozenset(
    {
        BlockType.PAYLOAD,
        BlockType.PREVIOUS_NODE,
        BlockType.BUNDLE_AGE,
        BlockType.HOP_COUNT,
        BlockType.BLOCK_INTEGRITY,
        BlockType.BLOCK_CONFIDENTIALITY,
    }
)


@dataclass(slots=True)
class _Pending:
    """A bundle handed to the store, waiting for Persisted."""

    meta: BundleMeta
    receipt: object
    submission: object
    link_id: str | None
    created: bool
    #: a reception report is due once stored, with this reason code
    report_received: int | None
    #: (custodian, transmission ID) of the BPDU it came in, to be answered once stored
    custody: tuple[str, int] | None = None
    #: a BPv6 bundle as received, whose custodian is signalled once it is stored
    custody_v6: BundleV6 | None = None
    #: the bundle this fragment is the unacknowledged rest of, let go once it is stored
    replaces: str | None = None
    #: receipts (and custody requests) of copies that came while this one was being stored:
    #: answered as this one is, never before it is stored
    duplicates: list[tuple[object, tuple[str, int] | None]] = field(default_factory=list)


@dataclass(slots=True)
class _Flight:
    bundle_id: str
    link_id: str
    keep_copy: bool


class AgentBase:
    """Shared state and helpers of :class:`~dtncloud.engine.agent.BundleProtocolAgent`."""

    def __init__(
        self,
        config: EngineConfig,
        router: Router,
        *,
        listener: EngineListener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.listener = listener or EngineListener()
        self.rng = rng or random.Random(0)
        self._node = config.node_id
        self._routing_endpoint = config.routing_endpoint
        self._actions: deque[act.Action] = deque()
        # a dict that also keeps the forward-pending bundles the routing view serves
        self._bundles = BundleIndex()
        self._pending: dict[str, _Pending] = {}
        self._expiry: list[tuple[int, str]] = []
        self._wakeups: list[tuple[int, str]] = []
        # the one wake-up each bundle has scheduled (the heap may hold stale entries)
        self._wake_at: dict[str, int] = {}
        self._links: dict[str, LinkInfo] = {}
        self._flights: dict[int, _Flight] = {}
        self._flights_of: dict[str, list[int]] = {}
        self._next_transmission = 1
        # bundles whose no-copy-kept transmission succeeded while others were under way
        self._handed_over: set[str] = set()
        # bundles being cut into fragments, and the pieces of each not yet stored
        self._cutting: set[str] = set()
        # bundle ID -> (all its pieces, those not stored yet)
        self._cut_pieces: dict[str, tuple[frozenset[str], set[str]]] = {}
        # bundle IDs let go of recently, with their expiry, to recognise duplicates
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._deliveries = DeliveryBook()
        self._fragments = FragmentBook()
        # whole bundle ID -> the fragments it was put together from, released once it is stored
        self._reassembled_from: dict[str, list[str]] = {}
        self._stamps = CreationStamps(clock_accurate=config.clock_accurate)
        self._custodian = Custodian(
            enabled=config.custody,
            retransmit_ms=config.custody_retransmit_ms,
            max_retransmit_ms=config.custody_max_retransmit_ms,
            signal_delay_ms=config.custody_signal_delay_ms,
        )
        self._view = AgentView(self._node, self._links, self._bundles, self.is_local, self._seen)
        self._known_blocks = _KNOWN_BLOCKS | {config.routing_block_type}

    def is_local(self, eid: str) -> bool:
        return node_of(eid) == self._node or self._deliveries.is_registered(eid)

    def _meta_for(
        self,
        bundle: Bundle,
        bundle_id: str,
        expires_at: int,
        size: int,
        now: int,
        previous: str | None,
    ) -> BundleMeta:
        primary = bundle.primary
        destination = str(primary.destination)
        fragment = primary.fragment_offset is not None
        if self.is_local(destination):
            retention = Retention.REASSEMBLY_PENDING if fragment else Retention.DISPATCH_PENDING
        else:
            retention = Retention.FORWARD_PENDING
        report_to = primary.report_to
        # The index holds these strings for every bundle, and most bundles share them with
        # many others: interned, each is kept once (a third of the index for 100,000 bundles).
        return BundleMeta(
            bundle_id=bundle_id,
            source=intern(str(primary.source)),
            destination=intern(destination),
            creation_time=primary.creation_time,
            sequence=primary.sequence,
            expires_at=expires_at,
            size=size,
            received_at=now,
            retention=retention,
            fragment_offset=primary.fragment_offset,
            total_length=primary.total_adu_length,
            previous_node=None if previous is None else intern(previous),
            flags=int(primary.flags),
            report_to=None if report_to.is_none else intern(str(report_to)),
        )

    def _expiry_of(self, bundle: Bundle, now: int) -> int:
        primary = bundle.primary
        created = primary.creation_time or now - (bundle.bundle_age or 0)
        return created + primary.lifetime

    def _persist(
        self,
        meta: BundleMeta,
        data: bytes,
        *,
        receipt: object = None,
        submission: object = None,
        link_id: str | None = None,
        created: bool = False,
        report_received: int | None = None,
    ) -> None:
        self._pending[meta.bundle_id] = _Pending(
            meta, receipt, submission, link_id, created, report_received
        )
        self._actions.append(act.Persist(meta, data))

    def _index(self, meta: BundleMeta) -> None:
        self._bundles[meta.bundle_id] = meta
        heapq.heappush(self._expiry, (meta.expires_at, meta.bundle_id))
        if len(self._expiry) > 2 * len(self._bundles) + 1024:
            # entries of bundles let go before they expired: rebuilt, the heap stays in
            # proportion to what the node holds, whatever its throughput
            self._expiry = [(m.expires_at, i) for i, m in self._bundles.items()]
            heapq.heapify(self._expiry)

    def _wake(self, bundle_id: str, at: int) -> None:
        """Route ``bundle_id`` again at ``at`` (unless an earlier wake-up is due anyway)."""
        known = self._wake_at.get(bundle_id)
        if known is not None and known <= at:
            return
        self._wake_at[bundle_id] = at
        heapq.heappush(self._wakeups, (at, bundle_id))
        if len(self._wakeups) > 2 * len(self._wake_at) + 1024:
            self._wakeups = [(t, i) for i, t in self._wake_at.items()]
            heapq.heapify(self._wakeups)

    def _update(self, meta: BundleMeta) -> None:
        self._bundles[meta.bundle_id] = meta
        self._actions.append(act.UpdateMeta(meta))

    def _release(self, meta: BundleMeta, constraint: Retention, reason: int, now: int) -> None:
        """Lift ``constraint``; delete the bundle when nothing else keeps it."""
        meta = self._bundles.get(meta.bundle_id, meta)
        left = meta.retention & ~constraint
        if left == meta.retention:
            return
        if left:
            self._update(replace(meta, retention=left))
        else:
            self._delete(meta, reason, now, report=False)

    def _delete(self, meta: BundleMeta, reason: int, now: int, *, report: bool = True) -> None:
        """Stop keeping ``meta``'s bundle: remove it from the store and the index, with a
        deletion report when it asked for one and ``report`` (a deletion for a reason other
        than its having been forwarded or delivered)."""
        bundle_id = meta.bundle_id
        if self._bundles.pop(bundle_id, None) is None:
            return
        self._actions.append(act.Remove(bundle_id))
        self._remember(bundle_id, meta.expires_at)
        for transmission in self._flights_of.pop(bundle_id, ()):
            self._flights.pop(transmission, None)
        self._handed_over.discard(bundle_id)
        self._cutting.discard(bundle_id)
        self._wake_at.pop(bundle_id, None)
        self._custodian.ledger.forget(bundle_id)
        self._deliveries.done(bundle_id, meta.destination)
        if meta.retention & Retention.REASSEMBLY_PENDING:
            self._fragments.discard(bundle_id)
        self.listener.bundle_deleted(meta, reason, now)
        if report:
            self._report(meta, now, deleted=now, reason=reason)

    def _remember(self, bundle_id: str, expires_at: int) -> None:
        seen = self._seen
        seen[bundle_id] = expires_at
        seen.move_to_end(bundle_id)
        while len(seen) > self.config.remember:
            seen.popitem(last=False)

    def _next_timestamp(self, now: int) -> tuple[int, int]:
        """A creation timestamp no other bundle of this node has (RFC 9171 4.2.7)."""
        creation_time, sequence, save = self._stamps.take(now)
        if save is not None:
            self._actions.append(save)
        return creation_time, sequence

    def _report(
        self,
        meta: BundleMeta,
        now: int,
        *,
        received: int | None = None,
        forwarded: int | None = None,
        delivered: int | None = None,
        deleted: int | None = None,
        reason: int = 0,
    ) -> None:
        flags = BundleFlag(meta.flags)
        wanted = (
            (received is not None and flags & BundleFlag.REPORT_RECEPTION)
            or (forwarded is not None and flags & BundleFlag.REPORT_FORWARDING)
            or (delivered is not None and flags & BundleFlag.REPORT_DELIVERY)
            or (deleted is not None and flags & BundleFlag.REPORT_DELETION)
            or (received is not None and reason == R.BLOCK_UNSUPPORTED)
        )
        if (
            not wanted
            or not self.config.status_reports
            or meta.report_to is None
            or flags & BundleFlag.ADMIN_RECORD
        ):
            return
        creation_time, sequence = self._next_timestamp(now)
        bundle = report_bundle(
            meta,
            node_id=self._node,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=self.config.report_lifetime,
            received=received,
            forwarded=forwarded,
            delivered=delivered,
            deleted=deleted,
            reason=reason,
        )
        data = encode_bundle(bundle)
        report_meta = self._meta_for(
            bundle, str(bundle.id), now + self.config.report_lifetime, len(data), now, previous=None
        )
        self._persist(report_meta, data, created=True)

    def _ack(self, receipt: object, accepted: bool, reason: int = 0) -> None:
        if receipt is not None:
            self._actions.append(act.Acknowledge(receipt, accepted, reason))

    def _refuse(
        self,
        receipt: object,
        bundle: Bundle | None,
        reason: int,
        detail: str,
        now: int,
        custody: tuple[str, int] | None = None,
    ) -> None:
        bundle_id = None if bundle is None else str(bundle.id)
        self.listener.bundle_refused(bundle_id, reason, detail, now)
        self._ack(receipt, False, reason)
        if custody is not None:
            self._custody_answer(custody, disposition_for_reason(reason), now)
        if bundle is not None and bundle.primary.flags & BundleFlag.REPORT_DELETION:
            size = 0
            meta = self._meta_for(bundle, str(bundle.id), now, size, now, previous=None)
            self._report(meta, now, deleted=now, reason=reason)

    def _custody_answer(self, custody: tuple[str, int], disposition: int, now: int) -> None:
        custodian, transmission_id = custody
        for to, signal in self._custodian.signal(custodian, transmission_id, disposition, now):
            self._send_admin_record(signal, to, now)

    def _send_admin_record(self, record: CustodySignal, destination: str, now: int) -> None:
        creation_time, sequence = self._next_timestamp(now)
        bundle = admin_bundle(
            record,
            source=self._node,
            destination=destination,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=self.config.report_lifetime,
        )
        data = encode_bundle(bundle)
        meta = self._meta_for(
            bundle, str(bundle.id), now + self.config.report_lifetime, len(data), now, None
        )
        self._persist(meta, data, created=True)

    # -- implemented by the parts ---------------------------------------------------------

    def _route(self, meta: BundleMeta, now: int) -> None:
        raise NotImplementedError

    def _accept(
        self,
        bundle: Bundle,
        data: bytes | None,
        link_id: str | None,
        receipt: object,
        now: int,
        custody: tuple[str, int] | None = None,
    ) -> None:
        raise NotImplementedError
