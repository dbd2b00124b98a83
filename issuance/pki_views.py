"""The CA's public endpoints: chain, CRL and OCSP (RFC 6960, POST and GET)."""

import base64
import binascii

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from issuance import ca, responders
from issuance.errors import CaUnavailableServiceError
from issuance.pki import ocsp

MAX_OCSP_REQUEST = 4096


def _unavailable() -> HttpResponse:
    return HttpResponse("CA unavailable", status=503, content_type="text/plain")


@require_GET
def chain(request: HttpRequest) -> HttpResponse:
    try:
        return HttpResponse(
            responders.chain_pem(), content_type="application/pem-certificate-chain"
        )
    except ca.CaUnavailableError:
        return _unavailable()


@require_GET
def issuing_ca(request: HttpRequest) -> HttpResponse:
    try:
        return HttpResponse(responders.issuing_ca_der(), content_type="application/pkix-cert")
    except ca.CaUnavailableError:
        return _unavailable()


@require_GET
def crl(request: HttpRequest, form: str) -> HttpResponse:
    try:
        der = responders.crl_der()
    except (ca.CaUnavailableError, CaUnavailableServiceError):
        return _unavailable()
    if form == "pem":
        body = b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(der) + b"-----END X509 CRL-----\n"
        return HttpResponse(body, content_type="application/x-pem-file")
    return HttpResponse(der, content_type="application/pkix-crl")


def _ocsp_reply(body: bytes) -> HttpResponse:
    return HttpResponse(body, content_type="application/ocsp-response")


@csrf_exempt
@require_http_methods(["POST"])
def ocsp_post(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_OCSP_REQUEST:
        return _ocsp_reply(ocsp.malformed_request_response())
    return _respond(request.body)


@require_GET
def ocsp_get(request: HttpRequest, encoded: str) -> HttpResponse:
    try:
        der = base64.b64decode(encoded.replace(" ", "+"), validate=False)
    except (binascii.Error, ValueError):
        return _ocsp_reply(ocsp.malformed_request_response())
    return _respond(der[: MAX_OCSP_REQUEST + 1])


def _respond(der: bytes) -> HttpResponse:
    try:
        return _ocsp_reply(responders.ocsp_response(der))
    except ca.CaUnavailableError:
        return _ocsp_reply(ocsp.internal_error_response())
