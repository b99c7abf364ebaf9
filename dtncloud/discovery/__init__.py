"""IP neighbour discovery, sans-IO: CBOR beacons (dtn7-rs "IPND version 7") and a neighbour
table with its beacon schedule. The asyncio driver is :mod:`dtncloud.cla.discovery`.

>>> from dtncloud.discovery import Discovery, DiscoveryConfig, Service
>>> a = Discovery(DiscoveryConfig("dtn://a/", services=(Service("tcpcl", 4556),)), now=0)
>>> b = Discovery(DiscoveryConfig("dtn://b/"), now=0)
>>> a.handle_timer(0)
>>> b.beacon_received(a.beacon_to_send(0), "192.0.2.1", now=5)
>>> b.next_event()
NeighbourFound(node_id='dtn://a/', host='192.0.2.1', services=(Service(cla='tcpcl', port=4556, host=None),))
"""

from dtncloud.discovery.beacon import (
    FLAG_EID,
    FLAG_PERIOD,
    FLAG_SERVICES,
    IPND_VERSION,
    MAX_BEACON_SIZE,
    Beacon,
    BeaconDecodeError,
    Service,
    UnsupportedBeacon,
    decode_beacon,
    encode_beacon,
    format_address,
)
from dtncloud.discovery.neighbours import (
    DEFAULT_PERIOD_MS,
    Discovery,
    DiscoveryConfig,
    DiscoveryEvent,
    DiscoveryStats,
    Neighbour,
    NeighbourFound,
    NeighbourLost,
    NeighbourUpdated,
)

__all__ = [
    "DEFAULT_PERIOD_MS",
    "FLAG_EID",
    "FLAG_PERIOD",
    "FLAG_SERVICES",
    "IPND_VERSION",
    "MAX_BEACON_SIZE",
    "Beacon",
    "BeaconDecodeError",
    "Discovery",
    "DiscoveryConfig",
    "DiscoveryEvent",
    "DiscoveryStats",
    "Neighbour",
    "NeighbourFound",
    "NeighbourLost",
    "NeighbourUpdated",
    "Service",
    "UnsupportedBeacon",
    "decode_beacon",
    "encode_beacon",
    "format_address",
]
