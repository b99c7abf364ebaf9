"""The states of a TCPCLv4 session and the transitions between them, as data.

Also the small records a session keeps per open transfer.

:class:`~dtncloud.tcpcl.session.Session` changes state only through :func:`next_state`, so
this table is the complete list of what can happen (RFC 9174 section 3.3, simplified):

    CONTACT_WAIT --contact------------------------> SESS_INIT_WAIT --sess_init--> ESTABLISHED
      |   |                                              ^    |                          |
      |   +--contact_tls--> TLS_HANDSHAKE ----tls--------+    +--terminate--+            |
      |                                                                     v            |
      +--terminate (TLS required, not agreed)------------------------->  ENDING <-terminate-+
                                                                            |
                                                                   close -> CLOSED

Every state but CLOSED can also ``close`` directly (connection lost, timeouts, a peer that
is not speaking TCPCLv4). ENDING is entered when a SESS_TERM is sent or received; it lasts
until both SESS_TERMs have been exchanged and no transfer is open.
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType


class SessionState(Enum):
    """Where a session is in its life."""

    #: Waiting for the peer's contact header (the active side has sent its own).
    CONTACT_WAIT = "contact-wait"
    #: Contact headers exchanged with TLS agreed: the driver runs the TLS handshake.
    TLS_HANDSHAKE = "tls-handshake"
    #: Contact (and TLS) done; SESS_INIT messages are being exchanged.
    SESS_INIT_WAIT = "sess-init-wait"
    #: Both SESS_INITs exchanged: transfers may run.
    ESTABLISHED = "established"
    #: A SESS_TERM was sent or received: open transfers may finish, no new ones start.
    ENDING = "ending"
    #: The session is over; the driver closes the connection.
    CLOSED = "closed"


class Trigger(Enum):
    """What moves a session from one state to the next."""

    CONTACT = "contact"  # contact headers exchanged, no TLS
    CONTACT_TLS = "contact-tls"  # contact headers exchanged, TLS agreed
    TLS = "tls"  # the driver finished the TLS handshake
    SESS_INIT = "sess-init"  # both SESS_INITs exchanged and acceptable
    TERMINATE = "terminate"  # a SESS_TERM was sent or received
    CLOSE = "close"  # the session is over, cleanly or not


_S = SessionState
_T = Trigger

#: (state, trigger) -> next state. A pair that is not here is a bug in the session.
TRANSITIONS: MappingProxyType[tuple[SessionState, Trigger], SessionState] = MappingProxyType(
    {
        (_S.CONTACT_WAIT, _T.CONTACT): _S.SESS_INIT_WAIT,
        (_S.CONTACT_WAIT, _T.CONTACT_TLS): _S.TLS_HANDSHAKE,
        (_S.CONTACT_WAIT, _T.TERMINATE): _S.ENDING,
        (_S.CONTACT_WAIT, _T.CLOSE): _S.CLOSED,
        (_S.TLS_HANDSHAKE, _T.TLS): _S.SESS_INIT_WAIT,
        (_S.TLS_HANDSHAKE, _T.CLOSE): _S.CLOSED,
        (_S.SESS_INIT_WAIT, _T.SESS_INIT): _S.ESTABLISHED,
        (_S.SESS_INIT_WAIT, _T.TERMINATE): _S.ENDING,
        (_S.SESS_INIT_WAIT, _T.CLOSE): _S.CLOSED,
        (_S.ESTABLISHED, _T.TERMINATE): _S.ENDING,
        (_S.ESTABLISHED, _T.CLOSE): _S.CLOSED,
        (_S.ENDING, _T.CLOSE): _S.CLOSED,
    }
)


def next_state(state: SessionState, trigger: Trigger) -> SessionState:
    """The state ``trigger`` leads to from ``state``; KeyError if the table has no such move."""
    return TRANSITIONS[state, trigger]


class OutgoingTransfer:
    """The sender's bookkeeping of one open transfer."""

    __slots__ = ("acked", "acks", "end_sent", "id", "segments", "sent", "total")

    def __init__(self, transfer_id: int, total: int) -> None:
        self.id = transfer_id
        self.total = total
        self.sent = 0  # bytes queued
        self.acked = 0  # bytes acknowledged (cumulative)
        self.segments = 0
        self.acks = 0
        self.end_sent = False


class IncomingTransfer:
    """The receiver's bookkeeping of a transfer whose END segment has not arrived yet."""

    __slots__ = ("id", "received", "total")

    def __init__(self, transfer_id: int, total: int | None) -> None:
        self.id = transfer_id
        self.total = total  # from the Transfer Length extension, if any
        self.received = 0


#: States before the session is established (contact headers, TLS, SESS_INIT).
PRE_SESSION = frozenset(
    {SessionState.CONTACT_WAIT, SessionState.TLS_HANDSHAKE, SessionState.SESS_INIT_WAIT}
)
#: States in which transfers run.
TRANSFER_STATES = frozenset({SessionState.ESTABLISHED, SessionState.ENDING})
#: States in which received bytes are parsed as messages.
PARSING_STATES = frozenset(
    {
        SessionState.CONTACT_WAIT,
        SessionState.SESS_INIT_WAIT,
        SessionState.ESTABLISHED,
        SessionState.ENDING,
    }
)
