"""A tiny HTTP/1.1 server for a node's metrics and status document.

``GET /metrics`` answers with the Prometheus text format, ``GET /status`` with the JSON
status document, ``GET /`` with a short index; ``HEAD`` is answered like ``GET`` without a
body. Each connection carries one request and is closed after the response
(``Connection: close``): scrapers open a connection per scrape anyway, and it keeps the
server free of keep-alive state.

prometheus_client has ``start_http_server``, but it serves from a thread of its own, which
would read the node's counters and links while the event loop changes them. Serving from
asyncio reads them between two steps of the loop, where they are consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Protocol

from dtncloud.errors import ConfigError
from dtncloud.runtime.metrics import CONTENT_TYPE

__all__ = ["MetricsServer", "MetricsSource"]

log = logging.getLogger("dtncloud.http")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}

_INDEX = b"dtncloud node\n/metrics  Prometheus metrics\n/status   status document (JSON)\n"

#: At most this much of what a client sends after an error response is read and dropped
#: before the connection is closed (see ``_linger``).
_LINGER_BYTES = 1 << 20


class MetricsSource(Protocol):
    """What the server shows: :class:`~dtncloud.runtime.metrics.NodeMetrics` is one."""

    async def snapshot(self) -> Any: ...

    def render(self, snapshot: Any) -> bytes: ...

    def status_document(self, snapshot: Any) -> dict[str, Any]: ...


class MetricsServer:
    """Serves ``source`` on ``host``:``port`` (port 0: any free port, see :attr:`port`).

    A request line and headers longer than ``max_head_bytes`` are answered with 431; a
    client that has not sent a whole request head within ``idle_timeout`` seconds is
    disconnected.
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics_source: MetricsSource,
        *,
        idle_timeout: float = 10.0,
        max_head_bytes: int = 8192,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.source = metrics_source
        self.idle_timeout = idle_timeout
        self.max_head_bytes = max_head_bytes
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def port(self) -> int:
        """The port listened on (the one chosen, when constructed with 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the metrics server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connections(self) -> int:
        """How many client connections are open now."""
        return len(self._clients)

    async def start(self) -> None:
        """Listen; raises :class:`~dtncloud.errors.ConfigError` if the address is unusable."""
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self._requested_port, limit=self.max_head_bytes
            )
        except OSError as exc:
            raise ConfigError(
                f"metrics: cannot listen on {self.host}:{self._requested_port}: {exc.strerror}"
            ) from None
        log.info("metrics served on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop the connections still open."""
        if self._server is None:
            return
        self._server.close()
        # Closing the connections, rather than cancelling their tasks, ends each exchange
        # through the EOF its reader then sees (Python 3.11's streams log an error for a
        # cancelled connection task).
        for writer in self._clients.values():
            writer.close()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nobody to answer
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.idle_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return  # idle or trickling client: dropped without an answer
        except asyncio.LimitOverrunError:
            await self._respond(writer, 431, b"request head too large\n")
            await self._linger(reader, writer)
            return
        status, content_type, body, head_only = await self._answer(head)
        await self._respond(writer, status, body, content_type, head_only=head_only)
        if status >= 400:
            await self._linger(reader, writer)

    async def _answer(self, head: bytes) -> tuple[int, str, bytes, bool]:
        """(status, content type, body, whether to leave the body out) for a request head."""
        text = "text/plain; charset=utf-8"
        try:
            request_line = head.split(b"\r\n", 1)[0].decode("ascii")
            method, target, version = request_line.split(" ")
        except (UnicodeDecodeError, ValueError):
            return 400, text, b"bad request line\n", False
        if not version.startswith("HTTP/1."):
            return 505, text, b"HTTP/1.x only\n", False
        if method not in ("GET", "HEAD"):
            return 405, text, b"only GET and HEAD\n", False
        head_only = method == "HEAD"
        path = target.split("?", 1)[0]
        if path == "/":
            return 200, text, _INDEX, head_only
        if path not in ("/metrics", "/status"):
            return 404, text, b"not found\n", False
        try:
            snapshot = await self.source.snapshot()
            if path == "/metrics":
                return 200, CONTENT_TYPE, self.source.render(snapshot), head_only
            document = self.source.status_document(snapshot)
            body = json.dumps(document, separators=(",", ":")).encode() + b"\n"
            return 200, "application/json", body, head_only
        except Exception:  # a bug behind one page must not take the server down
            log.exception("metrics: %s failed", path)
            return 500, text, b"internal error\n", False

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        head_only: bool = False,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if status == 405:
            lines.append("Allow: GET, HEAD")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        if not head_only:
            writer.write(body)
        await writer.drain()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After an error response, signal the end of it and read what the client still
        sends until it closes: closing a socket with unread input makes the kernel send a
        reset, which can reach the client before it has read the response."""
        if not writer.can_write_eof():
            return
        writer.write_eof()
        dropped = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(self.idle_timeout):
                while dropped < _LINGER_BYTES and (chunk := await reader.read(65536)):
                    dropped += len(chunk)
