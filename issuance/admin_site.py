"""The back office's admin site: password and TOTP sign-in (django-otp's OTPAdminSite), a lock
after repeated failures, and the desk's dashboard on the index page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from issuance.models import ServiceDesk
from issuance.requests import client_ip
from issuance.scoping import desk_in_view, staff_scope
from issuance.selectors.dashboard import MonthBar, recent_mismatch_alerts
from issuance.services import staff_login
from issuance.services.dashboards import cached_dashboard

INVALID_LOGIN_MESSAGE = gettext_lazy("ユーザー名、パスワードまたは認証コードが正しくありません。")


def locked_message() -> str:
    return _(
        "サインインの失敗が続いたため、このアカウントは一時的にロックされています。"
        "%(minutes)s分ほど時間をおいてから再度お試しください。"
        "解除を急ぐ場合はスーパーバイザーにご連絡ください。"
    ) % {"minutes": _minutes(settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS)}


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


class OneTimeCodeInput(forms.TextInput):
    """The code field is empty on every new page: a code once tried is spent."""

    def format_value(self, value):
        return None


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Username, password and the 6-digit TOTP code, all on one page, every try counted before
    it is checked.

    Every failure shows one and the same message and the same page: a right password with a
    wrong or missing code must not be told from a wrong password."""

    otp_token = forms.CharField(
        label=gettext_lazy("認証コード（6桁）"),
        required=False,
        widget=OneTimeCodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    @property
    def lock_help(self) -> str:
        return _(
            "認証アプリ（TOTP）に表示されている6桁の数字を入力してください。"
            "%(failures)s回続けて失敗すると%(minutes)s分間サインインできなくなります。"
        ) % {
            "failures": settings.KIHONET_STAFF_LOGIN_MAX_FAILURES,
            "minutes": _minutes(settings.KIHONET_STAFF_LOGIN_LOCK_SECONDS),
        }

    def _chosen_device(self, user):
        """Staff have one authenticator app: its TOTP device when none was chosen."""
        device = super()._chosen_device(user)
        if device is None:
            devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)[:2])
            device = devices[0] if len(devices) == 1 else None
        return device

    def _update_form(self, user):
        """django-otp shows the password again and lists the devices once the password was
        right; here the page stays the same whatever was wrong."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""  # normalised as authentication does
        if not username or not self.cleaned_data.get("password"):
            return self.cleaned_data  # the field's own 「必須」 error; nothing was checked
        try:
            attempt = staff_login.begin(username)
        except staff_login.StaffLoginLocked:
            raise forms.ValidationError(locked_message(), code="locked") from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            self.user_cache = None
            ip_address = client_ip(self.request) if self.request else None
            if staff_login.failed(attempt, ip_address):
                raise forms.ValidationError(locked_message(), code="locked") from None
            raise forms.ValidationError(INVALID_LOGIN_MESSAGE, code="invalid_login") from None
        staff_login.succeeded(attempt)
        return cleaned


CHART_STEP = 30
CHART_BAR_WIDTH = 22
CHART_PLOT_HEIGHT = 160
CHART_TOP = 16


def expiry_chart(months: list[MonthBar]) -> dict:
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
    site_header = gettext_lazy("企保ネット バックオフィス")
    site_title = gettext_lazy("企保ネット バックオフィス")
    index_title = gettext_lazy("ダッシュボード")
    login_form = StaffLoginForm
    login_template = "admin/kihonet_login.html"
    index_template = "admin/kihonet_index.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def index(self, request, extra_context=None):
        desk = desk_in_view(request.user, request.GET.get("desk"))
        scope = staff_scope(request.user)
        figures = None if scope.is_empty else cached_dashboard(desk)
        context = {
            "dashboard": figures,
            "chart": expiry_chart(figures.months) if figures else None,
            "dashboard_desk": desk,
            "mismatch_alerts": [] if scope.is_empty else recent_mismatch_alerts(request.user, desk),
            "dashboard_desks": ServiceDesk.objects.all() if scope.everything else [],
            "staff_scope": scope,
            **(extra_context or {}),
        }
        return super().index(request, context)
