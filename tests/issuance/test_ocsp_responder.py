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
