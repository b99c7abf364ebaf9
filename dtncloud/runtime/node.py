"""A node in asyncio: the bundle protocol agent driven by the wall clock, a store and links.

:class:`Node` is the asyncio shell of ARCHITECTURE.md. It owns one
:class:`~dtncloud.engine.BundleProtocolAgent` and carries out the actions it emits:

- store actions (persist, update, remove, save state) run as tasks created in the order the
  agent emitted them, so a store that queues its writes (``SqliteStore`` commits them in
  groups) applies them in that order, while many puts share one commit;
- transmissions load the bundle, :func:`~dtncloud.engine.transmit.render` it for the link
  and send the pieces in turn; links pipeline concurrent sends;
- deliveries hand the payload to the application's handler;
- a received bundle's ``bundle_received`` call returns only when the agent acknowledges it,
  which it does after the store has the bundle, so the convergence layer acknowledges the
  sender only then (rule 4).

The node is also the :class:`~dtncloud.cla.base.LinkEvents` of every convergence layer it is
given. What applications see of it (:meth:`send`, :meth:`register`) is deliberately small;
the daemon's application API builds on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dtncloud.bpsec.node_policy import BundleSecurity
from dtncloud.bpv6.codec import decode_bundle as decode_bundle_v6
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.decode import decode_bundle
from dtncloud.bpv7.flags import BundleFlag, StatusReportReason
from dtncloud.bpv7.reactive import acknowledged_payload
from dtncloud.cla.base import ConvergenceLayer, Link, ReceivedBundle
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.engine import BundleProtocolAgent, EngineConfig, EngineListener, actions, inputs
from dtncloud.engine.agent import STATE_KEYS
from dtncloud.engine.transmit import cut_stored, reassemble_stored, render
from dtncloud.engine.v6 import V6_MARKER
from dtncloud.errors import (
    BundleNotFound,
    CodecError,
    DtnError,
    LinkDown,
    SecurityError,
    ServiceError,
    StoreError,
    StoreFull,
    TransferRefused,
)
from dtncloud.routing.base import Router
from dtncloud.store.base import BundleMeta, Store
from dtncloud.store.memory import MemoryStore, MemoryStoreCore

__all__ = ["Delivery", "Node"]

log = logging.getLogger("dtncloud.node")

#: TCPCL XFER_REFUSE "no resources": the store is full, try later or elsewhere.
_NO_RESOURCES = 2
#: TCPCL XFER_REFUSE "completed": the receiver already has the bundle.
_COMPLETED = 1


def wall_clock_ms() -> int:
    """Now, in DTN milliseconds."""
    return dtn_time_from_unix(time.time())


@dataclass(frozen=True, slots=True)
class Delivery:
    """A bundle handed to an application."""

    bundle_id: str
    source: str
    destination: str
    payload: bytes
    is_admin_record: bool = False


Handler = Callable[[Delivery], Awaitable[None]]


def delivery_of(bundle_id: str, data: bytes, security: BundleSecurity | None = None) -> Delivery:
    """What an application is given of a stored bundle (BPv7 or BPv6), after the node's
    BPSec checks (which raise :class:`~dtncloud.errors.SecurityError`)."""
    if data[:1] == bytes([V6_MARKER]):
        legacy = decode_bundle_v6(data, max_size=max(len(data), 1))
        return Delivery(
            bundle_id, legacy.source, legacy.destination, legacy.payload, legacy.is_admin_record
        )
    bundle = decode_bundle(data, max_size=max(len(data), 1))
    if security is not None and security.checks_deliveries:
        bundle = security.accept_delivery(bundle)
    primary = bundle.primary
    return Delivery(
        bundle_id,
        str(primary.source),
        str(primary.destination),
        bundle.payload,
        primary.is_admin_record,
    )


class Node:
    """One DTN node: agent, store, convergence layers and local applications.

    ``clock`` returns DTN milliseconds (the wall clock by default); tests may pass their own.
    Use as ``async with Node(...) as node`` or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: EngineConfig,
        store: Store,
        router: Router,
        *,
        listener: EngineListener | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        rng: random.Random | None = None,
        security: BundleSecurity | None = None,
    ) -> None:
        self.config = config
        #: BPSec policy: checks on bundles delivered here, defaults for bundles sent
        self.security = security or BundleSecurity()
        self.store = store
        self.clock = clock
        self.agent = BundleProtocolAgent(config, router, listener=listener, rng=rng)
        self._clas: list[ConvergenceLayer] = []
        self._links: dict[str, Link] = {}
        self._link_ids: dict[int, str] = {}
        self._next_link = 1
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._next_waiter = 1
        self._handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._last_write: asyncio.Task[None] | None = None
        self._memory = store.core if isinstance(store, MemoryStore) else None
        self._timer_at: int | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    def add_cla(self, factory: Callable[[Node], ConvergenceLayer]) -> ConvergenceLayer:
        """Add a convergence layer made by ``factory(node)`` (the node is its LinkEvents)."""
        cla = factory(self)
        self._clas.append(cla)
        return cla

    async def start(self) -> None:
        """Open the store, rebuild the agent's index from it, then start every CLA."""
        await self.store.open()
        state = {}
        for key in STATE_KEYS:
            value = await self.store.get_state(key)
            if value is not None:
                state[key] = value
        metas = [meta async for meta in self.store.scan()]
        self.agent.restore(metas, state, self.clock())
        self._started = True
        self._pump()
        try:
            for cla in self._clas:
                await cla.start()
        except BaseException:
            await self.stop()  # a CLA could not start (a port in use): close the store again
            raise
        log.info("node %s started with %d stored bundles", self.config.node_id, len(metas))

    async def stop(self) -> None:
        """Stop the CLAs, let store writes finish, close the store."""
        self._started = False  # no timer is armed from here on
        for cla in self._clas:
            await cla.stop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None
        await self.idle()
        await self.store.close()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- applications --------------------------------------------------------------------

    async def send(
        self,
        source: str,
        destination: str,
        payload: bytes,
        *,
        lifetime: int = 86_400_000,
        flags: BundleFlag = BundleFlag.NONE,
        report_to: str | None = None,
        hop_limit: int | None = None,
        secure: Callable[[Bundle], Bundle] | None = None,
    ) -> str:
        """Send ``payload`` from a local endpoint; returns the bundle ID once it is stored.
        ``secure`` is applied to the new bundle before it is encoded (see
        :meth:`BundleSecurity.protector <dtncloud.bpsec.node_policy.BundleSecurity.protector>`).
        Raises :class:`~dtncloud.errors.ServiceError` if the node refuses it."""
        token, future = self._waiter()
        self._feed(
            inputs.ApplicationSubmitted(
                source,
                destination,
                payload,
                lifetime,
                flags,
                report_to,
                hop_limit,
                submission=token,
                secure=secure,
            )
        )
        result: str = await future
        return result

    def register(self, endpoint: str, handler: Handler) -> None:
        """Deliver bundles for ``endpoint`` to ``handler`` from now on (including those that
        waited for it). When the handler raises, the bundle stays and deliveries to the
        endpoint pause; they start again ``retry_ms`` later (or at the next ``register``)."""
        self._handlers[endpoint] = handler
        self._feed(inputs.ApplicationRegistered(endpoint))

    def _reactivate(self, endpoint: str, handler: Handler) -> None:
        """Deliveries to an application whose handler failed start again, if it is still
        the one registered."""
        if self._started and self._handlers.get(endpoint) is handler:
            self._feed(inputs.ApplicationRegistered(endpoint))

    def unregister(self, endpoint: str, *, forget: bool = False) -> None:
        """Stop delivering to ``endpoint``; its bundles wait unless ``forget``."""
        self._handlers.pop(endpoint, None)
        self._feed(inputs.ApplicationDeregistered(endpoint, forget))

    async def cancel(self, bundle_id: str) -> bool:
        """Withdraw a bundle the node holds (one an application sent and that has not left
        yet, typically); whether the node held it. Returns once its removal is stored."""
        if self.agent.bundle(bundle_id) is None:
            return False
        self._feed(inputs.ApplicationCancelled(bundle_id))
        removal = self._last_write  # writes run in order: this one is the removal, or later
        if removal is not None:
            await asyncio.gather(removal, return_exceptions=True)
        return True

    def routes_changed(self) -> None:
        """Tell the agent the router's routes or contacts changed: waiting bundles are
        routed again."""
        self._feed(inputs.RoutesChanged())

    # -- links ---------------------------------------------------------------------------

    async def connect(self, cla: ConvergenceLayer, address: str) -> Link:
        """Open a link with ``cla``; it is announced to the agent by the CLA's ``link_up``."""
        return await cla.connect(address)

    def link_up(self, link: Link) -> None:
        link_id = self._link_ids.get(id(link))
        if link_id is None:
            link_id = f"{link.cla_name}-{self._next_link}"
            self._next_link += 1
            self._link_ids[id(link)] = link_id
            self._links[link_id] = link
        self._feed(inputs.LinkUp(link_id, link.peer_node_id, link.cla_name, link.max_bundle_size))

    def link_down(self, link: Link, reason: str) -> None:
        link_id = self._link_ids.pop(id(link), None)
        if link_id is None:
            return
        self._links.pop(link_id, None)
        self._feed(inputs.LinkDown(link_id, reason))

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        data = await asyncio.to_thread(bundle.read) if bundle.path is not None else bundle.read()
        token, future = self._waiter()
        self._feed(
            inputs.BundleReceived(
                data, self._link_ids.get(id(bundle.link)), token, partial=bundle.partial
            )
        )
        accepted, reason = await future
        if not accepted and reason == StatusReportReason.DEPLETED_STORAGE:
            raise TransferRefused("the node's store is full", reason=_NO_RESOURCES)

    async def receive(self, data: bytes, link_id: str | None = None) -> tuple[bool, int]:
        """Take an encoded bundle that came another way (a data mule, a file). Returns
        (accepted, reason) once the agent has decided, which for an accepted bundle is after
        it is stored."""
        token, future = self._waiter()
        self._feed(inputs.BundleReceived(data, link_id, token))
        result: tuple[bool, int] = await future
        return result

    # -- driving the agent ---------------------------------------------------------------

    def _waiter(self) -> tuple[int, asyncio.Future[Any]]:
        token = self._next_waiter
        self._next_waiter += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[token] = future
        return token, future

    def _resolve(
        self, token: object, value: Any = None, error: BaseException | None = None
    ) -> None:
        future = self._waiters.pop(token, None) if isinstance(token, int) else None
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def _feed(self, event: inputs.Input) -> None:
        try:
            self.agent.handle(event, self.clock())
        finally:  # what the agent queued before any failure still gets done
            self._pump()

    def _pump(self) -> None:
        agent = self.agent
        while (action := agent.next_action()) is not None:
            self._execute(action)
        self._arm_timer()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task failed", exc_info=task.exception())

    def _write(self, work: Awaitable[None]) -> None:
        """Store writes start in the agent's order; the last one is remembered so that a
        transmission can wait for every write before it (custody books and transmission ID
        reservations must be stored before a BPDU leaves)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._last_write = task

    def _execute(self, action: actions.Action) -> None:
        if self._memory is not None and self._execute_in_memory(self._memory, action):
            return
        if isinstance(action, actions.Persist):
            self._write(self._persist(action))
        elif isinstance(action, actions.UpdateMeta):
            self._write(self._store_op("update", self.store.update(action.meta)))
        elif isinstance(action, actions.Remove):
            self._write(self._store_op("delete", self.store.delete(action.bundle_id)))
        elif isinstance(action, actions.SaveState):
            self._write(self._store_op("state", self.store.set_state(action.key, action.value)))
        elif isinstance(action, actions.Acknowledge):
            self._resolve(action.receipt, (action.accepted, action.reason))
        elif isinstance(action, actions.Transmit):
            self._spawn(self._transmit(action, self._last_write))
        elif isinstance(action, actions.Deliver):
            self._spawn(self._deliver(action))
        elif isinstance(action, actions.Reassemble):
            self._spawn(self._reassemble(action))
        elif isinstance(action, actions.Refragment):
            self._spawn(self._refragment(action))
        elif isinstance(action, actions.SubmissionAccepted):
            self._resolve(action.submission, action.bundle_id)
        elif isinstance(action, actions.SubmissionRefused):
            self._resolve(action.submission, error=ServiceError(action.reason))

    def _arm_timer(self) -> None:
        due = self.agent.get_timer()
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is None or not self._started:
            return
        delay = max(0.0, (due - self.clock()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.clock()
        self.agent.handle_timer(now)
        self._pump()

    # -- actions -------------------------------------------------------------------------

    def _execute_in_memory(self, core: MemoryStoreCore, action: actions.Action) -> bool:
        """A MemoryStore's synchronous core answers store actions at once, without a task
        per action (the loop turns they would cost are most of a node's time in memory)."""
        agent, now = self.agent, self.clock()
        if isinstance(action, actions.Persist):
            bundle_id = action.meta.bundle_id
            try:
                core.put(action.meta, action.data)
            except StoreFull as exc:
                agent.handle(inputs.PersistFailed(bundle_id, True, str(exc)), now)
            except StoreError as exc:
                agent.handle(inputs.PersistFailed(bundle_id, False, str(exc)), now)
            else:
                agent.handle(inputs.Persisted(bundle_id), now)
        elif isinstance(action, actions.UpdateMeta):
            with contextlib.suppress(BundleNotFound):
                core.update(action.meta)
        elif isinstance(action, actions.Remove):
            core.delete(action.bundle_id)
        elif isinstance(action, actions.SaveState):
            core.set_state(action.key, action.value)
        else:
            return False
        return True

    async def _persist(self, action: actions.Persist) -> None:
        bundle_id = action.meta.bundle_id
        try:
            await self.store.put(action.meta, action.data)
        except StoreFull as exc:
            self._feed(inputs.PersistFailed(bundle_id, True, str(exc)))
        except (StoreError, OSError) as exc:
            log.error("storing %s failed: %s", bundle_id, exc)
            self._feed(inputs.PersistFailed(bundle_id, False, str(exc)))
        else:
            self._feed(inputs.Persisted(bundle_id))

    async def _store_op(self, what: str, work: Awaitable[Any]) -> None:
        try:
            await work
        except BundleNotFound:
            pass  # already gone: deleting or updating it again changes nothing
        except (StoreError, OSError) as exc:
            log.error("store %s failed: %s", what, exc)

    async def _transmit(
        self, action: actions.Transmit, writes_before: asyncio.Task[None] | None
    ) -> None:
        if writes_before is not None and not writes_before.done():
            await asyncio.wait([writes_before])
        link = self._links.get(action.link_id)
        pieces: list[bytes] = []
        try:
            if link is None or not link.is_up:
                raise DtnError(f"link {action.link_id} is down")
            data = action.plan.inline
            if data is None:
                data = await self.store.get(action.bundle_id)
            pieces = render(data, action.plan, self.clock())
            for piece in pieces:
                await link.send(piece)
        except LinkDown as exc:
            # How much of the payload the peer holds, for reactive fragmentation: only a lone
            # plain bundle maps its acknowledged bytes to payload bytes.
            kept = 0
            if exc.acknowledged and len(pieces) == 1 and action.plan.bibe is None:
                kept = acknowledged_payload(pieces[0], exc.acknowledged)
            self._feed(
                inputs.TransmissionFailed(
                    action.link_id,
                    action.bundle_id,
                    action.transmission,
                    acknowledged=exc.acknowledged,
                    reason=str(exc),
                    payload_acknowledged=kept,
                )
            )
        except TransferRefused as exc:
            if exc.reason == _COMPLETED:  # the peer holds it already: as good as sent
                self._feed(
                    inputs.TransmissionSucceeded(
                        action.link_id, action.bundle_id, action.transmission
                    )
                )
                return
            self._feed(
                inputs.TransmissionFailed(
                    action.link_id,
                    action.bundle_id,
                    action.transmission,
                    refused=True,
                    reason=str(exc),
                )
            )
        except BaseException as exc:  # every transmission ends in an answer, whatever broke
            acknowledged = getattr(exc, "acknowledged", 0) or 0
            if not isinstance(exc, DtnError | OSError):
                log.error("transmission of %s failed", action.bundle_id, exc_info=exc)
            self._feed(
                inputs.TransmissionFailed(
                    action.link_id,
                    action.bundle_id,
                    action.transmission,
                    acknowledged=acknowledged,
                    reason=str(exc) or type(exc).__name__,
                )
            )
            if not isinstance(exc, Exception):
                raise
        else:
            self._feed(
                inputs.TransmissionSucceeded(action.link_id, action.bundle_id, action.transmission)
            )

    async def _deliver(self, action: actions.Deliver) -> None:
        handler = self._handlers.get(action.endpoint)
        try:
            if handler is None:
                raise ServiceError(f"no application on {action.endpoint}")
            data = await self.store.get(action.bundle_id)
            try:
                delivery = delivery_of(action.bundle_id, data, self.security)
            except SecurityError as exc:
                log.warning("bundle %s not delivered: %s", action.bundle_id, exc)
                self._feed(inputs.DeliveryRefused(action.bundle_id, action.endpoint, exc.reason))
                return
            await handler(delivery)
        except BaseException as exc:  # an application's failure must not stop the node
            log.warning("delivery of %s to %s failed: %s", action.bundle_id, action.endpoint, exc)
            self._feed(inputs.DeliveryFailed(action.bundle_id, action.endpoint))
            current = self._handlers.get(action.endpoint)
            if current is not None and current is not handler and self._started:
                # Another application registered while this one failed: the failure pauses
                # the endpoint in the agent, so start it again for the newcomer at once.
                self._reactivate(action.endpoint, current)
            elif handler is not None and self._started:
                asyncio.get_running_loop().call_later(
                    self.config.retry_ms / 1000, self._reactivate, action.endpoint, handler
                )
            if not isinstance(exc, Exception):
                raise  # cancelled: the agent knows, the task ends as asked
        else:
            self._feed(inputs.Delivered(action.bundle_id, action.endpoint))

    async def _refragment(self, action: actions.Refragment) -> None:
        try:
            data = await self.store.get(action.bundle_id)
            pieces = cut_stored(
                data, payload_offset=action.payload_offset, first_size=action.first_size
            )
        except (CodecError, StoreError) as exc:
            log.warning("cannot cut %s: %s", action.bundle_id, exc)
            self._feed(inputs.Refragmented(action.bundle_id, ()))
        else:
            self._feed(inputs.Refragmented(action.bundle_id, pieces))

    async def _reassemble(self, action: actions.Reassemble) -> None:
        try:
            parts = [await self.store.get(i) for i in action.fragment_ids]
            data = await asyncio.to_thread(reassemble_stored, parts)
        except (CodecError, StoreError) as exc:
            self._feed(inputs.Reassembled(action.bundle_id, None, str(exc)))
        else:
            self._feed(inputs.Reassembled(action.bundle_id, data))

    # -- for status displays and tests ---------------------------------------------------

    async def idle(self) -> None:
        """Wait until every store write, transmission and delivery under way has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def links(self) -> dict[str, Link]:
        return dict(self._links)

    def stored(self) -> list[BundleMeta]:
        return [m for i in self.agent.bundle_ids() if (m := self.agent.bundle(i)) is not None]
