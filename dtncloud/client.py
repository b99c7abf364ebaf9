"""The Python client of a node's application API.

:class:`Client` (asyncio) and :class:`SyncClient` (blocking, for scripts) talk to a running
``dtnd`` over its Unix socket or TCP listener, or to an embedded node over a socket pair::

    async with await Client.connect("/run/dtnd/api.sock") as client:
        await client.register("inbox")
        await client.send("dtn://cloud/ingest", b"21.5 C")
        async for bundle in client.bundles("inbox"):
            print(bundle.source, bundle.payload)  # acknowledged when the loop goes on

A bundle handed to the application stays stored in the node until the application
acknowledges it (:meth:`Received.ack`); one that is never acknowledged, because the
application crashed or closed its connection first, is delivered again. ``docs/api.md``
describes the protocol and these classes in full.

Errors: :class:`~dtncloud.errors.ConnectError` when the node cannot be reached or the
connection is lost (every call under way fails with it; none hangs);
:class:`~dtncloud.runtime.api_wire.ApiError` (a :class:`~dtncloud.errors.ServiceError` with
the answer's ``code``) when the node refuses a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from dtncloud.errors import ConfigError, ConnectError, DtnError, RemoteProtocolError
from dtncloud.runtime.api_wire import (
    API_VERSION,
    FRAME_OVERHEAD,
    ApiError,
    FrameDecoder,
    encode_frame,
)

__all__ = ["ENV_API", "ENV_TOKEN", "ApiError", "Client", "Received", "SyncClient"]

#: Where :meth:`Client.connect` looks for the API address and token when given none.
ENV_API = "DTNCLOUD_API"
ENV_TOKEN = "DTNCLOUD_TOKEN"

_READ_SIZE = 256 * 1024
#: Progress is reported once per this many bytes of a big request.
_CHUNK = 256 * 1024
#: Lists of bundles can outgrow a small payload limit; answers may always be this large.
_MIN_FRAME = 256 << 20
#: How many bundles a passive receive without a count asks for at a time.
_BATCH = 16


@dataclass(frozen=True, eq=False)
class Received:
    """A bundle the node pushed to this application. It stays stored in the node until
    :meth:`ack`; :meth:`nack` (or losing the connection) leaves it there to come again."""

    bundle_id: str
    source: str
    destination: str
    endpoint: str
    payload: bytes = field(repr=False)
    is_admin_record: bool
    _client: Client = field(repr=False)
    _delivery: int = field(repr=False)

    @property
    def settled(self) -> bool:
        """Whether it was acknowledged or refused already."""
        return self._delivery not in self._client._unanswered

    async def ack(self) -> None:
        """The application has the bundle: the node may delete it. Idempotent."""
        await self._client._settle(self, True)

    async def nack(self) -> None:
        """The application cannot take it now: the node keeps it and delivers it later."""
        await self._client._settle(self, False)


class _Inbox:
    """Pushes for one endpoint, waiting for someone to take them."""

    def __init__(self) -> None:
        self.items: deque[Received] = deque()
        self._waiters: deque[asyncio.Future[Received]] = deque()
        self._error: DtnError | None = None

    def put(self, item: Received) -> None:
        self.items.append(item)
        self._hand_out()

    def unget(self, items: Iterable[Received]) -> None:
        """Give back what was taken but never handed to the caller, first in line again."""
        self.items.extendleft(reversed(list(items)))
        self._hand_out()

    def _hand_out(self) -> None:
        while self._waiters and self.items:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self.items.popleft())

    async def get(self, timeout: float | None = None) -> Received | None:
        """The next push, or None when ``timeout`` seconds pass first."""
        if self._error is not None:
            raise self._error
        if self.items:
            return self.items.popleft()
        waiter: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.unget([waiter.result()])  # taken, but the caller was cancelled meanwhile
            raise
        finally:
            if not waiter.done():  # timed out or cancelled: nothing was put into it
                waiter.cancel()
                self._waiters.remove(waiter)
        return None if waiter.cancelled() else waiter.result()

    def fail(self, error: DtnError) -> None:
        self._error = error
        self.items.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class Client:
    """A connection to a node's application API. Make one with :meth:`connect` or
    :meth:`from_socket`; use it as ``async with`` or :meth:`close` it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, name: str
    ) -> None:
        self.name = name
        #: what the node said in its hello: node ID, software version, payload limit
        self.node_id = ""
        self.node_version = ""
        self.max_payload: int | None = None
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(_MIN_FRAME)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()
        self._error: ConnectError | None = None
        self._goodbye: str | None = None
        self._inboxes: dict[str, _Inbox] = {}
        self._unanswered: set[int] = set()
        #: endpoint as the application named it -> full endpoint ID
        self._endpoints: dict[str, str] = {}
        #: full endpoint ID -> True for a passive registration
        self._passive: dict[str, bool] = {}
        #: bundles a passive endpoint has asked for and not been pushed yet
        self._credit: dict[str, int] = {}
        self._reading = asyncio.ensure_future(self._read())

    # -- connecting ----------------------------------------------------------------------

    @classmethod
    async def connect(
        cls, api: str | None = None, *, token: str | None = None, timeout: float = 10.0
    ) -> Client:
        """Connect to the node API at ``api``: a Unix socket path, or ``tcp://host:port``
        (which needs ``token``). Without ``api``, ``$DTNCLOUD_API`` is used, and without
        ``token``, ``$DTNCLOUD_TOKEN``."""
        api = api or os.environ.get(ENV_API)
        if not api:
            raise ConnectError(f"no node API address: pass --api or set {ENV_API}")
        if token is None:
            token = os.environ.get(ENV_TOKEN) or None
        try:
            reader, writer = await asyncio.wait_for(_open(api), timeout)
        except TimeoutError:
            raise ConnectError(f"no answer from the node API at {api} (is dtnd running?)") from None
        return await cls(reader, writer, name=api)._hello(token, timeout)

    @classmethod
    async def from_socket(
        cls, sock: socket.socket, *, token: str | None = None, timeout: float = 10.0
    ) -> Client:
        """A client on an already connected socket (e.g. one end of ``socket.socketpair()``
        whose other end an :class:`~dtncloud.runtime.api_server.ApiServer` serves)."""
        reader, writer = await asyncio.open_connection(sock=sock)
        return await cls(reader, writer, name="a socket pair")._hello(token, timeout)

    async def _hello(self, token: str | None, timeout: float) -> Client:
        fields: dict[str, Any] = {"api": API_VERSION}
        if token is not None:
            fields["token"] = token
        try:
            answer = await asyncio.wait_for(self._call("hello", fields), timeout)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TimeoutError):
                raise ConnectError(f"no hello from the node API at {self.name}") from None
            raise
        self.node_id = str(answer.get("node_id", ""))
        self.node_version = str(answer.get("version", ""))
        limit = answer.get("max_payload")
        if isinstance(limit, int):
            self.max_payload = limit
            self._decoder.max_frame = max(limit + FRAME_OVERHEAD, _MIN_FRAME)
        return self

    async def close(self) -> None:
        """Close the connection; bundles pushed and not acknowledged stay in the node."""
        self._lost("the client is closed")
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reading
        with contextlib.suppress(OSError, RuntimeError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ------------------------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        """The node's ID and its clock (``now_ms``, DTN milliseconds)."""
        answer = await self._call("ping")
        return {"node_id": answer.get("node_id"), "now_ms": answer.get("now_ms")}

    async def register(self, endpoint: str, *, mode: str = "active") -> str:
        """Take deliveries for ``endpoint`` (a full EID, or a bare name that the node
        completes with its own ID); returns the full endpoint ID. ``active``: the node
        pushes bundles as they come; ``passive``: only as many as :meth:`receive` asks for."""
        answer = await self._call("register", {"endpoint": endpoint, "mode": mode})
        full = str(answer["endpoint"])
        self._endpoints[endpoint] = self._endpoints[full] = full
        self._passive[full] = mode == "passive"
        self._credit.setdefault(full, 0)
        return full

    async def unregister(self, endpoint: str, *, forget: bool = False) -> None:
        """Stop taking deliveries for ``endpoint``. Its bundles wait in the node for the next
        registration, unless ``forget``. Pushes not yet acknowledged go back to the node."""
        await self._call("unregister", {"endpoint": endpoint, "forget": forget})
        full = self._endpoints.get(endpoint, endpoint)
        for name in [n for n, f in self._endpoints.items() if f == full]:
            del self._endpoints[name]
        self._passive.pop(full, None)
        self._credit.pop(full, None)
        inbox = self._inboxes.pop(full, None)
        if inbox is not None:
            self._unanswered.difference_update(r._delivery for r in inbox.items)

    async def send(
        self,
        destination: str,
        payload: bytes | bytearray | memoryview,
        *,
        source: str | None = None,
        lifetime: float | None = None,
        reports: Iterable[str] = (),
        report_to: str | None = None,
        custody: bool = False,
        sign: str | bool | None = None,
        encrypt: str | bool | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Send ``payload`` to ``destination``; returns the bundle ID once the node has
        stored it. ``lifetime`` is in seconds (the node's default if None); ``reports``
        names the status reports to ask for (reception, forwarding, delivery, deletion).
        ``sign`` and ``encrypt`` name one of the node's BPSec keys, or are False for none
        (None: the node's configured default). ``custody`` asks for custody transfer,
        which the node must have switched on. ``progress(sent, total)`` is called as the
        request is written, for big payloads."""
        payload = bytes(payload)
        if self.max_payload is not None and len(payload) > self.max_payload:
            raise ApiError(
                f"payload of {len(payload)} bytes exceeds the node's limit of {self.max_payload}",
                "too_large",
            )
        fields: dict[str, Any] = {"destination": destination, "payload": payload}
        if source is not None:
            fields["source"] = source
        if lifetime is not None:
            fields["lifetime_ms"] = max(1, round(lifetime * 1000))
        if reports:
            fields["reports"] = list(reports)
        if report_to is not None:
            fields["report_to"] = report_to
        if custody:
            fields["custody"] = True
        bpsec = {
            name: value
            for name, value in (("sign", sign), ("encrypt", encrypt))
            if value is not None
        }
        if bpsec:
            fields["bpsec"] = bpsec
        answer = await self._call("send", fields, progress=progress)
        return str(answer["bundle_id"])

    async def bundles(self, endpoint: str) -> AsyncGenerator[Received, None]:
        """The bundles pushed for ``endpoint``, which this client must have registered.

        Each bundle is acknowledged when the loop asks for the next one, unless the body
        acknowledged or refused it already; one the loop breaks or fails on is refused
        (nack), so it comes again. For a passive registration it asks for one at a time.
        Close the iterator (``contextlib.aclosing``) to have that happen at once."""
        full = self._registered(endpoint)
        inbox = self._inbox(full)
        current: Received | None = None
        try:
            while True:
                if current is not None and not current.settled:
                    await current.ack()
                current = None
                await self._ask(full, 1, inbox)
                current = await inbox.get()
                assert current is not None
                yield current
        finally:
            if current is not None and not current.settled and self._error is None:
                with contextlib.suppress(DtnError):
                    await current.nack()

    async def receive(
        self, endpoint: str, *, count: int | None = None, timeout: float | None = None
    ) -> list[Received]:
        """Up to ``count`` bundles for ``endpoint``, waiting at most ``timeout`` seconds
        (give one or both). An endpoint this client has not registered is registered
        passively first, so the node hands over only what is asked for.

        The bundles come back unacknowledged: :meth:`Received.ack` each once it is safe
        (written to disk, processed). Any not acknowledged come again after the connection
        closes, so a crash between receiving and acknowledging loses nothing."""
        if count is None and timeout is None:
            raise ConfigError("receive needs a count, a timeout or both")
        if count is not None and count < 1:
            return []
        full = self._endpoints.get(endpoint) or await self.register(endpoint, mode="passive")
        inbox = self._inbox(full)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        got: list[Received] = []
        done = False
        try:
            while count is None or len(got) < count:
                await self._ask(full, _BATCH if count is None else count - len(got), inbox)
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                item = await inbox.get(remaining)
                if item is None:
                    break
                got.append(item)
            done = True
        finally:
            if not done and self._error is None:
                inbox.unget(got)  # interrupted: they go to the next caller, not astray
        return got

    async def cancel(self, bundle_id: str) -> bool:
        """Delete a stored bundle; whether the node held it."""
        return await self._found("cancel", {"bundle_id": bundle_id})

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = (await self._call("status"))["status"]
        return status

    async def list_bundles(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The bundles the node holds (ID, source, destination, size, times, retention)."""
        return await self._items("bundles", {} if limit is None else {"limit": limit})

    async def peers(self) -> list[dict[str, Any]]:
        return await self._items("peers")

    async def links(self) -> list[dict[str, Any]]:
        return await self._items("links")

    async def routes(self) -> list[dict[str, Any]]:
        return await self._items("routes")

    async def contacts(self) -> list[dict[str, Any]]:
        return await self._items("contacts")

    async def add_route(self, destination: str, via: str) -> None:
        await self._call("route_add", {"destination": destination, "via": via})

    async def remove_route(self, destination: str) -> bool:
        """Remove the route for ``destination``; whether there was one."""
        return await self._found("route_remove", {"destination": destination})

    async def add_contact(self, contact: dict[str, Any]) -> None:
        await self._call("contact_add", {"contact": contact})

    async def remove_contact(self, contact: dict[str, Any]) -> bool:
        """Remove a contact from the plan; whether it was there."""
        return await self._found("contact_remove", {"contact": contact})

    async def mule_sync(
        self,
        path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        any_destination: bool | None = None,
        capacity: int | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Have the node sync with the mule directory ``path`` (a USB stick) now; returns
        the report once the sync ends (see ``docs/mule.md``). ``dry_run`` only says what
        would move; ``any_destination`` also offers bundles with no better route (the
        node's setting if None); ``capacity`` caps the bytes of bundles on the stick.
        ``progress(report)`` is called with the report so far, about once a second."""
        fields: dict[str, Any] = {"path": os.path.abspath(os.fspath(path)), "dry_run": dry_run}
        if any_destination is not None:
            fields["any_destination"] = any_destination
        if capacity is not None:
            fields["capacity"] = capacity
        answer = await self._call("mule_sync", fields)
        while not answer.get("done"):
            if progress is not None:
                progress(dict(answer.get("report") or {}))
            answer = await self._call("mule_sync", {"sync": answer["sync"], "wait_ms": 1000})
        report: dict[str, Any] = answer["report"]
        return report

    # -- machinery -----------------------------------------------------------------------

    async def _items(self, op: str, fields: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._call(op, fields))["items"]
        return items

    async def _found(self, op: str, fields: dict[str, Any]) -> bool:
        try:
            await self._call(op, fields)
        except ApiError as exc:
            if exc.code == "not_found":
                return False
            raise
        return True

    def _registered(self, endpoint: str) -> str:
        full = self._endpoints.get(endpoint)
        if full is None:
            raise ConfigError(f"endpoint {endpoint!r} is not registered by this client")
        return full

    def _inbox(self, full: str) -> _Inbox:
        inbox = self._inboxes.get(full)
        if inbox is None:
            inbox = self._inboxes[full] = _Inbox()
            if self._error is not None:
                inbox.fail(self._error)
        return inbox

    async def _ask(self, full: str, want: int, inbox: _Inbox) -> None:
        """Give a passive registration credit for ``want`` bundles beyond those on the way."""
        if not self._passive.get(full):
            return
        missing = want - self._credit.get(full, 0) - len(inbox.items)
        if missing > 0:
            self._credit[full] = self._credit.get(full, 0) + missing
            await self._call("receive", {"endpoint": full, "max": missing})

    async def _settle(self, received: Received, accepted: bool) -> None:
        if self._error is not None:  # too late: it will come again
            raise self._error
        delivery = received._delivery
        if delivery not in self._unanswered:
            return
        try:
            await self._call("ack" if accepted else "nack", {"delivery": delivery})
        except ApiError:  # answered all the same (e.g. the endpoint was unregistered)
            self._unanswered.discard(delivery)
            raise
        self._unanswered.discard(delivery)

    async def _call(
        self,
        op: str,
        fields: dict[str, Any] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            await self._write(
                encode_frame({"op": op, "id": request_id, **(fields or {})}), progress
            )
            result = await answer
        finally:
            self._pending.pop(request_id, None)
        if result.get("ok") is not True:
            raise ApiError(str(result.get("error") or "the node refused"), str(result.get("code")))
        return result

    async def _write(self, frame: bytes, progress: Callable[[int, int], None] | None) -> None:
        total, sent = len(frame), 0
        async with self._write_lock:
            if self._error is not None:
                raise self._error
            try:
                if progress is None:
                    self._writer.write(frame)  # whole: an interruption cannot split it
                    await self._writer.drain()
                    return
                view = memoryview(frame)
                while sent < total:
                    chunk = view[sent : sent + _CHUNK]
                    self._writer.write(chunk)
                    sent += len(chunk)
                    await self._writer.drain()
                    progress(sent, total)
            except OSError as exc:
                self._lost(f"connection to the node API at {self.name} lost: {exc}")
                raise self._error or ConnectError(str(exc)) from None
            except BaseException:
                if 0 < sent < total:  # half a frame is on the wire: the stream is unusable
                    self._lost("the connection was closed in the middle of a request")
                    self._writer.transport.abort()
                raise

    async def _read(self) -> None:
        reason = f"the node API at {self.name} closed the connection"
        try:
            while data := await self._reader.read(_READ_SIZE):
                self._decoder.feed(data)
                for message in self._decoder:
                    self._dispatch(message)
        except RemoteProtocolError as exc:
            reason = f"the node API at {self.name} broke the protocol: {exc}"
        except OSError as exc:
            reason = f"connection to the node API at {self.name} lost: {exc}"
        finally:
            self._lost(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        push = message.get("push")
        if push is None:
            request_id = message.get("id")
            answer = self._pending.get(request_id) if isinstance(request_id, int) else None
            if answer is not None and not answer.done():
                answer.set_result(message)
        elif push == "bundle":
            received = self._received(message)
            self._unanswered.add(received._delivery)
            if self._passive.get(received.endpoint):
                credit = self._credit.get(received.endpoint, 0)
                self._credit[received.endpoint] = max(0, credit - 1)
            self._inbox(received.endpoint).put(received)
        elif push == "closing":
            self._goodbye = str(message.get("error", ""))

    def _received(self, push: dict[str, Any]) -> Received:
        try:
            return Received(
                bundle_id=_typed(push, "bundle_id", str),
                source=_typed(push, "source", str),
                destination=_typed(push, "destination", str),
                endpoint=_typed(push, "endpoint", str),
                payload=_typed(push, "payload", bytes),
                is_admin_record=bool(push.get("admin", False)),
                _client=self,
                _delivery=_typed(push, "delivery", int),
            )
        except TypeError as exc:
            raise RemoteProtocolError(f"malformed bundle push: {exc}") from None

    def _lost(self, reason: str) -> None:
        if self._error is not None:
            return
        if self._goodbye:
            reason = f"the node API at {self.name} closed the connection: {self._goodbye}"
        self._error = error = ConnectError(reason)
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(error)
        for inbox in self._inboxes.values():
            inbox.fail(error)
        self._writer.close()


def _typed(message: dict[str, Any], name: str, kind: type) -> Any:
    value = message.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise TypeError(f"field {name!r} is not {kind.__name__}")
    return value


async def _open(api: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if api.startswith("tcp://"):
        host, _, port = api[6:].rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ConfigError(f"API address {api!r} is not tcp://host:port")
        try:
            return await asyncio.open_connection(host, int(port))
        except OSError as exc:
            detail = exc.strerror or str(exc)
            message = f"cannot reach the node API at {api}: {detail} (is dtnd running?)"
            raise ConnectError(message) from None
    path = api.removeprefix("unix:")
    try:
        return await asyncio.open_unix_connection(path)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ConnectError(f"no node API listens on {path} (is dtnd running?)") from None
    except PermissionError:
        raise ConnectError(f"not allowed to use the node API socket {path}") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to the node API at {path}: {exc.strerror}") from None


# -- the blocking facade ---------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


class _Blocking(Generic[P, R]):
    """A :class:`SyncClient` method that runs the :class:`Client` coroutine of the same
    name on the client's loop and waits for it (same parameters, same result)."""

    def __init__(self, method: Callable[Concatenate[Client, P], Coroutine[Any, Any, R]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, instance: None, owner: type[SyncClient]) -> _Blocking[P, R]: ...

    @overload
    def __get__(self, instance: SyncClient, owner: type[SyncClient]) -> Callable[P, R]: ...

    def __get__(
        self, instance: SyncClient | None, owner: type[SyncClient]
    ) -> _Blocking[P, R] | Callable[P, R]:
        if instance is None:
            return self
        method, client = self._method, instance

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return client._run(method(client.client, *args, **kwargs))

        return call


class SyncClient:
    """:class:`Client` for code without an event loop: the same methods, blocking. The
    connection lives on a private event loop in a background thread. Acknowledge what
    :meth:`receive` returns with :meth:`ack` (not ``Received.ack``, a coroutine)."""

    def __init__(
        self, api: str | None = None, *, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self._start(lambda: Client.connect(api, token=token, timeout=timeout))

    @classmethod
    def from_socket(
        cls, sock: socket.socket, *, token: str | None = None, timeout: float = 10.0
    ) -> SyncClient:
        self = cls.__new__(cls)
        self._start(lambda: Client.from_socket(sock, token=token, timeout=timeout))
        return self

    def _start(self, connect: Callable[[], Coroutine[Any, Any, Client]]) -> None:
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dtncloud-client", daemon=True
        )
        self._thread.start()
        try:
            self.client = self._run(connect())
        except BaseException:
            self._stop_loop()
            raise

    @property
    def node_id(self) -> str:
        return self.client.node_id

    def _run(self, work: Coroutine[Any, Any, R]) -> R:
        if self._closed:
            work.close()
            raise ConnectError("the client is closed")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    ping = _Blocking(Client.ping)
    register = _Blocking(Client.register)
    unregister = _Blocking(Client.unregister)
    send = _Blocking(Client.send)
    receive = _Blocking(Client.receive)
    cancel = _Blocking(Client.cancel)
    status = _Blocking(Client.status)
    list_bundles = _Blocking(Client.list_bundles)
    peers = _Blocking(Client.peers)
    links = _Blocking(Client.links)
    routes = _Blocking(Client.routes)
    contacts = _Blocking(Client.contacts)
    add_route = _Blocking(Client.add_route)
    remove_route = _Blocking(Client.remove_route)
    add_contact = _Blocking(Client.add_contact)
    remove_contact = _Blocking(Client.remove_contact)
    mule_sync = _Blocking(Client.mule_sync)

    def ack(self, received: Received) -> None:
        """The application has ``received``: the node may delete it."""
        self._run(received.ack())

    def nack(self, received: Received) -> None:
        """Leave ``received`` in the node, to come again later."""
        self._run(received.nack())

    def bundles(self, endpoint: str) -> Iterator[Received]:
        """As :meth:`Client.bundles`: each bundle is acknowledged when the loop asks for
        the next; the last one is refused if the loop ends early."""
        stream = self.client.bundles(endpoint)

        async def step() -> Received:
            return await stream.__anext__()

        try:
            while True:
                try:
                    item = self._run(step())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self._closed:
                self._run(stream.aclose())

    def close(self) -> None:
        """Close the connection and stop the background loop."""
        if self._closed:
            return
        try:
            self._run(self.client.close())
            self._run(self._loop.shutdown_asyncgens())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
