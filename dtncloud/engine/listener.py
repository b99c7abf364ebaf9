"""Observing a bundle protocol agent: what logs, metrics and the simulator's reports hear.

The agent calls its listener synchronously as things happen, with ``now``; a listener must
be quick and must not raise. Subclass :class:`EngineListener` and override what you need;
:class:`Listeners` fans one agent out to several listeners.
"""

from __future__ import annotations

from collections.abc import Iterable

from dtncloud.bpv7.admin import StatusReport
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta

__all__ = ["EngineListener", "Listeners"]


class EngineListener:
    """Every hook does nothing by default. ``reason`` values are RFC 9171 status-report
    reason codes."""

    def bundle_created(self, meta: BundleMeta, now: int) -> None:
        """An application's bundle (or a status report made here) is stored."""

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        """A bundle from a neighbour is stored."""

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        """A received bundle was not accepted (undecodable, expired, hop limit, duplicate
        of nothing held, ...). ``bundle_id`` is None when it could not be read."""

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        """A bundle this node holds or has recently handled arrived again."""

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        """The neighbour on ``link_id`` acknowledged a copy."""

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        """A local application took the bundle."""

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        """The node no longer keeps the bundle: forwarded (reason 0), delivered (0),
        expired (1), no route (6), hop limit (9), ..."""

    def status_report_received(self, report: StatusReport, now: int) -> None:
        """A status report addressed to this node's administrative endpoint arrived."""

    def link_up(self, link: LinkInfo, now: int) -> None: ...

    def link_down(self, link_id: str, reason: str, now: int) -> None: ...


class Listeners(EngineListener):
    """Several listeners heard as one, in the order given."""

    def __init__(self, listeners: Iterable[EngineListener]) -> None:
        self._listeners = tuple(listeners)

    def bundle_created(self, meta: BundleMeta, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_created(meta, now)

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_received(meta, link_id, now)

    def bundle_refused(self, bundle_id: str | None, reason: int, detail: str, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_refused(bundle_id, reason, detail, now)

    def bundle_duplicate(self, bundle_id: str, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_duplicate(bundle_id, now)

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_forwarded(meta, link_id, now)

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_delivered(meta, endpoint, now)

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        for listener in self._listeners:
            listener.bundle_deleted(meta, reason, now)

    def status_report_received(self, report: StatusReport, now: int) -> None:
        for listener in self._listeners:
            listener.status_report_received(report, now)

    def link_up(self, link: LinkInfo, now: int) -> None:
        for listener in self._listeners:
            listener.link_up(link, now)

    def link_down(self, link_id: str, reason: str, now: int) -> None:
        for listener in self._listeners:
            listener.link_down(link_id, reason, now)
