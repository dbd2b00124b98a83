from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from notifications.models import ExpiryReminder


@admin.register(ExpiryReminder)
class ExpiryReminderAdmin(admin.ModelAdmin):
    """Staff see every reminder and its outcome (failed ones above all); nobody edits them."""

    list_display = [
        "certificate_serial",
        "user_id",
        "stage",
        "status",
        "email",
        "attempts",
        "sent_at",
        "last_error",  # the next attempt's time is on the reminder's own page
    ]
    list_filter = ["status", "stage", "renewed"]
    list_select_related = ["certificate__user"]
    search_fields = ["=certificate__serial", "=certificate__user__user_id", "email"]
    readonly_fields = [f.name for f in ExpiryReminder._meta.fields]
    show_full_result_count = False

    @admin.display(description=_("シリアル番号"), ordering="certificate__serial")
    def certificate_serial(self, obj: ExpiryReminder) -> str:
        return obj.certificate.serial

    @admin.display(description=_("ユーザーID"), ordering="certificate__user__user_id")
    def user_id(self, obj: ExpiryReminder) -> str:
        return obj.certificate.user.user_id

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
