"""The forms of the back office's actions, in Japanese."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from issuance.models import ReissueRecord
from issuance.services.desk_actions import STAFF_REVOCATION_HELP, STAFF_REVOCATION_REASONS


def _explained(label, help_text) -> str:
    return format_html('{}<span class="kn-choice-help">{}</span>', label, help_text)


class ReissueForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("再発行理由"),
        choices=ReissueRecord.Reason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("再発行理由を選択してください。")},
    )
    new_email = forms.EmailField(
        label=_("新しいEメールアドレス"),
        required=False,
        help_text=_(
            "「Eメールアドレスの変更」の場合のみ入力します。再発行完了の通知文書に記載されます。"
        ),
    )
    note = forms.CharField(
        label=_("備考（お客様からの連絡内容など）"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # The rules that tie the fields together (a new address for an e-mail change, a note for
    # 「その他」) are the service's: reissue.reissue_notice.


class RevokeForm(forms.Form):
    """No reason is chosen in advance: the clerk picks one, each explained beside it."""

    reason = forms.ChoiceField(
        label=_("失効理由"),
        choices=[
            (code, _explained(label, STAFF_REVOCATION_HELP[code]))
            for code, label in STAFF_REVOCATION_REASONS.items()
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("失効理由を選択してください。")},
    )
    note = forms.CharField(label=_("理由の詳細"), widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(
        label=_(
            "この証明書を失効させると、お客様はこの証明書で企保ネットにログインできなくなることを確認しました。"
        ),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("理由"), widget=forms.Textarea(attrs={"rows": 2}))


class ResendForm(forms.Form):
    reason = forms.CharField(
        label=_("理由"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class NoticeImportForm(forms.Form):
    """The core system's notice file, as ``import_notices`` reads it."""

    file = forms.FileField(
        label=_("通知文書ファイル（CSV）"),
        help_text=_(
            "基幹システムが出力したCSVファイルです。Shift_JIS・UTF-8（BOMの有無、改行CRLF・LF）のどちらでも取り込めます。"
        ),
    )
    encoding = forms.ChoiceField(
        label=_("文字コード"),
        choices=[("", _("自動判定")), ("shift_jis", "Shift_JIS"), ("utf-8", "UTF-8")],
        required=False,
        help_text=_("通常は「自動判定」のままで取り込めます。"),
    )

    MAX_BYTES = 20 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(
                _(
                    "ファイルが大きすぎます（20MBまで）。分割して取り込むか、コマンド import_notices をご利用ください。"
                )
            )
        return upload
