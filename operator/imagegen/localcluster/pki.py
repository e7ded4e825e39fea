"""Certificates and keys for one local control plane, written as PEM files.

A local cluster needs: a CA and a serving certificate for 127.0.0.1/localhost, a
service-account signing key, and a front-proxy CA with a client certificate so the
apiserver can proxy aggregated APIs such as metrics.k8s.io. The servers that run beside the
apiserver on loopback (kwok's kubelet endpoint, metrics-server) get serving certificates
from the same CA, so their clients can verify them.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=30)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterPKI:
    """Paths of the PEM files one cluster uses."""

    ca_cert: pathlib.Path
    serving_cert: pathlib.Path
    serving_key: pathlib.Path
    service_account_key: pathlib.Path
    service_account_public_key: pathlib.Path
    front_proxy_ca_cert: pathlib.Path
    front_proxy_client_cert: pathlib.Path
    front_proxy_client_key: pathlib.Path
    kwok_serving_cert: pathlib.Path
    kwok_serving_key: pathlib.Path
    metrics_server_serving_cert: pathlib.Path
    metrics_server_serving_key: pathlib.Path


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def write_cluster_pki(*, directory: pathlib.Path) -> ClusterPKI:
    """Create a fresh CA, serving certificates, SA key and front-proxy pair in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _issue(common_name="imagegen-local-ca", issuer=None, server=False, client=False)
    serving = _issue(common_name="kube-apiserver", issuer=ca, server=True, client=False)
    kwok_serving = _issue(common_name="kwok", issuer=ca, server=True, client=False)
    metrics_serving = _issue(common_name="metrics-server", issuer=ca, server=True, client=False)
    front_proxy_ca = _issue(common_name="front-proxy-ca", issuer=None, server=False, client=False)
    front_proxy_client = _issue(
        common_name="front-proxy-client", issuer=front_proxy_ca, server=False, client=True
    )
    # The service-account issuer signs tokens with RS256 by default.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = ClusterPKI(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        service_account_public_key=directory / "sa.pub",
        front_proxy_ca_cert=directory / "front-proxy-ca.crt",
        front_proxy_client_cert=directory / "front-proxy-client.crt",
        front_proxy_client_key=directory / "front-proxy-client.key",
        kwok_serving_cert=directory / "kwok.crt",
        kwok_serving_key=directory / "kwok.key",
        metrics_server_serving_cert=directory / "metrics-server.crt",
        metrics_server_serving_key=directory / "metrics-server.key",
    )
    _write_cert(pki.ca_cert, ca.cert)
    _write_cert(pki.serving_cert, serving.cert)
    _write_key(pki.serving_key, serving.key)
    _write_cert(pki.front_proxy_ca_cert, front_proxy_ca.cert)
    _write_cert(pki.front_proxy_client_cert, front_proxy_client.cert)
    _write_key(pki.front_proxy_client_key, front_proxy_client.key)
    _write_cert(pki.kwok_serving_cert, kwok_serving.cert)
    _write_key(pki.kwok_serving_key, kwok_serving.key)
    _write_cert(pki.metrics_server_serving_cert, metrics_serving.cert)
    _write_key(pki.metrics_server_serving_key, metrics_serving.key)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServingPKI:
    """A private CA and one serving certificate it signed, for 127.0.0.1 and localhost."""

    ca_cert: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path


def write_serving_pki(*, directory: pathlib.Path, common_name: str) -> ServingPKI:
    """Create a fresh CA and a serving certificate of `common_name` in directory: what a
    TLS server with a private CA (a Redis, say) and its clients need."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _issue(common_name=f"{common_name}-ca", issuer=None, server=False, client=False)
    serving = _issue(common_name=common_name, issuer=ca, server=True, client=False)
    files = ServingPKI(
        ca_cert=directory / "ca.crt", cert=directory / "server.crt", key=directory / "server.key"
    )
    _write_cert(files.ca_cert, ca.cert)
    _write_cert(files.cert, serving.cert)
    _write_key(files.key, serving.key)
    return files


def _issue(*, common_name: str, issuer: _Issued | None, server: bool, client: bool) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signing_key = issuer.key if issuer else key
    return _Issued(cert=builder.sign(signing_key, hashes.SHA256()), key=key)


def _write_cert(path: pathlib.Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
