"""The daemon's log output: one line per record, readable or JSON.

:func:`configure_logging` sets up the root logger once per call (calling it again replaces
what it set up before, it does not add to it):

- ``human``: ``2026-11-22T01:23:45.123Z INFO dtncloud.node: message``, then the traceback on
  the following lines if there is one;
- ``json``: one object per line, ``{"ts": "2026-11-22T01:23:45.123Z", "level": "info",
  "logger": "dtncloud.node", "msg": "message", ...}`` with the fields a call passed in
  ``extra=`` and, when there is one, the traceback as a string under ``"exc"``.

Times are UTC with milliseconds, whatever the host's time zone, so lines from nodes in
different places sort together.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from dtncloud.errors import ConfigError

__all__ = ["LEVELS", "FORMATS", "configure_logging"]

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS = ("human", "json")

#: Libraries that log a line per operation at debug level (aiosqlite: every statement);
#: held at warning unless the daemon itself logs at debug.
_NOISY = ("aiosqlite",)

#: Attributes every LogRecord has; whatever else a record carries came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    parts = []
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(parts) or None


class HumanFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message>``, a traceback on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        trace = _traceback(self, record)
        return line if trace is None else f"{line}\n{trace}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        trace = _traceback(self, record)
        if trace is not None:
            entry["exc"] = trace
        # default=str: an extra field that JSON cannot hold is still shown, as text
        return json.dumps(entry, default=str)


class _DaemonHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs, told apart from others by its type
    so that a second call replaces it."""


def configure_logging(
    level: str = "info", fmt: str = "human", stream: TextIO | None = None
) -> None:
    """Send log records at ``level`` and above to ``stream`` (standard error by default) in
    format ``fmt`` (``"human"`` or ``"json"``).

    Raises :class:`~dtncloud.errors.ConfigError` naming ``log.level`` or ``log.format`` when
    either is not one of :data:`LEVELS` / :data:`FORMATS`.
    """
    number = LEVELS.get(level.lower()) if isinstance(level, str) else None
    if number is None:
        raise ConfigError(f"log.level: unknown level {level!r} (use one of {', '.join(LEVELS)})")
    if fmt not in FORMATS:
        raise ConfigError(f"log.format: unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _DaemonHandler)]:
        root.removeHandler(old)
        old.close()
    # sys.stderr read now, not at import: tests and the CLI may have replaced it
    handler = _DaemonHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root.addHandler(handler)
    root.setLevel(number)
    for name in _NOISY:
        logging.getLogger(name).setLevel(
            logging.NOTSET if number <= logging.DEBUG else logging.WARNING
        )
