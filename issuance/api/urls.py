import re

from django.urls import path, re_path

from issuance.api import openapi, views


def any_text(route: str) -> str:
    """``route`` as a pattern whose ``{token}`` or ``{serial}`` matches any text (a slash or a
    newline included), so that whatever the client sends is answered by the view: a malformed
    serial or an unknown token with the documented JSON error (3450 for a token), never with
    Django's HTML "Not Found" page."""
    return "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[\\s\\S]+)", route) + r"\Z"


urlpatterns = [
    path("openapi.json", openapi.openapi_json, name="api-openapi"),
    path("enrollments", views.create_enrollment, name="api-enrollments"),
    path("renewals/challenge", views.renewal_challenge, name="api-renewal-challenge"),
    path("renewals", views.create_renewal, name="api-renewals"),
] + [
    re_path(any_text(route), view, name=name)
    for route, view, name in [
        ("enrollments/{token}/confirm", views.confirm_enrollment, "api-enrollment-confirm"),
        (
            "enrollments/{token}/certificate",
            views.enrollment_certificate,
            "api-enrollment-certificate",
        ),
        ("certificates/{serial}/status", views.certificate_status, "api-certificate-status"),
        ("certificates/{serial}/renewal-info", views.renewal_info, "api-certificate-renewal-info"),
        (
            "certificates/{serial}/auto-renewal",
            views.report_auto_renewal,
            "api-certificate-auto-renewal",
        ),
    ]
]
