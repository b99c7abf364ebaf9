"""The USB data mule: bundles carried between sites with no network on removable media.

The sans-IO parts live here: the signed manifest format (:mod:`~dtncloud.mule.manifest`),
keys (:mod:`~dtncloud.mule.keys`), the decisions of a sync (:mod:`~dtncloud.mule.plan`) and
its report (:mod:`~dtncloud.mule.report`). :mod:`~dtncloud.mule.stick` and
:mod:`~dtncloud.mule.survey` do the blocking file I/O on the stick, and
:mod:`dtncloud.cla.mule` is the convergence layer that runs syncs in a node. ``docs/mule.md``
is the operators' guide.
"""

from dtncloud.mule.keys import NodeKey, TrustedKeys, parse_public_key_line, public_key_line
from dtncloud.mule.manifest import Entry, Manifest, ManifestError, decode_manifest, encode_manifest
from dtncloud.mule.report import Skipped, SyncReport

__all__ = [
    "Entry",
    "Manifest",
    "ManifestError",
    "NodeKey",
    "Skipped",
    "SyncReport",
    "TrustedKeys",
    "decode_manifest",
    "encode_manifest",
    "parse_public_key_line",
    "public_key_line",
]
