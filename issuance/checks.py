"""System checks of kihonet's own (``manage.py check``)."""

from __future__ import annotations

from django.contrib.admin.sites import all_sites
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP


def _search_path_error(model, path: str) -> str | None:
    """Why ``path`` (a search_fields entry) does not lead to a field of ``model``, or None."""
    current, field = model, None
    parts = path.lstrip("^=@").split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if last and field is not None and field.get_lookup(part):
            return None  # a lookup such as "name__iexact"
        if current is None:
            return f"{part!r} follows a field that is not a relation"
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return f"{current.__name__} has no field {part!r}"
        current = field.related_model if field.is_relation else None
    return None


@checks.register(checks.Tags.admin)
def check_admin_search_fields(app_configs=None, *, sites=None, **kwargs) -> list[checks.Error]:
    """Every admin's search_fields lead to real fields: a wrong path would make every search of
    that list a 500 (FieldError), which no other check notices."""
    errors = []
    for site in all_sites if sites is None else sites:
        for model, model_admin in site._registry.items():
            for path in model_admin.search_fields or ():
                reason = _search_path_error(model, path)
                if reason:
                    errors.append(
                        checks.Error(
                            f"search_fields entry {path!r} does not resolve: {reason}",
                            obj=type(model_admin),
                            id="issuance.E001",
                        )
                    )
    return errors
