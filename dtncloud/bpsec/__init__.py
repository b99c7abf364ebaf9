"""Bundle Protocol Security (RFC 9172) with the default security contexts of RFC 9173.

Integrity with BIB-HMAC-SHA2 (context 1), confidentiality with BCB-AES-GCM (context 2)::

    >>> from dtncloud.bpv7 import Bundle
    >>> from dtncloud.bpsec import accept_integrity, decrypt, encrypt, sign
    >>> bundle = Bundle.create(source="ipn:2.1", destination="ipn:1.2", payload=b"hello",
    ...                        creation_time=755_000_000_000)
    >>> signed = sign(bundle, [0, 1], key=b"hmac key 16bytes", security_source="ipn:2.1")
    >>> sealed = encrypt(signed, [1], key=bytes(32), security_source="ipn:2.1")
    >>> sealed.payload != b"hello"
    True
    >>> ring = KeyRing().with_key(b"hmac key 16bytes", context_id=BIB_HMAC_SHA2)
    >>> ring = ring.with_key(bytes(32), context_id=BCB_AES_GCM)
    >>> accept_integrity(decrypt(sealed, ring), ring) == bundle
    True

See docs/bpsec.md for the whole story: keys, scope flags, key wrap and errors.
"""

from dtncloud.bpsec.asb import AbstractSecurityBlock
from dtncloud.bpsec.bcb_aes_gcm import BCB_AES_GCM, AadScope, AesVariant
from dtncloud.bpsec.bib_hmac_sha2 import BIB_HMAC_SHA2, IntegrityScope, ShaVariant
from dtncloud.bpsec.exceptions import MalformedSecurityBlock, UnknownSecurityContext
from dtncloud.bpsec.keys import KeyRing, Keys
from dtncloud.bpsec.operations import (
    VerifiedTarget,
    accept_integrity,
    decrypt,
    encrypt,
    sign,
    verify,
)
from dtncloud.bpsec.policy import check_security

__all__ = [
    "sign",
    "verify",
    "accept_integrity",
    "encrypt",
    "decrypt",
    "check_security",
    "VerifiedTarget",
    "KeyRing",
    "Keys",
    "AbstractSecurityBlock",
    "BIB_HMAC_SHA2",
    "BCB_AES_GCM",
    "ShaVariant",
    "IntegrityScope",
    "AesVariant",
    "AadScope",
    "MalformedSecurityBlock",
    "UnknownSecurityContext",
]
