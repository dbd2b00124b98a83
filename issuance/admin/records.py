"""What the services write and staff only read: audit log, enrollments, input locks, CRLs."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from issuance import desk_selectors, labels
from issuance.admin.scoping import DeskScopedAdmin, ReadOnlyMixin
from issuance.models import AuditEvent, CrlPublication, Enrollment, InputLock, RenewalChallenge


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
    search_paths = {
        "kihonet_code": "kihonet_user__customer__kihonet_code",
        "user_id": "kihonet_user__user_id",
        "management_number": "kihonet_user__management_number",
        "email": "kihonet_user__email",
        "name": "kihonet_user__customer__name",
    }
    sortable_by = []
    fields = [
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
    ]
    readonly_fields = fields

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
    search_paths = {"user_id": "notice__user__user_id", "email": "notice__user__email"}
    search_help_text = _("ユーザーID・Eメールアドレス（3文字以上の一部でも）で検索します。")
    exclude = ["token_digest"]
    sortable_by = []


@admin.register(InputLock)
class InputLockAdmin(ReadOnlyMixin, DeskScopedAdmin):
    """Locks by 企保ネットコード of the desk's customers; locks by address for supervisors.
    Lifting is an action on the user screen (permission lift_input_lock)."""

    list_display = ["kind", "value", "locked_at", "locked_until", "lifted_at", "lifted_by"]
    list_select_related = ["lifted_by"]
    list_filter = ["kind"]
    search_fields = ["=value"]
    search_help_text = _("企保ネットコードまたはIPアドレスの完全一致で検索します。")

    def scope_queryset(self, request, queryset):
        return desk_selectors.staff_scope(request.user).input_locks(queryset)


@admin.register(RenewalChallenge)
class RenewalChallengeAdmin(ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "certificate__user__customer"
    list_display = ["certificate", "created_at", "expires_at", "used_at"]
    list_select_related = ["certificate"]
    search_paths = {"serial": "certificate__serial"}
    search_help_text = _("証明書のシリアル番号で検索します。")
    exclude = ["challenge_digest"]
