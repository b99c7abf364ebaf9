"""The application API in one process: a real Node on a MemoryStore, ApiServer.serve_socket
and Client.from_socket over socket pairs, and raw frames where the client would not misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from dtncloud.bpv7.flags import BundleFlag
from dtncloud.cla.memory import MemoryConvergenceLayer, MemoryNetwork
from dtncloud.client import Client, Received
from dtncloud.engine import EngineConfig
from dtncloud.errors import ConfigError, ConnectError
from dtncloud.routing import default_registry
from dtncloud.runtime import Node
from dtncloud.runtime.api_server import ApiServer
from dtncloud.runtime.api_wire import ApiError, FrameDecoder, encode_frame
from dtncloud.runtime.apps import ApiService, NodeInventory
from dtncloud.store.memory import MemoryStore

TIMEOUT = 20.0


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), TIMEOUT)

    asyncio.run(main())


def make_node(node_id: str = "dtn://a/", **engine: Any) -> Node:
    # Bundles for other nodes wait for a neighbour that never comes, so tests can see them.
    routes = [{"pattern": "dtn://*", "via": "dtn://elsewhere/"}]
    router = default_registry.create(
        "static", node_id=node_id, rng=random.Random(1), params={"routes": routes}
    )
    return Node(EngineConfig(node_id, **engine), MemoryStore(), router)


class Raw:
    """A hand-driven API connection: frames in, frames out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder(1 << 30)

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()

    async def recv(self) -> dict[str, Any] | None:
        """The next message, or None at the end of the stream."""
        while (message := self.decoder.next_message()) is None:
            data = await self.reader.read(65536)
            if not data:
                return None
            self.decoder.feed(data)
        return message

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        while (answer := await self.recv()) is not None:
            if "push" not in answer:
                return answer
        raise AssertionError("connection closed before the answer")


class Harness:
    def __init__(self, node: Node, service: ApiService, server: ApiServer) -> None:
        self.node, self.service, self.server = node, service, server

    async def client(self) -> Client:
        ours, theirs = socket.socketpair()
        await self.server.serve_socket(theirs)
        return await Client.from_socket(ours)

    async def raw(self) -> Raw:
        ours, theirs = socket.socketpair()
        await self.server.serve_socket(theirs)
        return Raw(*await asyncio.open_connection(sock=ours))


@contextlib.asynccontextmanager
async def running(node: Node | None = None, **options: Any) -> AsyncIterator[Harness]:
    node = node or make_node()
    inventory = options.pop("inventory", None) or NodeInventory(node)
    async with node:
        service = ApiService(node, inventory, **options)
        server = ApiServer(service)
        try:
            yield Harness(node, service, server)
        finally:
            await server.stop()


async def next_bundle(client: Client, endpoint: str) -> Received:
    received = await client.receive(endpoint, count=1, timeout=TIMEOUT)
    assert received, "no bundle came"
    return received[0]


# -- delivery ------------------------------------------------------------------------------


def test_a_bundle_sent_to_self_is_pushed_and_deleted_once_acknowledged() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            assert await client.register("inbox") == "dtn://a/inbox"
            bundle_id = await client.send("dtn://a/inbox", b"hello")
            received = await next_bundle(client, "inbox")
            assert (received.bundle_id, received.payload) == (bundle_id, b"hello")
            assert received.source == "dtn://a/inbox"  # the first registered endpoint
            assert [m.bundle_id for m in h.node.stored()] == [bundle_id]
            await received.ack()
            await h.node.idle()
            assert h.node.stored() == []
            await client.close()

    run(body)


def test_a_bundle_pushed_but_not_acknowledged_comes_again_after_a_crash() -> None:
    async def body() -> None:
        async with running() as h:
            first = await h.client()
            await first.register("inbox")
            bundle_id = await first.send("inbox", b"precious")
            assert (await next_bundle(first, "inbox")).bundle_id == bundle_id
            await first.close()  # the application dies before acknowledging
            second = await h.client()
            await second.register("inbox")
            again = await next_bundle(second, "inbox")
            assert (again.bundle_id, again.payload) == (bundle_id, b"precious")
            await again.ack()
            await h.node.idle()
            assert h.node.stored() == []
            await second.close()

    run(body)


def test_a_nack_keeps_the_bundle_and_registering_again_brings_it_back() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            await client.register("inbox")
            bundle_id = await client.send("inbox", b"later")
            await (await next_bundle(client, "inbox")).nack()
            await h.node.idle()
            assert [m.bundle_id for m in h.node.stored()] == [bundle_id]
            await client.register("inbox")  # restarts deliveries paused by the nack
            assert (await next_bundle(client, "inbox")).bundle_id == bundle_id
            await client.close()

    run(body)


def test_a_passive_registration_is_pushed_only_what_it_asks_for() -> None:
    async def body() -> None:
        async with running() as h:
            raw = await h.raw()
            answer = await raw.call(
                {"op": "register", "id": 1, "endpoint": "box", "mode": "passive"}
            )
            assert answer == {"id": 1, "ok": True, "endpoint": "dtn://a/box"}
            sender = await h.client()
            for n in range(3):
                await sender.send("dtn://a/box", b"%d" % n)
            registration = h.service.owners["dtn://a/box"].registrations["dtn://a/box"]
            assert len(registration._credit_waiters) == 3  # all held back
            await raw.send({"op": "receive", "id": 2, "endpoint": "box", "max": 1})
            messages = [await raw.recv(), await raw.recv()]
            pushes = [m for m in messages if m and "push" in m]
            assert len(pushes) == 1 and pushes[0]["payload"] == b"0"
            assert (await raw.call({"op": "ping", "id": 3}))["ok"]
            assert len(registration._credit_waiters) == 2
            await raw.call({"op": "ack", "id": 4, "delivery": pushes[0]["delivery"]})
            await sender.close()

    run(body)


def test_client_receive_registers_passively_and_returns_unacknowledged_bundles() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            sent = [await client.send("dtn://a/box", b"%d" % n) for n in range(3)]
            got = await client.receive("box", count=2, timeout=TIMEOUT)
            assert [r.bundle_id for r in got] == sent[:2]
            assert not any(r.settled for r in got)
            for r in got:
                await r.ack()
            [third] = await client.receive("box", count=1, timeout=TIMEOUT)
            assert third.bundle_id == sent[2]
            await third.ack()
            assert await client.receive("box", count=5, timeout=0.05) == []  # the timeout ends it
            with pytest.raises(ConfigError, match="count, a timeout"):
                await client.receive("box")
            await client.close()

    run(body)


def test_the_bundle_iterator_acknowledges_as_it_goes_and_refuses_when_left() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            await client.register("inbox")
            first = await client.send("inbox", b"1")
            second = await client.send("inbox", b"2")
            seen = []
            async with contextlib.aclosing(client.bundles("inbox")) as stream:
                async for received in stream:
                    seen.append(received)
                    if len(seen) == 2:
                        break
            assert [r.bundle_id for r in seen] == [first, second]
            assert seen[0].settled and seen[1].settled
            await h.node.idle()
            assert [m.bundle_id for m in h.node.stored()] == [second]  # the nacked one stays
            with pytest.raises(ConfigError, match="not registered"):
                await anext(client.bundles("elsewhere"))
            await client.close()

    run(body)


def test_an_endpoint_has_one_application_at_a_time() -> None:
    async def body() -> None:
        async with running() as h:
            first, second = await h.client(), await h.client()
            await first.register("inbox")
            await first.register("inbox")  # the same connection again is fine
            with pytest.raises(ApiError, match="registered by another application") as info:
                await second.register("dtn://a/inbox")
            assert info.value.code == "conflict"
            await first.unregister("inbox")
            assert await second.register("inbox") == "dtn://a/inbox"
            await first.close()
            await second.close()

    run(body)


def test_unregister_returns_unacknowledged_pushes_to_the_node() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            await client.register("inbox")
            bundle_id = await client.send("inbox", b"x")
            received = await next_bundle(client, "inbox")
            await client.unregister("inbox")
            with pytest.raises(ApiError, match="waiting for an answer") as info:
                await received.ack()  # too late: the node has it back
            assert info.value.code == "not_found"
            await h.node.idle()
            assert [m.bundle_id for m in h.node.stored()] == [bundle_id]
            with pytest.raises(ApiError, match="not registered on this connection"):
                await client.unregister("inbox")
            await client.close()

    run(body)


def test_endpoint_names_resolve_against_the_node() -> None:
    async def body() -> None:
        async with running() as h:
            client = await h.client()
            assert await client.register("dtn://a/x/y") == "dtn://a/x/y"
            for endpoint, reason in [
                ("dtn://b/x", "not on this node"),
                ("dtn://a/", "reserved for the node"),
                ("dtn://a/~routing", "reserved for the node"),
                ("bad:scheme", "unsupported URI scheme"),
                ("", "is empty"),
            ]:
                with pytest.raises(ApiError, match=reason) as info:
                    await client.register(endpoint)
                assert info.value.code == "bad_request"
            with pytest.raises(ApiError, match="'mode' must be"):
                await client.register("z", mode="eager")
            await client.close()
        async with running(make_node("ipn:7.0")) as h:
            client = await h.client()
            assert await client.register("5") == "ipn:7.5"
            with pytest.raises(ApiError, match="are numbers"):
                await client.register("sensor")
            await client.close()

    run(body)


# -- sending -------------------------------------------------------------------------------


def test_send_options_reach_the_bundle() -> None:
    async def body() -> None:
        async with running(default_lifetime_ms=5_000) as h:
            client = await h.client()
            await client.send(
                "dtn://b/x", b"p", source="dtn://a/src", reports=["delivery", "deletion"]
            )
            await client.send("dtn://b/x", b"q", lifetime=2.5, report_to="dtn://a/reports")
            first, second = h.node.stored()
            assert first.source == "dtn://a/src"
            assert (
                first.flags & BundleFlag.REPORTS
                == BundleFlag.REPORT_DELIVERY | BundleFlag.REPORT_DELETION
            )
            assert first.expires_at - first.creation_time == 5_000
            assert second.source == "dtn://a/"  # no endpoint registered: the node's own ID
            assert second.expires_at - second.creation_time == 2_500
            assert second.report_to == "dtn://a/reports"
            await client.close()

    run(body)


def test_send_refusals_say_what_is_wrong() -> None:
    async def body() -> None:
        async with running(max_payload=1000) as h:
            client = await h.client()
            assert client.max_payload == 1000
            cases: list[tuple[dict[str, Any], str, str]] = [
                ({"payload": b"x" * 1001}, "too_large", "exceeds the limit of 1000"),
                ({"custody": True}, "bad_request", "custody transfer is off on this node"),
                ({"bpsec": {"sign": "fleet"}}, "bad_request", "no key named 'fleet'"),
                ({"bpsec": {"seal": True}}, "bad_request", "unknown seal"),
                ({"reports": ["gossip"]}, "bad_request", "unknown report 'gossip'"),
                ({"payload": "text"}, "bad_request", "'payload' must be bytes"),
                ({"lifetime_ms": 0}, "bad_request", "'lifetime_ms' must be positive"),
                ({"destination": "nowhere:"}, "bad_request", "destination"),
                ({"source": "dtn://b/spoofed"}, "refused", "not an endpoint of node dtn://a/"),
            ]
            for fields, code, reason in cases:
                request = {"destination": "dtn://b/x", "payload": b"ok", **fields}
                with pytest.raises(ApiError, match=reason) as info:
                    await client._call("send", request)
                assert info.value.code == code
            with pytest.raises(ApiError, match="exceeds the node's limit") as local:
                await client.send("dtn://b/x", b"x" * 1001)  # refused before it is sent
            assert local.value.code == "too_large"
            assert h.node.stored() == []
            await client.close()

    run(body)


# -- requests and errors ---------------------------------------------------------------------


def test_malformed_requests_get_bad_request_and_the_connection_lives_on() -> None:
    async def body() -> None:
        async with running() as h:
            raw = await h.raw()
            answer = await raw.call({"op": "frobnicate", "id": 1})
            assert answer["code"] == "bad_request" and "unknown op 'frobnicate'" in answer["error"]
            answer = await raw.call({"op": "ping", "id": "one"})
            assert (answer["id"], answer["code"]) == (None, "bad_request")
            answer = await raw.call({"op": "register", "id": 2})
            assert answer["error"] == "field 'endpoint' is missing"
            answer = await raw.call({"op": "ack", "id": 3, "delivery": 99})
            assert answer["code"] == "not_found"
            answer = await raw.call({"op": "hello", "id": 4, "api": 2})
            assert answer["code"] == "bad_request" and "API version 2" in answer["error"]
            answer = await raw.call({"op": "ping", "id": 5})
            assert answer["ok"] and answer["node_id"] == "dtn://a/"

    run(body)


class BrokenInventory(NodeInventory):
    async def status(self) -> dict[str, Any]:
        raise RuntimeError("a bug")


def test_an_exception_in_a_request_answers_internal_and_serving_goes_on() -> None:
    async def body() -> None:
        node = make_node()
        async with running(node, inventory=BrokenInventory(node)) as h:
            client = await h.client()
            with pytest.raises(ApiError, match="RuntimeError") as info:
                await client.status()
            assert info.value.code == "internal"
            assert (await client.ping())["node_id"] == "dtn://a/"
            await client.close()

    run(body)


def test_the_node_inventory_reports_bundles_links_and_refuses_route_changes() -> None:
    async def body() -> None:
        network = MemoryNetwork()
        a, b = make_node("dtn://a/"), make_node("dtn://b/")
        a_cla = a.add_cla(lambda n: MemoryConvergenceLayer(n, network, "a", node_id="dtn://a/"))
        b.add_cla(lambda n: MemoryConvergenceLayer(n, network, "b", node_id="dtn://b/"))
        async with b, running(a) as h:
            await a.connect(a_cla, "b")
            client = await h.client()
            bundle_id = await client.send("dtn://c/x", b"12345", lifetime=60)
            status = await client.status()
            assert (
                status["node_id"] == "dtn://a/" and status["bundles"] == 1 and status["links"] == 1
            )
            assert status["bytes"] == h.node.stored()[0].size
            [item] = await client.list_bundles(limit=5)
            assert item["bundle_id"] == bundle_id and item["destination"] == "dtn://c/x"
            assert item["retention"] == ["forward_pending"]
            assert item["expires_ms"] - item["created_ms"] == 60_000
            assert await client.list_bundles(limit=0) == []
            [link] = await client.links()
            assert (link["cla"], link["peer_node"], link["up"]) == ("memory", "dtn://b/", True)
            assert link["stats"]["bundles_sent"] == 0
            assert await client.peers() == await client.routes() == await client.contacts() == []
            for change in (
                client.add_route("dtn://c/*", "dtn://b/"),
                client.remove_route("dtn://c/*"),
                client.add_contact({"from": "a"}),
                client.remove_contact({"from": "a"}),
            ):
                with pytest.raises(ApiError, match="no routes to change") as info:
                    await change
                assert info.value.code == "bad_request"
            assert await client.cancel(bundle_id) is True
            assert h.node.stored() == []
            assert await client.cancel(bundle_id) is False
            raw = await h.raw()
            answer = await raw.call({"op": "cancel", "id": 1, "bundle_id": bundle_id})
            assert answer["code"] == "not_found" and f"no bundle {bundle_id}" in answer["error"]
            await client.close()

    run(body)


# -- closing -------------------------------------------------------------------------------


def test_stopping_the_server_releases_waiting_deliveries_and_fails_waiting_calls() -> None:
    async def body() -> None:
        node = make_node()
        async with node:
            server = ApiServer(ApiService(node, NodeInventory(node)))
            ours, theirs = socket.socketpair()
            await server.serve_socket(theirs)
            client = await Client.from_socket(ours)
            await client.register("box", mode="passive")  # deliveries wait for credit
            await client.register("inbox")
            await client.send("box", b"held")
            await client.send("inbox", b"pushed, never acknowledged")
            pushed = await next_bundle(client, "inbox")
            waiting = asyncio.ensure_future(anext(client.bundles("inbox")))
            await server.stop()
            with pytest.raises(ConnectError, match="closed the connection"):
                await waiting
            with pytest.raises(ConnectError):
                await client.ping()
            with pytest.raises(ConnectError):
                await pushed.ack()
            await asyncio.wait_for(node.idle(), 5)  # no delivery is left hanging
            assert len(node.stored()) == 2
            await client.close()

    run(body)
