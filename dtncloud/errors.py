"""The dtncloud exception tree.

Every error dtncloud raises on purpose derives from :class:`DtnError`, so an application can
catch one class at its boundary. The tree::

    DtnError
    ├── ConfigError                 bad configuration or bad arguments (user-facing, one line)
    ├── CodecError                  bytes that are not a valid bundle, block or record
    │   ├── BundleDecodeError       a received bundle must be discarded; carries ``reason``,
    │   │   │                       the RFC 9171 status-report reason code the engine should use
    │   │   ├── CrcMismatch         a block's CRC does not match its contents
    │   │   ├── BundleTooLarge      over the caller's size or block-count limit
    │   │   └── InvalidBundle       well-formed CBOR that breaks an RFC 9171 validity rule
    │   ├── InvalidEID              a malformed endpoint ID string or encoding
    │   ├── AdminRecordError        a malformed administrative record
    │   ├── FragmentError           fragmentation or reassembly impossible (gaps, overlaps,
    │   │                           inconsistent fragments, must-not-fragment)
    │   └── BundleEncodeError       a bundle object that cannot be encoded (caller's mistake)
    ├── SecurityError               BPSec processing failed; carries the RFC 9172 ``reason``
    │   ├── IntegrityCheckFailed    a BIB's expected HMAC does not match
    │   ├── DecryptionFailed        a BCB's authentication tag does not match
    │   ├── MissingKey              no key material for a security source or context
    │   └── SecurityPolicyError     an operation that RFC 9172 forbids (e.g. BCB on the primary)
    ├── ProtocolError               convergence-layer protocol errors
    │   ├── LocalProtocolError      we were asked to do something the protocol forbids
    │   └── RemoteProtocolError     the peer broke the protocol
    ├── TransportError              links: ConnectError, LinkDown, TransferRefused
    ├── StoreError                  persistent storage: StoreFull, BundleNotFound, StoreCorrupt
    └── ServiceError                higher-level services

Reason codes are plain ``int`` values of :class:`dtncloud.bpv7.StatusReportReason`; this module
stays free of protocol imports so every layer can import it.
"""

from __future__ import annotations

# RFC 9171 section 6.1.1 reason codes used as defaults below (kept as literals so that this
# module has no imports; StatusReportReason in bpv7.flags holds the full table).
_DEPLETED_STORAGE = 4
_BLOCK_UNINTELLIGIBLE = 8
_FAILED_SECURITY_OPERATION = 15


class DtnError(Exception):
    """Base class of every error dtncloud raises on purpose."""


class ConfigError(DtnError):
    """Bad configuration or arguments; the message names the key or option at fault."""


class CodecError(DtnError):
    """Bytes that are not a valid encoding of what was expected."""


class BundleDecodeError(CodecError):
    """A received bundle cannot be accepted.

    ``reason`` is the status-report reason code (RFC 9171 section 6.1.1) that a bundle
    protocol agent should put in a deletion report for it.
    """

    default_reason = _BLOCK_UNINTELLIGIBLE

    def __init__(self, message: str, *, reason: int | None = None) -> None:
        super().__init__(message)
        self.reason = self.default_reason if reason is None else reason


class CrcMismatch(BundleDecodeError):
    """A block's CRC does not match the block's bytes."""


class BundleTooLarge(BundleDecodeError):
    """The bundle is larger than the caller's limit, or has more blocks than allowed."""

    default_reason = _DEPLETED_STORAGE


class InvalidBundle(BundleDecodeError):
    """The bundle decodes but breaks a validity rule of RFC 9171."""


class InvalidEID(CodecError, ValueError):
    """A malformed endpoint ID (string form or CBOR form)."""


class AdminRecordError(CodecError):
    """A malformed or unknown administrative record."""


class FragmentError(CodecError):
    """Fragmentation or reassembly is impossible for the given input."""


class BundleEncodeError(CodecError, ValueError):
    """A bundle object that cannot be encoded as it stands (a caller's mistake)."""


class SecurityError(DtnError):
    """BPSec processing failed. ``reason`` is the RFC 9172 status-report reason code."""

    default_reason = _FAILED_SECURITY_OPERATION

    def __init__(self, message: str, *, reason: int | None = None) -> None:
        super().__init__(message)
        self.reason = self.default_reason if reason is None else reason


class IntegrityCheckFailed(SecurityError):
    """A BIB's security result does not match the target block."""


class DecryptionFailed(SecurityError):
    """A BCB target could not be decrypted (bad key, tampered ciphertext or AAD)."""


class MissingKey(SecurityError):
    """No key is available for the requested security operation."""


class SecurityPolicyError(SecurityError):
    """A security operation that RFC 9172 does not allow."""


class ProtocolError(DtnError):
    """A convergence-layer protocol error."""


class LocalProtocolError(ProtocolError):
    """The local side asked for something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol."""


class TransportError(DtnError):
    """A link could not carry data."""


class ConnectError(TransportError):
    """A link could not be opened."""


class LinkDown(TransportError):
    """A link went down while in use.

    ``acknowledged`` is how many leading bytes of the interrupted transfer the peer had
    acknowledged (0 if none, or if the link does not acknowledge), so that the engine can
    fragment reactively and send only the rest.
    """

    def __init__(self, message: str, *, acknowledged: int = 0) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged


class TransferRefused(TransportError):
    """The peer or the link refused a transfer.

    ``reason`` is the TCPCLv4 XFER_REFUSE reason code (RFC 9174 section 5.2.4; other links
    map their refusals onto it): 1 means the peer already has the bundle, 2 that it is too
    large for the peer or the link (fragment, then retry), 0 that no reason was given.
    """

    def __init__(self, message: str, *, reason: int = 0) -> None:
        super().__init__(message)
        self.reason = reason


class StoreError(DtnError):
    """Persistent storage failed."""


class StoreFull(StoreError):
    """The store's quota would be exceeded."""


class BundleNotFound(StoreError):
    """No bundle with that ID is stored."""


class StoreCorrupt(StoreError):
    """The store's files are damaged."""


class ServiceError(DtnError):
    """A higher-level service failed."""
