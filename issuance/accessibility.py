"""The facts the accessibility policy page (ウェブアクセシビリティ方針) states.

The axe test (tests/browser/test_accessibility.py) checks that the axe-core it runs is the
version stated here, so the page never names a tool the test did not use; after upgrading
axe-playwright-python, run the test and update the version and the date together.
"""

from datetime import date

STANDARD = "JIS X 8341-3:2016"
TARGET_LEVEL = "適合レベルAA"
TEST_DATE = date(2026, 12, 1)
AXE_CORE_VERSION = "4.12.1"
BROWSER = "Chromium 156"
# The pages the policy covers and the tests check: (name, URL name of issuance.urls).
PAGES = [
    ("トップページ（クライアント証明書の新規取得・更新）", "issuance:home"),
    (
        "クライアント証明書の新規取得（入力・入力エラー・Eメールアドレスの確認・作成・完了）",
        "issuance:enroll",
    ),
    ("クライアント証明書の更新（更新・完了）", "issuance:renew"),
    ("ログインの確認", "issuance:login-check"),
    ("クライアント証明書新規取得・更新マニュアル", "issuance:manual"),
    ("ウェブアクセシビリティ方針", "issuance:accessibility"),
]
