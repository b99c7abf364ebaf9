"""TLS for TCPCLv4: certificates, identities, the RFC 9174 authentication policy, handshakes.

Certificates are made on the fly (EC P-256, once per test session). Handshakes run over
loopback the way the TCPCL driver does them: a few plaintext bytes (the contact headers),
then ``StreamWriter.start_tls`` on the same connection.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtncloud.cla.certs import (
    ID_KP_BUNDLE_SECURITY,
    ID_ON_BUNDLE_EID,
    encode_bundle_eid,
    make_ca,
    make_node_certificate,
    write_pem_files,
)
from dtncloud.cla.tls import (
    PeerIdentity,
    TlsConfig,
    _node_id_text,
    authenticate_peer,
    client_context,
    peer_identity,
    server_context,
    server_hostname,
    tls_error_message,
)
from dtncloud.errors import ConfigError, RemoteProtocolError

TIMEOUT = 10.0
MAGIC = b"dtn!"


@dataclass(frozen=True)
class Pki:
    """Files of a small test PKI: CA ``ca`` and a foreign CA ``other_ca``."""

    root: Path
    ca: Path
    ca_pem: bytes
    ca_key_pem: bytes
    other_ca: Path
    server: tuple[Path, Path]  # ipn:1.0, DNS localhost, IP 127.0.0.1
    client: tuple[Path, Path]  # dtn://client/
    host_only: tuple[Path, Path]  # DNS localhost, IP 127.0.0.1, no node ID
    foreign_client: tuple[Path, Path]  # dtn://client/, signed by other_ca
    foreign_server: tuple[Path, Path]  # ipn:1.0, signed by other_ca
    expired_server: tuple[Path, Path]  # ipn:1.0, expired long ago

    def config(self, pair: tuple[Path, Path] | None = None, /, **options: bool) -> TlsConfig:
        cert, key = pair if pair is not None else (None, None)
        return TlsConfig(certificate=cert, private_key=key, ca=self.ca, **options)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_pem, ca_key = make_ca("test CA", days=30)
    other_pem, other_key = make_ca("other CA", days=30)
    ca = root / "ca.pem"
    ca.write_bytes(ca_pem)
    other_ca = root / "other-ca.pem"
    other_ca.write_bytes(other_pem)

    def node(
        name: str, issuer: tuple[bytes, bytes] = (ca_pem, ca_key), **kw: object
    ) -> tuple[Path, Path]:
        cert, key = make_node_certificate(*issuer, **kw)  # type: ignore[arg-type]
        return write_pem_files(root, name, cert, key)

    long_ago = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
    return Pki(
        root=root,
        ca=ca,
        ca_pem=ca_pem,
        ca_key_pem=ca_key,
        other_ca=other_ca,
        server=node(
            "server", node_id="ipn:1.0", dns_names=["localhost"], ip_addresses=["127.0.0.1"]
        ),
        client=node("client", node_id="dtn://client/"),
        host_only=node("host", node_id=None, dns_names=["localhost"], ip_addresses=["127.0.0.1"]),
        foreign_client=node("foreign-client", (other_pem, other_key), node_id="dtn://client/"),
        foreign_server=node("foreign-server", (other_pem, other_key), node_id="ipn:1.0"),
        expired_server=node("expired", node_id="ipn:1.0", days=2, now=long_ago),
    )


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _der(path: Path) -> bytes:
    return _cert(path).public_bytes(serialization.Encoding.DER)


def _self_signed_with(names: list[x509.GeneralName]) -> bytes:
    """A throwaway certificate whose subjectAltName holds exactly ``names`` (DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------------------------
# Certificates


def test_node_certificate_carries_rfc9174_identities_and_usages(pki: Pki) -> None:
    cert = _cert(pki.server[0])
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.OtherName) == [
        x509.OtherName(ID_ON_BUNDLE_EID, b"\x16\x07ipn:1.0")
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [
        ID_KP_BUNDLE_SECURITY,
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_node_id_is_certified_in_canonical_form(pki: Pki) -> None:
    cert, _ = make_node_certificate(pki.ca_pem, pki.ca_key_pem, node_id="IPN:007.0")
    der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    assert peer_identity(der).node_ids == ("ipn:7.0",)


def test_long_node_id_uses_long_form_der_length(pki: Pki) -> None:
    node_id = "dtn://" + "n" * 300 + "/"
    assert encode_bundle_eid(node_id)[:4] == b"\x16\x82\x01\x33"
    cert, _ = make_node_certificate(pki.ca_pem, pki.ca_key_pem, node_id=node_id)
    der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    assert peer_identity(der).node_ids == (node_id,)


def test_rsa_node_certificate(pki: Pki) -> None:
    cert, key = make_node_certificate(pki.ca_pem, pki.ca_key_pem, node_id="ipn:9.0", key_type="rsa")
    assert b"BEGIN PRIVATE KEY" in key
    x509.load_pem_x509_certificate(cert).verify_directly_issued_by(
        x509.load_pem_x509_certificate(pki.ca_pem)
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"node_id": "ipn:1.1"}, "not a node ID"),
        ({"node_id": "dtn://node/inbox"}, "not a node ID"),
        ({"node_id": "dtn:none"}, "not a node ID"),
        ({"node_id": "mailto:x"}, "bad node ID"),
        ({"node_id": None}, "needs a node ID, a DNS name or an IP address"),
        ({"node_id": None, "ip_addresses": ["300.1.1.1"]}, "not an IP address"),
        ({"node_id": None, "dns_names": [""]}, "empty DNS name"),
        ({"node_id": "ipn:1.0", "key_type": "dsa"}, "unknown key type"),
        ({"node_id": "ipn:1.0", "days": 0}, "at least one day"),
    ],
)
def test_node_certificate_refuses_bad_requests(
    pki: Pki, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_node_certificate(pki.ca_pem, pki.ca_key_pem, **options)  # type: ignore[arg-type]


def test_node_certificate_refuses_a_key_of_another_ca(pki: Pki) -> None:
    _, other_key = make_ca("stranger", days=1)
    with pytest.raises(ConfigError, match="does not belong to the CA certificate"):
        make_node_certificate(pki.ca_pem, other_key, node_id="ipn:1.0")
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        make_node_certificate(b"junk", pki.ca_key_pem, node_id="ipn:1.0")


def test_write_pem_files_keeps_the_key_private(tmp_path: Path, pki: Pki) -> None:
    stale = tmp_path / "out" / "node.key"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    stale.chmod(0o644)
    cert_path, key_path = write_pem_files(tmp_path / "out", "node", b"CERT", b"KEY")
    assert (cert_path.name, key_path.name) == ("node.crt", "node.key")
    assert key_path.read_bytes() == b"KEY" and cert_path.read_bytes() == b"CERT"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError):
        write_pem_files(tmp_path, "../escape", b"", b"")


# --------------------------------------------------------------------------------------------
# Identities


def test_peer_identity_reads_node_dns_and_ip(pki: Pki) -> None:
    identity = peer_identity(_der(pki.server[0]))
    assert identity == PeerIdentity(
        node_ids=("ipn:1.0",),
        dns_names=("localhost",),
        ip_addresses=(ipaddress.IPv4Address("127.0.0.1"),),
    )
    assert str(identity) == "node ipn:1.0, DNS localhost, IP 127.0.0.1"


def test_peer_identity_without_subject_alt_name(pki: Pki) -> None:
    ca_der = x509.load_pem_x509_certificate(pki.ca_pem).public_bytes(serialization.Encoding.DER)
    assert peer_identity(ca_der) == PeerIdentity()
    assert str(PeerIdentity()) == "no identity"


def test_peer_identity_ignores_endpoints_that_are_not_node_ids() -> None:
    def bundle_eid(value: bytes) -> x509.OtherName:
        return x509.OtherName(ID_ON_BUNDLE_EID, value)

    der = _self_signed_with(
        [
            bundle_eid(encode_bundle_eid("dtn://node/inbox")),  # an endpoint: ignored
            bundle_eid(encode_bundle_eid("ipn:3.1")),  # an endpoint: ignored
            bundle_eid(b"\x30\x09\x16\x07ipn:6.0"),  # a SEQUENCE, not a string: ignored
            bundle_eid(encode_bundle_eid("ipn:1")),  # malformed ipn URI: ignored
            bundle_eid(b"\x04\x07ipn:4.0"),  # OCTET STRING, not a string type: ignored
            bundle_eid(b"\x0c\x07ipn:5.0"),  # UTF8String: tolerated
            bundle_eid(encode_bundle_eid("xyz:opaque")),  # unknown scheme: kept verbatim
            x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9"), b"\x0c\x01a"),
            bundle_eid(encode_bundle_eid("dtn://node/")),
        ]
    )
    assert peer_identity(der).node_ids == ("ipn:5.0", "xyz:opaque", "dtn://node/")


@pytest.mark.parametrize(
    "value",
    [
        b"\x16\x09ipn:6.0",  # shorter than its length says
        b"\x16\x05ipn:6.0",  # longer than its length says
        b"\x16\x80ipn:6.0\x00\x00",  # indefinite length is not DER
        b"\x16\x85\x00\x00\x00\x00\x07ipn:6.0",  # absurd length of length
        b"\x16\x02\xc3\xa9",  # IA5String is ASCII only
        b"\x16",
    ],
)
def test_malformed_bundle_eid_values_are_not_node_ids(value: bytes) -> None:
    assert _node_id_text(value) is None


def test_bundle_eid_values_with_long_form_length() -> None:
    assert _node_id_text(b"\x16\x81\x07ipn:6.0") == "ipn:6.0"


def test_peer_identity_of_garbage_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError, match="unreadable peer certificate"):
        peer_identity(b"\x30\x03\x02\x01\x00")


# --------------------------------------------------------------------------------------------
# Authentication policy

SERVER_ID = PeerIdentity(
    node_ids=("ipn:2.0",),
    dns_names=("node.example.net",),
    ip_addresses=(ipaddress.IPv4Address("192.0.2.7"), ipaddress.IPv6Address("2001:db8::7")),
)
HOST_ONLY = PeerIdentity(
    dns_names=("*.example.net", "Relay.Example.org"),
    ip_addresses=(ipaddress.IPv4Address("192.0.2.7"),),
)
IP_ONLY = PeerIdentity(ip_addresses=(ipaddress.IPv4Address("192.0.2.7"),))
ODD_SCHEME = PeerIdentity(node_ids=("xyz:a",))
LAX = {"require_node_id": False}
MISMATCH = "certificate names node ipn:2.0 but the session announced ipn:3.0"
UNAUTHENTICATED = "does not authenticate node ipn:3.0"


def decision(
    name: str,
    identity: PeerIdentity | None,
    claimed: str | None,
    host: str | None,
    expected: str | None = None,
    options: dict[str, bool] | None = None,
) -> object:
    """One row: certificate identity, SESS_INIT node ID, host we connected to -> reason."""
    return pytest.param(identity, claimed, host, options or {}, expected, id=name)


DECISIONS = [
    decision("node id matches", SERVER_ID, "ipn:2.0", None),
    decision("node id matches normalised", SERVER_ID, "IPN:02.0", "elsewhere"),
    decision("node id mismatch", SERVER_ID, "ipn:3.0", None, MISMATCH),
    decision("mismatch beats host", SERVER_ID, "ipn:3.0", "node.example.net", MISMATCH, LAX),
    decision("dns id stands in", HOST_ONLY, "ipn:3.0", "relay.example.org."),
    decision("wildcard dns id", HOST_ONLY, "ipn:3.0", "a.example.net"),
    decision("wildcard is one label", HOST_ONLY, "ipn:3.0", "a.b.example.net", "does not name"),
    decision("ip id stands in", HOST_ONLY, "ipn:3.0", "192.0.2.7"),
    decision("ipv4-mapped ipv6 host", HOST_ONLY, None, "::ffff:192.0.2.7"),
    decision("ipv6 host in brackets", SERVER_ID, None, "[2001:db8::7]"),
    decision("name is no ip id", IP_ONLY, "ipn:3.0", "192-0-2-7.example.net", "does not name"),
    decision("host mismatch", HOST_ONLY, "ipn:3.0", "198.51.100.1", "does not name the host", LAX),
    decision(
        "dns ids not allowed",
        HOST_ONLY,
        "ipn:3.0",
        "relay.example.org",
        UNAUTHENTICATED,
        {"allow_dns_or_ip": False},
    ),
    decision(
        "dns ids not allowed, none required",
        HOST_ONLY,
        "ipn:3.0",
        "x",
        None,
        {"allow_dns_or_ip": False, "require_node_id": False},
    ),
    decision("passive side has no host", HOST_ONLY, "ipn:3.0", None, UNAUTHENTICATED),
    decision("passive side, not required", HOST_ONLY, "ipn:3.0", None, None, LAX),
    decision("no node id announced", SERVER_ID, "", None, "the peer announced no node ID"),
    decision("no node id announced, host ok", SERVER_ID, None, "node.example.net"),
    decision("no identity, not required", PeerIdentity(), "ipn:3.0", "somewhere", None, LAX),
    decision("no certificate", None, "ipn:3.0", None, "the peer presented no certificate"),
    decision("no certificate, not required", None, "ipn:3.0", None, None, LAX),
    decision("unknown scheme compared verbatim", ODD_SCHEME, "xyz:a", None),
    decision(
        "hostile claim is shown tamed", SERVER_ID, "dtn://a\nb/" + "x" * 500, None, "dtn://a?b/xx"
    ),
]


@pytest.mark.parametrize(("identity", "claimed", "host", "options", "expected"), DECISIONS)
def test_authenticate_peer_decisions(
    pki: Pki,
    identity: PeerIdentity | None,
    claimed: str | None,
    host: str | None,
    options: dict[str, bool],
    expected: str | None,
) -> None:
    reason = authenticate_peer(
        identity, claimed_node_id=claimed, connected_host=host, config=pki.config(**options)
    )
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason
        assert "\n" not in reason and len(reason) < 300


def test_without_verification_nothing_is_refused() -> None:
    config = TlsConfig()
    assert config.verify_peer is False and config.require_node_id is False
    assert (
        authenticate_peer(SERVER_ID, claimed_node_id="ipn:3.0", connected_host="x", config=config)
        is None
    )


# --------------------------------------------------------------------------------------------
# Configuration


def test_config_defaults_follow_the_ca(pki: Pki) -> None:
    verifying = TlsConfig(certificate=pki.server[0], private_key=pki.server[1], ca=pki.ca)
    assert (verifying.verify_peer, verifying.require_node_id, verifying.allow_dns_or_ip) == (
        True,
        True,
        True,
    )
    assert verifying.can_serve
    lax = TlsConfig(certificate=str(pki.server[0]), private_key=str(pki.server[1]))  # type: ignore[arg-type]
    assert isinstance(lax.certificate, Path)
    assert (lax.verify_peer, lax.require_node_id) == (False, False)


def test_from_options(pki: Pki) -> None:
    assert TlsConfig.from_options(None, None, None) is None
    assert TlsConfig.from_options("", "", "") is None
    client_only = TlsConfig.from_options(None, None, None, require=True)
    assert client_only is not None and client_only.require and not client_only.can_serve
    full = TlsConfig.from_options(str(pki.client[0]), pki.client[1], pki.ca, require=True)
    assert full == TlsConfig(
        certificate=pki.client[0], private_key=pki.client[1], ca=pki.ca, require=True
    )


def test_certificate_and_key_in_one_file(tmp_path: Path, pki: Pki) -> None:
    combined = tmp_path / "both.pem"
    combined.write_bytes(pki.client[0].read_bytes() + pki.client[1].read_bytes())
    config = TlsConfig(certificate=combined, ca=pki.ca)
    assert client_context(config).verify_mode == ssl.CERT_REQUIRED


def test_ca_directory(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "a.pem").write_bytes(pki.ca.read_bytes())
    (tmp_path / "b.crt").write_bytes(pki.other_ca.read_bytes())
    (tmp_path / "README").write_text("not a certificate")
    context = server_context(TlsConfig(*pki.server, ca=tmp_path))
    assert {c["subject"][0][0][1] for c in context.get_ca_certs()} == {"test CA", "other CA"}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _encrypted_key(pki: Pki) -> bytes:
    key = serialization.load_pem_private_key(pki.client[1].read_bytes(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


CONFIG_ERRORS: list[tuple[str, Callable[[Path, Pki], dict[str, object]], str]] = [
    ("missing certificate", lambda t, p: {"certificate": t / "nope.crt"}, "nope.crt: no such file"),
    ("key without certificate", lambda t, p: {"private_key": p.client[1]}, "needs its certificate"),
    (
        "certificate without key",
        lambda t, p: {"certificate": p.client[0]},
        "holds no private key; give it with --tls-key",
    ),
    (
        "certificate is not PEM",
        lambda t, p: {"certificate": _write(t, "x.crt", b"hello"), "private_key": p.client[1]},
        "holds no PEM certificate",
    ),
    (
        "damaged certificate",
        lambda t, p: {
            "certificate": _write(
                t, "bad.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            "private_key": p.client[1],
        },
        "unreadable PEM certificate",
    ),
    (
        "key is not PEM",
        lambda t, p: {"certificate": p.client[0], "private_key": _write(t, "x.key", b"hello")},
        "unreadable PEM key",
    ),
    (
        "encrypted key",
        lambda t, p: {
            "certificate": p.client[0],
            "private_key": _write(t, "e.key", _encrypted_key(p)),
        },
        "is encrypted",
    ),
    (
        "key of another certificate",
        lambda t, p: {"certificate": p.client[0], "private_key": p.server[1]},
        "does not match certificate",
    ),
    (
        "certificate is a directory",
        lambda t, p: {"certificate": t, "private_key": p.client[1]},
        "is a directory",
    ),
    ("missing CA", lambda t, p: {"ca": t / "nope.pem"}, "no such file or directory"),
    (
        "CA file without certificate",
        lambda t, p: {"ca": _write(t, "ca.pem", b"x")},
        "holds no PEM certificate",
    ),
    ("empty CA directory", lambda t, p: {"ca": t}, "holds no PEM certificate"),
    ("verification without CA", lambda t, p: {"verify_peer": True}, "needs a CA (--tls-ca)"),
    (
        "node IDs without verification",
        lambda t, p: {"ca": p.ca, "verify_peer": False, "require_node_id": True},
        "needs peer verification",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS]
)
def test_config_errors(
    tmp_path: Path, pki: Pki, make: Callable[[Path, Pki], dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        TlsConfig(**make(tmp_path, pki))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_server_needs_a_certificate(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="needs a certificate"):
        server_context(TlsConfig(ca=pki.ca))


def test_contexts_insist_on_tls13_and_leave_names_to_us(pki: Pki) -> None:
    for context in (client_context(pki.config(pki.client)), server_context(pki.config(pki.server))):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_3
        assert context.check_hostname is False
        assert context.verify_mode == ssl.CERT_REQUIRED
    assert server_context(TlsConfig(*pki.server)).verify_mode == ssl.CERT_NONE
    assert client_context(TlsConfig()).verify_mode == ssl.CERT_NONE


def test_server_hostname_is_only_for_names() -> None:
    assert server_hostname("relay.example.net") == "relay.example.net"
    assert server_hostname("127.0.0.1") is None
    assert server_hostname("::1") is None
    assert server_hostname("[fe80::1%eth0]") is None


# --------------------------------------------------------------------------------------------
# Errors


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] something (_ssl.c:1)")
    exc.reason = reason
    return exc


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code, exc.verify_message = code, message
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            _verify_error(20, "unable to get local issuer certificate"),
            "peer certificate not trusted",
        ),
        (_verify_error(10, "certificate has expired"), "peer certificate has expired"),
        (_verify_error(9, "certificate is not yet valid"), "not yet valid"),
        (
            _verify_error(26, "unsupported certificate purpose"),
            "rejected: unsupported certificate purpose",
        ),
        (_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"), "requires a client certificate"),
        (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), "does not trust our certificate"),
        (_ssl_error("WRONG_VERSION_NUMBER"), "did not answer with TLS"),
        (_ssl_error("SOMETHING_NEW"), "TLS failed: something new"),
        (ssl.SSLEOFError(8, "EOF occurred"), "closed the connection during the TLS handshake"),
        (ConnectionResetError(104, "reset"), "closed the connection"),
        (asyncio.IncompleteReadError(b"", 4), "closed the connection"),
        (TimeoutError(), "timed out"),
        (OSError("multi\nline"), "TLS failed: multi line"),
    ],
)
def test_tls_error_message(exc: BaseException, expected: str) -> None:
    message = tls_error_message(exc)
    assert expected in message and "\n" not in message


# --------------------------------------------------------------------------------------------
# Handshakes over loopback


@dataclass
class Outcome:
    client_error: BaseException | None = None
    server_error: BaseException | None = None
    client_version: str | None = None
    server_version: str | None = None
    client_sees: PeerIdentity | None = None  # the server's certificate
    server_sees: PeerIdentity | None = None  # the client's certificate
    client_received: bytes | None = None
    sni: list[str | None] = field(default_factory=list)


def _identity(writer: asyncio.StreamWriter) -> PeerIdentity | None:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return peer_identity(der) if der else None


async def _handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, sni: str | None = None
) -> Outcome:
    outcome = Outcome()
    server_done = asyncio.get_running_loop().create_future()
    server_ctx.sni_callback = lambda _sock, name, _ctx: outcome.sni.append(name)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # Plaintext contact headers first, then TLS on the same connection.
            await reader.readexactly(len(MAGIC))
            writer.write(MAGIC)
            await writer.drain()
            await writer.start_tls(server_ctx)
            outcome.server_version = writer.get_extra_info("ssl_object").version()
            outcome.server_sees = _identity(writer)
            writer.write(b"ok")
            await writer.drain()
        except Exception as exc:
            outcome.server_error = exc
        finally:
            writer.close()
            server_done.set_result(None)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(MAGIC)
        await writer.drain()
        await reader.readexactly(len(MAGIC))
        await writer.start_tls(client_ctx, server_hostname=sni)
        outcome.client_version = writer.get_extra_info("ssl_object").version()
        outcome.client_sees = _identity(writer)
        # In TLS 1.3 the server judges the client's certificate after the client has
        # finished its side of the handshake: a refusal shows up on this first read.
        outcome.client_received = await reader.read(2)
    except Exception as exc:
        outcome.client_error = exc
    finally:
        writer.close()
    await server_done
    server.close()
    await server.wait_closed()
    return outcome


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, sni: str | None = None
) -> Outcome:
    return asyncio.run(asyncio.wait_for(_handshake(server_ctx, client_ctx, sni), TIMEOUT))


def test_mutual_tls13_handshake_authenticates_both_nodes(pki: Pki) -> None:
    server_config, client_config = pki.config(pki.server), pki.config(pki.client)
    outcome = handshake(
        server_context(server_config),
        client_context(client_config),
        sni=server_hostname("localhost"),
    )
    assert outcome.client_error is None and outcome.server_error is None
    assert outcome.client_version == outcome.server_version == "TLSv1.3"
    assert outcome.client_received == b"ok"
    assert outcome.sni == ["localhost"]
    assert outcome.server_sees is not None and outcome.server_sees.node_ids == ("dtn://client/",)
    assert outcome.client_sees is not None and outcome.client_sees.node_ids == ("ipn:1.0",)
    # What the driver does after SESS_INIT, on each side.
    assert (
        authenticate_peer(
            outcome.client_sees,
            claimed_node_id="ipn:1.0",
            connected_host="127.0.0.1",
            config=client_config,
        )
        is None
    )
    assert (
        authenticate_peer(
            outcome.server_sees,
            claimed_node_id="dtn://client/",
            connected_host=None,
            config=server_config,
        )
        is None
    )
    lie = authenticate_peer(
        outcome.server_sees, claimed_node_id="ipn:1.0", connected_host=None, config=server_config
    )
    assert lie == "certificate names node dtn://client/ but the session announced ipn:1.0"


def test_host_certificate_authenticates_by_ip(pki: Pki) -> None:
    client_config = pki.config(pki.client)
    outcome = handshake(server_context(pki.config(pki.host_only)), client_context(client_config))
    assert outcome.client_error is None and outcome.sni == [None]
    assert outcome.client_sees is not None and outcome.client_sees.node_ids == ()
    assert (
        authenticate_peer(
            outcome.client_sees,
            claimed_node_id="ipn:1.0",
            connected_host="127.0.0.1",
            config=client_config,
        )
        is None
    )
    strict = pki.config(pki.client, allow_dns_or_ip=False)
    reason = authenticate_peer(
        outcome.client_sees, claimed_node_id="ipn:1.0", connected_host="127.0.0.1", config=strict
    )
    assert reason is not None and "does not authenticate node ipn:1.0" in reason


def test_client_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    outcome = handshake(
        server_context(pki.config(pki.server)), client_context(pki.config(pki.foreign_client))
    )
    assert outcome.server_error is not None
    assert tls_error_message(outcome.server_error) == (
        "peer certificate not trusted: unable to get local issuer certificate"
        " (is --tls-ca the CA that signed it?)"
    )
    # The client only learns it on its first read: end of stream, or an alert.
    assert outcome.client_received in (None, b"")


def test_client_without_certificate_is_refused_when_the_server_verifies(pki: Pki) -> None:
    outcome = handshake(server_context(pki.config(pki.server)), client_context(pki.config()))
    assert outcome.server_error is not None
    assert tls_error_message(outcome.server_error) == (
        "the peer presented no certificate, but one is required"
    )
    assert outcome.client_received in (None, b"")


def test_client_without_certificate_is_welcome_when_the_server_does_not_verify(pki: Pki) -> None:
    outcome = handshake(
        server_context(TlsConfig(*pki.server)), client_context(TlsConfig(ca=pki.ca))
    )
    assert outcome.client_error is None and outcome.server_error is None
    assert outcome.client_received == b"ok"
    assert outcome.server_sees is None
    assert outcome.client_sees is not None and outcome.client_sees.node_ids == ("ipn:1.0",)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("foreign_server", "peer certificate not trusted"),
        ("expired_server", "peer certificate has expired"),
    ],
)
def test_client_refuses_a_bad_server_certificate(pki: Pki, server: str, expected: str) -> None:
    pair = getattr(pki, server)
    outcome = handshake(server_context(TlsConfig(*pair)), client_context(pki.config(pki.client)))
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert expected in tls_error_message(outcome.client_error)
    assert outcome.server_error is not None


def test_client_refuses_a_server_without_tls13(pki: Pki) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    old.load_cert_chain(*pki.server)
    outcome = handshake(old, client_context(pki.config(pki.client)))
    assert outcome.client_error is not None and outcome.server_error is not None
    assert tls_error_message(outcome.server_error) == "the peer does not speak TLS 1.3"
    # asyncio drops a failed connection without sending the alert, so the client only sees
    # the connection end (an alert, if another implementation sends one, says more).
    assert "closed the connection" in tls_error_message(outcome.client_error) or (
        tls_error_message(outcome.client_error) == "the peer does not speak TLS 1.3"
    )
