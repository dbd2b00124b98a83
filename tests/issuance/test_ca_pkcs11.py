"""The CA with its keys in a PKCS#11 token (a throwaway SoftHSM2 token per test): init_ca and
the key ceremony, issuing, the CRL, OCSP through the delegated responder, a token that goes
away and comes back, keys that cannot be extracted (R07, R08)."""

import json
import os
import subprocess
from io import StringIO
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from django.core.management import CommandError, call_command
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from issuance import audit, ca
from issuance.errors import CaUnavailableServiceError
from issuance.models import AuditEvent, Certificate
from issuance.pki import pkcs11 as ca_pkcs11
from issuance.services import certificates as services
from issuance.services import ocsp_responder
from issuance.services.crl import publish_crl
from tests.conftest import use_token
from tests.csr import make_csr
from tests.factories import enrollment_fields, make_notice
from tests.issuance.services.test_enrollment import post_json

pytestmark = pytest.mark.django_db
ACTOR = audit.Actor.customer("test", "127.0.0.1")


@pytest.fixture
def token_ca(settings, tmp_path, make_token):
    """Settings for a CA whose keys go into a fresh token; the PIN in a file of mode 0600."""
    token = make_token("kihonet-ca")
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "responder pass phrase"
    use_token(settings, token, tmp_path)
    ca.reset()
    ocsp_responder.forget()
    yield token
    ca.reset()
    ocsp_responder.forget()


def openssl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)


def init(token) -> str:
    out = StringIO()
    call_command("init_ca", "--keystore", "pkcs11", "--token", token.label, stdout=out)
    return out.getvalue()


def issue():
    notice = make_notice()
    return services.issue_certificate(
        user=notice.user, notice=notice, csr_data=make_csr()[1], actor=ACTOR
    )


def test_init_ca_pkcs11_generates_in_the_token_prints_and_audits_fingerprints(token_ca, tmp_path):
    output = init(token_ca)
    ca_dir = tmp_path / "ca"
    assert not list(ca_dir.glob("private/*"))  # no key files: the keys are in the token
    for name in ("root", "issuing"):
        shown = openssl(
            "x509", "-in", ca_dir / f"{name}.crt.pem", "-noout", "-fingerprint", "-sha256"
        )
        assert shown.stdout.split("=", 1)[1].strip() in output
    event = AuditEvent.objects.get(action="ca_created")
    material = ca.load()
    assert isinstance(material.issuing_key, ca_pkcs11.Pkcs11Key)
    assert event.detail["keystore"] == "pkcs11" and event.detail["token"] == token_ca.label
    assert event.detail["issuing_certificate_sha256"] in output.replace(":", "").lower()
    assert len(event.detail["root_key_sha256"]) == 64
    assert token_ca.pin not in output and token_ca.pin not in str(event.detail)

    with pytest.raises(CommandError, match="never overwritten"):
        init(token_ca)


def test_init_ca_pkcs11_refuses_keys_already_in_the_token(token_ca, settings, tmp_path):
    init(token_ca)
    settings.KIHONET_CA_DIR = tmp_path / "another-ca"
    with pytest.raises(CommandError, match="has a root key already; it is never overwritten"):
        init(token_ca)
    assert not (tmp_path / "another-ca" / "root.crt.pem").exists()


def test_pkcs11_private_keys_cannot_be_extracted(token_ca):
    init(token_ca)
    store = ca.token_key_store()
    session = store.session()
    for label in (store.label_for(ca.ROOT_NAME), store.label_for(ca.ISSUING_NAME)):
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.ALWAYS_SENSITIVE] is True
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]
        wrapping = session.generate_key(
            KeyType.AES, 256, store=False, template={Attribute.WRAP: True}
        )
        with pytest.raises(p11.KeyUnextractable):
            wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        with pytest.raises(p11.AttributeReadOnly):
            private[Attribute.EXTRACTABLE] = True
    with pytest.raises(Exception, match="never imported"):
        store.save("issuing", None)


def test_pkcs11_issue_crl_and_ocsp_accepted_by_openssl(token_ca, client, tmp_path):
    init(token_ca)
    certificate = issue()
    material = ca.load()
    chain = tmp_path / "chain.pem"
    chain.write_text(material.chain_pem)
    root = tmp_path / "root.pem"
    root.write_bytes(material.root_cert.public_bytes(serialization.Encoding.PEM))
    issuing = tmp_path / "issuing.pem"
    issuing.write_bytes(material.issuing_cert.public_bytes(serialization.Encoding.PEM))
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(certificate.pem)

    crl = tmp_path / "crl.der"
    crl.write_bytes(bytes(publish_crl().der))
    crl_pem = tmp_path / "crl.pem"
    assert openssl("crl", "-inform", "DER", "-in", crl, "-out", crl_pem).returncode == 0
    verified = openssl(
        "verify", "-x509_strict", "-crl_check", "-CAfile", root, "-untrusted", issuing,
        "-CRLfile", crl_pem, "-purpose", "sslclient", leaf,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    request = tmp_path / "req.der"
    assert openssl("ocsp", "-issuer", issuing, "-cert", leaf, "-reqout", request).returncode == 0
    answer = client.post(
        "/pki/ocsp", data=request.read_bytes(), content_type="application/ocsp-request"
    )
    response = tmp_path / "resp.der"
    response.write_bytes(answer.content)
    checked = openssl(
        "ocsp", "-reqin", request, "-respin", response, "-issuer", issuing, "-CAfile", chain
    )  # signature, responder certificate and nonce
    assert "Response verify OK" in checked.stderr, checked.stdout + checked.stderr
    status = openssl(
        "ocsp", "-respin", response, "-issuer", issuing, "-CAfile", chain, "-cert", leaf,
        "-no_nonce",
    )  # fmt: skip
    assert "Response verify OK" in status.stderr and f"{leaf}: good" in status.stdout
    parsed = x509_ocsp.load_der_ocsp_response(answer.content)
    (responder,) = parsed.certificates
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    responder.verify_directly_issued_by(material.issuing_cert)


def test_pkcs11_token_away_then_back(
    token_ca, client, tmp_path, django_capture_on_commit_callbacks
):
    """While the token is gone, issuing says 「ただいま証明書を発行できません」 (503), OCSP keeps
    answering with the delegated responder; afterwards the same process signs again."""
    init(token_ca)
    leaf = x509.load_pem_x509_certificate(issue().pem.encode())
    ocsp_request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca.load().issuing_cert, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )

    def ocsp_status():
        answer = client.post(
            "/pki/ocsp", data=ocsp_request, content_type="application/ocsp-request"
        )
        return x509_ocsp.load_der_ocsp_response(answer.content).response_status

    assert ocsp_status() == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    library = ca_pkcs11.library(token_ca.module)
    empty = tmp_path / "no-tokens"
    empty.mkdir()
    away = tmp_path / "away.conf"
    away.write_text(f"directories.tokendir = {empty}\nobjectstore.backend = file\n")
    present = os.environ["SOFTHSM2_CONF"]
    os.environ["SOFTHSM2_CONF"] = str(away)
    try:
        library.reinitialize()  # the token is gone: every session of the process is invalid
        with pytest.raises(CaUnavailableServiceError) as raised:
            issue()
        assert raised.value.http_status == 503
        assert "ただいま証明書を発行できません" in str(raised.value.message)
        assert token_ca.pin not in repr(raised.value.__cause__)
        # The customer's client tool is told the same through the API, no 500.
        notice = make_notice()
        status, body = post_json(client, "/api/v1/enrollments", enrollment_fields(notice))
        token = body["token"]
        assert post_json(client, f"/api/v1/enrollments/{token}/confirm", {})[0] == 200
        status, body = post_json(
            client, f"/api/v1/enrollments/{token}/certificate", {"csr": make_csr()[1]}
        )
        assert status == 503, body
        assert "ただいま証明書を発行できません" in json.dumps(body, ensure_ascii=False)
        assert ocsp_status() == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
        # A desk revokes meanwhile: committed, OCSP says so; the CRL waits for the token.
        stored = Certificate.objects.get(serial=format(leaf.serial_number, "X"))
        with django_capture_on_commit_callbacks(execute=True):
            services.revoke_certificate(stored, reason="keyCompromise", actor=ACTOR)
        answer = client.post(
            "/pki/ocsp", data=ocsp_request, content_type="application/ocsp-request"
        )
        assert (
            x509_ocsp.load_der_ocsp_response(answer.content).certificate_status
            == x509_ocsp.OCSPCertStatus.REVOKED
        )
    finally:
        os.environ["SOFTHSM2_CONF"] = present
        library.reinitialize()
    assert issue().serial  # reconnected by itself
    assert ca.load().issuing_key.store is ca.token_key_store()


def test_pkcs11_wrong_pin_is_a_clear_error_without_the_pin(token_ca, settings, make_token):
    other = make_token("kihonet-pin")
    settings.KIHONET_CA_PKCS11_TOKEN = other.label
    settings.KIHONET_CA_PKCS11_PIN_FILE = ""
    settings.KIHONET_CA_PKCS11_PIN = "wrong-pin-4711"
    with pytest.raises(CommandError) as raised:
        call_command("init_ca", stdout=StringIO())
    assert "refused the PIN" in str(raised.value)
    assert "wrong-pin-4711" not in str(raised.value)
    settings.KIHONET_CA_PKCS11_PIN = ""
    with pytest.raises(CommandError, match="PIN is missing"):
        call_command("init_ca", stdout=StringIO())


def test_export_ca_certificates_writes_public_certificates_only(token_ca, tmp_path):
    init(token_ca)
    out = StringIO()
    call_command("export_ca_certificates", "--out", tmp_path / "export", stdout=out)
    exported = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert exported == ["issuing-ca.pem", "root-ca.pem"]
    text = "".join(p.read_text() for p in (tmp_path / "export").iterdir())
    assert text.count("BEGIN CERTIFICATE") == 2 and "PRIVATE" not in text
    assert ca.load().chain_pem.split("-----END CERTIFICATE-----")[0] in text
    stdout = StringIO()
    call_command("export_ca_certificates", stdout=stdout)
    assert stdout.getvalue().count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE" not in stdout.getvalue()


def test_pkcs11_signing_session_is_opened_once(token_ca):
    init(token_ca)
    issue()
    session = ca.token_key_store().session()
    issue()
    publish_crl()
    assert ca.token_key_store().session() is session
    assert isinstance(session, pkcs11.Session)


def test_file_key_store_is_still_the_default(settings, tmp_path):
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "pass phrase"
    settings.KIHONET_CA_KEYSTORE = "file"
    ca.reset()
    call_command("init_ca", stdout=StringIO())
    assert len(list(Path(tmp_path / "ca" / "private").glob("*.key.pem"))) == 2
    settings.KIHONET_CA_KEYSTORE = "pkcs11"
    ca.reset()
    with pytest.raises(ca.CaUnavailableError, match="KIHONET_CA_KEYSTORE=pkcs11: set it to file"):
        ca.load()
    ca.reset()
