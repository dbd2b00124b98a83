"""Every certificate, CRL and OCSP response passes pkilint's RFC 5280 / RFC 6960 linters.

Findings below ERROR (WARNING, NOTICE, INFO) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from issuance.pki.crl import REASONS, RevokedEntry, build_crl
from issuance.pki.keys import generate_private_key
from issuance.pki.ocsp import (
    build_ocsp_response,
    malformed_request_response,
    parse_ocsp_request,
    unauthorized_response,
)
from issuance.pki.profile import (
    CaUrls,
    ClientCertificateProfile,
    ClientSubject,
    build_client_certificate,
    new_serial,
)
from tests.pki.conftest import Pki, der
from tests.pki.lint import (
    Finding,
    blocking,
    lint_certificate,
    lint_chain,
    lint_crl,
    lint_ocsp_response,
    report,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def assert_clean(label: str, findings: list[Finding]) -> None:
    report(label, findings)
    assert blocking(findings) == [], "\n".join(map(str, findings))


def test_root_ca(pki: Pki) -> None:
    assert_clean("root CA", lint_certificate(der(pki.root_cert)))


def test_issuing_ca(pki: Pki) -> None:
    assert_clean("issuing CA", lint_certificate(der(pki.issuing_cert)))
    assert_clean("root -> issuing", lint_chain(der(pki.root_cert), der(pki.issuing_cert)))


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa"])
def test_client_certificates(pki: Pki, key_type: str, rsa_key) -> None:
    key = rsa_key if key_type == "rsa" else generate_private_key(key_type)
    cert = pki.issue(key.public_key())
    assert_clean(f"client {key_type}", lint_certificate(der(cert)))
    assert_clean(f"issuing -> client {key_type}", lint_chain(der(pki.issuing_cert), der(cert)))


def test_client_certificate_japanese_organization_https(pki: Pki, client_key) -> None:
    profile = ClientCertificateProfile(
        organization="企保ネット株式会社", urls=CaUrls("https://kihonet.example.jp/")
    )
    subject = ClientSubject("user-0001", "管理123", "K0001", "hanako@example.jp")
    cert = build_client_certificate(
        profile,
        client_key.public_key(),
        subject,
        new_serial(),
        NOW,
        pki.issuing_cert,
        pki.issuing_key,
    )
    assert_clean("client JP/https", lint_certificate(der(cert)))


@pytest.mark.parametrize("entries", ["empty", "with reasons"])
def test_crl(pki: Pki, entries: str) -> None:
    revoked = []
    if entries != "empty":
        revoked = [
            RevokedEntry(10 + index, NOW - timedelta(hours=index), REASONS[name])
            for index, name in enumerate(
                ["unspecified", "keyCompromise", "affiliationChanged", "superseded",
                 "cessationOfOperation", "certificateHold", "privilegeWithdrawn"]
            )
        ] + [RevokedEntry(99, NOW, None)]  # fmt: skip
    crl = build_crl(pki.issuing_cert, pki.issuing_key, revoked, 5, NOW, NOW + timedelta(days=1))
    assert_clean(f"CRL {entries}", lint_crl(crl.public_bytes(serialization.Encoding.DER)))


@pytest.mark.parametrize("status", ["good", "revoked", "unknown"])
def test_ocsp_responses(pki: Pki, client_cert: x509.Certificate, status: str) -> None:
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(client_cert, pki.issuing_cert, hashes.SHA1())
        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        .build()
    )
    query = parse_ocsp_request(request.public_bytes(serialization.Encoding.DER))
    response = build_ocsp_response(
        query,
        pki.issuing_cert,
        pki.issuing_key,
        status,  # type: ignore[arg-type]
        this_update=NOW,
        next_update=NOW + timedelta(hours=4),
        revoked_at=NOW - timedelta(days=1) if status == "revoked" else None,
        reason=REASONS["keyCompromise"] if status == "revoked" else None,
    )
    assert_clean(f"OCSP {status}", lint_ocsp_response(response))


def test_ocsp_unsuccessful_responses() -> None:
    assert_clean("OCSP malformedRequest", lint_ocsp_response(malformed_request_response()))
    assert_clean("OCSP unauthorized", lint_ocsp_response(unauthorized_response()))


def _responder(pki: Pki):
    from issuance.pki.profile import build_ocsp_responder_certificate

    key = generate_private_key("ec-p256")
    cert = build_ocsp_responder_certificate(
        key.public_key(), "Kihonet Test", NOW, timedelta(days=7), pki.issuing_cert, pki.issuing_key
    )
    return key, cert


def test_ocsp_responder_certificate(pki: Pki) -> None:
    """The delegated responder (RFC 6960 4.2.2.2), signed by the issuing CA's key."""
    _, cert = _responder(pki)
    assert_clean("OCSP responder", lint_certificate(der(cert)))
    assert_clean("OCSP responder chain", lint_chain(der(pki.issuing_cert), der(cert)))


def test_ocsp_response_of_the_delegated_responder(pki: Pki, client_cert: x509.Certificate) -> None:
    key, cert = _responder(pki)
    request = x509_ocsp.OCSPRequestBuilder().add_certificate(
        client_cert, pki.issuing_cert, hashes.SHA1()
    )
    query = parse_ocsp_request(request.build().public_bytes(serialization.Encoding.DER))
    response = build_ocsp_response(
        query, pki.issuing_cert, key, "good", this_update=NOW,
        next_update=NOW + timedelta(hours=1), responder_cert=cert,
    )  # fmt: skip
    assert_clean("OCSP delegated", lint_ocsp_response(response))
