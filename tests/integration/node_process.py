"""A receiving node in its own process, for the kill tests: ``python -m
tests.integration.node_process STORE_DIR``. Prints ``PORT <n> BUNDLES <count>`` once it
listens, then runs until killed."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import dtncloud.routing  # noqa: F401  (registers the routers)
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.engine import EngineConfig
from dtncloud.routing import default_registry
from dtncloud.runtime import Node
from dtncloud.store.sqlite import SqliteStore


async def main(store_dir: Path) -> None:
    router = default_registry.create("static", node_id="dtn://r/", rng=random.Random(1))
    node = Node(EngineConfig("dtn://r/"), SqliteStore(store_dir), router)
    options = TcpclOptions(node_id="dtn://r/", listen="127.0.0.1", port=0)
    cla = node.add_cla(lambda n: TcpclConvergenceLayer(n, options))
    assert isinstance(cla, TcpclConvergenceLayer)
    await node.start()
    print(f"PORT {cla.port} BUNDLES {len(node.agent)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
