"""What the services write and staff only read: audit log, enrollments, input locks, CRLs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from issuance import labels, roles
from issuance.admin.base import DeskScopedAdmin, ReadOnlyMixin, user_search
from issuance.admin.forms import ReasonForm
from issuance.admin.user_views import render_page, require_permission, staff_actor
from issuance.errors import ServiceError
from issuance.models import (
    AuditEvent,
    CrlPublication,
    Enrollment,
    InputLock,
    MismatchAlert,
    RenewalChallenge,
)
from issuance.scoping import staff_scope
from issuance.services import desk_actions, staff_login

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ActionFilter(admin.SimpleListFilter):
    """The actions by their Japanese names; the filter itself is the exact code (indexed)."""

    title = _("操作")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(code, label) for code, label in labels.AUDIT_ACTIONS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, DeskScopedAdmin):
    """Append-only: nobody adds, changes or deletes an event through the admin."""

    customer_path = "kihonet_user__customer"
    list_display = [
        "when",
        "actor_label",
        "action_label",
        "user_label",
        "ip_address",
        "reason",
        "detail_summary",
    ]
    list_select_related = ["kihonet_user"]
    list_filter = ["actor_type", ActionFilter]
    search_paths = user_search("kihonet_user__", without=frozenset({"serial"}))
    sortable_by = []
    readonly_fields = (
        "created_at",
        "actor_type",
        "actor",
        "action_label",
        "kihonet_user",
        "object_type_label",
        "object_id",
        "ip_address",
        "reason",
        "detail_lines",
    )
    fields = readonly_fields

    # The user screen's 「履歴」 opens the trail of that user (the scope still applies).
    HISTORY_LOOKUPS = {
        "kihonet_user__id__exact",
        "kihonet_user__customer__id__exact",
        "object_type",
        "object_id",
    }

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        return lookup in self.HISTORY_LOOKUPS or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("日時"), ordering="created_at")
    def when(self, obj: AuditEvent) -> str:
        return labels.format_moment(obj.created_at)

    @admin.display(description=_("ユーザー"))
    def user_label(self, obj: AuditEvent) -> str:
        return obj.kihonet_user.user_id if obj.kihonet_user else "-"

    @admin.display(description=_("対象の種類"))
    def object_type_label(self, obj: AuditEvent) -> str:
        for app_label in ("issuance", "notifications"):
            try:
                return str(apps.get_model(app_label, obj.object_type)._meta.verbose_name)
            except LookupError:
                continue
        return obj.object_type or "-"

    @admin.display(description=_("操作者"))
    def actor_label(self, obj: AuditEvent) -> str:
        return f"{obj.get_actor_type_display()}：{obj.actor}"

    @admin.display(description=_("操作"), ordering="action")
    def action_label(self, obj: AuditEvent) -> str:
        return labels.audit_action(obj.action)

    @admin.display(description=_("詳細"))
    def detail_summary(self, obj: AuditEvent) -> str:
        return "／".join(
            f"{key}：{value}" for key, value in labels.audit_detail(obj.action, obj.detail)
        )

    @admin.display(description=_("詳細"))
    def detail_lines(self, obj: AuditEvent) -> str:
        lines = labels.audit_detail(obj.action, obj.detail)
        if not lines:
            return "-"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", lines)
        return format_html('<table class="kn-detail">{}</table>', rows)


@admin.register(CrlPublication)
class CrlPublicationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["number", "this_update", "next_update", "revoked_count"]
    exclude = ["der"]
    readonly_fields = ["number", "this_update", "next_update", "revoked_count"]


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "notice__user__customer"
    list_display = ["notice", "email", "created_at", "expires_at", "confirmed_at", "certificate"]
    list_select_related = ["notice__user", "certificate"]
    search_paths = user_search(
        "notice__user__", without=frozenset({"kihonet_code", "management_number", "serial", "name"})
    )
    search_help_text = _("ユーザーID・Eメールアドレス（3文字以上の一部でも）で検索します。")
    exclude = ["token_digest"]
    sortable_by = []


def _short(moment) -> str:
    return date_format(localtime(moment), "Y/m/d H:i")


@admin.register(InputLock)
class InputLockAdmin(ReadOnlyMixin, DeskScopedAdmin):
    """Locks of the desk's customers' users; locks by address and of staff sign-in for
    supervisors. An active lock is lifted here (or on the user screen): a reason is required,
    and the lifting is audited (permission lift_input_lock)."""

    list_display = ["kind", "target", "period", "state", "lift_link"]
    list_select_related = ["lifted_by"]
    list_filter = ["kind"]
    search_fields = ["=value", "=user_id"]
    search_help_text = gettext_lazy(
        "企保ネットコード・ユーザーID・IPアドレス・職員のユーザー名の完全一致で検索します。"
    )
    sortable_by = []

    class Media:
        css = {"all": ["issuance/admin-backoffice.css"]}

    def scope_queryset(self, request, queryset):
        return staff_scope(request.user).input_locks(queryset)

    def get_search_results(self, request, queryset, search_term):
        """Exact, and on the username as staff sign-in sees it (full-width typed alike)."""
        term = staff_login.normalize(search_term)
        if not term:
            return queryset, False
        return queryset.filter(Q(value=term) | Q(user_id=term)), False

    def get_urls(self):
        lift = path(
            "<int:lock_id>/lift/",
            self.admin_site.admin_view(self.lift_view),
            name="issuance_inputlock_lift",
        )
        return [lift, *super().get_urls()]

    @admin.display(description=gettext_lazy("対象"))
    def target(self, lock: InputLock) -> str:
        if lock.user_id:
            return _("%(code)s・ユーザーID %(user_id)s") % {
                "code": lock.value,
                "user_id": lock.user_id,
            }
        return lock.value

    @admin.display(description=gettext_lazy("ロック日時～解除予定"))
    def period(self, lock: InputLock) -> str:
        return f"{_short(lock.locked_at)}～{_short(lock.locked_until)}"

    @admin.display(description=gettext_lazy("状態"))
    def state(self, lock: InputLock) -> StrOrPromise:
        if lock.lifted_at:
            return _("%(at)s 解除（%(by)s）") % {
                "at": _short(lock.lifted_at),
                "by": lock.lifted_by or _("システム"),
            }
        return _("ロック中") if lock.is_active() else _("期限切れ")

    @admin.display(description=gettext_lazy("操作"))
    def lift_link(self, lock: InputLock) -> str:
        if not lock.is_active():
            return ""
        url = reverse("admin:issuance_inputlock_lift", args=[lock.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("ロック解除"))

    def lift_view(self, request, lock_id: int):
        require_permission(request, roles.LIFT_LOCK)
        lock = get_object_or_404(self.get_queryset(request), pk=lock_id)  # 404 outside the desk
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                desk_actions.lift_input_lock(
                    lock,
                    reason=form.cleaned_data["reason"],
                    actor=staff_actor(request),
                )
            except ServiceError as error:
                form.add_error(None, str(error.message))
            else:
                messages.success(request, _("ロックを解除しました。"))
                return HttpResponseRedirect(reverse("admin:issuance_inputlock_changelist"))
        return render_page(
            self,
            request,
            "admin/issuance/inputlock/lift.html",
            title=_("ロックの解除"),
            lock=lock,
            form=form,
        )


@admin.register(MismatchAlert)
class MismatchAlertAdmin(ReadOnlyMixin, DeskScopedAdmin):
    """Companies whose many mismatches alerted the desk (the dashboard shows the last day's)."""

    list_display = ["raised_at", "kihonet_code", "failures", "window_seconds"]
    search_fields = ["=kihonet_code"]
    search_help_text = gettext_lazy("企保ネットコードの完全一致で検索します。")
    sortable_by = []

    def scope_queryset(self, request, queryset):
        return staff_scope(request.user).mismatch_alerts(queryset)


@admin.register(RenewalChallenge)
class RenewalChallengeAdmin(ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "certificate__user__customer"
    list_display = ["certificate", "created_at", "expires_at", "used_at"]
    list_select_related = ["certificate"]
    search_paths = {"serial": "certificate__serial"}
    search_help_text = _("証明書のシリアル番号で検索します。")
    exclude = ["challenge_digest"]
