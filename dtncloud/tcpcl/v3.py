"""A TCPCLv3 session (RFC 7242), sans-IO, with the API and events of the TCPCLv4 session.

TCPCLv3 is what ION, µD3TN, DTNME, IBR-DTN and HDTN's legacy mode speak. :class:`SessionV3`
takes bytes and ``now`` (integer milliseconds) in and gives events, bytes and a timer deadline
out, exactly like :class:`dtncloud.tcpcl.session.Session`, so one asyncio driver and one engine
adapter serve both versions. Where v3 lacks something v4 has, the session fills the gap:

* **Transfer IDs** are not on the wire: each direction numbers its bundles 0, 1, 2, ... in the
  order their first segment goes out or comes in. A REFUSE_BUNDLE applies to the bundle
  currently being sent (we never start a bundle before the previous one is finished).
* **Acknowledgements are negotiated** (both contact headers must request them). Without them
  an outgoing transfer counts as succeeded as soon as its last segment has been handed to
  :meth:`SessionV3.data_to_send`: :class:`TransferSucceeded` then means "written", not
  "received", and the engine should treat TCPCLv3 links without acks as unconfirmed. With
  them, only an ACK_SEGMENT covering the whole bundle succeeds it. Incoming non-final segments
  are acknowledged at once; the final ACK waits for :meth:`SessionV3.accept_transfer`, and
  acknowledgements of later bundles queue behind it so the peer never mistakes one for another.
* **Refusal is negotiated too** (it also needs acks). Without it, a transfer over our limits
  ends the session with SHUTDOWN (said so in :class:`SessionClosed`), and so does
  :meth:`SessionV3.refuse_transfer` when acks are on, except for COMPLETED: a bundle we already
  hold is acknowledged (true in effect) and its rest discarded unreported. Without acks the
  sender has already written the bundle off as delivered, so refusing just discards it here.
  A REFUSE_BUNDLE from the peer is honoured for our open bundle even if not negotiated.
* **No MRUs** are exchanged: :class:`SessionEstablished` reports the peer's as 2**64-1. Our own
  limits still hold: a transfer over ``transfer_mru`` (by LENGTH message or by bytes) is refused
  NO_RESOURCES; a wire segment longer than ``segment_mru`` is delivered as several
  :class:`SegmentReceived` events of at most ``segment_mru`` bytes (v3 senders such as ION and
  pyd3tn put a whole bundle in one segment and cannot know our limit), so memory stays bounded.
* **No MSG_REJECT**: an unknown message or a malformed field ends the session (bare SHUTDOWN)
  with :class:`PeerMisbehaved`. SHUTDOWN has no reply: after ours we send no more data but wait
  (up to ``ending_timeout_ms``) for acks of what we sent and for the peer to finish the bundle
  it is sending; after the peer's we may finish our bundle. Then the session closes.

Reason codes are mapped onto the TCPCLv4 vocabulary of :mod:`dtncloud.tcpcl.codes`: SHUTDOWN
idle timeout / version mismatch / busy become IDLE_TIMEOUT / VERSION_MISMATCH / BUSY (no or an
unassigned code: UNKNOWN); REFUSE_BUNDLE 0-3 keep their numbers (others: UNKNOWN). Going out,
RESOURCE_EXHAUSTION is sent as busy and reasons v3 lacks are sent without a code.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from dtncloud.errors import ConfigError, LocalProtocolError, RemoteProtocolError, TransferRefused
from dtncloud.tcpcl._queues import EventsAndOutput, OutgoingV3, immutable
from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason, sess_term_reason
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import (
    ContactEstablished,
    IncomingTransferAborted,
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
from dtncloud.tcpcl.v3messages import (
    VERSION,
    AckQueue,
    AckSegment,
    BadMagic,
    ContactHeader,
    DataSegmentHeader,
    Keepalive,
    LengthMessage,
    Negotiated,
    RefuseBundle,
    Shutdown,
    V3ContactFlag,
    VersionMismatch,
    decode_contact_header,
    decode_message,
    encode_contact_header,
    encode_data_segment_header,
    encode_keepalive,
    encode_length,
    encode_shutdown,
    negotiate,
)

__all__ = ["DEFAULT_FLAGS", "SessionStateV3", "SessionV3"]

_U64_MAX = (1 << 64) - 1
#: What we request by default: segment acks, bundle refusal and LENGTH messages.
DEFAULT_FLAGS = (
    V3ContactFlag.REQUEST_ACKS | V3ContactFlag.BUNDLE_REFUSAL | V3ContactFlag.LENGTH_MESSAGES
)

_SHUTDOWN_TO_WIRE: dict[int, int] = {
    SessTermReason.IDLE_TIMEOUT: 0,
    SessTermReason.VERSION_MISMATCH: 1,
    SessTermReason.BUSY: 2,
    SessTermReason.RESOURCE_EXHAUSTION: 2,
}
_SHUTDOWN_FROM_WIRE: dict[int | None, SessTermReason] = {
    0: SessTermReason.IDLE_TIMEOUT,
    1: SessTermReason.VERSION_MISMATCH,
    2: SessTermReason.BUSY,
}
_V3_REFUSE_CODES = frozenset(range(4))
_RESOURCES = SessTermReason.RESOURCE_EXHAUSTION
#: The room get_buffer offers.
_SCRATCH = 256 * 1024


class SessionStateV3(Enum):
    """Where a TCPCLv3 session is. Our contact header goes out at once in every role."""

    CONTACT_WAIT = "contact wait"  # waiting for the peer's contact header
    ESTABLISHED = "established"  # transfers may start
    ENDING = "ending"  # a SHUTDOWN was sent or received; open transfers may finish
    CLOSED = "closed"


class SessionV3(EventsAndOutput):
    """One TCPCLv3 session over one TCP connection (see the module docstring).

    ``flags`` is what our contact header requests (:data:`DEFAULT_FLAGS`); each feature is
    used only if the peer requests it as well. BUNDLE_REFUSAL without REQUEST_ACKS is a
    :class:`~dtncloud.errors.ConfigError` (RFC 7242 section 4.1).
    """

    def __init__(
        self, role: Role, config: SessionConfig, now: int, *, flags: int = DEFAULT_FLAGS
    ) -> None:
        if flags & V3ContactFlag.BUNDLE_REFUSAL and not flags & V3ContactFlag.REQUEST_ACKS:
            raise ConfigError("TCPCLv3 bundle refusal needs segment acknowledgements")
        if not 0 <= flags <= 0xFF:
            raise ConfigError(f"TCPCLv3 contact flags must fit one byte, not {flags}")
        self._role = role
        self._config = config
        self._flags = int(flags)
        self._state = SessionStateV3.CONTACT_WAIT
        super().__init__()
        self._rx = bytearray()
        self._last_sent = now
        self._last_recv = now
        self._contact_deadline = now + config.contact_timeout_ms
        self._ending_deadline = 0
        # Negotiated in the contact header exchange.
        self._peer_contact: ContactHeader | None = None
        self._negotiated = Negotiated(keepalive_s=config.keepalive_s)
        self._keepalive_s = config.keepalive_s
        self._acks = self._refusal = self._lengths = False
        # Shutdown.
        self._shutdown_sent = False
        self._peer_shutdown = False
        self._end_reason: SessTermReason | int | None = None
        self._end_by_peer = False
        self._reconnect_delay_s: int | None = None
        # Outgoing transfers.
        self._next_out_id = 0
        # Transfers started and not yet settled, oldest first. Acks and refusals always
        # concern the oldest; only the newest may still be sending (pipelining).
        self._out_queue: deque[OutgoingV3] = deque()
        self._last_refused: tuple[int, XferRefuseReason | int] | None = None
        # Incoming transfers.
        self._next_in_id = 0
        self._in_id: int | None = None  # the bundle being received (END not yet seen)
        self._in_received = 0
        self._in_total: int | None = None  # from a LENGTH message
        self._next_length: int | None = None
        self._in_skipping = False  # discarding the rest of a bundle we refused
        self._silent = False  # taking in a refused bundle unreported (refusal not negotiated)
        self._skip = 0  # bytes of the current segment to discard
        self._seg_left = -1  # bytes of the current segment still to deliver (-1: none)
        self._seg_end = False
        self._piece_start = False
        self._awaiting: dict[int, None] = {}  # complete bundles awaiting accept/refuse, in order
        self._acks_out = AckQueue()
        self._scratch: bytearray | None = None  # get_buffer's room, once asked for
        self._send(encode_contact_header(self._flags, config.keepalive_s, config.node_id), now)

    # -- properties ----------------------------------------------------------------------------

    @property
    def state(self) -> SessionStateV3:
        """The current state."""
        return self._state

    @property
    def established(self) -> bool:
        """Contact headers exchanged and no SHUTDOWN yet: transfers may start."""
        return self._state is SessionStateV3.ESTABLISHED

    @property
    def closed(self) -> bool:
        """The session is over (a :class:`SessionClosed` event was reported)."""
        return self._state is SessionStateV3.CLOSED

    @property
    def peer_node_id(self) -> str | None:
        """The local EID from the peer's contact header, once received."""
        return None if self._peer_contact is None else self._peer_contact.eid

    @property
    def keepalive_s(self) -> int:
        """The negotiated keepalive interval (our offer until negotiated; 0: none)."""
        return self._keepalive_s

    @property
    def max_segment_size(self) -> int:
        """The largest segment we send (v3 peers announce no limit of their own)."""
        return self._config.max_segment_size

    @property
    def peer_transfer_mru(self) -> int:
        """Always 2**64-1: TCPCLv3 has no transfer MRU."""
        return _U64_MAX

    @property
    def tls(self) -> bool:
        """Always false: TCPCLv3 has no TLS."""
        return False

    @property
    def outgoing_open(self) -> bool:
        """An outgoing transfer is not yet finished (fully acknowledged, or fully sent without acks)."""
        return bool(self._out_queue)

    @property
    def sending(self) -> bool:
        """An outgoing transfer has started but its last segment is not sent yet."""
        return bool(self._out_queue) and self._out_queue[-1].sent < self._out_queue[-1].total

    @property
    def awaiting_acks(self) -> int:
        """How many outgoing transfers are fully sent but not yet fully acknowledged."""
        return len(self._out_queue) - (1 if self.sending else 0)

    @property
    def negotiated(self) -> Negotiated:
        """What both contact headers agreed on (all off until the peer's header arrives)."""
        return self._negotiated

    @property
    def peer_contact(self) -> ContactHeader | None:
        """The peer's contact header (flags with unknown bits as sent), once received."""
        return self._peer_contact

    @property
    def reconnect_delay_s(self) -> int | None:
        """The reconnection delay the peer's SHUTDOWN asked for, if any."""
        return self._reconnect_delay_s

    # -- output --------------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` must next be called (ms), or ``None``."""
        state = self._state
        if state is SessionStateV3.ESTABLISHED:
            if not self._keepalive_s:
                return None
            interval = self._keepalive_s * 1000
            idle = interval * self._config.idle_timeout_factor
            return min(self._last_sent + interval, self._last_recv + idle)
        if state is SessionStateV3.CONTACT_WAIT:
            return self._contact_deadline
        if state is SessionStateV3.ENDING:
            return self._ending_deadline
        return None

    def handle_timer(self, now: int) -> None:
        """Send a due KEEPALIVE, or end the session on a contact, idle or ending timeout."""
        state = self._state
        if state is SessionStateV3.ESTABLISHED and self._keepalive_s:
            interval = self._keepalive_s * 1000
            idle = interval * self._config.idle_timeout_factor
            if now >= self._last_recv + idle:
                self._end_now(SessTermReason.IDLE_TIMEOUT, f"nothing received for {idle} ms", now)
            elif now >= self._last_sent + interval:
                self._send(encode_keepalive(), now)
        elif state is SessionStateV3.CONTACT_WAIT and now >= self._contact_deadline:
            self._end_now(
                SessTermReason.CONTACT_FAILURE,
                f"no contact header within {self._config.contact_timeout_ms} ms",
                now,
            )
        elif state is SessionStateV3.ENDING and now >= self._ending_deadline:
            why = f"ending timed out after {self._config.ending_timeout_ms} ms"
            self._close(self._end_reason, self._end_by_peer, False, why, abort_by_peer=False)

    # -- input ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: int) -> None:
        """Feed bytes from the connection. Never raises for anything the peer sends."""
        if self.closed or not data:
            return
        self._last_recv = now
        rx = self._rx
        rx += data
        pos = 0
        if self._state is SessionStateV3.CONTACT_WAIT:
            pos = self._receive_contact(now)
        if self.established or self._state is SessionStateV3.ENDING:
            pos = self._receive_messages(pos, now)
        if self.closed:
            rx.clear()
        elif pos:
            del rx[:pos]

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable room for received bytes, reported with :meth:`buffer_updated` (the
        ``asyncio.BufferedProtocol`` way; here they are copied in as by :meth:`receive_data`)."""
        if self._scratch is None:
            self._scratch = bytearray(_SCRATCH)
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int, now: int) -> None:
        """``nbytes`` bytes from the peer were written at the start of :meth:`get_buffer`'s
        room. Never raises for anything the peer sends."""
        if self._scratch is not None and nbytes > 0:
            with memoryview(self._scratch) as view:
                self.receive_data(view[:nbytes], now)

    def connection_lost(self, now: int) -> None:
        """The TCP connection closed under us: report :class:`SessionClosed` (once)."""
        if self._state is SessionStateV3.CLOSED:
            return
        if self._shutdown_sent or self._peer_shutdown:
            self._close(
                self._end_reason, self._end_by_peer, True, "connection closed after SHUTDOWN"
            )
        elif self._state is SessionStateV3.CONTACT_WAIT:
            self._close(None, True, False, "connection lost before the peer's contact header")
        else:
            self._close(None, True, False, "connection lost")

    def tls_established(self, now: int) -> None:
        """Never valid: TCPCLv3 has no TLS, so no ContactEstablished asks for it."""
        raise LocalProtocolError("TCPCLv3 has no TLS")

    # -- commands ------------------------------------------------------------------------------

    def start_transfer(self, total_length: int, now: int) -> int:
        """Open an outgoing transfer of ``total_length`` bytes and return its ID.

        Sends a LENGTH message if both sides asked for them. Only when established and the
        previous transfer has been sent in full (it may still await its acknowledgement:
        transfers are pipelined).
        """
        if self._state is not SessionStateV3.ESTABLISHED:
            raise LocalProtocolError(f"cannot start a transfer: session is {self._state.value}")
        if self.sending:
            raise LocalProtocolError(f"transfer {self._out_queue[-1].id} is still being sent")
        if total_length < 1:
            raise LocalProtocolError("a TCPCLv3 transfer carries at least one byte")
        if total_length > _U64_MAX:
            raise TransferRefused(
                f"{total_length} bytes exceed the peer's transfer MRU",
                reason=XferRefuseReason.NO_RESOURCES,
            )
        tid = self._next_out_id
        self._next_out_id += 1
        self._out_queue.append(OutgoingV3(tid, total_length))
        if self._lengths:
            self._send(encode_length(total_length), now)
        return tid

    def send_segment(
        self, transfer_id: int, data: bytes | memoryview, now: int, *, end: bool
    ) -> None:
        """Send the next DATA_SEGMENT of ``transfer_id`` (START on the first, END on the last).

        Raises :class:`~dtncloud.errors.TransferRefused` if the peer refused the transfer and
        :class:`~dtncloud.errors.LocalProtocolError` for an empty or oversized segment, a
        segment that would overshoot the total length (or completes it without ``end``), a
        transfer that is not open, or after our SHUTDOWN.
        """
        data = immutable(data)
        self._check_segment(transfer_id, len(data), end)
        self._queue_segment(len(data), data, now, end=end)

    def send_segment_header(self, transfer_id: int, length: int, now: int, *, end: bool) -> None:
        """Queue the header of the next DATA_SEGMENT of ``transfer_id``, whose ``length`` data
        bytes the driver writes to the connection itself (from a file, with ``sendfile``).

        The driver must write those bytes right after what :meth:`data_to_send` returns now,
        and write nothing :meth:`data_to_send` returns later until they are all out. The
        checks are :meth:`send_segment`'s.
        """
        self._check_segment(transfer_id, length, end)
        self._queue_segment(length, None, now, end=end)

    def send_bundle(self, data: bytes | memoryview, now: int) -> int:
        """Start a transfer and send all of ``data`` in segments of :attr:`max_segment_size`."""
        view = memoryview(immutable(data))
        total = len(view)
        tid = self.start_transfer(total, now)
        size = self.max_segment_size
        for offset in range(0, total, size):
            chunk = view[offset : offset + size]
            last = offset + size >= total
            self._check_segment(tid, len(chunk), last)
            self._queue_segment(len(chunk), chunk, now, end=last)
        return tid

    def accept_transfer(self, transfer_id: int, now: int) -> None:
        """Acknowledge the whole of a received bundle (send its held-back final ACK).

        A no-op once the session is closed; otherwise the transfer must be complete.
        """
        if self._state is SessionStateV3.CLOSED:
            return
        if transfer_id not in self._awaiting:
            raise LocalProtocolError(f"incoming transfer {transfer_id} is not awaiting acceptance")
        del self._awaiting[transfer_id]
        if self._acks:
            self._send(self._acks_out.release(transfer_id), now)
        self._maybe_finish_ending(now)

    def refuse_transfer(self, transfer_id: int, reason: XferRefuseReason, now: int) -> None:
        """Refuse an incoming bundle that is arriving or awaiting acceptance.

        Sends REFUSE_BUNDLE (reasons v3 lacks go out as 0, unknown) if both sides support
        it. Otherwise (see the module docstring) a bundle is discarded unreported when acks are
        off or the reason is COMPLETED, and the session ends with SHUTDOWN in the other cases.
        A no-op once the session is closed.
        """
        if self._state is SessionStateV3.CLOSED:
            return
        if (transfer_id != self._in_id or self._silent) and transfer_id not in self._awaiting:
            raise LocalProtocolError(f"incoming transfer {transfer_id} is not open")
        self._refuse_incoming(transfer_id, reason, now)

    def terminate(self, reason: SessTermReason | int, now: int) -> None:
        """Send SHUTDOWN and end the session once open transfers have settled.

        Before the peer's contact header, or while the peer's SHUTDOWN is being honoured, the
        session closes at once. Does nothing if we already sent SHUTDOWN or are closed.
        """
        state = self._state
        if state is SessionStateV3.CLOSED or self._shutdown_sent:
            return
        reason = sess_term_reason(int(reason))
        if state is SessionStateV3.CONTACT_WAIT:
            self._send_shutdown(reason, now)
            self._close(reason, False, True, "terminated before the contact headers were exchanged")
        elif self._peer_shutdown:
            self._close(self._end_reason, True, True, "terminated after the peer's SHUTDOWN")
        else:
            self._send_shutdown(reason, now)
            self._state = SessionStateV3.ENDING
            self._ending_deadline = now + self._config.ending_timeout_ms
            self._maybe_finish_ending(now)

    # -- receiving -----------------------------------------------------------------------------

    def _receive_contact(self, now: int) -> int:
        try:
            got = decode_contact_header(self._rx)
        except BadMagic as exc:
            self._fail(str(exc), now, shutdown=False)
            return 0
        except VersionMismatch as exc:
            self._send_shutdown(SessTermReason.VERSION_MISMATCH, now)
            self._close(
                SessTermReason.VERSION_MISMATCH,
                False,
                False,
                f"peer speaks TCPCL version {exc.version}; this session speaks {VERSION}",
            )
            return 0
        except RemoteProtocolError as exc:
            self._fail(f"bad contact header: {exc}", now)
            return 0
        if got is None:
            return 0
        header, pos = got
        self._peer_contact = header
        agreed = self._negotiated = negotiate(self._flags, self._config.keepalive_s, header)
        self._acks, self._refusal = agreed.segment_acks, agreed.bundle_refusal
        self._lengths, self._keepalive_s = agreed.length_messages, agreed.keepalive_s
        self._state = SessionStateV3.ESTABLISHED
        self._events.append(ContactEstablished(VERSION, False, self._role is Role.PASSIVE))
        self._events.append(
            SessionEstablished(header.eid, self._keepalive_s, _U64_MAX, _U64_MAX, False)
        )
        return pos

    def _receive_messages(self, pos: int, now: int) -> int:
        rx = self._rx
        mru = self._config.segment_mru
        while self._state is not SessionStateV3.CLOSED:
            avail = len(rx) - pos
            if self._skip:
                step = min(avail, self._skip)
                pos += step
                self._skip -= step
                if self._skip:
                    return pos
                continue
            if self._seg_left >= 0:
                want = min(self._seg_left, mru)
                if avail < want:
                    return pos
                if self._silent:
                    piece = b""
                else:
                    with memoryview(rx) as view:
                        piece = bytes(view[pos : pos + want])
                pos += want
                self._seg_left -= want
                self._deliver(piece, want, now)
                continue
            try:
                got = decode_message(rx, pos)
            except RemoteProtocolError as exc:
                self._fail(str(exc), now)
                return pos
            if got is None:
                return pos
            message, pos = got
            if type(message) is DataSegmentHeader:
                self._on_data_header(message, now)
            elif type(message) is AckSegment:
                self._on_ack(message.length, now)
            elif type(message) is Keepalive:
                pass  # receiving anything already reset the idle timer
            elif type(message) is LengthMessage:
                self._next_length = message.length
            elif type(message) is RefuseBundle:
                self._on_refuse(message.reason, now)
            elif type(message) is Shutdown:
                self._on_shutdown(message, now)
        return pos

    def _on_data_header(self, header: DataSegmentHeader, now: int) -> None:
        if self._peer_shutdown:
            self._fail("DATA_SEGMENT after the peer's own SHUTDOWN", now)
            return
        if header.start:
            if self._in_id is not None:
                # The sender gave up on the bundle it was sending (ION does this after errors).
                self._abort_incoming(XferRefuseReason.UNKNOWN, by_peer=True)
            self._in_skipping = self._silent = False
            self._in_id = self._next_in_id
            self._next_in_id += 1
            self._in_received = 0
            self._in_total, self._next_length = self._next_length, None
        elif self._in_skipping:  # the rest of a bundle we refused, sent before our refusal
            self._skip = header.length
            self._in_skipping = not header.end
            return
        elif self._in_id is None:
            self._fail("DATA_SEGMENT without START while no bundle is being received", now)
            return
        self._piece_start = header.start
        self._seg_left = header.length
        self._seg_end = header.end
        problem = None if self._silent else self._limit_problem(header)
        if problem is not None:
            self._refuse_incoming(self._in_id, problem, now, by_limit=True)

    def _limit_problem(self, header: DataSegmentHeader) -> XferRefuseReason | None:
        """Why the segment just announced cannot be taken (checked before any buffering)."""
        received = self._in_received + header.length
        total = self._in_total
        limit = self._config.transfer_mru
        if header.start and self._shutdown_sent:
            return XferRefuseReason.SESSION_TERMINATING
        if received > limit or (total is not None and total > limit):
            return XferRefuseReason.NO_RESOURCES
        if total is not None and (received > total or (header.end and received != total)):
            return XferRefuseReason.NOT_ACCEPTABLE  # the LENGTH message did not tell the truth
        return None

    def _deliver(self, piece: bytes, size: int, now: int) -> None:
        tid = self._in_id
        assert tid is not None
        last = self._seg_left == 0
        start = self._piece_start
        self._piece_start = False
        end = last and self._seg_end
        self._in_received += size
        silent = self._silent
        if not silent:
            total = self._in_total if start else None
            self._events.append(SegmentReceived(tid, piece, start, end, total))
        if not last:
            return
        self._seg_left = -1
        held = end and not silent  # a silently taken bundle needs no acceptance
        if self._acks:
            self._send(self._acks_out.ack(tid, self._in_received, final=held), now)
        if end:
            self._in_id = None
            self._silent = False
            if held:
                self._awaiting[tid] = None
            self._maybe_finish_ending(now)

    def _on_ack(self, length: int, now: int) -> None:
        out = self._out_queue[0] if self._out_queue else None
        if not self._acks or out is None:
            return  # unsolicited or late acknowledgements are harmless
        if length > out.sent:
            self._fail(f"ACK_SEGMENT for {length} bytes of transfer {out.id}, {out.sent} sent", now)
            return
        if length <= out.acked:
            return
        out.acked = length
        if length == out.total:  # as in TCPCLv4, the final ack is reported as success alone
            self._out_queue.popleft()
            self._events.append(TransferSucceeded(out.id, out.total))
        else:
            self._events.append(SegmentAcknowledged(out.id, length))
        self._maybe_finish_ending(now)

    def _on_refuse(self, code: int, now: int) -> None:
        out = self._out_queue[0] if self._out_queue else None
        if out is None:
            return  # nothing of ours to refuse: a late refusal of a finished bundle
        reason = XferRefuseReason(code) if code in _V3_REFUSE_CODES else XferRefuseReason.UNKNOWN
        self._out_queue.popleft()
        self._last_refused = (out.id, reason)
        self._events.append(TransferRefusedByPeer(out.id, reason, out.acked))
        self._maybe_finish_ending(now)

    def _on_shutdown(self, message: Shutdown, now: int) -> None:
        reason = _SHUTDOWN_FROM_WIRE.get(message.reason, SessTermReason.UNKNOWN)
        self._reconnect_delay_s = message.delay_s
        if self._peer_shutdown:
            return
        self._peer_shutdown = True
        if self._state is SessionStateV3.ESTABLISHED:
            self._state = SessionStateV3.ENDING
            self._ending_deadline = now + self._config.ending_timeout_ms
            self._end_reason, self._end_by_peer = reason, True
            self._events.append(SessionEnding(reason, True))
        # The peer sends no more data segments: a bundle it was sending will never end.
        self._abort_incoming(XferRefuseReason.SESSION_TERMINATING, by_peer=True)
        self._in_skipping = False
        self._maybe_finish_ending(now)

    # -- sending -------------------------------------------------------------------------------

    def _send(self, data: bytes, now: int) -> None:
        if data:
            self._out.append(data)
            self._last_sent = now

    def _check_segment(self, transfer_id: int, length: int, end: bool) -> None:
        if self._state is SessionStateV3.CLOSED:
            raise LocalProtocolError("session is closed")
        refused = self._last_refused
        if refused is not None and refused[0] == transfer_id:
            raise TransferRefused(
                f"peer refused transfer {transfer_id} ({refused[1]!r})", reason=int(refused[1])
            )
        out = self._out_queue[-1] if self._out_queue else None
        if out is None or out.id != transfer_id or out.sent >= out.total:
            raise LocalProtocolError(f"outgoing transfer {transfer_id} is not open")
        if self._shutdown_sent:
            raise LocalProtocolError("SHUTDOWN sent: RFC 7242 allows no more DATA_SEGMENTs")
        if not 0 < length <= self.max_segment_size:
            raise LocalProtocolError(f"segment of {length} bytes: 1..{self.max_segment_size}")
        after = out.sent + length
        if after > out.total:
            raise LocalProtocolError(f"segment overshoots the transfer: {after} > {out.total}")
        if end != (after == out.total):
            raise LocalProtocolError("end=True goes on the segment that completes the transfer")

    def _queue_segment(
        self, length: int, data: bytes | memoryview | None, now: int, *, end: bool
    ) -> None:
        out = self._out_queue[-1]
        self._out.append(encode_data_segment_header(start=out.sent == 0, end=end, length=length))
        if data is not None:
            self._out.append(data)
        self._last_sent = now
        out.sent += length
        if end and not self._acks:
            # Without acknowledgements "handed to the connection" is all we can ever know.
            self._out_queue.pop()
            self._events.append(TransferSucceeded(out.id, out.total))
            self._maybe_finish_ending(now)

    def _refuse_incoming(
        self, tid: int, reason: XferRefuseReason | int, now: int, *, by_limit: bool = False
    ) -> None:
        self._events.append(IncomingTransferAborted(tid, reason, False))
        if not (self._refusal or by_limit) and (
            not self._acks or reason == XferRefuseReason.COMPLETED
        ):
            # Without acks the sender has written the bundle off as delivered anyway; a
            # duplicate we already hold may be acknowledged truthfully. Either way take the
            # rest in unreported and discard it, rather than break the session.
            if tid == self._in_id:
                self._silent = True
            else:
                del self._awaiting[tid]
                if self._acks:
                    self._send(self._acks_out.release(tid), now)
                self._maybe_finish_ending(now)
            return
        if tid == self._in_id:
            self._in_id = None
            if self._seg_left >= 0:  # discard what is left of the current segment
                self._skip = self._seg_left
                self._seg_left = -1
                self._in_skipping = not self._seg_end
            else:
                self._in_skipping = True
        else:
            del self._awaiting[tid]
        if not self._refusal:
            why = f"refused transfer {tid} ({reason!r}) by ending the session: no bundle refusal"
            full = reason == XferRefuseReason.NO_RESOURCES
            self._end_now(_RESOURCES if full else SessTermReason.UNKNOWN, why, now)
            return
        code = int(reason) if reason in _V3_REFUSE_CODES else 0
        self._send(self._acks_out.refuse(tid, code), now)
        self._maybe_finish_ending(now)

    def _abort_incoming(self, reason: XferRefuseReason, *, by_peer: bool) -> None:
        tid = self._in_id
        if tid is None:
            return
        self._in_id = None
        self._seg_left = -1
        self._silent = False
        self._acks_out.drop(tid)
        self._events.append(IncomingTransferAborted(tid, reason, by_peer))

    # -- ending --------------------------------------------------------------------------------

    def _send_shutdown(self, reason: SessTermReason | int, now: int) -> None:
        self._send(encode_shutdown(_SHUTDOWN_TO_WIRE.get(reason)), now)
        self._shutdown_sent = True
        if self._end_reason is None and not self._peer_shutdown:
            self._end_reason, self._end_by_peer = reason, False
            self._events.append(SessionEnding(reason, False))

    def _end_now(self, reason: SessTermReason, description: str, now: int) -> None:
        if not self._shutdown_sent:
            self._send_shutdown(reason, now)
        self._close(reason, False, False, description, abort_by_peer=False)

    def _fail(self, description: str, now: int, *, shutdown: bool = True) -> None:
        self._events.append(PeerMisbehaved(description))
        if shutdown and not self._shutdown_sent:
            self._send_shutdown(SessTermReason.UNKNOWN, now)
        reason = SessTermReason.UNKNOWN if shutdown else None
        self._close(reason, False, False, f"peer misbehaved: {description}", abort_by_peer=False)

    def _busy_ending(self) -> bool:
        """Whether the ending state still has something to wait for."""
        if self._acks and self._awaiting:
            return True  # final acks to send once the bundles are accepted
        if self._in_id is not None:
            return True  # the peer may finish the bundle it is sending (after our SHUTDOWN)
        if not self._out_queue:
            return False
        if self._shutdown_sent:
            # No more data: wait for the acks of what was sent only.
            return self._acks and any(out.acked < out.sent for out in self._out_queue)
        return True  # the peer shut down: we may finish our bundles

    def _maybe_finish_ending(self, now: int) -> None:
        if self._state is SessionStateV3.ENDING and not self._busy_ending():
            who = "the peer" if self._end_by_peer else "us"
            self._close(
                self._end_reason, self._end_by_peer, True, f"SHUTDOWN by {who}, transfers settled"
            )

    def _close(
        self,
        reason: SessTermReason | int | None,
        by_peer: bool,
        clean: bool,
        description: str,
        *,
        abort_by_peer: bool = True,
    ) -> None:
        if self._state is SessionStateV3.CLOSED:
            return
        self._abort_incoming(XferRefuseReason.SESSION_TERMINATING, by_peer=abort_by_peer)
        unfinished = tuple(
            UnfinishedTransfer(out.id, out.acked, out.sent, out.total) for out in self._out_queue
        )
        self._out_queue.clear()
        self._state = SessionStateV3.CLOSED
        self._rx.clear()
        self._acks_out.clear()
        self._awaiting.clear()
        self._skip = 0
        self._events.append(SessionClosed(reason, by_peer, clean, description, unfinished))
