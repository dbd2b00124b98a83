"""Every error the services raise: one class per error, each with its own status code, its HTTP
status, a message in the customer's language and a short ``summary`` for the OpenAPI document.

This is the only module that defines ServiceError subclasses (a test walks them all); the
OpenAPI document's table of status codes is generated from ``api_status_codes()``, so adding a
class here documents it. 「ステータスコード：3420」 comes from the manual; the other codes are ours
and stay as customers and the client tool have seen them. Errors only staff see (``api =
False``) get codes of their own too, but are not in the API's document.
"""

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    """Raised as such for a malformed request; the subclasses below are the other errors."""

    status_code = "3400"
    summary = "リクエストの形式が正しくない"
    http_status = 400
    api = True  # the API can answer it (False: only staff see it, in the admin)
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
    summary = "項目の形式の誤り（errors に項目ごとのメッセージ）"
    message = _("入力内容に誤りがあります。")


class RequestTooLargeError(ServiceError):
    status_code = "3413"
    summary = "データが大きすぎる"
    http_status = 413
    message = _("送信されたデータが大きすぎます。")


class InputMismatchError(ServiceError):
    """R03: never says which field was wrong."""

    status_code = "3420"
    summary = "入力情報エラー（どの項目かは示さない）"
    message = _("入力情報エラー")


def japanese_time(moment: datetime) -> str:
    """E.g. 「2026年12月1日 21:30」, in Japan time."""
    local = timezone.localtime(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


class LockedError(ServiceError):
    """The input lock: says until when, what to do and whom to call (the page names the desk).
    The lock's end (``locked_until``, when known) is in ``detail`` for the API and the page."""

    status_code = "3430"
    summary = "入力誤りが続いたためのロック（locked_until に解除予定日時）"
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
    summary = "使用済みの通知文書（再発行が必要、desks に照会先）"
    http_status = 409
    message = _(
        "この通知文書はすでに使用されています。クライアント証明書の再発行手続きが必要です。下記の照会先にお問い合わせください。"
    )


class TokenError(ServiceError):
    status_code = "3450"
    summary = "受付番号が無効または期限切れ"
    http_status = 404
    message = _(
        "受付の有効期限が切れたか、受付番号が正しくありません。最初からお手続きをやり直してください。"
    )


class EmailNotConfirmedError(ServiceError):
    status_code = "3451"
    summary = "Eメールアドレスが未確認"
    http_status = 409
    message = _("Eメールアドレスの確認が済んでいません。")


class IssuedForAnotherKeyError(ServiceError):
    """A request sent again after its answer was lost, with a key other than the first one's:
    the certificate of the first request stays the only one."""

    status_code = "3452"
    summary = "同じ受付・チャレンジで、すでに別の鍵に証明書を発行済み（desks に照会先）"
    http_status = 409
    message = _(
        "このお手続きでは、すでに別の鍵に対してクライアント証明書を発行しています。お手続きを行ったPCで証明書取得クライアントツールを起動し直して、もう一度お試しください。解決しない場合は、下記の照会先にお問い合わせください。"
    )


class CertificateRequestError(ServiceError):
    status_code = "3460"
    summary = "証明書署名要求（CSR）の誤り"
    message = _("証明書署名要求（CSR）の形式が正しくありません。")


class RenewalError(ServiceError):
    status_code = "3470"
    summary = "更新できない証明書"
    http_status = 409
    message = _("このクライアント証明書は更新できません。")


class TooManyChallengesError(ServiceError):
    status_code = "3431"
    summary = "更新のチャレンジの要求が多すぎる"
    http_status = 429
    message = _(
        "更新のお手続きが続けて行われたため、しばらくの間受け付けられません。時間をおいてから再度お試しください。"
    )


class ProofOfPossessionError(ServiceError):
    status_code = "3480"
    summary = "証明書の秘密鍵を保持していることを確認できない"
    http_status = 403
    message = _(
        "クライアント証明書の確認ができませんでした。証明書取得クライアントツールを起動し直して、もう一度お試しください。"
    )


class RevocationError(ServiceError):
    status_code = "3490"
    summary = "すでに失効している証明書"
    http_status = 409
    message = _("このクライアント証明書はすでに失効しています。")


class CertificateUnknownError(ServiceError):
    status_code = "3495"
    summary = "シリアル番号の証明書が見つからない"
    http_status = 404
    message = _("指定されたシリアル番号の証明書は見つかりません。")


class CaUnavailableServiceError(ServiceError):
    status_code = "3500"
    summary = "証明書を発行できない（一時的）"
    http_status = 503
    message = _("ただいま証明書を発行できません。しばらくしてから再度お試しください。")


class DeskActionError(ServiceError):
    """A service-desk action (revoking, lifting a lock) refused."""

    status_code = "3510"
    summary = "窓口の操作（失効・ロック解除）を完了できない"
    api = False
    message = _("操作を完了できませんでした。")


class ResendError(ServiceError):
    """The desk's resend of a renewal reminder refused."""

    status_code = "3520"
    summary = "更新のご案内を再送できない"
    api = False
    message = _("更新のご案内を再送できませんでした。")


class ReissueError(ServiceError):
    """A reissue refused (its code was once 3500, which is CaUnavailableServiceError's)."""

    status_code = "3530"
    summary = "再発行できない"
    api = False
    message = _("再発行できませんでした。")


def error_classes() -> list[type[ServiceError]]:
    """ServiceError and every subclass, in the order of their codes."""
    found: list[type[ServiceError]] = []
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.status_code)


def api_status_codes() -> dict[str, str]:
    """The status codes the API answers with, and what each means (the OpenAPI table)."""
    return {cls.status_code: cls.summary for cls in error_classes() if cls.api}
