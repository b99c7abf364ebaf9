"""What a TCPCL session reports to its driver: past-tense, immutable events.

Both TCPCL versions report through these classes, so one driver and one engine adapter serve
both. Reason codes are the TCPCLv4 ones (:mod:`dtncloud.tcpcl.codes`); a TCPCLv3 session maps
its own onto them. Reason fields hold a bare ``int`` for private or unassigned codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtncloud.tcpcl.codes import SessTermReason, XferRefuseReason


@dataclass(frozen=True, slots=True)
class ExtensionItem:
    """A session or transfer extension item as it appeared on the wire."""

    type: int
    value: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every session event."""


@dataclass(frozen=True, slots=True)
class ContactEstablished(Event):
    """Both contact headers have been exchanged.

    If ``use_tls`` is true the driver must now run a TLS handshake (as the server when
    ``server_side``) on the connection and then call ``session.tls_established(now)``; the
    session sends and parses nothing more until then. If the handshake fails the driver
    closes the connection and calls ``session.connection_lost(now)``.
    """

    peer_version: int
    use_tls: bool
    server_side: bool


@dataclass(frozen=True, slots=True)
class SessionEstablished(Event):
    """Negotiation is over; transfers may start.

    ``keepalive_s`` is the negotiated interval (0: none). ``peer_segment_mru`` and
    ``peer_transfer_mru`` are the largest segment and transfer the peer accepts.
    """

    peer_node_id: str
    keepalive_s: int
    peer_segment_mru: int
    peer_transfer_mru: int
    tls: bool
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentReceived(Event):
    """One whole data segment of an incoming transfer.

    ``start`` marks the first segment of a transfer and ``end`` the last; ``total_length``
    is the Transfer Length extension's value when the sender gave one (on the start segment
    only). After an ``end`` segment the session holds back the final acknowledgement until
    the driver calls ``accept_transfer(transfer_id, now)`` (the bundle is now safely ours)
    or ``refuse_transfer(transfer_id, reason, now)``.

    ``data`` is ``bytes`` or a read-only ``memoryview`` of the session's receive buffer
    (TCPCLv4 hands out views, to spare copying megabytes; the buffer is not reused while a
    view of it is alive). Take ``bytes(data)`` to keep it in a compact, hashable form.
    """

    transfer_id: int
    data: bytes | memoryview
    start: bool
    end: bool
    total_length: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingTransferAborted(Event):
    """An incoming transfer ended without completing: discard what was received of it.

    ``by_peer`` is false when this side refused it (``reason`` is the refusal sent).
    """

    transfer_id: int
    reason: XferRefuseReason | int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class SegmentAcknowledged(Event):
    """The peer acknowledged ``acknowledged`` leading bytes of our transfer."""

    transfer_id: int
    acknowledged: int


@dataclass(frozen=True, slots=True)
class TransferSucceeded(Event):
    """The peer acknowledged the whole of our transfer: it has taken the bundle over."""

    transfer_id: int
    length: int


@dataclass(frozen=True, slots=True)
class TransferRefusedByPeer(Event):
    """The peer refused our transfer; ``acknowledged`` bytes of it had been acknowledged."""

    transfer_id: int
    reason: XferRefuseReason | int
    acknowledged: int


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """The peer rejected a message we sent (MSG_REJECT)."""

    message_type: int
    reason: int


@dataclass(frozen=True, slots=True)
class PeerMisbehaved(Event):
    """The peer broke the protocol; the session answered (MSG_REJECT, refusal or SESS_TERM)."""

    description: str


@dataclass(frozen=True, slots=True)
class SessionEnding(Event):
    """A SESS_TERM was sent or received: no new transfers; open ones may still finish."""

    reason: SessTermReason | int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class UnfinishedTransfer:
    """An outgoing transfer that was open when the session closed."""

    transfer_id: int
    acknowledged: int
    sent: int
    total_length: int


@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    """The session is over: the driver sends what ``data_to_send()`` still holds and closes.

    ``clean`` is true when both SESS_TERMs were exchanged (or the peer closed after ours);
    ``reason`` is the SESS_TERM reason (``None`` if there was none, e.g. connection lost);
    ``description`` says in words what happened. ``unfinished`` lists our transfers that were
    not fully acknowledged, with how much of each was, so the engine can fragment reactively.
    """

    reason: SessTermReason | int | None
    by_peer: bool
    clean: bool
    description: str
    unfinished: tuple[UnfinishedTransfer, ...] = ()
