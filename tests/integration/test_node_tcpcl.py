"""Nodes with the real engine, stores and TCPCL on loopback: bundles cross two hops."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.engine import EngineConfig
from dtncloud.routing import default_registry
from dtncloud.runtime import Delivery, Node, wall_clock_ms
from dtncloud.store.base import Store
from dtncloud.store.memory import MemoryStore
from dtncloud.store.sqlite import SqliteStore


def run(body: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(main())


def make_node(
    node_id: str,
    store: Store,
    routes: list[dict[str, str]] | None = None,
    listen: bool = True,
    **engine: Any,
) -> tuple[Node, TcpclConvergenceLayer]:
    router = default_registry.create(
        "static", node_id=node_id, rng=random.Random(1), params={"routes": routes or []}
    )
    node = Node(EngineConfig(node_id, **engine), store, router)
    options = TcpclOptions(
        node_id=node_id,
        listen="127.0.0.1" if listen else None,
        port=0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.2,
    )

    def factory(n: Node) -> TcpclConvergenceLayer:
        return TcpclConvergenceLayer(
            n, options, known_bundle=lambda bundle_id: n.agent.knows(str(bundle_id))
        )

    cla = node.add_cla(factory)
    assert isinstance(cla, TcpclConvergenceLayer)
    return node, cla


class Inbox:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.got: list[Delivery] = []
        self.full = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.got.append(delivery)
        if len(self.got) >= self.expected:
            self.full.set()


def test_bundles_cross_two_hops_and_leave_no_copies(tmp_path: Path) -> None:
    async def body() -> None:
        a, _ = make_node(
            "dtn://a/", MemoryStore(), [{"pattern": "dtn://c/*", "via": "dtn://b/"}], listen=False
        )
        b, b_cla = make_node("dtn://b/", SqliteStore(tmp_path / "b"))
        c, c_cla = make_node("dtn://c/", MemoryStore())
        inbox = Inbox(40)
        async with a, b, c:
            c.register("dtn://c/inbox", inbox)
            a_cla = a._clas[0]
            await a.connect(a_cla, f"127.0.0.1:{b_cla.port}")
            await b.connect(b_cla, f"127.0.0.1:{c_cla.port}")
            ids = [
                await a.send("dtn://a/app", "dtn://c/inbox", f"m{i}".encode() * 50)
                for i in range(40)
            ]
            await asyncio.wait_for(inbox.full.wait(), 30)
            assert sorted(d.bundle_id for d in inbox.got) == sorted(ids)
            assert {d.payload for d in inbox.got} == {f"m{i}".encode() * 50 for i in range(40)}
            assert all(d.source == "dtn://a/app" for d in inbox.got)
            # every node let its copies go: A and B forwarded them, C delivered them
            for node in (a, b, c):
                await _until(lambda n=node: not n.stored())
                await node.idle()
            assert (await b.store.usage()).bundles == 0

    run(body)


def test_bundle_waits_for_a_late_application_across_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        a, _ = make_node("dtn://a/", MemoryStore(), listen=False)
        c, c_cla = make_node("dtn://c/", SqliteStore(tmp_path / "c"))
        async with a, c:
            await a.connect(a._clas[0], f"127.0.0.1:{c_cla.port}")
            sent = await a.send("dtn://a/app", "dtn://c/late", b"for later")
            await _until(lambda: c.agent.bundle(sent) is not None)
        # C restarts; the application comes only now
        c2, _ = make_node("dtn://c/", SqliteStore(tmp_path / "c"))
        inbox = Inbox(1)
        async with c2:
            assert c2.agent.bundle(sent) is not None
            c2.register("dtn://c/late", inbox)
            await asyncio.wait_for(inbox.full.wait(), 10)
            assert inbox.got[0].payload == b"for later"

    run(body)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for the node's tasks to bring ``condition`` about (polled on each loop turn)."""
    while not condition():
        await asyncio.sleep(0)


def test_custody_is_released_hop_by_hop(tmp_path: Path) -> None:
    custody = {"custody": True, "custody_signal_delay_ms": 20}

    async def body() -> None:
        a, _ = make_node(
            "dtn://a/",
            MemoryStore(),
            [{"pattern": "dtn://c/*", "via": "dtn://b/"}],
            listen=False,
            **custody,
        )
        b, b_cla = make_node("dtn://b/", SqliteStore(tmp_path / "b"), **custody)
        c, c_cla = make_node("dtn://c/", MemoryStore(), **custody)
        inbox = Inbox(5)
        async with a, b, c:
            c.register("dtn://c/inbox", inbox)
            await a.connect(a._clas[0], f"127.0.0.1:{b_cla.port}")
            await b.connect(b_cla, f"127.0.0.1:{c_cla.port}")
            for i in range(5):
                await a.send("dtn://a/app", "dtn://c/inbox", b"in custody %d" % i)
            await asyncio.wait_for(inbox.full.wait(), 30)
            # each custodian lets go only when the next one has signalled acceptance
            for node in (a, b, c):
                await _until(lambda n=node: not n.stored())
            assert len(a.agent._custodian.ledger) == 0
            assert len(b.agent._custodian.ledger) == 0

    run(body)


def test_a_failing_handler_gets_the_bundle_again_later() -> None:
    async def body() -> None:
        now = [wall_clock_ms()]
        router = default_registry.create("static", node_id="dtn://a/", rng=random.Random(1))
        node = Node(
            EngineConfig("dtn://a/", retry_ms=5_000), MemoryStore(), router, clock=lambda: now[0]
        )
        calls: list[bytes] = []
        done = asyncio.Event()

        async def flaky(delivery: Delivery) -> None:
            calls.append(delivery.payload)
            if len(calls) == 1:
                raise RuntimeError("not ready yet")
            done.set()

        async with node:
            node.register("dtn://a/inbox", flaky)
            await node.send("dtn://a/app", "dtn://a/inbox", b"again")
            await node.idle()
            assert calls == [b"again"] and node.stored()  # kept after the failure
            now[0] += 5_000
            node._reactivate("dtn://a/inbox", flaky)  # what the retry timer calls
            await asyncio.wait_for(done.wait(), 10)
            await node.idle()
            assert calls == [b"again", b"again"] and not node.stored()

    run(body)


def test_an_application_registering_while_the_last_one_fails_gets_the_bundle_at_once() -> None:
    async def body() -> None:
        router = default_registry.create("static", node_id="dtn://a/", rng=random.Random(1))
        # retry_ms of an hour: only the immediate reactivation can deliver within the test
        node = Node(EngineConfig("dtn://a/", retry_ms=3_600_000), MemoryStore(), router)
        entered = asyncio.Event()
        release = asyncio.Event()
        delivered = asyncio.Event()

        async def leaving(delivery: Delivery) -> None:
            entered.set()
            await release.wait()
            raise RuntimeError("the application went away")

        async def newcomer(delivery: Delivery) -> None:
            delivered.set()

        async with node:
            node.register("dtn://a/inbox", leaving)
            await node.send("dtn://a/app", "dtn://a/inbox", b"for whoever is there")
            await asyncio.wait_for(entered.wait(), 10)
            node.register("dtn://a/inbox", newcomer)  # while the first delivery is under way
            release.set()
            await asyncio.wait_for(delivered.wait(), 10)
            await node.idle()
            assert not node.stored()

    run(body)
