"""The JSON API the client tool and the pages use (version 1). It takes no cookies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from issuance import ca
from issuance.errors import (
    CertificateUnknownError,
    FieldFormatError,
    RequestTooLargeError,
    ServiceError,
)
from issuance.forms import EnrollmentForm
from issuance.middleware import bad_input_message
from issuance.models import Certificate, RenewalChallenge
from issuance.requests import client_ip
from issuance.rules import formats
from issuance.selectors import certificates
from issuance.services import auto_renewal, enrollment, renewal
from issuance.untrusted import JsonTooDeep, any_forbidden, json_strings

MAX_BODY_BYTES = 64 * 1024


def error_response(error: ServiceError) -> JsonResponse:
    body = {"status_code": error.status_code, "message": str(error.message)}
    body.update(error.detail)
    return JsonResponse(body, status=error.http_status)


def _read_json(request: HttpRequest) -> dict:
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        raise RequestTooLargeError()
    try:
        body = request.body
    except RequestDataTooBig as error:
        raise RequestTooLargeError() from error
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLargeError()
    try:
        data = json.loads(body or b"{}")
    except RecursionError as error:
        raise _too_deep() from error
    except (ValueError, UnicodeDecodeError) as error:
        raise ServiceError(_("JSON の形式が正しくありません。")) from error
    if not isinstance(data, dict):
        raise ServiceError(_("JSON のオブジェクトで送信してください。"))
    try:
        bad = any_forbidden(json_strings(data))
    except JsonTooDeep as error:
        raise _too_deep() from error
    if bad:
        raise ServiceError(bad_input_message())
    return data


def _too_deep() -> ServiceError:
    return ServiceError(_("JSON の入れ子が深すぎます。項目を入れ子にせずに送信してください。"))


def api_view(function: Callable) -> Callable:
    """POST only, JSON in and out, every ServiceError as a 4xx with its status code."""

    @csrf_exempt
    @require_POST
    @wraps(function)
    def view(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        try:
            return function(request, _read_json(request), *args, **kwargs)
        except ServiceError as error:
            return error_response(error)

    return view


def _string(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ServiceError(
            _("%(name)s を文字列で送信してください。") % {"name": name},
            detail={"errors": {name: [_("この項目を入力してください。")]}},
        )
    return value


def certificate_body(certificate: Certificate, chain_pem: str) -> dict:
    return {
        "serial": certificate.serial,
        "certificate": certificate.pem,
        "chain": chain_pem,
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "subject": certificate.subject,
    }


@api_view
def create_enrollment(request: HttpRequest, data: dict) -> JsonResponse:
    form = EnrollmentForm(data={k: v for k, v in data.items() if isinstance(v, str)})
    if not form.is_valid():
        errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
        raise FieldFormatError(detail={"errors": errors})
    started, token = enrollment.start_enrollment(
        enrollment.NoticeFields(**form.cleaned_data), ip_address=client_ip(request)
    )
    return JsonResponse(
        {"token": token, "email": started.email, "expires_at": started.expires_at.isoformat()},
        status=201,
    )


@api_view
def confirm_enrollment(request: HttpRequest, data: dict, token: str) -> JsonResponse:
    confirmed = enrollment.confirm_email(token, ip_address=client_ip(request))
    return JsonResponse({"confirmed": True, "email": confirmed.email})


@api_view
def enrollment_certificate(request: HttpRequest, data: dict, token: str) -> JsonResponse:
    certificate = enrollment.complete_enrollment(
        token, _string(data, "csr"), ip_address=client_ip(request)
    )
    return JsonResponse(certificate_body(certificate, ca.signing_material().chain_pem), status=201)


@api_view
def renewal_challenge(request: HttpRequest, data: dict) -> JsonResponse:
    purpose = data.get("purpose", RenewalChallenge.Purpose.RENEWAL)
    if purpose not in RenewalChallenge.Purpose.values:
        raise ServiceError(_("purpose の値が正しくありません。"))
    issued, challenge = renewal.create_challenge(_string(data, "certificate"), purpose)
    return JsonResponse(
        {"challenge": challenge, "expires_at": issued.expires_at.isoformat()}, status=201
    )


@api_view
def create_renewal(request: HttpRequest, data: dict) -> JsonResponse:
    renewed = renewal.renew(
        certificate_pem=_string(data, "certificate"),
        challenge=_string(data, "challenge"),
        signature=_string(data, "signature"),
        csr_data=_string(data, "csr"),
        ip_address=client_ip(request),
    )
    return JsonResponse(certificate_body(renewed, ca.signing_material().chain_pem), status=201)


def _check_serial(serial: str) -> None:
    if not re.fullmatch(formats.SERIAL_RE, serial):
        raise ServiceError(_("シリアル番号の形式が正しくありません。"))


def certificate_lookup(lookup: Callable) -> Callable:
    """GET of one certificate by its serial: a malformed serial is refused, an unknown one is
    404 (3495); the view is given what ``lookup(serial, now)`` found."""

    def decorate(function: Callable) -> Callable:
        @require_GET
        @wraps(function)
        def view(request: HttpRequest, serial: str) -> JsonResponse:
            try:
                _check_serial(serial)
                found = lookup(serial, timezone.now())
                if found is None:
                    raise CertificateUnknownError()
            except ServiceError as error:
                return error_response(error)
            return function(request, serial, found)

        return view

    return decorate


@certificate_lookup(certificates.certificate_status)
def certificate_status(request: HttpRequest, serial: str, status: str) -> JsonResponse:
    """What the client tool's ``list`` shows: valid, renewed, revoked or expired (no person)."""
    return JsonResponse({"serial": serial, "status": status})


@certificate_lookup(certificates.renewal_info_for_serial)
def renewal_info(request: HttpRequest, serial: str, info) -> JsonResponse:
    """When to renew (RFC 9773 in spirit): the suggested window and Retry-After."""
    body: dict = {"serial": info.serial, "status": info.status, "suggestedWindow": None}
    if info.window is not None:
        body["suggestedWindow"] = {
            "start": info.window.start.isoformat(),
            "end": info.window.end.isoformat(),
        }
        body["moved"] = info.moved
    response = JsonResponse(body)
    response["Retry-After"] = str(int(info.retry_after.total_seconds()))
    return response


@api_view
def report_auto_renewal(request: HttpRequest, data: dict, serial: str) -> JsonResponse:
    """The tool's signed check-in: auto-renewal on or off for this certificate."""
    _check_serial(serial)
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise ServiceError(_("enabled を true または false で送信してください。"))
    report = auto_renewal.report_auto_renewal(
        serial=serial,
        certificate_pem=_string(data, "certificate"),
        challenge=_string(data, "challenge"),
        signature=_string(data, "signature"),
        enabled=enabled,
        ip_address=client_ip(request),
    )
    return JsonResponse(
        {
            "serial": serial,
            "enabled": report.enabled,
            "checked_in_at": report.checked_in_at.isoformat(),
        }
    )
