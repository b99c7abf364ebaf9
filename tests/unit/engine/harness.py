"""A synchronous shell for engine tests: executes actions against dictionaries, by hand.

Tests drive time and every answer themselves, so they can assert the exact action sequence.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dtncloud.bpv7 import Bundle, decode_bundle, encode_bundle
from dtncloud.engine import BundleProtocolAgent, EngineConfig, EngineListener, actions, inputs
from dtncloud.engine.transmit import cut_stored, reassemble_stored, render
from dtncloud.routing.base import Decision, Forward, LinkInfo, Router, RoutingView, Wait, node_of
from dtncloud.store.base import BundleMeta

T0 = 770_000_000_000  # a DTN time in 2024


class LinkToPeerRouter(Router):
    """Forward to any link whose peer is the destination node, else to ``via`` nodes in
    order; wait otherwise. Enough to exercise the agent without a real router."""

    name = "test-direct"

    def __init__(
        self, node_id: str, rng: random.Random, via: Sequence[str] = (), keep_copy: bool = False
    ) -> None:
        super().__init__(node_id, rng)
        self.via = tuple(via)
        self.keep_copy = keep_copy
        self.admitted: list[tuple[str, bytes | None]] = []
        self.control: list[tuple[str, bytes]] = []
        self.failed: list[str] = []
        self.link_up_messages: list[Any] = []

    def admit(self, meta: BundleMeta, carried: bytes | None, now: int) -> bytes:
        self.admitted.append((meta.bundle_id, carried))
        return b""

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        for node in (node_of(meta.destination), *self.via):
            links = view.links_to(node)
            if links:
                return Forward((links[0].link_id,), keep_copy=self.keep_copy)
        return Wait()

    def on_link_up(self, link: LinkInfo, view: RoutingView, now: int) -> list[Any]:
        return list(self.link_up_messages)

    def on_control_message(
        self, peer_node: str, link_id: str | None, payload: bytes, view: RoutingView, now: int
    ) -> list[Any]:
        self.control.append((peer_node, payload))
        return []

    def on_transmit_failed(
        self, meta: BundleMeta, link: LinkInfo, view: RoutingView, now: int
    ) -> None:
        self.failed.append(meta.bundle_id)


class Recorder(EngineListener):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def bundle_created(self, meta: BundleMeta, now: int) -> None:
        self.events.append(("created", meta.bundle_id))

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        self.events.append(("received", meta.bundle_id, link_id))

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        self.events.append(("refused", bundle_id, reason))

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        self.events.append(("duplicate", bundle_id))

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        self.events.append(("forwarded", meta.bundle_id, link_id))

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        self.events.append(("delivered", meta.bundle_id, endpoint))

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.events.append(("deleted", meta.bundle_id, int(reason)))

    def status_report_received(self, report: Any, now: int) -> None:
        self.events.append(("report", report))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


@dataclass
class Harness:
    node_id: str = "dtn://a/"
    config: dict[str, Any] = field(default_factory=dict)
    via: Sequence[str] = ()
    keep_copy: bool = False
    now: int = T0

    def __post_init__(self) -> None:
        self.router = LinkToPeerRouter(self.node_id, random.Random(1), self.via, self.keep_copy)
        self.listener = Recorder()
        self.agent = BundleProtocolAgent(
            EngineConfig(self.node_id, **self.config), self.router, listener=self.listener
        )
        self.stored: dict[str, bytes] = {}
        self.metas: dict[str, BundleMeta] = {}
        self.state: dict[str, bytes] = {}
        # a node starts from its (here empty) store: that reserves its first sequence numbers
        self.agent.restore([], {}, self.now)
        self.settle(list(self.agent.actions()))
        self.sent: list[tuple[str, list[bytes], actions.Transmit]] = []

    def feed(self, event: inputs.Input) -> list[actions.Action]:
        self.agent.handle(event, self.now)
        return list(self.agent.actions())

    def tick(self, now: int) -> list[actions.Action]:
        self.now = now
        self.agent.handle_timer(now)
        return list(self.agent.actions())

    def settle(
        self,
        pending: list[actions.Action],
        *,
        deliver: bool = True,
        transmit_ok: bool | None = True,
    ) -> list[actions.Action]:
        """Carry out actions the way a shell would, feeding every answer back, until the
        agent is quiet. Returns every action seen, in order."""
        seen: list[actions.Action] = []
        queue = list(pending)
        while queue:
            action = queue.pop(0)
            seen.append(action)
            answer = self.execute(action, deliver=deliver, transmit_ok=transmit_ok)
            if answer is not None:
                queue.extend(self.feed(answer))
        return seen

    def execute(
        self,
        action: actions.Action,
        *,
        deliver: bool = True,
        transmit_ok: bool | None = True,
    ) -> inputs.Input | None:
        if isinstance(action, actions.Persist):
            self.stored[action.meta.bundle_id] = action.data
            self.metas[action.meta.bundle_id] = action.meta
            return inputs.Persisted(action.meta.bundle_id)
        if isinstance(action, actions.UpdateMeta):
            assert action.meta.bundle_id in self.stored
            self.metas[action.meta.bundle_id] = action.meta
            return None
        if isinstance(action, actions.Remove):
            self.stored.pop(action.bundle_id, None)
            self.metas.pop(action.bundle_id, None)
            return None
        if isinstance(action, actions.SaveState):
            self.state[action.key] = action.value
            return None
        if isinstance(action, actions.Transmit):
            data = self.stored.get(action.bundle_id, b"")
            wire = render(data, action.plan, self.now)
            self.sent.append((action.link_id, wire, action))
            if transmit_ok is None:  # the test answers it itself
                return None
            if transmit_ok:
                return inputs.TransmissionSucceeded(
                    action.link_id, action.bundle_id, action.transmission
                )
            return inputs.TransmissionFailed(action.link_id, action.bundle_id, action.transmission)
        if isinstance(action, actions.Deliver):
            if deliver:
                return inputs.Delivered(action.bundle_id, action.endpoint)
            return inputs.DeliveryFailed(action.bundle_id, action.endpoint)
        if isinstance(action, actions.Refragment):
            pieces = cut_stored(
                self.stored[action.bundle_id],
                payload_offset=action.payload_offset,
                first_size=action.first_size,
            )
            return inputs.Refragmented(action.bundle_id, pieces)
        if isinstance(action, actions.Reassemble):
            data = reassemble_stored(self.stored[i] for i in action.fragment_ids)
            return inputs.Reassembled(action.bundle_id, data)
        return None  # Acknowledge, SubmissionAccepted/Refused: nothing to answer


def bundle_bytes(**kwargs: Any) -> bytes:
    fields: dict[str, Any] = {
        "source": "dtn://z/app",
        "destination": "dtn://b/app",
        "payload": b"x" * 100,
        "creation_time": T0 - 1000,
    }
    fields.update(kwargs)
    return encode_bundle(Bundle.create(**fields))


def decoded(data: bytes) -> Bundle:
    return decode_bundle(data)
