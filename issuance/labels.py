"""What staff read for the codes the services store: audit actions, revocation reasons and the
details of an audit event, in Japanese and in Japan time. Pure functions, no database."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

AUDIT_ACTIONS: dict[str, StrPromise] = {
    "ca_created": _("認証局の作成"),
    "auto_renewal_disabled": _("自動更新の停止（パソコンからの報告）"),
    "auto_renewal_enabled": _("自動更新の設定（パソコンからの報告）"),
    "certificate_expired": _("証明書の有効期限切れ"),
    "certificate_issued": _("証明書の発行"),
    "certificate_renewed": _("証明書の更新"),
    "certificate_replayed": _("証明書の再送（応答が届かなかった要求の再試行）"),
    "certificate_revoked": _("証明書の失効"),
    "certificates_expired": _("期限切れ証明書の処理"),
    "crl_published": _("失効リスト（CRL）の公開"),
    "customer_started_using": _("ご利用開始"),
    "data_exported": _("データの出力"),
    "email_confirmed": _("Eメールアドレスの確認"),
    "enrollment_started": _("新規取得の受付"),
    "input_lock_lifted": _("入力ロックの解除"),
    "input_locked": _("入力ロック"),
    "input_mismatch_alert": _("入力誤りの集中の検知"),
    "notice_printed": _("通知文書の印刷"),
    "notice_reissued": _("再発行"),
    "notices_imported": _("通知文書の取込み"),
    "notices_import_refused": _("通知文書ファイルの取込み不可"),
    "record_changed": _("登録内容の変更"),
    "record_created": _("登録内容の追加"),
    "reminder_resend_failed": _("更新案内メールの再送の失敗"),
    "reminder_resend_started": _("更新案内メールの再送の開始"),
    "reminder_resent": _("更新案内メールの再送"),
    "renewal_window_moved": _("更新推奨期間の前倒し"),
    "renewal_window_restored": _("更新推奨期間を元に戻す"),
    "staff_created": _("職員アカウントの作成"),
    "staff_login_locked": _("職員サインインのロック"),
    "staff_login_unlocked": _("職員サインインのロック解除"),
}

# RFC 5280 CRLReason names (issuance.pki.crl.REASONS) as staff read them.
REVOCATION_REASONS: dict[str, StrPromise] = {
    "unspecified": _("その他"),
    "keyCompromise": _("鍵の危殆化（パソコンの紛失・盗難など）"),
    "cACompromise": _("認証局の危殆化"),
    "affiliationChanged": _("所属の変更（退職・異動など）"),
    "superseded": _("再発行・更新による置き換え"),
    "cessationOfOperation": _("利用の終了"),
    "certificateHold": _("一時停止"),
    "removeFromCRL": _("一時停止の解除"),
    "privilegeWithdrawn": _("権限の取消し"),
    "aACompromise": _("属性認証局の危殆化"),
}

DETAIL_KEYS: dict[str, StrPromise] = {
    "serial": _("シリアル番号"),
    "old_serial": _("更新前のシリアル番号"),
    "new_serial": _("新しいシリアル番号"),
    "not_after": _("有効期限"),
    "reason": _("理由"),
    "branch_number": _("枝番"),
    "output": _("出力"),
    "email": _("Eメールアドレス"),
    "stage": _("案内の種類"),
    "message_id": _("Message-ID"),
    "revoked": _("失効した証明書"),
    "kind": _("種類"),
    "value": _("対象"),
    "username": _("ユーザー名"),
    "ip_address": _("IPアドレス"),
    "failures": _("失敗回数"),
    "number": _("CRL番号"),
    "count": _("件数"),
    "at": _("日時"),
    "through": _("処理した有効期限（この日時まで）"),
    "model": _("対象データ"),
    "rows": _("件数"),
    "role": _("役割"),
    "desk": _("照会先"),
    "file": _("ファイル"),
    "created": _("登録件数"),
    "unchanged": _("変更なしの件数"),
    "errors": _("エラーの件数"),
    "key_type": _("鍵の種類"),
    "subject": _("サブジェクト"),
    "renewed": _("更新済みの案内"),
}

_OUTPUTS = {"html": _("画面"), "pdf": _("PDF")}
_STAGES = {30: _("30日前"), 7: _("7日前")}
_LOCK_KINDS = {"kihonet_code": _("企保ネットコード"), "ip_address": _("IPアドレス")}
_ROLES = {"clerk": _("窓口担当者"), "supervisor": _("スーパーバイザー"), "superuser": _("管理者")}
_MODELS = {
    "customer": _("お客様"),
    "kihonetuser": _("ユーザー"),
    "certificate": _("クライアント証明書"),
    "notice": _("通知文書"),
}


def audit_action(code: str) -> str:
    """「証明書の発行」 for ``certificate_issued``; an unknown code as it is."""
    return str(AUDIT_ACTIONS.get(code, code))


def revocation_reason(code: str) -> str:
    return str(REVOCATION_REASONS.get(code, code)) if code else ""


def format_moment(moment: datetime) -> str:
    """A time as staff read it: Japan time, 「2026/12/01 09:30」."""
    return timezone.localtime(moment).strftime("%Y/%m/%d %H:%M")


def _reissue_reason(code: str) -> str:
    from issuance.models import ReissueRecord  # models import this module's neighbours

    return str(dict(ReissueRecord.Reason.choices).get(code, code))


def _value(action: str, key: str, value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(_("はい") if value else _("いいえ"))
    if isinstance(value, list):
        return "、".join(_value(action, key, item) for item in value) or "-"
    if isinstance(value, dict):
        return "、".join(f"{k}：{_value(action, k, v)}" for k, v in value.items()) or "-"
    if key == "reason":
        if action == "notice_reissued":
            return _reissue_reason(str(value))
        return revocation_reason(str(value))
    if key == "stage":
        return str(_STAGES.get(value, value))
    if key == "output":
        return str(_OUTPUTS.get(value, value))
    if key == "kind":
        return str(_LOCK_KINDS.get(value, value))
    if key == "role":
        return str(_ROLES.get(value, value))
    if key == "model":
        return str(_MODELS.get(value, value))
    if isinstance(value, str) and key in {"not_after", "at", "through"}:
        moment = parse_datetime(value)
        if moment is not None:
            return format_moment(moment)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def audit_detail(action: str, detail: dict | None) -> list[tuple[str, str]]:
    """The event's details as (label, value) lines in Japanese, in the order they were written."""
    return [
        (str(DETAIL_KEYS.get(key, key)), _value(action, key, value))
        for key, value in (detail or {}).items()
    ]
