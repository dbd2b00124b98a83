"""Staff accounts: the superuser gives each one a desk (StaffProfile) and a role (group)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from issuance.models import StaffProfile

User = get_user_model()


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    extra = 0
    max_num = 1


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "desk"]
    list_filter = ["desk"]
    list_select_related = ["user", "desk"]
    search_fields = ["user__username"]


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    inlines = [StaffProfileInline]
    list_display = ["username", "last_name", "first_name", "is_staff", "is_active", "desk"]
    list_select_related = ["staff_profile__desk"]

    @admin.display(description=StaffProfile._meta.get_field("desk").verbose_name)
    def desk(self, obj) -> str:
        profile = getattr(obj, "staff_profile", None)
        return str(profile.desk) if profile and profile.desk else ""
