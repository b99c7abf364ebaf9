"""A simulated node: the deployed bundle protocol agent and router, driven in virtual time.

:class:`SimNode` is a shell like ``dtnd``'s runtime, without I/O: it carries out the
agent's actions at once against a :class:`~dtncloud.store.memory.MemoryStoreCore`, hands
transmissions to the in-memory links (:mod:`dtncloud.sim.links`) and wakes the agent with a
scheduler event when :meth:`~dtncloud.engine.agent.BundleProtocolAgent.get_timer` says,
re-armed after every input. Every store write is answered at once (the store is in memory),
so a node is never in the middle of storing anything between two events.

A node's buffer is the store's quota. What happens to a bundle that does not fit is the
node's *buffer policy* (:data:`BUFFER_POLICIES`): ``"refuse"`` it, as ``dtnd`` does, or
``"drop-oldest"``: make room by evicting the bundles received longest ago that are not being
sent, as the ONE simulator does (see :meth:`SimNode._make_room`).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine.agent import STATE_KEYS, BundleProtocolAgent
from dtncloud.engine.config import EngineConfig
from dtncloud.engine.listener import EngineListener, Listeners
from dtncloud.engine.transmit import cut_stored, reassemble_stored
from dtncloud.errors import BundleNotFound, ConfigError, DtnError, StoreError, StoreFull
from dtncloud.routing.base import Router, default_registry
from dtncloud.sim.links import Transfer
from dtncloud.sim.stats import reason_name
from dtncloud.store.base import StoreUsage
from dtncloud.store.memory import MemoryStoreCore

if TYPE_CHECKING:
    from dtncloud.sim.links import Link, Network
    from dtncloud.sim.scheduler import Scheduler
    from dtncloud.sim.stats import NodeListener, SimStats

__all__ = ["BUFFER_POLICIES", "SimNode", "app_endpoint"]

#: What a node does with a bundle its full buffer cannot take: refuse it (``dtnd``'s way, the
#: default), or drop the oldest bundles not being sent to make room (the ONE simulator's way).
BUFFER_POLICIES = ("refuse", "drop-oldest")

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
        buffer_policy: str = "refuse",
        engine: Mapping[str, Any] | None = None,
        listener: EngineListener | None = None,
    ) -> None:
        if buffer_policy not in BUFFER_POLICIES:
            known = ", ".join(BUFFER_POLICIES)
            raise ConfigError(f"buffer_policy must be one of {known}, not {buffer_policy!r}")
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
        self.buffer_policy = buffer_policy
        #: drop-oldest: (received_at, bundle ID) of what was stored, oldest first; entries of
        #: bundles gone since are skipped when met (see _victims)
        self._arrivals: list[tuple[int, str]] = []
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
        self._stats_listener.arrival_from = transfer.sender.node_id
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
        meta = action.meta
        dropping = self.buffer_policy == "drop-oldest"
        if dropping:
            self._make_room(meta.size, now)
        try:
            self.store.put(meta, action.data)
        except StoreFull as exc:
            return inp.PersistFailed(meta.bundle_id, full=True, message=str(exc))
        except StoreError as exc:
            return inp.PersistFailed(meta.bundle_id, full=False, message=str(exc))
        if dropping:
            self._note_arrival(meta.received_at, meta.bundle_id)
        return inp.Persisted(meta.bundle_id)

    def _update(self, action: act.UpdateMeta, now: int) -> None:
        try:
            self.store.update(action.meta)
        except BundleNotFound:
            # evicted to make room after this update was queued: the agent has let it go
            if self.buffer_policy != "drop-oldest":
                raise

    # -- drop-oldest ------------------------------------------------------------------------

    def _make_room(self, size: int, now: int) -> None:
        """Evict the oldest bundles (by the time they were received) that are not being sent
        until ``size`` more bytes fit, as the ONE simulator's ``makeRoomForMessage`` does,
        but only if that makes enough room: a bundle larger than the whole buffer, or one for
        which even evicting every bundle not being sent would not do, is refused with
        everything kept.

        Each eviction goes through the agent (:class:`~dtncloud.engine.inputs.BundleEvicted`:
        deleted as "depleted storage", counted as a drop, a deletion report if asked for),
        and the bundle leaves the store at once, so that the Persist being carried out finds
        the room; the Remove the agent queued for it then finds nothing to do."""
        quota = self.store.quota_bytes
        if quota is None or size > quota:
            return
        needed = self.store.usage().bytes + size - quota
        if needed <= 0:
            return
        for bundle_id in self._victims(needed):
            self.agent.handle(inp.BundleEvicted(bundle_id), now)
            self.store.delete(bundle_id)

    def _victims(self, needed: int) -> list[str]:
        """The oldest bundles not being sent whose sizes add up to ``needed`` bytes, or none
        if they cannot. Their entries leave the queue of arrivals; the others stay."""
        sending = self._sending()
        arrivals = self._arrivals
        agent = self.agent
        chosen: list[str] = []
        passed: list[tuple[int, str]] = []
        freed = 0
        while arrivals and freed < needed:
            entry = heapq.heappop(arrivals)
            received_at, bundle_id = entry
            meta = agent.bundle(bundle_id)
            if meta is None or meta.received_at != received_at:
                continue  # let go since (or stored again later, with an entry of its own)
            passed.append(entry)
            if bundle_id not in sending:
                chosen.append(bundle_id)
                freed += meta.size
        if freed < needed:
            chosen = []
        keep = set(chosen)
        for entry in passed:
            if entry[1] not in keep:
                heapq.heappush(arrivals, entry)
        return chosen

    def _sending(self) -> set[str]:
        """The bundles this node is sending now: transfers started on its links and not yet
        answered (evicting one would pull the bundle from under the transfer)."""
        found: set[str] = set()
        for link in self.links.values():
            found.update(link.sending(self))
        return found

    def _note_arrival(self, received_at: int, bundle_id: str) -> None:
        arrivals = self._arrivals
        heapq.heappush(arrivals, (received_at, bundle_id))
        if len(arrivals) > 2 * self.store.usage().bundles + 1024:
            # most entries are of bundles let go since: rebuilt from the store, the queue
            # stays in proportion to what the node holds
            self._arrivals = [(m.received_at, m.bundle_id) for m in self.store.scan()]
            heapq.heapify(self._arrivals)

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
