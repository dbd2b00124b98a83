"""The forms of the back office's actions, in Japanese."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from issuance.models import ReissueRecord
from issuance.services.desk_actions import STAFF_REVOCATION_REASONS


class ReissueForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("再発行理由"), choices=ReissueRecord.Reason.choices, widget=forms.RadioSelect
    )
    new_email = forms.EmailField(
        label=_("新しいEメールアドレス"),
        required=False,
        help_text=_(
            "「Eメールアドレスの変更」の場合のみ入力します（R05）。再発行完了の通知文書に記載されます。"
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
    reason = forms.ChoiceField(label=_("失効理由"), choices=list(STAFF_REVOCATION_REASONS.items()))
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
