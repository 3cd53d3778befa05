"""The API's TLS identity: a CA made for this lab, and a server certificate it signs.

kubectl sends its bearer token only over TLS it can verify, so the lab makes a CA at each
daemon start (the kubeconfig carries the CA certificate) and a server certificate for
127.0.0.1 and localhost. The private keys are written owner-only into the home. The daemon
calls this in a child process (``identity.make_identity``), so it never loads cryptography.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trafficlab._private import write_private

__all__ = ["make_certs"]

_VALIDITY = datetime.timedelta(days=365)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TrafficLab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certs(folder: Path) -> None:
    """Make a fresh CA and server certificate in ``folder`` (keys mode 0600)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    # A little backdating tolerates a client clock slightly behind ours.
    not_before, not_after = now - datetime.timedelta(minutes=5), now + _VALIDITY
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("trafficlab-ca")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("trafficlab-apiserver")).issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    cert_pem = server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    write_private(folder / "ca.key", _key_pem(ca_key))
    write_private(folder / "ca.crt", ca_pem.decode())
    write_private(folder / "apiserver.key", _key_pem(server_key))
    write_private(folder / "apiserver.crt", cert_pem.decode())
