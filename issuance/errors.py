"""Errors the services raise, each with a status code and a message in the customer's language.

The status codes are the ones the API and the pages show (「ステータスコード：3420」 comes from
the manual; the others are ours, listed in the OpenAPI document).
"""

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    status_code = "3400"
    http_status = 400
    message = _("お手続きを完了できませんでした。")

    def __init__(
        self, message=None, *, detail: dict | None = None, field: str | None = None
    ) -> None:
        if message is not None:
            self.message = message
        self.detail = detail or {}
        self.field = field  # the input the message is about, for a form to show it there
        super().__init__(str(self.message))


class FieldFormatError(ServiceError):
    status_code = "3410"
    message = _("入力内容に誤りがあります。")


class InputMismatchError(ServiceError):
    """R03: never says which field was wrong."""

    status_code = "3420"
    message = _("入力情報エラー")


def japanese_time(moment: datetime) -> str:
    """E.g. 「2026年12月1日 21:30」, in Japan time."""
    local = timezone.localtime(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


class LockedError(ServiceError):
    """The input lock: says until when, what to do and whom to call (the page names the desk).
    The lock's end (``locked_until``, when known) is in ``detail`` for the API and the page."""

    status_code = "3430"
    http_status = 429
    message = _(
        "入力誤りが続いたため、しばらくの間お手続きを受け付けられません。時間をおいてから再度お試しください。"
    )

    def __init__(self, message=None, *, locked_until: datetime | None = None) -> None:
        self.locked_until = locked_until
        if message is None and locked_until is not None:
            message = _(
                "入力誤りが続いたため、%(until)sまでお手続きを受け付けられません。"
                "「ユーザーIDのお知らせ」の内容をご確認のうえ、%(until)s以降に再度お試しください。"
                "お急ぎの場合は照会先にご連絡ください。"
            ) % {"until": japanese_time(locked_until)}
        super().__init__(
            message,
            detail={"locked_until": timezone.localtime(locked_until).isoformat()}
            if locked_until
            else None,
        )


class NoticeUsedError(ServiceError):
    status_code = "3440"
    http_status = 409
    message = _(
        "この通知文書はすでに使用されています。クライアント証明書の再発行手続きが必要です。下記の照会先にお問い合わせください。"
    )


class TokenError(ServiceError):
    status_code = "3450"
    http_status = 404
    message = _(
        "受付の有効期限が切れたか、受付番号が正しくありません。最初からお手続きをやり直してください。"
    )


class EmailNotConfirmedError(ServiceError):
    status_code = "3451"
    http_status = 409
    message = _("Eメールアドレスの確認が済んでいません。")


class IssuedForAnotherKeyError(ServiceError):
    """A request sent again after its answer was lost, with a key other than the first one's:
    the certificate of the first request stays the only one."""

    status_code = "3452"
    http_status = 409
    message = _(
        "このお手続きでは、すでに別の鍵に対してクライアント証明書を発行しています。お手続きを行ったPCで証明書取得クライアントツールを起動し直して、もう一度お試しください。解決しない場合は、下記の照会先にお問い合わせください。"
    )


class CertificateRequestError(ServiceError):
    status_code = "3460"
    message = _("証明書署名要求（CSR）の形式が正しくありません。")


class RenewalError(ServiceError):
    status_code = "3470"
    http_status = 409
    message = _("このクライアント証明書は更新できません。")


class TooManyChallengesError(ServiceError):
    status_code = "3431"
    http_status = 429
    message = _(
        "更新のお手続きが続けて行われたため、しばらくの間受け付けられません。時間をおいてから再度お試しください。"
    )


class ProofOfPossessionError(ServiceError):
    status_code = "3480"
    http_status = 403
    message = _(
        "クライアント証明書の確認ができませんでした。証明書取得クライアントツールを起動し直して、もう一度お試しください。"
    )


class RevocationError(ServiceError):
    status_code = "3490"
    http_status = 409
    message = _("このクライアント証明書はすでに失効しています。")


class CaUnavailableServiceError(ServiceError):
    status_code = "3500"
    http_status = 503
    message = _("ただいま証明書を発行できません。しばらくしてから再度お試しください。")
