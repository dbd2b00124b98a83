"""Publishing the CRL: signed with the next CRL number, one signer at a time, then cached."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from issuance import audit, ca
from issuance.errors import CaUnavailableServiceError
from issuance.models import Certificate, CrlPublication
from issuance.pki import crl as pki_crl
from issuance.pki import keys
from issuance.services import ocsp_responder
from issuance.services.locks import lock_until_commit

logger = logging.getLogger(__name__)

CRL_CACHE_KEY = "kihonet:crl:latest"
CRL_KEEP = 10


def _revoked_entries(now: datetime) -> list[pki_crl.RevokedEntry]:
    """Every revoked certificate not yet expired (RFC 5280 lets expired ones drop off)."""
    rows = _fetch_all(
        Certificate.objects.revoked()
        .filter(not_after__gt=now)
        .order_by()
        .values_list("serial", "revoked_at", "revocation_reason")
    )
    reasons = pki_crl.REASONS | {"": None}
    return [
        pki_crl.RevokedEntry(int(serial, 16), revoked_at, reasons[reason])
        for serial, revoked_at, reason in rows
    ]


def _fetch_all(rows: QuerySet) -> list[tuple]:
    """The rows of a ``values_list`` query. On PostgreSQL one plain cursor fetches them, and
    times are read by psycopg's own C loader: Django's, which only sets the zone the session
    already uses (UTC), runs in Python for every value and took most of the time for 100,000
    rows."""
    if connection.vendor != "postgresql":
        return list(rows)
    from psycopg.types.datetime import TimestamptzLoader

    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(*rows.query.sql_with_params())
        return cursor.fetchall()


@transaction.atomic
def publish_crl(now: datetime | None = None) -> CrlPublication:
    """Signs a fresh CRL with the next CRL number and puts it in the cache the views serve."""
    material = ca.signing_material()
    lock_until_commit("kihonet:crl-signer")
    now = now or timezone.now()
    next_update = now + timedelta(hours=settings.KIHONET_CRL_VALIDITY_HOURS)
    entries = _revoked_entries(now)
    publication = CrlPublication.objects.create(
        this_update=now, next_update=next_update, revoked_count=len(entries), der=b""
    )
    try:
        publication.der = pki_crl.build_crl_der(
            material.issuing_cert,
            material.issuing_key,
            entries,
            publication.number,
            now,
            next_update,
        )
    except keys.KeyStoreError as error:  # the token went away and did not come back
        logger.error("The CA cannot sign the CRL: %s", error)
        raise CaUnavailableServiceError() from error
    publication.save(update_fields=["der"])
    CrlPublication.objects.filter(number__lte=publication.number - CRL_KEEP).delete()
    transaction.on_commit(lambda: _distribute(publication, now))
    return publication


def _distribute(publication: CrlPublication, now: datetime) -> None:
    """After commit: into the cache the views serve, and into the TLS proxy's CRL file."""
    der = bytes(publication.der)
    cache.set(CRL_CACHE_KEY, der, None)
    if settings.KIHONET_NGINX_CRL_FILE:
        issuing_pem = pki_crl.crl_to_pem(x509.load_der_x509_crl(der))
        ca.write_atomically(
            Path(settings.KIHONET_NGINX_CRL_FILE), issuing_pem + ca.root_crl_pem(now)
        )


@transaction.atomic
def refresh_crl() -> CrlPublication:
    """The hourly job: a new CRL well before the current one's nextUpdate, with its audit event
    in the same transaction (both or neither), and the delegated OCSP responder renewed when due
    (also when no OCSP request asked)."""
    publication = publish_crl()
    try:
        ocsp_responder.responder()
    except ca.CaUnavailableError:
        pass  # logged; the OCSP view answers tryLater until the CA can sign again
    audit.record(
        audit.Actor.system("refresh_crl"),
        "crl_published",
        publication,
        detail={"number": publication.number, "revoked": publication.revoked_count},
    )
    return publication
