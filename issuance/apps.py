from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IssuanceConfig(AppConfig):
    name = "issuance"
    verbose_name = _("クライアント証明書")

    def ready(self) -> None:
        from issuance import checks  # noqa: F401 - registers the system checks
