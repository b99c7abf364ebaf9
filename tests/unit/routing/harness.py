"""A few routers wired together through fake views, with a tiny stand-in for the engine.

It drives the routers the way ``dtncloud.engine`` does: on link up it sends the routers'
control messages and routes what ``select`` picks; a control message's arrival makes every
link select again; ``route`` decides the links and ``keep_copy``; every transmission is
reported back as transmitted (the receiver stored it or, for its own node, delivered it) or
failed (the receiver already had the bundle and refused it). Transfers are instantaneous
and processed in FIFO order; time moves only when a test calls :meth:`Net.advance`.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import dtncloud.routing  # noqa: F401  (registers the routers)
from dtncloud.routing.base import Drop, Forward, Router, Wait, default_registry
from dtncloud.store.base import BundleMeta
from tests.unit.routing.fakes import FakeView, make_meta


@dataclass
class Node:
    name: str
    router: Router
    view: FakeView
    #: bundle ID -> [(link ID, keep_copy)] of copies on their way
    flights: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    #: every bundle ID this node has held (duplicate suppression)
    seen: set[str] = field(default_factory=set)
    delivered: list[str] = field(default_factory=list)
    wakeups: list[tuple[int, str]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return self.view.node_id


@dataclass(frozen=True)
class Sent:
    """One bundle transmission that reached the other side (stored or delivered there)."""

    src: str
    dst: str
    bundle_id: str
    carried: bytes | None


class Net:
    def __init__(self, seed: int = 0) -> None:
        self.nodes: dict[str, Node] = {}
        self.by_id: dict[str, Node] = {}
        self.now = 0
        self.seed = seed
        self.sent: list[Sent] = []
        self.refused: list[Sent] = []
        self.control: list[tuple[str, str, bytes]] = []
        self._queue: deque[tuple[Any, ...]] = deque()

    # -- set-up --------------------------------------------------------------------------

    def add(self, name: str, router: str, **params: Any) -> Node:
        node_id = f"dtn://{name}/"
        rng = random.Random(f"{self.seed}-{name}")
        instance = default_registry.create(router, node_id=node_id, rng=rng, params=params)
        node = Node(name, instance, FakeView(node_id))
        self.nodes[name] = node
        self.by_id[node_id] = node
        return node

    def create(self, name: str, destination: str, *, sequence: int = 0) -> BundleMeta:
        """An application at ``name`` sends a bundle to ``destination``."""
        node = self.nodes[name]
        meta = make_meta(
            source=f"{node.node_id}app",
            destination=destination,
            creation_time=self.now,
            sequence=sequence,
            received_at=self.now,
        )
        meta = replace(meta, routing=node.router.admit(meta, None, self.now))
        node.view.add_bundle(meta)
        node.seen.add(meta.bundle_id)
        self._route(node, meta)
        self.run()
        return meta

    # -- events --------------------------------------------------------------------------

    def connect(self, a: str, b: str) -> None:
        ends = [(self.nodes[a], self.nodes[b]), (self.nodes[b], self.nodes[a])]
        for node, peer in ends:
            node.view.add_link(_link_id(node, peer), peer.node_id)
        for node, peer in ends:
            link = node.view.link(_link_id(node, peer))
            assert link is not None
            for message in node.router.on_link_up(link, node.view, self.now):
                self._queue.append(("control", node, message))
            self._select(node, link)
        self.run()

    def disconnect(self, a: str, b: str) -> None:
        for node, peer in [(self.nodes[a], self.nodes[b]), (self.nodes[b], self.nodes[a])]:
            link = node.view.remove_link(_link_id(node, peer))
            node.router.on_link_down(link, node.view, self.now)

    def advance(self, now: int) -> None:
        """Move time to ``now``: router timers and bundle wake-ups that are due run."""
        self.now = now
        for node in self.nodes.values():
            timer = node.router.get_timer()
            if timer is not None and timer <= now:
                node.router.handle_timer(now)
            while node.wakeups and node.wakeups[0][0] <= now:
                _, bundle_id = heapq.heappop(node.wakeups)
                meta = node.view.bundle(bundle_id)
                if meta is not None:
                    self._route(node, meta)
        self.run()

    def run(self) -> None:
        while self._queue:
            event = self._queue.popleft()
            if event[0] == "control":
                self._on_control(event[1], event[2])
            else:
                self._on_bundle(*event[1:])

    # -- the engine's part ---------------------------------------------------------------

    def _select(self, node: Node, link: Any) -> None:
        for bundle_id in node.router.select(link, node.view, self.now):
            meta = node.view.bundle(bundle_id)
            if meta is not None:
                self._route(node, meta)

    def _route(self, node: Node, meta: BundleMeta) -> None:
        decision = node.router.route(meta, node.view, self.now)
        if isinstance(decision, Forward):
            flying = node.flights.get(meta.bundle_id, [])
            if flying and not decision.keep_copy:
                return
            busy = {link_id for link_id, _ in flying}
            for link_id in decision.links:
                link = node.view.link(link_id)
                if link is not None and link_id not in busy:
                    carried = node.router.carry(meta, link, self.now)
                    node.flights.setdefault(meta.bundle_id, []).append(
                        (link_id, decision.keep_copy)
                    )
                    self._queue.append(("bundle", node, link_id, meta.bundle_id, carried))
        elif isinstance(decision, Wait):
            if decision.until is not None:
                heapq.heappush(node.wakeups, (max(decision.until, self.now), meta.bundle_id))
        elif isinstance(decision, Drop):
            node.view.remove_bundle(meta.bundle_id)

    def _on_control(self, sender: Node, message: Any) -> None:
        receiver = self.by_id[message.peer_node]
        link_id = _link_id(receiver, sender)
        if receiver.view.link(link_id) is None:
            return
        self.control.append((sender.name, receiver.name, message.payload))
        for reply in receiver.router.on_control_message(
            sender.node_id, link_id, message.payload, receiver.view, self.now
        ):
            self._queue.append(("control", receiver, reply))
        for link in receiver.view.links():
            self._select(receiver, link)

    def _on_bundle(self, src: Node, link_id: str, bundle_id: str, carried: bytes | None) -> None:
        link = src.view.link(link_id)
        meta = src.view.bundle(bundle_id)
        flights = src.flights.get(bundle_id, [])
        keep = next((k for lid, k in flights if lid == link_id), True)
        flights[:] = [f for f in flights if f[0] != link_id]
        if not flights:
            src.flights.pop(bundle_id, None)
        if link is None or meta is None:
            return
        dst = self.by_id[link.peer_node or ""]
        record = Sent(src.name, dst.name, bundle_id, carried)
        if bundle_id in dst.seen:  # a duplicate: refused, the sender hears of a failure
            self.refused.append(record)
            src.router.on_transmit_failed(meta, link, src.view, self.now)
            return
        dst.seen.add(bundle_id)
        self.sent.append(record)
        if dst.view.is_local(meta.destination):
            dst.delivered.append(bundle_id)
        else:
            copy = replace(meta, previous_node=src.node_id, routing=b"", received_at=self.now)
            copy = replace(copy, routing=dst.router.admit(copy, carried, self.now))
            dst.view.add_bundle(copy)
            self._route(dst, copy)
        state = src.router.on_transmitted(meta, link, src.view, self.now)
        src.view.add_bundle(replace(meta, routing=state))
        if not keep and bundle_id not in src.flights:
            src.view.remove_bundle(bundle_id)

    # -- reading results -----------------------------------------------------------------

    def holders(self, bundle_id: str) -> list[str]:
        return [name for name, node in self.nodes.items() if node.view.bundle(bundle_id)]

    def sends(self, bundle_id: str | None = None) -> list[tuple[str, str]]:
        return [(s.src, s.dst) for s in self.sent if bundle_id in (None, s.bundle_id)]


def _link_id(node: Node, peer: Node) -> str:
    return f"{node.name}>{peer.name}"
