"""The six fields of the notice (R01): one validation for the page and the API."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from issuance.rules import formats


class NormalizedCharField(forms.CharField):
    """Full-width characters and stray spaces, as copied from a letter, are normalised first."""

    def __init__(self, *, normalizer=formats.normalize_code, **kwargs) -> None:
        self.normalizer = normalizer
        super().__init__(**kwargs)

    def to_python(self, value):
        return self.normalizer(super().to_python(value))


class HalfWidthEmailField(forms.EmailField):
    default_error_messages = {"invalid": _("Eメールアドレスを半角英数字で正しくご入力ください。")}

    def to_python(self, value):
        return formats.normalize_email(super().to_python(value))

    def validate(self, value):
        super().validate(value)
        if value and not value.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")


REQUIRED = {"required": _("この項目を入力してください。")}


class EnrollmentForm(forms.Form):
    """Step ⑥ of the manual: the six fields with the manual's hint beside each."""

    kihonet_code = NormalizedCharField(
        label=_("企保ネットコード"),
        max_length=16,
        error_messages=REQUIRED,
        validators=[formats.validate_kihonet_code],
        help_text=_(
            "（「ユーザーIDのお知らせ」に記載の企保ネットコードを半角数字でご入力ください。）"
        ),
    )
    management_number = NormalizedCharField(
        label=_("管理番号"),
        max_length=20,
        error_messages=REQUIRED,
        validators=[formats.validate_management_number],
        help_text=_("（「ユーザーIDのお知らせ」に記載の管理番号を半角英数字でご入力ください。）"),
    )
    user_id = NormalizedCharField(
        label=_("ユーザーID"),
        max_length=16,
        error_messages=REQUIRED,
        validators=[formats.validate_user_id],
        help_text=_("（「ユーザーIDのお知らせ」に記載のユーザーIDを半角英数字でご入力ください。）"),
    )
    year = NormalizedCharField(
        label=_("年"),
        max_length=8,
        error_messages=REQUIRED,
        validators=[formats.validate_year],
        help_text=_(
            "（「ユーザーIDのお知らせ」の右上に記載されている発行年を西暦にて半角数字でご入力ください。）"
        ),
    )
    branch_number = NormalizedCharField(
        label=_("枝番"),
        max_length=8,
        error_messages=REQUIRED,
        validators=[formats.validate_branch_number],
        help_text=_(
            "（新規取得：「001」と半角数字でご入力ください。 再発行：再発行完了の通知文書に印字されている枝番を半角数字でご入力ください。）"
        ),
    )
    email = HalfWidthEmailField(
        label=_("Eメールアドレス"),
        max_length=formats.EMAIL_MAX_LENGTH,
        error_messages=REQUIRED,
        help_text=_("（3年後の更新時にはこのアドレス宛に案内を送信します。）"),
    )

    FIELD_NAMES = ("kihonet_code", "management_number", "user_id", "year", "branch_number", "email")
