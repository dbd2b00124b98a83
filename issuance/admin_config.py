"""The admin app's configuration, kept apart from ``issuance.apps`` so that the issuance app
keeps its single AppConfig."""

from django.contrib.admin.apps import AdminConfig


class KihonetAdminConfig(AdminConfig):
    """django.contrib.admin whose default site is the back office (TOTP, desks, dashboard)."""

    default_site = "issuance.admin_site.KihonetAdminSite"
