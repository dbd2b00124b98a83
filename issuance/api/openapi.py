"""The OpenAPI document of API version 1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from issuance import errors, tokens
from issuance.pki import csr
from issuance.rules import formats

# The status codes and what each means: generated from issuance/errors.py, never kept by hand.
STATUS_CODES = errors.api_status_codes()


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json_body(ref: str) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _success(ref: str) -> dict:
    return {
        "description": "成功",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _string(pattern: str | None = None, **extra) -> dict:
    schema = {"type": "string", **extra}
    if pattern:
        schema["pattern"] = pattern
    return schema


def _fixed(pattern: str, length: int, **extra) -> dict:
    """A code of the notice: its pattern and length, from the constants its validator uses."""
    return _string(pattern, minLength=length, maxLength=length, **extra)


# Text of printable ASCII, tab and line breaks: what PEM is made of. (No string of a body may
# hold another control character: issuance.untrusted refuses them.)
PEM_TEXT = r"[\t\n\r\x20-\x7e]*"


def _pem(labels, **extra) -> dict:
    """PEM text with the BEGIN line of one of ``labels``."""
    names = "|".join(
        sorted(label.decode() if isinstance(label, bytes) else label for label in labels)
    )
    return _string(f"^{PEM_TEXT}-----BEGIN ({names})-----{PEM_TEXT}$", minLength=1, **extra)


def _csr(description: str) -> dict:
    return _pem(csr.CSR_PEM_LABELS, maxLength=csr.MAX_CSR_BYTES, description=description)


def _request(**properties: dict) -> dict:
    """A request body of exactly ``properties``, every one required."""
    return {
        "type": "object",
        # Other members are ignored by the server; the document promises nothing of them.
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


# Acquisition tokens and renewal challenges are tokens.new_token(): any other text is unknown.
TOKEN = _fixed(tokens.TOKEN_RE, tokens.TOKEN_LENGTH)
# The signature is standard Base64 (decoded with validation).
BASE64_RE = r"^[A-Za-z0-9+/]*={0,2}$"

TOKEN_PARAMETER = {"name": "token", "in": "path", "required": True, "schema": TOKEN}

COMMON_ERRORS = {
    "400": _error("形式の誤り"),
    "404": _error("受付番号が無効"),
    "405": {"description": "POST 以外"},
    "409": _error("状態が合わない"),
    "413": _error("データが大きすぎる"),
    "429": _error("ロック中"),
    "503": _error("一時的に発行できない"),
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["status_code", "message"],
        "properties": {
            "status_code": {"type": "string", "enum": sorted(STATUS_CODES)},
            "message": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "desks": {"type": "array", "items": {"type": "object"}},
            "locked_until": {"type": "string", "format": "date-time"},
        },
    },
    "EnrollmentRequest": _request(
        kihonet_code=_fixed(
            formats.KIHONET_CODE_RE,
            formats.KIHONET_CODE_LENGTH,
            description="企保ネットコード（半角数字8桁）",
        ),
        management_number=_fixed(
            formats.MANAGEMENT_NUMBER_RE,
            formats.MANAGEMENT_NUMBER_LENGTH,
            description="管理番号（半角英数字10桁）",
        ),
        user_id=_fixed(
            formats.USER_ID_RE,
            formats.USER_ID_LENGTH,
            description="ユーザーID（半角英数字7桁）",
        ),
        year=_fixed(formats.YEAR_RE, formats.YEAR_LENGTH, description="年（西暦4桁）"),
        branch_number=_fixed(
            formats.BRANCH_NUMBER_RE,
            formats.BRANCH_NUMBER_LENGTH,
            description="枝番（3桁、新規は001）",
        ),
        email=_string(
            format="email",
            maxLength=formats.EMAIL_MAX_LENGTH,
            description="Eメールアドレス（半角英数字）",
        ),
    ),
    "Enrollment": {
        "type": "object",
        "required": ["token", "email", "expires_at"],
        "properties": {
            "token": TOKEN,
            "email": _string(),
            "expires_at": _string(format="date-time"),
        },
    },
    "Confirmation": {
        "type": "object",
        "required": ["confirmed", "email"],
        "properties": {"confirmed": {"type": "boolean"}, "email": _string()},
    },
    "CertificateRequest": _request(csr=_csr("PEM の証明書署名要求（PKCS#10）")),
    "ChallengeRequest": _request(
        certificate=_pem(["CERTIFICATE"], description="更新するクライアント証明書（PEM）")
    ),
    "Challenge": {
        "type": "object",
        "required": ["challenge", "expires_at"],
        "properties": {"challenge": TOKEN, "expires_at": _string(format="date-time")},
    },
    "RenewalRequest": _request(
        certificate=_pem(["CERTIFICATE"], description="更新するクライアント証明書（PEM）"),
        challenge={**TOKEN, "description": "チャレンジ（そのまま）"},
        signature=_string(
            BASE64_RE,
            minLength=1,
            description="チャレンジ（ASCII）への現在の鍵による署名（Base64）",
        ),
        csr=_csr("新しい鍵の証明書署名要求（PEM）"),
    ),
    "IssuedCertificate": {
        "type": "object",
        "required": ["serial", "certificate", "chain", "not_before", "not_after", "subject"],
        "properties": {
            "serial": _string(formats.SERIAL_RE),
            "certificate": _string(),
            "chain": _string(),
            "not_before": _string(format="date-time"),
            "not_after": _string(format="date-time"),
            "subject": _string(),
        },
    },
}


def _post(
    summary: str,
    body: str | None,
    result: str,
    *,
    status: int = 201,
    parameters: list | None = None,
    errors: dict | None = None,
    description: str | None = None,
) -> dict:
    operation = {
        "summary": summary,
        "responses": {str(status): _success(result), **COMMON_ERRORS, **(errors or {})},
    }
    if description:
        operation["description"] = description
    if body:
        operation["requestBody"] = _json_body(body)
    if parameters:
        operation["parameters"] = parameters
    return {"post": operation}


SCHEMAS["CertificateStatus"] = {
    "type": "object",
    "required": ["serial", "status"],
    "properties": {
        "serial": _string(formats.SERIAL_RE),
        "status": {"type": "string", "enum": ["valid", "renewed", "revoked", "expired"]},
    },
}

SERIAL_PARAMETER = {
    "name": "serial",
    "in": "path",
    "required": True,
    "schema": _string(formats.SERIAL_RE, minLength=1, maxLength=40),
}

STATUS_OPERATION = {
    "get": {
        "summary": "証明書の状態（クライアントツールの一覧用）",
        "parameters": [SERIAL_PARAMETER],
        "responses": {
            "200": _success("CertificateStatus"),
            "400": _error("シリアル番号の形式の誤り"),
            "404": _error("シリアル番号の証明書が見つからない"),
            "405": {"description": "GET 以外"},
        },
    }
}


def _resend(same: str) -> str:
    return (
        f"応答を受け取れなかったときは、同じ要求（{same}）をそのまま送り直してください。"
        "証明書の発行から KIHONET_ISSUE_REPLAY_HOURS 時間（既定 24 時間）の間、証明書が失効して"
        "いなければ、最初と同じ証明書を、最初と同じ HTTP ステータス 201 と同じ JSON で返します"
        "（2枚目は発行しません）。同じ要求で別の鍵の CSR を送ると 3452 です。"
    )


SCHEMAS["ChallengeRequest"]["properties"]["purpose"] = {
    "type": "string",
    "enum": ["renewal", "auto_renewal_report"],
    "default": "renewal",
    "description": "auto_renewal_report: 自動更新の報告用（更新期間外でも発行、更新には使えない）",
}

SCHEMAS["RenewalInfo"] = {
    "type": "object",
    "required": ["serial", "status", "suggestedWindow"],
    "properties": {
        "serial": _string(formats.SERIAL_RE),
        "status": {"type": "string", "enum": ["valid", "renewed", "revoked", "expired"]},
        "suggestedWindow": {
            "type": "object",
            "nullable": True,
            "required": ["start", "end"],
            "properties": {
                "start": _string(format="date-time"),
                "end": _string(format="date-time"),
            },
        },
        "moved": {"type": "boolean", "description": "認証局が更新推奨期間を変更した"},
    },
}

SCHEMAS["AutoRenewalReportRequest"] = _request(
    certificate=_pem(["CERTIFICATE"], description="自動更新するクライアント証明書（PEM）"),
    challenge={**TOKEN, "description": "purpose auto_renewal_report のチャレンジ"},
    signature=_string(
        BASE64_RE,
        minLength=1,
        description="「kihonet-auto-renewal:on:チャレンジ」（無効にするときは off）への"
        "証明書の鍵による署名（Base64）",
    ),
    enabled={"type": "boolean"},
)

SCHEMAS["AutoRenewalReport"] = {
    "type": "object",
    "required": ["serial", "enabled", "checked_in_at"],
    "properties": {
        "serial": _string(formats.SERIAL_RE),
        "enabled": {"type": "boolean"},
        "checked_in_at": _string(format="date-time"),
    },
}

RENEWAL_INFO_OPERATION = {
    "get": {
        "summary": "更新の推奨時期（ACME Renewal Information, RFC 9773 にならう）",
        "description": (
            "suggestedWindow は更新期間（有効期限の30日前から有効期限まで、R09）の中で、証明書"
            "ごとに（シリアル番号から）ずらした期間。クライアントはその中の無作為な時刻を選び、"
            "それ以後の最初の実行で更新する（終了を過ぎていればすぐ）。有効で未更新の証明書"
            "以外は null。Retry-After（秒）の後に再度問い合わせる。"
        ),
        "parameters": [SERIAL_PARAMETER],
        "responses": {
            "200": {
                **_success("RenewalInfo"),
                "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            },
            "400": _error("シリアル番号の形式の誤り"),
            "404": _error("シリアル番号の証明書が見つからない"),
            "405": {"description": "GET 以外"},
        },
    }
}


def document() -> dict:
    paths = {
        "/api/v1/enrollments": _post(
            "新規取得の受付（6項目の照合）", "EnrollmentRequest", "Enrollment"
        ),
        "/api/v1/enrollments/{token}/confirm": _post(
            "Eメールアドレスの確認", None, "Confirmation", status=200, parameters=[TOKEN_PARAMETER]
        ),
        "/api/v1/enrollments/{token}/certificate": _post(
            "証明書の発行",
            "CertificateRequest",
            "IssuedCertificate",
            parameters=[TOKEN_PARAMETER],
            description=_resend("同じ受付番号、同じ公開鍵の CSR"),
        ),
        "/api/v1/renewals/challenge": _post("更新のチャレンジ", "ChallengeRequest", "Challenge"),
        "/api/v1/renewals": _post(
            "証明書の更新",
            "RenewalRequest",
            "IssuedCertificate",
            errors={"403": _error("秘密鍵を保持していることを確認できない")},
            description=_resend("同じ証明書、同じチャレンジと署名、同じ新しい公開鍵の CSR"),
        ),
        "/api/v1/certificates/{serial}/status": STATUS_OPERATION,
        "/api/v1/certificates/{serial}/renewal-info": RENEWAL_INFO_OPERATION,
        "/api/v1/certificates/{serial}/auto-renewal": _post(
            "自動更新の報告（毎回の確認時、証明書の鍵で署名）",
            "AutoRenewalReportRequest",
            "AutoRenewalReport",
            status=200,
            parameters=[SERIAL_PARAMETER],
            errors={"403": _error("秘密鍵を保持していることを確認できない")},
        ),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "kihonet API",
            "version": "1",
            "description": "status_code: " + "; ".join(f"{k} {v}" for k, v in STATUS_CODES.items()),
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }


@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document(), json_dumps_params={"ensure_ascii": False})
