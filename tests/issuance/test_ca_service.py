"""The CA tied to the models: init_ca, issuing from a CSR, revocation, CRL and OCSP (R07, R08)."""

import hashlib
import subprocess
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command
from django.urls import reverse

from issuance import audit, ca
from issuance.errors import CaUnavailableServiceError, CertificateRequestError, RevocationError
from issuance.models import AuditEvent, Certificate, CrlPublication
from issuance.services import certificates as services
from issuance.services.crl import publish_crl, refresh_crl
from tests.csr import make_csr
from tests.factories import make_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def issuing_ca(issuing_ca_each_store):
    """Every CA test here runs with the keys in the file store and in SoftHSM2 ([pkcs11])."""
    return issuing_ca_each_store


ACTOR = audit.Actor.customer("test", "127.0.0.1")


def issue(notice=None, csr=None):
    notice = notice or make_notice()
    return services.issue_certificate(
        user=notice.user,
        notice=notice,
        csr_data=make_csr(common_name="CN from the PC")[1] if csr is None else csr,
        actor=ACTOR,
    )


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def test_init_ca_creates_once_and_refuses_to_overwrite(settings, tmp_path):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "pass phrase"
    ca.reset()
    call_command("init_ca", stdout=StringIO())
    issuing = (tmp_path / "ca" / "issuing.crt.pem").read_bytes()
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("init_ca", stdout=StringIO())
    call_command("init_ca", "--if-missing", stdout=StringIO())
    assert (tmp_path / "ca" / "issuing.crt.pem").read_bytes() == issuing
    key_file = next((tmp_path / "ca" / "private").glob("issuing*"))
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    assert CrlPublication.objects.count() == 1
    ca.reset()


@pytest.mark.parametrize("key_type", ["ec-p384", "rsa-3072"])
def test_init_ca_offers_other_key_types(settings, tmp_path, key_type):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "pass phrase"
    ca.reset()
    call_command("init_ca", "--key-type", key_type, stdout=StringIO())
    assert issue().pem.startswith("-----BEGIN CERTIFICATE-----")
    ca.reset()


def test_signing_with_a_wrong_or_missing_passphrase_is_refused(settings, tmp_path, caplog):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "test passphrase"
    ca.reset()
    ca.create()  # the file store: its keys need the passphrase
    ca.reset()
    settings.KIHONET_CA_PASSPHRASE = "not-the-passphrase"
    with pytest.raises(CaUnavailableServiceError):
        issue()
    assert "The CA cannot sign" in caplog.text and "not-the-passphrase" not in caplog.text
    ca.reset()
    settings.KIHONET_CA_PASSPHRASE = ""
    settings.KIHONET_CA_PASSPHRASE_FILE = ""
    with pytest.raises(CaUnavailableServiceError):
        issue()
    assert Certificate.objects.count() == 0


def test_r08_r12_certificate_is_built_from_our_records(issuing_ca):
    notice = make_notice()
    certificate = issue(notice)
    cert = x509.load_pem_x509_certificate(certificate.pem.encode())
    user = notice.user
    assert cert.subject.rfc4514_string() == (
        f"CN={user.user_id} {user.management_number},OU={user.customer.kihonet_code},O=Kihonet,C=JP"
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [notice.email]
    assert (
        cert.not_valid_after_utc.replace(year=cert.not_valid_before_utc.year)
        == cert.not_valid_before_utc
    )
    assert (certificate.not_after - certificate.not_before).days in (1095, 1096)
    assert certificate.serial == format(cert.serial_number, "X")
    stored = Certificate.objects.get(pk=certificate.pk)
    assert stored.pem == cert.public_bytes(serialization.Encoding.PEM).decode()
    assert (
        stored.fingerprint
        == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    )
    assert (
        stored.public_key_fingerprint
        == hashlib.sha256(
            cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).hexdigest()
    )
    event = AuditEvent.objects.get(action="certificate_issued")
    assert (event.kihonet_user, event.object_id) == (user, str(certificate.pk))


def test_r07_issued_certificate_passes_openssl_verify_for_client_auth(issuing_ca, tmp_path):
    certificate = issue()
    result = openssl(
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        write(tmp_path, "chain.pem", issuing_ca.chain_pem),
        write(tmp_path, "cert.pem", certificate.pem),
    )
    assert result.returncode == 0, result.stderr
    assert ": OK" in result.stdout


def test_a_public_key_is_certified_only_once(issuing_ca):
    key, csr = make_csr()
    issue(csr=csr)
    with pytest.raises(CertificateRequestError) as raised:
        issue(csr=make_csr(key)[1])
    assert raised.value.detail == {"csr": "key_reused"}


@pytest.mark.parametrize(
    "bad",
    ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "x" * 20000],
)
def test_bad_csr_is_refused_with_its_own_message(issuing_ca, bad):
    with pytest.raises(CertificateRequestError) as raised:
        issue(csr=bad)
    assert raised.value.status_code == "3460"
    assert Certificate.objects.count() == 0


def test_rsa_key_with_exponent_3_is_refused_in_japanese(issuing_ca):
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    with pytest.raises(CertificateRequestError) as raised:
        issue(csr=make_csr(key)[1])
    assert raised.value.status_code == "3460"
    assert raised.value.detail == {"csr": "key_exponent"}
    assert (
        str(raised.value.message)
        == "RSA鍵の公開指数は65537にしてください。新しい鍵を作成してください。"
    )
    assert Certificate.objects.count() == 0


def test_revocation_reaches_the_crl_and_openssl_rejects_the_certificate(
    client, issuing_ca, tmp_path
):
    good, revoked = issue(), issue()
    first_number = (
        CrlPublication.objects.latest("number").number if CrlPublication.objects.exists() else 0
    )
    services.revoke_certificate(revoked, reason="keyCompromise", actor=ACTOR)
    with pytest.raises(RevocationError):
        services.revoke_certificate(revoked, reason="superseded", actor=ACTOR)
    response = client.get(reverse("issuance:crl", args=["der"]))
    crl = x509.load_der_x509_crl(response.content)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > first_number
    entry = crl.get_revoked_certificate_by_serial_number(int(revoked.serial, 16))
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
    assert crl.next_update_utc > datetime.now(UTC)

    chain = write(tmp_path, "chain.pem", issuing_ca.chain_pem)
    crl_pem = write(tmp_path, "crl.pem", client.get(reverse("issuance:crl", args=["pem"])).content)

    def verify(name: str, pem: str):
        certificate = write(tmp_path, name, pem)
        return openssl("verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl_pem, certificate)

    rejected = verify("revoked.pem", revoked.pem)
    assert rejected.returncode != 0 and "certificate revoked" in rejected.stdout + rejected.stderr
    accepted = verify("good.pem", good.pem)
    assert accepted.returncode == 0, accepted.stderr


def test_crl_number_increases_and_is_served_from_the_cache(
    client, issuing_ca, django_assert_num_queries
):
    first = publish_crl().number
    second = refresh_crl().number
    assert second > first
    client.get(reverse("issuance:crl", args=["der"]))
    with django_assert_num_queries(0):
        response = client.get(reverse("issuance:crl", args=["der"]))
    crl = x509.load_der_x509_crl(response.content)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == second


def test_revoke_command_for_operators(issuing_ca):
    certificate = issue()
    call_command("revoke", certificate.serial, "--reason", "keyCompromise", stdout=StringIO())
    certificate.refresh_from_db()
    assert certificate.is_revoked and certificate.revocation_reason == "keyCompromise"
    with pytest.raises(CommandError, match="No certificate"):
        call_command("revoke", "ABCDEF", stdout=StringIO())


def test_chain_endpoint_serves_issuing_then_root(client, issuing_ca):
    body = client.get(reverse("issuance:ca-chain")).content.decode()
    assert body == issuing_ca.chain_pem
    der = client.get(reverse("issuance:issuing-ca")).content
    assert x509.load_der_x509_certificate(der) == issuing_ca.issuing_cert


@pytest.mark.django_db(transaction=True)
def test_openssl_ocsp_says_good_then_revoked(live_server, settings, tmp_path, ca_store):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "test passphrase"
    ca.reset()
    material = ca.create()
    certificate = issue()
    issuer = write(
        tmp_path,
        "issuing.pem",
        material.chain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n",
    )
    chain = write(tmp_path, "chain.pem", material.chain_pem)
    cert = write(tmp_path, "cert.pem", certificate.pem)

    def ask() -> str:
        result = openssl(
            "ocsp",
            "-issuer",
            issuer,
            "-cert",
            cert,
            "-CAfile",
            chain,
            "-url",
            f"{live_server.url}/pki/ocsp",
        )
        assert result.returncode == 0, result.stderr
        assert "Response verify OK" in result.stderr + result.stdout
        return result.stdout

    assert f"{cert}: good" in ask()
    services.revoke_certificate(certificate, reason="keyCompromise", actor=ACTOR)
    answer = ask()
    assert f"{cert}: revoked" in answer and "Reason: keyCompromise" in answer
    ca.reset()


def test_init_ca_uses_the_key_type_setting(settings, tmp_path):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "pass phrase"
    settings.KIHONET_CA_KEY_TYPE = "ec-p384"
    ca.reset()
    call_command("init_ca", stdout=StringIO())
    assert ca.load().issuing_cert.public_key().curve.name == "secp384r1"
    event = AuditEvent.objects.get(action="ca_created")
    assert event.detail["key_type"] == "ec-p384"
    ca.reset()


def test_init_ca_records_its_event_with_its_first_crl_or_not_at_all(
    settings, tmp_path, monkeypatch
):
    """The ``ca_created`` event is written in the transaction of the first CRL: when signing the
    CRL fails, neither is left behind."""
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "pass phrase"
    ca.reset()

    def token_gone(*args, **kwargs):
        raise RuntimeError("the signer went away")

    monkeypatch.setattr("issuance.services.crl.pki_crl.build_crl_der", token_gone)
    with pytest.raises(RuntimeError):
        call_command("init_ca", stdout=StringIO())
    assert not AuditEvent.objects.filter(action="ca_created").exists()
    assert not CrlPublication.objects.exists()
    ca.reset()


@pytest.mark.parametrize("minutes", [60, 15])
def test_an_ocsp_answer_may_be_cached_for_the_configured_time(issuing_ca, settings, minutes):
    """nextUpdate of an OCSP answer is KIHONET_OCSP_VALIDITY_MINUTES after its thisUpdate."""
    from datetime import timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp as x509_ocsp

    from issuance import responders

    settings.KIHONET_OCSP_VALIDITY_MINUTES = minutes
    certificate = x509.load_pem_x509_certificate(issue().pem.encode())
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuing_ca.issuing_cert, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answer = x509_ocsp.load_der_ocsp_response(responders.ocsp_response(request))
    assert answer.next_update_utc - answer.this_update_utc == timedelta(minutes=minutes)
