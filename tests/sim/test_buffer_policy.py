"""Buffer policies: a full node refuses a bundle (``refuse``, as ``dtnd``) or makes room by
dropping the oldest bundles not being sent (``drop-oldest``, as the ONE simulator)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.bpv7 import BundleFlag, decode_bundle, read_admin_record
from dtncloud.bpv7.admin import StatusReport
from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.cli import cli
from dtncloud.engine import actions, inputs
from dtncloud.errors import ConfigError
from dtncloud.sim.node import SimNode
from dtncloud.sim.runner import build
from dtncloud.sim.scenario import parse_scenario
from dtncloud.sim.world import Simulation
from tests.unit.engine.harness import Harness, bundle_bytes

DEPLETED = int(StatusReportReason.DEPLETED_STORAGE)
#: room for two bundles of 1,000 payload bytes (about 1,040 bytes each), not three
BUFFER = 2_500


def _sim(policy: str, **link: Any) -> Simulation:
    sim = Simulation(seed=1, record_occupancy_every_ms=None)
    sim.add_node("a", router="direct", buffer_bytes=BUFFER, buffer_policy=policy)
    sim.add_node("b", router="direct")
    sim.add_node("c", router="direct")
    return sim


def _held(node: SimNode) -> set[str]:
    return {meta.bundle_id for meta in node.store.scan()}


def _bundle(sim: Simulation, message_id: str) -> str:
    bundle_id = sim.stats.messages[message_id].bundle_id
    assert bundle_id is not None
    return bundle_id


def test_drop_oldest_drops_the_oldest_to_take_a_new_bundle() -> None:
    sim = _sim("drop-oldest")
    for i, at in enumerate((1_000, 2_000, 3_000), start=1):
        sim.create_message(at, "a", "b", 1_000, message_id=f"M{i}")
    sim.run(10_000)
    a = sim.node("a")
    m1, m2, m3 = (_bundle(sim, m) for m in ("M1", "M2", "M3"))
    assert _held(a) == {m2, m3}
    assert set(a.agent.bundle_ids()) == {m2, m3}  # the agent let it go too
    assert not a.agent.knows(m1) or a.agent.bundle(m1) is None
    report = sim.report()
    assert report["dropped"] == 1
    assert report["drops_by_reason"] == {"depleted_storage": 1}
    assert report["per_node"]["dtn://a/"]["dropped"] == 1
    assert report["refused"] == 0
    assert sim.stats.messages["M3"].refused is None


def test_refuse_keeps_what_it_holds_and_refuses_the_new_bundle() -> None:
    sim = _sim("refuse")
    for i, at in enumerate((1_000, 2_000, 3_000), start=1):
        sim.create_message(at, "a", "b", 1_000, message_id=f"M{i}")
    sim.run(10_000)
    assert _held(sim.node("a")) == {_bundle(sim, "M1"), _bundle(sim, "M2")}
    assert sim.stats.messages["M3"].refused == "depleted_storage"
    assert sim.report()["drops_by_reason"] == {"depleted_storage": 1}


def test_refuse_is_the_default() -> None:
    sim = Simulation(record_occupancy_every_ms=None)
    assert sim.add_node("a").buffer_policy == "refuse"
    with pytest.raises(ConfigError, match="buffer_policy must be one of refuse, drop-oldest"):
        sim.add_node("b", buffer_policy="drop-newest")


@pytest.mark.parametrize("mode", ["bundle", "tcpcl"])
def test_the_bundle_being_sent_is_never_dropped(mode: str) -> None:
    sim = _sim("drop-oldest")
    # 100 B/s: M1 (the oldest) takes about 10 s to send, from 1 s on
    sim.contact(1_000, 100_000, "a", "b", rate_bytes_s=100, mode=mode)
    sim.create_message(0, "a", "b", 1_000, message_id="M1")
    sim.create_message(3_000, "a", "b", 1_000, message_id="M2")
    sim.create_message(4_000, "a", "b", 1_000, message_id="M3")
    sim.run(4_000)
    a = sim.node("a")
    m1, m3 = _bundle(sim, "M1"), _bundle(sim, "M3")
    (link,) = a.links.values()
    assert link.sending(a) == [m1]  # still being sent when M3 came
    assert _held(a) == {m1, m3}  # so M2 made room, though younger
    sim.run()
    messages = sim.stats.messages
    assert messages["M1"].delivered_at is not None
    assert messages["M2"].delivered_at is None
    assert messages["M3"].delivered_at is not None
    assert sim.report()["drops_by_reason"] == {"depleted_storage": 1}


def test_nothing_is_dropped_when_that_would_not_make_room() -> None:
    sim = _sim("drop-oldest")
    sim.contact(1_000, 100_000, "a", "b", rate_bytes_s=100)
    sim.contact(1_000, 100_000, "a", "c", rate_bytes_s=100)
    sim.create_message(0, "a", "b", 1_000, message_id="M1")
    sim.create_message(0, "a", "c", 1_000, message_id="M2")
    sim.create_message(4_000, "a", "b", 1_000, message_id="M3")  # both others being sent
    sim.create_message(5_000, "a", "b", 3_000, message_id="M4")  # larger than the buffer
    sim.run()
    messages = sim.stats.messages
    assert messages["M1"].delivered_at is not None
    assert messages["M2"].delivered_at is not None
    assert messages["M3"].refused == "depleted_storage"
    assert messages["M4"].refused == "depleted_storage"
    assert sim.report()["drops_by_reason"] == {"depleted_storage": 2}


def test_a_relay_drops_the_oldest_to_take_a_bundle_from_a_peer() -> None:
    sim = Simulation(seed=1, record_occupancy_every_ms=None)
    sim.add_node("a", router="epidemic")
    sim.add_node("r", router="epidemic", buffer_bytes=BUFFER, buffer_policy="drop-oldest")
    sim.add_node("z", router="epidemic")
    for i, at in enumerate((1_000, 2_000, 3_000), start=1):
        sim.create_message(at, "a", "z", 1_000, message_id=f"M{i}")
    sim.contact(10_000, 20_000, "a", "r", rate_bytes_s=10_000)
    sim.run(30_000)
    r = sim.node("r")
    assert _held(r) == {_bundle(sim, "M2"), _bundle(sim, "M3")}
    assert sim.report()["per_node"]["dtn://r/"]["dropped"] == 1


def test_the_agent_deletes_an_evicted_bundle_as_depleted_storage() -> None:
    h = Harness(config={"status_reports": True})
    data = bundle_bytes(flags=BundleFlag.REPORT_DELETION, report_to="dtn://z/")
    persist = h.settle(h.feed(inputs.BundleReceived(data, "in", receipt="r")))[0]
    assert isinstance(persist, actions.Persist)
    bundle_id = persist.meta.bundle_id
    out = h.feed(inputs.BundleEvicted(bundle_id))
    assert out[0] == actions.Remove(bundle_id)
    assert h.listener.events[-1] == ("deleted", bundle_id, DEPLETED)
    report_persist = next(a for a in out if isinstance(a, actions.Persist))
    report = read_admin_record(decode_bundle(report_persist.data))
    assert isinstance(report, StatusReport)
    assert report.deleted and report.reason == DEPLETED
    assert h.feed(inputs.BundleEvicted(bundle_id)) == []  # no longer held: nothing


# -- occupancy never exceeds the buffer ---------------------------------------------------------


def _random_run(seed: int, buffer: int, policy: str) -> Simulation:
    rng = random.Random(seed)
    sim = Simulation(seed=seed, record_occupancy_every_ms=None)
    names = [f"n{i}" for i in range(5)]
    for name in names:
        sim.add_node(name, router="epidemic", buffer_bytes=buffer, buffer_policy=policy)
    for _ in range(12):
        a, b = rng.sample(names, 2)
        start = rng.randrange(0, 100_000)
        sim.contact(start, start + rng.randrange(1_000, 20_000), a, b, rate_bytes_s=2_000,
                    delay_ms=rng.choice((0, 50)), mode=rng.choice(("bundle", "tcpcl")))  # fmt: skip
    for _ in range(25):
        a, b = rng.sample(names, 2)
        sim.create_message(rng.randrange(0, 100_000), a, b, rng.randrange(100, 1_500))
    return sim


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    buffer=st.integers(500, 6_000),
    policy=st.sampled_from(["drop-oldest", "refuse"]),
)
def test_occupancy_never_exceeds_the_buffer(seed: int, buffer: int, policy: str) -> None:
    sim = _random_run(seed, buffer, policy)
    while sim.step():
        for node in sim.nodes.values():
            assert node.usage().bytes <= buffer
            if node.up:  # what the agent holds is what the store holds
                assert set(node.agent.bundle_ids()) == _held(node)
    report = sim.report()
    assert report["created"] == 25
    if policy == "refuse":  # every bundle lost for lack of room was refused, none dropped
        at_sources = sum(r.refused == "depleted_storage" for r in sim.stats.messages.values())
        depleted = report["drops_by_reason"].get("depleted_storage", 0)
        assert depleted == report["refused"] + at_sources


def test_drop_oldest_is_deterministic() -> None:
    one = _random_run(7, 3_000, "drop-oldest")
    one.run()
    two = _random_run(7, 3_000, "drop-oldest")
    two.run()
    assert one.report() == two.report()
    assert one.report()["drops_by_reason"].get("depleted_storage", 0) > 0


# -- scenarios and replay -----------------------------------------------------------------------


def _scenario(**group: Any) -> dict[str, Any]:
    return {"duration": "1h", "group": [{"name": "g", "count": 2, "buffer": "4KiB", **group}]}


def test_scenario_groups_take_a_buffer_policy() -> None:
    spec = parse_scenario(_scenario(buffer_policy="drop-oldest"), base_dir=Path("."))
    assert spec.groups[0].buffer_policy == "drop-oldest"
    sim, _ = build(spec, 0)
    assert {n.buffer_policy for n in sim.nodes.values()} == {"drop-oldest"}
    default = parse_scenario(_scenario(), base_dir=Path("."))
    assert default.groups[0].buffer_policy == "refuse"


def test_scenario_buffer_policy_errors_are_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(_scenario(buffer_policy="oldest"), base_dir=Path("."))
    message = str(caught.value)
    assert message == (
        "[[group]] 1: buffer_policy: expected one of refuse, drop-oldest, got 'oldest'"
    )
    with pytest.raises(ConfigError, match="did you mean 'buffer_policy'"):
        parse_scenario(_scenario(buffer_polcy="refuse"), base_dir=Path("."))


CONTACTS = "10 CONN 0 1 up\n100 CONN 0 1 down\n"
# three messages for a node whose buffer holds two, created before the contact
MESSAGES = "1 C M1 0 1 1000\n2 C M2 0 1 1000\n3 C M3 0 1 1000\n"


@pytest.mark.parametrize(
    ("options", "latency"),
    [
        ([], 7.5),  # M2 and M3 delivered at 10 s: M1 made room for M3
        (["--buffer-policy", "refuse"], 8.5),  # M1 and M2: M3 was refused
    ],
)
def test_replay_drops_the_oldest_unless_told_to_refuse(
    tmp_path: Path, options: list[str], latency: float
) -> None:
    (tmp_path / "contacts.txt").write_text(CONTACTS)
    (tmp_path / "messages.txt").write_text(MESSAGES)
    args = ["sim", "replay", "--contacts", str(tmp_path / "contacts.txt"),
            "--messages", str(tmp_path / "messages.txt"), "--router", "epidemic",
            "--buffer", str(BUFFER), "--out", str(tmp_path / "o"), *options]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["delivered"] == 2
    assert report["drops_by_reason"] == {"depleted_storage": 1}
    assert report["latency_avg"] == pytest.approx(latency)
    assert "dropped 1" in result.output
