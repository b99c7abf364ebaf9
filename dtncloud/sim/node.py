"""A simulated node: the deployed bundle protocol agent and router, driven in virtual time.

:class:`SimNode` is a shell like ``dtnd``'s runtime, without I/O: it carries out the
agent's actions at once against a :class:`~dtncloud.store.memory.MemoryStoreCore`, hands
transmissions to the in-memory links (:mod:`dtncloud.sim.links`) and wakes the agent with a
scheduler event when :meth:`~dtncloud.engine.agent.BundleProtocolAgent.get_timer` says,
re-armed after every input. Every store write is answered at once (the store is in memory),
so a node is never in the middle of storing anything between two events.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine.agent import STATE_KEYS, BundleProtocolAgent
from dtncloud.engine.config import EngineConfig
from dtncloud.engine.listener import EngineListener, Listeners
from dtncloud.engine.transmit import cut_stored, reassemble_stored
from dtncloud.errors import DtnError, StoreError, StoreFull
from dtncloud.routing.base import Router, default_registry
from dtncloud.sim.links import Transfer
from dtncloud.sim.stats import reason_name
from dtncloud.store.base import StoreUsage
from dtncloud.store.memory import MemoryStoreCore

if TYPE_CHECKING:
    from dtncloud.sim.links import Link, Network
    from dtncloud.sim.scheduler import Scheduler
    from dtncloud.sim.stats import NodeListener, SimStats

__all__ = ["SimNode", "app_endpoint"]

#: The name the simulated application's endpoint has on every ``dtn://`` node.
APP_DEMUX = "sim"
#: ... and its service number on ``ipn:`` nodes.
APP_SERVICE = 1


def app_endpoint(node_id: str) -> str:
    """The endpoint of the application that sends and takes a node's messages:
    ``dtn://x/`` -> ``dtn://x/sim``, ``ipn:7.0`` -> ``ipn:7.1``."""
    if node_id.startswith("ipn:"):
        return f"{node_id[:-2]}.{APP_SERVICE}"
    return f"{node_id}{APP_DEMUX}"


class SimNode:
    """One node of a :class:`~dtncloud.sim.world.Simulation`.

    ``agent`` and ``router`` are the live engine objects (replaced when the node comes back
    after :meth:`stop`: a restart from its store); ``store`` survives restarts.
    """

    def __init__(
        self,
        node_id: str,
        *,
        scheduler: Scheduler,
        network: Network,
        stats: SimStats,
        seed: int,
        router: str = "epidemic",
        router_params: Mapping[str, Any] | None = None,
        buffer_bytes: int | None = None,
        engine: Mapping[str, Any] | None = None,
        listener: EngineListener | None = None,
    ) -> None:
        self.config = EngineConfig(node_id, **dict(engine or {}))
        self.node_id = node_id
        self.endpoint = app_endpoint(node_id)
        self.router_name = router
        self.router_params = dict(router_params or {})
        default_registry.create(router, node_id=node_id, params=self.router_params)  # checks
        self.scheduler = scheduler
        self.network = network
        self.stats = stats
        self.seed = seed
        self.store = MemoryStoreCore(quota_bytes=buffer_bytes)
        self._stats_listener: NodeListener = stats.listener(node_id)
        self._extra_listener = listener
        #: links up now, by link ID
        self.links: dict[str, Link] = {}
        self.up = False
        #: grows each time the node stops: events meant for an earlier run are ignored
        self.incarnation = 0
        self._timer_at: int | None = None
        self.router: Router
        self.agent: BundleProtocolAgent
        self._executors: dict[type, Callable[[Any, int], inp.Input | None]] = {
            act.Persist: self._persist,
            act.UpdateMeta: self._update,
            act.Remove: self._remove,
            act.SaveState: self._save_state,
            act.Acknowledge: self._acknowledge,
            act.Transmit: self._transmit,
            act.Deliver: self._deliver,
            act.Reassemble: self._reassemble,
            act.Refragment: self._refragment,
            act.SubmissionAccepted: self._accepted,
            act.SubmissionRefused: self._refused,
        }

    def __repr__(self) -> str:
        return f"SimNode({self.node_id!r}, router={self.router_name!r}, up={self.up})"

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the node: a new router and agent, the index rebuilt from the
        store as ``dtnd`` does, the application registered."""
        now = self.scheduler.now
        rng_key = f"{self.seed}/{self.node_id}/{self.incarnation}"
        self.router = default_registry.create(
            self.router_name,
            node_id=self.node_id,
            rng=random.Random(rng_key + "/router"),
            params=self.router_params,
        )
        listener: EngineListener = self._stats_listener
        if self._extra_listener is not None:
            listener = Listeners([self._stats_listener, self._extra_listener])
        self.agent = BundleProtocolAgent(
            self.config, self.router, listener=listener, rng=random.Random(rng_key + "/agent")
        )
        self.up = True
        store = self.store
        state = {k: v for k in STATE_KEYS if (v := store.get_state(k)) is not None}
        self.agent.restore(store.scan(), state, now)
        self._run()
        self.handle(inp.ApplicationRegistered(self.endpoint))

    def stop(self) -> None:
        """The node stops (its links must be down already): it takes no more events until
        :meth:`start`; what it stored stays."""
        self.up = False
        self.incarnation += 1
        self._timer_at = None

    # -- inputs ---------------------------------------------------------------------------------

    def handle(self, event: inp.Input) -> None:
        """Give the agent one input and carry out every action that follows."""
        self.agent.handle(event, self.scheduler.now)
        self._run()

    def answer(self, event: inp.Input) -> None:
        """An answer from a link (ignored while the node is down)."""
        if self.up:
            self.agent.handle(event, self.scheduler.now)
            self._run()

    def answer_later(self, item: tuple[int, inp.Input]) -> None:
        """An answer scheduled as an event, for the run of the node it was meant for."""
        incarnation, event = item
        if incarnation == self.incarnation:
            self.answer(event)

    def submit(self, message_id: str, destination: str, size: int, lifetime_ms: int) -> None:
        """The application sends ``size`` bytes to the node ``destination``'s application."""
        if not self.up:
            self.stats.message_refused(message_id, self.node_id, "node_down")
            return
        self._stats_listener.refusal = None
        self.handle(
            inp.ApplicationSubmitted(
                self.endpoint,
                app_endpoint(destination),
                bytes(size),
                lifetime=lifetime_ms,
                submission=message_id,
            )
        )

    def link_up(self, link: Link) -> None:
        self.links[link.link_id] = link
        peer = link.peer_of(self)
        self.handle(
            inp.LinkUp(
                link.link_id,
                peer_node=peer.node_id,
                cla="sim",
                max_bundle_size=link.model.max_bundle_size,
            )
        )

    def link_down(self, link: Link, reason: str) -> None:
        self.links.pop(link.link_id, None)
        self.handle(inp.LinkDown(link.link_id, reason))

    def receive(self, transfer: Transfer) -> None:
        """The bundles of ``transfer`` arrived; ``transfer.accepted`` says whether they were
        all stored."""
        self._stats_listener.arrival_hops = transfer.hops
        link_id = transfer.action.link_id
        agent = self.agent
        for piece in transfer.pieces:
            agent.handle(inp.BundleReceived(piece, link_id, receipt=transfer), self.scheduler.now)
            self._run()

    # -- what other parts of the simulator read --------------------------------------------------

    def stored(self, bundle_id: str) -> bytes:
        """The stored encoding of ``bundle_id`` (raises BundleNotFound)."""
        return self.store.get(bundle_id)

    def usage(self) -> StoreUsage:
        return self.store.usage()

    # -- carrying actions out -------------------------------------------------------------------

    def _run(self, earliest: int | None = None) -> None:
        """Carry out the agent's actions in order, feeding each answer back, then re-arm
        the timer (not before ``earliest``, default now)."""
        agent = self.agent
        executors = self._executors
        now = self.scheduler.now
        while True:
            action = agent.next_action()
            if action is None:
                break
            answer = executors[type(action)](action, now)
            if answer is not None:
                agent.handle(answer, now)
        due = agent.get_timer()
        if due is None or (self._timer_at is not None and self._timer_at <= due):
            return
        self._timer_at = due
        when = max(due, now if earliest is None else earliest)
        self.scheduler.at(when, self._on_timer, (self.incarnation, due))

    def _on_timer(self, token: tuple[int, int]) -> None:
        incarnation, due = token
        if incarnation != self.incarnation or due != self._timer_at:
            return  # stale: the node restarted, or the timer was re-armed earlier
        self._timer_at = None
        now = self.scheduler.now
        self.agent.handle_timer(now)
        # anything still due now is looked at a millisecond later, never in a loop
        self._run(now + 1)

    def _persist(self, action: act.Persist, now: int) -> inp.Input:
        try:
            self.store.put(action.meta, action.data)
        except StoreFull as exc:
            return inp.PersistFailed(action.meta.bundle_id, full=True, message=str(exc))
        except StoreError as exc:
            return inp.PersistFailed(action.meta.bundle_id, full=False, message=str(exc))
        return inp.Persisted(action.meta.bundle_id)

    def _update(self, action: act.UpdateMeta, now: int) -> None:
        self.store.update(action.meta)

    def _remove(self, action: act.Remove, now: int) -> None:
        self.store.delete(action.bundle_id)

    def _save_state(self, action: act.SaveState, now: int) -> None:
        self.store.set_state(action.key, action.value)

    def _acknowledge(self, action: act.Acknowledge, now: int) -> None:
        transfer = action.receipt
        if isinstance(transfer, Transfer) and transfer.accepted is not False:
            transfer.accepted = action.accepted  # a transfer of pieces: all must be taken

    def _transmit(self, action: act.Transmit, now: int) -> inp.Input | None:
        return self.network.send(self, action)

    def _deliver(self, action: act.Deliver, now: int) -> inp.Input:
        return inp.Delivered(action.bundle_id, action.endpoint)

    def _reassemble(self, action: act.Reassemble, now: int) -> inp.Input:
        try:
            data = reassemble_stored(self.store.get(i) for i in action.fragment_ids)
        except DtnError as exc:
            return inp.Reassembled(action.bundle_id, None, str(exc))
        return inp.Reassembled(action.bundle_id, data)

    def _refragment(self, action: act.Refragment, now: int) -> inp.Input:
        try:
            pieces = cut_stored(
                self.store.get(action.bundle_id),
                payload_offset=action.payload_offset,
                first_size=action.first_size,
            )
        except DtnError:
            pieces = ()
        return inp.Refragmented(action.bundle_id, pieces)

    def _accepted(self, action: act.SubmissionAccepted, now: int) -> None:
        self.stats.message_stored(str(action.submission), action.bundle_id, self.node_id)

    def _refused(self, action: act.SubmissionRefused, now: int) -> None:
        refusal = self._stats_listener.refusal
        reason = "refused" if refusal is None else reason_name(refusal)
        self.stats.message_refused(str(action.submission), self.node_id, reason)
