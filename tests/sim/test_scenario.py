"""Scenario files: good files read into the spec, and every mistake one line naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtncloud.errors import ConfigError
from dtncloud.sim.scenario import (
    Distribution,
    FixedContacts,
    LinkModel,
    Mesh,
    MuleTour,
    RandomEncounters,
    SatellitePasses,
    apply_override,
    load_scenario,
    parse_override,
)

BASE = """
duration = "1d"
[[group]]
name = "a"
count = 2
[[group]]
name = "b"
nodes = ["b-x", "b-y"]
"""

FULL = """
name = "full"
description = "every part"
duration = "2d"
seed = 7
occupancy_every = "10m"

[routers.spray_and_wait]
copies = 4

[links.default]
rate = "1Mbit/s"
[links.wan]
rate = "10Mbit/s"
delay = "20ms"
loss = 0.01

[[group]]
name = "gla"
count = 3
router = "spray_and_wait"
buffer = "64MiB"
engine = { retry_ms = 10000 }

[[group]]
name = "liv"
nodes = ["liv-a", "liv-b"]
router = "prophet"
router_params = { beta = 0.5 }

[[group]]
name = "bus"
count = 1

[[group]]
name = "sat"
count = 1

[[contacts]]
type = "mesh"
nodes = "gla"

[[contacts]]
type = "mesh"
nodes = ["gla-1", "liv-a"]
link = "wan"
down = [["6h", "12h"]]
mtbf = "1d"
mttr = "3h"

[[contacts]]
type = "random"
nodes = ["gla", "liv"]
pair_rate = "2/d"
duration = { dist = "exponential", mean = "10m" }

[[contacts]]
type = "mule"
mule = "bus"
sites = ["gla", "liv-a", "liv-b"]
travel = { dist = "uniform", min = "1h", max = "2h" }
dwell = "20m"
period = "1d"
route = "back_and_forth"

[[contacts]]
type = "satellite"
satellite = "sat"
ground = ["gla-2", "liv-b"]
period = "100m"
duration = "8m"
stagger = "10m"
link = { rate = "2400bit/s" }

[[duty_cycle]]
nodes = "liv-b"
on = 07:00:00
off = "19:30"

[[churn]]
nodes = "gla-3"
mtbf = "12h"
mttr = "2h"

[[traffic]]
from = "gla"
to = "liv"
rate = "6/h"
size = { dist = "uniform", min = "1KiB", max = "1MiB" }
lifetime = "1d"

[[traffic]]
from = "liv"
to = "gla"
interval = "30m"
size = 4096
per_source = true
count = 5
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_scenario(tmp_path: Path) -> None:
    spec = load_scenario(write(tmp_path, FULL))
    assert (spec.name, spec.duration, spec.seed, spec.occupancy_every) == (
        "full",
        2 * 86_400_000,
        7,
        600_000,
    )
    assert spec.nodes == ("gla-1", "gla-2", "gla-3", "liv-a", "liv-b", "bus-1", "sat-1")
    gla, liv = spec.groups[0], spec.groups[1]
    assert gla.router_params == {"copies": 4}  # from [routers.spray_and_wait]
    assert gla.buffer_bytes == 64 * 2**20 and gla.engine == {"retry_ms": 10000}
    assert liv.router == "prophet" and liv.router_params == {"beta": 0.5}
    assert spec.links["wan"] == LinkModel(1_250_000, 20, 0.01)
    mesh, wan, random_, mule, satellite = spec.contacts
    assert isinstance(mesh, Mesh) and mesh.nodes == ("gla-1", "gla-2", "gla-3")
    assert mesh.link == LinkModel(125_000)  # links.default
    assert isinstance(wan, Mesh) and wan.down == ((6 * 3_600_000, 12 * 3_600_000),)
    assert (wan.mtbf_ms, wan.mttr_ms) == (86_400_000, 3 * 3_600_000)
    assert isinstance(random_, RandomEncounters)
    assert random_.pair_rate == pytest.approx(2 / 86_400_000)
    assert random_.duration == Distribution("exponential", 600_000)
    assert isinstance(mule, MuleTour) and mule.route == "back_and_forth"
    assert mule.sites == (("gla-1", "gla-2", "gla-3"), ("liv-a",), ("liv-b",))
    assert mule.travel == Distribution("uniform", 3_600_000, 7_200_000)
    assert isinstance(satellite, SatellitePasses) and satellite.link.rate == 300
    (cycle,) = spec.duty_cycles
    assert (cycle.on, cycle.off) == (7 * 3_600_000, 19 * 3_600_000 + 1_800_000)
    assert spec.churn[0].nodes == ("gla-3",)
    fast, slow = spec.traffic
    assert fast.interval == Distribution("exponential", 600_000)
    assert slow.per_source and slow.count == 5 and slow.size == Distribution("fixed", 4096)


def test_defaults(tmp_path: Path) -> None:
    spec = load_scenario(write(tmp_path, BASE, "tiny.toml"))
    assert spec.name == "tiny" and spec.seed == 0 and spec.start == 0
    assert [g.router for g in spec.groups] == ["epidemic", "epidemic"]
    assert spec.contacts == () and spec.traffic == ()


def test_start_as_date_time(tmp_path: Path) -> None:
    spec = load_scenario(write(tmp_path, "start = 2000-01-02T00:00:00Z\n" + BASE))
    assert spec.start == 86_400_000 and spec.end == 2 * 86_400_000


def test_plan_file(tmp_path: Path) -> None:
    (tmp_path / "plan.txt").write_text(
        "a contact +0 +3600 1 2 100000\na contact +0 +3600 2 1 100000\n"
        "a contact +7200 +9000 dtn://a-1/ dtn://b-x/ 5000\n"
    )
    text = (
        BASE
        + '[[contacts]]\ntype = "plan"\nfile = "plan.txt"\nnode_map = { 1 = "a-1", 2 = "a-2" }\n'
    )
    (source,) = load_scenario(write(tmp_path, text)).contacts
    assert isinstance(source, FixedContacts) and source.kind == "plan"
    assert [(w.start, w.end, w.a, w.b, w.rate) for w in source.windows] == [
        (0, 3_600_000, "a-1", "a-2", 100_000),
        (0, 3_600_000, "a-1", "a-2", 100_000),
        (7_200_000, 9_000_000, "a-1", "b-x", 5000),
    ]


def test_json_plan_file(tmp_path: Path) -> None:
    plan = {
        "contacts": [{"from": "dtn://a-1/", "to": "dtn://a-2/", "start": 0, "end": 10, "rate": 9}]
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    text = BASE + '[[contacts]]\ntype = "plan"\nfile = "plan.json"\n'
    (source,) = load_scenario(write(tmp_path, text)).contacts
    assert isinstance(source, FixedContacts)
    assert source.windows[0].end == 10 and source.windows[0].rate == 9


def test_one_trace_file(tmp_path: Path) -> None:
    (tmp_path / "trace.txt").write_text(
        "0 CONN 0 1 up\n10.5 CONN 1 0 down\n20 CONN 2 3 up\n30 CONN a-1 b-y up\n40 CONN a-1 b-y down\n"
    )
    text = BASE + '[[contacts]]\ntype = "trace"\nfile = "trace.txt"\nhosts = ["a", "b"]\n'
    (source,) = load_scenario(write(tmp_path, text)).contacts
    assert isinstance(source, FixedContacts) and source.kind == "trace"
    windows = [(w.start, w.end, w.a, w.b) for w in source.windows]
    assert windows[:2] == [(0, 10_500, "a-1", "a-2"), (30_000, 40_000, "a-1", "b-y")]
    assert windows[2][:2] == (20_000, 2**63 - 1)  # still up when the trace ends


def test_override_and_router_change(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    spec = load_scenario(path, [("group.router", "epidemic"), ("seed", 3), ("duration", "2h")])
    assert {g.router for g in spec.groups} == {"epidemic"}
    assert all(g.router_params == {} for g in spec.groups)
    assert spec.seed == 3 and spec.duration == 7_200_000
    spec = load_scenario(path, [("group.liv.buffer", "1MiB"), ("traffic.2.count", 9)])
    assert spec.groups[1].buffer_bytes == 2**20 and spec.traffic[1].count == 9
    assert spec.groups[1].router_params == {"beta": 0.5}


def test_parse_override_values() -> None:
    assert parse_override("3") == 3
    assert parse_override("0.5") == 0.5
    assert parse_override("true") is True
    assert parse_override("epidemic") == "epidemic"
    assert parse_override("2h") == "2h"
    assert parse_override('"x y"') == "x y"
    assert parse_override("{ dist = 'fixed', value = 3 }") == {"dist": "fixed", "value": 3}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("traffic.x", "override 'traffic.x': the scenario has no [[traffic]]"),
        ("group.zz.router", "no [[group]] named or numbered 'zz'"),
        ("group", "name a key inside [[group]]"),
        ("a..b", "not a dotted key"),
    ],
)
def test_bad_overrides(key: str, message: str) -> None:
    data = {"group": [{"name": "a"}]}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_override(data, key, 1)


# (text added to BASE or replacing it, expected start of the message after the file name)
ERRORS = [
    ("duration = 0\n[[group]]\nname='a'\ncount=1\n", "duration: must be longer than 0"),
    ("[[group]]\nname='a'\ncount=1\n", "duration: missing"),
    ('duration = "1d"\n', "no [[group]] of nodes"),
    ("sed = 1\n" + BASE, "unknown key 'sed' at the top level; did you mean 'seed'?"),
    (BASE.replace("count = 2", "count = 0"), "[[group]] 1: count: must be 1..100000"),
    (BASE.replace("count = 2", "cuont = 2"), "[[group]] 1: set either count or nodes"),
    (BASE + 'router = "epidemc"\n', "[[group]] 2: router: unknown router 'epidemc'"),
    (BASE + "router_params = { copies = 3 }\n", "[[group]] 2: router_params: router 'epidemic'"),
    (BASE + 'buffer = "lots"\n', "[[group]] 2: buffer: expected a size"),
    (
        BASE + "engine = { retri_ms = 1 }\n",
        "unknown key 'retri_ms' in [[group]] 2: engine; did you mean 'retry_ms'?",
    ),
    (BASE + "[[group]]\nname = 'c'\nnodes = ['a-1']\n", "[[group]] 3: name 'a-1' is already used"),
    (
        BASE + "[[group]]\nname = 'bad name'\ncount = 1\n",
        "[[group]] 3: name: 'bad name' is not a name",
    ),
    (BASE + "[links.wan]\nrate = 'fast'\n", "links.wan.rate: expected a rate"),
    (BASE + "[links.wan]\nloss = 2\n", "links.wan.loss: must be from 0 to 1"),
    (
        BASE + "[links.wan]\ndelya = 1\n",
        "unknown key 'delya' in [links.wan]; did you mean 'delay'?",
    ),
    (BASE + "[routers.nope]\n", "routers.nope: unknown router 'nope'"),
    (
        BASE + "[[contacts]]\ntype = 'wormhole'\n",
        "[[contacts]] 1: type: expected one of plan, trace",
    ),
    (
        BASE + "[[contacts]]\ntype = 'mesh'\nnodes = ['a', 'c']\n",
        "[[contacts]] 1: nodes: no node or group named 'c'",
    ),
    (BASE + "[[contacts]]\ntype = 'mesh'\nnodes = ['aa']\n", "did you mean 'a'?"),
    (
        BASE + "[[contacts]]\ntype = 'mesh'\nnodes = 'a'\nlink = 'wan'\n",
        "[[contacts]] 1: link: no link model 'wan'",
    ),
    (
        BASE + "[[contacts]]\ntype = 'mesh'\nnodes = 'a'\nmtbf = '1d'\n",
        "[[contacts]] 1: set both mtbf and mttr",
    ),
    (
        BASE + "[[contacts]]\ntype = 'mesh'\nnodes = 'a'\ndown = [['2h', '1h']]\n",
        "[[contacts]] 1: down: entry 1: ends before it starts",
    ),
    (
        BASE + "[[contacts]]\ntype = 'mesh'\nnodes = 'a'\nnode = 'b'\n",
        "unknown key 'node' in [[contacts]] 1; did you mean 'nodes'?",
    ),
    (
        BASE + "[[contacts]]\ntype = 'random'\nduration = '1m'\n",
        "[[contacts]] 1: set one of pair_rate or node_rate",
    ),
    (
        BASE + "[[contacts]]\ntype = 'random'\npair_rate = 'often'\nduration = '1m'\n",
        "[[contacts]] 1: pair_rate: expected a rate such as 12/h",
    ),
    (
        BASE + "[[contacts]]\ntype = 'random'\npair_rate = '1/h'\nduration = { dist = 'normal' }\n",
        "[[contacts]] 1: duration.dist: expected one of fixed, uniform, exponential",
    ),
    (
        BASE
        + "[[contacts]]\ntype = 'random'\npair_rate = '1/h'\nduration = { dist = 'uniform', min = '2m', max = '1m' }\n",
        "[[contacts]] 1: duration.max: is less than",
    ),
    (
        BASE + "[[contacts]]\ntype = 'random'\nnodes = 'a-1'\npair_rate = '1/h'\nduration = '1m'\n",
        "[[contacts]] 1: nodes: random encounters need two nodes",
    ),
    (
        BASE
        + "[[contacts]]\ntype = 'mule'\nmule = 'a-1'\nsites = ['b']\ntravel = '1h'\ndwell = '1m'\n",
        "[[contacts]] 1: sites: expected a list of at least two sites",
    ),
    (
        BASE + "[[contacts]]\ntype = 'mule'\nmule = 'a-1'\nsites = ['b-x', 'b-y']\ndwell = '1m'\n",
        "[[contacts]] 1: travel: missing",
    ),
    (
        BASE
        + "[[contacts]]\ntype = 'mule'\nmule = 'a-1'\nsites = ['b-x', 'b-y']\ntravel = '1h'\ndwell = '1m'\nroute = 'zigzag'\n",
        "[[contacts]] 1: route: expected one of loop, back_and_forth",
    ),
    (
        BASE
        + "[[contacts]]\ntype = 'satellite'\nsatellite = 'a-1'\nground = 'b'\nperiod = '10m'\nduration = '10m'\n",
        "[[contacts]] 1: duration: passes (plus twice the jitter) must be shorter",
    ),
    (
        BASE + "[[contacts]]\ntype = 'plan'\nfile = 'missing.txt'\n",
        "[[contacts]] 1: file: cannot read missing.txt",
    ),
    (
        BASE + "[[duty_cycle]]\nnodes = 'a'\non = '25:00'\noff = '19:00'\n",
        "[[duty_cycle]] 1: on: hour must be in 0..23",
    ),
    (
        BASE + "[[duty_cycle]]\nnodes = 'a'\non = '7:00'\noff = '07:00'\n",
        "[[duty_cycle]] 1: off: is the same time as on",
    ),
    (BASE + "[[churn]]\nnodes = 'a'\nmtbf = '1d'\n", "[[churn]] 1: mttr: missing"),
    (BASE + "[[traffic]]\nfrom = 'a'\nto = 'b'\nsize = 1\n", "[[traffic]] 1: set one of interval"),
    (
        BASE + "[[traffic]]\nfrom = 'a-1'\nto = 'a-1'\ninterval = '1m'\nsize = 1\n",
        "[[traffic]] 1: to: messages need a destination",
    ),
    (
        BASE + "[[traffic]]\nfrom = 'a'\nto = 'b'\ninterval = '1m'\nsize = 0\n",
        "[[traffic]] 1: size: must be at least 1 byte",
    ),
    (
        BASE + "[[traffic]]\nfrom = 'a'\nto = 'b'\ninterval = '1m'\nsize = 1\nper_source = 1\n",
        "[[traffic]] 1: per_source: expected true or false",
    ),
    ("duration = \n", "TOML syntax error"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: ")
    assert message in line, line


def test_trace_errors(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("0 CONN 0 1 up\n5 CONN 0 9 down\n")
    text = BASE + '[[contacts]]\ntype = "trace"\nfile = "t.txt"\nhosts = ["a"]\n'
    with pytest.raises(ConfigError, match=r"t.txt:2: host 9 is beyond the 2 hosts"):
        load_scenario(write(tmp_path, text))
    (tmp_path / "t.txt").write_text("0 CONN a-1 a-2 sideways\n")
    with pytest.raises(
        ConfigError, match=r"t.txt:1: connection state 'sideways' is not up or down"
    ):
        load_scenario(write(tmp_path, text))


def test_plan_errors_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a contact +0 +10 1 2 100\na contact +0 +10 1 7 100\n")
    text = (
        BASE + '[[contacts]]\ntype = "plan"\nfile = "p.txt"\nnode_map = { 1 = "a-1", 2 = "a-2" }\n'
    )
    with pytest.raises(
        ConfigError, match=r"\[\[contacts\]\] 1: file: p.txt: no node or group named 'ipn:7.0'"
    ):
        load_scenario(write(tmp_path, text))


def test_link_model_keywords(tmp_path: Path) -> None:
    text = BASE + '[links.sbd]\nrate = "2400bit/s"\ndelay = "2s"\nmax_bundle = "1960B"\n'
    model = load_scenario(write(tmp_path, text)).links["sbd"]
    assert model.kwargs() == {
        "rate_bytes_s": 300,
        "delay_ms": 2000,
        "loss": 0.0,
        "max_bundle_size": 1960,
    }
    assert LinkModel().kwargs() == {"rate_bytes_s": None, "delay_ms": 0, "loss": 0.0}


@pytest.mark.parametrize(
    ("rate", "per_hour"),
    [("6/h", 6), ("1/min", 60), ("2/hours", 2), ("24/day", 1), ("0.5/m", 30), ("168/w", 1)],
)
def test_event_rates(tmp_path: Path, rate: str, per_hour: float) -> None:
    text = BASE + f'[[traffic]]\nfrom = "a"\nto = "b"\nrate = "{rate}"\nsize = 1\n'
    (traffic,) = load_scenario(write(tmp_path, text)).traffic
    assert traffic.interval == Distribution("exponential", round(3_600_000 / per_hour))
