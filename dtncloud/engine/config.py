"""Settings of a bundle protocol agent."""

from __future__ import annotations

from dataclasses import dataclass

from dtncloud.bpv7.decode import DEFAULT_MAX_BLOCKS, DEFAULT_MAX_BUNDLE_SIZE
from dtncloud.errors import ConfigError
from dtncloud.routing.base import ROUTING_BLOCK_TYPE, node_of

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What a node is and how its agent behaves. Times are milliseconds.

    ``node_id`` is the node's own endpoint ID (``dtn://name/`` or ``ipn:N.0``); it is the
    administrative endpoint too. ``clock_accurate`` False makes the node stamp its bundles
    with creation time 0 and a bundle age block (RFC 9171 section 4.2.7). ``remember`` is how
    many bundle IDs the node keeps after it has let a bundle go, to recognise duplicates.
    ``retry_ms`` is how long a bundle whose transmission failed waits before it is routed
    again while links stay up.
    """

    node_id: str
    clock_accurate: bool = True
    max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE
    max_blocks: int = DEFAULT_MAX_BLOCKS
    #: accept the pre-RFC forms older implementations send
    lenient: bool = False
    status_reports: bool = True
    report_lifetime: int = 86_400_000
    remember: int = 50_000
    retry_ms: int = 30_000
    #: routing messages between neighbours' routers
    routing_demux: str = "~routing"
    routing_service: int = 254
    routing_message_lifetime: int = 60_000
    routing_block_type: int = ROUTING_BLOCK_TYPE
    #: after a transfer broke part-way, send only what the peer did not acknowledge. Switch it
    #: on only where every neighbour keeps the prefixes of broken transfers (dtncloud nodes
    #: do); others would lose the acknowledged part.
    reactive_fragmentation: bool = False
    #: send bundles to neighbours under BIBE custody transfer
    custody: bool = False
    custody_retransmit_ms: int = 60_000
    custody_max_retransmit_ms: int = 3_600_000
    #: how long accepted transmission IDs are gathered before a custody signal goes out
    custody_signal_delay_ms: int = 1_000

    def __post_init__(self) -> None:
        node = self.node_id
        if not (node.startswith("dtn://") and node.endswith("/") and len(node) > 7) and not (
            node.startswith("ipn:") and node.endswith(".0")
        ):
            raise ConfigError(
                f"node ID {node!r} must be a node endpoint such as dtn://name/ or ipn:7.0"
            )
        if self.custody_max_retransmit_ms < self.custody_retransmit_ms:
            raise ConfigError(
                "engine setting custody_max_retransmit_ms must be at least custody_retransmit_ms"
            )
        if node_of(node) != node:
            raise ConfigError(f"node ID {node!r} is not a node endpoint")
        for name in (
            "max_bundle_size",
            "max_blocks",
            "report_lifetime",
            "remember",
            "retry_ms",
            "routing_message_lifetime",
            "custody_retransmit_ms",
            "custody_signal_delay_ms",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"engine setting {name} must be positive")

    @property
    def routing_endpoint(self) -> str:
        return routing_endpoint_of(self.node_id, self)


def routing_endpoint_of(node_id: str, config: EngineConfig) -> str:
    """The endpoint where ``node_id``'s router takes routing messages."""
    if node_id.startswith("ipn:"):
        return f"{node_id[:-2]}.{config.routing_service}"
    return f"{node_id}{config.routing_demux}"
