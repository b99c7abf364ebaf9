"""The TCP convergence layer driver: TCPCLv4 (RFC 9174, with TLS) and TCPCLv3 (RFC 7242).

One listener serves both versions: the passive side reads the peer's contact header first
and picks the session class from its version byte. Outgoing connections use the configured
version. There is one session per peer address, reused for every bundle; configured peers are
kept connected, with exponential backoff between attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import shutil
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtncloud.bpv7 import BundleId
from dtncloud.cla import tls as tlsmod
from dtncloud.cla.base import ConvergenceLayer, Link, LinkEvents, parse_host_port
from dtncloud.cla.spool import DEFAULT_SPOOL_THRESHOLD, SpoolWriter
from dtncloud.cla.stream import ChunkStream
from dtncloud.cla.tcpcl_link import TcpclLink, loop_ms
from dtncloud.cla.tls import TlsConfig
from dtncloud.discovery import format_address
from dtncloud.errors import ConfigError, ConnectError
from dtncloud.tcpcl.codes import DEFAULT_PORT, MAGIC, Role, SessTermReason
from dtncloud.tcpcl.config import (
    DEFAULT_SEGMENT_MRU,
    DEFAULT_TRANSFER_MRU,
    SessionConfig,
)
from dtncloud.tcpcl.session import Session
from dtncloud.tcpcl.v3 import SessionV3

log = logging.getLogger("dtncloud.cla.tcpcl")


def _keep_alive(stream: ChunkStream) -> None:
    """TCP keepalive as a last resort: a peer may negotiate TCPCL keepalives away (0)."""
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


class _PeerSpeaksV3(ConnectError):
    """Our TCPCLv4 contact header was answered by a TCPCLv3 one."""


@dataclass(frozen=True)
class TcpclOptions:
    """How a TCPCL driver listens, connects and negotiates.

    ``listen`` is the host to listen on (``None``: do not listen; ``""``: every interface)
    and ``port`` its port (0 picks a free one; see :attr:`TcpclConvergenceLayer.port`).
    ``version`` is what outgoing sessions speak (4 or 3; a peer that answers version 4 with a
    TCPCLv3 contact header is reconnected to with version 3, unless TLS is required).
    ``tls`` enables TLS (TCPCLv4 only).
    ``peers`` are addresses to keep a session with, reconnecting with exponential backoff
    from ``reconnect_initial_s`` up to ``reconnect_max_s``. Incoming transfers larger than
    ``spool_threshold`` are written to files in ``spool_dir`` (a private temporary directory
    if ``None``). Beyond ``max_sessions`` open sessions, new peers are turned away with
    SESS_TERM "busy" (each session may buffer a segment and a spool threshold's worth).
    """

    node_id: str = ""
    listen: str | None = None
    port: int = DEFAULT_PORT
    version: int = 4
    keepalive_s: int = 60
    segment_mru: int = DEFAULT_SEGMENT_MRU
    transfer_mru: int = DEFAULT_TRANSFER_MRU
    max_segment_size: int = DEFAULT_SEGMENT_MRU
    tls: TlsConfig | None = None
    peers: tuple[str, ...] = ()
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    contact_timeout_s: float = 60.0
    spool_dir: Path | None = None
    spool_threshold: int = DEFAULT_SPOOL_THRESHOLD
    max_sessions: int = 256
    #: hand the node what a broken incoming transfer delivered (``ReceivedBundle.partial``),
    #: for reactive fragmentation; pair it with the engine's ``reactive_fragmentation``
    keep_partial: bool = False

    def __post_init__(self) -> None:
        if self.version not in (3, 4):
            raise ConfigError(f"TCPCL version must be 3 or 4, not {self.version}")
        if self.tls is not None and self.version == 3:
            raise ConfigError("TLS needs TCPCL version 4")
        tls = self.tls
        if tls is not None and self.listen is not None and tls.require and not tls.can_serve:
            raise ConfigError("a listener that requires TLS needs a certificate (--tls-cert)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} out of range")
        for peer in self.peers:
            parse_host_port(peer, DEFAULT_PORT)  # a ConfigError names the bad address
        if self.max_sessions < 1:
            raise ConfigError("max_sessions must be at least 1")
        if not 0 < self.reconnect_initial_s <= self.reconnect_max_s:
            raise ConfigError("reconnect delays must satisfy 0 < initial <= max")
        self.session_config()  # validates the session parameters

    def session_config(self) -> SessionConfig:
        """The sans-IO session configuration these options describe."""
        return SessionConfig(
            node_id=self.node_id,
            keepalive_s=self.keepalive_s,
            segment_mru=self.segment_mru,
            transfer_mru=self.transfer_mru,
            max_segment_size=self.max_segment_size,
            can_tls=self.tls is not None,
            require_tls=self.tls is not None and self.tls.require,
            contact_timeout_ms=int(self.contact_timeout_s * 1000),
        )


class TcpclConvergenceLayer(ConvergenceLayer):
    """TCPCL listener and connector; see the module docstring.

    ``known_bundle`` (optional) answers whether the node already holds a bundle; incoming
    transfers of such bundles are refused as "completed" as soon as their primary block is in.
    ``rng`` jitters reconnection delays and ``sleep`` waits them out (both injected for
    reproducibility and tests).
    """

    name = "tcpcl"
    reliable = True

    def __init__(
        self,
        events: LinkEvents,
        options: TcpclOptions,
        *,
        known_bundle: Callable[[BundleId], bool] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(events)
        self.options = options
        self.session_config = options.session_config()
        # Only a node with a certificate can be the TLS server, so only it offers CAN_TLS
        # on sessions it accepts.
        can_serve = options.tls is not None and options.tls.can_serve
        self._passive_config = dataclasses.replace(
            self.session_config,
            can_tls=can_serve,
            require_tls=self.session_config.require_tls,
        )
        self.tls_config = options.tls
        self.known_bundle = known_bundle
        self.spool_threshold = options.spool_threshold
        self.spool_writer: SpoolWriter | None = None
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._maintainers: set[asyncio.Task[Any]] = set()
        #: Accepted connections whose contact header has not arrived yet.
        self._greeting = 0
        self._server: asyncio.Server | None = None
        self._tls_contexts: dict[bool, ssl.SSLContext] = {}
        self._links: dict[str, TcpclLink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connecting: dict[str, asyncio.Future[TcpclLink]] = {}
        self._own_spool: tempfile.TemporaryDirectory[str] | None = None
        self.spool_dir = options.spool_dir or Path(tempfile.gettempdir())
        self.port: int | None = None
        self._running = False

    @property
    def max_bundle_size(self) -> int | None:
        return None

    def tls_context(self, *, server_side: bool) -> ssl.SSLContext:
        """The TLS context for one side, built once (it reads the key and CA files)."""
        assert self.tls_config is not None
        context = self._tls_contexts.get(server_side)
        if context is None:
            make = tlsmod.server_context if server_side else tlsmod.client_context
            context = self._tls_contexts[server_side] = make(self.tls_config)
        return context

    @property
    def links(self) -> list[Link]:
        return [link for link in self._links.values() if link.is_up]

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self.spool_writer = SpoolWriter()
        if self.options.spool_dir is None:
            self._own_spool = tempfile.TemporaryDirectory(prefix="dtncloud-spool-")
            self.spool_dir = Path(self._own_spool.name)
        else:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        if self.options.listen is not None:
            host = self.options.listen or None
            try:
                loop = asyncio.get_running_loop()
                self._server = await loop.create_server(
                    lambda: ChunkStream(on_connected=self._connected), host, self.options.port
                )
            except OSError as exc:
                self._running = False
                raise ConnectError(
                    f"cannot listen on {self.options.listen or '*'}:{self.options.port}: "
                    f"{exc.strerror or exc}"
                ) from exc
            self.port = self._server.sockets[0].getsockname()[1]
            log.info("TCPCL listening on port %d", self.port)
        for address in self.options.peers:
            self._maintainers.add(self._spawn(self._maintain(address)))

    async def stop(self, timeout: float = 5.0) -> None:
        """End every session with SESS_TERM (waiting up to ``timeout`` seconds for the peers'
        replies and for transfers in progress), then stop listening and clean up."""
        self._running = False
        if self._server is not None:
            self._server.close()
        for task in self._maintainers:
            task.cancel()
        links = list(self._links.values())
        if links:
            closing = asyncio.gather(*(link.close() for link in links), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing, timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(link.deliveries_done() for link in links), return_exceptions=True)
        if self.spool_writer is not None:
            await asyncio.to_thread(self.spool_writer.close)  # pending writes and removals
            self.spool_writer = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self._own_spool is not None:
            shutil.rmtree(self._own_spool.name, ignore_errors=True)
            self._own_spool = None

    async def connect(self, address: str) -> TcpclLink:
        """Open (or reuse) the session with ``address`` (``host[:port]``)."""
        host, port = parse_host_port(address, DEFAULT_PORT)
        key = f"{host}:{port}"
        link = self._links.get(key)
        if link is not None and link.is_up:
            return link
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TcpclLink] = asyncio.get_running_loop().create_future()
        self._connecting[key] = future
        try:
            link = await self._open(host, port, key)
        except BaseException as exc:
            # Others waiting for this address get a ConnectError, never our cancellation.
            shared = (
                exc
                if isinstance(exc, ConnectError)
                else ConnectError(
                    f"cannot connect to {key}: the attempt was abandoned ({type(exc).__name__})"
                )
            )
            future.set_exception(shared)
            future.exception()
            raise
        else:
            future.set_result(link)
            return link
        finally:
            del self._connecting[key]

    async def _open(self, host: str, port: int, key: str) -> TcpclLink:
        version = self.options.version
        try:
            return await self._open_version(host, port, key, version)
        except _PeerSpeaksV3:
            if version != 4 or self.session_config.require_tls:
                raise
        # A TCPCLv3-only peer (ION, older nodes) answered our v4 contact header with its v3
        # one: RFC 9174 sessions cannot downgrade, but a new connection can speak v3.
        log.info("%s speaks TCPCLv3 only; reconnecting with TCPCLv3", key)
        return await self._open_version(host, port, key, 3)

    async def _open_version(self, host: str, port: int, key: str, version: int) -> TcpclLink:
        timeout = self.options.contact_timeout_s
        try:
            _, stream = await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(ChunkStream, host, port), timeout
            )
        except TimeoutError:
            raise ConnectError(f"cannot connect to {key}: timed out") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {key}: {exc.strerror or exc}") from exc
        _keep_alive(stream)
        session_class = SessionV3 if version == 3 else Session
        session = session_class(Role.ACTIVE, self.session_config, loop_ms())
        link = TcpclLink(self, session, stream, role=Role.ACTIVE, peer_address=key, peer_host=host)
        self._links[key] = link
        self._spawn(link.run())
        try:
            await asyncio.wait_for(asyncio.shield(link.established), timeout)
        except TimeoutError:
            stream.abort()
            raise ConnectError(f"cannot connect to {key}: no session after {timeout:g} s") from None
        except asyncio.CancelledError:
            stream.abort()  # no half-open session left behind
            raise
        except ConnectError as exc:
            if isinstance(session, Session) and session.peer_version == 3:
                raise _PeerSpeaksV3(f"cannot connect to {key}: the peer speaks TCPCLv3") from None
            raise ConnectError(f"cannot connect to {key}: {exc}") from None
        if not link.is_up:  # a TCPCLv3 peer can only say no (SHUTDOWN) once the session is up
            raise ConnectError(f"cannot connect to {key}: {link.close_reason}")
        return link

    def _connected(self, stream: ChunkStream) -> None:
        """A peer connected to the listener: serve it in a task of its own."""
        self._spawn(self._accept(stream))

    async def _accept(self, stream: ChunkStream) -> None:
        try:
            await self._serve(stream)
        except asyncio.CancelledError:
            stream.abort()  # stop() ended it

    async def _serve(self, stream: ChunkStream) -> None:
        peer = stream.get_extra_info("peername") or ("?", 0)
        host, port = str(peer[0]), int(peer[1])
        key = format_address(host, port)
        _keep_alive(stream)
        if len(self._links) + self._greeting >= 2 * self.options.max_sessions:
            log.warning("%s: too many connections; closing", key)  # not even a contact header
            stream.close()
            return
        self._greeting += 1
        try:
            header = await asyncio.wait_for(stream.readexactly(6), self.options.contact_timeout_s)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            log.info("%s: no contact header; closing", key)
            stream.close()
            return
        finally:
            self._greeting -= 1
        if not self._running:
            stream.close()
            return
        if header[:4] != MAGIC:
            log.info("%s: not a TCPCL peer (bad magic); closing", key)
            stream.close()
            return
        if header[4] == 3 and self._passive_config.require_tls:
            log.info("%s: refusing a TCPCLv3 session: TLS is required", key)
            stream.close()
            return
        session_class = SessionV3 if header[4] == 3 else Session
        if len(self._links) >= self.options.max_sessions:
            await self._turn_away(session_class, header, stream, key)
            return
        session = session_class(Role.PASSIVE, self._passive_config, loop_ms())
        link = TcpclLink(self, session, stream, role=Role.PASSIVE, peer_address=key, peer_host=host)
        self._links[key] = link
        session.receive_data(header, loop_ms())
        await link.run()

    async def _turn_away(
        self,
        session_class: type[Session] | type[SessionV3],
        header: bytes,
        stream: ChunkStream,
        key: str,
    ) -> None:
        """Answer a peer over the session limit with SESS_TERM (SHUTDOWN) "busy", in plain
        text right after the contact headers, as RFC 9174 allows, and hang up."""
        log.warning("%s: turned away: %d sessions open", key, len(self._links))
        config = SessionConfig(node_id=self.options.node_id)
        session = session_class(Role.PASSIVE, config, loop_ms())
        session.receive_data(header, loop_ms())
        session.terminate(SessTermReason.BUSY, loop_ms())
        stream.write(session.data_to_send())
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(stream.drain(), 5)
        stream.close()

    async def _maintain(self, address: str) -> None:
        """Keep a session with ``address`` open, backing off exponentially between attempts.

        A session that ends soon after it came up (a peer that is busy, or one that drops
        us) counts as a failed attempt, so a peer is never hammered with reconnections; the
        delay starts again from the beginning only after a session lasted ``reconnect_max_s``.
        """
        loop = asyncio.get_running_loop()
        initial, ceiling = self.options.reconnect_initial_s, self.options.reconnect_max_s
        delay = initial
        while self._running:
            try:
                link = await self.connect(address)
            except ConnectError as exc:
                log.info("%s", exc)
            else:
                up_at = loop.time()
                reason = await link.wait_closed()
                log.info("session with %s ended (%s)", address, reason)
                if loop.time() - up_at >= ceiling:
                    delay = initial
            if not self._running:
                return
            wait = delay * (0.5 + self._rng.random())
            log.info("reconnecting to %s in %.1f s", address, wait)
            await self._sleep(wait)
            delay = min(delay * 2, ceiling)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._maintainers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("TCPCL task failed", exc_info=task.exception())

    # --- called by links ----------------------------------------------------------------

    def _link_up(self, link: TcpclLink) -> None:
        self.events.link_up(link)

    def _forget(self, link: TcpclLink) -> None:
        if self._links.get(link.peer_address) is link:
            del self._links[link.peer_address]
        if link.established.done() and link.established.exception() is None:
            self.events.link_down(link, link.closed.result() if link.closed.done() else "closed")
