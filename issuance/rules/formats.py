"""The formats of the notice's six fields (R01), shared by models, forms and the API."""

import re
import unicodedata

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

# The lengths (R01), from which the patterns below, the forms' validators, the database's
# check constraints and the OpenAPI document are all made.
KIHONET_CODE_LENGTH = 8
MANAGEMENT_NUMBER_LENGTH = 10
USER_ID_LENGTH = 7
YEAR_LENGTH = 4
BRANCH_NUMBER_LENGTH = 3
EMAIL_MAX_LENGTH = 254

KIHONET_CODE_RE = rf"^[0-9]{{{KIHONET_CODE_LENGTH}}}$"
MANAGEMENT_NUMBER_RE = rf"^[0-9A-Za-z]{{{MANAGEMENT_NUMBER_LENGTH}}}$"
USER_ID_RE = rf"^[0-9A-Za-z]{{{USER_ID_LENGTH}}}$"
YEAR_RE = rf"^[0-9]{{{YEAR_LENGTH}}}$"
BRANCH_NUMBER_RE = rf"^[0-9]{{{BRANCH_NUMBER_LENGTH}}}$"
SERIAL_RE = r"^[0-9A-F]{1,40}$"

FIRST_BRANCH_NUMBER = "001"

validate_kihonet_code = RegexValidator(
    KIHONET_CODE_RE, _("企保ネットコードは半角数字8桁でご入力ください。"), code="format"
)
validate_management_number = RegexValidator(
    MANAGEMENT_NUMBER_RE, _("管理番号は半角英数字10桁でご入力ください。"), code="format"
)
validate_user_id = RegexValidator(
    USER_ID_RE, _("ユーザーIDは半角英数字7桁でご入力ください。"), code="format"
)
validate_year = RegexValidator(YEAR_RE, _("年は西暦の半角数字4桁でご入力ください。"), code="format")
validate_branch_number = RegexValidator(
    BRANCH_NUMBER_RE, _("枝番は半角数字3桁でご入力ください。"), code="format"
)


def normalize_field(value: str) -> str:
    """NFKC (full-width to half-width) and trimmed, since people copy codes from a letter."""
    return unicodedata.normalize("NFKC", value or "").strip()


def normalize_code(value: str) -> str:
    """A code field: normalised, inner spaces and hyphens of a copied code removed."""
    return re.sub(r"[\s\-]", "", normalize_field(value))


def normalize_email(value: str) -> str:
    """E-mail addresses are compared without regard to case."""
    return normalize_field(value).lower()
