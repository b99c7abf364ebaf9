"""One SBD terminal, sans-IO: a bundle queue, segmentation, the modem, reassembly.

:class:`SbdTerminal` is what a convergence-layer driver drives. Bundles go in with
:meth:`~SbdTerminal.submit` and come out of the far terminal as :class:`BundleReceived`;
bytes for and from the modem go through :meth:`~SbdTerminal.data_to_send` and
:meth:`~SbdTerminal.receive_data`; timers through :meth:`~SbdTerminal.get_timer` and
:meth:`~SbdTerminal.handle_timer`.

* **Queue.** The next message is taken from the bundle that is most urgent (highest
  ``priority``), then has the fewest bytes left to send, then came first. A bundle in
  progress keeps its place because its remaining bytes only shrink, but a small or urgent
  bundle that arrives meanwhile goes ahead of it (the receiver holds several partial bundles).
  A bundle whose ``expires_at`` passes before it is all sent is dropped
  (:class:`BundleDropped`).
* **Segmentation.** :mod:`dtncloud.sbd.segment`; pieces of a bundle share a 12-bit tag that
  starts at a random value (so that a restarted sender does not reuse recent tags).
* **Modem.** :class:`~dtncloud.sbd.modem.ModemController`; its events are passed on as they
  are, so a driver sees :class:`~dtncloud.sbd.modem.ModemReady`,
  :class:`~dtncloud.sbd.modem.ModemLost`, :class:`~dtncloud.sbd.modem.SessionFailed` and so on.
* :class:`BundleSent` means every piece reached the gateway in a successful session. SBD does
  not tell the sender whether the far modem fetched it: delivery is not confirmed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.cost import CreditBudget
from dtncloud.sbd.modem import MessageReceived, ModemController, ModemEvent, ModemStats
from dtncloud.sbd.segment import TAG_MASK, Reassembler, is_segment, split_bundle

__all__ = [
    "BundleDropped",
    "BundleReceived",
    "BundleSent",
    "SbdStats",
    "SbdTerminal",
    "TerminalEvent",
]


@dataclass(frozen=True)
class BundleSent:
    """Every piece of the bundle ``submit`` returned ``ticket`` for went out."""

    ticket: int


@dataclass(frozen=True)
class BundleDropped:
    """The bundle will not be sent (expired, refused by the modem, or cancelled)."""

    ticket: int
    reason: str


@dataclass(frozen=True)
class BundleReceived:
    """A whole bundle arrived (reassembled if it came in pieces)."""

    data: bytes


TerminalEvent = BundleSent | BundleDropped | BundleReceived | ModemEvent


@dataclass
class SbdStats(ModemStats):
    """Figures for status displays and metrics (see :meth:`SbdTerminal.stats`): the
    modem's counters, and the terminal's bundles, queue, reassembly and budget."""

    modem_up: bool = False
    credits_today: int = 0
    credits_left_today: int | None = None
    bundles_sent: int = 0
    bundles_received: int = 0
    bundles_dropped: int = 0
    queued_bundles: int = 0
    queued_bytes: int = 0
    partial_bundles: int = 0
    duplicate_pieces: int = 0
    expired_partials: int = 0
    next_session_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Outgoing:
    ticket: int
    priority: int
    expires_at: int | None
    pieces: deque[bytes]
    remaining: int
    size: int


class SbdTerminal:
    """Bundles over one SBD modem (see the module docstring)."""

    def __init__(self, config: SbdConfig, *, rng: random.Random) -> None:
        self.config = config
        self.budget = CreditBudget(config.daily_credit_budget)
        self.modem = ModemController(config, self, rng=rng, budget=self.budget)
        self.reassembler = Reassembler(
            timeout_ms=config.reassembly_timeout_ms,
            max_partials=config.max_partial_bundles,
            max_bytes=config.max_partial_bytes,
        )
        self._prefix = config.prefix
        self._capacity = config.capacity
        self._tag = rng.randrange(TAG_MASK + 1)
        self._tickets = 0
        self._queue: dict[int, _Outgoing] = {}
        self._offered: tuple[int, bytes] | None = None
        self._events: deque[TerminalEvent] = deque()
        self._sent = 0
        self._received = 0
        self._dropped = 0
        self._now = 0

    @property
    def max_bundle_size(self) -> int:
        return self.config.max_bundle_size

    @property
    def is_up(self) -> bool:
        return self.modem.is_up

    # -- driving -------------------------------------------------------------------------------

    def start(self, now: int) -> None:
        """Initialise the modem (again, after the port was reopened)."""
        self._now = now
        self.modem.start(now)
        self._drain()

    def port_closed(self, reason: str, now: int) -> None:
        self._now = now
        self.modem.port_closed(reason, now)
        self._drain()

    def receive_data(self, data: bytes | bytearray | memoryview, now: int) -> None:
        self._now = now
        self.modem.receive_data(data, now)
        self._drain()

    def data_to_send(self) -> bytes:
        return self.modem.data_to_send()

    def next_event(self) -> TerminalEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> int | None:
        timers = [self.modem.get_timer(), self.reassembler.get_timer()]
        timers.extend(item.expires_at for item in self._queue.values())
        known = [t for t in timers if t is not None]
        return min(known) if known else None

    def handle_timer(self, now: int) -> None:
        self._now = now
        self.reassembler.handle_timer(now)
        self._drop_expired(now)
        self.modem.handle_timer(now)
        self._drain()

    # -- bundles out ---------------------------------------------------------------------------

    def submit(
        self, bundle: bytes, *, now: int, priority: int = 0, expires_at: int | None = None
    ) -> int:
        """Queue an encoded bundle; returns its ticket (see :class:`BundleSent`).

        Raises ``ValueError`` for an empty bundle or one over :attr:`max_bundle_size`.
        """
        if len(bundle) > self.max_bundle_size:
            raise ValueError(f"{len(bundle)} bytes exceed the SBD limit of {self.max_bundle_size}")
        pieces = split_bundle(
            bytes(bundle), tag=self._tag, piece_size=self.config.piece_size, capacity=self._capacity
        )
        if is_segment(pieces[0]):
            self._tag = (self._tag + 1) & TAG_MASK
        self._tickets += 1
        ticket = self._tickets
        size = sum(len(piece) for piece in pieces)
        self._queue[ticket] = _Outgoing(ticket, priority, expires_at, deque(pieces), size, size)
        self._now = now
        self.modem.poke(now)
        self._drain()
        return ticket

    def cancel(self, ticket: int, reason: str = "cancelled") -> bool:
        """Stop sending a bundle (pieces already sent stay sent); False if it is not queued."""
        if self._queue.pop(ticket, None) is None:
            return False
        self._dropped += 1
        self._events.append(BundleDropped(ticket, reason))
        return True

    def cancel_all(self, reason: str) -> None:
        for ticket in list(self._queue):
            self.cancel(ticket, reason)

    # -- the Outbox the modem controller asks ---------------------------------------------------

    def has_message(self) -> bool:
        return bool(self._queue)

    def next_message(self, now: int) -> bytes | None:
        self._drop_expired(now)
        if not self._queue:
            return None
        best = min(self._queue.values(), key=lambda o: (-o.priority, o.remaining, o.ticket))
        message = self._prefix + best.pieces[0]
        self._offered = (best.ticket, message)
        return message

    def message_sent(self, message: bytes, now: int) -> None:
        item = self._offered_item(message)
        if item is None:
            return
        piece = item.pieces.popleft()
        item.remaining -= len(piece)
        if not item.pieces:
            del self._queue[item.ticket]
            self._sent += 1
            self._events.append(BundleSent(item.ticket))

    def message_refused(self, message: bytes, reason: str, now: int) -> None:
        item = self._offered_item(message)
        if item is not None:
            self.cancel(item.ticket, reason)

    def _offered_item(self, message: bytes) -> _Outgoing | None:
        offered, self._offered = self._offered, None
        if offered is None or offered[1] != message:
            return None
        item = self._queue.get(offered[0])
        if item is None or self._prefix + item.pieces[0] != message:
            return None
        return item

    def _drop_expired(self, now: int) -> None:
        for item in list(self._queue.values()):
            if item.expires_at is not None and item.expires_at <= now:
                self.cancel(item.ticket, "the bundle expired before it could be sent")

    # -- events in -------------------------------------------------------------------------------

    def _drain(self) -> None:
        while (event := self.modem.next_event()) is not None:
            self._events.append(event)
            if isinstance(event, MessageReceived):
                bundle = self.reassembler.add(event.message, self._now)
                if bundle is not None:
                    self._received += 1
                    self._events.append(BundleReceived(bundle))

    # -- figures -------------------------------------------------------------------------------

    def stats(self, now: int) -> SbdStats:
        """The terminal's figures now (``now`` selects the budget day)."""
        modem = self.modem.stats
        reassembly = self.reassembler.stats
        counters = asdict(modem)
        counters["mo_statuses"] = dict(modem.mo_statuses)
        return SbdStats(
            **counters,
            modem_up=self.modem.is_up,
            credits_today=self.budget.spent_today(now),
            credits_left_today=self.budget.remaining_today(now),
            bundles_sent=self._sent,
            bundles_received=self._received,
            bundles_dropped=self._dropped,
            queued_bundles=len(self._queue),
            queued_bytes=sum(item.remaining for item in self._queue.values()),
            partial_bundles=self.reassembler.partial_bundles,
            duplicate_pieces=reassembly.duplicates,
            expired_partials=reassembly.expired,
            next_session_at=self.modem.next_session_at if self._queue else None,
        )
