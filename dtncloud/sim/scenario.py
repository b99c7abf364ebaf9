"""Scenario files: a TOML description of a simulated network, read into a :class:`ScenarioSpec`.

A scenario names its nodes (in groups), the routers they run, the links between them, where
their contacts come from (contact plans, ONE traces, or generators), when nodes are off, and
the traffic they send. :func:`load_scenario` reads and checks a file; every mistake is one
:class:`~dtncloud.errors.ConfigError` line naming the file and the key::

    glasgow.toml: [[group]] 2: router: unknown router 'epidemc'; known routers: cgr, ...

The keys are documented in ``docs/simulator.md`` ("Scenario files"). Times are durations after
the scenario's start (``"90m"``, ``"1d"``, or a number of seconds), sizes and rates take the
units of ``dtncloud.toml`` (``"64KiB"``, ``"10Mbit/s"``), and anywhere a set of nodes is
asked for, a group name stands for all of its nodes.

Files that a scenario refers to (contact plans, traces) are read here, relative to the
scenario's directory, so that :mod:`dtncloud.sim.generators` stays pure.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dtncloud.daemon.units import (
    TomlTable,
    describe_value,
    parse_bool,
    parse_choice,
    parse_duration_ms,
    parse_int,
    parse_path,
    parse_rate,
    parse_size,
    parse_toml_bytes,
    unknown_key,
)
from dtncloud.dtntime import DTN_EPOCH
from dtncloud.engine.config import EngineConfig
from dtncloud.errors import ConfigError
from dtncloud.routing import default_registry
from dtncloud.routing.contact_plan import parse_contact_plan
from dtncloud.sim.node import BUFFER_POLICIES
from dtncloud.sim.one_format import ConnectionEvent, node_name, parse_events
from dtncloud.sim.spec import (
    DAY_MS,
    Churn,
    ContactSource,
    Distribution,
    DutyCycle,
    FixedContacts,
    Group,
    LinkModel,
    Mesh,
    MuleTour,
    RandomEncounters,
    SatellitePasses,
    ScenarioSpec,
    Traffic,
    Window,
)

__all__ = [
    "Churn",
    "ContactSource",
    "Distribution",
    "DutyCycle",
    "FixedContacts",
    "Group",
    "LinkModel",
    "Mesh",
    "MuleTour",
    "RandomEncounters",
    "SatellitePasses",
    "ScenarioSpec",
    "Traffic",
    "Window",
    "apply_override",
    "load_scenario",
    "parse_override",
    "parse_scenario",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_PER_TIME = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*", re.ASCII)
_TIME_UNITS_MS: Mapping[str, int] = MappingProxyType({
    "s": 1_000, "sec": 1_000, "second": 1_000,
    "m": 60_000, "min": 60_000, "minute": 60_000,
    "h": 3_600_000, "hour": 3_600_000,
    "d": 86_400_000, "day": 86_400_000,
    "w": 604_800_000, "week": 604_800_000,
})  # fmt: skip
_CONTACT_TYPES = ("plan", "trace", "mesh", "random", "mule", "satellite")


# -- small parsers ------------------------------------------------------------------------------


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {describe_value(value)}")
    return value


def _name(value: Any, where: str) -> str:
    text = _text(value, where)
    if _NAME.fullmatch(text) is None:
        raise ConfigError(
            f"{where}: {describe_value(text)} is not a name (letters, digits, '.', '_', '-'; "
            "at most 64)"
        )
    return text


def _positive_ms(value: Any, where: str) -> int:
    ms = parse_duration_ms(value, where)
    if ms <= 0:
        raise ConfigError(f"{where}: must be longer than 0")
    return ms


def _probability(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number from 0 to 1, got {describe_value(value)}")
    if not 0 <= value <= 1:
        raise ConfigError(f"{where}: must be from 0 to 1, got {value}")
    return float(value)


def _per_ms(value: Any, where: str) -> float:
    """Events per ms from text such as ``"12/h"``, ``"0.5/min"`` or ``"3/d"``."""
    expected = f"{where}: expected a rate such as 12/h, 0.5/min or 3/d, got {describe_value(value)}"
    if not isinstance(value, str):
        raise ConfigError(expected)
    match = _PER_TIME.fullmatch(value.lower())
    unit = match.group(2) if match else ""
    if unit not in _TIME_UNITS_MS and unit.endswith("s"):
        unit = unit[:-1]  # "hours", "days"
    if match is None or unit not in _TIME_UNITS_MS:
        raise ConfigError(expected)
    rate = float(match.group(1)) / _TIME_UNITS_MS[unit]
    if not rate > 0:
        raise ConfigError(f"{where}: must be more than 0")
    return rate


def _time_of_day(value: Any, where: str) -> int:
    """Ms after midnight from a TOML local time (``07:30:00``) or text ``"07:30"``."""
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
        if match is None:
            raise ConfigError(f"{where}: expected a time of day such as 07:30, got {value!r}")
        try:
            value = time(int(match[1]), int(match[2]), int(match[3] or 0))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(value, time) or value.tzinfo is not None:
        raise ConfigError(
            f"{where}: expected a time of day such as 07:30, got {describe_value(value)}"
        )
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def _start_time(value: Any, where: str) -> int:
    """The DTN time of the scenario's start: ms, or a TOML date-time with an offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{where}: give the date-time with an offset, e.g. ...T00:00:00Z")
        if value < DTN_EPOCH:
            raise ConfigError(f"{where}: before the DTN epoch 2000-01-01T00:00:00Z")
        delta = value.astimezone(UTC) - DTN_EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return parse_int(value, where, maximum=2**63 - 1)


def _distribution(value: Any, where: str, unit: Any, example: str) -> Distribution:
    """A fixed value (``unit``'s form), or a table ``{dist = "uniform", min, max}``,
    ``{dist = "exponential", mean}`` or ``{dist = "fixed", value}``."""
    if not isinstance(value, dict):
        return Distribution("fixed", unit(value, where))
    table = TomlTable(value, where, f"{where}.", where)
    kind = table.required("dist", _choice("fixed", "uniform", "exponential"), "fixed, ...")
    if kind == "uniform":
        low = table.required("min", unit, example)
        high = table.required("max", unit, example)
        if high < low:
            raise ConfigError(f"{where}.max: is less than {where}.min")
        result = Distribution(kind, low, high)
    elif kind == "exponential":
        result = Distribution(kind, table.required("mean", unit, example))
    else:
        result = Distribution(kind, table.required("value", unit, example))
    table.finish()
    return result


def _choice(*options: str) -> Any:
    return lambda value, where: parse_choice(value, where, options)


def _windows(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    """``[["6h", "12h"], ...]``: windows after the start, each ``[from, to)``."""
    if not isinstance(value, list):
        raise ConfigError(f'{where}: expected a list of [from, to] pairs such as [["6h", "9h"]]')
    windows = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, list) or len(item) != 2:
            raise ConfigError(f"{where}: entry {n}: expected a [from, to] pair of durations")
        low = parse_duration_ms(item[0], f"{where}: entry {n}")
        high = parse_duration_ms(item[1], f"{where}: entry {n}")
        if high <= low:
            raise ConfigError(f"{where}: entry {n}: ends before it starts")
        windows.append((low, high))
    return tuple(sorted(windows))


def _table_value(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {describe_value(value)}")
    return dict(value)


# -- node names ---------------------------------------------------------------------------------


class _Names:
    """Resolves node references: a group name stands for its nodes."""

    def __init__(self, groups: Sequence[Group]) -> None:
        self.groups = {group.name: group.nodes for group in groups}
        self.nodes = {node: group.name for group in groups for node in group.nodes}

    def resolve(self, value: Any, where: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        found: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise ConfigError(
                    f"{where}: expected node or group names, got {describe_value(item)}"
                )
            if item in self.groups:
                found.extend(self.groups[item])
            elif item in self.nodes:
                found.append(item)
            else:
                raise ConfigError(f"{where}: {_unknown_node(item, [*self.groups, *self.nodes])}")
        if not found:
            raise ConfigError(f"{where}: names no node")
        return tuple(dict.fromkeys(found))

    def lookup(self, name: str, where: str) -> str:
        if name not in self.nodes:
            raise ConfigError(f"{where}: {_unknown_node(name, self.nodes)}")
        return name


def _unknown_node(name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no node or group named {describe_value(name)}{hint}"


# -- the parts of a scenario --------------------------------------------------------------------


def _link_mode(value: Any, where: str) -> str:
    if value not in ("bundle", "tcpcl"):
        raise ConfigError(f'{where}: expected "bundle" or "tcpcl", got {describe_value(value)}')
    return str(value)


def _keepalive_s(value: Any, where: str) -> int:
    ms = parse_duration_ms(value, where)
    if ms < 0 or ms % 1000 or ms > 0xFFFF * 1000:
        raise ConfigError(f"{where}: must be whole seconds from 0 (none) to 65535 s")
    return ms // 1000


def _link_model(table: TomlTable) -> LinkModel:
    rate = table.get("rate", parse_rate, 0)
    mode = table.get("mode", _link_mode, "bundle")
    segment_mru = table.get("segment_mru", _positive_size, None)
    keepalive_s = table.get("keepalive", _keepalive_s, None)
    if mode != "tcpcl" and (segment_mru is not None or keepalive_s is not None):
        raise ConfigError(f'{table.where("mode")}: segment_mru and keepalive need mode = "tcpcl"')
    model = LinkModel(
        rate=rate or None,
        delay_ms=table.get("delay", parse_duration_ms, 0),
        loss=table.get("loss", _probability, 0.0),
        max_bundle=table.get("max_bundle", _positive_size, None),
        mode=mode,
        segment_mru=segment_mru,
        keepalive_s=keepalive_s,
    )
    table.finish()
    return model


def _links(top: TomlTable) -> dict[str, LinkModel]:
    links = top.table("links")
    result = {}
    for name in list(links.data):
        _name(name, f"links.{name}")
        result[name] = _link_model(links.table(name))
    return result


def _link_ref(table: TomlTable, links: Mapping[str, LinkModel]) -> LinkModel:
    value = table.raw("link")
    where = table.where("link")
    if value is None:
        return links.get("default", LinkModel())
    if isinstance(value, dict):
        return _link_model(TomlTable(value, where, f"{where}.", where))
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected the name of a [links.NAME] table or an inline table")
    if value not in links:
        known = ", ".join(sorted(links)) or "none defined"
        raise ConfigError(f"{where}: no link model {value!r} in [links] (known: {known})")
    return links[value]


def _router_params(router: str, params: dict[str, Any], where: str) -> None:
    """Create the router once, so that bad parameters are reported when the file is read."""
    try:
        default_registry.create(router, node_id="dtn://check/", params=params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _engine(value: dict[str, Any], where: str) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(EngineConfig) if f.name != "node_id"]
    for key in value:
        if key not in names:
            raise unknown_key(key, f"in {where}", names)
    try:
        EngineConfig(node_id="dtn://check/", **value)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return value


def _groups(top: TomlTable, routers: Mapping[str, dict[str, Any]]) -> tuple[Group, ...]:
    groups: list[Group] = []
    seen: dict[str, str] = {}
    for table in top.tables("group", "group"):
        name = table.required("name", _name, "a name such as glasgow")
        count = table.get("count", lambda v, w: parse_int(v, w, minimum=1, maximum=100_000), None)
        listed = table.raw("nodes")
        if (count is None) == (listed is None):
            raise ConfigError(f"{table.prefix}set either count or nodes")
        if listed is not None:
            if not isinstance(listed, list) or not listed:
                raise ConfigError(f"{table.where('nodes')}: expected a list of node names")
            nodes = tuple(_name(item, table.where("nodes")) for item in listed)
        else:
            nodes = tuple(f"{name}-{i}" for i in range(1, (count or 0) + 1))
        for node in (name, *nodes):
            other = seen.get(node)
            if other is not None and not (node == name and node in nodes):
                raise ConfigError(f"{table.prefix}name {node!r} is already used by {other}")
        for node in (name, *nodes):
            seen.setdefault(node, f"group {name!r}")
        router = table.get("router", _text, "epidemic")
        try:
            default_registry.get(router)
        except ConfigError as exc:
            raise ConfigError(f"{table.where('router')}: {exc}") from None
        params = dict(routers.get(router, {}))
        params.update(table.get("router_params", _table_value, {}))
        _router_params(router, params, table.where("router_params"))
        buffer = table.get("buffer", parse_size, None)
        policy = table.get("buffer_policy", _choice(*BUFFER_POLICIES), "refuse")
        engine = _engine(table.get("engine", _table_value, {}), table.where("engine"))
        table.finish()
        groups.append(Group(name, nodes, router, params, buffer or None, engine, policy))
    if not groups:
        raise ConfigError('no [[group]] of nodes: add one, e.g. [[group]] name = "field" count = 3')
    return tuple(groups)


def _routers(top: TomlTable) -> dict[str, dict[str, Any]]:
    table = top.table("routers")
    result = {}
    for name in list(table.data):
        where = table.where(name)
        try:
            default_registry.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        result[name] = table.get(name, _table_value, {})
    return result


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{where}: cannot read {path.name}: {reason}") from None


def _map_node(token: str, node_map: Mapping[str, str], names: _Names, where: str) -> str:
    if token in node_map:
        return node_map[token]
    if token.startswith("dtn://") and token.endswith("/"):
        token = token[6:-1]
    return names.lookup(token, where)


def _node_map(table: TomlTable, names: _Names) -> dict[str, str]:
    raw = table.get("node_map", _table_value, {})
    result = {}
    for key, value in raw.items():
        where = f"{table.where('node_map')}.{key}"
        node = names.lookup(_text(value, where), where)
        result[key] = node
        if key.isdecimal():
            result[f"ipn:{int(key)}.0"] = node
    return result


def _plan(table: TomlTable, names: _Names, base: Path, start: int, links: Any) -> FixedContacts:
    path = table.required("file", lambda v, w: parse_path(v, w, base), "a plan file")
    where = table.where("file")
    node_map = _node_map(table, names)
    try:
        plan = parse_contact_plan(_read(path, where), epoch=start, source=path.name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    windows = []
    for contact in plan:
        a = _map_node(contact.sender, node_map, names, f"{where}: {path.name}")
        b = _map_node(contact.receiver, node_map, names, f"{where}: {path.name}")
        rate = math.ceil(contact.rate)
        low, high = sorted((a, b))
        windows.append(Window(contact.start, contact.end, low, high, rate, contact.owlt))
    return FixedContacts("plan", tuple(windows), _link_ref(table, links))


def _trace(table: TomlTable, names: _Names, base: Path, start: int, links: Any) -> FixedContacts:
    """A contact trace in the ONE simulator's form: ``TIME CONN a b up|down`` (seconds after
    the scenario's start). Host ``N`` is the N-th (from 0) of ``hosts``, or the node that
    ``node_map`` names, or else the node of that name."""
    path = table.required("file", lambda v, w: parse_path(v, w, base), "a trace file")
    where = table.where("file")
    node_map = {node_name(key): node for key, node in _node_map(table, names).items()}
    hosts = table.get("hosts", names.resolve, ())
    try:
        events = list(parse_events(_read(path, where).splitlines(), name=path.name))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None

    def node_of(host: str, place: str) -> str:
        if host in node_map:
            return node_map[host]
        if hosts and host.startswith("n") and host[1:].isdigit() and host not in names.nodes:
            if int(host[1:]) >= len(hosts):
                raise ConfigError(f"{place}: host {host[1:]} is beyond the {len(hosts)} hosts")
            return hosts[int(host[1:])]
        return names.lookup(host, place)

    opened: dict[tuple[str, str], int] = {}
    windows = []
    for event in events:
        place = f"{where}: {path.name}:{event.line}"
        if not isinstance(event, ConnectionEvent):
            raise ConfigError(f"{place}: a message line in a contact trace (use [[traffic]])")
        a, b = sorted((node_of(event.a, place), node_of(event.b, place)))
        if a == b:
            raise ConfigError(f"{place}: a contact of {a} with itself")
        at = start + event.time_ms
        if event.up:
            opened.setdefault((a, b), at)
        elif (a, b) in opened:
            began = opened.pop((a, b))
            if at > began:
                windows.append(Window(began, at, a, b))
    # Contacts still up when the trace ends last until the end of the run (the generators
    # clip them).
    windows.extend(Window(began, 2**63 - 1, a, b) for (a, b), began in opened.items())
    return FixedContacts("trace", tuple(windows), _link_ref(table, links))


def _contacts(
    top: TomlTable, names: _Names, base: Path, start: int, links: Mapping[str, LinkModel]
) -> tuple[ContactSource, ...]:
    sources: list[ContactSource] = []
    for table in top.tables("contacts", "contacts"):
        kind = table.required("type", _choice(*_CONTACT_TYPES), ", ".join(_CONTACT_TYPES))
        source: ContactSource
        if kind == "plan":
            source = _plan(table, names, base, start, links)
        elif kind == "trace":
            source = _trace(table, names, base, start, links)
        elif kind == "mesh":
            mtbf = table.get("mtbf", _positive_ms, None)
            mttr = table.get("mttr", _positive_ms, None)
            if (mtbf is None) != (mttr is None):
                raise ConfigError(f"{table.prefix}set both mtbf and mttr, or neither")
            source = Mesh(
                nodes=table.required("nodes", names.resolve, "node or group names"),
                hub=table.get("hub", names.resolve, ()),
                link=_link_ref(table, links),
                down=table.get("down", _windows, ()),
                mtbf_ms=mtbf,
                mttr_ms=mttr,
            )
        elif kind == "random":
            pair_rate = table.get("pair_rate", _per_ms, None)
            node_rate = table.get("node_rate", _per_ms, None)
            if (pair_rate is None) == (node_rate is None):
                raise ConfigError(f"{table.prefix}set one of pair_rate or node_rate (e.g. '4/d')")
            nodes = table.get("nodes", names.resolve, tuple(names.nodes))
            if len(nodes) < 2:
                raise ConfigError(f"{table.where('nodes')}: random encounters need two nodes")
            source = RandomEncounters(
                nodes=nodes,
                duration=table.required(
                    "duration",
                    lambda v, w: _distribution(v, w, _positive_ms, "a duration"),
                    "a duration such as 5m",
                ),
                link=_link_ref(table, links),
                pair_rate=pair_rate,
                node_rate=node_rate,
                start=table.get("start", parse_duration_ms, 0),
                stop=table.get("stop", parse_duration_ms, None),
            )
        elif kind == "mule":
            sites = table.raw("sites")
            where = table.where("sites")
            if not isinstance(sites, list) or len(sites) < 2:
                raise ConfigError(
                    f"{where}: expected a list of at least two sites (nodes or groups)"
                )
            source = MuleTour(
                mules=table.required("mule", names.resolve, "the mule's node or group"),
                sites=tuple(
                    names.resolve(site, f"{where}: site {n}") for n, site in enumerate(sites, 1)
                ),
                travel=table.required(
                    "travel",
                    lambda v, w: _distribution(v, w, parse_duration_ms, "a duration"),
                    "a duration such as 2h",
                ),
                dwell=table.required(
                    "dwell",
                    lambda v, w: _distribution(v, w, _positive_ms, "a duration"),
                    "a duration such as 30m",
                ),
                link=_link_ref(table, links),
                route=table.get("route", _choice("loop", "back_and_forth"), "loop"),
                start=table.get("start", parse_duration_ms, 0),
                period=table.get("period", _positive_ms, None),
                tours=table.get("tours", lambda v, w: parse_int(v, w, minimum=1), None),
                stagger=table.get("stagger", parse_duration_ms, 0),
            )
        else:
            period = table.required("period", _positive_ms, "a duration such as 100m")
            duration = table.required("duration", _positive_ms, "a duration such as 8m")
            jitter = table.get("jitter", parse_duration_ms, 0)
            if duration + 2 * jitter >= period:
                raise ConfigError(
                    f"{table.where('duration')}: passes (plus twice the jitter) must be shorter "
                    "than the period"
                )
            source = SatellitePasses(
                satellites=table.required("satellite", names.resolve, "the satellite's node"),
                ground=table.required("ground", names.resolve, "ground nodes or groups"),
                period=period,
                duration=duration,
                link=_link_ref(table, links),
                first=table.get("first", parse_duration_ms, 0),
                stagger=table.get("stagger", parse_duration_ms, 0),
                jitter=jitter,
            )
        table.finish()
        sources.append(source)
    return tuple(sources)


def _duty_cycles(top: TomlTable, names: _Names) -> tuple[DutyCycle, ...]:
    result = []
    for table in top.tables("duty_cycle", "duty_cycle"):
        cycle = DutyCycle(
            nodes=table.required("nodes", names.resolve, "node or group names"),
            on=table.required("on", _time_of_day, "a time of day such as 07:00"),
            off=table.required("off", _time_of_day, "a time of day such as 19:00"),
            period=table.get("period", _positive_ms, DAY_MS),
            jitter=table.get("jitter", parse_duration_ms, 0),
        )
        if cycle.on == cycle.off:
            raise ConfigError(f"{table.where('off')}: is the same time as on")
        if max(cycle.on, cycle.off) >= cycle.period:
            raise ConfigError(f"{table.prefix}on and off must fall within the period")
        table.finish()
        result.append(cycle)
    return tuple(result)


def _churn(top: TomlTable, names: _Names) -> tuple[Churn, ...]:
    result = []
    for table in top.tables("churn", "churn"):
        result.append(
            Churn(
                nodes=table.required("nodes", names.resolve, "node or group names"),
                mtbf=table.required("mtbf", _positive_ms, "a mean time between failures"),
                mttr=table.required("mttr", _positive_ms, "a mean time to repair"),
            )
        )
        table.finish()
    return tuple(result)


def _traffic(top: TomlTable, names: _Names) -> tuple[Traffic, ...]:
    result = []
    for table in top.tables("traffic", "traffic"):
        interval = table.get(
            "interval", lambda v, w: _distribution(v, w, _positive_ms, "a duration"), None
        )
        rate = table.get("rate", _per_ms, None)
        if (interval is None) == (rate is None):
            raise ConfigError(
                f"{table.prefix}set one of interval (e.g. '10m') or rate (e.g. '6/h')"
            )
        if interval is None:
            interval = Distribution("exponential", max(1, round(1 / (rate or 1))))
        sources = table.required("from", names.resolve, "node or group names")
        destinations = table.required("to", names.resolve, "node or group names")
        if len(set(sources) | set(destinations)) < 2:
            raise ConfigError(
                f"{table.where('to')}: messages need a destination other than the source"
            )
        result.append(
            Traffic(
                sources=sources,
                destinations=destinations,
                interval=interval,
                size=table.required(
                    "size",
                    lambda v, w: _distribution(v, w, _positive_size, "a size"),
                    "a size such as 64KiB",
                ),
                lifetime=table.get("lifetime", _positive_ms, 86_400_000),
                start=table.get("start", parse_duration_ms, 0),
                stop=table.get("stop", parse_duration_ms, None),
                per_source=table.get("per_source", parse_bool, False),
                count=table.get("count", lambda v, w: parse_int(v, w, minimum=1), None),
            )
        )
        table.finish()
    return tuple(result)


def _positive_size(value: Any, where: str) -> int:
    size = parse_size(value, where)
    if size <= 0:
        raise ConfigError(f"{where}: must be at least 1 byte")
    return size


# -- the whole file -----------------------------------------------------------------------------


def parse_scenario(
    data: Mapping[str, Any], *, base_dir: Path, name: str = "scenario"
) -> ScenarioSpec:
    """Check a decoded scenario (the dict :mod:`tomllib` returns). ``base_dir`` is where
    relative file names point; ``name`` is the scenario's name unless it sets one."""
    top = TomlTable(dict(data))
    title = top.get("name", _name, name)
    description = top.get("description", _text, "")
    duration = top.required("duration", _positive_ms, "the length of the run, such as 1d")
    seed = top.get("seed", lambda v, w: parse_int(v, w, maximum=2**63 - 1), 0)
    start = top.get("start", _start_time, 0)
    every = top.get("occupancy_every", parse_duration_ms, 60_000)
    routers = _routers(top)
    links = _links(top)
    groups = _groups(top, routers)
    names = _Names(groups)
    spec = ScenarioSpec(
        name=title,
        duration=duration,
        seed=seed,
        start=start,
        description=description,
        occupancy_every=every or None,
        groups=groups,
        links=links,
        contacts=_contacts(top, names, base_dir, start, links),
        duty_cycles=_duty_cycles(top, names),
        churn=_churn(top, names),
        traffic=_traffic(top, names),
    )
    top.finish()
    return spec


def load_scenario(path: str | Path, overrides: Sequence[tuple[str, Any]] = ()) -> ScenarioSpec:
    """Read and check the scenario file at ``path``, after setting each ``(key, value)`` of
    ``overrides`` (see :func:`apply_override`). Errors are one line naming the file."""
    file = Path(path)
    data = parse_toml_bytes(file.read_bytes(), file)
    try:
        for key, value in overrides:
            apply_override(data, key, value)
        return parse_scenario(data, base_dir=file.resolve().parent, name=file.stem)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None


# -- overrides (sim run --router, sim sweep --param) --------------------------------------------

_ARRAYS = ("group", "contacts", "duty_cycle", "churn", "traffic")


def parse_override(text: str) -> Any:
    """A value written on the command line: a TOML value (``3``, ``0.5``, ``true``,
    ``"1h"``, ``{dist = ...}``), or else the text itself (``epidemic``, ``2h``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` in decoded scenario ``data``: a dotted path such as ``seed``,
    ``links.wan.rate``, ``group.router`` (every group), ``group.glasgow.router`` (the group
    named glasgow) or ``traffic.1.interval`` (the first ``[[traffic]]``). Changing a
    group's router drops the group's ``router_params`` (they belong to the old router;
    ``[routers.NAME]`` tables give parameters per router)."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"override {key!r}: not a dotted key such as group.router")
    head, rest = parts[0], parts[1:]
    if head in _ARRAYS:
        if not rest:
            raise ConfigError(f"override {key!r}: name a key inside [[{head}]]")
        entries = data.get(head)
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"override {key!r}: the scenario has no [[{head}]]")
        if len(rest) == 1:
            chosen = entries
        else:
            selector, rest = rest[0], rest[1:]
            if selector.isdecimal() and 1 <= int(selector) <= len(entries):
                chosen = [entries[int(selector) - 1]]
            else:
                chosen = [e for e in entries if isinstance(e, dict) and e.get("name") == selector]
                if not chosen:
                    raise ConfigError(
                        f"override {key!r}: no [[{head}]] named or numbered {selector!r}"
                    )
        for entry in chosen:
            if isinstance(entry, dict):
                if head == "group" and rest == ["router"] and entry.get("router") != value:
                    entry.pop("router_params", None)
                _set_path(entry, rest, value, key)
        return
    _set_path(data, parts, value, key)


def _set_path(data: dict[str, Any], parts: list[str], value: Any, key: str) -> None:
    for part in parts[:-1]:
        inner = data.setdefault(part, {})
        if not isinstance(inner, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a table")
        data = inner
    data[parts[-1]] = value
