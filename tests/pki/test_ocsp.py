from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

from issuance.pki.crl import REASONS
from issuance.pki.ocsp import (
    OcspError,
    OcspQuery,
    build_ocsp_response,
    internal_error_response,
    malformed_request_response,
    matches_issuer,
    parse_ocsp_request,
    unauthorized_response,
)
from tests.pki.conftest import Pki, run_openssl

NOW = datetime.now(UTC).replace(microsecond=0)
THIS_UPDATE = NOW - timedelta(minutes=1)
NEXT_UPDATE = NOW + timedelta(hours=1)
REVOKED_AT = NOW - timedelta(hours=2)


def request_der(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(
        cert, issuer, algorithm or hashes.SHA1()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def respond(pki: Pki, query: OcspQuery, status: str, **kwargs: object) -> x509_ocsp.OCSPResponse:
    der = build_ocsp_response(
        query,
        pki.issuing_cert,
        pki.issuing_key,
        status,  # type: ignore[arg-type]
        this_update=THIS_UPDATE,
        next_update=NEXT_UPDATE,
        **kwargs,  # type: ignore[arg-type]
    )
    return x509_ocsp.load_der_ocsp_response(der)


def assert_signed_by_issuer(pki: Pki, response: x509_ocsp.OCSPResponse) -> None:
    public_key = pki.issuing_cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    issuer_ski = pki.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert response.responder_key_hash == issuer_ski.value.digest
    assert response.responder_name is None


# ------------------------------------------------------------------ parsing


def test_parse_request_with_nonce(pki: Pki, client_cert: x509.Certificate) -> None:
    nonce = os.urandom(16)
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert, nonce))
    assert query.serial == client_cert.serial_number
    assert query.nonce == nonce
    assert isinstance(query.hash_algorithm, hashes.SHA1)
    assert matches_issuer(query, pki.issuing_cert)
    assert not matches_issuer(query, pki.root_cert)


def test_parse_request_sha256(pki: Pki, client_cert: x509.Certificate) -> None:
    der = request_der(client_cert, pki.issuing_cert, algorithm=hashes.SHA256())
    query = parse_ocsp_request(der)
    assert query.nonce is None
    assert isinstance(query.hash_algorithm, hashes.SHA256)
    assert matches_issuer(query, pki.issuing_cert)


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x00", b"\x30\x03\x02\x01\x00", None])
def test_parse_garbage(data: bytes) -> None:
    with pytest.raises(OcspError) as info:
        parse_ocsp_request(data)
    assert info.value.code == "malformed"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_parse_random_bytes_only_ocsp_error(data: bytes) -> None:
    try:
        parse_ocsp_request(data)
    except OcspError as error:
        assert error.code in ("malformed", "unsupported_hash")


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), value=st.integers(0, 255))
def test_parse_mutated_request_only_ocsp_error(
    pki: Pki, client_cert: x509.Certificate, position: int, value: int
) -> None:
    original = bytearray(request_der(client_cert, pki.issuing_cert, b"0123456789abcdef"))
    original[position % len(original)] = value
    try:
        query = parse_ocsp_request(bytes(original))
    except OcspError as error:
        assert error.code in ("malformed", "unsupported_hash")
    else:
        matches_issuer(query, pki.issuing_cert)


def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def children(der: bytes) -> list[tuple[int, bytes]]:
    found, offset = [], 0
    while offset < len(der):
        tag, length, offset = der[offset], der[offset + 1], offset + 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[offset : offset + count], "big")
            offset += count
        found.append((tag, der[offset : offset + length]))
        offset += length
    return found


def test_duplicate_nonce_is_malformed(pki: Pki, client_cert: x509.Certificate) -> None:
    """cryptography raises DuplicateExtension (not a ValueError) for this one."""
    der = request_der(client_cert, pki.issuing_cert, b"0123456789abcdef")
    ((_, tbs_request),) = children(children(der)[0][1])
    (list_tag, request_list), (_, extensions) = children(tbs_request)
    ((_, extension_list),) = children(extensions)
    doubled = tlv(0xA2, tlv(0x30, extension_list + extension_list))
    tampered = tlv(0x30, tlv(0x30, tlv(list_tag, request_list) + doubled))
    with pytest.raises(OcspError) as info:
        parse_ocsp_request(tampered)
    assert info.value.code == "malformed"


# ------------------------------------------------------------------ responses


def test_good(pki: Pki, client_cert: x509.Certificate) -> None:
    nonce = os.urandom(20)
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert, nonce))
    response = respond(pki, query, "good", cert=client_cert)
    assert response.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == x509_ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == client_cert.serial_number
    assert response.issuer_key_hash == query.issuer_key_hash
    assert response.issuer_name_hash == query.issuer_name_hash
    assert response.this_update_utc == THIS_UPDATE
    assert response.next_update_utc == NEXT_UPDATE
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert response.certificates == []
    assert_signed_by_issuer(pki, response)


def test_revoked_with_time_and_reason(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert, os.urandom(16)))
    response = respond(
        pki, query, "revoked", revoked_at=REVOKED_AT, reason=REASONS["keyCompromise"]
    )
    assert response.certificate_status == x509_ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == REVOKED_AT
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    assert_signed_by_issuer(pki, response)


def test_revoked_unspecified_reason_left_out(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert))
    response = respond(pki, query, "revoked", revoked_at=REVOKED_AT, reason=REASONS["unspecified"])
    assert response.revocation_reason is None


def test_revoked_needs_time(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert))
    with pytest.raises(ValueError, match="revoked_at"):
        respond(pki, query, "revoked")


def test_unknown_serial_without_certificate(pki: Pki, client_cert: x509.Certificate) -> None:
    der = request_der(client_cert, pki.issuing_cert, b"n" * 32)
    query = parse_ocsp_request(der)
    query.serial = 123456789  # a serial this CA never issued
    response = respond(pki, query, "unknown")
    assert response.certificate_status == x509_ocsp.OCSPCertStatus.UNKNOWN
    assert response.serial_number == 123456789
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 32
    assert_signed_by_issuer(pki, response)


def test_sha256_cert_id_echoed(pki: Pki, client_cert: x509.Certificate) -> None:
    der = request_der(client_cert, pki.issuing_cert, algorithm=hashes.SHA256())
    response = respond(pki, parse_ocsp_request(der), "good")
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)


def test_overlong_nonce_not_echoed(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert, b"x" * 33))
    response = respond(pki, query, "good")
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)


def test_other_issuer_refused(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(pki.issuing_cert, pki.root_cert))
    assert not matches_issuer(query, pki.issuing_cert)
    with pytest.raises(ValueError, match="issuer"):
        respond(pki, query, "unknown")


def test_certificate_must_match_serial(pki: Pki, client_cert: x509.Certificate) -> None:
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert))
    with pytest.raises(ValueError, match="serial"):
        respond(pki, query, "good", cert=pki.issuing_cert)


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (malformed_request_response, x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        (unauthorized_response, x509_ocsp.OCSPResponseStatus.UNAUTHORIZED),
        (internal_error_response, x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR),
    ],
)
def test_unsuccessful_responses(make, status: x509_ocsp.OCSPResponseStatus) -> None:
    assert x509_ocsp.load_der_ocsp_response(make()).response_status == status


# ------------------------------------------------------------------ real openssl


@pytest.mark.parametrize(("status", "expected"), [("good", "good"), ("revoked", "revoked")])
def test_openssl_request_and_response(
    pki: Pki, client_cert: x509.Certificate, status: str, expected: str
) -> None:
    directory = pki.directory / f"ocsp-{status}"
    directory.mkdir()
    client = directory / "client.pem"
    client.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    issuing, chain = pki.directory / "issuing.pem", pki.directory / "chain.pem"
    request, response = directory / "req.der", directory / "resp.der"

    made = run_openssl("ocsp", "-issuer", issuing, "-cert", client, "-reqout", request)
    assert made.returncode == 0, made.stderr
    query = parse_ocsp_request(request.read_bytes())
    assert query.serial == client_cert.serial_number and query.nonce
    assert matches_issuer(query, pki.issuing_cert)
    extra = (
        {"revoked_at": REVOKED_AT, "reason": REASONS["superseded"]} if status == "revoked" else {}
    )
    response.write_bytes(
        build_ocsp_response(
            query, pki.issuing_cert, pki.issuing_key, status,  # type: ignore[arg-type]
            this_update=THIS_UPDATE, next_update=NEXT_UPDATE, **extra,  # type: ignore[arg-type]
        )
    )  # fmt: skip

    # Status of the certificate (a fresh request is built from -cert, hence -no_nonce).
    checked = run_openssl(
        "ocsp", "-respin", response, "-issuer", issuing, "-CAfile", chain,
        "-cert", client, "-no_nonce",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Response verify OK" in checked.stderr
    assert f"{client}: {expected}" in checked.stdout
    if status == "revoked":
        assert "Reason: superseded" in checked.stdout

    # Signature and nonce against the original request.
    echoed = run_openssl(
        "ocsp", "-reqin", request, "-respin", response, "-issuer", issuing, "-CAfile", chain
    )
    assert echoed.returncode == 0, echoed.stdout + echoed.stderr
    assert "Response verify OK" in echoed.stderr

    other = directory / "other-req.der"
    run_openssl("ocsp", "-issuer", issuing, "-cert", client, "-reqout", other)
    mismatch = run_openssl(
        "ocsp", "-reqin", other, "-respin", response, "-issuer", issuing, "-CAfile", chain
    )
    assert "Nonce Verify error" in mismatch.stderr


def test_openssl_accepts_the_delegated_responder(pki: Pki, client_cert: x509.Certificate) -> None:
    """RFC 6960 4.2.2.2: signed by a responder certificate the CA issued (id-kp-OCSPSigning,
    id-pkix-ocsp-nocheck), sent in the response; openssl checks it against the chain."""
    from issuance.pki.keys import generate_private_key
    from issuance.pki.profile import build_ocsp_responder_certificate

    directory = pki.directory / "ocsp-delegated"
    directory.mkdir()
    client = directory / "client.pem"
    client.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    issuing, chain = pki.directory / "issuing.pem", pki.directory / "chain.pem"
    request, response = directory / "req.der", directory / "resp.der"
    key = generate_private_key("ec-p256")
    responder = build_ocsp_responder_certificate(
        key.public_key(), "Kihonet Test", NOW - timedelta(minutes=5), timedelta(days=7),
        pki.issuing_cert, pki.issuing_key,
    )  # fmt: skip
    assert (
        run_openssl("ocsp", "-issuer", issuing, "-cert", client, "-reqout", request).returncode == 0
    )
    query = parse_ocsp_request(request.read_bytes())
    response.write_bytes(
        build_ocsp_response(
            query, pki.issuing_cert, key, "good", this_update=THIS_UPDATE,
            next_update=NEXT_UPDATE, responder_cert=responder,
        )
    )  # fmt: skip
    parsed = x509_ocsp.load_der_ocsp_response(response.read_bytes())
    assert parsed.certificates == [responder]
    assert parsed.responder_key_hash == (
        responder.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    checked = run_openssl(
        "ocsp", "-reqin", request, "-respin", response, "-issuer", issuing, "-CAfile", chain
    )
    assert "Response verify OK" in checked.stderr, checked.stdout + checked.stderr
    status = run_openssl(
        "ocsp", "-respin", response, "-issuer", issuing, "-CAfile", chain, "-cert", client,
        "-no_nonce",
    )  # fmt: skip
    assert f"{client}: good" in status.stdout

    usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert responder.not_valid_after_utc - responder.not_valid_before_utc == timedelta(days=7)


def test_a_responder_of_another_ca_is_refused(pki: Pki, client_cert: x509.Certificate) -> None:
    from issuance.pki.keys import generate_private_key
    from issuance.pki.profile import ProfileError, build_ocsp_responder_certificate

    key = generate_private_key("ec-p256")
    foreign = build_ocsp_responder_certificate(
        key.public_key(), "Other", NOW, timedelta(days=7), pki.root_cert, pki.root_key
    )
    query = parse_ocsp_request(request_der(client_cert, pki.issuing_cert))
    with pytest.raises(ProfileError):
        build_ocsp_response(
            query, pki.issuing_cert, key, "good", this_update=THIS_UPDATE,
            next_update=NEXT_UPDATE, responder_cert=foreign,
        )  # fmt: skip
