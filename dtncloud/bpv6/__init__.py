"""BPv6: the RFC 5050 bundle format, for interoperating with legacy DTN deployments.

ION, DTN2/DTNME and IBR-DTN speak this version. The codec is sans-IO: bytes in, values out.

>>> from dtncloud.bpv6 import Bundle, decode_bundle, encode_bundle
>>> bundle = Bundle.create(
...     source="dtn://sender/app", destination="ipn:11.64", payload=b"hi",
...     creation_time=731540048,
... )
>>> decode_bundle(encode_bundle(bundle)) == bundle
True

Decoding is bounded and every failure is a :class:`~dtncloud.errors.BundleDecodeError` whose
``reason`` is the status-report reason to use: 4 (depleted storage) for
:class:`~dtncloud.errors.BundleTooLarge`, 8 (block unintelligible) for the rest. Payloads of
administrative records decode with :func:`decode_admin_record`.
"""

from __future__ import annotations

from dtncloud.bpv6.admin import (
    AdminRecord,
    AdminRecordType,
    BundleStatusReport,
    CustodySignal,
    CustodySignalReason,
    DtnTime,
    StatusFlag,
    StatusReportReason,
    decode_admin_record,
    encode_admin_record,
)
from dtncloud.bpv6.bundle import (
    Bundle,
    BundleId,
    CanonicalBlock,
    payload_block,
    validity_problems,
)
from dtncloud.bpv6.codec import (
    DEFAULT_MAX_BLOCKS,
    DEFAULT_MAX_SIZE,
    VERSION,
    decode_bundle,
    encode_bundle,
)
from dtncloud.bpv6.dictionary import DTN_NONE
from dtncloud.bpv6.flags import BlockFlag, BlockType, BundleFlag, Priority
from dtncloud.bpv6.sdnv import SdnvError, decode_sdnv, encode_sdnv

__all__ = [
    "DEFAULT_MAX_BLOCKS",
    "DEFAULT_MAX_SIZE",
    "DTN_NONE",
    "VERSION",
    "AdminRecord",
    "AdminRecordType",
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "BundleId",
    "BundleStatusReport",
    "CanonicalBlock",
    "CustodySignal",
    "CustodySignalReason",
    "DtnTime",
    "Priority",
    "SdnvError",
    "StatusFlag",
    "StatusReportReason",
    "decode_admin_record",
    "decode_bundle",
    "decode_sdnv",
    "encode_admin_record",
    "encode_bundle",
    "encode_sdnv",
    "payload_block",
    "validity_problems",
]
