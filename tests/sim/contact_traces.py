"""Random contact traces for the simulator tests, and an earliest-arrival computation that
knows nothing of the simulator."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Contact:
    start_ms: int
    end_ms: int
    a: str
    b: str


@dataclass(frozen=True)
class Message:
    at_ms: int
    source: str
    destination: str


def random_trace(
    seed: int, *, nodes: int, contacts: int, messages: int, horizon_s: int = 2000
) -> tuple[list[str], list[Contact], list[Message]]:
    """Whole-second event times, all different (no ties to argue about), no two contacts of
    one pair overlapping."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    times = rng.sample(range(1, horizon_s), 2 * contacts + messages)
    busy: dict[tuple[str, str], list[tuple[int, int]]] = {}
    trace: list[Contact] = []
    i = 0
    while len(trace) < contacts and i + 1 < 2 * contacts:
        start, end = sorted(times[i : i + 2])
        i += 2
        a, b = sorted(rng.sample(names, 2))
        spans = busy.setdefault((a, b), [])
        if any(s <= end and start <= e for s, e in spans):
            continue
        spans.append((start, end))
        trace.append(Contact(start * 1000, end * 1000, a, b))
    created = [Message(t * 1000, *rng.sample(names, 2)) for t in times[2 * contacts :][:messages]]
    return names, trace, created


def earliest_arrival(contacts: list[Contact], message: Message) -> int | None:
    """When the message can first be at its destination, through contacts up at or after
    its creation (instant transfers): relaxed until nothing improves."""
    best = {message.source: message.at_ms}
    changed = True
    while changed:
        changed = False
        for c in contacts:
            for x, y in ((c.a, c.b), (c.b, c.a)):
                t = best.get(x)
                if t is None or t >= c.end_ms:
                    continue
                arrival = max(t, c.start_ms)
                if arrival < best.get(y, 1 << 62):
                    best[y] = arrival
                    changed = True
    return best.get(message.destination)
