"""Settings of an SBD terminal: message sizes, timings, signal, retries and budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dtncloud.errors import ConfigError
from dtncloud.sbd.at import MO_MAX, MT_MAX
from dtncloud.sbd.cost import credits_for
from dtncloud.sbd.segment import HEADER_SIZE, max_bundle_size, piece_capacity

__all__ = ["SbdConfig"]

_SERIAL = re.compile(r"\d{1,7}")


@dataclass(frozen=True, kw_only=True)
class SbdConfig:
    """What the sans-IO SBD terminal needs to know. Times are in milliseconds.

    ``piece_size`` is the largest message the *receiving* end accepts: 270 bytes (the MT
    limit of a 9602/9603) when the peer is another modem, up to ``mo_max`` when the peer is a
    web service fed by the provider. ``destination_serial`` (RockBLOCK serial number of the
    peer modem) puts ``RB`` + 7 digits in front of every message, RockBLOCK's way of routing
    one modem's messages to another; ``mo_max`` (340, or 1960 for a 9522/9523) bounds prefix
    plus piece.
    """

    piece_size: int = MT_MAX
    mo_max: int = MO_MAX
    destination_serial: str | None = None
    #: round pieces down to whole credits (50 bytes) when that leaves room
    credit_aligned: bool = True
    #: do not start a session below this signal strength (0-5; 0 never waits)
    min_signal: int = 2
    #: how long to wait before looking at the signal again when it is too weak
    signal_wait_ms: int = 10_000
    #: longest wait for the answer to an ordinary command
    command_timeout_ms: int = 10_000
    #: longest wait for the answer to AT+SBDIX (a session lasts up to about a minute)
    session_timeout_ms: int = 90_000
    #: wait after a failed session (Iridium advises about a minute), doubled each time ...
    retry_delay_ms: int = 60_000
    #: ... up to this
    retry_max_delay_ms: int = 600_000
    #: each wait is varied by up to this fraction, from the injected random generator
    retry_jitter: float = 0.2
    #: least time between the start of two sessions (0: back to back)
    session_interval_ms: int = 0
    #: check the mailbox this often when nothing else did (None: rely on ring alerts)
    mailbox_check_interval_ms: int | None = None
    #: credits that may be spent per UTC day (None: no limit)
    daily_credit_budget: int | None = None
    #: a partial bundle that receives nothing new for this long is dropped
    reassembly_timeout_ms: int = 2 * 86_400_000
    max_partial_bundles: int = 8
    max_partial_bytes: int = 1 << 20
    #: consecutive unanswered commands before the modem counts as gone (link down)
    max_command_failures: int = 3
    #: wait before initialising the modem again after it stopped answering
    reinit_delay_ms: int = 5_000

    def __post_init__(self) -> None:
        def fail(key: str, what: str) -> None:
            raise ConfigError(f"sbd {key}: {what}")

        if not 1 <= self.mo_max <= 1960:
            fail("mo_max", f"must be 1..1960 bytes, not {self.mo_max}")
        if self.destination_serial is not None and not _SERIAL.fullmatch(self.destination_serial):
            fail("destination_serial", f"expected up to 7 digits, got {self.destination_serial!r}")
        if not HEADER_SIZE + 1 <= self.piece_size <= self.mo_max - self.prefix_size:
            fail(
                "piece_size",
                f"must be {HEADER_SIZE + 1}..{self.mo_max - self.prefix_size} bytes "
                f"(the MO limit less the address prefix), not {self.piece_size}",
            )
        if not 0 <= self.min_signal <= 5:
            fail("min_signal", f"must be 0..5, not {self.min_signal}")
        for key in (
            "signal_wait_ms",
            "command_timeout_ms",
            "session_timeout_ms",
            "retry_delay_ms",
            "retry_max_delay_ms",
            "reassembly_timeout_ms",
            "reinit_delay_ms",
        ):
            if getattr(self, key) <= 0:
                fail(key, "must be positive")
        if self.retry_max_delay_ms < self.retry_delay_ms:
            fail("retry_max_delay_ms", "must not be shorter than retry_delay_ms")
        if not 0 <= self.retry_jitter < 1:
            fail("retry_jitter", f"must be 0 up to (not including) 1, not {self.retry_jitter}")
        if self.session_interval_ms < 0:
            fail("session_interval_ms", "must not be negative")
        if self.mailbox_check_interval_ms is not None and self.mailbox_check_interval_ms <= 0:
            fail("mailbox_check_interval_ms", "must be positive (or unset)")
        if self.daily_credit_budget is not None:
            needed = credits_for(self.prefix_size + self.piece_size)
            if self.daily_credit_budget < needed:
                fail(
                    "daily_credit_budget",
                    f"{self.daily_credit_budget} credits cannot pay for one message "
                    f"of {self.prefix_size + self.piece_size} bytes ({needed} credits)",
                )
        if self.max_partial_bundles < 1 or self.max_partial_bytes < self.piece_size:
            fail("max_partial_bundles", "reassembly limits are too small")
        if self.max_command_failures < 1:
            fail("max_command_failures", "must be at least 1")

    @property
    def prefix(self) -> bytes:
        """What goes in front of every message sent (the RockBLOCK address, or nothing)."""
        if self.destination_serial is None:
            return b""
        return b"RB" + self.destination_serial.zfill(7).encode("ascii")

    @property
    def prefix_size(self) -> int:
        return 0 if self.destination_serial is None else 9

    @property
    def capacity(self) -> int:
        """Bundle bytes in one segment."""
        return piece_capacity(
            self.piece_size, prefix=self.prefix_size, credit_aligned=self.credit_aligned
        )

    @property
    def max_bundle_size(self) -> int:
        """The largest bundle that can be sent (256 segments)."""
        return max_bundle_size(self.capacity)
