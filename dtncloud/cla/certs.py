"""Certificates for TCPCLv4 over TLS (RFC 9174 section 4.4), made with ``cryptography``.

A small private PKI is all a DTN deployment (or a test) needs: one CA, and for each node a
certificate that names the node the way RFC 9174 section 4.4.1 asks for:

* a NODE-ID: a subjectAltName ``otherName`` of type id-on-bundleEID (1.3.6.1.5.5.7.8.11)
  whose value is the node ID as a DER ``IA5String``;
* optionally DNS-IDs and IPADDR-IDs, for peers that authenticate by host name;
* the extended key usage id-kp-bundleSecurity (1.3.6.1.5.5.7.3.35), plus serverAuth and
  clientAuth so that ordinary TLS stacks accept the certificate on either end of a session.

>>> ca_cert, ca_key = make_ca("example CA", days=30)
>>> cert, key = make_node_certificate(ca_cert, ca_key, node_id="ipn:7.0", dns_names=["relay"])
>>> cert.startswith(b"-----BEGIN CERTIFICATE-----")
True

Keys are EC P-256 by default (fast to make, small handshakes); ``key_type="rsa"`` gives
RSA-2048 for peers that cannot do EC. PEM keys are unencrypted PKCS#8:
:func:`write_pem_files` writes them with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtncloud.eid import EID
from dtncloud.errors import ConfigError, InvalidEID

__all__ = [
    "ID_ON_BUNDLE_EID",
    "ID_KP_BUNDLE_SECURITY",
    "KeyType",
    "make_ca",
    "make_node_certificate",
    "write_pem_files",
    "encode_bundle_eid",
]

#: otherName type of a NODE-ID (RFC 9174 section 4.4.1, IANA "SMI Security for PKIX Other
#: Name Forms").
ID_ON_BUNDLE_EID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.11")
#: Extended key usage for bundle security (RFC 9174 section 4.4.2.1).
ID_KP_BUNDLE_SECURITY = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.35")

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address

# Backdate validity a little so that a peer whose clock is slightly behind ours still accepts
# a certificate made a moment ago.
_CLOCK_SKEW = datetime.timedelta(hours=1)
_IA5STRING_TAG = 0x16
_MAX_COMMON_NAME = 64


def encode_bundle_eid(node_id: str) -> bytes:
    """The DER ``IA5String`` that an id-on-bundleEID otherName carries for ``node_id``."""
    raw = node_id.encode("ascii")
    size = len(raw)
    if size < 0x80:
        length = bytes([size])
    else:
        octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([_IA5STRING_TAG]) + length + raw


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ConfigError(f"unknown key type {key_type!r} (expected 'ec' or 'rsa')")


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _validity(
    days: int, now: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    if days <= 0:
        raise ConfigError(f"certificate validity must be at least one day, not {days}")
    start = now if now is not None else datetime.datetime.now(datetime.UTC)
    return start - _CLOCK_SKEW, start + datetime.timedelta(days=days)


def _spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_ca(ca_cert_pem: bytes, ca_key_pem: bytes) -> tuple[x509.Certificate, PrivateKey]:
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError as exc:
        raise ConfigError(f"the CA certificate is not a PEM certificate: {exc}") from None
    try:
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the CA key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError("the CA key must be an EC or RSA key")
    if _spki(ca_key.public_key()) != _spki(ca_cert.public_key()):
        raise ConfigError("the CA key does not belong to the CA certificate")
    return ca_cert, ca_key


def _node_id_name(node_id: str) -> x509.OtherName:
    try:
        eid = EID.parse(node_id)
    except InvalidEID as exc:
        raise ConfigError(f"bad node ID for a certificate: {exc}") from None
    if not eid.is_node_id or eid.is_none:
        raise ConfigError(
            f"{node_id} is an endpoint, not a node ID (use e.g. ipn:N.0 or dtn://node/)"
        )
    # The canonical text form, so "IPN:007.0" is certified as "ipn:7.0".
    return x509.OtherName(ID_ON_BUNDLE_EID, encode_bundle_eid(str(eid)))


def _ip(value: IPLike) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address") from None


def make_ca(
    common_name: str = "dtncloud CA",
    *,
    days: int = 3650,
    key_type: KeyType = "ec",
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A self-signed CA certificate and its key, both PEM: ``(cert_pem, key_pem)``.

    The CA may sign end-entity certificates only (path length 0). ``now`` (an aware
    datetime) replaces the current time as the start of the validity period.
    """
    key = _new_key(key_type)
    not_before, not_after = _validity(days, now)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_node_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    *,
    node_id: str | None,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[IPLike] = (),
    days: int = 365,
    key_type: KeyType = "ec",
    common_name: str | None = None,
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A certificate for one node, signed by the CA: ``(cert_pem, key_pem)``.

    ``node_id`` (a node ID such as ``ipn:2.0`` or ``dtn://relay/``) becomes the NODE-ID;
    ``dns_names`` and ``ip_addresses`` become DNS-IDs and IPADDR-IDs. At least one of the
    three is required. The subject common name is ``common_name``, or else the first
    identity. Raises :class:`~dtncloud.errors.ConfigError` for a bad node ID, IP address,
    key type or CA.
    """
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    names: list[x509.GeneralName] = []
    if node_id is not None:
        names.append(_node_id_name(node_id))
    dns = [name.strip().rstrip(".") for name in dns_names]
    if any(not name for name in dns):
        raise ConfigError("empty DNS name for a certificate")
    names.extend(x509.DNSName(name) for name in dns)
    ips = [_ip(value) for value in ip_addresses]
    names.extend(x509.IPAddress(ip) for ip in ips)
    if not names:
        raise ConfigError("a node certificate needs a node ID, a DNS name or an IP address")
    if common_name is None:
        # X.509 caps a common name at 64 characters; it is only a label here.
        first = node_id if node_id is not None else (dns[0] if dns else str(ips[0]))
        common_name = first[:_MAX_COMMON_NAME]
    elif not 0 < len(common_name) <= _MAX_COMMON_NAME:
        raise ConfigError(f"a common name must be 1..{_MAX_COMMON_NAME} characters")

    key = _new_key(key_type)
    not_before, not_after = _validity(days, now)
    public = key.public_key()
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange is gone from TLS 1.3, but older stacks still look for it.
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    ID_KP_BUNDLE_SECURITY,
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_pem_files(
    directory: str | os.PathLike[str], name: str, cert_pem: bytes, key_pem: bytes
) -> tuple[Path, Path]:
    """Write ``NAME.crt`` and ``NAME.key`` into ``directory``: ``(cert_path, key_path)``.

    The directory is created if needed. The key file is created with mode 0600 from the
    start (never world-readable, not even briefly); existing files are replaced.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"bad certificate file name {name!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path = folder / f"{name}.crt"
    key_path = folder / f"{name}.key"
    cert_path.write_bytes(cert_pem)
    # Remove an old key first: os.open's mode only applies to files it creates.
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    return cert_path, key_path
