"""A TCPCLv4 session (RFC 9174) as a sans-IO state machine.

Bytes and ``now`` (integer milliseconds) go in through :meth:`Session.receive_data` and the
other inputs; events come out of :meth:`Session.next_event` and bytes out of
:meth:`Session.data_to_send`. A peer that breaks the protocol never makes an input method
raise: the session answers on the wire (MSG_REJECT, XFER_REFUSE or SESS_TERM) and reports a
:class:`~dtncloud.tcpcl.events.PeerMisbehaved` event. Commands raise
:class:`~dtncloud.errors.LocalProtocolError` when the caller misuses them.

Where RFC 9174 leaves room, the choices made here are listed in docs/links.md
("Where the RFCs leave room").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from dtncloud.errors import LocalProtocolError, TransferRefused
from dtncloud.tcpcl import messages as m
from dtncloud.tcpcl._queues import EventsAndOutput
from dtncloud.tcpcl.codes import (
    ContactFlag,
    MessageType,
    MsgRejectReason,
    Role,
    SegmentFlag,
    SessTermFlag,
    SessTermReason,
    TransferExtensionType,
    XferRefuseReason,
    sess_term_reason,
    xfer_refuse_reason,
)
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    ContactEstablished,
    ExtensionItem,
    IncomingTransferAborted,
    MessageRejected,
    PeerMisbehaved,
    SegmentAcknowledged,
    SegmentReceived,
    SessionClosed,
    SessionEnding,
    SessionEstablished,
    TransferRefusedByPeer,
    TransferSucceeded,
    UnfinishedTransfer,
)
from dtncloud.tcpcl.states import (
    PARSING_STATES,
    PRE_SESSION,
    TRANSFER_STATES,
    IncomingTransfer,
    OutgoingTransfer,
    SessionState,
    Trigger,
    next_state,
)

__all__ = ["Session", "SessionState"]

_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_START = SegmentFlag.START.value
_END = SegmentFlag.END.value
_XFER_SEGMENT = MessageType.XFER_SEGMENT.value
_XFER_ACK = MessageType.XFER_ACK.value
_XFER_REFUSE = MessageType.XFER_REFUSE.value
_TRANSFER_LENGTH = TransferExtensionType.TRANSFER_LENGTH.value
_REJECT_REASONS = frozenset(r.value for r in MsgRejectReason)
_MESSAGE_TYPES = frozenset(t.value for t in MessageType)
_NOT_ACCEPTABLE = XferRefuseReason.NOT_ACCEPTABLE
_RECENT_IDS = 64  # how many of the peer's transfer IDs are remembered to catch reuse

_S = SessionState
_Extensions = tuple[ExtensionItem, ...] | None


def _name(reason: int | None) -> str:
    if reason is None:
        return "none"
    return reason.name.lower().replace("_", " ") if hasattr(reason, "name") else str(reason)


class Session(EventsAndOutput):
    """One TCPCLv4 session, on one side of one TCP connection.

    ``role`` says who opened the connection (the active side speaks first), ``config`` what
    we offer and insist on, ``now`` the time in milliseconds. A driver feeds received bytes
    to :meth:`receive_data`, writes out what :meth:`data_to_send` returns before acting on
    events (our contact header must precede a TLS handshake), handles the events from
    :meth:`next_event`, and calls :meth:`handle_timer` once :meth:`get_timer` falls due.
    """

    def __init__(self, role: Role, config: SessionConfig, now: int) -> None:
        self.role = role
        self.config = config
        self._now = now
        self._state = _S.CONTACT_WAIT
        super().__init__()
        self._reader = m.MessageReader(
            max_segment=config.segment_mru, expect_contact=True, on_segment=self._segment_header
        )
        self._handlers: dict[type, Callable[[Any], None]] = {
            m.XferSegment: self._on_segment,
            m.XferAck: self._on_ack,
            m.SkippedSegment: self._on_skipped,
            m.Keepalive: self._on_keepalive,
            m.XferRefuse: self._on_refuse,
            m.SessTerm: self._on_sess_term,
            m.SessInit: self._on_sess_init,
            m.MsgReject: self._on_msg_reject,
            m.ContactHeader: self._on_contact,
            m.BadMessage: self._on_bad_message,
            m.UnknownMessage: self._on_unknown,
            m.BadMagic: self._on_bad_magic,
        }
        self._tls = False
        self._peer_node_id: str | None = None
        self._keepalive_s = 0
        self._keepalive_ms = 0
        self._idle_ms = 0
        self._peer_transfer_mru = 0
        self._max_segment = 0
        self._contact_deadline = now + config.contact_timeout_ms
        self._ending_deadline = 0
        self._last_sent = now
        self._last_received = now
        self._next_transfer_id = 0
        # Our transfers awaiting their final ack, oldest first; only the last may be sending.
        self._outgoing: dict[int, OutgoingTransfer] = {}
        self._sending: OutgoingTransfer | None = None
        self._refused_out: dict[int, XferRefuseReason | int] = {}  # recent refusals
        self._incoming: IncomingTransfer | None = None
        self._awaiting_accept: dict[int, tuple[int, int]] = {}
        self._refused_in: tuple[int, int] | None = None
        self._recent_in: deque[int] = deque(maxlen=_RECENT_IDS)
        self._term_sent = False
        self._term_received = False
        self._term_reason: SessTermReason | int | None = None
        self._peer_version: int | None = None
        self._term_by_peer = False
        self._note = ""  # why we ended the session, for SessionClosed.description
        if role is Role.ACTIVE:
            self._send(self._contact_header())

    # --- properties -------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        """The current state (see :mod:`dtncloud.tcpcl.states`)."""
        return self._state

    @property
    def established(self) -> bool:
        """Whether the session is established and new transfers may start."""
        return self._state is _S.ESTABLISHED

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._state is _S.CLOSED

    @property
    def peer_node_id(self) -> str | None:
        """The node ID from the peer's SESS_INIT; None before it or if not disclosed."""
        return self._peer_node_id or None

    @property
    def keepalive_s(self) -> int:
        """The negotiated keepalive interval in seconds (0: none, or not negotiated yet)."""
        return self._keepalive_s

    @property
    def max_segment_size(self) -> int:
        """The largest segment we may send (0 until the session is established)."""
        return self._max_segment

    @property
    def peer_transfer_mru(self) -> int:
        """The largest transfer the peer accepts (0 until the session is established)."""
        return self._peer_transfer_mru

    @property
    def tls(self) -> bool:
        """Whether the session runs over TLS."""
        return self._tls

    @property
    def peer_version(self) -> int | None:
        """The version in the peer's contact header, once received (3 means: retry as v3)."""
        return self._peer_version

    @property
    def outgoing_open(self) -> bool:
        """Whether one of our transfers awaits its final acknowledgement."""
        return bool(self._outgoing)

    @property
    def sending(self) -> bool:
        """Whether one of our transfers still has segments to send (no new one may start)."""
        return self._sending is not None

    # --- output -----------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self._out.append(data)
        self._last_sent = self._now

    def _contact_header(self) -> bytes:
        flags = ContactFlag.CAN_TLS if self.config.can_tls else 0
        return m.ContactHeader(m.VERSION, flags).encode()

    def _move(self, trigger: Trigger) -> None:
        self._state = next_state(self._state, trigger)

    # --- input ------------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview, now: int) -> None:
        """Take bytes from the peer; never raises because of what the peer sent."""
        if self._state is _S.CLOSED or not data:
            return
        self._now = now
        self._last_received = now
        self._reader.feed(data)
        self._pump()

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable room (never empty) where the driver may put received bytes itself, then
        report them with :meth:`buffer_updated`: the copy-free way of :meth:`receive_data`,
        shaped after ``asyncio.BufferedProtocol``.

        Segment data received this way reaches :class:`SegmentReceived` without being copied.
        """
        return self._reader.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int, now: int) -> None:
        """``nbytes`` bytes from the peer were written at the start of :meth:`get_buffer`'s
        room; never raises because of what the peer sent."""
        if self._state is _S.CLOSED or nbytes <= 0:
            return
        self._now = now
        self._last_received = now
        self._reader.buffer_updated(nbytes)
        self._pump()

    def _pump(self) -> None:
        reader = self._reader
        handlers = self._handlers
        while self._state in PARSING_STATES:
            item = reader.next()
            if item is None:
                return
            handlers[type(item)](item)
        if self._state is _S.TLS_HANDSHAKE and reader.buffered:
            self._events.append(PeerMisbehaved("data before the TLS handshake"))
            self._close("the peer sent plain data where TLS was agreed")

    def connection_lost(self, now: int) -> None:
        """The connection closed under us: report SessionClosed (once)."""
        if self._state is _S.CLOSED:
            return
        self._now = now
        note = "connection closed after SESS_TERM" if self._term_sent else "connection lost"
        self._close(note, clean=self._term_sent, by_peer=True)

    def tls_established(self, now: int) -> None:
        """The driver finished the TLS handshake that ContactEstablished asked for."""
        if self._state is _S.CLOSED:
            return
        if self._state is not _S.TLS_HANDSHAKE:
            raise LocalProtocolError(f"no TLS handshake is expected in state {self._state.value}")
        self._now = now
        self._tls = True
        self._move(Trigger.TLS)
        self._begin_sess_init()

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` is next needed (ms), or None."""
        state = self._state
        if state is _S.ESTABLISHED:
            if not self._keepalive_ms:
                return None
            send_at = self._last_sent + self._keepalive_ms
            idle_at = self._last_received + self._idle_ms
            return send_at if send_at < idle_at else idle_at
        if state is _S.ENDING:
            if self._keepalive_ms:
                return min(self._ending_deadline, self._last_sent + self._keepalive_ms)
            return self._ending_deadline
        if state is _S.CLOSED:
            return None
        return self._contact_deadline

    def handle_timer(self, now: int) -> None:
        """Send keepalives and enforce the contact, idle and ending timeouts due at ``now``."""
        state = self._state
        if state is _S.CLOSED:
            return
        self._now = now
        if state in PRE_SESSION:
            if now < self._contact_deadline:
                return
            if state is _S.SESS_INIT_WAIT:
                self._note = "no SESS_INIT from the peer in time"
                self._start_ending(SessTermReason.CONTACT_FAILURE)
            elif state is _S.CONTACT_WAIT:
                self._close("no contact header from the peer in time")
            else:
                self._close("the TLS handshake took too long")
            return
        if state is _S.ENDING and now >= self._ending_deadline:
            self._close(
                "the session did not end in time", abort=XferRefuseReason.SESSION_TERMINATING
            )
            return
        if not self._keepalive_ms:
            return
        if state is _S.ESTABLISHED and now >= self._last_received + self._idle_ms:
            self._note = "nothing received for too long"
            self._start_ending(SessTermReason.IDLE_TIMEOUT)
            # A silent peer will hardly answer: give it one keepalive interval, not the
            # full ending timeout, before closing.
            self._ending_deadline = min(self._ending_deadline, now + self._keepalive_ms)
        if now >= self._last_sent + self._keepalive_ms:
            self._send(m.KEEPALIVE_BYTES)

    # --- contact header and SESS_INIT -------------------------------------------------------
    def _on_bad_magic(self, item: m.BadMagic) -> None:
        self._events.append(PeerMisbehaved(f"not a TCPCL contact header: {item.data.hex()}"))
        self._close("the peer does not speak TCPCL (bad magic)")

    def _on_contact(self, header: m.ContactHeader) -> None:
        passive = self.role is Role.PASSIVE
        self._peer_version = header.version
        if header.version != m.VERSION:
            if passive:
                self._send(self._contact_header())
                self._send(m.SessTerm(0, SessTermReason.VERSION_MISMATCH).encode())
                self._term_sent = True
            # Reported as a version mismatch on both sides, so a driver can fall back to v3.
            self._term_reason = SessTermReason.VERSION_MISMATCH
            self._close(f"the peer speaks TCPCL version {header.version}")
            return
        if passive:
            self._send(self._contact_header())
        use_tls = self.config.can_tls and bool(header.flags & ContactFlag.CAN_TLS)
        self._events.append(ContactEstablished(header.version, use_tls, passive))
        if self.config.require_tls and not use_tls:
            self._note = "TLS is required but the peer cannot do it"
            self._start_ending(SessTermReason.CONTACT_FAILURE)
        elif use_tls:
            self._move(Trigger.CONTACT_TLS)
        else:
            self._move(Trigger.CONTACT)
            self._begin_sess_init()

    def _begin_sess_init(self) -> None:
        self._contact_deadline = self._now + self.config.contact_timeout_ms
        if self.role is Role.ACTIVE:
            self._send(self._sess_init())

    def _sess_init(self) -> bytes:
        cfg = self.config
        return m.SessInit(cfg.keepalive_s, cfg.segment_mru, cfg.transfer_mru, cfg.node_id).encode()

    def _on_sess_init(self, msg: m.SessInit) -> None:
        if self._state is _S.ENDING and self._peer_node_id is None:
            return  # it crossed our SESS_TERM: too late, but no fault of the peer
        if self._state is not _S.SESS_INIT_WAIT:
            self._unexpected(MessageType.SESS_INIT, "a second SESS_INIT")
            return
        # No session extension is defined, so every critical one is unknown to us.
        critical = [item for item in msg.extensions if item.critical]
        if critical:
            self._note = f"the peer requires unknown session extension 0x{critical[0].type:04x}"
            self._start_ending(SessTermReason.CONTACT_FAILURE)
            return
        if not msg.segment_mru or not msg.transfer_mru:  # nothing could ever be sent
            self._note = "the peer's SESS_INIT announces an MRU of 0"
            self._start_ending(SessTermReason.CONTACT_FAILURE)
            return
        if self.role is Role.PASSIVE:
            self._send(self._sess_init())
        cfg = self.config
        self._keepalive_s = min(cfg.keepalive_s, msg.keepalive)
        self._keepalive_ms = self._keepalive_s * 1000
        self._idle_ms = self._keepalive_ms * cfg.idle_timeout_factor
        seg_mru, xfer_mru = msg.segment_mru, msg.transfer_mru
        self._peer_transfer_mru = xfer_mru
        self._max_segment = min(seg_mru, cfg.max_segment_size)
        self._peer_node_id = msg.node_id
        self._last_received = self._now
        self._move(Trigger.SESS_INIT)
        self._events.append(
            SessionEstablished(
                msg.node_id, self._keepalive_s, seg_mru, xfer_mru, self._tls, msg.extensions
            )
        )

    def _on_bad_message(self, item: m.BadMessage) -> None:
        if self._state is _S.ENDING and self._peer_node_id is None:
            return
        if self._state is not _S.SESS_INIT_WAIT:
            self._unexpected(item.message_type, f"a second SESS_INIT ({item.description})")
            return
        self._events.append(PeerMisbehaved(f"invalid SESS_INIT: {item.description}"))
        self._note = f"invalid SESS_INIT: {item.description}"
        self._start_ending(SessTermReason.CONTACT_FAILURE)

    # --- other messages ---------------------------------------------------------------------
    def _unexpected(self, kind: int, what: str) -> None:
        self._events.append(PeerMisbehaved(f"unexpected {what} in state {self._state.value}"))
        self._send(m.MsgReject(MsgRejectReason.UNEXPECTED, kind).encode())

    def _on_unknown(self, item: m.UnknownMessage) -> None:
        kind = item.message_type
        self._events.append(PeerMisbehaved(f"unknown message type 0x{kind:02x}"))
        self._send(m.MsgReject(MsgRejectReason.TYPE_UNKNOWN, kind).encode())
        self._close(f"the peer sent unknown message type 0x{kind:02x}")

    def _on_keepalive(self, msg: m.Keepalive) -> None:
        if self._state is _S.SESS_INIT_WAIT:
            self._unexpected(MessageType.KEEPALIVE, "KEEPALIVE")

    def _on_msg_reject(self, msg: m.MsgReject) -> None:
        reason, kind = msg.reason, msg.rejected_type
        if reason not in _REJECT_REASONS and reason in _MESSAGE_TYPES and kind in _REJECT_REASONS:
            reason, kind = kind, reason  # dtn-demo-agent's field order
        self._events.append(MessageRejected(kind, reason))

    def _on_sess_term(self, msg: m.SessTerm) -> None:
        if self._term_received:
            self._unexpected(MessageType.SESS_TERM, "second SESS_TERM")
            return
        self._term_received = True
        if not self._term_sent:
            reason = sess_term_reason(msg.reason)
            self._send(m.SessTerm(SessTermFlag.REPLY, msg.reason).encode())
            self._term_sent = True
            self._term_reason = reason
            self._term_by_peer = True
            self._ending_deadline = self._now + self.config.ending_timeout_ms
            self._move(Trigger.TERMINATE)
            self._events.append(SessionEnding(reason, by_peer=True))
        self._maybe_finish()

    # --- ending -----------------------------------------------------------------------------
    def _start_ending(self, reason: SessTermReason | int) -> None:
        """Send SESS_TERM on our initiative and enter the ending state."""
        self._send(m.SessTerm(0, reason).encode())
        self._term_sent = True
        self._term_reason = reason
        self._term_by_peer = False
        self._ending_deadline = self._now + self.config.ending_timeout_ms
        self._move(Trigger.TERMINATE)
        self._events.append(SessionEnding(reason, by_peer=False))

    def _maybe_finish(self) -> None:
        if (
            self._state is _S.ENDING
            and self._term_received
            and not self._outgoing
            and self._incoming is None
            and not self._awaiting_accept
        ):
            self._close("", clean=True)

    def _close(
        self,
        note: str,
        *,
        clean: bool = False,
        by_peer: bool = False,
        abort: XferRefuseReason = XferRefuseReason.UNKNOWN,
    ) -> None:
        """Enter CLOSED and report it (with what was left unfinished).

        ``by_peer``: the peer ended the session (it closed the connection); overridden by
        whoever sent the first SESS_TERM, if there was one.
        """
        incoming = self._incoming
        if incoming is not None:
            # Only a lost connection takes a transfer from us; timeouts are our decision.
            self._incoming = None
            self._events.append(IncomingTransferAborted(incoming.id, abort, by_peer=by_peer))
        if self._term_sent or self._term_received:
            by_peer = self._term_by_peer
        unfinished = tuple(
            UnfinishedTransfer(out.id, out.acked, out.sent, out.total)
            for out in self._outgoing.values()
        )
        self._outgoing = {}
        self._sending = None
        self._move(Trigger.CLOSE)
        self._reader.close()
        words = [note, self._note]
        if self._term_sent or self._term_received:
            who = "the peer" if self._term_by_peer else "us"
            words.append(f"SESS_TERM {_name(self._term_reason)} from {who}")
        description = "; ".join(word for word in words if word)
        self._events.append(
            SessionClosed(self._term_reason, by_peer, clean, description, unfinished)
        )

    # --- incoming transfers -----------------------------------------------------------------
    def _segment_header(
        self, flags: int, transfer_id: int, length: int | None, extensions: _Extensions
    ) -> bool:
        """Decide, before any of its data is buffered, whether to take a segment."""
        if self._state not in TRANSFER_STATES:
            self._unexpected(_XFER_SEGMENT, "XFER_SEGMENT")
            return False
        if flags & _START:
            return self._start_incoming(flags, transfer_id, length, extensions)
        incoming = self._incoming
        if incoming is None or incoming.id != transfer_id:
            refused = self._refused_in
            if refused is not None and refused[0] == transfer_id:
                # A late segment of a transfer we refused: refuse it again.
                self._out.append(m.REFUSE.pack(_XFER_REFUSE, refused[1], transfer_id))
                return False
            problem = f"segment without START for transfer {transfer_id}, which is not open"
            self._refuse_in(transfer_id, _NOT_ACCEPTABLE, problem)
            return False
        assert length is not None  # only START segments can have unreadable extensions
        return self._check_segment(incoming, flags, length)

    def _start_incoming(
        self, flags: int, transfer_id: int, length: int | None, extensions: _Extensions
    ) -> bool:
        previous = self._incoming
        if previous is not None:
            self._incoming = None
            if previous.id != transfer_id:
                problem = f"transfer {transfer_id} started before transfer {previous.id} ended"
                self._refuse_in(previous.id, _NOT_ACCEPTABLE, problem)
        if transfer_id in self._recent_in or transfer_id in self._awaiting_accept:
            self._refuse_in(transfer_id, _NOT_ACCEPTABLE, f"transfer ID {transfer_id} reused")
            return False
        self._recent_in.append(transfer_id)
        if self._state is _S.ENDING:
            self._refuse_in(transfer_id, XferRefuseReason.SESSION_TERMINATING)
            return False
        if extensions is None or length is None:
            fault = None if length is None else "malformed transfer extension items"
            self._refuse_in(transfer_id, XferRefuseReason.EXTENSION_FAILURE, fault)
            return False
        total = None
        for item in extensions:
            if item.type == _TRANSFER_LENGTH:
                if total is not None or len(item.value) != 8:
                    problem = "invalid or repeated Transfer Length extension"
                    self._refuse_in(transfer_id, _NOT_ACCEPTABLE, problem)
                    return False
                total = int.from_bytes(item.value, "big")
            elif item.critical:
                self._refuse_in(transfer_id, XferRefuseReason.EXTENSION_FAILURE)
                return False
        if total is not None and total > self.config.transfer_mru:
            problem = f"transfer of {total} bytes exceeds our transfer MRU"
            self._refuse_in(transfer_id, XferRefuseReason.NO_RESOURCES, problem)
            return False
        incoming = IncomingTransfer(transfer_id, total)
        self._incoming = incoming
        return self._check_segment(incoming, flags, length)

    def _check_segment(self, incoming: IncomingTransfer, flags: int, length: int) -> bool:
        received = incoming.received + length
        config = self.config
        if length > config.segment_mru:
            problem = f"segment of {length} bytes exceeds our segment MRU"
            self._refuse_in(incoming.id, _NOT_ACCEPTABLE, problem)
            return False
        if received > config.transfer_mru:
            problem = f"transfer of over {received - 1} bytes exceeds our transfer MRU"
            self._refuse_in(incoming.id, XferRefuseReason.NO_RESOURCES, problem)
            return False
        total = incoming.total
        if total is not None and (received > total or (flags & _END and received != total)):
            problem = f"transfer of {received} bytes or more, but Transfer Length says {total}"
            self._refuse_in(incoming.id, _NOT_ACCEPTABLE, problem)
            return False
        return True

    def _refuse_in(
        self, transfer_id: int, reason: XferRefuseReason, problem: str | None = None
    ) -> None:
        """Refuse an incoming transfer on the session's own initiative."""
        if problem is not None:
            self._events.append(PeerMisbehaved(problem))
        self._send(m.REFUSE.pack(_XFER_REFUSE, reason, transfer_id))
        self._refused_in = (transfer_id, reason)
        incoming = self._incoming
        if incoming is not None and incoming.id == transfer_id:
            self._incoming = None
        self._events.append(IncomingTransferAborted(transfer_id, reason, by_peer=False))

    def _on_skipped(self, item: m.SkippedSegment) -> None:
        # The refusal (or MSG_REJECT) went out when the header was read.
        self._maybe_finish()

    def _on_segment(self, msg: m.XferSegment) -> None:
        incoming = self._incoming
        tid = msg.transfer_id
        if incoming is None or incoming.id != tid:  # pragma: no cover - _segment_header took it
            return
        flags = msg.flags
        data = msg.data
        received = incoming.received + len(data)
        incoming.received = received
        start = bool(flags & _START)
        end = bool(flags & _END)
        self._events.append(
            SegmentReceived(tid, data, start, end, incoming.total if start else None)
        )
        if end:
            self._incoming = None
            self._awaiting_accept[tid] = (flags, received)
            self._reader.trim()
        else:
            self._out.append(m.ACK.pack(_XFER_ACK, flags, tid, received))
            self._last_sent = self._now

    def accept_transfer(self, transfer_id: int, now: int) -> None:
        """Send the held-back final XFER_ACK: the received bundle is now ours."""
        if self._state is _S.CLOSED:
            return  # too late; the peer will retransmit
        held = self._awaiting_accept.pop(transfer_id, None)
        if held is None:
            raise LocalProtocolError(f"transfer {transfer_id} is not awaiting acceptance")
        self._now = now
        self._send(m.ACK.pack(_XFER_ACK, held[0], transfer_id, held[1]))
        self._maybe_finish()

    def refuse_transfer(self, transfer_id: int, reason: XferRefuseReason, now: int) -> None:
        """Refuse an incoming transfer (open, or complete and awaiting acceptance)."""
        if self._state is _S.CLOSED:
            return
        incoming = self._incoming
        if self._awaiting_accept.pop(transfer_id, None) is None:
            if incoming is None or incoming.id != transfer_id:
                raise LocalProtocolError(f"transfer {transfer_id} is not open")
            self._incoming = None
        self._now = now
        self._send(m.REFUSE.pack(_XFER_REFUSE, reason, transfer_id))
        self._refused_in = (transfer_id, reason)
        self._maybe_finish()

    # --- outgoing transfers -----------------------------------------------------------------
    def _on_ack(self, msg: m.XferAck) -> None:
        if self._state not in TRANSFER_STATES:
            self._unexpected(_XFER_ACK, "XFER_ACK")
            return
        tid = msg.transfer_id
        out = self._outgoing.get(tid)
        if out is None:
            if tid not in self._refused_out:
                self._unexpected(_XFER_ACK, f"XFER_ACK for transfer {tid}, which is not open")
            return
        length = msg.length
        if length < out.acked or length > out.sent:
            self._unexpected(
                _XFER_ACK, f"XFER_ACK of {length} bytes ({out.acked} acked, {out.sent} sent)"
            )
            return
        out.acked = length
        out.acks += 1
        if out.end_sent and length == out.total and (msg.flags & _END or out.acks >= out.segments):
            del self._outgoing[tid]
            self._events.append(TransferSucceeded(tid, length))
            self._maybe_finish()
        else:
            self._events.append(SegmentAcknowledged(tid, length))

    def _on_refuse(self, msg: m.XferRefuse) -> None:
        if self._state not in TRANSFER_STATES:
            self._unexpected(_XFER_REFUSE, "XFER_REFUSE")
            return
        tid = msg.transfer_id
        out = self._outgoing.pop(tid, None)
        if out is not None:
            reason = xfer_refuse_reason(msg.reason)
            if out is self._sending:
                self._sending = None
            refused = self._refused_out
            refused[tid] = reason
            if len(refused) > _RECENT_IDS:
                del refused[next(iter(refused))]
            self._events.append(TransferRefusedByPeer(tid, reason, out.acked))
            self._maybe_finish()
        elif tid not in self._refused_out:
            self._unexpected(_XFER_REFUSE, f"XFER_REFUSE for transfer {tid}, which is not open")
        # else: the peer refusing the late segments of a transfer it already refused

    def start_transfer(self, total_length: int, now: int) -> int:
        """Open an outgoing transfer of ``total_length`` bytes and return its ID.

        Only when established and no other transfer of ours is still being sent (earlier
        ones may still await their final acknowledgement: transfers are pipelined).
        """
        if self._state is not _S.ESTABLISHED:
            raise LocalProtocolError(f"cannot start a transfer in state {self._state.value}")
        if self._sending is not None:
            raise LocalProtocolError(f"transfer {self._sending.id} is still being sent")
        if total_length < 0:
            raise LocalProtocolError("a transfer cannot have a negative length")
        if total_length > self._peer_transfer_mru or (total_length and not self._max_segment):
            raise TransferRefused(
                f"{total_length} bytes exceed the peer's transfer MRU {self._peer_transfer_mru}",
                reason=XferRefuseReason.NO_RESOURCES,
            )
        self._now = now
        tid = self._next_transfer_id
        if tid > _U64_MAX:
            self._note = "transfer IDs exhausted"
            self._start_ending(SessTermReason.RESOURCE_EXHAUSTION)
            raise LocalProtocolError("transfer IDs are exhausted; the session is ending")
        self._next_transfer_id = tid + 1
        self._sending = self._outgoing[tid] = OutgoingTransfer(tid, total_length)
        return tid

    def send_segment(
        self, transfer_id: int, data: bytes | memoryview, now: int, *, end: bool
    ) -> None:
        """Queue one XFER_SEGMENT of the open transfer ``transfer_id``."""
        if type(data) is not bytes and not (isinstance(data, memoryview) and data.readonly):
            data = bytes(data)  # the caller may reuse a mutable buffer
        self._queue_segment(transfer_id, len(data), data, now, end)

    def send_segment_header(self, transfer_id: int, length: int, now: int, *, end: bool) -> None:
        """Queue the header of the next XFER_SEGMENT of ``transfer_id``, whose ``length`` data
        bytes the driver writes to the connection itself (from a file, with ``sendfile``).

        The driver must write those bytes right after what :meth:`data_to_send` returns now,
        and write nothing :meth:`data_to_send` returns later until they are all out.
        """
        self._queue_segment(transfer_id, length, None, now, end)

    def _queue_segment(
        self, transfer_id: int, size: int, data: bytes | memoryview | None, now: int, end: bool
    ) -> None:
        out = self._sending
        if out is None or out.id != transfer_id:
            refused = self._refused_out.get(transfer_id)
            if refused is not None:
                raise TransferRefused(
                    f"the peer refused transfer {transfer_id}", reason=int(refused)
                )
            raise LocalProtocolError(f"transfer {transfer_id} is not being sent")
        if size > self._max_segment or size < 0:
            raise LocalProtocolError(f"segment of {size} bytes exceeds {self._max_segment}")
        sent = out.sent + size
        if sent > out.total or (end and sent != out.total):
            raise LocalProtocolError(f"segments must add up to {out.total} bytes, not {sent}")
        if not out.segments:
            if end:
                head = m.SEGMENT_START_HEAD.pack(_XFER_SEGMENT, _START | _END, transfer_id, 0, size)
            else:
                head = m.SEGMENT_LENGTH_HEAD.pack(
                    _XFER_SEGMENT, _START, transfer_id, 13, 0, _TRANSFER_LENGTH, 8, out.total, size
                )
        else:
            head = m.SEGMENT_HEAD.pack(_XFER_SEGMENT, _END if end else 0, transfer_id, size)
        self._now = now
        self._out.append(head)
        if size and data is not None:
            self._out.append(data)
        self._last_sent = now
        out.sent = sent
        out.segments += 1
        if end:
            out.end_sent = True
            self._sending = None

    def send_bundle(self, data: bytes | memoryview, now: int) -> int:
        """Start a transfer of ``data`` and queue all of its segments; returns its ID."""
        size = len(data)
        tid = self.start_transfer(size, now)
        step = self._max_segment
        if size <= step:
            self.send_segment(tid, data, now, end=True)
            return tid
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        for offset in range(0, size, step):
            self.send_segment(tid, view[offset : offset + step], now, end=offset + step >= size)
        return tid

    def terminate(self, reason: SessTermReason | int, now: int) -> None:
        """End the session: SESS_TERM, then the ending state (no-op if already ending)."""
        if self._state is _S.CLOSED or self._term_sent:
            return
        self._now = now
        reason = sess_term_reason(int(reason))
        if self._state in (_S.CONTACT_WAIT, _S.TLS_HANDSHAKE):
            self._close(f"terminated ({_name(reason)}) before the session was set up")
            return
        self._note = "terminated locally"
        self._start_ending(reason)
