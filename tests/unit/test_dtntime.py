"""DTN time and durations (dtncloud.dtntime): epoch arithmetic, formatting, duration parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.dtntime import (
    DTN_EPOCH,
    DTN_EPOCH_UNIX,
    datetime_from_dtn_time,
    dtn_time_from_unix,
    format_dtn_time,
    format_duration_ms,
    parse_duration_ms,
    unix_from_dtn_time,
)
from dtncloud.errors import ConfigError

# -- DTN time ---------------------------------------------------------------------------------


def test_epoch_is_2000_01_01_utc() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC) == DTN_EPOCH
    assert DTN_EPOCH_UNIX == 946_684_800
    assert datetime.fromtimestamp(DTN_EPOCH_UNIX, UTC) == DTN_EPOCH


@pytest.mark.parametrize(
    ("unix", "dtn_ms"),
    [
        (946_684_800, 0),
        (946_684_800.001, 1),
        (946_684_801, 1000),
        (1_700_000_000, 753_315_200_000),
        (1_700_000_000.1234, 753_315_200_123),
    ],
)
def test_dtn_time_from_unix(unix: float, dtn_ms: int) -> None:
    assert dtn_time_from_unix(unix) == dtn_ms


def test_time_before_the_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="before the DTN epoch"):
        dtn_time_from_unix(946_684_799)


@given(st.integers(0, 2**42))
def test_unix_round_trip(dtn_ms: int) -> None:
    assert dtn_time_from_unix(unix_from_dtn_time(dtn_ms)) == dtn_ms


@given(st.integers(1, 2**47))  # 2^47 ms is about year 6460
def test_formatted_dtn_time_reads_back(dtn_ms: int) -> None:
    moment = datetime.fromisoformat(format_dtn_time(dtn_ms).replace("Z", "+00:00"))
    assert moment == datetime_from_dtn_time(dtn_ms)
    assert (moment - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) == dtn_ms


@pytest.mark.parametrize(
    ("dtn_ms", "text"),
    [
        (0, "unknown (0)"),
        (1, "2000-01-01T00:00:00.001Z"),
        (753_315_200_123, "2023-11-14T22:13:20.123Z"),
        (86_400_000 * 366, "2001-01-01T00:00:00.000Z"),  # 2000 is a leap year
        (2**64 - 1, "18446744073709551615 ms after 2000-01-01 (beyond year 9999)"),
    ],
)
def test_format_dtn_time(dtn_ms: int, text: str) -> None:
    assert format_dtn_time(dtn_ms) == text


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("90s", 90_000),
        ("90", 90_000),
        ("15m", 900_000),
        ("1h", 3_600_000),
        ("2d", 172_800_000),
        ("1w", 604_800_000),
        ("1h30m", 5_400_000),
        (" 1h 30m ", 5_400_000),
        ("1.5h", 5_400_000),
        ("0.25s", 250),
        ("1m30", 90_000),
        ("1H", 3_600_000),
        ("10MS", 10),
        ("1d2h3m4s5ms", 93_784_005),
        ("0", 0),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_parse_duration_takes_an_int_as_seconds() -> None:
    assert parse_duration_ms(90) == 90_000
    with pytest.raises(ConfigError, match="must not be negative: -1"):
        parse_duration_ms(-1)


@pytest.mark.parametrize(
    "text", ["", "   ", "h", "1x", "-5s", "1h-", "s1", "1..5s", "1e3s", "one hour", "1h?"]
)
def test_parse_duration_errors_name_the_text(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration_ms(text)
    message = str(caught.value)
    assert "duration" in message
    if text.strip():
        assert repr(text) in message


def test_absurdly_long_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_duration_ms("9" * 400)


@pytest.mark.parametrize(
    "text",
    ["18446744073709551616ms", "18446744073709551.616s", "9" * 5000 + "ms", "1" + "0" * 30 + "w"],
)
def test_duration_beyond_64_bits_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="duration too long"):
        parse_duration_ms(text)


def test_durations_are_exact_up_to_64_bits() -> None:
    assert parse_duration_ms("18446744073709551615ms") == 2**64 - 1
    assert parse_duration_ms("9007199254740993ms") == 2**53 + 1  # a float would lose the 1
    assert parse_duration_ms("0" * 5000 + "1s") == 1000
    assert parse_duration_ms("1." + "0" * 5000 + "1s") == 1000
    assert parse_duration_ms(18446744073709551) == 18446744073709551000
    with pytest.raises(ConfigError, match="duration too long"):
        parse_duration_ms(18446744073709552)


def test_duration_digits_are_ascii() -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration_ms("\u0661h")  # Arabic-Indic digit one


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.500s"),
        (60_500, "1m0.500s"),
        (90_000, "1m30s"),
        (3_600_000, "1h"),
        (5_400_000, "1h30m"),
        (691_200_000, "8d"),
        (93_784_005, "1d2h3m4.005s"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


@given(st.integers(0, 2**53))
def test_format_then_parse_duration_round_trips(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms)) == ms
