"""Links: transfer times under a rate and a delay, aborts, losses, node churn, buffers."""

from __future__ import annotations

import math

import pytest

from dtncloud.errors import ConfigError
from dtncloud.sim import Simulation


def _pair(router: str = "direct", **node: object) -> Simulation:
    sim = Simulation(seed=3, record_occupancy_every_ms=None)
    sim.add_node("a", router=router)
    sim.add_node("b", router=router, **node)  # type: ignore[arg-type]
    return sim


def test_a_rate_and_a_delay_give_the_transfer_time() -> None:
    sim = _pair()
    sim.contact(0, 1_000_000, "a", "b", rate_bytes_s=1000, delay_ms=250)
    sim.create_message(1000, "a", "b", 4000)
    sim.run()
    sent = sim.report()["per_node"]["dtn://a/"]["bytes_sent"]
    assert 4000 < sent < 4100  # the payload and the blocks around it
    record = sim.stats.messages["M1"]
    assert record.delivered_at == 1000 + math.ceil(sent * 1000 / 1000) + 250
    assert record.hops == 1


def test_one_transfer_at_a_time_each_way() -> None:
    sim = _pair()
    sim.contact(0, 1_000_000, "a", "b", rate_bytes_s=2000)
    sim.create_message(1000, "a", "b", 3000, message_id="first")
    sim.create_message(1000, "a", "b", 3000, message_id="second")
    sim.create_message(1000, "b", "a", 3000, message_id="back")
    sim.run()
    sent = sim.report()["per_node"]["dtn://a/"]["bytes_sent"]
    first = sim.stats.messages["first"].delivered_at
    second = sim.stats.messages["second"].delivered_at
    back = sim.stats.messages["back"].delivered_at
    assert first is not None and second is not None and back is not None
    assert second == 1000 + math.ceil(sent * 1000 / 2000)  # queued behind the first
    assert first == back  # the other direction has a rate of its own
    assert first < second


def test_a_link_that_goes_down_aborts_the_transfer() -> None:
    sim = _pair()
    sim.contact(0, 3000, "a", "b", rate_bytes_s=1000)
    sim.contact(10_000, 30_000, "a", "b", rate_bytes_s=1000)
    sim.create_message(1000, "a", "b", 10_000)
    sim.run()
    report = sim.report()
    assert (report["started"], report["aborted"], report["relayed"]) == (2, 1, 1)
    assert report["delivered"] == 1
    delivered_at = sim.stats.messages["M1"].delivered_at
    assert delivered_at is not None and 20_000 < delivered_at < 21_000  # sent again at 10 s
    assert report["per_node"]["dtn://a/"]["aborted"] == 1


def test_a_lossy_link_loses_transfers() -> None:
    sim = _pair()
    sim.contact(0, 200_000, "a", "b", loss=1.0)
    sim.create_message(1000, "a", "b", 100)
    sim.run()
    report = sim.report()
    assert report["delivered"] == 0
    assert report["started"] >= 2  # tried again after retry_ms
    assert report["lost"] == report["aborted"] == report["started"]


def test_node_churn_takes_the_links_down_and_restarts_from_the_store() -> None:
    sim = _pair()
    sim.contact(0, 100_000, "a", "b", rate_bytes_s=1000)
    sim.create_message(1000, "a", "b", 5000)
    sim.node_down(3000, "a")
    sim.node_up(50_000, "a")
    sim.run(10_000)
    a, b = sim.node("a"), sim.node("b")
    assert not a.up and a.links == {} and b.links == {}
    assert b.agent.view.links() == []
    assert sim.report()["aborted"] == 1
    assert a.store.usage().bundles == 1  # the store survives
    sim.run()
    record = sim.stats.messages["M1"]
    assert record.delivered_at is not None and 55_000 < record.delivered_at < 56_000
    assert sim.report()["contacts"] == 2  # the contact resumed with a new link


def test_a_message_from_a_node_that_is_down_is_dropped() -> None:
    sim = _pair()
    sim.node_down(0, "a")
    sim.create_message(1000, "a", "b", 10)
    sim.run()
    assert sim.report()["drops_by_reason"] == {"node_down": 1}
    assert sim.stats.message_rows()[0]["refused"] == "node_down"


def test_a_full_buffer_refuses_bundles() -> None:
    sim = _pair(buffer_bytes=500)
    sim.contact(0, 100_000, "a", "b")
    sim.create_message(1000, "a", "b", 2000)
    sim.create_message(2000, "b", "a", 2000)  # does not fit at its source either
    sim.run(100_000)
    report = sim.report()
    assert report["delivered"] == 0
    assert report["drops_by_reason"]["depleted_storage"] >= 2
    assert report["per_node"]["dtn://b/"]["refused"] >= 1


def test_bundles_expire() -> None:
    sim = _pair()
    sim.create_message(1000, "a", "b", 10, lifetime_ms=5000)
    sim.run()
    report = sim.report()
    assert report["drops_by_reason"] == {"lifetime_expired": 1}
    assert report["buffertime_avg"] == 5.0
    assert sim.now == 6000


def test_occupancy_is_sampled() -> None:
    sim = Simulation(record_occupancy_every_ms=1000)
    sim.add_node("a", router="direct")
    sim.add_node("b", router="direct")
    sim.create_message(1500, "a", "b", 100)
    sim.run(3000)
    series = sim.report()["occupancy"]
    assert series["t_s"] == [0.0, 1.0, 2.0, 3.0]
    assert series["total_bundles"] == [0, 0, 1, 1]
    assert series["max_bytes"][2] == series["total_bytes"][2] > 100


def test_bad_arguments_are_config_errors() -> None:
    sim = _pair()
    with pytest.raises(ConfigError, match="unknown router 'nope'; known routers: cgr"):
        sim.add_node("c", router="nope")
    with pytest.raises(ConfigError, match="no node"):
        sim.link_up(0, "a", "zz")
    with pytest.raises(ConfigError, match="rate_bytes_s"):
        sim.link_up(0, "a", "b", rate_bytes_s=0)
    with pytest.raises(ConfigError, match="same node"):
        sim.create_message(0, "a", "dtn://a/", 1)
    sim.run(10)
    with pytest.raises(ConfigError, match="in the past"):
        sim.create_message(5, "a", "b", 1)


def test_a_copy_the_receiver_already_has_is_a_duplicate_not_a_relay() -> None:
    sim = Simulation(seed=1, record_occupancy_every_ms=None)
    for name in ("a", "b", "c"):
        sim.add_node(name, router="epidemic")
    sim.add_node("far", router="epidemic")
    sim.create_message(0, "a", "far", 5_000)
    sim.contact(1_000, 20_000, "a", "c", rate_bytes_s=10_000)  # c gets a copy
    # a and c meet b at the same moment: both offer the copy b lacks, and both send it
    sim.contact(50_000, 80_000, "a", "b", rate_bytes_s=10_000)
    sim.contact(50_000, 80_000, "c", "b", rate_bytes_s=10_000)
    sim.run()
    report = sim.report()
    assert report["started"] == 3
    assert report["duplicates"] == 1
    assert report["relayed"] == 2  # a to c, and one of a and c to b
    per_node = report["per_node"]
    assert sum(counters["duplicates"] for counters in per_node.values()) == 1
    assert sum(counters["relayed"] for counters in per_node.values()) == 2


def test_a_bundle_cut_for_a_links_size_limit_is_delivered_whole() -> None:
    sim = Simulation(seed=1, record_occupancy_every_ms=None)
    sim.add_node("a", router="direct")
    sim.add_node("b", router="direct")
    sim.contact(1_000, 60_000, "a", "b", rate_bytes_s=10_000, max_bundle_size=1_000)
    sim.create_message(0, "a", "b", 5_000)
    sim.run()
    report = sim.report()
    # one transmission of six or more fragments, put together at b: one message delivered
    assert (report["delivered"], report["started"], report["relayed"]) == (1, 1, 1)
    delivered = sim.stats.messages["M1"].delivered_at
    assert delivered is not None and delivered > 1_000 + 500  # 5 kB and more at 10 kB/s
