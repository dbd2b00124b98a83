"""Certificates, notices and reissues: read-only for staff; actions live on the user screen."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from issuance import audit, roles
from issuance.admin.base import DeskScopedAdmin, ReadOnlyMixin, user_search
from issuance.admin.export import ExportMixin
from issuance.admin.forms import NoticeImportForm
from issuance.admin.user_views import render_page, require_permission, staff_actor
from issuance.models import AutoRenewal, Certificate, Notice, ReissueRecord, RenewalWindowMove
from issuance.requests import client_ip
from issuance.rules.notice_file import RowError
from issuance.services import auto_renewal
from issuance.services.notice_import import import_file

# Through the user: the user's address is the one with the trigram index.
USER_SEARCH_VIA_USER = user_search("user__", without=frozenset({"serial"}))
CERTIFICATE_SEARCH = {**USER_SEARCH_VIA_USER, "serial": "serial"}


class StatusFilter(admin.SimpleListFilter):
    """有効, 失効 or 期限切れ, by the same rule as the 状態 column (``Certificate.status_at``)."""

    title = _("状態")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Certificate.Status.choices

    def queryset(self, request, queryset):
        if self.value() in Certificate.Status.values:
            return queryset.in_status(self.value(), timezone.now())
        return queryset


class ExpiryFilter(admin.SimpleListFilter):
    """The questions of the day, each served by the index on the expiry (the expired ones are
    a 状態 of their own)."""

    title = _("有効期限")
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [
            ("7", _("7日以内に期限切れ")),
            ("30", _("30日以内に期限切れ")),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() in {"7", "30"}:
            return queryset.not_revoked().expiring_between(
                now, now + timedelta(days=int(self.value()))
            )
        return queryset


def status_code(certificate: Certificate) -> str:
    """valid, revoked or expired now: the export's 状態, as the stored field gave it."""
    return certificate.status_at(timezone.now()).value


class UserLinkMixin:
    @admin.display(description=_("ユーザー"), ordering="user__user_id")
    def user_link(self, obj) -> str:
        url = reverse("admin:issuance_kihonetuser_change", args=[obj.user_id])
        return format_html('<a href="{}">{}</a>', url, obj.user.user_id)


@admin.register(Certificate)
class CertificateAdmin(UserLinkMixin, ExportMixin, ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "user__customer"
    list_display = ["serial", "user_link", "status", "not_before", "not_after", "email"]
    list_select_related = ["user"]
    list_filter = [StatusFilter, ExpiryFilter]
    search_paths = CERTIFICATE_SEARCH
    sortable_by = ["not_after", "serial"]
    exclude = ["pem"]
    # Every field, and the 状態 after the expiry where the stored field stood.
    readonly_fields = [
        name
        for f in Certificate._meta.fields
        if f.name != "pem"
        for name in ([f.name, "status"] if f.name == "not_after" else [f.name])
    ]
    export_fields = [
        (_("シリアル番号"), "serial"),
        (_("ユーザーID"), "user__user_id"),
        (_("状態"), status_code),
        (_("有効期限"), "not_after"),
        (_("Eメールアドレス"), "email"),
    ]

    actions = ["export_csv", "renew_now", "restore_renewal_window"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("状態"))
    def status(self, obj: Certificate) -> str:
        return obj.status_label_at(timezone.now())

    def has_move_renewal_window_permission(self, request) -> bool:
        return request.user.has_perm("issuance.move_renewal_window")

    @admin.action(
        description=_("今すぐ更新（自動更新の更新推奨期間を前倒し）"),
        permissions=["move_renewal_window"],
    )
    def renew_now(self, request, queryset):
        """After an incident: the PCs with auto-renewal renew at their next run (inside R09)."""
        moved = auto_renewal.move_renewal_windows(
            queryset.select_related("user"),
            start=timezone.now(),
            reason=RENEW_NOW_REASON,
            actor=audit.Actor.staff_user(request.user, client_ip(request)),
        )
        self.message_user(
            request,
            _(
                "%(count)d 件の証明書の更新推奨期間を今すぐに変更しました。"
                "更新期間（有効期限の30日前から）に入っていない証明書は、期間の初日に更新されます。"
            )
            % {"count": moved},
        )

    @admin.action(description=_("更新推奨期間を元に戻す"), permissions=["move_renewal_window"])
    def restore_renewal_window(self, request, queryset):
        restored = auto_renewal.restore_renewal_windows(
            queryset.select_related("user"),
            reason=RESTORE_REASON,
            actor=audit.Actor.staff_user(request.user, client_ip(request)),
        )
        self.message_user(
            request, _("%(count)d 件の証明書の更新推奨期間を元に戻しました。") % {"count": restored}
        )


RENEW_NOW_REASON = "今すぐ更新（管理画面の一括操作）"
RESTORE_REASON = "更新推奨期間を元に戻す（管理画面の一括操作）"


@admin.register(Notice)
class NoticeAdmin(UserLinkMixin, DeskScopedAdmin):
    customer_path = "user__customer"
    list_display = [
        "user_link",
        "kind",
        "branch_number",
        "printed_year",
        "registration_year",
        "issued_on",
        "used_at",
    ]
    list_select_related = ["user"]
    list_filter = ["kind"]
    search_paths = USER_SEARCH_VIA_USER
    sortable_by = []
    autocomplete_fields = ["user"]
    change_list_template = "admin/issuance/notice/change_list.html"

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def get_urls(self):
        upload = path(
            "import/",
            self.admin_site.admin_view(self.import_view),
            name="issuance_notice_import",
        )
        return [upload, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        can_import = request.user.has_perm(roles.IMPORT_NOTICES)
        return super().changelist_view(request, {"can_import": can_import, **(extra_context or {})})

    def import_view(self, request):
        """The same file and the same per-row report as ``import_notices`` (supervisors)."""
        require_permission(request, roles.IMPORT_NOTICES)
        form = NoticeImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = import_file(
                    upload.read(),
                    file_name=upload.name,
                    actor=staff_actor(request),
                    encoding=form.cleaned_data["encoding"] or None,
                )
            except RowError as error:
                form.add_error("file", str(error))
        return render_page(
            self,
            request,
            "admin/issuance/notice/import.html",
            title=_("通知文書ファイルの取込"),
            form=form,
            report=report,
        )


@admin.register(ReissueRecord)
class ReissueRecordAdmin(UserLinkMixin, ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "user__customer"
    list_display = ["user_link", "reason", "new_notice", "staff", "created_at"]
    list_select_related = ["user", "new_notice__user", "staff"]
    list_filter = ["reason"]
    # A reissue record has no address of its own: the user's (indexed) one.
    search_paths = USER_SEARCH_VIA_USER
    sortable_by = []


class CertificateLinkMixin:
    @admin.display(description=_("クライアント証明書"), ordering="certificate__serial")
    def certificate_serial(self, obj) -> str:
        return obj.certificate.serial


@admin.register(AutoRenewal)
class AutoRenewalAdmin(CertificateLinkMixin, ReadOnlyMixin, DeskScopedAdmin):
    """The PCs' reports: read-only (only the certificate's key changes them)."""

    customer_path = "certificate__user__customer"
    list_display = ["certificate_serial", "enabled", "checked_in_at", "changed_at"]
    list_select_related = ["certificate"]
    list_filter = ["enabled"]
    search_paths = {"serial": "certificate__serial"}
    sortable_by = ["checked_in_at"]


@admin.register(RenewalWindowMove)
class RenewalWindowMoveAdmin(CertificateLinkMixin, ReadOnlyMixin, DeskScopedAdmin):
    """Moved windows: made and undone by the certificate list's actions, which audit them."""

    customer_path = "certificate__user__customer"
    list_display = ["certificate_serial", "start", "end", "reason", "moved_at"]
    list_select_related = ["certificate"]
    search_paths = {"serial": "certificate__serial"}
    sortable_by = ["moved_at"]
