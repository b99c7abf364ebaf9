"""The bundle protocol agent: RFC 9171 section 5 as a sans-IO state machine.

:class:`BundleProtocolAgent` holds the index of the bundles its node keeps (metadata only:
the encoded bundles stay in the store) and decides what happens to each. Inputs go in with
:meth:`~BundleProtocolAgent.handle` and ``now``; actions come out of
:meth:`~BundleProtocolAgent.next_action` in the order the shell must carry them out;
:meth:`~BundleProtocolAgent.get_timer` says when the agent next needs
:meth:`~BundleProtocolAgent.handle_timer` (expiry, retries, the router's clock).

The agent never reads a clock or touches a socket or a file, so the simulator drives the
same object in virtual time that ``dtnd`` drives with asyncio.

The rules that matter most:

- a received bundle is acknowledged (:class:`~dtncloud.engine.actions.Acknowledge`) only
  after the store reports it :class:`~dtncloud.engine.inputs.Persisted`;
- a bundle is forwarded or delivered only after it is stored;
- a bundle is deleted once no retention constraint is left on it (forwarded without a copy
  kept, delivered, expired, dropped by the router), with a deletion report if asked for.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dtncloud.bpv6.codec import decode_bundle as decode_bundle_v6
from dtncloud.bpv7.admin import StatusReport, decode_admin_record
from dtncloud.bpv7.bibe import BibePdu, CustodySignal
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag, StatusReportReason
from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine.config import EngineConfig, routing_endpoint_of
from dtncloud.engine.counters import CreationStamps
from dtncloud.engine.deliveries import DeliveryBook
from dtncloud.engine.fragments import FragmentBook
from dtncloud.engine.listener import EngineListener
from dtncloud.engine.reports import report_bundle
from dtncloud.engine.transmit import TransmitPlan
from dtncloud.engine.v6 import meta_for_v6
from dtncloud.engine.view import AgentView
from dtncloud.errors import AdminRecordError, BundleDecodeError, BundleEncodeError, InvalidEID
from dtncloud.routing.base import Drop, Forward, LinkInfo, Router, Wait, node_of
from dtncloud.store.base import BundleMeta, Retention

__all__ = ["STATE_KEYS", "BundleProtocolAgent"]

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

_REPORT_RECEPTION = int(BundleFlag.REPORT_RECEPTION)

#: The names of the node values the agent keeps in the store (see ``restore``).
STATE_KEYS = (CreationStamps.KEY,)


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


@dataclass(slots=True)
class _Flight:
    bundle_id: str
    link_id: str
    keep_copy: bool


class BundleProtocolAgent:
    """One node's bundle protocol agent.

    ``router`` is a :class:`~dtncloud.routing.base.Router`; ``rng`` the source of every
    random choice the agent makes; ``listener`` hears what happens.
    """

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
        self._bundles: dict[str, BundleMeta] = {}
        self._pending: dict[str, _Pending] = {}
        self._expiry: list[tuple[int, str]] = []
        self._wakeups: list[tuple[int, str]] = []
        self._links: dict[str, LinkInfo] = {}
        self._flights: dict[int, _Flight] = {}
        self._flights_of: dict[str, list[int]] = {}
        self._next_transmission = 1
        # bundles whose no-copy-kept transmission succeeded while others were under way
        self._handed_over: set[str] = set()
        # bundle IDs let go of recently, with their expiry, to recognise duplicates
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._deliveries = DeliveryBook()
        self._fragments = FragmentBook()
        # whole bundle ID -> the fragments it was put together from, released once it is stored
        self._reassembled_from: dict[str, list[str]] = {}
        self._stamps = CreationStamps(clock_accurate=config.clock_accurate)
        self._view = AgentView(self._node, self._links, self._bundles, self.is_local)
        self._known_blocks = _KNOWN_BLOCKS | {config.routing_block_type}

    # -- the sans-IO interface -----------------------------------------------------------

    def handle(self, event: inp.Input, now: int) -> None:
        """Take one input. Actions it causes are queued for :meth:`next_action`."""
        handler: Callable[[BundleProtocolAgent, Any, int], None] = _HANDLERS[type(event)]
        handler(self, event, now)

    def next_action(self) -> act.Action | None:
        """The next action to carry out, or None when there is nothing to do."""
        return self._actions.popleft() if self._actions else None

    def actions(self) -> Iterator[act.Action]:
        """Every queued action, in order, removing them from the queue."""
        while self._actions:
            yield self._actions.popleft()

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` is next due, or None."""
        due = self.router.get_timer()
        if self._expiry and (due is None or self._expiry[0][0] < due):
            due = self._expiry[0][0]
        if self._wakeups and (due is None or self._wakeups[0][0] < due):
            due = self._wakeups[0][0]
        return due

    def handle_timer(self, now: int) -> None:
        """Expire bundles whose lifetime is over, route again those that were waiting."""
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, bundle_id = heapq.heappop(self._expiry)
            meta = self._bundles.get(bundle_id)
            if meta is not None and meta.expires_at == expires_at:
                self._delete(meta, R.LIFETIME_EXPIRED, now)
        due: list[str] = []
        while self._wakeups and self._wakeups[0][0] <= now:
            due.append(heapq.heappop(self._wakeups)[1])
        router_timer = self.router.get_timer()
        if router_timer is not None and router_timer <= now:
            self.router.handle_timer(now)
        for bundle_id in dict.fromkeys(due):
            meta = self._bundles.get(bundle_id)
            if meta is not None:
                self._route(meta, now)

    def restore(self, bundles: Iterable[BundleMeta], state: Mapping[str, bytes], now: int) -> None:
        """Rebuild the index from what a store holds (a node starting again). Bundles that
        expired meanwhile are deleted; the rest are routed or delivered again as links and
        applications come."""
        self._stamps.restore(state.get(CreationStamps.KEY))
        for meta in bundles:
            self._index(meta)
            if meta.retention & Retention.REASSEMBLY_PENDING:
                self._fragments.add(meta.bundle_id, meta.total_length or 0)
            if meta.retention & Retention.DISPATCH_PENDING:
                self._deliveries.wait(meta.bundle_id, meta.destination)
        self.handle_timer(now)
        for whole in self._fragments.wholes():
            self._maybe_reassemble(whole)

    # -- what routers and tests may read -------------------------------------------------

    @property
    def view(self) -> AgentView:
        return self._view

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.get(bundle_id)

    def bundle_ids(self) -> list[str]:
        return list(self._bundles)

    def knows(self, bundle_id: str) -> bool:
        """Whether this node holds ``bundle_id`` or let it go recently (a duplicate)."""
        return bundle_id in self._bundles or bundle_id in self._pending or bundle_id in self._seen

    def __len__(self) -> int:
        return len(self._bundles)

    def is_local(self, eid: str) -> bool:
        return node_of(eid) == self._node or self._deliveries.is_registered(eid)

    # -- reception (RFC 9171 5.6) --------------------------------------------------------

    def _on_bundle_received(self, event: inp.BundleReceived, now: int) -> None:
        cfg = self.config
        if event.data[:1] == b"\x06":
            self._receive_v6(event, now)
            return
        try:
            bundle = decode_bundle(
                event.data,
                max_size=cfg.max_bundle_size,
                max_blocks=cfg.max_blocks,
                lenient=cfg.lenient,
            )
        except BundleDecodeError as exc:
            self._refuse(event.receipt, None, exc.reason, str(exc), now)
            return
        self._accept(bundle, event.data, event.link_id, event.receipt, now)

    def _accept(
        self, bundle: Bundle, data: bytes | None, link_id: str | None, receipt: object, now: int
    ) -> None:
        primary = bundle.primary
        bundle_id = str(bundle.id)
        if bundle_id in self._bundles or bundle_id in self._pending or bundle_id in self._seen:
            self.listener.bundle_duplicate(bundle_id, now)
            self._ack(receipt, True)
            return
        created = primary.creation_time or now - (bundle.bundle_age or 0)
        expires_at = created + primary.lifetime
        if expires_at <= now:
            self._refuse(receipt, bundle, R.LIFETIME_EXPIRED, "lifetime expired", now)
            return
        blocks = bundle.blocks
        has = {block.type_code for block in blocks}
        hop = bundle.hop_count if BlockType.HOP_COUNT in has else None
        if hop is not None and hop.exceeded:
            self._refuse(receipt, bundle, R.HOP_LIMIT_EXCEEDED, "hop limit exceeded", now)
            return
        changed = False
        unsupported: Bundle | None = None
        if not has <= self._known_blocks:
            kept, changed, unsupported = self._process_blocks(bundle)
            if kept is None:
                self._refuse(receipt, bundle, R.BLOCK_UNSUPPORTED, "unsupported block", now)
                return
            bundle = kept
        destination = str(primary.destination)
        if destination in (self._node, self._routing_endpoint) and self._consume_admin(
            bundle, destination, link_id, now
        ):
            self._ack(receipt, True)
            return
        if changed or data is None:
            data = encode_bundle(bundle, validate=False)
        carried = None
        if self.config.routing_block_type in has:
            block = bundle.first_block_of_type(self.config.routing_block_type)
            carried = None if block is None else block.data
        previous = None
        if BlockType.PREVIOUS_NODE in has:
            previous = _previous_node(bundle)
        if previous is None and link_id is not None:
            link = self._links.get(link_id)
            previous = None if link is None else link.peer_node
        meta = self._meta_for(bundle, bundle_id, expires_at, len(data), now, previous=previous)
        routing = self.router.admit(meta, carried, now)
        if routing:
            meta = replace(meta, routing=routing)
        report: int | None = None
        if unsupported is not None:
            report = R.BLOCK_UNSUPPORTED
        elif int(primary.flags) & _REPORT_RECEPTION:
            report = R.NO_ADDITIONAL_INFORMATION
        self._persist(meta, data, receipt=receipt, link_id=link_id, report_received=report)

    def _receive_v6(self, event: inp.BundleReceived, now: int) -> None:
        """A legacy RFC 5050 bundle: stored and forwarded unchanged, or delivered here."""
        cfg = self.config
        try:
            bundle = decode_bundle_v6(
                event.data, max_size=cfg.max_bundle_size, max_blocks=cfg.max_blocks
            )
        except BundleDecodeError as exc:
            self._refuse(event.receipt, None, exc.reason, str(exc), now)
            return
        bundle_id = str(bundle.bundle_id)
        if self.knows(bundle_id):
            self.listener.bundle_duplicate(bundle_id, now)
            self._ack(event.receipt, True)
            return
        local = self.is_local(bundle.destination)
        previous = None
        link = self._links.get(event.link_id) if event.link_id is not None else None
        if link is not None:
            previous = link.peer_node
        meta = meta_for_v6(bundle, len(event.data), now, local=local, previous=previous)
        if meta.expires_at <= now:
            self._refuse(event.receipt, None, R.LIFETIME_EXPIRED, f"{bundle_id} expired", now)
            return
        if local and bundle.is_fragment:
            # Reassembly is implemented for BPv7 only; keeping the pieces would hold them
            # until they expire for nothing.
            self._refuse(
                event.receipt,
                None,
                R.BLOCK_UNSUPPORTED,
                f"{bundle_id} is a BPv6 fragment for this node",
                now,
            )
            return
        routing = self.router.admit(meta, None, now)
        if routing:
            meta = replace(meta, routing=routing)
        self._persist(meta, event.data, receipt=event.receipt, link_id=event.link_id)

    def _process_blocks(self, bundle: Bundle) -> tuple[Bundle | None, bool, Bundle | None]:
        """RFC 9171 5.6 step 4: blocks of unknown type. Returns the bundle to keep (None to
        delete it), whether blocks were removed, and the bundle if a block asked for a
        report."""
        changed = False
        report: Bundle | None = None
        for block in bundle.extension_blocks:
            if (
                block.type_code in _KNOWN_BLOCKS
                or block.type_code == self.config.routing_block_type
            ):
                continue
            flags = block.flags
            if flags & BlockFlag.REPORT_IF_UNPROCESSABLE:
                report = bundle
            if flags & BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE:
                return None, changed, bundle
            if flags & BlockFlag.DISCARD_IF_UNPROCESSABLE:
                bundle = bundle.remove_block(block.number)
                changed = True
        return bundle, changed, report

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
        return BundleMeta(
            bundle_id=bundle_id,
            source=str(primary.source),
            destination=destination,
            creation_time=primary.creation_time,
            sequence=primary.sequence,
            expires_at=expires_at,
            size=size,
            received_at=now,
            retention=retention,
            fragment_offset=primary.fragment_offset,
            total_length=primary.total_adu_length,
            previous_node=previous,
            flags=int(primary.flags),
            report_to=None if report_to.is_none else str(report_to),
        )

    def _consume_admin(
        self, bundle: Bundle, destination: str, link_id: str | None, now: int
    ) -> bool:
        """Administrative records and routing messages for this node are dispatched to
        their handlers at once rather than stored. Returns False for bundles to store."""
        if destination == self._routing_endpoint:
            peer = node_of(str(bundle.primary.source))
            for message in self.router.on_control_message(
                peer, link_id, bundle.payload, self._view, now
            ):
                self._send_control(message.peer_node, message.link_id, message.payload, now)
            self._route_all_for_links(now)
            return True
        if not bundle.primary.is_admin_record or bundle.primary.is_fragment:
            return False
        try:
            record = decode_admin_record(bundle.payload)
        except AdminRecordError:
            return True  # nothing to do with an unreadable record; it is not kept
        if isinstance(record, StatusReport):
            self.listener.status_report_received(record, now)
        elif isinstance(record, BibePdu | CustodySignal):
            self._custody_record(record, bundle, link_id, now)
        return True

    def _custody_record(
        self, record: BibePdu | CustodySignal, bundle: Bundle, link_id: str | None, now: int
    ) -> None:
        """Custody transfer is not switched on: a BPDU's bundle is taken as if it had come
        without the envelope, and custody signals are ignored."""
        if isinstance(record, BibePdu):
            try:
                inner = decode_bundle(
                    record.bundle_bytes,
                    max_size=self.config.max_bundle_size,
                    max_blocks=self.config.max_blocks,
                    lenient=self.config.lenient,
                )
            except BundleDecodeError as exc:
                self.listener.bundle_refused(None, exc.reason, str(exc), now)
                return
            self._accept(inner, record.bundle_bytes, link_id, None, now)

    # -- storing -------------------------------------------------------------------------

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

    def _on_persisted(self, event: inp.Persisted, now: int) -> None:
        pending = self._pending.pop(event.bundle_id, None)
        if pending is None:
            return
        meta = pending.meta
        self._index(meta)
        self._ack(pending.receipt, True)
        if pending.submission is not None:
            self._actions.append(act.SubmissionAccepted(pending.submission, meta.bundle_id))
        if pending.created:
            self.listener.bundle_created(meta, now)
        else:
            self.listener.bundle_received(meta, pending.link_id, now)
        for fragment_id in self._reassembled_from.pop(meta.bundle_id, ()):
            fragment = self._bundles.get(fragment_id)
            if fragment is not None:
                self._release(
                    fragment, Retention.REASSEMBLY_PENDING, R.NO_ADDITIONAL_INFORMATION, now
                )
        if pending.report_received is not None:
            self._report(meta, now, received=now, reason=pending.report_received)
        self._dispatch(meta, now)

    def _on_persist_failed(self, event: inp.PersistFailed, now: int) -> None:
        pending = self._pending.pop(event.bundle_id, None)
        if pending is None:
            return
        reason = R.DEPLETED_STORAGE if event.full else R.NO_ADDITIONAL_INFORMATION
        detail = event.message or ("store full" if event.full else "store error")
        if pending.submission is not None:
            self._actions.append(act.SubmissionRefused(pending.submission, detail))
        if pending.receipt is not None:
            self._ack(pending.receipt, False, reason)
        self.listener.bundle_refused(event.bundle_id, reason, detail, now)

    def _index(self, meta: BundleMeta) -> None:
        self._bundles[meta.bundle_id] = meta
        heapq.heappush(self._expiry, (meta.expires_at, meta.bundle_id))

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

    # -- dispatching (RFC 9171 5.3) ------------------------------------------------------

    def _dispatch(self, meta: BundleMeta, now: int) -> None:
        if meta.retention & Retention.REASSEMBLY_PENDING:
            self._maybe_reassemble(self._fragments.add(meta.bundle_id, meta.total_length or 0))
        elif meta.retention & Retention.DISPATCH_PENDING:
            self._deliveries.wait(meta.bundle_id, meta.destination)
            if self._deliveries.is_active(meta.destination):
                self._deliver(meta)
        elif meta.retention & Retention.FORWARD_PENDING:
            self._route(meta, now)

    def _deliver(self, meta: BundleMeta) -> None:
        if self._deliveries.start(meta.bundle_id):
            self._actions.append(act.Deliver(meta.destination, meta.bundle_id))

    def _on_delivered(self, event: inp.Delivered, now: int) -> None:
        meta = self._bundles.get(event.bundle_id)
        if meta is None:
            self._deliveries.done(event.bundle_id, event.endpoint)
            return
        self._deliveries.done(meta.bundle_id, meta.destination)
        self.listener.bundle_delivered(meta, event.endpoint, now)
        self._report(meta, now, delivered=now)
        self._release(meta, Retention.DISPATCH_PENDING, R.NO_ADDITIONAL_INFORMATION, now)

    def _on_delivery_failed(self, event: inp.DeliveryFailed, now: int) -> None:
        self._deliveries.failed(event.bundle_id, event.endpoint)

    def _on_registered(self, event: inp.ApplicationRegistered, now: int) -> None:
        for bundle_id in self._deliveries.register(event.endpoint):
            meta = self._bundles.get(bundle_id)
            if meta is not None:
                self._deliver(meta)

    def _on_deregistered(self, event: inp.ApplicationDeregistered, now: int) -> None:
        self._deliveries.deregister(event.endpoint, forget=event.forget)

    # -- reassembly (RFC 9171 5.9) -------------------------------------------------------

    def _maybe_reassemble(self, whole: str) -> None:
        fragment_ids = self._fragments.ready(whole)
        if fragment_ids is not None:
            self._actions.append(act.Reassemble(whole, fragment_ids))

    def _on_reassembled(self, event: inp.Reassembled, now: int) -> None:
        whole = event.bundle_id
        parts = self._fragments.finish(whole)
        bundle = None
        if event.data is not None:
            try:
                bundle = decode_bundle(event.data, max_size=max(len(event.data), 1))
            except BundleDecodeError:
                bundle = None
        if bundle is None or event.data is None:
            for fragment_id in parts:  # they cannot be put together: let them go
                meta = self._bundles.get(fragment_id)
                if meta is not None:
                    self._delete(meta, R.BLOCK_UNINTELLIGIBLE, now)
            return
        # The fragments are let go only once the whole bundle is stored (see _on_persisted).
        self._reassembled_from[whole] = parts
        self._seen.pop(whole, None)
        meta = self._meta_for(
            bundle, whole, self._expiry_of(bundle, now), len(event.data), now, previous=None
        )
        self._persist(meta, event.data)

    def _expiry_of(self, bundle: Bundle, now: int) -> int:
        primary = bundle.primary
        created = primary.creation_time or now - (bundle.bundle_age or 0)
        return created + primary.lifetime

    # -- forwarding (RFC 9171 5.4) -------------------------------------------------------

    def _route(self, meta: BundleMeta, now: int) -> None:
        if not meta.retention & Retention.FORWARD_PENDING:
            return
        flying = self._flights_of.get(meta.bundle_id)
        decision = self.router.route(meta, self._view, now)
        if isinstance(decision, Forward):
            if meta.bundle_id in self._handed_over:
                return  # its last copy has gone; it is let go when the others end
            busy = {self._flights[t].link_id for t in flying or ()}
            if flying and any(not self._flights[t].keep_copy for t in flying):
                return  # the one copy is on its way already
            for link_id in decision.links:
                if link_id not in busy:
                    self._transmit(meta, link_id, decision.keep_copy, now)
        elif isinstance(decision, Wait):
            if decision.until is not None:
                heapq.heappush(self._wakeups, (max(decision.until, now), meta.bundle_id))
        elif isinstance(decision, Drop):
            self._delete(meta, decision.reason, now)

    def _route_all_for_links(self, now: int) -> None:
        """Offer every waiting bundle to the links that are up (after a routing message
        changed what the router knows)."""
        for link in list(self._links.values()):
            self._select(link, now)

    def _select(self, link: LinkInfo, now: int) -> None:
        """A link came up (or the router learnt something): route again what the router
        picks for it; :meth:`_route` decides the links and whether a copy is kept."""
        for bundle_id in self.router.select(link, self._view, now):
            meta = self._bundles.get(bundle_id)
            if meta is not None:
                self._route(meta, now)

    def _transmit(self, meta: BundleMeta, link_id: str, keep_copy: bool, now: int) -> None:
        link = self._links.get(link_id)
        if link is None:
            return
        transmission = self._next_transmission
        self._next_transmission += 1
        self._flights[transmission] = _Flight(meta.bundle_id, link_id, keep_copy)
        self._flights_of.setdefault(meta.bundle_id, []).append(transmission)
        plan = TransmitPlan(
            node_id=self._node,
            received_at=meta.received_at,
            max_size=link.max_bundle_size
            if link.max_bundle_size and link.max_bundle_size < meta.size
            else None,
            routing_block=self.router.carry(meta, link, now),
            routing_block_type=self.config.routing_block_type,
            protocol=meta.protocol,
        )
        self._actions.append(act.Transmit(link_id, meta.bundle_id, transmission, plan))

    def _end_flight(self, transmission: int) -> _Flight | None:
        flight = self._flights.pop(transmission, None)
        if flight is None:
            return None
        others = self._flights_of.get(flight.bundle_id)
        if others is not None:
            others.remove(transmission)
            if not others:
                del self._flights_of[flight.bundle_id]
        return flight

    def _on_transmitted(self, event: inp.TransmissionSucceeded, now: int) -> None:
        flight = self._end_flight(event.transmission)
        if flight is None:
            return
        meta = self._bundles.get(flight.bundle_id)
        if meta is None:
            return
        link = self._links.get(flight.link_id) or LinkInfo(flight.link_id, None)
        state = self.router.on_transmitted(meta, link, self._view, now)
        if state != meta.routing:
            meta = replace(meta, routing=state)
            self._update(meta)
        self.listener.bundle_forwarded(meta, flight.link_id, now)
        if meta.flags & BundleFlag.REPORT_FORWARDING:
            self._report(meta, now, forwarded=now)
        if not flight.keep_copy:
            self._handed_over.add(meta.bundle_id)
        self._settle_forwarding(meta, now)

    def _settle_forwarding(self, meta: BundleMeta, now: int) -> None:
        """Once a copy sent without keeping one has arrived and no other copy is under
        way, the bundle no longer waits to be forwarded."""
        if meta.bundle_id in self._handed_over and not self._flights_of.get(meta.bundle_id):
            self._handed_over.discard(meta.bundle_id)
            self._release(meta, Retention.FORWARD_PENDING, R.NO_ADDITIONAL_INFORMATION, now)

    def _on_transmit_failed(self, event: inp.TransmissionFailed, now: int) -> None:
        flight = self._end_flight(event.transmission)
        if flight is None:
            return
        meta = self._bundles.get(flight.bundle_id)
        if meta is None:
            return
        link = self._links.get(flight.link_id) or LinkInfo(flight.link_id, None)
        self.router.on_transmit_failed(meta, link, self._view, now)
        if meta.bundle_id in self._handed_over:
            self._settle_forwarding(meta, now)
        else:
            heapq.heappush(self._wakeups, (now + self.config.retry_ms, meta.bundle_id))

    # -- links ---------------------------------------------------------------------------

    def _on_link_up(self, event: inp.LinkUp, now: int) -> None:
        link = LinkInfo(event.link_id, event.peer_node, event.cla, event.max_bundle_size)
        self._links[event.link_id] = link
        self.listener.link_up(link, now)
        for message in self.router.on_link_up(link, self._view, now):
            self._send_control(message.peer_node, message.link_id, message.payload, now)
        self._select(link, now)

    def _on_link_down(self, event: inp.LinkDown, now: int) -> None:
        link = self._links.pop(event.link_id, None)
        if link is None:
            return
        self.listener.link_down(event.link_id, event.reason, now)
        self.router.on_link_down(link, self._view, now)

    def _send_control(self, peer_node: str, link_id: str, payload: bytes, now: int) -> None:
        """A routing message goes straight on the link, never stored: if it is lost, the
        routers exchange fresh ones at the next contact."""
        if link_id not in self._links:
            return
        creation_time, sequence = self._next_timestamp(now)
        bundle = Bundle.create(
            source=self._routing_endpoint,
            destination=routing_endpoint_of(peer_node, self.config),
            payload=payload,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=self.config.routing_message_lifetime,
            bundle_age=None if creation_time else 0,
        )
        data = encode_bundle(bundle)
        transmission = self._next_transmission
        self._next_transmission += 1
        plan = TransmitPlan(node_id=self._node, received_at=now, inline=data, rewrite=False)
        self._actions.append(act.Transmit(link_id, str(bundle.id), transmission, plan))

    # -- applications (RFC 9171 5.2) -----------------------------------------------------

    def _on_submitted(self, event: inp.ApplicationSubmitted, now: int) -> None:
        source = event.source
        if source != "dtn:none" and not self.is_local(source):
            self._actions.append(
                act.SubmissionRefused(
                    event.submission, f"source {source} is not an endpoint of node {self._node}"
                )
            )
            return
        creation_time, sequence = self._next_timestamp(now)
        try:
            bundle = Bundle.create(
                source=source,
                destination=event.destination,
                payload=event.payload,
                creation_time=creation_time,
                sequence=sequence,
                lifetime=event.lifetime,
                report_to=event.report_to,
                flags=event.flags,
                hop_limit=event.hop_limit,
                bundle_age=None if creation_time else 0,
            )
            data = encode_bundle(bundle)
        except (InvalidEID, BundleEncodeError, ValueError) as exc:
            self._actions.append(act.SubmissionRefused(event.submission, str(exc)))
            return
        if len(data) > self.config.max_bundle_size:
            self._actions.append(
                act.SubmissionRefused(
                    event.submission,
                    f"bundle of {len(data)} bytes exceeds the node's limit of "
                    f"{self.config.max_bundle_size}",
                )
            )
            return
        meta = self._meta_for(
            bundle, str(bundle.id), now + event.lifetime, len(data), now, previous=None
        )
        meta = replace(meta, routing=self.router.admit(meta, None, now))
        self._persist(meta, data, submission=event.submission, created=True)

    def _next_timestamp(self, now: int) -> tuple[int, int]:
        """A creation timestamp no other bundle of this node has (RFC 9171 4.2.7)."""
        creation_time, sequence, save = self._stamps.take(now)
        if save is not None:
            self._actions.append(save)
        return creation_time, sequence

    # -- status reports (RFC 9171 6.1) ---------------------------------------------------

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

    # -- helpers -------------------------------------------------------------------------

    def _ack(self, receipt: object, accepted: bool, reason: int = 0) -> None:
        if receipt is not None:
            self._actions.append(act.Acknowledge(receipt, accepted, reason))

    def _refuse(
        self, receipt: object, bundle: Bundle | None, reason: int, detail: str, now: int
    ) -> None:
        bundle_id = None if bundle is None else str(bundle.id)
        self.listener.bundle_refused(bundle_id, reason, detail, now)
        self._ack(receipt, False, reason)
        if bundle is not None and bundle.primary.flags & BundleFlag.REPORT_DELETION:
            size = 0
            meta = self._meta_for(bundle, str(bundle.id), now, size, now, previous=None)
            self._report(meta, now, deleted=now, reason=reason)


def _previous_node(bundle: Bundle) -> str | None:
    try:
        previous = bundle.previous_node
    except BundleDecodeError:  # checked on decoding; kept for bundles made by hand
        return None
    return None if previous is None else str(previous)


_HANDLERS: dict[type, Callable[[BundleProtocolAgent, Any, int], None]] = {
    inp.BundleReceived: BundleProtocolAgent._on_bundle_received,
    inp.Persisted: BundleProtocolAgent._on_persisted,
    inp.PersistFailed: BundleProtocolAgent._on_persist_failed,
    inp.TransmissionSucceeded: BundleProtocolAgent._on_transmitted,
    inp.TransmissionFailed: BundleProtocolAgent._on_transmit_failed,
    inp.LinkUp: BundleProtocolAgent._on_link_up,
    inp.LinkDown: BundleProtocolAgent._on_link_down,
    inp.ApplicationRegistered: BundleProtocolAgent._on_registered,
    inp.ApplicationDeregistered: BundleProtocolAgent._on_deregistered,
    inp.ApplicationSubmitted: BundleProtocolAgent._on_submitted,
    inp.Delivered: BundleProtocolAgent._on_delivered,
    inp.DeliveryFailed: BundleProtocolAgent._on_delivery_failed,
    inp.Reassembled: BundleProtocolAgent._on_reassembled,
}
