"""Link mode "tcpcl": contacts carried by two real TCPCLv4 sessions exchanging bytes."""

from __future__ import annotations

import json
import tomllib
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dtncloud.cli import cli
from dtncloud.errors import ConfigError
from dtncloud.sim.tcpcl_link import TcpclLink
from dtncloud.sim.world import Simulation


def two_nodes(seed: int = 1) -> Simulation:
    sim = Simulation(seed=seed, record_occupancy_every_ms=None)
    sim.add_node("a", router="direct")
    sim.add_node("b", router="direct")
    return sim


def the_link(sim: Simulation) -> TcpclLink:
    (link,) = sim.network.links.values()
    assert isinstance(link, TcpclLink)
    return link


def delivered_at(mode: str, size: int = 500, **link: Any) -> int | None:
    sim = two_nodes()
    sim.contact(10_000, 30_000, "a", "b", rate_bytes_s=10_000, delay_ms=100, mode=mode, **link)
    sim.create_message(5_000, "a", "b", size)
    sim.run()
    return sim.stats.messages["M1"].delivered_at


def test_session_set_up_delays_the_first_bundle() -> None:
    bundle = delivered_at("bundle")
    tcpcl = delivered_at("tcpcl")
    assert bundle is not None and tcpcl is not None
    # contact headers and SESS_INIT: two round trips (4 x 100 ms) before the active side
    # may send, plus the few dozen bytes of those messages, XFER_SEGMENT headers and such
    assert 400 <= tcpcl - bundle <= 420


def test_bundle_larger_than_the_segment_mru_goes_in_segments() -> None:
    sim = two_nodes()
    sim.contact(10_000, 30_000, "a", "b", rate_bytes_s=10_000, delay_ms=100, mode="tcpcl",
                tcpcl={"segment_mru": 1000})  # fmt: skip
    sim.create_message(5_000, "a", "b", 5_000)
    sim.run(until_ms=20_000)
    assert sim.stats.messages["M1"].delivered_at is not None
    counters = the_link(sim).counters()
    assert counters["dtn://b/ segments"] >= 6  # 5000 payload bytes plus the bundle's blocks
    assert counters["dtn://a/ segments"] == 0
    # one segment of everything: fewer segment headers and acknowledgements, sooner
    one = delivered_at("tcpcl", 5_000)
    many = delivered_at("tcpcl", 5_000, tcpcl={"segment_mru": 1000})
    assert one is not None and many is not None and one < many


def test_cut_mid_transfer_fails_and_the_bundle_goes_on_the_next_contact() -> None:
    sim = two_nodes()
    sim.contact(10_000, 11_000, "a", "b", rate_bytes_s=1_000, delay_ms=10, mode="tcpcl")
    sim.contact(20_000, 40_000, "a", "b", rate_bytes_s=1_000, delay_ms=10, mode="tcpcl")
    sim.create_message(5_000, "a", "b", 5_000)  # 5 s to serialise: longer than contact 1
    sim.run()
    record = sim.stats.messages["M1"]
    assert record.delivered_at is not None and record.delivered_at > 25_000
    report = sim.report()
    assert report["delivered"] == 1
    assert report["contacts"] == 2
    assert sim.stats.aborted >= 1


def test_cut_reports_the_acknowledged_bytes() -> None:
    from dtncloud.engine import inputs as inp

    sim = two_nodes()
    sim.contact(10_000, 13_000, "a", "b", rate_bytes_s=1_000, delay_ms=10, mode="tcpcl",
                tcpcl={"segment_mru": 500})  # fmt: skip
    sim.create_message(5_000, "a", "b", 5_000)
    node = sim.node("a")
    failures: list[inp.TransmissionFailed] = []
    answer = node.answer

    def spy(event: inp.Input) -> None:
        if isinstance(event, inp.TransmissionFailed):
            failures.append(event)
        answer(event)

    node.answer = spy  # type: ignore[method-assign]
    sim.run()
    assert len(failures) == 1
    # about 2.5 s of 1000 B/s got through, in acknowledged segments of 500 bytes
    assert failures[0].acknowledged >= 1_500 and failures[0].acknowledged % 500 == 0
    assert failures[0].reason == "contact ended"


def test_idle_contact_keeps_alive_and_does_not_time_out() -> None:
    sim = two_nodes()
    sim.contact(0, 3_600_000, "a", "b", rate_bytes_s=10_000, delay_ms=50, mode="tcpcl",
                tcpcl={"keepalive_s": 10})  # fmt: skip
    sim.create_message(1_800_000, "a", "b", 1_000)
    sim.run(until_ms=1_700_000)
    link = the_link(sim)
    counters = link.counters()
    # both sides send a keepalive every 10 s of silence (one side's keeps the other's timer
    # for receiving, not for sending, going)
    assert counters["dtn://a/ keepalives"] >= 150
    assert counters["dtn://b/ keepalives"] >= 150
    assert all(side.session.established for side in link.sides.values())
    sim.run()
    assert sim.stats.messages["M1"].delivered_at is not None
    assert sim.report()["contacts"] == 1


def test_contact_end_terminates_the_sessions_cleanly() -> None:
    sim = two_nodes()
    sim.contact(0, 60_000, "a", "b", delay_ms=100, mode="tcpcl")
    sim.run(until_ms=59_000)
    link = the_link(sim)
    sim.run()
    ends = [side.closed_by for side in link.sides.values()]
    assert all(end is not None and end.clean for end in ends), ends
    assert not sim.network.links


def test_runs_are_deterministic() -> None:
    def once() -> dict[str, Any]:
        sim = Simulation(seed=7, record_occupancy_every_ms=10_000)
        for name in ("a", "b", "c"):
            sim.add_node(name, router="epidemic")
        sim.contact(1_000, 60_000, "a", "b", rate_bytes_s=5_000, delay_ms=20, mode="tcpcl")
        sim.contact(30_000, 90_000, "b", "c", rate_bytes_s=5_000, delay_ms=20, mode="tcpcl",
                    tcpcl={"segment_mru": 700, "keepalive_s": 5})  # fmt: skip
        for i in range(10):
            sim.create_message(i * 3_000, "a", "c", 1_000 + 300 * i)
        sim.run()
        return sim.report()

    first = once()
    assert first["delivered"] > 0
    assert json.dumps(first, sort_keys=True) == json.dumps(once(), sort_keys=True)


def test_bad_settings_are_config_errors() -> None:
    sim = two_nodes()
    with pytest.raises(ConfigError, match="mode"):
        sim.link_up(0, "a", "b", mode="udp")
    with pytest.raises(ConfigError, match="need mode"):
        sim.link_up(0, "a", "b", tcpcl={"keepalive_s": 3})
    with pytest.raises(ConfigError, match="tcpcl settings"):
        sim.link_up(0, "a", "b", mode="tcpcl", tcpcl={"nope": 3})


SCENARIO = """duration = "1h"
seed = 3

[[group]]
name = "n"
count = 3

[links.tcp]
rate = "1Mbit/s"
delay = "20ms"
mode = "tcpcl"
segment_mru = "4KiB"
keepalive = "15s"

[[contacts]]
type = "mesh"
nodes = ["n-1", "n-2"]
link = "tcp"

[[contacts]]
type = "random"
nodes = ["n-2", "n-3"]
pair_rate = "6/h"
duration = "4m"
link = "tcp"

[[traffic]]
from = "n-1"
to = "n-3"
interval = { dist = "exponential", mean = "3m" }
size = { dist = "uniform", min = "100B", max = "20KiB" }
lifetime = "1h"
"""


def test_scenario_with_tcpcl_links_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tcp.toml").write_text(SCENARIO)
    result = CliRunner().invoke(cli, ["sim", "run", "tcp.toml", "--out", "r", "--no-plots"])
    assert result.exit_code == 0, result.output
    report = json.loads(Path("r", "report.json").read_text())
    assert report["created"] > 5 and report["delivered"] > 0


def test_scenario_rejects_tcpcl_keys_without_the_mode(tmp_path: Path) -> None:
    from dtncloud.sim.scenario import parse_scenario

    text = SCENARIO.replace('mode = "tcpcl"\n', "")
    with pytest.raises(ConfigError, match="need mode"):
        parse_scenario(tomllib.loads(text), base_dir=tmp_path)


# -- sessions that end during a contact ----------------------------------------------------


def end_session_at(sim: Simulation, at_ms: int) -> None:
    """The active side sends SESS_TERM at ``at_ms`` (as on a node told to close it)."""
    a, b = sim.node("a"), sim.node("b")
    sim.scheduler.call_at(at_ms, lambda: sim.network.contact_ending(a, b))


def test_a_session_ended_during_a_contact_is_opened_again() -> None:
    sim = two_nodes()
    sim.contact(0, 600_000, "a", "b", rate_bytes_s=10_000, delay_ms=50, mode="tcpcl")
    end_session_at(sim, 10_000)
    sim.create_message(10_300, "a", "b", 1_000)  # after the SESS_TERM went out
    sim.run(until_ms=10_400)
    assert not sim.network.links  # both sessions closed: no link for now
    sim.run(until_ms=300_000)
    delivered = sim.stats.messages["M1"].delivered_at
    assert delivered is not None
    # reconnected 0.5 to 1.5 s after the link went, then set-up (4 x 50 ms) and the bundle
    assert 10_000 + 500 + 200 < delivered < 10_400 + 1_500 + 200 + 200
    assert sim.report()["contacts"] == 1  # a reconnection is not a new contact
    assert the_link(sim).sides["dtn://a/"].session.established


def test_reconnections_back_off_like_dtnd() -> None:
    sim = two_nodes(seed=3)
    sim.contact(0, 3_600_000, "a", "b", delay_ms=10, mode="tcpcl")
    a = sim.node("a")
    ups: list[int] = []
    link_up = a.link_up

    def end_each_session_once_up(link: Any) -> None:
        link_up(link)
        ups.append(sim.scheduler.now)
        if len(ups) < 9:
            end_session_at(sim, sim.scheduler.now + 1)

    a.link_up = end_each_session_once_up  # type: ignore[method-assign]
    sim.run()
    assert len(ups) == 9
    # each session: up, SESS_TERM 1 ms later, both closed a round trip (20 ms) after that,
    # then the wait: 1 s doubling to 60 s, jittered by 0.5 to 1.5, then set-up (40 ms)
    waits = [later - earlier - 1 - 20 - 40 for earlier, later in pairwise(ups)]
    for k, wait in enumerate(waits):
        nominal = min(1_000 * 2**k, 60_000)
        assert 0.5 * nominal - 5 <= wait <= 1.5 * nominal + 5, (k, waits)
    assert len(set(waits)) == len(waits)  # jittered


def test_a_session_that_lasted_starts_the_back_off_again() -> None:
    sim = two_nodes(seed=5)
    sim.contact(0, 3_600_000, "a", "b", delay_ms=10, mode="tcpcl", tcpcl={"keepalive_s": 10})
    a = sim.node("a")
    ups: list[int] = []
    link_up = a.link_up

    def end_each_session_after_70_s(link: Any) -> None:
        link_up(link)
        ups.append(sim.scheduler.now)
        if len(ups) < 6:
            end_session_at(sim, sim.scheduler.now + 70_000)

    a.link_up = end_each_session_after_70_s  # type: ignore[method-assign]
    sim.run()
    waits = [later - earlier - 70_000 - 20 - 40 for earlier, later in pairwise(ups)]
    assert len(waits) == 5
    assert all(500 - 5 <= wait <= 1_500 + 5 for wait in waits), waits


def test_no_reconnection_after_the_contact_ended() -> None:
    sim = two_nodes()
    sim.contact(0, 10_400, "a", "b", delay_ms=50, mode="tcpcl")
    end_session_at(sim, 10_000)
    sim.run()
    assert not sim.network.links
    assert sim.report()["contacts"] == 1
