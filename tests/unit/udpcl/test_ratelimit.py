"""The token bucket that paces UDP sends, stepped by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.errors import ConfigError
from dtncloud.udpcl import TokenBucket


def test_full_bucket_lets_a_burst_through_then_paces() -> None:
    bucket = TokenBucket(rate_bytes_per_s=1000, burst_bytes=600)  # 1 byte per ms
    assert bucket.delay_ms(500, now=0) == 0
    bucket.consume(500, now=0)
    assert bucket.delay_ms(500, now=0) == 400
    assert bucket.delay_ms(500, now=100) == 300
    bucket.consume(500, now=400)
    assert bucket.credit_bytes == 0
    assert bucket.delay_ms(500, now=400) == 500


def test_credit_never_exceeds_the_burst() -> None:
    bucket = TokenBucket(1000, 600)
    bucket.consume(600, now=0)
    assert bucket.delay_ms(600, now=10_000_000) == 0
    bucket.consume(600, now=10_000_000)
    assert bucket.delay_ms(1, now=10_000_000) == 1


def test_datagram_larger_than_the_burst_waits_for_a_full_bucket_then_goes_into_debt() -> None:
    bucket = TokenBucket(1000, 100)
    bucket.consume(100, now=0)
    assert bucket.delay_ms(1000, now=0) == 100  # only a full bucket is needed
    bucket.consume(1000, now=100)
    assert bucket.credit_bytes == -900
    assert bucket.delay_ms(10, now=100) == 910


def test_delay_rounds_up_to_whole_milliseconds() -> None:
    bucket = TokenBucket(3000, 3)  # 3 bytes per ms
    bucket.consume(3, now=0)
    assert bucket.delay_ms(1, now=0) == 1  # a third of a ms, rounded up
    assert bucket.delay_ms(3, now=0) == 1
    assert bucket.delay_ms(3, now=1) == 0


def test_time_going_backwards_counts_as_no_time() -> None:
    bucket = TokenBucket(1000, 100)
    bucket.consume(100, now=500)
    assert bucket.delay_ms(100, now=0) == 100
    assert bucket.delay_ms(100, now=550) == 50


def test_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(0, 1)
    assert bucket.unlimited
    for now in range(5):
        assert bucket.delay_ms(10**9, now) == 0
        bucket.consume(10**9, now)


@pytest.mark.parametrize(("rate", "burst"), [(-1, 10), (10, 0)])
def test_bad_settings_are_config_errors(rate: int, burst: int) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(rate, burst)


@given(
    rate=st.integers(1, 10**7),
    burst=st.integers(1, 10**5),
    sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=30),
)
def test_sending_as_told_never_beats_the_rate(rate: int, burst: int, sizes: list[int]) -> None:
    """Following delay_ms, the bytes sent by time t never exceed burst + rate * t (plus the
    one datagram allowed to overdraw)."""
    bucket = TokenBucket(rate, burst)
    now = 0
    sent = 0
    for size in sizes:
        now += bucket.delay_ms(size, now)
        assert bucket.delay_ms(size, now) == 0
        bucket.consume(size, now)
        sent += size
        assert (sent - size) * 1000 <= burst * 1000 + rate * now
