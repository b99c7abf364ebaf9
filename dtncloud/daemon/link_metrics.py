"""Metrics of the disrupted links: what an Iridium modem costs and how its sessions go.

A satellite link is paid by the byte, so its operators watch credits as closely as bundles:
:class:`DeviceLinkCollector` adds per-CLA figures of every SBD convergence layer to a node's
metrics registry, read from the CLAs' own counters at scrape time (on the event loop, as
the rest of the metrics are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["DeviceLinkCollector", "device_link_status"]

# (metric name, help, SbdStats field, counter?)
_SBD_FIGURES = (
    ("dtncloud_sbd_credits_total", "Iridium credits used (one per started 50 bytes).", "credits", True),
    ("dtncloud_sbd_bytes_sent_total", "Bytes sent in SBD messages.", "bytes_sent", True),
    ("dtncloud_sbd_bytes_received_total", "Bytes received in SBD messages.", "bytes_received", True),
    ("dtncloud_sbd_sessions_ok_total", "SBD sessions that succeeded.", "sessions_ok", True),
    ("dtncloud_sbd_sessions_failed_total", "SBD sessions that failed.", "sessions_failed", True),
    ("dtncloud_sbd_queued_bundles", "Bundles waiting for the modem.", "queued_bundles", False),
    ("dtncloud_sbd_credits_left_today", "Credits left in today's budget (absent without a budget).", "credits_left_today", False),
    ("dtncloud_sbd_signal", "The modem's last signal quality (0-5).", "signal", False),
)  # fmt: skip


def _sbd_stats(clas: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    figures = {}
    for name, cla in clas.items():
        if getattr(cla, "name", None) == "sbd":
            figures[name] = cla.stats.as_dict()
    return figures


class DeviceLinkCollector(Collector):
    """Per-CLA figures of the node's SBD links (``clas()``: the node's CLAs by name)."""

    def __init__(self, clas: Callable[[], Mapping[str, Any]]) -> None:
        self._clas = clas

    def collect(self) -> Iterator[Metric]:
        figures = _sbd_stats(self._clas())
        if not figures:
            return
        for metric, doc, key, counter in _SBD_FIGURES:
            family: CounterMetricFamily | GaugeMetricFamily
            if counter:
                family = CounterMetricFamily(metric.removesuffix("_total"), doc, labels=["cla"])
            else:
                family = GaugeMetricFamily(metric, doc, labels=["cla"])
            for name, stats in sorted(figures.items()):
                value = stats.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([name], value)
            yield family


def device_link_status(clas: Mapping[str, Any]) -> dict[str, Any]:
    """The disrupted links' own figures for the status document, by CLA name."""
    status: dict[str, Any] = dict(_sbd_stats(clas))
    for name, cla in clas.items():
        if getattr(cla, "name", None) in ("serial", "mule"):
            stats = getattr(cla, "stats", None)
            extra = getattr(stats, "extra", None)
            if isinstance(extra, dict):
                status[name] = dict(sorted(extra.items()))
    return status
