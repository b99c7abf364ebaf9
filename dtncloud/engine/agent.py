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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from functools import lru_cache
from hashlib import blake2b
from typing import Any

from dtncloud.bpv6.admin import CustodySignalReason
from dtncloud.bpv6.codec import decode_bundle as decode_bundle_v6
from dtncloud.bpv6.codec import encode_bundle as encode_bundle_v6
from dtncloud.bpv7.admin import StatusReport, decode_admin_record
from dtncloud.bpv7.bibe import BibePdu, CustodyDisposition, CustodySignal
from dtncloud.bpv7.bundle import Bundle, BundleId
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag, StatusReportReason
from dtncloud.bpv7.reactive import prefix_fragment
from dtncloud.eid import EID
from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine._custody_transfer import CustodyMixin
from dtncloud.engine._forwarding import ForwardingMixin
from dtncloud.engine.counters import CreationStamps
from dtncloud.engine.custodian import Custodian, disposition_for_reason
from dtncloud.engine.custody_v6 import custody_requested_v6, take_custody_v6
from dtncloud.engine.fragments import whole_id
from dtncloud.engine.v6 import meta_for_v6
from dtncloud.engine.view import AgentView
from dtncloud.errors import (
    AdminRecordError,
    BundleDecodeError,
    BundleEncodeError,
    CodecError,
    DtnError,
    InvalidEID,
)
from dtncloud.routing.base import node_of
from dtncloud.store.base import BundleMeta, Retention

__all__ = ["STATE_KEYS", "BundleProtocolAgent", "index_key"]

R = StatusReportReason


_REPORT_RECEPTION = int(BundleFlag.REPORT_RECEPTION)

#: The names of the node values the agent keeps in the store (see ``restore``).
# RFC 5050 custody refusal reasons for the reception failures that have one.
_V6_REASONS = {
    R.LIFETIME_EXPIRED: CustodySignalReason.NO_TIMELY_CONTACT,
    R.DEPLETED_STORAGE: CustodySignalReason.DEPLETED_STORAGE,
    R.BLOCK_UNSUPPORTED: CustodySignalReason.BLOCK_UNINTELLIGIBLE,
}

STATE_KEYS = (CreationStamps.KEY, Custodian.COUNTER_KEY)


class BundleProtocolAgent(ForwardingMixin, CustodyMixin):
    """One node's bundle protocol agent.

    ``router`` is a :class:`~dtncloud.routing.base.Router`; ``rng`` the source of every
    random choice the agent makes; ``listener`` hears what happens.
    """

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
        custody = self._custodian.get_timer()
        if custody is not None and (due is None or custody < due):
            due = custody
        return due

    def handle_timer(self, now: int) -> None:
        """Expire bundles whose lifetime is over, route again those that were waiting."""
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, bundle_id = heapq.heappop(self._expiry)
            meta = self._bundles.get(bundle_id)
            if meta is not None and meta.expires_at == expires_at:
                self._delete(meta, R.LIFETIME_EXPIRED, now)
        # The router's clock first, so that what is routed below sees its state at ``now``.
        router_timer = self.router.get_timer()
        if router_timer is not None and router_timer <= now:
            self.router.handle_timer(now)
        due: list[str] = []
        while self._wakeups and self._wakeups[0][0] <= now:
            at, bundle_id = heapq.heappop(self._wakeups)
            if self._wake_at.get(bundle_id) == at:
                del self._wake_at[bundle_id]
                due.append(bundle_id)
        self._custody_timers(now)
        for bundle_id in dict.fromkeys(due):
            meta = self._bundles.get(bundle_id)
            if meta is not None:
                self._route(meta, now)

    def restore(self, bundles: Iterable[BundleMeta], state: Mapping[str, bytes], now: int) -> None:
        """Rebuild the index from what a store holds (a node starting again). Bundles that
        expired meanwhile are deleted; the rest are routed or delivered again as links and
        applications come."""
        self._actions.append(self._stamps.restore(state.get(CreationStamps.KEY)))
        bundles = list(bundles)
        self._custodian.restore(state, bundles)
        for meta in bundles:
            self._index(meta)
            if meta.retention & Retention.REASSEMBLY_PENDING:
                self._fragments.add(meta.bundle_id, meta.total_length or 0)
            if meta.retention & Retention.DISPATCH_PENDING:
                self._deliveries.wait(meta.bundle_id, meta.destination)
                if self._deliveries.is_active(meta.destination):  # registered before start
                    self._deliver(meta)
        self.handle_timer(now)
        for whole in self._fragments.wholes():
            self._maybe_reassemble(whole)

    @property
    def view(self) -> AgentView:
        return self._view

    def bundle(self, bundle_id: str) -> BundleMeta | None:
        return self._bundles.get(bundle_id)

    def bundle_ids(self) -> list[str]:
        return list(self._bundles)

    def knows(self, bundle_id: str) -> bool:
        """Whether this node holds ``bundle_id`` or let it go recently (a duplicate)."""
        # Not those being stored: a copy refused as held might then be lost with the first.
        return bundle_id in self._bundles or bundle_id in self._seen

    def __len__(self) -> int:
        return len(self._bundles)

    def _on_bundle_received(self, event: inp.BundleReceived, now: int) -> None:
        cfg = self.config
        if event.data[:1] == b"\x06":
            self._receive_v6(event, now)
            return
        if event.partial:
            self._receive_prefix(event, now)
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
        self,
        bundle: Bundle,
        data: bytes | None,
        link_id: str | None,
        receipt: object,
        now: int,
        custody: tuple[str, int] | None = None,
    ) -> None:
        """Take a decoded bundle (RFC 9171 5.6). ``custody`` is the (custodian,
        transmission ID) of the BPDU it came in, answered with a custody signal."""
        primary = bundle.primary
        bundle_id = self._key(bundle, data)
        if self._duplicate(bundle_id, receipt, custody, now):
            return
        if primary.source.is_none and primary.is_fragment:
            # RFC 9171 4.2.3: an anonymous bundle must not be fragmented
            self._refuse(
                receipt, bundle, R.BLOCK_UNINTELLIGIBLE, "anonymous fragment", now, custody
            )
            return
        created = primary.creation_time or now - (bundle.bundle_age or 0)
        expires_at = created + primary.lifetime
        if expires_at <= now:
            self._refuse(receipt, bundle, R.LIFETIME_EXPIRED, "lifetime expired", now, custody)
            return
        blocks = bundle.blocks
        has = {block.type_code for block in blocks}
        hop = bundle.hop_count if BlockType.HOP_COUNT in has else None
        if hop is not None and hop.exceeded:
            self._refuse(receipt, bundle, R.HOP_LIMIT_EXCEEDED, "hop limit exceeded", now, custody)
            return
        changed = False
        unsupported: Bundle | None = None
        if not has <= self._known_blocks:
            kept, changed, unsupported = self._process_blocks(bundle)
            if kept is None:
                if unsupported is not None:  # the block asked for a report as well
                    meta = self._meta_for(bundle, bundle_id, expires_at, 0, now, previous=None)
                    self._report(meta, now, received=now, reason=R.BLOCK_UNSUPPORTED)
                self._refuse(
                    receipt, bundle, R.BLOCK_UNSUPPORTED, "unsupported block", now, custody
                )
                return
            bundle = kept
        destination = str(primary.destination)
        if destination in (self._node, self._routing_endpoint) and self._consume_admin(
            bundle, destination, link_id, receipt, now
        ):
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
        if custody is not None:
            self._pending[bundle_id].custody = custody

    def _duplicate(
        self, bundle_id: str, receipt: object, custody: tuple[str, int] | None, now: int
    ) -> bool:
        """Whether ``bundle_id`` is held, being stored or let go recently; if so the copy is
        answered (at once, or once the first copy's storing is settled)."""
        pending = self._pending.get(bundle_id)
        if pending is not None:
            self.listener.bundle_duplicate(bundle_id, now)
            pending.duplicates.append((receipt, custody))
            return True
        if bundle_id in self._bundles or bundle_id in self._seen:
            self.listener.bundle_duplicate(bundle_id, now)
            self._ack(receipt, True)
            if custody is not None:
                self._custody_answer(custody, CustodyDisposition.REDUNDANT_RECEPTION, now)
            return True
        return False

    def _key(self, bundle: Bundle, data: bytes | None) -> str:
        return index_key(bundle, data)

    def _receive_prefix(self, event: inp.BundleReceived, now: int) -> None:
        """What a broken transfer delivered becomes a fragment, if it reaches into the
        payload (reactive fragmentation, RFC 9171 5.8)."""
        try:
            fragment = prefix_fragment(event.data, max_blocks=self.config.max_blocks)
        except CodecError as exc:
            reason = getattr(exc, "reason", R.BLOCK_UNINTELLIGIBLE)
            self._refuse(event.receipt, None, reason, str(exc), now)
            return
        if fragment is None:
            self._ack(event.receipt, False, R.NO_ADDITIONAL_INFORMATION)
            return
        self._accept(fragment, None, event.link_id, event.receipt, now)

    def _on_refragmented(self, event: inp.Refragmented, now: int) -> None:
        """The pieces of a cut bundle are stored as bundles of their own; the bundle is let
        go once they all are (a crash in between leaves the bundle, never less). Until then
        it is not routed, so it is not cut twice."""
        original = self._bundles.get(event.bundle_id)
        if original is None or event.bundle_id in self._cut_pieces:
            return  # gone meanwhile, or a cut of it is already being stored
        try:
            pieces = [decode_bundle(p, max_size=max(len(p), 1)) for p in event.pieces]
        except BundleDecodeError:
            pieces = []
        waiting: set[str] = set()
        for bundle, data in zip(pieces, event.pieces, strict=False):
            key = str(bundle.id)
            if key in self._bundles or key in self._pending:
                continue  # this node holds that piece already
            meta = self._meta_for(
                bundle, key, original.expires_at, len(data), now, previous=original.previous_node
            )
            meta = replace(meta, received_at=original.received_at, routing=original.routing)
            self._persist(meta, data)
            self._pending[key].replaces = original.bundle_id
            waiting.add(key)
        if waiting:
            self._cut_pieces[original.bundle_id] = (frozenset(waiting), waiting)
            return
        self._cutting.discard(original.bundle_id)
        if pieces:  # every piece was here already
            self._delete(original, R.NO_ADDITIONAL_INFORMATION, now, report=False)
        else:
            self._wake(original.bundle_id, now + self.config.retry_ms)

    def _piece_stored(self, meta: BundleMeta, original_id: str, now: int) -> None:
        cut = self._cut_pieces[original_id]
        cut[1].discard(meta.bundle_id)
        if not cut[1]:
            del self._cut_pieces[original_id]
            original = self._bundles.get(original_id)
            if original is not None:
                self._delete(original, R.NO_ADDITIONAL_INFORMATION, now, report=False)

    def _piece_failed(self, original_id: str, now: int) -> None:
        """A piece could not be stored: the cut is given up, the bundle stays whole."""
        cut = self._cut_pieces.pop(original_id, None)
        self._cutting.discard(original_id)
        if cut is not None:
            for piece_id in cut[0] - cut[1]:
                piece = self._bundles.get(piece_id)
                if piece is not None:
                    self._delete(piece, R.NO_ADDITIONAL_INFORMATION, now, report=False)
        if original_id in self._bundles:
            self._wake(original_id, now + self.config.retry_ms)

    def _receive_v6(self, event: inp.BundleReceived, now: int) -> None:
        """A legacy RFC 5050 bundle: stored and forwarded unchanged (but for the custodian,
        when this node takes custody of it), or delivered here."""
        cfg = self.config
        try:
            bundle = decode_bundle_v6(
                event.data, max_size=cfg.max_bundle_size, max_blocks=cfg.max_blocks
            )
        except BundleDecodeError as exc:
            self._refuse(event.receipt, None, exc.reason, str(exc), now)
            return
        bundle_id = str(bundle.bundle_id)
        asks_custody = self._custodian.enabled and custody_requested_v6(bundle)
        being_stored = bundle_id in self._pending
        if self._duplicate(bundle_id, event.receipt, None, now):
            if asks_custody and not being_stored:
                self._signal_v6(bundle, False, CustodySignalReason.REDUNDANT_RECEPTION, now)
            return
        if bundle.is_admin_record and self.is_local(bundle.destination):
            self._ack(event.receipt, True)
            self._on_admin_record_v6(bundle, now)
            return
        local = self.is_local(bundle.destination)
        link = self._links.get(event.link_id) if event.link_id is not None else None
        previous = None if link is None else link.peer_node
        meta = meta_for_v6(bundle, len(event.data), now, local=local, previous=previous)
        refusal = None
        if meta.expires_at <= now:
            refusal = R.LIFETIME_EXPIRED
        elif local and bundle.is_fragment:
            # Reassembly is implemented for BPv7 only: the pieces would wait for nothing.
            refusal = R.BLOCK_UNSUPPORTED
        if refusal is not None:
            self._refuse(event.receipt, None, refusal, f"{bundle_id} not accepted", now)
            if asks_custody:
                self._signal_v6(bundle, False, _V6_REASONS.get(refusal, 0), now)
            return
        data = event.data
        if asks_custody:
            data = encode_bundle_v6(take_custody_v6(bundle, self._node))
            meta = replace(
                meta, size=len(data), retention=meta.retention | Retention.CUSTODY_ACCEPTED
            )
        routing = self.router.admit(meta, None, now)
        if routing:
            meta = replace(meta, routing=routing)
        self._persist(meta, data, receipt=event.receipt, link_id=event.link_id)
        if asks_custody:
            self._pending[bundle_id].custody_v6 = bundle

    def _process_blocks(self, bundle: Bundle) -> tuple[Bundle | None, bool, Bundle | None]:
        """RFC 9171 5.6 step 4: blocks of unknown type. Returns the bundle to keep (None to
        delete it), whether blocks were removed, and the bundle if a block asked for a
        report."""
        changed = False
        report: Bundle | None = None
        for block in bundle.extension_blocks:
            if block.type_code in self._known_blocks:
                continue
            flags = block.flags
            if flags & BlockFlag.REPORT_IF_UNPROCESSABLE:
                report = bundle
            if flags & BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE:
                return None, changed, report
            if flags & BlockFlag.DISCARD_IF_UNPROCESSABLE:
                bundle = bundle.remove_block(block.number)
                changed = True
        return bundle, changed, report

    def _consume_admin(
        self, bundle: Bundle, destination: str, link_id: str | None, receipt: object, now: int
    ) -> bool:
        """Administrative records and routing messages for this node go to their handlers
        rather than to the store. Returns False for bundles to store; when it returns True,
        ``receipt`` has been answered or handed on."""
        if destination == self._routing_endpoint:
            peer = node_of(str(bundle.primary.source))
            for message in self.router.on_control_message(
                peer, link_id, bundle.payload, self._view, now
            ):
                self._send_control(message.peer_node, message.link_id, message.payload, now)
            self._route_all_for_links(now)
            self._ack(receipt, True)
            return True
        if not bundle.primary.is_admin_record or bundle.primary.is_fragment:
            return False
        try:
            record = decode_admin_record(bundle.payload)
        except AdminRecordError as exc:  # nothing can be done with it; it is not kept
            self._refuse(receipt, bundle, R.BLOCK_UNINTELLIGIBLE, str(exc), now)
            return True
        sender = node_of(str(bundle.primary.source))
        if isinstance(record, BibePdu):
            self._unwrap(record, sender, link_id, receipt, now)
            return True
        if isinstance(record, StatusReport):
            self.listener.status_report_received(record, now)
        elif isinstance(record, CustodySignal):
            self._on_custody_signal(sender, record, now)
        self._ack(receipt, True)
        return True

    def _on_persisted(self, event: inp.Persisted, now: int) -> None:
        pending = self._pending.pop(event.bundle_id, None)
        if pending is None:
            return
        meta = pending.meta
        if pending.replaces is not None and pending.replaces not in self._cut_pieces:
            self._actions.append(act.Remove(meta.bundle_id))  # a piece of a cut given up
            return
        self._index(meta)
        self._ack(pending.receipt, True)
        for receipt, custody in pending.duplicates:
            self._ack(receipt, True)
            if custody is not None:
                self._custody_answer(custody, CustodyDisposition.REDUNDANT_RECEPTION, now)
        if pending.custody is not None:
            self._custody_answer(pending.custody, CustodyDisposition.ACCEPTED, now)
        if pending.custody_v6 is not None:
            self._signal_v6(pending.custody_v6, True, 0, now)
        if pending.submission is not None:
            self._actions.append(act.SubmissionAccepted(pending.submission, meta.bundle_id))
        if pending.created:
            self.listener.bundle_created(meta, now)
        else:
            self.listener.bundle_received(meta, pending.link_id, now)
        self._let_fragments_go(self._reassembled_from.pop(meta.bundle_id, ()), now)
        if pending.report_received is not None:
            self._report(meta, now, received=now, reason=pending.report_received)
        if pending.replaces is not None:
            self._piece_stored(meta, pending.replaces, now)
        self._dispatch(meta, now)

    def _on_persist_failed(self, event: inp.PersistFailed, now: int) -> None:
        pending = self._pending.pop(event.bundle_id, None)
        if pending is None:
            return
        # Whatever went wrong, the node has no room for it now: the sender keeps its copy
        # (a convergence layer refuses the transfer for "no resources").
        reason = R.DEPLETED_STORAGE
        detail = event.message or ("store full" if event.full else "store error")
        if pending.submission is not None:
            self._actions.append(act.SubmissionRefused(pending.submission, detail))
        if pending.replaces is not None:
            self._piece_failed(pending.replaces, now)
        # a reassembled bundle that could not be stored: its fragments wait for a later try
        self._book_fragments(self._reassembled_from.pop(event.bundle_id, ()))
        for receipt, custody in [(pending.receipt, None), *pending.duplicates]:
            self._ack(receipt, False, reason)
            if custody is not None:
                self._custody_answer(custody, disposition_for_reason(reason), now)
        if pending.custody is not None:
            self._custody_answer(pending.custody, disposition_for_reason(reason), now)
        if pending.custody_v6 is not None:
            self._signal_v6(pending.custody_v6, False, _V6_REASONS.get(reason, 0), now)
        self.listener.bundle_refused(event.bundle_id, reason, detail, now)
        if pending.receipt is not None or pending.link_id is not None:  # from a neighbour
            self._report(pending.meta, now, deleted=now, reason=reason)

    def _dispatch(self, meta: BundleMeta, now: int) -> None:
        if meta.retention & Retention.REASSEMBLY_PENDING:
            whole = whole_id(meta.bundle_id)
            if whole in self._bundles or whole in self._seen:  # it came (or went) whole
                self._release(meta, Retention.REASSEMBLY_PENDING, R.NO_ADDITIONAL_INFORMATION, now)
                return
            self._maybe_reassemble(self._fragments.add(meta.bundle_id, meta.total_length or 0))
        elif meta.retention & Retention.DISPATCH_PENDING:
            if not self._fragments.busy(meta.bundle_id):
                # fragments of a bundle that has now come whole are of no more use
                self._let_fragments_go(self._fragments.finish(meta.bundle_id), now)
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
        done = Retention.DISPATCH_PENDING
        if meta.protocol == 6:
            # RFC 5050: delivery ends this node's custody; no custodian downstream will
            # ever signal for a bundle that went no further.
            done |= Retention.CUSTODY_ACCEPTED
            self._custodian.ledger.forget(meta.bundle_id)
        self._release(meta, done, R.NO_ADDITIONAL_INFORMATION, now)

    def _on_delivery_failed(self, event: inp.DeliveryFailed, now: int) -> None:
        self._deliveries.failed(event.bundle_id, event.endpoint)

    def _on_delivery_refused(self, event: inp.DeliveryRefused, now: int) -> None:
        meta = self._bundles.get(event.bundle_id)
        if meta is not None:
            self._delete(meta, event.reason, now)

    def _on_registered(self, event: inp.ApplicationRegistered, now: int) -> None:
        for bundle_id in self._deliveries.register(event.endpoint):
            meta = self._bundles.get(bundle_id)
            if meta is not None:
                self._deliver(meta)

    def _on_deregistered(self, event: inp.ApplicationDeregistered, now: int) -> None:
        self._deliveries.deregister(event.endpoint, forget=event.forget)

    def _let_fragments_go(self, fragment_ids: Iterable[str], now: int) -> None:
        """The fragments are no longer needed for reassembly (the whole bundle is here)."""
        for fragment_id in fragment_ids:
            fragment = self._bundles.get(fragment_id)
            if fragment is not None:
                self._release(
                    fragment, Retention.REASSEMBLY_PENDING, R.NO_ADDITIONAL_INFORMATION, now
                )

    def _book_fragments(self, fragment_ids: Iterable[str]) -> None:
        """Held fragments go (back) into the fragment book, for a later reassembly."""
        for fragment_id in fragment_ids:
            fragment = self._bundles.get(fragment_id)
            if fragment is not None:
                self._fragments.add(fragment_id, fragment.total_length or 0)

    def _maybe_reassemble(self, whole: str) -> None:
        fragment_ids = self._fragments.ready(whole)
        if fragment_ids is not None:
            self._actions.append(act.Reassemble(whole, fragment_ids))

    def _on_reassembled(self, event: inp.Reassembled, now: int) -> None:
        whole = event.bundle_id
        parts = self._fragments.finish(whole)
        if whole in self._pending:
            # It came whole meanwhile and is being stored: the fragments wait until it is
            # (if that fails they are all the node has); its delivery lets them go.
            self._book_fragments(parts)
            return
        if whole in self._bundles or whole in self._seen:  # it came (and went) whole meanwhile
            self._let_fragments_go(parts, now)
            return
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
        meta = self._meta_for(
            bundle, whole, self._expiry_of(bundle, now), len(event.data), now, previous=None
        )
        self._persist(meta, event.data)

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
            if event.secure is not None:
                bundle = event.secure(bundle)
            data = encode_bundle(bundle)
        except (InvalidEID, BundleEncodeError, ValueError, DtnError) as exc:
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
            bundle, index_key(bundle, data), now + event.lifetime, len(data), now, previous=None
        )
        meta = replace(meta, routing=self.router.admit(meta, None, now))
        self._persist(meta, data, submission=event.submission, created=True)

    def _on_cancelled(self, event: inp.ApplicationCancelled, now: int) -> None:
        meta = self._bundles.get(event.bundle_id)
        if meta is not None:
            self._delete(meta, R.NO_ADDITIONAL_INFORMATION, now)

    def _on_evicted(self, event: inp.BundleEvicted, now: int) -> None:
        # asked for by the shell only (the simulator's drop-oldest buffer policy)
        meta = self._bundles.get(event.bundle_id)
        if meta is not None:
            self._delete(meta, event.reason, now)

    def _on_routes_changed(self, event: inp.RoutesChanged, now: int) -> None:
        for meta in list(self._bundles.values()):
            self._route(meta, now)  # only those still waiting to be forwarded are routed


def index_key(bundle: Bundle, data: bytes | None = None) -> str:
    """The key a BPv7 bundle is stored and indexed under: its ID, but for an anonymous
    bundle (source dtn:none), whose ID is not unique (RFC 9171 4.2.3), the ID and a digest
    of its encoding (``data`` if given)."""
    primary = bundle.primary
    if primary.fragment_offset is None and not primary.source.is_none:
        return _whole_bundle_id(primary.source, primary.creation_time, primary.sequence)
    bundle_id = str(bundle.id)
    if not primary.source.is_none:
        return bundle_id
    encoded = data if data is not None else encode_bundle(bundle, validate=False)
    return f"{bundle_id}#{blake2b(encoded, digest_size=8).hexdigest()}"


@lru_cache(maxsize=1 << 16)
def _whole_bundle_id(source: EID, creation_time: int, sequence: int) -> str:
    """``str(bundle.id)`` of a bundle that is not a fragment, remembered: every copy that
    arrives is keyed (mostly to find it is a duplicate), and every copy of a bundle in a
    simulation shares one string."""
    return str(BundleId(source.node_id, creation_time, sequence))


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
    inp.ApplicationCancelled: BundleProtocolAgent._on_cancelled,
    inp.BundleEvicted: BundleProtocolAgent._on_evicted,
    inp.RoutesChanged: BundleProtocolAgent._on_routes_changed,
    inp.Delivered: BundleProtocolAgent._on_delivered,
    inp.DeliveryFailed: BundleProtocolAgent._on_delivery_failed,
    inp.DeliveryRefused: BundleProtocolAgent._on_delivery_refused,
    inp.Reassembled: BundleProtocolAgent._on_reassembled,
    inp.Refragmented: BundleProtocolAgent._on_refragmented,
}
