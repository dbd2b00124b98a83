"""issuance.responders, called directly: what the CA publishes (R07, R08): the chain, the CRL
(from the cache, else the latest published, else a first one) and the OCSP answers.

Through the URLs and openssl: tests/issuance/test_ca_service.py; the responder's own certificate:
tests/issuance/services/test_ocsp_responder.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID
from django.core.cache import cache

from issuance import audit, responders
from issuance.models import Certificate, CrlPublication
from issuance.services import certificates
from issuance.services.crl import CRL_CACHE_KEY, publish_crl
from tests.csr import make_csr
from tests.factories import make_notice

pytestmark = pytest.mark.django_db

ACTOR = audit.Actor.customer("test", "127.0.0.1")


def issue() -> tuple[Certificate, x509.Certificate]:
    notice = make_notice()
    row = certificates.issue_certificate(
        user=notice.user, notice=notice, csr_data=make_csr()[1], actor=ACTOR
    )
    return row, x509.load_pem_x509_certificate(row.pem.encode())


def ask(certificate: x509.Certificate, issuer: x509.Certificate) -> x509_ocsp.OCSPResponse:
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    return x509_ocsp.load_der_ocsp_response(responders.ocsp_response(request))


def another_ca() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_the_chain_is_the_issuing_ca_then_the_root(issuing_ca):
    chain = x509.load_pem_x509_certificates(responders.chain_pem().encode())
    assert chain == [issuing_ca.issuing_cert, issuing_ca.root_cert]
    assert x509.load_der_x509_certificate(responders.issuing_ca_der()) == issuing_ca.issuing_cert


def test_r08_the_cached_crl_is_served_without_a_query(
    issuing_ca, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # after commit: into the cache
        published = bytes(publish_crl().der)
    assert cache.get(CRL_CACHE_KEY) == published
    with django_assert_num_queries(0):
        assert responders.crl_der() == published


def test_r08_without_the_cache_the_latest_published_crl_is_served_and_cached_again(issuing_ca):
    publish_crl()
    latest = publish_crl()
    cache.delete(CRL_CACHE_KEY)
    assert responders.crl_der() == bytes(latest.der)
    assert CrlPublication.objects.count() == 2  # nothing new was signed
    assert cache.get(CRL_CACHE_KEY) == bytes(latest.der)


def test_r08_when_no_crl_was_ever_published_a_first_one_is_signed(issuing_ca):
    CrlPublication.objects.all().delete()
    cache.delete(CRL_CACHE_KEY)
    der = responders.crl_der()
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(issuing_ca.issuing_cert.public_key())
    [publication] = CrlPublication.objects.all()
    assert crl_number(der) == publication.number and cache.get(CRL_CACHE_KEY) == der


def test_r07_r08_ocsp_says_good_revoked_with_its_reason_and_unknown(issuing_ca):
    issuer = issuing_ca.issuing_cert
    _, good = issue()
    row, revoked = issue()
    certificates.revoke_certificate(row, reason="keyCompromise", actor=ACTOR)

    answer = ask(good, issuer)
    assert answer.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == x509_ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == good.serial_number

    answer = ask(revoked, issuer)
    assert answer.certificate_status == x509_ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    row.refresh_from_db()
    assert answer.revocation_time_utc == row.revoked_at.replace(microsecond=0)

    unknown = (  # a serial this CA never issued, under its name
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(issuer.subject)
        .public_key(good.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(good.not_valid_before_utc)
        .not_valid_after(good.not_valid_after_utc)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    assert ask(unknown, issuer).certificate_status == x509_ocsp.OCSPCertStatus.UNKNOWN


def test_ocsp_refuses_a_malformed_request_and_another_cas_certificate(issuing_ca):
    malformed = x509_ocsp.load_der_ocsp_response(responders.ocsp_response(b"not an OCSP request"))
    assert malformed.response_status == x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    answer = ask(issue()[1], another_ca())
    assert answer.response_status == x509_ocsp.OCSPResponseStatus.UNAUTHORIZED
