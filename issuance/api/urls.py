from django.urls import path, re_path

from issuance.api import openapi, views

# The token is matched as any text (a slash or a newline included) so that whatever the client
# sends is answered by the view, with the documented JSON 404 of an unknown token (3450), and
# never by Django's HTML "Not Found" page.
ANY_TEXT = r"(?P<token>[\s\S]+)"

urlpatterns = [
    path("openapi.json", openapi.openapi_json, name="api-openapi"),
    path("enrollments", views.create_enrollment, name="api-enrollments"),
    re_path(
        rf"^enrollments/{ANY_TEXT}/confirm\Z",
        views.confirm_enrollment,
        name="api-enrollment-confirm",
    ),
    re_path(
        rf"^enrollments/{ANY_TEXT}/certificate\Z",
        views.enrollment_certificate,
        name="api-enrollment-certificate",
    ),
]
urlpatterns += [
    path("renewals/challenge", views.renewal_challenge, name="api-renewal-challenge"),
    path("renewals", views.create_renewal, name="api-renewals"),
    re_path(
        r"^certificates/(?P<serial>[\s\S]+)/status\Z",
        views.certificate_status,
        name="api-certificate-status",
    ),
    re_path(
        r"^certificates/(?P<serial>[\s\S]+)/renewal-info\Z",
        views.renewal_info,
        name="api-certificate-renewal-info",
    ),
    re_path(
        r"^certificates/(?P<serial>[\s\S]+)/auto-renewal\Z",
        views.report_auto_renewal,
        name="api-certificate-auto-renewal",
    ),
]
