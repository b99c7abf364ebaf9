"""Reactive fragmentation end to end: a TCPCL transfer cut part-way by a proxy; the receiver
keeps the prefix as a fragment, the sender sends only the rest once a link is back, and the
destination delivers the whole bundle."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.engine import EngineConfig, EngineListener
from dtncloud.routing import default_registry
from dtncloud.runtime import Delivery, Node
from dtncloud.store.base import BundleMeta
from dtncloud.store.memory import MemoryStore
from dtncloud.store.sqlite import SqliteStore

PAYLOAD = random.Random(7).randbytes(400_000)


class Seen(EngineListener):
    def __init__(self) -> None:
        self.received: list[BundleMeta] = []
        self.deleted: list[str] = []
        self.changed = asyncio.Event()

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        self.received.append(meta)
        self.changed.set()

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.deleted.append(meta.bundle_id)
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await self.changed.wait()


async def cutting_proxy(target_port: int, cut_after: int) -> asyncio.Server:
    """Forwards both ways until ``cut_after`` bytes went from the client to the target; then
    ends the target's input, passes on what the target still says (its acknowledgements)
    and closes the client's connection when the target closes."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        target_r, target_w = await asyncio.open_connection("127.0.0.1", target_port)

        async def upstream() -> None:
            sent = 0
            while sent < cut_after and (data := await client_r.read(65536)):
                data = data[: cut_after - sent]
                sent += len(data)
                target_w.write(data)
                await target_w.drain()
            target_w.write_eof()

        async def downstream() -> None:
            while data := await target_r.read(65536):
                client_w.write(data)
                await client_w.drain()
            client_w.close()
            target_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def make(
    node_id: str, store: object, listener: EngineListener | None = None, listen: bool = True
) -> tuple[Node, TcpclConvergenceLayer]:
    router = default_registry.create(
        "static", node_id=node_id, rng=random.Random(1), params={"default": "dtn://b/"}
    )
    node = Node(
        EngineConfig(node_id, reactive_fragmentation=True),
        store,
        router,  # type: ignore[arg-type]
        listener=listener,
    )
    options = TcpclOptions(
        node_id=node_id,
        listen="127.0.0.1" if listen else None,
        port=0,
        max_segment_size=16_384,
        keep_partial=True,
    )
    cla = node.add_cla(lambda n: TcpclConvergenceLayer(n, options))
    assert isinstance(cla, TcpclConvergenceLayer)
    return node, cla


def test_a_cut_transfer_resumes_where_it_broke(tmp_path: Path) -> None:
    async def body() -> None:
        seen, a_seen = Seen(), Seen()
        a, a_cla = make("dtn://a/", MemoryStore(), a_seen, listen=False)
        b, b_cla = make("dtn://b/", SqliteStore(tmp_path / "b"), seen)
        got: asyncio.Queue[Delivery] = asyncio.Queue()

        async def inbox(delivery: Delivery) -> None:
            await got.put(delivery)

        async with a, b:
            b.register("dtn://b/inbox", inbox)
            proxy = await cutting_proxy(b_cla.port, cut_after=200_000)
            proxy_port = proxy.sockets[0].getsockname()[1]
            async with proxy:
                await a.connect(a_cla, f"127.0.0.1:{proxy_port}")
                sent = await a.send("dtn://a/app", "dtn://b/inbox", PAYLOAD)
                # B keeps what arrived as a fragment; A keeps only the rest
                await seen.until(lambda: bool(seen.received))
                prefix = seen.received[0]
                assert prefix.fragment_offset == 0 and prefix.bundle_id.startswith(sent)
                await a_seen.until(lambda: sent in a_seen.deleted)  # cut, the rest stored
                (rest,) = a.stored()
                assert rest.fragment_offset is not None and rest.fragment_offset > 0
                assert rest.size < len(PAYLOAD)
            # a direct link: the rest goes, B puts the bundle together and delivers it
            await a.connect(a_cla, f"127.0.0.1:{b_cla.port}")
            delivery = await asyncio.wait_for(got.get(), 20)
            assert delivery.payload == PAYLOAD
            assert delivery.bundle_id == sent

    asyncio.run(asyncio.wait_for(body(), 60))
