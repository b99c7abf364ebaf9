"""What a running daemon shows and lets applications change: configured peers and whether
each is up, static routes and cgr contacts, changed at run time through the API.

Daemons run in this process on SQLite stores, with TCPCL on loopback (port 0) and their API
sockets in a short temporary directory."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtncloud.client import Client
from dtncloud.daemon.config import NodeConfig, parse_config
from dtncloud.daemon.runner import Daemon
from dtncloud.errors import ConfigError, DtnError
from dtncloud.runtime.api_wire import ApiError
from dtncloud.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 60.0


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), TIMEOUT)

    asyncio.run(main())


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are limited to about 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="dtninv-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_config(
    name: str, tmp_path: Path, sock_dir: Path, *, quick_reconnect: bool = True, **sections: Any
) -> NodeConfig:
    cla: dict[str, Any] = {"type": "tcpcl", "listen": "127.0.0.1:0"}
    if quick_reconnect:
        cla.update(reconnect="100ms", reconnect_max="500ms")
    data: dict[str, Any] = {
        "node_id": f"dtn://{name}/",
        "data_dir": str(tmp_path / name),
        "api": {"socket": str(sock_dir / f"{name}.sock")},
        "cla": [cla],
        **sections,
    }
    return parse_config(data, source=None, base_dir=tmp_path)


def tcpcl_port(daemon: Daemon) -> int:
    port = getattr(daemon.clas["tcpcl"], "port", None)
    assert isinstance(port, int) and port > 0
    return port


async def connect(daemon: Daemon) -> Client:
    assert daemon.config.api.socket is not None
    return await Client.connect(str(daemon.config.api.socket))


# -- peers ------------------------------------------------------------------------------------


def test_peers_show_each_configured_neighbour_up_or_down(tmp_path: Path, sock_dir: Path) -> None:
    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir)) as a:
            b_config = make_config(
                "b",
                tmp_path,
                sock_dir,
                peer=[
                    {
                        "node_id": "dtn://a/",
                        "cla": "tcpcl",
                        "address": f"127.0.0.1:{tcpcl_port(a)}",
                    },
                    # Nobody listens on port 1: this neighbour stays down.
                    {"node_id": "dtn://c/", "cla": "tcpcl", "address": "127.0.0.1:1"},
                ],
            )
            async with Daemon(b_config) as b, await connect(b) as client:

                async def a_is_up() -> bool:
                    return any(p["up"] for p in await client.peers() if p["node_id"] == "dtn://a/")

                await until(a_is_up, "b's session to a")
                peers = {p["node_id"]: p for p in await client.peers()}
                assert set(peers) == {"dtn://a/", "dtn://c/"}
                assert peers["dtn://a/"]["cla"] == "tcpcl"
                assert peers["dtn://a/"]["address"] == f"127.0.0.1:{tcpcl_port(a)}"
                assert len(peers["dtn://a/"]["links"]) == 1
                assert peers["dtn://a/"]["links"][0] in b.node.links
                assert peers["dtn://c/"]["up"] is False and peers["dtn://c/"]["links"] == []
                # The listing of links agrees.
                links = await client.links()
                assert [link["peer_node"] for link in links] == ["dtn://a/"]

                await a.stop()  # SESS_TERM: b sees its neighbour go

                async def a_is_down() -> bool:
                    peers = await client.peers()
                    return not any(p["up"] for p in peers if p["node_id"] == "dtn://a/")

                await until(a_is_down, "b to see a go")

    run(body)


def test_a_node_without_configured_peers_lists_none(tmp_path: Path, sock_dir: Path) -> None:
    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir)) as a:
            assert await a.inventory.peers() == []

    run(body)


# -- static routes ----------------------------------------------------------------------------


def test_routes_list_the_static_routes_then_the_default(tmp_path: Path, sock_dir: Path) -> None:
    routing = {
        "router": "static",
        "default": "dtn://gateway/",
        "route": [
            {"destination": "dtn://cloud/*", "via": "dtn://relay/"},
            {"destination": "ipn:7.*", "via": "dtn://relay/"},
        ],
    }

    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir, routing=routing)) as a:
            async with await connect(a) as client:
                assert await client.routes() == [
                    {"destination": "dtn://cloud/*", "via": "dtn://relay/"},
                    {"destination": "ipn:7.*", "via": "dtn://relay/"},
                    {"destination": "(default)", "via": "dtn://gateway/"},
                ]
                # A new route goes first, so a broader one configured earlier cannot hide it.
                await client.add_route("dtn://cloud/urgent", "dtn://fast/")
                assert (await client.routes())[0] == {
                    "destination": "dtn://cloud/urgent",
                    "via": "dtn://fast/",
                }
                # The same pattern again replaces the route where it stands.
                await client.add_route("ipn:7.*", "dtn://other/")
                routes = await client.routes()
                assert routes[2] == {"destination": "ipn:7.*", "via": "dtn://other/"}
                assert len(routes) == 4
                assert await client.remove_route("dtn://cloud/urgent") is True
                assert await client.remove_route("dtn://cloud/urgent") is False
                assert [r["destination"] for r in await client.routes()] == [
                    "dtn://cloud/*",
                    "ipn:7.*",
                    "(default)",
                ]
                # A bad pattern or next hop is refused with the reason.
                with pytest.raises(ApiError) as info:
                    await client.add_route("dtn://x/*", "dtn://x/inbox")
                assert info.value.code == "bad_request" and "not a node ID" in str(info.value)
                with pytest.raises(ApiError) as info:
                    await client.add_route("dtn://x*/y", "dtn://x/")
                assert info.value.code == "bad_request" and "'*'" in str(info.value)
            # Changes are not written back to the configuration.
            assert len(a.config.routing.routes) == 2

    run(body)


def test_a_waiting_bundle_leaves_once_a_route_to_a_neighbour_is_added(
    tmp_path: Path, sock_dir: Path
) -> None:
    # The static router drops a bundle that no route matches, so both nodes have a default
    # next hop that never comes: a bundle without a better route waits for it.
    waiting = {"router": "static", "default": "dtn://nowhere/"}

    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir, routing=waiting)) as a:
            peer = [
                {"node_id": "dtn://a/", "cla": "tcpcl", "address": f"127.0.0.1:{tcpcl_port(a)}"}
            ]
            b_config = make_config("b", tmp_path, sock_dir, peer=peer, routing=waiting)
            async with Daemon(b_config) as b, await connect(a) as client:

                async def linked() -> bool:
                    return any(link["peer_node"] == "dtn://b/" for link in await client.links())

                await until(linked, "the session between a and b")
                bundle_id = await client.send("dtn://far/x", b"for far away")
                # No route to far: it waits at a, though b is connected.
                [held] = await client.list_bundles()
                assert held["bundle_id"] == bundle_id
                assert held["retention"] == ["forward_pending"]

                await client.add_route("dtn://far/*", "dtn://b/")

                async def moved() -> bool:
                    at_b = [meta.bundle_id for meta in b.node.stored()]
                    return at_b == [bundle_id] and not await client.list_bundles()

                await until(moved, "the bundle to go from a to b")
                status = await client.status()
                assert status["bundles"]["forwarded"] == {"tcpcl": 1}

    run(body)


def test_route_changes_on_a_router_without_routes_say_which_router(
    tmp_path: Path, sock_dir: Path
) -> None:
    async def body() -> None:
        routing = {"router": "epidemic"}
        async with Daemon(make_config("a", tmp_path, sock_dir, routing=routing)) as a:
            with pytest.raises(ConfigError, match=r"router 'epidemic' has no routes to change"):
                await a.inventory.add_route("dtn://x/*", "dtn://y/")
            with pytest.raises(ConfigError, match=r"routes are for router 'static'"):
                await a.inventory.remove_route("dtn://x/*")
            with pytest.raises(ConfigError, match=r"router 'epidemic' has no contact plan"):
                await a.inventory.add_contact(CONTACT)
            assert await a.inventory.routes() == []
            assert await a.inventory.contacts() == []
            async with await connect(a) as client:
                with pytest.raises(ApiError) as info:
                    await client.add_route("dtn://x/*", "dtn://y/")
                assert info.value.code == "bad_request"
                assert "router 'epidemic' has no routes to change" in str(info.value)
                with pytest.raises(ApiError) as info:
                    await client.remove_contact(CONTACT)
                assert info.value.code == "bad_request"
                assert "contacts are for router 'cgr'" in str(info.value)

    run(body)


# -- cgr contacts -----------------------------------------------------------------------------

CONTACT = {"from": "dtn://a/", "to": "dtn://b/", "start": 1_000, "end": 60_000, "rate": 1000}


def test_contacts_of_the_plan_and_changes_to_it(tmp_path: Path, sock_dir: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        '{"contacts": [{"from": "dtn://a/", "to": "dtn://c/", "start": 5000, "end": 9000,'
        ' "rate": 100, "owlt": 2}]}'
    )
    routing = {"router": "cgr", "contact_plan": str(plan)}

    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir, routing=routing)) as a:
            first = {"from": "dtn://a/", "to": "dtn://c/", "start": 5000, "end": 9000,
                     "rate": 100, "owlt": 2}  # fmt: skip
            assert await a.inventory.contacts() == [first]
            async with await connect(a) as client:
                assert await client.contacts() == [first]
                await client.add_contact(CONTACT)
                assert await client.contacts() == [CONTACT, first]  # in time order
                await client.add_contact(CONTACT)  # already there: nothing changes
                assert len(await client.contacts()) == 2
                assert await client.remove_contact(first) is True
                assert await client.remove_contact(first) is False
                assert await client.contacts() == [CONTACT]
                with pytest.raises(ApiError) as info:
                    await client.add_contact({"from": "dtn://a/", "to": "dtn://b/"})
                assert info.value.code == "bad_request"
                assert "missing key(s)" in str(info.value)
                with pytest.raises(ApiError) as info:
                    await client.add_route("dtn://b/*", "dtn://b/")
                assert info.value.code == "bad_request"
                assert "router 'cgr' has no routes to change" in str(info.value)
            with pytest.raises(ConfigError, match=r"^contact: 'end' 1 is not after 'start' 5"):
                await a.inventory.add_contact({**CONTACT, "start": 5, "end": 1})
            assert await a.inventory.routes() == []

    run(body)


# -- status -----------------------------------------------------------------------------------


def test_status_names_the_node_and_its_parts(tmp_path: Path, sock_dir: Path) -> None:
    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir)) as a:
            async with await connect(a) as client:
                await client.send("dtn://a/inbox", b"kept for an application")
                status = await client.status()
        assert status["node_id"] == "dtn://a/"
        assert isinstance(status["now_ms"], int) and status["now_ms"] > 0
        assert status["router"] == "static"
        assert status["data_dir"] == str(tmp_path / "a")
        assert status["api_socket"] == str(sock_dir / "a.sock")
        assert status["convergence_layers"] == [f"tcpcl on port {tcpcl_port(a)}"]
        assert status["store"]["bundles"] == 1
        assert status["bundles"]["created"] == 1

    run(body)


def test_status_has_the_fields_the_api_documentation_promises(
    tmp_path: Path, sock_dir: Path
) -> None:
    async def body() -> None:
        async with Daemon(make_config("a", tmp_path, sock_dir)) as a:
            async with await connect(a) as client:
                await client.send("dtn://a/inbox", b"one")
                status = await client.status()
        assert status["node_id"] == "dtn://a/" and status["now_ms"] > 0
        assert status["bundles"]["created"] == 1
        assert status["store"]["bundles"] == 1 and status["store"]["bytes"] > 0
        assert status["links"]["up"] == []
        assert status["router"] == "static"

    run(body)


# -- a failed start ---------------------------------------------------------------------------


def test_a_daemon_that_cannot_listen_closes_its_store_again(tmp_path: Path, sock_dir: Path) -> None:
    async def body() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            cfg = make_config("a", tmp_path, sock_dir)
            cla = dataclasses.replace(cfg.clas[0], listen=("127.0.0.1", port))
            daemon = Daemon(dataclasses.replace(cfg, clas=(cla,)))
            with pytest.raises(DtnError, match=rf"127\.0\.0\.1:{port}.*in use"):
                await daemon.start()
            await daemon.stop()
        assert not (sock_dir / "a.sock").exists()
        # The store is free again: a node that failed to start holds nothing open.
        async with SqliteStore(cfg.store.path) as store:
            assert (await store.usage()).bundles == 0

    run(body)
