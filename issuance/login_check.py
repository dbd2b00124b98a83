"""What the login check sees: the client certificate the TLS proxy verified (R06, R07).

The proxy (nginx, `ssl_verify_client optional`) passes the verification result and the
certificate in headers. They are believed only from a configured proxy address.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from issuance.models import Certificate
from issuance.querysets import one_or_none

VERIFY_HEADER = "HTTP_X_SSL_CLIENT_VERIFY"
CERT_HEADER = "HTTP_X_SSL_CLIENT_CERT"

MESSAGES = {
    "ok": _(
        "クライアント証明書を確認しました。「企業保険インターネットサービス」にログインできます。"
    ),
    "none": _(
        "クライアント証明書が提示されていません。このパソコンにクライアント証明書をインストールしてください。"
    ),
    "revoked": _(
        "このクライアント証明書は失効しているため、ログインできません。クライアント証明書の再発行手続きが必要です。"
    ),
    "expired": _(
        "このクライアント証明書は有効期限が切れているため、ログインできません。クライアント証明書の再発行手続きが必要です。"
    ),
    "foreign": _(
        "このクライアント証明書は企保ネットのクライアント証明書ではないため、ログインできません。"
    ),
    "untrusted": _(
        "クライアント証明書を確認できませんでした。https のURLからアクセスしてください（「s」の入力漏れにご注意ください）。"
    ),
}


@dataclass(frozen=True)
class LoginCheck:
    status: str
    certificate: Certificate | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def message(self) -> str:
        return str(MESSAGES[self.status])


def _from_trusted_proxy(request: HttpRequest) -> bool:
    return request.META.get("REMOTE_ADDR") in settings.KIHONET_TRUSTED_PROXIES


def _status_of_failure(verify: str) -> str:
    reason = verify.lower()
    if "revoked" in reason:
        return "revoked"
    if "expired" in reason:
        return "expired"
    return "foreign"


def _parse(escaped_pem: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(urllib.parse.unquote(escaped_pem).encode())
    except ValueError:
        return None


def check(request: HttpRequest, now: datetime) -> LoginCheck:
    if not _from_trusted_proxy(request):
        return LoginCheck("untrusted")
    verify = request.META.get(VERIFY_HEADER, "NONE")
    if verify == "NONE" or not request.META.get(CERT_HEADER):
        return LoginCheck("none")
    if verify != "SUCCESS":
        return LoginCheck(_status_of_failure(verify))
    parsed = _parse(request.META[CERT_HEADER])
    certificate = parsed and one_or_none(Certificate.objects.select_related("user").holding(parsed))
    if not certificate:
        return LoginCheck("foreign")
    status = certificate.status_at(now)  # revoked, also after its expiry; then expired
    if status != Certificate.Status.VALID:
        return LoginCheck(status.value, certificate)
    return LoginCheck("ok", certificate)
