"""The back office's admin site: password and TOTP sign-in (django-otp's OTPAdminSite), a lock
after repeated failures, and the desk's dashboard on the index page."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance import desk_selectors
from issuance.models import ServiceDesk
from issuance.requests import client_ip
from issuance.services import staff_login

LOCKED_MESSAGE = _(
    "サインインの失敗が続いたため、このアカウントは一時的にロックされています。"
    "15分ほど時間をおいてから再度お試しください。解除を急ぐ場合は管理者にご連絡ください。"
)


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Username, password and the 6-digit TOTP code, all on one page, every failure counted."""

    otp_error_messages = dict(
        OTPAuthenticationFormMixin.otp_error_messages,
        token_required=_("認証コード（6桁）を入力してください。"),
        invalid_token=_(
            "認証コードが正しくありません。認証アプリに表示されている6桁の数字を入力してください。"
        ),
        n_failed_attempts=_(
            "認証コードの誤りが続いたため、しばらく認証できません。時間をおいて再度お試しください。"
        ),
        verification_not_allowed=_("現在、認証コードによる確認ができません。"),
        device_required=_("認証デバイスを選択してください。"),
    )
    error_messages = dict(
        AdminAuthenticationForm.error_messages,
        invalid_login=_("ユーザー名、パスワードまたは認証コードが正しくありません。"),
        inactive=_("このアカウントは利用できません。"),
    )
    otp_token = forms.CharField(
        label=_("認証コード（6桁）"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def _chosen_device(self, user):
        """Staff have one authenticator app: its TOTP device when none was chosen."""
        device = super()._chosen_device(user)
        if device is None:
            devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)[:2])
            device = devices[0] if len(devices) == 1 else None
        return device

    def clean(self):
        username = self.data.get("username", "")
        if staff_login.is_locked(username):
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            self._count_failure(username)
            raise
        staff_login.forget_failures(username)
        return cleaned

    def _count_failure(self, username: str) -> None:
        ip_address = client_ip(self.request) if self.request else None
        if staff_login.record_failure(username, ip_address):
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")


CHART_STEP = 30
CHART_BAR_WIDTH = 22
CHART_PLOT_HEIGHT = 160
CHART_TOP = 16


def expiry_chart(months: list[desk_selectors.MonthBar]) -> dict:
    """The geometry of the inline SVG bar chart (attributes only: the CSP allows no inline
    style, and no script is needed)."""
    baseline = CHART_TOP + CHART_PLOT_HEIGHT
    peak = max((bar.count for bar in months), default=0)
    bars = []
    for index, bar in enumerate(months):
        # A year is named under its January, and under the first bar when that year still has
        # room for its label (two bars, 60 units) before the next January.
        named = bar.month.month == 1 or (index == 0 and bar.month.month <= 11)
        height = round(CHART_PLOT_HEIGHT * bar.count / peak, 1) if peak else 0
        x = index * CHART_STEP + (CHART_STEP - CHART_BAR_WIDTH) / 2
        bars.append(
            {
                "month": bar.month,
                "count": bar.count,
                "x": x,
                "height": height,
                "y": round(baseline - height, 1),
                "label_y": round(baseline - height - 3, 1),
                "center": x + CHART_BAR_WIDTH / 2,
                "year_label": named,
            }
        )
    return {
        "bars": bars,
        "width": len(months) * CHART_STEP,
        "height": baseline + 38,
        "baseline": baseline,
        "bar_width": CHART_BAR_WIDTH,
        "month_y": baseline + 14,
        "year_y": baseline + 30,
    }


class KihonetAdminSite(OTPAdminSite):
    site_header = _("企保ネット バックオフィス")
    site_title = _("企保ネット バックオフィス")
    index_title = _("ダッシュボード")
    login_form = StaffLoginForm
    login_template = "admin/kihonet_login.html"
    index_template = "admin/kihonet_index.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def index(self, request, extra_context=None):
        desk = desk_selectors.desk_in_view(request.user, request.GET.get("desk"))
        scope = desk_selectors.staff_scope(request.user)
        figures = None if scope.is_empty else desk_selectors.dashboard(desk)
        context = {
            "dashboard": figures,
            "chart": expiry_chart(figures.months) if figures else None,
            "dashboard_desk": desk,
            "dashboard_desks": ServiceDesk.objects.all() if scope.everything else [],
            "staff_scope": scope,
            **(extra_context or {}),
        }
        return super().index(request, context)
