"""Filters of the back-office templates: the Japanese names of stored codes."""

from django import template

from issuance import labels

register = template.Library()


@register.filter
def audit_action(code: str) -> str:
    return labels.audit_action(code)


@register.filter
def revocation_reason(code: str) -> str:
    return labels.revocation_reason(code)


@register.filter
def audit_detail(event) -> list[tuple[str, str]]:
    return labels.audit_detail(event.action, event.detail)
