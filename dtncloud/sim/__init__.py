"""The scenario simulator: the deployed engine and routers in virtual time.

A discrete-event shell around the sans-IO core (docs/ARCHITECTURE.md, "the second shell"):
a heap of events (:mod:`~dtncloud.sim.scheduler`), in-memory links with a rate, a delay and
losses (:mod:`~dtncloud.sim.links`), nodes that run the very
:class:`~dtncloud.engine.agent.BundleProtocolAgent` and routers ``dtnd`` runs, over a
:class:`~dtncloud.store.memory.MemoryStoreCore` (:mod:`~dtncloud.sim.node`), and statistics
named as the ONE simulator's MessageStatsReport (:mod:`~dtncloud.sim.stats`). Contact and
message traces in the ONE's external-events format are read by
:mod:`~dtncloud.sim.one_format`. Nothing here reads a clock or touches the network.
"""

from dtncloud.sim.links import LinkModel
from dtncloud.sim.node import SimNode, app_endpoint
from dtncloud.sim.scheduler import Scheduler
from dtncloud.sim.stats import SimStats
from dtncloud.sim.world import Simulation, node_id_of

__all__ = [
    "LinkModel",
    "Scheduler",
    "SimNode",
    "SimStats",
    "Simulation",
    "app_endpoint",
    "node_id_of",
]
