"""NodeMetrics: its hooks driven by hand, then by real nodes; the rendered text is parsed."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dtncloud.cla.base import Link, Outgoing
from dtncloud.cla.memory import MemoryConvergenceLayer, MemoryNetwork
from dtncloud.engine import EngineConfig
from dtncloud.errors import StoreError
from dtncloud.routing import LinkInfo, default_registry
from dtncloud.runtime import Delivery, Node
from dtncloud.runtime.metrics import NodeMetrics, cla_of, reason_name
from dtncloud.store.base import BundleMeta, StoreUsage
from dtncloud.store.memory import MemoryStore

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: bytes) -> Samples:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def meta(bundle_id: str = "dtn://x/-1-0") -> BundleMeta:
    return BundleMeta(bundle_id, "dtn://x/app", "dtn://y/app", 1, 0, 10_000, 100, 1)


class FakeLink(Link):
    def __init__(self, cla_name: str) -> None:
        super().__init__()
        self.cla_name = cla_name
        self.peer_address = "peer"

    @property
    def peer_node_id(self) -> str | None:
        return None

    @property
    def max_bundle_size(self) -> int | None:
        return None

    @property
    def is_up(self) -> bool:
        return True

    async def send(self, bundle: Outgoing) -> None:
        raise AssertionError("not used")

    async def close(self) -> None:
        raise AssertionError("not used")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 30)

    asyncio.run(main())


# -- hooks driven by hand ---------------------------------------------------------------


def test_helpers_name_reasons_and_clas() -> None:
    assert reason_name(0) == "no_additional_information"
    assert reason_name(1) == "lifetime_expired"
    assert reason_name(16) == "conflicting_security_operation"
    assert reason_name(99) == "reason_99"
    assert cla_of("tcpcl-3") == "tcpcl"
    assert cla_of("tcpcl_v3-12") == "tcpcl_v3"
    assert cla_of("odd") == "odd"


def test_hooks_become_counters_with_labels() -> None:
    clock = Clock()
    m = NodeMetrics("dtn://a/", version="9.9", monotonic=clock)
    m.link_up(LinkInfo("tcpcl-3", "dtn://b/", "tcpcl"), 0)
    m.bundle_created(meta(), 0)
    m.bundle_created(meta(), 0)
    m.bundle_received(meta(), "tcpcl-3", 0)
    m.bundle_received(meta(), "udp-7", 0)  # never announced: the CLA is read off the ID
    m.bundle_received(meta(), None, 0)
    m.bundle_forwarded(meta(), "tcpcl-3", 0)
    m.bundle_delivered(meta(), "dtn://a/app", 0)
    m.bundle_deleted(meta(), 0, 0)
    m.bundle_deleted(meta(), 0, 0)
    m.bundle_deleted(meta(), 1, 0)
    m.bundle_refused(None, 8, "bad CRC", 0)
    m.bundle_refused("x", 99, "odd", 0)
    m.bundle_duplicate("x", 0)
    m.link_up(LinkInfo("udp-8", None, "udp"), 0)
    m.link_down("udp-8", "gone", 0)
    clock.t = 112.5

    s = parse(m.render())

    assert value(s, "dtncloud_build_info", version="9.9", node_id="dtn://a/") == 1
    assert value(s, "dtncloud_uptime_seconds") == 12.5
    assert value(s, "dtncloud_bundles_created_total") == 2
    assert value(s, "dtncloud_bundles_received_total", cla="tcpcl") == 1
    assert value(s, "dtncloud_bundles_received_total", cla="udp") == 1
    assert value(s, "dtncloud_bundles_received_total", cla="none") == 1
    assert value(s, "dtncloud_bundles_forwarded_total", cla="tcpcl") == 1
    assert value(s, "dtncloud_bundles_delivered_total") == 1
    assert value(s, "dtncloud_bundles_deleted_total", reason="no_additional_information") == 2
    assert value(s, "dtncloud_bundles_deleted_total", reason="lifetime_expired") == 1
    assert value(s, "dtncloud_bundles_refused_total", reason="block_unintelligible") == 1
    assert value(s, "dtncloud_bundles_refused_total", reason="reason_99") == 1
    assert value(s, "dtncloud_duplicates_received_total") == 1
    assert value(s, "dtncloud_status_reports_received_total") == 0
    assert value(s, "dtncloud_links_opened_total", cla="tcpcl") == 1
    assert value(s, "dtncloud_links_opened_total", cla="udp") == 1
    assert value(s, "dtncloud_links_closed_total", cla="udp") == 1
    assert value(s, "dtncloud_links_up", cla="tcpcl") == 1
    assert value(s, "dtncloud_links_up", cla="udp") is None
    assert value(s, "dtncloud_custody_pending") == 0
    # nothing attached: no store numbers rather than made-up zeros
    assert not [key for key in s if key[0].startswith("dtncloud_store_")]


def test_every_family_is_typed_and_prefixed() -> None:
    m = NodeMetrics("dtn://a/", store_usage=_usage(StoreUsage(3, 300, 1000)))
    text = m.render(asyncio.run(m.snapshot()))
    families = list(text_string_to_metric_families(text.decode()))
    assert {f.name for f in families} >= {
        "dtncloud_build_info",
        "dtncloud_bundles_created",
        "dtncloud_store_bytes",
        "dtncloud_store_quota_bytes",
    }
    for family in families:
        assert family.name.startswith("dtncloud_")
        assert family.type in ("counter", "gauge")
        assert family.documentation


def _usage(usage: StoreUsage) -> Callable[[], Awaitable[StoreUsage]]:
    async def read() -> StoreUsage:
        return usage

    return read


def test_snapshot_awaits_the_store_and_reads_custody() -> None:
    m = NodeMetrics(
        "dtn://a/", store_usage=_usage(StoreUsage(3, 300, None)), custody_pending=lambda: 2
    )
    snap = asyncio.run(m.snapshot())
    s = parse(m.render(snap))
    assert value(s, "dtncloud_store_bundles") == 3
    assert value(s, "dtncloud_store_bytes") == 300
    assert value(s, "dtncloud_store_quota_bytes") is None  # no quota, no gauge
    assert value(s, "dtncloud_custody_pending") == 2


def test_a_failing_store_leaves_the_other_numbers() -> None:
    async def broken() -> StoreUsage:
        raise StoreError("closed")

    m = NodeMetrics("dtn://a/", store_usage=broken)
    m.bundle_created(meta(), 0)
    snap = asyncio.run(m.snapshot())
    assert snap.store is None
    s = parse(m.render(snap))
    assert value(s, "dtncloud_bundles_created_total") == 1
    assert m.status_document(snap)["store"] is None


def test_a_snapshot_does_not_move_with_later_counts() -> None:
    m = NodeMetrics("dtn://a/")
    m.bundle_received(meta(), "tcpcl-1", 0)
    snap = m.snapshot_now()
    m.bundle_received(meta(), "tcpcl-1", 0)
    m.bundle_created(meta(), 0)
    s = parse(m.render(snap))
    assert value(s, "dtncloud_bundles_received_total", cla="tcpcl") == 1
    assert value(s, "dtncloud_bundles_created_total") == 0


def test_transfer_bytes_survive_links_going_down() -> None:
    live: dict[str, Link] = {}
    m = NodeMetrics("dtn://a/", links=lambda: live)
    first = live["tcpcl-1"] = FakeLink("tcpcl")
    m.link_up(LinkInfo("tcpcl-1", None, "tcpcl"), 0)
    first.stats.bytes_sent, first.stats.bytes_received = 1000, 10
    # the link goes before any scrape: the node forgets it first, then tells the agent
    del live["tcpcl-1"]
    m.link_down("tcpcl-1", "closed", 0)
    second = live["tcpcl-2"] = FakeLink("tcpcl")
    m.link_up(LinkInfo("tcpcl-2", None, "tcpcl"), 0)
    second.stats.bytes_sent = 500

    s = parse(m.render())
    assert value(s, "dtncloud_transfer_sent_bytes_total", cla="tcpcl") == 1500
    assert value(s, "dtncloud_transfer_received_bytes_total", cla="tcpcl") == 10

    second.stats.bytes_sent = 700
    s = parse(m.render())
    assert value(s, "dtncloud_transfer_sent_bytes_total", cla="tcpcl") == 1700


def test_links_seen_only_at_scrapes_are_counted_once() -> None:
    live: dict[str, Link] = {}
    m = NodeMetrics("dtn://a/")
    # up before the links callable was wired: first seen at a scrape
    m.link_up(LinkInfo("udp-1", None, "udp"), 0)
    link = live["udp-1"] = FakeLink("udp")
    link.stats.bytes_sent = 40
    m.links = lambda: live
    assert parse(m.render())[("dtncloud_transfer_sent_bytes_total", (("cla", "udp"),))] == 40
    # dropped by the node without a link_down reaching the metrics: still counted once
    del live["udp-1"]
    link.stats.bytes_sent = 50
    for _ in range(2):
        s = parse(m.render())
        assert value(s, "dtncloud_transfer_sent_bytes_total", cla="udp") == 50
    m.link_down("udp-1", "gone", 0)
    s = parse(m.render())
    assert value(s, "dtncloud_transfer_sent_bytes_total", cla="udp") == 50


def test_status_document_holds_the_same_numbers() -> None:
    live: dict[str, Link] = {"tcpcl-1": FakeLink("tcpcl")}
    live["tcpcl-1"].stats.bytes_received = 77
    m = NodeMetrics(
        "dtn://a/",
        version="1.2",
        store_usage=_usage(StoreUsage(1, 50, 500)),
        links=lambda: live,
        custody_pending=lambda: 4,
    )
    m.link_up(LinkInfo("tcpcl-1", "dtn://b/", "tcpcl"), 0)
    m.bundle_received(meta(), "tcpcl-1", 0)
    m.bundle_deleted(meta(), 1, 0)
    snap = asyncio.run(m.snapshot())

    doc = json.loads(json.dumps(m.status_document(snap)))  # JSON-friendly, round trip
    s = parse(m.render(snap))

    assert doc["node_id"] == "dtn://a/"
    assert doc["version"] == "1.2"
    assert doc["bundles"]["received"] == {"tcpcl": 1}
    assert doc["bundles"]["deleted"] == {"lifetime_expired": 1}
    assert doc["bundles"]["custody_pending"] == value(s, "dtncloud_custody_pending") == 4
    assert doc["store"] == {"bundles": 1, "bytes": 50, "quota_bytes": 500}
    assert doc["store"]["bytes"] == value(s, "dtncloud_store_bytes")
    assert doc["links"]["up"] == [{"link_id": "tcpcl-1", "cla": "tcpcl", "peer_node": "dtn://b/"}]
    assert doc["links"]["up_by_cla"] == {"tcpcl": 1}
    assert doc["links"]["bytes_received"] == {"tcpcl": 77}
    assert value(s, "dtncloud_transfer_received_bytes_total", cla="tcpcl") == 77


def test_each_node_has_its_own_registry() -> None:
    a, b = NodeMetrics("dtn://a/"), NodeMetrics("dtn://b/")
    a.bundle_created(meta(), 0)
    assert value(parse(a.render()), "dtncloud_bundles_created_total") == 1
    assert value(parse(b.render()), "dtncloud_bundles_created_total") == 0
    assert a.registry is not b.registry
    global_names = {metric.name for metric in REGISTRY.collect()}
    assert not any(name.startswith("dtncloud_") for name in global_names)


# -- real nodes -------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.got: list[Delivery] = []
        self.arrived = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.got.append(delivery)
        self.arrived.set()


def make_node(node_id: str, routes: list[dict[str, str]] | None = None) -> tuple[Node, NodeMetrics]:
    metrics = NodeMetrics(node_id)
    router = default_registry.create("static", node_id=node_id, params={"routes": routes or []})
    node = Node(EngineConfig(node_id=node_id), MemoryStore(), router, listener=metrics)
    metrics.attach(node)
    return node, metrics


def test_a_node_sending_to_itself() -> None:
    async def body() -> None:
        node, metrics = make_node("dtn://a/")
        inbox = Inbox()
        async with node:
            node.register("dtn://a/app", inbox)
            await node.send("dtn://a/app", "dtn://a/app", b"x")
            await inbox.arrived.wait()
            await node.idle()
            s = parse(metrics.render(await metrics.snapshot()))
            doc = metrics.status_document(await metrics.snapshot())
        assert value(s, "dtncloud_bundles_created_total") == 1
        assert value(s, "dtncloud_bundles_delivered_total") == 1
        assert value(s, "dtncloud_bundles_deleted_total", reason="no_additional_information") == 1
        assert value(s, "dtncloud_store_bundles") == 0
        assert value(s, "dtncloud_store_bytes") == 0
        assert doc["bundles"]["delivered"] == 1
        assert doc["store"]["bundles"] == 0

    run(body)


def test_two_nodes_over_memory_links() -> None:
    async def body() -> None:
        network = MemoryNetwork()
        a, a_metrics = make_node("dtn://a/", [{"pattern": "dtn://b/*", "via": "dtn://b/"}])
        b, b_metrics = make_node("dtn://b/")
        a_cla = a.add_cla(lambda n: MemoryConvergenceLayer(n, network, "a", node_id="dtn://a/"))
        b.add_cla(lambda n: MemoryConvergenceLayer(n, network, "b", node_id="dtn://b/"))
        inbox = Inbox()
        async with a, b:
            b.register("dtn://b/app", inbox)
            await a.connect(a_cla, "b")
            await a.send("dtn://a/app", "dtn://b/app", b"hello")
            await inbox.arrived.wait()
            await a.idle()
            await b.idle()
            before = parse(a_metrics.render(await a_metrics.snapshot()))
            network.cut("a", "b")
            after = parse(a_metrics.render(await a_metrics.snapshot()))
            at_b = parse(b_metrics.render(await b_metrics.snapshot()))

        assert value(before, "dtncloud_bundles_forwarded_total", cla="memory") == 1
        assert value(before, "dtncloud_links_up", cla="memory") == 1
        sent = value(before, "dtncloud_transfer_sent_bytes_total", cla="memory")
        assert sent is not None and sent > len(b"hello")
        assert value(after, "dtncloud_links_up", cla="memory") is None
        assert value(after, "dtncloud_links_closed_total", cla="memory") == 1
        assert value(after, "dtncloud_transfer_sent_bytes_total", cla="memory") == sent
        assert value(at_b, "dtncloud_bundles_received_total", cla="memory") == 1
        assert value(at_b, "dtncloud_transfer_received_bytes_total", cla="memory") == sent
        assert value(at_b, "dtncloud_bundles_delivered_total") == 1

    run(body)


# -- docs/metrics.md --------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
DOC_TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC_TEXT, re.DOTALL)


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_doc_example_runs(code: str) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        exec(compile(code, str(DOC), "exec"), {})
    finally:  # the logging example configures the root logger
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        logging.getLogger("aiosqlite").setLevel(logging.NOTSET)


def test_doc_lists_every_metric() -> None:
    live: dict[str, Link] = {"tcpcl-1": FakeLink("tcpcl")}
    m = NodeMetrics("dtn://a/", store_usage=_usage(StoreUsage(1, 2, 3)), links=lambda: live)
    m.link_up(LinkInfo("tcpcl-1", None, "tcpcl"), 0)
    m.link_down("tcpcl-1", "gone", 0)
    for hook in ("bundle_received", "bundle_forwarded"):
        getattr(m, hook)(meta(), "tcpcl-1", 0)
    m.bundle_deleted(meta(), 0, 0)
    m.bundle_refused(None, 1, "", 0)
    m.link_up(LinkInfo("tcpcl-2", None, "tcpcl"), 0)
    rendered = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(m.render(asyncio.run(m.snapshot())).decode())
    }
    documented = set(re.findall(r"^\| `(dtncloud_\w+)` \|", DOC_TEXT, re.MULTILINE))
    assert rendered == documented
