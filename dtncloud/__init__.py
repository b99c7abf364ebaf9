"""dtncloud: delay-tolerant networking for clouds of small, scattered machines.

The bundle codecs live in :mod:`dtncloud.bpv7` (RFC 9171), :mod:`dtncloud.bpv6` (RFC 5050) and
:mod:`dtncloud.bpsec` (RFC 9172/9173); endpoint IDs in :mod:`dtncloud.eid`; every error in
:mod:`dtncloud.errors`.
"""

from dtncloud.eid import DTN_NONE, EID, DtnEID, IpnEID
from dtncloud.errors import DtnError

__version__ = "0.1.0"

__all__ = ["DTN_NONE", "EID", "DtnEID", "DtnError", "IpnEID", "__version__"]
