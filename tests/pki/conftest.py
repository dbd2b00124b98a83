"""A throwaway root + issuing CA for the PKI tests (no Django, no database).

The CA fixture ``pki`` comes twice: keys in the file store's form (``cryptography`` keys) and
keys generated inside a throwaway SoftHSM2 token (test ids ``[pkcs11]``), so every test of the
issuing, the CRL, OCSP, ``openssl verify``/``ocsp`` and pkilint runs with both.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from issuance.pki.keys import PrivateKey, PublicKey, SigningKey, generate_private_key
from issuance.pki.profile import (
    CaUrls,
    ClientCertificateProfile,
    ClientSubject,
    build_client_certificate,
    create_issuing_ca,
    create_root_ca,
    new_serial,
)

OPENSSL = "/usr/bin/openssl"
ORGANIZATION = "Kihonet Test"
BASE_URL = "http://ca.example.jp/"
SUBJECT = ClientSubject(
    user_id="u12345",
    management_number="M-0001",
    kihonet_code="K9876",
    email="taro.yamada@example.co.jp",
)


@dataclass
class Pki:
    directory: Path
    store: str
    root_key: SigningKey
    root_cert: x509.Certificate
    issuing_key: SigningKey
    issuing_cert: x509.Certificate
    profile: ClientCertificateProfile

    def issue(
        self,
        public_key: PublicKey,
        subject: ClientSubject = SUBJECT,
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - timedelta(minutes=5)
        return build_client_certificate(
            self.profile,
            public_key,
            subject,
            new_serial(),
            start,
            self.issuing_cert,
            self.issuing_key,
        )

    def write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


def pem(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def der(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


def run_openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=30
    )


def make_csr(key: PrivateKey, common_name: str = "evil", email: str = "evil@evil.test") -> bytes:
    """A DER CSR with a bogus subject and SAN, which the profile must ignore."""
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Evil Corp"),
                    x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    )
    algorithm = None if _is_eddsa(key) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def _is_eddsa(key: object) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    return isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)


KEY_STORES = ["file", "pkcs11"]


@pytest.fixture(scope="session", params=KEY_STORES)
def key_store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def key_pair_source(
    key_store_kind: str, request: pytest.FixtureRequest
) -> Callable[[str, str], SigningKey]:
    """Makes a CA key: ``cryptography``'s (file store) or one inside a SoftHSM2 token."""
    if key_store_kind == "file":
        return lambda name, key_type: generate_private_key(key_type)
    from issuance.pki.pkcs11 import Pkcs11KeyStore

    token = request.getfixturevalue("soft_hsm").create_token(f"kihonet-pki-{os.getpid()}")
    store = Pkcs11KeyStore(token.module, token.label, token.pin)
    request.addfinalizer(store.close)
    return store.generate


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory, key_store_kind: str, key_pair_source) -> Pki:
    store = key_store_kind
    directory = tmp_path_factory.mktemp("pki")
    start = datetime.now(UTC) - timedelta(days=1)
    root_key = key_pair_source("root", "ec-p384")
    root_cert = create_root_ca(root_key, "Kihonet Test Root CA", ORGANIZATION, start, 7300)
    issuing_key = key_pair_source("issuing", "ec-p256")
    issuing_cert = create_issuing_ca(
        issuing_key.public_key(),
        root_cert,
        root_key,
        "Kihonet Test Issuing CA",
        ORGANIZATION,
        start,
        3650,
    )
    result = Pki(
        directory=directory,
        store=store,
        root_key=root_key,
        root_cert=root_cert,
        issuing_key=issuing_key,
        issuing_cert=issuing_cert,
        profile=ClientCertificateProfile(organization=ORGANIZATION, urls=CaUrls(BASE_URL)),
    )
    result.write("root.pem", pem(root_cert))
    result.write("issuing.pem", pem(issuing_cert))
    result.write("chain.pem", pem(issuing_cert) + pem(root_cert))
    return result


@pytest.fixture(scope="session")
def client_key() -> PrivateKey:
    return generate_private_key("ec-p256")


@pytest.fixture(scope="session")
def client_cert(pki: Pki, client_key: PrivateKey) -> x509.Certificate:
    return pki.issue(client_key.public_key())


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return generate_private_key("rsa-2048")


@pytest.fixture
def write_cert(pki: Pki) -> Callable[[str, x509.Certificate], Path]:
    def write(name: str, cert: x509.Certificate) -> Path:
        return pki.write(name, pem(cert))

    return write
