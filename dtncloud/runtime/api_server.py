"""Listeners of the application API: a Unix socket, optionally TCP, and socket pairs.

:class:`ApiServer` carries connections to an :class:`~dtncloud.runtime.apps.ApiService`:

- the Unix socket is the normal way in. It is made readable and writable by its owner only
  (mode 0600), and whoever can open it is trusted: a ``hello`` is optional there;
- a TCP listener, for applications on other machines, is opened only with a token, and a
  connection on it must begin with a ``hello`` that presents the token;
- :meth:`ApiServer.serve_socket` serves one end of a ``socket.socketpair()``, for an
  application that runs its node in its own process (the other end goes to
  :meth:`dtncloud.client.Client.from_socket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import stat
from pathlib import Path
from types import TracebackType
from typing import Any

from dtncloud.errors import ConfigError, ServiceError
from dtncloud.runtime.api_wire import encode_frame
from dtncloud.runtime.apps import ApiService

__all__ = ["ApiServer"]

log = logging.getLogger("dtncloud.api")

#: sun_path holds 108 bytes on Linux (104 on the BSDs), the terminating NUL included.
_MAX_SOCKET_PATH = 103
#: How long stop() waits for connections to wind down (they are aborted, so it is quick).
_STOP_TIMEOUT = 5.0
#: How long probing an existing socket file for a live node may take.
_PROBE_TIMEOUT = 2.0


class ApiServer:
    """Listen for applications on ``socket_path`` and/or ``tcp`` (``(host, port)``; port 0
    picks a free one, see :attr:`tcp_address`). At most ``max_connections`` are served at
    once; more are told so and closed."""

    def __init__(
        self,
        service: ApiService,
        *,
        socket_path: Path | None = None,
        tcp: tuple[str, int] | None = None,
        max_connections: int = 64,
    ) -> None:
        self.service = service
        self.socket_path = socket_path
        self.tcp = tcp
        self.max_connections = max_connections
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[Any]] = set()
        self._socket_inode: int | None = None
        self._tcp_address: tuple[str, int] | None = None
        self._stopping = False

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """Where the TCP listener listens (with the port it got), once started."""
        return self._tcp_address

    async def start(self) -> None:
        """Open the listeners. Raises :class:`~dtncloud.errors.ConfigError` for a TCP
        listener without a token or an unusable socket path, and
        :class:`~dtncloud.errors.ServiceError` when another node serves the socket path."""
        if self.tcp is not None and not self.service.token:
            raise ConfigError(
                "the API's TCP listener needs a token; set a token or do not listen on TCP"
            )
        try:
            if self.socket_path is not None:
                sock = await _bind_unix(self.socket_path)
                self._socket_inode = os.stat(self.socket_path).st_ino
                self._servers.append(
                    await asyncio.start_unix_server(
                        functools.partial(self._accept, authenticated=True), sock=sock
                    )
                )
            if self.tcp is not None:
                host, port = self.tcp
                try:
                    server = await asyncio.start_server(
                        functools.partial(self._accept, authenticated=False), host, port
                    )
                except OSError as exc:
                    raise ServiceError(
                        f"cannot listen for the API on {host}:{port}: {exc.strerror or exc}"
                    ) from None
                self._servers.append(server)
                address = server.sockets[0].getsockname()
                self._tcp_address = (str(address[0]), int(address[1]))
        except BaseException:
            await self.stop()
            raise
        log.info(
            "API listening on %s",
            ", ".join(str(a) for a in (self.socket_path, self._tcp_address) if a is not None),
        )

    async def serve_socket(self, sock: socket.socket) -> None:
        """Serve an already connected stream socket as a trusted connection (no ``hello``
        needed) in the background until it closes or the server stops; returns at once."""
        reader, writer = await asyncio.open_connection(sock=sock)
        task = asyncio.ensure_future(self._accept(reader, writer, authenticated=True))
        self._sessions.add(task)

    async def stop(self) -> None:
        """Stop listening, close every connection (failing the deliveries they wait for)
        and remove the socket file."""
        self._stopping = True
        for server in self._servers:
            server.close()
        self.service.close()
        sessions = [task for task in self._sessions if not task.done()]
        if sessions:
            await asyncio.wait(sessions, timeout=_STOP_TIMEOUT)
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT)
        self._servers.clear()
        self._remove_socket_file()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, authenticated: bool
    ) -> None:
        task = asyncio.current_task()
        others = len(self._sessions - {task}) if task is not None else len(self._sessions)
        if self._stopping or others >= self.max_connections:
            await _turn_away(writer, self._stopping, self.max_connections)
            return
        if task is not None:
            self._sessions.add(task)
        try:
            await self.service.serve(reader, writer, authenticated=authenticated)
        except Exception:  # one connection's failure must not take the listener down
            log.exception("API connection failed")
        finally:
            if task is not None:
                self._sessions.discard(task)

    def _remove_socket_file(self) -> None:
        path, inode = self.socket_path, self._socket_inode
        self._socket_inode = None
        if path is None or inode is None:
            return
        # Only the file we made: a node started after us may have put its own there.
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_ino == inode:
                os.unlink(path)


async def _turn_away(writer: asyncio.StreamWriter, stopping: bool, limit: int) -> None:
    reason = "the node is shutting down" if stopping else f"too many connections ({limit})"
    with contextlib.suppress(OSError):
        writer.write(encode_frame({"push": "closing", "error": reason, "code": "refused"}))
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` that only its owner can use."""
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise ConfigError(
            f"API socket path {path} is too long for a Unix socket "
            f"({len(os.fsencode(path))} bytes; at most {_MAX_SOCKET_PATH})"
        )
    await _clear_stale(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent} for the API socket: {exc}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        # Nobody can connect to a socket that is bound but not listening, so tightening the
        # mode between bind and listen leaves no moment when others could get in (a umask
        # would do too, but it is process-wide and other threads create files meanwhile).
        os.chmod(path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on API socket {path}: {exc.strerror or exc}") from None
    return sock


async def _clear_stale(path: Path) -> None:
    """Remove a socket file left by a node that died; refuse if a node still answers."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot use {path} for the API socket: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; not replacing it")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(os.fspath(path)), _PROBE_TIMEOUT
        )
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: the file is all that is left of a dead node
        return
    except FileNotFoundError:
        return
    except (OSError, TimeoutError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "no answer"
        if isinstance(exc, OSError) and exc.errno == errno.EACCES:
            detail = "permission denied (another user's node?)"
        raise ServiceError(f"cannot tell whether a node still serves {path}: {detail}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    raise ServiceError(f"another node already serves the API on {path}; stop it first")
