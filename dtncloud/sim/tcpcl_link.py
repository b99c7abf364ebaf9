"""Link mode ``"tcpcl"``: a contact carried by two real TCPCLv4 sessions, in virtual time.

When the contact comes up, node ``a`` opens an active :class:`~dtncloud.tcpcl.session.Session`
and node ``b`` a passive one. Their bytes travel through one in-memory pipe per direction
that models the link: bytes are serialised one after the other at the link's rate (cut into
chunks of about :data:`CHUNK_MS` of serialisation, each delivered to the peer's ``receive_data`` when
its last byte arrives) and arrive ``delay_ms`` after they leave. Each session's
``get_timer()`` is a scheduler event, so keepalives and the idle, contact and ending
timeouts happen as deployed.

- Set-up: contact headers, then SESS_INIT (two round trips); each node's agent hears
  ``LinkUp`` when its own session reports ``SessionEstablished``.
- A ``Transmit`` renders its bundle (or fragments) and ``send_bundle``\\s each piece; the
  session cuts it into segments of at most the peer's segment MRU. The next ``Transmit`` of
  that node starts when the pipe has serialised the previous one.
- The receiving session's last segment hands the bundle to the receiving agent
  (``BundleReceived``); once the agent stored it (``Acknowledge``), ``accept_transfer``
  sends the final XFER_ACK, else ``refuse_transfer``. The sender's ``TransferSucceeded``
  for every piece answers ``TransmissionSucceeded``; ``TransferRefusedByPeer``
  ``TransmissionFailed(refused=True)``.
- The contact ends (or a node goes down): the connection is cut. Both sessions see
  ``connection_lost``; open transmissions fail with the bytes the peer had acknowledged.
  :meth:`TcpclLink.terminate` (called ``2 * delay_ms + 1`` ms before the end of a contact
  scheduled with :meth:`~dtncloud.sim.world.Simulation.contact`) sends SESS_TERM first, so
  that a quiet session ends cleanly.
- A session that closes on its own (SESS_TERM, idle timeout) closes the connection. While
  the contact lasts, node ``a`` connects again as ``dtnd`` keeps a session with a configured
  peer: after 1 s, doubling up to 60 s, each wait jittered by a factor of 0.5 to 1.5; the
  wait starts from 1 s again once a session lasted 60 s
  (:meth:`~dtncloud.sim.links.Network.link_finished`).

With link ``loss`` p the pipe models TCP's recovery rather than losing anything: each chunk
is lost with probability p (drawn from the simulation's seeded generator when it is written)
and sent again after a retransmission timeout, ``max(200 ms, 2 * round trip)`` with the
round trip ``2 * delay_ms`` (Linux's minimum RTO, and twice the round trip for a connection
whose RTT does not vary), doubled for each further loss of the same chunk up to 60 s
(RFC 6298 5.5, 2.5). Each retransmission takes the chunk's serialisation time again (the
pipe's later bytes leave that much later). Bytes arrive in order: those behind a lost chunk
wait for its retransmission (head-of-line blocking), so goodput falls with the loss but no
byte is lost or reordered. A chunk lost :data:`MAX_RETRANSMISSIONS` times in a row breaks the
connection the way TCP gives up: nothing more arrives from that pipe (the sessions time out,
or the contact ends). The pipe does not stop sending while it waits for a retransmission (a
window large enough), and there is no congestion control: the model is TCP's recovery, not
its rate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dtncloud.bpv7.reactive import acknowledged_payload
from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine.transmit import render
from dtncloud.errors import ConfigError, DtnError, LocalProtocolError, TransferRefused
from dtncloud.sim.links import Link, LinkModel, Transfer
from dtncloud.tcpcl import messages as m
from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    Event,
    IncomingTransferAborted,
    SegmentAcknowledged,
    SegmentReceived,
    SessionClosed,
    SessionEstablished,
    TransferRefusedByPeer,
    TransferSucceeded,
)
from dtncloud.tcpcl.session import Session

if TYPE_CHECKING:
    from dtncloud.sim.links import Network
    from dtncloud.sim.node import SimNode

__all__ = ["CHUNK", "TcpclLink", "retransmission_timeout", "session_config"]

#: The largest piece of the byte stream delivered in one scheduler event ...
CHUNK = 65_536
#: ... and the serialisation time a piece aims at (so a slow link delivers segments as they
#: arrive, not whole bundles), in ms, but no piece smaller than :data:`MIN_CHUNK` bytes.
CHUNK_MS = 50
MIN_CHUNK = 256

#: With link loss: the smallest retransmission timeout (ms), the largest after backing off,
#: and how many times in a row one chunk may be lost before the connection is given up
#: (Linux's tcp_retries2).
MIN_RTO_MS = 200
MAX_RTO_MS = 60_000
MAX_RETRANSMISSIONS = 15

_KEEPALIVE = m.KEEPALIVE_BYTES
_SESS_TERM_SIZE = 3


def session_config(node_id: str, settings: Mapping[str, Any]) -> SessionConfig:
    """The :class:`SessionConfig` of ``node_id`` from a link's ``tcpcl`` settings (fields of
    SessionConfig but ``node_id``; ``max_segment_size`` defaults to ``segment_mru``)."""
    values = dict(settings)
    if "node_id" in values:
        raise ConfigError("tcpcl settings cannot set node_id")
    if "segment_mru" in values and "max_segment_size" not in values:
        values["max_segment_size"] = values["segment_mru"]
    try:
        return SessionConfig(node_id=node_id, **values)
    except TypeError as exc:
        raise ConfigError(f"tcpcl settings: {exc}") from None


def retransmission_timeout(delay_ms: int) -> int:
    """The first retransmission timeout of a pipe with one-way ``delay_ms``: twice the round
    trip, but at least :data:`MIN_RTO_MS`."""
    return max(MIN_RTO_MS, 2 * (2 * delay_ms))


class _Side:
    """One end of the connection: a node, its session, and the pipe its bytes leave by."""

    __slots__ = (
        "acked",
        "announced",
        "arrives_at",
        "busy",
        "by_tid",
        "closed",
        "closed_by",
        "dead",
        "free_at",
        "incoming",
        "keepalives",
        "node",
        "peer",
        "pending",
        "queue",
        "receiver",
        "retransmissions",
        "segments",
        "sender",
        "session",
        "timer_at",
    )

    def __init__(self, node: SimNode, session: Session) -> None:
        self.node = node
        self.sender = node  # for Transfer
        self.receiver: SimNode = node  # set with peer
        self.session = session
        self.peer: _Side = self
        #: when (fractional ms) the last byte written so far is serialised
        self.free_at = -math.inf
        #: when the last chunk written so far arrives: none arrives earlier (in order)
        self.arrives_at = 0
        #: a chunk was lost too often: nothing more from this pipe arrives
        self.dead = False
        #: Transmits not started yet
        self.queue: deque[Transfer] = deque()
        #: a Transmit's bytes are being serialised
        self.busy = False
        #: our open TCPCL transfers -> their Transmit; the transfer IDs each still waits for
        self.by_tid: dict[int, Transfer] = {}
        self.pending: dict[Transfer, set[int]] = {}
        self.acked: dict[int, int] = {}
        #: incoming transfer ID -> segments so far
        self.incoming: dict[int, list[bytes]] = {}
        self.announced = False
        self.closed = False
        #: the session's SessionClosed, once it came
        self.closed_by: SessionClosed | None = None
        self.timer_at: int | None = None
        #: XFER_SEGMENTs received, KEEPALIVEs and retransmitted chunks sent (for tests and
        #: curiosity)
        self.segments = 0
        self.keepalives = 0
        self.retransmissions = 0


class TcpclLink(Link):
    """A contact between ``a`` (active side) and ``b`` (passive) carried by TCPCLv4 sessions."""

    __slots__ = ("cut_off", "network", "opened_at", "sides")

    def __init__(
        self, link_id: str, a: SimNode, b: SimNode, model: LinkModel, network: Network
    ) -> None:
        super().__init__(link_id, a, b, model)
        self.network = network
        self.cut_off = False
        now = network.scheduler.now
        self.opened_at = now
        settings = dict(model.tcpcl)
        active = _Side(a, Session(Role.ACTIVE, session_config(a.node_id, settings), now))
        passive = _Side(b, Session(Role.PASSIVE, session_config(b.node_id, settings), now))
        active.peer, passive.peer = passive, active
        active.receiver, passive.receiver = b, a
        #: node ID -> its end
        self.sides = {a.node_id: active, b.node_id: passive}

    def side_of(self, node: SimNode) -> _Side:
        return self.sides[node.node_id]

    def sending(self, node: SimNode) -> list[str]:
        """The stored bundles ``node`` is sending now: TCPCL transfers started and not yet
        all acknowledged."""
        pending = self.sides[node.node_id].pending
        return [t.action.bundle_id for t in pending if t.action.plan.inline is None]

    def open(self) -> None:
        """The connection is up: the active side's contact header goes out."""
        for side in self.sides.values():
            self._pump(side)

    # -- the byte pipes ---------------------------------------------------------------------

    def _write(self, side: _Side, data: bytes) -> None:
        if self.cut_off or not data or side.dead:
            return
        scheduler = self.network.scheduler
        now = scheduler.now
        delay = self.model.delay_ms
        rate = self.model.rate_bytes_s
        peer = side.peer
        if rate is None:
            side.free_at = float(now)
            if self.model.loss > 0.0:
                for offset in range(0, len(data), CHUNK):
                    self._send_chunk(side, data[offset : offset + CHUNK], float(now), 0.0)
                    if side.dead:
                        break
                return
            scheduler.at(now + delay, self._deliver, (peer, data))
            return
        # a pipe freed during this millisecond goes on from where it was, so that many small
        # writes add up right
        at = side.free_at if side.free_at > now - 1 else float(now)
        per_byte = 1000.0 / rate
        step = min(CHUNK, max(MIN_CHUNK, int(rate * CHUNK_MS / 1000)))
        for offset in range(0, len(data), step):
            chunk = data[offset : offset + step]
            cost = len(chunk) * per_byte
            at += cost
            if self.model.loss > 0.0:
                at = self._send_chunk(side, chunk, at, cost)
                if side.dead:
                    break
            else:
                scheduler.at(math.ceil(at - 1e-9) + delay, self._deliver, (peer, chunk))
        side.free_at = at

    def _send_chunk(self, side: _Side, chunk: bytes, end: float, cost: float) -> float:
        """A chunk serialised by ``end`` on a lossy pipe: drawn lost or not, sent again after
        a timeout until it gets through, and delivered in order. Returns when the pipe is
        free again (each retransmission takes ``cost`` ms of serialisation too)."""
        rng = self.network.rng
        loss = self.model.loss
        timeout = retransmission_timeout(self.model.delay_ms)
        lost = 0
        through = end
        while rng.random() < loss:
            if lost == MAX_RETRANSMISSIONS:
                side.retransmissions += lost
                side.dead = True  # TCP gives the connection up: nothing more arrives
                return end + lost * cost
            through += min(MAX_RTO_MS, timeout << lost) + cost
            lost += 1
        side.retransmissions += lost
        arrives = max(side.arrives_at, math.ceil(through - 1e-9) + self.model.delay_ms)
        side.arrives_at = arrives  # later bytes wait behind this one (in order)
        self.network.scheduler.at(arrives, self._deliver, (side.peer, chunk))
        return end + lost * cost

    def _drained_at(self, side: _Side) -> int:
        now = self.network.scheduler.now
        if side.free_at == -math.inf:  # nothing written yet (a pipe dead from the start)
            return now
        return max(now, math.ceil(side.free_at - 1e-9))

    def _deliver(self, item: tuple[_Side, bytes]) -> None:
        side, data = item
        if self.cut_off or side.closed:
            return
        side.session.receive_data(data, self.network.scheduler.now)
        self._pump(side)

    def _fin(self, side: _Side) -> None:
        """The peer closed the connection after its last bytes."""
        if self.cut_off or side.closed:
            return
        side.session.connection_lost(self.network.scheduler.now)
        self._pump(side)

    # -- driving a session ------------------------------------------------------------------

    def _flush(self, side: _Side) -> None:
        self._write(side, side.session.data_to_send())

    def _pump(self, side: _Side) -> None:
        session = side.session
        while True:
            self._flush(side)
            event = session.next_event()
            if event is None:
                break
            self._on_event(side, event)
        self._arm(side)

    def _arm(self, side: _Side, earliest: int | None = None) -> None:
        if side.closed or self.cut_off:
            return
        due = side.session.get_timer()
        if due is None or (side.timer_at is not None and side.timer_at <= due):
            return
        side.timer_at = due
        now = self.network.scheduler.now
        when = max(due, now if earliest is None else earliest)
        self.network.scheduler.at(when, self._on_timer, (side, due))

    def _on_timer(self, token: tuple[_Side, int]) -> None:
        side, due = token
        if side.timer_at != due or side.closed or self.cut_off:
            return
        side.timer_at = None
        now = self.network.scheduler.now
        side.session.handle_timer(now)
        data = side.session.data_to_send()
        if data[-1:] == _KEEPALIVE and len(data) in (1, 1 + _SESS_TERM_SIZE):
            side.keepalives += 1
        self._write(side, data)
        self._pump(side)
        self._arm(side, now + 1)

    def _on_event(self, side: _Side, event: Event) -> None:
        if isinstance(event, SegmentReceived):
            self._on_segment(side, event)
        elif isinstance(event, SegmentAcknowledged):
            side.acked[event.transfer_id] = event.acknowledged
        elif isinstance(event, TransferSucceeded):
            side.acked.pop(event.transfer_id, None)
            transfer = side.by_tid.pop(event.transfer_id, None)
            if transfer is None:
                return
            waiting = side.pending.get(transfer)
            if waiting is not None:
                waiting.discard(event.transfer_id)
                if not waiting:
                    del side.pending[transfer]
                    self._succeeded(transfer)
        elif isinstance(event, TransferRefusedByPeer):
            side.acked.pop(event.transfer_id, None)
            transfer = side.by_tid.pop(event.transfer_id, None)
            if transfer is not None and not transfer.done:
                side.pending.pop(transfer, None)
                transfer.done = True
                a = transfer.action
                transfer.sender.answer(
                    inp.TransmissionFailed(
                        a.link_id,
                        a.bundle_id,
                        a.transmission,
                        refused=True,
                        acknowledged=event.acknowledged,
                        reason=f"refused by the peer ({event.reason})",
                    )
                )
        elif isinstance(event, IncomingTransferAborted):
            side.incoming.pop(event.transfer_id, None)
        elif isinstance(event, SessionEstablished):
            side.announced = True
            side.node.link_up(self)
            self._start_next(side)
        elif isinstance(event, SessionClosed):
            self._closed(side, event)

    def _on_segment(self, side: _Side, event: SegmentReceived) -> None:
        side.segments += 1
        tid = event.transfer_id
        parts = side.incoming.setdefault(tid, [])
        parts.append(bytes(event.data))
        if not event.end:
            return
        del side.incoming[tid]
        sent = side.peer.by_tid.get(tid)
        now = self.network.scheduler.now
        if sent is None or not side.node.up:  # pragma: no cover - the sender forgot it
            side.session.refuse_transfer(tid, XferRefuseReason.NOT_ACCEPTABLE, now)
            return
        receipt = Transfer(sent.action, sent.direction)
        receipt.pieces = [b"".join(parts)]
        receipt.hops = sent.hops
        side.node.receive(receipt)
        if receipt.accepted:
            side.session.accept_transfer(tid, self.network.scheduler.now)
        else:
            reason = XferRefuseReason.NOT_ACCEPTABLE
            side.session.refuse_transfer(tid, reason, self.network.scheduler.now)

    def _succeeded(self, transfer: Transfer) -> None:
        if transfer.done:
            return
        transfer.done = True
        a = transfer.action
        transfer.sender.answer(inp.TransmissionSucceeded(a.link_id, a.bundle_id, a.transmission))

    def _closed(self, side: _Side, event: SessionClosed) -> None:
        """``side``'s session is over: its transmissions fail, its node hears LinkDown, and
        the connection closes behind the last bytes."""
        side.closed = True
        side.closed_by = event
        side.timer_at = None
        self._flush(side)
        reason = event.description or "session closed"
        if not self.cut_off and not side.dead:
            # the FIN follows the last bytes, retransmissions included
            fin_at = max(self._drained_at(side) + self.model.delay_ms, side.arrives_at)
            self.network.scheduler.at(fin_at, self._fin, side.peer)
        broken: list[tuple[Transfer, int]] = []
        seen: set[int] = set()
        for tid, transfer in side.by_tid.items():
            if id(transfer) not in seen:
                seen.add(id(transfer))
                broken.append((transfer, side.acked.get(tid, 0)))
        side.by_tid.clear()
        side.pending.clear()
        stats = self.network.stats
        for transfer, acknowledged in broken:
            if transfer.done:
                continue
            transfer.done = True
            stats.transfer_aborted(transfer.record, transfer.sender.node_id, False)
            self._fail(transfer, reason, acknowledged)
        while side.queue:
            transfer = side.queue.popleft()
            transfer.done = True
            self._fail(transfer, reason, 0)
        if side.announced:
            side.announced = False
            side.node.link_down(self, reason)
        if side.peer.closed:
            self.up = False
            self.network.link_finished(self, self.opened_at)

    def _fail(self, transfer: Transfer, reason: str, acknowledged: int) -> None:
        a = transfer.action
        kept = 0
        if acknowledged and len(transfer.pieces) == 1 and a.plan.bibe is None:
            try:
                kept = acknowledged_payload(transfer.pieces[0], acknowledged)
            except (DtnError, ValueError):  # pragma: no cover - a piece we rendered ourselves
                kept = 0
        transfer.sender.answer(
            inp.TransmissionFailed(
                a.link_id,
                a.bundle_id,
                a.transmission,
                acknowledged=acknowledged,
                reason=reason,
                payload_acknowledged=kept,
            )
        )

    # -- what the network asks --------------------------------------------------------------

    def send(self, node: SimNode, action: act.Transmit) -> inp.Input | None:
        """Queue ``node``'s Transmit; returns the answer if it fails at once."""
        side = self.sides[node.node_id]
        if side.closed or not side.announced:
            return inp.TransmissionFailed(
                action.link_id, action.bundle_id, action.transmission, reason="link down"
            )
        side.queue.append(Transfer(action, side))
        if not side.busy:
            self._start_next(side)
        return None

    def _start_next(self, side: _Side) -> None:
        """Start the first Transmit of ``side``'s queue that can go."""
        if side.busy or side.closed or not side.session.established:
            return
        scheduler = self.network.scheduler
        now = scheduler.now
        sender = side.node
        stats = self.network.stats
        while side.queue:
            transfer = side.queue.popleft()
            action = transfer.action
            plan = action.plan
            try:
                data = plan.inline if plan.inline is not None else sender.stored(action.bundle_id)
                pieces = render(data, plan, now)
            except (DtnError, ValueError) as exc:
                transfer.done = True
                failure = transfer.failed(f"not sent: {exc}")
                scheduler.at(now, sender.answer_later, (sender.incarnation, failure))
                continue
            transfer.pieces = pieces
            record = self.network.stats.record_of(action.bundle_id)
            if plan.inline is None and record is not None:
                transfer.record = record
                transfer.hops = record.holders.get(sender.node_id, 0) + 1
            tids: set[int] = set()
            try:
                for piece in pieces:
                    tid = side.session.send_bundle(piece, now)
                    tids.add(tid)
                    side.by_tid[tid] = transfer
            except (TransferRefused, LocalProtocolError) as exc:
                for tid in tids:  # pragma: no cover - a later piece too large for the peer
                    side.by_tid.pop(tid, None)
                transfer.done = True
                failure = transfer.failed(f"not sent: {exc}")
                scheduler.at(now, sender.answer_later, (sender.incarnation, failure))
                self._flush(side)
                continue
            stats.transfer_started(transfer.record, sender.node_id, sum(map(len, pieces)))
            side.pending[transfer] = tids
            side.busy = True
            self._flush(side)
            self._arm(side)
            scheduler.at(self._drained_at(side), self._drained, side)
            return

    def _drained(self, side: _Side) -> None:
        side.busy = False
        if not self.cut_off:
            self._start_next(side)

    def terminate(self) -> None:
        """End the sessions cleanly: the active side sends SESS_TERM."""
        if self.cut_off:
            return
        for side in self.sides.values():
            if not side.closed:
                side.session.terminate(SessTermReason.UNKNOWN, self.network.scheduler.now)
                self._pump(side)
                return

    def cut(self, reason: str) -> None:
        """The connection breaks (the contact ended, a node went down)."""
        if self.cut_off:
            return
        self.cut_off = True
        self.up = False
        now = self.network.scheduler.now
        for side in self.sides.values():
            if not side.closed:
                side.session.connection_lost(now)
                session = side.session
                while (event := session.next_event()) is not None:
                    if isinstance(event, SessionClosed):
                        event = SessionClosed(
                            event.reason, event.by_peer, event.clean, reason, event.unfinished
                        )
                    self._on_event(side, event)
                session.data_to_send()

    def counters(self) -> dict[str, int]:
        """XFER_SEGMENTs received, KEEPALIVEs and retransmitted chunks sent by each end, by
        node ID."""
        found: dict[str, int] = {}
        for node_id, side in self.sides.items():
            found[f"{node_id} segments"] = side.segments
            found[f"{node_id} keepalives"] = side.keepalives
            found[f"{node_id} retransmissions"] = side.retransmissions
        return found
