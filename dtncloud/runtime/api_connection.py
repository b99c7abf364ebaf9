"""One application's connection to the API: its requests, registrations and pushes.

:class:`Connection` is what :meth:`dtncloud.runtime.apps.ApiService.serve` runs per
connection; :class:`Registration` is the delivery handler a connection gives the node for
each endpoint it registers. Kept apart from :mod:`dtncloud.runtime.apps` (the service, what it
reports, how endpoint names resolve) so that each stays a readable size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from dtncloud import __version__
from dtncloud.bpv7.flags import BundleFlag
from dtncloud.cla.mule import MuleBusy, MuleConvergenceLayer
from dtncloud.errors import ConfigError, RemoteProtocolError, ServiceError
from dtncloud.runtime.api_wire import (
    API_VERSION,
    ApiError,
    FrameDecoder,
    FrameTooLarge,
    encode_frame,
    error_answer,
    field,
)
from dtncloud.runtime.node import Delivery

if TYPE_CHECKING:
    from dtncloud.runtime.apps import ApiService

__all__ = ["REPORT_FLAGS", "Connection", "Registration"]

log = logging.getLogger("dtncloud.api")

#: The names a ``send`` request may list in ``reports``, and the status-report request
#: flags (RFC 9171 section 4.2.3) they set.
REPORT_FLAGS: dict[str, BundleFlag] = {
    "reception": BundleFlag.REPORT_RECEPTION,
    "forwarding": BundleFlag.REPORT_FORWARDING,
    "delivery": BundleFlag.REPORT_DELIVERY,
    "deletion": BundleFlag.REPORT_DELETION,
}

_READ_SIZE = 256 * 1024
#: How long cleaning up after a connection may wait for its deliveries to fail (they fail at
#: once unless something is badly wrong; this only keeps a bug from holding up the node).
_DRAIN_TIMEOUT = 5.0
_OPS = frozenset(
    {
        "hello", "ping", "register", "unregister", "receive", "ack", "nack", "send",
        "cancel", "status", "bundles", "peers", "links", "routes", "contacts",
        "route_add", "route_remove", "contact_add", "contact_remove", "mule_sync",
    }
)  # fmt: skip
_LISTS = frozenset({"peers", "links", "routes", "contacts"})


class Registration:
    """An endpoint registered by one connection: the handler the node calls for it, and
    the credit a passive registration has left."""

    def __init__(self, connection: Connection, endpoint: str, *, passive: bool) -> None:
        self.connection = connection
        self.endpoint = endpoint
        self.passive = passive
        self.credit = 0
        self.closed = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._running = 0
        self._credit_waiters: deque[asyncio.Future[None]] = deque()

    async def __call__(self, delivery: Delivery) -> None:
        self._running += 1
        self.idle.clear()
        try:
            if not self.closed and self.passive:
                await self._take_credit()
            if self.closed:
                raise ServiceError(f"no application on {self.endpoint}")
            accepted = await self.connection.push(self.endpoint, delivery)
        finally:
            self._running -= 1
            if not self._running:
                self.idle.set()
        if not accepted:
            raise ServiceError(f"the application on {self.endpoint} asked to keep it for later")

    def give(self, credit: int) -> None:
        self.credit += credit
        self._wake()

    def set_passive(self, passive: bool) -> None:
        self.passive = passive
        self._wake()

    def close(self, reason: str) -> None:
        self.closed = True
        while self._credit_waiters:
            waiter = self._credit_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ServiceError(reason))

    async def _take_credit(self) -> None:
        if self.credit > 0 and not self._credit_waiters:
            self.credit -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._credit_waiters.append(waiter)
        await waiter

    def _wake(self) -> None:
        # First come, first served: bundles are pushed in the order the node handed them over.
        while self._credit_waiters and (self.credit > 0 or not self.passive):
            waiter = self._credit_waiters.popleft()
            if waiter.done():  # its delivery was cancelled meanwhile
                continue
            if self.passive:
                self.credit -= 1
            waiter.set_result(None)


class Connection:
    """One application's connection: its requests, registrations and unanswered pushes."""

    def __init__(
        self,
        service: ApiService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        authenticated: bool,
    ) -> None:
        self.service = service
        self.node = service.node
        self.reader = reader
        self.writer = writer
        self.authenticated = authenticated
        self.decoder = FrameDecoder(service.max_frame)
        self.registrations: dict[str, Registration] = {}
        #: delivery number -> (the application's answer: True for ack, endpoint)
        self.unacked: dict[int, tuple[asyncio.Future[bool], str]] = {}
        self.closing = False
        self.closed = asyncio.Event()
        self._hangup = False
        self._next_delivery = 1
        self._write_lock = asyncio.Lock()
        self._reason = "the application disconnected"

    # -- life ----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._read_requests()
        except (OSError, EOFError) as exc:
            self._reason = f"the application's connection broke: {exc}"
        finally:
            self.shutdown(self._reason)
            await self._finish()

    async def _read_requests(self) -> None:
        while not self.closing:
            data = await self.reader.read(_READ_SIZE)
            if not data:
                return
            self.decoder.feed(data)
            try:
                for request in self.decoder:
                    await self._handle(request)
                    if self._hangup or self.closing:
                        return
            except RemoteProtocolError as exc:
                log.warning("API connection closed: %s", exc)
                self._reason = f"the application broke the protocol: {exc}"
                code = "too_large" if isinstance(exc, FrameTooLarge) else "bad_request"
                await self._write_quietly({"push": "closing", "error": str(exc), "code": code})
                return

    def shutdown(self, reason: str, *, abort: bool = False) -> None:
        """Stop everything at once: registrations end (their bundles wait in the node),
        unanswered pushes fail, so that no delivery handler is left waiting."""
        if self.closing:
            return
        self.closing = True
        for endpoint, registration in self.registrations.items():
            registration.close(reason)
            if self.service.owners.get(endpoint) is self:
                self.node.unregister(endpoint)
        self._fail_unacked(reason)
        if abort:
            self.writer.transport.abort()

    async def _finish(self) -> None:
        # The endpoints stay ours until their handlers have failed: a new owner registering
        # before the node hears of those failures would find its endpoint paused by them.
        try:
            waits = [r.idle.wait() for r in self.registrations.values()]
            await asyncio.wait_for(asyncio.gather(*waits), _DRAIN_TIMEOUT)
        except TimeoutError:
            log.error("deliveries on a closed API connection did not end")
        for endpoint in self.registrations:
            if self.service.owners.get(endpoint) is self:
                del self.service.owners[endpoint]
        self.registrations.clear()
        self.closed.set()
        self.writer.close()
        with contextlib.suppress(OSError, RuntimeError):
            await self.writer.wait_closed()

    def _fail_unacked(self, reason: str, endpoint: str | None = None) -> None:
        for answer, target in list(self.unacked.values()):
            if not answer.done() and endpoint in (None, target):
                answer.set_exception(ServiceError(reason))

    # -- writing -------------------------------------------------------------------------

    async def push(self, endpoint: str, delivery: Delivery) -> bool:
        """Push ``delivery`` and wait for the application's answer (True: acknowledged)."""
        number = self._next_delivery
        self._next_delivery += 1
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.unacked[number] = (answer, endpoint)
        message = {
            "push": "bundle",
            "delivery": number,
            "endpoint": endpoint,
            "bundle_id": delivery.bundle_id,
            "source": delivery.source,
            "destination": delivery.destination,
            "payload": delivery.payload,
            "admin": delivery.is_admin_record,
        }
        try:
            await self._write(encode_frame(message))
            return await answer
        finally:
            del self.unacked[number]

    async def _write(self, frame: bytes) -> None:
        async with self._write_lock:
            if self.writer.is_closing():
                raise ServiceError(self._reason)
            try:
                self.writer.write(frame)
                await self.writer.drain()
            except OSError as exc:
                raise ServiceError(f"the application's connection broke: {exc}") from None

    async def _write_quietly(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ServiceError):
            await self._write(encode_frame(message))

    # -- requests ------------------------------------------------------------------------

    async def _handle(self, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        op = request.get("op")
        try:
            if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 0:
                request_id = None
                raise ApiError("field 'id' must be an unsigned integer", "bad_request")
            if not self.authenticated and op != "hello":
                raise ApiError("the first request must be a hello with the token", "unauthorized")
            if not isinstance(op, str) or op not in _OPS:
                raise ApiError(f"unknown op {op!r}", "bad_request")
            if op in _LISTS:
                result: dict[str, Any] = {"items": await getattr(self.service.inventory, op)()}
            else:
                result = await getattr(self, f"_op_{op}")(request)
            frame = encode_frame({"id": request_id, "ok": True, **result})
        except ApiError as exc:
            frame = encode_frame(error_answer(request_id, exc.code, str(exc)))
        except ConfigError as exc:
            frame = encode_frame(error_answer(request_id, "bad_request", str(exc)))
        except ServiceError as exc:
            frame = encode_frame(error_answer(request_id, "refused", str(exc)))
        except Exception as exc:  # a bug must cost one request, never the server
            log.exception("API request %r failed", op)
            message = f"internal error in {op!r}: {type(exc).__name__}; see the node's log"
            frame = encode_frame(error_answer(request_id, "internal", message))
        if not self.authenticated:
            self._hangup = True  # the first request must be a hello that succeeds
        with contextlib.suppress(ServiceError):
            await self._write(frame)

    # -- operations (each returns the fields of its answer) ------------------------------

    async def _op_hello(self, request: dict[str, Any]) -> dict[str, Any]:
        api = field(request, "api", int, API_VERSION)
        token = field(request, "token", str, None)
        if not self.authenticated:
            expected = self.service.token
            if (
                expected is None
                or token is None
                or not hmac.compare_digest(token.encode(), expected.encode())
            ):
                raise ApiError("wrong or missing API token", "unauthorized")
            self.authenticated = True
        if api != API_VERSION:
            raise ApiError(
                f"API version {api} is not spoken here (only {API_VERSION})", "bad_request"
            )
        return {
            "node_id": self.node.config.node_id,
            "api": API_VERSION,
            "version": __version__,
            "max_payload": self.service.max_payload,
        }

    async def _op_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"node_id": self.node.config.node_id, "now_ms": self.node.clock()}

    async def _op_register(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.service.local_endpoint(field(request, "endpoint", str), "endpoint")
        mode = field(request, "mode", str, "active")
        if mode not in ("active", "passive"):
            raise ApiError("field 'mode' must be 'active' or 'passive'", "bad_request")
        owners = self.service.owners
        while (owner := owners.get(endpoint)) not in (None, self):
            assert owner is not None
            if not owner.closing:
                raise ApiError(f"{endpoint} is registered by another application", "conflict")
            await owner.closed.wait()  # a dying owner gives it up in a moment
        if self.closing:
            raise ServiceError(self._reason)
        registration = self.registrations.get(endpoint)
        if registration is None:
            registration = Registration(self, endpoint, passive=mode == "passive")
            self.registrations[endpoint] = registration
            owners[endpoint] = self
        else:
            registration.set_passive(mode == "passive")
        # Again for a known registration too: it restarts deliveries paused by a nack.
        self.node.register(endpoint, registration)
        return {"endpoint": endpoint}

    async def _op_unregister(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.service.resolve(field(request, "endpoint", str), "endpoint")
        forget = field(request, "forget", bool, False)
        registration = self._registration(endpoint)
        reason = f"{endpoint} was unregistered"
        registration.close(reason)
        self.node.unregister(endpoint, forget=forget)
        self._fail_unacked(reason, endpoint)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(registration.idle.wait(), _DRAIN_TIMEOUT)
        del self.registrations[endpoint]
        if self.service.owners.get(endpoint) is self:
            del self.service.owners[endpoint]
        return {"endpoint": endpoint}

    async def _op_receive(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.service.resolve(field(request, "endpoint", str), "endpoint")
        credit = field(request, "max", int)
        registration = self._registration(endpoint)
        registration.give(credit)
        return {"endpoint": endpoint, "credit": registration.credit}

    def _registration(self, endpoint: str) -> Registration:
        registration = self.registrations.get(endpoint)
        if registration is None:
            raise ApiError(f"{endpoint} is not registered on this connection", "not_found")
        return registration

    async def _op_ack(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer(request, True)

    async def _op_nack(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer(request, False)

    def _answer(self, request: dict[str, Any], accepted: bool) -> dict[str, Any]:
        number = field(request, "delivery", int)
        entry = self.unacked.get(number)
        if entry is None or entry[0].done():
            raise ApiError(f"no delivery {number} is waiting for an answer", "not_found")
        entry[0].set_result(accepted)
        return {"delivery": number}

    async def _op_send(self, request: dict[str, Any]) -> dict[str, Any]:
        service = self.service
        destination = service.resolve(field(request, "destination", str), "destination")
        payload = field(request, "payload", bytes)
        if len(payload) > service.max_payload:
            raise ApiError(
                f"payload of {len(payload)} bytes exceeds the limit of {service.max_payload}",
                "too_large",
            )
        source = field(request, "source", str, None)
        if source is None:
            # Replies need somewhere to go: this application's first endpoint, if it has one.
            source = next(iter(self.registrations), self.node.config.node_id)
        elif source != "dtn:none":
            source = service.resolve(source, "source")
        lifetime = field(request, "lifetime_ms", int, service.default_lifetime_ms)
        if lifetime == 0:
            raise ApiError("field 'lifetime_ms' must be positive", "bad_request")
        flags = BundleFlag.NONE
        for name in field(request, "reports", list, []):
            if not isinstance(name, str) or name not in REPORT_FLAGS:
                known = ", ".join(REPORT_FLAGS)
                raise ApiError(f"field 'reports': unknown report {name!r} ({known})", "bad_request")
            flags |= REPORT_FLAGS[name]
        report_to = field(request, "report_to", str, None)
        if report_to is not None:
            report_to = service.resolve(report_to, "report_to")
        hop_limit = field(request, "hop_limit", int, None)
        if field(request, "custody", bool, False) and not self.node.config.custody:
            # Custody transfer is the node's to give (BIBE to its neighbours), not a bundle's.
            raise ApiError(
                "custody transfer is off on this node ([engine] custody = true turns it on)",
                "bad_request",
            )
        bpsec = field(request, "bpsec", dict, {})
        choices = {}
        for role in ("sign", "encrypt"):
            choice = bpsec.get(role, True)
            if not isinstance(choice, str | bool):
                raise ApiError(f"field 'bpsec.{role}': a key name or a bool", "bad_request")
            choices[role] = choice
        unknown = set(bpsec) - {"sign", "encrypt"}
        if unknown:
            raise ApiError(f"field 'bpsec': unknown {', '.join(sorted(unknown))}", "bad_request")
        try:
            secure = self.node.security.protector(choices["sign"], choices["encrypt"])
        except ConfigError as exc:
            raise ApiError(str(exc), "bad_request") from None
        bundle_id = await self.node.send(
            source,
            destination,
            payload,
            lifetime=lifetime,
            flags=flags,
            report_to=report_to,
            hop_limit=hop_limit,
            secure=secure,
        )
        return {"bundle_id": bundle_id}

    async def _op_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        bundle_id = field(request, "bundle_id", str)
        if not await self.service.inventory.cancel(bundle_id):
            raise ApiError(f"no bundle {bundle_id} is stored here", "not_found")
        return {"bundle_id": bundle_id}

    async def _op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"status": await self.service.inventory.status()}

    async def _op_bundles(self, request: dict[str, Any]) -> dict[str, Any]:
        limit = field(request, "limit", int, None)
        return {"items": await self.service.inventory.bundles(limit)}

    async def _op_route_add(self, request: dict[str, Any]) -> dict[str, Any]:
        destination = field(request, "destination", str)
        await self.service.inventory.add_route(destination, field(request, "via", str))
        return {}

    async def _op_route_remove(self, request: dict[str, Any]) -> dict[str, Any]:
        destination = field(request, "destination", str)
        if not await self.service.inventory.remove_route(destination):
            raise ApiError(f"no route for {destination}", "not_found")
        return {}

    async def _op_contact_add(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.service.inventory.add_contact(field(request, "contact", dict))
        return {}

    async def _op_contact_remove(self, request: dict[str, Any]) -> dict[str, Any]:
        if not await self.service.inventory.remove_contact(field(request, "contact", dict)):
            raise ApiError("no such contact", "not_found")
        return {}

    async def _op_mule_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        # Starts a sync with ``path``, or follows the one numbered ``sync``; answers after
        # at most ``wait_ms`` with the report so far, so a client can show progress.
        daemon = getattr(self.service.inventory, "daemon", None)
        mule = getattr(daemon, "mule", None)
        if not isinstance(mule, MuleConvergenceLayer):
            raise ApiError(
                'this node has no mule convergence layer ([[cla]] type = "mule")', "bad_request"
            )
        wait_ms = field(request, "wait_ms", int, 1000)
        job_id = field(request, "sync", int, None)
        if job_id is None:
            try:
                job = mule.start_sync(
                    field(request, "path", str),
                    dry_run=field(request, "dry_run", bool, False),
                    any_destination=field(request, "any_destination", bool, None),
                    capacity=field(request, "capacity", int, None),
                )
            except MuleBusy as exc:
                raise ApiError(str(exc), "conflict") from None
        else:
            found = mule.job(job_id)
            if found is None:
                raise ApiError(f"no mule sync {job_id} is known", "not_found")
            job = found
        done = await job.wait(min(wait_ms, 60_000) / 1000)
        return {"sync": job.id, "done": done, "report": job.report.to_dict()}
