"""Small pieces of the TCPCL sessions' bookkeeping: the events and bytes both versions queue
the same way, and the TCPCLv3 send-side records."""

from __future__ import annotations

from collections import deque

from dtncloud.tcpcl.events import Event

__all__ = ["EventsAndOutput", "OutgoingV3", "immutable"]


def immutable(data: bytes | memoryview) -> bytes | memoryview:
    """``data`` itself if nobody can change it before it is sent, else a copy."""
    if isinstance(data, bytes):
        return data
    if data.readonly and data.contiguous and data.format == "B" and isinstance(data.obj, bytes):
        return data
    return bytes(data)


class OutgoingV3:
    """A TCPCLv3 transfer being sent: how much of it is sent and acknowledged."""

    __slots__ = ("acked", "id", "sent", "total")

    def __init__(self, transfer_id: int, total: int) -> None:
        self.id = transfer_id
        self.total = total
        self.sent = 0
        self.acked = 0


class EventsAndOutput:
    """Base of :class:`~dtncloud.tcpcl.session.Session` and
    :class:`~dtncloud.tcpcl.v3.SessionV3`: the h11-style ``next_event`` / ``data_to_send``
    pair over the queues a session fills."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._out: list[bytes | memoryview] = []

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Every byte queued for the peer since the last call (b"" if none); the caller
        writes it to the connection."""
        out = self._out
        if not out:
            return b""
        self._out = []
        if len(out) == 1 and type(out[0]) is bytes:
            return out[0]
        return b"".join(out)
