"""Sizes, durations, rates and addresses as people write them in ``dtncloud.toml``.

Each parser takes a value as :mod:`tomllib` returned it and ``where``, the name of the key it
came from, and either returns a plain integer (or ``(host, port)``) or raises
:class:`~dtncloud.errors.ConfigError` with one line that starts with ``where``::

    store.quota: expected a size such as 512MiB, got 'abc'

Sizes
    An integer count of bytes, or a number and a unit: SI prefixes ``k M G T P E`` count
    powers of 1000 and IEC prefixes ``Ki Mi Gi Ti Pi Ei`` powers of 1024; a trailing ``B`` is
    optional. Case does not matter (``64kib`` is ``64 KiB``): a size is never counted in bits.
Rates
    Bytes per second as an integer, or a number and a unit per second: ``B/s`` counts bytes,
    ``bit/s``, ``bps`` and ``b/s`` count bits, with the prefixes above (``10Mbit/s``,
    ``1 MB/s``). Unlike in sizes the case of ``b`` matters, as IEC 80000-13 has it. ``0`` (or
    ``"unlimited"``) means no limit.
Durations
    A number of seconds (integer or float), or text such as ``500ms``, ``30s``, ``5m``,
    ``1h30m``, ``2d``, ``1w`` (see :func:`dtncloud.dtntime.parse_duration_ms`); the result is
    in milliseconds.
Addresses
    ``host:port``, ``[IPv6]:port``, ``:port`` for every interface (host ``""``), or a bare host
    when the caller has a default port.
Node IDs, paths and plain values
    ``dtn://name/`` or ``ipn:N.0``; a path relative to a base directory, ``~`` expanded;
    booleans, bounded integers and names from a fixed list, checked for their TOML type.

:class:`TomlTable` reads one table with these parsers and reports the keys it was not asked
about, with a suggestion (``unknown key 'lisen' in [[cla]] 1; did you mean 'listen'?``).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from dtncloud import dtntime
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

__all__ = [
    "MAX_SIZE",
    "TomlTable",
    "unknown_key",
    "describe_value",
    "format_duration_ms",
    "format_hostport",
    "format_rate",
    "format_size",
    "parse_duration_ms",
    "parse_bool",
    "parse_choice",
    "parse_hostport",
    "parse_int",
    "parse_node_id",
    "parse_path",
    "parse_rate",
    "parse_size",
]

_T = TypeVar("_T")
_D = TypeVar("_D")

#: The largest size or rate accepted: what a signed 64-bit integer (SQLite's) holds.
MAX_SIZE = 2**63 - 1

# Bounded digit runs: int() refuses more than 4300 digits with a plain ValueError, and no
# sane size has more than a few dozen.
_NUMBER = r"([0-9]{1,30})(?:\.([0-9]{1,30}))?"
_SIZE = re.compile(_NUMBER + r"\s*(?:([kmgtpe])(i)?)?(b)?", re.IGNORECASE | re.ASCII)
# In rates "b" (bit) and "B" (byte) differ, so only the prefix letter ignores case.
_RATE = re.compile(
    _NUMBER + r"\s*(?:([kKmMgGtTpPeE])(i)?)?(B/s|bit/s|bps|b/s)?",
    re.ASCII,
)
_SI = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15, "e": 10**18}
_IEC = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50, "e": 2**60}
_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?", re.ASCII)


def describe_value(value: Any) -> str:
    """``value`` as a short phrase for an error message, named in TOML's terms."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return repr(shown)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return type(value).__name__


def _number(whole: str, fraction: str | None) -> Fraction:
    value = Fraction(int(whole))
    if fraction:
        value += Fraction(int(fraction), 10 ** len(fraction))
    return value


def _multiplier(prefix: str | None, binary: str | None) -> int:
    if not prefix:
        return 1
    return (_IEC if binary else _SI)[prefix.lower()]


def _checked(amount: int, where: str, value: Any) -> int:
    if amount > MAX_SIZE:
        raise ConfigError(f"{where}: {describe_value(value)} is too large (at most 2^63-1)")
    return amount


def parse_size(value: Any, where: str) -> int:
    """A byte count from an integer or text such as ``"64 KiB"``, ``"1.5GiB"`` or ``"10MB"``.

    Fractions are rounded to the nearest byte.
    """
    expected = f"{where}: expected a size such as 512MiB, got {describe_value(value)}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(expected)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: a size must not be negative, got {value}")
        return _checked(value, where, value)
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ConfigError(expected)
    whole, fraction, prefix, binary, _ = match.groups()
    exact = _number(whole, fraction) * _multiplier(prefix, binary)
    return _checked(round(exact), where, value)


def parse_rate(value: Any, where: str) -> int:
    """Bytes per second from an integer or text such as ``"10Mbit/s"`` or ``"1 MB/s"``.

    0 means unlimited. A rate in bits is rounded up to whole bytes, so that a positive rate
    never turns into 0 (unlimited).
    """
    expected = (
        f"{where}: expected a rate such as 10Mbit/s or 1MB/s (0 for unlimited), "
        f"got {describe_value(value)}"
    )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(expected)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: a rate must not be negative, got {value}")
        return _checked(value, where, value)
    text = value.strip()
    if text.lower() == "unlimited":
        return 0
    match = _RATE.fullmatch(text)
    if match is None:
        raise ConfigError(expected)
    whole, fraction, prefix, binary, unit = match.groups()
    if prefix and not unit:
        # "10M" could be bits or bytes, and links are sold in bits while files are measured
        # in bytes: refuse to guess.
        raise ConfigError(f"{where}: {text!r} needs a unit: write {text}bit/s or {text}B/s")
    exact = _number(whole, fraction) * _multiplier(prefix, binary)
    if unit not in (None, "B/s"):
        exact /= 8
    return _checked(math.ceil(exact), where, value)


def parse_duration_ms(value: Any, where: str) -> int:
    """Milliseconds from a number of seconds or text such as ``"1h30m"``; see the module."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(
            f"{where}: expected a duration such as 30s, 5m or 1h30m, got {describe_value(value)}"
        )
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where}: a duration must not be negative, got {value!r}")
        # Through Fraction, so 0.001 s is exactly 1 ms rather than a float's approximation.
        ms = round(Fraction(value) * 1000)
        if ms > 2**64 - 1:
            raise ConfigError(f"{where}: duration too long: {value!r} s (at most 2^64-1 ms)")
        return ms
    try:
        return dtntime.parse_duration_ms(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _valid_host(host: str) -> bool:
    if len(host) > 253 or _HOSTNAME.fullmatch(host) is None:
        return False
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        # All-numeric names are read as IPv4 addresses by resolvers, so they must be valid ones.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_hostport(value: Any, where: str, default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` from ``"host:port"``, ``"[::1]:4556"`` or ``":4556"`` (host ``""``).

    A bare host (``"example.org"``, ``"[::1]"``, ``"::1"``) takes ``default_port``, and is an
    error when there is none. IPv6 hosts come back without brackets.
    """
    example = "such as 127.0.0.1:4556"
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected an address {example}, got {describe_value(value)}")
    text = value.strip()
    shown = describe_value(text)
    port_text: str | None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not _is_ipv6(host) or (rest and not rest.startswith(":")):
            raise ConfigError(f"{where}: expected [IPv6 address]:port, got {shown}")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" not in text or (default_port is not None and _is_ipv6(text)):
        host, port_text = text, None
    else:
        raise ConfigError(
            f"{where}: put an IPv6 address in brackets, as in [::1]:4556; got {shown}"
        )
    if port_text is None and default_port is None and text.isdigit():
        raise ConfigError(f"{where}: {shown} has no host; write :{text} for every interface")
    if host and ":" not in host and not _valid_host(host):
        raise ConfigError(f"{where}: {describe_value(host)} is not a host name or IP address")
    if port_text is None:
        if not host:
            raise ConfigError(f"{where}: expected an address {example}, got an empty string")
        if default_port is None:
            raise ConfigError(f"{where}: {shown} has no port; write it as host:port")
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise ConfigError(f"{where}: the port in {shown} is not a number 0..65535")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{where}: port {port} is out of range 0..65535")
    return host, port


def _expected(what: str, value: Any, where: str) -> ConfigError:
    return ConfigError(f"{where}: expected {what}, got {describe_value(value)}")


def parse_bool(value: Any, where: str) -> bool:
    """``true`` or ``false``; nothing else (no strings, no 0 and 1)."""
    if not isinstance(value, bool):
        raise _expected("true or false", value, where)
    return value


def parse_int(value: Any, where: str, *, minimum: int = 0, maximum: int = MAX_SIZE) -> int:
    """An integer in ``minimum..maximum`` (TOML ``true`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _expected("an integer", value, where)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{where}: must be {minimum}..{maximum}, got {value}")
    return value


def parse_choice(value: Any, where: str, options: Sequence[str]) -> str:
    """One of ``options`` (lower-case names), whatever the case it was written in."""
    if not isinstance(value, str):
        raise _expected("a string", value, where)
    if value.lower() not in options:
        raise _expected(f"one of {', '.join(options)}", value, where)
    return value.lower()


def parse_node_id(value: Any, where: str) -> str:
    """A node ID (``dtn://name/``, ``ipn:7.0``) in its normal text form (lower-case scheme)."""
    if not isinstance(value, str):
        raise _expected("a node ID such as dtn://name/ or ipn:7.0", value, where)
    try:
        eid = EID.parse(value)
    except InvalidEID as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if eid.is_none or not eid.is_node_id:
        raise ConfigError(
            f"{where}: {describe_value(value)} is not a node ID (such as dtn://name/ or ipn:7.0)"
        )
    return str(eid)


def parse_path(value: Any, where: str, base: Path) -> Path:
    """An absolute path: ``value`` with ``~`` expanded, relative to ``base``, normalised
    (``a/../b`` is ``b``). ``base`` should be absolute."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(f"{where}: expected a path, got {describe_value(value)}")
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # no home directory to expand ~ to
        raise ConfigError(f"{where}: cannot expand '~' in {value!r}") from None
    return Path(os.path.normpath(base / path))


def format_hostport(host: str, port: int) -> str:
    """``host:port`` with an IPv6 host in brackets: the inverse of :func:`parse_hostport`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_size(n: int) -> str:
    """Human text for a byte count in IEC units: ``"512 B"``, ``"64 KiB"``, ``"1.5 MiB"``.

    At most two decimals are shown, so the text is within 0.5% of ``n``; it parses back to
    exactly ``n`` when ``n`` is a whole or half number of its unit.
    """
    if n < 0:
        return "-" + format_size(-n)
    if n < 1024:
        return f"{n} B"
    power = min((n.bit_length() - 1) // 10, len(_BINARY_UNITS))
    text = _two_decimals(n / 1024**power)
    if text == "1024" and power < len(_BINARY_UNITS):
        # 1023.999 KiB rounds to "1024 KiB": say "1 MiB" instead.
        power += 1
        text = _two_decimals(n / 1024**power)
    return f"{text} {_BINARY_UNITS[power - 1]}"


def format_rate(bytes_per_s: int) -> str:
    """Human text for a rate in bits per second, as links are sold: ``"10 Mbit/s"``;
    ``"unlimited"`` for 0. :func:`parse_rate` reads it back (exactly for round numbers)."""
    if bytes_per_s == 0:
        return "unlimited"
    bits = bytes_per_s * 8
    prefixes = ("", "k", "M", "G", "T")
    power = min((len(str(bits)) - 1) // 3, len(prefixes) - 1)
    text = _two_decimals(bits / 1000**power)
    if text == "1000" and power < len(prefixes) - 1:
        # 999.999 kbit/s rounds to "1000 kbit/s": say "1 Mbit/s" instead.
        power += 1
        text = _two_decimals(bits / 1000**power)
    return f"{text} {prefixes[power]}bit/s"


def _two_decimals(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_duration_ms(ms: int) -> str:
    """Human text for a duration: ``"1h 30m"``, ``"250ms"``, ``"2d 3h 4.5s"``.

    It is :func:`dtncloud.dtntime.format_duration_ms` with a space between the parts, so it
    is exact and :func:`parse_duration_ms` reads it back.
    """
    return re.sub(r"(?<=[a-z])(?=[0-9])", " ", dtntime.format_duration_ms(ms))


# -- tables -------------------------------------------------------------------------------------


def parse_toml_bytes(raw: bytes, file: str | os.PathLike[str]) -> dict[str, Any]:
    """The table of a TOML file's bytes, with one-line errors naming ``file``. A byte order
    mark is allowed: some editors start UTF-8 files with one, and TOML refuses it."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: TOML syntax error: {exc}") from None


def unknown_key(key: str, place: str, known: Iterable[str]) -> ConfigError:
    """The error for ``key`` ``place`` (``"in [store]"``), suggesting the closest known key."""
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(names)}"
    return ConfigError(f"unknown key {describe_value(key)} {place}; {hint}")


class TomlTable:
    """One TOML table being read; remembers the keys asked for, so the rest are reported.

    ``title`` names the table in messages (``"[store]"``, ``"[[cla]] 2"``) and ``prefix``
    goes before a key to say where a value came from (``"store."``, ``"[[cla]] 2: "``).
    Converters are the parsers of this module: ``(value, where) -> result``. TOML has no
    null, so None always means "absent".
    """

    __slots__ = ("asked", "data", "prefix", "title")

    def __init__(
        self, data: Any, title: str = "", prefix: str = "", where: str = "configuration"
    ) -> None:
        if not isinstance(data, dict):
            raise _expected("a table", data, where)
        self.data: dict[str, Any] = data
        self.title = title
        self.prefix = prefix
        self.asked: set[str] = set()

    @property
    def place(self) -> str:
        return f"in {self.title}" if self.title else "at the top level"

    def where(self, key: str) -> str:
        return self.prefix + key

    def raw(self, key: str) -> Any:
        """The value of ``key`` as TOML gave it, or None."""
        self.asked.add(key)
        return self.data.get(key)

    def get(self, key: str, convert: Callable[[Any, str], _T], default: _D) -> _T | _D:
        value = self.raw(key)
        return default if value is None else convert(value, self.where(key))

    def required(self, key: str, convert: Callable[[Any, str], _T], what: str) -> _T:
        value = self.raw(key)
        if value is None:
            raise ConfigError(f"{self.where(key)}: missing; set it to {what}")
        return convert(value, self.where(key))

    def table(self, key: str, title: str | None = None) -> TomlTable:
        """The sub-table ``key`` (empty if absent), titled ``title`` or ``"[key]"``."""
        value = self.raw(key)
        name = self.where(key)
        return TomlTable({} if value is None else value, title or f"[{name}]", name + ".", name)

    def tables(self, key: str, title: str) -> list[TomlTable]:
        """The entries of an array of tables ``[[title]]``, titled ``"[[title]] N"``."""
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _expected(f"[[{title}]] tables", value, self.where(key))
        return [
            TomlTable(item, f"[[{title}]] {n}", f"[[{title}]] {n}: ", f"[[{title}]] {n}")
            for n, item in enumerate(value, 1)
        ]

    def unknown(self) -> list[str]:
        """The keys present that nobody asked for."""
        return [key for key in self.data if key not in self.asked]

    def finish(self) -> None:
        """Raise for the first key present that nobody asked for."""
        for key in self.unknown():
            raise unknown_key(key, self.place, self.asked)
