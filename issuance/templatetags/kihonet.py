"""Template helpers of the public pages."""

import re

from django import template

register = template.Library()


@register.filter
def tel_href(phone: str) -> str:
    """「0120-150-012」 → ``tel:0120150012``: a phone number a phone can call with one tap."""
    return "tel:" + re.sub(r"[^0-9+]", "", phone or "")
