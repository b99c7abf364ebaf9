"""What a node has done and holds, as Prometheus metrics and as a JSON status document.

:class:`NodeMetrics` is an :class:`~dtncloud.engine.EngineListener`: give it to a
:class:`~dtncloud.runtime.Node` as its ``listener`` and it counts what the agent reports
(bundles created, received, forwarded, delivered, deleted, refused, ...). Those counters are
plain ints and dicts, since the agent calls the hooks synchronously for every bundle.

What the agent does not report is read when someone asks, through callables the daemon
hands over (all optional; :meth:`NodeMetrics.attach` wires them from a ``Node`` at once):

- ``store_usage``: ``Store.usage`` (async), for the store's bundle count and bytes;
- ``links``: the node's open links by link ID (``lambda: node.links``), for the bytes each
  convergence layer moved. A link's :class:`~dtncloud.cla.base.LinkStats` go when the link
  does, so the metrics keep hold of every link they are told about (at ``link_up`` and at
  each snapshot) and add its final counts to per-CLA totals once it is down: the transfer
  counters never go backwards;
- ``custody_pending``: how many bundles this node holds as custodian.

A scrape first awaits :meth:`NodeMetrics.snapshot` (which gathers the async values), then
renders that one snapshot, with :meth:`NodeMetrics.render` (Prometheus text) or
:meth:`NodeMetrics.status_document` (JSON-friendly dict), so every number shown belongs to
the same moment. docs/metrics.md lists the metric names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dtncloud import __version__
from dtncloud.bpv7.admin import StatusReport
from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.cla.base import Link
from dtncloud.engine.listener import EngineListener
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta, Retention, StoreUsage

if TYPE_CHECKING:
    from dtncloud.runtime.node import Node

__all__ = ["CONTENT_TYPE", "NO_LINK", "MetricsSnapshot", "NodeMetrics", "cla_of", "reason_name"]

log = logging.getLogger("dtncloud.metrics")

#: The media type of :meth:`NodeMetrics.render`'s output. Spelt out rather than taken from
#: ``prometheus_client.CONTENT_TYPE_LATEST``, which newer releases point at the 1.0.0 format
#: while ``generate_latest`` (as called here) still writes the 0.0.4 one.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The ``cla`` label of bundles that came without a link (``Node.receive``: a mule, a file).
NO_LINK = "none"


def reason_name(code: int) -> str:
    """A status-report reason code as a label value: the RFC 9171/9172 name in lower case
    (``"lifetime_expired"``), or ``"reason_<n>"`` for a code without a name."""
    try:
        return StatusReportReason(code).name.lower()
    except ValueError:
        return f"reason_{code}"


def cla_of(link_id: str) -> str:
    """The CLA name in a node's link ID (``"tcpcl-3"`` -> ``"tcpcl"``)."""
    name, sep, _ = link_id.rpartition("-")
    return name if sep else link_id


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every number of one scrape, taken at one moment. Dicts are copies."""

    node_id: str
    version: str
    uptime_seconds: float
    created: int
    received: dict[str, int]
    forwarded: dict[str, int]
    delivered: int
    deleted: dict[int, int]
    refused: dict[int, int]
    duplicates: int
    status_reports: int
    links_opened: dict[str, int]
    links_closed: dict[str, int]
    #: link ID -> (CLA name, peer node ID or None), as the agent announced them
    links_up: dict[str, tuple[str, str | None]]
    bytes_sent: dict[str, int]
    bytes_received: dict[str, int]
    custody_pending: int
    #: None when no store is attached or it did not answer
    store: StoreUsage | None = None

    @property
    def links_up_by_cla(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cla, _ in self.links_up.values():
            counts[cla] = counts.get(cla, 0) + 1
        return counts


@dataclass
class _Transfers:
    """Bytes moved per CLA by links that are down, and the links still being watched."""

    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    live: dict[str, Link] = field(default_factory=dict)

    def retire(self, link: Link) -> None:
        cla = link.cla_name
        self.sent[cla] = self.sent.get(cla, 0) + link.stats.bytes_sent
        self.received[cla] = self.received.get(cla, 0) + link.stats.bytes_received

    def totals(self) -> tuple[dict[str, int], dict[str, int]]:
        sent, received = dict(self.sent), dict(self.received)
        for link in self.live.values():
            cla = link.cla_name
            sent[cla] = sent.get(cla, 0) + link.stats.bytes_sent
            received[cla] = received.get(cla, 0) + link.stats.bytes_received
        return sent, received


class NodeMetrics(EngineListener):
    """Counters of one node's agent, and its metrics registry.

    ``monotonic`` gives seconds for the uptime (``time.monotonic`` by default; a test or the
    simulator passes its own). Each instance has its own
    :class:`~prometheus_client.CollectorRegistry` (:attr:`registry`), never the process-wide
    default one, so many nodes can share a process.
    """

    def __init__(
        self,
        node_id: str,
        *,
        version: str = __version__,
        store_usage: Callable[[], Awaitable[StoreUsage]] | None = None,
        links: Callable[[], Mapping[str, Link]] | None = None,
        custody_pending: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.version = version
        self.store_usage = store_usage
        self.links = links
        self.custody_pending = custody_pending
        self._monotonic = monotonic
        self._started_at = monotonic()
        self.created = 0
        self.received: dict[str, int] = {}
        self.forwarded: dict[str, int] = {}
        self.delivered = 0
        self.deleted: dict[int, int] = {}
        self.refused: dict[int, int] = {}
        self.duplicates = 0
        self.status_reports = 0
        self.links_opened: dict[str, int] = {}
        self.links_closed: dict[str, int] = {}
        self._up: dict[str, tuple[str, str | None]] = {}
        self._transfers = _Transfers()
        self._collector = _SnapshotCollector()
        self.registry = CollectorRegistry()
        self.registry.register(self._collector)

    def attach(self, node: Node) -> None:
        """Read the store, links and custody of ``node`` (whose listener this is)."""
        self.store_usage = node.store.usage
        self.links = lambda: node.links

        def custody_pending() -> int:
            # A scan of the index per scrape: cheap next to a scrape's other work, and it
            # spares the agent another hook.
            return sum(1 for meta in node.stored() if meta.retention & Retention.CUSTODY_ACCEPTED)

        self.custody_pending = custody_pending

    # -- EngineListener hooks: quick, no I/O ----------------------------------------------

    def bundle_created(self, meta: BundleMeta, now: int) -> None:
        self.created += 1

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        cla = NO_LINK if link_id is None else self._cla(link_id)
        self.received[cla] = self.received.get(cla, 0) + 1

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        self.duplicates += 1

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        cla = self._cla(link_id)
        self.forwarded[cla] = self.forwarded.get(cla, 0) + 1

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        self.delivered += 1

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.deleted[reason] = self.deleted.get(reason, 0) + 1

    def status_report_received(self, report: StatusReport, now: int) -> None:
        self.status_reports += 1

    def link_up(self, link: LinkInfo, now: int) -> None:
        cla = link.cla or cla_of(link.link_id)
        self._up[link.link_id] = (cla, link.peer_node)
        self.links_opened[cla] = self.links_opened.get(cla, 0) + 1
        if self.links is not None:
            # The node has registered the link before telling the agent, so it is there now;
            # holding it from here on keeps its byte counts should it go down before a scrape.
            found = self.links().get(link.link_id)
            if found is not None:
                self._transfers.live[link.link_id] = found

    def link_down(self, link_id: str, reason: str, now: int) -> None:
        cla, _ = self._up.pop(link_id, (cla_of(link_id), None))
        self.links_closed[cla] = self.links_closed.get(cla, 0) + 1
        gone = self._transfers.live.pop(link_id, None)
        if gone is not None:
            self._transfers.retire(gone)

    def _cla(self, link_id: str) -> str:
        known = self._up.get(link_id)
        return known[0] if known is not None else cla_of(link_id)

    # -- scraping -------------------------------------------------------------------------

    async def snapshot(self) -> MetricsSnapshot:
        """Every number now, the store's usage awaited first (so nothing below can change
        between reading the counters and rendering them)."""
        usage: StoreUsage | None = None
        if self.store_usage is not None:
            try:
                usage = await self.store_usage()
            except Exception as exc:  # a closed or failing store must not break the scrape
                log.warning("store usage unavailable for metrics: %s", exc)
        return self.snapshot_now(usage)

    def snapshot_now(self, store: StoreUsage | None = None) -> MetricsSnapshot:
        """The synchronous part of :meth:`snapshot`, with ``store`` as the store's usage."""
        self._watch_live_links()
        sent, received = self._transfers.totals()
        return MetricsSnapshot(
            node_id=self.node_id,
            version=self.version,
            uptime_seconds=max(0.0, self._monotonic() - self._started_at),
            created=self.created,
            received=dict(self.received),
            forwarded=dict(self.forwarded),
            delivered=self.delivered,
            deleted=dict(self.deleted),
            refused=dict(self.refused),
            duplicates=self.duplicates,
            status_reports=self.status_reports,
            links_opened=dict(self.links_opened),
            links_closed=dict(self.links_closed),
            links_up=dict(self._up),
            bytes_sent=sent,
            bytes_received=received,
            custody_pending=self.custody_pending() if self.custody_pending is not None else 0,
            store=store,
        )

    def _watch_live_links(self) -> None:
        """Catch up with the node's links: ones opened before ``links`` was set start being
        watched, and ones the node dropped without a ``link_down`` reaching here are retired
        (so their bytes stay counted exactly once)."""
        if self.links is None:
            return
        current = self.links()
        live = self._transfers.live
        for link_id in [i for i in live if i not in current]:
            self._transfers.retire(live.pop(link_id))
        for link_id, link in current.items():
            live.setdefault(link_id, link)

    def render(self, snapshot: MetricsSnapshot | None = None) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of ``snapshot``; without one, of
        :meth:`snapshot_now` (no store numbers)."""
        self._collector.snapshot = snapshot if snapshot is not None else self.snapshot_now()
        try:
            return generate_latest(self.registry)
        finally:
            self._collector.snapshot = None

    def status_document(self, snapshot: MetricsSnapshot | None = None) -> dict[str, Any]:
        """The same numbers as :meth:`render`, as a JSON-friendly dict; without a snapshot,
        of :meth:`snapshot_now` (``"store"`` is then None)."""
        snap = snapshot if snapshot is not None else self.snapshot_now()
        store = snap.store
        return {
            "node_id": snap.node_id,
            "version": snap.version,
            "uptime_seconds": round(snap.uptime_seconds, 3),
            "bundles": {
                "created": snap.created,
                "received": dict(sorted(snap.received.items())),
                "forwarded": dict(sorted(snap.forwarded.items())),
                "delivered": snap.delivered,
                "deleted": _by_reason(snap.deleted),
                "refused": _by_reason(snap.refused),
                "duplicates": snap.duplicates,
                "status_reports_received": snap.status_reports,
                "custody_pending": snap.custody_pending,
            },
            "store": None
            if store is None
            else {"bundles": store.bundles, "bytes": store.bytes, "quota_bytes": store.quota_bytes},
            "links": {
                "up": [
                    {"link_id": link_id, "cla": cla, "peer_node": peer}
                    for link_id, (cla, peer) in sorted(snap.links_up.items())
                ],
                "up_by_cla": dict(sorted(snap.links_up_by_cla.items())),
                "opened": dict(sorted(snap.links_opened.items())),
                "closed": dict(sorted(snap.links_closed.items())),
                "bytes_sent": dict(sorted(snap.bytes_sent.items())),
                "bytes_received": dict(sorted(snap.bytes_received.items())),
            },
        }


def _by_reason(counts: Mapping[int, int]) -> dict[str, int]:
    return {reason_name(code): n for code, n in sorted(counts.items())}


class _SnapshotCollector:
    """Yields metric families from the snapshot :meth:`NodeMetrics.render` set. It has no
    ``describe``, so registering it does not call ``collect`` before there is a snapshot."""

    def __init__(self) -> None:
        self.snapshot: MetricsSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        info = GaugeMetricFamily(
            "dtncloud_build_info",
            "Always 1; the labels say which dtncloud version runs which node.",
            labels=["version", "node_id"],
        )
        info.add_metric([snap.version, snap.node_id], 1)
        yield info
        yield GaugeMetricFamily(
            "dtncloud_uptime_seconds",
            "Seconds since the node's metrics began.",
            value=snap.uptime_seconds,
        )
        yield CounterMetricFamily(
            "dtncloud_bundles_created_total",
            "Bundles made on this node (by local applications or as status reports) and stored.",
            value=snap.created,
        )
        yield _per_label(
            "dtncloud_bundles_received_total",
            "Bundles from neighbours that were stored, by convergence layer.",
            "cla",
            snap.received,
        )
        yield _per_label(
            "dtncloud_bundles_forwarded_total",
            "Bundle copies a neighbour acknowledged, by convergence layer.",
            "cla",
            snap.forwarded,
        )
        yield CounterMetricFamily(
            "dtncloud_bundles_delivered_total",
            "Bundles a local application took.",
            value=snap.delivered,
        )
        yield _per_label(
            "dtncloud_bundles_deleted_total",
            "Bundles the node stopped keeping, by status-report reason "
            "(no_additional_information: forwarded or delivered, the normal end).",
            "reason",
            {reason_name(code): n for code, n in snap.deleted.items()},
        )
        yield _per_label(
            "dtncloud_bundles_refused_total",
            "Received bundles that were not accepted, by status-report reason.",
            "reason",
            {reason_name(code): n for code, n in snap.refused.items()},
        )
        yield CounterMetricFamily(
            "dtncloud_duplicates_received_total",
            "Bundles that arrived again while held or recently handled.",
            value=snap.duplicates,
        )
        yield CounterMetricFamily(
            "dtncloud_status_reports_received_total",
            "Status reports addressed to this node that arrived.",
            value=snap.status_reports,
        )
        yield _per_label(
            "dtncloud_links_opened_total",
            "Links that came up, by convergence layer.",
            "cla",
            snap.links_opened,
        )
        yield _per_label(
            "dtncloud_links_closed_total",
            "Links that went down, by convergence layer.",
            "cla",
            snap.links_closed,
        )
        yield _per_label(
            "dtncloud_links_up",
            "Links up now, by convergence layer.",
            "cla",
            snap.links_up_by_cla,
            gauge=True,
        )
        yield _per_label(
            "dtncloud_transfer_sent_bytes_total",
            "Encoded bundle bytes sent over links, by convergence layer.",
            "cla",
            snap.bytes_sent,
        )
        yield _per_label(
            "dtncloud_transfer_received_bytes_total",
            "Encoded bundle bytes received over links, by convergence layer.",
            "cla",
            snap.bytes_received,
        )
        yield GaugeMetricFamily(
            "dtncloud_custody_pending",
            "Bundles held with this node as their custodian.",
            value=snap.custody_pending,
        )
        if snap.store is not None:
            yield GaugeMetricFamily(
                "dtncloud_store_bundles", "Bundles in the store.", value=snap.store.bundles
            )
            yield GaugeMetricFamily(
                "dtncloud_store_bytes", "Bytes the stored bundles take.", value=snap.store.bytes
            )
            if snap.store.quota_bytes is not None:
                yield GaugeMetricFamily(
                    "dtncloud_store_quota_bytes",
                    "The store's size limit.",
                    value=snap.store.quota_bytes,
                )


def _per_label(
    name: str, doc: str, label: str, values: Mapping[str, int], *, gauge: bool = False
) -> Metric:
    family: CounterMetricFamily | GaugeMetricFamily
    if gauge:
        family = GaugeMetricFamily(name, doc, labels=[label])
    else:
        family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family
