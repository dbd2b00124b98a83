"""The bench's data set: its notices (kept between runs) and its certificates to renew (issued
at every run), after the rows of an earlier run are deleted."""

from __future__ import annotations

import time
from datetime import timedelta

from bench.http_load.config import (
    ACQ_CODE_BASE,
    ACQ_USER_PREFIX,
    BENCH_DOMAIN,
    N_NOTICES,
    NOTICE_ISSUED_ON,
    RENEWAL_CODE_BASE,
    RENEWAL_USER_PREFIX,
    RENEWAL_USERS,
    USERS_PER_CUSTOMER,
)


def _table(model) -> str:
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def delete_previous_run() -> None:
    """Everything an earlier run made for the bench's users goes; the notices become unused.

    Plain DELETEs (the bench's rows only) rather than the ORM's collector, which would query
    every model pointing at these tables and refuses the audit trail's deletes.
    """
    from django.db import connection, transaction

    from bench.core import require_bench_database

    require_bench_database()

    from issuance.models import (
        AuditEvent,
        Certificate,
        Customer,
        Enrollment,
        KihonetUser,
        Notice,
        RenewalChallenge,
    )

    prefixes = [f"{ACQ_USER_PREFIX}%", f"{RENEWAL_USER_PREFIX}%"]
    statements = [
        (
            "DELETE FROM {challenge} WHERE certificate_id IN "
            "(SELECT id FROM {certificate} WHERE user_id IN ({users}))",
            prefixes,
        ),
        (
            "DELETE FROM {enrollment} WHERE notice_id IN "
            "(SELECT id FROM {notice} WHERE user_id IN ({users}))",
            prefixes,
        ),
        ("DELETE FROM {audit} WHERE kihonet_user_id IN ({users})", prefixes),
        ("DELETE FROM {certificate} WHERE user_id IN ({users})", prefixes),
        (
            "UPDATE {notice} SET used_at = NULL WHERE used_at IS NOT NULL AND user_id IN ({users})",
            prefixes,
        ),
        (
            "UPDATE {customer} SET started_using = false "
            "WHERE started_using AND kihonet_code LIKE %s",
            ["971%"],
        ),
    ]
    names = {
        "certificate": _table(Certificate),
        "challenge": _table(RenewalChallenge),
        "enrollment": _table(Enrollment),
        "notice": _table(Notice),
        "audit": _table(AuditEvent),
        "customer": _table(Customer),
        "user": _table(KihonetUser),
    }
    users = "SELECT id FROM {user} WHERE user_id LIKE %s OR user_id LIKE %s"
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in statements:
            # The table names come from the models; the values are parameters.
            cursor.execute(statement.replace("{users}", users).format(**names), params)


def bench_notices() -> list[list[str]]:
    """N_NOTICES unused notices of the bench (bulk inserts for the missing ones), as the six
    fields the customer types."""
    from issuance.models import Customer, KihonetUser, Notice
    from issuance.rules.business_days import registration_year

    existing = KihonetUser.objects.filter(user_id__startswith=ACQ_USER_PREFIX).count()
    if existing < N_NOTICES:
        start = time.perf_counter()
        first_customer = existing // USERS_PER_CUSTOMER
        last_customer = (N_NOTICES - 1) // USERS_PER_CUSTOMER
        Customer.objects.bulk_create(
            [
                Customer(kihonet_code=f"{ACQ_CODE_BASE + c:08d}", name=f"HTTPベンチ株式会社{c}")
                for c in range(first_customer, last_customer + 1)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        customers = dict(
            Customer.objects.filter(kihonet_code__startswith="971").values_list(
                "kihonet_code", "pk"
            )
        )
        users = KihonetUser.objects.bulk_create(
            [
                KihonetUser(
                    customer_id=customers[f"{ACQ_CODE_BASE + i // USERS_PER_CUSTOMER:08d}"],
                    user_id=f"{ACQ_USER_PREFIX}{i:05d}",
                    management_number=f"HLA{i:07d}",
                    email=f"ha{i}@{BENCH_DOMAIN}",
                )
                for i in range(existing, N_NOTICES)
            ],
            batch_size=2000,
        )
        year = registration_year(NOTICE_ISSUED_ON)
        Notice.objects.bulk_create(
            [
                Notice(
                    user=user,
                    kind=Notice.Kind.NEW,
                    branch_number="001",
                    printed_year=NOTICE_ISSUED_ON.year,
                    registration_year=year,
                    issued_on=NOTICE_ISSUED_ON,
                    email=user.email,
                )
                for user in users
            ],
            batch_size=2000,
        )
        _analyze(Customer, KihonetUser, Notice)
        print(
            f"  wrote {N_NOTICES - existing:,} notices in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    rows = (
        Notice.objects.filter(user__user_id__startswith=ACQ_USER_PREFIX, used_at__isnull=True)
        .order_by("user__user_id")
        .values_list(
            "user__customer__kihonet_code",
            "user__management_number",
            "user__user_id",
            "registration_year",
            "branch_number",
            "email",
        )
    )
    return [
        [code, number, user_id, str(year), branch, email]
        for code, number, user_id, year, branch, email in rows[:N_NOTICES]
    ]


def _analyze(*models) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {_table(model)}")


def renewal_certificates(count: int) -> list[list[str]]:
    """``count`` certificates issued three years less ten days ago through issue_certificate
    (so that their renewal window is open today), with their private keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from django.utils import timezone

    from issuance import audit
    from issuance.models import Certificate, Customer, KihonetUser
    from issuance.services.certificates import issue_certificate

    holders = list(
        KihonetUser.objects.select_related("customer")
        .filter(user_id__startswith=RENEWAL_USER_PREFIX)
        .order_by("user_id")
    )
    if len(holders) < RENEWAL_USERS:
        Customer.objects.bulk_create(
            [
                Customer(
                    kihonet_code=f"{RENEWAL_CODE_BASE + c:08d}",
                    name=f"HTTP更新ベンチ{c}",
                    started_using=True,
                )
                for c in range(RENEWAL_USERS // USERS_PER_CUSTOMER)
            ],
            ignore_conflicts=True,
        )
        customers = dict(
            Customer.objects.filter(kihonet_code__startswith="972").values_list(
                "kihonet_code", "pk"
            )
        )
        KihonetUser.objects.bulk_create(
            [
                KihonetUser(
                    customer_id=customers[f"{RENEWAL_CODE_BASE + i // USERS_PER_CUSTOMER:08d}"],
                    user_id=f"{RENEWAL_USER_PREFIX}{i:05d}",
                    management_number=f"HLR{i:07d}",
                    email=f"hr{i}@{BENCH_DOMAIN}",
                )
                for i in range(RENEWAL_USERS)
            ],
            ignore_conflicts=True,
        )
        holders = list(
            KihonetUser.objects.select_related("customer")
            .filter(user_id__startswith=RENEWAL_USER_PREFIX)
            .order_by("user_id")
        )

    start = time.perf_counter()
    issued_at = timezone.now() - timedelta(days=3 * 365 - 10)
    actor = audit.Actor.system("bench")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")])
    renewals = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        certificate = issue_certificate(
            user=holders[i % len(holders)], csr_data=csr, actor=actor, now=issued_at
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        renewals.append([certificate.serial, certificate.pem, key_pem.decode()])
    _analyze(Certificate)
    print(
        f"  issued {count:,} certificates to renew in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return renewals
