import pytest


@pytest.fixture(autouse=True)
def _reminder_mail_settings(settings):
    settings.DEFAULT_FROM_EMAIL = "kihonet@example.jp"
    settings.KIHONET_BASE_URL = "https://kihonet.example.jp"
