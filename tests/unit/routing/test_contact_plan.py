"""Contacts, contact plans and the ION and JSON contact plan parsers."""

from __future__ import annotations

import json

import pytest

from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.errors import ConfigError
from dtncloud.routing.contact_plan import (
    Contact,
    ContactPlan,
    parse_contact_plan,
    parse_ion_contact_plan,
    parse_json_contact_plan,
    transmit_ms,
)

EPOCH = 700_000_000_000  # some DTN time, ms
# 2024-05-01T12:00:00Z
NOON = dtn_time_from_unix(1_714_564_800)


def ion(text: str, epoch: int | None = EPOCH) -> list[Contact]:
    return list(parse_ion_contact_plan(text, epoch=epoch))


def ion_error(text: str, epoch: int | None = EPOCH) -> str:
    with pytest.raises(ConfigError) as info:
        parse_ion_contact_plan(text, epoch=epoch)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- Contact --------------------------------------------------------------------------------


def test_contact_properties() -> None:
    c = Contact(1000, 11_000, "ipn:1.0", "ipn:2.0", 1000, owlt=5)
    assert c.duration == 10_000
    assert c.volume == 10_000
    assert c.transmit_ms(1000) == 1000
    assert c.transmit_ms(1001) == 1001
    assert c.transmit_ms(0) == 0
    assert c.is_active(1000) and c.is_active(10_999)
    assert not c.is_active(999) and not c.is_active(11_000)
    assert c.confidence == 1.0
    assert str(c) == "ipn:1.0 -> ipn:2.0 [1000, 11000) at 1000 B/s, owlt 5 ms"


def test_transmit_time_rounds_up_exactly() -> None:
    assert transmit_ms(1, 3) == 334
    assert transmit_ms(3, 3) == 1000
    assert transmit_ms(10**20 + 1, 10**18) == 100_001  # no float rounding for int rates
    assert transmit_ms(1, 2.5) == 400


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"start": -1}, "start"),
        ({"start": 1.5}, "start"),
        ({"end": 5}, "not after"),
        ({"end": 10}, "not after"),
        ({"rate": 0}, "rate"),
        ({"rate": -3}, "rate"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": True}, "rate"),
        ({"owlt": -1}, "owlt"),
        ({"confidence": 0}, "confidence"),
        ({"confidence": 1.5}, "confidence"),
        ({"receiver": "ipn:1.0"}, "itself"),
        ({"sender": ""}, "sender"),
    ],
)
def test_contact_rejects_bad_values(kwargs: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {
        "start": 10,
        "end": 20,
        "sender": "ipn:1.0",
        "receiver": "ipn:2.0",
        "rate": 100,
    }
    values.update(kwargs)
    with pytest.raises(ConfigError, match=problem):
        Contact(**values)  # type: ignore[arg-type]


# -- ContactPlan ----------------------------------------------------------------------------

A, B, C = "ipn:1.0", "ipn:2.0", "ipn:3.0"


def sample_plan() -> ContactPlan:
    return ContactPlan(
        [
            Contact(300, 400, B, C, 10),
            Contact(100, 200, A, B, 10),
            Contact(100, 150, A, C, 10),
            Contact(500, 600, A, B, 10),
        ]
    )


def test_plan_orders_contacts_and_looks_them_up() -> None:
    plan = sample_plan()
    assert [(c.start, c.end) for c in plan] == [(100, 150), (100, 200), (300, 400), (500, 600)]
    assert len(plan) == 4 and plan
    assert [c.receiver for c in plan.from_node(A)] == [C, B, B]
    assert [c.sender for c in plan.to_node(B)] == [A, A]
    assert plan.from_node("ipn:9.0") == ()
    assert [c.start for c in plan.between(A, B)] == [100, 500]
    assert plan.nodes() == {A, B, C}
    assert Contact(300, 400, B, C, 10) in plan


def test_plan_time_queries() -> None:
    plan = sample_plan()
    assert [c.end for c in plan.active_at(100)] == [150, 200]
    assert [c.end for c in plan.active_at(160)] == [200]
    assert plan.active_at(200) == ()
    assert plan.active_at(0) == ()
    assert [c.start for c in plan.pending(200)] == [300, 500]
    assert plan.next_start(100) == 300
    assert plan.next_start(99) == 100
    assert plan.next_start(500) is None


def test_plan_equality_addition_and_types() -> None:
    plan = sample_plan()
    assert plan == ContactPlan(reversed(plan.contacts))
    assert hash(plan) == hash(ContactPlan(plan.contacts))
    assert plan != ContactPlan()
    both = ContactPlan(plan.contacts[:2]) + ContactPlan(plan.contacts[2:])
    assert both == plan
    assert repr(plan) == "ContactPlan(<4 contacts>)"
    assert not ContactPlan()
    with pytest.raises(TypeError):
        ContactPlan(["not a contact"])  # type: ignore[list-item]


# -- ION form -------------------------------------------------------------------------------


def test_ion_relative_times_node_numbers_and_rates() -> None:
    contacts = ion(
        """
        # a comment, then a blank line

        a contact +0 +3600 1 2 100000
        a contact +60 +120.5 2 1 1500.5 0.75   # trailing comment
        """
    )
    assert contacts == [
        Contact(EPOCH, EPOCH + 3_600_000, "ipn:1.0", "ipn:2.0", 100_000),
        Contact(EPOCH + 60_000, EPOCH + 120_500, "ipn:2.0", "ipn:1.0", 1500.5, 0, 0.75),
    ]
    assert type(contacts[0].rate) is int


def test_ion_absolute_times_are_utc() -> None:
    (contact,) = ion("a contact 2024/05/01-12:00:00 2024/05/01-13:00:00 1 2 10", epoch=None)
    assert contact.start == NOON
    assert contact.end == NOON + 3_600_000
    (first,) = ion("a contact 2000/01/01-00:00:00 2000/1/1-0:0:1 1 2 10", epoch=None)
    assert (first.start, first.end) == (0, 1000)


def test_ion_at_command_sets_the_reference_time() -> None:
    contacts = ion(
        """
        @ 2024/05/01-12:00:00
        a contact +0 +10 1 2 10
        @ +3600
        a contact +0 +10 1 2 10
        """,
        epoch=None,
    )
    assert [c.start for c in contacts] == [NOON, NOON + 3_600_000]


def test_ion_node_ids_and_ignored_commands() -> None:
    contacts = ion(
        """
        1 1 ''
        m horizon +0
        e 1
        a contact +0 +10 ipn:7.0 dtn://relay/ 10
        a contact +0 +10 dtn://relay/ 7 10
        s
        """
    )
    assert [(c.sender, c.receiver) for c in contacts] == [
        ("dtn://relay/", "ipn:7.0"),
        ("ipn:7.0", "dtn://relay/"),
    ]


def test_ion_registration_and_hypothetical_contacts_are_skipped() -> None:
    assert ion("a contact -1 -1 1 1 0\na contact +0 0 1 2 0") == []


def test_ion_range_with_smaller_node_first_covers_both_directions() -> None:
    contacts = ion(
        """
        a contact +0 +100 1 2 10
        a contact +0 +100 2 1 10
        a range +0 +1000 1 2 3
        """
    )
    assert [(c.sender, c.owlt) for c in contacts] == [("ipn:1.0", 3000), ("ipn:2.0", 3000)]


def test_ion_explicit_reverse_range_overrides_the_implied_one() -> None:
    contacts = ion(
        """
        a range +0 +1000 1 2 3
        a range +0 +1000 2 1 5
        a contact +0 +100 1 2 10
        a contact +0 +100 2 1 10
        """
    )
    assert [(c.sender, c.owlt) for c in contacts] == [("ipn:1.0", 3000), ("ipn:2.0", 5000)]


def test_ion_range_with_larger_node_first_is_one_way() -> None:
    contacts = ion(
        """
        a range +0 +1000 2 1 4
        a contact +0 +100 1 2 10
        a contact +0 +100 2 1 10
        """
    )
    assert [(c.sender, c.owlt) for c in contacts] == [("ipn:1.0", 0), ("ipn:2.0", 4000)]


def test_ion_range_applies_to_contacts_starting_inside_it() -> None:
    contacts = ion(
        """
        a range +100 +200 1 2 1
        a range +200 +300 1 2 2.5
        a contact +0 +50 1 2 10
        a contact +100 +150 1 2 10
        a contact +199 +250 1 2 10
        a contact +200 +250 2 1 10
        a contact +300 +350 1 2 10
        """
    )
    assert [c.owlt for c in contacts] == [0, 1000, 1000, 2500, 0]


def test_parsed_plan_round_trips_through_json() -> None:
    plan = parse_ion_contact_plan(
        "a contact +0 +100 1 2 10 0.5\na range +0 +100 1 2 1", epoch=EPOCH
    )
    text = json.dumps(plan.to_json())
    assert parse_json_contact_plan(text) == plan


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("z 1 2", 1, "unknown command 'z'"),
        ("\n\na foo 1 2", 3, "unknown command 'a foo'"),
        ("a", 1, "unknown command 'a '"),
        ("d contact +0 1 2", 1, "unknown command 'd'"),
        ("a contact +0 +10 1 2", 1, "got 4 argument"),
        ("a contact +0 +10 1 2 10 1 9", 1, "got 7 argument"),
        ("a range +0 +10 1 2", 1, "got 4 argument"),
        ("a contact +x +10 1 2 10", 1, "bad start time '+x': expected +seconds"),
        ("a contact +-5 +10 1 2 10", 1, "expected +seconds"),
        ("a contact 12:00 +10 1 2 10", 1, "expected +seconds or yyyy/mm/dd-hh:mm:ss"),
        ("a contact +0 2024/13/01-00:00:00 1 2 10", 1, "bad end time"),
        ("a contact 1999/12/31-23:59:59 +10 1 2 10", 1, "before the DTN epoch"),
        ("a contact +10 +10 1 2 10", 1, "is not after start time"),
        ("a contact +10 +5 1 2 10", 1, "is not after start time"),
        ("a contact +0 +10 1 2 fast", 1, "bad rate 'fast'"),
        ("a contact +0 +10 1 2 0", 1, "rate must be > 0"),
        ("a contact +0 +10 1 2 -5", 1, "rate must be > 0"),
        ("a contact +0 +10 1 2 nan", 1, "not a finite number"),
        ("a contact +0 +10 1 2 10 0", 1, "confidence must be in (0, 1]"),
        ("a contact +0 +10 1 2 10 1.5", 1, "confidence must be in (0, 1]"),
        ("a contact +0 +10 1 ipn:2.5 10", 1, "not a node ID"),
        ("a contact +0 +10 1 0 10", 1, "bad node number 0"),
        ("a contact +0 +10 dtn:none 2 10", 1, "not a node ID"),
        ("a contact +0 +10 relay 2 10", 1, "bad node 'relay'"),
        ("a contact +0 +10 2 2 10", 1, "to itself"),
        ("a range +0 +10 1 2 -1", 1, "must be >= 0"),
        ("a range +0 +10 1 1 1", 1, "to itself"),
        ("a range +10 +0 1 2 1", 1, "is not after start time"),
        ("@ +1 +2", 1, "'@' takes one time"),
        ("a contact +0 +10 1 2 10\na contact +5 +20 1 2 10", 2, "overlaps the one at line 1"),
    ],
)
def test_ion_errors_name_the_line(text: str, line: int, problem: str) -> None:
    message = ion_error(text)
    assert message.startswith(f"contact plan: line {line}: "), message
    assert problem in message


def test_ion_relative_time_without_reference_is_an_error() -> None:
    message = ion_error("a contact +0 +10 1 2 10", epoch=None)
    assert message.startswith("contact plan: line 1: relative start time '+0' needs a reference")


def test_ion_error_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^contact plan plan\.ionrc: line 1: unknown command"):
        parse_ion_contact_plan("zap", epoch=0, source="plan.ionrc")


def test_contacts_in_opposite_directions_or_back_to_back_do_not_overlap() -> None:
    contacts = ion("a contact +0 +10 1 2 10\na contact +10 +20 1 2 10\na contact +5 +15 2 1 10")
    assert len(contacts) == 3


# -- JSON form ------------------------------------------------------------------------------

ENTRY = {"from": "ipn:1.0", "to": "ipn:2.0", "start": 1000, "end": 5000, "rate": 250}


def test_json_object_list_and_text_forms() -> None:
    expected = ContactPlan([Contact(1000, 5000, "ipn:1.0", "ipn:2.0", 250)])
    assert parse_json_contact_plan({"contacts": [ENTRY]}) == expected
    assert parse_json_contact_plan([ENTRY]) == expected
    assert parse_json_contact_plan(json.dumps({"contacts": [ENTRY]})) == expected
    assert parse_json_contact_plan(json.dumps([ENTRY]).encode()) == expected
    assert parse_json_contact_plan({"contacts": []}) == ContactPlan()


def test_json_optional_fields_and_node_numbers() -> None:
    (contact,) = parse_json_contact_plan(
        [{**ENTRY, "from": 4, "to": "dtn://b/", "owlt": 20, "confidence": 0.5, "rate": 2.5}]
    )
    assert contact == Contact(1000, 5000, "ipn:4.0", "dtn://b/", 2.5, 20, 0.5)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        ("42", "expected an object with a 'contacts' list, not int"),
        ({"contacts": [], "extra": 1}, "unknown top-level key(s) 'extra'"),
        ({"contact": []}, "unknown top-level key(s) 'contact'"),
        ({}, "missing the 'contacts' list"),
        ({"contacts": {}}, "expected an object with a 'contacts' list, not dict"),
        ([1], "contacts[0]: must be an object"),
        ([ENTRY, {**ENTRY, "colour": "red"}], "contacts[1]: unknown key(s) 'colour'"),
        ([{"from": 1, "to": 2}], "contacts[0]: missing key(s) 'start', 'end', 'rate'"),
        ([{**ENTRY, "start": 1.5}], "contacts[0]: 'start' must be an integer of ms"),
        ([{**ENTRY, "start": True}], "contacts[0]: 'start' must be an integer of ms"),
        ([{**ENTRY, "end": "5000"}], "contacts[0]: 'end' must be an integer of ms"),
        ([{**ENTRY, "owlt": -1}], "contacts[0]: 'owlt' must be an integer of ms"),
        ([{**ENTRY, "end": 1000}], "contacts[0]: 'end' 1000 is not after 'start' 1000"),
        ([{**ENTRY, "rate": 0}], "contacts[0]: 'rate' must be a number of bytes/s > 0"),
        ([{**ENTRY, "rate": "fast"}], "contacts[0]: 'rate' must be a number"),
        ([{**ENTRY, "confidence": 2}], "contacts[0]: 'confidence' must be a number in (0, 1]"),
        ([{**ENTRY, "to": "ipn:2.3"}], "contacts[0]: 'ipn:2.3' is not a node ID"),
        ([{**ENTRY, "to": None}], "contacts[0]: bad node None"),
        ([{**ENTRY, "to": "ipn:1.0"}], "contacts[0]: contact from ipn:1.0 to itself"),
        (
            [{**ENTRY, "start": 2**64, "end": 2**64 + 1}],
            "contacts[0]: contact start must be an integer",
        ),
        ([ENTRY, {**ENTRY, "start": 4999, "end": 6000}], "contacts[1]: contact ipn:1.0 -> "),
    ],
)
def test_json_errors_name_the_entry(data: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_json_contact_plan(data)
    message = str(info.value)
    assert message.startswith("contact plan: "), message
    assert problem in message
    assert "\n" not in message


def test_parse_contact_plan_picks_the_form() -> None:
    as_json = json.dumps({"contacts": [ENTRY]})
    assert len(parse_contact_plan(as_json)) == 1
    assert len(parse_contact_plan("  [" + json.dumps(ENTRY) + "]")) == 1
    assert len(parse_contact_plan("a contact +0 +1 1 2 10", epoch=0)) == 1
    with pytest.raises(ConfigError, match=r"^contact plan p\.json: not valid JSON"):
        parse_contact_plan("a contact +0 +1 1 2 10", epoch=0, source="p.json")
    with pytest.raises(ConfigError, match=r"^contact plan p\.txt: line 1: unknown command"):
        parse_contact_plan("oops", source="p.txt")
