"""The CA's public endpoints: chain, CRL and OCSP (RFC 6960, POST and GET)."""

import base64
import binascii
import functools

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from issuance import ca, responders
from issuance.errors import CaUnavailableServiceError
from issuance.pki import ocsp

MAX_OCSP_REQUEST = 4096


def _unavailable_as_503(view):
    """No CA (before init_ca, or its token unreachable): 503 「CA unavailable」, not a 500."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (ca.CaUnavailableError, CaUnavailableServiceError):
            return HttpResponse("CA unavailable", status=503, content_type="text/plain")

    return wrapped


@require_GET
@_unavailable_as_503
def chain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(responders.chain_pem(), content_type="application/pem-certificate-chain")


@require_GET
@_unavailable_as_503
def issuing_ca(request: HttpRequest) -> HttpResponse:
    return HttpResponse(responders.issuing_ca_der(), content_type="application/pkix-cert")


@require_GET
@_unavailable_as_503
def crl(request: HttpRequest, form: str) -> HttpResponse:
    der = responders.crl_der()  # no CRL published yet and no CA to make one: 503
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
