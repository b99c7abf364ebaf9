"""Bundle Protocol version 7 (RFC 9171): bundles, blocks, codec, administrative records,
fragmentation.

>>> from dtncloud.bpv7 import Bundle, decode_bundle, encode_bundle
>>> bundle = Bundle.create(source="dtn://a/app", destination="dtn://b/app",
...                        payload=b"hello", creation_time=755_000_000_000)
>>> decode_bundle(encode_bundle(bundle)) == bundle
True
"""

from dtncloud.bpv7.admin import (
    DEFAULT_ADMIN_RECORD_TYPES,
    ION_ADMIN_RECORD_TYPES,
    NOT_ASSERTED,
    AdminRecord,
    AdminRecordTypes,
    StatusItem,
    StatusReport,
    UnknownAdminRecord,
    admin_bundle,
    decode_admin_record,
    encode_admin_record,
    make_status_report,
    read_admin_record,
)
from dtncloud.bpv7.bibe import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    bibe_encapsulate,
    custody_signal_for,
)
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
from dtncloud.bpv7.bundle import Bundle, BundleId, InvalidBundleId
from dtncloud.bpv7.decode import (
    DEFAULT_MAX_BLOCKS,
    DEFAULT_MAX_BUNDLE_SIZE,
    decode_bundle,
    peek_bundle_id,
)
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
from dtncloud.bpv7.fragment import (
    FragmentCollector,
    InconsistentFragments,
    MissingFragments,
    fragment_bundle,
    reassemble,
    split_at,
)
from dtncloud.bpv7.validate import check_bundle, is_plainly_valid

__all__ = [
    "DEFAULT_ADMIN_RECORD_TYPES",
    "DEFAULT_MAX_BLOCKS",
    "DEFAULT_MAX_BUNDLE_SIZE",
    "ION_ADMIN_RECORD_TYPES",
    "NOT_ASSERTED",
    "PAYLOAD_BLOCK_NUMBER",
    "AdminRecord",
    "AdminRecordTypes",
    "BibePdu",
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "BundleId",
    "CanonicalBlock",
    "CrcType",
    "CustodyDisposition",
    "CustodySignal",
    "FragmentCollector",
    "HopCount",
    "InconsistentFragments",
    "InvalidBundleId",
    "MissingFragments",
    "PrimaryBlock",
    "StatusItem",
    "StatusReport",
    "StatusReportReason",
    "UnknownAdminRecord",
    "admin_bundle",
    "bibe_encapsulate",
    "bundle_age_block",
    "check_bundle",
    "custody_signal_for",
    "decode_admin_record",
    "decode_bundle",
    "peek_bundle_id",
    "encode_admin_record",
    "encode_block",
    "encode_block_header",
    "encode_bundle",
    "encode_primary",
    "encoded_size",
    "fragment_bundle",
    "hop_count_block",
    "is_plainly_valid",
    "make_status_report",
    "payload_block",
    "previous_node_block",
    "read_admin_record",
    "read_bundle_age",
    "read_hop_count",
    "read_previous_node",
    "reassemble",
    "split_at",
]
