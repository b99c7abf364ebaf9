"""Generators: deterministic for a seed, and the properties their events promise."""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from dtncloud.sim.generators import (
    ContactEvent,
    Events,
    contact_events,
    downtimes,
    generate,
    merge_contacts,
    mule_visits,
)
from dtncloud.sim.scenario import load_scenario
from dtncloud.sim.spec import (
    Distribution,
    FixedContacts,
    Group,
    LinkModel,
    MuleTour,
    RandomEncounters,
    SatellitePasses,
    ScenarioSpec,
    Window,
)

HOUR = 3_600_000
DAY = 24 * HOUR

EVERYTHING = """
duration = "3d"
[[group]]
name = "field"
count = 4
[[group]]
name = "town"
count = 3
[[group]]
name = "mule"
count = 2
[[group]]
name = "sat"
count = 1

[[contacts]]
type = "mesh"
nodes = "town"
mtbf = "10h"
mttr = "2h"
down = [["1h", "3h"]]

[[contacts]]
type = "random"
nodes = ["field", "town"]
node_rate = "20/d"
duration = { dist = "exponential", mean = "20m" }

[[contacts]]
type = "random"
nodes = ["field"]
pair_rate = "6/d"
duration = { dist = "uniform", min = "1m", max = "30m" }

[[contacts]]
type = "mule"
mule = "mule"
sites = ["field-1", "field", "town"]
travel = { dist = "uniform", min = "30m", max = "2h" }
dwell = "15m"
stagger = "3h"

[[contacts]]
type = "satellite"
satellite = "sat"
ground = ["field-2", "town-1"]
period = "100m"
duration = "9m"
stagger = "20m"
jitter = "2m"

[[duty_cycle]]
nodes = "field"
on = "06:00"
off = "20:00"
jitter = "30m"

[[duty_cycle]]
nodes = "town-3"
on = "22:00"
off = "04:00"

[[churn]]
nodes = ["field-1", "town"]
mtbf = "1d"
mttr = "3h"

[[traffic]]
from = "field"
to = "town"
rate = "4/h"
size = { dist = "exponential", mean = "100KiB" }

[[traffic]]
from = "town"
to = ["field", "town"]
interval = "1h"
size = "1MiB"
per_source = true
count = 10
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ScenarioSpec:
    path = tmp_path_factory.mktemp("gen") / "everything.toml"
    path.write_text(EVERYTHING)
    return load_scenario(path)


def small_spec(**kwargs: object) -> ScenarioSpec:
    groups = (Group("n", tuple(f"n-{i}" for i in range(1, 5)), "epidemic"),)
    return ScenarioSpec(name="t", duration=kwargs.pop("duration", DAY), groups=groups, **kwargs)  # type: ignore[arg-type]


def test_same_seed_same_events(spec: ScenarioSpec) -> None:
    first = generate(spec, random.Random(5))
    assert first == generate(spec, random.Random(5))
    assert first.contacts and first.node_changes and first.messages
    assert first != generate(spec, random.Random(6))


@pytest.mark.parametrize("seed", range(8))
def test_contacts_are_sorted_inside_the_run_and_never_overlap(
    spec: ScenarioSpec, seed: int
) -> None:
    events = generate(spec, random.Random(seed))
    contacts = events.contacts
    assert list(contacts) == sorted(contacts, key=lambda c: (c.start, c.end, c.a, c.b))
    by_pair: dict[tuple[str, str], list[ContactEvent]] = defaultdict(list)
    for c in contacts:
        assert spec.start <= c.start < c.end <= spec.end
        assert c.a < c.b and c.a in spec.nodes and c.b in spec.nodes
        by_pair[(c.a, c.b)].append(c)
    for found in by_pair.values():
        for earlier, later in pairwise(found):
            assert earlier.end < later.start  # not even touching: the link goes down between


@pytest.mark.parametrize("seed", range(8))
def test_node_changes_alternate_per_node(spec: ScenarioSpec, seed: int) -> None:
    events = generate(spec, random.Random(seed))
    changes = events.node_changes
    assert list(changes) == sorted(changes, key=lambda c: (c.at, c.node, c.up))
    by_node: dict[str, list[bool]] = defaultdict(list)
    for change in changes:
        assert spec.start <= change.at < spec.end
        by_node[change.node].append(change.up)
    for ups in by_node.values():
        assert ups == [i % 2 == 1 for i in range(len(ups))]  # down, up, down, ...


@pytest.mark.parametrize("seed", range(4))
def test_messages_sorted_numbered_and_well_formed(spec: ScenarioSpec, seed: int) -> None:
    messages = generate(spec, random.Random(seed)).messages
    assert [m.message_id for m in messages] == [f"M{n}" for n in range(1, len(messages) + 1)]
    assert [m.at for m in messages] == sorted(m.at for m in messages)
    for m in messages:
        assert m.source != m.destination and m.size >= 1
        assert spec.start <= m.at < spec.end
    from_town = [m for m in messages if m.source.startswith("town")]
    assert all(sum(m.source == s for m in from_town) <= 10 for s in ("town-1", "town-2", "town-3"))
    field = [m for m in messages if m.source.startswith("field")]
    assert 3 * 24 * 4 * 0.7 < len(field) < 3 * 24 * 4 * 1.3  # 4 an hour for 3 days


def test_adding_traffic_does_not_move_contacts(tmp_path: Path, spec: ScenarioSpec) -> None:
    path = tmp_path / "more.toml"
    path.write_text(
        EVERYTHING + '[[traffic]]\nfrom = "sat"\nto = "town"\ninterval = "5m"\nsize = 1\n'
    )
    more = load_scenario(path)
    assert generate(more, random.Random(1)).contacts == generate(spec, random.Random(1)).contacts


def test_duty_cycle_keeps_nodes_off_at_night(spec: ScenarioSpec) -> None:
    events = generate(spec, random.Random(2))
    night = [c for c in events.node_changes if c.node == "field-2"]
    # Off from midnight, on around 06:00 (+-30 min), off around 20:00, for three days.
    assert [c.up for c in night] == [False, True] * 3 + [False]
    assert night[0].at == 0
    for day in range(3):
        on, off = night[1 + 2 * day].at, night[2 + 2 * day].at
        assert abs(on - (day * DAY + 6 * HOUR)) <= HOUR // 2
        assert abs(off - (day * DAY + 20 * HOUR)) <= HOUR // 2
    overnight = [c for c in events.node_changes if c.node == "town-3"]
    # town-3 is on 22:00-04:00, so down at 04:00 and up at 22:00 (churn may add downtime).
    assert any(c.at == 4 * HOUR and not c.up for c in overnight)


def test_mesh_respects_down_windows(spec: ScenarioSpec) -> None:
    mesh = spec.contacts[0]
    contacts = contact_events(mesh, spec, random.Random(3))
    assert contacts
    for c in contacts:
        assert c.end <= 1 * HOUR or c.start >= 3 * HOUR


def test_mule_tours_visit_sites_in_order(spec: ScenarioSpec) -> None:
    tour = spec.contacts[3]
    assert isinstance(tour, MuleTour)
    visits = list(mule_visits(tour, spec, random.Random(4)))
    for index, mule in enumerate(tour.mules):
        mine = [v for v in visits if v[0] == mule]
        assert mine[0][3] == spec.start + index * tour.stagger
        assert [v[1] for v in mine] == [i % 3 for i in range(len(mine))]
        for (_, _, _, arrive, leave), (_, _, _, next_arrive, _) in pairwise(mine):
            assert leave - arrive == 15 * 60_000
            assert 30 * 60_000 <= next_arrive - leave <= 2 * HOUR
    # A group as a site: the mule meets every node of it.
    assert visits[1][2] == ("field-1", "field-2", "field-3", "field-4")


def test_mule_back_and_forth_with_a_period() -> None:
    spec = small_spec(duration=3 * DAY)
    tour = MuleTour(
        mules=("n-1",),
        sites=(("n-2",), ("n-3",), ("n-4",)),
        travel=Distribution("fixed", HOUR),
        dwell=Distribution("fixed", 10 * 60_000),
        link=LinkModel(),
        route="back_and_forth",
        period=DAY,
        tours=2,
    )
    visits = list(mule_visits(tour, spec, random.Random(0)))
    assert [v[1] for v in visits] == [0, 1, 2, 1] * 2
    assert [v[3] for v in visits][::4] == [0, DAY]


def test_satellite_passes_are_periodic() -> None:
    spec = small_spec()
    passes = SatellitePasses(
        satellites=("n-1",),
        ground=("n-2", "n-3"),
        period=100 * 60_000,
        duration=8 * 60_000,
        link=LinkModel(300),
        first=10 * 60_000,
        stagger=30 * 60_000,
    )
    contacts = merge_contacts(contact_events(passes, spec, random.Random(0)))
    for j, ground in enumerate(("n-2", "n-3")):
        starts = [c.start for c in contacts if c.b == ground]
        expected = list(range(10 * 60_000 + j * 30 * 60_000, DAY, 100 * 60_000))
        assert starts == expected
        assert all(c.end - c.start == 8 * 60_000 for c in contacts if c.b == ground)
    assert {c.link for c in contacts} == {LinkModel(300)}


def test_satellite_jitter_stays_within_bounds(spec: ScenarioSpec) -> None:
    passes = spec.contacts[4]
    assert isinstance(passes, SatellitePasses)
    contacts = contact_events(passes, spec, random.Random(9))
    starts = sorted(c.start for c in contacts if c.b == "town-1")
    for k, start in enumerate(starts):
        assert abs(start - (20 * 60_000 + k * 100 * 60_000)) <= 2 * 60_000


def test_pair_rate_gives_about_the_expected_number() -> None:
    spec = small_spec(duration=100 * DAY)
    source = RandomEncounters(
        nodes=("n-1", "n-2"),
        duration=Distribution("fixed", 60_000),
        link=LinkModel(),
        pair_rate=4 / DAY,
    )
    contacts = contact_events(source, spec, random.Random(1))
    assert 340 < len(contacts) < 460


def test_fixed_windows_keep_their_rate_and_are_clipped() -> None:
    spec = small_spec(duration=HOUR)
    source = FixedContacts(
        "plan",
        (Window(0, 10, "n-1", "n-2", 500, 3), Window(50, 2**63 - 1, "n-1", "n-3")),
        LinkModel(100, 7, 0.5),
    )
    contacts = contact_events(source, spec, random.Random(0))
    assert contacts == [
        ContactEvent(0, 10, "n-1", "n-2", LinkModel(500, 3, 0.5)),
        ContactEvent(50, HOUR, "n-1", "n-3", LinkModel(100, 7, 0.5)),
    ]


def test_merge_joins_overlapping_and_touching_contacts() -> None:
    fast, slow = LinkModel(10), LinkModel(1)
    merged = merge_contacts(
        [
            ContactEvent(5, 10, "a", "b", slow),
            ContactEvent(0, 6, "a", "b", fast),
            ContactEvent(10, 12, "a", "b", slow),
            ContactEvent(20, 30, "a", "b", slow),
            ContactEvent(1, 2, "a", "c", slow),
        ]
    )
    assert merged == [
        ContactEvent(0, 12, "a", "b", fast),
        ContactEvent(1, 2, "a", "c", slow),
        ContactEvent(20, 30, "a", "b", slow),
    ]


def test_downtimes_join_and_drop_the_final_up() -> None:
    changes = downtimes([("x", 10, 20), ("x", 15, 30), ("y", 5, 100), ("x", 40, 50)], end=100)
    assert [(c.at, c.node, c.up) for c in changes] == [
        (5, "y", False),
        (10, "x", False),
        (30, "x", True),
        (40, "x", False),
        (50, "x", True),
    ]


def test_empty_scenario_gives_no_events() -> None:
    assert generate(small_spec(), random.Random(0)) == Events((), (), ())
