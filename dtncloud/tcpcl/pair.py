"""Two sessions wired together in memory, with time stepped by hand (a test utility).

``SessionPair`` carries each side's output to the other side's input, collects the events
each side reports, and lets a test move ``now`` forward to fire keepalives and timeouts. It
works with any object that has the session API (TCPCLv4 and TCPCLv3 alike), and ships with
the library so that applications can test their own code against real sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from dtncloud.tcpcl.events import ContactEstablished, Event


class SessionLike(Protocol):
    """The parts of the session API the pair needs."""

    def receive_data(self, data: bytes, now: int) -> None: ...
    def data_to_send(self) -> bytes: ...
    def next_event(self) -> Event | None: ...
    def get_timer(self) -> int | None: ...
    def handle_timer(self, now: int) -> None: ...
    def tls_established(self, now: int) -> None: ...
    def connection_lost(self, now: int) -> None: ...


class SessionPair:
    """An active and a passive session joined by a perfect in-memory pipe.

    ``chunk`` (optional) splits every delivery into pieces of that size, to exercise
    incremental parsing. TLS is simulated: when a side reports ``ContactEstablished`` with
    ``use_tls``, the pair calls ``tls_established`` on it straight away.
    """

    def __init__(
        self, active: Any, passive: Any, *, now: int = 0, chunk: int | None = None
    ) -> None:
        self.active = active
        self.passive = passive
        self.now = now
        self.chunk = chunk
        self.events: dict[str, list[Event]] = {"active": [], "passive": []}
        #: Every byte each side sent, in order (for wire-level assertions).
        self.wire: dict[str, bytearray] = {"active": bytearray(), "passive": bytearray()}
        self.connected = True
        #: Called with (side, bytes) before delivery; may return replacement bytes.
        self.tamper: Callable[[str, bytes], bytes] | None = None

    def _sides(self) -> tuple[tuple[str, Any, Any], ...]:
        return (("active", self.active, self.passive), ("passive", self.passive, self.active))

    def pump(self, max_rounds: int = 10_000) -> bool:
        """Move bytes and events until both sides are quiet; returns whether anything moved."""
        moved_any = False
        for _ in range(max_rounds):
            moved = False
            for name, sender, receiver in self._sides():
                moved |= self._drain_events(name, sender)
                data = sender.data_to_send()
                if not data:
                    continue
                moved = True
                self.wire[name] += data
                if not self.connected:
                    continue
                if self.tamper is not None:
                    data = self.tamper(name, data)
                step = self.chunk or len(data) or 1
                for offset in range(0, len(data), step):
                    receiver.receive_data(data[offset : offset + step], self.now)
            moved_any |= moved
            if not moved:
                return moved_any
        raise AssertionError("sessions kept talking for too many rounds")

    def _drain_events(self, name: str, session: Any) -> bool:
        moved = False
        while (event := session.next_event()) is not None:
            moved = True
            self.events[name].append(event)
            if isinstance(event, ContactEstablished) and event.use_tls:
                session.tls_established(self.now)
        return moved

    def advance(self, ms: int) -> None:
        """Move time forward by ``ms``, firing every timer that falls due on the way."""
        target = self.now + ms
        while True:
            deadlines = [
                t for t in (self.active.get_timer(), self.passive.get_timer()) if t is not None
            ]
            due = min((t for t in deadlines if t <= target), default=None)
            if due is None:
                break
            self.now = max(self.now, due)
            for session in (self.active, self.passive):
                timer = session.get_timer()
                if timer is not None and timer <= self.now:
                    session.handle_timer(self.now)
            self.pump()
        self.now = target
        self.pump()

    def disconnect(self) -> None:
        """Break the pipe: both sides learn that the connection is lost."""
        self.connected = False
        self.active.connection_lost(self.now)
        self.passive.connection_lost(self.now)
        self.pump()

    def take(self, side: str) -> list[Event]:
        """The events ``side`` reported since the last call, removed from the log."""
        events, self.events[side] = self.events[side], []
        return events

    def of_type(self, side: str, kind: type[Event]) -> list[Any]:
        """The logged events of ``side`` that are instances of ``kind``."""
        return [e for e in self.events[side] if isinstance(e, kind)]
