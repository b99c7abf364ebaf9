"""DTN time (RFC 9171 section 4.2.6) and durations.

DTN time is an unsigned count of milliseconds since 2000-01-01T00:00:00 UTC, ignoring leap
seconds; 0 means "unknown". Nothing here reads a clock: callers pass the current time in, as
every core object does (see ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from dtncloud.errors import ConfigError

#: Seconds from the Unix epoch to the DTN epoch.
DTN_EPOCH_UNIX = 946_684_800
DTN_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

_DURATION_PART = re.compile(r"(\d+)(?:\.(\d+))?\s*(ms|s|m|h|d|w)?", re.IGNORECASE | re.ASCII)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
#: The longest duration accepted, in ms: durations are added to DTN times, which are 64-bit.
_MAX_DURATION_MS = 2**64 - 1
_MAX_DURATION_DIGITS = len(str(_MAX_DURATION_MS))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def dtn_time_from_unix(unix_seconds: float) -> int:
    """DTN time in milliseconds for a Unix timestamp in seconds."""
    ms = round((unix_seconds - DTN_EPOCH_UNIX) * 1000)
    if ms < 0:
        raise ValueError("time before the DTN epoch (2000-01-01)")
    return ms


def unix_from_dtn_time(dtn_ms: int) -> float:
    """Unix time in seconds for a DTN time in milliseconds."""
    return dtn_ms / 1000 + DTN_EPOCH_UNIX


def datetime_from_dtn_time(dtn_ms: int) -> datetime:
    return DTN_EPOCH + timedelta(milliseconds=dtn_ms)


def format_dtn_time(dtn_ms: int) -> str:
    """ISO 8601 text for a DTN time; ``"unknown (0)"`` for 0."""
    if dtn_ms == 0:
        return "unknown (0)"
    try:
        return (
            datetime_from_dtn_time(dtn_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
    except OverflowError:
        return f"{dtn_ms} ms after 2000-01-01 (beyond year 9999)"


def parse_duration_ms(text: str | int) -> int:
    """Milliseconds in a duration such as ``"1h"``, ``"90s"``, ``"1h30m"``, ``"500ms"``.

    A bare number counts seconds. The result is exact (rounded to the nearest millisecond) and
    at most 2^64-1, the largest DTN time. Raises :class:`ConfigError` with the offending text.
    """
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"duration must not be negative: {text}")
        if text > _MAX_DURATION_MS // 1000:
            raise ConfigError(f"duration too long: {text} s (at most 2^64-1 ms)")
        return text * 1000
    spec = text.strip().replace(" ", "")
    if not spec:
        raise ConfigError("empty duration")
    too_long = f"duration too long: {_clip(text)!r} (at most 2^64-1 ms)"
    # Exact arithmetic: a float sum loses milliseconds past 2^53 and turns a long digit string
    # into inf (round(inf) raises OverflowError).
    total = Fraction(0)
    pos = 0
    for match in _DURATION_PART.finditer(spec):
        if match.start() != pos:
            break
        whole, fraction, unit = match.groups()
        # Checked before int(), which refuses strings over 4300 digits with a plain ValueError.
        whole = whole.lstrip("0") or "0"
        if len(whole) > _MAX_DURATION_DIGITS:
            raise ConfigError(too_long)
        scale = _UNIT_MS[(unit or "s").lower()]
        total += int(whole) * scale
        if fraction:
            # Digits past the 20th add less than 10^-11 ms (scale < 10^9): they are dropped.
            digits = fraction[:_MAX_DURATION_DIGITS]
            total += Fraction(int(digits) * scale, 10 ** len(digits))
        pos = match.end()
    if pos != len(spec) or pos == 0:
        raise ConfigError(f"not a duration: {text!r} (examples: 90s, 15m, 1h, 2d, 1h30m)")
    ms = round(total)
    if ms > _MAX_DURATION_MS:
        raise ConfigError(too_long)
    return ms


def format_duration_ms(ms: int) -> str:
    """Compact human text for a duration in milliseconds: ``"1h30m"``, ``"250ms"``."""
    if ms < 1000:
        return f"{ms}ms"
    parts = []
    seconds, millis = divmod(ms, 1000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    if seconds or millis:
        parts.append(f"{seconds}.{millis:03d}s".replace(".000s", "s"))
    return "".join(parts)
