"""The contact table (R15): product lines, desks and their phones, managed by the superuser."""

from __future__ import annotations

from django.contrib import admin

from issuance.models import DeskContact, ProductLine, ServiceDesk


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
