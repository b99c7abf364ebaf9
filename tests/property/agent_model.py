"""Helpers for the stateful property test of the bundle protocol agent
(``test_agent_state_machine.py``): a recording listener, the bundles a neighbour may send, and
a shell whose store, saved state and pending actions survive (or not) a crash.

Unlike ``tests/unit/engine/harness.py``, nothing here answers an action by itself: the test
decides when (and whether) each Persist, Transmit, Deliver and Reassemble is answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dtncloud import bpv6
from dtncloud.bpv7 import (
    BibePdu,
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    admin_bundle,
    bibe_encapsulate,
    decode_admin_record,
    decode_bundle,
    encode_bundle,
    hop_count_block,
)
from dtncloud.bpv7.reactive import prefix_fragment
from dtncloud.engine import EngineListener, actions
from dtncloud.engine.agent import index_key
from dtncloud.errors import DtnError
from dtncloud.routing.base import Decision, Forward, LinkInfo, RoutingView, node_of
from dtncloud.store.base import BundleMeta
from tests.unit.engine.harness import LinkToPeerRouter

NODE = "dtn://a/"
T0 = 770_000_000_000  # a DTN time in 2024 (as in tests/unit/engine/harness.py)

#: link ID -> the peer's node ID (None: the convergence layer did not learn it)
LINKS: dict[str, str | None] = {"lb": "dtn://b/", "lb2": "dtn://b/", "lc": "dtn://c/", "lx": None}
LOCAL_ENDPOINTS = ("dtn://a/app", "dtn://a/inbox", "dtn://a/")
FOREIGN_SOURCES = ("dtn://b/app", "dtn://c/app", "dtn://d/app", "dtn:none")
DESTINATIONS = (
    "dtn://a/app",
    "dtn://a/inbox",
    "dtn://a/other",
    "dtn://b/app",
    "dtn://c/app",
    "dtn://d/app",
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """The shell's handle for one BundleReceived (unique per reception)."""

    number: int


@dataclass(frozen=True, slots=True)
class Submission:
    number: int


class Recorder(EngineListener):
    """Every listener call, in order: (kind, bundle ID or None, detail, now)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, Any, int]] = []

    def take(self) -> list[tuple[str, str | None, Any, int]]:
        events, self.events = self.events, []
        return events

    def bundle_created(self, meta: BundleMeta, now: int) -> None:
        self.events.append(("created", meta.bundle_id, meta, now))

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        self.events.append(("received", meta.bundle_id, meta, now))

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        self.events.append(("refused", bundle_id, int(reason), now))

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        self.events.append(("duplicate", bundle_id, None, now))

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        self.events.append(("forwarded", meta.bundle_id, link_id, now))

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        self.events.append(("delivered", meta.bundle_id, endpoint, now))

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.events.append(("deleted", meta.bundle_id, (int(reason), meta), now))

    def status_report_received(self, report: Any, now: int) -> None:
        self.events.append(("report", None, report, now))

    def link_up(self, link: LinkInfo, now: int) -> None:
        self.events.append(("link_up", None, link.link_id, now))

    def link_down(self, link_id: str, reason: str, now: int) -> None:
        self.events.append(("link_down", None, link_id, now))


class VolumeRouter(LinkToPeerRouter):
    """:class:`LinkToPeerRouter` that knows how much every contact can still carry (as a
    contact-plan router does), so the agent cuts larger bundles (proactive fragmentation)."""

    name = "test-volume"

    def __init__(self, node_id: str, rng: Any, volume: int) -> None:
        super().__init__(node_id, rng, via=("dtn://b/",))
        self.volume = volume

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        decision = super().route(meta, view, now)
        if isinstance(decision, Forward):
            return Forward(decision.links, decision.keep_copy, volume=self.volume)
        return decision


# -- bundles a neighbour sends ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleSpec:
    """A bundle from elsewhere, made relative to ``now`` when it is received."""

    source: str
    destination: str
    ago: int  # created this long before now
    lifetime: int
    clockless: bool  # creation time 0 and a bundle age block
    sequence: int
    flags: BundleFlag
    report_to: str | None
    payload_size: int
    hop: str  # "none" | "ok" | "exceeded"
    unknown_block: BlockFlag | None  # an extension block of unknown type, with these flags

    def build(self, now: int) -> Bundle:
        created = now - self.ago
        blocks: list[CanonicalBlock] = []
        if self.unknown_block is not None:
            blocks.append(CanonicalBlock(200, 9, b"\x01", self.unknown_block))
        bundle = Bundle.create(
            source=self.source,
            destination=self.destination,
            payload=bytes(itertools.islice(itertools.cycle(b"payload-"), self.payload_size)),
            creation_time=0 if self.clockless else created,
            # Anonymous bundles have no unique ID (RFC 9171 4.2.3); keep them clear of the
            # IDs of this node's own anonymous bundles (see test_anonymous_bundles_collide).
            sequence=self.sequence + (1000 if self.source == "dtn:none" else 0),
            lifetime=self.lifetime,
            report_to=self.report_to,
            flags=self.flags,
            bundle_age=self.ago if self.clockless else None,
            hop_limit=5 if self.hop == "ok" else None,
            extension_blocks=blocks,
        )
        if self.hop == "exceeded":
            bundle = bundle.add_block(hop_count_block(2, 3, bundle.next_block_number()))
        return bundle


def bpdu(
    inner: bytes, *, source: str, destination: str, tx_id: int, now: int, sequence: int
) -> bytes:
    """A BIBE protocol data unit carrying ``inner``, asking for custody when ``tx_id``."""
    pdu = bibe_encapsulate(inner, transmission_id=tx_id, retransmission_time=now + 60_000)
    return encode_bundle(
        admin_bundle(
            pdu, source=source, destination=destination, creation_time=now, sequence=sequence
        )
    )


@dataclass(frozen=True, slots=True)
class Wire:
    """Bytes a neighbour can send, with what the test knows of them."""

    data: bytes
    #: the ID of the bundle the agent would store for them (the inner bundle of a BPDU for
    #: this node, the fragment a prefix becomes); None when the agent consumes them (admin
    #: records, routing messages) or cannot use them
    stored_id: str | None
    #: what the stored bundle is for: "local" (a local endpoint), "fragment" (a fragment
    #: for a local endpoint), "forward", or "" when nothing is stored
    kind: str = ""
    #: only the first bytes of a transfer that broke (reactive fragmentation)
    partial: bool = False


def _classify(bundle: Bundle, data: bytes | None = None) -> tuple[str, str]:
    primary = bundle.primary
    key = index_key(bundle, data)
    if node_of(str(primary.destination)) != NODE:
        return key, "forward"
    return key, "fragment" if primary.is_fragment else "local"


def wire_for(data: bytes, *, partial: bool = False) -> Wire:
    """Classify encoded bytes the way the agent will (as far as storing goes)."""
    if data[:1] == b"\x06":
        try:
            legacy = bpv6.decode_bundle(data)
        except DtnError:
            return Wire(data, None)
        local = node_of(legacy.destination) == NODE
        if legacy.is_admin_record and local:
            return Wire(data, None)
        return Wire(data, str(legacy.bundle_id), "local" if local else "forward")
    if partial:
        try:
            fragment = prefix_fragment(data)
        except DtnError:
            return Wire(data, None, partial=True)
        if fragment is None:
            return Wire(data, None, partial=True)
        return Wire(data, *_classify(fragment), partial=True)
    try:
        bundle = decode_bundle(data)
    except DtnError:
        return Wire(data, None)  # refused, never stored
    primary = bundle.primary
    destination = str(primary.destination)
    if destination == f"{NODE}~routing":
        return Wire(data, None)
    if destination == NODE and primary.is_admin_record and not primary.is_fragment:
        try:
            record = decode_admin_record(bundle.payload)
        except DtnError:
            return Wire(data, None)
        if isinstance(record, BibePdu):
            inner = wire_for(record.bundle_bytes)
            return Wire(data, inner.stored_id, inner.kind)
        return Wire(data, None)
    return Wire(data, *_classify(bundle, data))


# -- the shell ----------------------------------------------------------------------------------


@dataclass
class Durable:
    """What survives a crash: the store's bundles and metadata and the saved node values."""

    data: dict[str, bytes] = field(default_factory=dict)
    metas: dict[str, BundleMeta] = field(default_factory=dict)
    state: dict[str, bytes] = field(default_factory=dict)

    def put(self, meta: BundleMeta, data: bytes) -> None:
        self.data[meta.bundle_id] = data
        self.metas[meta.bundle_id] = meta

    def remove(self, bundle_id: str) -> bool:
        self.data.pop(bundle_id, None)
        return self.metas.pop(bundle_id, None) is not None


@dataclass
class Pending:
    """Actions carried out by the shell whose answer the agent still waits for. Lost in a
    crash."""

    persists: dict[str, actions.Persist] = field(default_factory=dict)
    #: transmission number -> (action, wire bundles or None when render failed)
    transmits: dict[int, tuple[actions.Transmit, list[bytes] | None]] = field(default_factory=dict)
    delivers: list[actions.Deliver] = field(default_factory=list)
    reassembles: list[actions.Reassemble] = field(default_factory=list)
    refragments: list[actions.Refragment] = field(default_factory=list)


def pick(items: Iterable[Any], index: int) -> Any:
    """``items[index % len(items)]`` (None when empty): how rules choose among pending
    actions with a drawn integer, so examples shrink well."""
    seq = list(items)
    return seq[index % len(seq)] if seq else None


def legacy_bundle(
    *, source: str, destination: str, now: int, ago_s: int, lifetime_s: int, custody: bool
) -> bytes:
    """An RFC 5050 bundle (asking for custody, with ``source``'s node as its custodian)."""
    flags = bpv6.BundleFlag.SINGLETON_DESTINATION
    if custody:
        flags |= bpv6.BundleFlag.CUSTODY_REQUESTED
    bundle = bpv6.Bundle.create(
        source=source,
        destination=destination,
        payload=b"legacy",
        creation_time=now // 1000 - ago_s,
        lifetime=lifetime_s,
        custodian=node_of(source) if custody else "dtn:none",
        flags=flags,
    )
    return bpv6.encode_bundle(bundle)
