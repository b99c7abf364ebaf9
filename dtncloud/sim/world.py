"""The simulation: nodes, contacts, messages and the clock, put together.

>>> sim = Simulation(seed=1)
>>> _ = sim.add_node("a", router="direct")
>>> _ = sim.add_node("b", router="direct")
>>> sim.contact(10_000, 20_000, "a", "b", rate_bytes_s=1000)
>>> sim.create_message(5_000, "a", "b", 500)
'M1'
>>> sim.run()
>>> report = sim.report()
>>> report["delivered"], report["latency_avg"] > 5
(1, True)

Times are virtual DTN milliseconds. Everything a run does follows from what was scheduled
and the seed: the same inputs give the same report, byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dtncloud.engine.listener import EngineListener
from dtncloud.errors import ConfigError
from dtncloud.routing.base import default_registry
from dtncloud.sim.links import LinkModel, Network
from dtncloud.sim.node import SimNode
from dtncloud.sim.scheduler import Scheduler
from dtncloud.sim.stats import SimStats
from dtncloud.sim.tcpcl_link import session_config

__all__ = ["Simulation", "node_id_of"]

#: How many events run between two calls of a run's progress callback.
PROGRESS_EVERY = 20_000


def node_id_of(name: str) -> str:
    """A node ID from what a scenario calls the node: ``dtn://x/`` and ``ipn:7.0`` as they
    are, a bare name ``x`` as ``dtn://x/``."""
    if name.startswith(("dtn://", "ipn:")):
        return name
    return f"dtn://{name}/"


class Simulation:
    """A discrete-event simulation of DTN nodes running the deployed engine and routers.

    ``seed`` drives every random choice (routers, agents, link loss);
    ``record_occupancy_every_ms`` how often every node's buffer occupancy is sampled (None:
    never).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        start_ms: int = 0,
        record_occupancy_every_ms: int | None = 60_000,
    ) -> None:
        if record_occupancy_every_ms is not None and record_occupancy_every_ms <= 0:
            raise ConfigError("record_occupancy_every_ms must be positive or None")
        self.seed = seed
        self.start_ms = start_ms
        self.rng = random.Random(seed)
        self.scheduler = Scheduler(start_ms)
        self.stats = SimStats(start_ms)
        self.network = Network(self.scheduler, self.stats, self.rng)
        #: node ID -> node, in the order added
        self.nodes: dict[str, SimNode] = {}
        self._sample_every = record_occupancy_every_ms
        self._next_sample = start_ms
        self._next_message = 1

    @property
    def now(self) -> int:
        """The virtual time, in DTN milliseconds."""
        return self.scheduler.now

    # -- building the scenario ------------------------------------------------------------------

    def add_node(
        self,
        node_id: str,
        *,
        router: str = "epidemic",
        router_params: Mapping[str, Any] | None = None,
        buffer_bytes: int | None = None,
        buffer_policy: str = "refuse",
        engine: Mapping[str, Any] | None = None,
        listener: EngineListener | None = None,
    ) -> SimNode:
        """Add a node, started now. ``node_id`` is ``dtn://x/``, ``ipn:N.0`` or a bare name
        ``x``; ``router`` a name from the router registry with its ``router_params``;
        ``buffer_bytes`` the store's quota (None: no limit) and ``buffer_policy`` what a full
        store does, ``"refuse"`` or ``"drop-oldest"`` (see :mod:`dtncloud.sim.node`);
        ``engine`` keyword settings of :class:`~dtncloud.engine.config.EngineConfig`;
        ``listener`` hears the node's agent besides the statistics."""
        node_id = node_id_of(node_id)
        if node_id in self.nodes:
            raise ConfigError(f"node {node_id} is already in the simulation")
        default_registry.get(router)  # an unknown name: one line listing the known ones
        if buffer_bytes is not None and buffer_bytes < 0:
            raise ConfigError(f"node {node_id}: buffer_bytes must be >= 0 or None")
        try:
            node = SimNode(
                node_id,
                scheduler=self.scheduler,
                network=self.network,
                stats=self.stats,
                seed=self.seed,
                router=router,
                router_params=router_params,
                buffer_bytes=buffer_bytes,
                buffer_policy=buffer_policy,
                engine=engine,
                listener=listener,
            )
        except (TypeError, ConfigError) as exc:  # an engine setting that does not exist, ...
            raise ConfigError(f"node {node_id}: {exc}") from None
        self.nodes[node_id] = node
        node.start()
        return node

    def node(self, name: str) -> SimNode:
        """The node called ``name`` (a node ID or a bare name)."""
        node = self.nodes.get(node_id_of(name))
        if node is None:
            raise ConfigError(f"no node {name!r} in the simulation")
        return node

    def link_up(
        self,
        at_ms: int,
        a: str,
        b: str,
        *,
        rate_bytes_s: float | None = None,
        delay_ms: int = 0,
        loss: float = 0.0,
        max_bundle_size: int | None = None,
        mode: str = "bundle",
        tcpcl: Mapping[str, Any] | None = None,
    ) -> None:
        """At ``at_ms``, ``a`` and ``b`` come into contact: a link comes up between them
        (both ways) with the given model, if both are up (else when they are).

        ``mode`` "bundle" (the default) gives each transfer a time from its size and the
        rate; "tcpcl" carries the contact by two TCPCLv4 sessions (``a`` active) exchanging
        bytes over the link, set up with ``tcpcl``: fields of
        :class:`~dtncloud.tcpcl.config.SessionConfig` such as ``segment_mru`` and
        ``keepalive_s`` (see :mod:`dtncloud.sim.tcpcl_link`)."""
        settings = tuple(sorted(dict(tcpcl or {}).items()))
        if settings and mode != "tcpcl":
            raise ConfigError(f"link {a} - {b}: tcpcl settings need mode 'tcpcl'")
        try:
            model = LinkModel(rate_bytes_s, delay_ms, loss, max_bundle_size, mode, settings)
            if mode == "tcpcl":
                session_config("", dict(settings))
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"link {a} - {b}: {exc}") from None
        na, nb = self._pair(a, b)
        self._check_time(at_ms)
        self.scheduler.call_at(at_ms, lambda: self.network.contact_up(na, nb, model))

    def link_down(self, at_ms: int, a: str, b: str) -> None:
        """At ``at_ms`` the contact between ``a`` and ``b`` ends and its link goes down."""
        na, nb = self._pair(a, b)
        self._check_time(at_ms)
        self.scheduler.call_at(at_ms, lambda: self.network.contact_down(na, nb))

    def contact(self, start_ms: int, end_ms: int, a: str, b: str, **link_model: Any) -> None:
        """A link between ``a`` and ``b`` from ``start_ms`` to ``end_ms`` (keywords as
        :meth:`link_up`). In mode "tcpcl" the active side sends SESS_TERM
        ``2 * delay_ms + 1`` ms before the end, so that a quiet session ends cleanly."""
        if end_ms <= start_ms:
            raise ConfigError(f"contact {a} - {b}: ends ({end_ms}) before it starts ({start_ms})")
        self.link_up(start_ms, a, b, **link_model)
        if link_model.get("mode") == "tcpcl":
            ending = end_ms - 2 * int(link_model.get("delay_ms", 0)) - 1
            if ending > start_ms:
                na, nb = self._pair(a, b)
                self.scheduler.call_at(ending, lambda: self.network.contact_ending(na, nb))
        self.link_down(end_ms, a, b)

    def node_down(self, at_ms: int, node: str) -> None:
        """At ``at_ms`` the node stops: its links go down and it takes no events until
        :meth:`node_up`. Its store survives; its contacts resume when it is back."""
        target = self.node(node)
        self._check_time(at_ms)
        self.scheduler.call_at(at_ms, lambda: self._stop(target))

    def node_up(self, at_ms: int, node: str) -> None:
        """At ``at_ms`` the node starts again from its store (a restart: new agent and
        router, as ``dtnd`` starting), and links come up for its contacts."""
        target = self.node(node)
        self._check_time(at_ms)
        self.scheduler.call_at(at_ms, lambda: self._start(target))

    def create_message(
        self,
        at_ms: int,
        source: str,
        destination: str,
        size: int,
        *,
        lifetime_ms: int = 86_400_000,
        message_id: str | None = None,
    ) -> str:
        """At ``at_ms`` the application on ``source`` sends ``size`` payload bytes to the
        application on the node ``destination``. Returns the message ID (``M1``, ``M2``, ...
        unless given)."""
        src, dst = self._pair(source, destination)
        if type(size) is not int or size < 0:
            raise ConfigError(f"message size must be an integer >= 0, not {size!r}")
        if lifetime_ms <= 0:
            raise ConfigError(f"message lifetime must be positive, not {lifetime_ms!r}")
        self._check_time(at_ms)
        if message_id is None:
            message_id = f"M{self._next_message}"
            while message_id in self.stats.messages:
                self._next_message += 1
                message_id = f"M{self._next_message}"
        elif message_id in self.stats.messages:
            raise ConfigError(f"message ID {message_id!r} is used twice")
        self._next_message += 1
        self.stats.message_created(message_id, src.node_id, dst.node_id, size, at_ms)

        def send() -> None:
            src.submit(message_id, dst.node_id, size, lifetime_ms)

        self.scheduler.call_at(at_ms, send)
        return message_id

    def schedule(self, at_ms: int, callback: Callable[[], None]) -> None:
        """Run ``callback()`` at ``at_ms``, in virtual time."""
        self._check_time(at_ms)
        self.scheduler.call_at(at_ms, callback)

    # -- running --------------------------------------------------------------------------------

    def run(
        self,
        until_ms: int | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run events until ``until_ms`` (inclusive; the clock then reads ``until_ms``), or
        until none is left. ``progress(now, until)`` is called every so many events and at
        the end (``until`` is ``now`` when running until no event is left)."""
        scheduler = self.scheduler
        every = self._sample_every
        countdown = PROGRESS_EVERY
        while True:
            due = scheduler.next_time()
            if due is None or (until_ms is not None and due > until_ms):
                break
            if every is not None and due > self._next_sample:
                self._sample(due)
            scheduler.step()
            if progress is not None:
                countdown -= 1
                if not countdown:
                    countdown = PROGRESS_EVERY
                    progress(scheduler.now, scheduler.now if until_ms is None else until_ms)
        if until_ms is not None and until_ms > scheduler.now:
            scheduler.advance(until_ms)
        if every is not None:
            self._sample(scheduler.now + 1)  # up to and including now
        if progress is not None:
            progress(scheduler.now, scheduler.now if until_ms is None else until_ms)

    def step(self) -> bool:
        """Run one event (for tests that look at every step); False when none is left."""
        due = self.scheduler.next_time()
        if due is None:
            return False
        if self._sample_every is not None and due > self._next_sample:
            self._sample(due)
        return self.scheduler.step()

    def report(self) -> dict[str, Any]:
        """The figures of the run so far (see :meth:`~dtncloud.sim.stats.SimStats.report`),
        with ``events`` and ``contacts`` added."""
        report = self.stats.report(self.scheduler.now)
        report["events"] = self.scheduler.events_run
        report["contacts"] = self.network.contacts_started
        return dict(sorted(report.items()))

    # -- helpers --------------------------------------------------------------------------------

    def _sample(self, before: int) -> None:
        """Occupancy samples for every sample time before ``before``. A sample at ``t``
        shows the stores after every event due at or before ``t``; no event ran since."""
        every = self._sample_every
        assert every is not None
        while self._next_sample < before:
            self.stats.sample_occupancy(self._next_sample, self.nodes.values())
            self._next_sample += every

    def _pair(self, a: str, b: str) -> tuple[SimNode, SimNode]:
        na, nb = self.node(a), self.node(b)
        if na is nb:
            raise ConfigError(f"{a} and {b} are the same node")
        return na, nb

    def _check_time(self, at_ms: int) -> None:
        if at_ms < self.scheduler.now:
            raise ConfigError(f"time {at_ms} ms is in the past (now {self.scheduler.now} ms)")

    def _stop(self, node: SimNode) -> None:
        if node.up:
            self.network.node_down(node)
            node.stop()

    def _start(self, node: SimNode) -> None:
        if not node.up:
            node.start()
            self.network.node_up(node, self.nodes)

    def iter_nodes(self) -> Iterator[SimNode]:
        """The nodes in the order they were added."""
        return iter(self.nodes.values())
