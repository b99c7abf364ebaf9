"""Bundle Protocol version 7 (RFC 9171): bundles, blocks, codec, administrative records,
fragmentation.

>>> from dtncloud.bpv7 import Bundle, decode_bundle, encode_bundle
>>> bundle = Bundle.create(source="dtn://a/app", destination="dtn://b/app",
...                        payload=b"hello", creation_time=755_000_000_000)
>>> decode_bundle(encode_bundle(bundle)) == bundle
True
"""

from dtncloud.bpv7.blocks import (
    PAYLOAD_BLOCK_NUMBER,
    CanonicalBlock,
    HopCount,
    PrimaryBlock,
    bundle_age_block,
    hop_count_block,
    payload_block,
    previous_node_block,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.bpv7.bundle import Bundle, BundleId
from dtncloud.bpv7.decode import DEFAULT_MAX_BLOCKS, DEFAULT_MAX_BUNDLE_SIZE, decode_bundle
from dtncloud.bpv7.encode import (
    encode_block,
    encode_block_header,
    encode_bundle,
    encode_primary,
    encoded_size,
)
from dtncloud.bpv7.flags import (
    BlockFlag,
    BlockType,
    BundleFlag,
    CrcType,
    StatusReportReason,
)
from dtncloud.bpv7.validate import check_bundle

__all__ = [
    "DEFAULT_MAX_BLOCKS",
    "DEFAULT_MAX_BUNDLE_SIZE",
    "PAYLOAD_BLOCK_NUMBER",
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "BundleId",
    "CanonicalBlock",
    "CrcType",
    "HopCount",
    "PrimaryBlock",
    "StatusReportReason",
    "bundle_age_block",
    "check_bundle",
    "decode_bundle",
    "encode_block",
    "encode_block_header",
    "encode_bundle",
    "encode_primary",
    "encoded_size",
    "hop_count_block",
    "payload_block",
    "previous_node_block",
    "read_bundle_age",
    "read_hop_count",
    "read_previous_node",
]
