"""The application API over real sockets: the Unix socket's permissions and life cycle, the
TCP listener's token, hostile peers, the blocking client and progress reports."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtncloud.client import Client, SyncClient
from dtncloud.engine import EngineConfig
from dtncloud.errors import ConfigError, ConnectError, ServiceError
from dtncloud.routing import default_registry
from dtncloud.runtime import Node
from dtncloud.runtime.api_server import ApiServer
from dtncloud.runtime.api_wire import ApiError, FrameDecoder, encode_frame
from dtncloud.runtime.apps import ApiService, NodeInventory
from dtncloud.store.memory import MemoryStore

TIMEOUT = 30.0
TOKEN = "s3cret-token"


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), TIMEOUT)

    asyncio.run(main())


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="dtnapi-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTNCLOUD_API", raising=False)
    monkeypatch.delenv("DTNCLOUD_TOKEN", raising=False)


def make_node() -> Node:
    router = default_registry.create(
        "static", node_id="dtn://a/", rng=random.Random(1), params={"routes": []}
    )
    return Node(EngineConfig("dtn://a/"), MemoryStore(), router)


def make_server(node: Node, **options: Any) -> ApiServer:
    service_options = {k: options.pop(k) for k in ("token", "max_payload") if k in options}
    return ApiServer(ApiService(node, NodeInventory(node), **service_options), **options)


async def read_all(reader: asyncio.StreamReader) -> list[dict[str, Any]]:
    """Every message until the server closes the connection."""
    decoder = FrameDecoder(1 << 20)
    messages: list[dict[str, Any]] = []
    while data := await reader.read(65536):
        decoder.feed(data)
        messages.extend(decoder)
    return messages


# -- the Unix socket -------------------------------------------------------------------------


def test_the_unix_socket_is_for_its_owner_only_and_goes_away_on_stop(sock_dir: Path) -> None:
    path = sock_dir / "run" / "api.sock"

    async def body() -> None:
        async with make_node() as node:
            server = make_server(node, socket_path=path)
            await server.start()
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            async with await Client.connect(str(path)) as client:
                assert client.node_id == "dtn://a/"
                assert (await client.ping())["node_id"] == "dtn://a/"
            await server.stop()
            assert not path.exists()

    run(body)


def test_a_stale_socket_file_is_replaced(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a daemon that died: the file stays, nobody listens

    async def body() -> None:
        async with make_node() as node:
            async with make_server(node, socket_path=path):
                async with await Client.connect(f"unix:{path}") as client:
                    await client.ping()

    run(body)


def test_a_live_node_on_the_socket_is_not_displaced(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"
    (sock_dir / "plain").write_text("not a socket")

    async def body() -> None:
        async with make_node() as node:
            async with make_server(node, socket_path=path):
                with pytest.raises(ServiceError, match="another node already serves the API"):
                    await make_server(node, socket_path=path).start()
                async with await Client.connect(str(path)) as client:  # still served
                    await client.ping()
            with pytest.raises(ConfigError, match="exists and is not a socket"):
                await make_server(node, socket_path=sock_dir / "plain").start()
            assert (sock_dir / "plain").read_text() == "not a socket"

    run(body)


def test_connect_errors_are_one_line_and_say_what_to_do(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sock_dir / "api.sock"

    async def body() -> None:
        with pytest.raises(ConnectError, match="pass --api or set DTNCLOUD_API"):
            await Client.connect()
        with pytest.raises(ConnectError, match=rf"{path} \(is dtnd running\?\)"):
            await Client.connect(str(path))
        async with make_node() as node:
            async with make_server(node, socket_path=path):
                monkeypatch.setenv("DTNCLOUD_API", str(path))
                async with await Client.connect() as client:
                    assert client.node_id == "dtn://a/"

    run(body)


# -- TCP -------------------------------------------------------------------------------------


def test_the_tcp_listener_wants_the_token_first(sock_dir: Path) -> None:
    async def body() -> None:
        async with make_node() as node:
            with pytest.raises(ConfigError, match="needs a token"):
                await make_server(node, tcp=("127.0.0.1", 0)).start()
            async with make_server(node, tcp=("127.0.0.1", 0), token=TOKEN) as server:
                assert server.tcp_address is not None
                host, port = server.tcp_address
                api = f"tcp://{host}:{port}"
                for token in (None, "wrong"):
                    with pytest.raises(ApiError, match="wrong or missing API token") as info:
                        await Client.connect(api, token=token)
                    assert info.value.code == "unauthorized"
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(encode_frame({"op": "ping", "id": 1}))
                [answer] = await read_all(reader)  # answered, then closed
                assert (answer["id"], answer["code"]) == (1, "unauthorized")
                writer.close()
                async with await Client.connect(api, token=TOKEN) as client:
                    assert (await client.ping())["node_id"] == "dtn://a/"

    run(body)


# -- hostile and excess connections ----------------------------------------------------------


def test_a_hostile_frame_length_closes_that_connection_only(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"

    async def body() -> None:
        async with make_node() as node, make_server(node, socket_path=path, max_payload=1000):
            good = await Client.connect(str(path))
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(b"\xff\xff\xff\xff" + b"\x00" * 100)
            [goodbye] = await read_all(reader)
            assert goodbye["push"] == "closing" and goodbye["code"] == "too_large"
            assert "exceeds the limit of 66536" in goodbye["error"]
            writer.close()
            assert (await good.ping())["node_id"] == "dtn://a/"
            await good.close()

    run(body)


def test_connections_beyond_the_limit_are_turned_away(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"

    async def body() -> None:
        async with make_node() as node, make_server(node, socket_path=path, max_connections=1):
            first = await Client.connect(str(path))
            with pytest.raises(ConnectError, match="too many connections"):
                await Client.connect(str(path))
            await first.close()

    run(body)


# -- the client ------------------------------------------------------------------------------


def test_progress_is_reported_as_a_big_payload_is_written(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"

    async def body() -> None:
        async with make_node() as node, make_server(node, socket_path=path):
            async with await Client.connect(str(path)) as client:
                calls: list[tuple[int, int]] = []
                payload = os.urandom(3 << 20)
                bundle_id = await client.send(
                    "dtn://a/big", payload, progress=lambda s, t: calls.append((s, t))
                )
                assert len(calls) > 1
                sent = [s for s, _ in calls]
                assert sent == sorted(set(sent))
                total = calls[-1][1]
                assert calls[-1] == (total, total) and total > len(payload)
                assert {t for _, t in calls} == {total}
                [meta] = node.stored()
                assert meta.bundle_id == bundle_id and meta.size > len(payload)

    run(body)


def test_the_sync_client_sends_receives_and_acknowledges(sock_dir: Path) -> None:
    path = sock_dir / "api.sock"

    def application() -> list[str]:
        with SyncClient(str(path)) as client:
            assert client.ping()["node_id"] == "dtn://a/"
            assert client.register("inbox") == "dtn://a/inbox"
            first = client.send("inbox", b"one")
            [received] = client.receive("inbox", count=1, timeout=TIMEOUT)
            assert (received.bundle_id, received.payload) == (first, b"one")
            client.ack(received)
            second = client.send("inbox", b"two")
            for bundle in client.bundles("inbox"):
                assert bundle.bundle_id == second
                client.ack(bundle)
                break
            return [first, second]

    async def body() -> None:
        async with make_node() as node, make_server(node, socket_path=path):
            sent = await asyncio.to_thread(application)
            assert len(sent) == 2
            await node.idle()
            assert node.stored() == []

    run(body)


def test_the_sync_client_reports_connect_errors(sock_dir: Path) -> None:
    with pytest.raises(ConnectError, match="is dtnd running"):
        SyncClient(str(sock_dir / "nothing.sock"))
