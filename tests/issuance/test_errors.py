"""The service errors have one home (issuance/errors.py), unique status codes, and the OpenAPI
document's table of codes is the one errors.py declares."""

import importlib
import pkgutil

import pytest

import issuance
import notifications
from issuance import errors
from issuance.api import openapi
from issuance.errors import CaUnavailableServiceError, ReissueError, ServiceError

# The client tool runs on the customer's PC and raises no ServiceError; it is not imported here.
SKIPPED_PACKAGES = ("issuance.client_tool",)


def _import_the_apps() -> None:
    """Every module of both apps, so that a ServiceError subclass defined anywhere exists."""
    for package in (issuance, notifications):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.startswith(SKIPPED_PACKAGES):
                importlib.import_module(module.name)


@pytest.fixture(scope="module")
def all_errors() -> list[type[ServiceError]]:
    _import_the_apps()
    return errors.error_classes()


def test_every_service_error_is_defined_in_issuance_errors(all_errors):
    elsewhere = [f"{cls.__module__}.{cls.__qualname__}" for cls in all_errors]
    elsewhere = [name for name in elsewhere if not name.startswith("issuance.errors.")]
    assert elsewhere == []
    assert len(all_errors) > 10  # the walk found the classes (not an empty list)


def test_every_status_code_is_unique(all_errors):
    codes = [cls.status_code for cls in all_errors]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    assert duplicates == []


def test_every_error_has_its_summary_status_and_japanese_message(all_errors):
    for cls in all_errors:
        assert cls.status_code.isdigit() and len(cls.status_code) == 4, cls
        assert cls.summary, cls
        assert 400 <= cls.http_status < 600, cls
        message = str(cls().message)
        assert message and not message.isascii(), cls  # a Japanese default message


def test_the_manual_code_3420_is_the_input_mismatch():
    """R03: 「ステータスコード：3420」 as the manual shows it."""
    assert errors.InputMismatchError.status_code == "3420"


def test_reissue_and_ca_unavailable_no_longer_share_a_code():
    """Both were 3500: the CA's (seen by customers and the client tool) keeps it."""
    assert CaUnavailableServiceError.status_code == "3500"
    assert ReissueError.status_code != CaUnavailableServiceError.status_code
    assert ReissueError().status_code == "3530"


def test_the_openapi_table_is_what_errors_declares(all_errors):
    expected = {cls.status_code: cls.summary for cls in all_errors if cls.api}
    document = openapi.document()
    assert openapi.STATUS_CODES == expected
    enum = document["components"]["schemas"]["Error"]["properties"]["status_code"]["enum"]
    assert enum == sorted(expected)
    description = document["info"]["description"]
    for code, summary in expected.items():
        assert f"{code} {summary}" in description
    # Errors only staff see are not promised by the API.
    assert ReissueError.status_code not in enum


def test_a_new_error_class_appears_in_the_openapi_table():
    class ProbeError(ServiceError):
        status_code = "3999"
        summary = "テスト用"

    try:
        assert errors.api_status_codes()["3999"] == "テスト用"
    finally:
        # Forget the probe so that the walk of the other tests does not see it.
        del ProbeError
        import gc

        gc.collect()
    assert "3999" not in errors.api_status_codes()
