"""Numbers a node must never hand out twice, even across restarts.

A node without an accurate clock stamps every bundle with creation time 0, so its sequence
numbers alone tell its bundles apart (RFC 9171 section 4.2.7); custody transmission IDs
must not repeat either. Storing the counter after every use would cost a store write per
bundle, so numbers are reserved in blocks: the top of the block is stored before the first
number of it is used, and a restarted node continues from there (skipping at most one
block's unused numbers).
"""

from __future__ import annotations

from dtncloud.engine.actions import SaveState

__all__ = ["CreationStamps", "ReservedCounter"]


class ReservedCounter:
    """Hands out ``start``, ``start + 1``, ... reserving ``block`` numbers at a time under
    the store key ``key``."""

    def __init__(self, key: str, *, start: int = 0, block: int = 1024) -> None:
        self.key = key
        self._next = start
        self._reserved = start
        self._block = block

    def restore(self, saved: bytes | None) -> None:
        """Continue after a reservation read back from the store."""
        if saved:
            self._next = self._reserved = max(self._next, int.from_bytes(saved, "big"))

    def take(self) -> tuple[int, SaveState | None]:
        """The next number, and the reservation to store first (or None)."""
        value = self._next
        self._next += 1
        if self._next <= self._reserved:
            return value, None
        self._reserved = value + self._block
        return value, SaveState(self.key, self._reserved.to_bytes(8, "big"))


class CreationStamps:
    """Creation timestamps (time, sequence) unique to one node.

    With an accurate clock the time is ``now`` and the sequence counts bundles made in the
    same millisecond (time never goes back: a clock stepped backwards keeps the last time
    and counts on). Without one the time is 0 and the sequence is a reserved counter.
    """

    KEY = "engine.sequence"

    def __init__(self, *, clock_accurate: bool) -> None:
        self.clock_accurate = clock_accurate
        self._last = -1
        self._sequence = 0
        self._counter = ReservedCounter(self.KEY)

    def restore(self, saved: bytes | None) -> None:
        self._counter.restore(saved)

    def take(self, now: int) -> tuple[int, int, SaveState | None]:
        """(creation time, sequence, reservation to store first or None)."""
        if not self.clock_accurate:
            sequence, save = self._counter.take()
            return 0, sequence, save
        if now > self._last:
            self._last, self._sequence = now, 0
        else:
            self._sequence += 1
        return self._last, self._sequence, None
