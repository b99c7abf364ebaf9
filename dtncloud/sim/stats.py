"""What a simulation counts, and the report made of it.

:class:`SimStats` hears every node's bundle protocol agent through an
:class:`~dtncloud.engine.listener.EngineListener` of its own (:meth:`SimStats.listener`),
and the links through a few direct calls (transfers started, aborted, lost). It follows
each *message* (a bundle an application created with
:meth:`~dtncloud.sim.world.Simulation.create_message`) across the nodes that hold a copy.

:meth:`SimStats.report` gives the figures of the ONE simulator's MessageStatsReport under
the same names and in the same units (times in seconds), so the two can be compared, plus
dtncloud's own. Everything is deterministic: lists are sorted, mappings are built in sorted
key order, nothing depends on the wall clock or on hash randomisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.engine.listener import EngineListener
from dtncloud.store.base import BundleMeta, StoreUsage

__all__ = ["MessageRecord", "NodeCounters", "SimStats", "reason_name"]

_DEPLETED_STORAGE = int(StatusReportReason.DEPLETED_STORAGE)


def reason_name(reason: int) -> str:
    """``4`` -> ``"depleted_storage"``: an RFC 9171 status report reason code as a key."""
    try:
        return StatusReportReason(reason).name.lower()
    except ValueError:
        return f"reason_{reason}"


@dataclass(slots=True)
class MessageRecord:
    """One message and what became of it. Times are DTN milliseconds."""

    message_id: str
    source: str
    destination: str
    size: int
    created_at: int
    #: the ID of the bundle that carries it, once stored at its source
    bundle_id: str | None = None
    #: first delivery at the destination's node
    delivered_at: int | None = None
    #: transmissions along the path of the delivered copy
    hops: int | None = None
    #: node ID -> hops the copy held there took from the source
    holders: dict[str, int] = field(default_factory=dict)
    #: the most nodes other than the destination that held a copy at once
    max_copies: int = 0
    #: why the source never stored it (node down, storage depleted), if so
    refused: str | None = None

    def copies(self) -> int:
        """Nodes other than the destination's that hold a copy now."""
        return len(self.holders) - (self.destination in self.holders)


@dataclass(slots=True)
class NodeCounters:
    """What happened at one node (messages only, but ``bytes_sent``, which counts every
    transfer started, routing messages included)."""

    created: int = 0
    received: int = 0
    relayed: int = 0
    #: copies this node handed over that the receiver already had (not in ``relayed``)
    duplicates: int = 0
    delivered: int = 0
    dropped: int = 0
    removed: int = 0
    refused: int = 0
    started: int = 0
    aborted: int = 0
    bytes_sent: int = 0
    peak_bytes: int = 0
    peak_bundles: int = 0

    def as_dict(self) -> dict[str, int]:
        found = {name: getattr(self, name) for name in sorted(self.__dataclass_fields__)}
        found["relayed"] = self.relayed - self.duplicates  # as in the report's total
        return found


class _Stored(Protocol):
    """What occupancy sampling needs of a node."""

    @property
    def node_id(self) -> str: ...

    def usage(self) -> StoreUsage: ...


class NodeListener(EngineListener):
    """The listener :class:`SimStats` gives one node's agent. The node sets
    ``arrival_hops`` and ``arrival_from`` before it hands its agent a bundle that came over
    a link: the hops the arriving copy has taken and the node it came from."""

    __slots__ = ("arrival_from", "arrival_hops", "node_id", "refusal", "stats")

    def __init__(self, stats: SimStats, node_id: str) -> None:
        self.stats = stats
        self.node_id = node_id
        self.arrival_hops = 0
        self.arrival_from = ""
        #: the reason of the last refusal heard (a submission refused by the store)
        self.refusal: int | None = None

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        self.stats._received(self.node_id, meta, self.arrival_hops)

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        self.refusal = reason
        self.stats._refused(self.node_id, bundle_id, reason)

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        self.stats._duplicate(self.arrival_from, bundle_id)

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        self.stats._forwarded(self.node_id, meta)

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        self.stats._delivered(self.node_id, meta, now)

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.stats._deleted(self.node_id, meta, reason, now)


class SimStats:
    """Counters and samples of one simulation run."""

    def __init__(self, start_ms: int = 0) -> None:
        self.start_ms = start_ms
        #: message ID -> record, in creation order
        self.messages: dict[str, MessageRecord] = {}
        self._by_bundle: dict[str, MessageRecord] = {}
        self.nodes: dict[str, NodeCounters] = {}
        self.started = 0
        #: copies handed over, duplicates included (see :meth:`report`)
        self.relayed = 0
        self.duplicates = 0
        self.aborted = 0
        self.lost = 0
        self.refused = 0
        self.removed = 0
        self.drops: dict[str, int] = {}
        self._buffer_times: list[int] = []
        self.occupancy_times: list[int] = []
        #: node ID -> bytes stored at each sample time
        self.occupancy_bytes: dict[str, list[int]] = {}
        self._occupancy_bundles: list[int] = []

    # -- set-up ---------------------------------------------------------------------------------

    def listener(self, node_id: str) -> NodeListener:
        """The listener to give ``node_id``'s agent (the counters of the node start at 0)."""
        self.nodes.setdefault(node_id, NodeCounters())
        self.occupancy_bytes.setdefault(node_id, [0] * len(self.occupancy_times))
        return NodeListener(self, node_id)

    def record_of(self, bundle_id: str) -> MessageRecord | None:
        """The message ``bundle_id`` carries, or None (routing messages, status reports)."""
        return self._by_bundle.get(bundle_id)

    # -- messages -------------------------------------------------------------------------------

    def message_created(
        self, message_id: str, source: str, destination: str, size: int, now: int
    ) -> MessageRecord:
        record = MessageRecord(message_id, source, destination, size, now)
        self.messages[message_id] = record
        return record

    def message_stored(self, message_id: str, bundle_id: str, node_id: str) -> None:
        """The source stored the message's bundle (its application's submission)."""
        record = self.messages.get(message_id)
        if record is None:
            return
        record.bundle_id = bundle_id
        self._by_bundle[bundle_id] = record
        record.holders[node_id] = 0
        record.max_copies = max(record.max_copies, record.copies())
        self.nodes[node_id].created += 1

    def message_refused(self, message_id: str, node_id: str, reason: str) -> None:
        """The source could not take the message (it was down, its store was full)."""
        record = self.messages.get(message_id)
        if record is None:
            return
        record.refused = reason
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.nodes[node_id].dropped += 1

    # -- transfers (from the links) -----------------------------------------------------------

    def transfer_started(self, record: MessageRecord | None, node_id: str, size: int) -> None:
        counters = self.nodes[node_id]
        counters.bytes_sent += size
        if record is not None:
            self.started += 1
            counters.started += 1

    def transfer_aborted(self, record: MessageRecord | None, node_id: str, lost: bool) -> None:
        """A transfer started and broke off: its link went down, or (``lost``) the link
        lost it."""
        if record is None:
            return
        self.aborted += 1
        if lost:
            self.lost += 1
        self.nodes[node_id].aborted += 1

    # -- what the agents say --------------------------------------------------------------------

    def _received(self, node_id: str, meta: BundleMeta, hops: int) -> None:
        record = self._by_bundle.get(meta.bundle_id)
        if record is None:
            return
        record.holders[node_id] = hops
        copies = record.copies()
        if copies > record.max_copies:
            record.max_copies = copies
        self.nodes[node_id].received += 1

    def _refused(self, node_id: str, bundle_id: str | None, reason: int) -> None:
        record = None if bundle_id is None else self._by_bundle.get(bundle_id)
        if record is None:
            return
        self.refused += 1
        name = reason_name(reason)
        self.drops[name] = self.drops.get(name, 0) + 1
        counters = self.nodes[node_id]
        counters.refused += 1
        counters.dropped += 1

    def _forwarded(self, node_id: str, meta: BundleMeta) -> None:
        if meta.bundle_id in self._by_bundle:
            self.relayed += 1
            self.nodes[node_id].relayed += 1

    def _duplicate(self, sender: str, bundle_id: str) -> None:
        """A copy from ``sender`` arrived at a node that already had the message (or had it
        recently): the receiver acknowledges it, so the sender counts it as handed over."""
        counters = self.nodes.get(sender)
        if counters is not None and bundle_id in self._by_bundle:
            self.duplicates += 1
            counters.duplicates += 1

    def _delivered(self, node_id: str, meta: BundleMeta, now: int) -> None:
        record = self._by_bundle.get(meta.bundle_id)
        if record is None or record.delivered_at is not None or node_id != record.destination:
            return
        record.delivered_at = now
        record.hops = record.holders.get(node_id, 0)
        self.nodes[node_id].delivered += 1

    def _deleted(self, node_id: str, meta: BundleMeta, reason: int, now: int) -> None:
        record = self._by_bundle.get(meta.bundle_id)
        if record is None:
            return
        record.holders.pop(node_id, None)
        if reason == 0 and node_id == record.destination:
            return  # delivered: it was never waiting in a buffer
        self._buffer_times.append(now - meta.received_at)
        counters = self.nodes[node_id]
        if reason == 0:
            self.removed += 1
            counters.removed += 1
        else:
            name = reason_name(reason)
            self.drops[name] = self.drops.get(name, 0) + 1
            counters.dropped += 1

    # -- buffer occupancy -----------------------------------------------------------------------

    def sample_occupancy(self, now: int, nodes: Iterable[_Stored]) -> None:
        """Note how full every node's store is at ``now``."""
        self.occupancy_times.append(now)
        total_bundles = 0
        for node in nodes:
            usage = node.usage()
            self.occupancy_bytes[node.node_id].append(usage.bytes)
            total_bundles += usage.bundles
            counters = self.nodes[node.node_id]
            if usage.bytes > counters.peak_bytes:
                counters.peak_bytes = usage.bytes
            if usage.bundles > counters.peak_bundles:
                counters.peak_bundles = usage.bundles
        self._occupancy_bundles.append(total_bundles)

    # -- the report -----------------------------------------------------------------------------

    def report(self, now: int) -> dict[str, Any]:
        """The figures at ``now``: the ONE's MessageStatsReport names (``created``,
        ``started``, ``relayed``, ``aborted``, ``dropped``, ``removed``, ``delivered``,
        ``delivery_prob``, ``response_prob``, ``overhead_ratio``, ``latency_avg``,
        ``latency_med``, ``hopcount_avg``, ``hopcount_med``, ``buffertime_avg``,
        ``rtt_avg``; times in seconds) and dtncloud's own (see docs/simulator.md)."""
        records = list(self.messages.values())
        delivered = [r for r in records if r.delivered_at is not None]
        latencies = sorted((r.delivered_at or 0) - r.created_at for r in delivered)
        hops = sorted(r.hops or 0 for r in delivered)
        buffer_times = sorted(self._buffer_times)
        created = len(records)
        n_delivered = len(delivered)
        drops = {name: self.drops[name] for name in sorted(self.drops)}
        # The ONE's relayed: transfers that gave the receiver a new copy. Its nodes turn a
        # message they have away before the transfer starts; ours take it and let it go.
        relayed = self.relayed - self.duplicates
        return {
            "created": created,
            "started": self.started,
            "relayed": relayed,
            "duplicates": self.duplicates,
            "aborted": self.aborted,
            "dropped": sum(drops.values()),
            "removed": self.removed,
            "delivered": n_delivered,
            "delivery_prob": n_delivered / created if created else 0.0,
            "response_prob": 0.0,
            "overhead_ratio": (relayed - n_delivered) / n_delivered if n_delivered else None,
            "latency_avg": _seconds(_mean(latencies)),
            "latency_med": _seconds(_median(latencies)),
            "latency_p95": _seconds(_percentile(latencies, 95)),
            "hopcount_avg": _mean(hops),
            "hopcount_med": int(_median(hops) or 0),
            "buffertime_avg": _seconds(_mean(buffer_times)),
            "rtt_avg": None,
            "drops_by_reason": drops,
            "lost": self.lost,
            "refused": self.refused,
            "max_copies": max((r.max_copies for r in records), default=0),
            "sim_time_s": (now - self.start_ms) / 1000,
            "nodes": len(self.nodes),
            "per_node": {node: self.nodes[node].as_dict() for node in sorted(self.nodes)},
            "occupancy": self._occupancy_series(),
        }

    def message_rows(self) -> list[dict[str, Any]]:
        """One row per message, sorted by message ID: for per-message CSV reports."""
        rows = []
        for message_id in sorted(self.messages):
            r = self.messages[message_id]
            latency = None if r.delivered_at is None else r.delivered_at - r.created_at
            rows.append(
                {
                    "message_id": r.message_id,
                    "source": r.source,
                    "destination": r.destination,
                    "size": r.size,
                    "created_s": r.created_at / 1000,
                    "delivered_s": None if r.delivered_at is None else r.delivered_at / 1000,
                    "latency_s": _seconds(latency),
                    "hops": r.hops,
                    "max_copies": r.max_copies,
                    "refused": r.refused,
                }
            )
        return rows

    def _occupancy_series(self) -> dict[str, Any]:
        times = self.occupancy_times
        per_node = [self.occupancy_bytes[node] for node in sorted(self.occupancy_bytes)]
        totals, means, peaks = [], [], []
        for i in range(len(times)):
            column = [series[i] for series in per_node]
            total = sum(column)
            totals.append(total)
            means.append(total / len(column) if column else 0.0)
            peaks.append(max(column, default=0))
        return {
            "t_s": [t / 1000 for t in times],
            "total_bytes": totals,
            "mean_bytes": means,
            "max_bytes": peaks,
            "total_bundles": list(self._occupancy_bundles),
        }


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def _median(values: Sequence[int]) -> int | None:
    """The element at ``n // 2`` of the sorted values (the upper middle one for an even
    count), which is how the ONE reports medians."""
    return values[len(values) // 2] if values else None


def _percentile(values: Sequence[int], pct: int) -> int | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000
