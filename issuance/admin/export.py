"""CSV export of the selected rows (supervisors: the export_data permission). The rows come from
the admin's queryset, so an export never holds more than the staff member may see."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance import audit, roles
from issuance.requests import client_ip
from issuance.services import records

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class _Echo:
    def write(self, value: str) -> str:
        return value


class ExportMixin:
    """An action ``export_csv`` over ``export_fields``: (header, attribute path) pairs, or
    (header, function of the row) for a value no field holds."""

    export_fields: list[tuple[StrOrPromise, str | Callable[[Any], str]]] = []
    # As ModelAdmin.actions, so that the admins that mix this in agree with it.
    actions: Sequence[Callable[..., Any] | str] | None = ["export_csv"]

    def has_export_data_permission(self, request) -> bool:
        return request.user.has_perm(roles.EXPORT)

    def _value(self, obj, path: str | Callable[[Any], str]) -> str:
        if callable(path):
            return path(obj)
        for part in path.split("__"):
            obj = getattr(obj, part, None)
            if obj is None:
                return ""
        return str(obj)

    def _rows(self, queryset) -> Iterator[list[str]]:
        yield [str(header) for header, _path in self.export_fields]
        for obj in queryset.iterator(chunk_size=2000):
            yield [self._value(obj, path) for _header, path in self.export_fields]

    @admin.action(description=_("選択したデータをCSVで出力"), permissions=["export_data"])
    def export_csv(self, request, queryset):
        records.record_export(queryset, audit.Actor.staff_user(request.user, client_ip(request)))
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            ("\ufeff" if i == 0 else "") + writer.writerow(row)
            for i, row in enumerate(self._rows(queryset))
        )
        response["Content-Type"] = "text/csv; charset=utf-8"
        name = f"{queryset.model._meta.model_name}-{timezone.localdate():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
