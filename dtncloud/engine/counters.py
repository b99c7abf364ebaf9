"""Numbers a node must never hand out twice, even across restarts.

A node without an accurate clock stamps every bundle with creation time 0, so its sequence
numbers alone tell its bundles apart (RFC 9171 section 4.2.7), and a restarted node must not
reuse a (time, sequence) pair either; custody transmission IDs must not repeat. Storing the counter after every use would cost a store write per
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

    def restore(self, saved: bytes | None) -> SaveState:
        """Continue after a reservation read back from the store; returns the reservation of
        the next block, to store before any number is used."""
        if saved:
            self._next = self._reserved = max(self._next, int.from_bytes(saved, "big"))
        self._reserved = self._next + self._block
        return SaveState(self.key, self._reserved.to_bytes(8, "big"))

    def take(self) -> tuple[int, SaveState | None]:
        """The next number, and the reservation to store first (or None)."""
        value = self._next
        self._next += 1
        if self._next <= self._reserved:
            return value, None
        self._reserved = value + self._block
        return value, SaveState(self.key, self._reserved.to_bytes(8, "big"))


class CreationStamps:
    """Creation timestamps (time, sequence) unique to one node, across restarts.

    The time is ``now`` with an accurate clock and 0 without one (RFC 9171 4.2.7). The
    sequence number is one counter for all the node's bundles, reserved in the store in
    blocks: resetting it every millisecond would be enough while the node runs, but a node
    restarted within the millisecond of its last bundle (easily, in the simulator) or with
    its clock set back would hand out an ID again.
    """

    KEY = "engine.sequence"

    def __init__(self, *, clock_accurate: bool) -> None:
        self.clock_accurate = clock_accurate
        self._counter = ReservedCounter(self.KEY)

    def restore(self, saved: bytes | None) -> SaveState:
        return self._counter.restore(saved)

    def take(self, now: int) -> tuple[int, int, SaveState | None]:
        """(creation time, sequence, reservation to store first or None)."""
        sequence, save = self._counter.take()
        return (now if self.clock_accurate else 0), sequence, save
