"""The daemon's log formats, levels and set-up."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from dtncloud.daemon.logs import HumanFormatter, JsonFormatter, configure_logging
from dtncloud.errors import ConfigError

MOMENT = datetime(2026, 11, 22, 1, 23, 45, 123_456, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger: put it back as the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = logging.getLogger("aiosqlite").level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiosqlite").setLevel(noisy)


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("dtncloud.node", logging.INFO, __file__, 1, msg, args or ("x",), None)
    rec.created = MOMENT
    rec.__dict__.update(extra)
    return rec


def test_human_line() -> None:
    line = HumanFormatter().format(record())
    assert line == "2026-11-22T01:23:45.123Z INFO dtncloud.node: hello x"


def test_json_line() -> None:
    entry = json.loads(JsonFormatter().format(record(peer="dtn://b/", bytes=12)))
    assert entry == {
        "ts": "2026-11-22T01:23:45.123Z",
        "level": "info",
        "logger": "dtncloud.node",
        "msg": "hello x",
        "peer": "dtn://b/",
        "bytes": 12,
    }


def test_through_configure_logging_in_each_format() -> None:
    stream = io.StringIO()
    configure_logging("info", "human", stream)
    log = logging.getLogger("dtncloud.test")
    log.debug("not shown")
    log.warning("disk %d%% full", 90)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING dtncloud.test: disk 90% full\n",
        stream.getvalue(),
    )

    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    log.debug("link up", extra={"link_id": "tcpcl-1", "obj": object()})
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["level"] == "debug"
    assert entry["msg"] == "link up"
    assert entry["link_id"] == "tcpcl-1"
    assert entry["obj"].startswith("<object")  # not JSON: shown as text


def test_exceptions_become_one_string() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("dtncloud.test").exception("it broke")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error"
    assert "Traceback" in entry["exc"] and "ZeroDivisionError" in entry["exc"]

    stream = io.StringIO()
    configure_logging("info", "human", stream)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("dtncloud.test").exception("it broke")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR dtncloud.test: it broke")
    assert rest[-1] == "ZeroDivisionError: division by zero"


def test_calling_twice_does_not_double_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "human", first)
    configure_logging("info", "json", second)
    logging.getLogger("dtncloud.test").info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


@pytest.mark.parametrize(
    ("level", "fmt", "key"),
    [("loud", "human", "log.level"), ("info", "xml", "log.format"), ("", "json", "log.level")],
)
def test_bad_settings_are_config_errors(level: str, fmt: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        configure_logging(level, fmt, io.StringIO())
    message = str(caught.value)
    assert message.startswith(key)
    assert "\n" not in message


def test_level_names_are_case_blind() -> None:
    configure_logging("WARNING", "human", io.StringIO())
    assert logging.getLogger().level == logging.WARNING


def test_aiosqlite_is_quiet_unless_debugging() -> None:
    noisy = logging.getLogger("aiosqlite")
    stream = io.StringIO()
    configure_logging("info", "human", stream)
    noisy.info("executing a statement")
    assert stream.getvalue() == ""
    noisy.warning("something real")
    assert "something real" in stream.getvalue()

    stream = io.StringIO()
    configure_logging("debug", "human", stream)
    noisy.debug("executing a statement")
    assert "executing a statement" in stream.getvalue()
