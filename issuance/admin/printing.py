"""The notices as A4 pages: 「ユーザーIDのお知らせ」 and 「再発行完了の通知文書」 (R01, R16).

One HTML template serves the browser's print dialog and the PDF (WeasyPrint renders the same
HTML; the Japanese font is Noto Sans CJK JP from Debian's fonts-noto-cjk)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from issuance.models import Notice, ServiceDesk
from issuance.selectors.contacts import ContactRow, desks_for_customer, onboarding_desk, site_url

TEMPLATE = "issuance/notices/notice.html"
CSS = "issuance/notice-print.css"


@cache
def _print_css() -> str:
    path = finders.find(CSS)
    if path is None:
        raise FileNotFoundError(f"static file {CSS} not found")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _by_product_line(rows: list[ContactRow]) -> list[tuple[str, list]]:
    """The contact rows as the manual prints them: one line per product, its desks beside it."""
    grouped: dict[str, list[ContactRow]] = {}
    for row in rows:
        grouped.setdefault(row.product_line, []).append(row)
    return list(grouped.items())


def notice_context(notice: Notice) -> dict:
    user = notice.user
    customer = user.customer
    desks = desks_for_customer(customer)
    onboarding = onboarding_desk()
    hours = (
        onboarding.hours
        if onboarding
        else (ServiceDesk.objects.values_list("hours", flat=True).first() or "")
    )
    return {
        "notice": notice,
        "user": user,
        "customer": customer,
        "is_reissue": notice.kind == Notice.Kind.REISSUE,
        "year_end": notice.registration_year != notice.printed_year,
        **site_url(),
        "contact_lines": _by_product_line(desks),
        "hours": hours,
        "print_css": _print_css(),
    }


def render_notice_html(
    notice: Notice, *, toolbar: bool = True, inline_css: bool = False, extra: dict | None = None
) -> str:
    """The page; the browser loads the CSS as a static file (the CSP allows no inline style),
    WeasyPrint gets it inline."""
    return render_to_string(
        TEMPLATE,
        {**notice_context(notice), "toolbar": toolbar, "inline_css": inline_css, **(extra or {})},
    )


def render_notice_pdf(notice: Notice) -> bytes:
    from weasyprint import HTML  # imported here: it loads Pango when first used

    html = render_notice_html(notice, toolbar=False, inline_css=True)
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def pdf_filename(notice: Notice) -> str:
    return f"notice-{notice.user.user_id}-{notice.branch_number}.pdf"
