"""Option types of the ``dtncloud`` commands.

Each turns the text a user typed into the value the library wants, or fails with a message
that says what was expected; :class:`~dtncloud.cli._output.DtnGroup` prints it as one line.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from dtncloud.bpv7 import DEFAULT_MAX_BUNDLE_SIZE, CrcType
from dtncloud.cli._output import CliError, error_line
from dtncloud.dtntime import DTN_EPOCH, dtn_time_from_unix, parse_duration_ms
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

#: The longest key file read; real keys are 16 to 64 bytes.
MAX_KEY_FILE = 4096

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_HEX = set(string.hexdigits)


class EidParam(click.ParamType):
    """An endpoint ID: ``dtn://node/demux``, ``ipn:NODE.SERVICE`` or ``dtn:none``."""

    name = "EID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> EID:
        if isinstance(value, EID):
            return value
        try:
            return EID.parse(str(value))
        except InvalidEID as exc:
            self.fail(str(exc), param, ctx)


class DurationParam(click.ParamType):
    """A duration such as ``90s``, ``15m``, ``1h``, ``2d`` or ``1h30m``, in milliseconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration_ms(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class SizeParam(click.ParamType):
    """A positive byte count, optionally with a binary unit: ``200``, ``64k``, ``1MiB``."""

    name = "BYTES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"not a size in bytes: {value!r} (examples: 200, 64k, 1M)", param, ctx)
        size = int(match[1]) * _SIZE_UNITS[(match[2] or "")[:1].lower()]
        if size <= 0:
            self.fail("must be at least 1 byte", param, ctx)
        return size


class CrcParam(click.Choice):
    """A CRC type: ``16`` (CRC-16/X.25), ``32`` (CRC-32C) or ``none``."""

    _TYPES = {"16": CrcType.CRC16, "32": CrcType.CRC32C, "none": CrcType.NONE}

    def __init__(self) -> None:
        super().__init__(list(self._TYPES), case_sensitive=False)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> CrcType:
        if isinstance(value, CrcType):
            return value
        return self._TYPES[str(super().convert(value, param, ctx)).lower()]


class CreationTimeParam(click.ParamType):
    """A creation time: ``now``, ``0`` (no clock), an ISO 8601 time, or DTN milliseconds."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.lower() == "now":
            # The CLI is a shell: it may read the clock and hand the time to the core.
            return dtn_time_from_unix(datetime.now(UTC).timestamp())
        if text.isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{text!r} is not a time (use now, 0, an ISO 8601 time such as "
                "2024-05-01T12:00:00Z, or DTN milliseconds)",
                param,
                ctx,
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment < DTN_EPOCH:
            self.fail(f"{text!r} is before the DTN epoch 2000-01-01T00:00:00Z", param, ctx)
        return dtn_time_from_unix(moment.timestamp())


class NameListParam(click.ParamType):
    """A comma-separated list of names from a fixed table, combined into one integer."""

    name = "LIST"

    def __init__(self, table: Mapping[str, int], *, allow_none: bool = False) -> None:
        self.table = table
        self.allow_none = allow_none

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + ",".join(self.table) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if self.allow_none and text == "none":
            return 0
        combined = 0
        for item in filter(None, (part.strip() for part in text.split(","))):
            if item not in self.table:
                known = ", ".join(self.table) + (", none" if self.allow_none else "")
                self.fail(f"unknown name {item!r} (choose from {known})", param, ctx)
            combined |= self.table[item]
        if not combined and not self.allow_none:
            self.fail("give at least one name", param, ctx)
        return combined


class BlockListParam(click.ParamType):
    """Block numbers separated by commas: ``1`` or ``0,1,2`` (0 is the primary block)."""

    name = "N[,N]"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[int]:
        if isinstance(value, list):
            return value
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        if not parts or not all(part.isdigit() for part in parts):
            self.fail(f"expected block numbers such as 1 or 0,1; got {value!r}", param, ctx)
        numbers = [int(part) for part in parts]
        if len(set(numbers)) != len(numbers):
            self.fail(f"a block number is listed twice in {value!r}", param, ctx)
        return numbers


def _hex_key(text: str) -> bytes | None:
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if not compact or len(compact) % 2 or not set(compact) <= _HEX:
        return None
    return bytes.fromhex(compact)


class KeyParam(click.ParamType):
    """Key bytes: hex digits, ``@FILE`` (hex text or raw bytes) or ``env:NAME`` (hex)."""

    name = "KEY"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> bytes:
        if isinstance(value, bytes):
            return value
        text = str(value)
        if text.startswith("@"):
            return self._from_file(text[1:])
        if text.startswith("env:"):
            name = text[4:]
            if name not in os.environ:
                self.fail(f"environment variable {name!r} is not set", param, ctx)
            key = _hex_key(os.environ[name])
            if key is None:
                self.fail(f"environment variable {name!r} does not hold a hex key", param, ctx)
            return key
        key = _hex_key(text)
        if key is None:
            self.fail(
                "not a key: give hex digits (an even number of them), @FILE or env:NAME",
                param,
                ctx,
            )
        return key

    @staticmethod
    def _from_file(path: str) -> bytes:
        # A missing or unreadable key file is a file error (status 1), not a usage error.
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_KEY_FILE + 1)
        except OSError as exc:
            raise CliError(error_line(path, exc)) from exc
        if len(raw) > MAX_KEY_FILE:
            raise CliError(f"{path}: key file is larger than {MAX_KEY_FILE} bytes")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = None
        key = _hex_key(text) if text is not None else None
        if key is None:
            key = raw
            # A printable key written with echo ends in a newline that is not part of it.
            if text is not None and text.endswith("\n") and text[:-1].isprintable():
                key = raw[:-1]
        if not key:
            raise CliError(f"{path}: key file is empty")
        return key


EID_PARAM = EidParam()
DURATION = DurationParam()
SIZE = SizeParam()
CREATION_TIME = CreationTimeParam()
BLOCK_LIST = BlockListParam()
KEY = KeyParam()

#: ``--max-size`` for the commands that read bundles.
MAX_SIZE_OPTION = click.option(
    "--max-size",
    type=SIZE,
    default=DEFAULT_MAX_BUNDLE_SIZE,
    show_default="64M",
    help="Refuse inputs larger than this many bytes (suffixes k, M, G).",
)
#: ``--lenient`` for the commands that read bundles.
LENIENT_OPTION = click.option(
    "--lenient",
    is_flag=True,
    help="Accept pre-RFC 9171 forms, such as the RFC 9173 example bundles.",
)
