"""The ``[bpsec]`` section of a node's configuration: named keys and the node's BPSec policy.

    [bpsec]
    sign = "fleet"                 # sign every bundle sent here (BIB-HMAC-SHA2)
    encrypt = "fleet"              # encrypt their payloads (BCB-AES-GCM)
    accept = "fleet"               # verify and decrypt bundles delivered here
    require = false                # refuse unprotected bundles for local applications
    [bpsec.keys]
    fleet = "keys/fleet.key"       # a file: the key in hex, or its raw 16 or 32 bytes

Key files are read when the configuration is loaded, relative to the configuration file,
and must not be readable by other users (as ssh insists for private keys). See
:mod:`dtncloud.bpsec.node_policy` for what the policy does.
"""

from __future__ import annotations

import stat
from pathlib import Path

from dtncloud.bpsec.node_policy import BundleSecurity
from dtncloud.daemon.units import TomlTable, describe_value, parse_bool, parse_path
from dtncloud.errors import ConfigError

__all__ = ["read_bpsec", "read_key_file"]

#: Key files hold a few dozen bytes; anything much larger is not a key.
_MAX_KEY_FILE = 4096
_KEY_SIZES = (16, 32, 48, 64)


def read_key_file(path: Path, where: str) -> bytes:
    """A key from ``path``: hex text (whitespace ignored) or raw bytes, of 16, 32, 48 or 64
    bytes. Raises a one-line ConfigError naming ``where``."""
    try:
        info = path.stat()
        with path.open("rb") as stream:
            raw = stream.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{where}: {path} is readable by other users; make it private (chmod 600)"
        )
    text = raw.decode("ascii", "replace").strip()
    key = raw
    if text and all(c in "0123456789abcdefABCDEF \t\r\n" for c in text):
        key = bytes.fromhex("".join(text.split())) if len("".join(text.split())) % 2 == 0 else raw
    if len(key) not in _KEY_SIZES:
        raise ConfigError(
            f"{where}: {path} holds {len(key)} bytes; a key has 16, 32, 48 or 64 "
            "(write it as hex, e.g. from `openssl rand -hex 32`)"
        )
    return key


def _key_name(value: object, where: str) -> str | None:
    if value is False:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a key name or false, got {describe_value(value)}")
    return value


def read_bpsec(table: TomlTable, config_dir: Path) -> BundleSecurity:
    """Read ``[bpsec]`` (empty: no BPSec at all)."""
    keys: dict[str, bytes] = {}
    keys_table = table.table("keys", "[bpsec.keys]")
    for name in list(keys_table.unknown()):
        where = keys_table.where(name)
        path = keys_table.get(name, lambda value, w: parse_path(value, w, config_dir), None)
        assert path is not None
        keys[name] = read_key_file(path, where)
    keys_table.finish()
    roles = {role: table.get(role, _key_name, None) for role in ("sign", "encrypt", "accept")}
    require = table.get("require", parse_bool, False)
    table.finish()
    try:
        return BundleSecurity(keys=keys, require=require, **roles)
    except ConfigError as exc:
        raise ConfigError(f"[bpsec]: {exc}") from None
