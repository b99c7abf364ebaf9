"""The deployed routers in the simulator against what can be worked out without it:
epidemic delivers at the earliest possible time, spray and wait never exceeds its copies."""

from __future__ import annotations

import pytest

from dtncloud.routing.spray_and_wait import SprayAndWaitRouter
from dtncloud.sim import Simulation, node_id_of
from tests.sim.contact_traces import earliest_arrival, random_trace


def _simulation(seed: int, router: str, params: dict[str, int] | None = None) -> tuple:
    names, contacts, messages = random_trace(seed, nodes=12, contacts=70, messages=25)
    sim = Simulation(seed=seed, record_occupancy_every_ms=None)
    for name in names:
        sim.add_node(name, router=router, router_params=params)
    for c in contacts:
        sim.contact(c.start_ms, c.end_ms, c.a, c.b)
    ids = [sim.create_message(m.at_ms, m.source, m.destination, 200) for m in messages]
    return sim, contacts, messages, ids


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_epidemic_delivers_at_the_foremost_journey_time(seed: int) -> None:
    sim, contacts, messages, ids = _simulation(seed, "epidemic")
    sim.run()
    expected = [earliest_arrival(contacts, m) for m in messages]
    got = [sim.stats.messages[i].delivered_at for i in ids]
    assert got == expected
    assert sum(t is not None for t in got) >= 5  # the check is about something
    report = sim.report()
    assert report["delivered"] == sum(t is not None for t in expected)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_spray_and_wait_never_holds_more_copies_than_its_limit(seed: int) -> None:
    limit = 4
    sim, _, _, ids = _simulation(seed, "spray_and_wait", {"copies": limit})
    records = [sim.stats.messages[i] for i in ids]
    steps = 0
    while sim.step():
        steps += 1
        for record in records:
            assert record.copies() <= limit
            if record.bundle_id is None:
                continue
            # the logical copies the routers hold add up to no more than the limit
            tokens = 0
            for node in sim.nodes.values():
                meta = node.agent.bundle(record.bundle_id) if node.up else None
                if meta is not None and node.node_id != record.destination:
                    router = node.router
                    assert isinstance(router, SprayAndWaitRouter)
                    tokens += router.state(meta)[0]
            assert tokens <= limit
    assert steps > 100
    assert max(r.max_copies for r in records) == limit  # some message used them all
    assert sim.report()["max_copies"] == limit


def test_node_names() -> None:
    assert node_id_of("x") == "dtn://x/"
    assert node_id_of("ipn:7.0") == "ipn:7.0"
