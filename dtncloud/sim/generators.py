"""Scenario generators: a :class:`~dtncloud.sim.scenario.ScenarioSpec` and a
:class:`random.Random` in, sorted lists of events out. Pure: no I/O, no clock, no other
source of randomness, so one seed always gives the same events.

:func:`generate` returns :class:`Events`:

- ``contacts``: :class:`ContactEvent` windows ``[start, end)`` in absolute DTN ms, each
  between two nodes named in order (``a < b``), sorted by ``(start, end, a, b)``, within
  the run. Contacts of the same pair never overlap or touch: where two sources (or two
  encounters) give one pair overlapping windows, they are joined into one window that keeps
  the link model of the earlier one.
- ``node_changes``: :class:`NodeChange` events, a node going down or coming back up, from
  the duty cycles and churn. A node is up only when every source says so (their downtimes
  are joined), so the changes of one node alternate down, up, down, ...
- ``messages``: :class:`MessageEvent` sorted by creation time, numbered ``M1``, ``M2``, ...
  in that order.

Each source of events draws from its own generator seeded from ``rng`` in the order of the
scenario, so adding traffic does not move the contacts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import combinations

from dtncloud.sim.spec import (
    Churn,
    ContactSource,
    DutyCycle,
    FixedContacts,
    LinkModel,
    Mesh,
    MuleTour,
    RandomEncounters,
    SatellitePasses,
    ScenarioSpec,
    Traffic,
)

__all__ = [
    "ContactEvent",
    "Events",
    "MessageEvent",
    "NodeChange",
    "contact_events",
    "downtimes",
    "generate",
    "merge_contacts",
    "messages",
    "mule_visits",
]


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """``a`` and ``b`` (``a < b``) are in contact from ``start`` until ``end`` (excluded)."""

    start: int
    end: int
    a: str
    b: str
    link: LinkModel


@dataclass(frozen=True, slots=True)
class NodeChange:
    """``node`` goes down (``up`` False) or comes back up at ``at``."""

    at: int
    node: str
    up: bool


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """An application creates a message of ``size`` bytes at ``at``."""

    at: int
    source: str
    destination: str
    size: int
    lifetime: int
    message_id: str


@dataclass(frozen=True, slots=True)
class Events:
    contacts: tuple[ContactEvent, ...]
    node_changes: tuple[NodeChange, ...]
    messages: tuple[MessageEvent, ...]


def _child(rng: random.Random) -> random.Random:
    """A generator of its own for one source, seeded from ``rng``."""
    return random.Random(rng.getrandbits(64))


def generate(spec: ScenarioSpec, rng: random.Random) -> Events:
    """Every event of the scenario; see the module docstring."""
    contact_rngs = [_child(rng) for _ in spec.contacts]
    cycle_rngs = [_child(rng) for _ in spec.duty_cycles]
    churn_rngs = [_child(rng) for _ in spec.churn]
    traffic_rngs = [_child(rng) for _ in spec.traffic]
    found: list[ContactEvent] = []
    for source, child in zip(spec.contacts, contact_rngs, strict=True):
        found.extend(contact_events(source, spec, child))
    down: list[tuple[str, int, int]] = []
    for cycle, child in zip(spec.duty_cycles, cycle_rngs, strict=True):
        down.extend(_duty_cycle(cycle, spec, child))
    for churn, child in zip(spec.churn, churn_rngs, strict=True):
        down.extend(_churn(churn, spec, child))
    return Events(
        contacts=tuple(merge_contacts(found)),
        node_changes=tuple(downtimes(down, spec.end)),
        messages=tuple(messages(spec, traffic_rngs)),
    )


# -- contacts -----------------------------------------------------------------------------------


def _event(start: int, end: int, x: str, y: str, link: LinkModel) -> ContactEvent:
    a, b = (x, y) if x < y else (y, x)
    return ContactEvent(start, end, a, b, link)


def _clipped(events: Iterable[ContactEvent], spec: ScenarioSpec) -> Iterator[ContactEvent]:
    for event in events:
        start, end = max(event.start, spec.start), min(event.end, spec.end)
        if start < end and event.a != event.b:
            yield ContactEvent(start, end, event.a, event.b, event.link)


def contact_events(
    source: ContactSource, spec: ScenarioSpec, rng: random.Random
) -> list[ContactEvent]:
    """The contacts of one source, clipped to the run (not yet merged or sorted)."""
    made: Iterable[ContactEvent]
    if isinstance(source, FixedContacts):
        made = (
            _event(
                w.start,
                w.end,
                w.a,
                w.b,
                replace(
                    source.link,
                    rate=w.rate if w.rate is not None else source.link.rate,
                    delay_ms=w.delay_ms if w.delay_ms is not None else source.link.delay_ms,
                ),
            )
            for w in source.windows
        )
    elif isinstance(source, Mesh):
        made = _mesh(source, spec, rng)
    elif isinstance(source, RandomEncounters):
        made = _encounters(source, spec, rng)
    elif isinstance(source, MuleTour):
        made = (
            _event(start, end, mule, node, source.link)
            for mule, _, nodes, start, end in mule_visits(source, spec, rng)
            for node in nodes
        )
    else:
        made = _passes(source, spec, rng)
    return list(_clipped(made, spec))


def _outages(mtbf: int, mttr: int, spec: ScenarioSpec, rng: random.Random) -> list[tuple[int, int]]:
    """Random failures: exponential up times of mean ``mtbf``, repairs of mean ``mttr``."""
    found: list[tuple[int, int]] = []
    now = spec.start
    while True:
        now += max(1, round(rng.expovariate(1 / mtbf)))
        if now >= spec.end:
            return found
        repair = max(1, round(rng.expovariate(1 / mttr)))
        found.append((now, now + repair))
        now += repair


def _minus(start: int, end: int, holes: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """``[start, end)`` without the (sorted) ``holes``."""
    for low, high in holes:
        if low > start:
            yield start, min(low, end)
        start = max(start, high)
        if start >= end:
            return
    if start < end:
        yield start, end


def _mesh(source: Mesh, spec: ScenarioSpec, rng: random.Random) -> Iterator[ContactEvent]:
    if source.hub:
        pairs = [(h, n) for h in source.hub for n in source.nodes if n != h]
    else:
        pairs = list(combinations(source.nodes, 2))
    fixed = [(spec.start + low, spec.start + high) for low, high in source.down]
    for x, y in pairs:
        holes = list(fixed)
        if source.mtbf_ms is not None and source.mttr_ms is not None:
            holes = sorted(holes + _outages(source.mtbf_ms, source.mttr_ms, spec, rng))
        for start, end in _minus(spec.start, spec.end, holes):
            yield _event(start, end, x, y, source.link)


def _encounters(
    source: RandomEncounters, spec: ScenarioSpec, rng: random.Random
) -> Iterator[ContactEvent]:
    begin = spec.start + source.start
    stop = spec.end if source.stop is None else min(spec.end, spec.start + source.stop)
    if source.pair_rate is not None:
        # One Poisson process per pair; the next encounter starts after the last has ended.
        for x, y in combinations(source.nodes, 2):
            now = begin + round(rng.expovariate(source.pair_rate))
            while now < stop:
                length = max(1, source.duration.sample(rng))
                yield _event(now, now + length, x, y, source.link)
                now += length + round(rng.expovariate(source.pair_rate))
        return
    # One process for the whole network: each node meets others at node_rate on average, so
    # encounters happen at n * node_rate / 2. An encounter of a pair already in contact is
    # dropped (the pair is busy), which lowers the rate a little for long contacts.
    total = len(source.nodes) * (source.node_rate or 0.0) / 2
    busy: dict[tuple[str, str], int] = {}
    now = begin + round(rng.expovariate(total))
    while now < stop:
        x, y = rng.sample(source.nodes, 2)
        pair = (x, y) if x < y else (y, x)
        length = max(1, source.duration.sample(rng))
        if busy.get(pair, -1) < now:
            busy[pair] = now + length
            yield _event(now, now + length, x, y, source.link)
        now += round(rng.expovariate(total))


def _tour_order(source: MuleTour) -> list[int]:
    """Indexes of the sites one tour visits."""
    forward = list(range(len(source.sites)))
    if source.route == "back_and_forth":
        return forward + forward[-2:0:-1]
    return forward


def mule_visits(
    source: MuleTour, spec: ScenarioSpec, rng: random.Random
) -> Iterator[tuple[str, int, tuple[str, ...], int, int]]:
    """``(mule, site index, site nodes, arrival, departure)`` for each visit, mule by mule
    in time order, until the end of the run."""
    order = _tour_order(source)
    for index, mule in enumerate(source.mules):
        origin = spec.start + source.start + index * source.stagger
        now = origin
        tour = 0
        while now < spec.end and (source.tours is None or tour < source.tours):
            if source.period is not None:
                now = max(now, origin + tour * source.period)
            elif tour:
                now += source.travel.sample(rng)  # back from the last site to the first
            for position, site in enumerate(order):
                if position:
                    now += source.travel.sample(rng)
                if now >= spec.end:
                    break
                leave = now + max(1, source.dwell.sample(rng))
                yield mule, site, tuple(n for n in source.sites[site] if n != mule), now, leave
                now = leave
            tour += 1


def _passes(
    source: SatellitePasses, spec: ScenarioSpec, rng: random.Random
) -> Iterator[ContactEvent]:
    for satellite in source.satellites:
        grounds = [g for g in source.ground if g != satellite]
        for j, ground in enumerate(grounds):
            scheduled = spec.start + source.first + j * source.stagger
            while scheduled < spec.end:
                shift = rng.randint(-source.jitter, source.jitter) if source.jitter else 0
                start = max(spec.start, scheduled + shift)
                yield _event(start, start + source.duration, satellite, ground, source.link)
                scheduled += source.period


def merge_contacts(events: Iterable[ContactEvent]) -> list[ContactEvent]:
    """Join overlapping or touching contacts of each pair (keeping the earlier one's link
    model) and sort the result by ``(start, end, a, b)``."""
    by_pair: dict[tuple[str, str], list[ContactEvent]] = {}
    for event in events:
        by_pair.setdefault((event.a, event.b), []).append(event)
    merged: list[ContactEvent] = []
    for found in by_pair.values():
        found.sort(key=lambda e: (e.start, e.end))
        current = found[0]
        for event in found[1:]:
            if event.start <= current.end:
                if event.end > current.end:
                    current = ContactEvent(
                        current.start, event.end, current.a, current.b, current.link
                    )
            else:
                merged.append(current)
                current = event
        merged.append(current)
    merged.sort(key=lambda e: (e.start, e.end, e.a, e.b))
    return merged


# -- nodes going down ---------------------------------------------------------------------------


def _duty_cycle(
    cycle: DutyCycle, spec: ScenarioSpec, rng: random.Random
) -> Iterator[tuple[str, int, int]]:
    """Downtimes ``(node, from, to)``: the node is off outside on..off of every period."""
    on_length = (cycle.off - cycle.on) % cycle.period
    # A switch never moves past the middle of the on or off time around it.
    jitter = min(cycle.jitter, (min(on_length, cycle.period - on_length) - 1) // 2)
    for node in cycle.nodes:
        ups = []
        first = spec.start - cycle.period  # an on time that began the day before
        k = 0
        while first + k * cycle.period < spec.end:
            base = first + k * cycle.period
            on = base + cycle.on + (rng.randint(-jitter, jitter) if jitter > 0 else 0)
            off = base + cycle.on + on_length + (rng.randint(-jitter, jitter) if jitter > 0 else 0)
            ups.append((on, off))
            k += 1
        for start, end in _minus(spec.start, spec.end, ups):
            yield node, start, end


def _churn(churn: Churn, spec: ScenarioSpec, rng: random.Random) -> Iterator[tuple[str, int, int]]:
    for node in churn.nodes:
        for start, end in _outages(churn.mtbf, churn.mttr, spec, rng):
            yield node, start, end


def downtimes(down: Iterable[tuple[str, int, int]], end: int) -> list[NodeChange]:
    """Node changes from downtimes ``(node, from, to)``: joined per node, sorted by time
    (then node, downs first); a node still down at ``end`` gets no up."""
    by_node: dict[str, list[tuple[int, int]]] = {}
    for node, low, high in down:
        by_node.setdefault(node, []).append((low, high))
    changes = []
    for node, windows in by_node.items():
        windows.sort()
        joined: list[list[int]] = []
        for low, high in windows:
            if joined and low <= joined[-1][1]:
                joined[-1][1] = max(joined[-1][1], high)
            else:
                joined.append([low, high])
        for low, high in joined:
            changes.append(NodeChange(low, node, False))
            if high < end:
                changes.append(NodeChange(high, node, True))
    changes.sort(key=lambda c: (c.at, c.node, c.up))
    return changes


# -- traffic ------------------------------------------------------------------------------------


def _stream(
    traffic: Traffic, sources: tuple[str, ...], spec: ScenarioSpec, rng: random.Random
) -> Iterator[tuple[int, str, str, int, int]]:
    stop = spec.end if traffic.stop is None else min(spec.end, spec.start + traffic.stop)
    now = spec.start + traffic.start + traffic.interval.sample(rng)
    made = 0
    while now < stop and (traffic.count is None or made < traffic.count):
        source = sources[0] if len(sources) == 1 else rng.choice(sources)
        targets = [d for d in traffic.destinations if d != source]
        if targets:
            destination = rng.choice(targets)
            yield now, source, destination, max(1, traffic.size.sample(rng)), traffic.lifetime
            made += 1
        now += traffic.interval.sample(rng)


def messages(spec: ScenarioSpec, rngs: list[random.Random]) -> list[MessageEvent]:
    """The messages of every ``[[traffic]]`` (one generator each), sorted and numbered."""
    found: list[tuple[int, int, str, int, tuple[int, str, str, int, int]]] = []
    for index, (traffic, rng) in enumerate(zip(spec.traffic, rngs, strict=True)):
        groups = [(s,) for s in traffic.sources] if traffic.per_source else [traffic.sources]
        for sources in groups:
            for seq, made in enumerate(_stream(traffic, sources, spec, rng)):
                found.append((made[0], index, made[1], seq, made))
    found.sort(key=lambda item: item[:4])
    return [
        MessageEvent(at, source, destination, size, lifetime, f"M{n}")
        for n, (*_, (at, source, destination, size, lifetime)) in enumerate(found, 1)
    ]
