"""Neighbour discovery as a sans-IO object: when to beacon, what to send, who is around.

:class:`Discovery` does no I/O and reads no clock. Its driver (``dtncloud.cla.discovery`` in
the daemon, a scheduler in the simulator) feeds it received datagrams with the sender's address
and the time, wakes it at :meth:`Discovery.get_timer`, sends whatever
:meth:`Discovery.beacon_to_send` returns to every destination, and acts on the events from
:meth:`Discovery.next_event`:

* :class:`NeighbourFound`: a node we did not know beaconed (the node opens a link to it);
* :class:`NeighbourUpdated`: a known node now announces other services, or moved to another
  address (the old one fell silent for a whole period);
* :class:`NeighbourLost`: no beacon from a node for ``missed_periods`` of its announced period
  (ours, if it announces none).

Beacons that do not decode, in other formats, or from our own node ID (multicast loops them
back) are ignored and counted in :attr:`Discovery.stats`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, replace

from dtncloud.discovery.beacon import (
    Beacon,
    BeaconDecodeError,
    Service,
    UnsupportedBeacon,
    decode_beacon,
    encode_beacon,
)
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

__all__ = [
    "DEFAULT_PERIOD_MS",
    "Discovery",
    "DiscoveryConfig",
    "DiscoveryEvent",
    "DiscoveryStats",
    "Neighbour",
    "NeighbourFound",
    "NeighbourLost",
    "NeighbourUpdated",
]

#: Beacon every 5 s (ION's unicast period; dtn7-rs uses 2 s): a beacon is some 50 bytes, and
#: with 3 missed periods a departed neighbour is noticed within 15 s.
DEFAULT_PERIOD_MS = 5_000
_MAX_SEQUENCE = 0xFFFF_FFFF


@dataclass(frozen=True)
class DiscoveryConfig:
    """What a node announces and how it judges its neighbours.

    * ``node_id``: our node ID (beacons carrying it are our own and ignored);
    * ``services``: the CLA endpoints we announce;
    * ``period_ms``: time between our beacons; ``announce=False`` listens only;
    * ``missed_periods``: a neighbour is lost after this many of its periods without a beacon;
    * ``jitter_ms``: each period is shortened by a random 0..jitter_ms (needs an injected
      ``random.Random``), so that nodes started together do not beacon in lockstep;
    * ``announce_period``: put our period in the beacon (receivers then time us out by it);
    * ``max_neighbours``: at this many, a new node takes the place of the one heard from
      longest ago (reported lost, and counted in ``stats.evicted``);
    * ``max_period_ms``: an announced period above this counts as this (so that a neighbour
      announcing a huge period cannot stay listed for ever).
    """

    node_id: str
    services: tuple[Service, ...] = ()
    period_ms: int = DEFAULT_PERIOD_MS
    missed_periods: int = 3
    jitter_ms: int = 0
    announce: bool = True
    announce_period: bool = True
    max_neighbours: int = 1024
    max_period_ms: int = 3_600_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))
        try:
            node = EID.parse(self.node_id)
        except InvalidEID as exc:
            raise ConfigError(f"discovery node ID: {exc}") from None
        if node.is_none:
            raise ConfigError("discovery node ID: dtn:none names no node")
        if self.period_ms < 1:
            raise ConfigError(f"discovery period must be at least 1 ms, not {self.period_ms}")
        if self.missed_periods < 1:
            raise ConfigError("discovery missed_periods must be at least 1")
        if not 0 <= self.jitter_ms < self.period_ms:
            raise ConfigError("discovery jitter must be 0 or more and less than the period")
        if self.max_neighbours < 1 or self.max_period_ms < 1:
            raise ConfigError("discovery max_neighbours and max_period_ms must be positive")


@dataclass(frozen=True)
class Neighbour:
    """A node we hear beacons from; ``host`` is where its beacons come from."""

    node_id: str
    host: str
    services: tuple[Service, ...]
    period_ms: int
    heard_at: int
    host_heard_at: int
    expires_at: int
    sequence: int


@dataclass(frozen=True)
class NeighbourFound:
    """A node we did not know beaconed from ``host``, announcing ``services``."""

    node_id: str
    host: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class NeighbourUpdated:
    """A known node announces other services, or is now reached at another ``host``."""

    node_id: str
    host: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class NeighbourLost:
    """No beacon from this node for ``missed_periods`` of its period."""

    node_id: str
    host: str


DiscoveryEvent = NeighbourFound | NeighbourUpdated | NeighbourLost


@dataclass
class DiscoveryStats:
    """Counters for status displays and tests."""

    beacons_sent: int = 0
    beacons_received: int = 0
    ignored_malformed: int = 0
    ignored_unsupported: int = 0
    ignored_own: int = 0
    evicted: int = 0

    @property
    def ignored(self) -> int:
        return self.ignored_malformed + self.ignored_unsupported + self.ignored_own


class Discovery:
    """Beacon schedule and neighbour table of one node (see the module docstring).

    The first beacon is due at ``now`` (the creation time). ``rng`` supplies the jitter.
    """

    def __init__(
        self, config: DiscoveryConfig, now: int, *, rng: random.Random | None = None
    ) -> None:
        if config.jitter_ms and rng is None:
            raise ConfigError("discovery jitter needs a random.Random (rng=...)")
        self.config = config
        self.stats = DiscoveryStats()
        self._node_id = str(EID.parse(config.node_id))
        self._services = config.services
        self._rng = rng
        self._sequence = 0
        self._beacon_due = False
        self._next_beacon_at: int | None = now if config.announce else None
        self._neighbours: dict[str, Neighbour] = {}
        self._events: deque[DiscoveryEvent] = deque()

    # -- state --------------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def services(self) -> tuple[Service, ...]:
        return self._services

    @property
    def neighbours(self) -> dict[str, Neighbour]:
        """The neighbours heard from and not yet lost, by node ID (a copy)."""
        return dict(self._neighbours)

    def update_services(self, services: tuple[Service, ...]) -> None:
        """Announce ``services`` from the next beacon on (e.g. once ports are bound)."""
        self._services = tuple(services)

    # -- time ---------------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` must run next (``None``: nothing scheduled)."""
        deadlines = [n.expires_at for n in self._neighbours.values()]
        if self._next_beacon_at is not None:
            deadlines.append(self._next_beacon_at)
        return min(deadlines, default=None)

    def handle_timer(self, now: int) -> None:
        """Make a beacon due if its time has come; lose neighbours that fell silent."""
        if self._next_beacon_at is not None and now >= self._next_beacon_at:
            self._beacon_due = True
            # Scheduled from now, not from the missed deadline: a late wake-up sends one beacon,
            # not a burst of them. Jitter only shortens the period, so we are never later than
            # the period we announce.
            jitter = self._rng.randint(0, self.config.jitter_ms) if self._rng else 0
            self._next_beacon_at = now + self.config.period_ms - jitter
        for node_id, neighbour in list(self._neighbours.items()):
            if now >= neighbour.expires_at:
                del self._neighbours[node_id]
                self._events.append(NeighbourLost(node_id, neighbour.host))

    # -- output -------------------------------------------------------------------------------

    def beacon_to_send(self, now: int) -> bytes | None:
        """The encoded beacon that is due (send it to every destination), or ``None``."""
        if not self._beacon_due:
            return None
        self._beacon_due = False
        beacon = Beacon(
            EID.parse(self._node_id),
            self._sequence,
            self._services,
            self.config.period_ms if self.config.announce_period else None,
        )
        self._sequence = (self._sequence + 1) & _MAX_SEQUENCE
        self.stats.beacons_sent += 1
        return encode_beacon(beacon)

    def next_event(self) -> DiscoveryEvent | None:
        """The oldest event not yet taken, or ``None``."""
        return self._events.popleft() if self._events else None

    # -- input --------------------------------------------------------------------------------

    def beacon_received(
        self, data: bytes | bytearray | memoryview, source_host: str, now: int
    ) -> None:
        """Take in one datagram from ``source_host``; never raises for what the datagram holds."""
        try:
            beacon = decode_beacon(data)
        except UnsupportedBeacon:
            self.stats.ignored_unsupported += 1
            return
        except BeaconDecodeError:
            self.stats.ignored_malformed += 1
            return
        node_id = str(beacon.node_id)
        if node_id == self._node_id:
            self.stats.ignored_own += 1
            return
        self.stats.beacons_received += 1
        period = min(beacon.period_ms or self.config.period_ms, self.config.max_period_ms)
        expires_at = now + self.config.missed_periods * period
        known = self._neighbours.get(node_id)
        if known is None:
            if len(self._neighbours) >= self.config.max_neighbours:
                # Make room by forgetting the neighbour heard from longest ago: a flood of
                # one-off (spoofed) beacons must not lock real neighbours out for hours.
                stalest = min(self._neighbours.values(), key=lambda n: n.heard_at)
                del self._neighbours[stalest.node_id]
                self.stats.evicted += 1
                self._events.append(NeighbourLost(stalest.node_id, stalest.host))
            self._neighbours[node_id] = Neighbour(
                node_id, source_host, beacon.services, period, now, now, expires_at, beacon.sequence
            )
            self._events.append(NeighbourFound(node_id, source_host, beacon.services))
            return
        host, host_heard_at = known.host, known.host_heard_at
        if source_host == known.host:
            host_heard_at = now
        elif now - known.host_heard_at > known.period_ms:
            # A node heard on two addresses (multicast and unicast, two interfaces) keeps the
            # first while it stays alive, so the node does not flap between them.
            host, host_heard_at = source_host, now
        changed = host != known.host or beacon.services != known.services
        self._neighbours[node_id] = replace(
            known,
            host=host,
            services=beacon.services,
            period_ms=period,
            heard_at=now,
            host_heard_at=host_heard_at,
            expires_at=expires_at,
            sequence=beacon.sequence,
        )
        if changed:
            self._events.append(NeighbourUpdated(node_id, host, beacon.services))
