"""The UDP convergence layer's protocol logic (RFC 7122), sans-IO.

One bundle per datagram, no header, no acknowledgement: what there is to decide is what a
received datagram holds (:func:`classify`) and how fast to send (:class:`TokenBucket`). The
asyncio driver is :mod:`dtncloud.cla.udp`.
"""

from dtncloud.udpcl.datagram import (
    IPV4_MAX_PAYLOAD,
    IPV6_MAX_PAYLOAD,
    KEEPALIVE,
    Classification,
    DatagramKind,
    classify,
    is_keepalive,
)
from dtncloud.udpcl.ratelimit import DEFAULT_RATE_BYTES_PER_S, TokenBucket

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_RATE_BYTES_PER_S",
    "IPV4_MAX_PAYLOAD",
    "IPV6_MAX_PAYLOAD",
    "KEEPALIVE",
    "Classification",
    "DatagramKind",
    "TokenBucket",
    "classify",
    "is_keepalive",
]

#: IANA port for the bundle protocol over UDP (RFC 7122), shared with TCPCL.
DEFAULT_PORT = 4556
