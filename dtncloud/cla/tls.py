"""TLS for TCPCLv4 (RFC 9174 section 4.4): configuration, contexts, peer authentication.

The TCPCL driver exchanges contact headers in plaintext; when both sides set CAN_TLS it
upgrades the same connection (``await writer.start_tls(context, server_hostname=...)``), the
active side as TLS client with :func:`client_context`, the passive side as server with
:func:`server_context`. Only TLS 1.3 is offered.

Certificate *chains* are checked by OpenSSL against :attr:`TlsConfig.ca`. *Identities* are
checked by us, after SESS_INIT, because the identity RFC 9174 cares about, the NODE-ID
(a subjectAltName ``otherName`` of type id-on-bundleEID), is invisible to ``ssl``:

1. ``der = ssl_object.getpeercert(binary_form=True)``;
2. ``identity = peer_identity(der)`` reads NODE-IDs, DNS-IDs and IPADDR-IDs;
3. ``reason = authenticate_peer(identity, claimed_node_id=..., connected_host=...,
   config=...)`` is ``None`` if the session may go on, else a one-line reason to end it
   with SESS_TERM "contact failure".

Handshake failures are ``ssl.SSLError`` (or a closed connection); :func:`tls_error_message`
turns them into one line for a :class:`~dtncloud.errors.ConnectError`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from dtncloud.cla.certs import ID_ON_BUNDLE_EID
from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID, RemoteProtocolError

__all__ = [
    "TlsConfig",
    "client_context",
    "server_context",
    "server_hostname",
    "PeerIdentity",
    "peer_identity",
    "authenticate_peer",
    "tls_error_message",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PathLike = str | os.PathLike[str]

_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_PEM_KEY_MARK = b"PRIVATE KEY-----"


# --------------------------------------------------------------------------------------------
# Configuration


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"TLS {what} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"TLS {what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"TLS {what} {path}: cannot read ({exc.strerror})") from None


def _load_certificates(data: bytes, path: Path, what: str) -> list[x509.Certificate]:
    if _PEM_CERT not in data:
        raise ConfigError(f"TLS {what} {path} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"TLS {what} {path}: unreadable PEM certificate ({exc})") from None


def _ca_files(ca: Path) -> list[Path]:
    """The files to trust: ``ca`` itself, or every PEM certificate file in the directory."""
    if not ca.exists():
        raise ConfigError(f"TLS CA {ca}: no such file or directory")
    if not ca.is_dir():
        _load_certificates(_read(ca, "CA file"), ca, "CA file")
        return [ca]
    # Read the files ourselves rather than use OpenSSL's capath, which only finds
    # certificates under hashed names (c_rehash), a step people forget.
    files = [p for p in sorted(ca.iterdir()) if p.is_file() and _PEM_CERT in _read(p, "CA file")]
    if not files:
        raise ConfigError(f"TLS CA directory {ca} holds no PEM certificate")
    for path in files:
        _load_certificates(_read(path, "CA file"), path, "CA file")
    return files


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings for TCPCLv4 sessions; validated (files read) when made.

    ``certificate`` is our PEM certificate chain (leaf first) and ``private_key`` its key
    (if omitted, the key must be in the certificate file). Without a certificate we can still
    be a TLS client, but not a server. ``ca`` is a PEM file or a directory of PEM files whose
    certificates we trust; ``None`` means peers are not verified at all (encryption without
    authentication). ``require`` refuses sessions that do not use TLS.

    ``verify_peer`` (default: ``True`` exactly when ``ca`` is given) makes the handshake fail
    unless the peer presents a certificate that chains to ``ca``; a server then insists on a
    client certificate. ``require_node_id`` (default: same as ``verify_peer``, the policy
    RFC 9174 recommends) ends sessions whose peer the certificate does not authenticate
    (see :func:`authenticate_peer`); ``allow_dns_or_ip`` lets a DNS-ID or IPADDR-ID that
    matches the host we connected to stand in for a missing NODE-ID.

    Raises :class:`~dtncloud.errors.ConfigError` (one line) for missing or unreadable files,
    a key that does not match the certificate, or inconsistent options.
    """

    certificate: Path | None = None
    private_key: Path | None = None
    ca: Path | None = None
    require: bool = False
    verify_peer: bool | None = None
    allow_dns_or_ip: bool = True
    require_node_id: bool | None = None

    def __post_init__(self) -> None:
        # Accept str paths too; store Paths.
        for name in ("certificate", "private_key", "ca"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        verify = self.ca is not None if self.verify_peer is None else self.verify_peer
        object.__setattr__(self, "verify_peer", verify)
        if self.require_node_id is None:
            object.__setattr__(self, "require_node_id", verify)
        if verify and self.ca is None:
            raise ConfigError("verifying TLS peers needs a CA (--tls-ca)")
        if self.require_node_id and not verify:
            raise ConfigError("authenticating peer node IDs needs peer verification and a CA")
        if self.private_key is not None and self.certificate is None:
            raise ConfigError("a TLS private key needs its certificate (--tls-cert)")
        if self.certificate is not None:
            self._check_certificate(self.certificate, self.private_key)
        if self.ca is not None:
            _ca_files(self.ca)

    @staticmethod
    def _check_certificate(cert_path: Path, key_path: Path | None) -> None:
        cert_data = _read(cert_path, "certificate")
        leaf = _load_certificates(cert_data, cert_path, "certificate")[0]
        if key_path is None:
            if _PEM_KEY_MARK not in cert_data:
                raise ConfigError(
                    f"TLS certificate {cert_path} holds no private key; give it with --tls-key"
                )
            key_path, key_data = cert_path, cert_data
        else:
            key_data = _read(key_path, "private key")
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
        except TypeError:
            raise ConfigError(
                f"TLS private key {key_path} is encrypted; dtncloud needs an unencrypted key"
            ) from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"TLS private key {key_path}: unreadable PEM key ({exc})") from None
        ours = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if ours != theirs:
            raise ConfigError(f"TLS private key {key_path} does not match certificate {cert_path}")

    @classmethod
    def from_options(
        cls,
        cert: PathLike | None,
        key: PathLike | None,
        ca: PathLike | None,
        *,
        require: bool = False,
        require_node_id: bool | None = None,
        allow_dns_or_ip: bool = True,
    ) -> TlsConfig | None:
        """The configuration given by ``--tls-cert/--tls-key/--tls-ca/--tls-require``.

        ``None`` if none of them is given (TLS off). Empty strings count as not given.
        """
        paths = [Path(p) if p else None for p in (cert, key, ca)]
        if not require and all(p is None for p in paths):
            return None
        return cls(
            certificate=paths[0],
            private_key=paths[1],
            ca=paths[2],
            require=require,
            require_node_id=require_node_id,
            allow_dns_or_ip=allow_dns_or_ip,
        )

    @property
    def can_serve(self) -> bool:
        """Whether we can be the TLS server (the passive side): we have a certificate."""
        return self.certificate is not None


# --------------------------------------------------------------------------------------------
# Contexts


def _base_context(config: TlsConfig, *, server_side: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Names are checked by authenticate_peer: a NODE-ID is an otherName, which ssl ignores.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED if config.verify_peer else ssl.CERT_NONE
    try:
        if config.ca is not None:
            for path in _ca_files(config.ca):
                context.load_verify_locations(cafile=path)
        if config.certificate is not None:
            context.load_cert_chain(config.certificate, config.private_key)
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS configuration rejected by OpenSSL: {exc.reason or exc}") from None
    return context


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """The context of the active side (TLS client): TLS 1.3 only; our certificate, if any,
    is offered when the server asks; the server's chain is verified if ``verify_peer``."""
    return _base_context(config, server_side=False)


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """The context of the passive side (TLS server): TLS 1.3 only; asks for a client
    certificate and requires a valid one if ``verify_peer``. Raises
    :class:`~dtncloud.errors.ConfigError` without a certificate of our own."""
    if config.certificate is None:
        raise ConfigError("accepting TLS sessions needs a certificate (--tls-cert)")
    return _base_context(config, server_side=True)


def server_hostname(host: str) -> str | None:
    """What to pass as ``server_hostname`` when connecting to ``host``: the DNS name for
    SNI, or ``None`` for an IP address (SNI carries names only, RFC 6066)."""
    return None if _parse_ip(host) is not None else host


# --------------------------------------------------------------------------------------------
# Peer identity


@dataclass(frozen=True)
class PeerIdentity:
    """The identities a peer certificate claims (RFC 9174 section 4.4.1).

    ``node_ids`` are the NODE-IDs (id-on-bundleEID values that are node IDs; other
    endpoint IDs are ignored as the RFC requires), ``dns_names`` the DNS-IDs,
    ``ip_addresses`` the IPADDR-IDs.
    """

    node_ids: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()

    def __str__(self) -> str:
        parts = [f"node {_show(n)}" for n in self.node_ids]
        parts += [f"DNS {_show(d)}" for d in self.dns_names]
        parts += [f"IP {ip}" for ip in self.ip_addresses]
        return ", ".join(parts) if parts else "no identity"


def _show(text: str, limit: int = 80) -> str:
    """``text`` from a peer made safe for a one-line message: printable and not too long."""
    text = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."


def _der_string(value: bytes) -> str | None:
    """The text of a DER IA5String (UTF8String tolerated), or ``None`` if malformed."""
    if len(value) < 2 or value[0] not in (0x16, 0x0C):
        return None
    size, offset = value[1], 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        size, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if len(value) != offset + size:
        return None
    try:
        return value[offset:].decode("ascii" if value[0] == 0x16 else "utf-8")
    except UnicodeDecodeError:
        return None


def _node_id_text(value: bytes) -> str | None:
    text = _der_string(value)
    if text is None:
        return None
    try:
        eid = EID.parse(text)
    except InvalidEID:
        # A scheme we do not know is kept: it can still match a SESS_INIT node ID verbatim.
        # A malformed dtn: or ipn: URI is not a node ID.
        return None if text.partition(":")[0].lower() in ("dtn", "ipn") else text
    return text if eid.is_node_id and not eid.is_none else None


def peer_identity(der: bytes) -> PeerIdentity:
    """Read the identities of a DER certificate (``getpeercert(binary_form=True)``).

    Raises :class:`~dtncloud.errors.RemoteProtocolError` if the certificate or its
    subjectAltName cannot be parsed.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return PeerIdentity()
    except ValueError as exc:
        raise RemoteProtocolError(f"unreadable peer certificate: {exc}") from None
    node_ids = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == ID_ON_BUNDLE_EID:
            text = _node_id_text(other.value)
            if text is not None:
                node_ids.append(text)
    return PeerIdentity(
        node_ids=tuple(node_ids),
        dns_names=tuple(san.get_values_for_type(x509.DNSName)),
        # SAN IP entries are addresses; networks only occur in name constraints.
        ip_addresses=tuple(
            ip
            for ip in san.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        ),
    )


# --------------------------------------------------------------------------------------------
# Authentication


def _same_node(a: str, b: str) -> bool:
    try:
        return EID.parse(a) == EID.parse(b)
    except InvalidEID:
        return a == b


def _parse_ip(host: str) -> IPAddress | None:
    text = host.strip("[]").partition("%")[0]  # brackets and IPv6 zone are not part of it
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _dns_key(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    if not name.isascii():
        with contextlib.suppress(UnicodeError):
            name = name.encode("idna").decode("ascii")
    return name


def _dns_matches(pattern: str, host: str) -> bool:
    """RFC 9525 matching: exact, or ``*`` as the whole left-most label (one label only)."""
    pattern, host = _dns_key(pattern), _dns_key(host)
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label and dot and rest) and rest == pattern[2:] and "." in pattern[2:]
    return pattern == host


def _host_matches(identity: PeerIdentity, host: str) -> bool:
    ip = _parse_ip(host)
    if ip is not None:
        return any(_parse_ip(str(cert_ip)) == ip for cert_ip in identity.ip_addresses)
    return any(_dns_matches(name, host) for name in identity.dns_names)


def authenticate_peer(
    identity: PeerIdentity | None,
    *,
    claimed_node_id: str | None,
    connected_host: str | None,
    config: TlsConfig,
) -> str | None:
    """Decide whether a TLS peer may keep its session: ``None`` if so, else a one-line reason.

    ``identity`` comes from the peer's certificate (``None``: it presented none);
    ``claimed_node_id`` is the node ID of its SESS_INIT (``None`` or empty: not disclosed);
    ``connected_host`` is the host name or address we connected to (active side only).

    In order (RFC 9174 section 4.4.4):

    * without peer verification nothing is authenticated, so nothing is refused;
    * a NODE-ID that matches the claimed node ID authenticates the peer; NODE-IDs that all
      differ from it are always fatal;
    * with ``allow_dns_or_ip`` on the active side, a DNS-ID / IPADDR-ID matching
      ``connected_host`` authenticates the peer, and host IDs that all differ are fatal;
    * otherwise the peer is unauthenticated: fatal if ``require_node_id``.
    """
    if not config.verify_peer:
        return None
    claimed = claimed_node_id or None
    if identity is None:
        return "the peer presented no certificate" if config.require_node_id else None
    if identity.node_ids and claimed is not None:
        if any(_same_node(node, claimed) for node in identity.node_ids):
            return None
        names = " and ".join(_show(node) for node in identity.node_ids)
        return f"certificate names node {names} but the session announced {_show(claimed)}"
    host_ids = identity.dns_names or identity.ip_addresses
    if config.allow_dns_or_ip and connected_host:
        if _host_matches(identity, connected_host):
            return None
        if host_ids:
            return f"certificate ({identity}) does not name the host {_show(connected_host)}"
    if not config.require_node_id:
        return None
    if claimed is None:
        return f"the peer announced no node ID to check against its certificate ({identity})"
    return f"certificate ({identity}) does not authenticate node {_show(claimed)}"


# --------------------------------------------------------------------------------------------
# Errors

# OpenSSL reason codes of handshake failures, as one would explain them to a user.
_REASONS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer requires a client certificate (--tls-cert)",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the peer presented no certificate, but one is required",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate (unknown CA)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer rejected our certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer says our certificate has expired",
    "SSLV3_ALERT_CERTIFICATE_UNSUPPORTED": "the peer cannot use our certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "the peer denied access to our certificate",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the peer does not speak TLS 1.3",
    "UNSUPPORTED_PROTOCOL": "the peer does not speak TLS 1.3",
    "NO_PROTOCOLS_AVAILABLE": "the peer does not speak TLS 1.3",
    "WRONG_VERSION_NUMBER": "the peer did not answer with TLS",
    "HTTP_REQUEST": "the peer did not answer with TLS",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "TLS handshake failure (no common cipher suite or group?)",
    "NO_SHARED_CIPHER": "TLS handshake failure: no cipher suite in common",
    "UNEXPECTED_EOF_WHILE_READING": "the peer closed the connection during the TLS handshake",
}
_UNTRUSTED = frozenset(
    {2, 18, 19, 20, 21}
)  # X509_V_ERR_*: unknown issuer, self-signed, chain incomplete


def tls_error_message(exc: BaseException) -> str:
    """A one-line human explanation of a TLS failure (``ssl`` errors, EOF, timeouts)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, detail = exc.verify_code, exc.verify_message or exc.reason or "unknown reason"
        if code in _UNTRUSTED:
            return f"peer certificate not trusted: {detail} (is --tls-ca the CA that signed it?)"
        if code == 10:
            return "peer certificate has expired"
        if code == 9:
            return "peer certificate is not yet valid (clock skew?)"
        return f"peer certificate rejected: {detail}"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError | ConnectionError):
        return "the peer closed the connection during the TLS handshake"
    if isinstance(exc, TimeoutError):
        return "the TLS handshake timed out"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _REASONS:
            return _REASONS[reason]
        text = reason.replace("_", " ").lower() if reason else " ".join(str(exc).split())
        return f"TLS failed: {text}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"TLS failed: {text}"
