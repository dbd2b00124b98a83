"""The delegated OCSP responder: issued on first use, renewed before it expires, shared by the
processes through the CA folder, audited (R08)."""

from datetime import timedelta

import pytest
from cryptography import x509
from django.utils import timezone

from issuance.models import AuditEvent
from issuance.services import ocsp_responder

pytestmark = pytest.mark.django_db


@pytest.fixture
def responders(issuing_ca, settings):
    settings.KIHONET_OCSP_RESPONDER_DAYS = 7
    settings.KIHONET_OCSP_RESPONDER_RENEW_DAYS = 3
    ocsp_responder.forget()
    yield issuing_ca
    ocsp_responder.forget()


def issued():
    return AuditEvent.objects.filter(action="ocsp_responder_issued").count()


def test_responder_issued_once_then_renewed_before_it_expires(responders, settings):
    now = timezone.now()
    first = ocsp_responder.responder(now)
    assert issued() == 1
    first.cert.verify_directly_issued_by(responders.issuing_cert)
    assert first.cert.not_valid_after_utc - first.cert.not_valid_before_utc == timedelta(days=7)
    assert ocsp_responder.responder(now + timedelta(days=3)) is first
    assert issued() == 1

    later = now + timedelta(days=4, minutes=1)  # less than 3 days left: renewed
    second = ocsp_responder.responder(later)
    assert second.cert.serial_number != first.cert.serial_number
    assert second.cert.not_valid_after_utc > first.cert.not_valid_after_utc
    assert issued() == 2
    event = AuditEvent.objects.filter(action="ocsp_responder_issued").order_by("pk").last()
    assert event.detail["serial"] == format(second.cert.serial_number, "X")

    # Another process (nothing in memory) takes the newest from the CA folder, issues nothing.
    ocsp_responder.forget()
    assert ocsp_responder.responder(later).cert == second.cert
    assert issued() == 2
    key_files = sorted(p.name for p in (settings.KIHONET_CA_DIR / "private").glob("ocsp-*"))
    assert len(key_files) == 2  # the old one is removed only once it has expired

    ocsp_responder.responder(now + timedelta(days=9))
    assert len(list((settings.KIHONET_CA_DIR / "private").glob("ocsp-*"))) == 2


def test_the_hourly_crl_job_renews_the_responder(responders):
    from issuance.services.crl import refresh_crl

    refresh_crl()
    assert issued() == 1
    cert = ocsp_responder.responder().cert
    assert cert.extensions.get_extension_for_class(x509.OCSPNoCheck).critical is False


def test_try_later_when_there_is_no_responder_and_none_can_be_issued(responders, settings):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp as x509_ocsp

    from issuance import responders as published

    issuer = responders.issuing_cert
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(*_hashes(issuer), serial_number=12345, algorithm=hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    settings.KIHONET_CA_PASSPHRASE = ""  # the responder's key cannot be written
    settings.KIHONET_CA_PASSPHRASE_FILE = ""
    answer = x509_ocsp.load_der_ocsp_response(published.ocsp_response(request))
    assert answer.response_status == x509_ocsp.OCSPResponseStatus.TRY_LATER
    assert issued() == 0
    settings.KIHONET_CA_PASSPHRASE = "test passphrase"
    answer = x509_ocsp.load_der_ocsp_response(published.ocsp_response(request))
    assert answer.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == x509_ocsp.OCSPCertStatus.UNKNOWN


def _hashes(issuer):
    from cryptography.hazmat.primitives import hashes

    from issuance.pki.ocsp import issuer_hashes

    return issuer_hashes(issuer, hashes.SHA1())


def test_a_responder_certificate_not_signed_by_this_ca_is_passed_over(responders, settings):
    """A file in the CA folder with the issuing CA's name as issuer but another CA's signature
    (e.g. left from a CA made again under the same name) is skipped, and a responder issued."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = timezone.now()
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "OCSP")]))
        .issuer_name(responders.issuing_cert.subject)
        .public_key(stranger.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(stranger, hashes.SHA256())
    )
    directory = settings.KIHONET_CA_DIR / ocsp_responder.DIRECTORY
    directory.mkdir(exist_ok=True)
    (directory / f"{ocsp_responder.KEY_PREFIX}forged.crt.pem").write_bytes(
        forged.public_bytes(serialization.Encoding.PEM)
    )

    chosen = ocsp_responder.responder(now)
    assert chosen.cert != forged
    chosen.cert.verify_directly_issued_by(responders.issuing_cert)
    assert issued() == 1
