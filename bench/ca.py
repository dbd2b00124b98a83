"""The CA: issuing through the service against bare signing, the CRL at 100,000 entries, OCSP.

Runs in one process on the benchmark database. A throwaway CA (EC P-256) is created in a
temporary folder and removed at the end; then the same issuing and OCSP measures run again with
the CA keys in a throwaway SoftHSM2 token (PKCS#11), printed side by side with the file store's
(skipped, and said so, where softhsm2 is not installed); the CA key is read and decrypted once and must stay
cached for the whole run. The 100,000 revoked rows of the CRL measure are kept between runs
(they are recreated only when missing or about to expire); the certificates issued here are
deleted at the start of each run.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from unittest import mock

from bench.core import CopyColumns, Result, rate, require_bench_database, timed

N_CERTIFICATES = int(os.environ.get("BENCH_CA_CERTIFICATES", "2000"))
N_OCSP = int(os.environ.get("BENCH_CA_OCSP", "2000"))
ISSUE_CHUNK = 100
CRL_ENTRIES = 100_000
CRL_RUNS = 3

# The certificate and its audit event in one hand-built statement (``audit._insert_both``) stay
# only while they buy at least this much of the issuing rate over two ORM saves in a transaction.
SINGLE_STATEMENT_GAIN_TARGET = 0.20
CRL_SECONDS_TARGET = 2.0

# The bench's own rows, apart from everything else in the database.
BENCH_KIHONET_CODE = "99990001"
ISSUE_USER_ID = "BNCHCA1"
CRL_USER_ID = "BNCHCRL"
BENCH_DOMAIN = "bench.example.jp"


def run() -> list[Result]:
    from django.test.utils import override_settings

    from issuance import ca
    from issuance.pki import softhsm
    from issuance.services import ocsp_responder

    ca_dir = Path(tempfile.mkdtemp(prefix="kihonet-bench-ca-"))
    common = {
        "KIHONET_CA_PASSPHRASE": f"bench {secrets.token_hex(16)}",
        "KIHONET_CA_PASSPHRASE_FILE": "",
        # Production-like: no query log on every cursor, and a host the test Client may use.
        "DEBUG": False,
        "ALLOWED_HOSTS": ["localhost"],
    }
    # Not timed; half for the single statement, half for the ORM path (file store).
    csrs = [_csr_pem() for _ in range(2 * N_CERTIFICATES)]
    stores = [("file", {"KIHONET_CA_DIR": ca_dir / "ca", "KIHONET_CA_KEYSTORE": "file"})]
    if softhsm.module_path():
        token = softhsm.soft_hsm(ca_dir / "softhsm").create_token("kihonet-bench")
        stores.append(
            (
                "pkcs11",
                {
                    "KIHONET_CA_DIR": ca_dir / "ca-pkcs11",
                    "KIHONET_CA_KEYSTORE": "pkcs11",
                    "KIHONET_CA_PKCS11_MODULE": token.module,
                    "KIHONET_CA_PKCS11_TOKEN": token.label,
                    "KIHONET_CA_PKCS11_PIN": token.pin,
                    "KIHONET_CA_PKCS11_PIN_FILE": "",
                },
            )
        )
    else:
        print("  softhsm2 is not installed: the PKCS#11 measures are skipped", flush=True)
    results: list[Result] = []
    try:
        for store, settings in stores:
            overrides = override_settings(**common, **settings)
            overrides.enable()
            try:
                ca.reset()
                ocsp_responder.forget()
                print(f"  CA keys in the {STORE_NAMES[store]}:", flush=True)
                ca.create()  # EC P-256, the default key type
                results += _run(store, csrs)
            finally:
                ca.reset()
                ocsp_responder.forget()
                overrides.disable()
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    _print_side_by_side(results)
    return results


STORE_NAMES = {"file": "file store", "pkcs11": "SoftHSM2 token (PKCS#11)"}
STORE_LABELS = {"file": "", "pkcs11": ", keys in SoftHSM2"}


def _print_side_by_side(results: list[Result]) -> None:
    rows = [
        ("certificates/s through the service", "CA{}: certificates/s through the service"),
        ("bare build-and-sign, certificates/s", "CA{}: bare build-and-sign rate"),
        ("OCSP responses/s (responder)", "OCSP{}: responses/s (responder)"),
        ("OCSP responses/s (HTTP, in-process)", "OCSP{}: responses/s (HTTP, in-process)"),
    ]
    values = {result.name: result.value for result in results}
    print(f"  {'measure':<38} {'file store':>12} {'SoftHSM2':>12}")
    for label, pattern in rows:
        cells = [values.get(pattern.format(STORE_LABELS[store])) for store in STORE_LABELS]
        shown = [f"{value:>12,.0f}" if value is not None else f"{'-':>12}" for value in cells]
        print(f"  {label:<38} {' '.join(shown)}", flush=True)


def _run(store: str, csrs: list[str]) -> list[Result]:
    from issuance import ca

    reads = _ReadCounter()
    try:
        material = ca.load()
        assert ca.load() is material, "the CA material is not cached"
        issue_user, notice, crl_user = _bench_rows()
        _delete_issued(issue_user)

        results = _issuing(material, issue_user, notice, csrs, store)
        if store == "file":  # the CRL's time is its encoding; one signature either way
            results += _crl(crl_user)
        results += _ocsp(material, issue_user, store)

        assert ca.load() is material, "the CA material was reloaded"
        assert reads() == 0, f"the CA key was read {reads()} more time(s) after ca.create()"
    finally:
        reads.restore()
    return results


# ---------------------------------------------------------------- set-up


class _ReadCounter:
    """Counts calls of ``issuance.ca._read`` (the file read and key decryption)."""

    def __init__(self) -> None:
        from issuance import ca

        self._module = ca
        self._original = ca._read
        self.count = 0

        def counting_read():
            self.count += 1
            return self._original()

        ca._read = counting_read

    def __call__(self) -> int:
        return self.count

    def restore(self) -> None:
        self._module._read = self._original


def _bench_rows():
    from issuance.models import Customer, KihonetUser, Notice
    from issuance.rules.business_days import registration_year

    customer, _ = Customer.objects.get_or_create(
        kihonet_code=BENCH_KIHONET_CODE, defaults={"name": "ベンチマーク株式会社"}
    )
    issue_user, _ = KihonetUser.objects.get_or_create(
        user_id=ISSUE_USER_ID,
        defaults={
            "customer": customer,
            "management_number": "BENCHCA001",
            "email": f"issue@{BENCH_DOMAIN}",
        },
    )
    crl_user, _ = KihonetUser.objects.get_or_create(
        user_id=CRL_USER_ID,
        defaults={
            "customer": customer,
            "management_number": "BENCHCRL01",
            "email": f"crl@{BENCH_DOMAIN}",
        },
    )
    issued_on = date(2026, 4, 1)
    notice, _ = Notice.objects.get_or_create(
        user=issue_user,
        branch_number="001",
        defaults={
            "kind": Notice.Kind.NEW,
            "printed_year": issued_on.year,
            "registration_year": registration_year(issued_on),
            "issued_on": issued_on,
            "email": issue_user.email,
        },
    )
    return issue_user, notice, crl_user


def _delete_issued(issue_user) -> None:
    """The certificates (and their audit events) of earlier runs; the CRL rows stay."""
    from issuance.models import AuditEvent, Certificate

    _delete_rows(Certificate, "user_id", issue_user.pk)
    # The bench's own events only, in the benchmark database.
    _delete_rows(AuditEvent, "kihonet_user_id", issue_user.pk)


def _delete_rows(model, column: str, value: int) -> None:
    """A plain DELETE, without the ORM's collector: the bench's rows are referenced by nothing
    (and the collector would query the tables of every model pointing here, migrated or not)."""
    from django.db import connection

    require_bench_database()
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(model._meta.db_table)
        # The names come from the model, the value is a parameter.
        cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [value])  # noqa: S608


def _csr_pem() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------- issuing


def _issuing(material, issue_user, notice, csrs: list[str], store: str) -> list[Result]:
    from cryptography import x509
    from django.utils import timezone

    from issuance import audit
    from issuance.models import Certificate
    from issuance.pki import profile
    from issuance.services.certificates import issue_certificate

    # Bare: the same certificate built and signed N times; no CSR parsing, no database.
    public_key = x509.load_pem_x509_csr(csrs[0].encode()).public_key()
    subject = profile.ClientSubject(
        user_id=issue_user.user_id,
        management_number=issue_user.management_number,
        kihonet_code=issue_user.customer.kihonet_code,
        email=notice.email,
    )
    now = timezone.now()

    actor = audit.Actor.system("bench")
    user = type(issue_user).objects.select_related("customer").get(pk=issue_user.pk)

    def bare(chunk: list[str]) -> None:
        for _ in chunk:
            profile.build_client_certificate(
                material.client_profile,
                public_key,
                subject,
                profile.new_serial(),
                now,
                material.issuing_cert,
                material.issuing_key,
            )

    def service(chunk: list[str]) -> None:
        # Each call its own transaction, with the audit event.
        for pem in chunk:
            issue_certificate(user=user, csr_data=pem, actor=actor, notice=notice)

    def service_orm(chunk: list[str]) -> None:
        # The same service with the plain ORM path of ``create_with_event`` (two saves in a
        # transaction, what it does on SQLite) in place of the single statement.
        with mock.patch.object(audit, "_insert_both", _save_both):
            service(chunk)

    # Measured in turns, chunk by chunk, so that all three see the same machine: on a shared
    # VM the speed of a core changes by tens of per cent from one second to the next.
    seconds = {"bare": 0.0, "service": 0.0, "orm": 0.0}
    half = len(csrs) // 2
    for start in range(0, half, ISSUE_CHUNK):
        chunk = csrs[start : start + ISSUE_CHUNK]
        seconds["bare"] += timed(partial(bare, chunk))
        seconds["service"] += timed(partial(service, chunk))
        seconds["orm"] += timed(
            partial(service_orm, csrs[half + start : half + start + len(chunk)])
        )
    bare_rate, service_rate, orm_rate = (
        rate(half, seconds[name]) for name in ("bare", "service", "orm")
    )
    issued = Certificate.objects.filter(user=issue_user).count()
    assert issued == len(csrs), f"{issued} certificates stored, {len(csrs)} expected"

    gain = service_rate / orm_rate - 1
    label = STORE_LABELS[store]
    print(f"  bare build-and-sign: {bare_rate:,.0f} certificates/s")
    print(f"  through the service, one statement: {service_rate:,.0f} certificates/s")
    print(f"  through the service, ORM saves: {orm_rate:,.0f} certificates/s")
    print(f"  gain of the single statement: {gain:+.1%}", flush=True)
    key = "EC P-256 CA key" + (" in the token" if store != "file" else "")
    results = [
        Result(
            f"CA{label}: certificates/s through the service",
            service_rate,
            "certs/s",
            note=f"{half} issue_certificate() calls, one transaction each, "
            f"in chunks of {ISSUE_CHUNK} taking turns with the bare rate's and the ORM path's",
        ),
        Result(
            f"CA{label}: bare build-and-sign rate",
            bare_rate,
            "certs/s",
            note=f"profile.build_client_certificate x {half}, {key}",
        ),
    ]
    if store != "file":
        return results
    return [
        *results,
        Result(
            "CA: certificates/s through the service, ORM saves",
            orm_rate,
            "certs/s",
            note="the certificate and its event as two Model.save() in transaction.atomic()",
        ),
        Result(
            "CA: gain of the single-statement insert over the ORM",
            gain * 100,
            "%",
            f">= {SINGLE_STATEMENT_GAIN_TARGET:.0%}",
            gain >= SINGLE_STATEMENT_GAIN_TARGET,
        ),
        Result("CA: service / bare ratio", service_rate / bare_rate, "ratio"),
    ]


def _save_both(database, obj, new) -> None:
    """``audit._insert_both``'s job done by the ORM: both rows in one transaction."""
    from django.db import transaction

    with transaction.atomic(using=database.alias):
        obj.save(force_insert=True, using=database.alias)
        new.object_id = str(obj.pk)
        new.save(using=database.alias)


# ---------------------------------------------------------------- CRL


def _crl(crl_user) -> list[Result]:
    from issuance.services.crl import publish_crl

    _ensure_revoked_rows(crl_user)
    times = []
    for _ in range(CRL_RUNS):  # the median: one run on this small VM varies by ±20 %
        start = time.perf_counter()
        publication = publish_crl()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    size = len(publication.der)
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(f"  CRL of {publication.revoked_count:,} entries: {runs} s, {size:,} bytes", flush=True)
    # Every revoked, unexpired certificate in the database is listed: the bench's 100,000 and
    # any that other benchmarks left.
    return [
        Result(
            f"CRL: {publication.revoked_count:,} entries, generation time",
            seconds,
            "s",
            f"< {CRL_SECONDS_TARGET:g} s",
            seconds < CRL_SECONDS_TARGET,
            note=f"publish_crl() with {publication.revoked_count:,} revoked entries, "
            f"median of {CRL_RUNS} runs ({runs} s)",
        ),
        Result("CRL: size", size, "bytes"),
    ]


def _ensure_revoked_rows(crl_user) -> None:
    """100,000 revoked certificates of the CRL user, written with COPY when missing."""
    from django.db import connection, transaction
    from django.utils import timezone

    from issuance.models import Certificate

    now = timezone.now()
    rows = Certificate.objects.filter(user=crl_user)
    usable = rows.filter(revoked_at__isnull=False, not_after__gt=now + timedelta(days=30))
    if rows.count() == CRL_ENTRIES and usable.count() == CRL_ENTRIES:
        print(f"  reusing {CRL_ENTRIES:,} revoked certificates", flush=True)
        return

    start = time.perf_counter()
    columns = CopyColumns(Certificate)
    table = columns.table
    not_before = now - timedelta(days=30)
    not_after = now + timedelta(days=3 * 365)
    run_tag = secrets.token_hex(8)
    with transaction.atomic():
        _delete_rows(Certificate, "user_id", crl_user.pk)
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            with cursor.copy(columns.statement) as copy:
                for i in range(CRL_ENTRIES):
                    serial = secrets.randbits(158) | (1 << 158)
                    copy.write_row(
                        columns.row(
                            user_id=crl_user.pk,
                            serial=format(serial, "X"),
                            subject=f"C=JP,O=Kihonet,OU={BENCH_KIHONET_CODE},CN=BNCHCRL {i:010d}",
                            email=crl_user.email,
                            not_before=not_before,
                            not_after=not_after,
                            pem="",
                            fingerprint=_sha256(f"bench-crl-cert-{run_tag}-{i}"),
                            public_key_fingerprint=_sha256(f"bench-crl-key-{run_tag}-{i}"),
                            revocation_reason="keyCompromise",
                            revoked_at=now - timedelta(seconds=i),
                            created_at=now,
                        )
                    )
    connection.cursor().execute(f"ANALYZE {table}")
    print(
        f"  wrote {CRL_ENTRIES:,} revoked certificates with COPY in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- OCSP


def _ocsp(material, issue_user, store: str) -> list[Result]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp as x509_ocsp
    from django.test import Client

    from issuance import responders
    from issuance.models import Certificate

    stored = Certificate.objects.filter(user=issue_user).order_by("pk").first()
    cert = x509.load_pem_x509_certificate(stored.pem.encode())
    request_der = (
        x509_ocsp.OCSPRequestBuilder()
        # SHA-1 CertID: what RFC 5019 clients (browsers, OpenSSL) send.
        .add_certificate(cert, material.issuing_cert, hashes.SHA1())  # noqa: S303
        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )

    _check_ocsp_answer(responders.ocsp_response(request_der), cert)
    start = time.perf_counter()
    for _ in range(N_OCSP):
        responders.ocsp_response(request_der)
    responder_rate = rate(N_OCSP, time.perf_counter() - start)

    client = Client(HTTP_HOST="localhost")

    def post():
        return client.post("/pki/ocsp", data=request_der, content_type="application/ocsp-request")

    answer = post()
    assert answer.status_code == 200, f"POST /pki/ocsp answered {answer.status_code}"
    assert answer["Content-Type"] == "application/ocsp-response"
    _check_ocsp_answer(answer.content, cert)
    start = time.perf_counter()
    for _ in range(N_OCSP):
        post()
    http_rate = rate(N_OCSP, time.perf_counter() - start)

    print(f"  OCSP: {responder_rate:,.0f}/s responder, {http_rate:,.0f}/s over WSGI", flush=True)
    label = STORE_LABELS[store]
    return [
        Result(
            f"OCSP{label}: responses/s (responder)",
            responder_rate,
            "resp/s",
            note=f"responders.ocsp_response() x {N_OCSP}, status good, nonce echoed, "
            "signed by the delegated responder",
        ),
        Result(
            f"OCSP{label}: responses/s (HTTP, in-process)",
            http_rate,
            "resp/s",
            note=f"django.test.Client POST /pki/ocsp x {N_OCSP}, full middleware stack",
        ),
    ]


def _check_ocsp_answer(der: bytes, cert) -> None:
    from cryptography.x509 import ocsp as x509_ocsp

    response = x509_ocsp.load_der_ocsp_response(der)
    assert response.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL, (
        f"OCSP answered {response.response_status}"
    )
    assert response.serial_number == cert.serial_number
    assert response.certificate_status == x509_ocsp.OCSPCertStatus.GOOD
