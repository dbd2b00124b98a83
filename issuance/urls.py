from django.urls import path, re_path

from issuance import pki_views, views

app_name = "issuance"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("client-tool/", views.ClientToolView.as_view(), name="client-tool-page"),
    path("client-tool/kihonet_agent.py", views.download_client_tool, name="client-tool"),
    path("manual/", views.ManualView.as_view(), name="manual"),
    path("accessibility/", views.AccessibilityView.as_view(), name="accessibility"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("client-tool/<str:filename>", views.download_client_tool_build, name="client-tool-build"),
    path("enroll/", views.EnrollView.as_view(), name="enroll"),
    path("enroll/confirm/", views.EnrollConfirmView.as_view(), name="enroll-confirm"),
    path("enroll/issue/", views.EnrollIssueView.as_view(), name="enroll-issue"),
    path("enroll/complete/", views.EnrollCompleteView.as_view(), name="enroll-complete"),
    path("login-check/", views.login_check, name="login-check"),
    path("renew/", views.RenewView.as_view(), name="renew"),
    path("renew/complete/", views.RenewCompleteView.as_view(), name="renew-complete"),
    path("pki/ca.pem", pki_views.chain, name="ca-chain"),
    path("pki/issuing-ca.der", pki_views.issuing_ca, name="issuing-ca"),
    re_path(r"^pki/crl\.(?P<form>der|pem)$", pki_views.crl, name="crl"),
    path("pki/ocsp", pki_views.ocsp_post, name="ocsp"),
    re_path(r"^pki/ocsp/(?P<encoded>[A-Za-z0-9+/=% ]+)$", pki_views.ocsp_get, name="ocsp-get"),
]
