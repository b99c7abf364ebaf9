"""dtncloud: delay-tolerant networking for clouds of small, scattered machines.

The bundle codecs live in :mod:`dtncloud.bpv7` (RFC 9171), :mod:`dtncloud.bpv6` (RFC 5050) and
:mod:`dtncloud.bpsec` (RFC 9172/9173); endpoint IDs in :mod:`dtncloud.eid`; every error in
:mod:`dtncloud.errors`.
"""

from dtncloud.eid import DTN_NONE, EID, DtnEID, IpnEID
from dtncloud.errors import DtnError

__version__ = "0.1.0"

__all__ = ["DTN_NONE", "EID", "DtnEID", "DtnError", "IpnEID", "__version__"]

# The API client pulls in asyncio and the node runtime, so it is imported on first use only
# (and not named to type checkers here, since the core's import rules are checked through this
# module: typed code imports it from dtncloud.client).
__all__ += ["Client", "SyncClient"]


def __getattr__(name: str) -> type:
    if name in ("Client", "SyncClient"):
        import importlib

        cls: type = getattr(importlib.import_module("dtncloud.client"), name)
        return cls
    raise AttributeError(f"module 'dtncloud' has no attribute {name!r}")
