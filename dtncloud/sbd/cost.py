"""What SBD traffic costs, and a daily credit budget.

RockBLOCK bills one credit per started 50 bytes of a message (a 54-byte message costs two)
and one credit per mailbox check that brings nothing. The figures here are estimates made
from those rules; the provider's invoice is the truth.

Days are UTC days. ``now`` is DTN time (milliseconds since 2000-01-01T00:00:00 UTC without
leap seconds), so a day starts at every multiple of 86,400,000 ms.
"""

from __future__ import annotations

__all__ = ["CREDIT_BYTES", "DAY_MS", "CreditBudget", "credits_for"]

#: Bytes per credit: a message costs one credit per started block of this many bytes.
CREDIT_BYTES = 50
#: Milliseconds in a (UTC, leap-second-free) day.
DAY_MS = 86_400_000


def credits_for(size: int) -> int:
    """Credits billed for one message of ``size`` bytes (an empty one: a mailbox check, 1)."""
    return max(1, -(-size // CREDIT_BYTES))


class CreditBudget:
    """Credits spent per UTC day, against an optional daily limit.

    ``daily_limit`` of ``None`` means no limit (spending is still counted). What is spent is
    kept in memory only: a restarted node starts the day at zero.
    """

    def __init__(self, daily_limit: int | None = None) -> None:
        if daily_limit is not None and daily_limit < 1:
            raise ValueError("a daily credit budget must be at least 1 credit")
        self.daily_limit = daily_limit
        self._day = -1
        self._spent = 0
        #: credits spent since this object was made
        self.total = 0

    def spent_today(self, now: int) -> int:
        self._roll(now)
        return self._spent

    def remaining_today(self, now: int) -> int | None:
        """Credits left today, or ``None`` without a limit."""
        if self.daily_limit is None:
            return None
        return max(0, self.daily_limit - self.spent_today(now))

    def allows(self, credits: int, now: int) -> bool:
        """Whether spending ``credits`` more today stays within the limit."""
        if self.daily_limit is None:
            return True
        return self.spent_today(now) + credits <= self.daily_limit

    def spend(self, credits: int, now: int) -> None:
        """Count ``credits`` as spent (even beyond the limit: received messages are billed
        whether or not we wanted them)."""
        self._roll(now)
        self._spent += credits
        self.total += credits

    @staticmethod
    def next_day_at(now: int) -> int:
        """When the next UTC day starts."""
        return (now // DAY_MS + 1) * DAY_MS

    def _roll(self, now: int) -> None:
        day = now // DAY_MS
        if day != self._day:
            self._day = day
            self._spent = 0
