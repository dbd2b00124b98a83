from django.contrib import admin

from issuance.models import (
    AuditEvent,
    Certificate,
    CrlPublication,
    Customer,
    DeskContact,
    Enrollment,
    InputLock,
    KihonetUser,
    Notice,
    ProductLine,
    ReissueRecord,
    RenewalChallenge,
    ServiceDesk,
)


class NoDeleteMixin:
    """Certificates, notices and audit events are never deleted through the admin."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProductLine)
class ProductLineAdmin(admin.ModelAdmin):
    list_display = ["name", "display_order"]
    search_fields = ["name"]


class DeskContactInline(admin.TabularInline):
    model = DeskContact
    extra = 0


@admin.register(ServiceDesk)
class ServiceDeskAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "phone", "hours"]
    list_filter = ["kind"]
    inlines = [DeskContactInline]


@admin.register(DeskContact)
class DeskContactAdmin(admin.ModelAdmin):
    list_display = ["product_line", "desk", "phone"]
    list_filter = ["desk", "product_line"]
    list_select_related = ["product_line", "desk"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["kihonet_code", "name", "started_using", "created_at"]
    list_filter = ["started_using", "product_lines"]
    search_fields = ["=kihonet_code", "name"]
    filter_horizontal = ["product_lines"]


class NoticeInline(NoDeleteMixin, admin.TabularInline):
    model = Notice
    extra = 0
    fields = ["kind", "branch_number", "printed_year", "registration_year", "issued_on",
              "email", "used_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class CertificateInline(NoDeleteMixin, admin.TabularInline):
    model = Certificate
    fk_name = "user"
    extra = 0
    fields = ["serial", "status", "not_before", "not_after", "email"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KihonetUser)
class KihonetUserAdmin(admin.ModelAdmin):
    list_display = ["user_id", "management_number", "customer", "email", "created_at"]
    list_select_related = ["customer"]
    list_filter = ["customer__product_lines", "customer__started_using"]
    search_fields = ["=user_id", "=management_number", "=email", "=customer__kihonet_code"]
    raw_id_fields = ["customer"]
    inlines = [NoticeInline, CertificateInline]


@admin.register(Notice)
class NoticeAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["user", "kind", "branch_number", "printed_year", "registration_year",
                    "issued_on", "used_at"]
    list_select_related = ["user"]
    list_filter = ["kind", "issued_on"]
    search_fields = ["=user__user_id", "=user__management_number",
                     "=user__customer__kihonet_code", "=email"]
    raw_id_fields = ["user"]


@admin.register(Certificate)
class CertificateAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["serial", "user", "status", "not_before", "not_after", "email"]
    list_select_related = ["user"]
    list_filter = ["status"]
    search_fields = ["=serial", "=user__user_id", "=user__management_number",
                     "=user__customer__kihonet_code", "=email"]
    date_hierarchy = "not_after"
    readonly_fields = [f.name for f in Certificate._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ReissueRecord)
class ReissueRecordAdmin(admin.ModelAdmin):
    list_display = ["user", "reason", "new_notice", "staff", "created_at"]
    list_select_related = ["user", "new_notice__user", "staff"]
    list_filter = ["reason"]
    search_fields = ["=user__user_id", "=user__management_number"]
    raw_id_fields = ["user", "new_notice"]


@admin.register(AuditEvent)
class AuditEventAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor_type", "actor", "action", "object_type", "object_id",
                    "kihonet_user", "ip_address"]
    list_select_related = ["kihonet_user"]
    list_filter = ["actor_type", "action"]
    search_fields = ["=kihonet_user__user_id", "=object_id", "=actor"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CrlPublication)
class CrlPublicationAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["number", "this_update", "next_update", "revoked_count"]
    exclude = ["der"]
    readonly_fields = ["number", "this_update", "next_update", "revoked_count"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(NoDeleteMixin, admin.ModelAdmin):
    """Records the services write; staff only look at them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ["notice", "email", "created_at", "expires_at", "confirmed_at", "certificate"]
    list_select_related = ["notice__user", "certificate"]
    search_fields = ["=notice__user__user_id", "=email"]
    exclude = ["token_digest"]


@admin.register(InputLock)
class InputLockAdmin(ReadOnlyAdmin):
    list_display = ["kind", "value", "locked_at", "locked_until", "lifted_at", "lifted_by"]
    list_select_related = ["lifted_by"]
    list_filter = ["kind"]
    search_fields = ["=value"]


@admin.register(RenewalChallenge)
class RenewalChallengeAdmin(ReadOnlyAdmin):
    list_display = ["certificate", "created_at", "expires_at", "used_at"]
    list_select_related = ["certificate"]
    search_fields = ["=certificate__serial"]
    exclude = ["challenge_digest"]
