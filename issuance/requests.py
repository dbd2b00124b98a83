"""What the views read from a request."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The customer's address: REMOTE_ADDR, or the proxy's X-Forwarded-For when it comes from
    a configured proxy (``KIHONET_TRUSTED_PROXIES``)."""
    remote = request.META.get("REMOTE_ADDR") or None
    if remote in settings.KIHONET_TRUSTED_PROXIES:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or remote
    return remote
