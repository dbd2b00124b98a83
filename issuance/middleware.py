"""Bad input refused at the door, on every public, API and staff path.

A NUL byte (or another control character) in the path, the query string, a form body or a
cookie would otherwise reach PostgreSQL (a search term, a filter value, a serial) and end in a
500. It is answered here with a 400 in Japanese: the API's JSON error (status code 3400) under
``/api/``, a page elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from issuance.untrusted import any_forbidden

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
API_PREFIX = "/api/"


def _query_dict_texts(query_dict) -> list[str]:
    return [text for key, values in query_dict.lists() for text in (key, *values)]


def has_bad_input(request: HttpRequest) -> bool:
    if any_forbidden([request.path_info, *_query_dict_texts(request.GET)]):
        return True
    if any_forbidden([text for item in request.COOKIES.items() for text in item]):
        return True
    if (
        request.method == "POST"
        and request.content_type in FORM_CONTENT_TYPES
        and not request.path_info.startswith(API_PREFIX)  # JSON only, checked as it is read
    ):
        # The body first: a multipart body parsed from the stream could not be read again.
        request.body  # noqa: B018 - caches the body (bounded by DATA_UPLOAD_MAX_MEMORY_SIZE)
        return any_forbidden(_query_dict_texts(request.POST))
    return False


def bad_input_message() -> str:
    return _(
        "送信された内容に使用できない文字（制御文字など）が含まれています。"
        "入力内容をご確認のうえ、もう一度お試しください。"
    )


def bad_input_response(request: HttpRequest) -> HttpResponse:
    if request.path_info.startswith(API_PREFIX):
        from issuance.api.views import error_response
        from issuance.errors import ServiceError

        return error_response(ServiceError(bad_input_message()))
    page = render_to_string("400.html", {"message": bad_input_message()}, request=request)
    return HttpResponseBadRequest(page)


class RejectBadInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_bad_input(request):
            return bad_input_response(request)
        return self.get_response(request)
