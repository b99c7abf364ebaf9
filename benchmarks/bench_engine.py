"""Engine throughput and index memory: reception -> persist -> forwarding decision.

Three contenders take the same pre-encoded 1 KiB bundles, in interleaved rounds:

* ``engine+sqlite``: a :class:`dtncloud.runtime.Node` with a durable ``SqliteStore`` (WAL,
  ``synchronous=FULL``); ``--concurrency`` receivers hand it bundles as links would, each
  waiting for its acknowledgement, which comes once the bundle is durably stored. The router
  has no route for them, so every bundle ends in a "wait" decision.
* ``bare aiosqlite``: the baseline, a loop inserting the same rows (metadata and bundle
  bytes) into the same kind of database with the same durability, one commit per bundle,
  as a node without group commit would have to.
* ``engine+memory``: the same node with a ``MemoryStore``.

Then the index: 100,000 bundles are fed to a bare agent (no store), and the memory the agent
holds afterwards is measured with ``tracemalloc``.

Targets (issue 4): engine+sqlite >= 50% of bare aiosqlite; engine+memory >= 20,000
bundles/s; index of 100,000 bundles < 100 MB. Missing a target is reported, not raised.

    python benchmarks/bench_engine.py [--count N] [--rounds R] [--concurrency C]
                                      [--index-bundles N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

try:
    import dtncloud
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosqlite

import dtncloud.routing
from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.engine import BundleProtocolAgent, EngineConfig, actions, inputs
from dtncloud.routing import default_registry
from dtncloud.runtime import Node, wall_clock_ms
from dtncloud.store.base import Store
from dtncloud.store.memory import MemoryStore, MemoryStoreCore
from dtncloud.store.sqlite import SqliteStore

NODE = "dtn://bench/"


def make_bundles(count: int, start: int, payload: int = 1024) -> list[bytes]:
    now = wall_clock_ms()
    return [
        encode_bundle(
            Bundle.create(
                source="dtn://src/app",
                destination="dtn://far/app",
                payload=random.Random(i).randbytes(payload),
                creation_time=now,
                sequence=start + i,
            )
        )
        for i in range(count)
    ]


def make_router() -> dtncloud.routing.Router:
    # every bundle goes to a neighbour that is not connected: the decision is "wait"
    return default_registry.create(
        "static", node_id=NODE, rng=random.Random(1), params={"default": "dtn://next-hop/"}
    )


def make_node(store: Store) -> Node:
    return Node(EngineConfig(NODE), store, make_router())


async def run_engine(store: Store, bundles: list[bytes], concurrency: int) -> float:
    node = make_node(store)
    await node.start()
    feed = iter(bundles)

    async def link() -> None:
        for data in feed:
            accepted, reason = await node.receive(data, None)
            if not accepted:
                raise SystemExit(f"bundle refused with reason {reason}")

    start = time.perf_counter()
    await asyncio.gather(*(link() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    held = len(node.agent)
    await node.stop()
    if held != len(bundles):
        raise SystemExit(f"the node holds {held} bundles, not {len(bundles)}")
    return len(bundles) / elapsed


async def run_bare(path: Path, bundles: list[bytes]) -> float:
    """One INSERT and one COMMIT per bundle: the same durability, without group commit."""
    now = wall_clock_ms()
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute(
            "CREATE TABLE bundles (bundle_id TEXT PRIMARY KEY, source TEXT, destination TEXT,"
            " creation_time INTEGER, sequence INTEGER, expires_at INTEGER, size INTEGER,"
            " received_at INTEGER, retention INTEGER, flags INTEGER, report_to TEXT, data BLOB)"
        )
        await db.commit()
        start = time.perf_counter()
        for i, data in enumerate(bundles):
            await db.execute(
                "INSERT INTO bundles VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"dtn://src/@{now}.{i}",
                    "dtn://src/app",
                    "dtn://far/app",
                    now,
                    i,
                    now + 86_400_000,
                    len(data),
                    now,
                    1,
                    0,
                    "dtn://src/",
                    data,
                ),
            )
            await db.commit()
        return len(bundles) / (time.perf_counter() - start)


def index_memory(count: int) -> float:
    """MB the agent holds for ``count`` stored bundles (measured with tracemalloc)."""
    bundles = make_bundles(count, 0, payload=64)
    router = make_router()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    agent = BundleProtocolAgent(EngineConfig(NODE), router)
    now = wall_clock_ms()
    for data in bundles:
        agent.handle(inputs.BundleReceived(data), now)
        for action in agent.actions():
            if isinstance(action, actions.Persist):
                agent.handle(inputs.Persisted(action.meta.bundle_id), now)
        agent.next_action()
    del bundles
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(agent) == count
    return held / 1e6


def sync_rate(bundles: list[bytes]) -> float:
    """Bundles/s of the agent with a MemoryStoreCore driven synchronously, the way the
    simulator drives it (no event loop)."""
    agent = BundleProtocolAgent(EngineConfig(NODE), make_router())
    core = MemoryStoreCore()
    now = wall_clock_ms()
    start = time.perf_counter()
    for data in bundles:
        agent.handle(inputs.BundleReceived(data, None, True), now)
        for action in agent.actions():
            if isinstance(action, actions.Persist):
                core.put(action.meta, action.data)
                agent.handle(inputs.Persisted(action.meta.bundle_id), now)
    return len(bundles) / (time.perf_counter() - start)


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5_000, help="bundles per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="receivers feeding the node at once (like links)",
    )
    parser.add_argument("--index-bundles", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.rounds, args.index_bundles = 300, 1, 2_000

    results: dict[str, list[float]] = {
        "engine+sqlite": [],
        "bare aiosqlite": [],
        "engine+memory": [],
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        for r in range(args.rounds):
            bundles = make_bundles(args.count, r * args.count)
            contenders: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                (
                    "engine+sqlite",
                    partial(run_engine, SqliteStore(tmp / f"s{r}"), bundles, args.concurrency),
                ),
                ("bare aiosqlite", partial(run_bare, tmp / f"bare{r}.sqlite3", bundles)),
                ("engine+memory", partial(run_engine, MemoryStore(), bundles, args.concurrency)),
            ]
            order = contenders[r % 3 :] + contenders[: r % 3]
            for name, run in order:
                gc.collect()
                results[name].append(asyncio.run(run()))
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{name} {results[name][-1]:,.0f}/s" for name in results),
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = median_ratio(results["engine+sqlite"], results["bare aiosqlite"])
    memory_rate = statistics.median(results["engine+memory"])
    print(f"building the index of {args.index_bundles:,} bundles ...", flush=True)
    index_mb = index_memory(args.index_bundles)
    agent_rate = sync_rate(make_bundles(args.count, 10**9))
    per_100k = index_mb * 100_000 / args.index_bundles

    figures: dict[str, Any] = {
        "count": args.count,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "rates": {k: statistics.median(v) for k, v in results.items()},
        "sqlite_ratio": ratio,
        "index_mb": index_mb,
        "index_bundles": args.index_bundles,
        "agent_only_rate": agent_rate,
    }
    print()
    print(
        f"engine+sqlite vs bare aiosqlite: {ratio:.0%} "
        f"({figures['rates']['engine+sqlite']:,.0f} vs "
        f"{figures['rates']['bare aiosqlite']:,.0f} bundles/s)  target >= 50%: "
        f"{'met' if ratio >= 0.5 else 'NOT met'}"
    )
    print(
        f"engine+memory: {memory_rate:,.0f} bundles/s  target >= 20,000: "
        f"{'met' if memory_rate >= 20_000 else 'NOT met'}"
    )
    print(
        f"agent with MemoryStoreCore, no event loop (as in the simulator): "
        f"{agent_rate:,.0f} bundles/s"
    )
    print(
        f"index: {index_mb:.1f} MB for {args.index_bundles:,} bundles "
        f"({per_100k:.1f} MB per 100,000)  target < 100 MB: "
        f"{'met' if per_100k < 100 else 'NOT met'}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
