"""MetricsServer over real sockets on 127.0.0.1, with asyncio streams as the client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dtncloud.errors import ConfigError
from dtncloud.runtime.http import MetricsServer
from dtncloud.runtime.metrics import NodeMetrics
from dtncloud.store.base import BundleMeta

Response = tuple[int, dict[str, str], bytes]


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 30)

    asyncio.run(main())


async def exchange(port: int, raw: bytes) -> Response:
    """Send ``raw`` and read until the server closes; (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await reader.read()  # the server closes after every response
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, text = line.partition(":")
        headers[name.strip().lower()] = text.strip()
    return int(status_line.split(" ")[1]), headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


def metrics() -> NodeMetrics:
    m = NodeMetrics("dtn://a/")
    m.bundle_created(BundleMeta("id", "dtn://a/x", "dtn://b/x", 1, 0, 10, 5, 1), 0)
    return m


def serve(
    test: Callable[[MetricsServer], Awaitable[None]], source: Any = None, **options: Any
) -> None:
    async def body() -> None:
        server = MetricsServer("127.0.0.1", 0, source or metrics(), **options)
        async with server:
            assert server.port > 0
            await test(server)

    run(body)


def test_metrics_page() -> None:
    async def test(server: MetricsServer) -> None:
        status, headers, body = await exchange(server.port, get("/metrics"))
        assert status == 200
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(body)
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["dtncloud_bundles_created"].samples[0].value == 1

    serve(test)


def test_status_page() -> None:
    async def test(server: MetricsServer) -> None:
        status, headers, body = await exchange(server.port, get("/status?pretty=no"))
        assert status == 200
        assert headers["content-type"] == "application/json"
        document = json.loads(body)
        assert document["node_id"] == "dtn://a/"
        assert document["bundles"]["created"] == 1

    serve(test)


def test_index_and_unknown_paths() -> None:
    async def test(server: MetricsServer) -> None:
        status, _, body = await exchange(server.port, get("/"))
        assert status == 200
        assert b"/metrics" in body and b"/status" in body
        status, _, _ = await exchange(server.port, get("/nothing-here"))
        assert status == 404

    serve(test)


def test_other_methods_are_not_allowed() -> None:
    async def test(server: MetricsServer) -> None:
        status, headers, _ = await exchange(server.port, get("/metrics", "POST"))
        assert status == 405
        assert headers["allow"] == "GET, HEAD"
        status, headers, body = await exchange(server.port, get("/metrics", "HEAD"))
        assert status == 200
        assert body == b""
        assert int(headers["content-length"]) > 0

    serve(test)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"nonsense\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
        (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    ],
)
def test_malformed_requests(raw: bytes, expected: int) -> None:
    async def test(server: MetricsServer) -> None:
        status, _, _ = await exchange(server.port, raw)
        assert status == expected

    serve(test)


def test_an_oversized_head_is_refused() -> None:
    async def test(server: MetricsServer) -> None:
        raw = b"GET /metrics HTTP/1.1\r\nX-Padding: " + b"a" * 3000 + b"\r\n\r\n"
        status, _, _ = await exchange(server.port, raw)
        assert status == 431
        # a head within the limit still passes
        fits = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n"
        status, _, _ = await exchange(server.port, fits)
        assert status == 200

    serve(test, max_head_bytes=1024)


def test_a_silent_client_is_dropped() -> None:
    async def test(server: MetricsServer) -> None:
        for sent in (b"", b"GET /metrics HTTP/1.1\r\n"):  # nothing, or half a head
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(sent)
            assert await reader.read() == b""  # closed without an answer
            writer.close()

    serve(test, idle_timeout=0.05)


def test_a_failing_source_gives_500_and_the_server_goes_on() -> None:
    class Broken:
        async def snapshot(self) -> None:
            return None

        def render(self, snapshot: object) -> bytes:
            raise RuntimeError("bug")

        def status_document(self, snapshot: object) -> dict[str, Any]:
            return {"ok": True}

    async def test(server: MetricsServer) -> None:
        status, _, _ = await exchange(server.port, get("/metrics"))
        assert status == 500
        status, _, body = await exchange(server.port, get("/status"))
        assert status == 200
        assert json.loads(body) == {"ok": True}

    serve(test, source=Broken())


def test_stop_closes_open_connections_and_the_port() -> None:
    async def body() -> None:
        server = MetricsServer("127.0.0.1", 0, metrics(), idle_timeout=60)
        await server.start()
        port = server.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while server.connections == 0:  # until the server has accepted it (loop turns only)
            await asyncio.sleep(0)
        await server.stop()
        assert await reader.read() == b""
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(RuntimeError):
            _ = server.port

    run(body)


def test_a_taken_port_is_a_config_error() -> None:
    async def body() -> None:
        async with MetricsServer("127.0.0.1", 0, metrics()) as first:
            second = MetricsServer("127.0.0.1", first.port, metrics())
            with pytest.raises(ConfigError, match="metrics: cannot listen"):
                await second.start()

    run(body)
