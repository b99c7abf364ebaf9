"""The asyncio shell: a node driven by the wall clock, a store and convergence layers."""

from dtncloud.runtime.node import Delivery, Node, wall_clock_ms

__all__ = ["Delivery", "Node", "wall_clock_ms"]
