"""The JSON API v1 against its own OpenAPI document, on the live server.

Schemathesis loads ``/api/v1/openapi.json`` from the running server and sends generated
requests, valid and invalid, to every operation. No answer may be a 5xx, and every answer must
be one the document describes: its status code, its content type and its body's schema.

Random six fields never match a notice, so a second pass walks the real journeys with data that
does (acquisition, renewal, the used notice, the lock, a bad proof of possession) and validates
each answer the same way; and generated certificate requests are also sent with a live,
confirmed token, so that they reach the CSR checks and not only the token lookup.

A request generated from the document (positive mode) must never be refused as malformed
(3400, 3410, 3413): the document gives every field the pattern and lengths its validator uses
(issuance.rules.formats, issuance.tokens, issuance.pki.csr), so what it calls valid is valid.

Changes this test led to: the 403 of /renewals (3480) and the status code 3490 are documented,
and a token with a slash or a newline in it gets the JSON 404 of an unknown token instead of
Django's HTML page; the fields' patterns and lengths.
"""

from __future__ import annotations

import base64
import socket
import time
from datetime import timedelta

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from django.core.cache import cache
from django.core.servers.basehttp import WSGIRequestHandler
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from issuance import audit, ca
from issuance.pki import pop
from issuance.services import certificates
from tests.csr import make_csr, make_key
from tests.factories import enrollment_fields, make_notice, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Examples per operation and mode: 6 operations x 2 modes x 110, plus 2 x 110 certificate
# requests with a live token: 1,540 generated requests, ~30 s here.
MAX_EXAMPLES = 110
MIN_GENERATED_REQUESTS = 1000
TIME_BUDGET_SECONDS = 90


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch):
    """The live server writes a response in several small writes; with Nagle's algorithm and
    the client's delayed ACK every request then waits ~40 ms (1,000 requests: 50 s instead of
    3 s). TCP_NODELAY on the server's sockets, as gunicorn does."""
    original = WSGIRequestHandler.setup

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        original(self)

    monkeypatch.setattr(WSGIRequestHandler, "setup", setup)


@pytest.fixture
def api_ca(settings, live_server, tmp_path):
    """A CA of the test's own, made four years ago so that a certificate issued "three years
    minus ten days ago" (in its renewal window today) is inside the issuing CA's validity."""
    settings.KIHONET_CA_DIR = tmp_path / "ca"
    settings.KIHONET_CA_PASSPHRASE = "schemathesis passphrase"
    settings.KIHONET_CA_PASSPHRASE_FILE = ""
    settings.KIHONET_BASE_URL = live_server.url
    ca.reset()
    yield ca.create(now=timezone.now() - timedelta(days=4 * 365))
    ca.reset()


class Sender:
    """Sends cases through one session, counts what really went out, and collects failures
    (instead of raising them, so that Hypothesis does not spend the time budget shrinking)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never a proxy
        self.sent = 0
        self.by_hand = 0
        self.statuses: dict[tuple[str, int], int] = {}
        # (operation, failure title, status) -> (how many, the first report in full)
        self.failures: dict[tuple[str, str, int], list] = {}
        self.session.hooks["response"].append(self._count)
        # Set while positive (schema-valid) cases are sent: none may then be refused as malformed.
        self.positive = False

    def _count(self, response, *args, **kwargs):
        self.sent += 1

    def __call__(self, case, *, expect: int | None = None):
        cache.clear()  # the lockout counts: otherwise every request after the 20th is a 429
        response = case.call(base_url=self.base_url, session=self.session)
        key = (case.operation.label, response.status_code)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        try:
            case.validate_response(
                response,
                checks=CHECKS,
                transport_kwargs={"base_url": self.base_url, "session": self.session},
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (case.operation.label, failure.title, response.status_code)
                self.failures.setdefault(key, [0, str(group)])[0] += 1
            return response
        if self.positive and refused_as_malformed(response):
            key = (case.operation.label, "schema-valid request refused as malformed", 400)
            self.failures.setdefault(key, [0, f"{case.body!r}\n{response.text[:500]}"])[0] += 1
        if expect is not None and response.status_code != expect:
            key = (case.operation.label, f"expected {expect}", response.status_code)
            self.failures.setdefault(key, [0, response.text[:500]])[0] += 1
        return response


# The status codes of a request the document itself would call invalid: its JSON, a field's
# form, its size. A request generated from the document (positive) must never get one.
MALFORMED = {"3400", "3410", "3413"}


def refused_as_malformed(response) -> bool:
    if response.status_code not in (400, 413):
        return False
    try:
        return response.json().get("status_code") in MALFORMED
    except ValueError:
        return True


def fuzz(sender: Sender, operation, mode: GenerationMode, **fixed) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def send(case) -> None:
        sender(case)

    before, started = sender.sent, time.monotonic()
    sender.positive = mode == GenerationMode.POSITIVE
    try:
        send()
    finally:
        sender.positive = False
    print(
        f"  {operation.label} {mode.value}{' ' + str(fixed) if fixed else ''}: "
        f"{sender.sent - before} requests in {time.monotonic() - started:.1f} s"
    )


def renewable_certificate():
    """A certificate issued three years less ten days ago, and the key the client tool holds."""
    key, csr = make_csr()
    certificate = certificates.issue_certificate(
        user=make_user(),
        csr_data=csr,
        actor=audit.Actor.system("test"),
        now=timezone.now() - timedelta(days=3 * 365 - 10),
    )
    return certificate, key


def pem_of_key(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def journeys(sender: Sender, schema) -> str:
    """The real flows with matching data; every answer validated against the document.
    Returns a live, confirmed token for the generated certificate requests."""
    enroll = schema["/api/v1/enrollments"]["POST"]
    confirm = schema["/api/v1/enrollments/{token}/confirm"]["POST"]
    issue = schema["/api/v1/enrollments/{token}/certificate"]["POST"]
    challenge_op = schema["/api/v1/renewals/challenge"]["POST"]
    renew = schema["/api/v1/renewals"]["POST"]

    # Acquisition, all three steps, for a few notices; then the used notice (409 with desks).
    for _ in range(3):
        notice = make_notice()
        started = sender(enroll.Case(body=enrollment_fields(notice)), expect=201)
        token = started.json()["token"]
        sender(
            issue.Case(path_parameters={"token": token}, body={"csr": make_csr()[1]}), expect=409
        )  # not confirmed yet (3451)
        sender(confirm.Case(path_parameters={"token": token}), expect=200)
        csr = make_csr()[1]
        sender(issue.Case(path_parameters={"token": token}, body={"csr": csr}), expect=201)
        sender(
            issue.Case(path_parameters={"token": token}, body={"csr": csr}), expect=201
        )  # sent again: the same certificate
        sender(
            issue.Case(path_parameters={"token": token}, body={"csr": make_csr()[1]}), expect=409
        )  # the token is used up, for another key (3452)
        sender(enroll.Case(body=enrollment_fields(notice)), expect=409)  # used notice (3440)

    # Mismatch (3420), then the lock after five of them (3430), without clearing the cache.
    notice = make_notice()
    wrong = {**enrollment_fields(notice), "user_id": "ZZ99999"}
    case = enroll.Case(body=wrong)
    cache.clear()
    for _ in range(5):
        response = case.call_and_validate(
            base_url=sender.base_url, session=sender.session, checks=CHECKS
        )
        assert response.status_code == 400, response.text
    response = case.call_and_validate(
        base_url=sender.base_url, session=sender.session, checks=CHECKS
    )
    assert response.status_code == 429, response.text

    # CSR errors with a live, confirmed token: a key that is not a CSR, an RSA key too small.
    live = sender(enroll.Case(body=enrollment_fields(make_notice())), expect=201).json()["token"]
    sender(confirm.Case(path_parameters={"token": live}), expect=200)
    sender(
        issue.Case(path_parameters={"token": live}, body={"csr": pem_of_key(make_key())}),
        expect=400,
    )
    sender(issue.Case(path_parameters={"token": live}, body={"csr": 42}), expect=400)

    # Renewal: challenge, signature, new certificate; then every refusal the flow has.
    certificate, key = renewable_certificate()
    issued = sender(challenge_op.Case(body={"certificate": certificate.pem}), expect=201).json()
    bad_signature = base64.b64encode(pop.sign_challenge(make_key(), issued["challenge"].encode()))

    def renewal(signature: str, csr) -> dict:
        return {
            "certificate": certificate.pem,
            "challenge": issued["challenge"],
            "signature": signature,
            "csr": csr,
        }

    # Proof of possession fails (3480).
    sender(renew.Case(body=renewal(bad_signature.decode(), make_csr()[1])), expect=403)
    sender(renew.Case(body=renewal("not base64!", make_csr()[1])), expect=403)
    signature = base64.b64encode(pop.sign_challenge(key, issued["challenge"].encode())).decode()
    # A bad CSR (3460); the transaction rolls the challenge's use back.
    sender(renew.Case(body=renewal(signature, "garbage")), expect=400)
    sender(renew.Case(body=renewal(signature, make_csr()[1])), expect=201)
    sender(challenge_op.Case(body={"certificate": certificate.pem}), expect=409)  # renewed
    fresh = sender(enroll.Case(body=enrollment_fields(make_notice())), expect=201).json()
    sender(challenge_op.Case(body={"certificate": fresh["email"]}), expect=409)  # not a cert

    # A revoked certificate: 409 with the desks to call.
    revoked, _key = renewable_certificate()
    certificates.revoke_certificate(
        revoked, reason="keyCompromise", actor=audit.Actor.system("test")
    )
    sender(challenge_op.Case(body={"certificate": revoked.pem}), expect=409)

    # A token that cannot be one (a slash, once decoded): still the documented JSON 404.
    sender(confirm.Case(path_parameters={"token": "a/b"}), expect=404)

    # Body errors every operation shares.
    sender(enroll.Case(body=[1, 2]), expect=400)
    sender(enroll.Case(body="x" * 70_000), expect=413)
    return live


def test_api_v1_conforms_to_its_openapi_document(live_server, api_ca):
    started = time.monotonic()
    sender = Sender(live_server.url)
    try:
        check_the_api(sender, live_server.url)
    finally:
        # The server's handler thread keeps its database connection while the socket is open.
        sender.session.close()
    generated = sender.sent - sender.by_hand
    elapsed = time.monotonic() - started
    summary = ", ".join(
        f"{label.split(' ', 1)[1]} {status}: {n}"
        for (label, status), n in sorted(sender.statuses.items())
    )
    print(f"\n{sender.sent} requests ({generated} generated) in {elapsed:.1f} s; {summary}")
    assert not sender.failures, "\n\n".join(
        f"{n} x {label} {title} ({status}); first:\n{first}"
        for (label, title, status), (n, first) in sender.failures.items()
    )
    assert generated >= MIN_GENERATED_REQUESTS, f"only {generated} generated requests were sent"
    assert elapsed < TIME_BUDGET_SECONDS, f"took {elapsed:.0f} s"


def check_the_api(sender: Sender, base_url: str) -> None:
    schema = schemathesis.openapi.from_url(
        f"{base_url}/api/v1/openapi.json", proxies={"http": None, "https": None}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.label for op in operations) == [
        "GET /api/v1/certificates/{serial}/renewal-info",
        "GET /api/v1/certificates/{serial}/status",
        "POST /api/v1/certificates/{serial}/auto-renewal",
        "POST /api/v1/enrollments",
        "POST /api/v1/enrollments/{token}/certificate",
        "POST /api/v1/enrollments/{token}/confirm",
        "POST /api/v1/renewals",
        "POST /api/v1/renewals/challenge",
    ]

    live_token = journeys(sender, schema)
    sender.by_hand = sender.sent

    for operation in operations:
        for mode in MODES:
            fuzz(sender, operation, mode)
    # The certificate step with a live, confirmed token: the generated bodies reach the CSR
    # checks (the token stays usable, since no generated CSR is a valid one).
    certificate_step = schema["/api/v1/enrollments/{token}/certificate"]["POST"]
    for mode in MODES:
        fuzz(sender, certificate_step, mode, path_parameters={"token": live_token})
