"""The [bpsec] section: key files and the node's BPSec policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dtncloud.daemon.config import load_config
from dtncloud.errors import ConfigError
from tests.unit.daemon.test_config import NODE, error, load

KEY_HEX = "00112233445566778899aabbccddeeff" * 2


def _key(directory: Path, name: str, content: str | bytes, mode: int = 0o600) -> None:
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.chmod(path, mode)


def test_keys_in_hex_or_raw_and_the_policy_are_read(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    _key(tmp_path / "keys", "fleet.key", KEY_HEX + "\n")
    _key(tmp_path / "keys", "raw.key", bytes(range(16)))
    config = load(
        tmp_path,
        NODE
        + '[bpsec]\nsign = "fleet"\nencrypt = "raw"\naccept = "fleet"\nrequire = true\n'
        + '[bpsec.keys]\nfleet = "keys/fleet.key"\nraw = "keys/raw.key"\n',
    )
    security = config.bpsec
    assert security.keys["fleet"] == bytes.fromhex(KEY_HEX)
    assert security.keys["raw"] == bytes(range(16))
    assert (security.sign, security.encrypt, security.accept, security.require) == (
        "fleet",
        "raw",
        "fleet",
        True,
    )
    assert KEY_HEX not in repr(config)


def test_no_section_means_no_bpsec(tmp_path: Path) -> None:
    security = load(tmp_path, NODE).bpsec
    assert (security.protector(), security.checks_deliveries) == (None, False)


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        (KEY_HEX, 0o644, "readable by other users"),
        ("abcd", 0o600, "holds 2 bytes"),
        (b"\x00" * 20, 0o600, "holds 20 bytes"),
    ],
)
def test_bad_key_files_are_one_line(
    tmp_path: Path, content: str | bytes, mode: int, expected: str
) -> None:
    _key(tmp_path, "k", content, mode)
    message = error(tmp_path, NODE + '[bpsec.keys]\nk = "k"\n')
    assert "bpsec.keys.k" in message and expected in message


def test_policy_naming_a_missing_key_or_a_misspelt_setting_is_refused(tmp_path: Path) -> None:
    _key(tmp_path, "k", KEY_HEX)
    assert "no key named 'fleet'" in error(
        tmp_path, NODE + '[bpsec]\nsign = "fleet"\n[bpsec.keys]\nk = "k"\n'
    )
    assert "did you mean 'accept'" in error(tmp_path, NODE + '[bpsec]\naccpet = "k"\n')
    with pytest.raises(ConfigError, match=r"no such file|cannot read"):
        load_config(_write_missing(tmp_path))


def _write_missing(directory: Path) -> Path:
    path = directory / "missing.toml"
    path.write_text(NODE + '[bpsec.keys]\nk = "nowhere.key"\n', encoding="utf-8")
    return path
