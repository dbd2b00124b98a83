from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
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

    def history_view(self, request, object_id, extra_context=None):
        """「履歴」 is the audit trail of the reminder's user, not Django's empty history."""
        reminder = get_object_or_404(
            ExpiryReminder.objects.select_related("certificate"), pk=object_id
        )
        if not (
            self.has_view_permission(request, reminder)
            and request.user.has_perm("issuance.view_auditevent")
        ):
            raise PermissionDenied
        url = reverse(f"{self.admin_site.name}:issuance_auditevent_changelist")
        query = urlencode({"kihonet_user__id__exact": reminder.certificate.user_id})
        return HttpResponseRedirect(f"{url}?{query}")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
