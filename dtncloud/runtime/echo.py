"""The echo service: every node answers bundles sent to its echo endpoint with their payload.

``dtncloud ping`` relies on it. The endpoint is ``<node>/echo`` for a ``dtn:`` node and
service number 7 (the echo port of the Internet's own tradition) for an ``ipn:`` node, as
dtn7-rs does, so that the two ping each other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dtncloud.errors import DtnError

if TYPE_CHECKING:
    from dtncloud.runtime.node import Delivery, Node

__all__ = ["ECHO_IPN_SERVICE", "EchoService", "echo_endpoint"]

log = logging.getLogger("dtncloud.echo")

#: The service number of the echo endpoint on an ``ipn:`` node.
ECHO_IPN_SERVICE = 7
#: Replies live this long: a ping's answer is of no use later than that.
REPLY_LIFETIME_MS = 3_600_000


def echo_endpoint(node_id: str) -> str:
    """The echo endpoint of the node ``node_id`` (``dtn://a/`` or ``ipn:5.0``)."""
    if node_id.startswith("ipn:"):
        return f"{node_id.rpartition('.')[0]}.{ECHO_IPN_SERVICE}"
    return node_id.rstrip("/") + "/echo"


def _is_echo(eid: str) -> bool:
    if eid.startswith("ipn:"):
        return eid.rpartition(".")[2] == str(ECHO_IPN_SERVICE)
    return eid.endswith("/echo")


class EchoService:
    """Registers the node's echo endpoint and sends every payload back to its source."""

    def __init__(self, node: Node, *, lifetime_ms: int = REPLY_LIFETIME_MS) -> None:
        self.node = node
        self.endpoint = echo_endpoint(node.config.node_id)
        self.lifetime_ms = lifetime_ms
        self.answered = 0

    def start(self) -> None:
        self.node.register(self.endpoint, self._answer)

    def stop(self) -> None:
        self.node.unregister(self.endpoint, forget=True)

    async def _answer(self, delivery: Delivery) -> None:
        source = delivery.source
        # Nobody to answer, or another echo service: answering it would start a ping-pong
        # between two echo endpoints that never ends.
        if delivery.is_admin_record or source == "dtn:none" or _is_echo(source):
            return
        try:
            await self.node.send(self.endpoint, source, delivery.payload, lifetime=self.lifetime_ms)
        except DtnError as exc:  # the ping is lost, as it could have been on the way
            log.info("echo to %s not sent: %s", source, exc)
            return
        self.answered += 1
