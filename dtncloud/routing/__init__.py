"""Router plug-ins, one module per router, registered by name in ``default_registry``."""

from dtncloud.routing.base import (
    ControlMessage,
    Decision,
    Drop,
    Forward,
    LinkInfo,
    Router,
    RouterRegistry,
    RoutingView,
    Wait,
    default_registry,
    node_of,
)

__all__ = [
    "ControlMessage",
    "Decision",
    "Drop",
    "Forward",
    "LinkInfo",
    "Router",
    "RouterRegistry",
    "RoutingView",
    "Wait",
    "default_registry",
    "node_of",
]
