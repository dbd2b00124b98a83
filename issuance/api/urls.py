from django.urls import path

from issuance.api import openapi, views

urlpatterns = [
    path("openapi.json", openapi.openapi_json, name="api-openapi"),
    path("enrollments", views.create_enrollment, name="api-enrollments"),
    path("enrollments/<str:token>/confirm", views.confirm_enrollment, name="api-enrollment-confirm"),
    path("enrollments/<str:token>/certificate", views.enrollment_certificate,
         name="api-enrollment-certificate"),
]
urlpatterns += [
    path("renewals/challenge", views.renewal_challenge, name="api-renewal-challenge"),
    path("renewals", views.create_renewal, name="api-renewals"),
]
