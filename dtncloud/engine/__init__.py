"""The bundle protocol agent (RFC 9171 section 5) as a sans-IO state machine.

>>> from dtncloud.engine import BundleProtocolAgent, EngineConfig, inputs
>>> from dtncloud.routing import default_registry
>>> import dtncloud.routing.static  # registers "static"
>>> agent = BundleProtocolAgent(EngineConfig("dtn://a/"),
...                             default_registry.create("static", node_id="dtn://a/"))
>>> agent.handle(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/app", b"hi",
...                                          submission=1), now=1_000)
>>> type(agent.next_action()).__name__
'Persist'
"""

from dtncloud.engine import actions, inputs
from dtncloud.engine.agent import BundleProtocolAgent
from dtncloud.engine.config import EngineConfig
from dtncloud.engine.listener import EngineListener, Listeners
from dtncloud.engine.transmit import BibeWrap, TransmitPlan, reassemble_stored, render

__all__ = [
    "BibeWrap",
    "BundleProtocolAgent",
    "EngineConfig",
    "EngineListener",
    "Listeners",
    "TransmitPlan",
    "actions",
    "inputs",
    "reassemble_stored",
    "render",
]
