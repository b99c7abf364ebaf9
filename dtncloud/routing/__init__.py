"""Router plug-ins, one module per router, registered by name in ``default_registry``.

Importing this package registers every router shipped with dtncloud: ``static``, ``direct``,
``first_contact``, ``epidemic``, ``prophet``, ``spray_and_wait`` and ``cgr`` (contact graph
routing over a contact plan, see :mod:`dtncloud.routing.contact_plan`).
"""

from dtncloud.routing import (  # noqa: F401  (imported to register the routers)
    cgr,
    direct,
    epidemic,
    first_contact,
    prophet,
    spray_and_wait,
    static,
)
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
