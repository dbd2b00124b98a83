"""What the services write and staff only read: audit log, enrollments, input locks, CRLs."""

from __future__ import annotations

from django.contrib import admin

from issuance import desk_selectors
from issuance.admin.scoping import DeskScopedAdmin, ReadOnlyMixin
from issuance.models import AuditEvent, CrlPublication, Enrollment, InputLock, RenewalChallenge


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, DeskScopedAdmin):
    """Append-only: nobody adds, changes or deletes an event through the admin."""

    customer_path = "kihonet_user__customer"
    list_display = [
        "created_at",
        "actor_type",
        "actor",
        "action",
        "object_type",
        "object_id",
        "kihonet_user",
        "ip_address",
        "reason",
    ]
    list_select_related = ["kihonet_user"]
    list_filter = ["actor_type", "action"]
    search_paths = {
        "kihonet_code": "kihonet_user__customer__kihonet_code",
        "user_id": "kihonet_user__user_id",
        "management_number": "kihonet_user__management_number",
        "email": "kihonet_user__email",
    }
    sortable_by = []
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


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
    search_paths = {"user_id": "notice__user__user_id", "email": "email"}
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

    def scope_queryset(self, request, queryset):
        return desk_selectors.staff_scope(request.user).input_locks(queryset)


@admin.register(RenewalChallenge)
class RenewalChallengeAdmin(ReadOnlyMixin, DeskScopedAdmin):
    customer_path = "certificate__user__customer"
    list_display = ["certificate", "created_at", "expires_at", "used_at"]
    list_select_related = ["certificate"]
    search_paths = {"serial": "certificate__serial"}
    exclude = ["challenge_digest"]
