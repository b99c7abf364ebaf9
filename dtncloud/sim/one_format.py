"""Traces in the ONE simulator's external-events format, read into a simulation.

Two kinds of line are read, one event per line, fields separated by white space, times in
seconds (decimals allowed), blank lines and lines starting with ``#`` skipped::

    TIME CONN HOST1 HOST2 up|down        a connection comes up or goes down
    TIME C MSGID FROM TO SIZE [RSIZE]    FROM creates message MSGID of SIZE bytes for TO

(a response size RSIZE is ignored: responses are not modelled; a sixth field on a CONN line,
an interface name, is ignored too). Other events of the format (``S``, ``DE``, ``A``,
``DR``, ``R``) describe what a ONE run did, not its input, and are refused.

The ONE names hosts by number: host ``7`` becomes the node ``dtn://n7/``. Other host names
(letters, digits, ``.``, ``_``, ``-``) are kept: host ``base`` is ``dtn://base/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtncloud.errors import ConfigError
from dtncloud.sim.world import Simulation

__all__ = [
    "ConnectionEvent",
    "Event",
    "MessageEvent",
    "TraceError",
    "hosts_of",
    "node_name",
    "parse_events",
    "read_events",
    "schedule_events",
]

_HOST = re.compile(r"[A-Za-z0-9._-]+")


class TraceError(ConfigError):
    """A line of a trace that cannot be read; the message starts ``FILE:LINE:``."""


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """``a`` and ``b`` (node names, see :func:`node_name`) connect (``up``) or part."""

    time_ms: int
    a: str
    b: str
    up: bool
    line: int = 0


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """``source`` creates ``message_id``, ``size`` bytes for ``destination``."""

    time_ms: int
    message_id: str
    source: str
    destination: str
    size: int
    line: int = 0


Event = ConnectionEvent | MessageEvent


def node_name(host: str) -> str:
    """The simulator's name of a ONE host: ``7`` -> ``n7``, ``base`` -> ``base``."""
    return f"n{int(host)}" if host.isdigit() else host


def _time_ms(token: str) -> int:
    try:
        seconds = float(token)
    except ValueError:
        raise ValueError(f"time {token!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"time {token!r} must be a number of seconds >= 0")
    return round(seconds * 1000)


def _host(token: str) -> str:
    if not _HOST.fullmatch(token):
        raise ValueError(f"host {token!r} is not a host number or name")
    return node_name(token)


def _parse_line(fields: list[str], number: int) -> Event:
    if len(fields) < 2:
        raise ValueError("expected TIME CONN A B up|down or TIME C ID FROM TO SIZE")
    time_ms = _time_ms(fields[0])
    kind = fields[1]
    if kind == "CONN":
        if len(fields) not in (5, 6):
            raise ValueError("expected TIME CONN HOST1 HOST2 up|down")
        state = fields[4].lower()
        if state not in ("up", "down"):
            raise ValueError(f"connection state {fields[4]!r} is not up or down")
        a, b = _host(fields[2]), _host(fields[3])
        if a == b:
            raise ValueError(f"host {fields[2]} connects to itself")
        return ConnectionEvent(time_ms, a, b, state == "up", number)
    if kind == "C":
        if len(fields) not in (6, 7):
            raise ValueError("expected TIME C MSGID FROM TO SIZE [RESPONSE_SIZE]")
        source, destination = _host(fields[3]), _host(fields[4])
        if source == destination:
            raise ValueError(f"message {fields[2]} is from host {fields[3]} to itself")
        if not fields[5].isdigit():
            raise ValueError(f"message size {fields[5]!r} is not a number of bytes")
        return MessageEvent(time_ms, fields[2], source, destination, int(fields[5]), number)
    raise ValueError(f"unsupported event {kind!r} (only CONN and C lines are read)")


def parse_events(lines: Iterable[str], *, name: str = "<trace>") -> Iterator[Event]:
    """The events of ``lines``, in file order. Raises :class:`TraceError` naming ``name``
    and the line number at the first line that cannot be read."""
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            yield _parse_line(fields, number)
        except ValueError as exc:
            raise TraceError(f"{name}:{number}: {exc}") from None


def read_events(path: str | Path) -> list[Event]:
    """Every event of the trace file ``path`` (raises :class:`TraceError`, OSError)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return list(parse_events(handle, name=str(path)))


def _host_key(name: str) -> tuple[int, int, str]:
    if name.startswith("n") and name[1:].isdigit():
        return (0, int(name[1:]), name)
    return (1, 0, name)


def hosts_of(events: Iterable[Event]) -> list[str]:
    """Every node name the events mention: numbered hosts in numeric order, then names."""
    names: set[str] = set()
    for event in events:
        if isinstance(event, ConnectionEvent):
            names.update((event.a, event.b))
        else:
            names.update((event.source, event.destination))
    return sorted(names, key=_host_key)


def schedule_events(
    sim: Simulation,
    events: Iterable[Event],
    *,
    name: str = "<trace>",
    lifetime_ms: int = 86_400_000,
    **link_model: Any,
) -> tuple[int, int]:
    """Put ``events`` into ``sim`` (whose nodes must exist): connections as
    :meth:`~dtncloud.sim.world.Simulation.link_up` / ``link_down`` with ``link_model``,
    messages as :meth:`~dtncloud.sim.world.Simulation.create_message` with their trace IDs.
    Returns (connections up, messages). An event the simulation refuses (a message ID used
    twice) raises :class:`TraceError` naming ``name`` and its line."""
    ups = messages = 0
    for event in events:
        try:
            if _schedule(sim, event, lifetime_ms, link_model):
                ups += isinstance(event, ConnectionEvent)
                messages += isinstance(event, MessageEvent)
        except ConfigError as exc:
            raise TraceError(f"{name}:{event.line}: {exc}") from None
    return ups, messages


def _schedule(sim: Simulation, event: Event, lifetime_ms: int, link_model: Any) -> bool:
    """Schedule one event; True for connections up and messages."""
    if isinstance(event, ConnectionEvent):
        if event.up:
            sim.link_up(event.time_ms, event.a, event.b, **link_model)
            return True
        sim.link_down(event.time_ms, event.a, event.b)
        return False
    sim.create_message(
        event.time_ms,
        event.source,
        event.destination,
        event.size,
        lifetime_ms=lifetime_ms,
        message_id=event.message_id,
    )
    return True
