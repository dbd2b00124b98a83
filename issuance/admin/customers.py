"""Customers and their users: the one screen per customer user (R15, R16)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from issuance import roles
from issuance.admin.base import USER_SEARCH, DeskScopedAdmin, user_search
from issuance.admin.export import ExportMixin
from issuance.admin.user_views import UserActionViews
from issuance.models import Customer, KihonetUser
from issuance.selectors.users import user_overview


@admin.register(Customer)
class CustomerAdmin(ExportMixin, DeskScopedAdmin):
    customer_path = ""
    list_display = ["kihonet_code", "name", "started_using", "created_at"]
    list_filter = ["started_using", "product_lines"]
    search_paths = {
        **user_search("users__", without=frozenset({"serial"})),
        "kihonet_code": "kihonet_code",
        "name": "name",
    }
    filter_horizontal = ["product_lines"]

    def audit_trail_query(self, obj: Customer) -> dict[str, str]:
        return {"kihonet_user__customer__id__exact": str(obj.pk)}

    sortable_by = ["kihonet_code"]
    export_fields = [
        (_("企保ネットコード"), "kihonet_code"),
        (_("お客様名"), "name"),
        (_("ご利用開始済み"), "started_using"),
    ]


@admin.register(KihonetUser)
class KihonetUserAdmin(UserActionViews, DeskScopedAdmin):
    customer_path = "customer"
    list_display = ["user_id", "management_number", "customer_code", "customer_name", "email"]
    list_display_links = ["user_id"]
    list_select_related = ["customer"]
    list_filter = ["customer__started_using", "customer__product_lines"]
    search_paths = USER_SEARCH
    sortable_by = ["user_id"]
    raw_id_fields = ["customer"]
    change_form_template = "admin/issuance/kihonetuser/change_form.html"
    export_fields = [
        (_("ユーザーID"), "user_id"),
        (_("管理番号"), "management_number"),
        (_("企保ネットコード"), "customer__kihonet_code"),
        (_("お客様名"), "customer__name"),
        (_("Eメールアドレス"), "email"),
    ]

    @admin.display(description=_("企保ネットコード"))
    def customer_code(self, obj: KihonetUser) -> str:
        return obj.customer.kihonet_code

    @admin.display(description=_("お客様名"))
    def customer_name(self, obj: KihonetUser) -> str:
        return obj.customer.name

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._overview_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def audit_trail_query(self, obj: KihonetUser) -> dict[str, str]:
        return {"kihonet_user__id__exact": str(obj.pk)}

    def _overview_context(self, request, obj: KihonetUser) -> dict:
        user = request.user
        return {
            "overview": user_overview(obj),
            "history_url": self.audit_trail_url(request, obj),
            "can_reissue": user.has_perm(roles.REISSUE),
            "can_revoke": user.has_perm(roles.REVOKE),
            "can_resend": user.has_perm(roles.RESEND),
            "can_lift": user.has_perm(roles.LIFT_LOCK),
            "can_print": user.has_perm(roles.PRINT),
        }
