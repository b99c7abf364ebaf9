"""The simulator's clock: a heap of events in virtual time.

Each event is a tuple ``(time, seq, function, argument)``: ``seq`` grows with every event
scheduled, so events due at the same millisecond run in the order they were scheduled and
the heap never compares functions. Nothing here reads a clock; time moves only when the
next event is taken off the heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["Scheduler"]


def _call(callback: Callable[[], None]) -> None:
    callback()


class Scheduler:
    """Events in virtual DTN milliseconds, run one at a time in (time, order scheduled)."""

    __slots__ = ("_heap", "_seq", "events_run", "now")

    def __init__(self, start_ms: int = 0) -> None:
        #: the current virtual time: that of the event running (or last run)
        self.now = start_ms
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        #: how many events have run so far
        self.events_run = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: int, function: Callable[[Any], None], argument: Any = None) -> None:
        """Run ``function(argument)`` at virtual time ``when`` (never before ``now``: a time
        already past runs at ``now``, after the events already due then)."""
        if when < self.now:
            when = self.now
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, function, argument))

    def call_at(self, when: int, callback: Callable[[], None]) -> None:
        """Run ``callback()`` at ``when``."""
        self.at(when, _call, callback)

    def next_time(self) -> int | None:
        """When the next event is due, or None if there is none."""
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Run the next event; False if there was none."""
        if not self._heap:
            return False
        when, _, function, argument = heapq.heappop(self._heap)
        self.now = when
        self.events_run += 1
        function(argument)
        return True

    def advance(self, when: int) -> None:
        """Move the clock forward to ``when`` (with no event due before it)."""
        if self._heap and self._heap[0][0] < when:
            raise ValueError("events are due before the time to advance to")
        if when > self.now:
            self.now = when
