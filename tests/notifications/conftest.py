import pytest

from tests.notifications.smtp import SmtpControl


@pytest.fixture(autouse=True)
def _reminder_mail_settings(settings):
    settings.DEFAULT_FROM_EMAIL = "kihonet@example.jp"
    settings.KIHONET_BASE_URL = "https://kihonet.example.jp"


@pytest.fixture
def flaky(smtp_server, settings) -> SmtpControl:
    """The real SMTP server (aiosmtpd), told per address to refuse, or made unreachable."""
    return SmtpControl(smtp_server, settings)
