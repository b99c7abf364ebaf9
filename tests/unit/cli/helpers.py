"""Helpers for the ``dtncloud`` command tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from dtncloud.bpv7 import Bundle, decode_bundle
from dtncloud.dtntime import DTN_EPOCH_UNIX

#: 2024-05-01T12:00:00Z, and the same instant as DTN milliseconds.
CREATED_ISO = "2024-05-01T12:00:00Z"
CREATED_MS = (1_714_564_800 - DTN_EPOCH_UNIX) * 1000
#: Keys for the security tests (hex): a 16-byte HMAC key, a 32-byte AES key, a 16-byte KEK.
HMAC_KEY = "1a2b" * 8
AES_KEY = "00112233445566778899aabbccddeeff" * 2
KEK = "6162636465666768696a6b6c6d6e6f70"

Run = Callable[..., Result]


def read_bundle(path: Path) -> Bundle:
    return decode_bundle(path.read_bytes())


def one_error_line(result: Result) -> str:
    """The single ``dtncloud: error:`` line on stderr (and no traceback anywhere)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dtncloud: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def error_lines(result: Result) -> list[str]:
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("dtncloud: error: ") for line in lines), result.stderr
    return lines
