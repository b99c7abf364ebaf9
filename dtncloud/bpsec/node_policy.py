"""A node's BPSec policy: which of its keys protect the bundles its applications send, and
which check the bundles it delivers to them.

RFC 9172 leaves policy to the node. dtncloud's is simple and explicit, for a fleet that
shares keys:

* **at the source**, a bundle is signed (one BIB-HMAC-SHA2 over the primary block and the
  payload) and/or its payload encrypted (one BCB-AES-GCM), each with a named key; the node
  configuration gives the defaults and an application may choose per bundle;
* **at the destination** (the security acceptor), a bundle about to be delivered has its
  BIBs verified and its BCBs decrypted with the node's accept key before the application
  sees the payload. A bundle that fails (tampered, wrong key) is never delivered: the node
  deletes it with reason 15 (failed security operation). With ``require``, a bundle whose
  payload carries no protection at all is refused too (reason 12, missing security
  operation).

Everything here is a pure function of bundles and keys (no I/O): the engine and the node
call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dtncloud.bpsec.operations import accept_integrity, decrypt, encrypt, sign
from dtncloud.bpsec.policy import survey
from dtncloud.bpv7.blocks import PAYLOAD_BLOCK_NUMBER
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.errors import ConfigError, SecurityError

__all__ = ["BundleSecurity"]

#: RFC 9173's AES-GCM key sizes: a key of another length cannot encrypt.
_AES_KEY_SIZES = (16, 32)


@dataclass(frozen=True)
class BundleSecurity:
    """``keys`` by name; the names of the default ``sign`` and ``encrypt`` keys for bundles
    sent here, and of the ``accept`` key for bundles delivered here (None: none)."""

    # never printed; read-only, and left out of the hash (a mapping has none)
    keys: Mapping[str, bytes] = field(default_factory=dict, repr=False, hash=False)
    sign: str | None = None
    encrypt: str | None = None
    accept: str | None = None
    require: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        for role in ("sign", "encrypt", "accept"):
            name = getattr(self, role)
            if name is not None and name not in self.keys:
                raise ConfigError(f"bpsec.{role}: no key named {name!r}; known: {self._names()}")
        if self.encrypt is not None:
            self._check_aes(self.encrypt, "bpsec.encrypt")
        if self.require and self.accept is None:
            raise ConfigError("bpsec.require: needs an accept key to check bundles with")

    def _names(self) -> str:
        return ", ".join(sorted(self.keys)) or "none"

    def key(self, name: str, what: str) -> bytes:
        try:
            return self.keys[name]
        except KeyError:
            raise ConfigError(f"{what}: no key named {name!r}; known: {self._names()}") from None

    def _check_aes(self, name: str, what: str) -> None:
        if len(self.key(name, what)) not in _AES_KEY_SIZES:
            raise ConfigError(f"{what}: key {name!r} must be 16 or 32 bytes for AES-GCM")

    def protector(
        self, sign_with: str | bool | None = True, encrypt_with: str | bool | None = True
    ) -> Callable[[Bundle], Bundle] | None:
        """What to apply to a new bundle: ``True`` takes the configured default, ``False``
        or None none, a name that key. None when there is nothing to do."""
        signing = self.sign if sign_with is True else (sign_with or None)
        encrypting = self.encrypt if encrypt_with is True else (encrypt_with or None)
        if signing is None and encrypting is None:
            return None
        sign_key = None if signing is None else self.key(signing, "sign")
        if encrypting is not None:
            self._check_aes(encrypting, "encrypt")
        encrypt_key = None if encrypting is None else self.key(encrypting, "encrypt")

        def protect(bundle: Bundle) -> Bundle:
            source = bundle.primary.source
            if sign_key is not None:
                bundle = sign(
                    bundle, (0, PAYLOAD_BLOCK_NUMBER), key=sign_key, security_source=source
                )
            if encrypt_key is not None:
                bundle = encrypt(
                    bundle, (PAYLOAD_BLOCK_NUMBER,), key=encrypt_key, security_source=source
                )
            return bundle

        return protect

    @property
    def checks_deliveries(self) -> bool:
        return self.accept is not None

    def accept_delivery(self, bundle: Bundle) -> Bundle:
        """The bundle as its application gets it: BIBs verified and removed, BCBs decrypted.
        Raises :class:`~dtncloud.errors.SecurityError`, whose ``reason`` is the status report
        reason to delete the bundle with, if a check fails or (``require``) the payload was
        not protected."""
        if self.accept is None:
            return bundle
        key = self.keys[self.accept]
        try:
            smap = survey(bundle)
            protected = PAYLOAD_BLOCK_NUMBER in smap.signed_by or (
                PAYLOAD_BLOCK_NUMBER in smap.encrypted_by
            )
            opened = decrypt(bundle, key)
            opened = accept_integrity(opened, key)
        except SecurityError as exc:
            raise SecurityError(f"security check failed: {exc}", reason=exc.reason) from None
        if self.require and not protected:
            raise SecurityError(
                "the payload carries no BIB or BCB and this node requires one",
                reason=StatusReportReason.MISSING_SECURITY_OPERATION,
            )
        return opened
