"""Sizes, durations, rates and addresses as written in dtncloud.toml."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.daemon.units import (
    MAX_SIZE,
    TomlTable,
    describe_value,
    format_duration_ms,
    format_hostport,
    format_rate,
    format_size,
    parse_bool,
    parse_choice,
    parse_duration_ms,
    parse_hostport,
    parse_int,
    parse_node_id,
    parse_path,
    parse_rate,
    parse_size,
)
from dtncloud.errors import ConfigError

KIB, MIB, GIB = 1024, 1024**2, 1024**3


def error_of(parse: Callable[..., Any], value: Any, *args: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(value, "store.quota", *args)
    message = str(info.value)
    assert message.startswith("store.quota: ")
    assert "\n" not in message
    return message


# -- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("512B", 512),
        ("64KiB", 64 * KIB),
        ("64 KiB", 64 * KIB),
        ("64kib", 64 * KIB),
        ("64Ki", 64 * KIB),
        ("1.5GiB", 3 * GIB // 2),
        ("1.5 MiB", 3 * MIB // 2),
        ("10MB", 10_000_000),
        ("10 kB", 10_000),
        ("10KB", 10_000),
        ("2G", 2_000_000_000),
        ("1T", 10**12),
        ("1TiB", 1024**4),
        (" 7 ", 7),
        ("1.0001KiB", 1024),  # rounded to the nearest byte
    ],
)
def test_parse_size_reads_si_and_iec_units(text: Any, expected: int) -> None:
    assert parse_size(text, "store.quota") == expected


@pytest.mark.parametrize(
    "value", ["abc", "", "KiB", "-1", "1.5.5", "10 Mbit", "1e6", "nan", "inf", "Ⅻ", "١٢"]
)
def test_parse_size_refuses_garbage_with_the_key_named(value: str) -> None:
    message = error_of(parse_size, value)
    assert message == f"store.quota: expected a size such as 512MiB, got {value!r}"


@pytest.mark.parametrize("value", [True, False, 1.5, float("nan"), None, [1], {"a": 1}])
def test_parse_size_refuses_other_toml_types(value: Any) -> None:
    # TOML `true` is not a size, even though bool is an int in Python.
    assert "expected a size" in error_of(parse_size, value)


def test_parse_size_refuses_negative_and_huge_values() -> None:
    assert "must not be negative" in error_of(parse_size, -1)
    assert "too large" in error_of(parse_size, MAX_SIZE + 1)
    assert "too large" in error_of(parse_size, "9" * 30)


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("2d", 172_800_000),
        ("1w", 604_800_000),
        ("90", 90_000),
        (90, 90_000),
        (0, 0),
        (1.5, 1500),
        (0.001, 1),
    ],
)
def test_parse_duration_ms(value: Any, ms: int) -> None:
    assert parse_duration_ms(value, "engine.retry") == ms


@pytest.mark.parametrize(
    "value", ["abc", "", "-5s", "5y", "h", True, float("nan"), float("inf"), -1.0, -1, [30]]
)
def test_parse_duration_ms_refuses_garbage(value: Any) -> None:
    error_of(parse_duration_ms, value)


# -- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10Mbit/s", 1_250_000),
        ("10 Mbit/s", 1_250_000),
        ("10Mbps", 1_250_000),
        ("10 Mb/s", 1_250_000),
        ("1MB/s", 1_000_000),
        ("1 MiB/s", MIB),
        ("128kbit/s", 16_000),
        ("128Kbit/s", 16_000),
        ("500 B/s", 500),
        ("500", 500),
        (500, 500),
        ("0", 0),
        (0, 0),
        ("unlimited", 0),
        ("1bit/s", 1),  # rounded up: a positive rate never becomes "unlimited"
    ],
)
def test_parse_rate(value: Any, expected: int) -> None:
    assert parse_rate(value, "[[cla]] 1: rate") == expected


def test_parse_rate_refuses_to_guess_bits_or_bytes() -> None:
    message = error_of(parse_rate, "10M")
    assert message == "store.quota: '10M' needs a unit: write 10Mbit/s or 10MB/s"


@pytest.mark.parametrize("value", ["fast", "10 Mbit", "10MB", "-1", True, 1.5, -3, "10 mbit/h"])
def test_parse_rate_refuses_garbage(value: Any) -> None:
    error_of(parse_rate, value)


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:4556", ("127.0.0.1", 4556)),
        ("[::1]:4556", ("::1", 4556)),
        ("[fe80::1%eth0]:1", ("fe80::1%eth0", 1)),
        (":4556", ("", 4556)),
        ("example.org:0", ("example.org", 0)),
        ("node-1.example.org:65535", ("node-1.example.org", 65535)),
        (" host:7 ", ("host", 7)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, "api.tcp") == expected


def test_a_bare_host_takes_the_default_port() -> None:
    assert parse_hostport("example.org", "x", 4556) == ("example.org", 4556)
    assert parse_hostport("[::1]", "x", 4556) == ("::1", 4556)
    assert parse_hostport("::1", "x", 4556) == ("::1", 4556)


def test_a_bare_host_without_a_default_port_is_an_error() -> None:
    assert error_of(parse_hostport, "example.org") == (
        "store.quota: 'example.org' has no port; write it as host:port"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "host:",
        "host:port",
        "host:70000",
        "host:-1",
        "host:123456",
        "::1:4556",
        "[::1",
        "[::1]4556",
        "[not-v6]:1",
        "a b:1",
        "a/b:1",
        "1.2.3.400:1",
        "héllo:1",
        "host:٣",
    ],
)
def test_parse_hostport_refuses_malformed_addresses(text: str) -> None:
    error_of(parse_hostport, text)


def test_parse_hostport_refuses_non_strings() -> None:
    assert "expected an address" in error_of(parse_hostport, 4556)


# -- node IDs, paths, plain values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "node_id"),
    [("dtn://relay/", "dtn://relay/"), ("DTN://relay/", "dtn://relay/"), ("ipn:7.0", "ipn:7.0")],
)
def test_parse_node_id(text: str, node_id: str) -> None:
    assert parse_node_id(text, "node_id") == node_id


@pytest.mark.parametrize(
    "value", ["dtn://relay/inbox", "ipn:7.1", "dtn:none", "relay", "dtn://", "", 7, None]
)
def test_parse_node_id_refuses_endpoints_that_are_not_nodes(value: Any) -> None:
    error_of(parse_node_id, value)


def test_parse_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    assert parse_path("store", "x", tmp_path) == tmp_path / "store"
    assert parse_path("a/../b/./c", "x", tmp_path) == tmp_path / "b" / "c"
    assert parse_path("/abs", "x", tmp_path) == Path("/abs")
    assert parse_path("~/dtn", "x", tmp_path) == Path("/home/op/dtn")
    for bad in ("", "a\0b", 5, False):
        error_of(parse_path, bad, tmp_path)


def test_plain_values_are_checked_for_their_toml_type() -> None:
    assert parse_bool(True, "x") is True
    assert error_of(parse_bool, "yes") == "store.quota: expected true or false, got 'yes'"
    assert error_of(parse_bool, 1) == "store.quota: expected true or false, got 1"
    assert parse_int(5, "x", minimum=1) == 5
    assert error_of(parse_int, True) == "store.quota: expected an integer, got true"
    assert "must be 0.." in error_of(parse_int, -1)
    assert parse_choice("INFO", "x", ("debug", "info")) == "info"
    assert error_of(parse_choice, "loud", ("debug", "info")) == (
        "store.quota: expected one of debug, info, got 'loud'"
    )


def test_toml_table_reports_keys_nobody_asked_for() -> None:
    table = TomlTable({"listen": ":1", "lisen": ":2"}, "[[cla]] 1", "[[cla]] 1: ")
    assert table.get("listen", parse_hostport, None) == ("", 1)
    assert table.get("name", parse_node_id, "default") == "default"
    assert table.unknown() == ["lisen"]
    with pytest.raises(
        ConfigError, match=r"^unknown key 'lisen' in \[\[cla\]\] 1; did you mean 'listen'\?$"
    ):
        table.finish()
    with pytest.raises(ConfigError, match=r"^\[\[cla\]\] 1: type: missing; set it to a type$"):
        table.required("type", parse_bool, "a type")


def test_toml_table_sub_tables() -> None:
    top = TomlTable({"store": {"quota": 1}, "cla": [{}, 5], "log": 3})
    assert top.table("store").where("quota") == "store.quota"
    assert top.table("absent").data == {}
    with pytest.raises(ConfigError, match=r"^\[\[cla\]\] 2: expected a table, got 5$"):
        top.tables("cla", "cla")
    with pytest.raises(ConfigError, match=r"^log: expected a table, got 3$"):
        top.table("log")
    with pytest.raises(ConfigError, match=r"^unknown key 'log' at the top level; "):
        TomlTable({"log": 1}).finish()


# -- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (3 * MIB // 2, "1.5 MiB"),
        (MIB - 1, "1 MiB"),  # not "1024 KiB"
        (10**9, "953.67 MiB"),
        (-2048, "-2 KiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (250, "250ms"),
        (1000, "1s"),
        (5_400_000, "1h 30m"),
        (93_784_005, "1d 2h 3m 4.005s"),
    ],
)
def test_format_duration_ms(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0, "unlimited"), (1, "8 bit/s"), (1_250_000, "10 Mbit/s"), (16_000, "128 kbit/s")],
)
def test_format_rate(rate: int, text: str) -> None:
    assert format_rate(rate) == text


def test_describe_value_uses_toml_words() -> None:
    assert describe_value(True) == "true"
    assert describe_value({}) == "a table"
    assert describe_value([]) == "an array"
    assert describe_value("x" * 100) == repr("x" * 40 + "...")


# -- properties -------------------------------------------------------------------------------


@given(st.integers(0, 1023), st.integers(0, 5), st.booleans())
def test_whole_and_half_units_round_trip_exactly(count: int, power: int, half: bool) -> None:
    n = count * 1024**power + (1024**power // 2 if half and power else 0)
    assert parse_size(format_size(n), "x") == n


# Up to 4 EiB: near 2^63 the rounded text can name more than the largest size accepted.
@given(st.integers(0, MAX_SIZE // 2))
def test_format_size_is_within_half_a_percent(n: int) -> None:
    assert abs(parse_size(format_size(n), "x") - n) <= n * 0.005


@given(st.integers(0, 2**64 - 1))
def test_durations_round_trip_exactly(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms), "x") == ms


@given(st.integers(0, 10**15))
def test_rates_round_trip_closely(rate: int) -> None:
    assert abs(parse_rate(format_rate(rate), "x") - rate) <= rate * 0.005 + 1


@given(st.integers(0, 124), st.integers(0, 4))
def test_round_rates_round_trip_exactly(count: int, power: int) -> None:
    rate = count * 1000**power  # below 1000 of a unit of bits/s: shown without decimals
    assert parse_rate(format_rate(rate), "x") == rate


hosts = st.one_of(
    st.ip_addresses().map(str),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{1,6}){0,3}", fullmatch=True),
)


@given(hosts, st.integers(0, 65535))
def test_addresses_round_trip(host: str, port: int) -> None:
    if host.isdigit():
        host = str(ipaddress.IPv4Address(int(host)))  # a bare number is not a host name
    assert parse_hostport(format_hostport(host, port), "x") == (host, port)


toml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(),
        st.from_regex(r"\s*[0-9.]{0,8}\s*[kKmMgGtTiIbB/sps]{0,6}\s*", fullmatch=True),
        st.from_regex(r"\[?[0-9a-f:.%]{0,12}\]?:?[0-9]{0,7}", fullmatch=True),
        st.dates(),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)


@pytest.mark.parametrize(
    "parse",
    [
        parse_size,
        parse_rate,
        parse_duration_ms,
        parse_hostport,
        lambda value, where: parse_hostport(value, where, 4556),
    ],
)
@given(value=toml_values)
def test_garbage_raises_only_config_error(parse: Callable[[Any, str], Any], value: Any) -> None:
    try:
        parse(value, "key")
    except ConfigError as exc:
        assert str(exc).startswith("key: ")
        assert "\n" not in str(exc)
