"""A token bucket that paces datagrams (sans-IO: the caller says what time it is).

UDP has no congestion control of its own, and RFC 8085 (UDP usage guidelines) asks an
application that sends bulk data over it either to implement congestion control or to limit its
rate. RFC 7122 leaves the choice to the implementation; dtncloud limits the rate.

The bucket holds up to ``burst_bytes`` of credit and refills at ``rate_bytes_per_s``. A datagram
may go when the bucket holds as many bytes as the datagram (or a full bucket, for a datagram
larger than the bucket); sending it takes its size out, possibly into debt, so that over any
long stretch no more than ``rate`` bytes per second leave, whatever the datagram sizes.

The arithmetic is in integers (thousandths of a byte, integer milliseconds), so a simulation
that replays the same times gets the same delays.
"""

from __future__ import annotations

from dtncloud.errors import ConfigError

__all__ = ["DEFAULT_RATE_BYTES_PER_S", "TokenBucket"]

#: 10 Mbit/s: far below what a LAN or loopback carries, enough for most DTN links, and low
#: enough that a default-configured node does not flood a shared uplink. 0 means unlimited.
DEFAULT_RATE_BYTES_PER_S = 1_250_000

_MILLI = 1000


class TokenBucket:
    """Paces sends to ``rate_bytes_per_s`` with bursts of up to ``burst_bytes``.

    ``rate_bytes_per_s == 0`` means no limit. Times are integer milliseconds from any clock
    that does not go backwards (a time earlier than the last one seen counts as no time).
    """

    def __init__(self, rate_bytes_per_s: int, burst_bytes: int) -> None:
        if rate_bytes_per_s < 0:
            raise ConfigError(f"rate must be 0 (unlimited) or positive, not {rate_bytes_per_s}")
        if burst_bytes < 1:
            raise ConfigError(f"burst must be at least 1 byte, not {burst_bytes}")
        self.rate_bytes_per_s = rate_bytes_per_s
        self.burst_bytes = burst_bytes
        # Credit in thousandths of a byte: a rate of R bytes/s adds exactly R of them per ms.
        self._credit = burst_bytes * _MILLI
        self._updated_at: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.rate_bytes_per_s == 0

    @property
    def credit_bytes(self) -> int:
        """The credit as of the last call, in whole bytes (negative while in debt)."""
        return self._credit // _MILLI

    def _refill(self, now: int) -> None:
        if self._updated_at is None:
            self._updated_at = now
            return
        elapsed = now - self._updated_at
        if elapsed > 0:
            cap = self.burst_bytes * _MILLI
            self._credit = min(cap, self._credit + elapsed * self.rate_bytes_per_s)
            self._updated_at = now

    def delay_ms(self, size: int, now: int) -> int:
        """How many milliseconds from ``now`` a datagram of ``size`` bytes must wait (0: go)."""
        if self.unlimited:
            return 0
        self._refill(now)
        need = min(size, self.burst_bytes) * _MILLI
        missing = need - self._credit
        if missing <= 0:
            return 0
        return -(-missing // self.rate_bytes_per_s)  # ceiling division

    def consume(self, size: int, now: int) -> None:
        """Account for ``size`` bytes sent at ``now`` (call after :meth:`delay_ms` said 0)."""
        if self.unlimited:
            return
        self._refill(now)
        self._credit -= size * _MILLI
