"""Contact plans: the scheduled contacts that contact graph routing (:mod:`.cgr`) plans over.

A :class:`Contact` is a window in which one node can send to another at a known rate; a
:class:`ContactPlan` is an immutable, time-ordered set of them. Two text forms are read, both
by pure functions (the caller reads the file; this module does no I/O):

**ION form** (``ionadmin`` commands, :func:`parse_ion_contact_plan`)::

    # comment
    @ 2024/05/01-12:00:00               # reference time for the relative times below
    a contact +0 +3600 1 2 100000       # 1 -> 2 for an hour at 100 kB/s
    a contact +0 +3600 2 1 100000 0.9   # optional confidence in (0, 1]
    a range +0 +3600 1 2 1              # one-way light time 1 s between 1 and 2

Times are ``+seconds`` after the reference time (the ``epoch`` argument, or the last ``@``
command) or absolute UTC ``yyyy/mm/dd-hh:mm:ss``. Rates are bytes per second, ranges light
seconds. A node is an ION node number (``2`` means ``ipn:2.0``) or a node ID (``ipn:2.0``,
``dtn://b/``). As in ION, ``a range A B`` with A < B also covers B -> A unless the plan has a
range from B to A; with A > B it covers A -> B only (dtn names compare as text). A contact takes
the one-way light time of the range in its direction that covers its start, else 0.
Registration (start ``-1``) and hypothetical (end ``0``) contacts are skipped; ionadmin
commands that do not touch the plan (``1``, ``s``, ``m ...``, ...) are ignored.

**JSON form** (:func:`parse_json_contact_plan`)::

    {"contacts": [
        {"from": "ipn:1.0", "to": "ipn:2.0", "start": 757382400000, "end": 757386000000,
         "rate": 100000, "owlt": 1000, "confidence": 1.0}
    ]}

``start``/``end``/``owlt`` are integer milliseconds (absolute DTN times; ``owlt`` defaults to
0), ``rate`` bytes per second, ``confidence`` defaults to 1; ``from``/``to`` are node IDs or
ION node numbers. A bare list of contact objects is accepted too. :meth:`ContactPlan.to_json`
writes this form.

Every problem is a one-line :class:`~dtncloud.errors.ConfigError` naming the line or entry.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from dtncloud.dtntime import DTN_EPOCH
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

__all__ = [
    "Contact",
    "ContactPlan",
    "contact_from_json",
    "parse_contact_plan",
    "parse_ion_contact_plan",
    "parse_json_contact_plan",
]

# The largest DTN time; contact times and durations stay below it.
_MAX_TIME = 2**64 - 1


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class Contact:
    """``sender`` can transmit to ``receiver`` from ``start`` until ``end`` (DTN ms, end
    excluded) at ``rate`` bytes per second; what it sends arrives ``owlt`` ms later.
    ``confidence`` is the probability that the contact happens (1 for a scheduled one)."""

    start: int
    end: int
    sender: str
    receiver: str
    rate: float
    owlt: int = 0
    confidence: float = 1.0

    def __post_init__(self) -> None:
        for name in ("start", "end", "owlt"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= _MAX_TIME:
                raise ConfigError(f"contact {name} must be an integer of ms >= 0, not {value!r}")
        if self.end <= self.start:
            raise ConfigError(f"contact end {self.end} is not after its start {self.start}")
        if type(self.rate) not in (int, float) or not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"contact rate must be a number of bytes/s > 0, not {self.rate!r}")
        if type(self.confidence) not in (int, float) or not 0 < self.confidence <= 1:
            raise ConfigError(f"contact confidence must be in (0, 1], not {self.confidence!r}")
        for name in ("sender", "receiver"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"contact {name} must be a node ID string")
        if self.sender == self.receiver:
            raise ConfigError(f"contact from {self.sender} to itself")

    @property
    def duration(self) -> int:
        """Length in ms."""
        return self.end - self.start

    @property
    def volume(self) -> int:
        """Bytes the whole contact can carry."""
        return int(self.rate * self.duration // 1000)

    def transmit_ms(self, size: int) -> int:
        """Milliseconds to send ``size`` bytes at this contact's rate (rounded up)."""
        return transmit_ms(size, self.rate)

    def is_active(self, now: int) -> bool:
        return self.start <= now < self.end

    def __str__(self) -> str:
        return (
            f"{self.sender} -> {self.receiver} [{self.start}, {self.end}) at {self.rate:g} B/s"
            + (f", owlt {self.owlt} ms" if self.owlt else "")
        )


def transmit_ms(size: int, rate: float) -> int:
    """Milliseconds to send ``size`` bytes at ``rate`` bytes/s, rounded up (exact for ints)."""
    if type(rate) is int:
        return -(-size * 1000 // rate)
    return math.ceil(size * 1000 / rate)


def _sort_key(contact: Contact) -> tuple[int, int, str, str, float, int, float]:
    return (
        contact.start,
        contact.end,
        contact.sender,
        contact.receiver,
        contact.rate,
        contact.owlt,
        contact.confidence,
    )


class ContactPlan:
    """An immutable set of contacts, ordered by start time (then end, sender, receiver).

    Iterating yields the contacts in that order; :meth:`from_node`, :meth:`to_node` and
    :meth:`between` look them up by node, :meth:`active_at` and :meth:`pending` by time.
    """

    __slots__ = ("_by_receiver", "_by_sender", "_contacts", "_starts")

    def __init__(self, contacts: Iterable[Contact] = ()) -> None:
        given = list(contacts)
        for contact in given:
            if not isinstance(contact, Contact):
                raise TypeError(f"not a Contact: {contact!r:.60}")
        ordered = sorted(given, key=_sort_key)
        self._contacts: tuple[Contact, ...] = tuple(ordered)
        self._starts = [c.start for c in self._contacts]
        by_sender: dict[str, list[Contact]] = {}
        by_receiver: dict[str, list[Contact]] = {}
        for contact in self._contacts:
            by_sender.setdefault(contact.sender, []).append(contact)
            by_receiver.setdefault(contact.receiver, []).append(contact)
        self._by_sender: Mapping[str, tuple[Contact, ...]] = MappingProxyType(
            {node: tuple(found) for node, found in by_sender.items()}
        )
        self._by_receiver: Mapping[str, tuple[Contact, ...]] = MappingProxyType(
            {node: tuple(found) for node, found in by_receiver.items()}
        )

    # -- the collection -------------------------------------------------------------------

    @property
    def contacts(self) -> tuple[Contact, ...]:
        return self._contacts

    def __len__(self) -> int:
        return len(self._contacts)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self._contacts)

    def __contains__(self, item: object) -> bool:
        return item in self._contacts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContactPlan):
            return NotImplemented
        return self._contacts == other._contacts

    def __hash__(self) -> int:
        return hash(self._contacts)

    def __repr__(self) -> str:
        return f"ContactPlan(<{len(self._contacts)} contacts>)"

    def __add__(self, other: ContactPlan) -> ContactPlan:
        if not isinstance(other, ContactPlan):
            return NotImplemented
        return ContactPlan(self._contacts + other._contacts)

    # -- lookups --------------------------------------------------------------------------

    def nodes(self) -> frozenset[str]:
        """Every node that sends or receives in some contact."""
        return frozenset(self._by_sender) | frozenset(self._by_receiver)

    def from_node(self, sender: str) -> tuple[Contact, ...]:
        """The contacts in which ``sender`` transmits, by start time."""
        return self._by_sender.get(sender, ())

    def to_node(self, receiver: str) -> tuple[Contact, ...]:
        """The contacts in which ``receiver`` receives, by start time."""
        return self._by_receiver.get(receiver, ())

    def between(self, sender: str, receiver: str) -> tuple[Contact, ...]:
        return tuple(c for c in self.from_node(sender) if c.receiver == receiver)

    def active_at(self, now: int) -> tuple[Contact, ...]:
        """The contacts under way at ``now`` (start <= now < end)."""
        stop = bisect_right(self._starts, now)
        return tuple(c for c in self._contacts[:stop] if c.end > now)

    def pending(self, now: int) -> ContactPlan:
        """The plan without the contacts that have ended by ``now``."""
        return ContactPlan(c for c in self._contacts if c.end > now)

    def next_start(self, now: int) -> int | None:
        """The earliest contact start after ``now``, or None."""
        index = bisect_right(self._starts, now)
        return self._starts[index] if index < len(self._starts) else None

    # -- the JSON form --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The plan in the JSON form :func:`parse_json_contact_plan` reads."""
        entries = []
        for c in self._contacts:
            entry: dict[str, Any] = {
                "from": c.sender,
                "to": c.receiver,
                "start": c.start,
                "end": c.end,
                "rate": c.rate,
            }
            if c.owlt:
                entry["owlt"] = c.owlt
            if c.confidence != 1.0:
                entry["confidence"] = c.confidence
            entries.append(entry)
        return {"contacts": entries}


# -- shared value checks --------------------------------------------------------------------


def _node_id(value: Any) -> str:
    """A node ID string from an ION node number or a node ID (raises ConfigError)."""
    if type(value) is int:
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"bad node {value!r:.40}: expected a node number or a node ID")
    if value.isascii() and value.isdecimal():
        number = int(value)
        if not 0 < number <= _MAX_TIME:
            raise ConfigError(f"bad node number {_clip(value)}: must be 1..2^64-1")
        return f"ipn:{number}.0"
    try:
        eid = EID.parse(value)
    except InvalidEID as exc:
        raise ConfigError(f"bad node {_clip(value)!r}: {exc}") from None
    if eid.is_none or not eid.is_node_id:
        raise ConfigError(f"{_clip(value)!r} is not a node ID (such as ipn:2.0 or dtn://b/)")
    return str(eid)


def _node_order(node: str) -> tuple[int, int, str]:
    """Sort key of nodes for ION's range rule: ipn nodes by number, before dtn names."""
    if node.startswith("ipn:"):
        return (0, int(node[4:].partition(".")[0]), "")
    return (1, 0, node)


def _decimal(token: str, what: str) -> Decimal:
    try:
        value = Decimal(token)
    except InvalidOperation:
        raise ConfigError(f"bad {what} {_clip(token)!r}: not a number") from None
    if not value.is_finite():
        raise ConfigError(f"bad {what} {_clip(token)!r}: not a finite number")
    return value


# -- ION form -------------------------------------------------------------------------------

_ABSOLUTE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})-(\d{1,2}):(\d{1,2}):(\d{1,2})", re.ASCII)
# ionadmin commands that do not change the contact plan; a plan file may carry them.
_IGNORED_COMMANDS = frozenset({"1", "s", "x", "e", "v", "m", "h", "?", "l", "i", "!"})


def _seconds_ms(value: Decimal, what: str, token: str) -> int:
    ms = int((value * 1000).to_integral_value())
    if not 0 <= ms <= _MAX_TIME:
        raise ConfigError(f"bad {what} {_clip(token)!r}: out of range")
    return ms


def _ion_time(token: str, reference: int | None, what: str) -> int:
    """DTN ms for an ION time: ``+seconds`` after ``reference`` or ``yyyy/mm/dd-hh:mm:ss``."""
    if token.startswith("+"):
        if reference is None:
            raise ConfigError(
                f"relative {what} {_clip(token)!r} needs a reference time "
                "(an epoch, or an '@ yyyy/mm/dd-hh:mm:ss' line before it)"
            )
        if not token[1:2].isdigit():
            raise ConfigError(f"bad {what} {_clip(token)!r}: expected +seconds")
        try:
            offset = _decimal(token[1:], what)
        except ConfigError:
            raise ConfigError(f"bad {what} {_clip(token)!r}: expected +seconds") from None
        return _seconds_ms(Decimal(reference) / 1000 + offset, what, token)
    match = _ABSOLUTE.fullmatch(token)
    if match is None:
        raise ConfigError(f"bad {what} {_clip(token)!r}: expected +seconds or yyyy/mm/dd-hh:mm:ss")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"bad {what} {token!r}: {exc}") from None
    if moment < DTN_EPOCH:
        raise ConfigError(f"bad {what} {token!r}: before the DTN epoch 2000/01/01-00:00:00")
    delta = moment - DTN_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000


@dataclass(frozen=True, slots=True)
class _Range:
    start: int
    end: int
    sender: str
    receiver: str
    owlt: int
    line: int


def _parse_ion_line(
    tokens: list[str], reference: int | None
) -> tuple[str, Contact | _Range | int | None]:
    """One command: ("contact", Contact or None if skipped), ("range", _Range) or
    ("at", new reference time)."""
    command = tokens[0]
    if command == "@":
        if len(tokens) != 2:
            raise ConfigError("'@' takes one time: @ yyyy/mm/dd-hh:mm:ss or @ +seconds")
        return "at", _ion_time(tokens[1], reference, "reference time")
    if command != "a":
        raise ConfigError(f"unknown command {_clip(command)!r}")
    kind = tokens[1] if len(tokens) > 1 else ""
    args = tokens[2:]
    if kind == "contact":
        if len(args) not in (5, 6):
            raise ConfigError(
                "'a contact' takes <start> <end> <from> <to> <rate> [confidence], "
                f"got {len(args)} argument(s)"
            )
        if args[0] == "-1" or args[1] == "0":  # registration or hypothetical: no schedule
            return "contact", None
        start = _ion_time(args[0], reference, "start time")
        end = _ion_time(args[1], reference, "end time")
        sender, receiver = _node_id(args[2]), _node_id(args[3])
        rate_value = _decimal(args[4], "rate")
        rate: float = (
            int(rate_value) if rate_value == rate_value.to_integral_value() else float(rate_value)
        )
        confidence = float(_decimal(args[5], "confidence")) if len(args) == 6 else 1.0
        if end <= start:
            raise ConfigError(f"end time {args[1]} is not after start time {args[0]}")
        if rate <= 0:
            raise ConfigError(f"rate must be > 0 bytes/s, not {args[4]}")
        if not 0 < confidence <= 1:
            raise ConfigError(f"confidence must be in (0, 1], not {args[5]}")
        return "contact", Contact(start, end, sender, receiver, rate, 0, confidence)
    if kind == "range":
        if len(args) != 5:
            raise ConfigError(
                f"'a range' takes <start> <end> <from> <to> <owlt>, got {len(args)} argument(s)"
            )
        start = _ion_time(args[0], reference, "start time")
        end = _ion_time(args[1], reference, "end time")
        sender, receiver = _node_id(args[2]), _node_id(args[3])
        owlt_value = _decimal(args[4], "one-way light time")
        if owlt_value < 0:
            raise ConfigError(f"one-way light time must be >= 0 s, not {args[4]}")
        owlt = _seconds_ms(owlt_value, "one-way light time", args[4])
        if end <= start:
            raise ConfigError(f"end time {args[1]} is not after start time {args[0]}")
        if sender == receiver:
            raise ConfigError(f"range from {sender} to itself")
        return "range", _Range(start, end, sender, receiver, owlt, 0)
    raise ConfigError(f"unknown command 'a {_clip(kind)}' (expected 'a contact' or 'a range')")


def _apply_ranges(
    contacts: list[tuple[int, Contact]], ranges: list[_Range]
) -> list[tuple[int, Contact]]:
    """Give each contact the owlt of the range in its direction that covers its start."""
    explicit = {(r.sender, r.receiver) for r in ranges}
    directed: dict[tuple[str, str], list[_Range]] = {}
    for r in ranges:
        directed.setdefault((r.sender, r.receiver), []).append(r)
        reverse = (r.receiver, r.sender)
        if _node_order(r.sender) < _node_order(r.receiver) and reverse not in explicit:
            directed.setdefault(reverse, []).append(
                _Range(r.start, r.end, r.receiver, r.sender, r.owlt, r.line)
            )
    result = []
    for line, contact in contacts:
        covering = [
            r
            for r in directed.get((contact.sender, contact.receiver), ())
            if r.start <= contact.start < r.end
        ]
        if covering:
            owlt = max(covering, key=lambda r: (r.start, r.line)).owlt
            contact = Contact(
                contact.start,
                contact.end,
                contact.sender,
                contact.receiver,
                contact.rate,
                owlt,
                contact.confidence,
            )
        result.append((line, contact))
    return result


def _check_overlaps(contacts: list[tuple[str, Contact]], prefix: str) -> None:
    """Contacts for one direction must not overlap (as in ION)."""
    by_pair: dict[tuple[str, str], list[tuple[str, Contact]]] = {}
    for where, contact in contacts:
        by_pair.setdefault((contact.sender, contact.receiver), []).append((where, contact))
    for found in by_pair.values():
        found.sort(key=lambda item: (item[1].start, item[1].end))
        for (where_a, a), (where_b, b) in pairwise(found):
            if b.start < a.end:
                raise ConfigError(
                    f"{prefix}{where_b}: contact {b.sender} -> {b.receiver} overlaps the one "
                    f"at {where_a}"
                )


def parse_ion_contact_plan(
    text: str, *, epoch: int | None, source: str | None = None
) -> ContactPlan:
    """Read an ION-style contact plan (see the module docstring).

    ``epoch`` is the DTN time (ms) that ``+seconds`` times count from until an ``@`` line
    changes it; None refuses relative times before such a line. ``source`` names the text
    (a file name) in error messages.
    """
    prefix = f"contact plan {source}: " if source else "contact plan: "
    reference = epoch
    contacts: list[tuple[int, Contact]] = []
    ranges: list[_Range] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        tokens = line.split()
        if tokens[0] in _IGNORED_COMMANDS:
            continue
        try:
            kind, value = _parse_ion_line(tokens, reference)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}line {number}: {exc}") from None
        if kind == "at":
            assert isinstance(value, int)
            reference = value
        elif kind == "contact" and isinstance(value, Contact):
            contacts.append((number, value))
        elif kind == "range" and isinstance(value, _Range):
            ranges.append(
                _Range(value.start, value.end, value.sender, value.receiver, value.owlt, number)
            )
    resolved = _apply_ranges(contacts, ranges)
    _check_overlaps([(f"line {n}", c) for n, c in resolved], prefix)
    return ContactPlan(c for _, c in resolved)


# -- JSON form ------------------------------------------------------------------------------

_JSON_KEYS = frozenset({"from", "to", "start", "end", "rate", "owlt", "confidence"})
_JSON_REQUIRED = ("from", "to", "start", "end", "rate")


def _json_contact(entry: Any) -> Contact:
    if not isinstance(entry, dict):
        raise ConfigError(f"must be an object, not {type(entry).__name__}")
    unknown = sorted(str(key) for key in entry if key not in _JSON_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    missing = [key for key in _JSON_REQUIRED if key not in entry]
    if missing:
        raise ConfigError(f"missing key(s) {', '.join(map(repr, missing))}")
    for key in ("start", "end", "owlt"):
        value = entry.get(key, 0)
        if type(value) is not int or value < 0:
            raise ConfigError(f"{key!r} must be an integer of ms >= 0, not {value!r:.40}")
    rate = entry["rate"]
    if type(rate) not in (int, float) or not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"'rate' must be a number of bytes/s > 0, not {rate!r:.40}")
    confidence = entry.get("confidence", 1.0)
    if type(confidence) not in (int, float) or not 0 < confidence <= 1:
        raise ConfigError(f"'confidence' must be a number in (0, 1], not {confidence!r:.40}")
    if entry["end"] <= entry["start"]:
        raise ConfigError(f"'end' {entry['end']} is not after 'start' {entry['start']}")
    return Contact(
        entry["start"],
        entry["end"],
        _node_id(entry["from"]),
        _node_id(entry["to"]),
        rate,
        entry.get("owlt", 0),
        float(confidence),
    )


def contact_from_json(entry: Any) -> Contact:
    """One contact in the JSON plan form (``{"from", "to", "start", "end", "rate", ...}``),
    as an application adds it at run time. Raises a one-line ConfigError."""
    try:
        return _json_contact(entry)
    except ConfigError as exc:
        raise ConfigError(f"contact: {exc}") from None


def parse_json_contact_plan(data: str | bytes | Any, *, source: str | None = None) -> ContactPlan:
    """Read the JSON form (see the module docstring) from text or from the decoded value (a
    dict with ``"contacts"``, or a list of contact objects)."""
    prefix = f"contact plan {source}: " if source else "contact plan: "
    if isinstance(data, str | bytes | bytearray):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{prefix}not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except (UnicodeDecodeError, RecursionError) as exc:
            raise ConfigError(f"{prefix}not valid JSON: {type(exc).__name__}") from None
    if isinstance(data, dict):
        extra = sorted(str(key) for key in data if key != "contacts")
        if extra:
            raise ConfigError(f"{prefix}unknown top-level key(s) {', '.join(map(repr, extra))}")
        if "contacts" not in data:
            raise ConfigError(f"{prefix}missing the 'contacts' list")
        data = data["contacts"]
    if not isinstance(data, list):
        raise ConfigError(
            f"{prefix}expected an object with a 'contacts' list, not {type(data).__name__}"
        )
    contacts = []
    for index, entry in enumerate(data):
        try:
            contacts.append((f"contacts[{index}]", _json_contact(entry)))
        except ConfigError as exc:
            raise ConfigError(f"{prefix}contacts[{index}]: {exc}") from None
    _check_overlaps(contacts, prefix)
    return ContactPlan(c for _, c in contacts)


def parse_contact_plan(
    text: str, *, epoch: int | None = None, source: str | None = None
) -> ContactPlan:
    """Read a contact plan in either form: JSON when ``source`` ends in ``.json`` or the text
    starts with ``{`` or ``[``, else the ION form. The caller reads the file."""
    if (source or "").lower().endswith(".json") or text.lstrip()[:1] in ("{", "["):
        return parse_json_contact_plan(text, source=source)
    return parse_ion_contact_plan(text, epoch=epoch, source=source)
