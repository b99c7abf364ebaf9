"""``[[cla]]`` settings of the disrupted links: serial radios, Iridium SBD modems, data mules.

These links carry no node IDs and have no addresses to connect to: a serial line or a modem
reaches the one neighbour at its other end, named by a ``[[peer]]`` with ``cla = <name>``
(and no address). Their settings are read here into plain keyword arguments for the
drivers' option classes (:class:`~dtncloud.cla.serial.SerialOptions`,
:class:`~dtncloud.cla.sbd.SbdOptions`); the drivers check the values once more when the
daemon builds them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from dtncloud.daemon.units import (
    TomlTable,
    parse_bool,
    parse_choice,
    parse_duration_ms,
    parse_int,
    parse_node_id,
    parse_path,
    parse_rate,
    parse_size,
)
from dtncloud.errors import ConfigError

__all__ = ["DEVICE_CLA_TYPES", "DEVICE_KEYS", "read_device_settings"]

#: CLA types whose other end is one neighbour behind a device or a directory.
DEVICE_CLA_TYPES: Final = ("serial", "sbd", "mule")

_Convert = Callable[[Any, str], Any]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string")
    return value


def _at_least(minimum: int) -> _Convert:
    return lambda value, where: parse_int(value, where, minimum=minimum)


def _hex_key(value: Any, where: str) -> str:
    text = _string(value, where).strip()
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigError(f"{where}: expected an Ed25519 public key as 64 hex digits")
    return text.lower()


def _seconds(value: Any, where: str) -> float:
    return parse_duration_ms(value, where) / 1000


# Each setting: TOML key -> (driver option name, converter). Sizes, rates and durations take
# the units every other section takes.
_SERIAL: Final[dict[str, tuple[str, _Convert]]] = {
    "baud": ("baud_rate", _at_least(50)),
    "framing": ("framing", lambda v, w: parse_choice(v, w, ("cobs", "slip"))),
    "max_frame_size": ("max_frame_size", parse_size),
    "max_bundle_size": ("max_bundle_size", parse_size),
    "rate": ("rate_bytes_per_s", parse_rate),
    "reassembly_timeout": ("reassembly_timeout_s", _seconds),
    "reopen": ("reopen_initial_s", _seconds),
    "reopen_max": ("reopen_max_s", _seconds),
}
_SBD: Final[dict[str, tuple[str, _Convert]]] = {
    "baud": ("baudrate", _at_least(50)),
    "piece_size": ("piece_size", parse_size),
    "min_signal": ("min_signal", _at_least(0)),
    "retry": ("retry_delay_ms", parse_duration_ms),
    "retry_max": ("retry_max_delay_ms", parse_duration_ms),
    "session_interval": ("session_interval_ms", parse_duration_ms),
    "mailbox_check": ("mailbox_check_interval_ms", parse_duration_ms),
    "daily_budget": ("daily_credit_budget", _at_least(1)),
    "destination_serial": ("destination_serial", _string),
    "reassembly_timeout": ("reassembly_timeout_ms", parse_duration_ms),
}
_MULE: Final[dict[str, tuple[str, _Convert]]] = {
    "poll": ("poll_s", _seconds),
    "settle": ("settle_s", _seconds),
    "capacity": ("capacity", parse_size),
    "reserve": ("reserve", parse_size),
    "order": ("order", lambda v, w: parse_choice(v, w, ("urgent", "smallest", "engine"))),
    "any_destination": ("any_destination", parse_bool),
    "carrier_id": ("carrier_id", parse_node_id),
    "max_bundle_size": ("max_bundle_size", parse_size),
}
_MULE_PATHS: Final = ("key_path", "trusted_dir", "watch")
_BY_TYPE: Final = {"serial": _SERIAL, "sbd": _SBD, "mule": _MULE}
#: Every key of each type (for telling a misspelt key from another type's).
DEVICE_KEYS: Final = {
    "serial": frozenset(_SERIAL) | {"device"},
    "sbd": frozenset(_SBD) | {"device"},
    "mule": frozenset(_MULE) | set(_MULE_PATHS) | {"trusted_keys"},
}


def read_device_settings(kind: str, table: TomlTable, config_dir: Path) -> dict[str, Any]:
    """The driver options of a ``serial``, ``sbd`` or ``mule`` ``[[cla]]`` (paths are
    relative to the configuration file; a mule's ``key_path`` defaults to ``mule.key`` in
    the data directory, filled in when the daemon builds it)."""
    settings: dict[str, Any] = {}
    path = lambda value, where: parse_path(value, where, config_dir)  # noqa: E731
    if kind in ("serial", "sbd"):
        settings["device"] = str(table.required("device", _string, '"/dev/ttyUSB0"'))
    else:
        for key in _MULE_PATHS:
            value = table.get(key, path, None)
            if value is not None:
                settings[key] = value
        trusted = table.table("trusted_keys", f"[cla.trusted_keys] of {table.title}")
        keys = {node: trusted.get(node, _hex_key, "") for node in trusted.unknown()}
        trusted.finish()
        if keys:
            settings["trusted_keys"] = {
                parse_node_id(n, trusted.where(n)): k for n, k in keys.items()
            }
    for key, (option, convert) in _BY_TYPE[kind].items():
        value = table.get(key, convert, None)
        if value is not None:
            settings[option] = value
    return settings
