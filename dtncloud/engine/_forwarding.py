"""Forwarding (RFC 9171 section 5.4): routing decisions, transmissions and their results,
links coming and going, and routing messages between neighbours' routers."""

from __future__ import annotations

from dataclasses import replace

from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.encode import encode_bundle
from dtncloud.bpv7.flags import BundleFlag, StatusReportReason
from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine._base import AgentBase, _Flight
from dtncloud.engine.config import routing_endpoint_of
from dtncloud.engine.sizes import GROWTH_ALLOWANCE, wire_size
from dtncloud.engine.transmit import BibeWrap, TransmitPlan
from dtncloud.routing.base import Drop, Forward, LinkInfo, Wait
from dtncloud.store.base import BundleMeta, Retention

R = StatusReportReason

_MUST_NOT_FRAGMENT = int(BundleFlag.MUST_NOT_FRAGMENT)
_FORWARD_PENDING = int(Retention.FORWARD_PENDING)


class ForwardingMixin(AgentBase):
    """The forwarding part of :class:`~dtncloud.engine.agent.BundleProtocolAgent`."""

    def _route(self, meta: BundleMeta, now: int) -> None:
        if not int(meta.retention) & _FORWARD_PENDING:  # an int op: run for every bundle routed
            return
        flying = self._flights_of.get(meta.bundle_id)
        decision = self.router.route(meta, self._view, now)
        if meta.bundle_id in self._cutting:
            return  # routed again as fragments once it is cut
        if isinstance(decision, Forward):
            if (
                decision.volume is not None
                and not flying
                and len(decision.links) == 1
                and self._too_big_for(meta, decision.links[0], decision.volume, now)
            ):
                return
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
                # never at ``now`` itself: the bundle was just asked about
                self._wake(meta.bundle_id, max(decision.until, now + 1))
        elif isinstance(decision, Drop):
            self._delete(meta, decision.reason, now)

    def _sent_size(self, meta: BundleMeta, peer: str | None, custody: bool) -> int:
        """What one transmission of ``meta`` puts on the wire (:func:`wire_size`) with the
        BPDU around it under custody."""
        size = wire_size(meta, self._node)
        if custody:
            size += 64 + 2 * len(self._node) + 2 * len(peer or "")
        return size

    def _bounded_size(self, meta: BundleMeta, peer: str | None, custody: bool) -> int:
        """A bound on :meth:`_sent_size`, for what must fit a link's hard size limit."""
        return self._sent_size(meta, peer, custody) + GROWTH_ALLOWANCE

    def _too_big_for(self, meta: BundleMeta, link_id: str, volume: int, now: int) -> bool:
        """Proactive fragmentation (RFC 9171 5.8): a contact that can carry only ``volume``
        more bytes. A bundle too big for it is cut, the first fragment sized to fit (it is
        routed again once stored), or, if it cannot be cut, waits for another contact.
        Returns whether the bundle stays here for now."""
        link = self._links.get(link_id)
        if link is None:
            return False  # gone: _transmit finds nothing to send on
        limit = link.max_bundle_size
        needed = self._sent_size(meta, link.peer_node, self._custody_on(meta, link))
        if limit is not None and needed > limit:
            if meta.flags & _MUST_NOT_FRAGMENT:
                return False  # _transmit does not send it on this link at all
            # Sent, it would be cut into pieces that each repeat the primary block and the
            # replicated blocks, which the store keeps no note of: cut here instead, so that
            # every piece is stored, its size known, and fitted into what is left in turn.
            volume = min(volume, limit)
        if needed <= volume:
            return False
        first_size = volume - (needed - meta.size)  # the cut counts the fragment's fields
        if (
            meta.protocol == 7
            and not meta.flags & _MUST_NOT_FRAGMENT
            and first_size > 64  # room for the first fragment's blocks and payload
        ):
            self._cutting.add(meta.bundle_id)
            self._actions.append(act.Refragment(meta.bundle_id, first_size=first_size))
        else:
            self._wake(meta.bundle_id, now + self.config.retry_ms)
        return True

    def _custody_on(self, meta: BundleMeta, link: LinkInfo) -> bool:
        """Whether ``meta`` goes to ``link``'s peer under custody (BIBE custody transfer)."""
        if link.peer_node is None or not self._custodian.wants(meta, link):
            return False
        limit = link.max_bundle_size
        # fragments go without custody: one ID covers one whole bundle
        return limit is None or self._bounded_size(meta, link.peer_node, True) <= limit

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
        limit = link.max_bundle_size
        if limit is not None and meta.protocol == 6 and meta.size > limit:
            return  # BPv6 bundles are sent as they are: this link cannot take it
        custody = self._custody_on(meta, link)
        if (
            limit is not None
            and meta.flags & _MUST_NOT_FRAGMENT
            and self._bounded_size(meta, link.peer_node, custody) > limit
        ):
            return  # it cannot be cut to fit this link: another link or contact may take it
        bibe = None
        if custody and link.peer_node is not None:
            bibe = self._under_custody(meta, link.peer_node, now)
        elif meta.protocol == 6 and meta.retention & Retention.CUSTODY_ACCEPTED:
            # RFC 5050: this node is the bundle's custodian until a signal releases it;
            # the ledger's deadline brings it back if none comes.
            self._custodian.ledger.send(meta.bundle_id, "", now)
            self._update(replace(meta, custody=self._custodian.ledger.state_of(meta.bundle_id)))
        # With a limit, render() cuts what it finally sends into fragments that fit, should
        # the blocks it adds make the bundle too big (and only then).
        max_size = None if bibe is not None else limit
        transmission = self._next_transmission
        self._next_transmission += 1
        self._flights[transmission] = _Flight(meta.bundle_id, link_id, keep_copy)
        self._flights_of.setdefault(meta.bundle_id, []).append(transmission)
        plan = TransmitPlan(
            node_id=self._node,
            received_at=meta.received_at,
            max_size=max_size,
            routing_block=self.router.carry(meta, link, now),
            routing_block_type=self.config.routing_block_type,
            bibe=bibe,
            protocol=meta.protocol,
        )
        self._actions.append(act.Transmit(link_id, meta.bundle_id, transmission, plan))

    def _under_custody(self, meta: BundleMeta, peer: str, now: int) -> BibeWrap:
        """Book ``meta``'s transmission to ``peer`` under custody; the books are stored
        before the BPDU leaves (the shell carries store writes out first)."""
        transmission_id, deadline, save = self._custodian.send(meta.bundle_id, peer, now)
        if save is not None:
            self._actions.append(save)
        meta = replace(
            meta,
            retention=meta.retention | Retention.CUSTODY_ACCEPTED,
            custody=self._custodian.ledger.state_of(meta.bundle_id),
        )
        self._update(meta)
        creation_time, sequence = self._next_timestamp(now)
        return BibeWrap(
            source=self._node,
            destination=peer,
            transmission_id=transmission_id,
            retransmission_time=deadline,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=max(1, meta.expires_at - now),
        )

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

    def _flight_ended(self, transmission: int) -> tuple[_Flight, BundleMeta, LinkInfo] | None:
        """The transmission, its bundle (if still held) and its link (even if it is down)."""
        flight = self._end_flight(transmission)
        if flight is None:
            return None
        meta = self._bundles.get(flight.bundle_id)
        if meta is None:
            return None
        return flight, meta, self._links.get(flight.link_id) or LinkInfo(flight.link_id, None)

    def _on_transmitted(self, event: inp.TransmissionSucceeded, now: int) -> None:
        ended = self._flight_ended(event.transmission)
        if ended is None:
            return
        flight, meta, link = ended
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
        ended = self._flight_ended(event.transmission)
        if ended is None:
            return
        _, meta, link = ended
        self.router.on_transmit_failed(meta, link, self._view, now)
        if (
            self.config.reactive_fragmentation
            and event.payload_acknowledged > 0
            and meta.protocol == 7
            and not meta.retention & Retention.CUSTODY_ACCEPTED
            and not self._flights_of.get(meta.bundle_id)
        ):
            # RFC 9171 5.8: the peer keeps what it acknowledged; only the rest goes again.
            self._cutting.add(meta.bundle_id)
            self._actions.append(
                act.Refragment(meta.bundle_id, payload_offset=event.payload_acknowledged)
            )
            return
        if meta.bundle_id in self._handed_over:
            self._settle_forwarding(meta, now)
        else:
            self._wake(meta.bundle_id, now + self.config.retry_ms)

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
        limit = self._links[link_id].max_bundle_size
        if limit is not None and len(data) > limit:
            # Never cut: the peer's router reads routing messages whole. Without it the
            # routers go on as without a reply (a summary vector's wait runs out).
            return
        transmission = self._next_transmission
        self._next_transmission += 1
        plan = TransmitPlan(node_id=self._node, received_at=now, inline=data, rewrite=False)
        self._actions.append(act.Transmit(link_id, str(bundle.id), transmission, plan))
