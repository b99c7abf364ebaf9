from __future__ import annotations

import pytest

from dtncloud.sim import Simulation
from dtncloud.sim.one_format import (
    ConnectionEvent,
    MessageEvent,
    TraceError,
    hosts_of,
    node_name,
    parse_events,
    schedule_events,
)

TRACE = """\
# contacts
0.5 CONN 0 12 up
12.25 CONN 0 12 down

30 C M7 12 base 1024 512
31 CONN base 0 UP eth0
"""


def test_lines_become_events() -> None:
    events = list(parse_events(TRACE.splitlines()))
    assert events == [
        ConnectionEvent(500, "n0", "n12", True, 2),
        ConnectionEvent(12_250, "n0", "n12", False, 3),
        MessageEvent(30_000, "M7", "n12", "base", 1024, 5),
        ConnectionEvent(31_000, "base", "n0", True, 6),
    ]
    assert hosts_of(events) == ["n0", "n12", "base"]
    assert node_name("3") == "n3"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("10 CONN 1 2 sideways", "connection state 'sideways' is not up or down"),
        ("x CONN 1 2 up", "time 'x' is not a number of seconds"),
        ("-1 CONN 1 2 up", "must be a number of seconds >= 0"),
        ("10 CONN 1 1 up", "connects to itself"),
        ("10 CONN 1 up", "expected TIME CONN HOST1 HOST2 up|down"),
        ("10 C M1 1 2 big", "message size 'big' is not a number of bytes"),
        ("10 C M1 1 2", "expected TIME C MSGID FROM TO SIZE"),
        ("10 DE M1 1 2", "unsupported event 'DE'"),
        ("10 CONN a/b 2 up", "host 'a/b' is not a host number or name"),
        ("10", "expected TIME CONN"),
    ],
)
def test_malformed_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TraceError) as caught:
        list(parse_events(["# header", line], name="trace.txt"))
    assert str(caught.value).startswith("trace.txt:2: ")
    assert message in str(caught.value)


def test_events_go_into_a_simulation() -> None:
    events = list(parse_events(TRACE.splitlines()))
    sim = Simulation()
    for name in hosts_of(events):
        sim.add_node(name, router="epidemic")
    assert schedule_events(sim, events, rate_bytes_s=1000) == (2, 1)
    with pytest.raises(TraceError, match=r"^t:5: message ID 'M7' is used twice"):
        schedule_events(sim, events[2:3], name="t")
